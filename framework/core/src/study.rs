//! A study, prepared: its models opened, its pairs checked, its games resolved against the
//! registry, all before any data is read or any model runs. Run, inspect and analysis share
//! these types.

use crate::{
    analysis::AnalysisSettings,
    backend::{check_backend, check_backend_keys, study_backend},
    config::Study,
    data::{resolve_games, GameData, StudyGame},
    error::RunError,
    model::{ModelError, ModelFolder},
    prompt::PromptFormat,
    record::UnitRef,
    registry::Registry,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
        model_label(&self.name, format_tag(self.format))
    }
}

/// A model's label: `name.format` (the unit stores, the pairs and the stored rows all know a
/// model by it).
pub fn model_label(name: &str, format_tag: &str) -> String {
    format!("{name}.{format_tag}")
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
    check_backend_keys(study, registry)?;
    let backend = study_backend(study, registry)?;
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
                .map_err(|source| RunError::Model { key: key.clone(), source: Box::new(source) })?;
            let format = resolve_format(&m.format, role);
            if format == PromptFormat::Chat && !folder.has_chat_template() && m.format == "chat" {
                return Err(RunError::Model {
                    key: format!("pairs[{i}].{role}.format"),
                    source: Box::new(ModelError::Folder {
                        dir: folder.dir.clone(),
                        reason: "has no chat template; use format = \"plain\"".into(),
                    }),
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

/// `native` means plain text for a base model and the chat template for an aligned one.
pub fn resolve_format(format: &str, role: &str) -> PromptFormat {
    match (format, role) {
        ("plain", _) => PromptFormat::Plain,
        ("chat", _) => PromptFormat::Chat,
        (_, "aligned") => PromptFormat::Chat,
        _ => PromptFormat::Plain,
    }
}

impl PreparedStudy<'_> {
    /// The analysis settings of the study: its metrics, filters and seed, and which of its
    /// families are multi-round.
    pub fn analysis_settings(&self, study: &Study) -> AnalysisSettings {
        AnalysisSettings {
            metrics: study.analysis.metrics.clone(),
            primary_metric: study.analysis.primary_metric.clone(),
            bootstrap: study.analysis.bootstrap,
            seed: study.study.seed,
            min_mass: study.filters.min_mass,
            min_correlation: study.filters.min_correlation,
            multi_round_families: self
                .games
                .iter()
                .filter(|g| g.info.multi_round)
                .map(|g| g.info.family.to_string())
                .collect(),
        }
    }

    /// Loads every game's data, telling `loaded` about each game as it is read, and fails
    /// when a game has no decision point ([`check_decisions`]).
    pub fn load_data(
        &self,
        mut loaded: impl FnMut(&StudyGame, &GameData),
    ) -> Result<BTreeMap<String, GameData>, RunError> {
        let mut data = BTreeMap::new();
        for game in &self.games {
            let game_data = game.load()?;
            loaded(game, &game_data);
            data.insert(game.name.clone(), game_data);
        }
        check_decisions(&data)?;
        Ok(data)
    }
}
