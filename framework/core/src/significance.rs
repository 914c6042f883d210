//! The paper's significance tests for win counts: the one-sided binomial sign test and the
//! one-sided Wilcoxon signed-rank test on paired differences, both exact. Hand-written: each
//! is a few lines, and the statistics crates at hand offer neither exactly (with ties).

/// P(X ≥ k) for X ~ Binomial(n, ½), computed in log space.
pub fn binomial_upper_tail(n: usize, k: usize) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    let ln_choose = |n: usize, i: usize| -> f64 {
        (1..=i).map(|j| ((n - i + j) as f64).ln() - (j as f64).ln()).sum()
    };
    let ln_half_n = n as f64 * 0.5f64.ln();
    (k..=n).map(|i| (ln_choose(n, i) + ln_half_n).exp()).sum::<f64>().min(1.0)
}

/// One-sided Wilcoxon signed-rank test that the differences lean positive: P(W⁺ ≥ observed)
/// when every difference's sign is + or − with probability ½, W⁺ being the sum of the ranks
/// of |d| over positive d. Zero (and non-finite) differences are dropped (Wilcoxon's rule);
/// tied |d| share their average rank. The null distribution is built exactly over doubled
/// ranks (integers, so ties need no normal approximation). 1 when nothing is left.
pub fn wilcoxon_signed_rank_greater(differences: &[f64]) -> f64 {
    let mut d: Vec<f64> =
        differences.iter().copied().filter(|x| x.is_finite() && *x != 0.0).collect();
    if d.is_empty() {
        return 1.0;
    }
    d.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    let n = d.len();
    // Ranks i+1 ..= j+1 tied: their average, doubled, is i + j + 2.
    let mut doubled = vec![0usize; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && d[j + 1].abs() == d[i].abs() {
            j += 1;
        }
        doubled[i..=j].fill(i + j + 2);
        i = j + 1;
    }
    let observed: usize = (0..n).filter(|&k| d[k] > 0.0).map(|k| doubled[k]).sum();
    let total: usize = doubled.iter().sum();
    // dist[s] = P(doubled W⁺ = s), adding one rank at a time.
    let mut dist = vec![0f64; total + 1];
    dist[0] = 1.0;
    for &r in &doubled {
        for s in (r..=total).rev() {
            dist[s] = 0.5 * dist[s] + 0.5 * dist[s - r];
        }
        for p in &mut dist[..r] {
            *p *= 0.5;
        }
    }
    dist[observed..].iter().sum::<f64>().min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_test_matches_hand_values() {
        assert!((binomial_upper_tail(3, 3) - 0.125).abs() < 1e-12);
        assert!((binomial_upper_tail(3, 2) - 0.5).abs() < 1e-12);
        assert!((binomial_upper_tail(10, 9) - 11.0 / 1024.0).abs() < 1e-12);
        assert_eq!(binomial_upper_tail(0, 0), 1.0);
        // The paper's all-multi-round count, 213 : 22.
        assert!(binomial_upper_tail(235, 213) < 1e-30);
    }

    #[test]
    fn signed_rank_matches_enumeration_by_hand() {
        // All 2³ sign patterns of ranks {1, 2, 3} are equally likely.
        assert!((wilcoxon_signed_rank_greater(&[0.1, 0.2, 0.3]) - 1.0 / 8.0).abs() < 1e-12);
        // W⁺ = 3: {3}, {1,2}, {1,3}, {2,3}, {1,2,3} reach it.
        assert!((wilcoxon_signed_rank_greater(&[0.1, 0.2, -0.3]) - 5.0 / 8.0).abs() < 1e-12);
        // Ties: ranks 1.5, 1.5, 3; W⁺ = 4.5 is reached by {a,c}, {b,c}, {a,b,c}.
        assert!((wilcoxon_signed_rank_greater(&[0.1, -0.1, 0.2]) - 3.0 / 8.0).abs() < 1e-12);
        // Zeros are dropped; nothing left gives 1.
        assert!((wilcoxon_signed_rank_greater(&[0.0, 0.1, 0.2, 0.3]) - 1.0 / 8.0).abs() < 1e-12);
        assert_eq!(wilcoxon_signed_rank_greater(&[0.0, f64::NAN]), 1.0);
        // All of 20 positive: 2⁻²⁰; all negative: 1.
        let up: Vec<f64> = (1..=20).map(|i| i as f64).collect();
        assert!((wilcoxon_signed_rank_greater(&up) - 0.5f64.powi(20)).abs() < 1e-18);
        let down: Vec<f64> = up.iter().map(|x| -x).collect();
        assert!((wilcoxon_signed_rank_greater(&down) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn signed_rank_tail_of_ten_matches_the_table() {
        // n = 10, W⁻ ≤ 10 (W⁺ ≥ 45): p = 0.042, the one-sided 5% critical value of the
        // standard tables (43 of 1,024 sign patterns).
        let mut d: Vec<f64> = (1..=10).map(|i| i as f64).collect();
        // Negative ranks 1, 2, 3, 4 (sum 10) leave W⁺ = 55 − 10 = 45.
        for r in [1, 2, 3, 4] {
            d[r - 1] = -d[r - 1];
        }
        assert!((wilcoxon_signed_rank_greater(&d) - 43.0 / 1024.0).abs() < 1e-12);
    }
}
