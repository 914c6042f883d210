//! Alternating-offers games (GLEE bargaining and negotiation), the pieces they share: the
//! games of a family ([`load`]) and each log walked into an episode of the human's replies
//! ([`episode`]), with the rounds as the human saw them ([`Round`]); the human's own offers
//! and the opponent's replies told back; the whole game as one narrative or as a dialogue;
//! the `native`, `transcript` and `predict` prompts built from them.
//!
//! A game supplies what its offers are ([`Round::offer`]) and how they read
//! ([`AlternatingOffers`]); the order of turns, the replies, the JSON of the human's own
//! offers and the prompts' layout are written here once.

use crate::{
    answer_json,
    csv_table::{de, CsvTable},
    glee::{self, GleeGame},
    render::{message_text, Messages},
    KitError,
};
use descry_abi::types::{DecisionPoint, Episode, LoadedData, Prompt};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::path::Path;

/// One round as the human saw it: who proposed, the offer (`O`, the game's own fields,
/// stored inline in the context JSON), the proposer's message and the reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Round<O> {
    /// The round number (1-based).
    pub round: u32,
    /// Whether the human made this round's offer.
    pub human_proposed: bool,
    /// What was offered.
    #[serde(flatten)]
    pub offer: O,
    /// The proposer's message (trimmed; absent when empty or not sent).
    pub message: Option<String>,
    /// The reply as spelled in the data; absent for the offer being decided.
    pub response: Option<String>,
}

/// The columns every alternating-offers `game.csv` has: who moved in which round, with a
/// message, and a reply (`decision`), empty on an offer row.
#[derive(Debug, Deserialize)]
pub struct Turn {
    /// The proposer's message, if any.
    #[serde(deserialize_with = "de::opt_text")]
    pub message: Option<String>,
    /// The player's public name.
    pub player: String,
    /// The round.
    pub round: u32,
    /// The reply, absent on an offer row.
    #[serde(deserialize_with = "de::opt_text")]
    pub decision: Option<String>,
}

/// One reply of the human: the rounds up to the offer answered (that offer last, without
/// its reply), the reply as spelled in the data, and what the game's parser made of it.
#[derive(Debug, Clone)]
pub struct HumanReply<O, D> {
    /// Rounds 1..=r.
    pub rounds: Vec<Round<O>>,
    /// The reply as spelled in the data.
    pub decision: String,
    /// The parsed reply.
    pub parsed: D,
}

/// Walks a GLEE log (`table`) into the game's episode: one decision point (made by
/// `point`) for every reply of the human, in order. Each row is read as the game's offer
/// columns (`C`) and then as a [`Turn`] (in GLEE logs the offer columns come first, so a
/// row with two bad values is reported at the first, as when it was one struct); its
/// player is checked; `offer` makes an offer row's offer (an error names the line and
/// column); `parse` checks a reply (and says what it means); a reply must follow an
/// unanswered offer of its round ([`glee::check_response`]).
pub fn episode<A, C, O, D>(
    game: &GleeGame<A>,
    table: &CsvTable,
    offer: impl Fn(u64, C) -> Result<O, KitError>,
    parse: impl Fn(u64, &str) -> Result<D, KitError>,
    point: impl Fn(HumanReply<O, D>) -> DecisionPoint,
) -> Result<Episode, KitError>
where
    C: DeserializeOwned,
    O: Clone,
{
    let human = game.human_name();
    let mut rounds: Vec<Round<O>> = Vec::new();
    let mut decisions = Vec::new();
    for (columns, turn) in table.rows::<C>().zip(table.rows::<Turn>()) {
        let columns = columns?;
        let (line, r) = (columns.line, turn?.value);
        game.check_player(table, line, &r.player)?;
        let Some(decision) = r.decision.as_deref() else {
            rounds.push(Round {
                round: r.round,
                human_proposed: r.player == human,
                offer: offer(line, columns.value)?,
                message: r.message.as_deref().map(message_text).filter(|m| !m.is_empty()),
                response: None,
            });
            continue;
        };
        let parsed = parse(line, decision)?;
        glee::check_response(
            table,
            line,
            r.round,
            rounds.last().map(|o| (o.round, o.response.is_some())),
        )?;
        if r.player == human {
            // The rounds up to this offer, never this reply.
            decisions.push(point(HumanReply {
                rounds: rounds.clone(),
                decision: decision.to_string(),
                parsed,
            }));
        }
        if let Some(offer) = rounds.last_mut() {
            offer.response = Some(decision.to_string());
        }
    }
    Ok(Episode { id: game.id.clone().into(), decisions: decisions.into() })
}

/// What every alternating-offers context holds, seen through [`AlternatingOffers::game`].
#[derive(Debug)]
pub struct Offers<'a, O> {
    /// Rounds 1..=r; the last is the offer being decided.
    pub rounds: &'a [Round<O>],
    /// The opponent's name.
    pub opponent: &'a str,
    /// Whether the players could send messages.
    pub messages_allowed: bool,
    /// The reply word that accepts an offer.
    pub accept: &'a str,
    /// The question after an offer to the human.
    pub question: &'a str,
    /// The game's name, for the observer (`the bargaining game below`).
    pub name: &'a str,
}

/// The texts around the rounds: what the human read before the game, how to answer.
#[derive(Debug, Clone)]
pub struct Instructions {
    /// The rules the human read.
    pub rules: String,
    /// How to answer an offer.
    pub response_format: String,
    /// How to make an offer (in the dialogue).
    pub offer_format: String,
}

/// How one alternating-offers game reads: implemented by its rendering context. The
/// provided methods build the narrative and the dialogue from these pieces.
pub trait AlternatingOffers {
    /// What an offer holds.
    type Offer;

    /// The rounds, the opponent, the rules on messages, the words of the game.
    fn game(&self) -> Offers<'_, Self::Offer>;
    /// The rules and answer formats.
    fn instructions(&self) -> Instructions;
    /// The first line(s) of a round (`Round 3`, and what else the human read there).
    fn round_header(&self, round: u32) -> String;
    /// An offer from the opponent, as the human saw it, without the question.
    fn offer_text(&self, r: &Round<Self::Offer>) -> String;
    /// An offer from the opponent with the human's reply, in the narrative.
    fn answered_text(&self, r: &Round<Self::Offer>, response: &str) -> String;
    /// The human's own offer told back (`You offered …`), one line.
    fn own_offer_line(&self, r: &Round<Self::Offer>) -> String;
    /// In the dialogue: what asked the human for their offer.
    fn offer_request(&self, r: &Round<Self::Offer>) -> String;
    /// In the dialogue: the human's offer as JSON fields, before the message.
    fn offer_fields(&self, r: &Round<Self::Offer>) -> Vec<(String, serde_json::Value)>;

    /// The opponent's reply to the human's offer.
    fn response_to_human(&self, r: &Round<Self::Offer>) -> String {
        let game = self.game();
        match r.response.as_deref() {
            Some(response) if response == game.accept => {
                format!("{} accepted your offer.", game.opponent)
            }
            _ => format!("{} rejected your offer.", game.opponent),
        }
    }

    /// The human's own offer, their message and the opponent's reply.
    fn own_offer_text(&self, r: &Round<Self::Offer>) -> String {
        let mut lines = vec![self.round_header(r.round), self.own_offer_line(r)];
        if self.game().messages_allowed {
            if let Some(message) = &r.message {
                lines.push(format!("Your message: {message}"));
            }
        }
        lines.push(self.response_to_human(r));
        lines.join("\n")
    }

    /// Every round up to the decision as one text (native and predict variants).
    fn narrative(&self) -> String {
        let game = self.game();
        let mut parts = Vec::new();
        for r in game.rounds {
            if r.human_proposed {
                parts.push(self.own_offer_text(r));
            } else {
                match r.response.as_deref() {
                    Some(response) => parts.push(self.answered_text(r, response)),
                    None => parts.push(format!("{}\n{}", self.offer_text(r), game.question)),
                }
            }
        }
        parts.join("\n\n")
    }

    /// The game as a dialogue (transcript variant): what the human saw between two of
    /// their own turns is one user message, so turns alternate; the human's replies and
    /// offers are assistant turns in JSON.
    fn transcript(&self, m: &mut Messages) {
        let game = self.game();
        let mut pending: Vec<String> = Vec::new();
        let flush = |m: &mut Messages, pending: &mut Vec<String>| {
            m.user(pending.join("\n\n"));
            pending.clear();
        };
        for r in game.rounds {
            if r.human_proposed {
                pending.push(self.offer_request(r));
                flush(m, &mut pending);
                let mut offer = self.offer_fields(r);
                if game.messages_allowed {
                    offer.push(("message".into(), r.message.clone().unwrap_or_default().into()));
                }
                m.assistant(json_object(&offer));
                pending.push(self.response_to_human(r));
            } else {
                pending.push(format!("{}\n{}", self.offer_text(r), game.question));
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

    /// The `native` prompt: the rules and the answer format as the system message, the
    /// game so far and the current offer in one user message.
    fn native(&self) -> Prompt {
        let text = self.instructions();
        let mut m = Messages::new();
        m.system(format!("{}\n{}", text.rules, text.response_format));
        m.user(self.narrative());
        m.into_prompt()
    }

    /// The `transcript` prompt: the rules and both answer formats as the system message,
    /// then the game as a dialogue ([`AlternatingOffers::transcript`]).
    fn dialogue(&self) -> Prompt {
        let text = self.instructions();
        let mut m = Messages::new();
        m.system(format!("{}\n{}\n{}", text.rules, text.offer_format, text.response_format));
        self.transcript(&mut m);
        m.into_prompt()
    }

    /// The `predict` prompt: the observer preamble, then who the participant played
    /// (`Alice`, `Alice, the seller`), the rules and the game so far quoted in one user
    /// message, and `question` (with its answer instruction).
    fn observed(&self, participant: &str, question: &str) -> Prompt {
        let text = self.instructions();
        let mut m = Messages::new();
        m.system(observer_preamble(self.game().name));
        m.user(format!(
            "The participant played as {participant}.\n\nInstructions:\n{}\n\nThe game so far:\n{}\n\n{question}",
            text.rules,
            self.narrative(),
        ));
        m.into_prompt()
    }
}

/// Reads every game of `family` under `path` into episodes of the human's replies
/// ([`glee::load_episodes`]); a game in which the human never replied is skipped.
pub fn load<A: DeserializeOwned>(
    path: &Path,
    family: &str,
    load_game: impl Fn(&GleeGame<A>) -> Result<Episode, KitError>,
) -> Result<LoadedData, KitError> {
    glee::load_episodes::<A>(
        path,
        family,
        |_| None,
        "the LLM answered every offer, the human only proposed",
        load_game,
    )
}

/// The system message of the observer (`predict`) variant of an alternating-offers game
/// named `game` played against an AI agent.
pub fn observer_preamble(game: &str) -> String {
    crate::render::Observer {
        played: &format!("the {game} game below"),
        against: "an AI agent",
        rules: "instructions",
        seen: "the game",
        whose: "the participant's",
        decision: "decision",
    }
    .preamble()
}

/// A whole number as a JSON integer, anything else as a float: `5000.0` → `5000`.
pub fn json_number(x: f64) -> serde_json::Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        serde_json::Value::from(x as i64)
    } else {
        serde_json::Value::from(x)
    }
}

/// A JSON object written like the answer format, `{"a": 1, "b": "x"}` (serde_json's
/// compact form has no spaces).
pub fn json_object(fields: &[(String, serde_json::Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}: {}", serde_json::Value::from(k.as_str()), v))
        .collect();
    format!("{{{}}}", body.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_objects() {
        assert_eq!(json_number(5000.0).to_string(), "5000");
        assert_eq!(json_number(-3.0).to_string(), "-3");
        assert_eq!(json_number(12.5).to_string(), "12.5");
        assert_eq!(json_number(1e16).to_string(), "1e+16");
        let fields =
            [("bob_gain".to_string(), json_number(5.0)), ("message".into(), "a \"b\"".into())];
        assert_eq!(json_object(&fields), r#"{"bob_gain": 5, "message": "a \"b\""}"#);
        assert_eq!(json_object(&[]), "{}");
    }

    /// A toy game: offers are a number.
    #[derive(Clone, Debug, Serialize, Deserialize)]
    struct Amount {
        amount: f64,
    }

    struct Toy(Vec<Round<Amount>>);

    impl AlternatingOffers for Toy {
        type Offer = Amount;
        fn game(&self) -> Offers<'_, Amount> {
            Offers {
                rounds: &self.0,
                opponent: "Bob",
                messages_allowed: true,
                accept: "yes",
                question: "OK?",
                name: "toy",
            }
        }
        fn instructions(&self) -> Instructions {
            Instructions {
                rules: "Rules.".into(),
                response_format: "Say yes or no.".into(),
                offer_format: "Offer {\"amount\": n}.".into(),
            }
        }
        fn round_header(&self, round: u32) -> String {
            format!("Round {round}")
        }
        fn offer_text(&self, r: &Round<Amount>) -> String {
            format!("{}\nBob offers {}.", self.round_header(r.round), r.offer.amount)
        }
        fn answered_text(&self, r: &Round<Amount>, response: &str) -> String {
            format!("{}\nYou said {response}.", self.offer_text(r))
        }
        fn own_offer_line(&self, r: &Round<Amount>) -> String {
            format!("You offered {}.", r.offer.amount)
        }
        fn offer_request(&self, r: &Round<Amount>) -> String {
            format!("Round {}: your offer?", r.round)
        }
        fn offer_fields(&self, r: &Round<Amount>) -> Vec<(String, serde_json::Value)> {
            vec![("amount".into(), json_number(r.offer.amount))]
        }
    }

    fn round(round: u32, human: bool, amount: f64, response: Option<&str>) -> Round<Amount> {
        Round {
            round,
            human_proposed: human,
            offer: Amount { amount },
            message: human.then(|| "hi".to_string()),
            response: response.map(str::to_string),
        }
    }

    #[test]
    fn the_offer_is_inline_in_the_round_json() {
        let r = round(2, true, 5.0, Some("no"));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"round":2,"human_proposed":true,"amount":5.0,"message":"hi","response":"no"}"#
        );
        let back: Round<Amount> = serde_json::from_str(&json).unwrap();
        assert_eq!((back.round, back.offer.amount, back.response.as_deref()), (2, 5.0, Some("no")));
    }

    #[test]
    fn narrative_and_dialogue() {
        let toy = Toy(vec![
            round(1, true, 7.0, Some("no")),
            round(2, false, 4.0, Some("no")),
            round(3, true, 6.0, Some("yes")),
            round(4, false, 5.0, None),
        ]);
        assert_eq!(
            toy.narrative(),
            "Round 1\nYou offered 7.\nYour message: hi\nBob rejected your offer.\n\n\
             Round 2\nBob offers 4.\nYou said no.\n\n\
             Round 3\nYou offered 6.\nYour message: hi\nBob accepted your offer.\n\n\
             Round 4\nBob offers 5.\nOK?"
        );
        let mut m = Messages::new();
        toy.transcript(&mut m);
        let prompt = m.into_prompt();
        let turns: Vec<(&str, &str)> =
            prompt.messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
        assert_eq!(
            turns,
            [
                ("user", "Round 1: your offer?"),
                ("assistant", r#"{"amount": 7, "message": "hi"}"#),
                ("user", "Bob rejected your offer.\n\nRound 2\nBob offers 4.\nOK?"),
                ("assistant", r#"{"decision": "no"}"#),
                ("user", "Round 3: your offer?"),
                ("assistant", r#"{"amount": 6, "message": "hi"}"#),
                ("user", "Bob accepted your offer.\n\nRound 4\nBob offers 5.\nOK?"),
            ]
        );
        let system = |p: &Prompt| p.messages[0].content.to_string();
        assert_eq!(system(&toy.native()), "Rules.\nSay yes or no.");
        assert_eq!(toy.native().messages[1].content.as_str(), toy.narrative());
        assert_eq!(system(&toy.dialogue()), "Rules.\nOffer {\"amount\": n}.\nSay yes or no.");
        assert_eq!(toy.dialogue().messages.len(), 8);
        let observed = toy.observed("Alice", "Did Alice say yes?");
        assert!(system(&observed).contains("played the toy game below against an AI agent"));
        let user = observed.messages[1].content.as_str();
        assert!(user.starts_with("The participant played as Alice.\n\nInstructions:\nRules.\n\n"));
        assert!(user.ends_with("Round 4\nBob offers 5.\nOK?\n\nDid Alice say yes?"), "{user}");
    }
}
