//! Model folders that cannot be wrong without saying so (issue 12), end to end over the
//! built `descry` binary and the real models: a broken model is found before anything is
//! scored; `descry import --force` replaces only a model folder; a manifest that disagrees
//! with its graph is named at load; messages name what a user can actually set or run.
//!
//! The real folders in `$DESCRY_HOME/models` are never changed: each test works on a copy
//! in a temporary folder whose big files are hard links, and a file a test damages is first
//! replaced by a real copy.

use descry_e2e::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const GEMMA: &str = "gemma-3-270m";
const SMOL: &str = "smollm2-135m-instruct";

/// Copies the real model folder `name` into `dest` (hard links where the file system allows,
/// so nothing big is copied) and returns the copy.
fn copy_model(name: &str, dest: &Path) -> PathBuf {
    let src = model_dir(name);
    let out = dest.join(name);
    std::fs::create_dir_all(&out).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let to = out.join(e.file_name());
        if std::fs::hard_link(e.path(), &to).is_err() {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
    out
}

/// Replaces a (possibly hard-linked) file of a copy by a file of its own with `bytes`, so
/// the real folder is untouched.
fn replace_file(path: &Path, bytes: &[u8]) {
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn read_manifest(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("descry-model.json")).unwrap()).unwrap()
}

fn write_manifest(dir: &Path, manifest: &Value) {
    replace_file(
        &dir.join("descry-model.json"),
        serde_json::to_string_pretty(manifest).unwrap().as_bytes(),
    );
}

/// A quickstart-like study over a base and an aligned model folder, one small game.
fn write_study(dir: &Path, base: &Path, aligned: &Path) -> PathBuf {
    let study = dir.join("study.toml");
    let text = format!(
        r#"[study]
name = "integrity"

[[pairs]]
name = "demo"
base = {{ name = "{GEMMA}", path = "{}" }}
aligned = {{ name = "{SMOL}", path = "{}" }}

[backend]
threads = 2
batch_tokens = 1024

[data]
root = "{}"

[games.lottery]
data = "choices13k"
params = {{ feedback = false }}
variants = ["native"]
limit = 3

[analysis]
bootstrap = 10
"#,
        base.display(),
        aligned.display(),
        shared_dir().join("data").display()
    );
    std::fs::write(&study, text).unwrap();
    study
}

/// Issue 12, case 12: the second model's graph is cut off (or missing). The run must fail
/// in its checks, before the first model scores anything, naming the file and its sizes.
#[test]
fn a_broken_second_model_fails_before_anything_is_scored() {
    let tmp = tempfile::tempdir().unwrap();
    let smol = copy_model(SMOL, tmp.path());
    let full = std::fs::metadata(smol.join("model.onnx")).unwrap().len();
    // A cut-off copy: the first MiB of the real graph.
    let head = {
        use std::io::Read;
        let mut buf = vec![0u8; 1 << 20];
        std::fs::File::open(model_dir(SMOL).join("model.onnx"))
            .unwrap()
            .read_exact(&mut buf)
            .unwrap();
        buf
    };
    replace_file(&smol.join("model.onnx"), &head);
    let study = write_study(tmp.path(), &model_dir(GEMMA), &smol);
    let out_dir = tmp.path().join("run");
    let out = run(descry().arg("run").arg(&study).arg("--out").arg(&out_dir));
    assert!(!out.status.success(), "a run with a truncated model.onnx succeeded");
    let err = stderr_text(&out);
    assert!(
        err.contains("pairs[0].aligned.path") && err.contains(&smol.display().to_string()),
        "{err}"
    );
    assert!(
        err.contains("model.onnx has 1048576 bytes") && err.contains(&format!("records {full}")),
        "{err}"
    );
    assert!(err.contains("descry import") && err.contains("--force"), "{err}");
    assert!(
        !out_dir.join("predictions").exists(),
        "the first model was scored before the broken one was found"
    );

    // A missing graph: found the same way.
    std::fs::remove_file(smol.join("model.onnx")).unwrap();
    let out = run(descry().arg("run").arg(&study).arg("--out").arg(&out_dir));
    assert!(!out.status.success());
    let err = stderr_text(&out);
    assert!(
        err.contains("model.onnx is missing") && err.contains(&smol.display().to_string()),
        "{err}"
    );
    assert!(
        !out_dir.join("predictions").exists(),
        "the first model was scored before the broken one was found"
    );
}

/// Issue 12, case 9: `--force` never deletes a folder holding a user's files, and the error
/// does not suggest it; a real model folder is replaced, leaving nothing beside it.
#[test]
fn import_force_replaces_a_model_folder_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let gguf = descry_home().join("gguf/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(gguf.is_file(), "{} is missing: run scripts/setup-models.sh", gguf.display());

    let mine = tmp.path().join("my-work");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "mine").unwrap();
    for force in [false, true] {
        let mut cmd = descry();
        cmd.arg("import").arg(&gguf).arg("--out").arg(&mine);
        if force {
            cmd.arg("--force");
        }
        let out = run(&mut cmd);
        assert!(
            !out.status.success(),
            "import into a folder of user files succeeded (force: {force})"
        );
        let err = stderr_text(&out);
        assert!(err.contains(&mine.display().to_string()) && err.contains("notes.txt"), "{err}");
        assert!(err.contains("not a model folder"), "{err}");
        assert!(!err.contains("--force"), "suggests --force, which refuses this folder: {err}");
        assert_eq!(std::fs::read_to_string(mine.join("notes.txt")).unwrap(), "mine");
    }

    // A copy of the real model folder, its manifest marked so the replacement shows.
    let models = tmp.path().join("models");
    let copy = copy_model(SMOL, &models);
    let mut m = read_manifest(&copy);
    m["name"] = "stale".into();
    write_manifest(&copy, &m);
    let out = run(descry()
        .arg("import")
        .arg(&gguf)
        .arg("--out")
        .arg(&copy)
        .arg("--name")
        .arg(SMOL)
        .arg("--force"));
    assert!(out.status.success(), "{}", stderr_text(&out));
    let m = read_manifest(&copy);
    assert_eq!(m["name"], SMOL);
    // The new manifest records the graph's size, and it is the graph's size.
    assert_eq!(m["format"], 2);
    let recorded = m["artifacts"]["onnx"]["model.onnx"].as_u64().expect("onnx artifacts");
    assert_eq!(recorded, std::fs::metadata(copy.join("model.onnx")).unwrap().len());
    let left: Vec<String> = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, [SMOL], "partial or replaced folders left behind");
    // The real folder is untouched.
    assert_eq!(read_manifest(&model_dir(SMOL))["name"], SMOL);
}

/// One prompt for `descry score`.
fn score_input(dir: &Path) -> PathBuf {
    let p = dir.join("in.jsonl");
    std::fs::write(&p, "{\"id\": 1, \"text\": \"The answer is\"}\n").unwrap();
    p
}

/// Issue 12, "a manifest/graph mismatch surfaces as ONNX Runtime's `Got invalid dimensions
/// for input: past.0.key`": the backend compares them at load and names the field.
#[test]
fn a_manifest_that_disagrees_with_the_graph_is_named_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let smol = copy_model(SMOL, tmp.path());
    let input = score_input(tmp.path());
    let original = read_manifest(&smol);
    for field in ["num_kv_heads", "head_dim", "num_layers"] {
        let mut m = original.clone();
        let real = m[field].as_u64().unwrap();
        m[field] = (real + 1).into();
        write_manifest(&smol, &m);
        let out = run(descry()
            .arg("score")
            .arg("--model")
            .arg(&smol)
            .arg("--input")
            .arg(&input)
            .arg("--threads")
            .arg("2"));
        assert!(!out.status.success(), "{field} edited, yet scoring succeeded");
        let err = stderr_text(&out);
        assert!(err.contains(&smol.display().to_string()), "{err}");
        assert!(
            err.contains(&format!("says {field} = {}", real + 1))
                && err.contains(&format!("has {real}")),
            "{err}"
        );
        assert!(!err.contains("invalid dimensions"), "{err}");
    }
    // The manifest as imported loads and scores.
    write_manifest(&smol, &original);
    let out = run(descry()
        .arg("score")
        .arg("--model")
        .arg(&smol)
        .arg("--input")
        .arg(&input)
        .arg("--threads")
        .arg("2"));
    assert!(out.status.success(), "{}", stderr_text(&out));
}

/// Issue 12, messages that point the wrong way: a missing ONNX Runtime library names the
/// study key (in the backend's own table) and the environment variable a user can set and
/// the script that installs it (no backend-internal `ort_dylib`); a missing model folder
/// names the real setup script.
#[test]
fn messages_name_what_a_user_can_set_or_run() {
    let tmp = tempfile::tempdir().unwrap();
    let input = score_input(tmp.path());
    let out = run(descry()
        .arg("score")
        .arg("--model")
        .arg(model_dir(SMOL))
        .arg("--input")
        .arg(&input)
        .arg("--engine")
        .arg(format!("library={}", tmp.path().join("libonnxruntime.so").display())));
    assert!(!out.status.success());
    let err = stderr_text(&out);
    assert!(err.contains("backend.onnx.library") && err.contains("ORT_DYLIB_PATH"), "{err}");
    assert!(err.contains("scripts/setup-models.sh") && !err.contains("ort_dylib"), "{err}");

    let out = run(descry()
        .arg("score")
        .arg("--model")
        .arg(tmp.path().join("no-model"))
        .arg("--input")
        .arg(&input));
    assert!(!out.status.success());
    let err = stderr_text(&out);
    assert!(err.contains("scripts/setup-models.sh") && !err.contains("scripts/setup.sh"), "{err}");
    let scripts: Vec<String> = std::fs::read_dir(repo_root().join("scripts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(scripts.contains(&"setup-models.sh".to_string()), "{scripts:?}");
}
