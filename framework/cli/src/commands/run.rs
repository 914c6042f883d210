//! `descry run` and `descry report`.

use crate::Cli;
use anyhow::{Context, Result};
use descry_core::{
    analysis::{analyse, AnalysisSettings},
    config::Study,
    data::GameData,
    plan::Grouping,
    report::write_report,
    run::{prepare, run_units, PairStatus, RunOptions},
    store::{read_run, write_file_atomic},
};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    io::IsTerminal,
    path::{Path, PathBuf},
};

/// What a run folder records about its study, so that `descry report` can rebuild the
/// report from the store alone.
#[derive(Serialize, Deserialize)]
struct RunRecord {
    title: String,
    settings: AnalysisSettings,
    pairs: Vec<PairStatus>,
    study: serde_json::Value,
}

const RUN_RECORD: &str = "run.json";

pub fn run(cli: &Cli, study_path: &Path, set: &[String], out: Option<&Path>, naive: bool) -> Result<()> {
    let study = super::load_study(study_path, set)?;
    let out_dir = out.map(Path::to_path_buf).unwrap_or_else(|| study.study.output.relative());
    let registry = super::registry(cli, Some(&study))?;
    for failure in &registry.failures {
        eprintln!("warning: plugin {} not loaded: {}", failure.path.display(), failure.reason);
    }
    // Everything a user can get wrong in the config is found here, before any scoring.
    registry.check_metrics(&study.analysis)?;
    let prepared = prepare(&study, &registry)?;
    let mut data: BTreeMap<String, GameData> = BTreeMap::new();
    for game in &prepared.games {
        let loaded = game.load()?;
        let points: usize = loaded.episodes.iter().map(|e| e.decisions.len()).sum();
        eprintln!(
            "game {}: {} episodes, {} decision points ({} skipped), variants: {}",
            game.name,
            loaded.episodes.len(),
            points,
            loaded.skipped.len(),
            game.variants.join(", ")
        );
        data.insert(game.name.clone(), loaded);
    }
    for pair in &prepared.pairs {
        if let Some(reason) = &pair.excluded {
            eprintln!("pair {} excluded: {reason}", pair.name);
        }
    }
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating the output folder {}", out_dir.display()))?;
    let settings = settings(&study, &prepared);
    let record = RunRecord {
        title: study.study.name.clone(),
        settings: settings.clone(),
        pairs: prepared.pairs.clone(),
        study: serde_json::to_value(&study)?,
    };
    write_file_atomic(&out_dir.join(RUN_RECORD), serde_json::to_string_pretty(&record)?.as_bytes())?;
    let options = RunOptions {
        out: out_dir.clone(),
        grouping: if naive { Grouping::PerDecision } else { Grouping::Prefix },
        progress: std::io::stderr().is_terminal(),
        chunk_tokens: study.backend.batch_tokens.max(1) * 4,
    };
    let summaries = run_units(&study, &registry, &prepared, &data, &options)?;
    write_file_atomic(&out_dir.join("units.json"), serde_json::to_string_pretty(&summaries)?.as_bytes())?;
    let report = build_report(&registry, &out_dir, &record)?;
    println!("{}", report.display());
    Ok(())
}

fn settings(study: &Study, prepared: &descry_core::run::PreparedStudy) -> AnalysisSettings {
    AnalysisSettings {
        metrics: study.analysis.metrics.clone(),
        primary_metric: study.analysis.primary_metric.clone(),
        bootstrap: study.analysis.bootstrap,
        seed: study.study.seed,
        min_mass: study.filters.min_mass,
        min_correlation: study.filters.min_correlation,
        multi_round_families: prepared
            .games
            .iter()
            .filter(|g| g.info.multi_round)
            .map(|g| g.info.family.to_string())
            .collect(),
    }
}

fn build_report(registry: &descry_core::registry::Registry, run_dir: &Path, record: &RunRecord) -> Result<PathBuf> {
    let rows = read_run(run_dir)?;
    let analysis = analyse(registry, &rows, &record.pairs, &record.settings);
    let files = write_report(run_dir, &record.title, &analysis, &record.settings)?;
    eprintln!("report: {} predictions, {} tables, {} plots", rows.len(), files.tables.len(), files.plots.len());
    Ok(files.markdown)
}

pub fn report(cli: &Cli, run_dir: &Path) -> Result<()> {
    let path = run_dir.join(RUN_RECORD);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: not a descry run folder (run `descry run STUDY` first)", path.display()))?;
    let record: RunRecord = serde_json::from_str(&text).with_context(|| format!("{}: unreadable", path.display()))?;
    let registry = super::registry(cli, None)?;
    let report = build_report(&registry, run_dir, &record)?;
    println!("{}", report.display());
    Ok(())
}
