//! Messages that must point the right way, through the real binary: a chat template that
//! runs away stops fast naming its file; a bad `--set` or `DESCRY_*` variable names itself,
//! the key and what was expected; a template that fails makes `descry inspect` fail; output
//! into a closed pipe ends quietly; an error chain is printed once.

use descry_e2e::*;
use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

const SMOLLM: &str = "smollm2-135m-instruct";
const GEMMA: &str = "gemma-3-270m";

/// A copy of a real model folder in `dir` whose `chat_template.jinja` is `template`: every
/// other file is a symbolic link to the real one, which is never modified.
fn model_with_template(real: &str, dir: &Path, template: &str) -> PathBuf {
    let src = model_dir(real);
    let copy = dir.join(format!("{real}-copy"));
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if name != "chat_template.jinja" {
            std::os::unix::fs::symlink(&path, copy.join(name)).unwrap();
        }
    }
    std::fs::write(copy.join("chat_template.jinja"), template).unwrap();
    copy
}

/// A study with one pair and one small game (a few episodes of the repeated matrix games).
fn study(dir: &Path, base: &Path, aligned: &Path, formats: (&str, &str)) -> PathBuf {
    let path = dir.join("study.toml");
    let text = format!(
        "[study]\nname = \"messages\"\n\n[[pairs]]\nname = \"p\"\n\
         base = {{ name = \"base\", path = {:?}, format = \"{}\" }}\n\
         aligned = {{ name = \"aligned\", path = {:?}, format = \"{}\" }}\n\n\
         [data]\nroot = {:?}\n\n[games.matrix]\ndata = \"akata\"\nlimit = 1\n",
        base.display().to_string(),
        formats.0,
        aligned.display().to_string(),
        formats.1,
        shared_dir().join("data").display().to_string(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs a command, killing it if it is still running after `limit` (a hang fails the
/// test instead of hanging it).
fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn descry");
    // Drain both pipes while waiting, so that a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).ok();
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        stderr.read_to_end(&mut v).ok();
        v
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            panic!("{cmd:?} still running after {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = Output { status, stdout: out_reader.join().unwrap(), stderr: err_reader.join().unwrap() };
    eprintln!("--- stderr of {:?}\n{}", cmd, String::from_utf8_lossy(&out.stderr));
    out
}

fn inspect(study: &Path) -> Command {
    let mut cmd = descry();
    cmd.arg("inspect").arg(study).args(["--format", "json"]);
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn a_template_that_loops_without_end_fails_fast_naming_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}x{% endfor %}{% endfor %}{% endfor %}";
    let aligned = model_with_template(SMOLLM, dir.path(), hostile);
    let study = study(dir.path(), &model_dir(GEMMA), &aligned, ("native", "native"));
    let started = Instant::now();
    let out = run_within(&mut inspect(&study), Duration::from_secs(60));
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    let file = aligned.join("chat_template.jinja").display().to_string();
    assert!(err.contains(&file) && err.contains("ran out of fuel") && err.contains("too much work"), "{err}");
    // Fuel stops it within a second or two; without it this runs for hours.
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

#[test]
fn a_template_that_writes_without_end_is_stopped_naming_its_file() {
    let dir = tempfile::tempdir().unwrap();
    // Few instructions, 10 GB of text: fuel alone would not stop it before memory runs out.
    let hostile = "{% for a in range(1000) %}{{ 'x' * 10000000 }}{% endfor %}";
    let aligned = model_with_template(SMOLLM, dir.path(), hostile);
    let study = study(dir.path(), &model_dir(GEMMA), &aligned, ("native", "native"));
    let out = run_within(&mut inspect(&study), Duration::from_secs(60));
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    let file = aligned.join("chat_template.jinja").display().to_string();
    assert!(err.contains(&file) && err.contains("wrote more than"), "{err}");
}

#[test]
fn the_real_templates_of_both_models_render() {
    let dir = tempfile::tempdir().unwrap();
    // Both models in the chat format: each renders the sample through its own template.
    let manifest = |m: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(model_dir(m).join("descry-model.json")).unwrap()).unwrap()
    };
    let gemma_format = if manifest(GEMMA)["has_chat_template"] == true { "chat" } else { "plain" };
    assert_eq!(manifest(SMOLLM)["has_chat_template"], true);
    let study = study(dir.path(), &model_dir(GEMMA), &model_dir(SMOLLM), (gemma_format, "chat"));
    let out = run_within(&mut inspect(&study), Duration::from_secs(120));
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut rendered = 0;
    for v in report["games"][0]["variants"].as_array().unwrap() {
        let sample = &v["sample"];
        let last = sample["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap();
        for model in ["base", "aligned"] {
            let text = sample["texts"][model].as_str().unwrap();
            assert!(!text.contains("(error:"), "{model}: {text}");
            assert!(text.contains(last.trim()) && text.ends_with("{\"decision\": \""), "{model}: {text}");
            rendered += 1;
        }
    }
    assert!(rendered >= 6, "{rendered} samples");
}

#[test]
fn inspect_fails_when_a_template_fails_naming_the_model_and_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let aligned = model_with_template(SMOLLM, dir.path(), "{{ raise_exception('this template refuses every prompt') }}");
    let study = study(dir.path(), &model_dir(GEMMA), &aligned, ("native", "native"));
    let out = run_within(&mut inspect(&study), Duration::from_secs(60));
    let err = stderr(&out);
    assert!(!out.status.success(), "inspect succeeded although a template failed:\n{err}");
    assert!(err.contains("model `aligned`") && err.contains("this template refuses every prompt"), "{err}");
    // What could be inspected is still printed.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the report is printed");
    assert_eq!(report["games"][0]["name"], "matrix");
}

#[test]
fn an_empty_template_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let aligned = model_with_template(SMOLLM, dir.path(), "");
    let study = study(dir.path(), &model_dir(GEMMA), &aligned, ("native", "native"));
    let out = run_within(&mut inspect(&study), Duration::from_secs(60));
    let err = stderr(&out);
    assert!(!out.status.success(), "an empty template was accepted:\n{err}");
    let file = aligned.join("chat_template.jinja").display().to_string();
    assert!(err.contains(&file) && err.contains("empty"), "{err}");
}

fn config(study: &Path, env: &[(&str, &str)], set: &[&str]) -> Output {
    let mut cmd = descry();
    cmd.arg("config").arg(study);
    for s in set {
        cmd.args(["--set", s]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

fn empty_study(dir: &Path) -> PathBuf {
    let path = dir.join("study.toml");
    std::fs::write(&path, "").unwrap();
    path
}






