//! A small graph-building API over [`super::proto`]: named inputs/outputs, initializers,
//! deduplicated constants and nodes whose outputs are named automatically.

use std::collections::HashMap;

use super::proto::{
    AttrValue, Attribute, DataType, Dim, Graph, Node, TensorData, TensorProto, ValueInfo,
};

/// Builds an ONNX graph node by node.
///
/// Every `node*` method returns the output value names, so graphs read like expressions:
/// `let y = g.node("MatMul", &[&x, &w], vec![]);`.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    graph: Graph,
    counter: usize,
    consts: HashMap<String, String>,
    /// The current name scope (e.g. `layers.3.attn`), prefixed to auto-generated names so
    /// a profiler or error message points at the right part of the model.
    scope: String,
}

/// Shorthand for an integer attribute.
pub fn attr_i(name: &str, v: i64) -> Attribute {
    Attribute { name: name.into(), value: AttrValue::Int(v) }
}

/// Shorthand for a float attribute.
pub fn attr_f(name: &str, v: f32) -> Attribute {
    Attribute { name: name.into(), value: AttrValue::Float(v) }
}

/// Shorthand for an integer-list attribute.
pub fn attr_ints(name: &str, v: &[i64]) -> Attribute {
    Attribute { name: name.into(), value: AttrValue::Ints(v.to_vec()) }
}

/// Shorthand for a string attribute.
pub fn attr_s(name: &str, v: &str) -> Attribute {
    Attribute { name: name.into(), value: AttrValue::String(v.into()) }
}

impl GraphBuilder {
    /// An empty graph called `name`.
    pub fn new(name: &str) -> Self {
        GraphBuilder { graph: Graph { name: name.into(), ..Graph::default() }, ..Self::default() }
    }

    /// Sets the prefix of auto-generated names (empty for none).
    pub fn set_scope(&mut self, scope: &str) {
        self.scope = scope.to_string();
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        if self.scope.is_empty() {
            format!("{hint}_{}", self.counter)
        } else {
            format!("{}/{hint}_{}", self.scope, self.counter)
        }
    }

    /// Declares a graph input and returns its name.
    pub fn input(&mut self, name: &str, elem_type: DataType, dims: Vec<Dim>) -> String {
        self.graph.inputs.push(ValueInfo { name: name.into(), elem_type, dims });
        name.to_string()
    }

    /// Declares an existing value as a graph output.
    pub fn output(&mut self, name: &str, elem_type: DataType, dims: Vec<Dim>) {
        self.graph.outputs.push(ValueInfo { name: name.into(), elem_type, dims });
    }

    /// Adds an `f32` initializer (a weight) and returns its name.
    pub fn initializer_f32(&mut self, name: &str, dims: &[usize], data: Vec<f32>) -> String {
        self.graph.initializers.push(TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float,
            data: TensorData::F32(data),
        });
        name.to_string()
    }

    /// Adds a `u8` initializer (quantized weights) and returns its name.
    pub fn initializer_u8(&mut self, name: &str, dims: &[usize], data: Vec<u8>) -> String {
        self.graph.initializers.push(TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Uint8,
            data: TensorData::U8(data),
        });
        name.to_string()
    }

    /// An `i64` constant (deduplicated by value and shape); `dims` empty for a scalar.
    pub fn const_i64(&mut self, dims: &[usize], values: &[i64]) -> String {
        let key = format!("i64{dims:?}{values:?}");
        if let Some(n) = self.consts.get(&key) {
            return n.clone();
        }
        self.counter += 1;
        let name = format!("const_i64_{}", self.counter);
        self.graph.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Int64,
            data: TensorData::I64(values.to_vec()),
        });
        self.consts.insert(key, name.clone());
        name
    }

    /// A 1-D `i64` constant.
    pub fn ints(&mut self, values: &[i64]) -> String {
        self.const_i64(&[values.len()], values)
    }

    /// An `f32` constant (deduplicated by bit pattern and shape); `dims` empty for a scalar.
    pub fn const_f32(&mut self, dims: &[usize], values: &[f32]) -> String {
        let bits: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        let key = format!("f32{dims:?}{bits:?}");
        if let Some(n) = self.consts.get(&key) {
            return n.clone();
        }
        self.counter += 1;
        let name = format!("const_f32_{}", self.counter);
        self.graph.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float,
            data: TensorData::F32(values.to_vec()),
        });
        self.consts.insert(key, name.clone());
        name
    }

    /// A scalar `f32` constant.
    pub fn scalar(&mut self, v: f32) -> String {
        self.const_f32(&[], &[v])
    }

    /// Adds a node with one auto-named output and returns that name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attributes: Vec<Attribute>) -> String {
        let out = self.fresh(op);
        self.push(op, inputs, std::slice::from_ref(&out), attributes);
        out
    }

    /// Adds a node of another operator domain (e.g. `com.microsoft`) with one auto-named
    /// output and returns that name.
    pub fn node_in(
        &mut self,
        domain: &str,
        op: &str,
        inputs: &[&str],
        attributes: Vec<Attribute>,
    ) -> String {
        let out = self.fresh(op);
        self.push(op, inputs, std::slice::from_ref(&out), attributes);
        if let Some(node) = self.graph.nodes.last_mut() {
            node.domain = domain.to_string();
        }
        out
    }

    /// Adds a node with `n` auto-named outputs.
    pub fn node_n(
        &mut self,
        op: &str,
        inputs: &[&str],
        n: usize,
        attributes: Vec<Attribute>,
    ) -> Vec<String> {
        let base = self.fresh(op);
        let outs: Vec<String> = (0..n).map(|i| format!("{base}.{i}")).collect();
        self.push(op, inputs, &outs, attributes);
        outs
    }

    /// Adds a node whose outputs have the given names (e.g. graph outputs).
    pub fn node_named(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attributes: Vec<Attribute>,
    ) {
        let outs: Vec<String> = outputs.iter().map(|s| s.to_string()).collect();
        self.push(op, inputs, &outs, attributes);
    }

    fn push(&mut self, op: &str, inputs: &[&str], outputs: &[String], attributes: Vec<Attribute>) {
        let name = format!("{}#node", outputs.first().map(String::as_str).unwrap_or(op));
        self.graph.nodes.push(Node {
            op_type: op.into(),
            domain: String::new(),
            name,
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: outputs.to_vec(),
            attributes,
        });
    }

    /// Total bytes of in-memory initializer data.
    pub fn initializer_bytes(&self) -> u64 {
        self.graph.initializers.iter().map(TensorProto::raw_len).sum()
    }

    /// Finishes and returns the graph.
    pub fn finish(self) -> Graph {
        self.graph
    }
}
