//! The store's contract end to end, on real data and real models: a run folder reused by
//! another study reports exactly that study's decisions; names never share a file; a
//! study with nothing to compare fails; tampered rows fail naming file and line; a second
//! writer is refused; an interrupted run never leaves a report that disagrees with its
//! record.

use descry_e2e::*;
use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

/// A small study: the two real models, `matrix_limit` episodes of the repeated games in
/// the transcript variant, and (unless left out) four lottery problems.
fn study_text(matrix_limit: usize, lottery: bool, bootstrap: usize) -> String {
    let mut text = format!(
        r#"
[study]
name = "integrity"

[[pairs]]
name = "demo"
base = {{ name = "gemma-3-270m", path = "$DESCRY_HOME/models/gemma-3-270m" }}
aligned = {{ name = "smollm2-135m-instruct", path = "$DESCRY_HOME/models/smollm2-135m-instruct" }}

[backend]
threads = 2
batch_tokens = 1024

[games.matrix]
data = "akata"
variants = ["transcript"]
limit = {matrix_limit}

[analysis]
bootstrap = {bootstrap}
"#
    );
    if lottery {
        text.push_str(
            r#"
[games.lottery]
data = "choices13k"
params = { feedback = false }
variants = ["native"]
limit = 4
"#,
        );
    }
    text
}

fn write_study(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn run_study(study: &Path, out: &Path) -> Command {
    let mut cmd = descry();
    cmd.arg("run")
        .arg(study)
        .arg("--out")
        .arg(out)
        .arg("--set")
        .arg(format!("data.root=\"{}\"", shared_dir().join("data").display()));
    cmd
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// `tables/models.csv` as (model, game, variant) → n.
fn models_table(run_dir: &Path) -> Vec<(String, String, String, usize)> {
    let mut table = csv::Reader::from_path(run_dir.join("tables/models.csv")).unwrap();
    let header = table.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut rows: Vec<_> = table
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[col("model")].to_string(),
                r[col("game")].to_string(),
                r[col("variant")].to_string(),
                r[col("n")].parse().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn csv_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            csv_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "csv") {
            out.push(p);
        }
    }
}

/// A copied run folder rerun with a smaller limit, a larger one, and without a game:
/// each report holds exactly the decisions its study plans (the issue's case 1).
#[test]
fn a_reused_run_folder_reports_exactly_the_current_study() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let study = write_study(dir.path(), "s2.toml", &study_text(2, true, 20));
    ok(run(&mut run_study(&study, &first)));
    let matrix_n = |rows: &[(String, String, String, usize)]| -> Vec<usize> {
        rows.iter().filter(|r| r.1 == "matrix").map(|r| r.3).collect()
    };
    assert_eq!(matrix_n(&models_table(&first)), [20, 20]);

    // A copy of the folder, now with one episode: 10 decisions each, not the 20 stored.
    let copy = dir.path().join("copy");
    copy_dir(&first, &copy);
    let smaller = write_study(dir.path(), "s1.toml", &study_text(1, true, 20));
    let out = ok(run(&mut run_study(&smaller, &copy)));
    assert_eq!(matrix_n(&models_table(&copy)), [10, 10]);
    let md = std::fs::read_to_string(copy.join("report.md")).unwrap();
    assert!(md.contains("also holds 20 stored predictions this study does not plan"), "{md}");
    assert!(stderr_text(&out).contains("10 resumed, 0 scored"), "{}", stderr_text(&out));

    // Three episodes: the 20 stored are reused, 10 more are scored.
    let larger = write_study(dir.path(), "s3.toml", &study_text(3, true, 20));
    let out = ok(run(&mut run_study(&larger, &copy)));
    assert_eq!(matrix_n(&models_table(&copy)), [30, 30]);
    assert!(stderr_text(&out).contains("20 resumed, 10 scored"), "{}", stderr_text(&out));

    // The same folder without the lottery game: its units are not in the report.
    let no_lottery = write_study(dir.path(), "s3m.toml", &study_text(3, false, 20));
    ok(run(&mut run_study(&no_lottery, &copy)));
    let table = models_table(&copy);
    assert!(table.iter().all(|r| r.1 == "matrix"), "{table:?}");
    let md = std::fs::read_to_string(copy.join("report.md")).unwrap();
    assert!(md.contains("2 predictions files of units it does not have"), "{md}");
    // `descry report` agrees with the run.
    let before = std::fs::read(copy.join("tables/models.csv")).unwrap();
    ok(run(descry().arg("report").arg(&copy)));
    assert_eq!(std::fs::read(copy.join("tables/models.csv")).unwrap(), before);
}

/// Names that once mapped to one folder (the issue's case 2): models `a b` and `a_b`, and
/// a game named `..`, each get their own predictions file; a model name used for two
/// different models is a config error.
#[test]
fn names_never_share_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[study]
name = "names"

[[pairs]]
name = "one"
base = { name = "a b", path = "$DESCRY_HOME/models/gemma-3-270m" }
aligned = { name = "chat", path = "$DESCRY_HOME/models/smollm2-135m-instruct" }

[[pairs]]
name = "two"
base = { name = "a_b", path = "$DESCRY_HOME/models/gemma-3-270m" }
aligned = { name = "chat", path = "$DESCRY_HOME/models/smollm2-135m-instruct" }

[backend]
threads = 2

[games.".."]
plugin = "lottery"
data = "choices13k"
params = { feedback = false }
variants = ["native"]
limit = 3

[analysis]
bootstrap = 10
"#;
    let study = write_study(dir.path(), "names.toml", text);
    let out_dir = dir.path().join("out");
    ok(run(&mut run_study(&study, &out_dir)));
    let table = models_table(&out_dir);
    let models: Vec<&str> = table.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(models, ["a b.plain", "a_b.plain", "chat.chat"], "{table:?}");
    assert!(table.iter().all(|r| r.1 == ".." && r.3 == 3), "{table:?}");
    let mut files = Vec::new();
    csv_files(&out_dir.join("predictions"), &mut files);
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        assert!(f.starts_with(out_dir.join("predictions")), "{}", f.display());
        let rows = csv::Reader::from_path(f).unwrap().records().count();
        assert_eq!(rows, 3, "{}", f.display());
    }

    // One name for two different models.
    let clash = text.replace(
        r#"{ name = "a_b", path = "$DESCRY_HOME/models/gemma-3-270m" }"#,
        r#"{ name = "a b", path = "$DESCRY_HOME/models/smollm2-135m-instruct", format = "plain" }"#,
    );
    assert_ne!(clash, text);
    let study = write_study(dir.path(), "clash.toml", &clash);
    let out = run(&mut run_study(&study, &dir.path().join("clash")));
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("pairs[1].base") && stderr_text(&out).contains("a b"),
        "{}",
        stderr_text(&out)
    );
    assert!(!dir.path().join("clash/predictions").exists());
}

/// A study with nothing to compare fails and scores nothing (the issue's case 6).
#[test]
fn a_study_with_nothing_to_compare_fails() {
    let dir = tempfile::tempdir().unwrap();
    // The only pair is excluded: base and aligned are the same weights.
    let same =
        study_text(1, false, 10).replace("models/gemma-3-270m", "models/smollm2-135m-instruct");
    let study = write_study(dir.path(), "same.toml", &same);
    let out = run(&mut run_study(&study, &dir.path().join("same")));
    assert!(!out.status.success());
    let err = stderr_text(&out);
    assert!(err.contains("every pair is excluded") && err.contains("same weights"), "{err}");
    assert!(!dir.path().join("same/predictions").exists());

    // No decision points: a data root whose repeated-games file holds only its header.
    let data = dir.path().join("data/akata");
    std::fs::create_dir_all(&data).unwrap();
    for entry in std::fs::read_dir(shared_dir().join("data/akata")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let header = text.lines().next().unwrap_or_default();
            std::fs::write(data.join(entry.file_name()), format!("{header}\n")).unwrap();
        } else {
            copy_dir(&entry.path(), &data.join(entry.file_name()));
        }
    }
    let study = write_study(dir.path(), "empty.toml", &study_text(1, false, 10));
    let mut cmd = descry();
    cmd.arg("run")
        .arg(&study)
        .arg("--out")
        .arg(dir.path().join("empty"))
        .arg("--set")
        .arg(format!("data.root=\"{}\"", dir.path().join("data").display()));
    let out = run(&mut cmd);
    assert!(!out.status.success());
    let err = stderr_text(&out);
    assert!(err.contains("no decision points to score in `games.matrix`"), "{err}");
    assert!(!dir.path().join("empty/predictions").exists());
}

/// Edited store rows (the issue's case 7): a duplicated row, a NaN, a probability of 7.5
/// each fail the report and the next run, naming the file and line; nothing is replaced.
#[test]
fn tampered_store_rows_fail_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let study = write_study(dir.path(), "s.toml", &study_text(1, false, 10));
    ok(run(&mut run_study(&study, &out_dir)));
    let file = out_dir.join("predictions/gemma-3-270m.plain/matrix/transcript.csv");
    let original = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let prediction = header.iter().position(|h| *h == "prediction").unwrap();
    let with_prediction = |value: &str| -> String {
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            if i == 3 {
                // Row 3 has no quoted cells before the prediction column.
                let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
                cells[prediction] = value.to_string();
                out.push_str(&cells.join(","));
            } else {
                out.push_str(line);
            }
            out.push('\n');
        }
        out
    };
    let duplicated = format!("{original}{}\n", lines[2]);
    for (text, expected) in [
        (duplicated, format!("line {}", lines.len() + 1)),
        (with_prediction("NaN"), "line 4".to_string()),
        (with_prediction("7.5"), "line 4".to_string()),
    ] {
        std::fs::write(&file, &text).unwrap();
        let out = run(descry().arg("report").arg(&out_dir));
        assert!(!out.status.success(), "accepted: {text}");
        let err = stderr_text(&out);
        assert!(err.contains(&file.display().to_string()) && err.contains(&expected), "{err}");
        let out = run(&mut run_study(&study, &out_dir));
        assert!(!out.status.success());
        assert!(stderr_text(&out).contains(&file.display().to_string()), "{}", stderr_text(&out));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            text,
            "the tampered file is left for the user to see"
        );
    }
}

/// Two runs on one folder (the issue's case 11): the second is refused naming the holder;
/// the first finishes with every prediction once.
#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let study = write_study(dir.path(), "s.toml", &study_text(2, true, 10));
    let mut first =
        run_study(&study, &out_dir).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    // The lock is taken once data is loaded; the run.json appears right after.
    while !out_dir.join("run.json").is_file() {
        assert!(started.elapsed() < Duration::from_secs(120), "the first run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = run(&mut run_study(&study, &out_dir));
    let first_pid = first.id();
    let status = first.wait().unwrap();
    assert!(status.success(), "the first run failed");
    assert!(!second.status.success(), "the second writer was not refused");
    let err = stderr_text(&second);
    assert!(
        err.contains("in use by another descry process")
            && err.contains(&format!("pid {first_pid}")),
        "{err}"
    );
    let table = models_table(&out_dir);
    let n: Vec<usize> = table.iter().map(|r| r.3).collect();
    assert_eq!(n, [4, 20, 4, 20], "{table:?}");
    // Once the first is gone, the folder is free again.
    ok(run(descry().arg("report").arg(&out_dir)));
}

/// A run over a finished folder with other settings, killed at several moments (the
/// issue's case 8): whenever a report exists it was built from the record beside it.
#[test]
fn a_killed_run_never_leaves_an_old_report_beside_a_new_record() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let study = write_study(dir.path(), "s.toml", &study_text(1, true, 20));
    ok(run(&mut run_study(&study, &out_dir)));
    let resamples = |out_dir: &Path| -> usize {
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap())
                .unwrap();
        record["settings"]["bootstrap"].as_u64().unwrap() as usize
    };
    assert_eq!(resamples(&out_dir), 20);
    let started = Instant::now();
    let mut rerun = run_study(&study, &out_dir);
    rerun.args(["--set", "analysis.bootstrap=7"]);
    ok(run(&mut rerun));
    let whole = started.elapsed();
    let mut saw_missing_report = false;
    for (i, fraction) in [0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95].iter().enumerate() {
        let bootstrap = if i % 2 == 0 { 20 } else { 7 };
        let mut cmd = run_study(&study, &out_dir);
        cmd.args(["--set", &format!("analysis.bootstrap={bootstrap}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(whole.mul_f64(*fraction));
        let _ = child.kill();
        let _ = child.wait();
        let record = resamples(&out_dir);
        match std::fs::read_to_string(out_dir.join("report.md")) {
            Ok(md) => assert!(
                md.contains(&format!("({record} resamples)")),
                "report of another record ({record}):\n{md}"
            ),
            Err(_) => saw_missing_report = true,
        }
        // `descry report` rebuilds the record's report, or says the run must be finished.
        let out = run(descry().arg("report").arg(&out_dir));
        if out.status.success() {
            let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
            assert!(md.contains(&format!("({record} resamples)")), "{md}");
        } else {
            assert!(stderr_text(&out).contains("run `descry run` again"), "{}", stderr_text(&out));
        }
    }
    eprintln!("a kill found the report absent at least once: {saw_missing_report}");
    // The next run completes the report.
    ok(run(&mut run_study(&study, &out_dir)));
    assert!(std::fs::read_to_string(out_dir.join("report.md")).unwrap().contains("(20 resamples)"));
}
