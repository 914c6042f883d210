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






