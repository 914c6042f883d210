//! Real prompts for people to read: what the `sample_prompt` example of each game prints
//! (and `docs/prompts.md` shows).

use crate::render::prompt_text;
use descry_abi::{
    game::GamePlugin,
    types::{DecisionPoint, LoadRequest, Prompt},
    PluginError,
};
use std::path::Path;

/// Loads `path` with `params_json` through the game's own entry points and returns the
/// prompt of one decision point (`point_id`, or the first one) in each variant (or only
/// `variant`), as text under a `=== <id> / <variant>` heading.
pub fn sample_prompts(
    game: &impl GamePlugin,
    path: &Path,
    params_json: &str,
    point_id: Option<&str>,
    variant: Option<&str>,
) -> Result<String, PluginError> {
    let request =
        LoadRequest { path: path.display().to_string().into(), params_json: params_json.into() };
    let data = game.load(&request)?;
    let points: Vec<&DecisionPoint> =
        data.episodes.iter().flat_map(|e| e.decisions.iter()).collect();
    let point = match point_id {
        Some(id) => points
            .iter()
            .find(|p| p.id.as_str() == id)
            .ok_or(format!("no decision point `{id}`"))?,
        None => points.first().ok_or("the data set has no decision points")?,
    };
    let mut out = String::new();
    for v in game.info().variants.iter() {
        if variant.is_some_and(|wanted| wanted != v.name.as_str()) {
            continue;
        }
        let prompt = game.render(point, v.name.as_str())?;
        out.push_str(&format!("{}\n\n", section(point, v.name.as_str(), &prompt)));
    }
    Ok(out)
}

/// One prompt as `docs/prompts.md` shows it: a `=== <id> / <variant>` line, then the
/// prompt as text ([`prompt_text`]).
pub fn section(point: &DecisionPoint, variant: &str, prompt: &Prompt) -> String {
    format!("=== {} / {variant}\n{}", point.id, prompt_text(prompt))
}

/// `main` of a game's `sample_prompt` example: arguments `[DECISION_ID] [VARIANT]`.
pub fn sample_main(
    game: &impl GamePlugin,
    path: &Path,
    params_json: &str,
) -> Result<(), PluginError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let id = args.first().map(String::as_str).filter(|s| !s.is_empty() && *s != "-");
    print!("{}", sample_prompts(game, path, params_json, id, args.get(1).map(String::as_str))?);
    Ok(())
}
