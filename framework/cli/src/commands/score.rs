//! `descry score`: the low-level check of a model folder. Reads JSONL prompts, writes JSONL
//! log-probs in the shape of the reference file `golden_logprobs.jsonl`.

use crate::Cli;
use anyhow::{bail, Result};
use descry_core::{
    backend::{check_settings, find_backend, load_model_with, settings_of},
    config::{command_line_value, BackendOptions},
    model::ModelFolder,
    probe::{read_prompts, score_prompts},
};
use std::{io::Write, path::Path};

/// Options of `descry score`.
pub struct ScoreArgs<'a> {
    pub model: &'a Path,
    pub input: &'a Path,
    pub top: u32,
    pub backend: Option<&'a str>,
    pub device: &'a str,
    pub threads: usize,
    pub batch_tokens: usize,
    /// `KEY=VALUE` settings of the backend's own table.
    pub engine: &'a [String],
    /// Sequences per scoring call (1: each alone).
    pub batch: usize,
}

pub fn run(cli: &Cli, args: &ScoreArgs) -> Result<()> {
    let folder = ModelFolder::open(args.model)?;
    let registry = super::registry(cli, None)?;
    let mut options = BackendOptions {
        plugin: args.backend.unwrap_or_default().to_string(),
        device: args.device.to_string(),
        threads: args.threads,
        batch_tokens: args.batch_tokens,
        ..BackendOptions::default()
    };
    let backend = find_backend(&registry, &options.plugin)?;
    let plugin = backend.info.plugin.name.to_string();
    options.engines.insert(plugin.clone(), engine_table(args.engine)?);
    folder.check_artifacts(backend.info.artifacts.as_str())?;
    let settings = settings_of(&options, &plugin, Path::new(""));
    let problems = check_settings(backend, &settings)?;
    if !problems.is_empty() {
        let lines: Vec<String> =
            problems.iter().map(|(key, reason)| format!("`{key}`: {reason}")).collect();
        bail!("backend `{plugin}` refuses its settings:\n{}", lines.join("\n"));
    }
    let model = load_model_with(&registry, &plugin, args.model, &settings)?;
    let prompts = read_prompts(&folder, args.input)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    score_prompts(&model, &prompts, args.top, args.batch, |line| writeln!(out, "{line}"))?;
    Ok(())
}

/// `--engine KEY=VALUE` arguments as the backend's table; values parse as TOML, else they
/// are strings (as `--set` values are).
fn engine_table(settings: &[String]) -> Result<serde_json::Value> {
    let mut table = serde_json::Map::new();
    for arg in settings {
        let Some((key, raw)) = arg.split_once('=') else {
            bail!("--engine {arg}: no `=` in it; expected KEY=VALUE, e.g. --engine threads=2");
        };
        table.insert(key.trim().to_string(), serde_json::to_value(command_line_value(raw))?);
    }
    Ok(serde_json::Value::Object(table))
}
