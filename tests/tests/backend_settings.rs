//! A backend's own settings (`[backend.PLUGIN]`) are checked by the backend when the study
//! is prepared: a wrong value fails `descry run` before any data is read, naming the key
//! and the file; a key that moved out of `[backend]` says where it went.

use descry_e2e::*;
use std::path::Path;

/// A study of the real models on the real matrix data, with `backend` as its `[backend]`
/// tables.
fn study(dir: &Path, backend: &str) -> std::path::PathBuf {
    let path = dir.join("study.toml");
    let text = format!(
        "[study]\nname = \"settings\"\noutput = \"{out}\"\n\n[data]\nroot = \"{data}\"\n\n\
         [[pairs]]\nname = \"demo\"\nbase = {{ path = \"{base}\" }}\naligned = {{ path = \"{aligned}\" }}\n\n\
         {backend}\n\n[games.matrix]\ndata = \"akata\"\nparams = {{ set = \"repeated\" }}\nlimit = 1\n",
        out = dir.join("run").display(),
        data = shared_dir().join("data").display(),
        base = model_dir("gemma-3-270m").display(),
        aligned = model_dir("smollm2-135m-instruct").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn failed_run(study: &Path) -> String {
    let out = run(descry().arg("run").arg(study));
    assert!(!out.status.success(), "the run succeeded: {}", stderr_text(&out));
    stderr_text(&out)
}

#[test]
fn a_wrong_engine_value_fails_before_any_data_is_read_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let study = study(
        dir.path(),
        "[backend]\nthreads = 1\n\n[backend.onnx]\ngraph_optimization = \"fastest\"\n",
    );
    let err = failed_run(&study);
    assert!(err.contains("config key `backend.onnx.graph_optimization`"), "{err}");
    assert!(err.contains(&format!("study file {}", study.display())), "{err}");
    assert!(err.contains("fastest"), "{err}");
    // Nothing was loaded or written: no game line, no run folder.
    assert!(!err.contains("game matrix:"), "{err}");
    assert!(!dir.path().join("run").exists());
}

#[test]
fn an_unknown_engine_key_and_a_wrong_type_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let study = study(
        dir.path(),
        "[backend.onnx]\ngraph_optimisation = \"all\"\nmin_shared_prefix = \"long\"\n",
    );
    let err = failed_run(&study);
    assert!(err.contains("config key `backend.onnx.graph_optimisation`"), "{err}");
    assert!(err.contains("graph_optimization"), "the known keys are listed: {err}");
    // A --set value is named as such.
    let out = run(descry().arg("run").arg(&study).args([
        "--set",
        "backend.onnx={}",
        "--set",
        "backend.onnx.min_shared_prefix=-3",
    ]));
    assert!(!out.status.success());
    let err = stderr_text(&out);
    assert!(err.contains("config key `backend.onnx.min_shared_prefix` from --set"), "{err}");
}

#[test]
fn keys_that_moved_into_the_backend_table_say_where() {
    let dir = tempfile::tempdir().unwrap();
    for (old, new) in [
        ("graph_optimization = \"all\"", "graph_optimization"),
        ("ort_library = \"/x.so\"", "library"),
    ] {
        let study = study(dir.path(), &format!("[backend]\n{old}\n"));
        for command in ["run", "config"] {
            let out = run(descry().arg(command).arg(&study));
            assert!(!out.status.success(), "{command} accepted {old}");
            let err = stderr_text(&out);
            let key = old.split(' ').next().unwrap();
            assert!(err.contains(&format!("config key `backend.{key}`")), "{err}");
            assert!(err.contains(&format!("`{new} = ...` under `[backend.onnx]`")), "{err}");
            assert!(err.contains(&study.display().to_string()), "{err}");
        }
    }
}

#[test]
fn an_engine_table_layers_like_any_other_key() {
    let dir = tempfile::tempdir().unwrap();
    let study = study(dir.path(), "[backend.onnx]\ngraph_optimization = \"basic\"\n");
    let v = run_json(descry().arg("config").arg(&study).args(["--format", "json"]));
    assert_eq!(v["backend"]["onnx"]["graph_optimization"], "basic");
    let v = run_json(descry().arg("config").arg(&study).args([
        "--format",
        "json",
        "--set",
        "backend.onnx.graph_optimization=extended",
    ]));
    assert_eq!(v["backend"]["onnx"]["graph_optimization"], "extended");
}
