//! Prints a real rendered prompt in every variant:
//! `cargo run -p descry-game-matrix --example sample_prompt -- [DECISION_ID|-] [VARIANT] [SET]`
//! (SET: `repeated`, the default, or `repeated_round1`). Reads `../shared/data/akata`; its
//! output is what `docs/prompts.md` shows.
fn main() -> Result<(), descry_abi::PluginError> {
    let data = descry_game_kit::shared_data_dir().join("akata");
    let set = std::env::args().nth(3).unwrap_or_else(|| "repeated".to_string());
    descry_game_kit::sample::sample_main(
        &descry_game_matrix::Matrix,
        &data,
        &format!("{{\"set\": \"{set}\"}}"),
    )
}
