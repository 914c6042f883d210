//! One real prompt per variant, as snapshots (`insta`; review changes with
//! `cargo insta review`), each also checked against `docs/prompts.md`.

use descry_game_kit::{
    shared_data_dir,
    testing::{check_prompts_doc, real_prompts},
};
use descry_game_matrix::Matrix;

#[test]
fn a_real_repeated_game_prompt_in_every_variant() {
    let prompts = real_prompts(
        &Matrix,
        &shared_data_dir().join("akata"),
        r#"{"set": "repeated"}"#,
        "p1-PD-r3",
    );
    for (variant, text) in &prompts {
        insta::assert_snapshot!(format!("p1-PD-r3-{variant}"), text);
    }
    check_prompts_doc(&prompts, &["native", "transcript", "predict", "numbers_only"]);
}

#[test]
fn a_real_oneshot_prompt_in_every_variant() {
    let prompts = real_prompts(
        &Matrix,
        &shared_data_dir().join("akata"),
        r#"{"set": "repeated_round1"}"#,
        "akata-BoS-round1",
    );
    for (variant, text) in &prompts {
        insta::assert_snapshot!(format!("akata-BoS-round1-{variant}"), text);
    }
    check_prompts_doc(&prompts, &["native"]);
}
