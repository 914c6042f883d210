//! One real prompt per variant, as snapshots (`insta`; review changes with
//! `cargo insta review`), each also checked against `docs/prompts.md`.

use descry_game_kit::{shared_data_dir, snapshot_prompts};
use descry_game_lottery::Lottery;

#[test]
fn real_prompts_in_every_variant() {
    let c13k = shared_data_dir().join("choices13k");
    snapshot_prompts!(Lottery, c13k, "{}", "c13k-1-fb", shown: ["native"]);
    snapshot_prompts!(Lottery, c13k, "{}", "c13k-2-fb", shown: ["native", "predict", "numbers_only"]);
}
