//! descry-core: the host library of descry.
//!
//! It owns everything between a study file and a report: the layered configuration
//! ([`config`]), the plugin registry ([`registry`]), prompts and chat templates, tokenization,
//! scheduling, scoring, the result store, analysis, significance tests and reports.
//! The `descry` binary is a thin shell over this crate.
#![deny(missing_docs)]

pub mod analysis;

pub mod config;
pub mod data;
pub mod fetch;
pub mod inspect;
pub mod model;
pub mod plan;
pub mod prompt;
pub mod record;
pub mod registry;
pub mod report;
pub mod run;
pub mod score;
pub mod significance;
pub mod store;
