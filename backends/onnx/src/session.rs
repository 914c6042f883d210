//! ONNX Runtime set-up: the process's one environment (loaded from the library the options
//! name) and session builders configured from [`EngineOptions`] (threads, graph
//! optimisation, device), shared by the model's session and the arithmetic-rate probe so
//! both run the same way.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;

use crate::engine::EngineError;
use crate::settings::{missing_library, Device, EngineOptions, GraphOptimization};

/// Wraps an ONNX Runtime error.
pub(crate) fn ort_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Ort(e.to_string())
}

/// The process's one ONNX Runtime environment and the library it was loaded from.
static ENVIRONMENT: Mutex<Option<(PathBuf, &'static Environment)>> = Mutex::new(None);

/// The process's ONNX Runtime environment, loading `library` the first time. ONNX Runtime
/// allows one library and one environment per process: another library later is an error.
fn environment(library: &Path) -> Result<&'static Environment, EngineError> {
    let mut guard = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((path, env)) = guard.as_ref() {
        if path != library {
            return Err(EngineError::Runtime {
                path: library.to_path_buf(),
                reason: format!(
                    "this process already uses {}; one ONNX Runtime library per process",
                    path.display()
                ),
            });
        }
        return Ok(*env);
    }
    if !library.is_file() {
        return Err(EngineError::Runtime {
            path: library.to_path_buf(),
            reason: missing_library(),
        });
    }
    let failed = |reason: String| EngineError::Runtime { path: library.to_path_buf(), reason };
    let env = ort::init_from(library)
        .map_err(|e| failed(e.to_string()))?
        .with_name("descry")
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let env: &'static Environment = Box::leak(Box::new(env));
    *guard = Some((library.to_path_buf(), env));
    Ok(env)
}

/// A session builder under `options`: its library's environment, intra-op threads, graph
/// optimisation level and execution provider (CUDA registered with `error_on_failure`:
/// never a silent CPU fallback).
pub fn builder(options: &EngineOptions) -> Result<SessionBuilder, EngineError> {
    let env = environment(&options.library_path())?;
    let mut builder = Session::builder(env).map_err(ort_err)?;
    if let Some(t) = options.threads {
        builder = builder.with_intra_threads(t).map_err(ort_err)?;
    }
    let level = match options.graph_optimization {
        GraphOptimization::Disable => GraphOptimizationLevel::Disable,
        GraphOptimization::Basic => GraphOptimizationLevel::Level1,
        GraphOptimization::Extended => GraphOptimizationLevel::Level2,
        GraphOptimization::All => GraphOptimizationLevel::All,
    };
    builder = builder.with_optimization_level(level).map_err(ort_err)?;
    match options.device {
        // The CPU provider keeps ONNX Runtime's arena: without it, peak memory was 1.4x
        // higher (allocator fragmentation across batch shapes).
        Device::Cpu => {}
        #[cfg(feature = "cuda")]
        Device::Cuda { device_id } => {
            builder = builder
                .with_execution_providers([ort::ep::CUDA::default()
                    .with_device_id(device_id)
                    .build()
                    .error_on_failure()])
                .map_err(|e| {
                    EngineError::Ort(format!(
                        "the CUDA execution provider could not be loaded for cuda:{device_id}: {e} \
                         (it needs the onnxruntime-gpu library with libonnxruntime_providers_cuda.so \
                         beside it, the CUDA 13 runtime, cuBLAS, cuDNN 9 and a GPU driver; descry \
                         never falls back to the CPU silently)"
                    ))
                })?;
        }
        #[cfg(not(feature = "cuda"))]
        Device::Cuda { .. } => {
            return Err(EngineError::Options(
                "device \"cuda\": this build of the onnx backend has no CUDA support; rebuild it \
                 with `--features cuda`"
                    .into(),
            ))
        }
    }
    Ok(builder)
}
