//! Scoring free prompts with a model folder (`descry score`): the low-level check of an
//! import and a backend. Reads JSONL prompts and answers each with next-token log-probs in
//! the shape of the reference file `golden_logprobs.jsonl`.

use crate::model::{ModelError, ModelFolder};
use descry_abi::{
    backend::ModelBox,
    types::{ScoreQuery, ScoreRequest, ScoreSequence},
};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::{
    io::BufRead,
    path::{Path, PathBuf},
};

/// Why a prompt file could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a prompt.
    #[error("{path}: line {line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The backend failed.
    #[error("scoring failed: {0}")]
    Score(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputLine {
    id: Value,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    input_ids: Option<Vec<u32>>,
    #[serde(default)]
    positions: Option<Vec<usize>>,
    #[serde(default)]
    candidates: Vec<String>,
}

/// One prompt, tokenized, with its queried positions and candidates.
pub struct ProbePrompt {
    id: Value,
    tokens: Vec<u32>,
    positions: Vec<usize>,
    candidates: Vec<(String, Vec<u32>)>,
    first_ids: Vec<u32>,
}

/// Reads a JSONL prompt file: per line `{"id", "text" | "input_ids", "positions"?,
/// "candidates"?}`; positions default to the last token.
pub fn read_prompts(folder: &ModelFolder, path: &Path) -> Result<Vec<ProbePrompt>, ProbeError> {
    let file = std::fs::File::open(path)
        .map_err(|source| ProbeError::Io { path: path.to_path_buf(), source })?;
    let mut prompts = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let bad =
            |reason: String| ProbeError::Line { path: path.to_path_buf(), line: n + 1, reason };
        let model = |e: ModelError| bad(e.to_string());
        let line = line.map_err(|e| bad(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let input: InputLine = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let tokens = match (&input.text, input.input_ids) {
            (Some(text), None) => folder.encode(text).map_err(model)?,
            (None, Some(ids)) => ids,
            _ => return Err(bad("give exactly one of \"text\" and \"input_ids\"".into())),
        };
        if tokens.is_empty() {
            return Err(bad("the prompt has no tokens".into()));
        }
        let positions = input.positions.unwrap_or_else(|| vec![tokens.len() - 1]);
        if let Some(p) = positions.iter().find(|&&p| p >= tokens.len()) {
            return Err(bad(format!("position {p} is past the last token ({})", tokens.len() - 1)));
        }
        let mut candidates = Vec::new();
        let mut first_ids = Vec::new();
        for c in &input.candidates {
            let ids = folder.encode_plain(c).map_err(model)?;
            let Some(&first) = ids.first() else {
                return Err(bad(format!("candidate {c:?} has no tokens")));
            };
            if !first_ids.contains(&first) {
                first_ids.push(first);
            }
            candidates.push((c.clone(), ids));
        }
        prompts.push(ProbePrompt { id: input.id, tokens, positions, candidates, first_ids });
    }
    Ok(prompts)
}

/// Scores prompts `batch` at a time, calling `line` with each prompt's JSON answer in
/// order: `{"id", "input_ids", "positions": {POS: {"top": [[id, logprob]...],
/// "candidates": {TEXT: {"token_ids", "first_token_logprob"}}}}}`.
pub fn score_prompts(
    model: &ModelBox,
    prompts: &[ProbePrompt],
    top: u32,
    batch: usize,
    mut line: impl FnMut(Value) -> std::io::Result<()>,
) -> Result<(), ProbeError> {
    for chunk in prompts.chunks(batch.max(1)) {
        let request = ScoreRequest {
            sequences: chunk
                .iter()
                .map(|p| ScoreSequence {
                    tokens: p.tokens.clone().into(),
                    queries: p
                        .positions
                        .iter()
                        .map(|&position| ScoreQuery {
                            position: position as u32,
                            candidates: p.first_ids.clone().into(),
                        })
                        .collect(),
                })
                .collect(),
            top_k: top,
        };
        let result =
            model.score(&request).into_result().map_err(|e| ProbeError::Score(e.to_string()))?;
        for (p, scores) in chunk.iter().zip(result.sequences.iter()) {
            let mut positions = Map::new();
            for (&position, q) in p.positions.iter().zip(scores.queries.iter()) {
                let top: Vec<Value> =
                    q.top.iter().map(|t| json!([t.token, t.logprob - q.logsumexp])).collect();
                let mut cands = Map::new();
                for (text, ids) in &p.candidates {
                    let k = p.first_ids.iter().position(|&f| f == ids[0]).unwrap_or(0);
                    cands.insert(
                        text.clone(),
                        json!({
                            "token_ids": ids,
                            "first_token_logprob": q.candidate_logprobs[k] - q.logsumexp
                        }),
                    );
                }
                positions.insert(position.to_string(), json!({"top": top, "candidates": cands}));
            }
            line(json!({"id": p.id, "input_ids": p.tokens, "positions": positions}))
                .map_err(|e| ProbeError::Score(format!("writing the answer: {e}")))?;
        }
    }
    Ok(())
}
