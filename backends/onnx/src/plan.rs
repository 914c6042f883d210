//! Scheduling, without touching the runtime: which sequences share a prefix worth computing
//! once, and how sequences are packed into right-padded batches under a token budget.

/// Sequences (by index) that share their first `prefix_len` tokens. A group of one has
/// `prefix_len == 0`: nothing is shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixGroup {
    /// Length of the prefix every member starts with.
    pub prefix_len: usize,
    /// Indices into the slice given to [`group_by_prefix`], in ascending token order.
    pub members: Vec<usize>,
}

/// A row joins a batch only if it is at least this fraction of the batch's longest row.
pub const MIN_FILL: f64 = 0.75;

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Groups sequences that share a prefix of at least `min_shared` tokens.
///
/// Sequences are sorted (lexicographically, so sequences with common prefixes are
/// adjacent) and grown into groups greedily: the next sequence joins when the group still
/// shares at least `min_shared` tokens and the tokens saved, `(members - 1) × prefix`, do not
/// shrink. Deterministic: the result depends only on the token sequences.
pub fn group_by_prefix(seqs: &[&[u32]], min_shared: usize) -> Vec<PrefixGroup> {
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by(|&a, &b| seqs[a].cmp(seqs[b]).then(a.cmp(&b)));
    let mut groups: Vec<PrefixGroup> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let mut lcp = 0usize;
    let close = |cur: &mut Vec<usize>, lcp: usize, groups: &mut Vec<PrefixGroup>| {
        if cur.is_empty() {
            return;
        }
        let prefix_len = if cur.len() > 1 { lcp } else { 0 };
        groups.push(PrefixGroup { prefix_len, members: std::mem::take(cur) });
    };
    for &i in &order {
        match cur.last() {
            None => {
                cur.push(i);
                lcp = seqs[i].len();
            }
            Some(&prev) => {
                let shared = lcp.min(common_prefix(seqs[prev], seqs[i]));
                let n = cur.len();
                let saved_before = if n > 1 { (n - 1) * lcp } else { 0 };
                if shared >= min_shared.max(1) && n * shared >= saved_before {
                    cur.push(i);
                    lcp = shared;
                } else {
                    close(&mut cur, lcp, &mut groups);
                    cur.push(i);
                    lcp = seqs[i].len();
                }
            }
        }
    }
    close(&mut cur, lcp, &mut groups);
    groups
}

/// Packs rows of the given lengths into batches: rows are taken longest first, and a batch
/// grows while `rows × (past_len + longest row)` stays within `budget` tokens and the new
/// row is at least [`MIN_FILL`] of the batch's longest (padding a short row to a long one
/// costs more than a separate pass). Every batch has at least one row (a row longer than
/// the budget runs alone). Returns row indices.
pub fn pack(lengths: &[usize], past_len: usize, budget: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let mut longest = 0usize;
    for i in order {
        let l = lengths[i];
        let width = past_len + longest.max(l);
        let too_short = (l as f64) < MIN_FILL * longest as f64;
        if !cur.is_empty() && ((cur.len() + 1) * width > budget || too_short) {
            batches.push(std::mem::take(&mut cur));
            longest = 0;
        }
        longest = longest.max(l);
        cur.push(i);
    }
    if !cur.is_empty() {
        batches.push(cur);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_shared_prefixes_and_leaves_strangers_alone() {
        let a: Vec<u32> = (0..100).collect();
        let mut b = a.clone();
        b.extend([7, 8, 9]);
        let mut c: Vec<u32> = (0..50).collect();
        c.push(1000);
        let d = vec![5u32, 6, 7];
        let seqs: Vec<&[u32]> = vec![&a, &b, &c, &d];
        let groups = group_by_prefix(&seqs, 16);
        // a and b share 100 tokens; with c the group shares 50, which saves 2 × 50 = 100
        // tokens, as many as before, so c joins; d shares nothing.
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0], PrefixGroup { prefix_len: 50, members: vec![0, 1, 2] });
        assert_eq!(groups[1], PrefixGroup { prefix_len: 0, members: vec![3] });
    }

    #[test]
    fn a_short_shared_prefix_does_not_dilute_a_long_one() {
        let base: Vec<u32> = (0..1000).collect();
        let mut seqs_owned: Vec<Vec<u32>> = (0..3)
            .map(|k| {
                let mut s = base.clone();
                s.push(2000 + k);
                s
            })
            .collect();
        let mut other: Vec<u32> = (0..20).collect();
        other.push(5000);
        seqs_owned.push(other);
        let seqs: Vec<&[u32]> = seqs_owned.iter().map(Vec::as_slice).collect();
        let groups = group_by_prefix(&seqs, 16);
        assert_eq!(groups[0], PrefixGroup { prefix_len: 1000, members: vec![0, 1, 2] });
        assert_eq!(groups[1].members, vec![3]);
    }

    #[test]
    fn below_min_shared_nothing_is_grouped() {
        let a = vec![1u32, 2, 3, 4];
        let b = vec![1u32, 2, 3, 5];
        let seqs: Vec<&[u32]> = vec![&a, &b];
        assert!(group_by_prefix(&seqs, 16)
            .iter()
            .all(|g| g.members.len() == 1 && g.prefix_len == 0));
        assert_eq!(
            group_by_prefix(&seqs, 3)[0],
            PrefixGroup { prefix_len: 3, members: vec![0, 1] }
        );
    }

    #[test]
    fn packs_longest_first_within_budget() {
        let lengths = [10, 300, 20, 290, 16, 12];
        let b = pack(&lengths, 0, 600);
        assert_eq!(b, vec![vec![1, 3], vec![2, 4], vec![5, 0]]);
        // A row longer than the budget still runs, alone.
        assert_eq!(pack(&[1000, 10], 0, 100), vec![vec![0], vec![1]]);
        // The shared past counts against the budget.
        assert_eq!(pack(&[10, 10, 10], 90, 200), vec![vec![0, 1], vec![2]]);
        assert_eq!(pack(&[10, 10, 10], 90, 199), vec![vec![0], vec![1], vec![2]]);
        assert!(pack(&[], 0, 100).is_empty());
    }
}
