//! descry game plugin `negotiation`: GLEE bilateral price negotiation with an outside
//! option, human responders.
//!
//! Alice (player 1) sells one product to Bob (player 2). In round r the proposer (Alice in
//! odd rounds) names a price, with a message when messages are allowed; the responder
//! accepts (`AcceptOffer`), rejects and counters in the next round (`RejectOffer`), or
//! leaves for the outside option: the seller sells to John at her own value
//! (`SellToJhon`), the buyer buys from John at his own value (`BuyFromJhon`), spelled as
//! in the data. Each decision point is one response of the human player.
//!
//! # Data
//! `path` is the GLEE data folder (holding `human_vs_llm/`), the `human_vs_llm` folder, or
//! its `negotiation` folder; every game folder below it is read (see
//! [`descry_game_kit::glee`]). `config.json` `game_args`: `seller_value`, `buyer_value`
//! (multiples of `product_price_order`), `product_price_order`, `max_rounds`,
//! `messages_allowed`, `complete_information`. `game.csv`: `message, product_price, player,
//! round, decision`. Folders without a config (human unknown) or a log, and games in which
//! the human never responded, are skipped with a reason.
//!
//! # Parameters
//! None; `{}` (unknown keys are errors).
//!
//! # Options
//! `AcceptOffer` (target), `RejectOffer`, `Outside` (the outside option; its surface
//! forms are both data spellings, `SellToJhon` and `BuyFromJhon`, each also with a
//! lower-case first letter and a leading space). The prompt names the human's own outside
//! option only.
//!
//! # Variants
//! - `native` (default): system = the rules for the human's role + the answer format; one
//!   user message = earlier rounds and the current offer with the three options.
//! - `transcript`: the same as a dialogue; the human's answers and own offers are assistant
//!   JSON turns (`{"decision": "RejectOffer"}`, `{"product_price": 8000, "message": "…"}`).
//! - `predict`: observer framing: predict the human's response from the quoted rules and
//!   game.
//!
//! # Metadata
//! `game_id`, `config_name`, `human_player`, `human_role` (`seller`/`buyer`),
//! `seller_value`, `buyer_value`, `product_price_order`, `max_rounds`, `messages_allowed`,
//! `complete_information`, `offer_price`, `human_value` (the human's value in dollars =
//! their outside option), `answer` (the decision as spelled in the data).
//!
//! # Flags
//! - `accepted_worse_than_outside`: the human accepted a price worse for them than their
//!   outside option (a seller below her value, a buyer above his).
//! - `implausible_own_offer`: earlier in the game the human offered a price worse for
//!   them than their outside option (e.g. a seller asking $50 for a product worth $10,000
//!   to her).
//! - `outside_option_mismatch`: the human took the other role's outside option
//!   (`SellToJhon` as buyer or `BuyFromJhon` as seller).
#![deny(missing_docs)]

use descry_abi::types::{DecisionOption, DecisionPoint, Episode, LoadedData, Prompt};
use descry_game_kit::{
    alternating::{self, json_number, AlternatingOffers, Instructions, Offers, Round as GameRound},
    answer_json,
    csv_table::{de, CsvTable},
    game::{Game, NoParams},
    glee::{GleeGame, Seat},
    json::to_json,
    options,
    render::{answer_instruction, money},
    KitError,
};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The plugin's name and family.
pub const NAME: &str = "negotiation";

descry_game_kit::variants! {
    /// The prompt variants (see the crate docs).
    pub enum Variant {
        Native = "native", transcript: false, "Rules for the human's role in the system message; the game so far and the current offer with its three options in one user message; answer prefix.";
        Transcript = "transcript", transcript: true, "The game as a dialogue: offers to the human as user turns, the human's responses and offers as assistant JSON turns.";
        Predict = "predict", transcript: false, "Observer framing: predict the human's response from the quoted rules and game.";
    }
}

const ACCEPT: &str = "AcceptOffer";
const REJECT: &str = "RejectOffer";
const OUTSIDE: &str = "Outside";
const SELL_TO_JOHN: &str = "SellToJhon";
const BUY_FROM_JOHN: &str = "BuyFromJhon";

/// The negotiation game plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct Negotiation;

descry_game_kit::plugin!(Negotiation);

/// `game_args` of a negotiation config.
#[derive(Debug, Clone, Deserialize)]
struct GameArgs {
    seller_value: f64,
    buyer_value: f64,
    product_price_order: f64,
    max_rounds: u32,
    messages_allowed: bool,
    complete_information: bool,
}

/// The offer column of `game.csv` (the others are the kit's [`alternating::Turn`]).
#[derive(Debug, Deserialize)]
struct PriceColumn {
    #[serde(deserialize_with = "de::opt_f64")]
    product_price: Option<f64>,
}

/// A round's offer: the price.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Price {
    price: f64,
}

/// One round as the human saw it (the reply as spelled in the data).
type Round = GameRound<Price>;

/// What `render` needs: the human's role, both values, and the rounds up to the decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Context {
    human: String,
    opponent: String,
    human_is_seller: bool,
    /// The seller's and the buyer's value in dollars (each one's outside option).
    seller_value: f64,
    buyer_value: f64,
    max_rounds: u32,
    messages_allowed: bool,
    complete_information: bool,
    /// Rounds 1..=r; the last is the offer being decided.
    rounds: Vec<Round>,
}

impl Context {
    fn own_value(&self) -> f64 {
        if self.human_is_seller {
            self.seller_value
        } else {
            self.buyer_value
        }
    }

    fn other_value(&self) -> f64 {
        if self.human_is_seller {
            self.buyer_value
        } else {
            self.seller_value
        }
    }

    /// The human's outside option as spelled in the data and the prompt.
    fn outside_word(&self) -> &'static str {
        if self.human_is_seller {
            SELL_TO_JOHN
        } else {
            BUY_FROM_JOHN
        }
    }

    /// True when `price` is worse for the human than their outside option.
    fn worse_than_outside(&self, price: f64) -> bool {
        if self.human_is_seller {
            price < self.seller_value
        } else {
            price > self.buyer_value
        }
    }
}

impl Game for Negotiation {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "GLEE negotiation (alternating price offers, outside option John): the human responder accepts, rejects and counters, or leaves.";
    const MULTI_ROUND: bool = true;
    const TARGET_OPTION: &'static str = ACCEPT;
    type Params = NoParams;
    type Variant = Variant;
    type Context = Context;

    fn options() -> Vec<DecisionOption> {
        vec![
            options::option(ACCEPT, &[ACCEPT]),
            options::option(REJECT, &[REJECT]),
            options::option(OUTSIDE, &[SELL_TO_JOHN, BUY_FROM_JOHN]),
        ]
    }

    fn prompt(ctx: &Context, variant: Variant) -> Prompt {
        match variant {
            Variant::Native => ctx.native(),
            Variant::Transcript => ctx.dialogue(),
            Variant::Predict => ctx.observed(
                &format!(
                    "{}, the {}",
                    ctx.human,
                    if ctx.human_is_seller { "seller" } else { "buyer" }
                ),
                &format!(
                    "What did the participant decide? {}",
                    answer_instruction(&[ACCEPT, REJECT, ctx.outside_word()])
                ),
            ),
        }
    }

    /// Reads every negotiation game under `path` into episodes of the human's responses.
    fn load(path: &Path, _: NoParams) -> Result<LoadedData, KitError> {
        alternating::load::<GameArgs>(path, NAME, load_game)
    }
}

/// Reads every negotiation game under `path` into episodes of the human's responses.
pub fn load(path: &Path) -> Result<LoadedData, KitError> {
    <Negotiation as Game>::load(path, NoParams {})
}

/// Renders a decision point made by [`load`] in the variant named `variant`.
pub fn render(point: &DecisionPoint, variant: &str) -> Result<Prompt, KitError> {
    <Negotiation as Game>::render(point, variant)
}

fn load_game(game: &GleeGame<GameArgs>) -> Result<Episode, KitError> {
    let args = &game.config.game_args;
    let table = CsvTable::read(
        &game.log_path,
        &["message", "product_price", "player", "round", "decision"],
    )?;
    let base = Context {
        human: game.human_name(),
        opponent: game.opponent_name(),
        human_is_seller: game.human == Seat::Player1,
        seller_value: args.seller_value * args.product_price_order,
        buyer_value: args.buyer_value * args.product_price_order,
        max_rounds: args.max_rounds,
        messages_allowed: args.messages_allowed,
        complete_information: args.complete_information,
        rounds: Vec::new(),
    };
    alternating::episode(
        game,
        &table,
        |line, r: PriceColumn| {
            let price = r.product_price.ok_or_else(|| {
                table.error(line, "product_price", "an offer without `product_price`")
            })?;
            Ok(Price { price })
        },
        |line, decision| {
            match decision {
            ACCEPT => Ok(ACCEPT),
            REJECT => Ok(REJECT),
            SELL_TO_JOHN | BUY_FROM_JOHN | "DealWithJhon" => Ok(OUTSIDE),
            other => Err(table.error(
                line,
                "decision",
                format!("unknown decision `{other}`; expected {ACCEPT}, {REJECT}, {SELL_TO_JOHN} or {BUY_FROM_JOHN}"),
            )),
        }
        },
        |reply| {
            let mut ctx = base.clone();
            ctx.rounds = reply.rounds;
            decision_point(game, &ctx, &reply.decision, reply.parsed)
        },
    )
}

fn decision_point(
    game: &GleeGame<GameArgs>,
    ctx: &Context,
    decision: &str,
    option: &str,
) -> DecisionPoint {
    let args = &game.config.game_args;
    let (round, price) = ctx.rounds.last().map_or((0, f64::NAN), |o| (o.round, o.offer.price));
    let mut flags = Vec::new();
    if option == ACCEPT && ctx.worse_than_outside(price) {
        flags.push("accepted_worse_than_outside".into());
    }
    if ctx.rounds.iter().any(|r| r.human_proposed && ctx.worse_than_outside(r.offer.price)) {
        flags.push("implausible_own_offer".into());
    }
    if option == OUTSIDE && decision != ctx.outside_word() && decision != "DealWithJhon" {
        flags.push("outside_option_mismatch".into());
    }
    let metadata = serde_json::json!({
        "game_id": game.id,
        "config_name": game.config.name,
        "human_player": ctx.human,
        "human_role": if ctx.human_is_seller { "seller" } else { "buyer" },
        "seller_value": args.seller_value,
        "buyer_value": args.buyer_value,
        "product_price_order": args.product_price_order,
        "max_rounds": args.max_rounds,
        "messages_allowed": args.messages_allowed,
        "complete_information": args.complete_information,
        "offer_price": price,
        "human_value": ctx.own_value(),
        "answer": decision,
    });
    DecisionPoint {
        id: format!("{}-r{}", game.id, round).into(),
        episode: game.id.clone().into(),
        round,
        outcome: options::individual_outcome(option, ACCEPT),
        metadata_json: metadata.to_string().into(),
        flags: flags.into(),
        context_json: to_json(ctx).into(),
    }
}

// ------------------------------------------------------------------------------ render

fn rules(ctx: &Context) -> String {
    let opp = &ctx.opponent;
    let other_value = if ctx.complete_information {
        format!("The product is worth {} to {opp}.", money(ctx.other_value()))
    } else {
        format!("You do not know how much the product is worth to {opp}.")
    };
    let limit = if ctx.max_rounds > 0 && ctx.max_rounds <= 20 {
        Some(format!("You have {} rounds to close the deal.", ctx.max_rounds))
    } else {
        None
    };
    let mut lines = vec!["Let's play a game.".to_string()];
    if ctx.human_is_seller {
        lines.push(format!(
            "You are {}. You are selling one product that is worth {} to you.",
            ctx.human,
            money(ctx.seller_value)
        ));
        lines.push(format!(
            "{opp} is a potential buyer to whom you are offering the product. {other_value}"
        ));
        lines.push(format!(
            "You offer {opp} a price of your choice, and {opp} can accept or reject it. If {opp} rejects the offer, \
             {opp} can make a counteroffer, which you can accept or reject; if you reject it, you can make a new \
             counteroffer, and so on."
        ));
        lines.extend(limit);
        lines.push(format!(
            "At any moment, you can stop negotiating with {opp} and sell the product to another buyer, John, who is \
             willing to buy it from you for {}.",
            money(ctx.seller_value)
        ));
        lines.push("Your goal is to earn as much money as you can for the product.".to_string());
    } else {
        lines.push(format!(
            "You are {}. You are looking for a product that is worth {} to you.",
            ctx.human,
            money(ctx.buyer_value)
        ));
        lines.push(format!("{opp} is a seller trying to sell you the product. {other_value}"));
        lines.push(format!(
            "{opp} offers you a price, and you can accept or reject it. If you reject the offer, you can make a \
             counteroffer, which {opp} can accept or reject; if {opp} rejects it, {opp} can make a new counteroffer, \
             and so on."
        ));
        lines.extend(limit);
        lines.push(format!(
            "At any moment, you can stop negotiating with {opp} and buy the product from another seller, John, who \
             is willing to sell it to you for {}.",
            money(ctx.buyer_value)
        ));
        lines.push(
            "Your goal is to buy the product while saving as much money as you can.".to_string(),
        );
    }
    lines.join("\n")
}

fn offer_format(ctx: &Context) -> String {
    format!(
        "When you make an offer, answer in JSON: {{\"product_price\": the price{}}}.",
        if ctx.messages_allowed {
            format!(", \"message\": your message to {}", ctx.opponent)
        } else {
            String::new()
        }
    )
}

impl AlternatingOffers for Context {
    type Offer = Price;

    fn game(&self) -> Offers<'_, Self::Offer> {
        Offers {
            rounds: &self.rounds,
            opponent: &self.opponent,
            messages_allowed: self.messages_allowed,
            accept: ACCEPT,
            question: "What do you decide?",
            name: NAME,
        }
    }

    fn instructions(&self) -> Instructions {
        Instructions {
            rules: rules(self),
            response_format: format!(
                "When you respond to an offer, answer with {}, {} or {}.",
                answer_json(ACCEPT),
                answer_json(REJECT),
                answer_json(self.outside_word())
            ),
            offer_format: offer_format(self),
        }
    }

    fn round_header(&self, round: u32) -> String {
        format!("Round {round}")
    }

    /// The offer with the human's three options.
    fn offer_text(&self, r: &Round) -> String {
        let opp = &self.opponent;
        let mut lines = vec![
            self.round_header(r.round),
            format!("{opp}'s offer: the price is {}.", money(r.offer.price)),
        ];
        if self.messages_allowed {
            if let Some(message) = &r.message {
                lines.push(format!("{opp}'s message: {message}"));
            }
        }
        lines.push("You have three options:".to_string());
        let deal =
            if self.human_is_seller { "sell the product to" } else { "buy the product from" };
        lines.push(format!(
            "(1) {ACCEPT}: accept {opp}'s offer and {deal} {opp} for {}",
            money(r.offer.price)
        ));
        lines.push(if r.round >= self.max_rounds {
            format!("(2) {REJECT}: reject {opp}'s offer")
        } else {
            format!(
                "(2) {REJECT}: reject {opp}'s offer and send {opp} a counteroffer in the next round"
            )
        });
        lines.push(format!(
            "(3) {}: {deal} John for {}",
            self.outside_word(),
            money(self.own_value())
        ));
        lines.join("\n")
    }

    /// The offer without the options, and what the human did.
    fn answered_text(&self, r: &Round, response: &str) -> String {
        format!(
            "Round {}\n{}'s offer: the price is {}.{}\n{}",
            r.round,
            self.opponent,
            money(r.offer.price),
            match (&r.message, self.messages_allowed) {
                (Some(message), true) => format!("\n{}'s message: {message}", self.opponent),
                _ => String::new(),
            },
            match response {
                ACCEPT => "You accepted the offer.",
                REJECT => "You rejected the offer.",
                _ => "You took the deal with John.",
            }
        )
    }

    fn own_offer_line(&self, r: &Round) -> String {
        format!("You offered {} a price of {}.", self.opponent, money(r.offer.price))
    }

    fn offer_request(&self, r: &Round) -> String {
        format!(
            "Round {}\nSend your {} to {}.",
            r.round,
            if r.round > 1 { "counteroffer" } else { "offer" },
            self.opponent
        )
    }

    fn offer_fields(&self, r: &Round) -> Vec<(String, serde_json::Value)> {
        vec![("product_price".into(), json_number(r.offer.price))]
    }
}

#[cfg(test)]
mod tests;
