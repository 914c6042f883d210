//! descry-backend-onnx: the ONNX Runtime inference backend.
//!
//! It loads a model folder written by `descry import` (see
//! `backends/onnx-build/MODEL_FOLDER.md`) and scores token sequences: for each queried
//! position, the log-probabilities of the candidate tokens, the log-sum-exp of the
//! distribution and optionally its top-k tokens. The work is in [`engine::Engine`]
//! (token-budget batching, shared-prefix reuse through past key/values); this crate also
//! exports it as a descry backend plugin named `onnx`.
//!
//! Model spec keys (JSON, given to `load`):
//! - `path` (required): the model folder;
//! - `device`: `"cpu"` (default), `"cuda"` or `"cuda:N"` (needs the `cuda` feature and the
//!   `onnxruntime-gpu` library; an unavailable CUDA provider is an error, never a silent
//!   CPU fallback);
//! - `threads`: intra-op threads (default: one per core);
//! - `token_budget`: most padded tokens per forward pass (default 4096);
//! - `min_shared_prefix`: shortest prefix worth sharing between sequences (default 32);
//! - `prefix_cache_tokens`: key/values of shared prefixes kept from one scoring call to the
//!   next, in tokens (default: the token budget; 0 keeps none);
//! - `ort_dylib`: the ONNX Runtime library (default `ORT_DYLIB_PATH`, else
//!   `$DESCRY_HOME/onnxruntime/libonnxruntime.so.1.31.1`). The host fills it from the
//!   study's `backend.ort_library`; messages to users name that key, not this one.
#![deny(missing_docs)]

pub mod cache;
pub mod engine;
pub mod plan;

use std::path::PathBuf;

use descry_abi::backend::{BackendPlugin, ModelPlugin};
use descry_abi::types::{PluginInfo, ScoreRequest, ScoreResult};
use descry_abi::PluginError;
pub use engine::{Device, Engine, EngineError, EngineOptions};
use serde_json::Value;

/// The keys a model spec may have.
pub const SPEC_KEYS: &[&str] = &[
    "path",
    "device",
    "threads",
    "token_budget",
    "min_shared_prefix",
    "prefix_cache_tokens",
    "ort_dylib",
    "graph_optimization",
];

/// Parses a model spec (see the crate docs) into a folder and options.
pub fn parse_spec(spec_json: &str) -> Result<(PathBuf, EngineOptions), EngineError> {
    let bad = |m: String| EngineError::Options(format!("onnx backend model spec: {m}"));
    let v: Value =
        serde_json::from_str(spec_json).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| bad("expected a JSON object".into()))?;
    if let Some(k) = obj.keys().find(|k| !SPEC_KEYS.contains(&k.as_str())) {
        return Err(bad(format!("unknown key \"{k}\" (known: {})", SPEC_KEYS.join(", "))));
    }
    let path = obj.get("path").and_then(Value::as_str).ok_or_else(|| {
        bad("\"path\" (the model folder) is required and must be a string".into())
    })?;
    let mut o = EngineOptions::default();
    let uint = |k: &str| -> Result<Option<usize>, EngineError> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => x
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| bad(format!("\"{k}\" must be a non-negative integer"))),
        }
    };
    if let Some(d) = obj.get("device").filter(|d| !d.is_null()) {
        let d = d.as_str().ok_or_else(|| bad("\"device\" must be a string".into()))?;
        o.device = match d {
            "cpu" => Device::Cpu,
            "cuda" => Device::Cuda { device_id: 0 },
            other => match other.strip_prefix("cuda:").and_then(|n| n.parse::<i32>().ok()) {
                Some(device_id) if device_id >= 0 => Device::Cuda { device_id },
                _ => {
                    return Err(bad(format!(
                        "\"device\": unknown device \"{other}\" (cpu, cuda, cuda:N)"
                    )))
                }
            },
        };
    }
    o.threads = uint("threads")?.filter(|&t| t > 0);
    if let Some(b) = uint("token_budget")? {
        o.token_budget = b;
    }
    if let Some(m) = uint("min_shared_prefix")? {
        o.min_shared_prefix = m;
    }
    o.prefix_cache_tokens = uint("prefix_cache_tokens")?;
    if let Some(g) = obj.get("graph_optimization").filter(|g| !g.is_null()) {
        o.graph_optimization = g
            .as_str()
            .ok_or_else(|| bad("\"graph_optimization\" must be a string".into()))?
            .to_string();
    }
    if let Some(p) = obj.get("ort_dylib").filter(|p| !p.is_null()) {
        o.ort_dylib = Some(PathBuf::from(
            p.as_str().ok_or_else(|| bad("\"ort_dylib\" must be a string".into()))?,
        ));
    }
    Ok((PathBuf::from(path), o))
}

/// The backend plugin: `load` opens a model folder as an [`Engine`].
#[derive(Debug, Default, Clone, Copy)]
pub struct OnnxBackend;

impl BackendPlugin for OnnxBackend {
    type Model = Engine;

    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "onnx".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description:
                "ONNX Runtime backend (CPU; CUDA with the cuda feature) for descry model folders"
                    .into(),
        }
    }

    fn load(&self, spec_json: &str) -> Result<Engine, PluginError> {
        let (dir, options) = parse_spec(spec_json)?;
        Ok(Engine::load(&dir, &options)?)
    }
}

impl ModelPlugin for Engine {
    fn describe(&self) -> String {
        let m = self.manifest();
        let o = self.options();
        let device = match o.device {
            Device::Cpu => "cpu".to_string(),
            Device::Cuda { device_id } => format!("cuda:{device_id}"),
        };
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
            "device": device,
            "threads": o.threads,
            "token_budget": o.token_budget,
            "min_shared_prefix": o.min_shared_prefix,
            "prefix_cache_tokens": o.prefix_cache_tokens.unwrap_or(o.token_budget),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parsing() {
        let (p, o) =
            parse_spec(r#"{"path": "/m", "device": "cuda:1", "threads": 2, "token_budget": 512}"#)
                .unwrap();
        assert_eq!(p, PathBuf::from("/m"));
        assert_eq!(o.device, Device::Cuda { device_id: 1 });
        assert_eq!((o.threads, o.token_budget, o.min_shared_prefix), (Some(2), 512, 32));
        let e = parse_spec(r#"{"path": "/m", "batch": 3}"#).unwrap_err().to_string();
        assert!(e.contains("unknown key \"batch\""), "{e}");
        assert!(parse_spec(r#"{"device": "cpu"}"#).unwrap_err().to_string().contains("\"path\""));
        assert!(parse_spec(r#"{"path": "/m", "device": "tpu"}"#).is_err());
    }
}
