//! `descry run` and `descry report`.

use crate::Cli;
use anyhow::Result;
use descry_core::{
    analysis::{analyse, AnalysisSettings},
    config::Study,
    data::GameData,
    plan::Grouping,
    record::{study_predictions, RunRecord},
    report::{clear_report, write_report},
    run::{check_decisions, prepare, run_units, RunOptions},
    store::{write_file_atomic, RunLock},
};
use std::{
    collections::BTreeMap,
    io::IsTerminal,
    path::{Path, PathBuf},
};

pub fn run(
    cli: &Cli,
    study_path: &Path,
    set: &[String],
    out: Option<&Path>,
    naive: bool,
) -> Result<()> {
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
    check_decisions(&data)?;
    for pair in &prepared.pairs {
        if let Some(reason) = &pair.excluded {
            eprintln!("pair {} excluded: {reason}", pair.name);
        }
    }
    // One writer per run folder; the hold ends with this process, however it ends.
    let lock = RunLock::acquire(&out_dir)?;
    for path in lock.clean_leftovers(&out_dir)? {
        eprintln!("removed {} (left by an interrupted run)", path.display());
    }
    // The record changes below: a report of the previous record must not stand beside it.
    clear_report(&out_dir)?;
    let settings = settings(&study, &prepared);
    let record = RunRecord {
        run_id: RunRecord::new_run_id(),
        title: study.study.name.clone(),
        settings: settings.clone(),
        pairs: prepared.pairs.clone(),
        units: prepared.units(&data),
        study: serde_json::to_value(&study)?,
    };
    record.write(&out_dir)?;
    let options = RunOptions {
        out: out_dir.clone(),
        grouping: if naive { Grouping::PerDecision } else { Grouping::Prefix },
        progress: std::io::stderr().is_terminal(),
        chunk_tokens: study.backend.batch_tokens.max(1) * 4,
        run_id: record.run_id.clone(),
    };
    let summaries = run_units(&study, &registry, &prepared, &data, &options)?;
    write_file_atomic(
        &out_dir.join("units.json"),
        serde_json::to_string_pretty(&summaries)?.as_bytes(),
    )?;
    let report = build_report(&registry, &out_dir, &record)?;
    drop(lock);
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

fn build_report(
    registry: &descry_core::registry::Registry,
    run_dir: &Path,
    record: &RunRecord,
) -> Result<PathBuf> {
    let stored = study_predictions(run_dir, record)?;
    let analysis = analyse(registry, &stored.rows, &record.pairs, &record.settings);
    let note = stored.note();
    let files = write_report(run_dir, &record.title, &analysis, &record.settings, note.as_deref())?;
    eprintln!(
        "report: {} predictions, {} tables, {} plots",
        stored.rows.len(),
        files.tables.len(),
        files.plots.len()
    );
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    Ok(files.markdown)
}

pub fn report(cli: &Cli, run_dir: &Path) -> Result<()> {
    let record = RunRecord::read(run_dir)?;
    let registry = super::registry(cli, None)?;
    let lock = RunLock::acquire(run_dir)?;
    let report = build_report(&registry, run_dir, &record)?;
    drop(lock);
    println!("{}", report.display());
    Ok(())
}
