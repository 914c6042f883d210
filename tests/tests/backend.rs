//! The onnx backend plugin through the real binary: the same decision scored alone, inside
//! its episode's transcript, and after a reused prefix gives the same log-probs; errors a
//! user can cause are clear.

use descry_e2e::*;
use std::path::Path;

const STUDY: &str = r#"
[study]
name = "same decision, three ways"

[[pairs]]
name = "demo"
base = { name = "gemma-3-270m", path = "$DESCRY_HOME/models/gemma-3-270m" }
aligned = { name = "smollm2-135m-instruct", path = "$DESCRY_HOME/models/smollm2-135m-instruct" }

[backend]
threads = 2
batch_tokens = 2048

[games.matrix]
data = "akata"
variants = ["transcript"]
limit = 1

[analysis]
bootstrap = 0
"#;

/// Rows of every predictions file: (decision, prediction, option_probs JSON).
fn rows(run_dir: &Path) -> Vec<(String, f64, serde_json::Value)> {
    let mut out = Vec::new();
    for model in ["gemma-3-270m.plain", "smollm2-135m-instruct.chat"] {
        let file = run_dir.join("predictions").join(model).join("matrix/transcript.csv");
        let mut reader = csv::Reader::from_path(&file).unwrap();
        let h = reader.headers().unwrap().clone();
        let c = |n: &str| h.iter().position(|x| x == n).unwrap();
        for r in reader.records() {
            let r = r.unwrap();
            out.push((
                format!("{model}/{}", &r[c("decision")]),
                r[c("prediction")].parse().unwrap(),
                serde_json::from_str(&r[c("option_probs")]).unwrap(),
            ));
        }
    }
    out
}

fn run_study(dir: &Path, extra: &[&str]) -> Vec<(String, f64, serde_json::Value)> {
    let study = dir.join("study.toml");
    std::fs::write(&study, STUDY).unwrap();
    let out_dir = dir.join(extra.join("_").replace(['=', '-', '.'], ""));
    let mut cmd = descry();
    cmd.arg("run").arg(&study).arg("--out").arg(&out_dir);
    cmd.arg("--set").arg(format!("data.root=\"{}\"", shared_dir().join("data").display()));
    cmd.args(extra);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    rows(&out_dir)
}

#[test]
fn a_decision_alone_in_a_transcript_and_after_a_reused_prefix_scores_the_same() {
    model_dir("gemma-3-270m");
    model_dir("smollm2-135m-instruct");
    let dir = tempfile::tempdir().unwrap();
    let alone = run_study(dir.path(), &["--naive", "--set", "backend.prefix_reuse=false"]);
    let reused = run_study(dir.path(), &["--naive"]);
    let transcript = run_study(dir.path(), &[]);
    assert_eq!(alone.len(), 20, "one episode of 10 rounds, two models");
    let mut worst: f64 = 0.0;
    for other in [&reused, &transcript] {
        assert_eq!(other.len(), alone.len());
        for (a, b) in alone.iter().zip(other.iter()) {
            assert_eq!(a.0, b.0);
            worst = worst.max((a.1 - b.1).abs());
            for (option, p) in a.2.as_object().unwrap() {
                worst = worst.max((p.as_f64().unwrap() - b.2[option].as_f64().unwrap()).abs());
            }
        }
    }
    eprintln!("largest difference between alone, reused prefix and transcript: {worst:.2e}");
    assert!(worst <= 1e-5, "{worst}");
}

fn score_error(extra: &[&str], input: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.jsonl");
    std::fs::write(&file, input).unwrap();
    let out = run(descry()
        .args(["score", "--model"])
        .arg(model_dir("smollm2-135m-instruct"))
        .arg("--input")
        .arg(&file)
        .args(extra));
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn asking_for_cuda_without_it_says_why_the_provider_could_not_load() {
    let err = score_error(&["--device", "cuda:0"], "{\"id\": 1, \"text\": \"Hello\"}\n");
    assert!(
        err.contains("CUDA execution provider could not be loaded") && err.contains("cuda:0"),
        "{err}"
    );
}

#[test]
fn user_errors_are_clear() {
    let err = score_error(&[], "{\"id\": 1, \"input_ids\": [1, 99999999]}\n");
    assert!(err.contains("99999999") && err.contains("outside the vocabulary"), "{err}");
    let err = score_error(&[], "{\"id\": 1, \"text\": \"Hello\", \"positions\": [40]}\n");
    assert!(err.contains("position 40"), "{err}");
    // A library that is not ONNX Runtime (or another version of it without this API).
    let not_ort = target_dir().join("libdescry_metrics.so");
    let err = score_error(
        &["--engine", &format!("library={}", not_ort.display())],
        "{\"id\": 1, \"text\": \"Hello\"}\n",
    );
    assert!(err.contains("ONNX Runtime library") && err.contains("OrtGetApiBase"), "{err}");
    // A model folder missing a file.
    let dir = tempfile::tempdir().unwrap();
    let src = model_dir("smollm2-135m-instruct");
    for f in ["descry-model.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]
    {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\": 1, \"text\": \"Hello\"}\n").unwrap();
    let out = run(descry().args(["score", "--model"]).arg(dir.path()).arg("--input").arg(&input));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("model.onnx"), "{err}");
}
