//! descry-onnx-build: turns a GGUF file or a Hugging Face checkpoint into a descry model
//! folder (see `MODEL_FOLDER.md`): a scoring-ready ONNX graph, `tokenizer.json`, the chat
//! template and a manifest. No Python, no network.
#![deny(missing_docs)]
