//! End-to-end checks of the import on the two real models: import the GGUF files, run the
//! graph with ONNX Runtime, and compare with the golden log-probs that Hugging Face
//! transformers computed on the same weights (`shared/reference/golden_logprobs.jsonl`).
//!
//! Needs the files that `scripts/setup-models.sh` puts in `$DESCRY_HOME` (default
//! `~/.cache/descry`): `gguf/SmolLM2-135M-Instruct.Q4_1.gguf`,
//! `gguf/gemma-3-270m-q4_k_m.gguf` and `onnxruntime/libonnxruntime.so.1.31.1` (or
//! `ORT_DYLIB_PATH`). A missing file fails the tests with a message saying so.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use descry_onnx_build::{import, ImportError, ImportOptions, Manifest};
use ort::environment::Environment;
use ort::session::{Session, SessionInputValue};
use ort::value::Tensor;
use serde_json::Value;

/// Tolerance the golden file promises for a correct fp32 import.
const GOLDEN_TOL: f32 = 2e-3;
/// Scoring in chunks through past key/values vs. in one pass.
const CHUNK_TOL: f32 = 1e-4;
/// A right-padded batch vs. each sequence alone.
const BATCH_TOL: f32 = 1e-5;

#[derive(Clone, Copy)]
struct ModelSpec {
    /// The `model` field of the golden file.
    golden: &'static str,
    /// The GGUF file under `$DESCRY_HOME/gguf`.
    file: &'static str,
}

const SMOL: ModelSpec =
    ModelSpec { golden: "smollm2-135m-instruct", file: "SmolLM2-135M-Instruct.Q4_1.gguf" };
const GEMMA: ModelSpec = ModelSpec { golden: "gemma-3-270m", file: "gemma-3-270m-q4_k_m.gguf" };

const SETUP_HINT: &str =
    "run scripts/setup-models.sh (it puts the GGUF models and ONNX Runtime in \
                          $DESCRY_HOME, default ~/.cache/descry)";

fn descry_home() -> PathBuf {
    if let Some(h) = std::env::var_os("DESCRY_HOME") {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME").expect("HOME is not set and DESCRY_HOME is not set");
    PathBuf::from(home).join(".cache/descry")
}

fn gguf_path(m: ModelSpec) -> PathBuf {
    let p = descry_home().join("gguf").join(m.file);
    assert!(p.is_file(), "model file {} is missing: {SETUP_HINT}", p.display());
    p
}

fn golden_path() -> PathBuf {
    if let Some(p) = std::env::var_os("DESCRY_GOLDEN") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/golden_logprobs.jsonl")
}

/// The golden rows of one model.
fn golden(m: ModelSpec) -> Vec<Value> {
    let path = golden_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e} (set DESCRY_GOLDEN to the golden file)", path.display())
    });
    let rows: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("golden line is JSON"))
        .filter(|v: &Value| v["model"] == m.golden)
        .collect();
    assert!(!rows.is_empty(), "no golden rows for {}", m.golden);
    rows
}

fn ids_of(row: &Value) -> Vec<i64> {
    row["input_ids"]
        .as_array()
        .expect("input_ids")
        .iter()
        .map(|v| v.as_i64().expect("id"))
        .collect()
}

/// The golden query positions of a row, ascending.
fn positions_of(row: &Value) -> Vec<i64> {
    let mut p: Vec<i64> = row["positions"]
        .as_object()
        .expect("positions")
        .keys()
        .map(|k| k.parse().expect("position"))
        .collect();
    p.sort_unstable();
    p
}

fn environment() -> &'static Environment {
    static ENV: OnceLock<Environment> = OnceLock::new();
    ENV.get_or_init(|| {
        let lib = std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| descry_home().join("onnxruntime/libonnxruntime.so.1.31.1"));
        assert!(lib.is_file(), "ONNX Runtime library {} is missing: {SETUP_HINT}", lib.display());
        ort::init_from(&lib)
            .unwrap_or_else(|e| panic!("loading {}: {e}", lib.display()))
            .with_name("descry-onnx-build-tests")
            .build()
            .expect("ONNX Runtime environment")
    })
}

struct Imported {
    dir: PathBuf,
    manifest: Manifest,
    elapsed: Duration,
}

fn import_once(
    m: ModelSpec,
    cell: &'static OnceLock<Imported>,
    sub: &str,
    opts: ImportOptions,
) -> &'static Imported {
    cell.get_or_init(|| {
        // Per process: test runners may run tests of this file in parallel processes.
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("descry-import")
            .join(format!("{sub}-{}", std::process::id()));
        let t = Instant::now();
        let manifest = import(&gguf_path(m), &out, &ImportOptions { force: true, ..opts })
            .unwrap_or_else(|e| panic!("import of {} failed: {e}", m.file));
        let elapsed = t.elapsed();
        eprintln!("imported {} into {} in {elapsed:.2?}", m.file, out.display());
        Imported { dir: out, manifest, elapsed }
    })
}

fn imported(m: ModelSpec) -> &'static Imported {
    static SMOL_DIR: OnceLock<Imported> = OnceLock::new();
    static GEMMA_DIR: OnceLock<Imported> = OnceLock::new();
    let cell = if m.golden == SMOL.golden { &SMOL_DIR } else { &GEMMA_DIR };
    import_once(m, cell, m.golden, ImportOptions::default())
}

/// Key/value cache of every layer: `[batch, kv_heads, len, head_dim]` each.
#[derive(Clone)]
struct Past {
    batch: usize,
    len: usize,
    kv: Vec<(Vec<f32>, Vec<f32>)>,
}

struct Runner {
    session: Mutex<Session>,
    layers: usize,
    kv_heads: usize,
    head_dim: usize,
    vocab: usize,
}

impl Runner {
    fn new(dir: &Path, manifest: &Manifest) -> Runner {
        let session = Session::builder(environment())
            .expect("session builder")
            .commit_from_file(dir.join("model.onnx"))
            .unwrap_or_else(|e| panic!("loading {}: {e}", dir.join("model.onnx").display()));
        Runner {
            session: Mutex::new(session),
            layers: manifest.num_layers,
            kv_heads: manifest.num_kv_heads,
            head_dim: manifest.head_dim,
            vocab: manifest.vocab_size,
        }
    }

    fn empty_past(&self, batch: usize) -> Past {
        Past { batch, len: 0, kv: vec![(Vec::new(), Vec::new()); self.layers] }
    }

    /// One forward pass over `batch` rows of `seq` new tokens each (row-major), with
    /// `queries` per row. Returns `logprobs` `[batch, n_query, vocab]` and the presents.
    fn run(
        &self,
        batch: usize,
        ids: &[i64],
        mask: &[i64],
        queries: &[i64],
        past: &Past,
    ) -> (Vec<f32>, Past) {
        let seq = ids.len() / batch;
        let n_query = queries.len() / batch;
        let total = past.len + seq;
        assert_eq!(mask.len(), batch * total);
        assert_eq!(past.batch, batch);
        let positions: Vec<i64> =
            (0..batch).flat_map(|_| (past.len..total).map(|p| p as i64)).collect();
        let mut inputs: Vec<(String, SessionInputValue<'static>)> = vec![
            (
                "input_ids".into(),
                Tensor::from_array((vec![batch, seq], ids.to_vec())).unwrap().into(),
            ),
            (
                "position_ids".into(),
                Tensor::from_array((vec![batch, seq], positions)).unwrap().into(),
            ),
            (
                "attention_mask".into(),
                Tensor::from_array((vec![batch, total], mask.to_vec())).unwrap().into(),
            ),
            (
                "query_positions".into(),
                Tensor::from_array((vec![batch, n_query], queries.to_vec())).unwrap().into(),
            ),
        ];
        let kv_shape = vec![batch, self.kv_heads, past.len, self.head_dim];
        for (i, (k, v)) in past.kv.iter().enumerate() {
            inputs.push((
                format!("past.{i}.key"),
                Tensor::from_array((kv_shape.clone(), k.clone())).unwrap().into(),
            ));
            inputs.push((
                format!("past.{i}.value"),
                Tensor::from_array((kv_shape.clone(), v.clone())).unwrap().into(),
            ));
        }
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session.run(inputs).expect("session run");
        let (shape, lp) = outputs["logprobs"].try_extract_tensor::<f32>().expect("logprobs tensor");
        assert_eq!(&**shape, &[batch as i64, n_query as i64, self.vocab as i64]);
        let logprobs = lp.to_vec();
        let mut kv = Vec::with_capacity(self.layers);
        for i in 0..self.layers {
            let get = |name: String| {
                let (shape, data) =
                    outputs[name.as_str()].try_extract_tensor::<f32>().expect("present tensor");
                assert_eq!(
                    &**shape,
                    &[batch as i64, self.kv_heads as i64, total as i64, self.head_dim as i64]
                );
                data.to_vec()
            };
            kv.push((get(format!("present.{i}.key")), get(format!("present.{i}.value"))));
        }
        (logprobs, Past { batch, len: total, kv })
    }

    /// Log-probs of one unpadded sequence at `queries`.
    fn score(&self, ids: &[i64], queries: &[i64]) -> Vec<f32> {
        self.run(1, ids, &vec![1; ids.len()], queries, &self.empty_past(1)).0
    }
}

fn runner(m: ModelSpec) -> &'static Runner {
    static SMOL_RUN: OnceLock<Runner> = OnceLock::new();
    static GEMMA_RUN: OnceLock<Runner> = OnceLock::new();
    let cell = if m.golden == SMOL.golden { &SMOL_RUN } else { &GEMMA_RUN };
    cell.get_or_init(|| {
        let imp = imported(m);
        Runner::new(&imp.dir, &imp.manifest)
    })
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Every listed top-10 and candidate log-prob at every listed position, within 2e-3.
fn check_golden(m: ModelSpec) {
    let r = runner(m);
    let mut worst = 0f32;
    let mut failures = Vec::new();
    let mut checked = 0usize;
    for row in golden(m) {
        let id = row["id"].as_str().unwrap_or("?").to_string();
        let ids = ids_of(&row);
        let queries = positions_of(&row);
        let t = Instant::now();
        let lp = r.score(&ids, &queries);
        let mut row_worst = 0f32;
        for (qi, q) in queries.iter().enumerate() {
            let entry = &row["positions"][q.to_string()];
            let at = |tok: i64| lp[qi * r.vocab + tok as usize];
            let mut expect = Vec::new();
            for pair in entry["top10"].as_array().expect("top10") {
                expect.push((
                    format!("top10 token {}", pair[0]),
                    pair[0].as_i64().unwrap(),
                    pair[1].as_f64().unwrap(),
                ));
            }
            for (name, c) in entry["candidates"].as_object().expect("candidates") {
                let tok = c["token_ids"][0].as_i64().unwrap();
                expect.push((
                    format!("candidate {name:?}"),
                    tok,
                    c["first_token_logprob"].as_f64().unwrap(),
                ));
            }
            for (what, tok, want) in expect {
                checked += 1;
                let got = at(tok);
                let d = (got - want as f32).abs();
                row_worst = row_worst.max(d);
                if d.is_nan() || d > GOLDEN_TOL {
                    failures.push(format!(
                        "{id} position {q} {what}: got {got}, golden {want} (|Δ| = {d:.2e})"
                    ));
                }
            }
        }
        eprintln!(
            "{}: {id} ({} tokens): max |Δ| = {row_worst:.2e} ({:.2?})",
            m.golden,
            ids.len(),
            t.elapsed()
        );
        worst = worst.max(row_worst);
    }
    eprintln!("{}: {checked} golden values, max |Δ logprob| = {worst:.3e}", m.golden);
    assert!(
        failures.is_empty(),
        "{} of {checked} golden values off by more than {GOLDEN_TOL}:\n{}",
        failures.len(),
        failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// The long prompt scored as a prefix and then the rest through past key/values equals one
/// pass. For Gemma the split (700) and the queries (837, 1674) lie beyond the 512-token
/// window, so the sliding mask is exercised across the chunk boundary.
fn check_chunked(m: ModelSpec) {
    let r = runner(m);
    let row = golden(m).into_iter().find(|r| r["id"] == "long-pd-history").expect("long prompt");
    let ids = ids_of(&row);
    let queries = positions_of(&row);
    let split = 700usize;
    let full = r.score(&ids, &queries);

    let before: Vec<i64> = queries.iter().copied().filter(|&q| (q as usize) < split).collect();
    let after: Vec<i64> = queries.iter().copied().filter(|&q| (q as usize) >= split).collect();
    assert!(!before.is_empty() && !after.is_empty());
    let (lp1, past) = r.run(1, &ids[..split], &vec![1; split], &before, &r.empty_past(1));
    let rel: Vec<i64> = after.iter().map(|q| q - split as i64).collect();
    let (lp2, past2) = r.run(1, &ids[split..], &vec![1; ids.len()], &rel, &past);
    assert_eq!(past2.len, ids.len());
    let chunked: Vec<f32> = lp1.into_iter().chain(lp2).collect();
    let d = max_abs_diff(&full, &chunked);
    eprintln!(
        "{}: chunked ({split} + {}) vs one pass: max |Δ| = {d:.3e}",
        m.golden,
        ids.len() - split
    );
    assert!(
        d <= CHUNK_TOL,
        "{}: chunked scoring differs from one pass by {d:e} > {CHUNK_TOL:e}",
        m.golden
    );
}

/// Two sequences of different lengths, right-padded into one batch, score as each alone.
fn check_batch(m: ModelSpec) {
    let r = runner(m);
    let rows = golden(m);
    let a = rows.iter().find(|r| r["id"] == "ultimatum-plain").expect("short prompt");
    let b = rows.iter().find(|r| r["id"] == "akata-pd-round7").expect("longer prompt");
    let (ia, ib) = (ids_of(a), ids_of(b));
    let (qa, qb) = (positions_of(a), positions_of(b));
    assert_eq!(qa.len(), qb.len());
    let len = ia.len().max(ib.len());
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    for s in [&ia, &ib] {
        // Padding token 0 with mask 0: its value must not matter.
        ids.extend(s.iter().copied().chain(std::iter::repeat_n(0, len - s.len())));
        mask.extend(std::iter::repeat_n(1, s.len()).chain(std::iter::repeat_n(0, len - s.len())));
    }
    let queries: Vec<i64> = qa.iter().chain(&qb).copied().collect();
    let (batch, _) = r.run(2, &ids, &mask, &queries, &r.empty_past(2));
    let alone_a = r.score(&ia, &qa);
    let alone_b = r.score(&ib, &qb);
    let half = batch.len() / 2;
    let da = max_abs_diff(&batch[..half], &alone_a);
    let db = max_abs_diff(&batch[half..], &alone_b);
    eprintln!("{}: padded batch vs alone: max |Δ| = {da:.3e} (padded row), {db:.3e}", m.golden);
    assert!(
        da <= BATCH_TOL && db <= BATCH_TOL,
        "{}: batch differs from single: {da:e}, {db:e}",
        m.golden
    );
}

/// `tokenizer.json` of the folder turns every golden text into the golden ids.
fn check_tokenizer(m: ModelSpec) {
    let imp = imported(m);
    let tok = tokenizers::Tokenizer::from_file(imp.dir.join("tokenizer.json"))
        .expect("tokenizer.json loads");
    for row in golden(m) {
        let enc = tok.encode(row["text"].as_str().expect("text"), true).expect("encodes");
        let got: Vec<i64> = enc.get_ids().iter().map(|&i| i64::from(i)).collect();
        assert_eq!(got, ids_of(&row), "{}: {} tokenizes differently", m.golden, row["id"]);
    }
}

/// Runs `check`, turning a panic into a recorded failure so one test reports every
/// failing check of a model.
fn soft(failures: &mut Vec<String>, what: &str, check: impl FnOnce()) {
    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)) {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        failures.push(format!("{what}: {msg}"));
    }
}

/// Everything about one model, in one test so that the model is imported once per run
/// whatever the test runner (nextest runs each test in its own process).
fn end_to_end(m: ModelSpec, manifest_check: fn(&Imported)) {
    let imp = imported(m);
    let mut failures = Vec::new();
    soft(&mut failures, "manifest", || manifest_check(imp));
    soft(&mut failures, "tokenizer", || check_tokenizer(m));
    soft(&mut failures, "golden log-probs", || check_golden(m));
    soft(&mut failures, "chunked scoring", || check_chunked(m));
    soft(&mut failures, "padded batch", || check_batch(m));
    if std::env::var_os("DESCRY_KEEP_IMPORT").is_none() {
        let _ = std::fs::remove_dir_all(&imp.dir);
    }
    assert!(failures.is_empty(), "{}:\n{}", m.golden, failures.join("\n"));
}

fn check_smol_manifest(s: &Imported) {
    let m = &s.manifest;
    eprintln!("smollm2 import: {:.2?}", s.elapsed);
    assert_eq!(m, &Manifest::read(&s.dir).unwrap(), "manifest on disk = manifest returned");
    assert_eq!(
        (m.format, m.architecture.as_str(), m.name.as_str()),
        (2, "llama", "smollm2-135m-instruct")
    );
    assert_eq!((m.vocab_size, m.hidden_size, m.num_layers), (49152, 576, 30));
    assert_eq!((m.num_attention_heads, m.num_kv_heads, m.head_dim), (9, 3, 64));
    assert_eq!((m.context_length, m.sliding_window), (8192, None));
    assert_eq!(m.source.kind, "gguf");
    assert_eq!(m.source.sha256, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53");
    assert!(m.has_chat_template && s.dir.join("chat_template.jinja").is_file());
    assert!(!m.add_bos_token);
    assert_eq!(m.dtype, "f32");
    assert_eq!(m.weights_sha256.len(), 64);
    // 134.5 M parameters, of which 49152 × 576 in the (tied) embedding.
    assert_eq!(m.non_embedding_params, 106_203_456);
    check_files(&s.dir, m);
}

fn check_gemma_manifest(g: &Imported) {
    let m = &g.manifest;
    eprintln!("gemma3 import: {:.2?}", g.elapsed);
    assert_eq!(m, &Manifest::read(&g.dir).unwrap(), "manifest on disk = manifest returned");
    assert_eq!((m.format, m.architecture.as_str(), m.name.as_str()), (2, "gemma3", "gemma-3-270m"));
    assert_eq!((m.vocab_size, m.hidden_size, m.num_layers), (262144, 640, 18));
    assert_eq!((m.num_attention_heads, m.num_kv_heads, m.head_dim), (4, 1, 256));
    assert_eq!((m.context_length, m.sliding_window), (32768, Some(512)));
    assert_eq!(m.source.sha256, "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818");
    assert!(!m.has_chat_template && !g.dir.join("chat_template.jinja").exists());
    assert!(m.add_bos_token);
    assert_eq!(m.bos_token.as_deref(), Some("<bos>"));
    assert_eq!(m.non_embedding_params, 100_326_016);
    check_files(&g.dir, m);
}

/// The folder's files, and the manifest's `onnx` artifacts: exactly the graph, at its size.
fn check_files(dir: &Path, m: &Manifest) {
    let size = |f: &str| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
    let onnx: Vec<(&str, u64)> =
        m.artifacts["onnx"].iter().map(|(f, &n)| (f.as_str(), n)).collect();
    assert_eq!(m.artifacts.len(), 1, "only onnx artifacts: {:?}", m.artifacts);
    assert_eq!(onnx, [("model.onnx", size("model.onnx"))]);
    for f in ["model.onnx", "tokenizer.json", "tokenizer_config.json", "descry-model.json"] {
        assert!(dir.join(f).is_file(), "{} lacks {f}", dir.display());
    }
    assert!(!dir.join("model.onnx.data").exists(), "weights under 2 GB stay inline");
}

#[test]
fn smollm2_end_to_end() {
    end_to_end(SMOL, check_smol_manifest);
}

#[test]
fn gemma3_end_to_end() {
    end_to_end(GEMMA, check_gemma_manifest);
}

/// Weights in `model.onnx.data` (as for models over 2 GB) give the same results.
#[test]
fn external_data_layout_scores_the_same() {
    static INLINE: OnceLock<Imported> = OnceLock::new();
    static EXTERNAL: OnceLock<Imported> = OnceLock::new();
    let inl = import_once(SMOL, &INLINE, "smollm2-inline", ImportOptions::default());
    let ext = import_once(
        SMOL,
        &EXTERNAL,
        "smollm2-external",
        ImportOptions { external_data: true, ..Default::default() },
    );
    let onnx_len = std::fs::metadata(ext.dir.join("model.onnx")).unwrap().len();
    let data_len = std::fs::metadata(ext.dir.join("model.onnx.data")).unwrap().len();
    assert!(
        onnx_len < 1 << 20 && data_len > 500_000_000,
        "model.onnx {onnx_len} B, data {data_len} B"
    );
    assert_eq!(
        ext.manifest.weights_sha256, inl.manifest.weights_sha256,
        "the digest ignores the layout"
    );
    let artifacts: Vec<(&str, u64)> =
        ext.manifest.artifacts["onnx"].iter().map(|(f, &n)| (f.as_str(), n)).collect();
    assert_eq!(artifacts, [("model.onnx", onnx_len), ("model.onnx.data", data_len)]);
    let row = golden(SMOL).into_iter().find(|r| r["id"] == "ultimatum-plain").unwrap();
    let (ids, q) = (ids_of(&row), positions_of(&row));
    let external = Runner::new(&ext.dir, &ext.manifest).score(&ids, &q);
    let inline = Runner::new(&inl.dir, &inl.manifest).score(&ids, &q);
    let _ = std::fs::remove_dir_all(&ext.dir);
    let _ = std::fs::remove_dir_all(&inl.dir);
    assert_eq!(max_abs_diff(&external, &inline), 0.0);
}

#[test]
fn existing_folder_is_not_replaced_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("model");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("descry-model.json"), "{}").unwrap();
    let err = import(&gguf_path(SMOL), &out, &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, ImportError::OutputExists { .. }), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(out.join("descry-model.json")).unwrap(), "{}");
}

#[test]
fn truncated_gguf_fails_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("cut.gguf");
    let bytes = std::fs::read(gguf_path(SMOL)).unwrap();
    std::fs::write(&src, &bytes[..bytes.len() / 2]).unwrap();
    let out = tmp.path().join("model");
    let err = import(&src, &out, &ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    let left: Vec<_> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("cut.gguf")], "the partial folder is removed");
}

/// A minimal GGUF with only `general.architecture` (no tensors).
fn gguf_with_arch(arch: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // tensors
    b.extend_from_slice(&1u64.to_le_bytes()); // metadata entries
    let key = "general.architecture";
    b.extend_from_slice(&(key.len() as u64).to_le_bytes());
    b.extend_from_slice(key.as_bytes());
    b.extend_from_slice(&8u32.to_le_bytes()); // string
    b.extend_from_slice(&(arch.len() as u64).to_le_bytes());
    b.extend_from_slice(arch.as_bytes());
    b
}

#[test]
fn unknown_architecture_is_named_with_the_supported_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("falcon.gguf");
    std::fs::write(&src, gguf_with_arch("falcon")).unwrap();
    let err = import(&src, &tmp.path().join("out"), &ImportOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("\"falcon\"") && msg.contains("llama") && msg.contains("gemma3"), "{msg}");
    assert!(!tmp.path().join("out").exists());
}

/// The Hugging Face name of a GGUF tensor, written out independently of the importer's own
/// table, and whether the checkpoint stores `w` where the GGUF stores `1 + w` (Gemma norms).
fn hf_tensor_name(gguf: &str, gemma: bool) -> (String, bool) {
    match gguf {
        "token_embd.weight" => return ("model.embed_tokens.weight".into(), false),
        "output.weight" => return ("lm_head.weight".into(), false),
        "output_norm.weight" => return ("model.norm.weight".into(), gemma),
        _ => {}
    }
    let rest = gguf.strip_prefix("blk.").unwrap_or_else(|| panic!("unexpected tensor {gguf}"));
    let (layer, leaf) = rest.split_once('.').unwrap();
    let (module, plus) = match (leaf, gemma) {
        ("attn_norm.weight", _) => ("input_layernorm.weight", gemma),
        ("attn_q.weight", _) => ("self_attn.q_proj.weight", false),
        ("attn_k.weight", _) => ("self_attn.k_proj.weight", false),
        ("attn_v.weight", _) => ("self_attn.v_proj.weight", false),
        ("attn_output.weight", _) => ("self_attn.o_proj.weight", false),
        ("attn_q_norm.weight", true) => ("self_attn.q_norm.weight", true),
        ("attn_k_norm.weight", true) => ("self_attn.k_norm.weight", true),
        ("post_attention_norm.weight", true) => ("post_attention_layernorm.weight", true),
        ("ffn_norm.weight", true) => ("pre_feedforward_layernorm.weight", true),
        ("post_ffw_norm.weight", true) => ("post_feedforward_layernorm.weight", true),
        ("ffn_norm.weight", false) => ("post_attention_layernorm.weight", false),
        ("ffn_gate.weight", _) => ("mlp.gate_proj.weight", false),
        ("ffn_up.weight", _) => ("mlp.up_proj.weight", false),
        ("ffn_down.weight", _) => ("mlp.down_proj.weight", false),
        _ => panic!("unexpected tensor {gguf}"),
    };
    (format!("model.layers.{layer}.{module}"), plus)
}

/// Writes a Hugging Face checkpoint folder (f32 safetensors, config.json, tokenizer files)
/// holding the GGUF model's dequantized weights in Hugging Face conventions: q/k rows in
/// Hugging Face order (as transformers' GGUF loader produces them) and Gemma norms as `w`.
fn write_hf_checkpoint(m: ModelSpec, dir: &Path) {
    use descry_onnx_build::arch::{weights::unpermute_rows, ModelConfig};
    use descry_onnx_build::GgufFile;
    let file = GgufFile::open(gguf_path(m)).unwrap();
    let cfg = ModelConfig::from_gguf(&file).unwrap();
    let gemma = cfg.architecture.name() == "gemma3";
    std::fs::create_dir_all(dir).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for info in file.tensors() {
        let mut t = file.tensor_f32(&info.name).unwrap();
        if !gemma && (info.name.ends_with("attn_q.weight") || info.name.ends_with("attn_k.weight"))
        {
            let heads =
                if info.name.ends_with("attn_q.weight") { cfg.num_heads } else { cfg.num_kv_heads };
            t.data = unpermute_rows(&t.data, &t.shape, heads).unwrap();
        }
        let (name, plus) = hf_tensor_name(&info.name, gemma);
        if plus {
            t.data.iter_mut().for_each(|w| *w -= 1.0);
        }
        let bytes: Vec<u8> = t.data.iter().flat_map(|x| x.to_le_bytes()).collect();
        tensors.push((name, t.shape, bytes));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::tensor::serialize_to_file(views, &None, &dir.join("model.safetensors")).unwrap();
    let mut config = serde_json::json!({
        "model_type": if gemma { "gemma3_text" } else { "llama" },
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        "rms_norm_eps": cfg.rms_norm_eps,
        "rope_theta": cfg.rope_theta,
        "max_position_embeddings": cfg.context_length,
        "tie_word_embeddings": true,
    });
    if gemma {
        config["sliding_window"] = serde_json::json!(cfg.sliding_window);
        config["query_pre_attn_scalar"] = serde_json::json!(cfg.head_dim);
        config["rope_local_base_freq"] = serde_json::json!(10000.0);
    }
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config).unwrap())
        .unwrap();
    descry_onnx_build::tokenizer::from_gguf(&file).unwrap().write_to(dir).unwrap();
}

/// A Hugging Face checkpoint folder imports to the same model as the GGUF file it was made
/// from: same golden log-probs, same manifest facts.
fn check_hf(m: ModelSpec) {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("descry-import").join(format!(
        "hf-{}-{}",
        m.golden,
        std::process::id()
    ));
    let ckpt = base.join("checkpoint");
    let out = base.join("model");
    write_hf_checkpoint(m, &ckpt);
    let result = std::panic::catch_unwind(|| {
        let manifest = import(&ckpt, &out, &ImportOptions::default())
            .unwrap_or_else(|e| panic!("HF import: {e}"));
        assert_eq!(manifest.source.kind, "hf");
        assert_eq!(manifest.name, "checkpoint");
        let runner = Runner::new(&out, &manifest);
        let mut worst = 0f32;
        for row in golden(m)
            .iter()
            .filter(|r| r["id"] == "ultimatum-plain" || r["id"] == "long-pd-history")
        {
            let (ids, queries) = (ids_of(row), positions_of(row));
            let lp = runner.score(&ids, &queries);
            for (qi, q) in queries.iter().enumerate() {
                let entry = &row["positions"][q.to_string()];
                for pair in entry["top10"].as_array().unwrap() {
                    let got = lp[qi * runner.vocab + pair[0].as_i64().unwrap() as usize];
                    let d = (got - pair[1].as_f64().unwrap() as f32).abs();
                    assert!(d <= GOLDEN_TOL, "{} {} position {q}: |Δ| = {d}", m.golden, row["id"]);
                    worst = worst.max(d);
                }
            }
        }
        eprintln!("{} from a Hugging Face folder: max |Δ| = {worst:.3e}", m.golden);
        manifest
    });
    let _ = std::fs::remove_dir_all(&base);
    let manifest = result.unwrap_or_else(|p| std::panic::resume_unwind(p));
    let gguf_cfg = descry_onnx_build::arch::ModelConfig::from_gguf(
        &descry_onnx_build::GgufFile::open(gguf_path(m)).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest.num_layers, gguf_cfg.num_layers);
    assert_eq!(manifest.sliding_window, gguf_cfg.sliding_window);
}

#[test]
fn hf_checkpoints_import_like_their_gguf() {
    check_hf(SMOL);
    check_hf(GEMMA);
}

/// Issue 12: a corrupt string length in a full-size GGUF said "file is truncated". A
/// whole copy of the real file with one string length damaged must name the length as
/// corrupt, with its offset and the file; the same file cut short still says truncated.
#[test]
fn a_corrupt_string_length_in_a_full_gguf_is_not_called_a_truncation() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(gguf_path(SMOL)).unwrap();
    // The value of "general.architecture": key, type 8 (string), then its u64 length.
    let key = b"general.architecture";
    let at =
        bytes.windows(key.len()).position(|w| w == key).expect("key in the header") + key.len();
    assert_eq!(u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()), 8);
    let len_at = at + 4;
    assert_eq!(u64::from_le_bytes(bytes[len_at..len_at + 8].try_into().unwrap()), 5, "\"llama\"");
    bytes[len_at + 5] = 0x01; // 2^40 + 5 bytes
    let p = tmp.path().join("damaged.gguf");
    std::fs::write(&p, &bytes).unwrap();
    let err = descry_onnx_build::GgufFile::open(&p).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ImportError::Format { .. }), "{msg}");
    assert!(msg.contains("damaged.gguf") && msg.contains("general.architecture"), "{msg}");
    assert!(
        msg.contains("string length") && msg.contains(&format!("byte offset {len_at}")),
        "{msg}"
    );
    assert!(!msg.contains("truncated"), "{msg}");
    // The undamaged file cut inside its tensor data: still a truncation.
    bytes[len_at + 5] = 0;
    std::fs::write(&p, &bytes[..bytes.len() - 1000]).unwrap();
    let msg = descry_onnx_build::GgufFile::open(&p).unwrap_err().to_string();
    assert!(msg.contains("truncated"), "{msg}");
}
