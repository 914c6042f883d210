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

use descry_abi::{
    game::GamePlugin,
    types::{DecisionPoint, Episode, GameInfo, LoadRequest, LoadedData, Prompt},
    PluginError,
};
use descry_game_kit::{
    answer_json,
    csv_table::{de, CsvTable},
    glee::{self, GleeGame, Seat},
    json::{context, parse_params, to_json},
    options::{self, VariantSpec},
    render::{answer_instruction, message_text, money, Messages},
    KitError,
};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The plugin's name and family.
pub const NAME: &str = "negotiation";

const VARIANTS: &[VariantSpec] = &[
    VariantSpec {
        name: "native",
        description: "Rules for the human's role in the system message; the game so far and the current offer with its three options in one user message; answer prefix.",
        transcript: false,
    },
    VariantSpec {
        name: "transcript",
        description: "The game as a dialogue: offers to the human as user turns, the human's responses and offers as assistant JSON turns.",
        transcript: true,
    },
    VariantSpec {
        name: "predict",
        description: "Observer framing: predict the human's response from the quoted rules and game.",
        transcript: false,
    },
];

const ACCEPT: &str = "AcceptOffer";
const REJECT: &str = "RejectOffer";
const OUTSIDE: &str = "Outside";
const SELL_TO_JOHN: &str = "SellToJhon";
const BUY_FROM_JOHN: &str = "BuyFromJhon";

/// The negotiation game plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct Negotiation;

/// The exported root module (the export macro's items carry no docs of their own).
mod export {
    descry_abi::export_game!(super::Negotiation);
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {}

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

#[derive(Debug, Deserialize)]
struct LogRow {
    #[serde(deserialize_with = "de::opt_text")]
    message: Option<String>,
    #[serde(deserialize_with = "de::opt_f64")]
    product_price: Option<f64>,
    player: String,
    round: u32,
    #[serde(deserialize_with = "de::opt_text")]
    decision: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Round {
    round: u32,
    human_proposed: bool,
    price: f64,
    message: Option<String>,
    /// The response as spelled in the data; absent for the offer being decided.
    response: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Context {
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

impl GamePlugin for Negotiation {
    fn info(&self) -> GameInfo {
        GameInfo {
            plugin: options::plugin_info(
                NAME,
                env!("CARGO_PKG_VERSION"),
                "GLEE negotiation (alternating price offers, outside option John): the human responder accepts, rejects and counters, or leaves.",
            ),
            family: NAME.into(),
            multi_round: true,
            options: vec![
                options::option(ACCEPT, &[ACCEPT]),
                options::option(REJECT, &[REJECT]),
                options::option(OUTSIDE, &[SELL_TO_JOHN, BUY_FROM_JOHN]),
            ]
            .into(),
            target_option: ACCEPT.into(),
            variants: options::variants(VARIANTS),
        }
    }

    fn load(&self, request: &LoadRequest) -> Result<LoadedData, PluginError> {
        let _: Params = parse_params(NAME, request.params_json.as_str())?;
        Ok(load(Path::new(request.path.as_str()))?)
    }

    fn render(&self, point: &DecisionPoint, variant: &str) -> Result<Prompt, PluginError> {
        Ok(render(point, variant)?)
    }
}

/// Reads every negotiation game under `path` into episodes of the human's responses.
pub fn load(path: &Path) -> Result<LoadedData, KitError> {
    glee::load_episodes::<GameArgs>(
        path,
        NAME,
        |_| None,
        "the LLM answered every offer, the human only proposed",
        load_game,
    )
}

fn load_game(game: &GleeGame<GameArgs>) -> Result<Episode, KitError> {
    let args = &game.config.game_args;
    let table = CsvTable::read(
        &game.log_path,
        &["message", "product_price", "player", "round", "decision"],
    )?;
    let human = game.human_name();
    let base = Context {
        human: human.clone(),
        opponent: game.opponent_name(),
        human_is_seller: game.human == Seat::Player1,
        seller_value: args.seller_value * args.product_price_order,
        buyer_value: args.buyer_value * args.product_price_order,
        max_rounds: args.max_rounds,
        messages_allowed: args.messages_allowed,
        complete_information: args.complete_information,
        rounds: Vec::new(),
    };

    let mut rounds: Vec<Round> = Vec::new();
    let mut decisions = Vec::new();
    for row in table.rows::<LogRow>() {
        let row = row?;
        let (line, r) = (row.line, row.value);
        game.check_player(&table, line, &r.player)?;
        let Some(decision) = r.decision else {
            // An offer row.
            let price = r.product_price.ok_or_else(|| {
                table.error(line, "product_price", "an offer without `product_price`")
            })?;
            rounds.push(Round {
                round: r.round,
                human_proposed: r.player == human,
                price,
                message: r.message.as_deref().map(message_text).filter(|m| !m.is_empty()),
                response: None,
            });
            continue;
        };
        let option = match decision.as_str() {
            ACCEPT => ACCEPT,
            REJECT => REJECT,
            SELL_TO_JOHN | BUY_FROM_JOHN | "DealWithJhon" => OUTSIDE,
            other => {
                return Err(table.error(
                    line,
                    "decision",
                    format!("unknown decision `{other}`; expected {ACCEPT}, {REJECT}, {SELL_TO_JOHN} or {BUY_FROM_JOHN}"),
                ))
            }
        };
        glee::check_response(
            &table,
            line,
            r.round,
            rounds.last().map(|o| (o.round, o.response.is_some())),
        )?;
        if r.player == human {
            let mut ctx = base.clone();
            ctx.rounds = rounds.clone();
            decisions.push(decision_point(game, &ctx, &decision, option));
        }
        if let Some(offer) = rounds.last_mut() {
            offer.response = Some(decision);
        }
    }
    Ok(Episode { id: game.id.clone().into(), decisions: decisions.into() })
}

fn decision_point(
    game: &GleeGame<GameArgs>,
    ctx: &Context,
    decision: &str,
    option: &str,
) -> DecisionPoint {
    let args = &game.config.game_args;
    let (round, price) = ctx.rounds.last().map_or((0, f64::NAN), |o| (o.round, o.price));
    let mut flags = Vec::new();
    if option == ACCEPT && ctx.worse_than_outside(price) {
        flags.push("accepted_worse_than_outside".into());
    }
    if ctx.rounds.iter().any(|r| r.human_proposed && ctx.worse_than_outside(r.price)) {
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

/// Renders a decision point made by [`load`] in one of the variants.
pub fn render(point: &DecisionPoint, variant: &str) -> Result<Prompt, KitError> {
    let spec = options::find_variant(VARIANTS, point.id.as_str(), variant)?;
    let ctx: Context = context(point)?;
    let mut m = Messages::new();
    match spec.name {
        "native" => {
            m.system(format!("{}\n{}", rules(&ctx), response_format(&ctx)));
            m.user(narrative(&ctx));
        }
        "transcript" => {
            m.system(format!("{}\n{}\n{}", rules(&ctx), offer_format(&ctx), response_format(&ctx)));
            transcript(&ctx, &mut m);
        }
        _ => {
            m.system(
                "You are an expert in predicting human behaviour in economic games. A human participant played \
                 the negotiation game below against an AI agent. You will read the instructions the participant \
                 read and the game up to one of the participant's decisions (\"you\" is the participant). \
                 Predict that decision.",
            );
            m.user(format!(
                "The participant played as {}, the {}.\n\nInstructions:\n{}\n\nThe game so far:\n{}\n\nWhat did the participant decide? {}",
                ctx.human,
                if ctx.human_is_seller { "seller" } else { "buyer" },
                rules(&ctx),
                narrative(&ctx),
                answer_instruction(&[ACCEPT, REJECT, ctx.outside_word()])
            ));
        }
    }
    Ok(m.into_prompt())
}

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

fn response_format(ctx: &Context) -> String {
    format!(
        "When you respond to an offer, answer with {}, {} or {}.",
        answer_json(ACCEPT),
        answer_json(REJECT),
        answer_json(ctx.outside_word())
    )
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

/// An offer from the opponent with the human's three options.
fn offer_text(ctx: &Context, r: &Round) -> String {
    let opp = &ctx.opponent;
    let mut lines = vec![
        format!("Round {}", r.round),
        format!("{opp}'s offer: the price is {}.", money(r.price)),
    ];
    if ctx.messages_allowed {
        if let Some(message) = &r.message {
            lines.push(format!("{opp}'s message: {message}"));
        }
    }
    lines.push("You have three options:".to_string());
    let deal = if ctx.human_is_seller { "sell the product to" } else { "buy the product from" };
    lines.push(format!(
        "(1) {ACCEPT}: accept {opp}'s offer and {deal} {opp} for {}",
        money(r.price)
    ));
    lines.push(if r.round >= ctx.max_rounds {
        format!("(2) {REJECT}: reject {opp}'s offer")
    } else {
        format!(
            "(2) {REJECT}: reject {opp}'s offer and send {opp} a counteroffer in the next round"
        )
    });
    lines.push(format!("(3) {}: {deal} John for {}", ctx.outside_word(), money(ctx.own_value())));
    lines.join("\n")
}

fn own_offer_text(ctx: &Context, r: &Round) -> String {
    let mut lines = vec![
        format!("Round {}", r.round),
        format!("You offered {} a price of {}.", ctx.opponent, money(r.price)),
    ];
    if ctx.messages_allowed {
        if let Some(message) = &r.message {
            lines.push(format!("Your message: {message}"));
        }
    }
    lines.push(response_to_human(ctx, r));
    lines.join("\n")
}

fn response_to_human(ctx: &Context, r: &Round) -> String {
    match r.response.as_deref() {
        Some(ACCEPT) => format!("{} accepted your offer.", ctx.opponent),
        _ => format!("{} rejected your offer.", ctx.opponent),
    }
}

fn response_words(response: &str) -> &'static str {
    match response {
        ACCEPT => "You accepted the offer.",
        REJECT => "You rejected the offer.",
        _ => "You took the deal with John.",
    }
}

const QUESTION: &str = "What do you decide?";

fn narrative(ctx: &Context) -> String {
    let mut parts = Vec::new();
    for r in &ctx.rounds {
        if r.human_proposed {
            parts.push(own_offer_text(ctx, r));
        } else {
            match r.response.as_deref() {
                Some(response) => parts.push(format!(
                    "Round {}\n{}'s offer: the price is {}.{}\n{}",
                    r.round,
                    ctx.opponent,
                    money(r.price),
                    match (&r.message, ctx.messages_allowed) {
                        (Some(message), true) => format!("\n{}'s message: {message}", ctx.opponent),
                        _ => String::new(),
                    },
                    response_words(response)
                )),
                None => parts.push(format!("{}\n{QUESTION}", offer_text(ctx, r))),
            }
        }
    }
    parts.join("\n\n")
}

/// A whole number as a JSON integer, anything else as a float.
fn json_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        format!("{}", x as i64)
    } else {
        serde_json::Value::from(x).to_string()
    }
}

fn transcript(ctx: &Context, m: &mut Messages) {
    let mut pending: Vec<String> = Vec::new();
    let flush = |m: &mut Messages, pending: &mut Vec<String>| {
        m.user(pending.join("\n\n"));
        pending.clear();
    };
    for r in &ctx.rounds {
        if r.human_proposed {
            pending.push(format!(
                "Round {}\nSend your {} to {}.",
                r.round,
                if r.round > 1 { "counteroffer" } else { "offer" },
                ctx.opponent
            ));
            flush(m, &mut pending);
            let mut offer = format!("{{\"product_price\": {}", json_number(r.price));
            if ctx.messages_allowed {
                offer.push_str(&format!(
                    ", \"message\": {}",
                    serde_json::Value::from(r.message.clone().unwrap_or_default())
                ));
            }
            offer.push('}');
            m.assistant(offer);
            pending.push(response_to_human(ctx, r));
        } else {
            pending.push(format!("{}\n{QUESTION}", offer_text(ctx, r)));
            flush(m, &mut pending);
            match &r.response {
                Some(response) => {
                    m.assistant(answer_json(response));
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests;
