//! descry-onnx-build: turns a GGUF file or a Hugging Face checkpoint into a descry model
//! folder (see `docs/model-folder.md`): `tokenizer.json`, the chat template, the `onnx`
//! artifacts (a scoring-ready ONNX graph) and the manifest ([`Manifest`], owned by
//! `descry-model-folder`). No Python, no network. The `descry-import` binary is its command
//! line (`descry import` runs it).
#![deny(missing_docs)]

pub mod arch;
pub mod dequant;
pub mod error;
pub mod gguf;
pub mod hf;
pub mod import;
pub mod onnx;
pub mod tokenizer;

pub use descry_model_folder::Manifest;
pub use error::ImportError;
pub use gguf::{GgufFile, MetaValue, Tensor, TensorInfo};
pub use import::{import, ImportOptions};
