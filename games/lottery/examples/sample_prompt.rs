//! Prints a real rendered prompt in every variant:
//! `cargo run -p descry-game-lottery --example sample_prompt -- [DECISION_ID|-] [VARIANT]`.
//! Reads `../shared/data/choices13k`; its output is what `docs/prompts.md` shows.
fn main() -> Result<(), descry_abi::PluginError> {
    let data = descry_game_kit::shared_data_dir().join("choices13k");
    descry_game_kit::sample::sample_main(&descry_game_lottery::Lottery, &data, "{}")
}
