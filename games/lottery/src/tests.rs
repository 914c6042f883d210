use super::*;
use descry_abi::{game::GamePlugin, types::LoadRequest};
use descry_game_kit::{
    shared_data_dir,
    testing::{metadata, points, render_every_variant},
};

fn c13k() -> PathBuf {
    shared_data_dir().join("choices13k")
}

#[test]
fn counts_match_the_published_data() {
    let all = load(&c13k(), Feedback::All)
        .expect("the real choices13k data must be at ../shared/data/choices13k");
    assert_eq!(points(&all).len(), 14_568);
    assert_eq!(load(&c13k(), Feedback::Only(false)).unwrap().episodes.len(), 2_380);
    assert_eq!(load(&c13k(), Feedback::Only(true)).unwrap().episodes.len(), 12_188);
    let pts = points(&all);
    assert_eq!(pts.iter().filter(|p| metadata(p)["amb"] == true).count(), 2_809);
    assert!(pts.iter().all(|p| p.outcome.option.is_none() && p.outcome.weight > 0.0));
    // The CSV path works as well as the folder.
    assert_eq!(
        load(&c13k().join("c13k_selections.csv"), Feedback::Only(false)).unwrap().episodes.len(),
        2_380
    );
}

#[test]
fn first_problem_is_described_exactly() {
    let data = load(&c13k(), Feedback::All).unwrap();
    let p = points(&data)[0];
    assert_eq!(p.id.as_str(), "c13k-1-fb");
    assert_eq!((p.outcome.rate, p.outcome.weight), (0.6266666666666667, 15.0));
    let prompt = render(p, "native").unwrap();
    assert_eq!(
        prompt.messages[1].content.as_str(),
        "Gamble A: 26 with probability 0.95, or -1 with probability 0.05.\n\
         Gamble B: 21 with probability 0.95, or 23 with probability 0.05.\n\
         Which gamble do you choose? Answer with {\"decision\": \"A\"} or {\"decision\": \"B\"}."
    );
    let numbers = render(p, "numbers_only").unwrap();
    assert_eq!(numbers.messages.len(), 1);
    assert!(numbers.messages[0]
        .content
        .starts_with("A: 26 (0.95), -1 (0.05)\nB: 21 (0.95), 23 (0.05)\n"));
}

#[test]
fn ambiguous_problems_hide_the_probabilities_of_b() {
    let data = load(&c13k(), Feedback::All).unwrap();
    let p = points(&data).into_iter().find(|p| p.id.as_str() == "c13k-2-fb").unwrap();
    assert_eq!(metadata(p)["amb"], true);
    for variant in ["native", "predict"] {
        let user = render(p, variant).unwrap().messages[1].content.to_string();
        assert!(
            user.contains("Gamble A: 14 with probability 0.6, or -18 with probability 0.4."),
            "{user}"
        );
        assert!(
            user.contains("Gamble B: -5 or 8, with probabilities that are not disclosed."),
            "{user}"
        );
    }
    let numbers = render(p, "numbers_only").unwrap().messages[0].content.to_string();
    assert!(numbers.contains("B: -5 (?), 8 (?)"), "{numbers}");
    // A sure gamble with a zero-probability second outcome reads as a sure thing.
    let sure = points(&data).into_iter().find(|p| p.id.as_str() == "c13k-3-fb").unwrap();
    assert!(render(sure, "native").unwrap().messages[1].content.contains("Gamble B: 1 for sure."));
}

#[test]
fn every_point_renders_in_every_variant() {
    let data = load(&c13k(), Feedback::All).unwrap();
    let every_13th: Vec<&DecisionPoint> = points(&data).into_iter().step_by(13).collect();
    for (_, _, prompt) in render_every_variant::<Lottery>(&every_13th) {
        let text = prompt.messages.last().unwrap().content.to_string();
        assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
    }
}

#[test]
fn params() {
    let request = |params: &str| LoadRequest {
        path: c13k().display().to_string().into(),
        params_json: params.into(),
    };
    assert_eq!(Lottery.load(&request("{\"feedback\": false}")).unwrap().episodes.len(), 2_380);
    assert_eq!(Lottery.load(&request("{\"feedback\": \"all\"}")).unwrap().episodes.len(), 14_568);
    // A wrong value names the parameter and the values it accepts, never a position in
    // the JSON the host made from the study's `params` table.
    for (params, expected) in [
        (
            "{\"feedback\": \"some\"}",
            "parameter `feedback`: invalid value: string \"some\", expected true, false or \"all\"",
        ),
        (
            "{\"feedback\": 1}",
            "parameter `feedback`: invalid type: integer `1`, expected true, false or \"all\"",
        ),
        (
            "{\"feedbak\": true}",
            "unknown parameter `feedbak`; the parameters of this game are `feedback`",
        ),
    ] {
        let err = Lottery.load(&request(params)).unwrap_err().to_string();
        assert!(err.contains(expected) && !err.contains("column"), "{params}: {err}");
    }
    assert_eq!(Lottery.load(&request("{\"feedback\": null}")).unwrap().episodes.len(), 14_568);
}

// --------------------------------------------------------------------------- bad input

const HEADER: &str =
    "Problem,Feedback,n,Block,Ha,pHa,La,Hb,pHb,Lb,LotShapeB,LotNumB,Amb,Corr,bRate,bRate_std\n";
const ROW: &str = "1,True,15,2,26,0.95,-1,23,0.05,21,0,1,False,0,0.62,0.38\n";
const JSON: &str =
    r#"{"0": {"B": [[0.95, 21.0], [0.05, 23.0]], "A": [[0.95, 26.0], [0.05, -1.0]]}}"#;

fn folder(csv: &str, json: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c13k_selections.csv"), csv).unwrap();
    if let Some(json) = json {
        std::fs::write(dir.path().join("c13k_problems.json"), json).unwrap();
    }
    dir
}

#[test]
fn a_tiny_good_set_loads() {
    let dir = folder(&format!("{HEADER}{ROW}"), Some(JSON));
    assert_eq!(load(dir.path(), Feedback::All).unwrap().episodes.len(), 1);
}

#[test]
fn bad_values_name_file_line_and_column() {
    let dir = folder(&format!("{HEADER}{}", ROW.replace(",True,", ",Maybe,")), Some(JSON));
    let err = load(dir.path(), Feedback::All).unwrap_err().to_string();
    assert!(
        err.contains("c13k_selections.csv")
            && err.contains("line 2, column `Feedback` (#2): `Maybe` is not a boolean"),
        "{err}"
    );

    let dir = folder(&format!("{HEADER}{}", ROW.replace(",0.62,", ",1.62,")), Some(JSON));
    let err = load(dir.path(), Feedback::All).unwrap_err().to_string();
    assert!(
        err.contains("line 2, column `bRate` (#15): choice rate 1.62 is outside [0, 1]"),
        "{err}"
    );

    let dir = folder(&format!("{HEADER}{}", ROW.replace(",26,", ",twenty-six,")), Some(JSON));
    let err = load(dir.path(), Feedback::All).unwrap_err().to_string();
    assert!(err.contains("line 2, column `Ha` (#5)"), "{err}");
}

#[test]
fn malformed_row_and_missing_column() {
    let dir = folder(&format!("{HEADER}1,True,15\n"), Some(JSON));
    let err = load(dir.path(), Feedback::All).unwrap_err().to_string();
    assert!(
        err.contains(
            "line 2, column `Block` (#4): malformed row: 3 fields where the header has 16"
        ),
        "{err}"
    );

    let dir = folder(&format!("{}\n", HEADER.replace("Amb,", "").trim_end()), Some(JSON));
    let err = load(dir.path(), Feedback::All).unwrap_err().to_string();
    assert!(err.contains("line 1, column `Amb`: missing from the header"), "{err}");
}

#[test]
fn missing_or_mismatched_problem_file() {
    let dir = folder(&format!("{HEADER}{ROW}"), None);
    let err = load(dir.path(), Feedback::All).unwrap_err().to_string();
    assert!(err.contains("c13k_problems.json"), "{err}");

    let dir = folder(&format!("{HEADER}{ROW}{ROW}"), Some(JSON));
    let err = load(dir.path(), Feedback::All).unwrap_err().to_string();
    assert!(err.contains("1 problems, but") && err.contains("has 2 rows"), "{err}");

    let dir = folder(&format!("{HEADER}{ROW}"), Some("{\"0\": {\"A\": [[0.5]]}}"));
    let err = load(dir.path(), Feedback::All).unwrap_err().to_string();
    assert!(err.contains("c13k_problems.json") && err.contains("line 1, column"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let err = load(&dir.path().join("absent"), Feedback::All).unwrap_err().to_string();
    assert!(err.contains("absent"), "{err}");
}

// ------------------------------------------------------------- outcomes that are wrong

/// The real header and first `rows` rows of `c13k_selections.csv`, and the matching
/// problems of `c13k_problems.json` with `edit` applied to them.
fn real_slice(rows: usize, edit: impl FnOnce(&mut serde_json::Value)) -> tempfile::TempDir {
    let csv = std::fs::read_to_string(c13k().join("c13k_selections.csv")).unwrap();
    let csv: String = csv.lines().take(rows + 1).map(|l| format!("{l}\n")).collect();
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c13k().join("c13k_problems.json")).unwrap())
            .unwrap();
    let mut problems = serde_json::Map::new();
    for i in 0..rows {
        problems.insert(i.to_string(), all[i.to_string()].clone());
    }
    let mut problems = serde_json::Value::Object(problems);
    edit(&mut problems);
    folder(&csv, Some(&problems.to_string()))
}

/// Issue 12: probabilities of 1.7 and -0.7 rendered as "26 for sure", an empty gamble as
/// "nothing", exit 0. Every gamble is checked; the error names the file, the key and the
/// CSV line of the problem.
#[test]
fn impossible_gambles_are_errors_naming_file_and_key() {
    // The real slice itself loads.
    let dir = real_slice(3, |_| ());
    assert_eq!(load(dir.path(), Feedback::All).unwrap().episodes.len(), 3);

    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "1.7 and -0.7",
            Box::new(|p| p["1"]["A"] = serde_json::json!([[1.7, 26.0], [-0.7, -1.0]])),
            "key `1` (line 3 of `c13k_selections.csv`), gamble A, outcome 1: probability 1.7 is outside [0, 1]",
        ),
        (
            "-0.7 only",
            Box::new(|p| p["1"]["A"] = serde_json::json!([[1.0, 26.0], [-0.7, -1.0]])),
            "key `1` (line 3 of `c13k_selections.csv`), gamble A, outcome 2: probability -0.7 is outside [0, 1]",
        ),
        (
            "empty",
            Box::new(|p| p["2"]["B"] = serde_json::json!([])),
            "key `2` (line 4 of `c13k_selections.csv`), gamble B: no outcomes",
        ),
        (
            "sum 0.9",
            Box::new(|p| p["0"]["B"] = serde_json::json!([[0.85, 21.0], [0.05, 23.0]])),
            "key `0` (line 2 of `c13k_selections.csv`), gamble B: probabilities sum to 0.9, not 1",
        ),
        (
            "all zero",
            Box::new(|p| p["0"]["A"] = serde_json::json!([[0.0, 26.0], [0.0, -1.0]])),
            "key `0` (line 2 of `c13k_selections.csv`), gamble A: probabilities sum to 0, not 1",
        ),
    ];
    for (what, edit, expected) in cases {
        let dir = real_slice(3, edit);
        let err = load(dir.path(), Feedback::All).unwrap_err().to_string();
        assert!(
            err.contains(&dir.path().join("c13k_problems.json").display().to_string())
                && err.contains(expected),
            "{what}: {err}"
        );
    }
}

/// A rate or count that cannot be one: `bRate` outside [0, 1] (NaN included), `n` not a
/// positive finite count; also the CSV's own probabilities `pHa`, `pHb` and payoffs.
#[test]
fn impossible_rates_counts_and_csv_probabilities_are_errors() {
    let csv = std::fs::read_to_string(c13k().join("c13k_selections.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let columns: Vec<&str> = header.split(',').collect();
    let dir = real_slice(1, |_| ());
    for (column, value, expected) in [
        ("bRate", "nan", "choice rate NaN is outside [0, 1]"),
        ("bRate", "-0.1", "choice rate -0.1 is outside [0, 1]"),
        ("n", "inf", "count inf must be a positive number"),
        ("n", "0", "count 0 must be a positive number"),
        ("pHa", "1.7", "probability 1.7 is outside [0, 1]"),
        ("pHb", "-0.7", "probability -0.7 is outside [0, 1]"),
        ("Lb", "inf", "payoff inf is not a finite number"),
    ] {
        let index = columns.iter().position(|c| *c == column).unwrap();
        let mut edited = row.clone();
        edited[index] = value;
        std::fs::write(
            dir.path().join("c13k_selections.csv"),
            format!("{header}\n{}\n", edited.join(",")),
        )
        .unwrap();
        let err = load(dir.path(), Feedback::All).unwrap_err().to_string();
        let at =
            format!("c13k_selections.csv`, line 2, column `{column}` (#{}): {expected}", index + 1);
        assert!(err.contains(&at), "{column} = {value}: {err}");
    }
}
