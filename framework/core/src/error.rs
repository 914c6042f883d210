//! Why a run stops. Configuration problems are found before any scoring starts.

use crate::{
    config::ConfigError, data::GameError, model::ModelError, plan::PlanError, store::StoreError,
};

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A game problem (plugin, data path, variant, loader).
    #[error(transparent)]
    Game(#[from] GameError),
    /// A model folder problem, with the config key.
    // The source is printed by the error chain (`{:#}`), not repeated here.
    #[error("config key `{key}`")]
    Model {
        /// The config key.
        key: String,
        /// The problem.
        #[source]
        source: Box<ModelError>,
    },
    /// The backend plugin is not loaded.
    #[error("config key `backend.plugin`: no backend plugin named `{0}` is loaded; see `descry plugins`")]
    NoBackend(String),
    /// The backend failed to load a model.
    #[error("backend `{backend}` could not load model {model}: {reason}")]
    BackendLoad {
        /// Backend name.
        backend: String,
        /// Model name.
        model: String,
        /// The backend's error.
        reason: String,
    },
    /// The backend failed while scoring; what was scored before is stored.
    #[error("scoring {unit} failed (results so far are stored; run again to resume): {reason}")]
    Score {
        /// The unit.
        unit: String,
        /// The backend's error.
        reason: String,
    },
    /// Planning failed.
    #[error("planning {unit}")]
    Plan {
        /// The unit.
        unit: String,
        /// The problem.
        #[source]
        source: Box<PlanError>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The study has nothing to run.
    #[error("{0}")]
    Empty(String),
    /// The study's models contradict each other, or the backend refused its settings.
    #[error("{0}")]
    Config(String),
    /// A study key that only the registry can check (metrics).
    #[error(transparent)]
    Settings(#[from] ConfigError),
    /// The run record or a summary could not be encoded.
    #[error("encoding {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: serde_json::Error,
    },
}
