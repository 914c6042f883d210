//! Model architectures: [`ModelConfig`] (hyper-parameters from GGUF metadata or a Hugging
//! Face `config.json`), [`WeightSource`] (weights under canonical names, source conventions
//! undone) and [`build_graph`] (the ONNX scoring graph for the llama family and Gemma 3).

pub mod config;
pub mod graph;
pub mod quant;
pub mod weights;

pub use config::{Architecture, ModelConfig, RopeScaling};
pub use graph::{build_graph, BuiltGraph};
pub use quant::WeightFormat;
pub use weights::{GgufWeights, HfWeights, WeightSource};
