//! descry game plugin `matrix`: 2×2 matrix games with options J and F: the repeated
//! Prisoner's Dilemma and Battle of the Sexes of Akata et al. (individual decisions), and
//! one-shot games with aggregated choice rates.
//!
//! # Parameters
//! `{"set": "repeated" | "oneshot" | "repeated_round1"}`, default `repeated`:
//! - `repeated`: Akata et al.'s human experiment: each person played 10 rounds of PD and
//!   10 of BoS against GPT-4. `path` is the folder holding `repgames.csv` or the file.
//!   One episode per (person, game); one decision point per round; analysis family
//!   `matrix`.
//! - `repeated_round1`: the round-1 decisions of the same file as a one-shot set: one
//!   decision point per game (PD, BoS) with the rate of J among all people and their count
//!   as weight; analysis family `oneshot`.
//! - `oneshot`: a one-shot set in the CSV format below; `path` is the file; family
//!   `oneshot`.
//!
//! The analysis family of each point is in its metadata (`"family"`); `GameInfo.family`
//! says `matrix` because it is declared before any parameters are known.
//!
//! # Repeated games (`repgames.csv`)
//! Columns `id, game, action, score` (and optionally `opponent`, `guess`): one row per
//! decision, each (id, game) one block of exactly 10 rows ([`ROUNDS`]) in round order; a
//! block with more or fewer rows, or a (id, game) whose rows appear in two places, is an
//! error naming the lines (there is no round column, so a duplicated or missing row would
//! otherwise change the game's length and history). `action` 1 = the person pressed J, 0 = F;
//! `score` = the person's points. Payoffs (person, opponent): PD JJ 8/8, JF 0/10, FJ 10/0,
//! FF 5/5 (J = cooperate); BoS JJ 7/10, FF 10/7, mismatch 0/0 (J = the opponent's
//! preferred option). The opponent's key in each round is rebuilt from (action, score)
//! and the history shown to the person is built from those keys. A row whose score fits
//! no payoff cell (4 rows in the published file) is kept and flagged
//! `payoff_inconsistent`; the history then says the other player's choice was not
//! recorded, and later rounds of that game are flagged `history_incomplete`.
//!
//! # One-shot CSV format
//! One row per game, header required, extra columns ignored:
//!
//! | column | meaning |
//! |---|---|
//! | `game_id` | unique id of the game (text) |
//! | `topology` | topology label, e.g. a Robinson–Goforth name (text, may be empty) |
//! | `self_jj`, `other_jj` | points of the person whose choice is counted, and of the other player, when the person plays J and the other plays J |
//! | `self_jf`, `other_jf` | … person J, other F |
//! | `self_fj`, `other_fj` | … person F, other J |
//! | `self_ff`, `other_ff` | … person F, other F |
//! | `rate_j` | share of people who chose J, in [0, 1] (the human outcome) |
//! | `n` | number of people behind the rate (the weight), finite and > 0 |
//!
//! Payoffs must be finite numbers.
//!
//! A published set with other labels (Top/Bottom, A/B) is converted by mapping the counted
//! player's first option to J.
//!
//! # Options
//! `J` (target: cooperate in PD) and `F`; surface forms `J`, ` J`, `j`, ` j` (same for F).
//!
//! # Variants
//! - `native` (default): Akata et al.'s framing: the rules (every payoff cell in words) in
//!   the system message; the rounds so far ("In round 1, you chose Option J and the other
//!   player chose Option F. Thus, you won 0 points and the other player won 10 points.")
//!   and the question in one user message.
//! - `transcript`: each round's question a user turn, each choice an assistant JSON turn
//!   (`{"decision": "J"}`), each round's result opening the next user turn. For a one-shot
//!   game it equals `native`.
//! - `predict`: observer framing: predict the participant's choice from the quoted rules
//!   and rounds.
//! - `numbers_only`: the payoff matrix as numbers and the round number; no prose, no
//!   history.
//!
//! # Metadata
//! Repeated: `family` (`matrix`), `game` (`PD`/`BoS`), `participant`, `game_position` (1 =
//! the first game this person played), `opponent_label`, `guess`, `answer`. One-shot:
//! `family` (`oneshot`), `source` (`csv` or `akata_round1`), `game_id`, `topology`, `n`,
//! `mixed_nash_rate_j` (the counted player's J probability in the fully mixed Nash
//! equilibrium, or null when there is none), and `game` for Akata's round 1.
#![deny(missing_docs)]

use descry_abi::types::{DecisionOption, DecisionPoint, Episode, LoadedData, Prompt};
use descry_game_kit::{
    answer_json,
    csv_table::CsvTable,
    game::Game,
    json::to_json,
    options,
    render::{answer_instruction, decimal, lowercase_first, Messages, Observer},
    KitError,
};
use serde::{Deserialize, Serialize};
use std::{collections::HashMap, path::Path};

/// The plugin's name (and the family of the repeated games).
pub const NAME: &str = "matrix";
/// The analysis family of one-shot sets.
pub const ONESHOT_FAMILY: &str = "oneshot";

descry_game_kit::variants! {
    /// The prompt variants (see the crate docs).
    pub enum Variant {
        Native = "native", transcript: false, "Akata et al.'s framing: the payoff rules in words in the system message; the rounds so far and the question in one user message.";
        Transcript = "transcript", transcript: true, "Each round's question a user turn and each choice an assistant JSON turn; the round's result opens the next user turn.";
        Predict = "predict", transcript: false, "Observer framing: predict the participant's choice from the quoted rules and rounds.";
        NumbersOnly = "numbers_only", transcript: false, "The payoff matrix as numbers and the round number; no prose, no history.";
    }
}

/// The matrix-games plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct Matrix;

descry_game_kit::plugin!(Matrix);

/// Which data set `path` holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Set {
    /// Akata et al.'s repeated games (`repgames.csv`), individual decisions.
    #[default]
    Repeated,
    /// A one-shot set in the documented CSV format.
    Oneshot,
    /// Round 1 of the repeated games, aggregated per game.
    RepeatedRound1,
}

/// The spellings of [`Set`] in a study's `params`.
const SETS: [(&str, Set); 3] = [
    ("repeated", Set::Repeated),
    ("oneshot", Set::Oneshot),
    ("repeated_round1", Set::RepeatedRound1),
];

impl TryFrom<String> for Set {
    type Error = String;

    // By hand rather than derived, so that every wrong value (a number too) is answered
    // with the values `set` accepts.
    fn try_from(name: String) -> Result<Self, Self::Error> {
        SETS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s).ok_or_else(|| {
            let names: Vec<String> = SETS.iter().map(|(n, _)| format!("`{n}`")).collect();
            format!("unknown set `{name}`; expected one of {}", names.join(", "))
        })
    }
}

/// Load parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// The data set; see the crate docs.
    pub set: Set,
}

/// Points of (the person, the other player) for the cells JJ, JF, FJ, FF (the person's
/// option first).
pub type Payoffs = [(f64, f64); 4];

const PD: Payoffs = [(8.0, 8.0), (0.0, 10.0), (10.0, 0.0), (5.0, 5.0)];
const BOS: Payoffs = [(7.0, 10.0), (0.0, 0.0), (0.0, 0.0), (10.0, 7.0)];
const CELLS: [(char, char); 4] = [('J', 'J'), ('J', 'F'), ('F', 'J'), ('F', 'F')];

/// One earlier round of a repeated game.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Past {
    human: char,
    /// None when the score fits no payoff cell.
    opponent: Option<char>,
    human_points: f64,
}

/// What `render` needs: the payoffs, and in a repeated game the rounds so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Context {
    /// A round of a repeated game.
    Repeated {
        /// The payoffs.
        payoffs: Payoffs,
        /// How many rounds the game has.
        total_rounds: u32,
        /// This round.
        round: u32,
        /// The earlier rounds.
        history: Vec<Past>,
    },
    /// A one-shot game.
    Oneshot {
        /// The payoffs.
        payoffs: Payoffs,
    },
}

impl Game for Matrix {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "2×2 matrix games with options J/F: Akata et al.'s repeated PD and BoS, and one-shot sets with choice rates.";
    const MULTI_ROUND: bool = true;
    const TARGET_OPTION: &'static str = "J";
    type Params = Params;
    type Variant = Variant;
    type Context = Context;

    fn options() -> Vec<DecisionOption> {
        vec![options::option("J", &["J"]), options::option("F", &["F"])]
    }

    fn load(path: &Path, params: Params) -> Result<LoadedData, KitError> {
        load(path, params.set)
    }

    fn prompt(ctx: &Context, variant: Variant) -> Prompt {
        let mut m = Messages::new();
        let instruction = answer_instruction(&["J", "F"]);
        match (variant, ctx) {
            (Variant::NumbersOnly, _) => {
                let (payoffs, round) = match ctx {
                    Context::Repeated { payoffs, total_rounds, round, .. } => {
                        (payoffs, Some((round, total_rounds)))
                    }
                    Context::Oneshot { payoffs } => (payoffs, None),
                };
                let mut lines =
                    vec!["Payoffs (your points, the other player's points):".to_string()];
                for ((h, o), (a, b)) in CELLS.iter().zip(payoffs.iter()) {
                    lines.push(format!("{h} vs {o}: {}, {}", decimal(*a, 2), decimal(*b, 2)));
                }
                if let Some((round, total)) = round {
                    lines.push(format!("Round {round} of {total}."));
                }
                lines.push(format!("Choose J or F. {instruction}"));
                m.user(lines.join("\n"));
            }
            // A one-shot game has no history to turn into a dialogue.
            (Variant::Native | Variant::Transcript, Context::Oneshot { .. }) => {
                m.system(format!("{}\n{instruction}", rules(ctx)));
                m.user(narrative(ctx));
            }
            (Variant::Native, Context::Repeated { .. }) => {
                m.system(format!(
                    "{}\nIn each round, {}",
                    rules(ctx),
                    lowercase_first(&instruction)
                ));
                m.user(narrative(ctx));
            }
            (Variant::Transcript, Context::Repeated { payoffs, round, history, .. }) => {
                m.system(format!(
                    "{}\nIn each round, {}",
                    rules(ctx),
                    lowercase_first(&instruction)
                ));
                let mut carried: Option<String> = None;
                for (i, past) in history.iter().enumerate() {
                    m.user(with_carried(carried.take(), question(i as u32 + 1)));
                    m.assistant(answer_json(&past.human.to_string()));
                    carried = Some(result_text(payoffs, i as u32 + 1, past));
                }
                m.user(with_carried(carried, question(*round)));
            }
            (Variant::Predict, _) => {
                m.system(
                    Observer {
                        played: "the game below",
                        against: "another player",
                        rules: "rules",
                        seen: "what happened",
                        whose: "the participant's",
                        decision: "choice",
                    }
                    .preamble(),
                );
                m.user(format!(
                    "Rules:\n{}\n\nThe game so far:\n{}\n\nWhich option did the participant choose? {instruction}",
                    rules(ctx),
                    narrative(ctx)
                ));
            }
        }
        m.into_prompt()
    }
}

/// Loads one of the data sets (see [`Set`]) from `path`.
pub fn load(path: &Path, set: Set) -> Result<LoadedData, KitError> {
    match set {
        Set::Repeated => load_repeated(path),
        Set::RepeatedRound1 => load_round1(path),
        Set::Oneshot => load_oneshot(path),
    }
}

/// Renders a decision point made by [`load`] in the variant named `variant`.
pub fn render(point: &DecisionPoint, variant: &str) -> Result<Prompt, KitError> {
    <Matrix as Game>::render(point, variant)
}

// ---------------------------------------------------------------------------- repeated

#[derive(Debug, Deserialize)]
struct RepRow {
    id: String,
    game: String,
    action: String,
    score: f64,
    #[serde(default)]
    opponent: Option<String>,
    #[serde(default)]
    guess: Option<String>,
}

/// Rounds each person played of each game in Akata et al.'s experiment: `repgames.csv`
/// holds exactly this many rows per (id, game), one block in round order.
pub const ROUNDS: usize = 10;

/// One checked row of `repgames.csv`.
struct Decision {
    key: char,
    points: f64,
    opponent: Option<char>,
    opponent_label: Option<String>,
    guess: Option<String>,
}

/// The rows of each (person, game), in file order of first appearance.
struct Games {
    order: Vec<(String, String)>,
    decisions: HashMap<(String, String), Vec<Decision>>,
}

fn payoffs_of(game: &str) -> Option<Payoffs> {
    match game {
        "PD" => Some(PD),
        "BoS" => Some(BOS),
        _ => None,
    }
}

/// The opponent's key that gives the person `points` when they play `key`, if exactly one.
fn opponent_key(payoffs: &Payoffs, key: char, points: f64) -> Option<char> {
    let fits: Vec<char> = CELLS
        .iter()
        .zip(payoffs.iter())
        .filter(|((h, _), (p, _))| *h == key && (*p - points).abs() < 1e-9)
        .map(|((_, o), _)| *o)
        .collect();
    match fits.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

fn points_of(payoffs: &Payoffs, human: char, opponent: char) -> (f64, f64) {
    let index = CELLS.iter().position(|c| *c == (human, opponent)).unwrap_or(0);
    payoffs[index]
}

fn repgames_path(path: &Path) -> std::path::PathBuf {
    if path.is_dir() {
        path.join("repgames.csv")
    } else {
        path.to_path_buf()
    }
}

fn read_repgames(path: &Path) -> Result<Games, KitError> {
    if !path.exists() {
        return Err(KitError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "expected Akata et al.'s repgames.csv or the folder holding it",
            ),
        ));
    }
    let table = CsvTable::read(&repgames_path(path), &["id", "game", "action", "score"])?;
    let mut games = Games { order: Vec::new(), decisions: HashMap::new() };
    // The block being read: (id, game), its first and last line. Rounds have no column, so
    // a row's round is its place in the block: a duplicated or missing row would silently
    // change the game's length and history, hence the checks.
    let mut block: Option<((String, String), u64, u64)> = None;
    let mut ended: HashMap<(String, String), (u64, u64)> = HashMap::new();
    for row in table.rows::<RepRow>() {
        let row = row?;
        let (line, r) = (row.line, row.value);
        let payoffs = payoffs_of(&r.game).ok_or_else(|| {
            table.error(line, "game", format!("unknown game `{}`; expected `PD` or `BoS`", r.game))
        })?;
        let key = match r.action.trim() {
            "1" => 'J',
            "0" => 'F',
            other => {
                return Err(table.error(
                    line,
                    "action",
                    format!(
                        "unknown decision value `{other}`; expected 1 (pressed J) or 0 (pressed F)"
                    ),
                ))
            }
        };
        if !r.score.is_finite() {
            // A score that fits no cell is kept and flagged, but `inf` points are no score.
            return Err(table.error(
                line,
                "score",
                format!("score {} is not a finite number", r.score),
            ));
        }
        let decision = Decision {
            key,
            points: r.score,
            opponent: opponent_key(&payoffs, key, r.score),
            opponent_label: r.opponent,
            guess: r.guess,
        };
        let k = (r.id, r.game);
        match &mut block {
            Some((current, first, last)) if *current == k => {
                let rows = games.decisions.get(&k).map_or(0, Vec::len);
                if rows == ROUNDS {
                    return Err(table.error(
                        line,
                        "id",
                        format!(
                            "participant {}, game {}: an {}th row, but each person played {ROUNDS} rounds \
                             of each game (lines {first}–{last} hold them): a duplicated row or block?",
                            k.0,
                            k.1,
                            ROUNDS + 1
                        ),
                    ));
                }
                *last = line;
            }
            _ => {
                if let Some((done, first, last)) = block.take() {
                    check_block(&table, &games, &done, first, last)?;
                    ended.insert(done, (first, last));
                }
                if let Some((first, last)) = ended.get(&k) {
                    return Err(table.error(
                        line,
                        "id",
                        format!(
                            "participant {}, game {} again, after its rounds on lines {first}–{last}: \
                             each (id, game) is one block of {ROUNDS} rows in round order (a duplicated block?)",
                            k.0, k.1
                        ),
                    ));
                }
                block = Some((k.clone(), line, line));
                games.order.push(k.clone());
            }
        }
        games.decisions.entry(k).or_default().push(decision);
    }
    if let Some((done, first, last)) = block {
        check_block(&table, &games, &done, first, last)?;
    }
    Ok(games)
}

/// A finished block of (id, game) rows must hold all [`ROUNDS`] rounds.
fn check_block(
    table: &CsvTable,
    games: &Games,
    key: &(String, String),
    first: u64,
    last: u64,
) -> Result<(), KitError> {
    let rows = games.decisions.get(key).map_or(0, Vec::len);
    if rows == ROUNDS {
        return Ok(());
    }
    Err(table.error(
        first,
        "id",
        format!(
            "participant {}, game {} has {rows} rows (lines {first}–{last}), but each person played \
             {ROUNDS} rounds of each game: rows are missing",
            key.0, key.1
        ),
    ))
}

fn load_repeated(path: &Path) -> Result<LoadedData, KitError> {
    let games = read_repgames(path)?;
    let mut position: HashMap<&str, u32> = HashMap::new();
    let mut episodes = Vec::new();
    for (id, game) in &games.order {
        let game_position = {
            let p = position.entry(id.as_str()).or_insert(0);
            *p += 1;
            *p
        };
        let payoffs = payoffs_of(game).unwrap_or(PD);
        let rows =
            games.decisions.get(&(id.clone(), game.clone())).map_or(&[][..], |v| v.as_slice());
        let episode = format!("p{id}-{game}");
        let mut decisions = Vec::new();
        for (i, d) in rows.iter().enumerate() {
            let round = i as u32 + 1;
            let history: Vec<Past> = rows[..i]
                .iter()
                .map(|p| Past { human: p.key, opponent: p.opponent, human_points: p.points })
                .collect();
            let mut flags = Vec::new();
            if d.opponent.is_none() {
                flags.push("payoff_inconsistent".into());
            }
            if history.iter().any(|p| p.opponent.is_none()) {
                flags.push("history_incomplete".into());
            }
            let answer = d.key.to_string();
            let metadata = serde_json::json!({
                "family": NAME,
                "game": game,
                "participant": id,
                "game_position": game_position,
                "opponent_label": d.opponent_label,
                "guess": d.guess,
                "answer": answer,
            });
            let ctx =
                Context::Repeated { payoffs, total_rounds: rows.len() as u32, round, history };
            decisions.push(DecisionPoint {
                id: format!("{episode}-r{round}").into(),
                episode: episode.clone().into(),
                round,
                outcome: options::individual_outcome(&answer, "J"),
                metadata_json: metadata.to_string().into(),
                flags: flags.into(),
                context_json: to_json(&ctx).into(),
            });
        }
        episodes.push(Episode { id: episode.into(), decisions: decisions.into() });
    }
    Ok(LoadedData { episodes: episodes.into(), skipped: Vec::new().into() })
}

// ---------------------------------------------------------------------------- one-shot

/// The counted player's probability of J in the fully mixed equilibrium: the mix that
/// leaves the other player indifferent between J and F. None when there is no interior one.
pub fn mixed_nash_rate_j(payoffs: &Payoffs) -> Option<f64> {
    let [(_, o_jj), (_, o_jf), (_, o_fj), (_, o_ff)] = *payoffs;
    // Other player's J pays p*o_jj + (1-p)*o_fj; F pays p*o_jf + (1-p)*o_ff.
    let denominator = (o_jj - o_fj) - (o_jf - o_ff);
    if denominator.abs() < 1e-12 {
        return None;
    }
    let p = (o_ff - o_fj) / denominator;
    (p > 0.0 && p < 1.0).then_some(p)
}

fn oneshot_point(
    id: &str,
    payoffs: Payoffs,
    rate: f64,
    n: f64,
    mut metadata: serde_json::Value,
) -> Episode {
    if let Some(object) = metadata.as_object_mut() {
        object.insert("n".into(), n.into());
        object.insert("mixed_nash_rate_j".into(), mixed_nash_rate_j(&payoffs).into());
    }
    let point = DecisionPoint {
        id: id.into(),
        episode: id.into(),
        round: 1,
        outcome: options::aggregate_outcome(rate, n),
        metadata_json: metadata.to_string().into(),
        flags: Vec::new().into(),
        context_json: to_json(&Context::Oneshot { payoffs }).into(),
    };
    Episode { id: id.into(), decisions: vec![point].into() }
}

fn load_round1(path: &Path) -> Result<LoadedData, KitError> {
    let games = read_repgames(path)?;
    let mut episodes = Vec::new();
    for game in ["PD", "BoS"] {
        let firsts: Vec<&Decision> = games
            .order
            .iter()
            .filter(|(_, g)| g == game)
            .filter_map(|k| games.decisions.get(k).and_then(|rows| rows.first()))
            .collect();
        if firsts.is_empty() {
            continue;
        }
        let n = firsts.len() as f64;
        let rate = firsts.iter().filter(|d| d.key == 'J').count() as f64 / n;
        let metadata = serde_json::json!({
            "family": ONESHOT_FAMILY,
            "source": "akata_round1",
            "game_id": format!("akata-{game}-round1"),
            "topology": game,
            "game": game,
        });
        episodes.push(oneshot_point(
            &format!("akata-{game}-round1"),
            payoffs_of(game).unwrap_or(PD),
            rate,
            n,
            metadata,
        ));
    }
    Ok(LoadedData { episodes: episodes.into(), skipped: Vec::new().into() })
}

#[derive(Debug, Deserialize)]
struct OneshotRow {
    game_id: String,
    #[serde(default)]
    topology: Option<String>,
    self_jj: f64,
    other_jj: f64,
    self_jf: f64,
    other_jf: f64,
    self_fj: f64,
    other_fj: f64,
    self_ff: f64,
    other_ff: f64,
    rate_j: f64,
    n: f64,
}

/// The columns a one-shot CSV must have.
pub const ONESHOT_COLUMNS: [&str; 12] = [
    "game_id", "topology", "self_jj", "other_jj", "self_jf", "other_jf", "self_fj", "other_fj",
    "self_ff", "other_ff", "rate_j", "n",
];

fn load_oneshot(path: &Path) -> Result<LoadedData, KitError> {
    let table = CsvTable::read(path, &ONESHOT_COLUMNS)?;
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut episodes = Vec::new();
    for row in table.rows::<OneshotRow>() {
        let row = row?;
        let (line, r) = (row.line, row.value);
        if let Some(first) = seen.insert(r.game_id.clone(), line) {
            return Err(table.error(
                line,
                "game_id",
                format!("duplicate game id `{}` (first on line {first})", r.game_id),
            ));
        }
        if !(0.0..=1.0).contains(&r.rate_j) {
            return Err(table.error(
                line,
                "rate_j",
                format!("choice rate {} is outside [0, 1]", r.rate_j),
            ));
        }
        if !(r.n.is_finite() && r.n > 0.0) {
            return Err(table.error(line, "n", format!("count {} must be a positive number", r.n)));
        }
        let cells = [
            ("self_jj", r.self_jj),
            ("other_jj", r.other_jj),
            ("self_jf", r.self_jf),
            ("other_jf", r.other_jf),
            ("self_fj", r.self_fj),
            ("other_fj", r.other_fj),
            ("self_ff", r.self_ff),
            ("other_ff", r.other_ff),
        ];
        // `inf` and `NaN` parse as numbers; in a prompt they would read "inf points".
        if let Some((column, x)) = cells.iter().find(|(_, x)| !x.is_finite()) {
            return Err(table.error(line, column, format!("payoff {x} is not a finite number")));
        }
        let payoffs = [
            (r.self_jj, r.other_jj),
            (r.self_jf, r.other_jf),
            (r.self_fj, r.other_fj),
            (r.self_ff, r.other_ff),
        ];
        let metadata = serde_json::json!({
            "family": ONESHOT_FAMILY,
            "source": "csv",
            "game_id": r.game_id,
            "topology": r.topology.unwrap_or_default(),
        });
        episodes.push(oneshot_point(&r.game_id, payoffs, r.rate_j, r.n, metadata));
    }
    Ok(LoadedData { episodes: episodes.into(), skipped: Vec::new().into() })
}

// ------------------------------------------------------------------------------ render

fn points(x: f64) -> String {
    let n = decimal(x, 2);
    if n == "1" {
        "1 point".to_string()
    } else {
        format!("{n} points")
    }
}

fn rules(ctx: &Context) -> String {
    let (payoffs, intro) = match ctx {
        Context::Repeated { payoffs, total_rounds, .. } => (
            payoffs,
            format!(
                "You are playing a game repeatedly with another player. In this game, you can choose between Option J \
                 and Option F. You will play {total_rounds} rounds in total with the same player."
            ),
        ),
        Context::Oneshot { payoffs } => (
            payoffs,
            "You are playing a game with another player. In this game, you can choose between Option J and Option F. \
             You will play one round with this player."
                .to_string(),
        ),
    };
    let mut lines = vec![intro, "The rules of the game are as follows:".to_string()];
    for ((h, o), (a, b)) in CELLS.iter().zip(payoffs.iter()) {
        lines.push(format!(
            "If you choose Option {h} and the other player chooses Option {o}, then you win {} and the other player wins {}.",
            points(*a),
            points(*b)
        ));
    }
    lines.join("\n")
}

fn result_text(payoffs: &Payoffs, round: u32, past: &Past) -> String {
    match past.opponent {
        Some(o) => {
            let (a, b) = points_of(payoffs, past.human, o);
            format!(
                "In round {round}, you chose Option {} and the other player chose Option {o}. Thus, you won {} and the other player won {}.",
                past.human,
                points(a),
                points(b)
            )
        }
        None => format!(
            "In round {round}, you chose Option {} and won {}; the other player's choice was not recorded.",
            past.human,
            points(past.human_points)
        ),
    }
}

fn question(round: u32) -> String {
    format!("You are currently playing round {round}.\nQ: Which option do you choose, Option J or Option F?")
}

fn with_carried(carried: Option<String>, text: String) -> String {
    match carried {
        Some(c) => format!("{c}\n\n{text}"),
        None => text,
    }
}

fn narrative(ctx: &Context) -> String {
    match ctx {
        Context::Repeated { payoffs, round, history, .. } => {
            let mut lines: Vec<String> = history
                .iter()
                .enumerate()
                .map(|(i, p)| result_text(payoffs, i as u32 + 1, p))
                .collect();
            lines.push(question(*round));
            lines.join("\n")
        }
        Context::Oneshot { .. } => {
            "Q: Which option do you choose, Option J or Option F?".to_string()
        }
    }
}

#[cfg(test)]
mod tests;
