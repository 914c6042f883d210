//! Scoring planned sequences through a backend and turning log-probs into predictions:
//! shared by `descry run` and `descry-bench`, so both compute a prediction the same way.

use crate::plan::{PlannedSequence, UnitPlan};
use abi_stable::std_types::RVec;
use descry_abi::{
    backend::ModelBox,
    types::{ScoreQuery, ScoreRequest, ScoreSequence, ScoreStats},
};
use serde::{Deserialize, Serialize};

/// One decision's prediction: p(target), the mass on the options and every option's share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionPrediction {
    /// Position in data order.
    pub index: usize,
    /// The decision's content hash.
    pub key: String,
    /// p(target option), normalised over the options.
    pub prediction: f64,
    /// Σ p(option) before normalising.
    pub mass: f64,
    /// Normalised p(option), in the game's option order.
    pub option_probs: Vec<f64>,
}

/// Splits sequences into requests of about `budget` tokens (at least one sequence each)
/// (the store's granularity: one request's rows are appended together).
pub fn chunks(sequences: &[PlannedSequence], budget: usize) -> Vec<&[PlannedSequence]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut tokens = 0;
    for (i, s) in sequences.iter().enumerate() {
        if i > start && tokens + s.tokens.len() > budget {
            out.push(&sequences[start..i]);
            start = i;
            tokens = 0;
        }
        tokens += s.tokens.len();
    }
    if start < sequences.len() {
        out.push(&sequences[start..]);
    }
    out
}

/// Scores sequences and turns log-probs into predictions, exactly as a run does:
/// p(option) = Σ over its tokens of exp(logprob − logsumexp), normalised over the options.
pub fn score_sequences(
    model: &ModelBox,
    plan: &UnitPlan,
    target: &str,
    sequences: &[PlannedSequence],
) -> Result<(Vec<DecisionPrediction>, ScoreStats), String> {
    let request = ScoreRequest {
        sequences: sequences
            .iter()
            .map(|s| ScoreSequence {
                tokens: RVec::from(s.tokens.clone()),
                queries: s
                    .queries
                    .iter()
                    .map(|&(_, position)| ScoreQuery {
                        position,
                        candidates: RVec::from(plan.candidates.clone()),
                    })
                    .collect(),
            })
            .collect(),
        top_k: 0,
    };
    let result = model.score(&request).into_result().map_err(|e| e.to_string())?;
    if result.sequences.len() != sequences.len() {
        return Err(format!(
            "backend returned {} sequences for {}",
            result.sequences.len(),
            sequences.len()
        ));
    }
    let mut out = Vec::new();
    for (seq, scores) in sequences.iter().zip(result.sequences.iter()) {
        if scores.queries.len() != seq.queries.len() {
            return Err("backend returned a different number of queries than asked".into());
        }
        for (&(decision, _), q) in seq.queries.iter().zip(scores.queries.iter()) {
            if q.candidate_logprobs.len() != plan.candidates.len() {
                return Err(format!(
                    "backend returned {} candidate log-probs for {}",
                    q.candidate_logprobs.len(),
                    plan.candidates.len()
                ));
            }
            let d = &plan.decisions[decision];
            let mut raw = Vec::with_capacity(plan.options.len());
            let mut at = 0;
            for option in &plan.options {
                let n = option.token_ids.len();
                let p: f64 = q.candidate_logprobs[at..at + n]
                    .iter()
                    .map(|&lp| ((lp - q.logsumexp) as f64).exp())
                    .sum();
                raw.push(p);
                at += n;
            }
            let mass: f64 = raw.iter().sum();
            let option_probs: Vec<f64> =
                raw.iter().map(|p| if mass > 0.0 { p / mass } else { f64::NAN }).collect();
            let prediction = plan
                .options
                .iter()
                .position(|o| o.option == target)
                .map(|i| option_probs[i])
                .unwrap_or(f64::NAN);
            out.push(DecisionPrediction {
                index: d.index,
                key: d.key.clone(),
                prediction,
                mass,
                option_probs,
            });
        }
    }
    Ok((out, result.stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{OptionTokens, PlannedDecision};
    use abi_stable::std_types::{RBoxError, RResult, RString};
    use descry_abi::{
        backend::{Model, Model_TO},
        types::{DecisionPoint, HumanOutcome, QueryScores, ScoreResult, SequenceScores},
    };

    /// A backend that answers every query with fixed candidate log-probs, shifted by a
    /// log-sum-exp, and optionally drops a query (a broken backend).
    struct Fixed {
        logprobs: Vec<f32>,
        logsumexp: f32,
        drop_query: bool,
    }

    impl Model for Fixed {
        fn describe(&self) -> RResult<RString, RBoxError> {
            RResult::ROk("fixed".into())
        }
        fn score(&self, request: &ScoreRequest) -> RResult<ScoreResult, RBoxError> {
            let sequences = request
                .sequences
                .iter()
                .map(|s| {
                    let n = s.queries.len() - usize::from(self.drop_query);
                    SequenceScores {
                        queries: (0..n)
                            .map(|_| QueryScores {
                                candidate_logprobs: self
                                    .logprobs
                                    .iter()
                                    .map(|lp| lp + self.logsumexp)
                                    .collect(),
                                logsumexp: self.logsumexp,
                                top: RVec::new(),
                            })
                            .collect(),
                    }
                })
                .collect();
            RResult::ROk(ScoreResult { sequences, stats: ScoreStats::default() })
        }
    }

    fn model(logprobs: &[f32], drop_query: bool) -> ModelBox {
        let fixed = Fixed { logprobs: logprobs.to_vec(), logsumexp: 3.5, drop_query };
        Model_TO::from_value(fixed, abi_stable::sabi_trait::TD_Opaque)
    }

    /// Two options: `accept` with two tokens (10, 11), `reject` with one (12).
    fn plan() -> UnitPlan {
        let point = DecisionPoint {
            id: "d".into(),
            episode: "e".into(),
            round: 1,
            outcome: HumanOutcome {
                option: abi_stable::std_types::ROption::RNone,
                rate: 1.0,
                weight: 1.0,
            },
            metadata_json: "{}".into(),
            flags: RVec::new(),
            context_json: "{}".into(),
        };
        UnitPlan {
            decisions: (0..2)
                .map(|index| PlannedDecision {
                    index,
                    point: point.clone(),
                    key: format!("k{index}"),
                    tokens: vec![1, 2, 3],
                })
                .collect(),
            options: vec![
                OptionTokens { option: "accept".into(), token_ids: vec![10, 11] },
                OptionTokens { option: "reject".into(), token_ids: vec![12] },
            ],
            candidates: vec![10, 11, 12],
        }
    }

    fn one_sequence() -> Vec<PlannedSequence> {
        vec![PlannedSequence { tokens: vec![1, 2, 3], queries: vec![(0, 1), (1, 2)] }]
    }

    #[test]
    fn an_option_is_the_sum_of_its_tokens_normalised_over_the_options() {
        let (p_a1, p_a2, p_r) = (0.2f64, 0.1f64, 0.3f64);
        let m = model(&[p_a1.ln() as f32, p_a2.ln() as f32, p_r.ln() as f32], false);
        let (predictions, _) = score_sequences(&m, &plan(), "accept", &one_sequence()).unwrap();
        assert_eq!(predictions.len(), 2);
        for (i, p) in predictions.iter().enumerate() {
            assert_eq!((p.index, p.key.as_str()), (i, format!("k{i}").as_str()));
            assert!((p.mass - 0.6).abs() < 1e-6, "{}", p.mass);
            assert!((p.prediction - 0.5).abs() < 1e-6, "{}", p.prediction);
            assert!((p.option_probs[1] - 0.5).abs() < 1e-6);
        }
        // A target that is no option is not a number, never a guess.
        let (predictions, _) = score_sequences(&m, &plan(), "maybe", &one_sequence()).unwrap();
        assert!(predictions[0].prediction.is_nan());
    }

    #[test]
    fn no_mass_on_the_options_gives_no_prediction() {
        let m = model(&[f32::NEG_INFINITY; 3], false);
        let (predictions, _) = score_sequences(&m, &plan(), "accept", &one_sequence()).unwrap();
        assert_eq!(predictions[0].mass, 0.0);
        assert!(predictions[0].prediction.is_nan());
    }

    #[test]
    fn a_backend_that_answers_another_shape_is_an_error() {
        let m = model(&[0.0; 3], true);
        let err = score_sequences(&m, &plan(), "accept", &one_sequence()).unwrap_err();
        assert!(err.contains("different number of queries"), "{err}");
        let m = model(&[0.0; 2], false);
        let err = score_sequences(&m, &plan(), "accept", &one_sequence()).unwrap_err();
        assert!(err.contains("2 candidate log-probs for 3"), "{err}");
    }

    #[test]
    fn chunks_hold_about_the_budget_and_at_least_one_sequence() {
        let seq = |n: usize| PlannedSequence { tokens: vec![0; n], queries: Vec::new() };
        let seqs = vec![seq(3), seq(3), seq(5), seq(20), seq(1)];
        let sizes: Vec<usize> = chunks(&seqs, 6).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![2, 1, 1, 1]);
        assert_eq!(chunks(&seqs, 6).iter().map(|c| c.len()).sum::<usize>(), seqs.len());
        assert!(chunks(&[], 6).is_empty());
        assert_eq!(chunks(&seqs, 1000).len(), 1);
    }
}
