//! The data sets and one phase: plan a data set with core's pipeline, load the model
//! through the backend, score every decision, and measure (see the crate docs for what
//! each phase does).

use crate::machine::{cpu_seconds, load_average, read_status_mb, reset_peak_rss};
use anyhow::{bail, Context, Result};
use descry_abi::types::{BackendSettings, ScoreStats};
use descry_core::{
    backend::{backend_settings, load_model_with},
    config::{BackendOptions, GameSection, Study},
    data::{resolve_games, StudyGame},
    model::ModelFolder,
    plan::{
        group, order_for_reuse, plan_unit, tokens_of, trie_minimum_of, Grouping, PlannedSequence,
        UnitPlan,
    },
    prompt::PromptFormat,
    registry::Registry,
    score::{chunks, score_sequences, DecisionPrediction},
};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

/// A data set the benchmark knows: which game plugin loads it, from where, in which variant.
#[derive(Debug, Clone, Copy)]
pub struct DataSetSpec {
    /// Name in the output (`matrix-native`, `glee-persuasion`).
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// The game plugin.
    pub plugin: &'static str,
    /// Data folder, relative to the data root.
    pub data: &'static str,
    /// Loader parameters (a JSON object).
    pub params: &'static str,
    /// Prompt variant.
    pub variant: &'static str,
}

/// The data sets of the benchmark, in output order. The first is the one the targets are
/// measured on.
pub const DATA_SETS: &[DataSetSpec] = &[
    DataSetSpec {
        name: "matrix-native",
        description: "Akata et al. repeated 2x2 matrix games (PD, BoS; 10 rounds), native variant \
                      (the paper's main comparison: the rounds so far in one user message)",
        plugin: "matrix",
        data: "akata",
        params: r#"{"set": "repeated"}"#,
        variant: "native",
    },
    DataSetSpec {
        name: "matrix-transcript",
        description:
            "Akata et al. repeated 2x2 matrix games (PD, BoS; 10 rounds), transcript variant",
        plugin: "matrix",
        data: "akata",
        params: r#"{"set": "repeated"}"#,
        variant: "transcript",
    },
    DataSetSpec {
        name: "glee-bargaining",
        description: "GLEE bargaining games (the human's accept/reject decisions), native variant",
        plugin: "bargaining",
        data: "glee",
        params: "{}",
        variant: "native",
    },
    DataSetSpec {
        name: "glee-persuasion",
        description: "GLEE persuasion games (the buyer's 20 decisions), native variant",
        plugin: "persuasion",
        data: "glee",
        params: "{}",
        variant: "native",
    },
    DataSetSpec {
        name: "glee-persuasion-transcript",
        description: "GLEE persuasion games (the buyer's 20 decisions), transcript variant",
        plugin: "persuasion",
        data: "glee",
        params: "{}",
        variant: "transcript",
    },
    DataSetSpec {
        name: "glee-negotiation",
        description: "GLEE negotiation games (the human's responses to offers), native variant",
        plugin: "negotiation",
        data: "glee",
        params: "{}",
        variant: "native",
    },
];

/// The data set spec of a name.
pub fn data_set(name: &str) -> Result<&'static DataSetSpec> {
    match DATA_SETS.iter().find(|d| d.name == name) {
        Some(spec) => Ok(spec),
        None => bail!(
            "unknown data set `{name}` (known: {})",
            DATA_SETS.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Whether `path` looks like a data root (holds the benchmark's data folders).
pub fn is_data_root(path: &Path) -> bool {
    DATA_SETS.iter().any(|d| path.join(d.data).is_dir())
}

/// Which way a phase scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// One sequence per decision, no prefix reuse: the published method.
    Naive,
    /// Episode transcripts plus shared-prefix reuse: descry's plan.
    Plan,
}

impl Phase {
    /// `naive` or `plan`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Naive => "naive",
            Phase::Plan => "plan",
        }
    }

    /// The phase of a name.
    pub fn parse(name: &str) -> Option<Phase> {
        match name {
            "naive" => Some(Phase::Naive),
            "plan" => Some(Phase::Plan),
            _ => None,
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one phase runs on and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseSettings {
    /// The model folder.
    pub model_dir: PathBuf,
    /// The folder holding `akata/`, `glee/`.
    pub data_root: PathBuf,
    /// Data set name (see [`DATA_SETS`]).
    pub data_set: String,
    /// Naive or plan.
    pub phase: Phase,
    /// Keep the first N episodes (none: all).
    pub limit: Option<usize>,
    /// Backend plugin name.
    pub backend: String,
    /// Compute threads (0: the engine's default, one per core).
    pub threads: usize,
    /// Most (padded) tokens in one forward pass.
    pub batch_tokens: usize,
    /// Tokens per scoring request (the backend shares prefixes within a request).
    pub request_tokens: usize,
    /// The backend's own table (a study's `[backend.<plugin>]`), passed through verbatim.
    pub engine: serde_json::Map<String, serde_json::Value>,
}

/// What one phase measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseResult {
    /// Naive or plan.
    pub phase: Phase,
    /// Data set name.
    pub data_set: String,
    /// Model name.
    pub model: String,
    /// Episodes scored.
    pub episodes: usize,
    /// Episodes in the data set before the limit.
    pub episodes_total: usize,
    /// Decisions scored (one query each).
    pub decisions: usize,
    /// Σ prompt tokens over the decisions (what the naive method computes).
    pub prompt_tokens: u64,
    /// Sequences sent to the backend.
    pub sequences: usize,
    /// Tokens in those sequences.
    pub sequence_tokens: u64,
    /// The exact lower bound on tokens computed: the distinct token prefixes of those
    /// sequences (the nodes of their token trie).
    pub trie_minimum_tokens: u64,
    /// Σ n(n+1)/2 over the sequences sent (context sum before any prefix reuse).
    pub sequence_context_sum: f64,
    /// Tokens the backend computed (padding excluded).
    pub tokens_computed: u64,
    /// Tokens the backend took from a shared prefix's key/values.
    pub tokens_reused: u64,
    /// Padding tokens the backend ran.
    pub tokens_padding: u64,
    /// Seconds to load the data, plan (render + tokenize) and load the model.
    pub setup_s: f64,
    /// Seconds of scoring (every forward pass and the host's probability arithmetic).
    pub wall_s: f64,
    /// CPU seconds (user + system, every thread) the process spent while scoring.
    pub cpu_s: Option<f64>,
    /// Threads the engine ran with (`threads`, or the cores when 0).
    pub threads: usize,
    /// `/proc/loadavg` when scoring started and ended (other work on the machine).
    pub load_average: (Option<String>, Option<String>),
    /// Peak resident memory of the phase's process, MB (`VmHWM`; none off Linux).
    pub peak_rss_mb: Option<f64>,
    /// Resident memory once the model was loaded, before scoring, MB.
    pub rss_after_load_mb: Option<f64>,
    /// Peak resident memory during scoring alone, MB (`VmHWM` reset after loading through
    /// `/proc/self/clear_refs`; none where that is not possible).
    pub scoring_peak_rss_mb: Option<f64>,
    /// Every decision's prediction, in data order.
    pub predictions: Vec<DecisionPrediction>,
}

impl PhaseResult {
    /// Decisions scored per wall second.
    pub fn decisions_per_s(&self) -> f64 {
        self.decisions as f64 / self.wall_s.max(1e-9)
    }

    /// Σ over computed tokens of their attention context (see the crate docs).
    pub fn context_sum(&self) -> f64 {
        if self.sequence_tokens == 0 {
            return 0.0;
        }
        self.sequence_context_sum * (self.tokens_computed as f64 / self.sequence_tokens as f64)
    }
}

/// A data set's unit, planned: the game, the model and every decision's tokens.
pub struct PlannedUnit<'r> {
    /// The game.
    pub game: StudyGame<'r>,
    /// The model folder.
    pub model: ModelFolder,
    /// Episodes kept.
    pub episodes: usize,
    /// Episodes before the limit.
    pub episodes_total: usize,
    /// The plan.
    pub plan: UnitPlan,
}

/// The study the benchmark amounts to: one game, one variant, the backend options.
pub fn bench_study(settings: &PhaseSettings, spec: &DataSetSpec) -> Study {
    let mut study = Study::default();
    study.data.root = Some(settings.data_root.clone().into());
    let mut options = BackendOptions {
        plugin: settings.backend.clone(),
        threads: settings.threads,
        batch_tokens: settings.batch_tokens,
        ..BackendOptions::default()
    };
    // As a study without a `[backend.<plugin>]` table when no engine key was given.
    if !settings.engine.is_empty() {
        options
            .engines
            .insert(settings.backend.clone(), serde_json::Value::Object(settings.engine.clone()));
    }
    study.backend = options;
    let params = serde_json::from_str(spec.params).unwrap_or_else(|_| serde_json::json!({}));
    study.games.insert(
        spec.name.to_string(),
        GameSection {
            plugin: Some(spec.plugin.to_string()),
            data: PathBuf::from(spec.data),
            params,
            variants: vec![spec.variant.to_string()],
            limit: settings.limit,
        },
    );
    study
}

/// The backend settings of a phase: the study's, with the backend's shared-prefix reuse
/// off for the naive phase (every prompt token of every decision computed).
pub fn phase_backend_settings(settings: &PhaseSettings) -> Result<BackendSettings> {
    let spec = data_set(&settings.data_set)?;
    let mut backend = backend_settings(&bench_study(settings, spec), &settings.backend);
    backend.prefix_reuse = settings.phase == Phase::Plan;
    Ok(backend)
}

/// Loads a data set (first `settings.limit` episodes), opens the model and plans the unit:
/// render, chat template, tokenize. No model is run.
pub fn plan_data_set<'r>(
    registry: &'r Registry,
    settings: &PhaseSettings,
) -> Result<PlannedUnit<'r>> {
    let spec = data_set(&settings.data_set)?;
    let study = bench_study(settings, spec);
    let model = ModelFolder::open(&settings.model_dir)?;
    let format = if model.has_chat_template() { PromptFormat::Chat } else { PromptFormat::Plain };
    let mut games = resolve_games(&study, registry)?;
    if games.is_empty() {
        bail!("planning {}: the study has no game", spec.name);
    }
    let game = games.remove(0);
    let data = game.load()?;
    let plan = plan_unit(&model, format, &game, spec.variant, &data.episodes)
        .with_context(|| format!("planning {}", spec.name))?;
    Ok(PlannedUnit {
        game,
        model,
        episodes: data.episodes.len(),
        episodes_total: data.episodes_total,
        plan,
    })
}

/// Tokens of a whole data set under each grouping, from the planner alone (no model run):
/// `(decisions, Σ prompt tokens, tokens in transcript sequences, trie minimum)`. The
/// backend's prefix reuse across sequences comes on top of the third figure; the trie
/// minimum (distinct token prefixes) is the least any plan can compute.
pub fn planned_tokens(
    registry: &Registry,
    settings: &PhaseSettings,
) -> Result<(usize, u64, u64, u64)> {
    let unit = plan_data_set(registry, settings)?;
    let all: Vec<usize> = (0..unit.plan.decisions.len()).collect();
    let naive: u64 = unit.plan.decisions.iter().map(|d| d.tokens.len() as u64).sum();
    let sequences = group(&unit.plan, &all, Grouping::Prefix);
    let transcript = tokens_of(&sequences);
    let trie = trie_minimum_of(&sequences);
    Ok((unit.plan.decisions.len(), naive, transcript, trie))
}

/// Runs one phase in this process: plan, load the model, warm up, score every decision,
/// and measure. Progress goes to standard error.
pub fn run_phase(registry: &Registry, settings: &PhaseSettings) -> Result<PhaseResult> {
    let started = Instant::now();
    let unit = plan_data_set(registry, settings)?;
    let plan = &unit.plan;
    let all: Vec<usize> = (0..plan.decisions.len()).collect();
    let grouping = match settings.phase {
        Phase::Naive => Grouping::PerDecision,
        Phase::Plan => Grouping::Prefix,
    };
    let mut sequences = group(plan, &all, grouping);
    if settings.phase == Phase::Plan {
        order_for_reuse(&mut sequences);
    }
    let prompt_tokens: u64 = plan.decisions.iter().map(|d| d.tokens.len() as u64).sum();
    let sequence_tokens = tokens_of(&sequences);
    let trie_minimum_tokens = trie_minimum_of(&sequences);
    let sequence_context_sum: f64 =
        sequences.iter().map(|s| s.tokens.len() as f64 * (s.tokens.len() as f64 + 1.0) / 2.0).sum();

    let backend = phase_backend_settings(settings)?;
    let model = load_model_with(registry, &settings.backend, &settings.model_dir, &backend)?;
    let target = unit.game.info.target_option.to_string();
    let score_err = |reason: String| {
        anyhow::anyhow!("scoring {} ({}) failed: {reason}", settings.data_set, settings.phase)
    };
    // One short pass first, outside the measurement: the engine's first run allocates. Its
    // tokens are a prompt's first 16 reversed, so that the past it leaves in the backend's
    // prefix cache serves none of the measured requests.
    if let Some((first, &(decision, _))) =
        sequences.first().and_then(|s| Some((s, s.queries.first()?)))
    {
        let n = first.tokens.len().min(16);
        if n > 0 {
            let warm = PlannedSequence {
                tokens: first.tokens[..n].iter().rev().copied().collect(),
                queries: vec![(decision, (n - 1) as u32)],
            };
            score_sequences(&model, plan, &target, std::slice::from_ref(&warm))
                .map_err(score_err)?;
        }
    }
    let rss_after_load_mb = read_status_mb("VmRSS");
    let load_peak_mb = read_status_mb("VmHWM");
    let reset = reset_peak_rss();
    let setup_s = started.elapsed().as_secs_f64();

    eprintln!(
        "bench {} / {} / {}: {} episodes, {} decisions, {} sequences of {} tokens",
        unit.model.manifest.name,
        settings.data_set,
        settings.phase,
        unit.episodes,
        plan.decisions.len(),
        sequences.len(),
        sequence_tokens
    );
    let load_start = load_average();
    let cpu_start = cpu_seconds();
    let scoring = Instant::now();
    let mut stats = ScoreStats::default();
    let mut scored: BTreeMap<usize, DecisionPrediction> = BTreeMap::new();
    let mut done = 0usize;
    let mut last_report = Instant::now();
    for chunk in chunks(&sequences, settings.request_tokens) {
        let (predictions, s) = score_sequences(&model, plan, &target, chunk).map_err(score_err)?;
        stats.tokens_computed += s.tokens_computed;
        stats.tokens_reused += s.tokens_reused;
        stats.tokens_padding += s.tokens_padding;
        done += predictions.len();
        for p in predictions {
            scored.insert(p.index, p);
        }
        if last_report.elapsed().as_secs_f64() > 10.0 {
            let secs = scoring.elapsed().as_secs_f64();
            eprintln!(
                "  {}/{} decisions, {} tokens computed, {:.0} tokens/s",
                done,
                plan.decisions.len(),
                stats.tokens_computed,
                stats.tokens_computed as f64 / secs.max(1e-9)
            );
            last_report = Instant::now();
        }
    }
    let wall_s = scoring.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds().zip(cpu_start).map(|(end, start)| end - start);
    let load_end = load_average();
    let end_peak_mb = read_status_mb("VmHWM");
    // After the reset, VmHWM is the peak while scoring; the process's peak is the larger of
    // that and the peak before it (loading).
    let (peak_rss_mb, scoring_peak_rss_mb) = match (reset, load_peak_mb, end_peak_mb) {
        (true, Some(l), Some(e)) => (Some(l.max(e)), Some(e)),
        (_, l, e) => (e.or(l), None),
    };
    if settings.phase == Phase::Naive && stats.tokens_computed != prompt_tokens {
        // The backend reused work: the comparison would flatter nobody but be wrong.
        bail!(
            "the naive phase on {} computed {} tokens for {prompt_tokens} prompt tokens (the backend reused {}); the baseline must compute every token: does this backend honour `prefix_reuse = false`?",
            settings.data_set,
            stats.tokens_computed,
            stats.tokens_reused
        );
    }
    let predictions: Vec<DecisionPrediction> = scored.into_values().collect();
    if predictions.len() != plan.decisions.len() {
        return Err(score_err(format!(
            "{} predictions for {} decisions",
            predictions.len(),
            plan.decisions.len()
        )));
    }
    Ok(PhaseResult {
        phase: settings.phase,
        data_set: settings.data_set.clone(),
        model: unit.model.manifest.name.clone(),
        episodes: unit.episodes,
        episodes_total: unit.episodes_total,
        decisions: plan.decisions.len(),
        prompt_tokens,
        sequences: sequences.len(),
        sequence_tokens,
        trie_minimum_tokens,
        sequence_context_sum,
        tokens_computed: stats.tokens_computed,
        tokens_reused: stats.tokens_reused,
        tokens_padding: stats.tokens_padding,
        setup_s,
        wall_s,
        cpu_s,
        threads: if settings.threads > 0 {
            settings.threads
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        },
        load_average: (load_start, load_end),
        peak_rss_mb,
        rss_after_load_mb,
        scoring_peak_rss_mb,
        predictions,
    })
}

/// The largest absolute difference between two phases' predictions, over every decision's
/// prediction, mass and per-option probabilities. The phases must hold the same decisions
/// (a difference in which decisions is a bug, not a numerical difference).
pub fn compare(a: &PhaseResult, b: &PhaseResult) -> Result<f64> {
    if a.predictions.len() != b.predictions.len() {
        bail!(
            "the phases cannot be compared: {} has {} predictions, {} has {}",
            a.phase,
            a.predictions.len(),
            b.phase,
            b.predictions.len()
        );
    }
    compare_subset(a, b)
}

/// Like [`compare`], over the decisions of `a`, each of which `b` must hold (same index and
/// key): a subset's predictions against a run over the whole data set.
pub fn compare_subset(a: &PhaseResult, b: &PhaseResult) -> Result<f64> {
    let diff = |x: f64, y: f64| {
        if x.is_nan() && y.is_nan() {
            0.0
        } else if x.is_nan() || y.is_nan() {
            f64::INFINITY
        } else {
            (x - y).abs()
        }
    };
    let by_index: BTreeMap<usize, &DecisionPrediction> =
        b.predictions.iter().map(|p| (p.index, p)).collect();
    let mut max = 0.0f64;
    for p in &a.predictions {
        let Some(q) = by_index.get(&p.index) else {
            bail!(
                "the phases cannot be compared: decision {} of {} is missing from {}",
                p.index,
                a.phase,
                b.phase
            );
        };
        if p.key != q.key || p.option_probs.len() != q.option_probs.len() {
            bail!("the phases cannot be compared: decision {} differs in key or options", p.index);
        }
        max = max.max(diff(p.prediction, q.prediction)).max(diff(p.mass, q.mass));
        for (x, y) in p.option_probs.iter().zip(&q.option_probs) {
            max = max.max(diff(*x, *y));
        }
    }
    Ok(max)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn result(phase: Phase, preds: &[(f64, f64)]) -> PhaseResult {
        PhaseResult {
            phase,
            data_set: "d".into(),
            model: "m".into(),
            episodes: 1,
            episodes_total: 1,
            decisions: preds.len(),
            prompt_tokens: 100,
            sequences: 1,
            sequence_tokens: 10,
            trie_minimum_tokens: 5,
            sequence_context_sum: 55.0,
            tokens_computed: 5,
            tokens_reused: 5,
            tokens_padding: 0,
            setup_s: 0.0,
            wall_s: 1.0,
            cpu_s: Some(2.0),
            threads: 2,
            load_average: (None, None),
            peak_rss_mb: Some(100.0),
            rss_after_load_mb: Some(90.0),
            scoring_peak_rss_mb: Some(95.0),
            predictions: preds
                .iter()
                .enumerate()
                .map(|(i, &(p, m))| DecisionPrediction {
                    index: i,
                    key: format!("k{i}"),
                    prediction: p,
                    mass: m,
                    option_probs: vec![p, 1.0 - p],
                })
                .collect(),
        }
    }

    #[test]
    fn compare_takes_the_largest_difference_and_rejects_other_decisions() {
        let a = result(Phase::Naive, &[(0.5, 0.9), (0.25, 0.8)]);
        let b = result(Phase::Plan, &[(0.5, 0.9), (0.2500004, 0.80002)]);
        let d = compare(&a, &b).unwrap();
        assert!((d - 2e-5).abs() < 1e-9, "{d}");
        let c = result(Phase::Plan, &[(0.5, 0.9)]);
        assert!(compare(&a, &c).is_err());
        // A subset against a whole-set run: fine one way, not the other.
        assert_eq!(compare_subset(&c, &a).unwrap(), 0.0);
        assert!(compare_subset(&a, &c).is_err());
        let nan = result(Phase::Plan, &[(f64::NAN, 0.9), (0.25, 0.8)]);
        assert_eq!(compare(&a, &nan).unwrap(), f64::INFINITY);
    }

    #[test]
    fn the_context_sum_scales_with_the_computed_share() {
        // 5 of 10 tokens computed: half the from-scratch sum of 55.
        assert_eq!(result(Phase::Plan, &[]).context_sum(), 27.5);
    }

    #[test]
    fn requests_hold_at_most_their_budget_unless_one_sequence_is_larger() {
        let seqs: Vec<PlannedSequence> = [5usize, 5, 5, 20]
            .iter()
            .map(|&n| PlannedSequence { tokens: vec![1; n], queries: vec![(0, 0)] })
            .collect();
        let c = chunks(&seqs, 10);
        assert_eq!(c.iter().map(|c| c.len()).collect::<Vec<_>>(), vec![2, 1, 1]);
    }

    #[test]
    fn the_naive_phase_turns_prefix_reuse_off_and_both_keep_the_options() {
        let mut engine = serde_json::Map::new();
        engine.insert("library".into(), serde_json::json!("/ort.so"));
        let mut settings = PhaseSettings {
            model_dir: PathBuf::from("/m"),
            data_root: PathBuf::from("/d"),
            data_set: "matrix-native".into(),
            phase: Phase::Naive,
            limit: None,
            backend: "onnx".into(),
            threads: 2,
            batch_tokens: 1024,
            request_tokens: 4096,
            engine,
        };
        let naive = phase_backend_settings(&settings).unwrap();
        assert!(!naive.prefix_reuse);
        assert_eq!(naive.token_budget, 1024);
        assert_eq!(naive.threads, 2);
        let table: serde_json::Value = serde_json::from_str(naive.engine_json.as_str()).unwrap();
        assert_eq!(table, serde_json::json!({"library": "/ort.so"}), "the engine table verbatim");
        settings.phase = Phase::Plan;
        let plan = phase_backend_settings(&settings).unwrap();
        assert!(plan.prefix_reuse);
        assert_eq!(BackendSettings { prefix_reuse: false, ..plan }, naive, "only reuse differs");
        settings.data_set = "nope".into();
        let err = phase_backend_settings(&settings).unwrap_err().to_string();
        assert!(err.contains("unknown data set `nope`") && err.contains("matrix-native"), "{err}");
    }
}
