//! The benchmark's own binary (`descry-bench`) end to end on the real repeated-matrix data
//! (native and transcript variants) with the smaller real model: descry's plan (the radix
//! tree of the prompts, each distinct prefix computed once) gives the naive per-decision
//! method's predictions within 1e-5 while computing at most 1.10x the trie minimum, and the
//! JSON holds the figures the benchmark promises, the engine's matrix-multiply rate from the
//! backend and the targets. A bad option fails before any model runs.

use descry_e2e::*;

#[test]
fn the_plan_matches_naive_scoring_with_fewer_tokens() {
    let model = model_dir("smollm2-135m-instruct");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench.json");
    let output = run(descry_bench()
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&out)
        .arg("--data")
        .arg(shared_dir().join("data"))
        // Two episodes: their shared beginning exercises the backend's prefix reuse too.
        .args(["--limit", "2", "--data-set", "matrix-native", "--data-set", "matrix-transcript"])
        .args(["--memory-episodes", "0"])
        .args(["--skip-full-plan", "--threads", "2", "--sgemm-size", "256"]));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("tokens computed") && stdout.contains("max |naive - plan|"),
        "no table:\n{stdout}"
    );
    assert!(
        stdout.contains("targets:") && stdout.contains("plan_over_trie"),
        "no targets:\n{stdout}"
    );

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    for set in ["matrix-native", "matrix-transcript"] {
        check_data_set(set, &v["data_sets"][set]);
    }
    for key in ["model_flops_per_s", "sgemm_flops_per_s", "token_ratio", "wall_ratio"] {
        let d = &v["data_sets"]["matrix-native"];
        assert!(d[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {d}");
    }
    assert!(v["machine"]["cpu_model"].is_string() && v["settings"]["threads"] == 2);
    // The matrix-multiply rate is the backend's: one measurement before, one before each
    // phase of each data set, one after.
    assert_eq!(v["sgemm"]["backend"], "onnx");
    assert_eq!(v["sgemm"]["n"], 256);
    let rates = v["sgemm"]["flops_per_s_all"].as_array().expect("flops_per_s_all");
    assert_eq!(rates.len(), 6, "{}", v["sgemm"]);
    assert!(rates.iter().all(|r| r.as_f64().is_some_and(|r| r > 0.0)), "{}", v["sgemm"]);
    let targets = v["targets"].as_array().expect("targets");
    for what in ["max_abs_diff", "plan_over_trie"] {
        assert!(
            targets.iter().any(
                |t| t["what"].as_str().is_some_and(|w| w.starts_with(what)) && t["met"] == true
            ),
            "the {what} target is judged and met: {targets:?}"
        );
    }
}

/// One data set's figures: both phases measured, the same predictions, the plan at the trie
/// minimum (within the 1.10x).
fn check_data_set(set: &str, d: &serde_json::Value) {
    for phase in ["naive", "plan"] {
        for key in ["tokens", "wall_s", "decisions_per_s", "peak_rss_mb"] {
            assert!(
                d[phase][key].as_f64().is_some_and(|x| x > 0.0),
                "{phase}.{key} missing or not positive: {d}"
            );
        }
    }
    assert_eq!(d["decisions"], 20, "{set}: two episodes of ten rounds");
    assert_eq!(d["limit"], 2);
    let diff = d["max_abs_diff"].as_f64().expect("max_abs_diff");
    assert!(diff <= 1e-5, "{set}: plan and naive predictions differ by {diff}");
    let (naive, plan) =
        (d["naive"]["tokens"].as_u64().unwrap(), d["plan"]["tokens"].as_u64().unwrap());
    let trie = d["trie_minimum_tokens"].as_u64().expect("trie_minimum_tokens");
    assert!(trie <= plan && plan < naive, "{set}: trie {trie}, plan {plan}, naive {naive}");
    let over = d["plan_over_trie"].as_f64().expect("plan_over_trie");
    assert!(over <= 1.10, "{set}: the plan computes {over:.3}x the trie minimum: {d}");
    // The baseline computes every prompt token: nothing reused.
    assert_eq!(d["naive"]["tokens_reused"], 0);
}

#[test]
fn bad_bench_options_fail_before_any_model_runs() {
    let model = model_dir("smollm2-135m-instruct");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench.json");
    let bench = || {
        let mut cmd = descry_bench();
        cmd.arg("--model")
            .arg(&model)
            .arg("--out")
            .arg(&out)
            .arg("--data")
            .arg(shared_dir().join("data"));
        cmd
    };
    let output = run(bench().args(["--data-set", "nope"]));
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("unknown data set `nope`") && err.contains("matrix-native"), "{err}");
    let output = run(bench().args(["--limit", "0"]));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--limit 0"));
    let output = run(bench().args(["--engine", "novalue"]));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--engine novalue"));
    // The backend checks its own table before any data is read: an unknown key is named.
    let output = run(bench().args(["--engine", "no_such_key=1", "--skip-full-plan"]));
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("no_such_key") && err.contains("rejects the settings"), "{err}");
    assert!(!out.exists(), "nothing is written when the options are wrong");
}
