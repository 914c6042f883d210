//! Scoring planned sequences through a backend and turning log-probs into predictions:
//! shared by `descry run` and `descry bench`, so both compute a prediction the same way.

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
