//! descry-core: the host library of descry.
//!
//! It owns everything between a study file and a report: the layered configuration
//! ([`config`]), the plugin registry ([`registry`]), the prepared study ([`study`]), the
//! host's side of the backend contract ([`backend`]), prompts and chat templates,
//! tokenization, planning, scoring, the result store, analysis, significance tests and
//! reports, and the [`pipeline`] that runs them in order. The `descry` binary is a thin
//! shell over this crate: it parses, calls the pipeline and prints its events.
#![deny(missing_docs)]

pub mod analysis;
pub mod backend;
pub mod config;
pub mod data;
pub mod error;
pub mod fetch;
pub mod inspect;
pub mod model;
pub mod pipeline;
pub mod plan;
pub mod probe;
pub mod prompt;
pub mod record;
pub mod registry;
pub mod report;
pub mod run;
pub mod score;
pub mod significance;
pub mod store;
pub mod study;
