//! The schedule on a fake forward pass whose distribution at a position is a function of the
//! tokens up to it (so every answer is checkable) and which records every pass's shape.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;

const VOCAB: usize = 8;

/// What the fake saw of one pass.
#[derive(Debug, Clone, Copy)]
struct PassShape {
    rows: usize,
    past: usize,
    longest: usize,
}

/// A forward pass whose past is the tokens it covers and whose next-token distribution is a
/// hash of the sequence up to the position: correct only if the past really is the
/// sequence's beginning.
#[derive(Default)]
struct Fake {
    passes: Mutex<Vec<PassShape>>,
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
    type Past = Vec<u32>;
    type Error = ScheduleError;

    fn run(
        &self,
        rows: &[Row<'_>],
        past: Option<&Vec<u32>>,
        want_past: bool,
        visit: &mut dyn FnMut(usize, usize, &[f32]),
    ) -> Result<Option<Vec<u32>>, ScheduleError> {
        assert!(!rows.is_empty(), "a pass without rows");
        assert!(!want_past || rows.len() == 1, "the past is asked of single-row passes only");
        let past: &[u32] = past.map_or(&[], Vec::as_slice);
        let longest = rows.iter().map(|r| r.tokens.len()).max().unwrap_or(0);
        self.passes.lock().unwrap().push(PassShape { rows: rows.len(), past: past.len(), longest });
        for (r, row) in rows.iter().enumerate() {
            assert!(!row.tokens.is_empty(), "an empty row");
            let full: Vec<u32> = past.iter().chain(row.tokens).copied().collect();
            for &q in row.queries {
                assert!(q < row.tokens.len(), "query {q} outside its row");
                visit(r, q, &dist(&full[..past.len() + q + 1]));
            }
        }
        Ok(want_past.then(|| past.iter().chain(rows[0].tokens).copied().collect()))
    }

    fn truncated(&self, past: &Vec<u32>, len: usize) -> Vec<u32> {
        past[..len].to_vec()
    }
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
fn a_kept_prefix_is_used_only_before_the_first_query() {
    let s = scheduler(64, 4, 1000);
    let stem: Vec<u32> = (0..40).collect();
    let tail = |t: u32| stem.iter().copied().chain([t, t + 1]).collect::<Vec<u32>>();
    // Two sequences share the 40-token stem (queries only after it): it is kept.
    let stats = run_checked(&s, &[seq(tail(500), &[41]), seq(tail(600), &[41])]);
    assert_eq!(stats.tokens_reused, 40);
    // Later, a lone sequence on the stem starts from it ...
    let stats = run_checked(&s, &[seq(tail(700), &[40, 41])]);
    assert_eq!((stats.tokens_reused, stats.tokens_computed), (40, 2));
    // ... but not when it queries inside the stem: it is computed up to its query at least.
    let stats = run_checked(&s, &[seq(tail(800), &[20, 41])]);
    assert_eq!(stats.tokens_reused, 0, "no kept prefix of 4..=20 tokens yet");
    // A group with a query inside its prefix keeps the part before that query too.
    let stats = run_checked(&s, &[seq(tail(900), &[10, 41]), seq(tail(910), &[41])]);
    assert_eq!(stats.tokens_reused, 40, "the stem once for two, nothing kept before 10");
    let stats = run_checked(&s, &[seq(tail(920), &[12, 41])]);
    assert_eq!(stats.tokens_reused, 10, "the part before the first query (10) was kept");
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
    for _ in 0..300 {
        let budget = 1 + rng.below(48);
        let min_shared = [1, 2, 4, 8, usize::MAX][rng.below(5)];
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
