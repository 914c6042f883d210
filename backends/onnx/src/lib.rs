//! descry-backend-onnx: the ONNX Runtime inference backend.
//!
//! It loads a model folder's `onnx` artifacts (`model.onnx`, and `model.onnx.data` when
//! the weights are external; see `docs/model-folder.md`) and scores token sequences: for
//! each queried position, the log-probabilities of the candidate tokens, the log-sum-exp of
//! the distribution and optionally its top-k tokens. This crate exports it as a descry
//! backend plugin named `onnx`.
//!
//! By job:
//! - [`settings`]: the shared settings and the `[backend.onnx]` table (`library`,
//!   `graph_optimization`, `min_shared_prefix`) into [`EngineOptions`], every problem named;
//! - [`session`]: ONNX Runtime's environment and session builders (library, device, threads,
//!   graph optimisation);
//! - the schedule (which forward passes answer a request: each distinct prefix once,
//!   token-budget batches, pasts kept between calls) is descry-schedule's, over this
//!   crate's [`forward::OrtForward`];
//! - [`forward`]: the ONNX Runtime forward pass (tensor marshalling);
//! - [`engine`]: request checks and result collection;
//! - [`matmul`]: the engine's own matrix-multiply rate, for the benchmark.
//!
//! The device is `cpu`, `cuda` or `cuda:N` (CUDA needs the `cuda` feature and the
//! `onnxruntime-gpu` library; an unavailable CUDA provider is an error, never a silent CPU
//! fallback).
#![deny(missing_docs)]

pub mod engine;
pub mod forward;
pub mod matmul;
pub mod session;
pub mod settings;

use descry_abi::backend::{BackendPlugin, ModelPlugin};
use descry_abi::types::{
    BackendInfo, BackendSettings, MatmulRate, ModelLoadRequest, MovedKey, PluginInfo, ScoreRequest,
    ScoreResult, SettingsProblem,
};
use descry_abi::PluginError;
pub use engine::{Engine, EngineError};
pub use settings::{Device, EngineOptions, GraphOptimization};

/// The backend plugin: `load` opens a model folder as an [`Engine`].
#[derive(Debug, Default, Clone, Copy)]
pub struct OnnxBackend;

/// The settings as options, or an error listing every problem with its key.
fn options(settings: &BackendSettings) -> Result<EngineOptions, EngineError> {
    settings::parse(settings).map_err(|problems| {
        let text: Vec<String> = problems
            .iter()
            .map(|p| match p.scope {
                descry_abi::types::SettingsScope::Shared => {
                    format!("backend.{}: {}", p.key, p.reason)
                }
                descry_abi::types::SettingsScope::Engine if p.key.is_empty() => {
                    format!("backend.onnx: {}", p.reason)
                }
                descry_abi::types::SettingsScope::Engine => {
                    format!("backend.onnx.{}: {}", p.key, p.reason)
                }
            })
            .collect();
        EngineError::Options(text.join("; "))
    })
}

impl BackendPlugin for OnnxBackend {
    type Model = Engine;

    fn info(&self) -> BackendInfo {
        BackendInfo {
            plugin: PluginInfo {
                name: "onnx".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description: "ONNX Runtime backend (CPU; CUDA with the cuda feature) for descry \
                              model folders"
                    .into(),
            },
            artifacts: engine::ARTIFACTS.into(),
            // Keys of `[backend]` in studies written before the backends had tables.
            moved_keys: [("graph_optimization", "graph_optimization"), ("ort_library", "library")]
                .into_iter()
                .map(|(old, new)| MovedKey { old: old.into(), new: new.into() })
                .collect(),
        }
    }

    fn check(&self, settings: &BackendSettings) -> Vec<SettingsProblem> {
        settings::check(settings)
    }

    fn load(&self, request: &ModelLoadRequest) -> Result<Engine, PluginError> {
        // The settings are parsed again: `check` may not have run.
        let options = options(&request.settings)?;
        Ok(Engine::load(std::path::Path::new(request.model_dir.as_str()), &options)?)
    }

    fn matmul_rate(&self, settings: &BackendSettings, n: u32) -> Result<MatmulRate, PluginError> {
        Ok(matmul::matmul_rate(&options(settings)?, n)?)
    }
}

impl ModelPlugin for Engine {
    fn describe(&self) -> String {
        let m = self.manifest();
        let o = self.options();
        serde_json::json!({
            "backend": "onnx",
            "path": self.dir().display().to_string(),
            "name": m.name,
            "architecture": m.architecture,
            "vocab_size": m.vocab_size,
            "num_layers": m.num_layers,
            "context_length": m.context_length,
            "non_embedding_params": m.non_embedding_params,
            "weights_sha256": m.weights_sha256,
            "device": o.device.to_string(),
            "threads": o.threads,
            "token_budget": o.token_budget,
            "min_shared_prefix": o.min_shared_prefix,
            "prefix_cache_tokens": o.cache_tokens(),
        })
        .to_string()
    }

    fn score(&self, request: &ScoreRequest) -> Result<ScoreResult, PluginError> {
        Ok(Engine::score(self, request)?)
    }
}

/// The plugin's ABI entry point: the root module the descry host loads from the cdylib.
// The export macro's generated items carry no doc comments, which `deny(missing_docs)`
// would reject; the module scopes the allowance to them.
#[allow(missing_docs)]
pub mod export {
    descry_abi::export_backend!(super::OnnxBackend);
}
