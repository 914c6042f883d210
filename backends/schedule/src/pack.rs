//! Packing rows of one pass: which rows on the same past go into one right-padded batch
//! under the token budget.

/// A row joins a batch only if it is at least this fraction of the batch's longest row.
pub const MIN_FILL: f64 = 0.75;

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
