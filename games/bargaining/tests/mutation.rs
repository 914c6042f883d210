//! Issue 12: a few hundred seeded random byte edits of real GLEE bargaining games (their
//! `config.json` and `game.csv`) through the loader: no panic, no hang, every error naming
//! the file, every data set that loads sound (see `descry_game_kit::mutation`).

use descry_game_bargaining::Bargaining;
use descry_game_kit::mutation::{check_plugin, glee_slice};

#[test]
fn damaged_games_never_panic_and_errors_name_the_file() {
    let summary = check_plugin(Bargaining, "", &glee_slice("bargaining", 2), 300, 12);
    eprintln!("{summary:?}");
    assert!(summary.errors > 0 && summary.loaded > 0, "{summary:?}");
}
