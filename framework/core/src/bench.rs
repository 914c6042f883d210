//! `descry bench`: the same science with a fraction of the arithmetic, measured.
//!
//! The benchmark scores the same decisions of a real data set twice with the same model,
//! runtime, threads and batch token budget, on the same machine, in the same run:
//!
//! - **naive** (the published method): one sequence per decision over its whole prompt
//!   ([`Grouping::PerDecision`]), with the backend's shared-prefix reuse switched off
//!   (`min_shared_prefix` set past any prompt length), so every prompt token of every
//!   decision is computed; the phase checks that the backend computed exactly Σ prompt
//!   tokens and fails otherwise;
//! - **plan** (descry's plan, what `descry run` does): episode transcripts
//!   ([`Grouping::Prefix`]: a decision whose prompt tokens are a prefix of its episode's
//!   last prompt is a query inside that one sequence), ordered by their tokens
//!   ([`order_for_reuse`]) and sent in requests of `request_tokens` tokens, inside which the
//!   backend computes a beginning shared by several sequences (rules, system prompt, first
//!   rounds) once and reuses it through past key/values.
//!
//! Each phase runs in its own process (the `descry bench --phase` child), so that its peak
//! resident memory is its own ([`PhaseResult::peak_rss_mb`], from `/proc/self/status`).
//! The parent compares the two phases' predictions decision by decision ([`compare`]) and
//! puts them side by side with the machine's measured fp32 matrix-multiply rate.
//!
//! Arithmetic ([`model_flops`]), per phase, counting only tokens the backend computed
//! (padding excluded):
//!
//! ```text
//! FLOPs = 2 · P_non-embedding · T                       dense layers
//!       + 4 · L · (heads · head_dim) · C                attention: QKᵀ and A·V
//!       + 2 · hidden · vocab · Q                        output projection at query positions
//! ```
//!
//! with `T` the tokens computed, `L` the layers, `Q` the queried positions and `C` the sum,
//! over computed tokens, of the context each attends to. A sequence of `n` tokens computed
//! from scratch contributes `n(n+1)/2`; when the backend reuses a shared prefix the sum is
//! scaled by `tokens computed / tokens sent` (an approximation: reused tokens are the
//! earliest, whose contexts are the shortest, so it slightly undercounts). Attention is
//! counted over the full causal context, as the graph computes it (a sliding window masks
//! scores; it does not skip them).

pub use crate::plan::order_for_reuse;
pub use crate::score::DecisionPrediction;
use crate::{
    config::{BackendOptions, GameSection, Study},
    data::{resolve_games, GameError, StudyGame},
    model::{ModelError, ModelFolder, ModelManifest},
    plan::{group, plan_unit, tokens_of, Grouping, PlanError, PlannedSequence, UnitPlan},
    prompt::PromptFormat,
    registry::Registry,
    run::backend_spec,
    score::{chunks, score_sequences},
};
use abi_stable::std_types::RStr;
use descry_abi::types::ScoreStats;
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

/// A data set the benchmark knows: which game plugin loads it, from where, in which variant.
#[derive(Debug, Clone, Copy)]
pub struct DataSetSpec {
    /// Name in the output (`matrix-repeated`, `glee-persuasion`).
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
        name: "matrix-repeated",
        description:
            "Akata et al. repeated 2x2 matrix games (PD, BoS; 10 rounds), transcript variant",
        plugin: "matrix",
        data: "akata",
        params: r#"{"set": "repeated"}"#,
        variant: "transcript",
    },
    DataSetSpec {
        name: "glee-persuasion",
        description: "GLEE persuasion games (the buyer's 20 decisions), transcript variant",
        plugin: "persuasion",
        data: "glee",
        params: "{}",
        variant: "transcript",
    },
];

/// The data set spec of a name.
pub fn data_set(name: &str) -> Result<&'static DataSetSpec, BenchError> {
    DATA_SETS.iter().find(|d| d.name == name).ok_or_else(|| BenchError::UnknownDataSet {
        name: name.to_string(),
        known: DATA_SETS.iter().map(|d| d.name).collect::<Vec<_>>().join(", "),
    })
}

/// Why a benchmark cannot run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// No data set of that name.
    #[error("unknown data set `{name}` (known: {known})")]
    UnknownDataSet {
        /// The name asked for.
        name: String,
        /// The names the benchmark knows.
        known: String,
    },
    /// A game problem (plugin not loaded, data missing, loader failure).
    #[error(transparent)]
    Game(#[from] GameError),
    /// The model folder cannot be used.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Rendering or tokenizing failed.
    #[error("planning {data_set}")]
    Plan {
        /// Data set.
        data_set: String,
        /// The problem.
        #[source]
        source: PlanError,
    },
    /// The backend plugin is not loaded.
    #[error("no backend plugin named `{0}` is loaded; see `descry plugins`")]
    NoBackend(String),
    /// The backend failed to load the model.
    #[error("backend `{backend}` could not load {model}: {reason}")]
    BackendLoad {
        /// Backend.
        backend: String,
        /// Model folder.
        model: PathBuf,
        /// The backend's error.
        reason: String,
    },
    /// The backend failed while scoring.
    #[error("scoring {data_set} ({phase}) failed: {reason}")]
    Score {
        /// Data set.
        data_set: String,
        /// Phase.
        phase: Phase,
        /// Why.
        reason: String,
    },
    /// The naive baseline did not compute every prompt token: the backend reused work, so
    /// the comparison would flatter nobody but be wrong.
    #[error("the naive phase on {data_set} computed {computed} tokens for {expected} prompt tokens (the backend reused {reused}); the baseline must compute every token: does this backend honour `min_shared_prefix`?")]
    NaiveReused {
        /// Data set.
        data_set: String,
        /// Σ prompt tokens.
        expected: u64,
        /// Tokens the backend computed.
        computed: u64,
        /// Tokens it says it reused.
        reused: u64,
    },
    /// The two phases scored different decisions (a bug, not a numerical difference).
    #[error("the phases cannot be compared: {0}")]
    Mismatch(String),
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
    /// Intra-op threads (0: the runtime's default, one per core).
    pub threads: usize,
    /// Most (padded) tokens in one forward pass.
    pub batch_tokens: usize,
    /// Tokens per scoring request (the backend shares prefixes within a request).
    pub request_tokens: usize,
    /// The ONNX Runtime library (else `ORT_DYLIB_PATH`, else `$DESCRY_HOME/onnxruntime`).
    pub ort_library: Option<PathBuf>,
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
    /// Threads the runtime ran with (`threads`, or the cores when 0).
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

    /// Σ over computed tokens of their attention context (see the module docs).
    pub fn context_sum(&self) -> f64 {
        if self.sequence_tokens == 0 {
            return 0.0;
        }
        self.sequence_context_sum * (self.tokens_computed as f64 / self.sequence_tokens as f64)
    }
}

/// The model arithmetic of a phase (see the module docs for the formula).
pub fn model_flops(manifest: &ModelManifest, tokens: u64, context_sum: f64, queries: u64) -> f64 {
    let attention_width = if manifest.num_attention_heads > 0 && manifest.head_dim > 0 {
        manifest.num_attention_heads * manifest.head_dim
    } else {
        manifest.hidden_size
    };
    2.0 * manifest.non_embedding_params as f64 * tokens as f64
        + 4.0 * manifest.num_layers as f64 * attention_width as f64 * context_sum
        + 2.0 * manifest.hidden_size as f64 * manifest.vocab_size as f64 * queries as f64
}

/// A data set's unit, planned: the game, the model and every decision's tokens.
pub struct PlannedUnit<'r> {
    /// The game.
    pub game: StudyGame<'r>,
    /// The model folder.
    pub model: ModelFolder,
    /// Its native format (chat if it has a chat template, else plain).
    pub format: PromptFormat,
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
    study.backend = BackendOptions {
        plugin: settings.backend.clone(),
        threads: settings.threads,
        batch_tokens: settings.batch_tokens,
        ort_library: settings.ort_library.clone().map(Into::into),
        ..BackendOptions::default()
    };
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

/// Loads a data set (first `settings.limit` episodes), opens the model and plans the unit:
/// render, chat template, tokenize. No model is run.
pub fn plan_data_set<'r>(
    registry: &'r Registry,
    settings: &PhaseSettings,
) -> Result<PlannedUnit<'r>, BenchError> {
    let spec = data_set(&settings.data_set)?;
    let study = bench_study(settings, spec);
    let model = ModelFolder::open(&settings.model_dir)?;
    let format = if model.has_chat_template() { PromptFormat::Chat } else { PromptFormat::Plain };
    let mut games = resolve_games(&study, registry)?;
    let game = games.remove(0);
    let data = game.load()?;
    let plan = plan_unit(&model, format, &game, spec.variant, &data.episodes)
        .map_err(|source| BenchError::Plan { data_set: spec.name.to_string(), source })?;
    Ok(PlannedUnit {
        game,
        model,
        format,
        episodes: data.episodes.len(),
        episodes_total: data.episodes_total,
        plan,
    })
}

/// Tokens of a whole data set under each grouping, from the planner alone (no model run):
/// `(decisions, Σ prompt tokens, tokens in transcript sequences)`. The backend's prefix
/// reuse across sequences comes on top of the second figure.
pub fn planned_tokens(
    registry: &Registry,
    settings: &PhaseSettings,
) -> Result<(usize, u64, u64), BenchError> {
    let unit = plan_data_set(registry, settings)?;
    let all: Vec<usize> = (0..unit.plan.decisions.len()).collect();
    let naive: u64 = unit.plan.decisions.iter().map(|d| d.tokens.len() as u64).sum();
    let transcript = tokens_of(&group(&unit.plan, &all, Grouping::Prefix));
    Ok((unit.plan.decisions.len(), naive, transcript))
}

/// The backend spec of a phase: the study's spec, with the backend's shared-prefix reuse
/// off for the naive phase (`min_shared_prefix` past any sequence length).
pub fn phase_spec(settings: &PhaseSettings) -> String {
    let options = BackendOptions {
        plugin: settings.backend.clone(),
        threads: settings.threads,
        batch_tokens: settings.batch_tokens,
        prefix_reuse: settings.phase == Phase::Plan,
        ort_library: settings.ort_library.clone().map(Into::into),
        ..BackendOptions::default()
    };
    backend_spec(&options, &settings.model_dir)
}

/// Runs one phase in this process: plan, load the model, warm up, score every decision,
/// and measure. Progress goes to standard error.
pub fn run_phase(registry: &Registry, settings: &PhaseSettings) -> Result<PhaseResult, BenchError> {
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
    let sequence_context_sum: f64 =
        sequences.iter().map(|s| s.tokens.len() as f64 * (s.tokens.len() as f64 + 1.0) / 2.0).sum();

    let backend = registry
        .backend(&settings.backend)
        .ok_or_else(|| BenchError::NoBackend(settings.backend.clone()))?;
    let spec = phase_spec(settings);
    let model = backend.backend.load(RStr::from_str(&spec)).into_result().map_err(|e| {
        BenchError::BackendLoad {
            backend: settings.backend.clone(),
            model: settings.model_dir.clone(),
            reason: e.to_string(),
        }
    })?;
    let target = unit.game.info.target_option.to_string();
    let score_err = |reason: String| BenchError::Score {
        data_set: settings.data_set.clone(),
        phase: settings.phase,
        reason,
    };
    // One short pass first, outside the measurement: the runtime's first run allocates.
    if let Some((first, &(decision, _))) =
        sequences.first().and_then(|s| Some((s, s.queries.first()?)))
    {
        let n = first.tokens.len().min(16);
        if n > 0 {
            let warm = PlannedSequence {
                tokens: first.tokens[..n].to_vec(),
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
        return Err(BenchError::NaiveReused {
            data_set: settings.data_set.clone(),
            expected: prompt_tokens,
            computed: stats.tokens_computed,
            reused: stats.tokens_reused,
        });
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
/// prediction, mass and per-option probabilities. The phases must hold the same decisions.
pub fn compare(a: &PhaseResult, b: &PhaseResult) -> Result<f64, BenchError> {
    if a.predictions.len() != b.predictions.len() {
        return Err(BenchError::Mismatch(format!(
            "{} has {} predictions, {} has {}",
            a.phase,
            a.predictions.len(),
            b.phase,
            b.predictions.len()
        )));
    }
    compare_subset(a, b)
}

/// Like [`compare`], over the decisions of `a`, each of which `b` must hold (same index and
/// key): a subset's predictions against a run over the whole data set.
pub fn compare_subset(a: &PhaseResult, b: &PhaseResult) -> Result<f64, BenchError> {
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
            return Err(BenchError::Mismatch(format!(
                "decision {} of {} is missing from {}",
                p.index, a.phase, b.phase
            )));
        };
        if p.key != q.key || p.option_probs.len() != q.option_probs.len() {
            return Err(BenchError::Mismatch(format!(
                "decision {} differs in key or options",
                p.index
            )));
        }
        max = max.max(diff(p.prediction, q.prediction)).max(diff(p.mass, q.mass));
        for (x, y) in p.option_probs.iter().zip(&q.option_probs) {
            max = max.max(diff(*x, *y));
        }
    }
    Ok(max)
}

/// A field of `/proc/self/status` (`VmHWM`, `VmRSS`) in MB; none where it cannot be read.
pub fn read_status_mb(field: &str) -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kb(&text, field).map(|kb| kb as f64 / 1024.0)
}

fn parse_status_kb(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// CPU seconds (user + system, all threads) this process has used; none where
/// `getrusage` fails.
pub fn cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the pointer it is given, which points
    // at one; it is read only when the call reports success.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } == 0;
    if !ok {
        return None;
    }
    // SAFETY: initialised by the successful call above (and zeroed before it).
    let usage = unsafe { usage.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

/// Resets this process's peak resident memory (`VmHWM`) to its current resident memory
/// (Linux: `5` to `/proc/self/clear_refs`). Returns whether it did.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The machine, as far as the benchmark reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineInfo {
    /// CPU model name (`/proc/cpuinfo`).
    pub cpu_model: String,
    /// Logical cores this process may use.
    pub cores: usize,
    /// Whether the CPU has AVX2, AVX-512F, FMA (the matrix kernels' instruction sets).
    pub cpu_flags: Vec<String>,
    /// `/proc/loadavg` when read (other work on the machine shows here).
    pub load_average: Option<String>,
    /// Kernel (`/proc/sys/kernel/osrelease`).
    pub kernel: Option<String>,
}

/// Reads the machine's description.
pub fn machine_info() -> MachineInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let flags = field("flags").unwrap_or_default();
    let cpu_flags = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"]
        .iter()
        .filter(|f| flags.split_whitespace().any(|x| x == **f))
        .map(|f| f.to_string())
        .collect();
    MachineInfo {
        cpu_model: field("model name").unwrap_or_else(|| "unknown".into()),
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_flags,
        load_average: load_average(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_string()),
    }
}

/// `/proc/loadavg`, trimmed.
pub fn load_average() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg").ok().map(|s| s.trim().to_string())
}

/// Where the model runs, as the report shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Name.
    pub name: String,
    /// Graph family.
    pub architecture: String,
    /// Folder.
    pub dir: PathBuf,
    /// Prompt format used (`chat` if it has a chat template, else `plain`).
    pub format: String,
    /// Parameters outside the embeddings.
    pub non_embedding_params: u64,
    /// Layers.
    pub num_layers: usize,
    /// Residual width.
    pub hidden_size: usize,
    /// Query heads × head width.
    pub attention_width: usize,
    /// Vocabulary.
    pub vocab_size: usize,
}

impl ModelInfo {
    /// From an opened folder.
    pub fn of(folder: &ModelFolder) -> ModelInfo {
        let m = &folder.manifest;
        ModelInfo {
            name: m.name.clone(),
            architecture: m.architecture.clone(),
            dir: folder.dir.clone(),
            format: if folder.has_chat_template() { "chat" } else { "plain" }.into(),
            non_embedding_params: m.non_embedding_params,
            num_layers: m.num_layers,
            hidden_size: m.hidden_size,
            attention_width: if m.num_attention_heads > 0 && m.head_dim > 0 {
                m.num_attention_heads * m.head_dim
            } else {
                m.hidden_size
            },
            vocab_size: m.vocab_size,
        }
    }
}

/// One phase in the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseSummary {
    /// Tokens the backend computed (padding excluded).
    pub tokens: u64,
    /// Tokens taken from shared prefixes' key/values.
    pub tokens_reused: u64,
    /// Padding tokens run.
    pub tokens_padding: u64,
    /// Sequences sent.
    pub sequences: usize,
    /// Tokens in the sequences sent.
    pub sequence_tokens: u64,
    /// Scoring wall seconds.
    pub wall_s: f64,
    /// Setup seconds (data, tokenization, model load; not in `wall_s`).
    pub setup_s: f64,
    /// CPU seconds while scoring.
    pub cpu_s: Option<f64>,
    /// `cpu_s / (wall_s × threads)`: well below 1 means the phase waited for cores other
    /// work was using (the runtime's threads spin while they wait for each other, so 1 does
    /// not prove the contrary).
    pub cpu_utilisation: Option<f64>,
    /// `/proc/loadavg` when scoring started and ended.
    pub load_average: (Option<String>, Option<String>),
    /// The fp32 matrix-multiply rate measured just before the phase started (set by the
    /// caller), FLOP/s: the machine's state at the time.
    pub sgemm_flops_per_s_at_start: Option<f64>,
    /// Decisions per scoring second.
    pub decisions_per_s: f64,
    /// Tokens computed per scoring second.
    pub tokens_per_s: f64,
    /// Peak resident memory of the phase's process, MB.
    pub peak_rss_mb: Option<f64>,
    /// Peak resident memory while scoring, MB.
    pub scoring_peak_rss_mb: Option<f64>,
    /// Resident memory after loading the model, MB.
    pub rss_after_load_mb: Option<f64>,
    /// Model arithmetic (see the module docs).
    pub model_flops: f64,
    /// Model arithmetic per scoring second.
    pub model_flops_per_s: f64,
}

impl PhaseSummary {
    /// Summarises a phase.
    pub fn of(result: &PhaseResult, manifest: &ModelManifest) -> PhaseSummary {
        let flops = model_flops(
            manifest,
            result.tokens_computed,
            result.context_sum(),
            result.decisions as u64,
        );
        let wall = result.wall_s.max(1e-9);
        PhaseSummary {
            tokens: result.tokens_computed,
            tokens_reused: result.tokens_reused,
            tokens_padding: result.tokens_padding,
            sequences: result.sequences,
            sequence_tokens: result.sequence_tokens,
            wall_s: result.wall_s,
            setup_s: result.setup_s,
            cpu_s: result.cpu_s,
            cpu_utilisation: result.cpu_s.map(|c| c / (wall * result.threads.max(1) as f64)),
            load_average: result.load_average.clone(),
            sgemm_flops_per_s_at_start: None,
            decisions_per_s: result.decisions_per_s(),
            tokens_per_s: result.tokens_computed as f64 / wall,
            peak_rss_mb: result.peak_rss_mb,
            scoring_peak_rss_mb: result.scoring_peak_rss_mb,
            rss_after_load_mb: result.rss_after_load_mb,
            model_flops: flops,
            model_flops_per_s: flops / wall,
        }
    }
}

/// The tokens a whole data set needs, from the planner alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedTokens {
    /// Decisions in the whole data set.
    pub decisions: usize,
    /// Σ prompt tokens: what the naive method computes.
    pub naive_tokens: u64,
    /// Tokens in the episode-transcript sequences, before the backend's prefix reuse.
    pub transcript_tokens: u64,
    /// `naive_tokens / transcript_tokens`.
    pub ratio: f64,
}

/// One data set in the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataSetReport {
    /// What the data set is.
    pub description: String,
    /// The `--limit` the data set was benched with (episodes; none: all).
    pub limit: Option<usize>,
    /// Episodes benched (after the limit).
    pub episodes: usize,
    /// Episodes in the data set.
    pub episodes_total: usize,
    /// Decisions benched.
    pub decisions: usize,
    /// The naive phase.
    pub naive: PhaseSummary,
    /// descry's plan.
    pub plan: PhaseSummary,
    /// Largest |naive − plan| over predictions, masses and option probabilities.
    pub max_abs_diff: f64,
    /// naive tokens / plan tokens.
    pub token_ratio: f64,
    /// naive wall seconds / plan wall seconds.
    pub wall_ratio: f64,
    /// The plan's model FLOP/s.
    pub model_flops_per_s: f64,
    /// The machine's measured fp32 matrix-multiply rate, same cores and threads.
    pub sgemm_flops_per_s: f64,
    /// `model_flops_per_s / sgemm_flops_per_s`.
    pub sgemm_fraction: f64,
    /// The whole data set's tokens from the planner (none when not computed).
    pub full_data_planned: Option<PlannedTokens>,
    /// The plan run over the whole data set (`--full-plan`; none otherwise).
    pub whole_set: Option<WholeSetPlan>,
}

/// The plan run over a whole data set, against what the naive method would compute for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WholeSetPlan {
    /// Decisions in the data set.
    pub decisions: usize,
    /// Σ prompt tokens of every decision: exactly what the naive method computes (its phase
    /// checks that it computes every prompt token), known without running it.
    pub naive_tokens: u64,
    /// The plan, measured.
    pub plan: PhaseSummary,
    /// `naive_tokens / plan.tokens`.
    pub token_ratio: f64,
    /// `naive_tokens` at the naive phase's tokens per second on the benched subset: an
    /// estimate, not a measurement.
    pub naive_wall_s_estimate: f64,
    /// `naive_wall_s_estimate / plan.wall_s` (an estimate).
    pub wall_ratio_estimate: f64,
    /// The plan's model FLOP/s over the measured fp32 matrix-multiply rate.
    pub sgemm_fraction: f64,
    /// Largest |naive − whole-set plan| over the benched subset's decisions.
    pub max_abs_diff_vs_naive: f64,
}

impl DataSetReport {
    /// Puts two phases of a data set side by side.
    pub fn new(
        spec: &DataSetSpec,
        manifest: &ModelManifest,
        naive: &PhaseResult,
        plan: &PhaseResult,
        sgemm_flops_per_s: f64,
        limit: Option<usize>,
        full_data_planned: Option<PlannedTokens>,
    ) -> Result<DataSetReport, BenchError> {
        let max_abs_diff = compare(naive, plan)?;
        let n = PhaseSummary::of(naive, manifest);
        let p = PhaseSummary::of(plan, manifest);
        Ok(DataSetReport {
            description: spec.description.to_string(),
            limit,
            episodes: plan.episodes,
            episodes_total: plan.episodes_total,
            decisions: plan.decisions,
            max_abs_diff,
            token_ratio: n.tokens as f64 / (p.tokens.max(1)) as f64,
            wall_ratio: n.wall_s / p.wall_s.max(1e-9),
            model_flops_per_s: p.model_flops_per_s,
            sgemm_flops_per_s,
            sgemm_fraction: p.model_flops_per_s / sgemm_flops_per_s.max(1e-9),
            naive: n,
            plan: p,
            full_data_planned,
            whole_set: None,
        })
    }

    /// Adds the plan run over the whole data set, checked against the naive subset.
    pub fn add_whole_set(
        &mut self,
        manifest: &ModelManifest,
        naive: &PhaseResult,
        whole: &PhaseResult,
    ) -> Result<(), BenchError> {
        let max_abs_diff_vs_naive = compare_subset(naive, whole)?;
        let plan = PhaseSummary::of(whole, manifest);
        let naive_wall_s_estimate = whole.prompt_tokens as f64 / self.naive.tokens_per_s.max(1e-9);
        self.whole_set = Some(WholeSetPlan {
            decisions: whole.decisions,
            naive_tokens: whole.prompt_tokens,
            token_ratio: whole.prompt_tokens as f64 / plan.tokens.max(1) as f64,
            naive_wall_s_estimate,
            wall_ratio_estimate: naive_wall_s_estimate / plan.wall_s.max(1e-9),
            sgemm_fraction: plan.model_flops_per_s / self.sgemm_flops_per_s.max(1e-9),
            max_abs_diff_vs_naive,
            plan,
        });
        Ok(())
    }
}

/// The memory check: the plan on N and on 10 N episodes of one data set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryCheck {
    /// Data set.
    pub data_set: String,
    /// Decisions in the small run.
    pub decisions_small: usize,
    /// Decisions in the large run.
    pub decisions_large: usize,
    /// Peak RSS of the small run's process, MB.
    pub peak_rss_mb_small: Option<f64>,
    /// Peak RSS of the large run's process, MB.
    pub peak_rss_mb_large: Option<f64>,
    /// Peak RSS while scoring, small run, MB.
    pub scoring_peak_rss_mb_small: Option<f64>,
    /// Peak RSS while scoring, large run, MB.
    pub scoring_peak_rss_mb_large: Option<f64>,
    /// Scoring peak minus resident memory after loading the model, small run, MB: what
    /// scoring itself added (activations, key/values, the runtime's arena).
    pub scoring_increment_mb_small: Option<f64>,
    /// The same, large run, MB.
    pub scoring_increment_mb_large: Option<f64>,
    /// large / small, over the scoring peaks where known, else the process peaks.
    pub ratio: Option<f64>,
}

impl MemoryCheck {
    /// From the two plan runs.
    pub fn new(small: &PhaseResult, large: &PhaseResult) -> MemoryCheck {
        let ratio = match (small.scoring_peak_rss_mb, large.scoring_peak_rss_mb) {
            (Some(s), Some(l)) if s > 0.0 => Some(l / s),
            _ => match (small.peak_rss_mb, large.peak_rss_mb) {
                (Some(s), Some(l)) if s > 0.0 => Some(l / s),
                _ => None,
            },
        };
        MemoryCheck {
            data_set: small.data_set.clone(),
            decisions_small: small.decisions,
            decisions_large: large.decisions,
            peak_rss_mb_small: small.peak_rss_mb,
            peak_rss_mb_large: large.peak_rss_mb,
            scoring_peak_rss_mb_small: small.scoring_peak_rss_mb,
            scoring_peak_rss_mb_large: large.scoring_peak_rss_mb,
            scoring_increment_mb_small: small
                .scoring_peak_rss_mb
                .zip(small.rss_after_load_mb)
                .map(|(p, l)| p - l),
            scoring_increment_mb_large: large
                .scoring_peak_rss_mb
                .zip(large.rss_after_load_mb)
                .map(|(p, l)| p - l),
            ratio,
        }
    }
}

/// A target of the issue and whether this run met it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// What is measured.
    pub what: String,
    /// The measured value (none when not measured).
    pub value: Option<f64>,
    /// `>=` or `<=`.
    pub op: String,
    /// The threshold.
    pub threshold: f64,
    /// Whether it was met (none when not measured).
    pub met: Option<bool>,
}

impl Target {
    fn at_least(what: &str, value: Option<f64>, threshold: f64) -> Target {
        Target {
            what: what.into(),
            value,
            op: ">=".into(),
            threshold,
            met: value.map(|v| v >= threshold),
        }
    }

    fn at_most(what: &str, value: Option<f64>, threshold: f64) -> Target {
        Target {
            what: what.into(),
            value,
            op: "<=".into(),
            threshold,
            met: value.map(|v| v <= threshold),
        }
    }
}

/// The issue's targets, evaluated on the first data set of [`DATA_SETS`] (repeated matrix
/// games) where it was benched (on the benched subset, and on the whole set where the plan
/// ran over it); predictions on every data set.
pub fn targets(
    data_sets: &BTreeMap<String, DataSetReport>,
    memory: Option<&MemoryCheck>,
) -> Vec<Target> {
    let main = data_sets.get(DATA_SETS[0].name);
    let whole = main.and_then(|d| d.whole_set.as_ref());
    let max_diff = data_sets
        .values()
        .flat_map(|d| {
            std::iter::once(d.max_abs_diff)
                .chain(d.whole_set.as_ref().map(|w| w.max_abs_diff_vs_naive))
        })
        .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))));
    let mut out = vec![
        Target::at_least(
            "token_ratio, matrix-repeated, benched subset: naive / plan tokens",
            main.map(|d| d.token_ratio),
            8.0,
        ),
        Target::at_least(
            "wall_ratio, matrix-repeated, benched subset: naive / plan wall",
            main.map(|d| d.wall_ratio),
            5.0,
        ),
        Target::at_least(
            "sgemm_fraction, matrix-repeated, benched subset: plan FLOP/s / fp32 matmul FLOP/s",
            main.map(|d| d.sgemm_fraction),
            0.5,
        ),
    ];
    if whole.is_some() {
        out.push(Target::at_least(
            "token_ratio, matrix-repeated, whole set: exact naive / measured plan tokens",
            whole.map(|w| w.token_ratio),
            8.0,
        ));
        out.push(Target::at_least(
            "wall_ratio, matrix-repeated, whole set (naive extrapolated from the subset)",
            whole.map(|w| w.wall_ratio_estimate),
            5.0,
        ));
        out.push(Target::at_least(
            "sgemm_fraction, matrix-repeated, whole set: plan FLOP/s / fp32 matmul FLOP/s",
            whole.map(|w| w.sgemm_fraction),
            0.5,
        ));
    }
    out.push(Target::at_most(
        "memory ratio: plan peak RSS at 10x decisions / at 1x",
        memory.and_then(|m| m.ratio),
        1.10,
    ));
    if let (Some(d), Some(w)) = (main, whole) {
        // Stricter: the whole set against the benched subset (far more than 10x).
        let ratio = match (w.plan.peak_rss_mb, d.plan.peak_rss_mb) {
            (Some(l), Some(s)) if s > 0.0 => Some(l / s),
            _ => None,
        };
        out.push(Target::at_most(
            "memory ratio, stricter: plan peak RSS, whole set / benched subset",
            ratio,
            1.10,
        ));
    }
    out.push(Target::at_most(
        "max_abs_diff, every data set: |naive - plan| predictions",
        max_diff,
        1e-4,
    ));
    out
}

/// Phases that ran on fewer cores than they asked for (`cpu_utilisation` below 90%): other
/// work held the cores, so their wall-clock figures (seconds, decisions/s, FLOP/s)
/// understate the machine. Token counts, predictions and memory are unaffected.
pub fn contention_warnings(data_sets: &BTreeMap<String, DataSetReport>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, d) in data_sets {
        let phases = [
            ("naive", Some(&d.naive)),
            ("plan", Some(&d.plan)),
            ("whole-set plan", d.whole_set.as_ref().map(|w| &w.plan)),
        ];
        for (label, phase) in phases {
            if let Some(u) = phase.and_then(|p| p.cpu_utilisation).filter(|&u| u < 0.9) {
                out.push(format!(
                    "{name} / {label} ran at {:.0}% of its threads' CPU time: other work held the cores, its wall-clock figures understate the machine",
                    100.0 * u
                ));
            }
        }
    }
    out
}

/// The side-by-side table of a report, as text.
pub fn format_table(
    model: &ModelInfo,
    data_sets: &BTreeMap<String, DataSetReport>,
    memory: Option<&MemoryCheck>,
    targets: &[Target],
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    for spec in DATA_SETS {
        let Some(d) = data_sets.get(spec.name) else { continue };
        let _ = writeln!(
            s,
            "\n{} / {} ({} of {} episodes, {} decisions)",
            model.name, spec.name, d.episodes, d.episodes_total, d.decisions
        );
        let _ = writeln!(s, "  {:<26} {:>14} {:>14} {:>10}", "", "naive", "plan", "gain");
        let row = |s: &mut String, name: &str, n: String, p: String, r: String| {
            let _ = writeln!(s, "  {name:<26} {n:>14} {p:>14} {r:>10}");
        };
        row(
            &mut s,
            "tokens computed",
            d.naive.tokens.to_string(),
            d.plan.tokens.to_string(),
            format!("{:.2}x", d.token_ratio),
        );
        row(
            &mut s,
            "wall seconds (scoring)",
            format!("{:.2}", d.naive.wall_s),
            format!("{:.2}", d.plan.wall_s),
            format!("{:.2}x", d.wall_ratio),
        );
        row(
            &mut s,
            "decisions / s",
            format!("{:.2}", d.naive.decisions_per_s),
            format!("{:.2}", d.plan.decisions_per_s),
            format!("{:.2}x", d.plan.decisions_per_s / d.naive.decisions_per_s.max(1e-12)),
        );
        row(
            &mut s,
            "tokens / s",
            format!("{:.0}", d.naive.tokens_per_s),
            format!("{:.0}", d.plan.tokens_per_s),
            String::new(),
        );
        row(
            &mut s,
            "peak RSS MB (process)",
            opt(d.naive.peak_rss_mb),
            opt(d.plan.peak_rss_mb),
            String::new(),
        );
        row(
            &mut s,
            "peak RSS MB (scoring)",
            opt(d.naive.scoring_peak_rss_mb),
            opt(d.plan.scoring_peak_rss_mb),
            String::new(),
        );
        row(
            &mut s,
            "model GFLOP/s",
            format!("{:.2}", d.naive.model_flops_per_s / 1e9),
            format!("{:.2}", d.plan.model_flops_per_s / 1e9),
            String::new(),
        );
        row(
            &mut s,
            "  of measured sgemm",
            format!("{:.0}%", 100.0 * d.naive.model_flops_per_s / d.sgemm_flops_per_s.max(1e-9)),
            format!("{:.0}%", 100.0 * d.sgemm_fraction),
            String::new(),
        );
        row(
            &mut s,
            "CPU use (cpu / wall x thr)",
            d.naive.cpu_utilisation.map_or("-".into(), |u| format!("{:.0}%", 100.0 * u)),
            d.plan.cpu_utilisation.map_or("-".into(), |u| format!("{:.0}%", 100.0 * u)),
            String::new(),
        );
        row(
            &mut s,
            "sgemm GFLOP/s at start",
            d.naive.sgemm_flops_per_s_at_start.map_or("-".into(), |f| format!("{:.2}", f / 1e9)),
            d.plan.sgemm_flops_per_s_at_start.map_or("-".into(), |f| format!("{:.2}", f / 1e9)),
            String::new(),
        );
        row(
            &mut s,
            "sgemm GFLOP/s (best seen)",
            format!("{:.2}", d.sgemm_flops_per_s / 1e9),
            String::new(),
            String::new(),
        );
        row(
            &mut s,
            "max |naive - plan|",
            format!("{:.2e}", d.max_abs_diff),
            String::new(),
            String::new(),
        );
        if let Some(w) = &d.whole_set {
            let _ = writeln!(
                s,
                "  whole data set, plan run: {} decisions, {} tokens computed vs {} naive ({:.2}x), {:.1}s scoring, {:.2} decisions/s, {:.2} GFLOP/s ({:.0}% of sgemm), CPU use {}, peak RSS {} MB; naive wall extrapolated {:.0}s ({:.2}x); max |naive - plan| on the subset {:.2e}",
                w.decisions,
                w.plan.tokens,
                w.naive_tokens,
                w.token_ratio,
                w.plan.wall_s,
                w.plan.decisions_per_s,
                w.plan.model_flops_per_s / 1e9,
                100.0 * w.sgemm_fraction,
                w.plan.cpu_utilisation.map_or("-".into(), |u| format!("{:.0}%", 100.0 * u)),
                opt(w.plan.peak_rss_mb),
                w.naive_wall_s_estimate,
                w.wall_ratio_estimate,
                w.max_abs_diff_vs_naive
            );
        }
        if let Some(f) = &d.full_data_planned {
            let _ = writeln!(
                s,
                "  whole data set, planner only: {} decisions, {} naive tokens vs {} in transcripts ({:.2}x, before shared-prefix reuse)",
                f.decisions, f.naive_tokens, f.transcript_tokens, f.ratio
            );
        }
    }
    if let Some(m) = memory {
        let _ = writeln!(
            s,
            "\nmemory check ({}): plan on {} vs {} decisions: scoring peak {} vs {} MB (of which scoring added {} vs {} MB over the loaded model), process peak {} vs {} MB, ratio {}",
            m.data_set,
            m.decisions_small,
            m.decisions_large,
            opt(m.scoring_peak_rss_mb_small),
            opt(m.scoring_peak_rss_mb_large),
            opt(m.scoring_increment_mb_small),
            opt(m.scoring_increment_mb_large),
            opt(m.peak_rss_mb_small),
            opt(m.peak_rss_mb_large),
            m.ratio.map_or("-".into(), |r| format!("{r:.3}"))
        );
    }
    for w in contention_warnings(data_sets) {
        let _ = writeln!(s, "\nWARNING: {w}");
    }
    let _ = writeln!(s, "\ntargets:");
    for t in targets {
        let verdict = match t.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not measured",
        };
        let value = t.value.map_or("-".to_string(), |v| {
            if v.abs() < 1e-2 {
                format!("{v:.2e}")
            } else {
                format!("{v:.3}")
            }
        });
        let _ =
            writeln!(s, "  {:<84} {:>9} {} {:<6} {}", t.what, value, t.op, t.threshold, verdict);
    }
    s
}

/// Whether `path` looks like a data root (holds the benchmark's data folders).
pub fn is_data_root(path: &Path) -> bool {
    DATA_SETS.iter().any(|d| path.join(d.data).is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> ModelManifest {
        ModelManifest {
            architecture: "llama".into(),
            name: "m".into(),
            weights_sha256: String::new(),
            vocab_size: 1000,
            num_layers: 2,
            hidden_size: 64,
            head_dim: 16,
            num_attention_heads: 8,
            non_embedding_params: 1_000_000,
            has_chat_template: false,
            bos_token: None,
            eos_token: None,
        }
    }

    fn result(phase: Phase, preds: &[(f64, f64)]) -> PhaseResult {
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
    fn flops_count_dense_attention_and_output() {
        let m = manifest();
        // 10 tokens from scratch: context sum 55.
        let f = model_flops(&m, 10, 55.0, 2);
        let expected = 2.0 * 1e6 * 10.0 + 4.0 * 2.0 * 128.0 * 55.0 + 2.0 * 64.0 * 1000.0 * 2.0;
        assert_eq!(f, expected);
        // Reuse scales the context sum by the computed share.
        assert_eq!(result(Phase::Plan, &[]).context_sum(), 27.5);
    }

    #[test]
    fn compare_takes_the_largest_difference_and_rejects_other_decisions() {
        let a = result(Phase::Naive, &[(0.5, 0.9), (0.25, 0.8)]);
        let b = result(Phase::Plan, &[(0.5, 0.9), (0.2500004, 0.80002)]);
        let d = compare(&a, &b).unwrap();
        assert!((d - 2e-5).abs() < 1e-9, "{d}");
        let c = result(Phase::Plan, &[(0.5, 0.9)]);
        assert!(compare(&a, &c).is_err());
        let nan = result(Phase::Plan, &[(f64::NAN, 0.9), (0.25, 0.8)]);
        assert_eq!(compare(&a, &nan).unwrap(), f64::INFINITY);
    }

    #[test]
    fn status_parsing_and_requests() {
        let text = "Name:\tx\nVmHWM:\t  123456 kB\nVmRSS:\t  2048 kB\n";
        assert_eq!(parse_status_kb(text, "VmHWM"), Some(123456));
        assert_eq!(parse_status_kb(text, "VmRSS"), Some(2048));
        assert_eq!(parse_status_kb(text, "VmSwap"), None);
        let seqs: Vec<PlannedSequence> = [5usize, 5, 5, 20]
            .iter()
            .map(|&n| PlannedSequence { tokens: vec![1; n], queries: vec![(0, 0)] })
            .collect();
        let c = chunks(&seqs, 10);
        assert_eq!(c.iter().map(|c| c.len()).collect::<Vec<_>>(), vec![2, 1, 1]);
    }

    #[test]
    fn naive_spec_disables_prefix_reuse() {
        let mut settings = PhaseSettings {
            model_dir: PathBuf::from("/m"),
            data_root: PathBuf::from("/d"),
            data_set: "matrix-repeated".into(),
            phase: Phase::Naive,
            limit: None,
            backend: "onnx".into(),
            threads: 2,
            batch_tokens: 1024,
            request_tokens: 4096,
            ort_library: Some(PathBuf::from("/ort.so")),
        };
        let naive: serde_json::Value = serde_json::from_str(&phase_spec(&settings)).unwrap();
        // Past any context length: no two sequences share that many tokens.
        assert!(naive["min_shared_prefix"].as_u64().unwrap() >= 1 << 30, "{naive}");
        assert_eq!(naive["token_budget"], 1024);
        assert_eq!(naive["threads"], 2);
        settings.phase = Phase::Plan;
        let plan: serde_json::Value = serde_json::from_str(&phase_spec(&settings)).unwrap();
        assert!(plan["min_shared_prefix"].as_u64().unwrap() <= 64, "{plan}");
    }
}
