//! One real prompt per variant, as snapshots (`insta`; review changes with
//! `cargo insta review`), each also checked against `docs/prompts.md`.

use descry_game_kit::{
    shared_data_dir,
    testing::{check_prompts_doc, real_prompts},
};
use descry_game_negotiation::Negotiation;

#[test]
fn a_real_prompt_in_every_variant() {
    let prompts =
        real_prompts(&Negotiation, &shared_data_dir().join("glee"), "{}", "521E8BA4B8DEF25A-r3");
    for (variant, text) in &prompts {
        insta::assert_snapshot!(format!("521E8BA4B8DEF25A-r3-{variant}"), text);
    }
    check_prompts_doc(&prompts, &["native", "transcript", "predict"]);
}
