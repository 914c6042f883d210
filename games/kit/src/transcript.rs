//! The transcript (prefix) property, defined exactly, and a checker for tests.
//!
//! A prompt variant is a *transcript* (`PromptVariant::transcript == true`) when, for any
//! two consecutive decision points k and k+1 of one episode, rendered in that variant as
//! `P_k` and `P_{k+1}`:
//!
//! ```text
//! P_k.messages ++ [ assistant: P_k.answer_prefix + ANSWER + "\"}" ]
//! ```
//!
//! is an element-wise prefix of `P_{k+1}.messages` (same roles, same contents, in order),
//! where ANSWER is the decision word the person gave at k, spelled as in the data (the
//! first surface form of the option taken: `accept`, `yes`, `AcceptOffer`, `SellToJhon`,
//! `J`; each game also records it as `"answer"` in the point's metadata). With the answer
//! prefix `{"decision": "` the appended assistant message is therefore exactly
//! [`crate::answer_json`]`(ANSWER)`, e.g. `{"decision": "reject"}`, with no whitespace
//! around it. Everything the person saw between the two decisions (the other player's
//! reply, the person's own offers as assistant turns, the next round) comes after it.
//!
//! Consequence for a backend: any chat template that renders each message independently
//! of the ones after it (true of common templates when the generation prompt is only added
//! at the end) turns `P_k` into a string that is a prefix of `P_{k+1}`'s string, so the
//! last decision point of an episode rendered once contains every earlier decision's
//! query position. [`flatten`] is the template-free version of that string used in tests.

use crate::{answer_json, KitError};
use descry_abi::types::{Message, Prompt};

/// A simple chat rendering used to test the string-level property: each message as
/// `<|role|>\ncontent\n`; the answer prefix of an open turn follows `<|assistant|>\n`.
pub fn flatten(messages: &[Message], open_answer: Option<&str>) -> String {
    let mut out = String::new();
    for m in messages {
        out.push_str(&format!("<|{}|>\n{}\n", m.role, m.content));
    }
    if let Some(prefix) = open_answer {
        out.push_str("<|assistant|>\n");
        out.push_str(prefix);
    }
    out
}

/// Checks the transcript property between `current` (decision k, answered with `answer`)
/// and `next` (decision k+1), at message level and at string level (via [`flatten`]).
pub fn check_prefix(current: &Prompt, answer: &str, next: &Prompt) -> Result<(), String> {
    let mut extended: Vec<Message> = current.messages.to_vec();
    extended.push(Message {
        role: "assistant".into(),
        content: format!("{}{}{}", current.answer_prefix, answer, crate::ANSWER_CLOSE).into(),
    });
    if extended.last().map(|m| m.content.to_string()) != Some(answer_json(answer)) {
        return Err(format!("answer prefix `{}` is not the kit's", current.answer_prefix));
    }
    if next.messages.len() < extended.len() {
        return Err(format!(
            "next prompt has {} messages, fewer than the {} of this prompt plus the answer",
            next.messages.len(),
            extended.len()
        ));
    }
    for (i, (a, b)) in extended.iter().zip(next.messages.iter()).enumerate() {
        if a != b {
            return Err(format!("message {i} differs:\n--- this + answer\n{a:?}\n--- next\n{b:?}"));
        }
    }
    // String level: this prompt as a model sees it (open answer) must be a prefix of the
    // next prompt's text, and so must this prompt with its answer written out.
    let next_text = flatten(&next.messages, Some(&next.answer_prefix));
    let open = flatten(&current.messages, Some(&current.answer_prefix));
    let answered = format!("{open}{answer}{}", crate::ANSWER_CLOSE);
    if !next_text.starts_with(&open) || !next_text.starts_with(&answered) {
        return Err("string-level prefix fails".to_string());
    }
    Ok(())
}

/// Runs [`check_prefix`] over an episode: `prompts[k]` rendered for decision k, `answers[k]`
/// the word the person gave there.
pub fn check_episode(prompts: &[Prompt], answers: &[String]) -> Result<(), KitError> {
    for k in 1..prompts.len() {
        check_prefix(&prompts[k - 1], &answers[k - 1], &prompts[k]).map_err(|message| {
            KitError::Render {
                point: format!("decision {k} of the episode"),
                message: format!(
                    "transcript property fails between decisions {k} and {}: {message}",
                    k + 1
                ),
            }
        })?;
    }
    Ok(())
}
