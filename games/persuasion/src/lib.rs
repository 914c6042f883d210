//! descry game plugin `persuasion`: GLEE repeated cheap talk, human buyers.
//!
//! For 20 rounds a seller (Alice, player 1, an LLM here) learns whether this round's
//! product is high- or low-quality and sends the buyer (Bob, player 2) a message (free
//! text, or a yes/no recommendation when `seller_message_type` is `binary`); the buyer buys
//! (`yes`) or passes (`no`) at a fixed price. The buyer learns the quality at the end of
//! each round. A *myopic* buyer stands for a new buyer each round and sees, instead of the
//! history, only the seller's sales statistics. Each decision point is one buy decision of a
//! human buyer.
//!
//! # Data
//! `path` is the GLEE data folder (holding `human_vs_llm/`), the `human_vs_llm` folder, or
//! its `persuasion` folder; every game folder below it is read (see
//! [`descry_game_kit::glee`]). `config.json` `game_args`: `p`, `v`, `c` (worths as
//! multiples of `product_price`), `product_price`, `total_rounds`, `seller_message_type`
//! (`text`/`binary`), `is_myopic`, and optionally `is_seller_know_cv` and `is_buyer_know_p`
//! (default true). `game.csv`: `round_quality, product_worth, player, round, message,
//! decision`, per round a `Nature` row, the seller's row and the buyer's row. Games whose
//! human is the seller are skipped (reason starting with
//! [`descry_game_kit::glee::reasons::NO_HUMAN_DECISION`]), as are folders without a
//! config or a log.
//!
//! # Parameters
//! None; `{}` (unknown keys are errors).
//!
//! # Options
//! `yes` (buy; target) and `no`; surface forms `yes`, ` yes`, `Yes`, ` Yes` (same for no).
//!
//! # Variants
//! - `native` (default): system = the rules as the buyer read them + answer format; one
//!   user message = the earlier rounds (seller's message, the buyer's choice, the quality
//!   revealed) and the current offer. A myopic buyer sees only the current round with the
//!   sales statistics, as each myopic buyer did.
//! - `transcript`: the same as a dialogue, each round a user turn and each buy decision an
//!   assistant turn (`{"decision": "yes"}`); the outcome of a round opens the next user
//!   turn. For a myopic buyer the transcript still holds every round the person played
//!   (each with the statistics), since the same person made all 20 decisions; it is the
//!   one variant where a myopic buyer's earlier rounds appear.
//! - `predict`: observer framing: predict a human participant's decision from the quoted
//!   rules and rounds (native content).
//!
//! # Metadata
//! `game_id`, `config_name`, `seller_message_type`, `is_myopic`, `p`, `v`, `c`,
//! `product_price`, `is_seller_know_cv`, `is_buyer_know_p`, `total_rounds`,
//! `product_quality` (`high`/`low`, hidden from the buyer at the decision),
//! `recommendation` (`yes`/`no` for binary messages, else null), `answer`.
//!
//! # Flags
//! - `always_buys`: on every point of a game in which the buyer bought in every round.
//! - `bought_against_recommendation`: the buyer bought right after a binary "no".
#![deny(missing_docs)]

use descry_abi::types::{DecisionOption, DecisionPoint, Episode, LoadedData, Prompt};
use descry_game_kit::{
    answer_json,
    csv_table::{de, CsvTable},
    game::{Game, NoParams},
    glee::{self, GleeGame, Seat},
    json::to_json,
    options,
    render::{answer_instruction, message_text, money, percent, Messages, Observer},
    KitError,
};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The plugin's name and family.
pub const NAME: &str = "persuasion";

descry_game_kit::variants! {
    /// The prompt variants (see the crate docs).
    pub enum Variant {
        Native = "native", transcript: false, "Rules in the system message; earlier rounds (or a myopic buyer's statistics) and the current offer in one user message; answer prefix.";
        Transcript = "transcript", transcript: true, "The game as a dialogue: each round a user turn, each buy decision an assistant JSON turn.";
        Predict = "predict", transcript: false, "Observer framing: predict the human buyer's decision from the quoted rules and rounds.";
    }
}

/// The persuasion game plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct Persuasion;

descry_game_kit::plugin!(Persuasion);

fn yes() -> bool {
    true
}

/// `game_args` of a persuasion config.
#[derive(Debug, Clone, Deserialize)]
struct GameArgs {
    p: f64,
    v: f64,
    c: f64,
    product_price: f64,
    total_rounds: u32,
    seller_message_type: String,
    is_myopic: bool,
    #[serde(default = "yes")]
    is_seller_know_cv: bool,
    #[serde(default = "yes")]
    is_buyer_know_p: bool,
}

#[derive(Debug, Deserialize)]
struct LogRow {
    #[serde(deserialize_with = "de::opt_text")]
    round_quality: Option<String>,
    player: String,
    round: u32,
    #[serde(deserialize_with = "de::opt_text")]
    message: Option<String>,
    #[serde(deserialize_with = "de::opt_text")]
    decision: Option<String>,
}

/// One round as the buyer saw it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Round {
    round: u32,
    /// The seller's free-text message (text games).
    message: Option<String>,
    /// The seller's recommendation (binary games).
    recommends: Option<bool>,
    /// Whether the buyer bought; absent for the round being decided.
    bought: Option<bool>,
    /// The quality, revealed after the decision; absent for the round being decided.
    high_quality: Option<bool>,
}

/// What `render` needs: the rules the buyer read and the rounds up to the decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Context {
    seller: String,
    buyer: String,
    price: f64,
    p: f64,
    /// Worth of a high- and a low-quality product to the buyer, in dollars.
    high_worth: f64,
    low_worth: f64,
    total_rounds: u32,
    binary: bool,
    myopic: bool,
    seller_knows_worth: bool,
    buyer_knows_p: bool,
    /// Rounds 1..=r; the last is the one being decided.
    rounds: Vec<Round>,
}

impl Game for Persuasion {
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str =
        "GLEE persuasion (20-round cheap talk): the human buyer buys or passes after the seller's message.";
    const MULTI_ROUND: bool = true;
    const TARGET_OPTION: &'static str = "yes";
    type Params = NoParams;
    type Variant = Variant;
    type Context = Context;

    fn options() -> Vec<DecisionOption> {
        vec![options::option("yes", &["yes"]), options::option("no", &["no"])]
    }

    /// Reads every persuasion game under `path` into episodes of the human buyer's decisions.
    fn load(path: &Path, _: NoParams) -> Result<LoadedData, KitError> {
        glee::load_episodes::<GameArgs>(
            path,
            NAME,
            |game| {
                (game.human != Seat::Player2)
                    .then_some("the human is the seller (only the buyer's decisions are predicted)")
            },
            "the log has no buyer decisions",
            load_game,
        )
    }

    fn prompt(ctx: &Context, variant: Variant) -> Prompt {
        let mut m = Messages::new();
        match variant {
            Variant::Native => {
                m.system(format!("{}\n{}", rules(ctx), answer_format()));
                m.user(narrative(ctx));
            }
            Variant::Transcript => {
                m.system(format!("{}\n{}", rules(ctx), answer_format()));
                let mut carried: Option<String> = None;
                for r in &ctx.rounds {
                    let offer = format!("{}\n{QUESTION}", round_text(ctx, r));
                    m.user(match carried.take() {
                        Some(outcome) => format!("{outcome}\n\n{offer}"),
                        None => offer,
                    });
                    match r.bought {
                        Some(bought) => {
                            m.assistant(answer_json(if bought { "yes" } else { "no" }));
                            carried = Some(outcome_text(ctx, r));
                        }
                        None => break,
                    }
                }
            }
            Variant::Predict => {
                m.system(
                    Observer {
                        played: "the buyer in the game below",
                        against: "an AI seller",
                        rules: "instructions",
                        seen: "what the participant saw",
                        whose: "their",
                        decision: "decision",
                    }
                    .preamble(),
                );
                m.user(format!(
                    "Instructions:\n{}\n\nWhat the participant saw:\n{}\n\nDid the participant buy the product? {}",
                    rules(ctx),
                    narrative(ctx),
                    answer_instruction(&["yes", "no"])
                ));
            }
        }
        m.into_prompt()
    }
}

/// Reads every persuasion game under `path` into episodes of the human buyer's decisions.
pub fn load(path: &Path) -> Result<LoadedData, KitError> {
    <Persuasion as Game>::load(path, NoParams {})
}

/// Renders a decision point made by [`load`] in the variant named `variant`.
pub fn render(point: &DecisionPoint, variant: &str) -> Result<Prompt, KitError> {
    <Persuasion as Game>::render(point, variant)
}

fn yes_no(table: &CsvTable, line: u64, value: Option<&str>, who: &str) -> Result<bool, KitError> {
    match value {
        Some("yes") => Ok(true),
        Some("no") => Ok(false),
        other => Err(table.error(
            line,
            "decision",
            format!("unknown {who} decision `{}`; expected `yes` or `no`", other.unwrap_or("")),
        )),
    }
}

fn load_game(game: &GleeGame<GameArgs>) -> Result<Episode, KitError> {
    let args = &game.config.game_args;
    let binary = match args.seller_message_type.as_str() {
        "text" => false,
        "binary" => true,
        other => {
            return Err(KitError::file(
                &game.config_path,
                format!(
                "unknown `game_args.seller_message_type` `{other}`; expected `text` or `binary`"
            ),
            ))
        }
    };
    let table = CsvTable::read(
        &game.log_path,
        &["round_quality", "player", "round", "message", "decision"],
    )?;
    let seller = game.name(Seat::Player1);
    let buyer = game.name(Seat::Player2);
    let base = Context {
        seller: seller.clone(),
        buyer: buyer.clone(),
        price: args.product_price,
        p: args.p,
        high_worth: args.v * args.product_price,
        low_worth: args.c * args.product_price,
        total_rounds: args.total_rounds,
        binary,
        myopic: args.is_myopic,
        seller_knows_worth: args.is_seller_know_cv,
        buyer_knows_p: args.is_buyer_know_p,
        rounds: Vec::new(),
    };

    // Rounds as logged: Nature's draw, the seller's message, the buyer's decision.
    let mut rounds: Vec<Round> = Vec::new();
    let mut qualities: Vec<bool> = Vec::new();
    let mut decision_rows: Vec<(usize, u64)> = Vec::new();
    for row in table.rows::<LogRow>() {
        let row = row?;
        let (line, r) = (row.line, row.value);
        if r.player == "Nature" {
            let high = match r.round_quality.as_deref() {
                Some("high-quality") => true,
                Some("low-quality") => false,
                other => {
                    return Err(table.error(
                        line,
                        "round_quality",
                        format!(
                            "unknown quality `{}`; expected `high-quality` or `low-quality`",
                            other.unwrap_or("")
                        ),
                    ))
                }
            };
            if let Some(previous) = rounds.last() {
                if previous.bought.is_none() {
                    return Err(table.error(
                        line,
                        "round",
                        format!("round {} has no buyer decision", previous.round),
                    ));
                }
            }
            rounds.push(Round { round: r.round, ..Round::default() });
            qualities.push(high);
            continue;
        }
        let current = match rounds.last_mut() {
            Some(c) if c.round == r.round => c,
            _ => {
                return Err(table.error(
                    line,
                    "round",
                    format!("round {} has no `Nature` row before it", r.round),
                ))
            }
        };
        if r.player == seller {
            if binary {
                current.recommends = Some(yes_no(&table, line, r.decision.as_deref(), "seller")?);
            } else {
                current.message = Some(r.message.as_deref().map(message_text).unwrap_or_default());
            }
        } else if r.player == buyer {
            current.bought = Some(yes_no(&table, line, r.decision.as_deref(), "buyer")?);
            decision_rows.push((rounds.len() - 1, line));
        } else {
            return Err(table.error(
                line,
                "player",
                format!(
                    "unknown player `{}`; expected `Nature`, `{seller}` or `{buyer}`",
                    r.player
                ),
            ));
        }
    }

    let always_buys = !rounds.is_empty() && rounds.iter().all(|r| r.bought == Some(true));
    let mut decisions = Vec::new();
    for (index, _line) in decision_rows {
        let mut ctx = base.clone();
        ctx.rounds = rounds[..=index].to_vec();
        // Earlier rounds carry their revealed quality; the current one neither its answer
        // nor its quality.
        for (i, r) in ctx.rounds.iter_mut().enumerate() {
            r.high_quality = Some(qualities[i]);
        }
        let (bought, high) = match ctx.rounds.last_mut() {
            Some(current) => (
                current.bought.take().unwrap_or(false),
                current.high_quality.take().unwrap_or(false),
            ),
            None => continue,
        };
        let recommends = ctx.rounds.last().and_then(|r| r.recommends);
        let answer = if bought { "yes" } else { "no" };
        let mut flags = Vec::new();
        if always_buys {
            flags.push("always_buys".into());
        }
        if bought && recommends == Some(false) {
            flags.push("bought_against_recommendation".into());
        }
        let round = rounds[index].round;
        let metadata = serde_json::json!({
            "game_id": game.id,
            "config_name": game.config.name,
            "seller_message_type": args.seller_message_type,
            "is_myopic": args.is_myopic,
            "p": args.p,
            "v": args.v,
            "c": args.c,
            "product_price": args.product_price,
            "is_seller_know_cv": args.is_seller_know_cv,
            "is_buyer_know_p": args.is_buyer_know_p,
            "total_rounds": args.total_rounds,
            "product_quality": if high { "high" } else { "low" },
            "recommendation": recommends.map(|r| if r { "yes" } else { "no" }),
            "answer": answer,
        });
        decisions.push(DecisionPoint {
            id: format!("{}-r{}", game.id, round).into(),
            episode: game.id.clone().into(),
            round,
            outcome: options::individual_outcome(answer, "yes"),
            metadata_json: metadata.to_string().into(),
            flags: flags.into(),
            context_json: to_json(&ctx).into(),
        });
    }
    Ok(Episode { id: game.id.clone().into(), decisions: decisions.into() })
}

// ------------------------------------------------------------------------------ render

const QUESTION: &str = "Would you like to buy this product?";

fn answer_format() -> String {
    format!(
        "When you decide, answer with {} to buy the product or {} to pass.",
        answer_json("yes"),
        answer_json("no")
    )
}

fn rules(ctx: &Context) -> String {
    let what = if ctx.binary { "a recommendation" } else { "a message" };
    let mut lines = vec![
        "Let's play a game.".to_string(),
        format!(
            "{} is a seller offering products for a fixed price of {} each. {}",
            ctx.seller,
            money(ctx.price),
            if ctx.myopic {
                "You are one of the buyers.".to_string()
            } else {
                format!("You are {}, the buyer.", ctx.buyer)
            }
        ),
    ];
    lines.push(if ctx.buyer_knows_p {
        format!(
            "Each product has a {} chance of being high-quality and a {} chance of being low-quality.",
            percent(ctx.p),
            percent(1.0 - ctx.p)
        )
    } else {
        "You do not know what share of the products are high-quality.".to_string()
    });
    lines.push(format!(
        "A high-quality product is worth {} to you, and a low-quality product is worth {} to you. {} {} how much each product is worth to you.",
        money(ctx.high_worth),
        money(ctx.low_worth),
        ctx.seller,
        if ctx.seller_knows_worth { "knows" } else { "does not know" }
    ));
    if ctx.myopic {
        lines.push(format!(
            "For each buyer, including you, {s} picks one of the products at random, finds out its true quality, and \
             sends the buyer {what} about it. Each buyer also sees {s}'s sales record: how many buyers bought the \
             product offered to them, and how many of the products sold were high-quality. You decide whether to buy \
             the product or pass; a product you pass on is thrown away and no one can buy it. After your decision, \
             you will find out whether the product was high-quality or low-quality.",
            s = ctx.seller
        ));
    } else {
        lines.push(format!(
            "For {n} rounds, in each round {s} picks one of the products at random, finds out its true quality, and \
             sends you {what} about it. You decide whether to buy the product or pass; a product you pass on is \
             thrown away and no one can buy it. At the end of the round, you will find out whether the product was \
             high-quality or low-quality.",
            n = ctx.total_rounds,
            s = ctx.seller
        ));
    }
    lines
        .push("The price is final, and a product cannot be returned after you buy it.".to_string());
    lines.join("\n")
}

/// The sales record a myopic buyer sees before round `round`.
fn statistics(ctx: &Context, round: u32) -> String {
    let before = ctx.rounds.iter().filter(|r| r.round < round);
    let (sold, high) = before.fold((0, 0), |(s, h), r| {
        let bought = r.bought == Some(true);
        (s + usize::from(bought), h + usize::from(bought && r.high_quality == Some(true)))
    });
    if sold == 0 {
        "Statistics: no products have been sold yet.".to_string()
    } else {
        format!(
            "Statistics: so far {sold} {} bought the product offered to them, and {high} of the products sold {} high-quality.",
            if sold == 1 { "buyer" } else { "buyers" },
            if high == 1 { "was" } else { "were" }
        )
    }
}

/// What the buyer saw in a round before deciding (without the question).
fn round_text(ctx: &Context, r: &Round) -> String {
    let seller_part = match (ctx.binary, r.recommends) {
        (true, Some(true)) => format!("{} recommends that you buy the product.", ctx.seller),
        (true, _) => format!("{} does not recommend that you buy the product.", ctx.seller),
        (false, _) => format!("{}'s message: {}", ctx.seller, r.message.as_deref().unwrap_or("")),
    };
    if ctx.myopic {
        format!("{}\n{seller_part}", statistics(ctx, r.round))
    } else {
        format!("Round {}\n{seller_part}", r.round)
    }
}

/// What the buyer learned at the end of a round.
fn outcome_text(ctx: &Context, r: &Round) -> String {
    let quality = if r.high_quality == Some(true) { "high-quality" } else { "low-quality" };
    let worth = money(if r.high_quality == Some(true) { ctx.high_worth } else { ctx.low_worth });
    if r.bought == Some(true) {
        format!(
            "You bought the product for {}. The product was {quality}; it is worth {worth} to you.",
            money(ctx.price)
        )
    } else {
        format!("You did not buy the product. The product was {quality}; it would have been worth {worth} to you.")
    }
}

/// Native content: the earlier rounds (not for a myopic buyer) and the current offer.
fn narrative(ctx: &Context) -> String {
    let mut parts = Vec::new();
    for r in &ctx.rounds {
        match r.bought {
            Some(_) if ctx.myopic => {}
            Some(_) => parts.push(format!("{}\n{}", round_text(ctx, r), outcome_text(ctx, r))),
            None => parts.push(format!("{}\n{QUESTION}", round_text(ctx, r))),
        }
    }
    parts.join("\n\n")
}

#[cfg(test)]
mod tests;
