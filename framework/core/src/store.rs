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
use sha2::Digest;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::Write,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
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
    /// A stored row is not a prediction descry could have written (edited, duplicated or
    /// corrupt): nothing from the file is used.
    #[error("{path}, line {line}: {reason}; the file was not written by descry as it is now: delete it and run again to score its decisions anew")]
    InvalidRow {
        /// The file.
        path: PathBuf,
        /// CSV line (1 = header).
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// Another process holds the run folder.
    #[error("run folder {dir} is in use by another descry process ({holder}); wait for it to finish, or use another --out folder")]
    Locked {
        /// The run folder.
        dir: PathBuf,
        /// Who holds it, as the holder wrote it into the lock file.
        holder: String,
    },
    /// A unit the report needs is not complete in the store.
    #[error("unit {unit}: {reason}")]
    Incomplete {
        /// The unit (model label / game / variant).
        unit: String,
        /// What is missing and what to do.
        reason: String,
    },
}

fn io(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io { path: path.to_path_buf(), reason: e.to_string() }
}

/// The file name a model, game or variant name is stored under: injective, so two names
/// never share a file (`a b` and `a_b`, `模型` and `型模`), and never `.`, `..` or a path.
/// ASCII letters, digits, `-`, `_` and inner `.` stay as they are (readable folders for the
/// usual names); every other byte is written `%XX`. A name longer than 120 bytes keeps its
/// first 100 encoded bytes plus a hash of the whole name.
pub fn safe_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    // Folders named `*.parts` hold a unit's parts: no name may look like one.
    if out.ends_with(".parts") {
        let dot = out.len() - ".parts".len();
        out.replace_range(dot..dot + 1, "%2E");
    }
    if out.is_empty() {
        // The empty name is a name too, distinct from every other.
        out.push('%');
    }
    if out.len() > 120 {
        let digest = sha2::Sha256::digest(name.as_bytes());
        let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let mut cut = 100;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out = format!("{}~{hash}", &out[..cut]);
    }
    out
}

/// The store of one work unit.
pub struct UnitStore {
    final_path: PathBuf,
    parts_dir: PathBuf,
}

/// Part files of this process get distinct names even when several units or threads
/// append at once.
static PART_COUNTER: AtomicU64 = AtomicU64::new(0);

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

    /// Every row stored so far (merged file and parts), each row validated, the first
    /// occurrence of a key kept (a kill between merging and removing the parts leaves the
    /// same rows in both).
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
        let mut seen = HashSet::new();
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

    /// Appends rows as one new part file, atomically, under a name no other writer uses.
    pub fn append(&self, rows: &[PredictionRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.parts_dir).map_err(|e| io(&self.parts_dir, e))?;
        let n = PART_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self.parts_dir.join(format!(
            "part-{}-{:06}-{n:06}.csv",
            std::process::id(),
            now_secs()
        ));
        write_atomic(&path, rows)
    }

    /// Merges everything stored into the unit's file (sorted by data order; rows of keys
    /// the current study does not plan are kept too, for a later study that plans them),
    /// removes the parts, and returns exactly the rows of `planned` keys, in their order.
    /// Fails naming the unit if a planned key has no row.
    pub fn complete(
        &self,
        unit: &str,
        planned: &[String],
    ) -> Result<Vec<PredictionRow>, StoreError> {
        let mut rows = self.rows()?;
        rows.sort_by_key(|r| r.index);
        let had_parts = self.parts_dir.is_dir();
        if had_parts || !self.final_path.is_file() {
            write_atomic(&self.final_path, &rows)?;
        }
        if had_parts {
            std::fs::remove_dir_all(&self.parts_dir).map_err(|e| io(&self.parts_dir, e))?;
        }
        select_planned(unit, rows, planned)
    }

    /// The merged file's rows (none if the unit was never completed).
    pub fn merged_rows(&self) -> Result<Vec<PredictionRow>, StoreError> {
        if self.final_path.is_file() {
            read_rows(&self.final_path)
        } else {
            Ok(Vec::new())
        }
    }

    /// The plan file: the keys the study that last ran this unit planned, one per line.
    fn plan_path(&self) -> PathBuf {
        self.final_path.with_extension("keys")
    }

    /// Records which keys the run `run_id` plans for this unit (what the report reads).
    pub fn write_plan(&self, run_id: &str, planned: &[String]) -> Result<(), StoreError> {
        let mut text = String::with_capacity(planned.len() * 33 + 64);
        text.push_str(&format!("{PLAN_HEADER}{run_id}\n"));
        for key in planned {
            text.push_str(key);
            text.push('\n');
        }
        write_file_atomic(&self.plan_path(), text.as_bytes())
    }

    /// The keys recorded by [`UnitStore::write_plan`] for the run `run_id`. A plan of
    /// another run (an earlier study, or a run killed before it planned this unit) is an
    /// error: its keys are not what the current record asks for.
    pub fn read_plan(&self, unit: &str, run_id: &str) -> Result<Vec<String>, StoreError> {
        let path = self.plan_path();
        let incomplete = |why: &str| StoreError::Incomplete {
            unit: unit.to_string(),
            reason: format!("{} {why}; run `descry run` again to finish it", path.display()),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(incomplete(
                    "is missing: the run did not get as far as planning this unit",
                ))
            }
            Err(e) => return Err(io(&path, e)),
        };
        let mut lines = text.lines();
        if lines.next().and_then(|l| l.strip_prefix(PLAN_HEADER)) != Some(run_id) {
            return Err(incomplete("was written by another run than the one run.json records"));
        }
        Ok(lines.map(str::to_string).collect())
    }
}

/// First line of a unit's plan file, before the run's id.
const PLAN_HEADER: &str = "# descry plan of run ";

/// The rows of exactly the `planned` keys, in their order. Fails naming the unit when a
/// planned key has no row.
pub fn select_planned(
    unit: &str,
    rows: Vec<PredictionRow>,
    planned: &[String],
) -> Result<Vec<PredictionRow>, StoreError> {
    let mut by_key: HashMap<String, PredictionRow> =
        rows.into_iter().map(|r| (r.key.clone(), r)).collect();
    let mut out = Vec::with_capacity(planned.len());
    let mut missing = 0;
    for key in planned {
        match by_key.remove(key) {
            Some(row) => out.push(row),
            None => missing += 1,
        }
    }
    if missing > 0 {
        return Err(StoreError::Incomplete {
            unit: unit.to_string(),
            reason: format!(
                "{missing} of {} planned decisions have no stored prediction; run `descry run` again to score them",
                planned.len()
            ),
        });
    }
    Ok(out)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// This machine's name, for the records of who wrote what (empty if unknown).
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// The part of a temporary file's name that marks it (`run.tmp-123`, `part-….tmp-123`).
const TMP_MARK: &str = ".tmp-";

/// The temporary name a file or folder is written under before it is renamed into place
/// (`NAME.tmp-PID`); [`RunLock::clean_leftovers`] removes those a kill left.
pub fn tmp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{name}{TMP_MARK}{}", std::process::id()))
}

/// Writes prediction rows as one CSV file, atomically (through [`write_file_atomic`]).
fn write_atomic(path: &Path, rows: &[PredictionRow]) -> Result<(), StoreError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).map_err(|e| io(path, e))?;
    }
    let bytes = writer.into_inner().map_err(|e| io(path, e.to_string()))?;
    write_file_atomic(path, &bytes)
}

impl PredictionRow {
    /// Why this row cannot be a prediction descry wrote, if it cannot.
    pub fn invalid(&self) -> Option<String> {
        let unit_interval = |name: &str, v: f64| -> Option<String> {
            (!(v.is_finite() && (0.0..=1.0).contains(&v)))
                .then(|| format!("{name} = {v} is not a probability in [0, 1]"))
        };
        if self.key.is_empty() {
            return Some("the key is empty".into());
        }
        unit_interval("prediction", self.prediction)
            // Rounding can put a sum of probabilities a hair above 1.
            .or_else(|| {
                (!(self.mass.is_finite() && (0.0..=1.0 + 1e-6).contains(&self.mass)))
                    .then(|| format!("mass = {} is not a probability in [0, 1]", self.mass))
            })
            .or_else(|| unit_interval("outcome", self.outcome))
            .or_else(|| {
                (!(self.weight.is_finite() && self.weight > 0.0))
                    .then(|| format!("weight = {} is not a positive number", self.weight))
            })
            .or_else(|| {
                let probs: BTreeMap<String, f64> = match serde_json::from_str(&self.option_probs) {
                    Ok(p) => p,
                    Err(e) => {
                        return Some(format!(
                            "option_probs is not a JSON map of probabilities: {e}"
                        ))
                    }
                };
                probs.iter().find_map(|(o, &p)| unit_interval(&format!("option_probs.{o}"), p))
            })
    }
}

/// Reads a predictions CSV, validating every row: a key occurs once, probabilities are
/// finite and in [0, 1]. A bad row fails the whole file, naming its line.
pub fn read_rows(path: &Path) -> Result<Vec<PredictionRow>, StoreError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| io(path, e))?;
    let mut rows: Vec<PredictionRow> = Vec::new();
    let mut lines: HashMap<String, u64> = HashMap::new();
    for row in reader.deserialize::<PredictionRow>() {
        let line = rows.len() as u64 + 2;
        let row = row.map_err(|e| StoreError::InvalidRow {
            path: path.to_path_buf(),
            line,
            reason: e.to_string(),
        })?;
        if let Some(reason) = row.invalid() {
            return Err(StoreError::InvalidRow { path: path.to_path_buf(), line, reason });
        }
        if let Some(first) = lines.insert(row.key.clone(), line) {
            return Err(StoreError::InvalidRow {
                path: path.to_path_buf(),
                line,
                reason: format!("key {} also on line {first}: a decision is stored once", row.key),
            });
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Writes a small JSON or text file atomically.
pub fn write_file_atomic(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    let tmp = tmp_path(path);
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(contents).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    Ok(())
}

/// Removes a file if it exists.
pub fn remove_if_exists(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path, e)),
    }
}

/// The exclusive hold of one process on a run folder: `descry.lock` in the folder,
/// locked with the operating system's advisory lock, so the hold ends when the process
/// does, however it ends (a copied folder's lock file is not held by anyone).
pub struct RunLock {
    _file: std::fs::File,
}

/// The lock file's name in a run folder.
pub const LOCK_FILE: &str = "descry.lock";

impl RunLock {
    /// Takes the run folder (creating it), or fails naming the process that holds it.
    pub fn acquire(run_dir: &Path) -> Result<RunLock, StoreError> {
        std::fs::create_dir_all(run_dir).map_err(|e| io(run_dir, e))?;
        let path = run_dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(StoreError::Locked {
                    dir: run_dir.to_path_buf(),
                    holder: if holder.is_empty() {
                        "holder unknown".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&path, e)),
        }
        let args: Vec<String> = std::env::args().collect();
        let holder = format!(
            "pid {} on {}, since {} (unix time), running `{}`",
            std::process::id(),
            hostname(),
            now_secs(),
            args.join(" ")
        );
        file.set_len(0).map_err(|e| io(&path, e))?;
        file.write_all(holder.as_bytes()).map_err(|e| io(&path, e))?;
        Ok(RunLock { _file: file })
    }

    /// Removes what killed processes left in the run folder: temporary files, and part
    /// folders whose every row is already in their unit's merged file. Only safe while
    /// holding the lock (no other writer can be mid-write). Returns what was removed.
    pub fn clean_leftovers(&self, run_dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
        let mut removed = Vec::new();
        clean_dir(run_dir, &mut removed)?;
        Ok(removed)
    }
}

fn clean_dir(dir: &Path, removed: &mut Vec<PathBuf>) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(|e| io(&path, e))?;
        if kind.is_dir() {
            if name.contains(TMP_MARK) {
                std::fs::remove_dir_all(&path).map_err(|e| io(&path, e))?;
                removed.push(path);
                continue;
            }
            clean_dir(&path, removed)?;
            if let Some(unit) = name.strip_suffix(".parts") {
                let merged = dir.join(format!("{unit}.csv"));
                if merged.is_file() && parts_covered(&path, &merged)? {
                    std::fs::remove_dir_all(&path).map_err(|e| io(&path, e))?;
                    removed.push(path);
                }
            }
        } else if name.contains(TMP_MARK) {
            std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
            removed.push(path);
        }
    }
    Ok(())
}

/// Whether every key in a parts folder is already in the merged file.
fn parts_covered(parts: &Path, merged: &Path) -> Result<bool, StoreError> {
    let keys: HashSet<String> = read_rows(merged)?.into_iter().map(|r| r.key).collect();
    for entry in std::fs::read_dir(parts).map_err(|e| io(parts, e))? {
        let path = entry.map_err(|e| io(parts, e))?.path();
        if path.extension().is_some_and(|x| x == "csv")
            && !read_rows(&path)?.iter().all(|r| keys.contains(&r.key))
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Every merged predictions file under a run folder (not in-progress parts), by path.
pub fn predictions_files(run_dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut files = Vec::new();
    collect_csv(&run_dir.join("predictions"), &mut files)?;
    files.sort();
    Ok(files)
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

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parts_merge_in_data_order_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let store = UnitStore::new(dir.path(), "m", "g", "v");
        store.append(&[row("b", 1), row("c", 2)]).unwrap();
        store.append(&[row("a", 0), row("b", 1)]).unwrap();
        assert_eq!(store.rows().unwrap().len(), 3);
        let rows = store.complete("m/g/v", &keys(&["a", "b", "c"])).unwrap();
        assert_eq!(rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(store.merged_rows().unwrap(), rows);
        assert_eq!(predictions_files(dir.path()).unwrap(), vec![store.path().to_path_buf()]);
    }

    /// A unit is complete only for the keys the current study plans: a smaller study gets
    /// exactly its rows (the others stay stored), a larger one is told what is missing.
    #[test]
    fn a_unit_is_complete_only_for_the_planned_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = UnitStore::new(dir.path(), "m", "g", "v");
        store.append(&[row("a", 0), row("b", 1), row("c", 2)]).unwrap();
        let rows = store.complete("m/g/v", &keys(&["c", "a"])).unwrap();
        assert_eq!(rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["c", "a"]);
        assert_eq!(store.merged_rows().unwrap().len(), 3, "unplanned rows are kept for later");
        let err = store.complete("m/g/v", &keys(&["a", "d", "e"])).unwrap_err().to_string();
        assert!(err.contains("m/g/v") && err.contains("2 of 3 planned decisions"), "{err}");
        store.write_plan("run-1", &keys(&["b", "a"])).unwrap();
        assert_eq!(store.read_plan("u", "run-1").unwrap(), keys(&["b", "a"]));
        let err = store.read_plan("m/g/v", "run-2").unwrap_err().to_string();
        assert!(err.contains("m/g/v") && err.contains("another run"), "{err}");
        let missing = UnitStore::new(dir.path(), "m", "g", "other");
        assert!(missing
            .read_plan("m/g/other", "run-1")
            .unwrap_err()
            .to_string()
            .contains("m/g/other"));
    }

    #[test]
    fn store_names_never_collide() {
        let names = [
            "a b",
            "a_b",
            "a%20b",
            "模型",
            "型模",
            "..",
            ".",
            "",
            "a/b",
            "a.b",
            "A",
            "gemma-3-270m.plain",
            "x.parts",
            "x%2Eparts",
        ];
        let encoded: Vec<String> = names.iter().map(|n| safe_name(n)).collect();
        let distinct: HashSet<&String> = encoded.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{encoded:?}");
        for e in &encoded {
            assert!(
                e != "."
                    && e != ".."
                    && !e.contains('/')
                    && !e.is_empty()
                    && !e.ends_with(".parts"),
                "{e}"
            );
        }
        // The usual names stay readable.
        assert_eq!(safe_name("gemma-3-270m.plain"), "gemma-3-270m.plain");
        // Long names stay short and distinct.
        let long_a = "x".repeat(300) + "a";
        let long_b = "x".repeat(300) + "b";
        assert!(safe_name(&long_a).len() <= 120);
        assert_ne!(safe_name(&long_a), safe_name(&long_b));
        // Two models whose names once mapped to one folder get two stores.
        let dir = tempfile::tempdir().unwrap();
        assert_ne!(
            UnitStore::new(dir.path(), "a b", "g", "v").path(),
            UnitStore::new(dir.path(), "a_b", "g", "v").path()
        );
        let dotdot = UnitStore::new(dir.path(), "m", "..", "v");
        assert!(
            dotdot.path().starts_with(dir.path().join("predictions").join("m")),
            "{}",
            dotdot.path().display()
        );
    }

    fn write_raw(path: &Path, rows: &[PredictionRow]) {
        let mut w = csv::Writer::from_path(path).unwrap();
        for r in rows {
            w.serialize(r).unwrap();
        }
        w.flush().unwrap();
    }

    #[test]
    fn tampered_rows_are_rejected_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.csv");
        let cases: Vec<(Vec<PredictionRow>, &str)> = vec![
            (vec![row("a", 0), row("b", 1), row("a", 0)], "line 4: key a also on line 2"),
            (
                vec![row("a", 0), PredictionRow { prediction: f64::NAN, ..row("b", 1) }],
                "line 3: prediction = NaN",
            ),
            (vec![PredictionRow { prediction: 7.5, ..row("a", 0) }], "line 2: prediction = 7.5"),
            (vec![PredictionRow { mass: -0.1, ..row("a", 0) }], "mass = -0.1"),
            (vec![PredictionRow { outcome: 2.0, ..row("a", 0) }], "outcome = 2"),
            (vec![PredictionRow { weight: 0.0, ..row("a", 0) }], "weight = 0"),
            (
                vec![PredictionRow { option_probs: "{\"accept\":1.5}".into(), ..row("a", 0) }],
                "option_probs.accept = 1.5",
            ),
            (
                vec![PredictionRow { option_probs: "nope".into(), ..row("a", 0) }],
                "option_probs is not",
            ),
        ];
        for (rows, expected) in cases {
            write_raw(&path, &rows);
            let err = read_rows(&path).unwrap_err().to_string();
            assert!(
                err.contains(&path.display().to_string()) && err.contains(expected),
                "{expected}: {err}"
            );
        }
        // A row whose numbers cannot be parsed at all.
        std::fs::write(&path, "key,index\nx,notanumber\n").unwrap();
        let err = read_rows(&path).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        // A mass a hair above 1 (rounding of a sum) is fine.
        write_raw(&path, &[PredictionRow { mass: 1.0 + 1e-9, ..row("a", 0) }]);
        assert_eq!(read_rows(&path).unwrap().len(), 1);
    }

    #[test]
    fn a_second_writer_is_refused_naming_the_holder_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).err().expect("second lock refused").to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())) && err.contains("in use"),
            "{err}"
        );
        drop(first);
        RunLock::acquire(dir.path()).expect("free again once the holder is gone");
    }

    #[test]
    fn leftovers_of_a_kill_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        let store = UnitStore::new(run, "m", "g", "v");
        store.append(&[row("a", 0)]).unwrap();
        store.complete("u", &keys(&["a"])).unwrap();
        // A kill after the merge, before the parts were removed; and one mid-write.
        let parts = run.join("predictions/m/g/v.parts");
        std::fs::create_dir_all(&parts).unwrap();
        write_raw(&parts.join("part-1.csv"), &[row("a", 0)]);
        std::fs::write(run.join("run.json.tmp-99999"), "half").unwrap();
        std::fs::write(run.join("predictions/m/g/v.csv.tmp-99999"), "half").unwrap();
        std::fs::create_dir_all(run.join("tables.tmp-99999")).unwrap();
        // Parts with rows not yet merged are results: they stay.
        let other = UnitStore::new(run, "m", "g", "w");
        other.append(&[row("z", 0)]).unwrap();
        std::fs::write(run.join("predictions/m/g/w.csv"), "").unwrap();
        write_raw(&run.join("predictions/m/g/w.csv"), &[row("y", 0)]);
        let lock = RunLock::acquire(run).unwrap();
        let mut removed = lock.clean_leftovers(run).unwrap();
        removed.sort();
        let mut expected = vec![
            run.join("predictions/m/g/v.csv.tmp-99999"),
            parts.clone(),
            run.join("run.json.tmp-99999"),
            run.join("tables.tmp-99999"),
        ];
        expected.sort();
        assert_eq!(removed, expected);
        assert!(run.join("predictions/m/g/w.parts").is_dir());
        assert_eq!(other.rows().unwrap().len(), 2);
    }
}
