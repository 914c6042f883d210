//! The metric math as plain functions, callable by the host through the rlib without the
//! plugin ABI.
//!
//! Every function takes `(predictions, outcomes, weights)` of equal length and returns
//! `Result<f64, MetricError>`:
//! - `predictions`: predicted probability of the target option;
//! - `outcomes`: 0/1 for individual decisions, a choice rate in [0, 1] for aggregated data;
//! - `weights`: 1 for an individual decision, the number of people behind a rate.
//!
//! With all weights 1 and 0/1 outcomes each metric is its ordinary, unweighted definition.
//! With integer weights each metric equals the unweighted metric on the data expanded by
//! repeating row i `w_i` times (tests check this). For `nll`, `accuracy` and both pseudo-R²
//! metrics a rate r with weight n also equals n individual rows of which r·n are 1s (the
//! metrics are linear in the outcome); `brier` does not (see [`brier`]).
//!
//! # Degenerate input
//! Degenerate input returns a [`MetricError`], never a NaN and never a panic: a NaN would
//! flow silently into means, bootstraps and win counts, while an error says what was wrong
//! and lets the host decide (skip the cell, report it). Checked for every metric:
//! empty input, lengths that differ, NaN or infinite values, negative weights, zero total
//! weight. Checked per metric: the range of predictions and outcomes where the metric
//! needs probabilities, constant data for the correlations, binary outcomes and both
//! classes for AUC, a reference that is already perfect for the base-rate pseudo-R².
//! A result that still came out non-finite (overflow on absurd magnitudes) is an error too.
//!
//! Rows with weight 0 are allowed and contribute nothing (they do not, for example, make
//! otherwise constant predictions non-constant). Results are invariant to multiplying all
//! weights by a positive constant; weights are scaled by their maximum before use so that
//! huge counts cannot overflow the sums.

use std::fmt;

/// Predictions are clipped to `[NLL_CLIP, 1 - NLL_CLIP]` before taking logarithms in
/// [`nll`] and the pseudo-R² metrics. A backend can return p = 0 exactly (an f32
/// log-probability that underflows) for an option a person took; unclipped, that single
/// row would make the mean loss infinite. The clip caps one row's loss at
/// −ln(1e-12) ≈ 27.63 nats.
pub const NLL_CLIP: f64 = 1e-12;

/// Which input vector a [`MetricError`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The predicted probabilities.
    Predictions,
    /// The human outcomes.
    Outcomes,
    /// The weights.
    Weights,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Predictions => "predictions",
            Field::Outcomes => "outcomes",
            Field::Weights => "weights",
        })
    }
}

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MetricError {
    /// No rows.
    Empty,
    /// The three vectors have different lengths.
    LengthMismatch {
        /// Length of `predictions`.
        predictions: usize,
        /// Length of `outcomes`.
        outcomes: usize,
        /// Length of `weights`.
        weights: usize,
    },
    /// A value is NaN or infinite.
    NotFinite {
        /// The vector holding it.
        field: Field,
        /// Its row.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A weight is negative.
    NegativeWeight {
        /// Its row.
        index: usize,
        /// The value.
        value: f64,
    },
    /// All weights are zero, so nothing is measured.
    ZeroTotalWeight,
    /// A prediction or outcome lies outside [0, 1] where the metric needs a probability.
    OutOfRange {
        /// The vector holding it.
        field: Field,
        /// Its row.
        index: usize,
        /// The value.
        value: f64,
    },
    /// All rows with positive weight have the same value: a correlation is undefined.
    Constant {
        /// The constant vector.
        field: Field,
    },
    /// AUC needs outcomes that are exactly 0 or 1.
    NotBinary {
        /// The row.
        index: usize,
        /// The outcome.
        value: f64,
    },
    /// AUC needs both classes with positive weight.
    OneClass {
        /// The only class present (0 or 1).
        present: u8,
    },
    /// The base-rate reference is already perfect (all outcomes 0, or all 1), so its loss
    /// is 0 and the pseudo-R² ratio is undefined.
    PerfectReference,
    /// The result is not finite (the sums overflowed or underflowed on extreme values).
    NumericalFailure {
        /// The metric.
        metric: &'static str,
    },
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricError::Empty => write!(f, "no data: predictions, outcomes and weights are empty"),
            MetricError::LengthMismatch { predictions, outcomes, weights } => write!(
                f,
                "lengths differ: {predictions} predictions, {outcomes} outcomes, {weights} weights"
            ),
            MetricError::NotFinite { field, index, value } => {
                write!(f, "{field}[{index}] is {value}, not a finite number")
            }
            MetricError::NegativeWeight { index, value } => {
                write!(f, "weights[{index}] is {value}; weights must be >= 0")
            }
            MetricError::ZeroTotalWeight => write!(f, "total weight is 0: every weight is zero"),
            MetricError::OutOfRange { field, index, value } => {
                write!(f, "{field}[{index}] is {value}, outside [0, 1]")
            }
            MetricError::Constant { field } => write!(
                f,
                "{field} are constant (over rows with positive weight): correlation undefined"
            ),
            MetricError::NotBinary { index, value } => {
                write!(f, "outcomes[{index}] is {value}; AUC needs outcomes of exactly 0 or 1")
            }
            MetricError::OneClass { present } => write!(
                f,
                "only outcome {present} has positive weight; AUC needs both 0s and 1s"
            ),
            MetricError::PerfectReference => write!(
                f,
                "outcomes are all 0 or all 1: the base-rate reference has zero loss, pseudo-R² undefined"
            ),
            MetricError::NumericalFailure { metric } => {
                write!(f, "{metric}: result is not finite (values too extreme for f64)")
            }
        }
    }
}

impl std::error::Error for MetricError {}

// ------------------------------------------------------------------------- validation

/// Checks what every metric needs and returns the weights scaled so the largest is 1.
fn validate(p: &[f64], y: &[f64], w: &[f64]) -> Result<Vec<f64>, MetricError> {
    if p.len() != y.len() || p.len() != w.len() {
        return Err(MetricError::LengthMismatch {
            predictions: p.len(),
            outcomes: y.len(),
            weights: w.len(),
        });
    }
    if p.is_empty() {
        return Err(MetricError::Empty);
    }
    for (field, values) in [(Field::Predictions, p), (Field::Outcomes, y), (Field::Weights, w)] {
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(MetricError::NotFinite { field, index, value });
        }
    }
    if let Some((index, &value)) = w.iter().enumerate().find(|(_, v)| **v < 0.0) {
        return Err(MetricError::NegativeWeight { index, value });
    }
    let max = w.iter().copied().fold(0.0_f64, f64::max);
    if max <= 0.0 {
        return Err(MetricError::ZeroTotalWeight);
    }
    // Scaling by the maximum keeps the total <= n, so summing huge counts cannot overflow;
    // every metric is a ratio of weighted sums, so the scale does not change the result.
    Ok(w.iter().map(|v| v / max).collect())
}

/// Errors on the first value outside [0, 1].
fn check_unit(field: Field, values: &[f64]) -> Result<(), MetricError> {
    match values.iter().enumerate().find(|(_, v)| !(0.0..=1.0).contains(*v)) {
        Some((index, &value)) => Err(MetricError::OutOfRange { field, index, value }),
        None => Ok(()),
    }
}

/// True when all rows with positive weight hold the same value (zero-weight rows do not
/// count: they carry no data).
fn is_constant(values: &[f64], w: &[f64]) -> bool {
    let mut seen = values.iter().zip(w).filter(|(_, &wi)| wi > 0.0).map(|(v, _)| *v);
    match seen.next() {
        Some(first) => seen.all(|v| v == first),
        None => true,
    }
}

/// Turns a non-finite result into an error rather than letting a NaN escape.
fn finite(metric: &'static str, value: f64) -> Result<f64, MetricError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(MetricError::NumericalFailure { metric })
    }
}

/// Σ w·v / Σ w.
fn weighted_mean(values: impl Iterator<Item = f64>, w: &[f64]) -> f64 {
    let total: f64 = w.iter().sum();
    values.zip(w).map(|(v, wi)| wi * v).sum::<f64>() / total
}

// ----------------------------------------------------------------------- correlations

/// Weighted Pearson r on validated, non-constant data. Two passes (means first, then
/// centred sums) for accuracy when values sit far from 0.
fn pearson_core(metric: &'static str, x: &[f64], y: &[f64], w: &[f64]) -> Result<f64, MetricError> {
    // r is scale-invariant; dividing by the largest magnitude keeps squares of huge values
    // from overflowing. Non-constant data has a nonzero maximum.
    let max_abs = |v: &[f64]| v.iter().fold(0.0_f64, |m, a| m.max(a.abs()));
    let (ax, ay) = (max_abs(x), max_abs(y));
    if ax == 0.0 || ay == 0.0 {
        return Err(MetricError::NumericalFailure { metric });
    }
    let mx = weighted_mean(x.iter().map(|v| v / ax), w);
    let my = weighted_mean(y.iter().map(|v| v / ay), w);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for ((&xi, &yi), &wi) in x.iter().zip(y).zip(w) {
        let (dx, dy) = (xi / ax - mx, yi / ay - my);
        sxy += wi * dx * dy;
        sxx += wi * dx * dx;
        syy += wi * dy * dy;
    }
    // Variances that underflowed to 0 would give 0/0 or a meaningless ratio.
    if !(sxx > 0.0 && syy > 0.0 && sxx.is_finite() && syy.is_finite()) {
        return Err(MetricError::NumericalFailure { metric });
    }
    // sqrt each factor separately: sxx * syy can underflow to 0 when each alone does not.
    let r = finite(metric, sxy / (sxx.sqrt() * syy.sqrt()))?;
    // Rounding can push |r| a hair above 1 on perfectly (anti)correlated data.
    Ok(r.clamp(-1.0, 1.0))
}

/// Weighted Pearson correlation between predictions and outcomes (point-biserial r when
/// outcomes are 0/1); the paper's metric. Higher is better.
///
/// r = Σw(x−x̄)(y−ȳ) / sqrt(Σw(x−x̄)² · Σw(y−ȳ)²), with x̄ = Σwx/Σw, ȳ = Σwy/Σw.
///
/// Accepts any finite values (it is a general correlation, so the host may also correlate
/// two models' predictions). Errors when either vector is constant over the rows with
/// positive weight. The result is clamped to [−1, 1] against rounding.
pub fn pearson(predictions: &[f64], outcomes: &[f64], weights: &[f64]) -> Result<f64, MetricError> {
    let w = validate(predictions, outcomes, weights)?;
    require_varying(predictions, outcomes, &w)?;
    pearson_core("pearson", predictions, outcomes, &w)
}

/// Errors when either vector is constant (a correlation is then 0/0).
fn require_varying(x: &[f64], y: &[f64], w: &[f64]) -> Result<(), MetricError> {
    if is_constant(x, w) {
        return Err(MetricError::Constant { field: Field::Predictions });
    }
    if is_constant(y, w) {
        return Err(MetricError::Constant { field: Field::Outcomes });
    }
    Ok(())
}

/// Weighted mid-ranks: a row of weight w stands for w copies of its value, and each value
/// gets the average of the 1-based ranks its copies (and those of equal values) occupy:
/// rank = C + (W + 1)/2, where C is the weight of strictly smaller values and W the weight
/// of the tied group. With unit weights these are the usual average ranks. Values must be
/// finite and the slices of equal length (callers validate).
fn weighted_midranks(values: &[f64], w: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    // total_cmp: a total order, so sorting needs no unwrap; inputs are finite anyway.
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut below = 0.0;
    let mut start = 0;
    while start < order.len() {
        let value = values[order[start]];
        // The group always takes its first row, so the loop advances whatever the values.
        let mut end = start + 1;
        let mut group = w[order[start]];
        // `==` (not total_cmp) so that −0.0 and 0.0 tie; total_cmp sorts them adjacent.
        while end < order.len() && values[order[end]] == value {
            group += w[order[end]];
            end += 1;
        }
        let rank = below + (group + 1.0) / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        below += group;
        start = end;
    }
    ranks
}

/// Weighted Spearman ρ: the weighted Pearson r (weights `w`) of the weighted mid-ranks of
/// predictions and of outcomes. Higher is better.
///
/// Weighted mid-rank of a row: C + (W + 1)/2, with C the total weight of strictly smaller
/// values and W the total weight of values equal to it, i.e. the average rank of its copies
/// when each row is repeated w times. So with integer weights ρ equals the ordinary Spearman
/// ρ (average ranks for ties) on the expanded data, with unit weights it is the ordinary ρ,
/// and scaling all weights leaves it unchanged (the ranks change by an affine map).
/// Errors when either vector is constant over rows with positive weight.
pub fn spearman(
    predictions: &[f64],
    outcomes: &[f64],
    weights: &[f64],
) -> Result<f64, MetricError> {
    let w = validate(predictions, outcomes, weights)?;
    require_varying(predictions, outcomes, &w)?;
    let rx = weighted_midranks(predictions, &w);
    let ry = weighted_midranks(outcomes, &w);
    pearson_core("spearman", &rx, &ry, &w)
}

// ------------------------------------------------------------------------ ranking

/// Weighted ROC AUC for binary outcomes. Higher is better.
///
/// `AUC = Σ_{i: y=1} Σ_{j: y=0} w_i w_j ([p_i > p_j] + ½[p_i = p_j]) / (Σ_{y=1} w · Σ_{y=0} w)`:
/// the weighted probability that a random positive is ranked above a random negative, ties
/// counting ½. Computed in O(n log n) by sorting. Predictions may be any finite values (only
/// their order matters). Errors when an outcome is not exactly 0 or 1, or when one class
/// has no positive weight.
pub fn auc(predictions: &[f64], outcomes: &[f64], weights: &[f64]) -> Result<f64, MetricError> {
    let w = validate(predictions, outcomes, weights)?;
    if let Some((index, &value)) = outcomes.iter().enumerate().find(|(_, &v)| v != 0.0 && v != 1.0)
    {
        return Err(MetricError::NotBinary { index, value });
    }
    let positive = |i: usize| outcomes[i] == 1.0;
    let (mut w_pos, mut w_neg) = (0.0, 0.0);
    for (i, &wi) in w.iter().enumerate() {
        if positive(i) {
            w_pos += wi;
        } else {
            w_neg += wi;
        }
    }
    if w_pos <= 0.0 {
        return Err(MetricError::OneClass { present: 0 });
    }
    if w_neg <= 0.0 {
        return Err(MetricError::OneClass { present: 1 });
    }
    let mut order: Vec<usize> = (0..predictions.len()).collect();
    order.sort_by(|&a, &b| predictions[a].total_cmp(&predictions[b]));
    // Walk tie groups in ascending score: a positive beats every negative below its group
    // and half-beats the negatives inside it.
    let (mut neg_below, mut wins) = (0.0, 0.0);
    let mut start = 0;
    while start < order.len() {
        let score = predictions[order[start]];
        let mut end = start;
        let (mut pos_group, mut neg_group) = (0.0, 0.0);
        while end < order.len() && (end == start || predictions[order[end]] == score) {
            let i = order[end];
            if positive(i) {
                pos_group += w[i];
            } else {
                neg_group += w[i];
            }
            end += 1;
        }
        wins += pos_group * (neg_below + 0.5 * neg_group);
        neg_below += neg_group;
        start = end;
    }
    finite("auc", wins / (w_pos * w_neg))
}

// ------------------------------------------------------------------- scoring rules

/// Weighted Brier score (mean squared error) Σ w (p − y)² / Σ w. Lower is better.
///
/// Predictions and outcomes must lie in [0, 1]. For a rate y this is the squared error
/// against the rate; the Brier score over the individuals behind the rates is this plus
/// Σ w y(1−y) / Σ w, a constant of the data that no prediction can change.
pub fn brier(predictions: &[f64], outcomes: &[f64], weights: &[f64]) -> Result<f64, MetricError> {
    let w = validate(predictions, outcomes, weights)?;
    check_probabilities(predictions, outcomes)?;
    let squared = predictions.iter().zip(outcomes).map(|(p, y)| (p - y) * (p - y));
    finite("brier", weighted_mean(squared, &w))
}

/// Errors unless predictions and outcomes both lie in [0, 1].
fn check_probabilities(p: &[f64], y: &[f64]) -> Result<(), MetricError> {
    check_unit(Field::Predictions, p)?;
    check_unit(Field::Outcomes, y)
}

/// Negative log-likelihood of outcome rate `y` under prediction `p`, p clipped to
/// [`NLL_CLIP`], 1 − [`NLL_CLIP`]].
fn row_nll(p: f64, y: f64) -> f64 {
    let p = p.clamp(NLL_CLIP, 1.0 - NLL_CLIP);
    -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
}

/// Weighted mean negative log-likelihood of validated data under constant or per-row p.
fn mean_nll(p: impl Iterator<Item = f64>, y: &[f64], w: &[f64]) -> f64 {
    weighted_mean(p.zip(y).map(|(p, &y)| row_nll(p, y)), w)
}

/// Weighted mean negative log-likelihood (nats): `Σ w · −[y ln p + (1−y) ln(1−p)] / Σ w`,
/// with p clipped to [1e-12, 1 − 1e-12] ([`NLL_CLIP`]). Lower is better.
///
/// For a rate y with weight n this is exactly the mean log loss of the n individuals
/// behind it. Predictions and outcomes must lie in [0, 1].
pub fn nll(predictions: &[f64], outcomes: &[f64], weights: &[f64]) -> Result<f64, MetricError> {
    let w = validate(predictions, outcomes, weights)?;
    check_probabilities(predictions, outcomes)?;
    finite("nll", mean_nll(predictions.iter().copied(), outcomes, &w))
}

/// McFadden-style pseudo-R² against a model that always predicts 0.5:
/// 1 − NLL(model) / ln 2 (the reference's NLL is ln 2 for any outcome). Higher is better;
/// 0 means no better than a coin, negative means worse. Same input rules and clipping as
/// [`nll`].
pub fn pseudo_r2_uniform(
    predictions: &[f64],
    outcomes: &[f64],
    weights: &[f64],
) -> Result<f64, MetricError> {
    let w = validate(predictions, outcomes, weights)?;
    check_probabilities(predictions, outcomes)?;
    let model = mean_nll(predictions.iter().copied(), outcomes, &w);
    let reference = mean_nll(std::iter::repeat(0.5), outcomes, &w);
    finite("pseudo_r2_uniform", 1.0 - model / reference)
}

/// McFadden pseudo-R² against a model that always predicts the weighted mean outcome
/// ȳ = Σ w y / Σ w: 1 − NLL(model) / NLL(ȳ), both NLLs as in [`nll`] (same clipping).
/// Higher is better; 0 means no better than the base rate. Errors when every outcome with
/// positive weight is 0, or every one is 1: the reference then has zero loss.
pub fn pseudo_r2_base_rate(
    predictions: &[f64],
    outcomes: &[f64],
    weights: &[f64],
) -> Result<f64, MetricError> {
    let w = validate(predictions, outcomes, weights)?;
    check_probabilities(predictions, outcomes)?;
    let base = weighted_mean(outcomes.iter().copied(), &w);
    // Tested on the outcomes, not on `base`, so the answer does not hinge on rounding.
    let positive = || outcomes.iter().zip(&w).filter(|(_, &wi)| wi > 0.0);
    if positive().all(|(&y, _)| y == 0.0) || positive().all(|(&y, _)| y == 1.0) {
        return Err(MetricError::PerfectReference);
    }
    let model = mean_nll(predictions.iter().copied(), outcomes, &w);
    let reference = mean_nll(std::iter::repeat(base), outcomes, &w);
    finite("pseudo_r2_base_rate", 1.0 - model / reference)
}

/// Weighted accuracy of the decision "target option iff p ≥ 0.5":
/// `Σ w · [y if p ≥ 0.5 else 1 − y] / Σ w`. Higher is better.
///
/// For 0/1 outcomes this is the weighted share of rows where (p ≥ 0.5) matches (y ≥ 0.5);
/// for a rate y it is the share of the people behind it whose choice matches the side the
/// model chose. p = 0.5 exactly counts as choosing the target option. Predictions and
/// outcomes must lie in [0, 1].
pub fn accuracy(
    predictions: &[f64],
    outcomes: &[f64],
    weights: &[f64],
) -> Result<f64, MetricError> {
    let w = validate(predictions, outcomes, weights)?;
    check_probabilities(predictions, outcomes)?;
    let hits = predictions.iter().zip(outcomes).map(|(&p, &y)| if p >= 0.5 { y } else { 1.0 - y });
    finite("accuracy", weighted_mean(hits, &w))
}

// ----------------------------------------------------------------------------- tests

#[cfg(test)]
mod tests {
    use super::*;

    /// Every metric, for tests that loop over all of them.
    type MetricFn = fn(&[f64], &[f64], &[f64]) -> Result<f64, MetricError>;
    const ALL: [(&str, MetricFn); 8] = [
        ("pearson", pearson),
        ("spearman", spearman),
        ("auc", auc),
        ("brier", brier),
        ("nll", nll),
        ("pseudo_r2_uniform", pseudo_r2_uniform),
        ("pseudo_r2_base_rate", pseudo_r2_base_rate),
        ("accuracy", accuracy),
    ];

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b} (tol {tol})");
    }

    fn ones(n: usize) -> Vec<f64> {
        vec![1.0; n]
    }

    /// Deterministic pseudo-random numbers in [0, 1) (xorshift64*), so tests need no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
        }
        /// A probability rounded to 2 decimals, so ties occur.
        fn coarse(&mut self) -> f64 {
            (self.next() * 100.0).round() / 100.0
        }
    }

    /// Binary data where p is informative, with ties in p.
    fn binary_data(seed: u64, n: usize) -> (Vec<f64>, Vec<f64>) {
        let mut rng = Rng(seed);
        let p: Vec<f64> = (0..n).map(|_| rng.coarse()).collect();
        let y = p.iter().map(|&pi| if rng.next() < pi { 1.0 } else { 0.0 }).collect();
        (p, y)
    }

    /// Repeats row i `w[i]` times.
    fn expand(p: &[f64], y: &[f64], w: &[usize]) -> (Vec<f64>, Vec<f64>) {
        let mut ep = Vec::new();
        let mut ey = Vec::new();
        for i in 0..p.len() {
            for _ in 0..w[i] {
                ep.push(p[i]);
                ey.push(y[i]);
            }
        }
        (ep, ey)
    }

    // ------------------------------------------------------------------ pearson

    #[test]
    fn pearson_hand_computed() {
        // x̄ = ȳ = 0.2; cov ∝ 0.01 + 0 + 0 = 0.01; var ∝ 0.02 each → r = 0.5.
        let r = pearson(&[0.1, 0.2, 0.3], &[0.1, 0.3, 0.2], &ones(3)).unwrap();
        close(r, 0.5, 1e-12);
    }

    #[test]
    fn pearson_matches_point_biserial_closed_form() {
        let (p, y) = binary_data(7, 400);
        let n = p.len() as f64;
        let (mut s1, mut n1, mut s0, mut n0) = (0.0, 0.0, 0.0, 0.0);
        for (&pi, &yi) in p.iter().zip(&y) {
            if yi == 1.0 {
                s1 += pi;
                n1 += 1.0;
            } else {
                s0 += pi;
                n0 += 1.0;
            }
        }
        let mean = p.iter().sum::<f64>() / n;
        let sd = (p.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        // r_pb = (M1 − M0) / s_n · sqrt(n1 n0 / n²), s_n the population sd of p.
        let expected = (s1 / n1 - s0 / n0) / sd * (n1 * n0 / (n * n)).sqrt();
        close(pearson(&p, &y, &ones(p.len())).unwrap(), expected, 1e-12);
        assert!(expected > 0.2, "data should be informative: {expected}");
    }

    #[test]
    fn pearson_weighted_equals_expanded() {
        let (p, y) = binary_data(11, 60);
        let counts: Vec<usize> = (0..p.len()).map(|i| 1 + i % 4).collect();
        let w: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
        let (ep, ey) = expand(&p, &y, &counts);
        close(pearson(&p, &y, &w).unwrap(), pearson(&ep, &ey, &ones(ep.len())).unwrap(), 1e-12);
    }

    #[test]
    fn pearson_on_rates_with_weights_hand_computed() {
        // Rows (p, rate, n): (0.2, 0.25, 4), (0.6, 0.5, 2), (0.9, 1.0, 2). W = 8.
        // x̄ = (0.8+1.2+1.8)/8 = 0.475, ȳ = (1+1+2)/8 = 0.5.
        // Sxy = 4(−.275)(−.25) + 2(.125)(0) + 2(.425)(.5) = 0.275 + 0.425 = 0.7
        // Sxx = 4(.075625) + 2(.015625) + 2(.180625) = 0.3025 + 0.03125 + 0.36125 = 0.695
        // Syy = 4(.0625) + 0 + 2(.25) = 0.75
        let expected = 0.7 / (0.695f64 * 0.75).sqrt();
        let r = pearson(&[0.2, 0.6, 0.9], &[0.25, 0.5, 1.0], &[4.0, 2.0, 2.0]).unwrap();
        close(r, expected, 1e-12);
    }

    #[test]
    fn pearson_weight_scale_and_zero_weight_rows() {
        let (p, y) = binary_data(3, 50);
        let w: Vec<f64> = (0..50).map(|i| 0.5 + (i % 3) as f64).collect();
        let base = pearson(&p, &y, &w).unwrap();
        let scaled: Vec<f64> = w.iter().map(|v| v * 1e6).collect();
        close(pearson(&p, &y, &scaled).unwrap(), base, 1e-12);
        // An extra row with weight 0 changes nothing, whatever its values.
        let (mut p2, mut y2, mut w2) = (p.clone(), y.clone(), w.clone());
        p2.push(0.99);
        y2.push(0.0);
        w2.push(0.0);
        close(pearson(&p2, &y2, &w2).unwrap(), base, 1e-12);
    }

    #[test]
    fn pearson_perfect_correlation_stays_in_range() {
        let x = [0.1, 0.2, 0.3, 0.7, 0.9];
        let up: Vec<f64> = x.iter().map(|v| 0.3 * v + 0.1).collect();
        let down: Vec<f64> = x.iter().map(|v| 1.0 - v).collect();
        let (r_up, r_down) =
            (pearson(&x, &up, &ones(5)).unwrap(), pearson(&x, &down, &ones(5)).unwrap());
        assert!((-1.0..=1.0).contains(&r_up) && (-1.0..=1.0).contains(&r_down), "{r_up} {r_down}");
        close(r_up, 1.0, 1e-12);
        close(r_down, -1.0, 1e-12);
    }

    #[test]
    fn pearson_huge_weights_do_not_overflow() {
        let r = pearson(&[0.1, 0.2, 0.3], &[0.1, 0.3, 0.2], &[f64::MAX; 3]).unwrap();
        close(r, 0.5, 1e-12);
    }

    // ----------------------------------------------------------------- spearman

    #[test]
    fn spearman_matches_d_squared_formula_untied() {
        let mut rng = Rng(42);
        let n = 30;
        // Untied by construction: distinct values after a random permutation.
        let p: Vec<f64> = (0..n).map(|_| rng.next()).collect();
        let y: Vec<f64> = p.iter().map(|v| v + 0.5 * rng.next()).collect();
        let rank = |v: &[f64]| -> Vec<f64> {
            v.iter().map(|a| 1.0 + v.iter().filter(|b| *b < a).count() as f64).collect()
        };
        let (rp, ry) = (rank(&p), rank(&y));
        let d2: f64 = rp.iter().zip(&ry).map(|(a, b)| (a - b).powi(2)).sum();
        let nf = n as f64;
        let expected = 1.0 - 6.0 * d2 / (nf * (nf * nf - 1.0));
        close(spearman(&p, &y, &ones(n)).unwrap(), expected, 1e-12);
    }

    #[test]
    fn spearman_with_ties_hand_computed() {
        // Ranks x = [1, 2.5, 2.5, 4], y = [1, 2, 3, 4]: Sxy = 4.5, Sxx = 4.5, Syy = 5,
        // ρ = 4.5 / sqrt(22.5) = 3 / sqrt(10).
        let rho = spearman(&[0.1, 0.2, 0.2, 0.3], &[1.0, 2.0, 3.0, 4.0], &ones(4)).unwrap();
        close(rho, 3.0 / 10f64.sqrt(), 1e-12);
    }

    #[test]
    fn weighted_midranks_hand_computed() {
        // Expanded: 0.1, 0.1 → 1.5; 0.2 → 3; 0.3, 0.3 → 4.5.
        let r = weighted_midranks(&[0.3, 0.1, 0.3, 0.2], &[1.0, 2.0, 1.0, 1.0]);
        assert_eq!(r, vec![4.5, 1.5, 4.5, 3.0]);
        // −0.0 and 0.0 are one tie group.
        assert_eq!(weighted_midranks(&[0.0, -0.0, 1.0], &[1.0; 3]), vec![1.5, 1.5, 3.0]);
    }

    #[test]
    fn spearman_weighted_equals_expanded_and_scale_invariant() {
        let (p, y) = binary_data(5, 80);
        let counts: Vec<usize> = (0..p.len()).map(|i| 1 + (i * 7) % 5).collect();
        let w: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
        let (ep, ey) = expand(&p, &y, &counts);
        let rho = spearman(&p, &y, &w).unwrap();
        close(rho, spearman(&ep, &ey, &ones(ep.len())).unwrap(), 1e-12);
        let scaled: Vec<f64> = w.iter().map(|v| v * 0.37).collect();
        close(spearman(&p, &y, &scaled).unwrap(), rho, 1e-12);
    }

    #[test]
    fn spearman_invariant_to_monotone_transform() {
        let mut rng = Rng(9);
        let p: Vec<f64> = (0..40).map(|_| rng.coarse()).collect();
        let y: Vec<f64> = (0..40).map(|_| rng.coarse()).collect();
        let cubed: Vec<f64> = p.iter().map(|v| v.powi(3)).collect();
        close(
            spearman(&p, &y, &ones(40)).unwrap(),
            spearman(&cubed, &y, &ones(40)).unwrap(),
            1e-12,
        );
    }

    // ---------------------------------------------------------------------- auc

    #[test]
    fn auc_hand_computed() {
        // Pairs (pos, neg): (.35,.1) win, (.35,.4) loss, (.8,.1) win, (.8,.4) win → 3/4.
        close(auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0], &ones(4)).unwrap(), 0.75, 1e-15);
        // All tied: every pair counts ½.
        close(auc(&[0.3; 4], &[0.0, 1.0, 1.0, 0.0], &ones(4)).unwrap(), 0.5, 1e-15);
        // Perfect separation, and its reverse.
        close(auc(&[0.1, 0.9], &[0.0, 1.0], &ones(2)).unwrap(), 1.0, 1e-15);
        close(auc(&[0.9, 0.1], &[0.0, 1.0], &ones(2)).unwrap(), 0.0, 1e-15);
    }

    #[test]
    fn auc_matches_mann_whitney_u() {
        let (p, y) = binary_data(21, 300);
        // Average ranks over all rows (ties averaged), then U = R₁ − n₁(n₁+1)/2.
        let rank = |a: f64| -> f64 {
            let below = p.iter().filter(|&&b| b < a).count() as f64;
            let equal = p.iter().filter(|&&b| b == a).count() as f64;
            below + (equal + 1.0) / 2.0
        };
        let n1 = y.iter().filter(|&&v| v == 1.0).count() as f64;
        let n0 = y.len() as f64 - n1;
        let r1: f64 = p.iter().zip(&y).filter(|(_, &v)| v == 1.0).map(|(&a, _)| rank(a)).sum();
        let u = r1 - n1 * (n1 + 1.0) / 2.0;
        close(auc(&p, &y, &ones(p.len())).unwrap(), u / (n1 * n0), 1e-12);
    }

    #[test]
    fn auc_weighted_matches_pairwise_and_expanded() {
        let (p, y) = binary_data(33, 70);
        let counts: Vec<usize> = (0..p.len()).map(|i| 1 + (i * 5) % 3).collect();
        let w: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
        // Brute force over all weighted pairs, the definition itself.
        let (mut num, mut wp, mut wn) = (0.0, 0.0, 0.0);
        for i in 0..p.len() {
            if y[i] == 1.0 {
                wp += w[i];
            } else {
                wn += w[i];
            }
            for j in 0..p.len() {
                if y[i] == 1.0 && y[j] == 0.0 {
                    let s = if p[i] > p[j] {
                        1.0
                    } else if p[i] == p[j] {
                        0.5
                    } else {
                        0.0
                    };
                    num += w[i] * w[j] * s;
                }
            }
        }
        let a = auc(&p, &y, &w).unwrap();
        close(a, num / (wp * wn), 1e-12);
        let (ep, ey) = expand(&p, &y, &counts);
        close(a, auc(&ep, &ey, &ones(ep.len())).unwrap(), 1e-12);
    }

    // -------------------------------------------------------------- scoring rules

    #[test]
    fn brier_hand_computed() {
        // (0.04 + 0.09 + 0.25) / 3.
        close(brier(&[0.8, 0.3, 0.5], &[1.0, 0.0, 1.0], &ones(3)).unwrap(), 0.38 / 3.0, 1e-15);
        // Weighted rates: (2·0.01 + 1·0.04) / 3.
        close(brier(&[0.4, 0.7], &[0.3, 0.9], &[2.0, 1.0]).unwrap(), 0.06 / 3.0, 1e-15);
    }

    #[test]
    fn brier_on_rates_differs_from_individuals_by_outcome_variance() {
        // Rates r with n people vs. the expanded 0/1 individuals: Brier_ind = Brier_rate
        // + Σ w r(1−r) / Σ w.
        let p = [0.2, 0.55, 0.9];
        let r = [0.25, 0.5, 0.75];
        let n = [4usize, 2, 4];
        let w: Vec<f64> = n.iter().map(|&c| c as f64).collect();
        let (mut ip, mut iy) = (Vec::new(), Vec::new());
        for i in 0..3 {
            let k = (r[i] * n[i] as f64).round() as usize;
            for j in 0..n[i] {
                ip.push(p[i]);
                iy.push(if j < k { 1.0 } else { 0.0 });
            }
        }
        let variance: f64 = (0..3).map(|i| w[i] * r[i] * (1.0 - r[i])).sum::<f64>() / 10.0;
        let individual = brier(&ip, &iy, &ones(ip.len())).unwrap();
        close(individual, brier(&p, &r, &w).unwrap() + variance, 1e-12);
    }

    #[test]
    fn nll_hand_computed() {
        let expected = -(0.8f64.ln() + 0.7f64.ln()) / 2.0;
        close(nll(&[0.8, 0.3], &[1.0, 0.0], &ones(2)).unwrap(), expected, 1e-15);
        // A rate: −[0.3 ln 0.6 + 0.7 ln 0.4].
        let rate = -(0.3 * 0.6f64.ln() + 0.7 * 0.4f64.ln());
        close(nll(&[0.6], &[0.3], &[5.0]).unwrap(), rate, 1e-15);
    }

    #[test]
    fn nll_clips_certain_wrong_predictions() {
        // p = 0 for an outcome that happened costs −ln(1e-12), not infinity.
        close(nll(&[0.0], &[1.0], &[1.0]).unwrap(), -(1e-12f64).ln(), 1e-9);
        close(nll(&[1.0], &[0.0], &[1.0]).unwrap(), 27.631021115928547, 1e-4);
        // A certain right prediction costs about 1e-12.
        assert!(nll(&[1.0, 0.0], &[1.0, 0.0], &ones(2)).unwrap() < 1e-11);
    }

    /// Rates r·n out of n people, and the same people as 0/1 rows.
    /// (p, rates, weights) and the same data as 0/1 rows (p, outcomes).
    type RatesAndIndividuals = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

    fn rates_and_individuals() -> RatesAndIndividuals {
        let p = vec![0.15, 0.5, 0.62, 0.93];
        let r = vec![0.2, 0.4, 0.5, 1.0];
        let n = [5usize, 5, 2, 3];
        let (mut ip, mut iy) = (Vec::new(), Vec::new());
        for i in 0..p.len() {
            let k = (r[i] * n[i] as f64).round() as usize;
            for j in 0..n[i] {
                ip.push(p[i]);
                iy.push(if j < k { 1.0 } else { 0.0 });
            }
        }
        let w = n.iter().map(|&c| c as f64).collect();
        (p, r, w, ip, iy)
    }

    #[test]
    fn linear_metrics_on_rates_equal_individuals() {
        let (p, r, w, ip, iy) = rates_and_individuals();
        let iw = ones(ip.len());
        for (name, f) in [
            ("nll", nll as MetricFn),
            ("accuracy", accuracy),
            ("pseudo_r2_uniform", pseudo_r2_uniform),
            ("pseudo_r2_base_rate", pseudo_r2_base_rate),
        ] {
            let (a, b) = (f(&p, &r, &w).unwrap(), f(&ip, &iy, &iw).unwrap());
            assert!((a - b).abs() <= 1e-12, "{name}: rates {a} vs individuals {b}");
        }
    }

    #[test]
    fn pseudo_r2_hand_computed() {
        let p = [0.8, 0.3, 0.6, 0.4];
        let y = [1.0, 0.0, 1.0, 1.0];
        let model = -(0.8f64.ln() + 0.7f64.ln() + 0.6f64.ln() + 0.4f64.ln()) / 4.0;
        let uniform = 2f64.ln();
        // Base rate 0.75: reference NLL = −(0.75 ln 0.75 + 0.25 ln 0.25), the entropy.
        let base = -(0.75 * 0.75f64.ln() + 0.25 * 0.25f64.ln());
        close(pseudo_r2_uniform(&p, &y, &ones(4)).unwrap(), 1.0 - model / uniform, 1e-12);
        close(pseudo_r2_base_rate(&p, &y, &ones(4)).unwrap(), 1.0 - model / base, 1e-12);
    }

    #[test]
    fn pseudo_r2_references_score_zero() {
        let y = [1.0, 0.0, 1.0, 1.0, 0.0];
        let w = [1.0, 2.0, 1.0, 3.0, 1.0];
        close(pseudo_r2_uniform(&[0.5; 5], &y, &w).unwrap(), 0.0, 1e-15);
        // Base rate = (1 + 1 + 3) / 8.
        close(pseudo_r2_base_rate(&[5.0 / 8.0; 5], &y, &w).unwrap(), 0.0, 1e-12);
        // A perfect model approaches 1 (the clip leaves ~1e-12 of loss).
        close(pseudo_r2_uniform(&y, &y, &w).unwrap(), 1.0, 1e-10);
    }

    #[test]
    fn accuracy_hand_computed() {
        // Hits: (.8,1) yes, (.3,0) yes, (.5,0) no (0.5 counts as target), (.2,1) no.
        close(
            accuracy(&[0.8, 0.3, 0.5, 0.2], &[1.0, 0.0, 0.0, 1.0], &ones(4)).unwrap(),
            0.5,
            1e-15,
        );
        // Weighted: hits weight 3 + 1 of 3 + 1 + 4 = 8.
        close(accuracy(&[0.9, 0.1, 0.7], &[1.0, 0.0, 0.0], &[3.0, 1.0, 4.0]).unwrap(), 0.5, 1e-15);
        // Rates: (2·0.7 + 1·(1 − 0.2)) / 3.
        close(accuracy(&[0.6, 0.4], &[0.7, 0.2], &[2.0, 1.0]).unwrap(), 2.2 / 3.0, 1e-15);
    }

    #[test]
    fn accuracy_binary_is_match_rate() {
        let (p, y) = binary_data(17, 200);
        let matches = p.iter().zip(&y).filter(|(&a, &b)| (a >= 0.5) == (b >= 0.5)).count();
        close(accuracy(&p, &y, &ones(200)).unwrap(), matches as f64 / 200.0, 1e-12);
    }

    #[test]
    fn every_metric_weighted_equals_expanded() {
        let (p, y) = binary_data(101, 90);
        let counts: Vec<usize> = (0..p.len()).map(|i| 1 + (i * 3) % 4).collect();
        let w: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
        let (ep, ey) = expand(&p, &y, &counts);
        let ew = ones(ep.len());
        for (name, f) in ALL {
            let (a, b) = (f(&p, &y, &w).unwrap(), f(&ep, &ey, &ew).unwrap());
            assert!((a - b).abs() <= 1e-12, "{name}: weighted {a} vs expanded {b}");
        }
    }

    // --------------------------------------------------------------- degenerate

    #[test]
    fn every_metric_rejects_common_degenerate_input() {
        let ok_p = [0.2, 0.7, 0.4];
        let ok_y = [0.0, 1.0, 1.0];
        let w1 = [1.0; 3];
        for (name, f) in ALL {
            // Sanity: the good input works for every metric.
            assert!(f(&ok_p, &ok_y, &w1).is_ok(), "{name}");
            assert_eq!(f(&[], &[], &[]), Err(MetricError::Empty), "{name}");
            let mismatch = MetricError::LengthMismatch { predictions: 3, outcomes: 2, weights: 3 };
            assert_eq!(f(&ok_p, &ok_y[..2], &w1), Err(mismatch), "{name}");
            let mismatch = MetricError::LengthMismatch { predictions: 3, outcomes: 3, weights: 4 };
            assert_eq!(f(&ok_p, &ok_y, &[1.0; 4]), Err(mismatch), "{name}");
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let mut p = ok_p;
                p[1] = bad;
                assert!(
                    matches!(
                        f(&p, &ok_y, &w1),
                        Err(MetricError::NotFinite { field: Field::Predictions, index: 1, .. })
                    ),
                    "{name}"
                );
                let mut y = ok_y;
                y[2] = bad;
                assert!(
                    matches!(
                        f(&ok_p, &y, &w1),
                        Err(MetricError::NotFinite { field: Field::Outcomes, index: 2, .. })
                    ),
                    "{name}"
                );
                let mut w = w1;
                w[0] = bad;
                assert!(
                    matches!(
                        f(&ok_p, &ok_y, &w),
                        Err(MetricError::NotFinite { field: Field::Weights, index: 0, .. })
                    ),
                    "{name}"
                );
            }
            assert_eq!(
                f(&ok_p, &ok_y, &[1.0, -0.5, 1.0]),
                Err(MetricError::NegativeWeight { index: 1, value: -0.5 }),
                "{name}"
            );
            assert_eq!(f(&ok_p, &ok_y, &[0.0; 3]), Err(MetricError::ZeroTotalWeight), "{name}");
        }
    }

    #[test]
    fn probability_metrics_reject_out_of_range() {
        for (name, f) in [
            ("brier", brier as MetricFn),
            ("nll", nll),
            ("pseudo_r2_uniform", pseudo_r2_uniform),
            ("pseudo_r2_base_rate", pseudo_r2_base_rate),
            ("accuracy", accuracy),
        ] {
            assert_eq!(
                f(&[0.2, 1.5], &[0.0, 1.0], &[1.0; 2]),
                Err(MetricError::OutOfRange { field: Field::Predictions, index: 1, value: 1.5 }),
                "{name}"
            );
            assert_eq!(
                f(&[0.2, 0.5], &[-0.1, 1.0], &[1.0; 2]),
                Err(MetricError::OutOfRange { field: Field::Outcomes, index: 0, value: -0.1 }),
                "{name}"
            );
        }
    }

    #[test]
    fn correlations_reject_constant_data() {
        for (name, f) in [("pearson", pearson as MetricFn), ("spearman", spearman)] {
            let constant_p = MetricError::Constant { field: Field::Predictions };
            let constant_y = MetricError::Constant { field: Field::Outcomes };
            assert_eq!(
                f(&[0.3; 3], &[0.0, 1.0, 1.0], &[1.0; 3]),
                Err(constant_p.clone()),
                "{name}"
            );
            assert_eq!(
                f(&[0.1, 0.2, 0.3], &[1.0; 3], &[1.0; 3]),
                Err(constant_y.clone()),
                "{name}"
            );
            // One row: constant by definition.
            assert_eq!(f(&[0.3], &[1.0], &[1.0]), Err(constant_p.clone()), "{name}");
            // A differing row with weight 0 carries no data, so the rest is still constant.
            assert_eq!(
                f(&[0.3, 0.3, 0.9], &[0.0, 1.0, 1.0], &[1.0, 1.0, 0.0]),
                Err(constant_p),
                "{name}"
            );
            assert_eq!(
                f(&[0.1, 0.2, 0.9], &[1.0, 1.0, 0.0], &[1.0, 1.0, 0.0]),
                Err(constant_y),
                "{name}"
            );
        }
    }

    #[test]
    fn pearson_extreme_magnitudes_stay_exact() {
        // Squared deviations of ±1e300 overflow f64 unless the data are rescaled first.
        let y = [0.0, 1.0, 1.0];
        let huge = pearson(&[-1e300, 1e300, 0.0], &y, &[1.0; 3]).unwrap();
        close(huge, pearson(&[-1.0, 1.0, 0.0], &y, &[1.0; 3]).unwrap(), 1e-12);
        let tiny = pearson(&[-1e-300, 1e-300, 0.0], &y, &[1.0; 3]).unwrap();
        close(tiny, huge, 1e-12);
        // Hand value: x̄ = 0, ȳ = 2/3; Sxy = 2/3 + 1/3 = 1, Sxx = 2, Syy = 2/3 → r = sqrt(3)/2.
        close(huge, 3f64.sqrt() / 2.0, 1e-12);
    }

    #[test]
    fn auc_rejects_rates_and_single_class() {
        assert_eq!(
            auc(&[0.2, 0.6], &[0.0, 0.5], &[1.0; 2]),
            Err(MetricError::NotBinary { index: 1, value: 0.5 })
        );
        assert_eq!(
            auc(&[0.2, 0.6], &[1.0, 1.0], &[1.0; 2]),
            Err(MetricError::OneClass { present: 1 })
        );
        assert_eq!(
            auc(&[0.2, 0.6], &[0.0, 0.0], &[1.0; 2]),
            Err(MetricError::OneClass { present: 0 })
        );
        // The only negative has weight 0: one class in effect.
        assert_eq!(
            auc(&[0.2, 0.6, 0.7], &[0.0, 1.0, 1.0], &[0.0, 1.0, 1.0]),
            Err(MetricError::OneClass { present: 1 })
        );
    }

    #[test]
    fn pseudo_r2_base_rate_rejects_perfect_reference() {
        let f = pseudo_r2_base_rate;
        assert_eq!(f(&[0.2, 0.6], &[1.0, 1.0], &[1.0; 2]), Err(MetricError::PerfectReference));
        assert_eq!(f(&[0.2, 0.6], &[0.0, 0.0], &[3.0, 1.0]), Err(MetricError::PerfectReference));
        // The only 0 has weight 0.
        assert_eq!(f(&[0.2, 0.6], &[0.0, 1.0], &[0.0, 1.0]), Err(MetricError::PerfectReference));
        // Constant but interior rates are fine: the reference has positive loss.
        assert!(f(&[0.2, 0.6], &[0.3, 0.3], &[1.0; 2]).is_ok());
    }

    #[test]
    fn errors_have_readable_messages() {
        let e = pearson(&[0.1, f64::NAN], &[0.0, 1.0], &[1.0; 2]).unwrap_err();
        assert_eq!(e.to_string(), "predictions[1] is NaN, not a finite number");
        let e = auc(&[0.1, 0.2], &[1.0, 1.0], &[1.0; 2]).unwrap_err();
        assert!(e.to_string().contains("AUC needs both"), "{e}");
    }
}
