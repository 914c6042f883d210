//! The plugin registry through the real binary: every built plugin loads; broken libraries
//! are reported by file and reason without stopping the others; a panicking plugin is an
//! error naming it, and the host carries on.

use descry_e2e::*;
use std::collections::BTreeSet;

fn names(listing: &serde_json::Value, kind: &str) -> BTreeSet<String> {
    listing["plugins"]
        .as_array()
        .expect("plugins array")
        .iter()
        .filter(|p| p["kind"] == kind)
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect()
}

fn expected_games() -> BTreeSet<String> {
    ["bargaining", "persuasion", "negotiation", "matrix", "lottery", "ultimatum"]
        .map(String::from)
        .into()
}

#[test]
fn lists_every_built_plugin() {
    let listing = run_json(descry().args(["plugins", "--format", "json"]));
    let games = names(&listing, "game");
    assert!(games.is_superset(&expected_games()), "games: {games:?}");
    assert!(names(&listing, "backend").contains("onnx"), "{listing:#}");
    let metrics = names(&listing, "metric");
    for m in ["pearson", "spearman", "auc", "brier", "nll", "accuracy"] {
        assert!(metrics.contains(m), "metric {m} missing: {metrics:?}");
    }
    assert_eq!(listing["failures"].as_array().map(Vec::len), Some(0), "{listing:#}");
}

#[test]
fn broken_libraries_are_reported_and_the_rest_still_load() {
    let dir = tempfile::tempdir().unwrap();
    // Every real plugin, copied.
    for entry in std::fs::read_dir(target_dir()).unwrap() {
        let path = entry.unwrap().path();
        if descry_core_like_plugin_name(&path) {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    // A file with a plugin's name that is not a shared library at all.
    std::fs::write(dir.path().join("libdescry_not_a_library.so"), b"this is not an ELF file\n")
        .unwrap();
    // A real plugin built against another ABI version.
    std::fs::copy(
        built_library("fixture_other_abi_game"),
        dir.path().join("libdescry_other_abi.so"),
    )
    .unwrap();

    let listing = run_json(
        descry().arg("--plugin-dir").arg(dir.path()).args(["plugins", "--format", "json"]),
    );
    let failures = listing["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 2, "{listing:#}");
    let reason_of = |file: &str| {
        failures
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(file))
            .unwrap_or_else(|| panic!("no failure for {file}: {listing:#}"))["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(reason_of("libdescry_not_a_library.so").contains("not a loadable shared library"));
    let abi = reason_of("libdescry_other_abi.so");
    // The fixture declares the next version; the host speaks the current one.
    let (theirs, ours) = (descry_abi::ABI_VERSION + 1, descry_abi::ABI_VERSION);
    assert!(
        abi.contains(&format!("ABI version {theirs}"))
            && abi.contains(&format!("speaks version {ours}")),
        "{abi}"
    );
    assert!(names(&listing, "game").is_superset(&expected_games()), "{listing:#}");
    assert!(names(&listing, "backend").contains("onnx"));
    assert!(names(&listing, "metric").contains("pearson"));
}

fn descry_core_like_plugin_name(path: &std::path::Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with("libdescry_") && name.ends_with(".so")
}

#[test]
fn a_panicking_plugin_is_an_error_naming_it_and_the_host_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        built_library("fixture_panicking_game"),
        dir.path().join("libdescry_panicking.so"),
    )
    .unwrap();
    std::fs::copy(built_library("descry_game_matrix"), dir.path().join("libdescry_game_matrix.so"))
        .unwrap();
    let study = dir.path().join("study.toml");
    std::fs::write(
        &study,
        format!(
            "[data]\nroot = \"{}\"\n\n[games.panicky]\nplugin = \"panicking-fixture\"\ndata = \"akata\"\n\n\
             [games.matrix]\ndata = \"akata\"\nvariants = [\"native\"]\n",
            shared_dir().join("data").display()
        ),
    )
    .unwrap();
    let out = run(descry()
        .arg("--plugin-dir")
        .arg(dir.path())
        .arg("inspect")
        .arg(&study)
        .args(["--format", "json"]));
    // The process ended normally (an exit code, not a signal) and said which plugin failed.
    assert_eq!(out.status.code(), Some(1), "expected a clean failure exit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("plugin 'panicking-fixture' panicked in load"), "{stderr}");
    // The other game was still inspected.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let matrix =
        report["games"].as_array().unwrap().iter().find(|g| g["name"] == "matrix").expect("matrix");
    assert!(matrix["decision_points"].as_u64().unwrap() > 0, "{report:#}");
}
