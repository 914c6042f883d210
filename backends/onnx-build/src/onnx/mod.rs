//! Writing a model's graph: [`write_model`] writes `model.onnx` (and, for large models,
//! `model.onnx.data`). The protobuf messages ([`proto`]) and the graph-building API
//! ([`builder`]) are the `descry-onnx-proto` crate's, re-exported here.

pub use descry_onnx_proto::{builder, proto};

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::ImportError;
pub use builder::GraphBuilder;
pub use proto::{DataType, Dim, Graph, Model, TensorData};

/// Models whose weights exceed this many bytes keep them in `model.onnx.data`: a protobuf
/// message cannot exceed 2 GiB, and the graph itself needs some room.
pub const INLINE_LIMIT: u64 = 1_900_000_000;

/// Initializers smaller than this stay inline even when the rest is external (constants).
const EXTERNAL_MIN_BYTES: u64 = 1024;

/// Name of the external-data file, relative to `model.onnx`.
pub const EXTERNAL_DATA_FILE: &str = "model.onnx.data";

/// What [`write_model`] wrote.
#[derive(Debug, Clone)]
pub struct WriteSummary {
    /// Hex SHA-256 over the little-endian bytes of every initializer, in graph order.
    pub weights_sha256: String,
    /// Whether the weights went to [`EXTERNAL_DATA_FILE`].
    pub external: bool,
    /// Bytes of initializer data.
    pub weight_bytes: u64,
}

/// Writes `model` as `dir/model.onnx`, moving large initializers to
/// `dir/model.onnx.data` when their total exceeds [`INLINE_LIMIT`] (or when
/// `force_external` is set).
pub fn write_model(
    mut model: Model,
    dir: &Path,
    force_external: bool,
) -> Result<WriteSummary, ImportError> {
    let weight_bytes: u64 = model.graph.initializers.iter().map(|t| t.raw_len()).sum();
    let external = force_external || weight_bytes > INLINE_LIMIT;
    let mut hasher = Sha256::new();
    if external {
        let data_path = dir.join(EXTERNAL_DATA_FILE);
        let f = File::create(&data_path).map_err(|e| ImportError::io(&data_path, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut offset = 0u64;
        for t in model.graph.initializers.iter_mut() {
            let len = t.raw_len();
            if len < EXTERNAL_MIN_BYTES {
                // Stays inline, but is hashed here so the digest has the same order in
                // both layouts.
                proto::write_raw(&t.data, &mut std::io::sink(), &mut |b| hasher.update(b))
                    .map_err(|e| ImportError::io(&data_path, e))?;
                continue;
            }
            // 4 KiB alignment lets ONNX Runtime memory-map each tensor.
            let pad = (4096 - offset % 4096) % 4096;
            w.write_all(&vec![0u8; pad as usize]).map_err(|e| ImportError::io(&data_path, e))?;
            offset += pad;
            proto::write_raw(&t.data, &mut w, &mut |b| hasher.update(b))
                .map_err(|e| ImportError::io(&data_path, e))?;
            t.data =
                TensorData::External { location: EXTERNAL_DATA_FILE.into(), offset, length: len };
            offset += len;
        }
        w.flush().map_err(|e| ImportError::io(&data_path, e))?;
        let f = w.into_inner().map_err(|e| ImportError::io(&data_path, e.into_error()))?;
        f.sync_all().map_err(|e| ImportError::io(&data_path, e))?;
    }
    let path = dir.join("model.onnx");
    let f = File::create(&path).map_err(|e| ImportError::io(&path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    // The digest covers every initializer's bytes in graph order, whatever the layout.
    if external {
        model.write_to(&mut w, &mut |_| {})
    } else {
        model.write_to(&mut w, &mut |b| hasher.update(b))
    }
    .map_err(|e| ImportError::io(&path, e))?;
    w.flush().map_err(|e| ImportError::io(&path, e))?;
    let f = w.into_inner().map_err(|e| ImportError::io(&path, e.into_error()))?;
    f.sync_all().map_err(|e| ImportError::io(&path, e))?;
    Ok(WriteSummary { weights_sha256: hex(&hasher.finalize()), external, weight_bytes })
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
