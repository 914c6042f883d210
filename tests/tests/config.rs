//! Config layering through the real binary: defaults < study file < DESCRY_* < --set, and
//! errors that name the key or the file.

use descry_e2e::*;

fn merged(study: &std::path::Path, env: &[(&str, &str)], set: &[&str]) -> serde_json::Value {
    let mut cmd = descry();
    cmd.arg("config").arg(study).args(["--format", "json"]);
    for s in set {
        cmd.args(["--set", s]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_json(&mut cmd)
}

#[test]
fn each_layer_overrides_the_one_below() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study.toml");
    std::fs::write(&study, "[backend]\nthreads = 3\nbatch_tokens = 1000\ndevice = \"cpu\"\n[filters]\nmin_mass = 0.5\n").unwrap();

    // Default only (not in the file).
    let v = merged(&study, &[], &[]);
    assert_eq!(v["filters"]["min_correlation"], 0.3);
    assert_eq!(v["backend"]["prefix_reuse"], true);
    // File over default.
    assert_eq!(v["backend"]["threads"], 3);
    assert_eq!(v["filters"]["min_mass"], 0.5);
    // Environment over file.
    let v = merged(
        &study,
        &[("DESCRY_BACKEND__THREADS", "5"), ("DESCRY_HOME", "/not/a/study/key")],
        &[],
    );
    assert_eq!(v["backend"]["threads"], 5);
    assert_eq!(v["backend"]["batch_tokens"], 1000);
    // --set over environment.
    let v = merged(
        &study,
        &[("DESCRY_BACKEND__THREADS", "5")],
        &["backend.threads=7", "filters.min_mass=0.9"],
    );
    assert_eq!(v["backend"]["threads"], 7);
    assert_eq!(v["filters"]["min_mass"], 0.9);
}

fn config_error(study_text: Option<&str>, set: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study.toml");
    if let Some(text) = study_text {
        std::fs::write(&study, text).unwrap();
    }
    let mut cmd = descry();
    cmd.arg("config").arg(&study);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = run(&mut cmd);
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).replace(&dir.path().display().to_string(), "DIR")
}

#[test]
fn unknown_key_names_the_key_and_the_file() {
    let err = config_error(Some("[backend]\nthread = 2\n"), &[]);
    assert!(
        err.contains("backend.thread") && err.contains("DIR/study.toml") && err.contains("threads"),
        "{err}"
    );
}

#[test]
fn wrong_type_names_the_key_and_the_file() {
    let err = config_error(Some("[backend]\nthreads = \"many\"\n"), &[]);
    assert!(
        err.contains("backend.threads") && err.contains("DIR/study.toml") && err.contains("string"),
        "{err}"
    );
    let err = config_error(Some(""), &["filters.min_mass=high"]);
    assert!(err.contains("filters.min_mass"), "{err}");
}

#[test]
fn missing_file_names_the_file() {
    let err = config_error(None, &[]);
    assert!(err.contains("DIR/study.toml") && err.contains("No such file"), "{err}");
}
