//! The engine on the real models: golden log-probs through batching, chunking and
//! shared-prefix reuse, and request validation.

mod common;

use std::time::Instant;

use common::*;
use descry_abi::types::{ScoreQuery, ScoreSequence};
use descry_backend_onnx::{Device, Engine, EngineError, EngineOptions};

/// Same sequences scored with different schedules agree to this.
const SCHEDULE_TOL: f32 = 1e-4;

fn seq(tokens: &[u32], positions: &[u32], candidates: &[u32]) -> ScoreSequence {
    ScoreSequence {
        tokens: tokens.to_vec().into(),
        queries: positions
            .iter()
            .map(|&p| ScoreQuery { position: p, candidates: candidates.to_vec().into() })
            .collect(),
    }
}

fn check_model(model: (&str, &str)) {
    let dir = import_model(model);
    let rows = golden(model.0);
    let engine = Engine::load(&dir.0, &EngineOptions::default()).expect("engine loads");

    // Every golden row in one request: padded batches under the default budget.
    let req = request(rows.iter().map(sequence).collect(), 10);
    let t = Instant::now();
    let res = engine.score(&req).expect("scores");
    let worst = golden_max_diff(&rows, &res.sequences);
    eprintln!(
        "{}: {} sequences in {:.2?}, max |Δ| vs golden {worst:.3e}, {:?}",
        model.0,
        rows.len(),
        t.elapsed(),
        res.stats
    );
    assert!(worst <= 2e-3, "{}: |Δ| {worst} > 2e-3", model.0);

    // A 256-token budget: the long prompt runs in chunks, the rest in small batches.
    let small =
        Engine::load(&dir.0, &EngineOptions { token_budget: 256, ..Default::default() }).unwrap();
    let res_small = small.score(&req).unwrap();
    let d = max_diff(&res.sequences, &res_small.sequences);
    eprintln!("{}: budget 256 vs 4096: max |Δ| {d:.3e}", model.0);
    assert!(d <= SCHEDULE_TOL, "{}: chunked/small batches differ by {d}", model.0);

    // Shared prefixes: three sequences from the long prompt share 1,000 tokens (past
    // Gemma's 512-token window), plus an unrelated one.
    let long = ids(rows.iter().find(|r| r["id"] == "long-pd-history").unwrap());
    let short = ids(&rows[0]);
    let cands: Vec<u32> = long[..30].to_vec();
    let mut b_tokens = long[..1000].to_vec();
    b_tokens.extend_from_slice(&long[1300..1500]);
    let last = long.len() as u32 - 1;
    let seqs = vec![
        seq(&long[..1200], &[600, 1199], &cands),
        seq(&b_tokens, &[999, 1100, 1199], &cands),
        seq(&long, &[418, 837, last], &cands),
        seq(&short, &[short.len() as u32 - 1], &cands),
    ];
    // Without the prefixes kept from earlier calls, to score a sequence truly alone.
    let uncached =
        Engine::load(&dir.0, &EngineOptions { prefix_cache_tokens: Some(0), ..Default::default() })
            .unwrap();
    let shared = engine.score(&request(seqs.clone(), 5)).unwrap();
    eprintln!("{}: shared-prefix request: {:?}", model.0, shared.stats);
    // The prefix is at least the 1,000 tokens built in (the prompt may continue alike).
    assert!(shared.stats.tokens_reused >= 2 * 1000, "the shared prefix is computed once");
    for (i, s) in seqs.iter().enumerate() {
        let alone = uncached.score(&request(vec![s.clone()], 5)).unwrap();
        let d = max_diff(&shared.sequences[i..i + 1], &alone.sequences);
        assert!(d <= SCHEDULE_TOL, "{}: sequence {i} differs with prefix sharing by {d}", model.0);
        assert_eq!(alone.stats.tokens_reused, 0);
        let tops = |r: &descry_abi::types::SequenceScores| -> Vec<Vec<u32>> {
            r.queries.iter().map(|q| q.top.iter().map(|t| t.token).collect()).collect()
        };
        assert_eq!(tops(&shared.sequences[i]), tops(&alone.sequences[0]));
    }
    // A query inside the shared prefix reads the same distribution as the full prompt's.
    let full = engine.score(&request(vec![seq(&long, &[600, 999], &cands)], 0)).unwrap();
    let d = max_diff(
        &[descry_abi::types::SequenceScores {
            queries: vec![full.sequences[0].queries[1].clone()].into(),
        }],
        &[descry_abi::types::SequenceScores {
            queries: vec![shared.sequences[1].queries[0].clone()].into(),
        }],
    );
    assert!(d <= SCHEDULE_TOL, "{d}");

    // Later calls start from the 1,000-token prefix kept from the shared request: a lone
    // sequence, and a group whose own shared prefix extends the kept one; a sequence with a
    // query inside that prefix starts from its part before the request's first query (418).
    let mut extended = long[..1150].to_vec();
    extended.extend_from_slice(&long[1400..1450]);
    let later = [
        vec![seq(&long[..1250], &[1100, 1249], &cands)],
        vec![seq(&long[..1250], &[1100, 1249], &cands), seq(&extended, &[1120, 1199], &cands)],
        vec![seq(&long[..900], &[500, 899], &cands)],
    ];
    for (k, (seqs, kept)) in later.iter().zip([1000, 1000, 418]).enumerate() {
        let from_cache = engine.score(&request(seqs.clone(), 5)).unwrap();
        let fresh = uncached.score(&request(seqs.clone(), 5)).unwrap();
        eprintln!(
            "{}: later call {k}: kept prefix {:?}, without {:?}",
            model.0, from_cache.stats, fresh.stats
        );
        assert!(
            from_cache.stats.tokens_reused >= fresh.stats.tokens_reused + kept,
            "call {k} starts from the kept prefix"
        );
        assert_eq!(
            from_cache.stats.tokens_computed + from_cache.stats.tokens_reused,
            fresh.stats.tokens_computed + fresh.stats.tokens_reused
        );
        let d = max_diff(&from_cache.sequences, &fresh.sequences);
        assert!(d <= SCHEDULE_TOL, "{}: call {k} differs by {d}", model.0);
    }
}

#[test]
fn smollm2_engine_matches_golden_under_every_schedule() {
    check_model(SMOL);
}

#[test]
fn gemma3_engine_matches_golden_under_every_schedule() {
    check_model(GEMMA);
}

#[test]
fn requests_are_validated() {
    let dir = import_model(SMOL);
    let engine = Engine::load(&dir.0, &EngineOptions::default()).unwrap();
    let vocab = engine.manifest().vocab_size as u32;

    let empty = engine.score(&request(vec![], 0)).unwrap();
    assert!(empty.sequences.is_empty());
    let no_queries = engine.score(&request(vec![seq(&[1, 2, 3], &[], &[])], 3)).unwrap();
    assert!(no_queries.sequences[0].queries.is_empty());
    assert_eq!(no_queries.stats.tokens_computed, 0, "nothing to read, nothing computed");

    // Tokens after the last query are not run.
    let cut = engine.score(&request(vec![seq(&[1, 2, 3, 4, 5, 6], &[1], &[7])], 0)).unwrap();
    assert_eq!(cut.stats.tokens_computed, 2);

    let cases = [
        (seq(&[1, 2, 3], &[3], &[1]), "position 3 is outside the sequence"),
        (seq(&[1, vocab, 3], &[1], &[1]), "outside the vocabulary"),
        (seq(&[1, 2, 3], &[1], &[vocab + 5]), "candidate token id"),
    ];
    for (s, want) in cases {
        let err = engine.score(&request(vec![seq(&[5, 6], &[1], &[1]), s], 0)).unwrap_err();
        assert!(matches!(err, EngineError::BadRequest { sequence: 1, .. }), "{err}");
        assert!(err.to_string().contains(want), "{err}");
    }

    let err = Engine::load(&dir.0.join("nope"), &EngineOptions::default())
        .err()
        .expect("missing folder fails");
    assert!(err.to_string().contains("does not exist"), "{err}");
    let empty = tempfile::tempdir().expect("tempdir");
    let err = Engine::load(empty.path(), &EngineOptions::default())
        .err()
        .expect("a folder without a manifest fails");
    assert!(err.to_string().contains("descry-model.json"), "{err}");
    if !cfg!(feature = "cuda") {
        let err = Engine::load(
            &dir.0,
            &EngineOptions { device: Device::Cuda { device_id: 0 }, ..Default::default() },
        )
        .err()
        .expect("cuda needs the feature");
        assert!(err.to_string().contains("--features cuda"), "{err}");
    }
}
