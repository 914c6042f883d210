//! The result store: predictions appended per work unit, resumable, never duplicated.
//!
//! Layout under the run folder: `predictions/<model>/<game>/<variant>.csv` once a unit is
//! complete; while it runs, `predictions/<model>/<game>/<variant>.parts/part-NNNNNN.csv`.
//! Every file is written to a temporary name, synced and renamed, so a kill at any point
//! leaves only whole files. Rows are keyed by the decision's content hash
//! (model weights, format, prompt tokens, candidate tokens): a restarted run reads the keys
//! already stored and scores only what is missing. Completing a unit merges its parts into
//! one file in data order (and drops any duplicate key), then removes the parts.

use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
};

/// One stored prediction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PredictionRow {
    /// Content hash of the decision's inputs.
    pub key: String,
    /// Position in the unit's data order.
    pub index: usize,
    /// Model name.
    pub model: String,
    /// `base` or `aligned` (or `model` outside a pair).
    pub role: String,
    /// `plain` or `chat`.
    pub format: String,
    /// The study's game name.
    pub game: String,
    /// The game's family.
    pub family: String,
    /// Prompt variant.
    pub variant: String,
    /// Decision point id.
    pub decision: String,
    /// Episode id.
    pub episode: String,
    /// Round, from 1.
    pub round: u32,
    /// The option the person took (empty for aggregated outcomes).
    pub outcome_option: String,
    /// The human outcome as a rate of the target option (0/1 for individual decisions).
    pub outcome: f64,
    /// Outcome weight.
    pub weight: f64,
    /// Predicted probability of the target option, normalised over the options.
    pub prediction: f64,
    /// Total probability the model put on all options' tokens, before normalising.
    pub mass: f64,
    /// Per option, normalised probability, as JSON `{"accept": 0.7, ...}`.
    pub option_probs: String,
    /// Prompt length in tokens.
    pub prompt_tokens: usize,
    /// Data-quality flags, `;`-separated.
    pub flags: String,
    /// The decision's analysis metadata, JSON.
    pub metadata: String,
}

/// Store errors name the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn io(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io { path: path.to_path_buf(), reason: e.to_string() }
}

/// A name safe as a file name (model and game names come from users).
pub fn safe_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

/// The store of one work unit.
pub struct UnitStore {
    final_path: PathBuf,
    parts_dir: PathBuf,
}

impl UnitStore {
    /// The store of unit (model, game, variant) under `run_dir`.
    pub fn new(run_dir: &Path, model: &str, game: &str, variant: &str) -> UnitStore {
        let dir = run_dir.join("predictions").join(safe_name(model)).join(safe_name(game));
        UnitStore {
            final_path: dir.join(format!("{}.csv", safe_name(variant))),
            parts_dir: dir.join(format!("{}.parts", safe_name(variant))),
        }
    }

    /// The completed unit's file.
    pub fn path(&self) -> &Path {
        &self.final_path
    }

    /// Whether the unit was completed by an earlier run.
    pub fn is_complete(&self) -> bool {
        self.final_path.is_file()
    }

    /// Every row stored so far (complete file and parts), first occurrence of a key kept.
    pub fn rows(&self) -> Result<Vec<PredictionRow>, StoreError> {
        let mut files = Vec::new();
        if self.final_path.is_file() {
            files.push(self.final_path.clone());
        }
        if self.parts_dir.is_dir() {
            let mut parts: Vec<PathBuf> = std::fs::read_dir(&self.parts_dir)
                .map_err(|e| io(&self.parts_dir, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "csv"))
                .collect();
            parts.sort();
            files.extend(parts);
        }
        let mut seen = std::collections::HashSet::new();
        let mut rows = Vec::new();
        for file in files {
            for row in read_rows(&file)? {
                if seen.insert(row.key.clone()) {
                    rows.push(row);
                }
            }
        }
        Ok(rows)
    }

    /// Appends rows as one new part file, atomically.
    pub fn append(&self, rows: &[PredictionRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.parts_dir).map_err(|e| io(&self.parts_dir, e))?;
        let next = std::fs::read_dir(&self.parts_dir).map_err(|e| io(&self.parts_dir, e))?.count();
        let path = self.parts_dir.join(format!("part-{next:06}.csv"));
        write_atomic(&path, rows)
    }

    /// Merges everything stored into the unit's file, in data order, and removes the parts.
    pub fn complete(&self) -> Result<Vec<PredictionRow>, StoreError> {
        let mut rows = self.rows()?;
        rows.sort_by_key(|r| r.index);
        write_atomic(&self.final_path, &rows)?;
        if self.parts_dir.is_dir() {
            std::fs::remove_dir_all(&self.parts_dir).map_err(|e| io(&self.parts_dir, e))?;
        }
        Ok(rows)
    }
}

fn write_atomic(path: &Path, rows: &[PredictionRow]) -> Result<(), StoreError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        let file = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(file));
        for row in rows {
            writer.serialize(row).map_err(|e| io(&tmp, e))?;
        }
        let buffered = writer.into_inner().map_err(|e| io(&tmp, e.to_string()))?;
        let file = buffered.into_inner().map_err(|e| io(&tmp, e.to_string()))?;
        file.sync_all().map_err(|e| io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    Ok(())
}

/// Reads a predictions CSV.
pub fn read_rows(path: &Path) -> Result<Vec<PredictionRow>, StoreError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| io(path, e))?;
    let mut rows = Vec::new();
    for (i, row) in reader.deserialize().enumerate() {
        let row: PredictionRow = row.map_err(|e| io(path, format!("row {}: {e}", i + 2)))?;
        rows.push(row);
    }
    Ok(rows)
}

/// Every completed unit's rows under a run folder, in a stable order (by file path).
pub fn read_run(run_dir: &Path) -> Result<Vec<PredictionRow>, StoreError> {
    let mut files = Vec::new();
    collect_csv(&run_dir.join("predictions"), &mut files)?;
    files.sort();
    let mut rows = Vec::new();
    for f in files {
        rows.extend(read_rows(&f)?);
    }
    Ok(rows)
}

fn collect_csv(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), StoreError> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let path = entry.map_err(|e| io(dir, e))?.path();
        if path.is_dir() {
            // In-progress parts are not results yet.
            if path.extension().is_some_and(|e| e == "parts") {
                continue;
            }
            collect_csv(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "csv") {
            out.push(path);
        }
    }
    Ok(())
}

/// Writes a small JSON or text file atomically.
pub fn write_file_atomic(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(contents).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    Ok(())
}

/// Counts rows per (model, game, variant), for summaries.
pub fn count_by_unit(rows: &[PredictionRow]) -> BTreeMap<(String, String, String), usize> {
    let mut m = BTreeMap::new();
    for r in rows {
        *m.entry((r.model.clone(), r.game.clone(), r.variant.clone())).or_default() += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, index: usize) -> PredictionRow {
        PredictionRow {
            key: key.into(),
            index,
            model: "m".into(),
            role: "base".into(),
            format: "plain".into(),
            game: "g".into(),
            family: "f".into(),
            variant: "v".into(),
            decision: format!("d{index}"),
            episode: "e".into(),
            round: 1,
            outcome_option: "accept".into(),
            outcome: 1.0,
            weight: 1.0,
            prediction: 0.25,
            mass: 0.9,
            option_probs: "{\"accept\":0.25,\"reject\":0.75}".into(),
            prompt_tokens: 12,
            flags: String::new(),
            metadata: "{\"delta\":0.9}".into(),
        }
    }

    #[test]
    fn parts_merge_in_data_order_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let store = UnitStore::new(dir.path(), "m", "g", "v");
        store.append(&[row("b", 1), row("c", 2)]).unwrap();
        store.append(&[row("a", 0), row("b", 1)]).unwrap();
        assert!(!store.is_complete());
        assert_eq!(store.rows().unwrap().len(), 3);
        let rows = store.complete().unwrap();
        assert_eq!(rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(store.is_complete());
        assert_eq!(read_run(dir.path()).unwrap(), rows);
    }
}
