//! descry-onnx-build: turns a GGUF file or a Hugging Face checkpoint into a descry model
//! folder (see `MODEL_FOLDER.md`): a scoring-ready ONNX graph, `tokenizer.json`, the chat
//! template and a manifest. No Python, no network.
#![deny(missing_docs)]

pub mod arch;
pub mod dequant;
pub mod error;
pub mod gguf;
pub mod hf;
pub mod import;
pub mod manifest;
pub mod onnx;
pub mod tokenizer;

pub use error::ImportError;
pub use gguf::{GgufFile, MetaValue, Tensor, TensorInfo};
pub use import::{import, ImportOptions};
pub use manifest::Manifest;
