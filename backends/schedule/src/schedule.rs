//! The schedule: which forward passes answer a request's queries, independent of the
//! runtime that computes them ([`ForwardPass`]).
//!
//! A request's jobs form a radix tree ([`Trie`]): each node is a run of tokens its jobs
//! share. The tree runs depth first: a node's children run as rows on top of its past (the
//! key/values of every token before them), packed under the token budget
//! ([`pack::pack`]); a child with children of its own asks for its row's past and is
//! descended into next. So **each node is computed once**: the tokens computed are the
//! distinct prefixes of the request's sequences, the exact lower bound (less what was kept
//! from an earlier call), unless `min_shared_prefix` folds a short node into its children.
//!
//! **One past at a time.** Only the past of the node being extended is held: a child's past
//! replaces its parent's, and returning to a parent cuts the current past back to the
//! parent's length ([`ForwardPass::truncated`]; key/values of a prefix are the leading
//! part of any longer one). Besides one pass's rows, memory holds one path of key/values and
//! the kept prefixes, whatever the number of sequences.
//!
//! **Kept prefixes.** When a call ends, the past of its last sequence (in token order) is
//! kept ([`PrefixCache`], at most `prefix_cache_tokens` tokens; a longer past is cut to
//! that). The next call takes the kept entry that covers most of its tree: that path's nodes
//! are not computed again. Requests come in token order (the host sorts a unit's
//! sequences), and the next request shares most with the last sequence of the one before,
//! so requests cut anywhere compute what one request would. **A kept prefix never hides a
//! query**: a queried token on a kept path is computed (one token on the kept past before
//! it), so its distribution is read; the kept past serves the tokens around it.
//!
//! **A pass holds at most the token budget**: a pass of several rows has
//! rows × (past + longest row) ≤ `token_budget`; a single row has at most `token_budget`
//! new tokens (a longer node is cut into a chain).
//!
//! Costs are counted here, once: every row's tokens are computed (the padding up to the
//! longest row counted apart), and every token of a job that no pass of this call computed
//! for it (shared with another job, or kept from an earlier call) is reused.

use std::sync::{Arc, Mutex};

use descry_abi::types::ScoreStats;

use crate::cache::PrefixCache;
use crate::pack;
use crate::trie::Trie;

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
    /// after `position`). With `keep = Some(r)` returns the past of `past` + row `r`'s
    /// tokens (without its padding).
    fn run(
        &self,
        rows: &[Row<'_>],
        past: Option<&Self::Past>,
        keep: Option<usize>,
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
    /// A run of tokens that several sequences share is computed once when it is at least
    /// this long (shorter ones are recomputed in each sequence, saving a pass); `usize::MAX`
    /// turns reuse off (every sequence computed whole: the naive method).
    pub min_shared_prefix: usize,
    /// Tokens of pasts kept from one call to the next (0: none).
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
        if jobs.is_empty() {
            return Ok(());
        }
        let share = self.policy.min_shared_prefix != usize::MAX;
        let mut trie = Trie::build(jobs, share);
        let mut kept: Option<Arc<F::Past>> = None;
        if share {
            let found = self.cache().best_by(|tokens| trie.reach(jobs, tokens));
            if let Some((n, tokens, past)) = found {
                trie.keep(jobs, &tokens[..n]);
                kept = Some(past);
            }
            trie.fold_short(self.policy.min_shared_prefix);
        }
        trie.cut_long(self.policy.token_budget);
        let before = stats.tokens_computed;
        let end = self.run_tree(jobs, &trie, kept.as_deref(), stats, visit)?;
        let total: u64 = jobs.iter().map(|j| j.tokens.len() as u64).sum();
        stats.tokens_reused += total.saturating_sub(stats.tokens_computed - before);
        if let (true, Some((past, tokens))) = (share, end) {
            // Longer than the cache holds: its beginning still serves the next request.
            let room = self.policy.prefix_cache_tokens;
            if tokens.len() > room && room > 0 {
                let head = self.forward.truncated(&past, room);
                self.cache().insert(&tokens[..room], Arc::new(head));
            } else {
                self.cache().insert(tokens, Arc::new(past));
            }
        }
        Ok(())
    }

    /// What runs under `node` (whose past has `past_len` tokens): passes of its children
    /// packed under the budget, those with no children first; then, in token order, each
    /// child with children (a pass that keeps its row's past, with leaves beside it) and
    /// the kept child. The tree's last leaf (`last_leaf`) is carried like a child with
    /// children, so the call ends on the past of its whole last sequence.
    fn items(
        &self,
        trie: &Trie,
        node: usize,
        past_len: usize,
        last_leaf: Option<usize>,
    ) -> Vec<Item> {
        let children = &trie.nodes[node].children;
        let computed: Vec<usize> =
            children.iter().copied().filter(|&c| !trie.nodes[c].kept).collect();
        let lengths: Vec<usize> = computed.iter().map(|&c| trie.nodes[c].len()).collect();
        let mut leaves_only = Vec::new();
        let mut descending: Vec<(usize, Item)> = Vec::new();
        for batch in pack::pack(&lengths, past_len, self.policy.token_budget) {
            let (inner, leaves): (Vec<usize>, Vec<usize>) = batch
                .into_iter()
                .map(|i| computed[i])
                .partition(|&c| !trie.nodes[c].children.is_empty() || Some(c) == last_leaf);
            match inner.split_first() {
                None => leaves_only.push(Item::Pass { rows: leaves, carry: None }),
                Some((&first, others)) => {
                    let mut rows = vec![first];
                    rows.extend(leaves);
                    descending.push((first, Item::Pass { rows, carry: Some(first) }));
                    for &c in others {
                        descending.push((c, Item::Pass { rows: vec![c], carry: Some(c) }));
                    }
                }
            }
        }
        for &c in children.iter().filter(|&&c| trie.nodes[c].kept) {
            descending.push((c, Item::Kept(c)));
        }
        let rank = |c: usize| children.iter().position(|&x| x == c).unwrap_or(usize::MAX);
        descending.sort_by_key(|(c, _)| rank(*c));
        leaves_only.extend(descending.into_iter().map(|(_, item)| item));
        leaves_only
    }

    /// Runs the tree depth first (see the module's documentation). Returns the past the run
    /// ended on, with its tokens, for later calls.
    fn run_tree<'j>(
        &self,
        jobs: &'j [Job<'_>],
        trie: &Trie,
        kept: Option<&F::Past>,
        stats: &mut ScoreStats,
        visit: &mut Visit<'_>,
    ) -> Result<Option<Ended<'j, F::Past>>, F::Error> {
        let nodes = &trie.nodes;
        // The last leaf in token order: the next request (they come in token order) shares
        // most with its sequence, so its whole past is what this call ends on and keeps.
        // (Nothing to keep without a prefix cache.)
        let mut leaf = 0;
        while let Some(&c) = nodes[leaf].children.last() {
            leaf = c;
        }
        let last_leaf = (self.policy.prefix_cache_tokens > 0).then_some(leaf);
        // The past held: of `cur_len` tokens, those of `jobs[nodes[cur_node].rep]`.
        let mut cur: Option<F::Past> = None;
        let (mut cur_len, mut cur_node) = (0usize, 0usize);
        let mut stack = vec![Frame { len: 0, items: self.items(trie, 0, 0, last_leaf), next: 0 }];
        while let Some(frame) = stack.last_mut() {
            let Some(item) = frame.items.get(frame.next).cloned() else {
                stack.pop();
                continue;
            };
            frame.next += 1;
            let len = frame.len;
            // Back from a descendant: its past begins with this node's.
            if cur_len != len {
                let longer = cur
                    .as_ref()
                    .filter(|_| cur_len > len)
                    .ok_or_else(|| ScheduleError("a node's past went missing".into()))?;
                cur = (len > 0).then(|| self.forward.truncated(longer, len));
                cur_len = len;
            }
            let (child, past) = match item {
                Item::Kept(c) => {
                    let kept =
                        kept.ok_or_else(|| ScheduleError("a kept node without its past".into()))?;
                    (c, Some(self.forward.truncated(kept, nodes[c].end)))
                }
                Item::Pass { rows, carry } => {
                    let queries: Vec<Vec<usize>> = rows
                        .iter()
                        .map(|&c| nodes[c].queries.iter().map(|(q, _)| *q).collect())
                        .collect();
                    let row_list: Vec<Row<'_>> = rows
                        .iter()
                        .zip(&queries)
                        .map(|(&c, q)| Row { tokens: nodes[c].tokens(jobs), queries: q })
                        .collect();
                    let keep = carry.and_then(|c| rows.iter().position(|&r| r == c));
                    let out =
                        self.pass(&row_list, cur.as_ref(), keep, stats, &mut |r, pos, dist| {
                            let node = &nodes[rows[r]];
                            if let Ok(i) = node.queries.binary_search_by_key(&pos, |(q, _)| *q) {
                                for &j in &node.queries[i].1 {
                                    visit(jobs[j].seq, node.start + pos, dist);
                                }
                            }
                        })?;
                    match carry {
                        None => continue,
                        Some(c) => (
                            c,
                            Some(out.ok_or_else(|| ScheduleError("a pass kept no past".into()))?),
                        ),
                    }
                }
            };
            cur = past;
            cur_len = nodes[child].end;
            cur_node = child;
            let items = self.items(trie, child, cur_len, last_leaf);
            stack.push(Frame { len: cur_len, items, next: 0 });
        }
        Ok(cur.map(|past| (past, &jobs[nodes[cur_node].rep].tokens[..cur_len])))
    }

    /// One forward pass, its tokens counted.
    fn pass(
        &self,
        rows: &[Row<'_>],
        past: Option<&F::Past>,
        keep: Option<usize>,
        stats: &mut ScoreStats,
        visit: &mut dyn FnMut(usize, usize, &[f32]),
    ) -> Result<Option<F::Past>, F::Error> {
        let longest = rows.iter().map(|r| r.tokens.len()).max().unwrap_or(0);
        for r in rows {
            stats.tokens_computed += r.tokens.len() as u64;
            stats.tokens_padding += (longest - r.tokens.len()) as u64;
        }
        self.forward.run(rows, past, keep, visit)
    }
}

/// The past a run ended on, with its tokens.
type Ended<'j, P> = (P, &'j [u32]);

/// One step under a node.
#[derive(Debug, Clone)]
enum Item {
    /// Children as rows of one pass on the node's past; `carry` (one of them, with children
    /// of its own) keeps its past and is descended into after the pass.
    Pass { rows: Vec<usize>, carry: Option<usize> },
    /// The kept child: its past is cut from the kept prefix, and it is descended into.
    Kept(usize),
}

/// A node being run: its past's length and what remains under it.
struct Frame {
    len: usize,
    items: Vec<Item>,
    next: usize,
}

#[cfg(test)]
mod tests;
