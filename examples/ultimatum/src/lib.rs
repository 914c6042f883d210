//! An example descry game plugin to copy when adding a game: `ultimatum`.
//!
//! descry only uses real human decisions, so this example takes them from the GLEE
//! bargaining data: in round 1 of each game, Alice proposes how to divide the money and
//! Bob accepts or rejects. Where Bob was the human, that first answer is a one-shot,
//! ultimatum-style decision: this plugin turns each into one decision point and ignores
//! the rest of the game.
//!
//! A game plugin is three functions (`descry_abi::game::GamePlugin`): `info` (the game's
//! name, its decision options with the text forms a model may use for each, its target
//! option and its prompt variants), `load` (read a data set into episodes, one person's
//! game each, of decision points) and `render` (turn one decision point into chat messages
//! ending in an answer prefix). With the kit, a game implements [`Game`] instead: its
//! declaration, `load` and `prompt` (the messages of one point's context in one variant);
//! `descry_game_kit::plugin!` writes the three functions and the export from it.
//!
//! Build it as a `cdylib` (see `Cargo.toml`), put the library in a plugin folder, and name
//! it in a study as `examples/ultimatum/study.toml` does:
//!
//! ```toml
//! [games.ultimatum]
//! plugin = "ultimatum"
//! data = "glee"            # relative to the data root (`data.root`)
//! variants = ["native", "predict"]
//! ```
#![deny(missing_docs)]

use descry_abi::types::{DecisionOption, DecisionPoint, Episode, LoadedData, Prompt};
use descry_game_kit::{
    csv_table::{de, CsvTable},
    game::Game,
    glee::{self, Seat},
    json::to_json,
    options,
    render::{answer_instruction, money, Messages},
    KitError,
};
use serde::{Deserialize, Serialize};
use std::path::Path;

// The variants this game can render, as an enum (the first is the default); a config's
// variant name is parsed into it before `prompt` sees it. `transcript: false` because each
// episode has a single decision.
descry_game_kit::variants! {
    /// The prompt variants.
    pub enum Variant {
        Native = "native", transcript: false, "The rules as a system message, the offer as a user message.";
        Predict = "predict", transcript: false, "Observer framing: predict the responder's answer.";
    }
}

/// The plugin. It holds no state: everything a decision point needs travels inside it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ultimatum;

// Implements `GamePlugin` from the `Game` below and exports the plugin for the host.
descry_game_kit::plugin!(Ultimatum);

/// What `render` needs to know about one decision, stored as JSON in the decision point
/// (`context_json`). It must never contain the answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Offer {
    money: f64,
    to_responder: f64,
    to_proposer: f64,
    message: Option<String>,
}

/// The columns of GLEE's `game.csv` that this game reads (serde matches them by name).
#[derive(Debug, Deserialize)]
struct LogRow {
    #[serde(deserialize_with = "de::opt_f64")]
    alice_gain: Option<f64>,
    #[serde(deserialize_with = "de::opt_f64")]
    bob_gain: Option<f64>,
    #[serde(deserialize_with = "de::opt_text")]
    message: Option<String>,
    round: u32,
    #[serde(deserialize_with = "de::opt_text")]
    decision: Option<String>,
}

/// The part of `config.json` `game_args` this game reads.
#[derive(Debug, Deserialize)]
struct GameArgs {
    money_to_divide: f64,
    messages_allowed: bool,
}

impl Game for Ultimatum {
    const NAME: &'static str = "ultimatum";
    const DESCRIPTION: &'static str = "Example: round 1 of GLEE bargaining.";
    const MULTI_ROUND: bool = false;
    const TARGET_OPTION: &'static str = "accept";
    // This example reads no parameters and ignores any it is given (a game with none
    // should take `descry_game_kit::game::NoParams`, which rejects unknown keys).
    type Params = serde::de::IgnoredAny;
    type Variant = Variant;
    type Context = Offer;

    // `option` adds the forms a model may write: "accept", " accept", "Accept", ...
    fn options() -> Vec<DecisionOption> {
        vec![options::option("accept", &["accept"]), options::option("reject", &["reject"])]
    }

    fn load(path: &Path, _: serde::de::IgnoredAny) -> Result<LoadedData, KitError> {
        load(path)
    }

    /// The offer's prompt; it ends with the answer prefix `{"decision": "`. The match on
    /// the variant is exhaustive: a new variant must say how it renders.
    fn prompt(offer: &Offer, variant: Variant) -> Prompt {
        let rules = format!(
            "Alice and you, Bob, divide {}. Alice proposes a split. If you accept, you both get that split and the \
             game ends; if you reject, the game goes on, and you make the next proposal.",
            money(offer.money)
        );
        let mut text = format!(
            "Alice offers: you get {}, Alice gets {}.",
            money(offer.to_responder),
            money(offer.to_proposer)
        );
        if let Some(message) = &offer.message {
            text.push_str(&format!("\nAlice's message: {}", message.trim()));
        }
        let instruction = answer_instruction(&["accept", "reject"]);
        let mut m = Messages::new();
        match variant {
            Variant::Native => {
                m.system(rules);
                m.user(format!("{text}\nDo you accept? {instruction}"));
            }
            Variant::Predict => {
                m.system("Predict what a human participant decided in an economic game.");
                m.user(format!(
                    "Rules the participant (Bob) read: {rules}\n\n{text}\nDid Bob accept? {instruction}"
                ));
            }
        }
        m.into_prompt()
    }
}

/// Reads round 1 of every GLEE bargaining game whose responder (Bob) was human.
pub fn load(path: &Path) -> Result<LoadedData, KitError> {
    // The kit finds the game folders and tells which player was human; folders it cannot
    // use come back in `skipped`, each with a reason, and are reported, not dropped.
    let scan = glee::scan::<GameArgs>(path, "bargaining")?;
    let mut skipped = scan.skipped;
    let mut episodes = Vec::new();
    for game in &scan.games {
        if game.human != Seat::Player2 {
            skipped.push(
                game.skip(
                    "the human proposed in round 1, so there is no human response to predict",
                ),
            );
            continue;
        }
        // Errors in the file name its path, line and column.
        let table = CsvTable::read(
            &game.log_path,
            &["alice_gain", "bob_gain", "message", "round", "decision"],
        )?;
        let rows: Vec<_> = table.rows::<LogRow>().take(2).collect::<Result<_, _>>()?;
        // Row 1 is Alice's offer, row 2 Bob's answer.
        let [offer, answer] = rows.as_slice() else {
            skipped.push(game.skip("the log has no complete first round"));
            continue;
        };
        let (Some(to_proposer), Some(to_responder)) =
            (offer.value.alice_gain, offer.value.bob_gain)
        else {
            return Err(table.error(offer.line, "alice_gain", "the first row is not an offer"));
        };
        let decision = answer.value.decision.clone().unwrap_or_default();
        if answer.value.round != 1 || (decision != "accept" && decision != "reject") {
            return Err(table.error(
                answer.line,
                "decision",
                format!("expected accept or reject in round 1, found `{decision}`"),
            ));
        }
        let args = &game.config.game_args;
        let offer = Offer {
            money: args.money_to_divide,
            to_responder,
            to_proposer,
            message: if args.messages_allowed { offer.value.message.clone() } else { None },
        };
        let point = DecisionPoint {
            id: format!("{}-r1", game.id).into(),
            episode: game.id.clone().into(),
            round: 1,
            // Rate 1 when the person took the target option, 0 otherwise; weight 1.
            outcome: options::individual_outcome(&decision, "accept"),
            // What an analysis may split by.
            metadata_json: serde_json::json!({ "money_to_divide": args.money_to_divide, "offer_share": to_responder / args.money_to_divide }).to_string().into(),
            flags: Vec::new().into(),
            context_json: to_json(&offer).into(),
        };
        episodes.push(Episode { id: game.id.clone().into(), decisions: vec![point].into() });
    }
    Ok(LoadedData { episodes: episodes.into(), skipped: skipped.into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use descry_game_kit::Variant as _;

    #[test]
    fn loads_round_one_of_human_responders() {
        let data = load(&descry_game_kit::shared_data_dir().join("glee")).unwrap();
        let points: Vec<_> = data.episodes.iter().flat_map(|e| e.decisions.iter()).collect();
        // 8 bargaining games have a human Bob: 5 accepted Alice's first offer, 3 rejected it.
        assert_eq!(points.len(), 8);
        assert_eq!(points.iter().filter(|p| p.outcome.rate == 1.0).count(), 5);
        for p in points {
            for v in Variant::ALL {
                assert_eq!(
                    Ultimatum::render(p, v.name()).unwrap().answer_prefix.as_str(),
                    descry_game_kit::ANSWER_PREFIX
                );
            }
        }
    }
}
