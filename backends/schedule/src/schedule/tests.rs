//! The schedule on a fake forward pass whose distribution at a position is a function of the
//! tokens up to it (so every answer is checkable) and which records every pass's shape.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

const VOCAB: usize = 8;

/// What the fake saw of one pass.
#[derive(Debug, Clone, Copy)]
struct PassShape {
    rows: usize,
    past: usize,
    longest: usize,
    /// Pasts alive when the pass began (held by the scheduler or its cache).
    live: isize,
}

/// The fake's past: the tokens it covers, counted alive in its fake's `live`.
#[derive(Debug)]
struct Past(Vec<u32>, Arc<AtomicIsize>);

impl Past {
    fn new(tokens: Vec<u32>, live: &Arc<AtomicIsize>) -> Past {
        live.fetch_add(1, Ordering::SeqCst);
        Past(tokens, Arc::clone(live))
    }
}

impl Drop for Past {
    fn drop(&mut self) {
        self.1.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A forward pass whose past is the tokens it covers and whose next-token distribution is a
/// hash of the sequence up to the position: correct only if the past really is the
/// sequence's beginning. Records every pass's shape and every prefix it computed.
#[derive(Default)]
struct Fake {
    passes: Mutex<Vec<PassShape>>,
    computed: Mutex<Vec<Vec<u32>>>,
    /// Pasts alive (held by the scheduler or its cache).
    live: Arc<AtomicIsize>,
}

/// The "distribution" after `prefix` (any deterministic function of all of it will do).
fn dist(prefix: &[u32]) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &t in prefix {
        h = (h ^ u64::from(t)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..VOCAB as u64).map(|v| -(((h >> (v * 7)) & 0x7f) as f32) / 16.0).collect()
}

impl ForwardPass for Fake {
    type Past = Past;
    type Error = ScheduleError;

    fn run(
        &self,
        rows: &[Row<'_>],
        past: Option<&Past>,
        keep: Option<usize>,
        visit: &mut dyn FnMut(usize, usize, &[f32]),
    ) -> Result<Option<Past>, ScheduleError> {
        assert!(!rows.is_empty(), "a pass without rows");
        let live = self.live.load(Ordering::SeqCst);
        let past: &[u32] = past.map_or(&[], |p| p.0.as_slice());
        let longest = rows.iter().map(|r| r.tokens.len()).max().unwrap_or(0);
        self.passes.lock().unwrap().push(PassShape {
            rows: rows.len(),
            past: past.len(),
            longest,
            live,
        });
        for (r, row) in rows.iter().enumerate() {
            assert!(!row.tokens.is_empty(), "an empty row");
            assert!(row.queries.windows(2).all(|w| w[0] < w[1]), "queries not ascending");
            let full: Vec<u32> = past.iter().chain(row.tokens).copied().collect();
            let mut computed = self.computed.lock().unwrap();
            for end in past.len() + 1..=full.len() {
                computed.push(full[..end].to_vec());
            }
            for &q in row.queries {
                assert!(q < row.tokens.len(), "query {q} outside its row");
                visit(r, q, &dist(&full[..past.len() + q + 1]));
            }
        }
        Ok(keep
            .map(|r| Past::new(past.iter().chain(rows[r].tokens).copied().collect(), &self.live)))
    }

    fn truncated(&self, past: &Past, len: usize) -> Past {
        Past::new(past.0[..len].to_vec(), &self.live)
    }
}

/// Distinct prefixes of the jobs' tokens: the trie minimum.
fn distinct_prefixes(jobs: &[Job<'_>]) -> usize {
    let mut all: Vec<&[u32]> =
        jobs.iter().flat_map(|j| (1..=j.tokens.len()).map(|e| &j.tokens[..e])).collect();
    all.sort_unstable();
    all.dedup();
    all.len()
}

/// A request's sequence: tokens and queried positions.
type Seq = (Vec<u32>, Vec<usize>);

fn jobs(seqs: &[Seq]) -> Vec<Job<'_>> {
    seqs.iter()
        .enumerate()
        .filter_map(|(seq, (tokens, positions))| {
            let mut positions = positions.clone();
            positions.sort_unstable();
            positions.dedup();
            let last = *positions.last()?;
            Some(Job { seq, tokens: &tokens[..=last], positions })
        })
        .collect()
}

fn scheduler(budget: usize, min_shared: usize, cache: usize) -> Scheduler<Fake> {
    let policy =
        Policy { token_budget: budget, min_shared_prefix: min_shared, prefix_cache_tokens: cache };
    Scheduler::new(Fake::default(), policy)
}

/// Runs one request and checks every invariant; returns its stats.
fn run_checked(s: &Scheduler<Fake>, seqs: &[Seq]) -> ScoreStats {
    s.forward().passes.lock().unwrap().clear();
    s.forward().computed.lock().unwrap().clear();
    let jobs = jobs(seqs);
    let mut stats = ScoreStats::default();
    let mut answers: BTreeMap<(usize, usize), Vec<Vec<f32>>> = BTreeMap::new();
    s.run(&jobs, &mut stats, &mut |seq, pos, d| {
        answers.entry((seq, pos)).or_default().push(d.to_vec())
    })
    .expect("the schedule runs");

    // Every queried position answered exactly once, nothing else, each with the
    // distribution of its own sequence up to it (what running the sequence alone gives):
    // so no kept or shared prefix ever covered a query.
    let mut wanted = 0;
    for job in &jobs {
        for &p in &job.positions {
            wanted += 1;
            let got = answers.get(&(job.seq, p)).map_or(&[][..], Vec::as_slice);
            assert_eq!(
                got.len(),
                1,
                "sequence {} position {p} answered {} times",
                job.seq,
                got.len()
            );
            assert_eq!(got[0], dist(&job.tokens[..=p]), "sequence {} position {p}", job.seq);
        }
    }
    assert_eq!(answers.len(), wanted, "answers for positions nobody queried");

    // Every token of every job is computed or reused, never both, never neither.
    let total: usize = jobs.iter().map(|j| j.tokens.len()).sum();
    assert_eq!(stats.tokens_computed + stats.tokens_reused, total as u64, "{stats:?}");

    // The token budget: several rows hold rows × (past + longest) ≤ budget; a single row
    // (a chunk, or a tail on a long prefix) at most the budget of new tokens.
    let budget = s.policy().token_budget;
    let passes = s.forward().passes.lock().unwrap().clone();
    let mut padded = 0;
    for p in &passes {
        if p.rows > 1 {
            assert!(p.rows * (p.past + p.longest) <= budget, "{p:?} over budget {budget}");
        } else {
            assert!(p.longest <= budget, "{p:?}: a chunk over budget {budget}");
        }
        padded += p.rows * p.longest;
    }
    assert_eq!(stats.tokens_computed + stats.tokens_padding, padded as u64, "{passes:?}");
    assert!(s.kept_tokens() <= s.policy().prefix_cache_tokens, "prefix cache over its budget");

    // Each distinct prefix computed at most once, and, with nothing folded or kept, exactly
    // the trie minimum; with reuse off, every token of every job (the naive method).
    let computed = s.forward().computed.lock().unwrap().clone();
    let mut distinct = computed.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let min_shared = s.policy().min_shared_prefix;
    if min_shared == usize::MAX {
        assert_eq!(stats.tokens_computed, total as u64, "reuse off computes every token");
    } else if min_shared <= 1 {
        assert_eq!(distinct.len(), computed.len(), "a prefix computed twice");
        assert!(computed.len() <= distinct_prefixes(&jobs));
        if s.policy().prefix_cache_tokens == 0 {
            assert_eq!(computed.len(), distinct_prefixes(&jobs), "more than the trie minimum");
        }
    }
    // One past held at a time (besides the kept ones, none without a cache).
    if s.policy().prefix_cache_tokens == 0 {
        for p in &passes {
            assert!(p.live <= 1, "{p:?}: more than one past held");
        }
    }
    stats
}

fn seq(tokens: impl IntoIterator<Item = u32>, positions: &[usize]) -> Seq {
    (tokens.into_iter().collect(), positions.to_vec())
}

#[test]
fn edge_cases() {
    let s = scheduler(16, 4, 64);
    // Nothing to do: no pass.
    let stats = run_checked(&s, &[]);
    assert_eq!(stats, ScoreStats::default());
    assert!(s.forward().passes.lock().unwrap().is_empty());
    assert_eq!(run_checked(&s, &[seq([1, 2, 3], &[])]), ScoreStats::default());
    // A query at position 0; tokens after the last query are not run.
    let stats = run_checked(&s, &[seq([5], &[0]), seq([6, 7, 8, 9], &[0])]);
    assert_eq!((stats.tokens_computed, stats.tokens_reused), (2, 0));
    // Identical sequences: the whole sequence is shared, every copy answered.
    let same = seq(10..22, &[3, 7, 11]);
    let stats = run_checked(&s, &[same.clone(), same.clone(), same]);
    assert_eq!((stats.tokens_computed, stats.tokens_reused), (12, 24));
    // Longer than the budget: alone, in chunks, each answered from the right past.
    let long = seq(100..150, &[0, 15, 16, 31, 49]);
    let stats = run_checked(&scheduler(16, 4, 0), &[long.clone(), seq([1, 2], &[1])]);
    assert_eq!(stats.tokens_computed, 52);
    // The same tokens as a tail after a shared prefix longer than the budget.
    let mut twin = long.clone();
    twin.0[49] = 7;
    run_checked(&scheduler(16, 4, 0), &[long, twin]);
}

#[test]
fn a_kept_prefix_serves_around_the_queries_inside_it() {
    let s = scheduler(64, 4, 1000);
    let stem: Vec<u32> = (0..40).collect();
    let tail = |t: u32| stem.iter().copied().chain([t, t + 1]).collect::<Vec<u32>>();
    // Two sequences share the 40-token stem (queries only after it): computed once, and
    // the call ends on its past, which is kept.
    let stats = run_checked(&s, &[seq(tail(500), &[41]), seq(tail(600), &[41])]);
    assert_eq!((stats.tokens_computed, stats.tokens_reused), (44, 40));
    // Later, a lone sequence on the stem starts from it ...
    let stats = run_checked(&s, &[seq(tail(700), &[40, 41])]);
    assert_eq!((stats.tokens_reused, stats.tokens_computed), (40, 2));
    // ... but a query inside it is computed (its one token, on the kept past before it):
    // a query's distribution is always computed, the rest of the stem is still kept.
    let stats = run_checked(&s, &[seq(tail(800), &[20, 41])]);
    assert_eq!((stats.tokens_reused, stats.tokens_computed), (39, 3));
    // Two sequences sharing the stem, one querying inside it: that token is computed
    // once, the two tails after the kept stem.
    let stats = run_checked(&s, &[seq(tail(900), &[10, 41]), seq(tail(910), &[41])]);
    assert_eq!((stats.tokens_computed, stats.tokens_reused), (1 + 4, 84 - 5));
    // Queries at the stem's first and last tokens and next to each other.
    let stats = run_checked(&s, &[seq(tail(930), &[0, 1, 39, 41])]);
    assert_eq!((stats.tokens_computed, stats.tokens_reused), (3 + 2, 42 - 5));
    // The whole stem is still kept.
    let stats = run_checked(&s, &[seq(tail(920), &[41])]);
    assert_eq!((stats.tokens_computed, stats.tokens_reused), (2, 40));
    // Each call kept the past of its last sequence (42 tokens; none begins another).
    assert_eq!(s.kept_tokens(), 6 * 42);
}

/// Consecutive requests in token order continue where the last stopped: an episode's
/// prompts split over two calls cost what one call would.
#[test]
fn requests_in_token_order_continue_from_the_kept_path() {
    let rules: Vec<u32> = (0..30).collect();
    // Prompt k: the rules, the history of k rounds (3 tokens each), a 4-token question.
    let prompt = |k: u32| -> Vec<u32> {
        let mut p = rules.clone();
        for r in 0..k {
            p.extend([100 + r, 200 + r, 300 + r]);
        }
        p.extend([900, 901, 902, 903 + k]);
        p
    };
    let mut seqs: Vec<Seq> = (0..8)
        .map(|k| {
            let p = prompt(k);
            let last = p.len() - 1;
            (p, vec![last])
        })
        .collect();
    seqs.sort();
    let whole = {
        let s = scheduler(256, 1, 0);
        run_checked(&s, &seqs).tokens_computed
    };
    let s = scheduler(256, 1, 1000);
    let (first, second) = seqs.split_at(4);
    let split = run_checked(&s, first).tokens_computed + run_checked(&s, second).tokens_computed;
    assert_eq!(split, whole, "two calls computed more than one");
    let all: Vec<Job<'_>> = jobs(&seqs);
    assert_eq!(whole as usize, distinct_prefixes(&all));
}

/// Hand-made sequences whose tree is known: every node computed once, in as many passes as
/// the tree needs.
#[test]
fn a_small_tree_runs_each_node_once() {
    // Tree: [1 2 3] → { [4 5] → { [6] (q), [7] (q) }, [8 8] (q) }, and [9 9 9] (q) alone; a
    // query inside [1 2 3] at position 1 from the first sequence.
    let seqs = vec![
        seq([1, 2, 3, 4, 5, 6], &[1, 5]),
        seq([1, 2, 3, 4, 5, 7], &[5]),
        seq([1, 2, 3, 8, 8], &[4]),
        seq([9, 9, 9], &[2]),
    ];
    let s = scheduler(64, 1, 0);
    let stats = run_checked(&s, &seqs);
    // Nodes: [1 2 3], [4 5], [6], [7], [8 8], [9 9 9]: 3 + 2 + 1 + 1 + 2 + 3 tokens.
    assert_eq!(stats.tokens_computed, 12);
    assert_eq!(stats.tokens_reused, (6 + 6 + 5 + 3) - 12);
    // Passes: the root's children ([9 9 9] beside [1 2 3], which is carried), [8 8] beside
    // [4 5] (carried), then [6] and [7] together.
    let passes = s.forward().passes.lock().unwrap().clone();
    let shapes: Vec<(usize, usize)> = passes.iter().map(|p| (p.rows, p.past)).collect();
    assert_eq!(shapes, vec![(2, 0), (2, 3), (2, 5)], "{passes:?}");
}

/// Folding: a shared run shorter than `min_shared_prefix` is recomputed in each child.
#[test]
fn short_shared_runs_fold_into_their_children() {
    let seqs = vec![seq([1, 2, 3, 4], &[3]), seq([1, 2, 5, 6], &[3])];
    let stats = run_checked(&scheduler(64, 3, 0), &seqs);
    assert_eq!((stats.tokens_computed, stats.tokens_reused), (8, 0));
    let stats = run_checked(&scheduler(64, 2, 0), &seqs);
    assert_eq!((stats.tokens_computed, stats.tokens_reused), (6, 2));
}

#[test]
fn reuse_off_computes_every_token() {
    let s = scheduler(32, usize::MAX, 1000);
    let stem: Vec<u32> = (0..20).collect();
    let seqs: Vec<Seq> =
        (0..5).map(|k| seq(stem.iter().copied().chain([k, k + 1, k + 2]), &[5, 21, 22])).collect();
    for _ in 0..2 {
        let stats = run_checked(&s, &seqs);
        assert_eq!((stats.tokens_computed, stats.tokens_reused), (5 * 23, 0));
    }
    assert_eq!(s.kept_tokens(), 0);
}

/// A small deterministic generator (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

/// Many random requests (sequences from a few shared stems, random tails and queries) under
/// random budgets, sharing thresholds and cache sizes, several calls per scheduler so kept
/// prefixes are exercised: every invariant holds in every call.
#[test]
fn random_requests_keep_every_invariant() {
    let mut rng = Lcg(42);
    for _ in 0..400 {
        let budget = 1 + rng.below(48);
        let min_shared = [1, 1, 2, 4, 8, usize::MAX][rng.below(6)];
        let cache = [0, 8, 40, 1000][rng.below(4)];
        let s = scheduler(budget, min_shared, cache);
        let stems: Vec<Vec<u32>> =
            (0..3).map(|k| (0..rng.below(40)).map(|i| (k * 100 + i) as u32).collect()).collect();
        for _ in 0..4 {
            let n = rng.below(7);
            let seqs: Vec<Seq> = (0..n)
                .map(|_| {
                    let stem = &stems[rng.below(3)];
                    let cut = rng.below(stem.len() + 1);
                    let mut tokens: Vec<u32> = stem[..cut].to_vec();
                    let extra = rng.below(20);
                    tokens.extend((0..extra).map(|_| 1000 + rng.below(3) as u32));
                    if tokens.is_empty() {
                        tokens.push(7);
                    }
                    let queries: Vec<usize> =
                        (0..rng.below(4)).map(|_| rng.below(tokens.len())).collect();
                    (tokens, queries)
                })
                .collect();
            run_checked(&s, &seqs);
        }
    }
}

/// A past longer than the prefix cache is kept cut to the cache's size: its beginning still
/// serves the next request.
#[test]
fn a_past_longer_than_the_cache_keeps_its_beginning() {
    let s = scheduler(64, 1, 30);
    let stem: Vec<u32> = (0..40).collect();
    let tail = |t: u32| stem.iter().copied().chain([t; 10]).collect::<Vec<u32>>();
    assert_eq!(run_checked(&s, &[seq(tail(500), &[49])]).tokens_computed, 50);
    assert_eq!(s.kept_tokens(), 30);
    let stats = run_checked(&s, &[seq(tail(600), &[49])]);
    assert_eq!((stats.tokens_computed, stats.tokens_reused), (20, 30));
}

/// A unit's prompts (a game's rules, then an episode's history growing a line per round,
/// then the question), sorted and cut into requests anywhere: the requests together compute
/// exactly the trie minimum of the whole unit, as one request would. The next request
/// shares most with the last sequence of the one before (token order), whose whole past is
/// kept, however few of its siblings that request held.
#[test]
fn requests_cut_anywhere_compute_the_trie_minimum_of_the_whole() {
    let mut rng = Lcg(7);
    for _ in 0..200 {
        let games = 1 + rng.below(3) as u32;
        let mut seqs: Vec<Seq> = Vec::new();
        // Native prompts (one sequence per decision, the question last) or transcripts (one
        // sequence per episode, a query after each round's question, so a kept prefix holds
        // the queries of episodes that began alike).
        let transcript = rng.below(2) == 1;
        for _ in 0..2 + rng.below(6) {
            let game = rng.below(games as usize) as u32;
            let mut history: Vec<u32> = (0..20).map(|i| 1000 * (game + 1) + i).collect();
            let mut queries = Vec::new();
            for round in 0..10u32 {
                if transcript {
                    history.extend([5000, 5001 + round]);
                    queries.push(history.len() - 1);
                } else {
                    let prompt: Vec<u32> =
                        history.iter().copied().chain([5000, 5001 + round]).collect();
                    let last = prompt.len() - 1;
                    seqs.push((prompt, vec![last]));
                }
                history.extend([100 + round, 200 + rng.below(2) as u32]);
            }
            if transcript {
                seqs.push((history, queries));
            }
        }
        seqs.sort();
        seqs.dedup();
        let minimum = distinct_prefixes(&jobs(&seqs)) as u64;
        let s = scheduler(1 + rng.below(64), 1, 100_000);
        let mut computed = 0;
        // A query's distribution is not kept: a queried token that a request shares with
        // the last sequence of the one before is computed again (one token each).
        let mut queried_again = 0;
        let mut last: Option<&[u32]> = None;
        let mut rest = &seqs[..];
        while !rest.is_empty() {
            let (request, next) = rest.split_at(1 + rng.below(rest.len().min(12)));
            computed += run_checked(&s, request).tokens_computed;
            let request_jobs = jobs(request);
            if let Some(before) = last {
                let shared = |j: &Job<'_>| crate::trie::common_prefix(j.tokens, before);
                queried_again += request_jobs
                    .iter()
                    .map(|j| j.positions.iter().filter(|&&p| p < shared(j)).count() as u64)
                    .sum::<u64>();
            }
            last = request_jobs.iter().max_by_key(|j| j.tokens).map(|j| j.tokens);
            rest = next;
        }
        if !transcript {
            assert_eq!(queried_again, 0, "native prompts query their last token only");
        }
        assert!(
            computed <= minimum + queried_again,
            "requests computed {computed}: more than the trie minimum {minimum} and \
             {queried_again} queried tokens"
        );
    }
}
