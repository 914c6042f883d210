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
fn load_chat_template(
    dir: &Path,
    manifest: &ModelManifest,
) -> Result<Option<ChatTemplate>, ModelError> {
    if !manifest.has_chat_template {
        return Ok(None);
    }
    let path = dir.join(TEMPLATE_NAME);
    let template_err = |reason: TemplateError| ModelError::Template {
        model: manifest.name.clone(),
        path: path.clone(),
        reason,
    };
    let source = std::fs::read_to_string(&path).map_err(|e| ModelError::Folder {
        dir: dir.to_path_buf(),
        reason: format!("{TEMPLATE_NAME}: {e} (the manifest says the model has a chat template; run `descry import` again)"),
    })?;
    ChatTemplate::new(&source, manifest.bos_token.as_deref(), manifest.eos_token.as_deref())
        .map(Some)
        .map_err(template_err)
}

/// The manifest's record of the files the backend loads (`engine_files`: name → byte
/// size, as the importer writes it; see `MODEL_FOLDER.md`) and the import that rebuilds
/// the folder. Kept apart from [`ModelManifest`]: only the folder check reads them.
#[derive(Deserialize)]
struct EngineFiles {
    #[serde(default)]
    engine_files: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    source: Option<ImportSource>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    dtype: Option<String>,
}

#[derive(Deserialize)]
struct ImportSource {
    #[serde(default)]
    path: String,
}

/// Checks, cheaply (file sizes only), that every file the backend will load is there with
/// the size the manifest records, so a missing or cut-off graph is found when the study is
/// prepared, before any model is scored. A manifest without sizes (written before they
/// were recorded) is checked for `model.onnx` only. The error names the file, both sizes
/// and the import that rebuilds the folder.
fn check_engine_files(dir: &Path, manifest_text: &str) -> Result<(), String> {
    let record: EngineFiles =
        serde_json::from_str(manifest_text).map_err(|e| format!("{MANIFEST_FILE}: {e}"))?;
    let mut expected: Vec<(&str, Option<u64>)> =
        record.engine_files.iter().map(|(name, &size)| (name.as_str(), Some(size))).collect();
    if expected.is_empty() {
        expected.push(("model.onnx", None));
    }
    let source = record
        .source
        .as_ref()
        .map(|s| s.path.as_str())
        .filter(|p| !p.is_empty())
        .unwrap_or("SOURCE");
    let dtype = match record.dtype.as_deref() {
        Some(d) if d != "f32" && !d.is_empty() => format!(" --dtype {d}"),
        _ => String::new(),
    };
    let rebuild = format!(
        "descry import {source} --out {} --name {} --force{dtype}",
        dir.display(),
        record.name
    );
    for (name, size) in expected {
        let found = match std::fs::metadata(dir.join(name)) {
            Ok(m) if m.is_file() => Some(m.len()),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{name}: {e}")),
        };
        let problem = match (size, found) {
            (_, None) => "is missing".to_string(),
            (Some(want), Some(got)) if want != got => {
                format!("has {got} bytes, but {MANIFEST_FILE} records {want} (a cut-off copy or an interrupted write)")
            }
            _ => continue,
        };
        return Err(format!("{name} {problem}; rebuild the folder with `{rebuild}`"));
    }
    Ok(())
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
                "does not exist; create it with `descry import MODEL.gguf --out DIR` (scripts/setup-models.sh imports the demo models)".into(),
            ));
        }
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            folder_err(format!(
                "{MANIFEST_FILE}: {e} (an incomplete import? run `descry import` again)"
            ))
        })?;
        let manifest: ModelManifest =
            serde_json::from_str(&text).map_err(|e| folder_err(format!("{MANIFEST_FILE}: {e}")))?;
        check_engine_files(dir, &text).map_err(folder_err)?;
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

#[cfg(test)]
mod folder_check_tests {
    use super::*;

    fn manifest(engine_files: &str) -> String {
        format!(
            r#"{{"architecture": "llama", "name": "m", "weights_sha256": "00", "vocab_size": 10,
                "num_layers": 1, "hidden_size": 4, "non_embedding_params": 1,
                "has_chat_template": false, "source": {{"kind": "gguf", "path": "/g/m.gguf"}}{engine_files}}}"#
        )
    }

    fn open_err(dir: &Path) -> String {
        match ModelFolder::open(dir) {
            Ok(_) => panic!("{} opened", dir.display()),
            Err(e) => e.to_string(),
        }
    }

    /// A missing or cut-off graph fails the folder check, naming folder, file, both sizes
    /// and the import that rebuilds it; the right size passes.
    #[test]
    fn a_missing_or_truncated_graph_fails_the_folder_check() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("m");
        std::fs::create_dir(&dir).expect("mkdir");
        let text = manifest(r#", "engine_files": {"model.onnx": 100, "model.onnx.data": 7}"#);
        std::fs::write(dir.join(MANIFEST_FILE), &text).expect("write");
        let err = open_err(&dir);
        assert!(
            err.contains(&dir.display().to_string()) && err.contains("model.onnx is missing"),
            "{err}"
        );
        assert!(err.contains("descry import /g/m.gguf --out") && err.contains("--force"), "{err}");
        std::fs::write(dir.join("model.onnx"), [0u8; 50]).expect("write");
        let err = open_err(&dir);
        assert!(err.contains("model.onnx has 50 bytes") && err.contains("records 100"), "{err}");
        std::fs::write(dir.join("model.onnx"), [0u8; 100]).expect("write");
        let err = open_err(&dir);
        assert!(err.contains("model.onnx.data is missing"), "{err}");
        std::fs::write(dir.join("model.onnx.data"), [0u8; 7]).expect("write");
        assert_eq!(check_engine_files(&dir, &text), Ok(()));
        // A manifest from before the sizes were recorded: only the graph's presence.
        let old = manifest("");
        assert!(check_engine_files(&dir, &old).is_ok());
        std::fs::remove_file(dir.join("model.onnx")).expect("rm");
        std::fs::write(dir.join(MANIFEST_FILE), &old).expect("write");
        assert!(open_err(&dir).contains("model.onnx is missing"));
    }
}
