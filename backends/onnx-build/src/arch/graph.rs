//! The scoring graph of a decoder-only transformer (llama family and Gemma 3), with the
//! inputs and outputs of `docs/model-folder.md`.
//!
//! Layout conventions inside the graph: activations are `[batch, seq, hidden]`; per-head
//! tensors are `[batch, seq, heads, head_dim]` until attention, where queries become
//! `[batch, kv_heads, group, seq, head_dim]` so grouped-query attention is a broadcasting
//! MatMul against `[batch, kv_heads, 1, head_dim, total]` keys (no key/value copies).
//! Every activation is float32; the linear layers' weights are f32 or, with
//! [`WeightFormat::Int8`], 8-bit blocks multiplied by `MatMulNBits`.

use crate::error::ImportError;
use crate::gguf::Tensor;
use crate::onnx::builder::{attr_i, attr_ints};
use crate::onnx::{DataType, Dim, Graph, GraphBuilder};

use super::config::{Architecture, ModelConfig, RopeScaling};
use super::quant::{quantize_int8, WeightFormat, INT8_BLOCK};
use super::weights::WeightSource;

/// The additive mask value for hidden keys: the most negative `f32`, as transformers'
/// eager attention uses, so a fully masked row (an all-padding sequence) stays finite.
const MASKED: f32 = f32::MIN;

/// A built graph and parameter counts for the manifest.
pub struct BuiltGraph {
    /// The ONNX graph, weights as initializers.
    pub graph: Graph,
    /// Parameters outside the token embedding and the output projection.
    pub non_embedding_params: u64,
    /// All parameters.
    pub total_params: u64,
}

/// Builds the scoring graph of `cfg` with weights from `w`, its linear layers stored as
/// `format` says.
pub fn build_graph(
    cfg: &ModelConfig,
    w: &dyn WeightSource,
    format: WeightFormat,
) -> Result<BuiltGraph, ImportError> {
    cfg.validate().map_err(|reason| ImportError::Format {
        path: w.path().to_path_buf(),
        format: "model configuration",
        reason,
    })?;
    let mut b =
        Builder { g: GraphBuilder::new("descry"), cfg, w, format, non_embedding: 0, total: 0 };
    b.build()?;
    Ok(BuiltGraph {
        graph: b.g.finish(),
        non_embedding_params: b.non_embedding,
        total_params: b.total,
    })
}

struct Builder<'a> {
    g: GraphBuilder,
    cfg: &'a ModelConfig,
    w: &'a dyn WeightSource,
    format: WeightFormat,
    non_embedding: u64,
    total: u64,
}

fn sym(s: &str) -> Dim {
    Dim::Sym(s.to_string())
}

/// `[rows, cols]` → `[cols, rows]`, so `MatMul(x, Wᵀ)` needs no runtime transpose.
fn transpose(t: &Tensor) -> Vec<f32> {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let mut out = vec![0f32; t.data.len()];
    // Blocked so both sides stay in cache for the large matrices.
    const B: usize = 64;
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            for r in r0..(r0 + B).min(rows) {
                for c in c0..(c0 + B).min(cols) {
                    out[c * rows + r] = t.data[r * cols + c];
                }
            }
        }
    }
    out
}

impl Builder<'_> {
    /// Loads a tensor and checks its shape.
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, ImportError> {
        let t = self.w.load(name)?;
        if t.shape != shape {
            return Err(ImportError::ShapeMismatch {
                path: self.w.path().to_path_buf(),
                tensor: name.to_string(),
                expected: shape.to_vec(),
                actual: t.shape.clone(),
            });
        }
        let n = t.data.len() as u64;
        self.total += n;
        if name != "token_embd.weight" && name != "output.weight" {
            self.non_embedding += n;
        }
        Ok(t)
    }

    /// A `[dim]` vector initializer (norm weight or bias).
    fn vector(&mut self, name: &str, dim: usize) -> Result<String, ImportError> {
        let t = self.tensor(name, &[dim])?;
        Ok(self.g.initializer_f32(name, &[dim], t.data))
    }

    /// `x @ Wᵀ (+ bias)` for a weight stored `[out, in]`.
    fn linear(
        &mut self,
        x: &str,
        name: &str,
        out: usize,
        inp: usize,
        bias: Option<&str>,
    ) -> Result<String, ImportError> {
        let t = self.tensor(name, &[out, inp])?;
        let y = match self.format {
            WeightFormat::F32 => {
                let wt = self.g.initializer_f32(&format!("{name}.T"), &[inp, out], transpose(&t));
                self.g.node("MatMul", &[x, &wt], vec![])
            }
            WeightFormat::Int8 => {
                let q = quantize_int8(&t.data, out, inp);
                let data = self.g.initializer_u8(
                    &format!("{name}.q8"),
                    &[out, q.blocks, INT8_BLOCK],
                    q.data,
                );
                let scales =
                    self.g.initializer_f32(&format!("{name}.scales"), &[out * q.blocks], q.scales);
                self.g.node_in(
                    "com.microsoft",
                    "MatMulNBits",
                    &[x, &data, &scales],
                    vec![
                        attr_i("K", inp as i64),
                        attr_i("N", out as i64),
                        attr_i("bits", 8),
                        attr_i("block_size", INT8_BLOCK as i64),
                        // 4: int8 arithmetic (activations quantized per block).
                        attr_i("accuracy_level", 4),
                    ],
                )
            }
        };
        match bias {
            Some(bname) => {
                let bv = self.vector(bname, out)?;
                Ok(self.g.node("Add", &[&y, &bv], vec![]))
            }
            None => Ok(y),
        }
    }

    /// RMSNorm over the last axis: `x / sqrt(mean(x²) + eps) * w` (`w` the effective
    /// multiplier, see `weights`).
    fn rms_norm(&mut self, x: &str, weight: &str) -> String {
        let g = &mut self.g;
        let eps = g.scalar(self.cfg.rms_norm_eps as f32);
        let sq = g.node("Mul", &[x, x], vec![]);
        let ms =
            g.node("ReduceMean", &[&sq], vec![attr_ints("axes", &[-1]), attr_i("keepdims", 1)]);
        let ve = g.node("Add", &[&ms, &eps], vec![]);
        let sd = g.node("Sqrt", &[&ve], vec![]);
        let inv = g.node("Reciprocal", &[&sd], vec![]);
        let n = g.node("Mul", &[x, &inv], vec![]);
        g.node("Mul", &[&n, weight], vec![])
    }

    /// `tanh(x / cap) * cap`.
    fn softcap(&mut self, x: &str, cap: f64) -> String {
        let c = self.g.scalar(cap as f32);
        let d = self.g.node("Div", &[x, &c], vec![]);
        let t = self.g.node("Tanh", &[&d], vec![]);
        self.g.node("Mul", &[&t, &c], vec![])
    }

    /// Inverse frequencies as transformers computes them (f32 throughout).
    fn inv_freq(&self, base: f64, scaling: &RopeScaling) -> Vec<f32> {
        let d = self.cfg.head_dim;
        (0..d / 2)
            .map(|i| {
                let e = (2 * i) as f32 / d as f32;
                let inv = 1.0f32 / (base as f32).powf(e);
                match scaling {
                    RopeScaling::None => inv,
                    RopeScaling::Linear(f) => inv / *f as f32,
                    RopeScaling::FreqFactors(v) => inv / v.get(i).copied().unwrap_or(1.0),
                }
            })
            .collect()
    }

    /// `(cos, sin_signed)` tables `[batch, seq, 1, head_dim]` for `position_ids`;
    /// `sin_signed = [-sin, sin]`, so RoPE is `x·cos + swap_halves(x)·sin_signed`
    /// (an exact rewrite of transformers' `x·cos + rotate_half(x)·sin`: `-(a·b) = a·(-b)`).
    fn rope_tables(&mut self, pos_f: &str, inv_freq: Vec<f32>) -> (String, String) {
        let g = &mut self.g;
        let half = inv_freq.len();
        let inv = g.const_f32(&[half], &inv_freq);
        let ax2 = g.ints(&[2]);
        let p3 = g.node("Unsqueeze", &[pos_f, &ax2], vec![]);
        let freqs = g.node("Mul", &[&p3, &inv], vec![]);
        let c = g.node("Cos", &[&freqs], vec![]);
        let s = g.node("Sin", &[&freqs], vec![]);
        let ns = g.node("Neg", &[&s], vec![]);
        let cos = g.node("Concat", &[&c, &c], vec![attr_i("axis", -1)]);
        let sin = g.node("Concat", &[&ns, &s], vec![attr_i("axis", -1)]);
        let cos4 = g.node("Unsqueeze", &[&cos, &ax2], vec![]);
        let sin4 = g.node("Unsqueeze", &[&sin, &ax2], vec![]);
        (cos4, sin4)
    }

    fn apply_rope(&mut self, x: &str, (cos, sin): &(String, String)) -> String {
        let g = &mut self.g;
        let halves = g.node_n("Split", &[x], 2, vec![attr_i("axis", -1)]);
        let swapped = g.node("Concat", &[&halves[1], &halves[0]], vec![attr_i("axis", -1)]);
        let a = g.node("Mul", &[x, cos], vec![]);
        let b = g.node("Mul", &[&swapped, sin], vec![]);
        g.node("Add", &[&a, &b], vec![])
    }

    fn build(&mut self) -> Result<(), ImportError> {
        let cfg = self.cfg;
        let (h, v, hd) = (cfg.hidden_size, cfg.vocab_size, cfg.head_dim);
        let (nh, nkv) = (cfg.num_heads, cfg.num_kv_heads);
        let gsize = nh / nkv;
        let gemma = cfg.architecture == Architecture::Gemma3;

        // Inputs.
        let ids = self.g.input("input_ids", DataType::Int64, vec![sym("batch"), sym("seq")]);
        let pos = self.g.input("position_ids", DataType::Int64, vec![sym("batch"), sym("seq")]);
        let mask =
            self.g.input("attention_mask", DataType::Int64, vec![sym("batch"), sym("total")]);
        let qpos =
            self.g.input("query_positions", DataType::Int64, vec![sym("batch"), sym("n_query")]);
        let kv_dims =
            |len: &str| vec![sym("batch"), Dim::Fixed(nkv as i64), sym(len), Dim::Fixed(hd as i64)];
        let mut past = Vec::new();
        for i in 0..cfg.num_layers {
            let k = self.g.input(&format!("past.{i}.key"), DataType::Float, kv_dims("past"));
            let vv = self.g.input(&format!("past.{i}.value"), DataType::Float, kv_dims("past"));
            past.push((k, vv));
        }

        // Embedding.
        self.g.set_scope("embed");
        let embed_t = self.tensor("token_embd.weight", &[v, h])?;
        let embed = self.g.initializer_f32("token_embd.weight", &[v, h], embed_t.data);
        let mut x = self.g.node("Gather", &[&embed, &ids], vec![attr_i("axis", 0)]);
        if gemma {
            // Gemma scales embeddings by sqrt(hidden), rounded to f32 first as transformers does.
            let s = self.g.scalar((h as f64).sqrt() as f32);
            x = self.g.node("Mul", &[&x, &s], vec![]);
        }

        // Lengths, index ranges and masks (shared by all layers).
        self.g.set_scope("mask");
        let (mask_full, mask_sliding) = self.masks(&ids, &mask, &past[0].0);

        // RoPE tables: one per distinct base.
        self.g.set_scope("rope");
        let pos_f = self.g.node("Cast", &[&pos], vec![attr_i("to", 1)]);
        let global_rope = {
            let f = self.inv_freq(cfg.rope_theta, &cfg.rope_scaling);
            self.rope_tables(&pos_f, f)
        };
        let local_rope = if cfg.layer_sliding.iter().any(|&s| s)
            && (cfg.rope_local_theta != cfg.rope_theta || gemma)
        {
            // Gemma 3's local layers use the local base without long-context scaling.
            let f = self.inv_freq(cfg.rope_local_theta, &RopeScaling::None);
            self.rope_tables(&pos_f, f)
        } else {
            global_rope.clone()
        };

        let scale = self.g.scalar(cfg.query_pre_attn_scalar.powf(-0.5) as f32);
        let shape_q4 = self.g.ints(&[0, 0, nh as i64, hd as i64]);
        let shape_kv4 = self.g.ints(&[0, 0, nkv as i64, hd as i64]);
        let shape_q5 = self.g.ints(&[0, 0, nkv as i64, gsize as i64, hd as i64]);
        let shape_ctx4 = self.g.ints(&[0, nh as i64, -1, hd as i64]);
        let shape_ctx3 = self.g.ints(&[0, 0, (nh * hd) as i64]);
        let ax2 = self.g.ints(&[2]);

        for (i, (pk, pv)) in past.iter().enumerate() {
            self.g.set_scope(&format!("layers.{i}"));
            let p = |leaf: &str| format!("blk.{i}.{leaf}");
            let sliding = cfg.layer_sliding.get(i).copied().unwrap_or(false);

            // --- attention ---
            let wn = self.vector(&p("attn_norm.weight"), h)?;
            let xn = self.rms_norm(&x, &wn);
            let (bq, bk, bv) = if cfg.attention_bias {
                (Some(p("attn_q.bias")), Some(p("attn_k.bias")), Some(p("attn_v.bias")))
            } else {
                (None, None, None)
            };
            let q = self.linear(&xn, &p("attn_q.weight"), nh * hd, h, bq.as_deref())?;
            let k = self.linear(&xn, &p("attn_k.weight"), nkv * hd, h, bk.as_deref())?;
            let vv = self.linear(&xn, &p("attn_v.weight"), nkv * hd, h, bv.as_deref())?;
            let mut q4 = self.g.node("Reshape", &[&q, &shape_q4], vec![]);
            let mut k4 = self.g.node("Reshape", &[&k, &shape_kv4], vec![]);
            let v4 = self.g.node("Reshape", &[&vv, &shape_kv4], vec![]);
            if gemma {
                let qn = self.vector(&p("attn_q_norm.weight"), hd)?;
                let kn = self.vector(&p("attn_k_norm.weight"), hd)?;
                q4 = self.rms_norm(&q4, &qn);
                k4 = self.rms_norm(&k4, &kn);
            }
            let rope = if sliding { local_rope.clone() } else { global_rope.clone() };
            let q4 = self.apply_rope(&q4, &rope);
            let k4 = self.apply_rope(&k4, &rope);

            let kt = self.g.node("Transpose", &[&k4], vec![attr_ints("perm", &[0, 2, 1, 3])]);
            let vt = self.g.node("Transpose", &[&v4], vec![attr_ints("perm", &[0, 2, 1, 3])]);
            let present_k = format!("present.{i}.key");
            let present_v = format!("present.{i}.value");
            self.g.node_named("Concat", &[pk, &kt], &[&present_k], vec![attr_i("axis", 2)]);
            self.g.node_named("Concat", &[pv, &vt], &[&present_v], vec![attr_i("axis", 2)]);

            let q5 = self.g.node("Reshape", &[&q4, &shape_q5], vec![]);
            let q5 = self.g.node("Transpose", &[&q5], vec![attr_ints("perm", &[0, 2, 3, 1, 4])]);
            let k_tr =
                self.g.node("Transpose", &[&present_k], vec![attr_ints("perm", &[0, 1, 3, 2])]);
            let k_tr5 = self.g.node("Unsqueeze", &[&k_tr, &ax2], vec![]);
            let mut scores = self.scores(&q5, &k_tr5);
            scores = self.g.node("Mul", &[&scores, &scale], vec![]);
            if let Some(c) = cfg.attn_logit_softcapping {
                scores = self.softcap(&scores, c);
            }
            let bias =
                if sliding { mask_sliding.as_ref().unwrap_or(&mask_full) } else { &mask_full };
            scores = self.g.node("Add", &[&scores, bias], vec![]);
            let probs = self.g.node("Softmax", &[&scores], vec![attr_i("axis", -1)]);
            let v5 = self.g.node("Unsqueeze", &[&present_v, &ax2], vec![]);
            let ctx = self.g.node("MatMul", &[&probs, &v5], vec![]);
            let ctx = self.g.node("Reshape", &[&ctx, &shape_ctx4], vec![]);
            let ctx = self.g.node("Transpose", &[&ctx], vec![attr_ints("perm", &[0, 2, 1, 3])]);
            let ctx = self.g.node("Reshape", &[&ctx, &shape_ctx3], vec![]);
            let mut attn = self.linear(&ctx, &p("attn_output.weight"), h, nh * hd, None)?;
            if gemma {
                let w = self.vector(&p("post_attention_norm.weight"), h)?;
                attn = self.rms_norm(&attn, &w);
            }
            x = self.g.node("Add", &[&x, &attn], vec![]);

            // --- MLP ---
            let wn = self.vector(&p("ffn_norm.weight"), h)?;
            let xn = self.rms_norm(&x, &wn);
            let inter = cfg.intermediate_size;
            let gate = self.linear(&xn, &p("ffn_gate.weight"), inter, h, None)?;
            let up = self.linear(&xn, &p("ffn_up.weight"), inter, h, None)?;
            let act = if gemma { self.gelu_tanh(&gate) } else { self.silu(&gate) };
            let hmid = self.g.node("Mul", &[&act, &up], vec![]);
            let mut mlp = self.linear(&hmid, &p("ffn_down.weight"), h, inter, None)?;
            if gemma {
                let w = self.vector(&p("post_ffw_norm.weight"), h)?;
                mlp = self.rms_norm(&mlp, &w);
            }
            x = self.g.node("Add", &[&x, &mlp], vec![]);
        }

        // Head: gather the query positions first, so the vocabulary projection and the
        // log-softmax run on [batch, n_query] rows only.
        self.g.set_scope("head");
        let qp3 = self.g.node("Unsqueeze", &[&qpos, &ax2], vec![]);
        let hq = self.g.node("GatherND", &[&x, &qp3], vec![attr_i("batch_dims", 1)]);
        let wn = self.vector("output_norm.weight", h)?;
        let hn = self.rms_norm(&hq, &wn);
        let flat_shape = self.g.ints(&[-1, h as i64]);
        let flat = self.g.node("Reshape", &[&hn, &flat_shape], vec![]);
        let out_w = if cfg.tie_word_embeddings {
            embed.clone()
        } else {
            let t = self.tensor("output.weight", &[v, h])?;
            self.g.initializer_f32("output.weight", &[v, h], t.data)
        };
        // Gemm with transB reads the [vocab, hidden] matrix as stored: no transposed copy of
        // the (tied) embedding.
        let mut logits = self.g.node("Gemm", &[&flat, &out_w], vec![attr_i("transB", 1)]);
        let qshape = self.g.node("Shape", &[&qpos], vec![]);
        let vdim = self.g.ints(&[v as i64]);
        let shape3 = self.g.node("Concat", &[&qshape, &vdim], vec![attr_i("axis", 0)]);
        logits = self.g.node("Reshape", &[&logits, &shape3], vec![]);
        if let Some(c) = cfg.final_logit_softcapping {
            logits = self.softcap(&logits, c);
        }
        self.g.node_named("LogSoftmax", &[&logits], &["logprobs"], vec![attr_i("axis", -1)]);

        self.g.output(
            "logprobs",
            DataType::Float,
            vec![sym("batch"), sym("n_query"), Dim::Fixed(v as i64)],
        );
        for i in 0..cfg.num_layers {
            self.g.output(&format!("present.{i}.key"), DataType::Float, kv_dims("total"));
            self.g.output(&format!("present.{i}.value"), DataType::Float, kv_dims("total"));
        }
        Ok(())
    }

    /// Additive attention biases `[batch, 1, 1, seq, total]`: 0 where key k is visible to
    /// query q (absolute index past + q), `MASKED` elsewhere. Visible means k <= past + q
    /// and attention_mask[b, k] == 1, and for sliding layers also (past + q) - k < window.
    fn masks(
        &mut self,
        ids: &str,
        attention_mask: &str,
        past_k0: &str,
    ) -> (String, Option<String>) {
        let g = &mut self.g;
        let zero = g.const_i64(&[], &[0]);
        let one = g.const_i64(&[], &[1]);
        let two = g.const_i64(&[], &[2]);
        let ids_shape = g.node("Shape", &[ids], vec![]);
        let seq = g.node("Gather", &[&ids_shape, &one], vec![attr_i("axis", 0)]);
        let past_shape = g.node("Shape", &[past_k0], vec![]);
        let past = g.node("Gather", &[&past_shape, &two], vec![attr_i("axis", 0)]);
        let total = g.node("Add", &[&past, &seq], vec![]);
        let kidx = g.node("Range", &[&zero, &total, &one], vec![]);
        let qidx = g.node("Range", &[&past, &total, &one], vec![]);
        let ax0 = g.ints(&[0]);
        let ax1 = g.ints(&[1]);
        let k_row = g.node("Unsqueeze", &[&kidx, &ax0], vec![]); // [1, T]
        let q_col = g.node("Unsqueeze", &[&qidx, &ax1], vec![]); // [S, 1]
        let causal = g.node("LessOrEqual", &[&k_row, &q_col], vec![]); // [S, T]
        let one_i = g.const_i64(&[], &[1]);
        let real = g.node("Equal", &[attention_mask, &one_i], vec![]); // [B, T]
        let ax123 = g.ints(&[1, 2, 3]);
        let real5 = g.node("Unsqueeze", &[&real, &ax123], vec![]); // [B, 1, 1, 1, T]
        let visible = g.node("And", &[&causal, &real5], vec![]); // [B, 1, 1, S, T]
        let zero_f = g.scalar(0.0);
        let masked = g.scalar(MASKED);
        let full = g.node("Where", &[&visible, &zero_f, &masked], vec![]);
        let sliding = match self.cfg.sliding_window {
            Some(w) if self.cfg.layer_sliding.iter().any(|&s| s) => {
                let g = &mut self.g;
                let win = g.const_i64(&[], &[w as i64]);
                let dist = g.node("Sub", &[&q_col, &k_row], vec![]); // [S, T]
                let near = g.node("Less", &[&dist, &win], vec![]);
                let vis = g.node("And", &[&visible, &near], vec![]);
                Some(g.node("Where", &[&vis, &zero_f, &masked], vec![]))
            }
            _ => None,
        };
        (full, sliding)
    }

    /// `q @ kᵀ` over the head dimension. ONNX Runtime's CPU GEMM (MLAS) splits a
    /// contraction longer than 128 into blocks whose size depends on the *other* matrix
    /// dimension, here the key count; a padded batch would then sum a real token's scores
    /// in a different order than the same sequence alone (≈3e-5 on Gemma's 256-wide heads).
    /// Contracting in fixed 128-wide slices and adding them in a fixed order keeps scores
    /// independent of padding and batch composition.
    fn scores(&mut self, q5: &str, k_tr5: &str) -> String {
        const SLICE: usize = 128;
        let hd = self.cfg.head_dim;
        if hd <= SLICE || !hd.is_multiple_of(SLICE) {
            return self.g.node("MatMul", &[q5, k_tr5], vec![]);
        }
        let n = hd / SLICE;
        let qs = self.g.node_n("Split", &[q5], n, vec![attr_i("axis", 4)]);
        let ks = self.g.node_n("Split", &[k_tr5], n, vec![attr_i("axis", 3)]);
        let mut acc = self.g.node("MatMul", &[&qs[0], &ks[0]], vec![]);
        for i in 1..n {
            let part = self.g.node("MatMul", &[&qs[i], &ks[i]], vec![]);
            acc = self.g.node("Add", &[&acc, &part], vec![]);
        }
        acc
    }

    fn silu(&mut self, x: &str) -> String {
        let s = self.g.node("Sigmoid", &[x], vec![]);
        self.g.node("Mul", &[x, &s], vec![])
    }

    /// GELU, tanh approximation (`gelu_pytorch_tanh`):
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
    fn gelu_tanh(&mut self, x: &str) -> String {
        let g = &mut self.g;
        let c = g.scalar(0.044715);
        let beta = g.scalar((2.0f64 / std::f64::consts::PI).sqrt() as f32);
        let half = g.scalar(0.5);
        let one = g.scalar(1.0);
        let x2 = g.node("Mul", &[x, x], vec![]);
        let x3 = g.node("Mul", &[&x2, x], vec![]);
        let cx3 = g.node("Mul", &[&x3, &c], vec![]);
        let inner = g.node("Add", &[x, &cx3], vec![]);
        let inner = g.node("Mul", &[&inner, &beta], vec![]);
        let t = g.node("Tanh", &[&inner], vec![]);
        let t1 = g.node("Add", &[&t, &one], vec![]);
        let hx = g.node("Mul", &[x, &half], vec![]);
        g.node("Mul", &[&hx, &t1], vec![])
    }
}
