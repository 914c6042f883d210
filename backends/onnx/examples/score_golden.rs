//! Scores the golden prompts of one model with the engine and prints timings: a quick
//! throughput check. Usage: `score_golden MODEL_DIR GOLDEN_JSONL MODEL_NAME [token_budget]`.

use std::path::PathBuf;
use std::time::Instant;

use descry_abi::types::{ScoreQuery, ScoreRequest, ScoreSequence};
use descry_backend_onnx::{Engine, EngineOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, golden, name, rest @ ..] = args.as_slice() else {
        return Err("usage: score_golden MODEL_DIR GOLDEN_JSONL MODEL_NAME [token_budget]".into());
    };
    let mut opts = EngineOptions::default();
    if let Some(b) = rest.first() {
        opts.token_budget = b.parse()?;
    }
    let t = Instant::now();
    let engine = Engine::load(&PathBuf::from(dir), &opts)?;
    eprintln!("loaded in {:.2?}", t.elapsed());
    let mut sequences = Vec::new();
    for line in std::fs::read_to_string(golden)?.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if v["model"] != name.as_str() {
            continue;
        }
        let tokens: Vec<u32> = v["input_ids"]
            .as_array()
            .ok_or("input_ids")?
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|x| x as u32)
            .collect();
        let queries = v["positions"]
            .as_object()
            .ok_or("positions")?
            .keys()
            .filter_map(|k| k.parse().ok())
            .map(|p| ScoreQuery { position: p, candidates: vec![0u32].into() })
            .collect();
        sequences.push(ScoreSequence { tokens: tokens.into(), queries });
    }
    let request = ScoreRequest { sequences: sequences.clone().into(), top_k: 0 };
    for round in 0..2 {
        let t = Instant::now();
        let r = engine.score(&request)?;
        eprintln!("all together, round {round}: {:.2?} {:?}", t.elapsed(), r.stats);
    }
    for s in &sequences {
        let t = Instant::now();
        engine.score(&ScoreRequest { sequences: vec![s.clone()].into(), top_k: 0 })?;
        eprintln!("{} tokens alone: {:.2?}", s.tokens.len(), t.elapsed());
    }
    Ok(())
}
