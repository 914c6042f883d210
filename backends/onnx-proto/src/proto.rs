//! The few ONNX protobuf messages descry writes, encoded by hand.
//!
//! Why by hand: the ONNX schema is stable and we only *write* eight message types, so a
//! ~300-line encoder avoids `protoc` and build-time code generation (neither is available
//! offline in every build environment), and lets the multi-hundred-megabyte weight tensors
//! stream straight to the file instead of being copied into an in-memory message first.
//!
//! Field numbers follow `onnx/onnx.proto` (proto2). Repeated scalars are written unpacked,
//! which every protobuf parser accepts for proto2 fields.

use std::io::{self, Write};

/// Protobuf wire types used here.
const VARINT: u32 = 0;
const FIXED32: u32 = 5;
const LEN: u32 = 2;

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_tag(buf: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(buf, u64::from((field << 3) | wire));
}

fn put_i64(buf: &mut Vec<u8>, field: u32, v: i64) {
    put_tag(buf, field, VARINT);
    // Negative int64 values are encoded as ten-byte two's-complement varints.
    put_varint(buf, v as u64);
}

fn put_f32(buf: &mut Vec<u8>, field: u32, v: f32) {
    put_tag(buf, field, FIXED32);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(buf, field, LEN);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

fn put_str(buf: &mut Vec<u8>, field: u32, s: &str) {
    put_bytes(buf, field, s.as_bytes());
}

fn put_msg(buf: &mut Vec<u8>, field: u32, msg: &[u8]) {
    put_bytes(buf, field, msg);
}

/// Length of a length-delimited field (tag + length prefix + payload) with `payload` bytes.
fn len_field_size(field: u32, payload: u64) -> u64 {
    varint_len(u64::from(field << 3)) as u64 + varint_len(payload) as u64 + payload
}

/// ONNX `TensorProto.DataType` values used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// 32-bit float.
    Float,
    /// 64-bit signed integer.
    Int64,
    /// 8-bit unsigned integer (quantized weights).
    Uint8,
    /// Boolean.
    Bool,
}

impl DataType {
    fn code(self) -> i64 {
        match self {
            DataType::Float => 1,
            DataType::Int64 => 7,
            DataType::Uint8 => 2,
            DataType::Bool => 9,
        }
    }
}

/// Where an initializer's values are.
#[derive(Debug, Clone)]
pub enum TensorData {
    /// `f32` values, written as little-endian `raw_data`.
    F32(Vec<f32>),
    /// `i64` values, written as little-endian `raw_data`.
    I64(Vec<i64>),
    /// `u8` values (quantized weights), written as `raw_data`.
    U8(Vec<u8>),
    /// Values stored in a separate file next to the model (ONNX external data).
    External {
        /// File name relative to the model file.
        location: String,
        /// Byte offset in that file.
        offset: u64,
        /// Byte length.
        length: u64,
    },
}

/// An ONNX `TensorProto` (an initializer or a constant attribute).
#[derive(Debug, Clone)]
pub struct TensorProto {
    /// Tensor name (unique in the graph for initializers).
    pub name: String,
    /// Dimensions, row-major.
    pub dims: Vec<i64>,
    /// Element type.
    pub data_type: DataType,
    /// The values or where to find them.
    pub data: TensorData,
}

impl TensorProto {
    /// Number of bytes of raw element data (0 for external tensors).
    pub fn raw_len(&self) -> u64 {
        match &self.data {
            TensorData::F32(v) => 4 * v.len() as u64,
            TensorData::I64(v) => 8 * v.len() as u64,
            TensorData::U8(v) => v.len() as u64,
            TensorData::External { .. } => 0,
        }
    }

    /// Everything but `raw_data`: dims, type, name, external-data entries.
    fn header(&self) -> Vec<u8> {
        let mut b = Vec::new();
        for &d in &self.dims {
            put_i64(&mut b, 1, d);
        }
        put_i64(&mut b, 2, self.data_type.code());
        put_str(&mut b, 8, &self.name);
        if let TensorData::External { location, offset, length } = &self.data {
            for (k, v) in [
                ("location", location.clone()),
                ("offset", offset.to_string()),
                ("length", length.to_string()),
            ] {
                let mut e = Vec::new();
                put_str(&mut e, 1, k);
                put_str(&mut e, 2, &v);
                put_msg(&mut b, 13, &e);
            }
            put_i64(&mut b, 14, 1); // data_location = EXTERNAL
        }
        b
    }

    /// Size of the encoded message (without its own tag/length prefix).
    pub fn encoded_len(&self) -> u64 {
        let mut n = self.header().len() as u64;
        if !matches!(self.data, TensorData::External { .. }) {
            n += len_field_size(9, self.raw_len());
        }
        n
    }

    /// Writes the encoded message (without its own prefix), streaming the raw data.
    pub fn write_to(&self, w: &mut dyn Write, hasher: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        w.write_all(&self.header())?;
        if matches!(self.data, TensorData::External { .. }) {
            return Ok(());
        }
        let mut pre = Vec::new();
        put_tag(&mut pre, 9, LEN);
        put_varint(&mut pre, self.raw_len());
        w.write_all(&pre)?;
        write_raw(&self.data, w, hasher)
    }
}

/// Writes the little-endian bytes of in-memory tensor data in bounded chunks, feeding
/// them to `hasher` as well.
pub fn write_raw(
    data: &TensorData,
    w: &mut dyn Write,
    hasher: &mut dyn FnMut(&[u8]),
) -> io::Result<()> {
    const CHUNK: usize = 1 << 14;
    let mut buf = Vec::with_capacity(CHUNK * 8);
    match data {
        TensorData::F32(v) => {
            for c in v.chunks(CHUNK) {
                buf.clear();
                c.iter().for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
                hasher(&buf);
                w.write_all(&buf)?;
            }
        }
        TensorData::I64(v) => {
            for c in v.chunks(CHUNK) {
                buf.clear();
                c.iter().for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
                hasher(&buf);
                w.write_all(&buf)?;
            }
        }
        TensorData::U8(v) => {
            for c in v.chunks(CHUNK * 8) {
                hasher(c);
                w.write_all(c)?;
            }
        }
        TensorData::External { .. } => {}
    }
    Ok(())
}

/// One dimension of a graph input/output: fixed or symbolic (named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A symbolic size, e.g. `batch`.
    Sym(String),
}

/// An ONNX `ValueInfoProto` for a tensor: name, element type and (partly symbolic) shape.
#[derive(Debug, Clone)]
pub struct ValueInfo {
    /// Value name.
    pub name: String,
    /// Element type.
    pub elem_type: DataType,
    /// Shape.
    pub dims: Vec<Dim>,
}

impl ValueInfo {
    fn encode(&self) -> Vec<u8> {
        let mut shape = Vec::new();
        for d in &self.dims {
            let mut dim = Vec::new();
            match d {
                Dim::Fixed(v) => put_i64(&mut dim, 1, *v),
                Dim::Sym(s) => put_str(&mut dim, 2, s),
            }
            put_msg(&mut shape, 1, &dim);
        }
        let mut tensor = Vec::new();
        put_i64(&mut tensor, 1, self.elem_type.code());
        put_msg(&mut tensor, 2, &shape);
        let mut ty = Vec::new();
        put_msg(&mut ty, 1, &tensor);
        let mut b = Vec::new();
        put_str(&mut b, 1, &self.name);
        put_msg(&mut b, 2, &ty);
        b
    }
}

/// An attribute value of a node.
#[derive(Debug, Clone)]
pub enum AttrValue {
    /// `INT`.
    Int(i64),
    /// `FLOAT`.
    Float(f32),
    /// `STRING`.
    String(String),
    /// `INTS`.
    Ints(Vec<i64>),
    /// `TENSOR` (e.g. the value of a `Constant` node).
    Tensor(TensorProto),
}

/// An ONNX `AttributeProto`.
#[derive(Debug, Clone)]
pub struct Attribute {
    /// Attribute name, e.g. `axis`.
    pub name: String,
    /// Its value.
    pub value: AttrValue,
}

impl Attribute {
    fn encode(&self) -> io::Result<Vec<u8>> {
        let mut b = Vec::new();
        put_str(&mut b, 1, &self.name);
        // AttributeProto.AttributeType codes: FLOAT=1 INT=2 STRING=3 TENSOR=4 INTS=7.
        match &self.value {
            AttrValue::Float(f) => {
                put_f32(&mut b, 2, *f);
                put_i64(&mut b, 20, 1);
            }
            AttrValue::Int(i) => {
                put_i64(&mut b, 3, *i);
                put_i64(&mut b, 20, 2);
            }
            AttrValue::String(s) => {
                put_str(&mut b, 4, s);
                put_i64(&mut b, 20, 3);
            }
            AttrValue::Tensor(t) => {
                let mut tb = Vec::new();
                t.write_to(&mut tb, &mut |_| {})?;
                put_msg(&mut b, 5, &tb);
                put_i64(&mut b, 20, 4);
            }
            AttrValue::Ints(v) => {
                for &i in v {
                    put_i64(&mut b, 8, i);
                }
                put_i64(&mut b, 20, 7);
            }
        }
        Ok(b)
    }
}

/// An ONNX `NodeProto`.
#[derive(Debug, Clone)]
pub struct Node {
    /// Operator type, e.g. `MatMul`.
    pub op_type: String,
    /// Operator domain (`""` = the default ONNX domain).
    pub domain: String,
    /// Node name (unique, for diagnostics).
    pub name: String,
    /// Input value names (`""` = an omitted optional input).
    pub inputs: Vec<String>,
    /// Output value names.
    pub outputs: Vec<String>,
    /// Attributes.
    pub attributes: Vec<Attribute>,
}

impl Node {
    fn encode(&self) -> io::Result<Vec<u8>> {
        let mut b = Vec::new();
        for i in &self.inputs {
            put_str(&mut b, 1, i);
        }
        for o in &self.outputs {
            put_str(&mut b, 2, o);
        }
        put_str(&mut b, 3, &self.name);
        put_str(&mut b, 4, &self.op_type);
        for a in &self.attributes {
            put_msg(&mut b, 5, &a.encode()?);
        }
        if !self.domain.is_empty() {
            put_str(&mut b, 7, &self.domain);
        }
        Ok(b)
    }
}

/// An ONNX `GraphProto`.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Graph name.
    pub name: String,
    /// Nodes in topological order.
    pub nodes: Vec<Node>,
    /// Initializers (weights and constants).
    pub initializers: Vec<TensorProto>,
    /// Graph inputs.
    pub inputs: Vec<ValueInfo>,
    /// Graph outputs.
    pub outputs: Vec<ValueInfo>,
}

/// An ONNX `ModelProto` with a single graph.
#[derive(Debug, Clone)]
pub struct Model {
    /// `ir_version`.
    pub ir_version: i64,
    /// Operator sets: `(domain, version)`.
    pub opsets: Vec<(String, i64)>,
    /// `producer_name`.
    pub producer_name: String,
    /// `producer_version`.
    pub producer_version: String,
    /// `metadata_props` (key, value).
    pub metadata: Vec<(String, String)>,
    /// The graph.
    pub graph: Graph,
}

impl Model {
    /// Writes the encoded model to `w`, streaming initializer data. `hasher` sees the raw
    /// bytes of every in-memory initializer, in order.
    pub fn write_to(&self, w: &mut dyn Write, hasher: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        // The graph's small parts are encoded in memory; initializers are sized first and
        // streamed, since a length-delimited field needs its length before its payload.
        let mut graph_head = Vec::new();
        for n in &self.graph.nodes {
            put_msg(&mut graph_head, 1, &n.encode()?);
        }
        put_str(&mut graph_head, 2, &self.graph.name);
        let mut graph_tail = Vec::new();
        for i in &self.graph.inputs {
            put_msg(&mut graph_tail, 11, &i.encode());
        }
        for o in &self.graph.outputs {
            put_msg(&mut graph_tail, 12, &o.encode());
        }
        let init_len: u64 =
            self.graph.initializers.iter().map(|t| len_field_size(5, t.encoded_len())).sum();
        let graph_len = graph_head.len() as u64 + init_len + graph_tail.len() as u64;

        let mut head = Vec::new();
        put_i64(&mut head, 1, self.ir_version);
        put_str(&mut head, 2, &self.producer_name);
        put_str(&mut head, 3, &self.producer_version);
        for (domain, version) in &self.opsets {
            let mut o = Vec::new();
            put_str(&mut o, 1, domain);
            put_i64(&mut o, 2, *version);
            put_msg(&mut head, 8, &o);
        }
        for (k, v) in &self.metadata {
            let mut e = Vec::new();
            put_str(&mut e, 1, k);
            put_str(&mut e, 2, v);
            put_msg(&mut head, 14, &e);
        }
        put_tag(&mut head, 7, LEN);
        put_varint(&mut head, graph_len);
        head.extend_from_slice(&graph_head);
        w.write_all(&head)?;
        for t in &self.graph.initializers {
            let mut pre = Vec::new();
            put_tag(&mut pre, 5, LEN);
            put_varint(&mut pre, t.encoded_len());
            w.write_all(&pre)?;
            t.write_to(w, hasher)?;
        }
        w.write_all(&graph_tail)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let mut b = Vec::new();
        put_varint(&mut b, 300);
        assert_eq!(b, [0xac, 0x02]);
        assert_eq!(varint_len(300), 2);
        b.clear();
        put_varint(&mut b, (-1i64) as u64);
        assert_eq!(b.len(), 10);
        assert_eq!(varint_len((-1i64) as u64), 10);
    }

    #[test]
    fn tensor_len_matches_written_bytes() {
        let t = TensorProto {
            name: "w".into(),
            dims: vec![2, 3],
            data_type: DataType::Float,
            data: TensorData::F32(vec![1.0; 6]),
        };
        let mut out = Vec::new();
        t.write_to(&mut out, &mut |_| {}).unwrap();
        assert_eq!(out.len() as u64, t.encoded_len());
        let e = TensorProto {
            name: "w".into(),
            dims: vec![2],
            data_type: DataType::Float,
            data: TensorData::External {
                location: "model.onnx.data".into(),
                offset: 4096,
                length: 8,
            },
        };
        let mut out = Vec::new();
        e.write_to(&mut out, &mut |_| {}).unwrap();
        assert_eq!(out.len() as u64, e.encoded_len());
    }
}
