//! descry-onnx-proto: the few ONNX protobuf messages descry writes ([`proto`], encoded by
//! hand: no `protoc`, weights streamed to the writer) and a small graph-building API over
//! them ([`builder`]).
//!
//! Its own crate so that the importer (`descry-onnx-build`, which builds the models' graphs)
//! and the ONNX backend (which builds the one-MatMul graph of its arithmetic-rate probe)
//! share it, and the backend does not link the importer.
#![deny(missing_docs)]

pub mod builder;
pub mod proto;

pub use builder::GraphBuilder;
pub use proto::{DataType, Dim, Graph, Model, TensorData};
