//! Accessors and checks for game plugins' tests on real data, so that every family reads
//! its decision points and checks the transcript property the same way. They panic with
//! the point or episode at fault: they are for tests, not for loading user data.

use descry_abi::types::{DecisionPoint, LoadedData, Prompt};

use crate::{transcript::check_episode, KitError};

/// Every decision point of every episode, in order.
pub fn points(data: &LoadedData) -> Vec<&DecisionPoint> {
    data.episodes.iter().flat_map(|e| e.decisions.iter()).collect()
}

/// A point's metadata JSON, parsed.
pub fn metadata(p: &DecisionPoint) -> serde_json::Value {
    serde_json::from_str(p.metadata_json.as_str())
        .unwrap_or_else(|e| panic!("{}: metadata is not JSON: {e}", p.id))
}

/// The word the person gave (metadata `answer`).
pub fn answer(p: &DecisionPoint) -> String {
    metadata(p)["answer"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: metadata has no `answer`", p.id))
        .to_string()
}

/// The option the person chose.
pub fn option(p: &DecisionPoint) -> String {
    p.outcome
        .option
        .as_ref()
        .map(|o| o.to_string())
        .into_option()
        .unwrap_or_else(|| panic!("{}: no chosen option (an aggregate outcome)", p.id))
}

/// Whether a point carries `flag`.
pub fn has_flag(p: &DecisionPoint, flag: &str) -> bool {
    p.flags.iter().any(|f| f.as_str() == flag)
}

/// How many points carry `flag`.
pub fn count_flag(points: &[&DecisionPoint], flag: &str) -> usize {
    points.iter().filter(|p| has_flag(p, flag)).count()
}

/// How many skipped items give a reason starting with `reason`.
pub fn count_skipped(data: &LoadedData, reason: &str) -> usize {
    data.skipped.iter().filter(|s| s.reason.starts_with(reason)).count()
}

/// Renders every episode's points with `render` (the transcript variant) and checks the
/// transcript property ([`check_episode`]) against the people's answers; returns how many
/// episodes hold more than one decision (where the property says something).
pub fn check_transcripts(
    data: &LoadedData,
    render: impl Fn(&DecisionPoint) -> Result<Prompt, KitError>,
) -> usize {
    let mut multi = 0;
    for episode in data.episodes.iter() {
        let prompts: Vec<Prompt> = episode
            .decisions
            .iter()
            .map(|p| render(p).unwrap_or_else(|e| panic!("{}: {e}", p.id)))
            .collect();
        let answers: Vec<String> = episode.decisions.iter().map(answer).collect();
        if let Err(e) = check_episode(&prompts, &answers) {
            panic!("episode {}: {e}", episode.id);
        }
        multi += usize::from(episode.decisions.len() > 1);
    }
    multi
}
