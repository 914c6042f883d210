//! `descry inspect`: what a study's games hold before any model runs.

use crate::{
    config::Study,
    data::{resolve_games, GameError, StudyGame},
    model::ModelFolder,
    prompt::PromptFormat,
    registry::Registry,
};
use abi_stable::std_types::RStr;
use descry_abi::types::DecisionPoint;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Metadata fields with at most this many distinct values are broken down in the summary.
const MAX_BREAKDOWN_VALUES: usize = 16;

/// The inspection of a study: one JSON object per game, and whether any game failed.
pub struct Inspection {
    /// `{"games": [...], "models": [...]}`.
    pub report: Value,
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
            Ok(v) => out.push(v),
            Err(e) => {
                errors.push(e.to_string());
                out.push(json!({"name": game.name, "plugin": game.info.plugin.name.as_str(), "error": e.to_string()}));
            }
        }
    }
    // A model that cannot render a prompt fails the inspection too (its text in the report
    // says why); each distinct failure once, not once per game and variant.
    for (model, error, game, variant) in render_errors {
        errors.push(format!("model `{model}` cannot render the sample of game `{game}`, variant `{variant}`: {error}"));
    }
    let model_list: Vec<Value> = models
        .iter()
        .map(|(name, f, format)| json!({"name": name, "path": f.dir, "format": format, "architecture": f.manifest.architecture}))
        .collect();
    Ok(Inspection { report: json!({"games": out, "models": model_list}), errors })
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
    fn json(&self) -> Value {
        let mut v = json!({"decision_points": self.points});
        if !self.options.is_empty() {
            v["outcomes"] = json!(self.options);
        }
        if self.rate_weight > 0.0 {
            v["target_rate"] = json!({"weighted_mean": self.rate_sum / self.rate_weight, "total_weight": self.rate_weight});
        }
        v
    }
}

/// A model that failed to render a sample: model, error, game, variant.
type RenderError = (String, String, String, String);

fn inspect_game(
    game: &StudyGame,
    models: &[(String, ModelFolder, PromptFormat)],
    render_errors: &mut Vec<RenderError>,
) -> Result<Value, GameError> {
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
    let breakdown: Map<String, Value> = by_field
        .into_iter()
        .filter(|(_, values)| values.len() <= MAX_BREAKDOWN_VALUES)
        .map(|(k, values)| {
            (k, Value::Object(values.into_iter().map(|(v, t)| (v, t.json())).collect()))
        })
        .collect();
    let mut skipped_reasons: BTreeMap<String, usize> = BTreeMap::new();
    for s in &data.skipped {
        *skipped_reasons.entry(s.reason.to_string()).or_default() += 1;
    }
    // A sample late enough in its episode to show some history, but not the longest.
    let sample = data.episodes.iter().find(|e| !e.decisions.is_empty()).map(|e| {
        let i = (e.decisions.len() - 1).min(1);
        e.decisions[i].clone()
    });
    let mut variants = Vec::new();
    for name in &game.variants {
        let variant = game.info.variants.iter().find(|v| v.name.as_str() == name);
        let mut v = json!({
            "name": name,
            "transcript": variant.map(|v| v.transcript),
            "description": variant.map(|v| v.description.to_string()),
        });
        if let Some(point) = &sample {
            match game.plugin.game.render(point, RStr::from_str(name)).into_result() {
                Ok(prompt) => {
                    let messages: Vec<Value> = prompt
                        .messages
                        .iter()
                        .map(|m| json!({"role": m.role.as_str(), "content": m.content.as_str()}))
                        .collect();
                    let mut texts = Map::new();
                    for (model, folder, format) in models {
                        let text = folder.render(&prompt, *format).unwrap_or_else(|e| {
                            let e = e.to_string();
                            if !render_errors
                                .iter()
                                .any(|(m, known, _, _)| m == model && *known == e)
                            {
                                render_errors.push((
                                    model.clone(),
                                    e.clone(),
                                    game.name.clone(),
                                    name.clone(),
                                ));
                            }
                            format!("(error: {e})")
                        });
                        texts.insert(model.clone(), Value::String(text));
                    }
                    v["sample"] = json!({
                        "decision_point": point.id.as_str(),
                        "round": point.round,
                        "messages": messages,
                        "answer_prefix": prompt.answer_prefix.as_str(),
                        "texts": texts,
                    });
                }
                Err(e) => {
                    return Err(GameError::Load {
                        game: game.name.clone(),
                        path: game.data_path.clone(),
                        reason: format!("rendering variant `{name}`: {e}"),
                    })
                }
            }
        }
        variants.push(v);
    }
    let mut out = json!({
        "name": game.name,
        "plugin": game.info.plugin.name.as_str(),
        "family": game.info.family.as_str(),
        "data": game.data_path,
        "episodes": data.episodes.len(),
        "episodes_before_limit": data.episodes_total,
        "decision_points": total.points,
        "options": game.info.options.iter().map(|o| json!({"id": o.id.as_str(), "surface_forms": o.surface_forms.iter().map(|s| s.as_str()).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        "target_option": game.info.target_option.as_str(),
        "skipped": {"count": data.skipped.len(), "reasons": skipped_reasons},
        "flags": flags,
        "rounds": rounds.into_iter().map(|(r, n)| (r.to_string(), json!(n))).collect::<Map<_, _>>(),
        "breakdown": breakdown,
        "variants": variants,
    });
    let t = total.json();
    for key in ["outcomes", "target_rate"] {
        if let Some(v) = t.get(key) {
            out[key] = v.clone();
        }
    }
    Ok(out)
}
