//! One real prompt per variant, as snapshots (`insta`; review changes with
//! `cargo insta review`), each also checked against `docs/prompts.md`.

use descry_game_bargaining::Bargaining;
use descry_game_kit::{shared_data_dir, snapshot_prompts};

#[test]
fn a_real_prompt_in_every_variant() {
    let glee = shared_data_dir().join("glee");
    snapshot_prompts!(Bargaining, glee, "{}", "0003852CF8408F00-r4", shown: ["native", "transcript", "predict"]);
}
