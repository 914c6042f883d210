//! The scoring engine: a model folder loaded into an ONNX Runtime session
//! ([`crate::session`], [`crate::forward`]), and [`Engine::score`], which checks a
//! [`ScoreRequest`], hands its queries to the [`Scheduler`] and collects the results in
//! request order.
//!
//! Each sequence is cut after its last queried position (later tokens cannot change earlier
//! next-token distributions); the schedule ([`descry_schedule`]) decides the forward passes.
//! The graph computes every row independently of the others (and of padding), so results
//! do not depend on how sequences were batched, chunked or shared, up to float rounding
//! (the tests check 1e-4).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use abi_stable::std_types::RVec;
use descry_abi::types::{
    QueryScores, ScoreRequest, ScoreResult, ScoreStats, SequenceScores, TokenLogprob,
};
use descry_model_folder::{FolderError, Manifest, ModelFolder};

use crate::forward::OrtForward;
use crate::settings::EngineOptions;
use descry_schedule::{Job, Policy, ScheduleError, Scheduler};

/// The engine's name for its artifacts in a model folder's manifest.
pub const ARTIFACTS: &str = "onnx";

/// The graph file of the `onnx` artifacts.
pub const MODEL_FILE: &str = "model.onnx";

/// Errors of the engine; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model folder is missing, incomplete or unreadable (the message names it).
    #[error(transparent)]
    Folder(#[from] FolderError),
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
    /// The schedule failed (a bug).
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

/// A loaded model.
pub struct Engine {
    schedule: Scheduler<OrtForward>,
    folder: ModelFolder,
    options: EngineOptions,
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
    /// Loads the model folder `dir` (see `docs/model-folder.md`): its manifest, its `onnx`
    /// artifacts checked by size, the graph checked against the manifest.
    pub fn load(dir: &Path, options: &EngineOptions) -> Result<Engine, EngineError> {
        if options.token_budget == 0 {
            return Err(EngineError::Options("token_budget must be at least 1".into()));
        }
        let folder = ModelFolder::open(dir)?;
        // A missing or cut-off graph is named here, not by ONNX Runtime's parser.
        folder.check_artifacts(ARTIFACTS)?;
        let mut builder = crate::session::builder(options)?;
        let model = folder.file(MODEL_FILE);
        let session = builder
            .commit_from_file(&model)
            .map_err(|e| EngineError::Ort(format!("loading {}: {e}", model.display())))?;
        let forward = OrtForward::new(&folder, session)?;
        let policy = Policy {
            token_budget: options.token_budget,
            min_shared_prefix: options.min_shared_prefix,
            prefix_cache_tokens: options.cache_tokens(),
        };
        Ok(Engine { schedule: Scheduler::new(forward, policy), folder, options: options.clone() })
    }

    /// The model folder's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.folder.manifest
    }

    /// The model folder.
    pub fn dir(&self) -> &Path {
        &self.folder.dir
    }

    /// The options the engine was loaded with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Scores every query of every sequence; results are in request order.
    pub fn score(&self, request: &ScoreRequest) -> Result<ScoreResult, EngineError> {
        let vocab = self.folder.manifest.vocab_size;
        let mut jobs: Vec<Job<'_>> = Vec::new();
        let mut at = Vec::with_capacity(request.sequences.len());
        for (si, s) in request.sequences.iter().enumerate() {
            let bad = |reason: String| EngineError::BadRequest { sequence: si, reason };
            if s.tokens.len() > self.folder.manifest.context_length {
                return Err(bad(format!(
                    "{} tokens exceed the model's context length {}",
                    s.tokens.len(),
                    self.folder.manifest.context_length
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

        self.schedule
            .run(&jobs, &mut stats, &mut |seq, position, row| col.fill(seq, position, row))?;

        let mut sequences = RVec::with_capacity(col.out.len());
        for (si, per_query) in col.out.into_iter().enumerate() {
            let mut queries = RVec::with_capacity(per_query.len());
            for (qi, q) in per_query.into_iter().enumerate() {
                // Every query was routed to a pass; a gap would be a scheduling bug.
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
