//! A model folder as the host sees it: the checked manifest (from `descry-model-folder`),
//! the tokenizer and the chat template. The host owns text and tokens so that every backend
//! shares them; a backend owns its artifacts (see `docs/model-folder.md`).

use crate::prompt::{render_plain, ChatTemplate, PromptFormat, TemplateError};
use descry_abi::types::Prompt;
pub use descry_model_folder::{FolderError, Manifest, CHAT_TEMPLATE_FILE, MANIFEST_FILE};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// Why a model folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The folder, its manifest or an artifact is missing, unreadable or of another format.
    #[error(transparent)]
    Manifest(#[from] FolderError),
    /// A file in the folder is missing or unreadable.
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
fn load_chat_template(
    folder: &descry_model_folder::ModelFolder,
) -> Result<Option<ChatTemplate>, ModelError> {
    let Some(path) = folder.chat_template_path() else { return Ok(None) };
    let manifest = &folder.manifest;
    let source = std::fs::read_to_string(&path).map_err(|e| ModelError::Folder {
        dir: folder.dir.clone(),
        reason: format!(
            "{CHAT_TEMPLATE_FILE}: {e} (the manifest says the model has a chat template; run \
             `descry import` again)"
        ),
    })?;
    ChatTemplate::new(&source, manifest.bos_token.as_deref(), manifest.eos_token.as_deref())
        .map(Some)
        .map_err(|reason| ModelError::Template { model: manifest.name.clone(), path, reason })
}

/// An opened model folder.
pub struct ModelFolder {
    /// The folder.
    pub dir: PathBuf,
    /// Its manifest, of a format this build reads.
    pub manifest: Manifest,
    folder: descry_model_folder::ModelFolder,
    tokenizer: Tokenizer,
    chat_template: Option<ChatTemplate>,
}

impl ModelFolder {
    /// Opens a folder written by `descry import`: manifest (format checked), tokenizer and
    /// chat template. Which engine artifacts it must hold is the backend's to say
    /// ([`ModelFolder::check_artifacts`]).
    pub fn open(dir: &Path) -> Result<ModelFolder, ModelError> {
        let folder = descry_model_folder::ModelFolder::open(dir)?;
        let tokenizer =
            Tokenizer::from_file(folder.tokenizer_path()).map_err(|e| ModelError::Folder {
                dir: dir.to_path_buf(),
                reason: format!("{}: {e}", descry_model_folder::TOKENIZER_FILE),
            })?;
        let chat_template = load_chat_template(&folder)?;
        Ok(ModelFolder {
            dir: dir.to_path_buf(),
            manifest: folder.manifest.clone(),
            folder,
            tokenizer,
            chat_template,
        })
    }

    /// Checks, by file sizes, that the folder holds the artifacts of an engine (a
    /// backend's [`BackendInfo::artifacts`](descry_abi::types::BackendInfo)).
    pub fn check_artifacts(&self, engine: &str) -> Result<(), ModelError> {
        self.folder.check_artifacts(engine).map(|_| ()).map_err(ModelError::from)
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
                    path: self.dir.join(CHAT_TEMPLATE_FILE),
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
        self.tokenizer.encode(text, true).map(|e| e.get_ids().to_vec()).map_err(|e| {
            ModelError::Tokenize { model: self.manifest.name.clone(), reason: e.to_string() }
        })
    }

    /// Token ids of a text without special tokens (a continuation, such as a candidate).
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.tokenizer.encode(text, false).map(|e| e.get_ids().to_vec()).map_err(|e| {
            ModelError::Tokenize { model: self.manifest.name.clone(), reason: e.to_string() }
        })
    }

    /// The token id that starts each surface form when it follows the answer prefix: the
    /// first token of the form encoded alone, without special tokens. Duplicates removed,
    /// order kept.
    pub fn first_tokens(&self, surface_forms: &[String]) -> Result<Vec<u32>, ModelError> {
        let mut ids = Vec::new();
        for form in surface_forms {
            let encoding = self.tokenizer.encode(form.as_str(), false).map_err(|e| {
                ModelError::Tokenize { model: self.manifest.name.clone(), reason: e.to_string() }
            })?;
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
