//! Analysis of stored predictions: metrics per model × game × variant, per round and
//! round bucket, per game-configuration value; bootstrap confidence intervals over
//! episodes; base-vs-aligned pairs with the paper's filters; win counts and sign tests.
//!
//! Everything here is a pure function of the prediction rows, the metrics and the study's
//! settings, so `descry report RUN_DIR` recomputes the same tables from the store.

use crate::significance::{binomial_upper_tail, wilcoxon_signed_rank_greater};
use crate::{
    registry::Registry,
    store::PredictionRow,
    study::{model_label, PairStatus},
};
use descry_abi::types::MetricInput;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Metadata keys that describe the outcome or the bookkeeping, not the game's configuration.
const NOT_CONFIGURATION: &[&str] = &["answer", "family"];

/// The settings an analysis needs (from the study's `[analysis]` and `[filters]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnalysisSettings {
    /// Metrics to compute.
    pub metrics: Vec<String>,
    /// Metric deciding winners and the correlation filter.
    pub primary_metric: String,
    /// Bootstrap resamples.
    pub bootstrap: usize,
    /// Seed.
    pub seed: u64,
    /// Mass filter.
    pub min_mass: f64,
    /// Correlation filter.
    pub min_correlation: f64,
    /// Families whose games have several rounds.
    pub multi_round_families: BTreeSet<String>,
}

/// A metric's value, or why it has none.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetricValue {
    /// The value (NaN when undefined).
    pub value: f64,
    /// Why it is undefined, if it is.
    pub note: Option<String>,
}

/// One row of the per-model table.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRow {
    /// Model label.
    pub model: String,
    /// `base`, `aligned`.
    pub role: String,
    /// Game.
    pub game: String,
    /// Family.
    pub family: String,
    /// Variant.
    pub variant: String,
    /// Decisions.
    pub n: usize,
    /// Episodes.
    pub episodes: usize,
    /// Mean mass on the options.
    pub mean_mass: f64,
    /// Metric values by name.
    pub metrics: BTreeMap<String, MetricValue>,
    /// 95% percentile bootstrap CI of the primary metric, resampling episodes.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
}

/// One row of a breakdown table (by round, round bucket or configuration value).
#[derive(Debug, Clone, Serialize)]
pub struct SliceRow {
    /// Model label.
    pub model: String,
    /// Game.
    pub game: String,
    /// Family.
    pub family: String,
    /// Variant.
    pub variant: String,
    /// What the slice is over (`round`, `round_bucket`, or a metadata field).
    pub by: String,
    /// The slice's value.
    pub value: String,
    /// Decisions.
    pub n: usize,
    /// Mean mass.
    pub mean_mass: f64,
    /// Primary metric.
    pub metric: f64,
    /// Why the metric is undefined, if it is.
    pub note: Option<String>,
}

/// One pair in one family and variant.
#[derive(Debug, Clone, Serialize)]
pub struct PairRow {
    /// Pair name.
    pub pair: String,
    /// Family.
    pub family: String,
    /// Variant.
    pub variant: String,
    /// Subset analysed (`all`, `round 1`, `rounds 2+`).
    pub subset: String,
    /// Base model label.
    pub base: String,
    /// Aligned model label.
    pub aligned: String,
    /// Decisions (per model).
    pub n: usize,
    /// Primary metric of the base model.
    pub metric_base: f64,
    /// Primary metric of the aligned model.
    pub metric_aligned: f64,
    /// Mean mass of the base model.
    pub mass_base: f64,
    /// Mean mass of the aligned model.
    pub mass_aligned: f64,
    /// Why the pair is excluded here, if it is.
    pub excluded: Option<String>,
    /// `base` or `aligned` (empty when excluded or tied).
    pub winner: String,
}

/// Win counts in one family (or over all multi-round families) and variant.
#[derive(Debug, Clone, Serialize)]
pub struct WinRow {
    /// Family, or `all multi-round`.
    pub family: String,
    /// Variant.
    pub variant: String,
    /// Subset (`all`, `round 1`, `rounds 2+`).
    pub subset: String,
    /// Pairs the base model won.
    pub base_wins: usize,
    /// Pairs the aligned model won.
    pub aligned_wins: usize,
    /// Pairs excluded by the filters.
    pub excluded: usize,
    /// One-sided binomial sign test in the majority's direction: P(X ≥ majority | n, ½).
    pub sign_test_p: f64,
    /// One-sided Wilcoxon signed-rank test on the pairs' metric differences (base −
    /// aligned), in the majority's direction (base when tied), exact.
    pub wilcoxon_p: f64,
}

/// The whole analysis.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// Per model × game × variant.
    pub models: Vec<ModelRow>,
    /// Per round, round bucket and configuration value.
    pub slices: Vec<SliceRow>,
    /// Per pair × family × variant × subset.
    pub pairs: Vec<PairRow>,
    /// Win counts.
    pub wins: Vec<WinRow>,
    /// Pairs excluded as a whole (same weights, no chat template).
    pub excluded_pairs: Vec<PairStatus>,
}

/// Computes a metric through its plugin. Degenerate input is a NaN with the reason.
pub fn compute_metric(registry: &Registry, name: &str, rows: &[&PredictionRow]) -> MetricValue {
    let Some(metric) = registry.metric(name) else {
        return MetricValue {
            value: f64::NAN,
            note: Some(format!("no metric named `{name}` is loaded")),
        };
    };
    let input = MetricInput {
        predictions: rows.iter().map(|r| r.prediction).collect::<Vec<_>>().into(),
        outcomes: rows.iter().map(|r| r.outcome).collect::<Vec<_>>().into(),
        weights: rows.iter().map(|r| r.weight).collect::<Vec<_>>().into(),
    };
    match metric.metric.compute(&input).into_result() {
        Ok(value) => MetricValue { value, note: None },
        Err(e) => MetricValue { value: f64::NAN, note: Some(e.to_string()) },
    }
}

fn mean_mass(rows: &[&PredictionRow]) -> f64 {
    if rows.is_empty() {
        return f64::NAN;
    }
    rows.iter().map(|r| r.mass).sum::<f64>() / rows.len() as f64
}

/// Percentile bootstrap CI (95%) of a metric, resampling whole episodes.
pub fn bootstrap_ci(
    registry: &Registry,
    name: &str,
    rows: &[&PredictionRow],
    resamples: usize,
    seed: u64,
) -> (f64, f64) {
    if resamples == 0 || rows.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut episodes: BTreeMap<&str, Vec<&PredictionRow>> = BTreeMap::new();
    for r in rows {
        episodes.entry(r.episode.as_str()).or_default().push(r);
    }
    let groups: Vec<&Vec<&PredictionRow>> = episodes.values().collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(resamples);
    let mut sample: Vec<&PredictionRow> = Vec::with_capacity(rows.len());
    for _ in 0..resamples {
        sample.clear();
        for _ in 0..groups.len() {
            sample.extend(groups[rng.random_range(0..groups.len())].iter().copied());
        }
        let v = compute_metric(registry, name, &sample).value;
        if v.is_finite() {
            values.push(v);
        }
    }
    if values.len() < resamples / 2 {
        return (f64::NAN, f64::NAN);
    }
    values.sort_by(f64::total_cmp);
    let at =
        |q: f64| values[((q * (values.len() - 1) as f64).round() as usize).min(values.len() - 1)];
    (at(0.025), at(0.975))
}

/// Per family × variant × subset: base wins, aligned wins, excluded, and base − aligned of
/// every compared pair.
type WinTally = (usize, usize, usize, Vec<f64>);

fn key_of(r: &PredictionRow) -> (&str, &str, &str) {
    (r.model.as_str(), r.game.as_str(), r.variant.as_str())
}

/// Runs the analysis over all rows.
pub fn analyse(
    registry: &Registry,
    rows: &[PredictionRow],
    pairs: &[PairStatus],
    settings: &AnalysisSettings,
) -> Analysis {
    let labels: Vec<String> = rows.iter().map(|r| model_label(&r.model, &r.format)).collect();
    // Units.
    let mut units: BTreeMap<(String, &str, &str), Vec<&PredictionRow>> = BTreeMap::new();
    for (r, label) in rows.iter().zip(&labels) {
        let (_, g, v) = key_of(r);
        units.entry((label.clone(), g, v)).or_default().push(r);
    }
    let mut models = Vec::new();
    let mut slices = Vec::new();
    for ((label, game, variant), unit_rows) in &units {
        let first = unit_rows[0];
        let metrics: BTreeMap<String, MetricValue> = settings
            .metrics
            .iter()
            .map(|m| (m.clone(), compute_metric(registry, m, unit_rows)))
            .collect();
        let seed = settings.seed ^ fxhash(&format!("{label}/{game}/{variant}"));
        let (ci_low, ci_high) =
            bootstrap_ci(registry, &settings.primary_metric, unit_rows, settings.bootstrap, seed);
        models.push(ModelRow {
            model: label.clone(),
            role: first.role.clone(),
            game: game.to_string(),
            family: first.family.clone(),
            variant: variant.to_string(),
            n: unit_rows.len(),
            episodes: unit_rows.iter().map(|r| r.episode.as_str()).collect::<BTreeSet<_>>().len(),
            mean_mass: mean_mass(unit_rows),
            metrics,
            ci_low,
            ci_high,
        });
        // Slices: round, round bucket, metadata values.
        let mut by: BTreeMap<(String, String), Vec<&PredictionRow>> = BTreeMap::new();
        let multi_round = unit_rows.iter().any(|r| r.round > 1);
        for r in unit_rows {
            if multi_round {
                by.entry(("round".into(), format!("{:02}", r.round))).or_default().push(r);
                let bucket = if r.round == 1 { "round 1" } else { "rounds 2+" };
                by.entry(("round_bucket".into(), bucket.into())).or_default().push(r);
            }
            if let Ok(serde_json::Value::Object(meta)) =
                serde_json::from_str::<serde_json::Value>(&r.metadata)
            {
                for (k, v) in meta {
                    // Not configuration: the person's own answer, and the family tag.
                    if NOT_CONFIGURATION.contains(&k.as_str()) {
                        continue;
                    }
                    let value = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    by.entry((k, value)).or_default().push(r);
                }
            }
        }
        // Fields with too many values (ids, free text) are not configuration values.
        let mut values_per_field: BTreeMap<&str, usize> = BTreeMap::new();
        for (field, _) in by.keys() {
            *values_per_field.entry(field.as_str()).or_default() += 1;
        }
        for ((field, value), slice) in &by {
            if values_per_field[field.as_str()] > 24
                || values_per_field[field.as_str()] < 2 && field != "round_bucket"
            {
                continue;
            }
            let m = compute_metric(registry, &settings.primary_metric, slice);
            slices.push(SliceRow {
                model: label.clone(),
                game: game.to_string(),
                family: first.family.clone(),
                variant: variant.to_string(),
                by: field.clone(),
                value: value.clone(),
                n: slice.len(),
                mean_mass: mean_mass(slice),
                metric: m.value,
                note: m.note,
            });
        }
    }

    // Pairs per family × variant × subset.
    let mut pair_rows = Vec::new();
    let families: BTreeSet<(&str, &str)> =
        rows.iter().map(|r| (r.family.as_str(), r.variant.as_str())).collect();
    for pair in pairs.iter().filter(|p| p.excluded.is_none()) {
        for &(family, variant) in &families {
            let pick = |label: &str, subset: &str| -> Vec<&PredictionRow> {
                rows.iter()
                    .zip(&labels)
                    .filter(|(r, l)| {
                        l.as_str() == label && r.family == family && r.variant == variant
                    })
                    .filter(|(r, _)| match subset {
                        "round 1" => r.round == 1,
                        "rounds 2+" => r.round > 1,
                        _ => true,
                    })
                    .map(|(r, _)| r)
                    .collect()
            };
            let subsets: &[&str] = if settings.multi_round_families.contains(family) {
                &["all", "round 1", "rounds 2+"]
            } else {
                &["all"]
            };
            for &subset in subsets {
                let (b, a) = (pick(&pair.base, subset), pick(&pair.aligned, subset));
                if b.is_empty() || a.is_empty() {
                    continue;
                }
                let mb = compute_metric(registry, &settings.primary_metric, &b).value;
                let ma = compute_metric(registry, &settings.primary_metric, &a).value;
                let (mass_b, mass_a) = (mean_mass(&b), mean_mass(&a));
                let excluded = if mass_b < settings.min_mass || mass_a < settings.min_mass {
                    Some(format!(
                        "mean mass below {} (base {:.3}, aligned {:.3})",
                        settings.min_mass, mass_b, mass_a
                    ))
                } else if !(mb >= settings.min_correlation || ma >= settings.min_correlation) {
                    Some(format!(
                        "both {} below {} (base {:.3}, aligned {:.3})",
                        settings.primary_metric, settings.min_correlation, mb, ma
                    ))
                } else {
                    None
                };
                let winner =
                    if excluded.is_some() || !(mb.is_finite() && ma.is_finite()) || mb == ma {
                        String::new()
                    } else if mb > ma {
                        "base".into()
                    } else {
                        "aligned".into()
                    };
                pair_rows.push(PairRow {
                    pair: pair.name.clone(),
                    family: family.to_string(),
                    variant: variant.to_string(),
                    subset: subset.to_string(),
                    base: pair.base.clone(),
                    aligned: pair.aligned.clone(),
                    n: b.len(),
                    metric_base: mb,
                    metric_aligned: ma,
                    mass_base: mass_b,
                    mass_aligned: mass_a,
                    excluded,
                    winner,
                });
            }
        }
    }

    // Wins per family × variant × subset, and over the multi-round families.
    let mut tallies: BTreeMap<(String, String, String), WinTally> = BTreeMap::new();
    for p in &pair_rows {
        let mut keys = vec![(p.family.clone(), p.variant.clone(), p.subset.clone())];
        if settings.multi_round_families.contains(&p.family) {
            keys.push(("all multi-round".into(), p.variant.clone(), p.subset.clone()));
        }
        for k in keys {
            let t = tallies.entry(k).or_default();
            match p.winner.as_str() {
                "base" => t.0 += 1,
                "aligned" => t.1 += 1,
                _ => t.2 += 1,
            }
            if p.excluded.is_none() {
                t.3.push(p.metric_base - p.metric_aligned);
            }
        }
    }
    let wins = tallies
        .into_iter()
        .map(|((family, variant, subset), (b, a, x, diffs))| {
            let toward_majority: Vec<f64> =
                if a > b { diffs.iter().map(|d| -d).collect() } else { diffs };
            WinRow {
                family,
                variant,
                subset,
                base_wins: b,
                aligned_wins: a,
                excluded: x,
                sign_test_p: binomial_upper_tail(a + b, a.max(b)),
                wilcoxon_p: wilcoxon_signed_rank_greater(&toward_majority),
            }
        })
        .collect();
    Analysis {
        models,
        slices,
        pairs: pair_rows,
        wins,
        excluded_pairs: pairs.iter().filter(|p| p.excluded.is_some()).cloned().collect(),
    }
}

/// A small stable string hash (seeds per unit; not for security).
fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::LoadedMetric;

    /// A registry holding the built-in metrics (the real metrics crate, linked directly).
    fn registry() -> Registry {
        let boxes =
            descry_abi::metric::new_guarded_metrics("descry-metrics", descry_metrics::plugins)
                .into_result()
                .expect("metrics");
        let library = descry_abi::types::PluginInfo {
            name: "metrics".into(),
            version: "test".into(),
            description: String::new().into(),
        };
        let metrics = boxes
            .into_iter()
            .map(|metric| LoadedMetric {
                info: metric.info().into_result().expect("info"),
                library: library.clone(),
                path: "linked".into(),
                metric,
            })
            .collect();
        Registry { metrics, ..Registry::default() }
    }

    fn settings(multi_round: bool) -> AnalysisSettings {
        AnalysisSettings {
            metrics: vec!["pearson".into()],
            primary_metric: "pearson".into(),
            bootstrap: 0,
            seed: 1,
            min_mass: 0.8,
            min_correlation: 0.3,
            multi_round_families: if multi_round {
                BTreeSet::from(["g".to_string()])
            } else {
                BTreeSet::new()
            },
        }
    }

    /// One model's rows on family `g`: outcomes 0, 1, 0, 1, … over two rounds, predictions
    /// from `predict(outcome, round)`, all with mass `mass`.
    fn rows(
        name: &str,
        role: &str,
        mass: f64,
        predict: impl Fn(f64, u32) -> f64,
    ) -> Vec<PredictionRow> {
        (0..8)
            .map(|i| {
                let outcome = (i % 2) as f64;
                let round = 1 + (i / 4) as u32;
                PredictionRow {
                    key: format!("{name}{i}"),
                    index: i,
                    model: name.into(),
                    role: role.into(),
                    format: if role == "base" { "plain" } else { "chat" }.into(),
                    game: "g".into(),
                    family: "g".into(),
                    variant: "native".into(),
                    decision: format!("d{i}"),
                    episode: format!("e{}", i % 4),
                    round,
                    outcome_option: String::new(),
                    outcome,
                    weight: 1.0,
                    prediction: predict(outcome, round),
                    mass,
                    option_probs: "{}".into(),
                    prompt_tokens: 10,
                    flags: String::new(),
                    metadata: "{}".into(),
                }
            })
            .collect()
    }

    fn pair() -> Vec<PairStatus> {
        vec![PairStatus {
            name: "p".into(),
            base: "b.plain".into(),
            aligned: "a.chat".into(),
            excluded: None,
            size_b: None,
        }]
    }

    fn pair_row<'a>(analysis: &'a Analysis, subset: &str) -> &'a PairRow {
        analysis.pairs.iter().find(|p| p.subset == subset).expect("pair row")
    }

    #[test]
    fn the_better_correlated_model_wins_its_pair() {
        // Base follows the outcome closely; aligned only a little.
        let mut all = rows("b", "base", 0.9, |o, _| 0.2 + 0.6 * o);
        all.extend(rows("a", "aligned", 0.9, |o, r| 0.5 + 0.05 * o * r as f64 - 0.02 * r as f64));
        let analysis = analyse(&registry(), &all, &pair(), &settings(false));
        let row = pair_row(&analysis, "all");
        assert!((row.metric_base - 1.0).abs() < 1e-9, "{}", row.metric_base);
        assert!(row.metric_aligned < row.metric_base);
        assert_eq!(row.winner, "base");
        assert_eq!(row.excluded, None);
        let wins = analysis.wins.iter().find(|w| w.family == "g").expect("wins");
        assert_eq!((wins.base_wins, wins.aligned_wins, wins.excluded), (1, 0, 0));
    }

    #[test]
    fn low_mass_or_low_correlation_excludes_a_pair_from_the_count() {
        // The paper's filters: mean mass below 0.8 on either side, or both correlations
        // below 0.3.
        let mut all = rows("b", "base", 0.9, |o, _| 0.2 + 0.6 * o);
        all.extend(rows("a", "aligned", 0.5, |o, _| 0.3 + 0.4 * o));
        let analysis = analyse(&registry(), &all, &pair(), &settings(false));
        let row = pair_row(&analysis, "all");
        assert!(row.excluded.as_deref().is_some_and(|e| e.contains("mean mass below 0.8")));
        assert_eq!(row.winner, "");

        let flat = |i: u32| move |_: f64, r: u32| 0.5 + 0.01 * ((r + i) % 2) as f64;
        let mut all = rows("b", "base", 0.9, flat(0));
        all.extend(rows("a", "aligned", 0.9, flat(1)));
        let analysis = analyse(&registry(), &all, &pair(), &settings(false));
        let row = pair_row(&analysis, "all");
        assert!(
            row.excluded.as_deref().is_some_and(|e| e.contains("both pearson below 0.3")),
            "{row:?}"
        );
        let wins = analysis.wins.iter().find(|w| w.family == "g").expect("wins");
        assert_eq!((wins.base_wins, wins.aligned_wins, wins.excluded), (0, 0, 1));
    }

    #[test]
    fn multi_round_families_are_also_compared_by_first_and_later_rounds() {
        // Aligned is right in round 1 only; base in rounds 2+ only.
        let mut all = rows("b", "base", 0.9, |o, r| if r == 1 { 0.5 } else { 0.2 + 0.6 * o });
        all.extend(rows("a", "aligned", 0.9, |o, r| if r == 1 { 0.2 + 0.6 * o } else { 0.5 }));
        // Make the flat halves not exactly constant, so the correlations are defined.
        for (i, r) in all.iter_mut().enumerate() {
            r.prediction += 0.001 * (i % 3) as f64;
        }
        let analysis = analyse(&registry(), &all, &pair(), &settings(true));
        assert_eq!(pair_row(&analysis, "round 1").winner, "aligned");
        assert_eq!(pair_row(&analysis, "rounds 2+").winner, "base");
        assert!(analysis.wins.iter().any(|w| w.family == "all multi-round"));
    }

    #[test]
    fn an_unknown_metric_is_a_number_with_a_reason_never_a_guess() {
        let all = rows("b", "base", 0.9, |o, _| o);
        let refs: Vec<&PredictionRow> = all.iter().collect();
        let m = compute_metric(&registry(), "accuracy_at_7", &refs);
        assert!(m.value.is_nan());
        assert!(m.note.as_deref().is_some_and(|n| n.contains("no metric named")));
        assert!(bootstrap_ci(&registry(), "pearson", &[], 100, 1).0.is_nan());
    }
}
