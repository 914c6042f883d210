//! The scoring engine: one ONNX Runtime session over a model folder's `model.onnx`, and
//! [`Engine::score`], which answers a [`ScoreRequest`] with as few forward passes as it can.
//!
//! How a request is run:
//! 1. each sequence is cut after its last queried position (later tokens cannot change
//!    earlier next-token distributions);
//! 2. sequences sharing a long enough prefix ([`plan::group_by_prefix`]) run the prefix once
//!    (in chunks of at most `token_budget` tokens), answer the queries inside it, and run
//!    their suffixes as a batch on top of the prefix's key/values;
//! 3. the other sequences are sorted by length, right-padded and packed into batches of at
//!    most `token_budget` (padded) tokens ([`plan::pack`]); a sequence longer than the
//!    budget runs alone, in chunks, through the past key/values.
//!
//! A shared prefix's key/values are kept after the call ([`PrefixCache`], at most
//! `prefix_cache_tokens` tokens): a later request whose sequences begin with it starts from
//! them (step 2 for a group, and step 3's sequences become a group on top of it), unless a
//! query reads a position inside it.
//!
//! The graph computes every row independently of the others (and of padding), so results
//! do not depend on how sequences were batched, chunked or shared, up to float rounding
//! (the tests check 1e-4).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use abi_stable::std_types::RVec;
use descry_abi::types::{
    QueryScores, ScoreRequest, ScoreResult, ScoreStats, SequenceScores, TokenLogprob,
};
use descry_onnx_build::{ImportError, Manifest};
use ort::environment::Environment;
use ort::session::{OutputSelector, RunOptions, Session, SessionInputValue};
use ort::value::Tensor;

use crate::cache::PrefixCache;
use crate::plan;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// The CUDA provider on the given GPU (needs the `cuda` feature and the
    /// `onnxruntime-gpu` library); failing to register it is an error, never a silent
    /// fallback to the CPU.
    Cuda {
        /// CUDA device ordinal.
        device_id: i32,
    },
}

/// How to load and run a model.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// CPU or CUDA.
    pub device: Device,
    /// Intra-op threads (`None`: ONNX Runtime's default, one per core).
    pub threads: Option<usize>,
    /// Most padded tokens in one forward pass; longer sequences run in chunks.
    pub token_budget: usize,
    /// Sequences sharing at least this many leading tokens compute them once.
    pub min_shared_prefix: usize,
    /// Tokens of shared-prefix key/values kept from one call to the next (`None`: the
    /// token budget; 0: none).
    pub prefix_cache_tokens: Option<usize>,
    /// The ONNX Runtime shared library (default: `ORT_DYLIB_PATH`, else
    /// `$DESCRY_HOME/onnxruntime/libonnxruntime.so.1.31.1`).
    pub ort_dylib: Option<PathBuf>,
    /// ONNX Runtime graph optimisation level: `disable`, `basic`, `extended` or `all`.
    pub graph_optimization: String,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            device: Device::Cpu,
            threads: None,
            token_budget: 4096,
            min_shared_prefix: 32,
            prefix_cache_tokens: None,
            ort_dylib: None,
            graph_optimization: "all".into(),
        }
    }
}

/// Errors of the engine; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model folder is missing, incomplete or unreadable.
    #[error("model folder {path}: {source}")]
    Model {
        /// The folder.
        path: PathBuf,
        /// What went wrong reading it.
        #[source]
        source: ImportError,
    },
    /// The ONNX Runtime library cannot be found or loaded.
    #[error("ONNX Runtime library {path}: {reason}")]
    Runtime {
        /// The library path tried.
        path: PathBuf,
        /// Why it failed and what to do.
        reason: String,
    },
    /// ONNX Runtime reported an error.
    #[error("ONNX Runtime: {0}")]
    Ort(String),
    /// A request is invalid (names the sequence and what is wrong).
    #[error("sequence {sequence}: {reason}")]
    BadRequest {
        /// Index of the sequence in the request.
        sequence: usize,
        /// What is wrong.
        reason: String,
    },
    /// The options are invalid or unsupported by this build.
    #[error("{0}")]
    Options(String),
    /// The graph's declared inputs or outputs disagree with the manifest (a manifest edited
    /// by hand, or files from two imports mixed in one folder).
    #[error(
        "model folder {path}: descry-model.json says {field} = {manifest}, but model.onnx has \
         {graph} ({evidence}); the manifest and the graph do not belong together: rebuild the \
         folder with `{rebuild}`"
    )]
    GraphMismatch {
        /// The folder.
        path: PathBuf,
        /// The manifest field.
        field: &'static str,
        /// The manifest's value.
        manifest: usize,
        /// The graph's value.
        graph: usize,
        /// Where in the graph the value was read.
        evidence: String,
        /// The `descry import` command that rebuilds the folder.
        rebuild: String,
    },
}

fn ort_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Ort(e.to_string())
}

/// The process's one ONNX Runtime environment and the library it was loaded from.
static ENVIRONMENT: Mutex<Option<(PathBuf, &'static Environment)>> = Mutex::new(None);

/// The default location of the ONNX Runtime library.
pub fn default_ort_dylib() -> PathBuf {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let home = match std::env::var_os("DESCRY_HOME").filter(|h| !h.is_empty()) {
        Some(h) => PathBuf::from(h),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/descry"),
    };
    home.join("onnxruntime/libonnxruntime.so.1.31.1")
}

fn environment(dylib: &Path) -> Result<&'static Environment, EngineError> {
    let mut guard = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((path, env)) = guard.as_ref() {
        // ONNX Runtime allows one library and one environment per process.
        if path != dylib {
            return Err(EngineError::Runtime {
                path: dylib.to_path_buf(),
                reason: format!(
                    "this process already uses {}; one ONNX Runtime library per process",
                    path.display()
                ),
            });
        }
        return Ok(*env);
    }
    if !dylib.is_file() {
        return Err(EngineError::Runtime {
            path: dylib.to_path_buf(),
            reason: "not found; set `backend.ort_library` in the study (`--ort-library` for \
                     `descry score`) or the ORT_DYLIB_PATH environment variable to the library, \
                     or run scripts/setup-models.sh, which installs it under $DESCRY_HOME/onnxruntime"
                .into(),
        });
    }
    let env = ort::init_from(dylib)
        .map_err(|e| EngineError::Runtime { path: dylib.to_path_buf(), reason: e.to_string() })?
        .with_name("descry")
        .build()
        .map_err(|e| EngineError::Runtime { path: dylib.to_path_buf(), reason: e.to_string() })?;
    let env: &'static Environment = Box::leak(Box::new(env));
    *guard = Some((dylib.to_path_buf(), env));
    Ok(env)
}

/// Compares the graph's declared inputs and outputs with the manifest the engine sizes its
/// tensors by (layers, key/value heads, head width, vocabulary), so a mismatch is reported
/// at load, naming the field and both values, instead of as an ONNX Runtime shape error in
/// the first forward pass.
fn check_graph(dir: &Path, manifest: &Manifest, session: &Session) -> Result<(), EngineError> {
    let inputs: Vec<(&str, Option<&[i64]>)> = session
        .inputs()
        .iter()
        .map(|o| (o.name(), o.dtype().tensor_shape().map(|s| &s[..])))
        .collect();
    let outputs: Vec<(&str, Option<&[i64]>)> = session
        .outputs()
        .iter()
        .map(|o| (o.name(), o.dtype().tensor_shape().map(|s| &s[..])))
        .collect();
    graph_mismatch(manifest, &inputs, &outputs).map_or(Ok(()), |(field, want, got, evidence)| {
        Err(EngineError::GraphMismatch {
            path: dir.to_path_buf(),
            field,
            manifest: want,
            graph: got,
            evidence,
            rebuild: manifest.rebuild_command(dir),
        })
    })
}

/// The first disagreement between the manifest and the graph's declared inputs/outputs
/// (name, shape; `-1` for a dynamic axis): field, manifest value, graph value, evidence.
fn graph_mismatch(
    manifest: &Manifest,
    inputs: &[(&str, Option<&[i64]>)],
    outputs: &[(&str, Option<&[i64]>)],
) -> Option<(&'static str, usize, usize, String)> {
    let layers = inputs
        .iter()
        .filter(|(n, _)| {
            n.strip_prefix("past.")
                .and_then(|r| r.strip_suffix(".key"))
                .is_some_and(|i| i.parse::<usize>().is_ok())
        })
        .count();
    if layers != manifest.num_layers {
        return Some((
            "num_layers",
            manifest.num_layers,
            layers,
            format!("{layers} past.N.key inputs"),
        ));
    }
    // A fixed axis that differs; a dynamic one (-1) cannot be checked.
    let differs = |shape: Option<&[i64]>, axis: usize, want: usize| -> Option<usize> {
        let d = *shape?.get(axis)?;
        (d >= 0 && d as usize != want).then_some(d as usize)
    };
    for (name, shape) in inputs.iter().filter(|(n, _)| n.starts_with("past.")) {
        if let Some(got) = differs(*shape, 1, manifest.num_kv_heads) {
            return Some((
                "num_kv_heads",
                manifest.num_kv_heads,
                got,
                format!("axis 1 of input {name}"),
            ));
        }
        if let Some(got) = differs(*shape, 3, manifest.head_dim) {
            return Some(("head_dim", manifest.head_dim, got, format!("axis 3 of input {name}")));
        }
    }
    if let Some((_, shape)) = outputs.iter().find(|(n, _)| *n == "logprobs") {
        if let Some(got) = differs(*shape, 2, manifest.vocab_size) {
            return Some((
                "vocab_size",
                manifest.vocab_size,
                got,
                "axis 2 of output logprobs".into(),
            ));
        }
    }
    None
}

/// A loaded model.
pub struct Engine {
    session: Mutex<Session>,
    /// Key/values of prefixes shared in earlier calls.
    prefixes: Mutex<PrefixCache<Kv>>,
    manifest: Manifest,
    dir: PathBuf,
    options: EngineOptions,
}

/// Per-layer key/value cache of one sequence: `[1, kv_heads, len, head_dim]` each.
#[derive(Clone)]
struct Kv {
    len: usize,
    layers: Vec<(Vec<f32>, Vec<f32>)>,
}

impl Kv {
    /// The key/values of the first `len` tokens (`len <= self.len`).
    fn truncated(&self, len: usize, kv_heads: usize, head_dim: usize) -> Kv {
        let cut = |t: &[f32]| -> Vec<f32> {
            (0..kv_heads)
                .flat_map(|h| {
                    let start = h * self.len * head_dim;
                    t[start..start + len * head_dim].iter().copied()
                })
                .collect()
        };
        Kv { len, layers: self.layers.iter().map(|(k, v)| (cut(k), cut(v))).collect() }
    }
}

/// One row of a batch: new tokens and the (relative) positions to read.
struct Row<'a> {
    tokens: &'a [u32],
    queries: &'a [usize],
}

/// One sequence of the request being scored.
struct Job<'a> {
    /// Index in the request.
    seq: usize,
    /// Tokens up to and including the last queried position.
    tokens: &'a [u32],
    /// Distinct queried positions, ascending.
    positions: Vec<usize>,
}

/// Results being filled in: per sequence, per query.
struct Collector<'r> {
    request: &'r ScoreRequest,
    top_k: usize,
    /// Per sequence: position → indices of the queries at it.
    at: Vec<BTreeMap<usize, Vec<usize>>>,
    out: Vec<Vec<Option<QueryScores>>>,
}

impl Collector<'_> {
    fn fill(&mut self, seq: usize, position: usize, row: &[f32]) {
        let Some(queries) = self.at[seq].get(&position) else {
            return;
        };
        for &qi in queries {
            let q = &self.request.sequences[seq].queries[qi];
            self.out[seq][qi] = Some(query_scores(row, &q.candidates, self.top_k));
        }
    }
}

/// Candidate log-probs, log-sum-exp and top-k of one next-token distribution.
fn query_scores(row: &[f32], candidates: &[u32], top_k: usize) -> QueryScores {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = row.iter().map(|&x| f64::from(x - max).exp()).sum();
    let logsumexp = (f64::from(max) + sum.ln()) as f32;
    let candidate_logprobs: RVec<f32> = candidates.iter().map(|&c| row[c as usize]).collect();
    let k = top_k.min(row.len());
    let mut top: Vec<TokenLogprob> = Vec::new();
    if k > 0 {
        let mut idx: Vec<u32> = (0..row.len() as u32).collect();
        // Highest log-prob first; ties by token id, so the order is deterministic.
        let cmp = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
        if k < idx.len() {
            idx.select_nth_unstable_by(k - 1, cmp);
            idx.truncate(k);
        }
        idx.sort_by(cmp);
        top =
            idx.into_iter().map(|t| TokenLogprob { token: t, logprob: row[t as usize] }).collect();
    }
    QueryScores { candidate_logprobs, logsumexp, top: top.into() }
}

impl Engine {
    /// Loads the model folder `dir` (see `MODEL_FOLDER.md`).
    pub fn load(dir: &Path, options: &EngineOptions) -> Result<Engine, EngineError> {
        if options.token_budget == 0 {
            return Err(EngineError::Options("token_budget must be at least 1".into()));
        }
        let manifest = Manifest::read(dir)
            .map_err(|source| EngineError::Model { path: dir.to_path_buf(), source })?;
        // A missing or cut-off graph is named here, not by ONNX Runtime's parser.
        manifest
            .check_engine_files(dir)
            .map_err(|source| EngineError::Model { path: dir.to_path_buf(), source })?;
        let dylib = options.ort_dylib.clone().unwrap_or_else(default_ort_dylib);
        let env = environment(&dylib)?;
        let mut builder = Session::builder(env).map_err(ort_err)?;
        if let Some(t) = options.threads {
            builder = builder.with_intra_threads(t).map_err(ort_err)?;
        }
        let level = match options.graph_optimization.as_str() {
            "disable" => ort::session::builder::GraphOptimizationLevel::Disable,
            "basic" => ort::session::builder::GraphOptimizationLevel::Level1,
            "extended" => ort::session::builder::GraphOptimizationLevel::Level2,
            "all" => ort::session::builder::GraphOptimizationLevel::All,
            other => {
                return Err(EngineError::Options(format!(
                    "graph_optimization \"{other}\": expected disable, basic, extended or all"
                )))
            }
        };
        builder = builder.with_optimization_level(level).map_err(ort_err)?;
        match options.device {
            // The CPU provider keeps ONNX Runtime's arena: without it, peak memory was 1.4x
            // higher (allocator fragmentation across batch shapes).
            Device::Cpu => {}
            #[cfg(feature = "cuda")]
            Device::Cuda { device_id } => {
                builder = builder
                    .with_execution_providers([ort::ep::CUDA::default()
                        .with_device_id(device_id)
                        .build()
                        .error_on_failure()])
                    .map_err(|e| {
                        EngineError::Ort(format!(
                            "the CUDA execution provider could not be loaded for cuda:{device_id}: {e} \
                             (it needs the onnxruntime-gpu library with libonnxruntime_providers_cuda.so \
                             beside it, the CUDA 13 runtime, cuBLAS, cuDNN 9 and a GPU driver; descry \
                             never falls back to the CPU silently)"
                        ))
                    })?;
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda { .. } => return Err(EngineError::Options(
                "device \"cuda\": this build of the onnx backend has no CUDA support; rebuild it \
                     with `--features cuda`"
                    .into(),
            )),
        }
        let model = dir.join("model.onnx");
        let session = builder
            .commit_from_file(&model)
            .map_err(|e| EngineError::Ort(format!("loading {}: {e}", model.display())))?;
        check_graph(dir, &manifest, &session)?;
        let cache_tokens = options.prefix_cache_tokens.unwrap_or(options.token_budget);
        Ok(Engine {
            session: Mutex::new(session),
            prefixes: Mutex::new(PrefixCache::new(cache_tokens)),
            manifest,
            dir: dir.to_path_buf(),
            options: options.clone(),
        })
    }

    /// The model folder's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The model folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the engine was loaded with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Scores every query of every sequence; results are in request order.
    pub fn score(&self, request: &ScoreRequest) -> Result<ScoreResult, EngineError> {
        let vocab = self.manifest.vocab_size;
        let mut jobs: Vec<Job<'_>> = Vec::new();
        let mut at = Vec::with_capacity(request.sequences.len());
        for (si, s) in request.sequences.iter().enumerate() {
            let bad = |reason: String| EngineError::BadRequest { sequence: si, reason };
            if s.tokens.len() > self.manifest.context_length {
                return Err(bad(format!(
                    "{} tokens exceed the model's context length {}",
                    s.tokens.len(),
                    self.manifest.context_length
                )));
            }
            if let Some(t) = s.tokens.iter().find(|&&t| t as usize >= vocab) {
                return Err(bad(format!("token id {t} is outside the vocabulary (size {vocab})")));
            }
            let mut map: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for (qi, q) in s.queries.iter().enumerate() {
                let p = q.position as usize;
                if p >= s.tokens.len() {
                    return Err(bad(format!(
                        "query {qi}: position {p} is outside the sequence ({} tokens)",
                        s.tokens.len()
                    )));
                }
                if let Some(c) = q.candidates.iter().find(|&&c| c as usize >= vocab) {
                    return Err(bad(format!("query {qi}: candidate token id {c} is outside the vocabulary (size {vocab})")));
                }
                map.entry(p).or_default().push(qi);
            }
            if let Some(&last) = map.keys().next_back() {
                jobs.push(Job {
                    seq: si,
                    tokens: &s.tokens[..=last],
                    positions: map.keys().copied().collect(),
                });
            }
            at.push(map);
        }
        let mut col = Collector {
            request,
            top_k: request.top_k as usize,
            at,
            out: request.sequences.iter().map(|s| vec![None; s.queries.len()]).collect(),
        };
        let mut stats = ScoreStats::default();

        let token_lists: Vec<&[u32]> = jobs.iter().map(|j| j.tokens).collect();
        let mut singles: Vec<usize> = Vec::new();
        for group in plan::group_by_prefix(&token_lists, self.options.min_shared_prefix) {
            if group.prefix_len == 0 {
                singles.extend(group.members);
            } else {
                self.run_group(&jobs, &group, &mut col, &mut stats)?;
            }
        }
        // Sequences sharing nothing in this request may begin with a prefix kept from an
        // earlier one: those run on top of it, by prefix.
        let mut on_cached: Vec<(usize, Arc<Kv>, Vec<usize>)> = Vec::new();
        let mut fresh: Vec<usize> = Vec::new();
        {
            let mut cache = self.prefixes.lock().unwrap_or_else(|e| e.into_inner());
            for j in singles {
                let first_query = jobs[j].positions[0];
                match cache.longest_prefix_of(
                    jobs[j].tokens,
                    self.options.min_shared_prefix,
                    first_query,
                ) {
                    Some((len, kv)) => {
                        match on_cached.iter_mut().find(|(_, k, _)| Arc::ptr_eq(k, &kv)) {
                            Some((_, _, members)) => members.push(j),
                            None => on_cached.push((len, kv, vec![j])),
                        }
                    }
                    None => fresh.push(j),
                }
            }
        }
        for (len, kv, members) in &on_cached {
            stats.tokens_reused += (members.len() * len) as u64;
            self.run_tails(&jobs, members, *len, kv, &mut col, &mut stats)?;
        }
        self.run_singles(&jobs, &fresh, &mut col, &mut stats)?;

        let mut sequences = RVec::with_capacity(col.out.len());
        for (si, per_query) in col.out.into_iter().enumerate() {
            let mut queries = RVec::with_capacity(per_query.len());
            for (qi, q) in per_query.into_iter().enumerate() {
                // Every query was routed to a pass above; a gap would be a scheduling bug.
                let q = q.ok_or_else(|| EngineError::BadRequest {
                    sequence: si,
                    reason: format!("query {qi} was not computed (internal scheduling error)"),
                })?;
                queries.push(q);
            }
            sequences.push(SequenceScores { queries });
        }
        Ok(ScoreResult { sequences, stats })
    }

    /// Sequences sharing `group.prefix_len` leading tokens: the prefix once, then the
    /// suffixes in batches on top of its key/values.
    fn run_group(
        &self,
        jobs: &[Job<'_>],
        group: &plan::PrefixGroup,
        col: &mut Collector<'_>,
        stats: &mut ScoreStats,
    ) -> Result<(), EngineError> {
        let l = group.prefix_len;
        let prefix = &jobs[group.members[0]].tokens[..l];
        let mut prefix_positions: Vec<usize> = group
            .members
            .iter()
            .flat_map(|&m| jobs[m].positions.iter().copied().filter(|&p| p < l))
            .collect();
        prefix_positions.sort_unstable();
        prefix_positions.dedup();
        let members = &group.members;
        // A prefix kept from an earlier call stands in for the tokens before the first query.
        let first_query = prefix_positions.first().copied().unwrap_or(l);
        let cached = self.prefixes.lock().unwrap_or_else(|e| e.into_inner()).longest_prefix_of(
            prefix,
            self.options.min_shared_prefix,
            first_query,
        );
        let (start, past) = match cached {
            Some((c, kv)) => {
                stats.tokens_reused += c as u64;
                (c, Some(kv))
            }
            None => (0, None),
        };
        let kv = if start == l {
            past.ok_or_else(|| EngineError::Ort("cached prefix without key/values".into()))?
        } else {
            let rel: Vec<usize> = prefix_positions.iter().map(|p| p - start).collect();
            Arc::new(self.run_chunked(
                &prefix[start..],
                &rel,
                past.as_deref(),
                stats,
                &mut |pos, row| {
                    for &m in members {
                        col.fill(jobs[m].seq, start + pos, row);
                    }
                },
            )?)
        };
        // What later calls can start from: the whole prefix, and, when queries fall inside
        // it, its part before the first query (later sequences read their own distributions
        // from there on, even where their tokens agree with this prefix).
        {
            let mut cache = self.prefixes.lock().unwrap_or_else(|e| e.into_inner());
            cache.insert(prefix, Arc::clone(&kv));
            if first_query < l && first_query >= self.options.min_shared_prefix.max(1) {
                let m = &self.manifest;
                let before = kv.truncated(first_query, m.num_kv_heads, m.head_dim);
                cache.insert(&prefix[..first_query], Arc::new(before));
            }
        }
        stats.tokens_reused += ((members.len() - 1) * l) as u64;
        self.run_tails(jobs, members, l, &kv, col, stats)
    }

    /// The parts after a shared prefix of length `l` (whose key/values are `kv`) of the
    /// given sequences, in batches; only positions from `l` on are read.
    fn run_tails(
        &self,
        jobs: &[Job<'_>],
        members: &[usize],
        l: usize,
        kv: &Kv,
        col: &mut Collector<'_>,
        stats: &mut ScoreStats,
    ) -> Result<(), EngineError> {
        // Members with queries past the prefix continue from its key/values.
        let tails: Vec<(usize, Vec<usize>)> = members
            .iter()
            .filter_map(|&m| {
                let rel: Vec<usize> =
                    jobs[m].positions.iter().filter(|&&p| p >= l).map(|p| p - l).collect();
                (!rel.is_empty()).then_some((m, rel))
            })
            .collect();
        let lengths: Vec<usize> = tails.iter().map(|(m, _)| jobs[*m].tokens.len() - l).collect();
        // Each row carries its own copy of the shared past, and attention spans it: count it
        // in full, so that a pass never holds more than the budget's tokens.
        for batch in plan::pack(&lengths, l, self.options.token_budget) {
            if batch.len() == 1 && lengths[batch[0]] > self.options.token_budget {
                let (m, rel) = &tails[batch[0]];
                let seq = jobs[*m].seq;
                self.run_chunked(&jobs[*m].tokens[l..], rel, Some(kv), stats, &mut |pos, row| {
                    col.fill(seq, l + pos, row)
                })?;
                continue;
            }
            let rows: Vec<Row<'_>> = batch
                .iter()
                .map(|&i| Row { tokens: &jobs[tails[i].0].tokens[l..], queries: &tails[i].1 })
                .collect();
            self.run(&rows, Some(kv), false, stats, &mut |r, pos, row| {
                col.fill(jobs[tails[batch[r]].0].seq, l + pos, row)
            })?;
        }
        Ok(())
    }

    /// Sequences sharing nothing: sorted by length and packed into padded batches.
    fn run_singles(
        &self,
        jobs: &[Job<'_>],
        singles: &[usize],
        col: &mut Collector<'_>,
        stats: &mut ScoreStats,
    ) -> Result<(), EngineError> {
        let lengths: Vec<usize> = singles.iter().map(|&j| jobs[j].tokens.len()).collect();
        for batch in plan::pack(&lengths, 0, self.options.token_budget) {
            if batch.len() == 1 && lengths[batch[0]] > self.options.token_budget {
                let job = &jobs[singles[batch[0]]];
                self.run_chunked(job.tokens, &job.positions, None, stats, &mut |pos, row| {
                    col.fill(job.seq, pos, row)
                })?;
                continue;
            }
            let rows: Vec<Row<'_>> = batch
                .iter()
                .map(|&i| Row {
                    tokens: jobs[singles[i]].tokens,
                    queries: &jobs[singles[i]].positions,
                })
                .collect();
            self.run(&rows, None, false, stats, &mut |r, pos, row| {
                col.fill(jobs[singles[batch[r]]].seq, pos, row)
            })?;
        }
        Ok(())
    }

    /// One sequence in chunks of at most `token_budget` tokens, carrying key/values from
    /// chunk to chunk (starting from `past`). `visit(position, logprobs)` sees each queried
    /// position (relative to `tokens`). Returns the key/values of `past` + all of `tokens`.
    fn run_chunked(
        &self,
        tokens: &[u32],
        positions: &[usize],
        past: Option<&Kv>,
        stats: &mut ScoreStats,
        visit: &mut dyn FnMut(usize, &[f32]),
    ) -> Result<Kv, EngineError> {
        let mut kv: Option<Kv> = None;
        let mut start = 0;
        let budget = self.options.token_budget;
        while start < tokens.len() {
            let end = (start + budget).min(tokens.len());
            let rel: Vec<usize> =
                positions.iter().filter(|&&p| p >= start && p < end).map(|p| p - start).collect();
            let row = Row { tokens: &tokens[start..end], queries: &rel };
            let next = self.run(
                std::slice::from_ref(&row),
                kv.as_ref().or(past),
                true,
                stats,
                &mut |_, pos, lp| visit(start + pos, lp),
            )?;
            kv = next;
            start = end;
        }
        kv.ok_or_else(|| EngineError::Ort("empty sequence: no key/values".into()))
    }

    /// One forward pass over right-padded `rows`, all continuing from `past` (broadcast to
    /// every row) or from nothing. `visit(row, position, logprobs)` sees each query; the
    /// key/values are returned when `want_kv` (single-row passes only).
    fn run(
        &self,
        rows: &[Row<'_>],
        past: Option<&Kv>,
        want_kv: bool,
        stats: &mut ScoreStats,
        visit: &mut dyn FnMut(usize, usize, &[f32]),
    ) -> Result<Option<Kv>, EngineError> {
        let m = &self.manifest;
        let (kvh, hd, vocab) = (m.num_kv_heads, m.head_dim, m.vocab_size);
        let b = rows.len();
        let seq = rows.iter().map(|r| r.tokens.len()).max().unwrap_or(0);
        let past_len = past.map_or(0, |p| p.len);
        let total = past_len + seq;
        // At least one query slot per row: an empty gather would give an empty matrix product.
        let nq = rows.iter().map(|r| r.queries.len()).max().unwrap_or(0).max(1);

        let mut ids = Vec::with_capacity(b * seq);
        let mut mask = Vec::with_capacity(b * total);
        let mut queries = Vec::with_capacity(b * nq);
        for r in rows {
            let n = r.tokens.len();
            ids.extend(r.tokens.iter().map(|&t| i64::from(t)));
            ids.extend(std::iter::repeat_n(0, seq - n));
            mask.extend(std::iter::repeat_n(1i64, past_len + n));
            mask.extend(std::iter::repeat_n(0i64, seq - n));
            let pad = r.queries.last().copied().unwrap_or(0) as i64;
            queries.extend(r.queries.iter().map(|&q| q as i64));
            queries.extend(std::iter::repeat_n(pad, nq - r.queries.len()));
            stats.tokens_computed += n as u64;
            stats.tokens_padding += (seq - n) as u64;
        }
        let positions: Vec<i64> =
            (0..b).flat_map(|_| (past_len..total).map(|p| p as i64)).collect();

        let tensor_i64 = |shape: Vec<usize>,
                          data: Vec<i64>|
         -> Result<SessionInputValue<'static>, EngineError> {
            Ok(Tensor::from_array((shape, data)).map_err(ort_err)?.into())
        };
        let mut inputs: Vec<(String, SessionInputValue<'static>)> = vec![
            ("input_ids".into(), tensor_i64(vec![b, seq], ids)?),
            ("position_ids".into(), tensor_i64(vec![b, seq], positions)?),
            ("attention_mask".into(), tensor_i64(vec![b, total], mask)?),
            ("query_positions".into(), tensor_i64(vec![b, nq], queries)?),
        ];
        let kv_shape = vec![b, kvh, past_len, hd];
        for i in 0..m.num_layers {
            let (k, v) = match past {
                Some(p) => {
                    let (k, v) = &p.layers[i];
                    (k.repeat(b), v.repeat(b))
                }
                None => (Vec::new(), Vec::new()),
            };
            inputs.push((
                format!("past.{i}.key"),
                Tensor::from_array((kv_shape.clone(), k)).map_err(ort_err)?.into(),
            ));
            inputs.push((
                format!("past.{i}.value"),
                Tensor::from_array((kv_shape.clone(), v)).map_err(ort_err)?.into(),
            ));
        }

        // Fetch the key/values only when they are kept: unfetched, ONNX Runtime frees each
        // layer's as soon as its attention is done instead of holding every layer's to the end.
        let mut selector = OutputSelector::no_default().with("logprobs");
        if want_kv {
            for i in 0..m.num_layers {
                selector =
                    selector.with(format!("present.{i}.key")).with(format!("present.{i}.value"));
            }
        }
        let run_options = RunOptions::new().map_err(ort_err)?.with_outputs(selector);
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session.run_with_options(inputs, &run_options).map_err(ort_err)?;
        let (shape, lp) = outputs["logprobs"].try_extract_tensor::<f32>().map_err(ort_err)?;
        if **shape != [b as i64, nq as i64, vocab as i64] {
            return Err(EngineError::Ort(format!(
                "logprobs has shape {:?}, expected [{b}, {nq}, {vocab}]",
                &**shape
            )));
        }
        for (r, row) in rows.iter().enumerate() {
            for (j, &q) in row.queries.iter().enumerate() {
                let off = (r * nq + j) * vocab;
                visit(r, q, &lp[off..off + vocab]);
            }
        }
        if !want_kv {
            return Ok(None);
        }
        let mut layers = Vec::with_capacity(m.num_layers);
        for i in 0..m.num_layers {
            let get = |name: String| -> Result<Vec<f32>, EngineError> {
                let (_, data) =
                    outputs[name.as_str()].try_extract_tensor::<f32>().map_err(ort_err)?;
                Ok(data.to_vec())
            };
            layers.push((get(format!("present.{i}.key"))?, get(format!("present.{i}.value"))?));
        }
        Ok(Some(Kv { len: total, layers }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The declared inputs/outputs of a two-layer graph with 3 key/value heads of width 64
    /// and a vocabulary of 100, against a manifest edited field by field.
    #[test]
    fn graph_and_manifest_must_agree() {
        let kv: &[i64] = &[-1, 3, -1, 64];
        let logprobs: &[i64] = &[-1, -1, 100];
        let inputs = [
            ("input_ids", Some(&[-1i64, -1][..])),
            ("past.0.key", Some(kv)),
            ("past.0.value", Some(kv)),
            ("past.1.key", Some(kv)),
            ("past.1.value", Some(kv)),
        ];
        let outputs = [("logprobs", Some(logprobs)), ("present.0.key", Some(kv))];
        let text = r#"{"format": 1, "architecture": "llama", "name": "m",
            "source": {"kind": "gguf", "path": "m.gguf", "sha256": ""}, "weights_sha256": "",
            "dtype": "f32", "vocab_size": 100, "hidden_size": 192, "num_layers": 2,
            "num_attention_heads": 3, "num_kv_heads": 3, "head_dim": 64, "context_length": 64,
            "sliding_window": null, "non_embedding_params": 1, "has_chat_template": false,
            "add_bos_token": false, "bos_token": null, "eos_token": null}"#;
        let good: Manifest = serde_json::from_str(text).expect("manifest");
        assert_eq!(graph_mismatch(&good, &inputs, &outputs), None);
        let edit = |f: fn(&mut Manifest)| {
            let mut m = good.clone();
            f(&mut m);
            graph_mismatch(&m, &inputs, &outputs).map(|(field, want, got, _)| (field, want, got))
        };
        assert_eq!(edit(|m| m.num_layers = 3), Some(("num_layers", 3, 2)));
        assert_eq!(edit(|m| m.num_kv_heads = 1), Some(("num_kv_heads", 1, 3)));
        assert_eq!(edit(|m| m.head_dim = 32), Some(("head_dim", 32, 64)));
        assert_eq!(edit(|m| m.vocab_size = 99), Some(("vocab_size", 99, 100)));
    }

    #[test]
    fn query_scores_top_k_and_logsumexp() {
        let row = [-1.0f32, -3.0, -0.5, -3.0, -10.0];
        let q = query_scores(&row, &[4, 0], 3);
        assert_eq!(&q.candidate_logprobs[..], &[-10.0, -1.0]);
        let tops: Vec<u32> = q.top.iter().map(|t| t.token).collect();
        assert_eq!(tops, [2, 0, 1], "ties broken by token id");
        let lse = row.iter().map(|&x| (x as f64).exp()).sum::<f64>().ln() as f32;
        assert!((q.logsumexp - lse).abs() < 1e-6);
        assert!(query_scores(&row, &[], 0).top.is_empty());
        assert_eq!(query_scores(&row, &[], 99).top.len(), 5);
    }
}
