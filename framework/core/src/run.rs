//! Scoring a prepared study's work units (model × game × variant): plan each unit, skip
//! what the store already holds, score the rest through the backend in chunks, store every
//! chunk as it comes back.

use crate::{
    backend::load_backend_model,
    config::Study,
    data::{GameData, StudyGame},
    error::RunError,
    plan::{
        group, order_for_reuse, plan_unit, tokens_of, trie_minimum_of, Grouping, PlannedSequence,
        UnitPlan,
    },
    registry::Registry,
    score::{chunks, score_sequences},
    store::{PredictionRow, UnitStore},
    study::{format_tag, PreparedStudy, StudyModel},
};
use descry_abi::backend::ModelBox;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::{collections::BTreeMap, path::PathBuf, time::Instant};

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
    /// The exact lower bound on tokens computed for the scored decisions: the distinct
    /// token prefixes of their sequences ([`trie_minimum_of`]).
    pub trie_minimum_tokens: u64,
    /// Wall seconds.
    pub seconds: f64,
    /// Mean probability mass of the decision options over the unit's decisions.
    #[serde(skip)]
    pub mean_mass: f64,
}

impl UnitSummary {
    /// Decisions scored in this run (not found in the store).
    pub fn scored(&self) -> usize {
        self.decisions - self.resumed
    }
}

impl std::fmt::Display for UnitSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scored = self.scored();
        write!(
            f,
            "unit {} / {} / {}: {} decisions ({} resumed, {} scored at {:.1}/s) in {:.1}s; {} \
             tokens run vs {} naive ({:.1}x fewer) and a trie minimum of {} ({:.2}x of it); mean \
             mass {:.3}",
            self.model,
            self.game,
            self.variant,
            self.decisions,
            self.resumed,
            scored,
            scored as f64 / self.seconds.max(1e-9),
            self.seconds,
            self.computed_tokens,
            self.naive_tokens,
            self.naive_tokens as f64 / (self.computed_tokens.max(1)) as f64,
            self.trie_minimum_tokens,
            self.computed_tokens as f64 / (self.trie_minimum_tokens.max(1)) as f64,
            self.mean_mass
        )
    }
}
/// Runs every unit of a prepared study, resuming from the store.
pub fn run_units(
    study: &Study,
    registry: &Registry,
    prepared: &PreparedStudy,
    data: &BTreeMap<String, GameData>,
    options: &RunOptions,
    mut unit_done: impl FnMut(&UnitSummary),
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
                        .map_err(|source| RunError::Plan {
                            unit: unit.clone(),
                            source: Box::new(source),
                        })?;
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
                let trie_minimum_tokens = trie_minimum_of(&sequences);
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
                let mean_mass = rows.iter().map(|r| r.mass).sum::<f64>() / rows.len().max(1) as f64;
                let summary = UnitSummary {
                    model: model.label(),
                    game: game.name.clone(),
                    variant: variant.clone(),
                    decisions: rows.len(),
                    resumed,
                    naive_tokens,
                    sequence_tokens,
                    computed_tokens,
                    trie_minimum_tokens,
                    seconds,
                    mean_mass,
                };
                unit_done(&summary);
                summaries.push(summary);
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
