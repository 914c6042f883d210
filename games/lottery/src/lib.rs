//! descry game plugin `lottery`: choices13k (Peterson et al. 2021), choices between two
//! gambles with aggregated human choice rates.
//!
//! Each problem offers gamble A (two outcomes) and gamble B (a sure amount or a lottery);
//! the human outcome is `bRate`, the mean rate of choosing B, with weight `n` (the number
//! of people). Each CSV row (a problem in one feedback condition) is one episode with one
//! decision point. Gambles are described from the exact outcomes in `c13k_problems.json`;
//! outcomes with probability 0 are not shown; when `Amb` is true, B's probabilities were
//! hidden from the participants and are hidden in the prompt too.
//!
//! # Data
//! `path` is the folder holding `c13k_selections.csv` and `c13k_problems.json`, or the CSV
//! itself (the JSON beside it). CSV columns used: `Problem, Feedback, n, Block, Ha, pHa, La,
//! Hb, pHb, Lb, LotShapeB, LotNumB, Amb, Corr, bRate`. JSON: key = 0-based CSV row index,
//! value `{"A": [[prob, payoff], ...], "B": [...]}`; the two files must have the same
//! number of rows. Every row is checked, whichever condition is loaded: `bRate` in [0, 1],
//! `n` a positive finite count, `pHa` and `pHb` in [0, 1], `Ha`, `La`, `Hb`, `Lb` finite;
//! each gamble has at least one outcome, finite payoffs and probabilities in [0, 1] that
//! sum to 1 (within 1e-6). An error names the file and the line (CSV) or the key (JSON).
//!
//! # Parameters
//! `{"feedback": "all" | true | false}`, default `"all"`: all rows, only the rows with
//! feedback, or only those without (the closest to one-shot decisions from description;
//! the prompt is the same description in every condition).
//!
//! # Options
//! `A` and `B` (target: `bRate` is the rate of B); surface forms `A`, ` A`, `a`, ` a`.
//!
//! # Variants
//! - `native` (default): a system message saying the person chooses one of two gambles
//!   that is then played; the gambles in words in the user message; answer prefix.
//! - `predict`: observer framing: predict which gamble a participant chose.
//! - `numbers_only`: no system message; each gamble as `payoff (probability)` pairs.
//!
//! # Metadata
//! `family` (`lottery`), `problem`, `feedback`, `amb`, `block`, `corr`, `lot_shape_b`,
//! `lot_num_b`, `n`, `ha`, `p_ha`, `la`, `hb`, `p_hb`, `lb`, `ev_a`, `ev_b` (expected
//! values from the exact outcomes).
#![deny(missing_docs)]

use descry_abi::types::{DecisionOption, DecisionPoint, Episode, LoadedData, Prompt};
use descry_game_kit::{
    csv_table::{de, CsvTable},
    game::Game,
    json::{read_json, to_json},
    options,
    render::{answer_instruction, decimal, Messages},
    KitError,
};
use serde::{Deserialize, Serialize};
use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

/// The plugin's name and family.
pub const NAME: &str = "lottery";

descry_game_kit::variants! {
    /// The prompt variants (see the crate docs).
    pub enum Variant {
        Native = "native", transcript: false, "The participant's task in the system message; the two gambles in words in the user message; answer prefix.";
        Predict = "predict", transcript: false, "Observer framing: predict which gamble a participant chose.";
        NumbersOnly = "numbers_only", transcript: false, "No system message; each gamble as payoff (probability) pairs.";
    }
}

/// The choices13k plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct Lottery;

descry_game_kit::plugin!(Lottery);

/// Which feedback condition to load.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    /// Every row.
    #[default]
    All,
    /// Only rows with `Feedback == want`.
    Only(bool),
}

impl<'de> Deserialize<'de> for Feedback {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor rather than an untagged enum, whose error names no accepted value.
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Feedback;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or \"all\"")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Feedback, E> {
                Ok(Feedback::Only(b))
            }
            fn visit_str<E: serde::de::Error>(self, t: &str) -> Result<Feedback, E> {
                match t {
                    "all" => Ok(Feedback::All),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(t), &self)),
                }
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Feedback, E> {
                Ok(Feedback::All)
            }
        }
        d.deserialize_any(V)
    }
}

/// Load parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// The feedback condition.
    pub feedback: Feedback,
}

#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
struct Row {
    Problem: u32,
    #[serde(deserialize_with = "de::py_bool")]
    Feedback: bool,
    n: f64,
    Block: u32,
    Ha: f64,
    pHa: f64,
    La: f64,
    Hb: f64,
    pHb: f64,
    Lb: f64,
    LotShapeB: u32,
    LotNumB: u32,
    #[serde(deserialize_with = "de::py_bool")]
    Amb: bool,
    Corr: i32,
    bRate: f64,
}

/// The exact outcomes of one problem: `[probability, payoff]` pairs.
#[derive(Debug, Clone, Deserialize)]
struct Outcomes {
    #[serde(rename = "A")]
    a: Vec<[f64; 2]>,
    #[serde(rename = "B")]
    b: Vec<[f64; 2]>,
}

/// What `render` needs: the two gambles as shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Context {
    /// (probability, payoff) of each outcome shown, probability 0 left out.
    a: Vec<(f64, f64)>,
    b: Vec<(f64, f64)>,
    /// B's probabilities were hidden.
    amb: bool,
}

const COLUMNS: [&str; 15] = [
    "Problem",
    "Feedback",
    "n",
    "Block",
    "Ha",
    "pHa",
    "La",
    "Hb",
    "pHb",
    "Lb",
    "LotShapeB",
    "LotNumB",
    "Amb",
    "Corr",
    "bRate",
];

impl Game for Lottery {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "choices13k: choices between two gambles; the outcome is the rate of choosing B.";
    const MULTI_ROUND: bool = false;
    const TARGET_OPTION: &'static str = "B";
    type Params = Params;
    type Variant = Variant;
    type Context = Context;

    fn options() -> Vec<DecisionOption> {
        vec![options::option("A", &["A"]), options::option("B", &["B"])]
    }

    fn load(path: &Path, params: Params) -> Result<LoadedData, KitError> {
        load(path, params.feedback)
    }

    fn prompt(ctx: &Context, variant: Variant) -> Prompt {
        let instruction = answer_instruction(&["A", "B"]);
        let mut m = Messages::new();
        match variant {
            Variant::Native => {
                m.system(
                    "You are taking part in an experiment on decision-making. In each problem you choose one of two \
                     gambles, A or B. The gamble you choose is played, and its outcome is added to your payoff.",
                );
                m.user(format!(
                    "{}\n{}\nWhich gamble do you choose? {instruction}",
                    in_words("A", &ctx.a, false),
                    in_words("B", &ctx.b, ctx.amb)
                ));
            }
            Variant::Predict => {
                m.system(
                    "You are an expert in predicting human decisions. Participants in an online experiment chose \
                     between two gambles, A and B; the chosen gamble was played and its outcome added to their \
                     payoff. Predict which gamble a participant chose.",
                );
                m.user(format!(
                    "{}\n{}\nWhich gamble did the participant choose? {instruction}",
                    in_words("A", &ctx.a, false),
                    in_words("B", &ctx.b, ctx.amb)
                ));
            }
            Variant::NumbersOnly => {
                m.user(format!(
                    "{}\n{}\n{instruction}",
                    in_numbers("A", &ctx.a, false),
                    in_numbers("B", &ctx.b, ctx.amb)
                ));
            }
        }
        m.into_prompt()
    }
}

fn paths(path: &Path) -> (PathBuf, PathBuf) {
    if path.is_dir() {
        (path.join("c13k_selections.csv"), path.join("c13k_problems.json"))
    } else {
        let folder = path.parent().unwrap_or(Path::new("."));
        (path.to_path_buf(), folder.join("c13k_problems.json"))
    }
}

fn shown(outcomes: &[[f64; 2]]) -> Vec<(f64, f64)> {
    outcomes.iter().filter(|[p, _]| *p > 0.0).map(|[p, x]| (*p, *x)).collect()
}

/// How far a gamble's probabilities may sum from 1 (the published ones are within 3e-16;
/// rounding in a rewritten file stays far below this).
pub const PROBABILITY_SUM_TOLERANCE: f64 = 1e-6;

/// What is wrong with a gamble, if anything (`: …` or `, outcome N: …`, to follow the
/// gamble's name): it must have an outcome, finite payoffs and probabilities in [0, 1]
/// summing to 1. Anything else would be rendered as something the participants never saw
/// (1.7 and -0.7 read as "for sure", no outcome as "nothing").
fn gamble_problem(outcomes: &[[f64; 2]]) -> Option<String> {
    if outcomes.is_empty() {
        return Some(": no outcomes".to_string());
    }
    for (i, [p, x]) in outcomes.iter().enumerate() {
        if !(0.0..=1.0).contains(p) {
            return Some(format!(", outcome {}: probability {p} is outside [0, 1]", i + 1));
        }
        if !x.is_finite() {
            return Some(format!(", outcome {}: payoff {x} is not a finite number", i + 1));
        }
    }
    let sum: f64 = outcomes.iter().map(|[p, _]| p).sum();
    if (sum - 1.0).abs() > PROBABILITY_SUM_TOLERANCE {
        return Some(format!(": probabilities sum to {}, not 1", decimal(sum, 6)));
    }
    None
}

fn expected_value(outcomes: &[(f64, f64)]) -> f64 {
    outcomes.iter().map(|(p, x)| p * x).sum()
}

/// Reads the problems (rows of the chosen feedback condition) under `path`.
pub fn load(path: &Path, feedback: Feedback) -> Result<LoadedData, KitError> {
    if !path.exists() {
        return Err(KitError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "expected the folder holding c13k_selections.csv and c13k_problems.json, or the CSV itself",
            ),
        ));
    }
    let (csv_path, json_path) = paths(path);
    let table = CsvTable::read(&csv_path, &COLUMNS)?;
    let problems: HashMap<String, Outcomes> = read_json(&json_path)?;
    if problems.len() != table.len() {
        return Err(KitError::file(
            &json_path,
            format!(
                "{} problems, but `{}` has {} rows (keys are row indices, so the two files must match)",
                problems.len(),
                csv_path.display(),
                table.len()
            ),
        ));
    }
    let csv_name = csv_path
        .file_name()
        .map_or_else(|| csv_path.display().to_string(), |n| n.to_string_lossy().to_string());
    let mut ids = HashSet::new();
    let mut episodes = Vec::new();
    for (index, row) in table.rows::<Row>().enumerate() {
        let row = row?;
        let (line, r) = (row.line, row.value);
        if !(0.0..=1.0).contains(&r.bRate) {
            return Err(table.error(
                line,
                "bRate",
                format!("choice rate {} is outside [0, 1]", r.bRate),
            ));
        }
        if !(r.n.is_finite() && r.n > 0.0) {
            return Err(table.error(line, "n", format!("count {} must be a positive number", r.n)));
        }
        for (column, p) in [("pHa", r.pHa), ("pHb", r.pHb)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(table.error(
                    line,
                    column,
                    format!("probability {p} is outside [0, 1]"),
                ));
            }
        }
        for (column, x) in [("Ha", r.Ha), ("La", r.La), ("Hb", r.Hb), ("Lb", r.Lb)] {
            if !x.is_finite() {
                return Err(table.error(
                    line,
                    column,
                    format!("payoff {x} is not a finite number"),
                ));
            }
        }
        let outcomes = problems.get(&index.to_string()).ok_or_else(|| {
            KitError::file(
                &json_path,
                format!("no problem for row index {index} (line {line} of the CSV)"),
            )
        })?;
        // Every row's gambles are checked, also those of the condition not loaded: the
        // file is wrong either way.
        for (name, gamble) in [("A", &outcomes.a), ("B", &outcomes.b)] {
            if let Some(problem) = gamble_problem(gamble) {
                return Err(KitError::file(
                    &json_path,
                    format!("key `{index}` (line {line} of `{csv_name}`), gamble {name}{problem}"),
                ));
            }
        }
        if feedback != Feedback::All && feedback != Feedback::Only(r.Feedback) {
            continue;
        }
        let id = format!("c13k-{}-{}", r.Problem, if r.Feedback { "fb" } else { "nofb" });
        if !ids.insert(id.clone()) {
            return Err(table.error(
                line,
                "Problem",
                format!("problem {} appears twice with Feedback = {}", r.Problem, r.Feedback),
            ));
        }
        let ctx = Context { a: shown(&outcomes.a), b: shown(&outcomes.b), amb: r.Amb };
        let metadata = serde_json::json!({
            "family": NAME,
            "problem": r.Problem,
            "feedback": r.Feedback,
            "amb": r.Amb,
            "block": r.Block,
            "corr": r.Corr,
            "lot_shape_b": r.LotShapeB,
            "lot_num_b": r.LotNumB,
            "n": r.n,
            "ha": r.Ha,
            "p_ha": r.pHa,
            "la": r.La,
            "hb": r.Hb,
            "p_hb": r.pHb,
            "lb": r.Lb,
            "ev_a": expected_value(&ctx.a),
            "ev_b": expected_value(&ctx.b),
        });
        let point = DecisionPoint {
            id: id.clone().into(),
            episode: id.clone().into(),
            round: 1,
            outcome: options::aggregate_outcome(r.bRate, r.n),
            metadata_json: metadata.to_string().into(),
            flags: Vec::new().into(),
            context_json: to_json(&ctx).into(),
        };
        episodes.push(Episode { id: id.into(), decisions: vec![point].into() });
    }
    Ok(LoadedData { episodes: episodes.into(), skipped: Vec::new().into() })
}

// ------------------------------------------------------------------------------ render

/// Renders a decision point made by [`load`] in the variant named `variant`.
pub fn render(point: &DecisionPoint, variant: &str) -> Result<Prompt, KitError> {
    <Lottery as Game>::render(point, variant)
}

fn payoff(x: f64) -> String {
    decimal(x, 2)
}

fn probability(p: f64) -> String {
    decimal(p, 6)
}

/// `Gamble A: 26 with probability 0.95, or -1 with probability 0.05.`
fn in_words(name: &str, outcomes: &[(f64, f64)], hidden: bool) -> String {
    match outcomes {
        [] => format!("Gamble {name}: nothing."),
        [(_, x)] => format!("Gamble {name}: {} for sure.", payoff(*x)),
        _ if hidden => {
            let xs: Vec<String> = outcomes.iter().map(|(_, x)| payoff(*x)).collect();
            let list = match xs.split_last() {
                Some((last, init)) if !init.is_empty() => format!("{} or {last}", init.join(", ")),
                _ => xs.join(""),
            };
            format!("Gamble {name}: {list}, with probabilities that are not disclosed.")
        }
        _ => {
            let parts: Vec<String> = outcomes
                .iter()
                .map(|(p, x)| format!("{} with probability {}", payoff(*x), probability(*p)))
                .collect();
            format!("Gamble {name}: {}.", join_or(&parts))
        }
    }
}

fn join_or(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{}, or {last}", init.join(", ")),
    }
}

/// `A: 26 (0.95), -1 (0.05)`; hidden probabilities are `?`.
fn in_numbers(name: &str, outcomes: &[(f64, f64)], hidden: bool) -> String {
    let parts: Vec<String> = outcomes
        .iter()
        .map(|(p, x)| {
            if hidden && outcomes.len() > 1 {
                format!("{} (?)", payoff(*x))
            } else {
                format!("{} ({})", payoff(*x), probability(*p))
            }
        })
        .collect();
    format!("{name}: {}", parts.join(", "))
}

#[cfg(test)]
mod tests;
