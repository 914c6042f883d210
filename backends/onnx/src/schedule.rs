//! The schedule: which forward passes answer a request's queries, independent of the
//! runtime that computes them ([`ForwardPass`]).
//!
//! How the jobs of a request are run:
//! 1. sequences sharing a long enough prefix ([`plan::group_by_prefix`]) run the prefix once
//!    (in chunks of at most `token_budget` tokens), answer the queries inside it, and run
//!    their tails as batches on top of the prefix's past;
//! 2. the other sequences are sorted by length, right-padded and packed into batches of at
//!    most `token_budget` (padded) tokens ([`plan::pack`]); a sequence longer than the
//!    budget runs alone, in chunks, through the past.
//!
//! A shared prefix's past is kept after the call ([`PrefixCache`], at most
//! `prefix_cache_tokens` tokens): a later request whose sequences begin with it starts from
//! it (step 1 for a group, and step 2's sequences become a group on top of it), unless a
//! query reads a position inside it: **a kept prefix never hides a query**.
//!
//! **A pass holds at most the token budget**: a pass of several rows has
//! rows × (past + longest row) ≤ `token_budget`; a single row (a chunk of a sequence longer
//! than the budget, or a tail on a long prefix) has at most `token_budget` new tokens.
//!
//! Costs are counted here, once: every row's tokens are computed (the padding up to the
//! longest row counted apart), and every token of a job that a pass did not compute for it
//! (a prefix computed once for a group, or kept from an earlier call) is reused.

use std::sync::{Arc, Mutex};

use descry_abi::types::ScoreStats;

use crate::cache::PrefixCache;
use crate::plan;

/// One row of a forward pass: new tokens, and the positions (relative to them) whose
/// next-token distributions are read.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// The row's tokens, continuing the pass's past.
    pub tokens: &'a [u32],
    /// Positions in `tokens` to read, ascending.
    pub queries: &'a [usize],
}

/// A runtime that computes next-token distributions of right-padded rows on top of a
/// shared past (the key/values of the tokens before them).
///
/// A pass must compute each row independently of the others and of its padding, so that
/// results do not depend on how rows were batched, chunked or shared.
pub trait ForwardPass {
    /// What a pass leaves for later passes to continue from (key/values of its tokens).
    type Past: Send + Sync;
    /// The runtime's error; schedule errors convert into it.
    type Error: From<ScheduleError>;

    /// Runs `rows` (right-padded to the longest), each continuing from `past` (the same past
    /// for every row) or from nothing. Calls `visit(row, position, distribution)` for each
    /// query of each row (`distribution`: the vocabulary's log-probabilities for the token
    /// after `position`). With `want_past` (single-row passes only) returns the past of
    /// `past` + the row's tokens.
    fn run(
        &self,
        rows: &[Row<'_>],
        past: Option<&Self::Past>,
        want_past: bool,
        visit: &mut dyn FnMut(usize, usize, &[f32]),
    ) -> Result<Option<Self::Past>, Self::Error>;

    /// The past of the first `len` tokens of `past` (`len` ≤ its length).
    fn truncated(&self, past: &Self::Past, len: usize) -> Self::Past;
}

/// A scheduling failure: a bug, never a user's mistake.
#[derive(Debug, thiserror::Error)]
#[error("internal scheduling error: {0}")]
pub struct ScheduleError(String);

/// One sequence of a request to answer.
#[derive(Debug, Clone)]
pub struct Job<'a> {
    /// Passed back to the visitor, so results find their sequence (its index in the
    /// request).
    pub seq: usize,
    /// Tokens up to and including the last queried position (later tokens cannot change
    /// earlier distributions).
    pub tokens: &'a [u32],
    /// Distinct queried positions, ascending, each `< tokens.len()`; not empty.
    pub positions: Vec<usize>,
}

/// The scheduling knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Most padded tokens in one pass (at least 1).
    pub token_budget: usize,
    /// Sequences sharing at least this many leading tokens compute them once; `usize::MAX`
    /// turns reuse off.
    pub min_shared_prefix: usize,
    /// Tokens of shared-prefix pasts kept from one call to the next (0: none).
    pub prefix_cache_tokens: usize,
}

/// Answers jobs through a [`ForwardPass`] under a [`Policy`], keeping shared prefixes'
/// pasts from one call to the next.
pub struct Scheduler<F: ForwardPass> {
    forward: F,
    policy: Policy,
    prefixes: Mutex<PrefixCache<F::Past>>,
}

/// The visitor of answered queries: `(job.seq, position, distribution)`.
type Visit<'v> = dyn FnMut(usize, usize, &[f32]) + 'v;

impl<F: ForwardPass> Scheduler<F> {
    /// A scheduler with an empty prefix cache.
    pub fn new(forward: F, policy: Policy) -> Self {
        let prefixes = Mutex::new(PrefixCache::new(policy.prefix_cache_tokens));
        Scheduler { forward, policy, prefixes }
    }

    /// The forward pass.
    pub fn forward(&self) -> &F {
        &self.forward
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Tokens of shared prefixes kept for later calls.
    pub fn kept_tokens(&self) -> usize {
        self.cache().held_tokens()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, PrefixCache<F::Past>> {
        self.prefixes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers every queried position of every job exactly once:
    /// `visit(job.seq, position, distribution)`. Adds the costs to `stats`.
    pub fn run(
        &self,
        jobs: &[Job<'_>],
        stats: &mut ScoreStats,
        visit: &mut Visit<'_>,
    ) -> Result<(), F::Error> {
        let token_lists: Vec<&[u32]> = jobs.iter().map(|j| j.tokens).collect();
        let mut singles: Vec<usize> = Vec::new();
        for group in plan::group_by_prefix(&token_lists, self.policy.min_shared_prefix) {
            if group.prefix_len == 0 {
                singles.extend(group.members);
            } else {
                self.run_group(jobs, &group, stats, visit)?;
            }
        }
        // Sequences sharing nothing in this request may begin with a prefix kept from an
        // earlier one: those run on top of it, by prefix.
        let mut on_kept: Vec<(usize, Arc<F::Past>, Vec<usize>)> = Vec::new();
        let mut fresh: Vec<usize> = Vec::new();
        {
            let mut cache = self.cache();
            for j in singles {
                let first_query = jobs[j].positions[0];
                match cache.longest_prefix_of(
                    jobs[j].tokens,
                    self.policy.min_shared_prefix,
                    first_query,
                ) {
                    Some((len, past)) => {
                        match on_kept.iter_mut().find(|(_, p, _)| Arc::ptr_eq(p, &past)) {
                            Some((_, _, members)) => members.push(j),
                            None => on_kept.push((len, past, vec![j])),
                        }
                    }
                    None => fresh.push(j),
                }
            }
        }
        for (len, past, members) in &on_kept {
            self.run_on_prefix(jobs, members, *len, past, 0, stats, visit)?;
        }
        self.run_singles(jobs, &fresh, stats, visit)
    }

    /// Sequences sharing `group.prefix_len` leading tokens: the prefix once (from a kept
    /// part of it, if any), then the tails on top of its past.
    fn run_group(
        &self,
        jobs: &[Job<'_>],
        group: &plan::PrefixGroup,
        stats: &mut ScoreStats,
        visit: &mut Visit<'_>,
    ) -> Result<(), F::Error> {
        let l = group.prefix_len;
        let members = &group.members;
        let prefix = &jobs[members[0]].tokens[..l];
        let mut prefix_positions: Vec<usize> = members
            .iter()
            .flat_map(|&m| jobs[m].positions.iter().copied().filter(|&p| p < l))
            .collect();
        prefix_positions.sort_unstable();
        prefix_positions.dedup();
        // A prefix kept from an earlier call stands in for the tokens before the first query.
        let first_query = prefix_positions.first().copied().unwrap_or(l);
        let kept =
            self.cache().longest_prefix_of(prefix, self.policy.min_shared_prefix, first_query);
        let (start, past) = match kept {
            Some((c, past)) => (c, Some(past)),
            None => (0, None),
        };
        let past = if start == l {
            past.ok_or_else(|| ScheduleError("a kept prefix without its past".into()))?
        } else {
            let rel: Vec<usize> = prefix_positions.iter().map(|p| p - start).collect();
            Arc::new(self.run_chunked(
                &prefix[start..],
                &rel,
                past.as_deref(),
                stats,
                &mut |pos, dist| {
                    let p = start + pos;
                    for &m in members {
                        if jobs[m].positions.binary_search(&p).is_ok() {
                            visit(jobs[m].seq, p, dist);
                        }
                    }
                },
            )?)
        };
        // What later calls can start from: the whole prefix, and, when queries fall inside
        // it, its part before the first query (later sequences read their own distributions
        // from there on, even where their tokens agree with this prefix).
        {
            let mut cache = self.cache();
            cache.insert(prefix, Arc::clone(&past));
            if first_query < l && first_query >= self.policy.min_shared_prefix.max(1) {
                let before = self.forward.truncated(&past, first_query);
                cache.insert(&prefix[..first_query], Arc::new(before));
            }
        }
        self.run_on_prefix(jobs, members, l, &past, l - start, stats, visit)
    }

    /// The tails after a prefix of length `l` (whose past is `past`) of the given jobs, in
    /// batches; only positions from `l` on are read. `computed` of the prefix's tokens were
    /// run in this call; the rest of every member's prefix is reused.
    #[allow(clippy::too_many_arguments)]
    fn run_on_prefix(
        &self,
        jobs: &[Job<'_>],
        members: &[usize],
        l: usize,
        past: &F::Past,
        computed: usize,
        stats: &mut ScoreStats,
        visit: &mut Visit<'_>,
    ) -> Result<(), F::Error> {
        // The one place reuse is counted.
        stats.tokens_reused += (members.len() * l - computed) as u64;
        // Members with queries past the prefix continue from its past.
        let tails: Vec<(usize, Vec<usize>)> = members
            .iter()
            .filter_map(|&m| {
                let rel: Vec<usize> =
                    jobs[m].positions.iter().filter(|&&p| p >= l).map(|p| p - l).collect();
                (!rel.is_empty()).then_some((m, rel))
            })
            .collect();
        let lengths: Vec<usize> = tails.iter().map(|(m, _)| jobs[*m].tokens.len() - l).collect();
        let budget = self.policy.token_budget;
        // Each row carries its own copy of the shared past, and attention spans it: count it
        // in full, so that a pass never holds more than the budget's tokens.
        for batch in plan::pack(&lengths, l, budget) {
            if batch.len() == 1 && lengths[batch[0]] > budget {
                let (m, rel) = &tails[batch[0]];
                let seq = jobs[*m].seq;
                self.run_chunked(&jobs[*m].tokens[l..], rel, Some(past), stats, &mut |pos, d| {
                    visit(seq, l + pos, d)
                })?;
                continue;
            }
            let rows: Vec<Row<'_>> = batch
                .iter()
                .map(|&i| Row { tokens: &jobs[tails[i].0].tokens[l..], queries: &tails[i].1 })
                .collect();
            self.pass(&rows, Some(past), false, stats, &mut |r, pos, d| {
                visit(jobs[tails[batch[r]].0].seq, l + pos, d)
            })?;
        }
        Ok(())
    }

    /// Jobs sharing nothing: sorted by length and packed into padded batches.
    fn run_singles(
        &self,
        jobs: &[Job<'_>],
        singles: &[usize],
        stats: &mut ScoreStats,
        visit: &mut Visit<'_>,
    ) -> Result<(), F::Error> {
        let lengths: Vec<usize> = singles.iter().map(|&j| jobs[j].tokens.len()).collect();
        let budget = self.policy.token_budget;
        for batch in plan::pack(&lengths, 0, budget) {
            if batch.len() == 1 && lengths[batch[0]] > budget {
                let job = &jobs[singles[batch[0]]];
                self.run_chunked(job.tokens, &job.positions, None, stats, &mut |pos, d| {
                    visit(job.seq, pos, d)
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
            self.pass(&rows, None, false, stats, &mut |r, pos, d| {
                visit(jobs[singles[batch[r]]].seq, pos, d)
            })?;
        }
        Ok(())
    }

    /// One sequence in chunks of at most `token_budget` tokens, carrying the past from
    /// chunk to chunk (starting from `past`). `visit(position, distribution)` sees each
    /// queried position (relative to `tokens`). Returns the past of `past` + all of `tokens`.
    fn run_chunked(
        &self,
        tokens: &[u32],
        positions: &[usize],
        past: Option<&F::Past>,
        stats: &mut ScoreStats,
        visit: &mut dyn FnMut(usize, &[f32]),
    ) -> Result<F::Past, F::Error> {
        let mut kv: Option<F::Past> = None;
        let mut start = 0;
        let budget = self.policy.token_budget;
        while start < tokens.len() {
            let end = (start + budget).min(tokens.len());
            let rel: Vec<usize> =
                positions.iter().filter(|&&p| p >= start && p < end).map(|p| p - start).collect();
            let row = Row { tokens: &tokens[start..end], queries: &rel };
            let next = self.pass(
                std::slice::from_ref(&row),
                kv.as_ref().or(past),
                true,
                stats,
                &mut |_, pos, d| visit(start + pos, d),
            )?;
            kv = Some(next.ok_or_else(|| ScheduleError("a pass returned no past".into()))?);
            start = end;
        }
        Ok(kv.ok_or_else(|| ScheduleError("an empty sequence has no past".into()))?)
    }

    /// One forward pass, its tokens counted.
    fn pass(
        &self,
        rows: &[Row<'_>],
        past: Option<&F::Past>,
        want_past: bool,
        stats: &mut ScoreStats,
        visit: &mut dyn FnMut(usize, usize, &[f32]),
    ) -> Result<Option<F::Past>, F::Error> {
        let longest = rows.iter().map(|r| r.tokens.len()).max().unwrap_or(0);
        for r in rows {
            stats.tokens_computed += r.tokens.len() as u64;
            stats.tokens_padding += (longest - r.tokens.len()) as u64;
        }
        self.forward.run(rows, past, want_past, visit)
    }
}

#[cfg(test)]
mod tests;
