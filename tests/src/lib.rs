//! Helpers for descry's end-to-end tests: where the built binary, the plugins, the shared
//! data and the models are. The tests run the real `descry` binary, so it and the plugins
//! must be built first (`scripts/test.sh` does that); a missing piece fails the test with
//! the command that builds it, never skips it.
#![deny(missing_docs)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The cargo target folder holding `descry` and the plugin libraries (the parent of the
/// test executable's `deps/` folder).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps folder");
    deps.parent().expect("target folder").to_path_buf()
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

/// `../shared` beside the repository: real human data and reference values.
pub fn shared_dir() -> PathBuf {
    let dir = repo_root().join("../shared");
    assert!(
        dir.join("data").is_dir(),
        "../shared/data not found beside the repository at {}",
        dir.display()
    );
    dir
}

/// `$DESCRY_HOME` (default `$HOME/.cache/descry`), where the setup script puts models and
/// the ONNX Runtime library.
pub fn descry_home() -> PathBuf {
    match std::env::var_os("DESCRY_HOME") {
        Some(home) => PathBuf::from(home),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/descry"),
    }
}

/// The path of the built `descry` binary.
pub fn descry_bin() -> PathBuf {
    let bin = target_dir().join("descry");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build --workspace` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A `descry` command running in the repository root.
pub fn descry() -> Command {
    let mut cmd = Command::new(descry_bin());
    cmd.current_dir(repo_root());
    cmd
}

/// A `descry-bench` command (the benchmark's own binary, built beside `descry` and the
/// plugins) running in the repository root.
pub fn descry_bench() -> Command {
    let bin = target_dir().join("descry-bench");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build --workspace` (scripts/test.sh does)",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.current_dir(repo_root());
    cmd
}

/// Runs a command and returns its output, printing stderr for the test log.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn descry");
    eprintln!("--- stderr of {:?}\n{}", cmd, String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs a command that must succeed and parses its stdout as JSON.
pub fn run_json(cmd: &mut Command) -> serde_json::Value {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "command failed: {:?}\n{}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout))
    })
}

/// The built library of a workspace cdylib crate (e.g. `fixture_panicking_game`).
pub fn built_library(lib_name: &str) -> PathBuf {
    let file = target_dir().join(format!("lib{lib_name}.so"));
    assert!(file.is_file(), "{} is missing: run `cargo build --workspace`", file.display());
    file
}

/// A model folder imported by the setup (`$DESCRY_HOME/models/NAME`).
pub fn model_dir(name: &str) -> PathBuf {
    let dir = descry_home().join("models").join(name);
    assert!(
        dir.join("descry-model.json").is_file(),
        "{} is missing: run scripts/setup-models.sh (scripts/test.sh does) to fetch and import the models",
        dir.display()
    );
    dir
}

/// The golden reference lines of one model.
pub fn golden(model: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(shared_dir().join("reference/golden_logprobs.jsonl"))
        .expect("golden file");
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("golden JSON"))
        .filter(|v| v["model"] == model)
        .collect()
}

/// A command's standard error as text (for assertions on its messages).
pub fn stderr_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
