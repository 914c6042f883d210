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
    render::{answer_instruction, decimal, message_text, money, Messages},
    KitError,
};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The plugin's name and family.
pub const NAME: &str = "bargaining";

const VARIANTS: &[VariantSpec] = &[
    VariantSpec {
        name: "native",
        description: "Rules in the system message; the game so far and the current offer in one user message; answer prefix.",
        transcript: false,
    },
    VariantSpec {
        name: "transcript",
        description: "The game as a dialogue: offers to the human as user turns, the human's answers and offers as assistant JSON turns.",
        transcript: true,
    },
    VariantSpec {
        name: "predict",
        description: "Observer framing: predict the human participant's decision from the quoted rules and game.",
        transcript: false,
    },
];

/// The bargaining game plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct Bargaining;

/// The exported root module (the export macro's items carry no docs of their own).
mod export {
    descry_abi::export_game!(super::Bargaining);
}

/// Load parameters: none yet.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {}

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

/// One row of `game.csv`.
#[derive(Debug, Deserialize)]
struct LogRow {
    #[serde(deserialize_with = "de::opt_f64")]
    alice_gain: Option<f64>,
    #[serde(deserialize_with = "de::opt_f64")]
    bob_gain: Option<f64>,
    #[serde(deserialize_with = "de::opt_text")]
    message: Option<String>,
    player: String,
    round: u32,
    #[serde(deserialize_with = "de::opt_text")]
    decision: Option<String>,
}

/// One round as the human saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Round {
    round: u32,
    /// Whether the human made this round's offer.
    human_proposed: bool,
    human_gain: f64,
    opponent_gain: f64,
    message: Option<String>,
    /// `accept`/`reject`; absent for the round being decided.
    response: Option<String>,
}

/// What `render` needs: the game's rules and the rounds up to the decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Context {
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

impl GamePlugin for Bargaining {
    fn info(&self) -> GameInfo {
        GameInfo {
            plugin: options::plugin_info(
                NAME,
                env!("CARGO_PKG_VERSION"),
                "GLEE bargaining (alternating offers with inflation): the human responder accepts or rejects.",
            ),
            family: NAME.into(),
            multi_round: true,
            options: vec![options::option("accept", &["accept"]), options::option("reject", &["reject"])].into(),
            target_option: "accept".into(),
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

/// Reads every bargaining game under `path` into episodes of the human's decisions.
pub fn load(path: &Path) -> Result<LoadedData, KitError> {
    glee::load_episodes::<GameArgs>(
        path,
        NAME,
        |_| None,
        "the LLM answered every offer, the human only proposed",
        load_game,
    )
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
    let human = game.human_name();
    let opponent = game.opponent_name();
    let ctx = Context {
        human: human.clone(),
        opponent: opponent.clone(),
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

    let mut rounds: Vec<Round> = Vec::new();
    let mut decisions = Vec::new();
    for row in table.rows::<LogRow>() {
        let row = row?;
        let (line, r) = (row.line, row.value);
        game.check_player(&table, line, &r.player)?;
        match r.decision.as_deref() {
            // A proposer row: the split (and message).
            None => {
                let alice = r.alice_gain.ok_or_else(|| {
                    table.error(line, "alice_gain", "an offer without `alice_gain`")
                })?;
                let bob = r
                    .bob_gain
                    .ok_or_else(|| table.error(line, "bob_gain", "an offer without `bob_gain`"))?;
                let (human_gain, opponent_gain) =
                    if game.human == Seat::Player1 { (alice, bob) } else { (bob, alice) };
                rounds.push(Round {
                    round: r.round,
                    human_proposed: r.player == human,
                    human_gain,
                    opponent_gain,
                    message: r.message.as_deref().map(message_text).filter(|m| !m.is_empty()),
                    response: None,
                });
            }
            // A responder row: accept or reject the offer of the same round.
            Some(decision) => {
                if decision != "accept" && decision != "reject" {
                    return Err(table.error(
                        line,
                        "decision",
                        format!("unknown decision `{decision}`; expected `accept`, `reject` or `None` (an offer row)"),
                    ));
                }
                glee::check_response(
                    &table,
                    line,
                    r.round,
                    rounds.last().map(|o| (o.round, o.response.is_some())),
                )?;
                if r.player == human {
                    // The context holds the rounds up to this offer, never this answer.
                    let mut point_ctx = ctx.clone();
                    point_ctx.rounds = rounds.clone();
                    decisions.push(decision_point(game, &point_ctx, decision, delta_1, delta_2));
                }
                if let Some(offer) = rounds.last_mut() {
                    offer.response = Some(decision.to_string());
                }
            }
        }
    }
    Ok(Episode { id: game.id.clone().into(), decisions: decisions.into() })
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
    if ((offer.human_gain + offer.opponent_gain) - args.money_to_divide).abs() > 1e-6 {
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
        "offer_to_human": offer.human_gain,
        "offer_share": offer.human_gain / args.money_to_divide,
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

/// Renders a decision point made by [`load`] in one of the variants.
pub fn render(point: &DecisionPoint, variant: &str) -> Result<Prompt, KitError> {
    let spec = options::find_variant(VARIANTS, point.id.as_str(), variant)?;
    let ctx: Context = context(point)?;
    let mut m = Messages::new();
    match spec.name {
        "native" => {
            m.system(format!("{}\n{}", rules(&ctx), response_format()));
            m.user(narrative(&ctx));
        }
        "transcript" => {
            m.system(format!("{}\n{}\n{}", rules(&ctx), offer_format(&ctx), response_format()));
            transcript(&ctx, &mut m);
        }
        _ => {
            m.system(
                "You are an expert in predicting human behaviour in economic games. A human participant played \
                 the bargaining game below against an AI agent. You will read the instructions the participant \
                 read and the game up to one of the participant's decisions (\"you\" is the participant). \
                 Predict that decision.",
            );
            m.user(format!(
                "The participant played as {}.\n\nInstructions:\n{}\n\nThe game so far:\n{}\n\nDid the participant accept {}'s offer? {}",
                ctx.human,
                rules(&ctx),
                narrative(&ctx),
                ctx.opponent,
                answer_instruction(&["accept", "reject"])
            ));
        }
    }
    Ok(m.into_prompt())
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

fn round_header(ctx: &Context, round: u32) -> String {
    match inflation_update(ctx, round) {
        Some(update) => format!("Round {round}\n{update}"),
        None => format!("Round {round}"),
    }
}

/// An offer from the opponent, as the human saw it.
fn offer_text(ctx: &Context, r: &Round) -> String {
    let mut lines = vec![round_header(ctx, r.round), format!("{}'s offer:", ctx.opponent)];
    if ctx.messages_allowed {
        if let Some(message) = &r.message {
            lines.push(format!("{}'s message: {}", ctx.opponent, message));
        }
    }
    lines.push(format!(
        "You would get {}, and {} would get {}.",
        money(r.human_gain),
        ctx.opponent,
        money(r.opponent_gain)
    ));
    lines.join("\n")
}

/// The human's own offer, told back to them.
fn own_offer_text(ctx: &Context, r: &Round) -> String {
    let mut lines = vec![
        round_header(ctx, r.round),
        format!(
            "You offered: you would get {}, and {} would get {}.",
            money(r.human_gain),
            ctx.opponent,
            money(r.opponent_gain)
        ),
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
        Some("accept") => format!("{} accepted your offer.", ctx.opponent),
        _ => format!("{} rejected your offer.", ctx.opponent),
    }
}

const QUESTION: &str = "Do you accept this offer?";

/// Every round up to the decision as one text (native and predict variants).
fn narrative(ctx: &Context) -> String {
    let mut parts = Vec::new();
    for r in &ctx.rounds {
        if r.human_proposed {
            parts.push(own_offer_text(ctx, r));
        } else {
            match r.response.as_deref() {
                Some(response) => parts.push(format!(
                    "{}\nYou {} the offer.",
                    offer_text(ctx, r),
                    if response == "accept" { "accepted" } else { "rejected" }
                )),
                None => parts.push(format!("{}\n{QUESTION}", offer_text(ctx, r))),
            }
        }
    }
    parts.join("\n\n")
}

fn response_format() -> String {
    format!(
        "When you respond to an offer, {}",
        lowercase_first(&answer_instruction(&["accept", "reject"]))
    )
}

fn offer_format(ctx: &Context) -> String {
    let h = ctx.human.to_lowercase().replace(' ', "_");
    let o = ctx.opponent.to_lowercase().replace(' ', "_");
    format!(
        "When you make an offer, answer in JSON: {{\"{h}_gain\": the amount you receive, \"{o}_gain\": the amount {} receives{}}}.",
        ctx.opponent,
        if ctx.messages_allowed { format!(", \"message\": your message to {}", ctx.opponent) } else { String::new() }
    )
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A whole number as a JSON integer, anything else as a float.
fn json_number(x: f64) -> serde_json::Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        serde_json::Value::from(x as i64)
    } else {
        serde_json::Value::from(x)
    }
}

/// A JSON object written like the answer format, `{"a": 1, "b": "x"}` (serde_json's
/// compact form has no spaces).
fn json_object(fields: &[(String, serde_json::Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}: {}", serde_json::Value::from(k.as_str()), v))
        .collect();
    format!("{{{}}}", body.join(", "))
}

/// The dialogue form (transcript variant). Text the human saw between two of their own
/// turns is gathered into one user message, so turns alternate.
fn transcript(ctx: &Context, m: &mut Messages) {
    let mut pending: Vec<String> = Vec::new();
    let flush = |m: &mut Messages, pending: &mut Vec<String>| {
        m.user(pending.join("\n\n"));
        pending.clear();
    };
    for r in &ctx.rounds {
        if r.human_proposed {
            pending.push(format!(
                "{}\nSend your offer to divide {}{}.",
                round_header(ctx, r.round),
                money(ctx.money_to_divide),
                if ctx.messages_allowed {
                    format!(" and a message to {}", ctx.opponent)
                } else {
                    String::new()
                }
            ));
            flush(m, &mut pending);
            let mut offer = vec![
                (
                    format!("{}_gain", ctx.human.to_lowercase().replace(' ', "_")),
                    json_number(r.human_gain),
                ),
                (
                    format!("{}_gain", ctx.opponent.to_lowercase().replace(' ', "_")),
                    json_number(r.opponent_gain),
                ),
            ];
            if ctx.messages_allowed {
                offer.push(("message".into(), r.message.clone().unwrap_or_default().into()));
            }
            m.assistant(json_object(&offer));
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
