//! The graph builders on tiny random models, against a plain f64 reference implementation
//! of the same architectures. Covers what the two real models do not: Qwen2-style QKV
//! biases, an untied output matrix, all-layer sliding windows (Mistral), RoPE scaling,
//! soft-capping, a query scale other than head_dim^-0.5, and heads wider than 128. Also
//! checks the ONNX graph's masking: padding, past key/values and the sliding window.
//!
//! Needs only the ONNX Runtime library (`ORT_DYLIB_PATH` or
//! `$DESCRY_HOME/onnxruntime/libonnxruntime.so.1.31.1`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use descry_onnx_build::arch::{build_graph, Architecture, ModelConfig, RopeScaling, WeightSource};
use descry_onnx_build::onnx::{write_model, Model};
use descry_onnx_build::{ImportError, Tensor};
use ort::environment::Environment;
use ort::session::{Session, SessionInputValue};
use ort::value::Tensor as OrtTensor;

const TOL: f64 = 1e-4;

/// Deterministic pseudo-random numbers (a 64-bit LCG), uniform in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32, offset: f32) -> Vec<f32> {
        (0..n).map(|_| offset + scale * self.next()).collect()
    }
}

struct MemWeights(HashMap<String, Tensor>);

impl WeightSource for MemWeights {
    fn path(&self) -> &Path {
        Path::new("<memory>")
    }
    fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
    fn load(&self, name: &str) -> Result<Tensor, ImportError> {
        self.0.get(name).cloned().ok_or_else(|| ImportError::MissingTensor {
            path: "<memory>".into(),
            tensor: name.into(),
        })
    }
}

fn base_config(arch: Architecture) -> ModelConfig {
    ModelConfig {
        architecture: arch,
        source_arch: arch.name().into(),
        vocab_size: 37,
        hidden_size: 16,
        intermediate_size: 24,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 8,
        rope_theta: 10_000.0,
        rope_local_theta: 10_000.0,
        rope_scaling: RopeScaling::None,
        rms_norm_eps: 1e-6,
        context_length: 64,
        sliding_window: None,
        layer_sliding: vec![false, false],
        query_pre_attn_scalar: 8.0,
        attention_bias: false,
        tie_word_embeddings: true,
        final_logit_softcapping: None,
        attn_logit_softcapping: None,
    }
}

fn random_weights(cfg: &ModelConfig, seed: u64) -> MemWeights {
    let mut r = Rng(seed);
    let (h, hd, v, f) = (cfg.hidden_size, cfg.head_dim, cfg.vocab_size, cfg.intermediate_size);
    let (q, kv) = (cfg.num_heads * hd, cfg.num_kv_heads * hd);
    let mut m = HashMap::new();
    let mut put = |name: String, shape: Vec<usize>, data: Vec<f32>| {
        m.insert(name, Tensor { shape, data });
    };
    put("token_embd.weight".into(), vec![v, h], r.vec(v * h, 1.0, 0.0));
    if !cfg.tie_word_embeddings {
        put("output.weight".into(), vec![v, h], r.vec(v * h, 1.0, 0.0));
    }
    put("output_norm.weight".into(), vec![h], r.vec(h, 0.3, 1.0));
    let gemma = cfg.architecture == Architecture::Gemma3;
    for i in 0..cfg.num_layers {
        let p = |leaf: &str| format!("blk.{i}.{leaf}");
        put(p("attn_norm.weight"), vec![h], r.vec(h, 0.3, 1.0));
        put(p("attn_q.weight"), vec![q, h], r.vec(q * h, 0.4, 0.0));
        put(p("attn_k.weight"), vec![kv, h], r.vec(kv * h, 0.4, 0.0));
        put(p("attn_v.weight"), vec![kv, h], r.vec(kv * h, 0.4, 0.0));
        if cfg.attention_bias {
            put(p("attn_q.bias"), vec![q], r.vec(q, 0.3, 0.0));
            put(p("attn_k.bias"), vec![kv], r.vec(kv, 0.3, 0.0));
            put(p("attn_v.bias"), vec![kv], r.vec(kv, 0.3, 0.0));
        }
        put(p("attn_output.weight"), vec![h, q], r.vec(h * q, 0.3, 0.0));
        put(p("ffn_norm.weight"), vec![h], r.vec(h, 0.3, 1.0));
        put(p("ffn_gate.weight"), vec![f, h], r.vec(f * h, 0.4, 0.0));
        put(p("ffn_up.weight"), vec![f, h], r.vec(f * h, 0.4, 0.0));
        put(p("ffn_down.weight"), vec![h, f], r.vec(h * f, 0.3, 0.0));
        if gemma {
            put(p("attn_q_norm.weight"), vec![hd], r.vec(hd, 0.3, 1.0));
            put(p("attn_k_norm.weight"), vec![hd], r.vec(hd, 0.3, 1.0));
            put(p("post_attention_norm.weight"), vec![h], r.vec(h, 0.3, 1.0));
            put(p("post_ffw_norm.weight"), vec![h], r.vec(h, 0.3, 1.0));
        }
    }
    MemWeights(m)
}

// ------------------------------------------------------------------ reference (f64)

fn w<'a>(ws: &'a MemWeights, name: &str) -> &'a [f32] {
    &ws.0[name].data
}

fn matvec(m: &[f32], rows: usize, x: &[f64]) -> Vec<f64> {
    let cols = x.len();
    (0..rows).map(|r| (0..cols).map(|c| f64::from(m[r * cols + c]) * x[c]).sum()).collect()
}

fn rms(x: &[f64], weight: &[f32], eps: f64) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let s = 1.0 / (ms + eps).sqrt();
    x.iter().zip(weight).map(|(v, g)| v * s * f64::from(*g)).collect()
}

fn rope(u: &mut [f64], pos: usize, inv: &[f64]) {
    let half = u.len() / 2;
    for i in 0..half {
        let (c, s) = ((pos as f64 * inv[i]).cos(), (pos as f64 * inv[i]).sin());
        let (a, b) = (u[i], u[i + half]);
        u[i] = a * c - b * s;
        u[i + half] = b * c + a * s;
    }
}

fn inv_freq(cfg: &ModelConfig, base: f64, scaling: &RopeScaling) -> Vec<f64> {
    let d = cfg.head_dim;
    (0..d / 2)
        .map(|i| {
            let inv = 1.0 / base.powf((2 * i) as f64 / d as f64);
            match scaling {
                RopeScaling::None => inv,
                RopeScaling::Linear(f) => inv / f,
                RopeScaling::FreqFactors(v) => inv / f64::from(v[i]),
            }
        })
        .collect()
}

/// Log-probs of the next token after every position of `tokens`.
fn reference(cfg: &ModelConfig, ws: &MemWeights, tokens: &[usize]) -> Vec<Vec<f64>> {
    let gemma = cfg.architecture == Architecture::Gemma3;
    let (h, hd, nh, nkv) = (cfg.hidden_size, cfg.head_dim, cfg.num_heads, cfg.num_kv_heads);
    let g = nh / nkv;
    let eps = cfg.rms_norm_eps;
    let embed = w(ws, "token_embd.weight");
    let mut xs: Vec<Vec<f64>> = tokens
        .iter()
        .map(|&t| {
            let s = if gemma { (h as f64).sqrt() } else { 1.0 };
            embed[t * h..(t + 1) * h].iter().map(|&v| f64::from(v) * s).collect()
        })
        .collect();
    let global_inv = inv_freq(cfg, cfg.rope_theta, &cfg.rope_scaling);
    let local_inv = if gemma {
        inv_freq(cfg, cfg.rope_local_theta, &RopeScaling::None)
    } else {
        global_inv.clone()
    };
    let softcap = |x: f64, c: Option<f64>| c.map_or(x, |c| (x / c).tanh() * c);
    for layer in 0..cfg.num_layers {
        let p = |leaf: &str| format!("blk.{layer}.{leaf}");
        let sliding = cfg.layer_sliding[layer];
        let inv = if sliding { &local_inv } else { &global_inv };
        let n = tokens.len();
        let (mut qs, mut ks, mut vs) = (Vec::new(), Vec::new(), Vec::new());
        for (t, x) in xs.iter().enumerate() {
            let xn = rms(x, w(ws, &p("attn_norm.weight")), eps);
            let mut q = matvec(w(ws, &p("attn_q.weight")), nh * hd, &xn);
            let mut k = matvec(w(ws, &p("attn_k.weight")), nkv * hd, &xn);
            let mut v = matvec(w(ws, &p("attn_v.weight")), nkv * hd, &xn);
            if cfg.attention_bias {
                for (dst, b) in
                    [(&mut q, "attn_q.bias"), (&mut k, "attn_k.bias"), (&mut v, "attn_v.bias")]
                {
                    dst.iter_mut().zip(w(ws, &p(b))).for_each(|(d, b)| *d += f64::from(*b));
                }
            }
            for (vecs, heads, norm) in
                [(&mut q, nh, "attn_q_norm.weight"), (&mut k, nkv, "attn_k_norm.weight")]
            {
                for hh in 0..heads {
                    let u = &mut vecs[hh * hd..(hh + 1) * hd];
                    if gemma {
                        let normed = rms(u, w(ws, &p(norm)), eps);
                        u.copy_from_slice(&normed);
                    }
                    rope(u, t, inv);
                }
            }
            qs.push(q);
            ks.push(k);
            vs.push(v);
        }
        let scale = cfg.query_pre_attn_scalar.powf(-0.5);
        for t in 0..n {
            let mut ctx = vec![0f64; nh * hd];
            for hh in 0..nh {
                let kvh = hh / g;
                let visible: Vec<usize> = (0..=t)
                    .filter(|&s| !sliding || t - s < cfg.sliding_window.unwrap_or(usize::MAX))
                    .collect();
                let scores: Vec<f64> = visible
                    .iter()
                    .map(|&s| {
                        let dot: f64 =
                            (0..hd).map(|d| qs[t][hh * hd + d] * ks[s][kvh * hd + d]).sum();
                        softcap(dot * scale, cfg.attn_logit_softcapping)
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = scores.iter().map(|s| (s - m).exp()).sum();
                for (j, &s) in visible.iter().enumerate() {
                    let pr = (scores[j] - m).exp() / z;
                    for d in 0..hd {
                        ctx[hh * hd + d] += pr * vs[s][kvh * hd + d];
                    }
                }
            }
            let mut o = matvec(w(ws, &p("attn_output.weight")), h, &ctx);
            if gemma {
                o = rms(&o, w(ws, &p("post_attention_norm.weight")), eps);
            }
            xs[t].iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            let xn = rms(&xs[t], w(ws, &p("ffn_norm.weight")), eps);
            let gate = matvec(w(ws, &p("ffn_gate.weight")), cfg.intermediate_size, &xn);
            let up = matvec(w(ws, &p("ffn_up.weight")), cfg.intermediate_size, &xn);
            let act: Vec<f64> = gate
                .iter()
                .zip(&up)
                .map(|(&gv, &u)| {
                    let a = if gemma {
                        0.5 * gv
                            * (1.0
                                + ((2.0 / std::f64::consts::PI).sqrt()
                                    * (gv + 0.044715 * gv.powi(3)))
                                .tanh())
                    } else {
                        gv / (1.0 + (-gv).exp())
                    };
                    a * u
                })
                .collect();
            let mut mlp = matvec(w(ws, &p("ffn_down.weight")), h, &act);
            if gemma {
                mlp = rms(&mlp, w(ws, &p("post_ffw_norm.weight")), eps);
            }
            xs[t].iter_mut().zip(&mlp).for_each(|(a, b)| *a += b);
        }
    }
    let out = if cfg.tie_word_embeddings { embed } else { w(ws, "output.weight") };
    xs.iter()
        .map(|x| {
            let xn = rms(x, w(ws, "output_norm.weight"), eps);
            let logits: Vec<f64> = matvec(out, cfg.vocab_size, &xn)
                .into_iter()
                .map(|l| softcap(l, cfg.final_logit_softcapping))
                .collect();
            let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + logits.iter().map(|l| (l - m).exp()).sum::<f64>().ln();
            logits.iter().map(|l| l - lse).collect()
        })
        .collect()
}

// ------------------------------------------------------------------- ONNX Runtime

fn environment() -> &'static Environment {
    static ENV: OnceLock<Environment> = OnceLock::new();
    ENV.get_or_init(|| {
        let lib = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).unwrap_or_else(|| {
            let home = std::env::var_os("DESCRY_HOME").map(PathBuf::from).unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/descry")
            });
            home.join("onnxruntime/libonnxruntime.so.1.31.1")
        });
        assert!(
            lib.is_file(),
            "ONNX Runtime library {} is missing: run scripts/setup-models.sh",
            lib.display()
        );
        ort::init_from(&lib).expect("load ONNX Runtime").build().expect("environment")
    })
}

struct Built {
    _dir: tempfile::TempDir,
    session: Session,
    cfg: ModelConfig,
}

fn build(cfg: &ModelConfig, ws: &MemWeights) -> Built {
    let graph = build_graph(cfg, ws, descry_onnx_build::arch::WeightFormat::F32)
        .expect("graph builds")
        .graph;
    let dir = tempfile::tempdir().unwrap();
    let model = Model {
        ir_version: 8,
        opsets: vec![(String::new(), 17)],
        producer_name: "test".into(),
        producer_version: "0".into(),
        metadata: vec![],
        graph,
    };
    write_model(model, dir.path(), false).unwrap();
    let session = Session::builder(environment())
        .unwrap()
        .commit_from_file(dir.path().join("model.onnx"))
        .unwrap();
    Built { _dir: dir, session, cfg: cfg.clone() }
}

/// Key and value of every layer.
type Kv = Vec<(Vec<f32>, Vec<f32>)>;
/// `(logprobs [batch, n_query, vocab], presents per layer)`.
type Output = (Vec<f32>, Kv);

impl Built {
    fn run(
        &mut self,
        batch: usize,
        ids: &[i64],
        mask: &[i64],
        queries: &[i64],
        past: Option<(usize, &Kv)>,
    ) -> Output {
        let c = &self.cfg;
        let seq = ids.len() / batch;
        let past_len = past.map_or(0, |p| p.0);
        let pos: Vec<i64> =
            (0..batch).flat_map(|_| (past_len..past_len + seq).map(|p| p as i64)).collect();
        let mut inputs: Vec<(String, SessionInputValue<'static>)> = vec![
            (
                "input_ids".into(),
                OrtTensor::from_array((vec![batch, seq], ids.to_vec())).unwrap().into(),
            ),
            ("position_ids".into(), OrtTensor::from_array((vec![batch, seq], pos)).unwrap().into()),
            (
                "attention_mask".into(),
                OrtTensor::from_array((vec![batch, mask.len() / batch], mask.to_vec()))
                    .unwrap()
                    .into(),
            ),
            (
                "query_positions".into(),
                OrtTensor::from_array((vec![batch, queries.len() / batch], queries.to_vec()))
                    .unwrap()
                    .into(),
            ),
        ];
        for i in 0..c.num_layers {
            let shape = vec![batch, c.num_kv_heads, past_len, c.head_dim];
            let (k, v) = past.map_or((Vec::new(), Vec::new()), |p| p.1[i].clone());
            inputs.push((
                format!("past.{i}.key"),
                OrtTensor::from_array((shape.clone(), k)).unwrap().into(),
            ));
            inputs.push((
                format!("past.{i}.value"),
                OrtTensor::from_array((shape, v)).unwrap().into(),
            ));
        }
        let out = self.session.run(inputs).unwrap();
        let lp = out["logprobs"].try_extract_tensor::<f32>().unwrap().1.to_vec();
        let presents = (0..c.num_layers)
            .map(|i| {
                let get =
                    |n: String| out[n.as_str()].try_extract_tensor::<f32>().unwrap().1.to_vec();
                (get(format!("present.{i}.key")), get(format!("present.{i}.value")))
            })
            .collect();
        (lp, presents)
    }
}

fn max_diff(got: &[f32], want: &[f64]) -> f64 {
    got.iter().zip(want).map(|(g, w)| (f64::from(*g) - w).abs()).fold(0.0, f64::max)
}

/// The graph against the reference: every position of one sequence, the same split into a
/// prefix and a continuation through past key/values, and inside a right-padded batch.
fn check(name: &str, cfg: ModelConfig) {
    let ws = random_weights(&cfg, 0x5eed ^ name.len() as u64);
    let mut m = build(&cfg, &ws);
    let v = cfg.vocab_size;
    let tokens: Vec<usize> = (0..11).map(|i| (i * 7 + 3) % v).collect();
    let want = reference(&cfg, &ws, &tokens);
    let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    let n = ids.len();
    let all: Vec<i64> = (0..n as i64).collect();

    let (lp, _) = m.run(1, &ids, &vec![1; n], &all, None);
    let d = (0..n).map(|t| max_diff(&lp[t * v..(t + 1) * v], &want[t])).fold(0.0, f64::max);
    assert!(d <= TOL, "{name}: one pass vs reference: {d}");

    // Prefix of 6, then the remaining 5 through the past.
    let split = 6;
    let (_, past) = m.run(1, &ids[..split], &vec![1; split], &[0], None);
    let rest: Vec<i64> = (0..(n - split) as i64).collect();
    let (lp2, _) = m.run(1, &ids[split..], &vec![1; n], &rest, Some((split, &past)));
    let d = (split..n)
        .map(|t| max_diff(&lp2[(t - split) * v..(t - split + 1) * v], &want[t]))
        .fold(0.0, f64::max);
    assert!(d <= TOL, "{name}: continuation through past vs reference: {d}");

    // Batch: the sequence cut to 7 tokens and right-padded, beside the full sequence.
    let short = 7;
    let mut bids = ids[..short].to_vec();
    bids.extend(std::iter::repeat_n(1, n - short));
    bids.extend(&ids);
    let mut mask = vec![1i64; short];
    mask.extend(std::iter::repeat_n(0, n - short));
    mask.extend(std::iter::repeat_n(1, n));
    let q: Vec<i64> = vec![2, 6, 3, 10];
    let (lp3, _) = m.run(2, &bids, &mask, &q, None);
    for (slot, (row, pos)) in [(0, 2), (0, 6), (1, 3), (1, 10)].into_iter().enumerate() {
        let d = max_diff(&lp3[slot * v..(slot + 1) * v], &want[pos]);
        assert!(d <= TOL, "{name}: padded batch, row {row} position {pos}: {d}");
    }
}

#[test]
fn llama_plain() {
    check("llama", base_config(Architecture::Llama));
}

#[test]
fn qwen2_style_bias_untied_output_linear_rope_scaling() {
    let mut c = base_config(Architecture::Llama);
    c.source_arch = "qwen2".into();
    c.attention_bias = true;
    c.tie_word_embeddings = false;
    c.rope_scaling = RopeScaling::Linear(4.0);
    c.rope_theta = 1_000_000.0;
    c.rope_local_theta = 1_000_000.0;
    check("qwen2", c);
}

#[test]
fn mistral_style_sliding_window_on_every_layer_with_rope_factors() {
    let mut c = base_config(Architecture::Llama);
    c.sliding_window = Some(3);
    c.layer_sliding = vec![true, true];
    c.rope_scaling = RopeScaling::FreqFactors(vec![1.0, 2.0, 4.0, 8.0]);
    check("mistral", c);
}

#[test]
fn gemma3_local_and_global_layers_with_softcaps() {
    let mut c = base_config(Architecture::Gemma3);
    c.sliding_window = Some(3);
    c.layer_sliding = vec![true, false];
    c.rope_theta = 1_000_000.0;
    c.rope_scaling = RopeScaling::Linear(8.0);
    c.query_pre_attn_scalar = 12.0;
    c.attn_logit_softcapping = Some(5.0);
    c.final_logit_softcapping = Some(3.0);
    check("gemma3", c);
}

#[test]
fn wide_heads_are_contracted_in_slices() {
    let mut c = base_config(Architecture::Gemma3);
    c.num_heads = 2;
    c.num_kv_heads = 1;
    c.head_dim = 256;
    c.query_pre_attn_scalar = 256.0;
    c.sliding_window = Some(4);
    c.layer_sliding = vec![true, false];
    check("wide", c);
}
