//! `descry run` end to end on real data and real models: a run killed with SIGKILL and
//! started again ends with the same predictions as an uninterrupted run; the report's
//! metrics equal those recomputed from the predictions; bad config fails before scoring.

use descry_e2e::*;
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

fn tiny_run(out: &Path) -> Command {
    let mut cmd = descry();
    cmd.arg("run")
        .arg(repo_root().join("tests/fixtures/tiny-study.toml"))
        .arg("--out")
        .arg(out)
        .arg("--set")
        .arg(format!("data.root=\"{}\"", shared_dir().join("data").display()));
    cmd
}

/// Every predictions file of a run, sorted by path, with its rows.
fn predictions(run_dir: &Path) -> Vec<(PathBuf, Vec<csv::StringRecord>)> {
    let mut files = Vec::new();
    let mut stack = vec![run_dir.join("predictions")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "csv") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let rows = csv::Reader::from_path(&f).unwrap().records().map(|r| r.unwrap()).collect();
            (f.strip_prefix(run_dir).unwrap().to_path_buf(), rows)
        })
        .collect()
}

fn ensure_models() {
    model_dir("gemma-3-270m");
    model_dir("smollm2-135m-instruct");
}

#[test]
fn a_killed_run_resumes_to_the_same_predictions() {
    ensure_models();
    let full = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = run(&mut tiny_run(full.path()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let full_seconds = started.elapsed().as_secs_f64();
    let expected = predictions(full.path());
    assert_eq!(expected.len(), 6, "2 models × (2 matrix variants + 1 lottery)");

    // Kill at a point drawn from the uninterrupted run's duration, seeded by the clock.
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let fraction = 0.2 + 0.6 * (nanos % 1000) as f64 / 1000.0;
    let kill_after = Duration::from_secs_f64(full_seconds * fraction);
    eprintln!("killing after {kill_after:?} of a {full_seconds:.1}s run");
    let resumed = tempfile::tempdir().unwrap();
    let mut child = tiny_run(resumed.path()).stdout(std::process::Stdio::null()).spawn().unwrap();
    std::thread::sleep(kill_after);
    // SIGKILL: no chance to clean up.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the run finished before it could be killed; the test would prove nothing"
    );

    let out = run(&mut tiny_run(resumed.path()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = predictions(resumed.path());
    assert_eq!(got.len(), expected.len());
    for ((path_a, rows_a), (path_b, rows_b)) in expected.iter().zip(&got) {
        assert_eq!(path_a, path_b);
        assert_eq!(rows_a.len(), rows_b.len(), "{}: row count", path_a.display());
        for (ra, rb) in rows_a.iter().zip(rows_b) {
            for (i, (a, b)) in ra.iter().zip(rb.iter()).enumerate() {
                if a == b {
                    continue;
                }
                // Numbers may differ in the last bits: the resumed run batches differently.
                let (x, y): (f64, f64) =
                    (a.parse().unwrap_or(f64::NAN), b.parse().unwrap_or(f64::NAN));
                assert!((x - y).abs() <= 1e-5, "{} column {i}: {a} vs {b}", path_a.display());
            }
        }
    }
    // No part files are left behind.
    assert!(!walk_has(resumed.path(), "parts"));
}

fn walk_has(dir: &Path, ext: &str) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let p = e.unwrap().path();
        p.extension().is_some_and(|x| x == ext) || (p.is_dir() && walk_has(&p, ext))
    })
}

/// Weighted Pearson r, written out independently of the metrics plugin.
fn pearson(p: &[f64], y: &[f64], w: &[f64]) -> f64 {
    let sw: f64 = w.iter().sum();
    let mp = p.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() / sw;
    let my = y.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() / sw;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..p.len() {
        sxy += w[i] * (p[i] - mp) * (y[i] - my);
        sxx += w[i] * (p[i] - mp).powi(2);
        syy += w[i] * (y[i] - my).powi(2);
    }
    sxy / (sxx * syy).sqrt()
}

#[test]
fn report_metrics_equal_those_recomputed_from_the_predictions() {
    ensure_models();
    let dir = tempfile::tempdir().unwrap();
    let out = run(&mut tiny_run(dir.path()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(report.ends_with("report.md") && Path::new(&report).is_file(), "{report}");
    assert!(dir.path().join("report.html").is_file());

    let mut table = csv::Reader::from_path(dir.path().join("tables/models.csv")).unwrap();
    let header = table.headers().unwrap().clone();
    let col = |name: &str| {
        header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"))
    };
    let mut checked = 0;
    for row in table.records() {
        let row = row.unwrap();
        let (model, game, variant) = (&row[col("model")], &row[col("game")], &row[col("variant")]);
        let file =
            dir.path().join("predictions").join(model).join(game).join(format!("{variant}.csv"));
        let mut preds = csv::Reader::from_path(&file).unwrap();
        let h = preds.headers().unwrap().clone();
        let c = |n: &str| h.iter().position(|x| x == n).unwrap();
        let (mut p, mut y, mut w, mut mass) = (vec![], vec![], vec![], vec![]);
        for r in preds.records() {
            let r = r.unwrap();
            p.push(r[c("prediction")].parse::<f64>().unwrap());
            y.push(r[c("outcome")].parse::<f64>().unwrap());
            w.push(r[c("weight")].parse::<f64>().unwrap());
            mass.push(r[c("mass")].parse::<f64>().unwrap());
        }
        assert_eq!(row[col("n")].parse::<usize>().unwrap(), p.len());
        // Every decision point is a row, also when two people saw the very same prompt
        // (every round 1 of a repeated game): 3 matrix episodes of 10 rounds, 12 lotteries.
        let expected = if game == "matrix" { 30 } else { 12 };
        assert_eq!(p.len(), expected, "{model}/{game}/{variant}: rows");
        let reported: f64 = row[col("metrics.pearson")].parse().unwrap();
        let recomputed = pearson(&p, &y, &w);
        assert!(
            (reported - recomputed).abs() < 1e-9,
            "{model}/{game}/{variant}: {reported} vs {recomputed}"
        );
        let mean_mass = mass.iter().sum::<f64>() / mass.len() as f64;
        assert!((row[col("mean_mass")].parse::<f64>().unwrap() - mean_mass).abs() < 1e-9);
        checked += 1;
    }
    assert_eq!(checked, 6);
    // One row per model × game × variant, and the pair table.
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("## Pairs") && md.contains("demo"));

    // Win counts of the one pair: per family and subset it won, lost, tied or was excluded,
    // so both one-sided tests give ½ for a pair compared (its own direction is the
    // majority) and 1 for none.
    let mut wins = csv::Reader::from_path(dir.path().join("tables/wins.csv")).unwrap();
    let h = wins.headers().unwrap().clone();
    let c = |n: &str| {
        h.iter().position(|x| x == n).unwrap_or_else(|| panic!("wins.csv: no column {n}"))
    };
    let mut rows = 0;
    for r in wins.records() {
        let r = r.unwrap();
        let n = |k: &str| r[c(k)].parse::<f64>().unwrap();
        let compared = n("base_wins") + n("aligned_wins");
        assert_eq!(compared + n("excluded"), 1.0, "{r:?}");
        let expected = if compared == 1.0 { 0.5 } else { 1.0 };
        assert_eq!(n("sign_test_p"), expected, "{r:?}");
        assert_eq!(n("wilcoxon_p"), expected, "{r:?}");
        rows += 1;
    }
    assert!(rows >= 2, "win rows for matrix and lottery");
    assert!(md.contains("Wilcoxon p"));

    // `descry report` rebuilds the same tables from the store.
    let before = std::fs::read(dir.path().join("tables/models.csv")).unwrap();
    std::fs::remove_dir_all(dir.path().join("tables")).unwrap();
    let out = run(descry().arg("report").arg(dir.path()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(dir.path().join("tables/models.csv")).unwrap(), before);
}

fn bad_config(set: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tiny_run(dir.path());
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = run(&mut cmd);
    assert!(!out.status.success());
    assert!(!dir.path().join("predictions").exists(), "scoring started despite a bad config");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn bad_config_fails_before_scoring_naming_the_key() {
    let err = bad_config(&["games.matrix.plugin=no-such-game"]);
    assert!(err.contains("games.matrix.plugin") && err.contains("no-such-game"), "{err}");
    let err = bad_config(&["games.lottery.data=missing-folder"]);
    assert!(err.contains("games.lottery.data") && err.contains("missing-folder"), "{err}");
    let err = bad_config(&["backend.plugin=nothing"]);
    assert!(err.contains("backend.plugin"), "{err}");
    // A model folder that does not exist: a study file naming one.
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("study.toml");
    let text = std::fs::read_to_string(repo_root().join("tests/fixtures/tiny-study.toml"))
        .unwrap()
        .replace("$DESCRY_HOME/models/gemma-3-270m", "/nonexistent/model-folder");
    std::fs::write(&study, text).unwrap();
    let out = run(descry()
        .arg("run")
        .arg(&study)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--set")
        .arg(format!("data.root=\"{}\"", shared_dir().join("data").display())));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pairs[0].base.path") && err.contains("/nonexistent/model-folder"),
        "{err}"
    );
    assert!(!dir.path().join("out/predictions").exists());
}
