//! Shared helpers: the real models (imported per test process) and the golden file.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use abi_stable::std_types::RVec;
use descry_abi::types::{ScoreQuery, ScoreRequest, ScoreSequence, SequenceScores};
use descry_onnx_build::{import, ImportOptions};
use serde_json::Value;

pub const SMOL: (&str, &str) = ("smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf");
pub const GEMMA: (&str, &str) = ("gemma-3-270m", "gemma-3-270m-q4_k_m.gguf");

pub fn descry_home() -> PathBuf {
    match std::env::var_os("DESCRY_HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/descry"),
    }
}

/// A model folder imported from the real GGUF file, removed when dropped.
pub struct ModelDir(pub PathBuf);

impl Drop for ModelDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Imports `model` into a folder private to this test process.
pub fn import_model(model: (&str, &str)) -> ModelDir {
    let gguf = descry_home().join("gguf").join(model.1);
    assert!(
        gguf.is_file(),
        "{} is missing: run scripts/setup-models.sh (it puts the test models and ONNX Runtime in \
         $DESCRY_HOME, default ~/.cache/descry)",
        gguf.display()
    );
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("descry-backend").join(format!(
        "{}-{}",
        model.0,
        std::process::id()
    ));
    import(&gguf, &out, &ImportOptions { force: true, ..Default::default() })
        .unwrap_or_else(|e| panic!("importing {}: {e}", gguf.display()));
    ModelDir(out)
}

pub fn golden(model: &str) -> Vec<Value> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/golden_logprobs.jsonl");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["model"] == model)
        .collect()
}

pub fn ids(row: &Value) -> Vec<u32> {
    row["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
}

/// A golden row as a scoring request: its three positions, each asking for the golden
/// top-10 tokens and the candidates' first tokens.
pub fn sequence(row: &Value) -> ScoreSequence {
    let mut queries = Vec::new();
    for (pos, entry) in row["positions"].as_object().unwrap() {
        let mut candidates: Vec<u32> = entry["top10"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[0].as_u64().unwrap() as u32)
            .collect();
        for c in entry["candidates"].as_object().unwrap().values() {
            candidates.push(c["token_ids"][0].as_u64().unwrap() as u32);
        }
        queries.push(ScoreQuery { position: pos.parse().unwrap(), candidates: candidates.into() });
    }
    ScoreSequence { tokens: ids(row).into(), queries: queries.into() }
}

/// The golden log-probs of `sequence(row)`'s candidates, in the same order.
pub fn expected(row: &Value) -> Vec<Vec<f32>> {
    row["positions"]
        .as_object()
        .unwrap()
        .values()
        .map(|entry| {
            let mut v: Vec<f32> = entry["top10"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p[1].as_f64().unwrap() as f32)
                .collect();
            for c in entry["candidates"].as_object().unwrap().values() {
                v.push(c["first_token_logprob"].as_f64().unwrap() as f32);
            }
            v
        })
        .collect()
}

pub fn request(sequences: Vec<ScoreSequence>, top_k: u32) -> ScoreRequest {
    ScoreRequest { sequences: RVec::from(sequences), top_k }
}

/// Largest |Δ| between the golden values and the scores of every golden row, plus a check
/// that each top-10 matches the golden top-10 log-probs in order.
pub fn golden_max_diff(rows: &[Value], result: &[SequenceScores]) -> f32 {
    let mut worst = 0f32;
    for (row, got) in rows.iter().zip(result) {
        for (q, want) in got.queries.iter().zip(expected(row)) {
            assert_eq!(q.candidate_logprobs.len(), want.len());
            for (g, w) in q.candidate_logprobs.iter().zip(&want) {
                worst = worst.max((g - w).abs());
            }
            assert!(
                q.logsumexp.abs() < 1e-4,
                "log-probs are normalised: logsumexp {}",
                q.logsumexp
            );
            if !q.top.is_empty() {
                // The top-10 log-probs, most likely first, are the golden ones.
                for (t, w) in q.top.iter().zip(&want[..10]) {
                    worst = worst.max((t.logprob - w).abs());
                }
            }
        }
    }
    worst
}

/// Largest |Δ| between two results' candidate log-probs.
pub fn max_diff(a: &[SequenceScores], b: &[SequenceScores]) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut worst = 0f32;
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.queries.len(), y.queries.len());
        for (qx, qy) in x.queries.iter().zip(&y.queries) {
            for (u, v) in qx.candidate_logprobs.iter().zip(&qy.candidate_logprobs) {
                worst = worst.max((u - v).abs());
            }
        }
    }
    worst
}
