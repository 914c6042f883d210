//! FFI-safe data that crosses the plugin boundary.
//!
//! Structured data is `#[repr(C)]` with `abi_stable` containers; open-ended data (game
//! parameters, per-decision metadata, a game's private rendering context) crosses as JSON
//! text so that adding a field to a game never changes the ABI.

use abi_stable::{
    std_types::{ROption, RString, RVec},
    StableAbi,
};

/// Who a plugin is.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct PluginInfo {
    /// Unique name the config refers to (e.g. `matrix`, `metrics`, a backend's engine name).
    pub name: RString,
    /// The plugin's own version.
    pub version: RString,
    /// One line saying what it is.
    pub description: RString,
}

// ----------------------------------------------------------------------------- games

/// One decision option of a game family (e.g. `accept`), with the surface forms whose
/// next-token probabilities count as that option.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct DecisionOption {
    /// Stable id, as recorded in outcomes (e.g. `accept`, `J`).
    pub id: RString,
    /// Surface forms that count as this option (e.g. `" accept"`, `"accept"`, `" Accept"`).
    pub surface_forms: RVec<RString>,
}

/// One prompt variant a game can render.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct PromptVariant {
    /// Name the config refers to.
    pub name: RString,
    /// What differs in this variant.
    pub description: RString,
    /// True when, for consecutive decision points k, k+1 of an episode, the messages of
    /// prompt k followed by one assistant message `answer_prefix + ANSWER + "\"}"` (i.e.
    /// `{"decision": "ANSWER"}`, ANSWER the option as the person gave it) are, message by
    /// message, a prefix of the messages of prompt k+1, so a whole episode can be scored as
    /// one sequence. The host still checks the property on tokens before relying on it.
    pub transcript: bool,
}

/// Everything the host needs to know about a game family before loading data.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct GameInfo {
    /// Who the plugin is; `plugin.name` is the game's name.
    pub plugin: PluginInfo,
    /// The analysis family this game's results are pooled under (e.g. PD and BoS are both
    /// `matrix`).
    pub family: RString,
    /// Whether episodes have several rounds (bargaining) or one decision (lotteries).
    pub multi_round: bool,
    /// The decision options, in a fixed order.
    pub options: RVec<DecisionOption>,
    /// The option whose probability is the prediction compared with the human outcome
    /// (e.g. `accept`; `J` = cooperate in PD).
    pub target_option: RString,
    /// The prompt variants; the first is the default.
    pub variants: RVec<PromptVariant>,
}

/// What a person did at a decision point.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct HumanOutcome {
    /// The option the person took, for individual decisions; `None` for aggregated data.
    pub option: ROption<RString>,
    /// Rate of the target option: 1 or 0 for an individual decision, the observed choice
    /// rate for aggregated data.
    pub rate: f64,
    /// Weight of the outcome: 1 for an individual decision, the number of people for a rate.
    pub weight: f64,
}

/// One human decision to predict.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct DecisionPoint {
    /// Unique id within the data set (stable across runs).
    pub id: RString,
    /// Id of the episode (one person's game) it belongs to.
    pub episode: RString,
    /// Round number, from 1.
    pub round: u32,
    /// What the person did.
    pub outcome: HumanOutcome,
    /// Analysis metadata as a JSON object: game-configuration fields whose values an
    /// analysis may split by (discount factor, information condition, PD vs BoS, ...).
    pub metadata_json: RString,
    /// Data-quality flags (e.g. `payoff_inconsistent`); flagged points are kept.
    pub flags: RVec<RString>,
    /// The game's own rendering context (history, parameters) as JSON; opaque to the host.
    pub context_json: RString,
}

/// One person's game: decision points in round order.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct Episode {
    /// Episode id.
    pub id: RString,
    /// Decision points in the order they were made.
    pub decisions: RVec<DecisionPoint>,
}

/// Something in a data set that was not turned into decision points, and why.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct SkippedItem {
    /// What was skipped (a game folder, a row).
    pub item: RString,
    /// Why.
    pub reason: RString,
}

/// Where a game's data is and how to read it.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct LoadRequest {
    /// Path to the data set (file or folder, as the game documents).
    pub path: RString,
    /// Game parameters as a JSON object (e.g. `{"feedback": false}`).
    pub params_json: RString,
}

/// A loaded data set.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct LoadedData {
    /// Episodes with their decision points.
    pub episodes: RVec<Episode>,
    /// What was skipped, with reasons.
    pub skipped: RVec<SkippedItem>,
}

/// One chat message.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: RString,
    /// The text.
    pub content: RString,
}

/// A rendered decision point: structured messages plus the answer prefix that opens the
/// final assistant turn (e.g. `{"decision": "`).
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct Prompt {
    /// The messages, in order.
    pub messages: RVec<Message>,
    /// Text that begins the answer; the next token after it is read.
    pub answer_prefix: RString,
}

// -------------------------------------------------------------------------- backends

/// Who a backend is and which model-folder artifacts it loads.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct BackendInfo {
    /// Name, version, description.
    pub plugin: PluginInfo,
    /// The engine name under which a model folder's manifest records the files this
    /// backend loads (`artifacts.<name>` in `descry-model.json`). The host checks that a
    /// study's model folders hold them before any data is read.
    pub artifacts: RString,
    /// Keys that earlier versions of descry took in `[backend]` and this backend now takes
    /// in its own table, so that a study still using one is told where it went.
    pub moved_keys: RVec<MovedKey>,
}

/// A `[backend]` key that moved into a backend's own table.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct MovedKey {
    /// The old key in `[backend]`.
    pub old: RString,
    /// Its key in `[backend.<plugin>]`.
    pub new: RString,
}

/// How the host asks a backend to run: the settings every engine understands, from the
/// study's `[backend]` table, and the engine's own table, passed through verbatim.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct BackendSettings {
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: RString,
    /// Compute threads; 0 lets the engine choose (one per core).
    pub threads: u32,
    /// Most padded tokens in one forward pass (bounds memory).
    pub token_budget: u64,
    /// Compute a beginning shared by several sequences of a request once. Off: every
    /// sequence runs from its first token (the published method's cost).
    pub prefix_reuse: bool,
    /// Work of shared prefixes kept from one scoring call to the next, in tokens; `None`:
    /// the engine's default.
    pub prefix_cache_tokens: ROption<u64>,
    /// The study's `[backend.<plugin>]` table as a JSON object (`{}` when it has none).
    pub engine_json: RString,
    /// The folder that relative paths in `engine_json` are relative to (the study file's
    /// folder; empty: the working directory).
    pub base_dir: RString,
}

/// A model to load: a model folder and the settings to run it with.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct ModelLoadRequest {
    /// The model folder (written by `descry import`).
    pub model_dir: RString,
    /// The settings.
    pub settings: BackendSettings,
}

/// Which settings a [`SettingsProblem`] is about.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingsScope {
    /// A field of [`BackendSettings`] other than `engine_json`; the key is the field name.
    Shared,
    /// A key of the engine's own table; the key is its dotted path inside the table.
    Engine,
}

/// One problem with a backend's settings, found before any model is loaded.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct SettingsProblem {
    /// Shared setting or the engine's own table.
    pub scope: SettingsScope,
    /// The key (see [`SettingsScope`]).
    pub key: RString,
    /// What is wrong and what would be right.
    pub reason: RString,
}

/// A timed square matrix multiply through the engine (for the benchmark's roofline).
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq)]
pub struct MatmulRate {
    /// The matrices' size (n × n times n × n).
    pub n: u32,
    /// Billions of floating-point operations per second (2n³ per multiply).
    pub gflops: f64,
    /// Multiplies timed.
    pub repeats: u32,
}

/// One position of a sequence whose next-token distribution is wanted.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct ScoreQuery {
    /// Index into the sequence's tokens; the distribution is over the token after it.
    pub position: u32,
    /// Token ids whose log-probabilities are wanted.
    pub candidates: RVec<u32>,
}

/// A token sequence with its queries.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct ScoreSequence {
    /// Token ids (special tokens included as the model expects).
    pub tokens: RVec<u32>,
    /// Queried positions, in any order.
    pub queries: RVec<ScoreQuery>,
}

/// A batch of sequences to score.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct ScoreRequest {
    /// The sequences.
    pub sequences: RVec<ScoreSequence>,
    /// Also return the `top_k` most likely next tokens at each query (0: none).
    pub top_k: u32,
}

/// A token with its log-probability.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq)]
pub struct TokenLogprob {
    /// Token id.
    pub token: u32,
    /// Natural-log probability.
    pub logprob: f32,
}

/// Scores at one query.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct QueryScores {
    /// Log-probability of each candidate, in the order asked.
    pub candidate_logprobs: RVec<f32>,
    /// log Σ exp, over the whole vocabulary, of the scores `candidate_logprobs` were taken
    /// from; the host computes p(candidate) = exp(logprob - logsumexp). About 0 for a backend
    /// that returns normalised log-probabilities (it is computed, not assumed).
    pub logsumexp: f32,
    /// The `top_k` most likely next tokens, most likely first.
    pub top: RVec<TokenLogprob>,
}

/// Scores for one sequence, one entry per query in the order asked.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct SequenceScores {
    /// Per query.
    pub queries: RVec<QueryScores>,
}

/// What a scoring call cost.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, Default, PartialEq)]
pub struct ScoreStats {
    /// Tokens run through the model (padding excluded).
    pub tokens_computed: u64,
    /// Tokens whose work was reused from a cached prefix.
    pub tokens_reused: u64,
    /// Padding tokens run through the model.
    pub tokens_padding: u64,
}

/// Result of a scoring call, one entry per sequence in the order asked.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct ScoreResult {
    /// Per sequence.
    pub sequences: RVec<SequenceScores>,
    /// Cost.
    pub stats: ScoreStats,
}

// --------------------------------------------------------------------------- metrics

/// What a metric is.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct MetricInfo {
    /// Name the config refers to (e.g. `pearson`).
    pub name: RString,
    /// One line saying what it computes.
    pub description: RString,
    /// True when larger values mean better predictions.
    pub higher_is_better: bool,
}

/// Predictions and human outcomes to compare. All three have the same length.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct MetricInput {
    /// Predicted probability of the target option, in [0, 1].
    pub predictions: RVec<f64>,
    /// Human outcome: 0/1 for individual decisions, a rate in [0, 1] for aggregated data.
    pub outcomes: RVec<f64>,
    /// Weight of each outcome (1, or the number of people behind a rate).
    pub weights: RVec<f64>,
}
