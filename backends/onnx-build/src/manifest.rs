//! `descry-model.json`, the manifest of a model folder (see `MODEL_FOLDER.md`).

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
