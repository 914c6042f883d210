//! The run record, `run.json`: what the study of a run folder asked for (its settings, its
//! pairs, and the exact work units it planned), so that the report is a function of the
//! store and this record alone. A run folder may hold more predictions than its current
//! study asks for (an earlier study with other games, limits or models wrote there): the
//! report analyses exactly the record's units, and of each unit exactly the decision keys
//! its last plan recorded, and says what else the folder holds.

use crate::{
    analysis::AnalysisSettings,
    store::{
        predictions_files, select_planned, write_file_atomic, PredictionRow, StoreError, UnitStore,
    },
    study::PairStatus,
};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// The record's file name in a run folder.
pub const RUN_RECORD: &str = "run.json";

/// One work unit: a model (its label, name and format), a game, a variant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UnitRef {
    /// The model's label (`name.format`).
    pub model: String,
    /// The study's game name.
    pub game: String,
    /// The prompt variant.
    pub variant: String,
}

impl UnitRef {
    /// The unit's store in a run folder.
    pub fn store(&self, run_dir: &Path) -> UnitStore {
        UnitStore::new(run_dir, &self.model, &self.game, &self.variant)
    }
}

impl std::fmt::Display for UnitRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {} / {}", self.model, self.game, self.variant)
    }
}

/// What a run folder records about its study.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// This run's id: unique per `descry run`; each unit's plan file names the run that
    /// wrote it, so a report never pairs this record with another run's plan.
    pub run_id: String,
    /// The study's name.
    pub title: String,
    /// Metrics, filters, bootstrap.
    pub settings: AnalysisSettings,
    /// The pairs and why any is excluded.
    pub pairs: Vec<PairStatus>,
    /// Every unit the study plans, in run order.
    pub units: Vec<UnitRef>,
    /// The merged study configuration, as run.
    pub study: serde_json::Value,
}

impl RunRecord {
    /// A fresh run id: process, host and time, distinct for every run.
    pub fn new_run_id() -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{nanos}-{}-{}", std::process::id(), crate::store::hostname())
    }

    /// Reads `run_dir/run.json`.
    pub fn read(run_dir: &Path) -> Result<RunRecord, StoreError> {
        let path = run_dir.join(RUN_RECORD);
        let text = std::fs::read_to_string(&path).map_err(|e| StoreError::Io {
            path: path.clone(),
            reason: format!("{e}: not a descry run folder (run `descry run STUDY` first)"),
        })?;
        serde_json::from_str(&text).map_err(|e| StoreError::Io {
            path,
            reason: format!(
                "unreadable run record ({e}); run `descry run STUDY` again to write it anew"
            ),
        })
    }

    /// Writes `run_dir/run.json` atomically.
    pub fn write(&self, run_dir: &Path) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| StoreError::Io {
            path: run_dir.join(RUN_RECORD),
            reason: e.to_string(),
        })?;
        write_file_atomic(&run_dir.join(RUN_RECORD), text.as_bytes())
    }
}

/// The predictions a report analyses, and what else the folder holds.
#[derive(Debug, Clone)]
pub struct StudyPredictions {
    /// Exactly the rows of the record's units and planned keys, unit by unit.
    pub rows: Vec<PredictionRow>,
    /// Stored predictions the study does not ask for (other configurations of its units).
    pub unplanned_rows: usize,
    /// Predictions files of units the study does not have (other models, games, variants).
    pub other_units: Vec<PathBuf>,
}

impl StudyPredictions {
    /// One sentence on what the folder holds beyond the study, if anything.
    pub fn note(&self) -> Option<String> {
        if self.unplanned_rows == 0 && self.other_units.is_empty() {
            return None;
        }
        Some(format!(
            "The run folder also holds {} stored predictions this study does not plan and {} predictions files of units it does not have (from earlier studies run into the same folder); they are kept and not analysed.",
            self.unplanned_rows,
            self.other_units.len()
        ))
    }
}

/// Reads the predictions of exactly the record's units and keys. Fails naming the unit
/// when one is not complete, or the file and line when a stored row is invalid.
pub fn study_predictions(
    run_dir: &Path,
    record: &RunRecord,
) -> Result<StudyPredictions, StoreError> {
    let mut rows = Vec::new();
    let mut unplanned_rows = 0;
    let mut unit_files = BTreeSet::new();
    for unit in &record.units {
        let store = unit.store(run_dir);
        let label = unit.to_string();
        let planned = store.read_plan(&label, &record.run_id)?;
        let stored = store.merged_rows()?;
        let stored_count = stored.len();
        let unit_rows = select_planned(&label, stored, &planned)?;
        unplanned_rows += stored_count - unit_rows.len();
        unit_files.insert(store.path().to_path_buf());
        rows.extend(unit_rows);
    }
    let other_units =
        predictions_files(run_dir)?.into_iter().filter(|f| !unit_files.contains(f)).collect();
    Ok(StudyPredictions { rows, unplanned_rows, other_units })
}
