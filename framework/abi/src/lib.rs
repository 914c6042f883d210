//! descry-abi: what a descry plugin links against.
//!
//! Three plugin kinds cross a stable ABI (built on `abi_stable`):
//! - [`game`]: one game family: its decision options, prompt variants, how to load a data
//!   set into episodes of decision points, and how to render a decision point as a prompt;
//! - [`backend`]: an inference engine that loads a model and scores token sequences;
//! - [`metric`]: a set of scoring rules comparing predictions with human outcomes.
//!
//! A plugin author implements a plain Rust trait ([`game::GamePlugin`],
//! [`backend::BackendPlugin`], [`metric::MetricPlugin`]) over the FFI-safe data types in
//! [`types`], and exports it with one macro ([`export_game!`], [`export_backend!`],
//! [`export_metrics!`]). The macros wrap every entry point in `catch_unwind`, so a plugin
//! that panics returns an error naming the plugin instead of aborting the host.
//!
//! Invariant: every type that crosses the boundary is `#[repr(C)]` + `StableAbi`; a change
//! to any of them is an ABI change and must bump [`ABI_VERSION`].
#![deny(missing_docs)]
// abi_stable's #[sabi_trait] expands to impls the newer lint flags; they are sound.
#![allow(non_local_definitions)]

pub mod backend;
pub mod game;
mod guard;
pub mod metric;
pub mod types;

#[doc(hidden)]
pub use abi_stable;
pub use guard::{guarded, PluginError};

/// The version of the descry plugin ABI. The host refuses plugins built against another.
pub const ABI_VERSION: u32 = 2;

/// Names under which the three kinds of root module are exported; the host reads them from
/// a library's header to know which kind of plugin it holds before loading it.
pub mod root_names {
    /// Root module name of a game plugin.
    pub const GAME: &str = "descry_game";
    /// Root module name of a backend plugin.
    pub const BACKEND: &str = "descry_backend";
    /// Root module name of a metrics plugin.
    pub const METRICS: &str = "descry_metrics";
}
