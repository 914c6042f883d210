//! Accessors and checks for game plugins' tests on real data, so that every family reads
//! its decision points and checks the transcript property the same way. They panic with
//! the point or episode at fault: they are for tests, not for loading user data.

use descry_abi::{
    game::GamePlugin,
    types::{DecisionPoint, LoadRequest, LoadedData, Prompt},
};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use crate::{
    game::{Game, Variant},
    sample::section,
    transcript::check_episode,
    KitError,
};

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

/// The prompt of decision point `point_id` (of the data set at `path`, loaded with
/// `params_json` through the game's own entry points) in every variant, as
/// `(variant, text)`: the text `docs/prompts.md` shows, a `=== <id> / <variant>` line and
/// then [`crate::render::prompt_text`]. For snapshot tests of real prompts.
pub fn real_prompts(
    game: &impl GamePlugin,
    path: &Path,
    params_json: &str,
    point_id: &str,
) -> Vec<(String, String)> {
    let request =
        LoadRequest { path: path.display().to_string().into(), params_json: params_json.into() };
    let data = game.load(&request).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let point = points(&data)
        .into_iter()
        .find(|p| p.id.as_str() == point_id)
        .unwrap_or_else(|| panic!("{}: no decision point `{point_id}`", path.display()));
    game.info()
        .variants
        .iter()
        .map(|v| {
            let prompt = game
                .render(point, v.name.as_str())
                .unwrap_or_else(|e| panic!("{point_id} / {}: {e}", v.name));
            (v.name.to_string(), section(point, v.name.as_str(), &prompt))
        })
        .collect()
}

/// `docs/prompts.md` of this repository.
pub fn prompts_doc() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/prompts.md")
}

/// The sections of `docs/prompts.md`: every `=== <id> / <variant>` line with the text
/// after it up to the next such line or the end of its code block, keyed by that line.
pub fn doc_sections() -> HashMap<String, String> {
    let path = prompts_doc();
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()));
    let mut sections = HashMap::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    for line in doc.lines() {
        let ends = line.starts_with("=== ") || line.starts_with("```");
        if ends {
            if let Some((heading, body)) = current.take() {
                let text = body.join("\n").trim_end_matches('\n').to_string();
                sections.insert(heading.clone(), format!("{heading}\n{text}"));
            }
        }
        if line.starts_with("=== ") {
            current = Some((line.to_string(), Vec::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push(line);
        }
    }
    sections
}

/// Checks that `docs/prompts.md` shows, for each of `prompts` (from [`real_prompts`])
/// whose variant is in `shown`, exactly that text, and shows no other variant of the
/// point: the doc cannot drift from what the game renders.
pub fn check_prompts_doc(prompts: &[(String, String)], shown: &[&str]) {
    let sections = doc_sections();
    for (variant, text) in prompts {
        let heading = text.lines().next().unwrap_or_default();
        match (shown.contains(&variant.as_str()), sections.get(heading)) {
            (true, Some(doc)) => assert!(
                doc == text,
                "`{}` shows another prompt under `{heading}` than the game renders; paste the \
                 `sample_prompt` example's output there.\n--- docs\n{doc}\n--- rendered\n{text}",
                prompts_doc().display()
            ),
            (true, None) => panic!("`{}` lacks `{heading}`", prompts_doc().display()),
            (false, Some(_)) => {
                panic!("`{}` shows `{heading}`, not checked", prompts_doc().display())
            }
            (false, None) => {}
        }
    }
}

/// A snapshot test of one real prompt per variant: [`real_prompts`] of `point` in the data
/// set at `path` (loaded with `params`), each an `insta` snapshot named `<point>-<variant>`
/// (the calling crate needs `insta` as a dev-dependency), then [`check_prompts_doc`] with
/// the variants `docs/prompts.md` shows.
#[macro_export]
macro_rules! snapshot_prompts {
    ($game:expr, $path:expr, $params:expr, $point:expr, shown: $shown:expr) => {{
        let point: &str = $point;
        let prompts = $crate::testing::real_prompts(&$game, &$path, $params, point);
        for (variant, text) in &prompts {
            ::insta::assert_snapshot!(format!("{point}-{variant}"), text);
        }
        $crate::testing::check_prompts_doc(&prompts, &$shown);
    }};
}

/// Renders each of `points` in every variant of game `G` and checks what holds for every
/// prompt: the kit's answer prefix, a user message last, no empty message. Returns the
/// prompts, each with its point and variant, for the game's own checks.
pub fn render_every_variant<'a, G: Game>(
    points: &[&'a DecisionPoint],
) -> Vec<(&'a DecisionPoint, G::Variant, Prompt)> {
    let mut prompts = Vec::new();
    for &p in points {
        for &v in G::Variant::ALL {
            let prompt =
                G::render(p, v.name()).unwrap_or_else(|e| panic!("{} / {}: {e}", p.id, v.name()));
            assert_eq!(
                prompt.answer_prefix.as_str(),
                crate::ANSWER_PREFIX,
                "{} / {}",
                p.id,
                v.name()
            );
            let last = prompt.messages.last().map(|m| m.role.to_string());
            assert_eq!(last.as_deref(), Some("user"), "{} / {}", p.id, v.name());
            assert!(
                prompt.messages.iter().all(|m| !m.content.is_empty()),
                "{} / {}",
                p.id,
                v.name()
            );
            prompts.push((p, v, prompt));
        }
    }
    prompts
}

/// Game `G`'s data set in `../shared/data/<dir>` (see [`crate::shared_data_dir`]), loaded
/// with default parameters; panics, naming the folder, when it is missing or does not load.
pub fn real_data<G: Game>(dir: &str) -> LoadedData {
    let path = crate::shared_data_dir().join(dir);
    G::load(&path, G::Params::default())
        .unwrap_or_else(|e| panic!("the real data must be at `{}`: {e}", path.display()))
}
