//! The tokenizers built from the real GGUF files reproduce the golden `input_ids` (and the
//! candidate token ids) of every line of the reference file exactly.

mod common;

use std::str::FromStr;

use descry_onnx_build::tokenizer::{from_gguf, TokenizerFiles};
use descry_onnx_build::GgufFile;
use serde_json::Value;
use tokenizers::Tokenizer;

fn build(file: &str) -> (TokenizerFiles, Tokenizer) {
    let g = GgufFile::open(common::gguf_path(file)).expect("open gguf");
    let files = from_gguf(&g).expect("build tokenizer");
    let tok =
        Tokenizer::from_str(&files.tokenizer_json).expect("tokenizers parses our tokenizer.json");
    (files, tok)
}

fn check_golden(model: &str, tok: &Tokenizer) {
    let text = std::fs::read_to_string(common::golden_path()).expect("read golden");
    let mut lines = 0;
    let mut failures = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).expect("golden line is JSON");
        if v["model"] != model {
            continue;
        }
        lines += 1;
        let id = v["id"].as_str().unwrap_or("?");
        let want: Vec<u32> = v["input_ids"]
            .as_array()
            .expect("input_ids")
            .iter()
            .map(|x| x.as_u64().expect("id") as u32)
            .collect();
        let got =
            tok.encode(v["text"].as_str().expect("text"), true).expect("encode").get_ids().to_vec();
        if got != want {
            let at = got
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len()));
            failures.push(format!(
                "{id}: {} ids vs {} golden; first difference at {at}: got {:?}, want {:?}",
                got.len(),
                want.len(),
                &got[at.saturating_sub(2)..(at + 5).min(got.len())],
                &want[at.saturating_sub(2)..(at + 5).min(want.len())]
            ));
        }
        for pos in v["positions"].as_object().expect("positions").values() {
            for (cand, c) in pos["candidates"].as_object().expect("candidates") {
                let want: Vec<u32> = c["token_ids"]
                    .as_array()
                    .expect("token_ids")
                    .iter()
                    .map(|x| x.as_u64().expect("id") as u32)
                    .collect();
                let got = tok.encode(cand.as_str(), false).expect("encode").get_ids().to_vec();
                if got != want {
                    failures.push(format!("{id}: candidate {cand:?}: got {got:?}, want {want:?}"));
                }
            }
        }
    }
    assert!(lines > 0, "no golden lines for {model}");
    failures.dedup();
    assert!(
        failures.is_empty(),
        "{model}: {} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn smollm2_matches_golden_ids() {
    let (files, tok) = build(common::SMOLLM);
    assert_eq!(files.vocab_size, 49152);
    assert_eq!(files.num_merges, 48900);
    assert!(!files.add_bos_token);
    assert_eq!(files.eos_token.as_deref(), Some("<|im_end|>"));
    assert!(files.chat_template.as_deref().is_some_and(|t| t.contains("<|im_start|>")));
    check_golden("smollm2-135m-instruct", &tok);
}

#[test]
fn gemma3_matches_golden_ids() {
    let (files, tok) = build(common::GEMMA);
    assert_eq!(files.vocab_size, 262144);
    assert_eq!(files.num_merges, 514906);
    assert!(files.add_bos_token);
    assert_eq!(files.bos_token.as_deref(), Some("<bos>"));
    assert!(files.chat_template.is_none());
    check_golden("gemma-3-270m", &tok);
}
