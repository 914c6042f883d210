//! descry game plugin `bargaining`: GLEE alternating-offers bargaining, human responders.
//!
//! Two players, Alice (player 1) and Bob, divide a sum of money. In round r the proposer
//! (Alice in odd rounds, Bob in even ones) offers a split, with a message when messages are
//! allowed; the responder accepts (the game ends) or rejects (the next round begins). Money
//! loses value each round by the players' discount factors ("inflation"). Each decision
//! point is one accept/reject decision by the human player, with the history the human saw.
//!
//! # Data
//! `path` is the GLEE data folder (holding `human_vs_llm/`), the `human_vs_llm` folder, or
//! its `bargaining` folder. Every game folder below it is read (see
//! [`descry_game_kit::glee`]): `config.json` (`game_args`: `money_to_divide`, `max_rounds`,
//! `complete_information`, `messages_allowed`, and `delta_1`/`delta_2` or
//! `player_N_args.delta`) and `game.csv` (`alice_gain, bob_gain, message, player, round,
//! decision`). Folders without a config (human unknown) or without a log, and games in
//! which the human never responded to an offer, are skipped with a reason.
//!
//! # Parameters
//! None; `{}` (unknown keys are errors).
//!
//! # Options
//! `accept` (target) and `reject`; surface forms `accept`, ` accept`, `Accept`, ` Accept`
//! (and the same for reject), see [`descry_game_kit::options::option`].
//!
//! # Variants
//! - `native` (default): system = the rules as the human read them + the answer format;
//!   one user message = every earlier round (offers, messages, the human's own offers and
//!   both players' replies) and the current offer; answer prefix `{"decision": "`.
//! - `transcript`: the same content as a dialogue: each offer to the human is a user turn,
//!   each of the human's answers and offers an assistant turn in JSON
//!   (`{"decision": "reject"}`, `{"bob_gain": 5000, "alice_gain": 5000, "message": "…"}`).
//!   Rendering of decision k + the human's answer is a prefix of decision k+1 (see
//!   [`descry_game_kit::transcript`]).
//! - `predict`: observer framing: a system message asking to predict a human participant's
//!   decision; the rules and the game so far are quoted in one user message.
//!
//! # Metadata
//! `game_id`, `config_name`, `human_player` (`Alice`/`Bob`), `money_to_divide`,
//! `max_rounds`, `complete_information`, `messages_allowed`, `delta_1`, `delta_2`,
//! `delta_human`, `delta_opponent`, `offer_to_human` (the amount offered to the human),
//! `offer_share` (that amount / money), `answer` (the decision word).
//!
//! # Flags
//! `offer_sum_mismatch`: the offered split does not add up to `money_to_divide`.
#![deny(missing_docs)]

use descry_abi::types::{DecisionOption, DecisionPoint, Episode, LoadedData, Prompt};
use descry_game_kit::{
    alternating::{self, json_number, AlternatingOffers, Instructions, Offers, Round as GameRound},
    csv_table::{de, CsvTable},
    game::{Game, NoParams},
    glee::{GleeGame, Seat},
    json::to_json,
    options,
    render::{answer_instruction, decimal, lowercase_first, money},
    KitError,
};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The plugin's name and family.
pub const NAME: &str = "bargaining";

descry_game_kit::variants! {
    /// The prompt variants (see the crate docs).
    pub enum Variant {
        Native = "native", transcript: false, "Rules in the system message; the game so far and the current offer in one user message; answer prefix.";
        Transcript = "transcript", transcript: true, "The game as a dialogue: offers to the human as user turns, the human's answers and offers as assistant JSON turns.";
        Predict = "predict", transcript: false, "Observer framing: predict the human participant's decision from the quoted rules and game.";
    }
}

/// The bargaining game plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct Bargaining;

descry_game_kit::plugin!(Bargaining);

/// `game_args` of a bargaining config.
#[derive(Debug, Clone, Deserialize)]
struct GameArgs {
    money_to_divide: f64,
    max_rounds: u32,
    complete_information: bool,
    messages_allowed: bool,
    delta_1: Option<f64>,
    delta_2: Option<f64>,
}

/// The offer columns of `game.csv` (the others are the kit's [`alternating::Turn`]).
#[derive(Debug, Deserialize)]
struct Gains {
    #[serde(deserialize_with = "de::opt_f64")]
    alice_gain: Option<f64>,
    #[serde(deserialize_with = "de::opt_f64")]
    bob_gain: Option<f64>,
}

/// A round's offer: the split between the human and the opponent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Split {
    human_gain: f64,
    opponent_gain: f64,
}

/// One round as the human saw it (the reply is `accept`/`reject`).
type Round = GameRound<Split>;

/// What `render` needs: the game's rules and the rounds up to the decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Context {
    human: String,
    opponent: String,
    first_proposer: String,
    money_to_divide: f64,
    max_rounds: u32,
    complete_information: bool,
    messages_allowed: bool,
    delta_human: f64,
    delta_opponent: f64,
    /// Rounds 1..=r; the last one is the offer being decided.
    rounds: Vec<Round>,
}

impl Game for Bargaining {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "GLEE bargaining (alternating offers with inflation): the human responder accepts or rejects.";
    const MULTI_ROUND: bool = true;
    const TARGET_OPTION: &'static str = "accept";
    type Params = NoParams;
    type Variant = Variant;
    type Context = Context;

    fn options() -> Vec<DecisionOption> {
        vec![options::option("accept", &["accept"]), options::option("reject", &["reject"])]
    }

    fn prompt(ctx: &Context, variant: Variant) -> Prompt {
        match variant {
            Variant::Native => ctx.native(),
            Variant::Transcript => ctx.dialogue(),
            Variant::Predict => ctx.observed(
                &ctx.human,
                &format!(
                    "Did the participant accept {}'s offer? {}",
                    ctx.opponent,
                    answer_instruction(&["accept", "reject"])
                ),
            ),
        }
    }

    /// Reads every bargaining game under `path` into episodes of the human's decisions.
    fn load(path: &Path, _: NoParams) -> Result<LoadedData, KitError> {
        alternating::load::<GameArgs>(path, NAME, load_game)
    }
}

/// The discount factor of one player: `game_args.delta_N`, else `player_N_args.delta`.
fn delta(game: &GleeGame<GameArgs>, seat: Seat) -> Result<f64, KitError> {
    let (from_args, from_player, key) = match seat {
        Seat::Player1 => (game.config.game_args.delta_1, game.config.player_1_args.delta, "1"),
        Seat::Player2 => (game.config.game_args.delta_2, game.config.player_2_args.delta, "2"),
    };
    from_args.or(from_player).ok_or_else(|| {
        KitError::file(
            &game.config_path,
            format!("no discount factor for player {key}: expected `game_args.delta_{key}` or `player_{key}_args.delta`"),
        )
    })
}

fn load_game(game: &GleeGame<GameArgs>) -> Result<Episode, KitError> {
    let args = &game.config.game_args;
    let table = CsvTable::read(
        &game.log_path,
        &["alice_gain", "bob_gain", "message", "player", "round", "decision"],
    )?;
    let ctx = Context {
        human: game.human_name(),
        opponent: game.opponent_name(),
        first_proposer: game.name(Seat::Player1),
        money_to_divide: args.money_to_divide,
        max_rounds: args.max_rounds,
        complete_information: args.complete_information,
        messages_allowed: args.messages_allowed,
        delta_human: delta(game, game.human)?,
        delta_opponent: delta(game, game.opponent())?,
        rounds: Vec::new(),
    };
    let delta_1 = delta(game, Seat::Player1)?;
    let delta_2 = delta(game, Seat::Player2)?;

    alternating::episode(
        game,
        &table,
        |line, r: Gains| {
            let alice = r
                .alice_gain
                .ok_or_else(|| table.error(line, "alice_gain", "an offer without `alice_gain`"))?;
            let bob = r
                .bob_gain
                .ok_or_else(|| table.error(line, "bob_gain", "an offer without `bob_gain`"))?;
            let (human_gain, opponent_gain) =
                if game.human == Seat::Player1 { (alice, bob) } else { (bob, alice) };
            Ok(Split { human_gain, opponent_gain })
        },
        |line, decision| {
            if decision != "accept" && decision != "reject" {
                return Err(table.error(
                    line,
                    "decision",
                    format!("unknown decision `{decision}`; expected `accept`, `reject` or `None` (an offer row)"),
                ));
            }
            Ok(())
        },
        |reply| {
            let mut point_ctx = ctx.clone();
            point_ctx.rounds = reply.rounds;
            decision_point(game, &point_ctx, &reply.decision, delta_1, delta_2)
        },
    )
}

fn decision_point(
    game: &GleeGame<GameArgs>,
    ctx: &Context,
    decision: &str,
    delta_1: f64,
    delta_2: f64,
) -> DecisionPoint {
    let args = &game.config.game_args;
    let offer = ctx.rounds.last().expect("a decision point has the offer it answers");
    let mut flags = Vec::new();
    if ((offer.offer.human_gain + offer.offer.opponent_gain) - args.money_to_divide).abs() > 1e-6 {
        flags.push("offer_sum_mismatch".into());
    }
    let metadata = serde_json::json!({
        "game_id": game.id,
        "config_name": game.config.name,
        "human_player": ctx.human,
        "money_to_divide": args.money_to_divide,
        "max_rounds": args.max_rounds,
        "complete_information": args.complete_information,
        "messages_allowed": args.messages_allowed,
        "delta_1": delta_1,
        "delta_2": delta_2,
        "delta_human": ctx.delta_human,
        "delta_opponent": ctx.delta_opponent,
        "offer_to_human": offer.offer.human_gain,
        "offer_share": offer.offer.human_gain / args.money_to_divide,
        "answer": decision,
    });
    DecisionPoint {
        id: format!("{}-r{}", game.id, offer.round).into(),
        episode: game.id.clone().into(),
        round: offer.round,
        outcome: options::individual_outcome(decision, "accept"),
        metadata_json: metadata.to_string().into(),
        flags: flags.into(),
        context_json: to_json(ctx).into(),
    }
}

// ------------------------------------------------------------------------------ render

/// Reads every bargaining game under `path` into episodes of the human's decisions.
pub fn load(path: &Path) -> Result<LoadedData, KitError> {
    <Bargaining as Game>::load(path, NoParams {})
}

/// Renders a decision point made by [`load`] in the variant named `variant`.
pub fn render(point: &DecisionPoint, variant: &str) -> Result<Prompt, KitError> {
    <Bargaining as Game>::render(point, variant)
}

/// The rules the human read: players, stakes, protocol, inflation, rounds limit.
fn rules(ctx: &Context) -> String {
    let mut lines = vec![
        "Let's play a game.".to_string(),
        format!("In this game there are two players: you, playing as {}, and {}.", ctx.human, ctx.opponent),
        format!("You and {} need to divide {} between you.", ctx.opponent, money(ctx.money_to_divide)),
        format!(
            "In each round, one player proposes how to divide the money{}. The other player either accepts the \
             proposal, which ends the game, or rejects it, and the game moves on to the next round, in which the \
             other player makes the proposal. {} the proposal in round 1.",
            if ctx.messages_allowed { " and can describe the proposal in a few words" } else { "" },
            if ctx.first_proposer == ctx.human { "You make".to_string() } else { format!("{} makes", ctx.first_proposer) }
        ),
    ];
    if ctx.messages_allowed {
        lines.push(format!(
            "We will relay the proposals and messages between you and {}.",
            ctx.opponent
        ));
    } else {
        lines.push(format!("We will relay the proposals between you and {}.", ctx.opponent));
    }
    if let Some(inflation) = inflation_rule(ctx) {
        lines.push(inflation);
    }
    // GLEE states the limit only when it is small enough to matter (20 rounds or fewer).
    if ctx.max_rounds > 0 && ctx.max_rounds <= 20 {
        lines.push(format!(
            "You have {} rounds to divide the money, or both of you will get nothing!",
            ctx.max_rounds
        ));
    }
    lines.join("\n")
}

fn loss(delta: f64) -> f64 {
    (1.0 - delta) * 100.0
}

fn inflation_rule(ctx: &Context) -> Option<String> {
    let (mine, theirs) = (loss(ctx.delta_human), loss(ctx.delta_opponent));
    if mine == 0.0 && theirs == 0.0 {
        return None;
    }
    let start = "Beware of inflation! With each round that passes, the money is worth";
    Some(if !ctx.complete_information && mine == 0.0 {
        format!("The money keeps its value for you from round to round. You do not know how inflation affects {}.", ctx.opponent)
    } else if !ctx.complete_information {
        format!(
            "{start} {}% less for you. You do not know how inflation affects {}.",
            decimal(mine, 2),
            ctx.opponent
        )
    } else if mine == theirs {
        format!("{start} {}% less for both of you.", decimal(mine, 2))
    } else {
        format!(
            "{start} {}% less for you and {}% less for {}.",
            decimal(mine, 2),
            decimal(theirs, 2),
            ctx.opponent
        )
    })
}

/// The inflation reminder at the start of a round after the first.
fn inflation_update(ctx: &Context, round: u32) -> Option<String> {
    let exponent = round.saturating_sub(1) as i32;
    let mine = (1.0 - ctx.delta_human.powi(exponent)) * 100.0;
    let theirs = (1.0 - ctx.delta_opponent.powi(exponent)) * 100.0;
    if !ctx.complete_information || theirs == 0.0 && mine == 0.0 {
        return (mine > 0.0).then(|| {
            format!(
                "Due to inflation, the money you gain is worth {}% less than in the first round.",
                decimal(mine, 2)
            )
        });
    }
    Some(if mine == theirs {
        format!("Due to inflation, the money is worth {}% less than in the first round, for both of you.", decimal(mine, 2))
    } else {
        format!(
            "Due to inflation, the money you gain is worth {}% less than in the first round, and the money {} gains is worth {}% less.",
            decimal(mine, 2),
            ctx.opponent,
            decimal(theirs, 2)
        )
    })
}

impl AlternatingOffers for Context {
    type Offer = Split;

    fn game(&self) -> Offers<'_, Self::Offer> {
        Offers {
            rounds: &self.rounds,
            opponent: &self.opponent,
            messages_allowed: self.messages_allowed,
            accept: "accept",
            question: "Do you accept this offer?",
            name: NAME,
        }
    }

    fn instructions(&self) -> Instructions {
        Instructions {
            rules: rules(self),
            response_format: format!(
                "When you respond to an offer, {}",
                lowercase_first(&answer_instruction(&["accept", "reject"]))
            ),
            offer_format: offer_format(self),
        }
    }

    fn round_header(&self, round: u32) -> String {
        match inflation_update(self, round) {
            Some(update) => format!("Round {round}\n{update}"),
            None => format!("Round {round}"),
        }
    }

    fn offer_text(&self, r: &Round) -> String {
        let mut lines = vec![self.round_header(r.round), format!("{}'s offer:", self.opponent)];
        if self.messages_allowed {
            if let Some(message) = &r.message {
                lines.push(format!("{}'s message: {}", self.opponent, message));
            }
        }
        lines.push(format!(
            "You would get {}, and {} would get {}.",
            money(r.offer.human_gain),
            self.opponent,
            money(r.offer.opponent_gain)
        ));
        lines.join("\n")
    }

    fn answered_text(&self, r: &Round, response: &str) -> String {
        format!(
            "{}\nYou {} the offer.",
            self.offer_text(r),
            if response == "accept" { "accepted" } else { "rejected" }
        )
    }

    fn own_offer_line(&self, r: &Round) -> String {
        format!(
            "You offered: you would get {}, and {} would get {}.",
            money(r.offer.human_gain),
            self.opponent,
            money(r.offer.opponent_gain)
        )
    }

    fn offer_request(&self, r: &Round) -> String {
        format!(
            "{}\nSend your offer to divide {}{}.",
            self.round_header(r.round),
            money(self.money_to_divide),
            if self.messages_allowed {
                format!(" and a message to {}", self.opponent)
            } else {
                String::new()
            }
        )
    }

    fn offer_fields(&self, r: &Round) -> Vec<(String, serde_json::Value)> {
        vec![
            (gain_key(&self.human), json_number(r.offer.human_gain)),
            (gain_key(&self.opponent), json_number(r.offer.opponent_gain)),
        ]
    }
}

/// The JSON key of a player's gain: `alice_gain`.
fn gain_key(player: &str) -> String {
    format!("{}_gain", player.to_lowercase().replace(' ', "_"))
}

fn offer_format(ctx: &Context) -> String {
    let (h, o) = (gain_key(&ctx.human), gain_key(&ctx.opponent));
    format!(
        "When you make an offer, answer in JSON: {{\"{h}\": the amount you receive, \"{o}\": the amount {} receives{}}}.",
        ctx.opponent,
        if ctx.messages_allowed { format!(", \"message\": your message to {}", ctx.opponent) } else { String::new() }
    )
}

#[cfg(test)]
mod tests;
