//! `descry-model.json`, the manifest of a model folder (see `MODEL_FOLDER.md`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ImportError;

/// The manifest file name; its presence marks a complete model folder.
pub const MANIFEST_FILE: &str = "descry-model.json";

/// The manifest format this crate writes.
pub const FORMAT_VERSION: u32 = 1;

/// Where a model folder's weights came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `gguf` or `hf`.
    pub kind: String,
    /// The path given to the import.
    pub path: String,
    /// Hex SHA-256 of the source file (GGUF) or of the checkpoint's files concatenated in
    /// name order (Hugging Face).
    pub sha256: String,
}

/// The contents of `descry-model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version ([`FORMAT_VERSION`]).
    pub format: u32,
    /// Graph family: `llama` or `gemma3`.
    pub architecture: String,
    /// Short model name, e.g. `smollm2-135m-instruct`.
    pub name: String,
    /// The source of the weights.
    pub source: SourceInfo,
    /// Hex SHA-256 over the little-endian bytes of every initializer of `model.onnx`
    /// (the dequantized f32 weights and the graph's small constants), in graph order.
    pub weights_sha256: String,
    /// Storage of the linear layers' weights: `f32`, or `int8` (8-bit blocks, int8
    /// arithmetic through ONNX Runtime's `MatMulNBits`); activations are always f32.
    pub dtype: String,
    /// Vocabulary size (last axis of `logprobs`).
    pub vocab_size: usize,
    /// Residual stream width.
    pub hidden_size: usize,
    /// Decoder layers (one `past.{i}.*` pair each).
    pub num_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (axis 1 of `past.*`).
    pub num_kv_heads: usize,
    /// Head width (axis 3 of `past.*`).
    pub head_dim: usize,
    /// Trained context length.
    pub context_length: usize,
    /// Sliding-window size of local layers, if any.
    pub sliding_window: Option<usize>,
    /// Parameters outside the token embedding and output projection.
    pub non_embedding_params: u64,
    /// Whether `chat_template.jinja` exists.
    pub has_chat_template: bool,
    /// Whether the tokenizer prepends BOS.
    pub add_bos_token: bool,
    /// The BOS token string, if any.
    pub bos_token: Option<String>,
    /// The EOS token string, if any.
    pub eos_token: Option<String>,
    /// Byte size of each file the backend loads (`model.onnx`, and `model.onnx.data` when
    /// the weights are external), so a missing or cut-off file is found when the folder is
    /// opened. Empty in manifests written before the field existed.
    #[serde(default)]
    pub engine_files: BTreeMap<String, u64>,
}

impl Manifest {
    /// Reads `dir/descry-model.json`.
    pub fn read(dir: &Path) -> Result<Manifest, ImportError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| ImportError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| ImportError::Format {
            path,
            format: "descry-model.json",
            reason: e.to_string(),
        })
    }

    /// Checks that every file of [`Manifest::engine_files`] is in `dir` with its recorded
    /// size (for an older manifest without sizes: that `model.onnx` exists). The error
    /// names the file, both sizes and the import that rebuilds the folder.
    pub fn check_engine_files(&self, dir: &Path) -> Result<(), ImportError> {
        let mut expected: Vec<(&str, Option<u64>)> =
            self.engine_files.iter().map(|(name, &size)| (name.as_str(), Some(size))).collect();
        if expected.is_empty() {
            expected.push(("model.onnx", None));
        }
        for (name, size) in expected {
            let path = dir.join(name);
            let found = match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => Some(m.len()),
                Ok(_) => None,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(ImportError::io(&path, e)),
            };
            let problem = match (size, found) {
                (_, None) => "is missing".to_string(),
                (Some(want), Some(got)) if want != got => format!(
                    "has {got} bytes, but {MANIFEST_FILE} records {want} (a cut-off copy or an \
                     interrupted write)"
                ),
                _ => continue,
            };
            return Err(ImportError::BrokenModelFolder {
                path,
                problem,
                rebuild: self.rebuild_command(dir),
            });
        }
        Ok(())
    }

    /// The `descry import` command that rebuilds the folder `dir` from its source.
    pub fn rebuild_command(&self, dir: &Path) -> String {
        let source = if self.source.path.is_empty() { "SOURCE" } else { self.source.path.as_str() };
        format!(
            "descry import {source} --out {} --name {} --force{}",
            dir.display(),
            self.name,
            if self.dtype == "f32" || self.dtype.is_empty() {
                String::new()
            } else {
                format!(" --dtype {}", self.dtype)
            }
        )
    }

    /// Writes `dir/descry-model.json` (pretty-printed, trailing newline).
    pub fn write(&self, dir: &Path) -> Result<(), ImportError> {
        let path = dir.join(MANIFEST_FILE);
        let mut text = serde_json::to_string_pretty(self).map_err(|e| ImportError::Format {
            path: path.clone(),
            format: "descry-model.json",
            reason: e.to_string(),
        })?;
        text.push('\n');
        std::fs::write(&path, text).map_err(|e| ImportError::io(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The backend's check of a folder's engine files: missing, cut off, or as recorded; a
    /// manifest without sizes checks only that `model.onnx` exists.
    #[test]
    fn engine_files_are_checked_by_size() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let mut m: Manifest = serde_json::from_str(
            r#"{"format": 1, "architecture": "llama", "name": "m",
            "source": {"kind": "gguf", "path": "/g/m.gguf", "sha256": ""}, "weights_sha256": "",
            "dtype": "int8", "vocab_size": 1, "hidden_size": 1, "num_layers": 1,
            "num_attention_heads": 1, "num_kv_heads": 1, "head_dim": 2, "context_length": 8,
            "sliding_window": null, "non_embedding_params": 1, "has_chat_template": false,
            "add_bos_token": false, "bos_token": null, "eos_token": null}"#,
        )
        .expect("a manifest without engine_files still reads");
        assert!(m.engine_files.is_empty());
        let err = m.check_engine_files(dir).unwrap_err().to_string();
        assert!(err.contains("model.onnx is missing"), "{err}");
        std::fs::write(dir.join("model.onnx"), [0u8; 10]).expect("write");
        m.check_engine_files(dir).expect("old manifest: presence only");
        m.engine_files.insert("model.onnx".into(), 12);
        let err = m.check_engine_files(dir).unwrap_err().to_string();
        assert!(err.contains("model.onnx has 10 bytes") && err.contains("records 12"), "{err}");
        assert!(
            err.contains("descry import /g/m.gguf --out") && err.contains("--force --dtype int8"),
            "{err}"
        );
        std::fs::write(dir.join("model.onnx"), [0u8; 12]).expect("write");
        m.check_engine_files(dir).expect("sizes as recorded");
    }
}
