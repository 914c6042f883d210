//! Building prompts: the answer prefix, messages, and numbers written as people read them.

use abi_stable::std_types::RVec;
use descry_abi::types::{Message, Prompt};

/// The answer prefix every descry game ends its prompt with: it opens the JSON answer, so
/// the model's next token is the decision word (the paper's recipe).
pub const ANSWER_PREFIX: &str = "{\"decision\": \"";

/// What closes the JSON answer after the decision word.
pub const ANSWER_CLOSE: &str = "\"}";

/// The full JSON answer for a decision word: `{"decision": "accept"}`. This is the content
/// of the assistant message that follows a decision in a transcript.
pub fn answer_json(word: &str) -> String {
    format!("{ANSWER_PREFIX}{word}{ANSWER_CLOSE}")
}

/// `Answer with {"decision": "accept"} or {"decision": "reject"}.` for the given words.
pub fn answer_instruction(words: &[&str]) -> String {
    let answers: Vec<String> = words.iter().map(|w| answer_json(w)).collect();
    let list = match answers.len() {
        0 => String::new(),
        1 => answers[0].clone(),
        n => format!("{} or {}", answers[..n - 1].join(", "), answers[n - 1]),
    };
    format!("Answer with {list}.")
}

/// `s` with its first letter in lower case (`Answer with …` → `answer with …`).
pub fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The system message of an observer (`predict`) variant, written once for every game:
/// "You are an expert in predicting human behaviour in economic games. A human participant
/// played {played} against {against}. You will read the {rules} the participant read and
/// {seen} up to one of {whose} {decision}s ("you" is the participant). Predict that
/// {decision}."
#[derive(Debug, Clone, Copy)]
pub struct Observer<'a> {
    /// What the participant played: `the bargaining game below`, `the buyer in the game below`.
    pub played: &'a str,
    /// Against whom: `an AI agent`, `another player`.
    pub against: &'a str,
    /// What the participant read: `instructions`, `rules`.
    pub rules: &'a str,
    /// What the prompt quotes of the game: `the game`, `what the participant saw`.
    pub seen: &'a str,
    /// Whose decision: `the participant's`, `their`.
    pub whose: &'a str,
    /// What is predicted: `decision`, `choice`.
    pub decision: &'a str,
}

impl Observer<'_> {
    /// The system message.
    pub fn preamble(&self) -> String {
        let Observer { played, against, rules, seen, whose, decision } = self;
        format!(
            "You are an expert in predicting human behaviour in economic games. A human participant played \
             {played} against {against}. You will read the {rules} the participant read and {seen} up to one \
             of {whose} {decision}s (\"you\" is the participant). Predict that {decision}."
        )
    }
}

/// A list of chat messages being built.
#[derive(Debug, Default, Clone)]
pub struct Messages {
    messages: Vec<Message>,
}

impl Messages {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a message with `role` (`system`, `user`, `assistant`).
    pub fn push(&mut self, role: &str, content: impl Into<String>) -> &mut Self {
        self.messages.push(Message { role: role.into(), content: content.into().into() });
        self
    }

    /// Appends a system message.
    pub fn system(&mut self, content: impl Into<String>) -> &mut Self {
        self.push("system", content)
    }

    /// Appends a user message.
    pub fn user(&mut self, content: impl Into<String>) -> &mut Self {
        self.push("user", content)
    }

    /// Appends an assistant message.
    pub fn assistant(&mut self, content: impl Into<String>) -> &mut Self {
        self.push("assistant", content)
    }

    /// The prompt: these messages, then the answer prefix opening the assistant's turn.
    pub fn into_prompt(self) -> Prompt {
        Prompt { messages: RVec::from(self.messages), answer_prefix: ANSWER_PREFIX.into() }
    }
}

/// `x` with at most `places` decimals, trailing zeros dropped (`0.050000000000000044` →
/// `0.05` with 6 places; `26.0` → `26`).
pub fn decimal(x: f64, places: usize) -> String {
    let s = format!("{x:.places$}");
    let s =
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    if s == "-0" {
        "0".to_string()
    } else {
        s
    }
}

/// `x` with thousands separators and at most two decimals: `600000.0` → `600,000`.
pub fn grouped(x: f64) -> String {
    let text = decimal(x.abs(), 2);
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (text, None),
    };
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(&f);
    }
    if x < 0.0 && out != "0" {
        format!("-{out}")
    } else {
        out
    }
}

/// A dollar amount: `$10,000`, `-$5`.
pub fn money(x: f64) -> String {
    let g = grouped(x);
    match g.strip_prefix('-') {
        Some(abs) => format!("-${abs}"),
        None => format!("${g}"),
    }
}

/// A fraction as a percentage with at most two decimals: `0.333333333` → `33.33%`.
pub fn percent(fraction: f64) -> String {
    format!("{}%", decimal(fraction * 100.0, 2))
}

/// A free-text message from a player, as shown in a prompt: surrounding whitespace removed
/// (the data has trailing blank lines), inner line breaks kept.
pub fn message_text(text: &str) -> String {
    text.trim().to_string()
}

/// A prompt as plain text for people to read (docs, `descry inspect`-style output): each
/// message under a `[role]` line, then the open assistant turn with its answer prefix.
pub fn prompt_text(prompt: &Prompt) -> String {
    let mut out = String::new();
    for m in prompt.messages.iter() {
        out.push_str(&format!("[{}]\n{}\n\n", m.role, m.content));
    }
    out.push_str(&format!("[assistant, answer prefix]\n{}", prompt.answer_prefix));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(money(600000.0), "$600,000");
        assert_eq!(money(100.0), "$100");
        assert_eq!(money(-5.0), "-$5");
        assert_eq!(money(1234.5), "$1,234.5");
        assert_eq!(decimal(0.050000000000000044, 6), "0.05");
        assert_eq!(decimal(-1.0, 6), "-1");
        assert_eq!(percent(0.333333333), "33.33%");
        assert_eq!(percent(0.5), "50%");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(1000.0), "1,000");
    }

    #[test]
    fn instruction() {
        assert_eq!(
            answer_instruction(&["accept", "reject"]),
            "Answer with {\"decision\": \"accept\"} or {\"decision\": \"reject\"}."
        );
        assert_eq!(answer_json("J"), "{\"decision\": \"J\"}");
        assert_eq!(lowercase_first("Answer with"), "answer with");
        assert_eq!(lowercase_first(""), "");
    }

    #[test]
    fn observer_preamble() {
        let o = Observer {
            played: "P",
            against: "A",
            rules: "R",
            seen: "S",
            whose: "W",
            decision: "D",
        };
        assert_eq!(
            o.preamble(),
            "You are an expert in predicting human behaviour in economic games. A human participant played \
             P against A. You will read the R the participant read and S up to one of W Ds (\"you\" is the \
             participant). Predict that D."
        );
    }
}
