//! `descry inspect`: what a study's games hold before any model runs.

use crate::{
    config::Study,
    data::{resolve_games, GameError, StudyGame},
    model::ModelFolder,
    prompt::PromptFormat,
    registry::Registry,
    study::resolve_format,
};
use abi_stable::std_types::RStr;
use descry_abi::types::DecisionPoint;
use serde::Serialize;
use serde_json::Value;
use std::{collections::BTreeMap, path::PathBuf};

/// Metadata fields with at most this many distinct values are broken down in the summary.
const MAX_BREAKDOWN_VALUES: usize = 16;

/// The inspection of a study: per game what its data holds and how each variant renders,
/// and the models the samples were rendered for.
#[derive(Debug, Clone, Serialize)]
pub struct InspectionReport {
    /// One entry per game of the study.
    pub games: Vec<GameInspection>,
    /// The study's models that could be opened.
    pub models: Vec<ModelInspection>,
}

/// What one game holds, or why it could not be read.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum GameInspection {
    /// The game was read.
    Loaded(Box<GameSummary>),
    /// The game could not be read or rendered.
    Failed {
        /// The study's name of the game.
        name: String,
        /// Its plugin.
        plugin: String,
        /// Why.
        error: String,
    },
}

/// Counts of decision points: how many, their outcomes, the weighted target rate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Counts {
    /// Decision points.
    pub decision_points: usize,
    /// Chosen option → points (individual outcomes).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub outcomes: BTreeMap<String, usize>,
    /// Weighted mean of aggregate outcome rates, when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<TargetRate>,
}

/// The weighted mean rate of aggregate outcomes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetRate {
    /// Σ rate·weight / Σ weight.
    pub weighted_mean: f64,
    /// Σ weight.
    pub total_weight: f64,
}

/// A game's data and variants.
#[derive(Debug, Clone, Serialize)]
pub struct GameSummary {
    /// The study's name of the game.
    pub name: String,
    /// Its plugin.
    pub plugin: String,
    /// Its analysis family.
    pub family: String,
    /// The data path read.
    pub data: PathBuf,
    /// Episodes read (after `limit`).
    pub episodes: usize,
    /// Episodes before `limit`.
    pub episodes_before_limit: usize,
    /// Decision options with their surface forms.
    pub options: Vec<OptionInspection>,
    /// The option whose probability is the prediction.
    pub target_option: String,
    /// Items the loader skipped, with reasons.
    pub skipped: Skipped,
    /// Flag → points carrying it.
    pub flags: BTreeMap<String, usize>,
    /// Round → points.
    pub rounds: BTreeMap<u32, usize>,
    /// Metadata field → value → counts (fields with few distinct values).
    pub breakdown: BTreeMap<String, BTreeMap<String, Counts>>,
    /// One entry per variant the study runs.
    pub variants: Vec<VariantInspection>,
    /// All points.
    #[serde(flatten)]
    pub counts: Counts,
}

/// A decision option.
#[derive(Debug, Clone, Serialize)]
pub struct OptionInspection {
    /// Its id.
    pub id: String,
    /// Its surface forms.
    pub surface_forms: Vec<String>,
}

/// What a loader skipped.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Items skipped.
    pub count: usize,
    /// Reason → items.
    pub reasons: BTreeMap<String, usize>,
}

/// One variant and a sample rendered in it.
#[derive(Debug, Clone, Serialize)]
pub struct VariantInspection {
    /// Its name.
    pub name: String,
    /// Whether renderings form a transcript.
    pub transcript: Option<bool>,
    /// What it is.
    pub description: Option<String>,
    /// A real decision point rendered (absent when the game has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<Sample>,
}

/// A rendered decision point.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// The point's id.
    pub decision_point: String,
    /// Its round.
    pub round: u32,
    /// The messages.
    pub messages: Vec<SampleMessage>,
    /// The answer prefix.
    pub answer_prefix: String,
    /// Model name → the text it reads (or the error that stopped it).
    pub texts: BTreeMap<String, String>,
}

/// One message of a sample.
#[derive(Debug, Clone, Serialize)]
pub struct SampleMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Its text.
    pub content: String,
}

/// A model the samples were rendered for.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInspection {
    /// Its name in the study.
    pub name: String,
    /// Its folder.
    pub path: PathBuf,
    /// How it is prompted.
    pub format: PromptFormat,
    /// Its architecture.
    pub architecture: String,
}

/// The inspection of a study, and whether any game or model failed.
pub struct Inspection {
    /// What was found.
    pub report: InspectionReport,
    /// Errors, one line each (a game that failed to load, a model that failed to open).
    pub errors: Vec<String>,
}

/// Inspects every game of a study. A game that fails is reported and the others go on.
pub fn inspect(study: &Study, registry: &Registry) -> Result<Inspection, GameError> {
    let games = resolve_games(study, registry)?;
    let mut errors = Vec::new();
    let mut models = Vec::new();
    for pair in &study.pairs {
        for (role, m) in [("base", &pair.base), ("aligned", &pair.aligned)] {
            match ModelFolder::open(&m.folder()) {
                Ok(folder) => {
                    let format = resolve_format(&m.format, role);
                    models.push((
                        m.name.clone().unwrap_or_else(|| folder.manifest.name.clone()),
                        folder,
                        format,
                    ));
                }
                Err(e) => errors.push(format!("pairs `{}` {role} model: {e}", pair.name)),
            }
        }
    }
    let mut out = Vec::new();
    let mut render_errors = Vec::new();
    for game in &games {
        match inspect_game(game, &models, &mut render_errors) {
            Ok(summary) => out.push(GameInspection::Loaded(Box::new(summary))),
            Err(e) => {
                errors.push(e.to_string());
                out.push(GameInspection::Failed {
                    name: game.name.clone(),
                    plugin: game.info.plugin.name.to_string(),
                    error: e.to_string(),
                });
            }
        }
    }
    // A model that cannot render a prompt fails the inspection too (its text in the report
    // says why); each distinct failure once, not once per game and variant.
    for (model, error, game, variant) in render_errors {
        errors.push(format!("model `{model}` cannot render the sample of game `{game}`, variant `{variant}`: {error}"));
    }
    let models = models
        .iter()
        .map(|(name, f, format)| ModelInspection {
            name: name.clone(),
            path: f.dir.clone(),
            format: *format,
            architecture: f.manifest.architecture.clone(),
        })
        .collect();
    Ok(Inspection { report: InspectionReport { games: out, models }, errors })
}

fn outcome_key(point: &DecisionPoint) -> Option<String> {
    point.outcome.option.as_ref().map(|o| o.to_string()).into_option()
}

#[derive(Default)]
struct Tally {
    points: usize,
    options: BTreeMap<String, usize>,
    rate_weight: f64,
    rate_sum: f64,
}

impl Tally {
    fn add(&mut self, p: &DecisionPoint) {
        self.points += 1;
        match outcome_key(p) {
            Some(k) => *self.options.entry(k).or_default() += 1,
            None => {
                self.rate_sum += p.outcome.rate * p.outcome.weight;
                self.rate_weight += p.outcome.weight;
            }
        }
    }
    fn counts(&self) -> Counts {
        Counts {
            decision_points: self.points,
            outcomes: self.options.clone(),
            target_rate: (self.rate_weight > 0.0).then(|| TargetRate {
                weighted_mean: self.rate_sum / self.rate_weight,
                total_weight: self.rate_weight,
            }),
        }
    }
}

/// A model that failed to render a sample: model, error, game, variant.
type RenderError = (String, String, String, String);

fn inspect_game(
    game: &StudyGame,
    models: &[(String, ModelFolder, PromptFormat)],
    render_errors: &mut Vec<RenderError>,
) -> Result<GameSummary, GameError> {
    let data = game.load()?;
    let mut total = Tally::default();
    let mut by_field: BTreeMap<String, BTreeMap<String, Tally>> = BTreeMap::new();
    let mut flags: BTreeMap<String, usize> = BTreeMap::new();
    let mut rounds: BTreeMap<u32, usize> = BTreeMap::new();
    for episode in &data.episodes {
        for p in episode.decisions.iter() {
            total.add(p);
            *rounds.entry(p.round).or_default() += 1;
            for f in p.flags.iter() {
                *flags.entry(f.to_string()).or_default() += 1;
            }
            if let Ok(Value::Object(meta)) = serde_json::from_str::<Value>(p.metadata_json.as_str())
            {
                for (k, v) in meta {
                    let value = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    by_field.entry(k).or_default().entry(value).or_default().add(p);
                }
            }
        }
    }
    let breakdown = by_field
        .into_iter()
        .filter(|(_, values)| values.len() <= MAX_BREAKDOWN_VALUES)
        .map(|(k, values)| (k, values.into_iter().map(|(v, t)| (v, t.counts())).collect()))
        .collect();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for s in &data.skipped {
        *reasons.entry(s.reason.to_string()).or_default() += 1;
    }
    // A sample late enough in its episode to show some history, but not the longest.
    let sample = data.episodes.iter().find(|e| !e.decisions.is_empty()).map(|e| {
        let i = (e.decisions.len() - 1).min(1);
        e.decisions[i].clone()
    });
    let mut variants = Vec::new();
    for name in &game.variants {
        let variant = game.info.variants.iter().find(|v| v.name.as_str() == name);
        let mut v = VariantInspection {
            name: name.clone(),
            transcript: variant.map(|v| v.transcript),
            description: variant.map(|v| v.description.to_string()),
            sample: None,
        };
        if let Some(point) = &sample {
            let prompt =
                game.plugin.game.render(point, RStr::from_str(name)).into_result().map_err(
                    |e| GameError::Load {
                        game: game.name.clone(),
                        path: game.data_path.clone(),
                        reason: format!("rendering variant `{name}`: {e}"),
                    },
                )?;
            let mut texts = BTreeMap::new();
            for (model, folder, format) in models {
                let text = folder.render(&prompt, *format).unwrap_or_else(|e| {
                    let e = e.to_string();
                    if !render_errors.iter().any(|(m, known, _, _)| m == model && *known == e) {
                        render_errors.push((
                            model.clone(),
                            e.clone(),
                            game.name.clone(),
                            name.clone(),
                        ));
                    }
                    format!("(error: {e})")
                });
                texts.insert(model.clone(), text);
            }
            v.sample = Some(Sample {
                decision_point: point.id.to_string(),
                round: point.round,
                messages: prompt
                    .messages
                    .iter()
                    .map(|m| SampleMessage {
                        role: m.role.to_string(),
                        content: m.content.to_string(),
                    })
                    .collect(),
                answer_prefix: prompt.answer_prefix.to_string(),
                texts,
            });
        }
        variants.push(v);
    }
    Ok(GameSummary {
        name: game.name.clone(),
        plugin: game.info.plugin.name.to_string(),
        family: game.info.family.to_string(),
        data: game.data_path.clone(),
        episodes: data.episodes.len(),
        episodes_before_limit: data.episodes_total,
        options: game
            .info
            .options
            .iter()
            .map(|o| OptionInspection {
                id: o.id.to_string(),
                surface_forms: o.surface_forms.iter().map(|s| s.to_string()).collect(),
            })
            .collect(),
        target_option: game.info.target_option.to_string(),
        skipped: Skipped { count: data.skipped.len(), reasons },
        flags,
        rounds,
        breakdown,
        variants,
        counts: total.counts(),
    })
}
