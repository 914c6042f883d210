//! One real prompt per variant, as snapshots (`insta`; review changes with
//! `cargo insta review`), each also checked against `docs/prompts.md`.

use descry_game_bargaining::Bargaining;
use descry_game_kit::{
    shared_data_dir,
    testing::{check_prompts_doc, real_prompts},
};

#[test]
fn a_real_prompt_in_every_variant() {
    let prompts =
        real_prompts(&Bargaining, &shared_data_dir().join("glee"), "{}", "0003852CF8408F00-r4");
    for (variant, text) in &prompts {
        insta::assert_snapshot!(format!("0003852CF8408F00-r4-{variant}"), text);
    }
    check_prompts_doc(&prompts, &["native", "transcript", "predict"]);
}
