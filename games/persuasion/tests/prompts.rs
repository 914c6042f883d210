//! One real prompt per variant, as snapshots (`insta`; review changes with
//! `cargo insta review`), each also checked against `docs/prompts.md`.

use descry_game_kit::{shared_data_dir, snapshot_prompts};
use descry_game_persuasion::Persuasion;

#[test]
fn a_real_prompt_in_every_variant() {
    let glee = shared_data_dir().join("glee");
    snapshot_prompts!(Persuasion, glee, "{}", "5AD399E5B468E592-r3", shown: ["native", "transcript", "predict"]);
}
