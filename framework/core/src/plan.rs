//! Planning one work unit (model × game × variant): render every decision point, apply
//! the model's format, tokenize (in parallel), and group decisions into token sequences.
//!
//! Grouping rule (checked on tokens, per episode, after the chat template): a decision
//! whose prompt tokens are a prefix of the episode's last remaining prompt is scored as a
//! query inside that one sequence; any other decision gets its own sequence. Transcript
//! variants make every decision of an episode fit, so a whole episode costs one forward
//! pass; other variants fall back to one sequence per decision.

use crate::{
    data::StudyGame,
    model::{ModelError, ModelFolder},
    prompt::PromptFormat,
};
use abi_stable::std_types::RStr;
use descry_abi::types::{DecisionPoint, Episode};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// The token ids that count as one option.
#[derive(Debug, Clone)]
pub struct OptionTokens {
    /// Option id.
    pub option: String,
    /// First tokens of its surface forms.
    pub token_ids: Vec<u32>,
}

/// One decision point ready to score.
#[derive(Debug, Clone)]
pub struct PlannedDecision {
    /// Position of the decision in the unit's data order (rows are stored in this order).
    pub index: usize,
    /// The decision point.
    pub point: DecisionPoint,
    /// Content hash of model, format, prompt tokens and candidate tokens: the store key.
    pub key: String,
    /// Its prompt's token ids.
    pub tokens: Vec<u32>,
}

/// A sequence to score, carrying one or more decisions.
#[derive(Debug, Clone)]
pub struct PlannedSequence {
    /// Token ids.
    pub tokens: Vec<u32>,
    /// (index into the plan's decisions, query position).
    pub queries: Vec<(usize, u32)>,
}

/// A planned work unit.
#[derive(Debug, Clone)]
pub struct UnitPlan {
    /// Every decision of the unit, in data order.
    pub decisions: Vec<PlannedDecision>,
    /// The options and their tokens, in the game's order.
    pub options: Vec<OptionTokens>,
    /// Every option token, flattened (the candidates of each query).
    pub candidates: Vec<u32>,
}

/// Why a unit cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The game failed to render a decision point.
    #[error(
        "game `{game}` could not render decision point {point} in variant `{variant}`: {reason}"
    )]
    Render {
        /// Game name.
        game: String,
        /// Decision point id.
        point: String,
        /// Variant.
        variant: String,
        /// The plugin's error.
        reason: String,
    },
    /// Model-side failure (template, tokenizer).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The data holds one decision point twice.
    #[error("game `{game}`: decision point {point} (episode {episode}) occurs twice in the data with the same prompt and outcome; each decision must be one row of the data")]
    Duplicate {
        /// Game.
        game: String,
        /// Decision point id.
        point: String,
        /// Its episode.
        episode: String,
    },
    /// An option has no token in this model's vocabulary.
    #[error("option `{option}` of game `{game}` has no surface form this model can tokenize")]
    NoOptionTokens {
        /// Game.
        game: String,
        /// Option id.
        option: String,
    },
}

/// Renders and tokenizes every decision point of a unit.
pub fn plan_unit(
    model: &ModelFolder,
    format: PromptFormat,
    game: &StudyGame,
    variant: &str,
    episodes: &[Episode],
) -> Result<UnitPlan, PlanError> {
    let mut options = Vec::new();
    for option in game.info.options.iter() {
        let forms: Vec<String> = option.surface_forms.iter().map(|s| s.to_string()).collect();
        let token_ids = model.first_tokens(&forms)?;
        if token_ids.is_empty() {
            return Err(PlanError::NoOptionTokens {
                game: game.name.clone(),
                option: option.id.to_string(),
            });
        }
        options.push(OptionTokens { option: option.id.to_string(), token_ids });
    }
    let candidates: Vec<u32> = options.iter().flat_map(|o| o.token_ids.iter().copied()).collect();

    let points: Vec<&DecisionPoint> = episodes.iter().flat_map(|e| e.decisions.iter()).collect();
    let format_tag = crate::study::format_tag(format);
    let decisions: Vec<PlannedDecision> = points
        .par_iter()
        .enumerate()
        .map(|(index, point)| {
            let prompt =
                game.plugin.game.render(point, RStr::from_str(variant)).into_result().map_err(
                    |e| PlanError::Render {
                        game: game.name.clone(),
                        point: point.id.to_string(),
                        variant: variant.to_string(),
                        reason: e.to_string(),
                    },
                )?;
            let text = model.render(&prompt, format)?;
            let tokens = model.encode(&text)?;
            let key = decision_key(
                &model.manifest.weights_sha256,
                format_tag,
                point,
                &tokens,
                &candidates,
            );
            Ok(PlannedDecision { index, point: (*point).clone(), key, tokens })
        })
        .collect::<Result<_, PlanError>>()?;
    // A key stands for one decision: two points with one key are one point twice in the data.
    let mut seen = std::collections::HashMap::new();
    for d in &decisions {
        if let Some(first) = seen.insert(d.key.as_str(), d) {
            return Err(PlanError::Duplicate {
                game: game.name.clone(),
                point: d.point.id.to_string(),
                episode: first.point.episode.to_string(),
            });
        }
    }
    Ok(UnitPlan { decisions, options, candidates })
}

/// The store key of a decision: what its prediction depends on (weights, format, prompt
/// tokens, candidate tokens), and what its stored row says beside the prediction (the
/// decision point's id, episode, round, human outcome, weight, metadata and flags), hashed.
/// Two people can face the very same prompt (every round 1 of a repeated game), and each
/// is a row of its own; and a row is never reused for a decision whose data changed (a
/// corrected outcome, a new metadata field): a stored row is exactly what scoring the
/// current decision would write.
pub fn decision_key(
    weights_sha256: &str,
    format: &str,
    point: &DecisionPoint,
    tokens: &[u32],
    candidates: &[u32],
) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        // Length-prefixed, so no two field sequences hash the same bytes.
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(weights_sha256.as_bytes());
    field(format.as_bytes());
    field(point.id.as_bytes());
    field(point.episode.as_bytes());
    field(&point.round.to_le_bytes());
    field(point.outcome.option.as_ref().map(|o| o.as_str()).unwrap_or("\u{0}").as_bytes());
    field(&point.outcome.rate.to_bits().to_le_bytes());
    field(&point.outcome.weight.to_bits().to_le_bytes());
    field(point.metadata_json.as_bytes());
    field(&(point.flags.len() as u64).to_le_bytes());
    for flag in point.flags.iter() {
        field(flag.as_bytes());
    }
    let tokens: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    field(&tokens);
    let candidates: Vec<u8> = candidates.iter().flat_map(|c| c.to_le_bytes()).collect();
    field(&candidates);
    let digest = h.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// How sequences are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// One sequence per decision (the published, naive method).
    PerDecision,
    /// Decisions whose prompts are token prefixes of a later prompt in their episode ride
    /// in that prompt's sequence.
    Prefix,
}

/// Groups the decisions at `pending` (indices into `plan.decisions`, in data order) into
/// sequences.
pub fn group(plan: &UnitPlan, pending: &[usize], grouping: Grouping) -> Vec<PlannedSequence> {
    let single = |i: usize| {
        let d = &plan.decisions[i];
        PlannedSequence {
            tokens: d.tokens.clone(),
            queries: vec![(i, (d.tokens.len() - 1) as u32)],
        }
    };
    if grouping == Grouping::PerDecision {
        return pending.iter().map(|&i| single(i)).collect();
    }
    let mut sequences = Vec::new();
    let mut start = 0;
    while start < pending.len() {
        // One episode's pending decisions are contiguous in data order.
        let episode = &plan.decisions[pending[start]].point.episode;
        let mut end = start;
        while end < pending.len() && &plan.decisions[pending[end]].point.episode == episode {
            end += 1;
        }
        let members = &pending[start..end];
        let carrier = members[members.len() - 1];
        let carrier_tokens = &plan.decisions[carrier].tokens;
        let mut shared = PlannedSequence { tokens: carrier_tokens.clone(), queries: Vec::new() };
        for &i in members {
            let t = &plan.decisions[i].tokens;
            if !t.is_empty()
                && t.len() <= carrier_tokens.len()
                && carrier_tokens[..t.len()] == t[..]
            {
                shared.queries.push((i, (t.len() - 1) as u32));
            } else {
                sequences.push(single(i));
            }
        }
        sequences.push(shared);
        start = end;
    }
    sequences
}

/// Tokens a grouping runs through the model (before any prefix cache).
pub fn tokens_of(sequences: &[PlannedSequence]) -> u64 {
    sequences.iter().map(|s| s.tokens.len() as u64).sum()
}

/// The trie minimum of a grouping's sequences ([`distinct_prefix_tokens`] of their tokens),
/// beside [`tokens_of`].
pub fn trie_minimum_of(sequences: &[PlannedSequence]) -> u64 {
    distinct_prefix_tokens(sequences.iter().map(|s| s.tokens.as_slice()))
}

/// The exact lower bound on the tokens any plan must compute for these sequences: the
/// number of distinct token prefixes among them (the nodes of their token trie). Every
/// token that starts a new prefix has to run once; key/values of an equal prefix are equal,
/// so nothing else has to. Sorted lexicographically, each sequence adds the tokens after its
/// longest common prefix with its predecessor.
pub fn distinct_prefix_tokens<'a>(sequences: impl IntoIterator<Item = &'a [u32]>) -> u64 {
    let mut sorted: Vec<&[u32]> = sequences.into_iter().collect();
    sorted.sort_unstable();
    let mut total = 0u64;
    let mut previous: &[u32] = &[];
    for s in sorted {
        let shared = previous.iter().zip(s).take_while(|(a, b)| a == b).count();
        total += (s.len() - shared) as u64;
        previous = s;
    }
    total
}

/// Orders sequences by their tokens (lexicographically, stable), so that sequences sharing a
/// beginning (rules, system prompt, first rounds) are neighbours and land in the same
/// request, where the backend computes the shared beginning once. Predictions are keyed by
/// decision, so the order changes nothing else.
pub fn order_for_reuse(sequences: &mut [PlannedSequence]) {
    sequences.sort_by(|a, b| a.tokens.cmp(&b.tokens));
}

#[cfg(test)]
mod tests {
    use super::*;
    use descry_abi::types::HumanOutcome;

    #[test]
    fn distinct_prefixes_count_the_token_trie() {
        // Trie of [1 2 3], [1 2 4], [1 2], [5], [1 2 3] (a duplicate):
        // nodes 1, 1-2, 1-2-3, 1-2-4, 5 -> 5.
        let seqs: Vec<&[u32]> = vec![&[1, 2, 3], &[1, 2, 4], &[1, 2], &[5], &[1, 2, 3]];
        assert_eq!(distinct_prefix_tokens(seqs.iter().copied()), 5);
        assert_eq!(distinct_prefix_tokens(std::iter::empty()), 0);
        // Nothing shared: every token counts.
        assert_eq!(distinct_prefix_tokens([&[1u32, 2][..], &[3, 4, 5][..]]), 5);
    }

    fn point(id: &str, episode: &str) -> DecisionPoint {
        DecisionPoint {
            id: id.into(),
            episode: episode.into(),
            round: 1,
            outcome: HumanOutcome {
                option: abi_stable::std_types::ROption::RNone,
                rate: 0.5,
                weight: 1.0,
            },
            metadata_json: "{}".into(),
            flags: Vec::new().into(),
            context_json: "{}".into(),
        }
    }

    /// A plan of decisions given as (episode, tokens), in data order.
    fn plan(decisions: &[(&str, &[u32])]) -> UnitPlan {
        UnitPlan {
            decisions: decisions
                .iter()
                .enumerate()
                .map(|(index, (episode, tokens))| PlannedDecision {
                    index,
                    point: point(&format!("d{index}"), episode),
                    key: format!("k{index}"),
                    tokens: tokens.to_vec(),
                })
                .collect(),
            options: Vec::new(),
            candidates: Vec::new(),
        }
    }

    /// Every pending decision is queried exactly once, at its last token, in a sequence
    /// whose tokens begin with its prompt.
    fn check_answers_each_once(plan: &UnitPlan, pending: &[usize], seqs: &[PlannedSequence]) {
        let mut seen: Vec<usize> =
            seqs.iter().flat_map(|s| s.queries.iter().map(|q| q.0)).collect();
        seen.sort_unstable();
        assert_eq!(seen, pending, "each pending decision once");
        for s in seqs {
            for &(i, position) in &s.queries {
                let t = &plan.decisions[i].tokens;
                assert_eq!(position as usize, t.len() - 1);
                assert_eq!(
                    &s.tokens[..t.len()],
                    &t[..],
                    "decision {i} is a prefix of its sequence"
                );
            }
        }
    }

    #[test]
    fn per_decision_grouping_gives_each_decision_its_own_sequence() {
        let p = plan(&[("e1", &[1, 2]), ("e1", &[1, 2, 3, 4]), ("e2", &[5])]);
        let seqs = group(&p, &[0, 1, 2], Grouping::PerDecision);
        assert_eq!(seqs.len(), 3);
        check_answers_each_once(&p, &[0, 1, 2], &seqs);
        assert_eq!(tokens_of(&seqs), 7);
    }

    #[test]
    fn prefix_grouping_carries_an_episode_in_its_last_prompt() {
        // e1 is a transcript (each prompt a prefix of the next); e2's first prompt is not a
        // prefix of its last, so it rides alone.
        let p = plan(&[
            ("e1", &[1, 2]),
            ("e1", &[1, 2, 3]),
            ("e1", &[1, 2, 3, 4, 5]),
            ("e2", &[7, 8]),
            ("e2", &[7, 9, 10]),
        ]);
        let pending = [0, 1, 2, 3, 4];
        let seqs = group(&p, &pending, Grouping::Prefix);
        check_answers_each_once(&p, &pending, &seqs);
        assert_eq!(seqs.len(), 3, "{seqs:?}");
        assert_eq!(seqs[0].tokens, vec![1, 2, 3, 4, 5]);
        assert_eq!(seqs[0].queries, vec![(0, 1), (1, 2), (2, 4)]);
        assert_eq!(tokens_of(&seqs), 5 + 2 + 3);
    }

    #[test]
    fn prefix_grouping_of_a_resumed_unit_plans_only_the_pending_decisions() {
        let p = plan(&[("e1", &[1, 2]), ("e1", &[1, 2, 3]), ("e1", &[1, 2, 3, 4])]);
        // The last decision is stored: the second one carries the first.
        let seqs = group(&p, &[0, 1], Grouping::Prefix);
        check_answers_each_once(&p, &[0, 1], &seqs);
        assert_eq!(seqs.len(), 1);
        assert_eq!(seqs[0].tokens, vec![1, 2, 3]);
        assert!(group(&p, &[], Grouping::Prefix).is_empty());
    }

    #[test]
    fn ordering_for_reuse_puts_shared_beginnings_together_and_keeps_ties_in_order() {
        let seq = |tokens: &[u32], i: usize| PlannedSequence {
            tokens: tokens.to_vec(),
            queries: vec![(i, 0)],
        };
        let mut seqs = vec![seq(&[2, 1], 0), seq(&[1, 9], 1), seq(&[2, 1], 2), seq(&[1, 2, 3], 3)];
        order_for_reuse(&mut seqs);
        let order: Vec<usize> = seqs.iter().map(|s| s.queries[0].0).collect();
        assert_eq!(order, vec![3, 1, 0, 2]);
    }

    #[test]
    fn the_decision_key_changes_with_every_field_it_covers() {
        let p = point("d", "e");
        let base = decision_key("w", "plain", &p, &[1, 2], &[3]);
        assert_eq!(base, decision_key("w", "plain", &p, &[1, 2], &[3]), "deterministic");
        assert_eq!(base.len(), 32);
        let mut changed = vec![
            decision_key("w2", "plain", &p, &[1, 2], &[3]),
            decision_key("w", "chat", &p, &[1, 2], &[3]),
            decision_key("w", "plain", &p, &[1, 2, 0], &[3]),
            decision_key("w", "plain", &p, &[1, 2], &[4]),
        ];
        let mut with = |edit: &dyn Fn(&mut DecisionPoint)| {
            let mut q = p.clone();
            edit(&mut q);
            changed.push(decision_key("w", "plain", &q, &[1, 2], &[3]));
        };
        with(&|q| q.id = "d2".into());
        with(&|q| q.episode = "e2".into());
        with(&|q| q.round = 2);
        with(&|q| q.outcome.option = abi_stable::std_types::ROption::RSome("accept".into()));
        with(&|q| q.outcome.rate = 0.25);
        with(&|q| q.outcome.weight = 2.0);
        with(&|q| q.metadata_json = "{\"a\":1}".into());
        with(&|q| q.flags = vec!["f".into()].into());
        for (i, key) in changed.iter().enumerate() {
            assert_ne!(key, &base, "change {i} left the key as it was");
        }
        // Fields are length-prefixed: moving a byte from one field to the next changes it.
        assert_ne!(decision_key("ab", "c", &p, &[], &[]), decision_key("a", "bc", &p, &[], &[]));
    }
}
