//! One real prompt per variant, as snapshots (`insta`; review changes with
//! `cargo insta review`), each also checked against `docs/prompts.md`.

use descry_game_kit::{shared_data_dir, snapshot_prompts};
use descry_game_matrix::Matrix;

#[test]
fn a_real_prompt_in_every_variant() {
    let akata = shared_data_dir().join("akata");
    let all = ["native", "transcript", "predict", "numbers_only"];
    snapshot_prompts!(Matrix, akata, r#"{"set": "repeated"}"#, "p1-PD-r3", shown: all);
    // Round 1 as a one-shot set; the doc shows its native prompt only.
    snapshot_prompts!(Matrix, akata, r#"{"set": "repeated_round1"}"#, "akata-BoS-round1", shown: ["native"]);
}
