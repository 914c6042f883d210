//! `descry inspect` on all of ../shared/data: the counts the data README documents, through
//! the real binary and the real game plugins.

use descry_e2e::*;
use serde_json::Value;

fn inspect_all() -> Value {
    let study = repo_root().join("examples/all-data.toml");
    let mut cmd = descry();
    cmd.arg("inspect")
        .arg(&study)
        .args(["--format", "json", "--set"])
        .arg(format!("data.root=\"{}\"", shared_dir().join("data").display()));
    run_json(&mut cmd)
}

fn game<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["games"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no game {name}"))
}

#[test]
fn counts_match_the_published_data() {
    let r = inspect_all();

    let m = game(&r, "matrix");
    assert_eq!(m["decision_points"], 3900);
    assert_eq!(m["breakdown"]["game"]["PD"]["decision_points"], 1950);
    assert_eq!(m["breakdown"]["game"]["PD"]["outcomes"]["J"], 931);
    assert_eq!(m["breakdown"]["game"]["BoS"]["decision_points"], 1950);
    assert_eq!(m["breakdown"]["game"]["BoS"]["outcomes"]["J"], 904);
    // The four rows whose score fits no payoff cell are kept and flagged.
    assert_eq!(m["flags"]["payoff_inconsistent"], 4);

    let l = game(&r, "lottery");
    assert_eq!(l["decision_points"], 14568);
    assert_eq!(l["breakdown"]["feedback"]["false"]["decision_points"], 2380);

    let b = game(&r, "bargaining");
    assert_eq!(b["decision_points"], 24);
    assert_eq!(b["outcomes"]["accept"], 19);
    assert_eq!(b["outcomes"]["reject"], 5);

    let n = game(&r, "negotiation");
    assert_eq!(n["decision_points"], 42);
    assert_eq!(n["outcomes"]["AcceptOffer"], 26);
    assert_eq!(n["outcomes"]["RejectOffer"], 15);
    assert_eq!(n["outcomes"]["Outside"], 1);

    let p = game(&r, "persuasion");
    assert_eq!(p["decision_points"], 280);
    assert_eq!(p["outcomes"]["yes"], 242);
    assert_eq!(p["outcomes"]["no"], 38);

    // Games whose human player cannot be determined are skipped and counted, with reasons.
    for name in ["bargaining", "negotiation", "persuasion"] {
        let skipped = &game(&r, name)["skipped"];
        let total: u64 =
            skipped["reasons"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(skipped["count"].as_u64().unwrap(), total, "{name}: {skipped}");
    }
}

#[test]
fn every_variant_renders_a_sample_prompt_with_the_answer_prefix() {
    let r = inspect_all();
    for g in r["games"].as_array().unwrap() {
        let variants = g["variants"].as_array().unwrap();
        assert!(variants.len() >= 3, "{} has {} variants", g["name"], variants.len());
        for v in variants {
            let sample = &v["sample"];
            assert!(
                !sample["messages"].as_array().unwrap().is_empty(),
                "{}/{}",
                g["name"],
                v["name"]
            );
            assert_eq!(sample["answer_prefix"], "{\"decision\": \"", "{}/{}", g["name"], v["name"]);
        }
    }
}

#[test]
fn a_wrong_data_path_names_the_key() {
    let mut cmd = descry();
    cmd.arg("inspect")
        .arg(repo_root().join("examples/all-data.toml"))
        .args(["--set", "games.lottery.data=nowhere"]);
    cmd.arg("--set").arg(format!("data.root=\"{}\"", shared_dir().join("data").display()));
    let out = run(&mut cmd);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("games.lottery.data") && err.contains("nowhere"), "{err}");
}

/// The example game's study (the one its crate docs quote) is a valid study: the plugin
/// loads, its data is read, both variants render.
#[test]
fn the_example_game_study_inspects() {
    let out = run(descry().arg("inspect").arg("examples/ultimatum/study.toml").args([
        "--format",
        "json",
        "--set",
        &format!("data.root={}", shared_dir().join("data").display()),
    ]));
    assert!(out.status.success(), "{}", stderr_text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let game = &report["games"][0];
    assert_eq!(game["plugin"], "ultimatum");
    assert_eq!(game["decision_points"], 8);
    let variants: Vec<&str> =
        game["variants"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(variants, ["native", "predict"]);
    // The crate docs show the same table as the study file.
    let docs = std::fs::read_to_string(repo_root().join("examples/ultimatum/src/lib.rs")).unwrap();
    let study = std::fs::read_to_string(repo_root().join("examples/ultimatum/study.toml")).unwrap();
    for line in
        ["[games.ultimatum]", "plugin = \"ultimatum\"", "variants = [\"native\", \"predict\"]"]
    {
        assert!(docs.contains(line) && study.contains(line), "{line}");
    }
}
