//! One real prompt per variant, as snapshots (`insta`; review changes with
//! `cargo insta review`), each also checked against `docs/prompts.md`.

use descry_game_kit::{
    shared_data_dir,
    testing::{check_prompts_doc, real_prompts},
};
use descry_game_lottery::Lottery;

#[test]
fn real_prompts_in_every_variant() {
    let data = shared_data_dir().join("choices13k");
    for (id, shown) in
        [("c13k-1-fb", &["native"][..]), ("c13k-2-fb", &["native", "predict", "numbers_only"])]
    {
        let prompts = real_prompts(&Lottery, &data, "{}", id);
        for (variant, text) in &prompts {
            insta::assert_snapshot!(format!("{id}-{variant}"), text);
        }
        check_prompts_doc(&prompts, shown);
    }
}
