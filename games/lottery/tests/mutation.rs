//! Issue 12: a few hundred seeded random byte edits of a slice of the real choices13k files
//! through the loader: no panic, no hang, every error naming the file, every data set that
//! loads sound (see `descry_game_kit::mutation`).

use descry_game_kit::{
    mutation::{check_plugin, DataFile},
    shared_data_dir,
};
use descry_game_lottery::Lottery;

/// The header and the first 20 rows of `c13k_selections.csv`, and their 20 problems.
fn slice() -> Vec<DataFile> {
    let dir = shared_data_dir().join("choices13k");
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let csv: String =
        read("c13k_selections.csv").lines().take(21).map(|l| format!("{l}\n")).collect();
    let all: serde_json::Value = serde_json::from_str(&read("c13k_problems.json")).unwrap();
    let problems: serde_json::Map<String, serde_json::Value> =
        (0..20).map(|i| (i.to_string(), all[i.to_string()].clone())).collect();
    vec![
        DataFile { path: "c13k_selections.csv".into(), bytes: csv.into_bytes() },
        DataFile {
            path: "c13k_problems.json".into(),
            bytes: serde_json::Value::Object(problems).to_string().into_bytes(),
        },
    ]
}

#[test]
fn damaged_choices13k_never_panic_and_errors_name_the_file() {
    for (params, seed) in [("", 12), ("{\"feedback\": false}", 13)] {
        let summary = check_plugin(Lottery, params, &slice(), 300, seed);
        eprintln!("{params}: {summary:?}");
        assert!(summary.errors > 0 && summary.loaded > 0, "{params}: {summary:?}");
    }
}
