//! Prints a real rendered prompt in every variant:
//! `cargo run -p descry-game-bargaining --example sample_prompt -- [DECISION_ID|-] [VARIANT]`.
//! Reads `../shared/data/glee`; its output is what `docs/prompts.md` shows.
fn main() -> Result<(), descry_abi::PluginError> {
    let data = descry_game_kit::shared_data_dir().join("glee");
    descry_game_kit::sample::sample_main(&descry_game_bargaining::Bargaining, &data, "{}")
}
