//! Issue 12: a few hundred seeded random byte edits of a slice of the real `repgames.csv`
//! through the loader: no panic, no hang, every error naming the file, every data set that
//! loads sound (see `descry_game_kit::mutation`).

use descry_game_kit::{
    mutation::{check_plugin, DataFile},
    shared_data_dir,
};
use descry_game_matrix::Matrix;

/// The header and the first four people's rows (two games of 10 rounds each).
fn slice() -> Vec<DataFile> {
    let path = shared_data_dir().join("akata/repgames.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines: String = text.lines().take(1 + 4 * 20).map(|l| format!("{l}\n")).collect();
    vec![DataFile { path: "repgames.csv".into(), bytes: lines.into_bytes() }]
}

#[test]
fn damaged_repgames_never_panic_and_errors_name_the_file() {
    for (params, seed) in [("", 12), ("{\"set\": \"repeated_round1\"}", 13)] {
        let summary = check_plugin(Matrix, params, &slice(), 300, seed);
        eprintln!("{params}: {summary:?}");
        assert!(summary.errors > 0 && summary.loaded > 0, "{params}: {summary:?}");
    }
}
