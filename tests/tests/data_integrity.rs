//! Issue 12 ("Results that cannot be wrong without saying so") through the real binary and
//! plugins: `descry inspect` over damaged copies of real data either counts exactly what
//! the data holds or fails naming the file and the place; a bad game parameter is named by
//! its key. The copies live in temporary folders (links to or slices of ../shared/data).

use descry_e2e::*;
use serde_json::Value;
use std::path::Path;

/// A study with the one game `section` (TOML lines after `[games.NAME]`) over `root`.
fn study(dir: &Path, name: &str, section: &str, root: &Path) -> std::path::PathBuf {
    let path = dir.join("study.toml");
    let text = format!(
        "[study]\nname = \"integrity\"\noutput = \"{}\"\n\n[data]\nroot = \"{}\"\n\n[games.{name}]\n{section}\n",
        dir.join("runs").display(),
        root.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn inspect(study: &Path) -> std::process::Output {
    let mut cmd = descry();
    cmd.arg("inspect").arg(study).args(["--format", "json"]);
    run(&mut cmd)
}

/// `inspect` must fail; its stderr.
fn inspect_fails(study: &Path) -> String {
    let out = inspect(study);
    assert!(
        !out.status.success(),
        "inspect succeeded on bad data:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_in_a_glee_tree_does_not_multiply_the_games() {
    use std::os::unix::fs::symlink;
    let real = shared_dir().join("data/glee/human_vs_llm/bargaining");
    let tmp = tempfile::tempdir().unwrap();
    let family = tmp.path().join("data/glee/human_vs_llm/bargaining");
    std::fs::create_dir_all(&family).unwrap();
    // The real sample, each top folder a link; then a link back to the family folder and
    // a second path to one of the top folders (never a link inside the real data).
    let mut tops: Vec<_> =
        std::fs::read_dir(&real).unwrap().map(|e| e.unwrap().file_name()).collect();
    tops.sort();
    for top in &tops {
        symlink(real.join(top), family.join(top)).unwrap();
    }
    let plain = study(tmp.path(), "bargaining", "data = \"glee\"", &tmp.path().join("data"));
    let out = inspect(&plain);
    assert!(out.status.success());
    let clean: Value = serde_json::from_slice(&out.stdout).unwrap();
    let clean = &clean["games"][0];
    // The counts of the data README.
    assert_eq!(clean["decision_points"], 24);

    // Both links in the temporary family folder itself: one inside a linked top folder
    // would land in the real data.
    assert!(std::fs::canonicalize(&family)
        .unwrap()
        .starts_with(std::fs::canonicalize(tmp.path()).unwrap()));
    symlink(&family, family.join("loop")).unwrap();
    symlink(real.join(&tops[0]), family.join("again")).unwrap();
    let out = inspect(&plain);
    assert!(out.status.success());
    let looped: Value = serde_json::from_slice(&out.stdout).unwrap();
    let looped = &looped["games"][0];
    assert_eq!(looped["decision_points"], 24, "{looped}");
    assert_eq!(looped["episodes"], clean["episodes"]);
    assert_eq!(looped["outcomes"], clean["outcomes"]);
    // Both links are skipped, and say so.
    let walked_again: u64 = looped["skipped"]["reasons"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(reason, _)| reason.starts_with("a folder already walked"))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert_eq!(walked_again, 2, "{}", looped["skipped"]);
    assert_eq!(
        looped["skipped"]["count"].as_u64().unwrap(),
        clean["skipped"]["count"].as_u64().unwrap() + 2
    );
}

#[test]
fn a_duplicated_block_of_repgames_rows_is_an_error_naming_file_and_line() {
    let real = std::fs::read_to_string(shared_dir().join("data/akata/repgames.csv")).unwrap();
    let lines: Vec<&str> = real.lines().collect();
    let tmp = tempfile::tempdir().unwrap();
    let akata = tmp.path().join("data/akata");
    std::fs::create_dir_all(&akata).unwrap();
    // Participant 1's PD rounds (lines 2–11) once more at the end.
    let mut doubled = lines.clone();
    doubled.extend_from_slice(&lines[1..11]);
    let csv = akata.join("repgames.csv");
    std::fs::write(&csv, doubled.join("\n") + "\n").unwrap();
    for params in ["{ set = \"repeated\" }", "{ set = \"repeated_round1\" }"] {
        let s = study(
            tmp.path(),
            "matrix",
            &format!("data = \"akata\"\nparams = {params}"),
            &tmp.path().join("data"),
        );
        let err = inspect_fails(&s);
        assert!(
            err.contains(&csv.display().to_string())
                && err.contains(&format!("line {}", lines.len() + 1))
                && err.contains("participant 1, game PD again"),
            "{params}: {err}"
        );
    }
}

#[test]
fn an_impossible_gamble_is_an_error_naming_file_and_key() {
    let real = shared_dir().join("data/choices13k");
    let csv = std::fs::read_to_string(real.join("c13k_selections.csv")).unwrap();
    let all: Value =
        serde_json::from_str(&std::fs::read_to_string(real.join("c13k_problems.json")).unwrap())
            .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data/choices13k");
    std::fs::create_dir_all(&dir).unwrap();
    let rows: String = csv.lines().take(4).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("c13k_selections.csv"), rows).unwrap();
    let mut problems = serde_json::Map::new();
    for i in 0..3 {
        problems.insert(i.to_string(), all[i.to_string()].clone());
    }
    problems["1"]["A"] = serde_json::json!([[1.7, 26.0], [-0.7, -1.0]]);
    let json = dir.join("c13k_problems.json");
    std::fs::write(&json, Value::Object(problems).to_string()).unwrap();
    let s = study(tmp.path(), "lottery", "data = \"choices13k\"", &tmp.path().join("data"));
    let err = inspect_fails(&s);
    assert!(
        err.contains(&json.display().to_string())
            && err.contains("key `1` (line 3 of `c13k_selections.csv`), gamble A, outcome 1: probability 1.7 is outside [0, 1]"),
        "{err}"
    );
}

#[test]
fn a_bad_game_parameter_is_named_by_its_key_not_by_a_json_column() {
    let tmp = tempfile::tempdir().unwrap();
    let data = shared_dir().join("data");
    for (params, expected) in [
        (
            "{ set = \"triple\" }",
            "parameter `set`: unknown set `triple`; expected one of `repeated`, `oneshot`, `repeated_round1`",
        ),
        ("{ set = 3 }", "parameter `set`: invalid type: integer `3`, expected a string"),
        ("{ sets = \"oneshot\" }", "unknown parameter `sets`; the parameters of this game are `set`"),
    ] {
        let s = study(tmp.path(), "matrix", &format!("data = \"akata\"\nparams = {params}"), &data);
        let err = inspect_fails(&s);
        assert!(err.contains(expected) && !err.contains("column"), "{params}: {err}");
    }
}
