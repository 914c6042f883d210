//! A model folder as the host sees it: manifest, tokenizer and chat template. The host owns
//! text and tokens so that every backend shares them (see `MODEL_FOLDER.md` in
//! backends/onnx-build for the folder layout).

use crate::prompt::{render_plain, ChatTemplate, PromptFormat, TemplateError, TEMPLATE_NAME};
use descry_abi::types::Prompt;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// The manifest file whose presence marks a complete model folder.
pub const MANIFEST_FILE: &str = "descry-model.json";

/// The fields of `descry-model.json` the host uses (the file has more).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelManifest {
    /// Graph family.
    pub architecture: String,
    /// Model name.
    pub name: String,
    /// Content hash of the weights: two folders with the same hash are the same model.
    pub weights_sha256: String,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Residual width.
    pub hidden_size: usize,
    /// Head width.
    #[serde(default)]
    pub head_dim: usize,
    /// Query heads.
    #[serde(default)]
    pub num_attention_heads: usize,
    /// Parameters outside the embeddings (for FLOP counts).
    pub non_embedding_params: u64,
    /// Whether the folder has `chat_template.jinja`.
    pub has_chat_template: bool,
    /// BOS token string.
    #[serde(default)]
    pub bos_token: Option<String>,
    /// EOS token string.
    #[serde(default)]
    pub eos_token: Option<String>,
}

/// Why a model folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The folder or a file in it is missing or unreadable.
    #[error("model folder {dir}: {reason}")]
    Folder {
        /// The folder.
        dir: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The tokenizer failed on a text.
    #[error("tokenizer of {model}: {reason}")]
    Tokenize {
        /// Model name.
        model: String,
        /// Why.
        reason: String,
    },
    /// The chat template failed. The reason is part of the message and not a `source`,
    /// so that printing the error chain does not repeat it.
    #[error("model {model}: chat template {path}: {reason}")]
    Template {
        /// Model name.
        model: String,
        /// The template file.
        path: PathBuf,
        /// What is wrong with it.
        reason: TemplateError,
    },
}

/// The folder's chat template, compiled, when its manifest says it has one. A missing,
/// unreadable, empty or invalid `chat_template.jinja` is an error naming the file.
fn load_chat_template(dir: &Path, manifest: &ModelManifest) -> Result<Option<ChatTemplate>, ModelError> {
    if !manifest.has_chat_template {
        return Ok(None);
    }
    let path = dir.join(TEMPLATE_NAME);
    let template_err = |reason: TemplateError| ModelError::Template { model: manifest.name.clone(), path: path.clone(), reason };
    let source = std::fs::read_to_string(&path).map_err(|e| ModelError::Folder {
        dir: dir.to_path_buf(),
        reason: format!("{TEMPLATE_NAME}: {e} (the manifest says the model has a chat template; run `descry import` again)"),
    })?;
    ChatTemplate::new(&source, manifest.bos_token.as_deref(), manifest.eos_token.as_deref()).map(Some).map_err(template_err)
}

/// An opened model folder.
pub struct ModelFolder {
    /// The folder.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: ModelManifest,
    tokenizer: Tokenizer,
    chat_template: Option<ChatTemplate>,
}

impl ModelFolder {
    /// Opens a folder written by `descry import`.
    pub fn open(dir: &Path) -> Result<ModelFolder, ModelError> {
        let folder_err = |reason: String| ModelError::Folder { dir: dir.to_path_buf(), reason };
        if !dir.is_dir() {
            return Err(folder_err(
                "does not exist; create it with `descry import MODEL.gguf --out DIR` (scripts/setup.sh imports the demo models)".into(),
            ));
        }
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            folder_err(format!("{MANIFEST_FILE}: {e} (an incomplete import? run `descry import` again)"))
        })?;
        let manifest: ModelManifest =
            serde_json::from_str(&text).map_err(|e| folder_err(format!("{MANIFEST_FILE}: {e}")))?;
        let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| folder_err(format!("tokenizer.json: {e}")))?;
        let chat_template = load_chat_template(dir, &manifest)?;
        Ok(ModelFolder { dir: dir.to_path_buf(), manifest, tokenizer, chat_template })
    }

    /// Whether the model has a chat template (aligned models do).
    pub fn has_chat_template(&self) -> bool {
        self.chat_template.is_some()
    }

    /// Renders a prompt in a format. `Chat` needs a chat template.
    pub fn render(&self, prompt: &Prompt, format: PromptFormat) -> Result<String, ModelError> {
        match format {
            PromptFormat::Plain => Ok(render_plain(prompt)),
            PromptFormat::Chat => match &self.chat_template {
                Some(t) => t.render(prompt).map_err(|reason| ModelError::Template {
                    model: self.manifest.name.clone(),
                    path: self.dir.join(TEMPLATE_NAME),
                    reason,
                }),
                None => Err(ModelError::Folder {
                    dir: self.dir.clone(),
                    reason: "has no chat template, so it cannot be prompted in the chat format; use format = \"plain\"".into(),
                }),
            },
        }
    }

    /// Token ids of a full prompt, with the model's default special tokens (gemma's BOS).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.tokenizer
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Tokenize { model: self.manifest.name.clone(), reason: e.to_string() })
    }

    /// Token ids of a text without special tokens (a continuation, such as a candidate).
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Tokenize { model: self.manifest.name.clone(), reason: e.to_string() })
    }

    /// The token id that starts each surface form when it follows the answer prefix: the
    /// first token of the form encoded alone, without special tokens. Duplicates removed,
    /// order kept.
    pub fn first_tokens(&self, surface_forms: &[String]) -> Result<Vec<u32>, ModelError> {
        let mut ids = Vec::new();
        for form in surface_forms {
            let encoding = self
                .tokenizer
                .encode(form.as_str(), false)
                .map_err(|e| ModelError::Tokenize { model: self.manifest.name.clone(), reason: e.to_string() })?;
            if let Some(&id) = encoding.get_ids().first() {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    /// The text of a token id (for reports).
    pub fn token_text(&self, id: u32) -> String {
        self.tokenizer.id_to_token(id).unwrap_or_default()
    }
}
