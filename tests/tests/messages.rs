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
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn descry");
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
    let out =
        Output { status, stdout: out_reader.join().unwrap(), stderr: err_reader.join().unwrap() };
    eprintln!("--- stderr of {:?}\n{}", cmd, String::from_utf8_lossy(&out.stderr));
    out
}

fn inspect(study: &Path) -> Command {
    let mut cmd = descry();
    cmd.arg("inspect").arg(study).args(["--format", "json"]);
    cmd
}

#[test]
fn a_template_that_loops_without_end_fails_fast_naming_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}x{% endfor %}{% endfor %}{% endfor %}";
    let aligned = model_with_template(SMOLLM, dir.path(), hostile);
    let study = study(dir.path(), &model_dir(GEMMA), &aligned, ("native", "native"));
    let started = Instant::now();
    let out = run_within(&mut inspect(&study), Duration::from_secs(60));
    let err = stderr_text(&out);
    assert!(!out.status.success(), "{err}");
    let file = aligned.join("chat_template.jinja").display().to_string();
    assert!(
        err.contains(&file) && err.contains("ran out of fuel") && err.contains("too much work"),
        "{err}"
    );
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
    let err = stderr_text(&out);
    assert!(!out.status.success(), "{err}");
    let file = aligned.join("chat_template.jinja").display().to_string();
    assert!(err.contains(&file) && err.contains("wrote more than"), "{err}");
}

#[test]
fn the_real_templates_of_both_models_render() {
    let dir = tempfile::tempdir().unwrap();
    // Both models in the chat format: each renders the sample through its own template.
    let manifest = |m: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(model_dir(m).join("descry-model.json")).unwrap(),
        )
        .unwrap()
    };
    let gemma_format = if manifest(GEMMA)["has_chat_template"] == true { "chat" } else { "plain" };
    assert_eq!(manifest(SMOLLM)["has_chat_template"], true);
    let study = study(dir.path(), &model_dir(GEMMA), &model_dir(SMOLLM), (gemma_format, "chat"));
    let out = run_within(&mut inspect(&study), Duration::from_secs(120));
    assert!(out.status.success(), "{}", stderr_text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut rendered = 0;
    for v in report["games"][0]["variants"].as_array().unwrap() {
        let sample = &v["sample"];
        let last =
            sample["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap();
        for model in ["base", "aligned"] {
            let text = sample["texts"][model].as_str().unwrap();
            assert!(!text.contains("(error:"), "{model}: {text}");
            assert!(
                text.contains(last.trim()) && text.ends_with("{\"decision\": \""),
                "{model}: {text}"
            );
            rendered += 1;
        }
    }
    assert!(rendered >= 6, "{rendered} samples");
}

#[test]
fn inspect_fails_when_a_template_fails_naming_the_model_and_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let aligned = model_with_template(
        SMOLLM,
        dir.path(),
        "{{ raise_exception('this template refuses every prompt') }}",
    );
    let study = study(dir.path(), &model_dir(GEMMA), &aligned, ("native", "native"));
    let out = run_within(&mut inspect(&study), Duration::from_secs(60));
    let err = stderr_text(&out);
    assert!(!out.status.success(), "inspect succeeded although a template failed:\n{err}");
    assert!(
        err.contains("model `aligned`") && err.contains("this template refuses every prompt"),
        "{err}"
    );
    // What could be inspected is still printed.
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the report is printed");
    assert_eq!(report["games"][0]["name"], "matrix");
}

#[test]
fn an_empty_template_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let aligned = model_with_template(SMOLLM, dir.path(), "");
    let study = study(dir.path(), &model_dir(GEMMA), &aligned, ("native", "native"));
    let out = run_within(&mut inspect(&study), Duration::from_secs(60));
    let err = stderr_text(&out);
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

#[test]
fn a_bad_set_value_names_the_argument_the_key_and_the_type() {
    let dir = tempfile::tempdir().unwrap();
    let study = empty_study(dir.path());
    for (arg, key, expected) in [
        ("filters.min_mass=high", "filters.min_mass", "f64"),
        ("backend.threads=many", "backend.threads", "usize"),
        ("backend.prefix_reuse=3", "backend.prefix_reuse", "bool"),
    ] {
        let out = config(&study, &[], &[arg]);
        let err = stderr_text(&out);
        assert!(!out.status.success(), "{arg}");
        assert!(
            err.contains(&format!("--set {arg}"))
                && err.contains(&format!("`{key}`"))
                && err.contains(expected),
            "{err}"
        );
        assert!(!err.contains("config.rs") && !err.contains("toml::value"), "{err}");
    }
}

#[test]
fn a_malformed_set_key_says_so_and_shows_the_form() {
    let dir = tempfile::tempdir().unwrap();
    let study = empty_study(dir.path());
    for arg in ["backend..threads=4", ".threads=4", "backend.=4", "=4", "back end.threads=4"] {
        let out = config(&study, &[], &[arg]);
        let err = stderr_text(&out);
        assert!(!out.status.success(), "{arg}");
        assert!(
            err.contains(&format!("--set {arg}"))
                && err.contains("malformed")
                && err.contains("section.key=value"),
            "{err}"
        );
        assert!(!err.contains("BackendOptions"), "{err}");
    }
}

#[test]
fn a_descry_variable_that_names_no_key_is_an_error_with_the_right_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let study = empty_study(dir.path());
    let out = config(&study, &[("DESCRY_BACKEND_THREADS", "4")], &[]);
    let err = stderr_text(&out);
    assert!(!out.status.success(), "DESCRY_BACKEND_THREADS was ignored silently");
    assert!(
        err.contains("DESCRY_BACKEND_THREADS") && err.contains("DESCRY_BACKEND__THREADS"),
        "{err}"
    );
    let out = config(&study, &[("DESCRY_NOTHING", "1")], &[]);
    assert!(
        !out.status.success() && stderr_text(&out).contains("DESCRY_NOTHING"),
        "{}",
        stderr_text(&out)
    );
    // An empty part, which figment drops silently.
    let out = config(&study, &[("DESCRY_BACKEND____THREADS", "4")], &[]);
    assert!(
        !out.status.success() && stderr_text(&out).contains("DESCRY_BACKEND____THREADS"),
        "{}",
        stderr_text(&out)
    );
    // A wrong key or value names the variable.
    let out = config(&study, &[("DESCRY_BACKEND__THREAD", "4")], &[]);
    let err = stderr_text(&out);
    assert!(
        !out.status.success() && err.contains("DESCRY_BACKEND__THREAD") && err.contains("threads"),
        "{err}"
    );
    let out = config(&study, &[("DESCRY_BACKEND__THREADS", "many")], &[]);
    let err = stderr_text(&out);
    assert!(
        !out.status.success() && err.contains("DESCRY_BACKEND__THREADS") && err.contains("usize"),
        "{err}"
    );
    // The variables descry uses for other things are not study keys and not errors.
    let others = [
        ("DESCRY_HOME", "/tmp"),
        ("DESCRY_BIN", "/bin/true"),
        ("DESCRY_SMOLLM2_GGUF", "x.gguf"),
        ("DESCRY_GEMMA3_GGUF", "y.gguf"),
        ("DESCRY_GOLDEN", "g.jsonl"),
        ("DESCRY_KEEP_IMPORT", "1"),
        ("DESCRY_BACKEND__THREADS", "3"),
    ];
    let out = config(&study, &others, &["backend.batch_tokens=5"]);
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("threads = 3"));
}

#[test]
fn the_primary_metric_error_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let study = study(dir.path(), &model_dir(GEMMA), &model_dir(SMOLLM), ("native", "native"));
    for (set, key) in [
        ("analysis.primary_metric=nope", "analysis.primary_metric"),
        ("analysis.metrics=[\"pearson\", \"nope\"]", "analysis.metrics"),
    ] {
        let out = run(descry()
            .arg("run")
            .arg(&study)
            .arg("--out")
            .arg(dir.path().join("out"))
            .args(["--set", set]));
        let err = stderr_text(&out);
        assert!(!out.status.success(), "{set}");
        assert!(
            err.contains(&format!("config key `{key}`")) && err.contains("`nope`"),
            "{set}: {err}"
        );
        assert!(
            !dir.path().join("out/predictions").exists(),
            "scoring started despite a bad metric"
        );
    }
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let study = empty_study(dir.path());
    let commands: [&[&str]; 3] =
        [&["plugins", "--format", "json"], &["plugins"], &["config", "STUDY", "--format", "json"]];
    for args in commands {
        // The reader is closed before descry writes a byte: every write hits a closed pipe.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = descry();
        for a in args {
            if *a == "STUDY" {
                cmd.arg(&study);
            } else {
                cmd.arg(a);
            }
        }
        let out = cmd.stdout(writer).stderr(Stdio::piped()).output().unwrap();
        let err = stderr_text(&out);
        use std::os::unix::process::ExitStatusExt;
        // Linux's SIGPIPE: the conventional end of a writer whose reader left (`| head`).
        const SIGPIPE: i32 = 13;
        assert!(
            out.status.success() || out.status.signal() == Some(SIGPIPE),
            "{args:?}: {:?}\n{err}",
            out.status
        );
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

#[test]
fn an_error_and_its_cause_are_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    // A template that does not compile, through a command that opens the folder directly.
    let broken = model_with_template(SMOLLM, dir.path(), "{% for %}");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\": 1, \"text\": \"Hello\"}\n").unwrap();
    let out = run(descry().args(["score", "--model"]).arg(&broken).arg("--input").arg(&input));
    let err = stderr_text(&out);
    assert!(!out.status.success());
    assert_eq!(err.matches("syntax error").count(), 1, "{err}");
    assert!(err.contains(&broken.join("chat_template.jinja").display().to_string()), "{err}");
    // A model folder that does not exist, through `descry run` (an error with a key and a cause).
    let study = study(
        dir.path(),
        Path::new("/nonexistent/model-folder"),
        &model_dir(SMOLLM),
        ("native", "native"),
    );
    let out = run(descry().arg("run").arg(&study).arg("--out").arg(dir.path().join("out")));
    let err = stderr_text(&out);
    assert!(!out.status.success());
    assert!(err.contains("pairs[0].base.path"), "{err}");
    assert_eq!(err.matches("does not exist").count(), 1, "{err}");
}
