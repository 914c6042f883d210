//! The ONNX Runtime forward pass over a model folder's `model.onnx` (the graph contract in
//! `docs/model-folder.md`): a batch of rows and a past in, tensors marshalled to the
//! graph's inputs (`input_ids`, `position_ids`, `attention_mask`, `query_positions`,
//! `past.{i}.key|value`), the `logprobs` at the queried positions (and, when kept, the
//! `present.{i}.*` key/values) out.

use std::sync::Mutex;

use descry_model_folder::{Manifest, ModelFolder};
use ort::session::{OutputSelector, RunOptions, Session, SessionInputValue};
use ort::value::Tensor;

use crate::engine::EngineError;
use crate::session::ort_err;
use descry_schedule::{ForwardPass, Row};

/// A loaded `model.onnx` session, with the dimensions its tensors are sized by.
pub struct OrtForward {
    session: Mutex<Session>,
    layers: usize,
    kv_heads: usize,
    head_dim: usize,
    vocab: usize,
}

impl OrtForward {
    /// Wraps a session over the folder's graph after checking that the graph's declared
    /// inputs and outputs agree with the manifest.
    pub fn new(folder: &ModelFolder, session: Session) -> Result<OrtForward, EngineError> {
        check_graph(folder, &session)?;
        let m = &folder.manifest;
        Ok(OrtForward {
            session: Mutex::new(session),
            layers: m.num_layers,
            kv_heads: m.num_kv_heads,
            head_dim: m.head_dim,
            vocab: m.vocab_size,
        })
    }

    /// One pass over right-padded `rows`, all continuing from `past` (broadcast to every
    /// row) or from nothing; see [`ForwardPass::run`]. The key/values are fetched only for
    /// the row `keep` names.
    fn pass(
        &self,
        rows: &[Row<'_>],
        past: Option<&Kv>,
        keep: Option<usize>,
        visit: &mut dyn FnMut(usize, usize, &[f32]),
    ) -> Result<Option<Kv>, EngineError> {
        let want_kv = keep.is_some();
        let (layers_n, kvh, hd, vocab) = (self.layers, self.kv_heads, self.head_dim, self.vocab);
        let b = rows.len();
        let seq = rows.iter().map(|r| r.tokens.len()).max().unwrap_or(0);
        let past_len = past.map_or(0, |p| p.len);
        let total = past_len + seq;
        // At least one query slot per row: an empty gather would give an empty matrix product.
        let nq = rows.iter().map(|r| r.queries.len()).max().unwrap_or(0).max(1);

        let mut ids = Vec::with_capacity(b * seq);
        let mut mask = Vec::with_capacity(b * total);
        let mut queries = Vec::with_capacity(b * nq);
        for r in rows {
            let n = r.tokens.len();
            ids.extend(r.tokens.iter().map(|&t| i64::from(t)));
            ids.extend(std::iter::repeat_n(0, seq - n));
            mask.extend(std::iter::repeat_n(1i64, past_len + n));
            mask.extend(std::iter::repeat_n(0i64, seq - n));
            let pad = r.queries.last().copied().unwrap_or(0) as i64;
            queries.extend(r.queries.iter().map(|&q| q as i64));
            queries.extend(std::iter::repeat_n(pad, nq - r.queries.len()));
        }
        let positions: Vec<i64> =
            (0..b).flat_map(|_| (past_len..total).map(|p| p as i64)).collect();

        let tensor_i64 = |shape: Vec<usize>,
                          data: Vec<i64>|
         -> Result<SessionInputValue<'static>, EngineError> {
            Ok(Tensor::from_array((shape, data)).map_err(ort_err)?.into())
        };
        let mut inputs: Vec<(String, SessionInputValue<'static>)> = vec![
            ("input_ids".into(), tensor_i64(vec![b, seq], ids)?),
            ("position_ids".into(), tensor_i64(vec![b, seq], positions)?),
            ("attention_mask".into(), tensor_i64(vec![b, total], mask)?),
            ("query_positions".into(), tensor_i64(vec![b, nq], queries)?),
        ];
        let kv_shape = vec![b, kvh, past_len, hd];
        for i in 0..layers_n {
            let (k, v) = match past {
                Some(p) => {
                    let (k, v) = &p.layers[i];
                    (k.repeat(b), v.repeat(b))
                }
                None => (Vec::new(), Vec::new()),
            };
            inputs.push((
                format!("past.{i}.key"),
                Tensor::from_array((kv_shape.clone(), k)).map_err(ort_err)?.into(),
            ));
            inputs.push((
                format!("past.{i}.value"),
                Tensor::from_array((kv_shape.clone(), v)).map_err(ort_err)?.into(),
            ));
        }

        // Fetch the key/values only when they are kept: unfetched, ONNX Runtime frees each
        // layer's as soon as its attention is done instead of holding every layer's to the end.
        let mut selector = OutputSelector::no_default().with("logprobs");
        if want_kv {
            for i in 0..layers_n {
                selector =
                    selector.with(format!("present.{i}.key")).with(format!("present.{i}.value"));
            }
        }
        let run_options = RunOptions::new().map_err(ort_err)?.with_outputs(selector);
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session.run_with_options(inputs, &run_options).map_err(ort_err)?;
        let (shape, lp) = outputs["logprobs"].try_extract_tensor::<f32>().map_err(ort_err)?;
        if **shape != [b as i64, nq as i64, vocab as i64] {
            return Err(EngineError::Ort(format!(
                "logprobs has shape {:?}, expected [{b}, {nq}, {vocab}]",
                &**shape
            )));
        }
        for (r, row) in rows.iter().enumerate() {
            for (j, &q) in row.queries.iter().enumerate() {
                let off = (r * nq + j) * vocab;
                visit(r, q, &lp[off..off + vocab]);
            }
        }
        let Some(r) = keep else {
            return Ok(None);
        };
        // Row r's key/values: its block of the batch, without the padding after its tokens.
        let len = past_len + rows[r].tokens.len();
        let mut layers = Vec::with_capacity(layers_n);
        for i in 0..layers_n {
            let get = |name: String| -> Result<Vec<f32>, EngineError> {
                let (shape, data) =
                    outputs[name.as_str()].try_extract_tensor::<f32>().map_err(ort_err)?;
                if **shape != [b as i64, kvh as i64, total as i64, hd as i64] {
                    return Err(EngineError::Ort(format!(
                        "{name} has shape {:?}, expected [{b}, {kvh}, {total}, {hd}]",
                        &**shape
                    )));
                }
                Ok((0..kvh)
                    .flat_map(|h| {
                        let start = ((r * kvh + h) * total) * hd;
                        data[start..start + len * hd].iter().copied()
                    })
                    .collect())
            };
            layers.push((get(format!("present.{i}.key"))?, get(format!("present.{i}.value"))?));
        }
        Ok(Some(Kv { len, layers }))
    }
}

impl ForwardPass for OrtForward {
    type Past = Kv;
    type Error = EngineError;

    fn run(
        &self,
        rows: &[Row<'_>],
        past: Option<&Kv>,
        keep: Option<usize>,
        visit: &mut dyn FnMut(usize, usize, &[f32]),
    ) -> Result<Option<Kv>, EngineError> {
        self.pass(rows, past, keep, visit)
    }

    fn truncated(&self, past: &Kv, len: usize) -> Kv {
        past.truncated(len, self.kv_heads, self.head_dim)
    }
}

/// Per-layer key/value cache of one sequence: `[1, kv_heads, len, head_dim]` each.
#[derive(Clone)]
pub struct Kv {
    /// Tokens covered.
    pub len: usize,
    /// Per layer: keys, values.
    pub layers: Vec<(Vec<f32>, Vec<f32>)>,
}

impl Kv {
    /// The key/values of the first `len` tokens (`len <= self.len`).
    pub fn truncated(&self, len: usize, kv_heads: usize, head_dim: usize) -> Kv {
        let cut = |t: &[f32]| -> Vec<f32> {
            (0..kv_heads)
                .flat_map(|h| {
                    let start = h * self.len * head_dim;
                    t[start..start + len * head_dim].iter().copied()
                })
                .collect()
        };
        Kv { len, layers: self.layers.iter().map(|(k, v)| (cut(k), cut(v))).collect() }
    }
}

/// Compares the graph's declared inputs and outputs with the manifest the engine sizes its
/// tensors by (layers, key/value heads, head width, vocabulary), so a mismatch is reported
/// at load, naming the field and both values, instead of as an ONNX Runtime shape error in
/// the first forward pass.
fn check_graph(folder: &ModelFolder, session: &Session) -> Result<(), EngineError> {
    let manifest = &folder.manifest;
    let inputs: Vec<(&str, Option<&[i64]>)> = session
        .inputs()
        .iter()
        .map(|o| (o.name(), o.dtype().tensor_shape().map(|s| &s[..])))
        .collect();
    let outputs: Vec<(&str, Option<&[i64]>)> = session
        .outputs()
        .iter()
        .map(|o| (o.name(), o.dtype().tensor_shape().map(|s| &s[..])))
        .collect();
    graph_mismatch(manifest, &inputs, &outputs).map_or(Ok(()), |(field, want, got, evidence)| {
        Err(EngineError::GraphMismatch {
            path: folder.dir.clone(),
            field,
            manifest: want,
            graph: got,
            evidence,
            rebuild: folder.rebuild_command(),
        })
    })
}

/// The first disagreement between the manifest and the graph's declared inputs/outputs
/// (name, shape; `-1` for a dynamic axis): field, manifest value, graph value, evidence.
fn graph_mismatch(
    manifest: &Manifest,
    inputs: &[(&str, Option<&[i64]>)],
    outputs: &[(&str, Option<&[i64]>)],
) -> Option<(&'static str, usize, usize, String)> {
    let layers = inputs
        .iter()
        .filter(|(n, _)| {
            n.strip_prefix("past.")
                .and_then(|r| r.strip_suffix(".key"))
                .is_some_and(|i| i.parse::<usize>().is_ok())
        })
        .count();
    if layers != manifest.num_layers {
        return Some((
            "num_layers",
            manifest.num_layers,
            layers,
            format!("{layers} past.N.key inputs"),
        ));
    }
    // A fixed axis that differs; a dynamic one (-1) cannot be checked.
    let differs = |shape: Option<&[i64]>, axis: usize, want: usize| -> Option<usize> {
        let d = *shape?.get(axis)?;
        (d >= 0 && d as usize != want).then_some(d as usize)
    };
    for (name, shape) in inputs.iter().filter(|(n, _)| n.starts_with("past.")) {
        if let Some(got) = differs(*shape, 1, manifest.num_kv_heads) {
            return Some((
                "num_kv_heads",
                manifest.num_kv_heads,
                got,
                format!("axis 1 of input {name}"),
            ));
        }
        if let Some(got) = differs(*shape, 3, manifest.head_dim) {
            return Some(("head_dim", manifest.head_dim, got, format!("axis 3 of input {name}")));
        }
    }
    if let Some((_, shape)) = outputs.iter().find(|(n, _)| *n == "logprobs") {
        if let Some(got) = differs(*shape, 2, manifest.vocab_size) {
            return Some((
                "vocab_size",
                manifest.vocab_size,
                got,
                "axis 2 of output logprobs".into(),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The declared inputs/outputs of a two-layer graph with 3 key/value heads of width 64
    /// and a vocabulary of 100, against a manifest edited field by field.
    #[test]
    fn graph_and_manifest_must_agree() {
        let kv: &[i64] = &[-1, 3, -1, 64];
        let logprobs: &[i64] = &[-1, -1, 100];
        let inputs = [
            ("input_ids", Some(&[-1i64, -1][..])),
            ("past.0.key", Some(kv)),
            ("past.0.value", Some(kv)),
            ("past.1.key", Some(kv)),
            ("past.1.value", Some(kv)),
        ];
        let outputs = [("logprobs", Some(logprobs)), ("present.0.key", Some(kv))];
        let text = r#"{"format": 2, "architecture": "llama", "name": "m",
            "source": {"kind": "gguf", "path": "m.gguf", "sha256": ""}, "weights_sha256": "",
            "dtype": "f32", "vocab_size": 100, "hidden_size": 192, "num_layers": 2,
            "num_attention_heads": 3, "num_kv_heads": 3, "head_dim": 64, "context_length": 64,
            "sliding_window": null, "non_embedding_params": 1, "has_chat_template": false,
            "add_bos_token": false, "bos_token": null, "eos_token": null,
            "artifacts": {"onnx": {"model.onnx": 1}}}"#;
        let good: Manifest = serde_json::from_str(text).expect("manifest");
        assert_eq!(graph_mismatch(&good, &inputs, &outputs), None);
        let edit = |f: fn(&mut Manifest)| {
            let mut m = good.clone();
            f(&mut m);
            graph_mismatch(&m, &inputs, &outputs).map(|(field, want, got, _)| (field, want, got))
        };
        assert_eq!(edit(|m| m.num_layers = 3), Some(("num_layers", 3, 2)));
        assert_eq!(edit(|m| m.num_kv_heads = 1), Some(("num_kv_heads", 1, 3)));
        assert_eq!(edit(|m| m.head_dim = 32), Some(("head_dim", 32, 64)));
        assert_eq!(edit(|m| m.vocab_size = 99), Some(("vocab_size", 99, 100)));
    }
}
