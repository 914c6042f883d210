//! `descry score`: the low-level check of a model folder. Reads JSONL prompts, writes JSONL
//! log-probs in the shape of the reference file `golden_logprobs.jsonl`.

use crate::Cli;
use anyhow::{bail, Context, Result};
use descry_abi::types::{ScoreQuery, ScoreRequest, ScoreSequence};
use descry_core::{config::BackendOptions, model::ModelFolder, run::backend_spec};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::{
    io::{BufRead, Write},
    path::{Path, PathBuf},
};

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

/// Options of `descry score`.
pub struct ScoreArgs<'a> {
    pub model: &'a Path,
    pub input: &'a Path,
    pub top: u32,
    pub backend: &'a str,
    pub device: &'a str,
    pub threads: usize,
    pub batch_tokens: usize,
    pub ort_library: Option<PathBuf>,
    /// Sequences per scoring call (1: each alone).
    pub batch: usize,
}

struct Prepared {
    id: Value,
    tokens: Vec<u32>,
    positions: Vec<usize>,
    candidates: Vec<(String, Vec<u32>)>,
    first_ids: Vec<u32>,
}

pub fn run(cli: &Cli, args: &ScoreArgs) -> Result<()> {
    let folder = ModelFolder::open(args.model)?;
    let registry = super::registry(cli, None)?;
    let backend = registry.backend(args.backend).with_context(|| {
        format!("no backend plugin named `{}` is loaded; see `descry plugins`", args.backend)
    })?;
    let options = BackendOptions {
        plugin: args.backend.to_string(),
        device: args.device.to_string(),
        threads: args.threads,
        batch_tokens: args.batch_tokens,
        ort_library: args.ort_library.clone().map(Into::into),
        ..BackendOptions::default()
    };
    let spec = backend_spec(&options, args.model);
    let model =
        backend.backend.load(abi_stable::std_types::RStr::from_str(&spec)).into_result().map_err(
            |e| {
                anyhow::anyhow!(
                    "backend `{}` could not load {}: {e}",
                    args.backend,
                    args.model.display()
                )
            },
        )?;

    let file =
        std::fs::File::open(args.input).with_context(|| format!("{}", args.input.display()))?;
    let mut prepared = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", args.input.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}: line {}", args.input.display(), n + 1);
        let input: InputLine = serde_json::from_str(&line).with_context(at)?;
        let tokens = match (&input.text, input.input_ids) {
            (Some(text), None) => folder.encode(text).with_context(at)?,
            (None, Some(ids)) => ids,
            _ => bail!("{}: give exactly one of \"text\" and \"input_ids\"", at()),
        };
        if tokens.is_empty() {
            bail!("{}: the prompt has no tokens", at());
        }
        let positions = input.positions.unwrap_or_else(|| vec![tokens.len() - 1]);
        if let Some(p) = positions.iter().find(|&&p| p >= tokens.len()) {
            bail!("{}: position {p} is past the last token ({})", at(), tokens.len() - 1);
        }
        let mut candidates = Vec::new();
        let mut first_ids = Vec::new();
        for c in &input.candidates {
            let ids = folder.encode_plain(c).with_context(at)?;
            let Some(&first) = ids.first() else {
                bail!("{}: candidate {c:?} has no tokens", at())
            };
            if !first_ids.contains(&first) {
                first_ids.push(first);
            }
            candidates.push((c.clone(), ids));
        }
        prepared.push(Prepared { id: input.id, tokens, positions, candidates, first_ids });
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for chunk in prepared.chunks(args.batch.max(1)) {
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
            top_k: args.top,
        };
        let result = model
            .score(&request)
            .into_result()
            .map_err(|e| anyhow::anyhow!("scoring failed: {e}"))?;
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
                        json!({"token_ids": ids, "first_token_logprob": q.candidate_logprobs[k] - q.logsumexp}),
                    );
                }
                positions.insert(position.to_string(), json!({"top": top, "candidates": cands}));
            }
            let line = json!({"id": p.id, "input_ids": p.tokens, "positions": positions});
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}
