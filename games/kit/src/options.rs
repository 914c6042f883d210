//! Decision options, prompt variants and plugin info, built the same way by every game.

use abi_stable::std_types::{ROption, RString};
use descry_abi::types::{DecisionOption, HumanOutcome, PluginInfo, PromptVariant};

/// An option whose surface forms are the given answer words, each as written, with its
/// first letter in the other case, and both again after a space.
///
/// For `option("accept", &["accept"])` the forms are `"accept"`, `" accept"`, `"Accept"`,
/// `" Accept"`. The prompt puts the answer right after the answer prefix `{"decision": "`,
/// so the forms without a space are the ones a model should emit; the spaced forms catch
/// tokenizers and models that put a space after the quote. The first form is the word as
/// written in the data, which is also what transcripts append after a decision.
pub fn option(id: &str, words: &[&str]) -> DecisionOption {
    let mut forms: Vec<String> = Vec::new();
    for word in words {
        for w in [word.to_string(), toggle_first(word)] {
            for form in [w.clone(), format!(" {w}")] {
                if !forms.contains(&form) {
                    forms.push(form);
                }
            }
        }
    }
    DecisionOption { id: id.into(), surface_forms: forms.into_iter().map(RString::from).collect() }
}

/// `word` with the case of its first letter flipped (`accept` ↔ `Accept`, `J` ↔ `j`).
fn toggle_first(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(c) if c.is_uppercase() => c.to_lowercase().chain(chars).collect(),
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A prompt variant's declaration: name, what differs, and whether it is a transcript
/// (see [`crate::transcript`]).
#[derive(Debug, Clone, Copy)]
pub struct VariantSpec {
    /// Name the config refers to.
    pub name: &'static str,
    /// What differs in this variant.
    pub description: &'static str,
    /// Whether the transcript (prefix) property holds.
    pub transcript: bool,
}

impl VariantSpec {
    /// The ABI form.
    pub fn to_abi(&self) -> PromptVariant {
        PromptVariant {
            name: self.name.into(),
            description: self.description.into(),
            transcript: self.transcript,
        }
    }
}

/// Plugin info with the calling crate's version (pass `env!("CARGO_PKG_VERSION")`).
pub fn plugin_info(name: &str, version: &str, description: &str) -> PluginInfo {
    PluginInfo { name: name.into(), version: version.into(), description: description.into() }
}

/// The outcome of one person's decision: the option taken, rate 1 when it is the game's
/// target option and 0 otherwise, weight 1.
pub fn individual_outcome(option: &str, target: &str) -> HumanOutcome {
    HumanOutcome {
        option: ROption::RSome(option.into()),
        rate: if option == target { 1.0 } else { 0.0 },
        weight: 1.0,
    }
}

/// The outcome of aggregated data: the rate of the target option among `weight` people.
pub fn aggregate_outcome(rate: f64, weight: f64) -> HumanOutcome {
    HumanOutcome { option: ROption::RNone, rate, weight }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surface_forms() {
        let o = option("accept", &["accept"]);
        let forms: Vec<&str> = o.surface_forms.iter().map(|s| s.as_str()).collect();
        assert_eq!(forms, ["accept", " accept", "Accept", " Accept"]);
        let o = option("Outside", &["SellToJhon", "BuyFromJhon"]);
        assert_eq!(o.surface_forms.len(), 8);
        assert_eq!(o.surface_forms[0].as_str(), "SellToJhon");
    }
}
