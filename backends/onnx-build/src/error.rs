//! The one error type of the import: every variant names the file, tensor or key at fault.

use std::path::PathBuf;

/// Everything that can go wrong while reading a model source and building a model folder.
///
/// Variants carry the file path and the tensor or metadata key involved, so a message
/// tells the user what to fix without a backtrace.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// An I/O operation on `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The file ended before `what` was complete (a cut-off download, a missing part).
    #[error("{path}: file is truncated: it ends inside {what} (at byte offset {offset})")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read, e.g. `the header`, `metadata key "general.name"`,
        /// `tensor "blk.0.attn_q.weight"`.
        what: String,
        /// The byte offset at which more data was needed.
        offset: u64,
    },

    /// The file is not in the expected format (bad magic, unsupported version, nonsense
    /// values).
    #[error("{path}: invalid {format} file: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The format expected, e.g. `GGUF`, `safetensors`, `config.json`.
        format: &'static str,
        /// What is wrong, naming the key or tensor when there is one.
        reason: String,
    },

    /// A tensor is stored in a quantization type this importer cannot dequantize.
    #[error(
        "{path}: tensor \"{tensor}\" uses quantization type {type_name}, which is not supported \
         (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q4_K, Q5_K, Q6_K); \
         re-quantize the model to one of these"
    )]
    UnsupportedQuantization {
        /// The source file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// The type's name (e.g. `IQ2_XS`) or `type <id>` when unknown.
        type_name: String,
    },

    /// A tensor the model needs is not in the source.
    #[error("{path}: tensor \"{tensor}\" not found")]
    MissingTensor {
        /// The source file or folder.
        path: PathBuf,
        /// The tensor name that was looked up.
        tensor: String,
    },

    /// A metadata key (GGUF) or config field (Hugging Face) the model needs is missing.
    #[error("{path}: metadata key \"{key}\" not found")]
    MissingMetadata {
        /// The source file or folder.
        path: PathBuf,
        /// The key.
        key: String,
    },

    /// A metadata key exists but holds a value of the wrong type or an invalid value.
    #[error("{path}: metadata key \"{key}\": {reason}")]
    BadMetadata {
        /// The source file or folder.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong with it (e.g. `expected a string, found u32`).
        reason: String,
    },

    /// The source's architecture is not one this importer knows.
    #[error("{path}: architecture \"{arch}\" is not supported (supported: llama, gemma3)")]
    UnknownArchitecture {
        /// The architecture named by the source.
        arch: String,
        /// The source file or folder.
        path: PathBuf,
    },

    /// The tokenizer described by the source cannot be converted.
    #[error("{path}: cannot build the tokenizer: {reason}")]
    Tokenizer {
        /// The source file or folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A tensor has a shape other than the one the architecture requires.
    #[error("{path}: tensor \"{tensor}\" has shape {actual:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The source file or folder.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// The shape expected (row-major).
        expected: Vec<usize>,
        /// The shape found (row-major).
        actual: Vec<usize>,
    },

    /// The source's architecture is not one this importer knows; `supported` lists the
    /// names accepted for this kind of source (GGUF `general.architecture` or Hugging Face
    /// `model_type`).
    #[error("{path}: architecture \"{arch}\" is not supported (supported: {supported})")]
    UnsupportedArchitecture {
        /// The architecture named by the source.
        arch: String,
        /// The source file or folder.
        path: PathBuf,
        /// Comma-separated supported names.
        supported: String,
    },

    /// The output folder is a model folder (see `import::output_state`) and `--force` was
    /// not given.
    #[error("{path}: already exists ({what}); pass --force to replace it")]
    OutputExists {
        /// The output folder.
        path: PathBuf,
        /// What is there, e.g. `a model folder`.
        what: String,
    },

    /// The output path holds something an import never replaces, `--force` or not.
    #[error("{path}: not replaced, as it is not a model folder: {reason}")]
    NotAModelFolder {
        /// The output path.
        path: PathBuf,
        /// What is there and what to do.
        reason: String,
    },

    /// The manifest could not be written (the message names the file).
    #[error(transparent)]
    Folder(#[from] descry_model_folder::FolderError),

    /// The source is not a GGUF file or a Hugging Face checkpoint folder.
    #[error("{path}: {reason}")]
    UnrecognizedSource {
        /// The path given.
        path: PathBuf,
        /// What was expected.
        reason: String,
    },
}

impl ImportError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ImportError::Io { path: path.into(), source }
    }
}
