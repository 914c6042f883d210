use super::*;
use descry_abi::{game::GamePlugin, types::LoadRequest};
use descry_game_kit::{json::context, Variant as _};
use descry_game_kit::{
    shared_data_dir,
    testing::{check_transcripts, has_flag, metadata, points, render_every_variant},
};
use std::path::PathBuf;

fn akata() -> PathBuf {
    shared_data_dir().join("akata")
}

fn real() -> LoadedData {
    load(&akata(), Set::Repeated).expect("the real Akata data must be at ../shared/data/akata")
}

#[test]
fn repeated_counts_match_the_published_data() {
    let data = real();
    let points = points(&data);
    assert_eq!(data.episodes.len(), 390);
    assert_eq!(points.len(), 3900);
    for (game, j) in [("PD", 931), ("BoS", 904)] {
        let of_game: Vec<_> = points.iter().filter(|p| metadata(p)["game"] == game).collect();
        assert_eq!(of_game.len(), 1950, "{game}");
        assert_eq!(of_game.iter().filter(|p| p.outcome.rate == 1.0).count(), j, "{game}");
    }
    assert!(data.skipped.is_empty());
    assert!(points.iter().all(|p| metadata(p)["family"] == "matrix"));
    assert_eq!(points.iter().filter(|p| metadata(p)["game_position"] == 1).count(), 1950);
}

#[test]
fn rows_whose_score_fits_no_payoff_are_kept_and_flagged() {
    let data = real();
    let points = points(&data);
    let mut inconsistent: Vec<&str> = points
        .iter()
        .filter(|p| has_flag(p, "payoff_inconsistent"))
        .map(|p| p.id.as_str())
        .collect();
    inconsistent.sort();
    assert_eq!(inconsistent, ["p153-PD-r10", "p17-BoS-r3", "p17-BoS-r8", "p38-BoS-r9"]);
    // Later rounds of those games show an unknown opponent choice in their history.
    let incomplete = points.iter().filter(|p| has_flag(p, "history_incomplete")).count();
    assert_eq!(incomplete, 7 + 1);
    let p = points.iter().find(|p| p.id.as_str() == "p17-BoS-r4").unwrap();
    let text = render(p, "native").unwrap().messages[1].content.to_string();
    assert!(text.contains("In round 3, you chose Option F and won 7 points; the other player's choice was not recorded."), "{text}");
}

/// The history each prompt is built from agrees with the derived file's opponent keys.
#[test]
fn rebuilt_opponent_keys_agree_with_the_enriched_file() {
    #[derive(Deserialize)]
    struct Enriched {
        participant_id: String,
        game: String,
        round: u32,
        prior_opponent_keys: String,
    }
    let table =
        CsvTable::read(&akata().join("akata_decisions_enriched.csv"), &["participant_id"]).unwrap();
    let expected: HashMap<String, String> = table
        .rows::<Enriched>()
        .map(|r| {
            let r = r.unwrap().value;
            (format!("p{}-{}-r{}", r.participant_id, r.game, r.round), r.prior_opponent_keys)
        })
        .collect();
    let data = real();
    for p in points(&data) {
        let Context::Repeated { history, .. } = context::<Context>(p).unwrap() else {
            panic!("repeated")
        };
        let keys: String = history.iter().map(|h| h.opponent.unwrap_or('?')).collect();
        assert_eq!(Some(&keys), expected.get(p.id.as_str()), "{}", p.id);
    }
}

#[test]
fn transcript_prefix_property_on_real_episodes() {
    check_transcripts(&real(), |p| render(p, "transcript"));
}

#[test]
fn every_point_renders_in_every_variant() {
    let data = real();
    let every_seventh: Vec<&DecisionPoint> = points(&data).into_iter().step_by(7).collect();
    render_every_variant::<Matrix>(&every_seventh);
    let p = points(&data)[2];
    let native = render(p, "native").unwrap();
    assert!(native.messages[0].content.contains(
        "If you choose Option J and the other player chooses Option F, then you win 0 points and the other player wins 10 points."
    ));
    assert_eq!(
        native.messages[1].content.as_str(),
        "In round 1, you chose Option F and the other player chose Option J. Thus, you won 10 points and the other player won 0 points.\n\
         In round 2, you chose Option J and the other player chose Option F. Thus, you won 0 points and the other player won 10 points.\n\
         You are currently playing round 3.\nQ: Which option do you choose, Option J or Option F?"
    );
}

#[test]
fn round1_is_a_oneshot_set() {
    let data = load(&akata(), Set::RepeatedRound1).unwrap();
    let points = points(&data);
    assert_eq!(points.len(), 2);
    let pd = points[0];
    assert_eq!(pd.id.as_str(), "akata-PD-round1");
    assert_eq!((pd.outcome.rate, pd.outcome.weight), (94.0 / 195.0, 195.0));
    assert!(pd.outcome.option.is_none());
    assert_eq!((points[1].outcome.rate, points[1].outcome.weight), (105.0 / 195.0, 195.0));
    assert_eq!(metadata(pd)["family"], "oneshot");
    // PD has no interior mixed equilibrium; BoS does: J with probability 7/17 leaves the
    // opponent, who gets 10 from JJ and 7 from FF, indifferent.
    assert!(metadata(pd)["mixed_nash_rate_j"].is_null());
    let bos = metadata(points[1])["mixed_nash_rate_j"].as_f64().unwrap();
    assert!((bos - 7.0 / 17.0).abs() < 1e-12, "{bos}");
    for v in Variant::ALL {
        render(pd, v.name()).unwrap();
    }
}

// ----------------------------------------------------------------------- one-shot CSV

const ONESHOT_HEADER: &str = "game_id,topology,self_jj,other_jj,self_jf,other_jf,self_fj,other_fj,self_ff,other_ff,rate_j,n,source\n";

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn oneshot_csv_format_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "oneshot.csv",
        &format!("{ONESHOT_HEADER}g1,Prisoner's Dilemma,3,3,0,5,5,0,1,1,0.35,120,paper\ng2,,2,1,0,0,0,0,1,2,0.6,40,paper\n"),
    );
    let request = LoadRequest {
        path: path.display().to_string().into(),
        params_json: "{\"set\": \"oneshot\"}".into(),
    };
    let data = Matrix.load(&request).unwrap();
    let points = points(&data);
    assert_eq!(points.len(), 2);
    assert_eq!((points[0].outcome.rate, points[0].outcome.weight), (0.35, 120.0));
    assert_eq!(metadata(points[0])["topology"], "Prisoner's Dilemma");
    assert_eq!(metadata(points[1])["topology"], "");
    assert_eq!(metadata(points[1])["family"], "oneshot");
    // Coordination game g2: the other gets 1 from JJ and 2 from FF, so J with 2/3.
    let mix = metadata(points[1])["mixed_nash_rate_j"].as_f64().unwrap();
    assert!((mix - 2.0 / 3.0).abs() < 1e-12);
    let prompt = render(points[0], "native").unwrap();
    assert!(prompt.messages[0].content.contains("You will play one round with this player."));
    assert!(prompt.messages[0].content.contains("If you choose Option F and the other player chooses Option F, then you win 1 point and the other player wins 1 point."));
    assert_eq!(render(points[0], "transcript").unwrap(), prompt);
    let numbers = render(points[0], "numbers_only").unwrap();
    assert_eq!(
        numbers.messages[0].content.as_str(),
        "Payoffs (your points, the other player's points):\nJ vs J: 3, 3\nJ vs F: 0, 5\nF vs J: 5, 0\nF vs F: 1, 1\n\
         Choose J or F. Answer with {\"decision\": \"J\"} or {\"decision\": \"F\"}."
    );
}

#[test]
fn oneshot_csv_errors_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", &format!("{ONESHOT_HEADER}g1,t,3,3,0,5,5,0,1,1,1.5,120,x\n"));
    let err = load(&path, Set::Oneshot).unwrap_err().to_string();
    assert!(
        err.contains("a.csv")
            && err.contains("line 2, column `rate_j` (#11): choice rate 1.5 is outside [0, 1]"),
        "{err}"
    );

    let path = write(
        &dir,
        "b.csv",
        &format!("{ONESHOT_HEADER}g1,t,3,3,0,5,5,0,1,1,0.5,120,x\ng1,t,3,3,0,5,5,0,1,1,0.5,12,x\n"),
    );
    let err = load(&path, Set::Oneshot).unwrap_err().to_string();
    assert!(
        err.contains("line 3, column `game_id` (#1): duplicate game id `g1` (first on line 2)"),
        "{err}"
    );

    let path = write(&dir, "c.csv", "game_id,topology,self_jj\n");
    let err = load(&path, Set::Oneshot).unwrap_err().to_string();
    assert!(err.contains("line 1, column `other_jj`: missing from the header"), "{err}");

    let path = write(&dir, "d.csv", &format!("{ONESHOT_HEADER}g1,t,3,3,0,5,5,0,1,1,0.5,zero,x\n"));
    let err = load(&path, Set::Oneshot).unwrap_err().to_string();
    assert!(err.contains("line 2, column `n` (#12)"), "{err}");
}

// ------------------------------------------------------------------- repgames errors

const REP_HEADER: &str = "id,game,action,score,opponent,guess,coordination\n";

#[test]
fn repgames_errors_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "repgames.csv",
        &format!("{REP_HEADER}1,PD,0,10,Base,LLM,0\n1,PD,2,5,Base,LLM,1\n"),
    );
    let err = load(dir.path(), Set::Repeated).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("line 3, column `action` (#3): unknown decision value `2`"), "{err}");

    write(&dir, "repgames.csv", &format!("{REP_HEADER}1,PD,0,10,Base,LLM,0\n1,PD,1,Base,LLM,1\n"));
    let err = load(dir.path(), Set::Repeated).unwrap_err().to_string();
    assert!(
        err.contains(
            "line 3, column `coordination` (#7): malformed row: 6 fields where the header has 7"
        ),
        "{err}"
    );

    write(&dir, "repgames.csv", "id,game,score\n1,PD,10\n");
    let err = load(dir.path(), Set::Repeated).unwrap_err().to_string();
    assert!(err.contains("line 1, column `action`: missing from the header"), "{err}");

    write(&dir, "repgames.csv", &format!("{REP_HEADER}1,SH,0,10,Base,LLM,0\n"));
    let err = load(dir.path(), Set::Repeated).unwrap_err().to_string();
    assert!(err.contains("line 2, column `game` (#2): unknown game `SH`"), "{err}");

    let missing = dir.path().join("nope/repgames.csv");
    let err = load(&missing, Set::Repeated).unwrap_err().to_string();
    assert!(err.contains("nope/repgames.csv") && err.contains("expected Akata"), "{err}");
}

#[test]
fn params_choose_the_set() {
    let request = |params: &str| LoadRequest {
        path: akata().display().to_string().into(),
        params_json: params.into(),
    };
    assert_eq!(points(&Matrix.load(&request("")).unwrap()).len(), 3900);
    assert_eq!(points(&Matrix.load(&request("{\"set\": \"repeated_round1\"}")).unwrap()).len(), 2);
    // A wrong value names the parameter and the values it accepts, never a position in
    // the JSON the host made from the study's `params` table.
    for (params, expected) in [
        (
            "{\"set\": \"triple\"}",
            "parameter `set`: unknown set `triple`; expected one of `repeated`, `oneshot`, `repeated_round1`",
        ),
        ("{\"set\": 3}", "parameter `set`: invalid type: integer `3`, expected a string"),
        (
            "{\"sets\": \"oneshot\"}",
            "unknown parameter `sets`; the parameters of this game are `set`",
        ),
    ] {
        let err = Matrix.load(&request(params)).unwrap_err().to_string();
        assert!(err.contains(expected) && !err.contains("column"), "{params}: {err}");
    }
}

/// Issue 12: duplicated rows in `repgames.csv` made a 20-round game ("You will play 20
/// rounds in total"), exit 0. Each (id, game) is one block of 10 rows; a copy of the real
/// file with a block duplicated (right after itself or at the end) or a row missing is an
/// error naming the file, the lines and the participant and game.
#[test]
fn duplicated_or_missing_rows_of_a_game_are_errors() {
    let real = std::fs::read_to_string(akata().join("repgames.csv")).unwrap();
    let lines: Vec<&str> = real.lines().collect();
    // Line numbers of the file: lines[0] is line 1 (the header); participant 1's PD is
    // lines 2–11, their BoS lines 12–21.
    assert!(
        lines[1].starts_with("1,PD,")
            && lines[10].starts_with("1,PD,")
            && lines[11].starts_with("1,BoS,")
    );
    let pd1 = &lines[1..11];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repgames.csv");
    let write = |lines: Vec<&str>| std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    // The block again right after itself: a 20-row game.
    let mut doubled = lines[..11].to_vec();
    doubled.extend_from_slice(pd1);
    doubled.extend_from_slice(&lines[11..]);
    write(doubled);
    for set in [Set::Repeated, Set::RepeatedRound1] {
        let err = load(dir.path(), set).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(
            err.contains("line 12, column `id` (#1): participant 1, game PD: an 11th row")
                && err.contains("lines 2–11"),
            "{err}"
        );
    }

    // The block again at the end of the file.
    let mut appended = lines.clone();
    appended.extend_from_slice(pd1);
    write(appended);
    let err = load(dir.path(), Set::Repeated).unwrap_err().to_string();
    let again = lines.len() + 1;
    assert!(
        err.contains(&format!("line {again}, column `id` (#1): participant 1, game PD again"))
            && err.contains("lines 2–11"),
        "{err}"
    );

    // A row missing: a 9-round game.
    let mut short = lines.clone();
    short.remove(5);
    write(short);
    let err = load(dir.path(), Set::Repeated).unwrap_err().to_string();
    assert!(
        err.contains("line 2, column `id` (#1): participant 1, game PD has 9 rows (lines 2–10)"),
        "{err}"
    );

    // The file itself, rewritten, still loads: the checks reject only what is wrong.
    write(lines.clone());
    assert_eq!(points(&load(dir.path(), Set::Repeated).unwrap()).len(), 3900);
}

/// A one-shot row with an infinite count or payoff, or a repeated game's infinite score
/// (`inf` parses as a number), is an error naming its line and column, never "inf points"
/// in a prompt.
#[test]
fn oneshot_infinite_counts_and_payoffs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (row, expected) in [
        (
            "g1,t,3,3,0,5,5,0,1,1,0.5,inf,x",
            "line 2, column `n` (#12): count inf must be a positive number",
        ),
        (
            "g1,t,3,3,0,5,inf,0,1,1,0.5,12,x",
            "line 2, column `self_fj` (#7): payoff inf is not a finite number",
        ),
        (
            "g1,t,3,3,0,5,5,0,1,NaN,0.5,12,x",
            "line 2, column `other_ff` (#10): payoff NaN is not a finite number",
        ),
    ] {
        let path = write(&dir, "e.csv", &format!("{ONESHOT_HEADER}{row}\n"));
        let err = load(&path, Set::Oneshot).unwrap_err().to_string();
        assert!(err.contains("e.csv") && err.contains(expected), "{row}: {err}");
    }
    // The same for a score of the repeated games.
    let path = write(&dir, "repgames.csv", &format!("{REP_HEADER}1,PD,0,inf,Base,LLM,0\n"));
    let err = load(&path, Set::Repeated).unwrap_err().to_string();
    assert!(err.contains("line 2, column `score` (#4): score inf is not a finite number"), "{err}");
}
