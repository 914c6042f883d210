//! descry-metrics: the built-in metrics plugin.
//!
//! Compares predicted probabilities of a target option with what people did, for
//! individual decisions (0/1 outcomes, weight 1) and aggregated data (a choice rate with
//! the number of people as weight). The math lives in [`stats`] as plain functions, so
//! the host can call it directly through this crate's rlib; [`METRICS`] lists every metric
//! with its name and direction, and the cdylib exports the same set through the descry
//! plugin ABI (`descry_abi::export_metrics!`).
//!
//! | name | higher is better | definition |
//! |---|---|---|
//! | `pearson` | yes | weighted Pearson r ([`stats::pearson`]) |
//! | `spearman` | yes | weighted Pearson r of weighted mid-ranks ([`stats::spearman`]) |
//! | `auc` | yes | weighted ROC AUC, ties count ½, 0/1 outcomes only ([`stats::auc`]) |
//! | `brier` | no | Σw(p−y)²/Σw ([`stats::brier`]) |
//! | `nll` | no | `Σw·−[y ln p + (1−y) ln(1−p)]/Σw`, p clipped to [1e-12, 1−1e-12] ([`stats::nll`]) |
//! | `pseudo_r2_uniform` | yes | 1 − NLL/ln 2 ([`stats::pseudo_r2_uniform`]) |
//! | `pseudo_r2_base_rate` | yes | 1 − NLL/NLL(ȳ) ([`stats::pseudo_r2_base_rate`]) |
//! | `accuracy` | yes | `Σw·[y if p≥½ else 1−y]/Σw` ([`stats::accuracy`]) |
#![deny(missing_docs)]
// abi_stable's export macro expands to impls the newer lint flags; they are sound.
#![allow(non_local_definitions)]

pub mod stats;

use descry_abi::{
    metric::MetricPlugin,
    types::{MetricInfo, MetricInput, PluginInfo},
    PluginError,
};
pub use stats::{Field, MetricError};

/// A metric function: `(predictions, outcomes, weights) -> value`.
pub type MetricFn = fn(&[f64], &[f64], &[f64]) -> Result<f64, MetricError>;

/// One built-in metric: what the config calls it, what it is, and how to compute it.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// Name the config refers to.
    pub name: &'static str,
    /// One line saying what it computes.
    pub description: &'static str,
    /// True when larger values mean better predictions.
    pub higher_is_better: bool,
    /// The function in [`stats`].
    pub compute: MetricFn,
}

/// Every built-in metric, in a fixed order (the order the plugin exports them in).
pub const METRICS: &[MetricDef] = &[
    MetricDef {
        name: "pearson",
        description: "Weighted Pearson correlation r between p and the outcome (point-biserial for 0/1 outcomes)",
        higher_is_better: true,
        compute: stats::pearson,
    },
    MetricDef {
        name: "spearman",
        description: "Weighted Spearman rho: weighted Pearson r of weighted mid-ranks (ties averaged)",
        higher_is_better: true,
        compute: stats::spearman,
    },
    MetricDef {
        name: "auc",
        description: "Weighted ROC AUC for 0/1 outcomes, ties counting 1/2",
        higher_is_better: true,
        compute: stats::auc,
    },
    MetricDef {
        name: "brier",
        description: "Weighted mean squared error (p - outcome)^2",
        higher_is_better: false,
        compute: stats::brier,
    },
    MetricDef {
        name: "nll",
        description: "Weighted mean negative log-likelihood in nats, p clipped to [1e-12, 1-1e-12]",
        higher_is_better: false,
        compute: stats::nll,
    },
    MetricDef {
        name: "pseudo_r2_uniform",
        description: "McFadden pseudo-R2 against predicting 0.5: 1 - NLL / ln 2",
        higher_is_better: true,
        compute: stats::pseudo_r2_uniform,
    },
    MetricDef {
        name: "pseudo_r2_base_rate",
        description: "McFadden pseudo-R2 against predicting the weighted mean outcome: 1 - NLL / NLL(base rate)",
        higher_is_better: true,
        compute: stats::pseudo_r2_base_rate,
    },
    MetricDef {
        name: "accuracy",
        description: "Weighted share of outcomes on the side chosen by p >= 0.5",
        higher_is_better: true,
        compute: stats::accuracy,
    },
];

/// The built-in metric called `name`, if any.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| m.name == name)
}

/// A [`MetricDef`] seen through the plugin trait; a thin wrapper, the math is in [`stats`].
struct Builtin(&'static MetricDef);

impl MetricPlugin for Builtin {
    fn info(&self) -> MetricInfo {
        MetricInfo {
            name: self.0.name.into(),
            description: self.0.description.into(),
            higher_is_better: self.0.higher_is_better,
        }
    }

    fn compute(&self, input: &MetricInput) -> Result<f64, PluginError> {
        (self.0.compute)(&input.predictions, &input.outcomes, &input.weights)
            .map_err(|e| Box::new(e) as PluginError)
    }
}

/// Every built-in metric as a plugin object, in the order of [`METRICS`].
pub fn plugins() -> Vec<Box<dyn MetricPlugin>> {
    METRICS.iter().map(|m| Box::new(Builtin(m)) as Box<dyn MetricPlugin>).collect()
}

/// The plugin's ABI entry point: the root module the descry host loads from the cdylib.
// The export macro's generated function and static carry no doc comments, which
// `deny(missing_docs)` would reject; a module lets the allow cover exactly them.
#[allow(missing_docs)]
pub mod export {
    use super::{plugins, PluginInfo};

    descry_abi::export_metrics!(
        PluginInfo {
            name: "metrics".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description:
                "Built-in metrics: Pearson, Spearman, ROC AUC, Brier, NLL, pseudo-R², accuracy (weighted)"
                    .into(),
        },
        plugins()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::{RResult, RVec};

    fn input(p: &[f64], y: &[f64], w: &[f64]) -> MetricInput {
        MetricInput {
            predictions: RVec::from(p.to_vec()),
            outcomes: RVec::from(y.to_vec()),
            weights: RVec::from(w.to_vec()),
        }
    }

    #[test]
    fn names_are_the_configured_set_and_unique() {
        let names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            [
                "pearson",
                "spearman",
                "auc",
                "brier",
                "nll",
                "pseudo_r2_uniform",
                "pseudo_r2_base_rate",
                "accuracy"
            ]
        );
        let lower: Vec<&str> =
            METRICS.iter().filter(|m| !m.higher_is_better).map(|m| m.name).collect();
        assert_eq!(lower, ["brier", "nll"]);
        assert!(find("pearson").is_some() && find("nope").is_none());
    }

    #[test]
    fn plugin_wrappers_match_stats_functions() {
        let (p, y, w) = ([0.2, 0.7, 0.4, 0.9], [0.0, 1.0, 1.0, 1.0], [1.0, 2.0, 1.0, 3.0]);
        for (plugin, def) in plugins().iter().zip(METRICS) {
            assert_eq!(plugin.info().name.as_str(), def.name);
            assert_eq!(plugin.info().higher_is_better, def.higher_is_better);
            let via_plugin = plugin.compute(&input(&p, &y, &w)).unwrap();
            assert_eq!(via_plugin, (def.compute)(&p, &y, &w).unwrap(), "{}", def.name);
        }
    }

    #[test]
    fn plugin_errors_carry_the_reason() {
        for plugin in plugins() {
            let e = plugin.compute(&input(&[], &[], &[])).unwrap_err();
            assert!(e.to_string().contains("no data"), "{}: {e}", plugin.info().name);
        }
    }

    #[test]
    fn exported_root_module_works_across_the_abi() {
        let module = export::descry_metrics_root_module();
        assert_eq!(module.abi_version(), descry_abi::ABI_VERSION);
        assert_eq!((module.info())().name.as_str(), "metrics");
        let metrics = match (module.new())() {
            RResult::ROk(m) => m,
            RResult::RErr(e) => panic!("new failed: {e}"),
        };
        assert_eq!(metrics.len(), METRICS.len());
        let pearson = metrics
            .iter()
            .find(|m| matches!(m.info(), RResult::ROk(ref i) if i.name.as_str() == "pearson"))
            .expect("pearson is exported");
        match pearson.compute(&input(&[0.1, 0.2, 0.3], &[0.1, 0.3, 0.2], &[1.0; 3])) {
            RResult::ROk(r) => assert!((r - 0.5).abs() < 1e-12, "{r}"),
            RResult::RErr(e) => panic!("{e}"),
        }
        // Degenerate input comes back as an error value, not a panic or abort.
        match pearson.compute(&input(&[0.3; 3], &[0.0, 1.0, 1.0], &[1.0; 3])) {
            RResult::ROk(r) => panic!("expected an error, got {r}"),
            RResult::RErr(e) => assert!(e.to_string().contains("constant"), "{e}"),
        }
    }
}
