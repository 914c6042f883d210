//! Running a study: check everything, then score every work unit (model × game × variant)
//! that is not already in the store.

use crate::{
    config::Study,
    data::{resolve_games, GameData, GameError, StudyGame},
    inspect::resolve_format,
    model::{ModelError, ModelFolder},
    plan::{
        group, order_for_reuse, plan_unit, tokens_of, Grouping, PlanError, PlannedSequence,
        UnitPlan,
    },
    prompt::PromptFormat,
    record::UnitRef,
    registry::{LoadedBackend, Registry},
    score::{chunks, score_sequences},
    store::{PredictionRow, StoreError, UnitStore},
};
use descry_abi::{
    backend::ModelBox,
    types::{BackendSettings, ModelLoadRequest, SettingsProblem, SettingsScope},
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

/// Why a run stopped. Configuration problems are found before any scoring starts.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A game problem (plugin, data path, variant, loader).
    #[error(transparent)]
    Game(#[from] GameError),
    /// A model folder problem, with the config key.
    // The source is printed by the error chain (`{:#}`), not repeated here.
    #[error("config key `{key}`")]
    Model {
        /// The config key.
        key: String,
        /// The problem.
        #[source]
        source: ModelError,
    },
    /// The backend plugin is not loaded.
    #[error("config key `backend.plugin`: no backend plugin named `{0}` is loaded; see `descry plugins`")]
    NoBackend(String),
    /// The backend failed to load a model.
    #[error("backend `{backend}` could not load model {model}: {reason}")]
    BackendLoad {
        /// Backend name.
        backend: String,
        /// Model name.
        model: String,
        /// The backend's error.
        reason: String,
    },
    /// The backend failed while scoring; what was scored before is stored.
    #[error("scoring {unit} failed (results so far are stored; run again to resume): {reason}")]
    Score {
        /// The unit.
        unit: String,
        /// The backend's error.
        reason: String,
    },
    /// Planning failed.
    #[error("planning {unit}")]
    Plan {
        /// The unit.
        unit: String,
        /// The problem.
        #[source]
        source: PlanError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The study has nothing to run.
    #[error("{0}")]
    Empty(String),
    /// The study's models contradict each other.
    #[error("{0}")]
    Config(String),
}

/// A model of the study, opened.
pub struct StudyModel {
    /// Name in reports.
    pub name: String,
    /// The folder.
    pub folder: ModelFolder,
    /// How it is prompted.
    pub format: PromptFormat,
    /// `base` or `aligned`.
    pub role: String,
}

impl StudyModel {
    /// The label units are stored under: name and format (a model may run in both).
    pub fn label(&self) -> String {
        format!("{}.{}", self.name, format_tag(self.format))
    }
}

/// `plain` or `chat`.
pub fn format_tag(format: PromptFormat) -> &'static str {
    match format {
        PromptFormat::Plain => "plain",
        PromptFormat::Chat => "chat",
    }
}

/// A pair of the study and whether it is valid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairStatus {
    /// Pair name.
    pub name: String,
    /// Label of the base model's units.
    pub base: String,
    /// Label of the aligned model's units.
    pub aligned: String,
    /// Why the pair is excluded, if it is.
    pub excluded: Option<String>,
    /// Size in billions, if given.
    pub size_b: Option<f64>,
}

/// Everything checked and opened before scoring.
pub struct PreparedStudy<'r> {
    /// Models (deduplicated by label), in study order.
    pub models: Vec<StudyModel>,
    /// Pairs with validity.
    pub pairs: Vec<PairStatus>,
    /// Games with their plugins.
    pub games: Vec<StudyGame<'r>>,
}

/// Checks a study against the registry and the file system without reading data or
/// running a model: every problem here names its config key.
pub fn prepare<'r>(study: &Study, registry: &'r Registry) -> Result<PreparedStudy<'r>, RunError> {
    if study.pairs.is_empty() {
        return Err(RunError::Empty(
            "config key `pairs`: the study lists no model pairs; add a [[pairs]] table".into(),
        ));
    }
    if study.games.is_empty() {
        return Err(RunError::Empty(
            "config key `games`: the study lists no games; add a [games.NAME] table".into(),
        ));
    }
    let Some(backend) = registry.backend(&study.backend.plugin) else {
        return Err(RunError::NoBackend(study.backend.plugin.clone()));
    };
    check_backend(study, backend)?;
    let artifacts = backend.info.artifacts.to_string();
    let games = resolve_games(study, registry)?;
    let mut models: Vec<StudyModel> = Vec::new();
    let mut pairs = Vec::new();
    for (i, pair) in study.pairs.iter().enumerate() {
        let mut labels = Vec::new();
        for (role, m) in [("base", &pair.base), ("aligned", &pair.aligned)] {
            let key = format!("pairs[{i}].{role}.path");
            let folder = ModelFolder::open(&m.folder())
                .and_then(|f| f.check_artifacts(&artifacts).map(|()| f))
                .map_err(|source| RunError::Model { key: key.clone(), source })?;
            let format = resolve_format(&m.format, role);
            if format == PromptFormat::Chat && !folder.has_chat_template() && m.format == "chat" {
                return Err(RunError::Model {
                    key: format!("pairs[{i}].{role}.format"),
                    source: ModelError::Folder {
                        dir: folder.dir.clone(),
                        reason: "has no chat template; use format = \"plain\"".into(),
                    },
                });
            }
            let name = m.name.clone().unwrap_or_else(|| folder.manifest.name.clone());
            let model = StudyModel { name, folder, format, role: role.to_string() };
            let label = model.label();
            match models.iter().find(|m| m.label() == label) {
                // The same model in several pairs is scored once.
                Some(known) if known.folder.manifest.weights_sha256 == model.folder.manifest.weights_sha256 => {}
                Some(known) => {
                    return Err(RunError::Config(format!(
                        "config key `pairs[{i}].{role}`: the model name `{}` is already used for {} ({}), a different model ({}); give one of them another `name`",
                        model.name,
                        known.folder.dir.display(),
                        known.role,
                        model.folder.dir.display()
                    )))
                }
                None => models.push(model),
            }
            labels.push(label);
        }
        let find = |label: &str| models.iter().find(|m| m.label() == label);
        let (base, aligned) = (find(&labels[0]), find(&labels[1]));
        let excluded = match (base, aligned) {
            (Some(b), Some(a))
                if b.folder.manifest.weights_sha256 == a.folder.manifest.weights_sha256 =>
            {
                Some("base and aligned are the same weights (same content hash)".to_string())
            }
            (_, Some(a)) if !a.folder.has_chat_template() => {
                Some("the aligned model has no chat template".to_string())
            }
            _ => None,
        };
        pairs.push(PairStatus {
            name: pair.name.clone(),
            base: labels[0].clone(),
            aligned: labels[1].clone(),
            excluded,
            size_b: pair.size_b,
        });
    }
    if pairs.iter().all(|p| p.excluded.is_some()) {
        let reasons: Vec<String> = pairs
            .iter()
            .map(|p| format!("pair `{}`: {}", p.name, p.excluded.as_deref().unwrap_or_default()))
            .collect();
        return Err(RunError::Empty(format!(
            "config key `pairs`: every pair is excluded, so the study has nothing to compare ({})",
            reasons.join("; ")
        )));
    }
    // A model only in excluded pairs is not scored.
    models.retain(|m| {
        pairs
            .iter()
            .any(|p| p.excluded.is_none() && (p.base == m.label() || p.aligned == m.label()))
    });
    // Aligned models without a template fall back to plain only when excluded anyway.
    Ok(PreparedStudy { models, pairs, games })
}

impl PreparedStudy<'_> {
    /// Every work unit the study plans, in run order: model × game × variant, for the
    /// games with data.
    pub fn units(&self, data: &BTreeMap<String, GameData>) -> Vec<UnitRef> {
        let mut units = Vec::new();
        for model in &self.models {
            for game in self.games.iter().filter(|g| data.contains_key(&g.name)) {
                for variant in &game.variants {
                    units.push(UnitRef {
                        model: model.label(),
                        game: game.name.clone(),
                        variant: variant.clone(),
                    });
                }
            }
        }
        units
    }
}

/// Fails when a game has no decision point to score: a study whose numbers would be
/// silently missing a game (or all of them) must not succeed.
pub fn check_decisions(data: &BTreeMap<String, GameData>) -> Result<(), RunError> {
    let empty: Vec<String> = data
        .iter()
        .filter(|(_, d)| d.episodes.iter().all(|e| e.decisions.is_empty()))
        .map(|(name, d)| {
            format!("`games.{name}` ({} episodes, {} skipped)", d.episodes.len(), d.skipped.len())
        })
        .collect();
    if empty.is_empty() {
        Ok(())
    } else {
        Err(RunError::Empty(format!(
            "no decision points to score in {}: check the game's `data`, `params` and `limit` (`descry inspect STUDY` shows what was loaded and skipped)",
            empty.join(", ")
        )))
    }
}

/// How the run is carried out.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run folder.
    pub out: PathBuf,
    /// Sequence grouping (prefix transcripts by default).
    pub grouping: Grouping,
    /// Show progress bars on standard error.
    pub progress: bool,
    /// Tokens per scoring call (store granularity; the backend batches inside it).
    pub chunk_tokens: usize,
    /// The run's id, as in its run record.
    pub run_id: String,
}

/// What one unit did.
#[derive(Debug, Clone, Serialize)]
pub struct UnitSummary {
    /// Model label.
    pub model: String,
    /// Game.
    pub game: String,
    /// Variant.
    pub variant: String,
    /// Decisions in the unit.
    pub decisions: usize,
    /// Decisions found in the store.
    pub resumed: usize,
    /// Tokens the naive method would run for the scored decisions.
    pub naive_tokens: u64,
    /// Tokens in the sequences sent to the backend.
    pub sequence_tokens: u64,
    /// Tokens the backend computed (after its prefix cache).
    pub computed_tokens: u64,
    /// Wall seconds.
    pub seconds: f64,
}

/// The settings a study's models are loaded with: its `[backend]` table and the chosen
/// backend's own table, verbatim.
pub fn backend_settings(study: &Study) -> BackendSettings {
    let options = &study.backend;
    BackendSettings {
        device: options.device.as_str().into(),
        threads: u32::try_from(options.threads).unwrap_or(u32::MAX),
        token_budget: options.batch_tokens as u64,
        prefix_reuse: options.prefix_reuse,
        prefix_cache_tokens: options.prefix_cache_tokens.into(),
        engine_json: options.engine_table().to_string().into(),
        base_dir: study.origin.base_dir().to_string_lossy().as_ref().into(),
    }
}

/// The config key of a backend's settings problem.
pub fn settings_key(plugin: &str, problem: &SettingsProblem) -> String {
    match problem.scope {
        SettingsScope::Engine => format!("backend.{plugin}.{}", problem.key),
        SettingsScope::Shared => match problem.key.as_str() {
            "token_budget" => "backend.batch_tokens".to_string(),
            key => format!("backend.{key}"),
        },
    }
}

/// Asks the study's backend to check its settings, before any data is read: every
/// problem is named by its config key and the layer (file, variable, `--set`) it came from.
fn check_backend(study: &Study, backend: &LoadedBackend) -> Result<(), RunError> {
    let plugin = study.backend.plugin.as_str();
    let problems = backend.backend.check(&backend_settings(study)).into_result().map_err(|e| {
        RunError::Config(format!("backend `{plugin}` could not check its settings: {e}"))
    })?;
    if problems.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = problems
        .iter()
        .map(|p| {
            let key = settings_key(plugin, p);
            format!("config key `{key}` from {}: {}", study.origin.source_of(&key), p.reason)
        })
        .collect();
    Err(RunError::Config(lines.join("\n")))
}

/// Loads a model folder through a backend plugin with the given settings.
pub fn load_model_with(
    registry: &Registry,
    plugin: &str,
    model_dir: &Path,
    settings: &BackendSettings,
) -> Result<ModelBox, RunError> {
    let backend =
        registry.backend(plugin).ok_or_else(|| RunError::NoBackend(plugin.to_string()))?;
    let request = ModelLoadRequest {
        model_dir: model_dir.to_string_lossy().as_ref().into(),
        settings: settings.clone(),
    };
    backend.backend.load(&request).into_result().map_err(|e| RunError::BackendLoad {
        backend: plugin.to_string(),
        model: model_dir.display().to_string(),
        reason: e.to_string(),
    })
}

/// Loads a model of the study through the study's backend.
pub fn load_backend_model(
    study: &Study,
    registry: &Registry,
    model: &StudyModel,
) -> Result<ModelBox, RunError> {
    load_model_with(registry, &study.backend.plugin, &model.folder.dir, &backend_settings(study))
        .map_err(|e| match e {
            RunError::BackendLoad { backend, reason, .. } => {
                RunError::BackendLoad { backend, model: model.name.clone(), reason }
            }
            other => other,
        })
}

/// Runs every unit of a prepared study, resuming from the store.
pub fn run_units(
    study: &Study,
    registry: &Registry,
    prepared: &PreparedStudy,
    data: &BTreeMap<String, GameData>,
    options: &RunOptions,
) -> Result<Vec<UnitSummary>, RunError> {
    let mut summaries = Vec::new();
    for model in &prepared.models {
        let mut backend_model: Option<ModelBox> = None;
        for game in &prepared.games {
            let Some(game_data) = data.get(&game.name) else { continue };
            for variant in &game.variants {
                let unit = format!("{} / {} / {}", model.label(), game.name, variant);
                let store = UnitStore::new(&options.out, &model.label(), &game.name, variant);
                let started = Instant::now();
                let plan =
                    plan_unit(&model.folder, model.format, game, variant, &game_data.episodes)
                        .map_err(|source| RunError::Plan { unit: unit.clone(), source })?;
                // The unit is done exactly when every key this study plans is stored; what the
                // store holds beyond them (an earlier study's) is kept and not reported.
                let planned: Vec<String> = plan.decisions.iter().map(|d| d.key.clone()).collect();
                store.write_plan(&options.run_id, &planned)?;
                let stored: std::collections::HashSet<String> =
                    store.rows()?.into_iter().map(|r| r.key).collect();
                let pending: Vec<usize> = (0..plan.decisions.len())
                    .filter(|&i| !stored.contains(&plan.decisions[i].key))
                    .collect();
                let resumed = plan.decisions.len() - pending.len();
                let mut sequences = group(&plan, &pending, options.grouping);
                // Sequences sharing a beginning land in the same request, where the backend
                // computes that beginning once (rows are stored in data order regardless).
                order_for_reuse(&mut sequences);
                let naive_tokens: u64 =
                    pending.iter().map(|&i| plan.decisions[i].tokens.len() as u64).sum();
                let sequence_tokens = tokens_of(&sequences);
                let bar = progress_bar(
                    options.progress,
                    &unit,
                    plan.decisions.len() as u64,
                    resumed as u64,
                );
                let mut computed_tokens = 0;
                if !sequences.is_empty() {
                    if backend_model.is_none() {
                        backend_model = Some(load_backend_model(study, registry, model)?);
                    }
                    let Some(bm) = backend_model.as_ref() else { unreachable!("loaded above") };
                    for chunk in chunks(&sequences, options.chunk_tokens) {
                        let (rows, computed) = score_chunk(bm, model, game, variant, &plan, chunk)
                            .map_err(|reason| RunError::Score { unit: unit.clone(), reason })?;
                        computed_tokens += computed;
                        store.append(&rows)?;
                        bar.inc(rows.len() as u64);
                    }
                }
                let rows = store.complete(&unit, &planned)?;
                bar.finish_and_clear();
                let seconds = started.elapsed().as_secs_f64();
                let scored = pending.len();
                let mean_mass = rows.iter().map(|r| r.mass).sum::<f64>() / rows.len().max(1) as f64;
                eprintln!(
                    "unit {unit}: {} decisions ({} resumed, {} scored at {:.1}/s) in {:.1}s; {} tokens run vs {} naive ({:.1}x fewer); mean mass {:.3}",
                    rows.len(),
                    resumed,
                    scored,
                    scored as f64 / seconds.max(1e-9),
                    seconds,
                    computed_tokens,
                    naive_tokens,
                    naive_tokens as f64 / (computed_tokens.max(1)) as f64,
                    mean_mass
                );
                summaries.push(UnitSummary {
                    model: model.label(),
                    game: game.name.clone(),
                    variant: variant.clone(),
                    decisions: rows.len(),
                    resumed,
                    naive_tokens,
                    sequence_tokens,
                    computed_tokens,
                    seconds,
                });
            }
        }
    }
    Ok(summaries)
}

fn progress_bar(enabled: bool, unit: &str, total: u64, done: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(total),
        if enabled { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} decisions, {per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(unit.to_string());
    bar.set_position(done);
    bar
}

/// Scores one chunk and turns the predictions into stored rows.
fn score_chunk(
    backend: &ModelBox,
    model: &StudyModel,
    game: &StudyGame,
    variant: &str,
    plan: &UnitPlan,
    chunk: &[PlannedSequence],
) -> Result<(Vec<PredictionRow>, u64), String> {
    let target = game.info.target_option.as_str();
    let (predictions, stats) = score_sequences(backend, plan, target, chunk)?;
    let mut rows = Vec::with_capacity(predictions.len());
    for scored in predictions {
        let d = &plan.decisions[scored.index];
        let p = &d.point;
        let option_probs: BTreeMap<&str, f64> = plan
            .options
            .iter()
            .map(|o| o.option.as_str())
            .zip(scored.option_probs.iter().copied())
            .collect();
        let option_probs = serde_json::to_string(&option_probs).map_err(|e| e.to_string())?;
        // A game may split its data into analysis families (the matrix plugin's one-shot
        // sets); the point's metadata says so, else the game's family holds.
        let family = serde_json::from_str::<serde_json::Value>(p.metadata_json.as_str())
            .ok()
            .and_then(|m| m.get("family").and_then(|f| f.as_str()).map(str::to_string))
            .unwrap_or_else(|| game.info.family.to_string());
        rows.push(PredictionRow {
            key: d.key.clone(),
            index: d.index,
            model: model.name.clone(),
            role: model.role.clone(),
            format: format_tag(model.format).into(),
            game: game.name.clone(),
            family,
            variant: variant.to_string(),
            decision: p.id.to_string(),
            episode: p.episode.to_string(),
            round: p.round,
            outcome_option: p.outcome.option.as_ref().map(|o| o.to_string()).unwrap_or_default(),
            outcome: p.outcome.rate,
            weight: p.outcome.weight,
            prediction: scored.prediction,
            mass: scored.mass,
            option_probs,
            prompt_tokens: d.tokens.len(),
            flags: p.flags.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(";"),
            metadata: p.metadata_json.to_string(),
        });
    }
    Ok((rows, stats.tokens_computed))
}
