//! The study configuration: schema and layering.
//!
//! Layers, lowest first: built-in defaults < study file (TOML) < `DESCRY_*` environment
//! variables (`DESCRY_BACKEND__THREADS=4` sets `backend.threads`) < `--set key=value`.
//! Unknown keys and wrong types are errors naming the key path and the layer they came
//! from (the file, the variable, the `--set` argument); so is a `DESCRY_*` variable that
//! names no key (except [`OTHER_VARIABLES`]). Relative paths in a study file are relative
//! to the file's folder.

use figment::{
    providers::{Format, Serialized, Toml},
    value::{magic::RelativePathBuf, Dict, Map, Value},
    Figment, Metadata, Profile, Provider,
};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// Top-level sections a `DESCRY_*` variable may address.
pub const SECTIONS: &[&str] =
    &["study", "data", "plugins", "backend", "pairs", "games", "filters", "analysis"];

/// `DESCRY_*` variables that are not study keys: descry, its scripts and its tests use
/// them for other things. Every other `DESCRY_*` variable must name a study key.
pub const OTHER_VARIABLES: &[&str] = &[
    "DESCRY_HOME",
    "DESCRY_BIN",
    "DESCRY_SMOLLM2_GGUF",
    "DESCRY_GEMMA3_GGUF",
    "DESCRY_GOLDEN",
    "DESCRY_KEEP_IMPORT",
];

/// The prefix of the environment layer; `__` separates the parts of a key.
const ENV_PREFIX: &str = "DESCRY_";

/// A whole study.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Study {
    /// Name and output.
    pub study: StudySection,
    /// Where the human data lives.
    pub data: DataSection,
    /// Where plugins are found.
    pub plugins: PluginsSection,
    /// Backend options shared by every model (a model may override them).
    pub backend: BackendOptions,
    /// Base-vs-aligned model pairs.
    pub pairs: Vec<PairSection>,
    /// Games to run, by a name of the study's choosing.
    pub games: BTreeMap<String, GameSection>,
    /// Pair filters, applied per game family.
    pub filters: FiltersSection,
    /// Metrics and statistics.
    pub analysis: AnalysisSection,
    /// Where each value came from (file, variable, `--set`), for messages about keys that
    /// only a plugin can check. Not part of the study's content.
    #[serde(skip)]
    pub origin: Origin,
}

/// The layers a study was built from, kept to say which one supplied a key.
#[derive(Clone, Default)]
pub struct Origin {
    figment: Option<Figment>,
    file: Option<PathBuf>,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origin").field("file", &self.file).finish_non_exhaustive()
    }
}

impl Origin {
    /// Where the value of a dotted key came from: `study file PATH`, `--set ...`,
    /// `environment variable ...`, or `the defaults`.
    pub fn source_of(&self, key: &str) -> String {
        let metadata = self.figment.as_ref().and_then(|f| f.find_metadata(key));
        match metadata {
            Some(m) => match &m.source {
                Some(figment::Source::File(path)) => format!("study file {}", path.display()),
                // The built-in defaults are serialized from code.
                Some(figment::Source::Code(_)) => "the defaults".into(),
                Some(src) => format!("{} ({src})", m.name),
                None => m.name.to_string(),
            },
            None => "the defaults".into(),
        }
    }

    /// The folder relative paths of plugin tables are relative to: the study file's
    /// folder, else the working directory (empty).
    pub fn base_dir(&self) -> PathBuf {
        self.file.as_ref().and_then(|f| f.parent()).map(Path::to_path_buf).unwrap_or_default()
    }
}

/// `[study]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StudySection {
    /// Name used in reports.
    pub name: String,
    /// Output folder for predictions, tables, plots and the report.
    #[serde(serialize_with = "RelativePathBuf::serialize_relative")]
    pub output: RelativePathBuf,
    /// Seed for every random choice (bootstrap resampling, subsets).
    pub seed: u64,
}

impl Default for StudySection {
    fn default() -> Self {
        StudySection {
            name: "study".into(),
            output: PathBuf::from("runs/study").into(),
            seed: 20260317,
        }
    }
}

/// `[data]`
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// Folder holding the data sets (`akata/`, `choices13k/`, `glee/`); game `data` paths
    /// are relative to it. Unset: `../shared/data` if it exists, else `$DESCRY_HOME/data`
    /// (where `descry data fetch` puts the public releases).
    #[serde(serialize_with = "serialize_opt_relative", skip_serializing_if = "Option::is_none")]
    pub root: Option<RelativePathBuf>,
}

/// `[plugins]`
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsSection {
    /// Extra plugin folders, scanned after the folder of the `descry` binary.
    #[serde(serialize_with = "serialize_relative_vec")]
    pub paths: Vec<RelativePathBuf>,
}

/// `[backend]`: the settings every backend understands, and each backend's own table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BackendOptions {
    /// Backend plugin name (empty: the one backend plugin loaded).
    pub plugin: String,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// Compute threads (0: one per core).
    pub threads: usize,
    /// Token budget of one forward batch (bounds memory).
    pub batch_tokens: usize,
    /// Compute a beginning shared by several sequences once and reuse its work.
    /// Off: every sequence runs from its first token (the published method's cost).
    pub prefix_reuse: bool,
    /// Work of shared prefixes kept from one scoring call to the next, in tokens (unset:
    /// the backend's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_cache_tokens: Option<u64>,
    /// `[backend.PLUGIN]`: each backend's own settings, given to that backend verbatim and
    /// checked by it when the study is prepared (see `descry plugins` for what each takes).
    #[serde(flatten)]
    pub engines: BTreeMap<String, serde_json::Value>,
}

/// The keys of `[backend]` itself; any other key must be a backend's table.
pub const BACKEND_KEYS: &[&str] =
    &["plugin", "device", "threads", "batch_tokens", "prefix_reuse", "prefix_cache_tokens"];

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            plugin: String::new(),
            device: "cpu".into(),
            threads: 0,
            batch_tokens: 8192,
            prefix_reuse: true,
            prefix_cache_tokens: None,
            engines: BTreeMap::new(),
        }
    }
}

impl BackendOptions {
    /// A backend's own table as JSON (`{}` when the study has none).
    pub fn engine_table(&self, plugin: &str) -> serde_json::Value {
        self.engines.get(plugin).cloned().unwrap_or_else(|| serde_json::json!({}))
    }

    /// Keys beyond [`BACKEND_KEYS`] that are not tables: unknown keys, or keys of a
    /// backend's own table written in `[backend]` itself. Only the loaded backends can say
    /// which (see `backend::check_backend_keys`).
    pub fn stray_keys(&self) -> impl Iterator<Item = &str> {
        self.engines.iter().filter(|(_, v)| !v.is_object()).map(|(k, _)| k.as_str())
    }
}

/// One model of a pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Name in reports (default: the folder name).
    #[serde(default)]
    pub name: Option<String>,
    /// Model folder written by `descry import` (see [`ModelSection::folder`]).
    #[serde(serialize_with = "RelativePathBuf::serialize_original")]
    pub path: RelativePathBuf,
    /// Prompt format: `native` (base: plain text; aligned: its chat template), `plain`, or
    /// `chat` (the control formats of the paper).
    #[serde(default = "native")]
    pub format: String,
}

fn native() -> String {
    "native".into()
}

impl ModelSection {
    /// The model folder: `$DESCRY_HOME` / `${DESCRY_HOME}` and a leading `~/` are expanded
    /// (so a study can name the setup script's models on any machine); other relative paths
    /// are relative to the study file.
    pub fn folder(&self) -> PathBuf {
        let original = self.path.original().to_string_lossy().to_string();
        for var in ["${DESCRY_HOME}", "$DESCRY_HOME"] {
            if let Some(rest) = original.strip_prefix(var) {
                return descry_home().join(rest.trim_start_matches('/'));
            }
        }
        if let Some(rest) = original.strip_prefix("~/") {
            if let Some(home) = std::env::var_os("HOME") {
                return PathBuf::from(home).join(rest);
            }
        }
        self.path.relative()
    }
}

/// `[[pairs]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairSection {
    /// Pair name.
    pub name: String,
    /// The base (pre-trained) model.
    pub base: ModelSection,
    /// The aligned (instruction/chat) sibling.
    pub aligned: ModelSection,
    /// Size in billions of parameters, for size-trend analyses (optional).
    #[serde(default)]
    pub size_b: Option<f64>,
}

/// `[games.NAME]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GameSection {
    /// Game plugin name (default: the table's name).
    #[serde(default)]
    pub plugin: Option<String>,
    /// Data set path, relative to `data.root` unless absolute.
    pub data: PathBuf,
    /// Parameters passed to the game's loader.
    #[serde(default = "empty_object")]
    pub params: serde_json::Value,
    /// Prompt variants to run (empty: every variant the game has).
    #[serde(default)]
    pub variants: Vec<String>,
    /// Keep at most this many episodes (a deterministic subset; none: all).
    #[serde(default)]
    pub limit: Option<usize>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// `[filters]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiltersSection {
    /// Drop a pair in a family when either model's mean mass on the options is below this.
    pub min_mass: f64,
    /// Drop a pair in a family when both models correlate with people below this.
    pub min_correlation: f64,
}

impl Default for FiltersSection {
    fn default() -> Self {
        FiltersSection { min_mass: 0.8, min_correlation: 0.3 }
    }
}

/// `[analysis]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisSection {
    /// Metrics to compute (names from the metrics plugins).
    pub metrics: Vec<String>,
    /// The metric that decides a pair's winner and the correlation filter.
    pub primary_metric: String,
    /// Bootstrap resamples (of episodes) for confidence intervals.
    pub bootstrap: usize,
}

impl Default for AnalysisSection {
    fn default() -> Self {
        AnalysisSection {
            metrics: ["pearson", "spearman", "auc", "brier", "nll", "accuracy"]
                .map(String::from)
                .to_vec(),
            primary_metric: "pearson".into(),
            bootstrap: 1000,
        }
    }
}

fn serialize_opt_relative<S: serde::Serializer>(
    v: &Option<RelativePathBuf>,
    s: S,
) -> Result<S::Ok, S::Error> {
    v.as_ref().map(|p| p.relative()).serialize(s)
}

fn serialize_relative_vec<S: serde::Serializer>(
    v: &[RelativePathBuf],
    s: S,
) -> Result<S::Ok, S::Error> {
    v.iter().map(|p| p.relative()).collect::<Vec<_>>().serialize(s)
}

/// A configuration error: the message names the key path and the file or layer.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The study file does not exist or cannot be read.
    #[error("study file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
    /// A `--set` argument is not `key=value` with a well-formed key.
    #[error(
        "--set {arg}: {reason}; expected the form section.key=value, e.g. --set backend.threads=4"
    )]
    BadSet {
        /// The argument.
        arg: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `DESCRY_*` variable that names no study key.
    #[error("environment variable {var}: {reason}")]
    BadEnv {
        /// The variable.
        var: String,
        /// What is wrong and the right spelling.
        reason: String,
    },
    /// The merged configuration does not fit the schema.
    #[error("{0}")]
    Invalid(String),
}

/// Builds the layered configuration.
pub struct ConfigLoader {
    figment: Figment,
    file: Option<PathBuf>,
}

impl ConfigLoader {
    /// Defaults, then the study file (if any), then `DESCRY_*` variables, then `overrides`
    /// (`key=value` strings; values parse as TOML, falling back to a plain string).
    pub fn new(
        study_file: Option<&Path>,
        overrides: &[String],
    ) -> Result<ConfigLoader, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Study::default()));
        if let Some(path) = study_file {
            // figment ignores a missing file silently; a study that names one must exist.
            std::fs::metadata(path).map_err(|e| ConfigError::File {
                path: path.to_path_buf(),
                reason: format!("{e} (check the path, or run from the project folder)"),
            })?;
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            if let Err(e) = text.parse::<toml::Table>() {
                return Err(ConfigError::File {
                    path: path.to_path_buf(),
                    reason: format!("not valid TOML: {e}"),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // The environment layer, one variable at a time so that an error names the
        // variable. Sorted: the same environment always merges the same way.
        let mut vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
            .filter(|(k, _)| {
                k.get(..ENV_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
            })
            .collect();
        vars.sort();
        for (var, raw) in vars {
            let Some(key) = env_key(&var)? else { continue };
            // Values parse as figment's environment provider parses them (numbers,
            // booleans, arrays; else a string).
            let value: Value = raw.parse().unwrap_or_else(|_| Value::from(raw.clone()));
            figment =
                figment.merge(Named { name: format!("environment variable {var}"), key, value });
        }
        for arg in overrides {
            let (key, raw) = arg.split_once('=').ok_or_else(|| ConfigError::BadSet {
                arg: arg.clone(),
                reason: "no `=` in it".into(),
            })?;
            let key = key.trim();
            if let Some(problem) = malformed_key(key) {
                return Err(ConfigError::BadSet {
                    arg: arg.clone(),
                    reason: format!("the key `{key}` is malformed ({problem})"),
                });
            }
            let value =
                Value::serialize(command_line_value(raw)).map_err(|e| ConfigError::BadSet {
                    arg: arg.clone(),
                    reason: format!("the value cannot be used: {e}"),
                })?;
            figment =
                figment.merge(Named { name: format!("--set {arg}"), key: key.to_string(), value });
        }
        Ok(ConfigLoader { figment, file: study_file.map(Path::to_path_buf) })
    }

    /// Extracts and validates the study.
    pub fn study(&self) -> Result<Study, ConfigError> {
        let mut study: Study = self.figment.extract().map_err(describe_figment_errors)?;
        study.origin = Origin { figment: Some(self.figment.clone()), file: self.file.clone() };
        study.validate()?;
        Ok(study)
    }
}

/// A value given on the command line (`--set key=VALUE`, `--engine KEY=VALUE`): TOML when it
/// parses as TOML (`4`, `true`, `[1, 2]`, `"text"`), else the text itself.
pub fn command_line_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// One value at a dotted key, as a figment layer whose name says where it came from
/// (`--set backend.threads=x`, `environment variable DESCRY_BACKEND__THREADS`), so that
/// an error about it names the argument or the variable.
struct Named {
    name: String,
    key: String,
    value: Value,
}

impl Provider for Named {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Serialized::global(&self.key, &self.value).data()
    }
}

/// What is wrong with a dotted key, if anything: every part between dots must be a
/// non-empty name of letters, digits, `_` or `-`.
fn malformed_key(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("it is empty".into());
    }
    for part in key.split('.') {
        if part.is_empty() {
            return Some("an empty part between dots".into());
        }
        if let Some(c) =
            part.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Some(format!("`{c}` in `{part}`; a key is names joined by dots"));
        }
    }
    None
}

/// The study key a `DESCRY_*` variable sets (`DESCRY_BACKEND__THREADS`: `backend.threads`),
/// `None` for the variables that are not study keys, an error for a variable that maps to
/// no section or has an empty part (figment would drop both silently).
fn env_key(var: &str) -> Result<Option<String>, ConfigError> {
    if OTHER_VARIABLES.iter().any(|v| v.eq_ignore_ascii_case(var)) {
        return Ok(None);
    }
    let rest = &var[ENV_PREFIX.len()..];
    let parts: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
    let bad = |reason: String| Err(ConfigError::BadEnv { var: var.to_string(), reason });
    let section = parts[0].as_str();
    if !SECTIONS.contains(&section) {
        // The usual slip: one underscore between the section and the key.
        let hint = SECTIONS
            .iter()
            .find(|s| section.strip_prefix(*s).is_some_and(|k| k.len() > 1 && k.starts_with('_')))
            .map(|s| {
                format!(
                    " (did you mean {ENV_PREFIX}{}__{}?)",
                    s.to_ascii_uppercase(),
                    &rest[s.len() + 1..]
                )
            })
            .unwrap_or_default();
        return bad(format!(
            "names no study key{hint}: a {ENV_PREFIX}* variable that sets one is {ENV_PREFIX}SECTION__KEY, with two \
             underscores between the parts (e.g. {ENV_PREFIX}BACKEND__THREADS=4) and SECTION one of {}; the \
             other {ENV_PREFIX}* variables descry knows are {}",
            SECTIONS.join(", "),
            OTHER_VARIABLES.join(", ")
        ));
    }
    if parts.iter().any(|p| p.is_empty()) {
        return bad(format!(
            "an empty part between `__` separators; expected {ENV_PREFIX}SECTION__KEY (e.g. {ENV_PREFIX}BACKEND__THREADS=4)"
        ));
    }
    Ok(Some(parts.join(".")))
}

fn describe_figment_errors(errors: figment::Error) -> ConfigError {
    let lines: Vec<String> = errors
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() { "(top level)".to_string() } else { e.path.join(".") };
            let source = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(src) => format!("{} ({src})", m.name),
                    None => m.name.to_string(),
                })
                .unwrap_or_else(|| "configuration".into());
            let hint = match &e.kind {
                figment::error::Kind::UnknownField(_, expected) => {
                    format!("; remove it or use one of: {}", expected.join(", "))
                }
                _ => String::new(),
            };
            format!("config key `{key}` from {source}: {}{hint}", e.kind)
        })
        .collect();
    ConfigError::Invalid(lines.join("\n"))
}

impl Study {
    /// Checks what the schema cannot: ranges and cross-references.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad =
            |key: &str, msg: &str| Err(ConfigError::Invalid(format!("config key `{key}`: {msg}")));
        if !(0.0..=1.0).contains(&self.filters.min_mass) {
            return bad("filters.min_mass", "must be between 0 and 1");
        }
        if !(-1.0..=1.0).contains(&self.filters.min_correlation) {
            return bad("filters.min_correlation", "must be between -1 and 1");
        }
        if self.backend.batch_tokens == 0 {
            return bad("backend.batch_tokens", "must be at least 1");
        }
        let device = self.backend.device.as_str();
        let cuda = device.strip_prefix("cuda:").is_some_and(|n| n.parse::<u32>().is_ok());
        if !(device == "cpu" || cuda) {
            return bad("backend.device", "must be `cpu` or `cuda:N` (e.g. cuda:0)");
        }
        for (i, pair) in self.pairs.iter().enumerate() {
            for (role, model) in [("base", &pair.base), ("aligned", &pair.aligned)] {
                if !["native", "plain", "chat"].contains(&model.format.as_str()) {
                    return bad(
                        &format!("pairs[{i}].{role}.format"),
                        "must be `native`, `plain` or `chat`",
                    );
                }
            }
        }
        for (name, game) in &self.games {
            if let Some(limit) = game.limit {
                if limit == 0 {
                    return bad(
                        &format!("games.{name}.limit"),
                        "must be at least 1 (or left out for all)",
                    );
                }
            }
            if !game.params.is_object() {
                return bad(&format!("games.{name}.params"), "must be a table");
            }
        }
        Ok(())
    }

    /// The data root: `data.root`, else `../shared/data` if it exists, else
    /// `$DESCRY_HOME/data`.
    pub fn data_root(&self) -> PathBuf {
        if let Some(root) = &self.data.root {
            return root.relative();
        }
        let shared = PathBuf::from("../shared/data");
        if shared.is_dir() {
            return shared;
        }
        descry_home().join("data")
    }

    /// The data path of a game, resolved against the data root.
    pub fn game_data_path(&self, game: &GameSection) -> PathBuf {
        if game.data.is_absolute() {
            game.data.clone()
        } else {
            self.data_root().join(&game.data)
        }
    }
}

/// `$DESCRY_HOME`, default `$HOME/.cache/descry`: models, engine runtime libraries and
/// fetched data live there, outside any repository.
pub fn descry_home() -> PathBuf {
    if let Some(home) = std::env::var_os("DESCRY_HOME") {
        return PathBuf::from(home);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("descry")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_map_to_keys_or_say_how_to_spell_them() {
        assert_eq!(env_key("DESCRY_BACKEND__THREADS").unwrap().as_deref(), Some("backend.threads"));
        assert_eq!(
            env_key("DESCRY_GAMES__MATRIX__LIMIT").unwrap().as_deref(),
            Some("games.matrix.limit")
        );
        assert_eq!(env_key("DESCRY_HOME").unwrap(), None);
        let err = env_key("DESCRY_FILTERS_MIN_MASS").unwrap_err().to_string();
        assert!(
            err.contains("DESCRY_FILTERS_MIN_MASS")
                && err.contains("did you mean DESCRY_FILTERS__MIN_MASS?"),
            "{err}"
        );
        for var in ["DESCRY_", "DESCRY_BACKEND__", "DESCRY_BACKEND____THREADS", "DESCRY_THREADS"] {
            assert!(env_key(var).is_err(), "{var}");
        }
    }

    #[test]
    fn malformed_keys_are_found() {
        assert_eq!(malformed_key("backend.threads"), None);
        assert_eq!(malformed_key("games.glee-persuasion.limit"), None);
        for key in ["", "backend..threads", ".threads", "backend.", "back end", "pairs[0].name"] {
            assert!(malformed_key(key).is_some(), "{key}");
        }
    }

    fn study_of(text: &str, set: &[&str]) -> (tempfile::TempDir, Result<Study, ConfigError>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("study.toml");
        std::fs::write(&path, text).expect("write");
        let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        let study = ConfigLoader::new(Some(&path), &set).and_then(|l| l.study());
        (dir, study)
    }

    #[test]
    fn backend_tables_layer_and_pass_through_verbatim() {
        let (dir, study) = study_of(
            "[backend]\nthreads = 2\n[backend.fast]\nlevel = \"high\"\nnested = { a = 1 }\n",
            &["backend.fast.level=\"low\"", "backend.other.x=3"],
        );
        let study = study.expect("study");
        assert_eq!(study.backend.threads, 2);
        assert_eq!(
            study.backend.engine_table("fast"),
            serde_json::json!({"level": "low", "nested": {"a": 1}})
        );
        assert_eq!(study.backend.engine_table("other"), serde_json::json!({"x": 3}));
        assert_eq!(study.backend.engine_table("none"), serde_json::json!({}));
        assert_eq!(study.backend.stray_keys().count(), 0);
        // Where each value came from, and what relative paths are relative to.
        let file = dir.path().join("study.toml");
        assert_eq!(
            study.origin.source_of("backend.threads"),
            format!("study file {}", file.display())
        );
        assert!(study
            .origin
            .source_of("backend.fast.level")
            .starts_with("--set backend.fast.level"));
        assert_eq!(study.origin.source_of("backend.batch_tokens"), "the defaults");
        assert_eq!(study.origin.base_dir(), dir.path());
    }

    #[test]
    fn a_scalar_in_backend_that_is_no_shared_key_is_stray() {
        let (_dir, study) = study_of("[backend]\nthread = 2\nprefix_reuse = false\n", &[]);
        let study = study.expect("parses: only the loaded backends can judge the key");
        assert_eq!(study.backend.stray_keys().collect::<Vec<_>>(), vec!["thread"]);
        assert!(!study.backend.prefix_reuse);
        // A shared key of the wrong type is the schema's error, naming key and file.
        let (_dir, study) = study_of("[backend]\nthreads = \"two\"\n", &[]);
        let err = study.expect_err("wrong type").to_string();
        assert!(
            err.contains("config key `backend.threads` from") && err.contains("study.toml"),
            "{err}"
        );
    }
}
