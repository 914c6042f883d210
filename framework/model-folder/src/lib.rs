//! descry-model-folder: the model folder that `descry import` writes and the host and every
//! backend read.
//!
//! A model folder holds a manifest ([`MANIFEST_FILE`], written last: its presence marks a
//! complete folder), the tokenizer ([`TOKENIZER_FILE`]), the chat template when the model
//! has one ([`CHAT_TEMPLATE_FILE`]), and the *artifacts* of one or more engines: the files a
//! backend loads, recorded in the manifest by engine name with their byte sizes. The host
//! owns text and tokens (tokenizer, template); a backend owns its artifacts. This crate
//! knows neither engine: it reads and writes the manifest, refuses a format it does not
//! know, and checks that an engine's artifacts are all there with their recorded sizes.
//!
//! The folder layout, and the artifacts each engine writes, are in `docs/model-folder.md`.
#![deny(missing_docs)]

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest file name; its presence marks a complete model folder.
pub const MANIFEST_FILE: &str = "descry-model.json";
/// The tokenizer (Hugging Face `tokenizers` format).
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// Special-token strings and the original chat template, as the source gave them.
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
/// The chat template, when the model has one (aligned models).
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";

/// The manifest format this crate reads and writes. Format 1 recorded one engine's files
/// without saying which engine; format 2 records artifacts by engine.
pub const FORMAT_VERSION: u32 = 2;

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

/// The files of one engine: file name (relative to the folder) → byte size.
pub type ArtifactFiles = BTreeMap<String, u64>;

/// The contents of `descry-model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version ([`FORMAT_VERSION`]).
    pub format: u32,
    /// Graph family, e.g. `llama` or `gemma3`.
    pub architecture: String,
    /// Short model name, e.g. `smollm2-135m-instruct`.
    pub name: String,
    /// The source of the weights.
    pub source: SourceInfo,
    /// Hex SHA-256 of the weights as the import wrote them: two folders with the same hash
    /// are the same model.
    pub weights_sha256: String,
    /// Storage of the linear layers' weights, e.g. `f32` or `int8`.
    pub dtype: String,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Residual stream width.
    pub hidden_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Head width.
    pub head_dim: usize,
    /// Trained context length.
    pub context_length: usize,
    /// Sliding-window size of local layers, if any.
    pub sliding_window: Option<usize>,
    /// Parameters outside the token embedding and output projection (for FLOP counts).
    pub non_embedding_params: u64,
    /// Whether [`CHAT_TEMPLATE_FILE`] exists.
    pub has_chat_template: bool,
    /// Whether the tokenizer prepends BOS.
    pub add_bos_token: bool,
    /// The BOS token string, if any.
    pub bos_token: Option<String>,
    /// The EOS token string, if any.
    pub eos_token: Option<String>,
    /// The engines' artifacts the folder holds: engine name (a backend's
    /// [artifact kind](ModelFolder::check_artifacts)) → its files with their byte sizes.
    pub artifacts: BTreeMap<String, ArtifactFiles>,
}

/// Why a model folder cannot be used. Every message names the folder or file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// The folder does not exist.
    #[error("model folder {0}: does not exist; create it with `descry import MODEL.gguf --out DIR` (scripts/setup-models.sh imports the demo models)")]
    Missing(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not a manifest.
    #[error("{path}: {reason} (an incomplete or damaged import? run `descry import` again)")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The manifest's format is not the one this build reads.
    #[error("{path}: manifest format {found}, but this descry reads format {FORMAT_VERSION} only; rebuild the folder with `{rebuild}`")]
    UnknownFormat {
        /// The manifest file.
        path: PathBuf,
        /// The format the file says.
        found: u64,
        /// The import that rebuilds the folder.
        rebuild: String,
    },
    /// The folder holds no artifacts of the engine asked for.
    #[error("model folder {dir} holds no `{engine}` artifacts (it holds: {holds}); rebuild it for that engine with `{rebuild}`")]
    NoArtifacts {
        /// The folder.
        dir: PathBuf,
        /// The engine asked for.
        engine: String,
        /// The engines it holds, comma-separated (or `none`).
        holds: String,
        /// The import that rebuilds the folder.
        rebuild: String,
    },
    /// An artifact is missing or not the size the manifest records.
    #[error("{path} {problem}; rebuild the folder with `{rebuild}`")]
    BrokenArtifact {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// The import that rebuilds the folder.
        rebuild: String,
    },
}

impl Manifest {
    /// Reads and checks `dir/descry-model.json`: a format other than [`FORMAT_VERSION`] is
    /// refused before any other field is trusted.
    pub fn read(dir: &Path) -> Result<Manifest, FolderError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| FolderError::Io { path: path.clone(), source })?;
        let bad = |reason: String| FolderError::Manifest { path: path.clone(), reason };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let found = value
            .get("format")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| bad("no `format` number".into()))?;
        if found != u64::from(FORMAT_VERSION) {
            return Err(FolderError::UnknownFormat {
                path: path.clone(),
                found,
                rebuild: rebuild_command_of(&value, dir),
            });
        }
        serde_json::from_value(value).map_err(|e| bad(e.to_string()))
    }

    /// Writes `dir/descry-model.json` (pretty-printed, trailing newline) through a
    /// temporary file and a rename, so a reader never sees half a manifest.
    pub fn write(&self, dir: &Path) -> Result<(), FolderError> {
        let path = dir.join(MANIFEST_FILE);
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| FolderError::Manifest { path: path.clone(), reason: e.to_string() })?;
        text.push('\n');
        let tmp = dir.join(format!("{MANIFEST_FILE}.tmp-{}", std::process::id()));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| FolderError::Io { path, source }
        };
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// The `descry import` command that rebuilds the folder `dir` from its source.
    pub fn rebuild_command(&self, dir: &Path) -> String {
        rebuild_command(&self.source.path, &self.name, &self.dtype, dir)
    }
}

fn rebuild_command(source: &str, name: &str, dtype: &str, dir: &Path) -> String {
    let source = if source.is_empty() { "SOURCE" } else { source };
    let name = if name.is_empty() { "NAME" } else { name };
    let dtype = if dtype == "f32" || dtype.is_empty() {
        String::new()
    } else {
        format!(" --dtype {dtype}")
    };
    format!("descry import {source} --out {} --name {name} --force{dtype}", dir.display())
}

/// The rebuild command from a manifest this build cannot parse (another format).
fn rebuild_command_of(value: &serde_json::Value, dir: &Path) -> String {
    let text = |v: Option<&serde_json::Value>| {
        v.and_then(serde_json::Value::as_str).unwrap_or_default().to_string()
    };
    rebuild_command(
        &text(value.get("source").and_then(|s| s.get("path"))),
        &text(value.get("name")),
        &text(value.get("dtype")),
        dir,
    )
}

/// An opened model folder: its path and its checked manifest.
#[derive(Debug, Clone)]
pub struct ModelFolder {
    /// The folder.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

impl ModelFolder {
    /// Opens a folder written by `descry import`: it exists and its manifest is one this
    /// build reads.
    pub fn open(dir: &Path) -> Result<ModelFolder, FolderError> {
        if !dir.is_dir() {
            return Err(FolderError::Missing(dir.to_path_buf()));
        }
        Ok(ModelFolder { dir: dir.to_path_buf(), manifest: Manifest::read(dir)? })
    }

    /// The path of a file in the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The tokenizer file.
    pub fn tokenizer_path(&self) -> PathBuf {
        self.file(TOKENIZER_FILE)
    }

    /// The chat template file, when the manifest says the model has one.
    pub fn chat_template_path(&self) -> Option<PathBuf> {
        self.manifest.has_chat_template.then(|| self.file(CHAT_TEMPLATE_FILE))
    }

    /// The `descry import` command that rebuilds this folder.
    pub fn rebuild_command(&self) -> String {
        self.manifest.rebuild_command(&self.dir)
    }

    /// Checks cheaply (file sizes only) that the folder holds `engine`'s artifacts, each
    /// with the size the manifest records, so a missing or cut-off file is found when a
    /// study is prepared, before any model is scored. Returns the artifact files.
    pub fn check_artifacts(&self, engine: &str) -> Result<&ArtifactFiles, FolderError> {
        let files = match self.manifest.artifacts.get(engine) {
            Some(files) if !files.is_empty() => files,
            _ => {
                let holds: Vec<&str> = self.manifest.artifacts.keys().map(String::as_str).collect();
                return Err(FolderError::NoArtifacts {
                    dir: self.dir.clone(),
                    engine: engine.to_string(),
                    holds: if holds.is_empty() { "none".into() } else { holds.join(", ") },
                    rebuild: self.rebuild_command(),
                });
            }
        };
        for (name, &want) in files {
            let path = self.file(name);
            let found = match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => Some(m.len()),
                Ok(_) => None,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => return Err(FolderError::Io { path, source }),
            };
            let problem = match found {
                None => "is missing".to_string(),
                Some(got) if got != want => format!(
                    "has {got} bytes, but {MANIFEST_FILE} records {want} (a cut-off copy or an \
                     interrupted write)"
                ),
                Some(_) => continue,
            };
            return Err(FolderError::BrokenArtifact {
                path,
                problem,
                rebuild: self.rebuild_command(),
            });
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests;
