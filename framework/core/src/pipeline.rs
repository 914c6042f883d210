//! The study pipeline: everything `descry run` and `descry report` do, in order, so that a
//! front end only parses its arguments, calls [`run_study`] or [`rebuild_report`] and
//! prints the [`RunEvent`]s.
//!
//! The order is the contract: every check that needs no data (config, plugins, backend
//! settings, model folders) comes first, then the data is loaded and checked, then the run
//! folder is locked and its record written, then units are scored, then the report is
//! built from the store and the record alone.

use crate::{
    analysis::analyse,
    config::Study,
    data::{GameData, StudyGame},
    error::RunError,
    plan::Grouping,
    record::{study_predictions, RunRecord},
    registry::Registry,
    report::{clear_report, write_report},
    run::{run_units, RunOptions, UnitSummary},
    store::{write_file_atomic, RunLock},
    study::{prepare, PairStatus},
};
use std::path::{Path, PathBuf};

/// The summaries file a run writes beside its record.
pub const UNIT_SUMMARIES: &str = "units.json";

/// What happened, as it happens, for the front end to show.
pub enum RunEvent<'a> {
    /// A game's data was read.
    GameLoaded {
        /// The game.
        game: &'a StudyGame<'a>,
        /// What it holds.
        data: &'a GameData,
    },
    /// A pair of the study is left out of the comparison.
    PairExcluded(&'a PairStatus),
    /// A file an interrupted run left behind was removed.
    LeftoverRemoved(&'a Path),
    /// A unit is complete.
    UnitDone(&'a UnitSummary),
    /// The report was written.
    ReportWritten {
        /// Predictions analysed.
        predictions: usize,
        /// Tables written.
        tables: usize,
        /// Plots written.
        plots: usize,
        /// What the run folder holds beyond the study, if anything.
        note: Option<&'a str>,
    },
}

impl std::fmt::Display for RunEvent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunEvent::GameLoaded { game, data } => write!(
                f,
                "game {}: {} episodes, {} decision points ({} skipped), variants: {}",
                game.name,
                data.episodes.len(),
                data.episodes.iter().map(|e| e.decisions.len()).sum::<usize>(),
                data.skipped.len(),
                game.variants.join(", ")
            ),
            RunEvent::PairExcluded(pair) => write!(
                f,
                "pair {} excluded: {}",
                pair.name,
                pair.excluded.as_deref().unwrap_or_default()
            ),
            RunEvent::LeftoverRemoved(path) => {
                write!(f, "removed {} (left by an interrupted run)", path.display())
            }
            RunEvent::UnitDone(summary) => write!(f, "{summary}"),
            RunEvent::ReportWritten { predictions, tables, plots, note } => {
                write!(f, "report: {predictions} predictions, {tables} tables, {plots} plots")?;
                match note {
                    Some(note) => write!(f, "\nnote: {note}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// How a study is run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The run folder.
    pub out: PathBuf,
    /// Sequence grouping ([`Grouping::Prefix`] unless the naive method is asked for).
    pub grouping: Grouping,
    /// Draw progress bars on standard error.
    pub progress: bool,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The report's `report.md`.
    pub report: PathBuf,
    /// One summary per unit, in run order.
    pub units: Vec<UnitSummary>,
}

/// Runs a study into a run folder: check, load, lock, record, score, report.
pub fn run_study(
    study: &Study,
    registry: &Registry,
    request: &RunRequest,
    events: &mut dyn FnMut(RunEvent),
) -> Result<RunOutcome, RunError> {
    // Everything a user can get wrong in the config is found here, before any data is read.
    registry.check_metrics(&study.analysis)?;
    let prepared = prepare(study, registry)?;
    let data = prepared.load_data(|game, data| events(RunEvent::GameLoaded { game, data }))?;
    for pair in prepared.pairs.iter().filter(|p| p.excluded.is_some()) {
        events(RunEvent::PairExcluded(pair));
    }
    let out = &request.out;
    // One writer per run folder; the hold ends with this process, however it ends.
    let lock = RunLock::acquire(out)?;
    for path in lock.clean_leftovers(out)? {
        events(RunEvent::LeftoverRemoved(&path));
    }
    // The record changes below: a report of the previous record must not stand beside it.
    clear_report(out)?;
    let record = RunRecord {
        run_id: RunRecord::new_run_id(),
        title: study.study.name.clone(),
        settings: prepared.analysis_settings(study),
        pairs: prepared.pairs.clone(),
        units: prepared.units(&data),
        study: serde_json::to_value(study)
            .map_err(|source| RunError::Encode { what: "the study", source })?,
    };
    record.write(out)?;
    let options = RunOptions {
        out: out.clone(),
        grouping: request.grouping,
        progress: request.progress,
        chunk_tokens: study.backend.batch_tokens.max(1) * 4,
        run_id: record.run_id.clone(),
    };
    let units = run_units(study, registry, &prepared, &data, &options, |summary| {
        events(RunEvent::UnitDone(summary))
    })?;
    let summaries = serde_json::to_string_pretty(&units)
        .map_err(|source| RunError::Encode { what: "the unit summaries", source })?;
    write_file_atomic(&out.join(UNIT_SUMMARIES), summaries.as_bytes())?;
    let report = build_report(registry, out, &record, events)?;
    drop(lock);
    Ok(RunOutcome { report, units })
}

/// Rebuilds a run folder's report from its store and its record (`descry report`).
pub fn rebuild_report(
    registry: &Registry,
    run_dir: &Path,
    events: &mut dyn FnMut(RunEvent),
) -> Result<PathBuf, RunError> {
    let record = RunRecord::read(run_dir)?;
    let lock = RunLock::acquire(run_dir)?;
    let report = build_report(registry, run_dir, &record, events)?;
    drop(lock);
    Ok(report)
}

/// The report of exactly the record's units and planned keys.
fn build_report(
    registry: &Registry,
    run_dir: &Path,
    record: &RunRecord,
    events: &mut dyn FnMut(RunEvent),
) -> Result<PathBuf, RunError> {
    let stored = study_predictions(run_dir, record)?;
    let analysis = analyse(registry, &stored.rows, &record.pairs, &record.settings);
    let note = stored.note();
    let files = write_report(run_dir, &record.title, &analysis, &record.settings, note.as_deref())?;
    events(RunEvent::ReportWritten {
        predictions: stored.rows.len(),
        tables: files.tables.len(),
        plots: files.plots.len(),
        note: note.as_deref(),
    });
    Ok(files.markdown)
}
