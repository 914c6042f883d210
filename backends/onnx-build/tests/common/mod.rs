//! Shared helpers for tests that use the real model files.
#![allow(dead_code)]

use std::path::PathBuf;

/// The descry home: `$DESCRY_HOME`, else `$HOME/.cache/descry`.
pub fn descry_home() -> PathBuf {
    match std::env::var_os("DESCRY_HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/descry"),
    }
}

/// The path of a real GGUF file; panics (fails the test) with instructions when missing.
pub fn gguf_path(file: &str) -> PathBuf {
    let p = descry_home().join("gguf").join(file);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/setup-models.sh (it downloads the test models into \
         $DESCRY_HOME, default ~/.cache/descry)",
        p.display()
    );
    p
}

pub const SMOLLM: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const GEMMA: &str = "gemma-3-270m-q4_k_m.gguf";

/// `/work/shared/reference/golden_logprobs.jsonl`, found relative to the workspace.
pub fn golden_path() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // backends/onnx-build -> workspace root -> ../shared
    let p = manifest.join("../../../shared/reference/golden_logprobs.jsonl");
    assert!(p.is_file(), "golden file {} not found", p.display());
    p
}
