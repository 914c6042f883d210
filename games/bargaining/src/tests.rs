use super::*;
use descry_abi::{game::GamePlugin, types::LoadRequest};
use descry_game_kit::{
    glee::reasons,
    shared_data_dir,
    testing::{check_transcripts, points, real_data, render_every_variant},
    transcript::check_episode,
};
use std::path::PathBuf;

fn real() -> LoadedData {
    real_data::<Bargaining>("glee")
}

#[test]
fn counts_match_the_published_sample() {
    let data = real();
    let points = points(&data);
    assert_eq!(points.len(), 24);
    let accept = points
        .iter()
        .filter(|p| {
            p.outcome.option.as_ref().map(|o| o.as_str())
                == abi_stable::std_types::ROption::RSome("accept")
        })
        .count();
    let reject = points.iter().filter(|p| p.outcome.rate == 0.0).count();
    assert_eq!((accept, reject), (19, 5));
    // 23 games have a log and a known human; those where the human only proposed are
    // skipped with a reason, never guessed or dropped silently.
    let no_decision =
        data.skipped.iter().filter(|s| s.reason.starts_with(reasons::NO_HUMAN_DECISION)).count();
    assert_eq!(data.episodes.len() + no_decision, 23);
    assert_eq!(data.skipped.len(), no_decision, "{:?}", data.skipped);
    // Ids are unique; rounds are the game's rounds.
    let mut ids: Vec<&str> = points.iter().map(|p| p.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 24);
    assert!(points.iter().all(|p| p.flags.is_empty()));
}

#[test]
fn loads_the_same_from_any_level_of_the_layout() {
    let root = shared_data_dir().join("glee");
    let a = points(&real()).len();
    assert_eq!(points(&load(&root.join("human_vs_llm")).unwrap()).len(), a);
    assert_eq!(points(&load(&root.join("human_vs_llm/bargaining")).unwrap()).len(), a);
}

#[test]
fn transcript_prefix_property_on_real_episodes() {
    let multi = check_transcripts(&real(), |p| render(p, "transcript"));
    assert!(multi >= 3, "the sample has episodes with several human decisions");
}

#[test]
fn every_point_renders_in_every_variant() {
    let data = real();
    render_every_variant::<Bargaining>(&points(&data));
    let err = render(points(&data)[0], "nope").unwrap_err().to_string();
    assert!(err.contains("native, transcript, predict"), "{err}");
}

#[test]
fn renders_the_history_the_human_saw() {
    let data = real();
    let p = points(&data).into_iter().find(|p| p.id.as_str() == "0003852CF8408F00-r4").unwrap();
    let prompt = render(p, "native").unwrap();
    let user = prompt.messages[1].content.as_str();
    // Alice (human) proposed in rounds 1 and 3; Bob offered 5000/5000 in round 2 (rejected).
    assert!(user.contains("Round 1\nYou offered: you would get $7,354, and Bob would get $2,646.\nYour message: Good\nBob rejected your offer."), "{user}");
    assert!(user.contains("Round 2\nBob's offer:\nBob's message: Let's split it evenly. Fair play!\nYou would get $5,000, and Bob would get $5,000.\nYou rejected the offer."), "{user}");
    assert!(
        user.ends_with(
            "You would get $6,000, and Bob would get $4,000.\nDo you accept this offer?"
        ),
        "{user}"
    );
    // delta 1.0 for both: no inflation text anywhere.
    assert!(!prompt.messages[0].content.contains("inflation"));
}

// --------------------------------------------------------------------------- bad input

const CONFIG: &str = r#"{"name": "t", "player_1_type": "otree_LLM", "player_2_type": "otree",
 "player_1_args": {"public_name": "Alice"}, "player_2_args": {"public_name": "Bob"},
 "game_args": {"money_to_divide": 100, "max_rounds": 12, "complete_information": true,
 "messages_allowed": true, "delta_1": 0.9, "delta_2": 0.8}}"#;

fn game_dir(log: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let game = dir.path().join("human_vs_llm/bargaining/0/0/0/G1");
    std::fs::create_dir_all(&game).unwrap();
    std::fs::write(game.join("config.json"), CONFIG).unwrap();
    std::fs::write(game.join("game.csv"), log).unwrap();
    let log_path = game.join("game.csv");
    (dir, log_path)
}

const HEADER: &str = "alice_gain,bob_gain,message,player,round,decision\n";

#[test]
fn a_good_small_game_loads() {
    let (dir, _) = game_dir(&format!("{HEADER}60.0,40.0,hi,Alice,1,None\n,,None,Bob,1,reject\n50.0,50.0,ok,Bob,2,None\n,,None,Alice,2,reject\n70.0,30.0,last,Alice,3,None\n,,None,Bob,3,accept\n"));
    let data = load(dir.path()).unwrap();
    let pts = points(&data);
    assert_eq!(pts.len(), 2);
    assert_eq!(pts[1].round, 3);
    let prompts: Vec<Prompt> = pts.iter().map(|p| render(p, "transcript").unwrap()).collect();
    check_episode(&prompts, &["reject".to_string(), "accept".to_string()]).unwrap();
    let text =
        prompts[1].messages.iter().map(|m| m.content.to_string()).collect::<Vec<_>>().join("\n");
    assert!(text.contains("{\"bob_gain\": 50, \"alice_gain\": 50, \"message\": \"ok\"}"), "{text}");
    assert!(text.contains("Due to inflation, the money you gain is worth 36% less than in the first round, and the money Alice gains is worth 19% less."), "{text}");
}

#[test]
fn unknown_decision_names_file_line_and_column() {
    let (dir, log) = game_dir(&format!("{HEADER}60.0,40.0,hi,Alice,1,None\n,,None,Bob,1,maybe\n"));
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&log.display().to_string()), "{err}");
    assert!(err.contains("line 3, column `decision` (#6): unknown decision `maybe`"), "{err}");
}

#[test]
fn malformed_row_names_file_line_and_column() {
    let (dir, log) = game_dir(&format!("{HEADER}60.0,40.0,hi,Alice,1\n,,None,Bob,1,accept\n"));
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&log.display().to_string()), "{err}");
    assert!(
        err.contains(
            "line 2, column `decision` (#6): malformed row: 5 fields where the header has 6"
        ),
        "{err}"
    );
}

#[test]
fn bad_value_names_file_line_and_column() {
    let (dir, _) = game_dir(&format!("{HEADER}sixty,40.0,hi,Alice,1,None\n,,None,Bob,1,accept\n"));
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("line 2, column `alice_gain` (#1): `sixty` is not a number"), "{err}");
}

#[test]
fn missing_column_names_file_line_and_column() {
    let (dir, log) = game_dir("alice_gain,bob_gain,message,player,round\n60.0,40.0,hi,Alice,1\n");
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&log.display().to_string()), "{err}");
    assert!(err.contains("line 1, column `decision`: missing from the header"), "{err}");
}

#[test]
fn missing_folder_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-data");
    let err = load(&missing).unwrap_err().to_string();
    assert!(err.contains("no-such-data") && err.contains("human_vs_llm/bargaining"), "{err}");
}

#[test]
fn unknown_params_are_rejected() {
    let request = LoadRequest {
        path: shared_data_dir().join("glee").display().to_string().into(),
        params_json: "{\"x\": 1}".into(),
    };
    let err = Bargaining.load(&request).unwrap_err().to_string();
    // The key and what the game accepts; no position in the JSON the host made.
    assert!(err.contains("unknown parameter `x`; this game takes no parameters"), "{err}");
    assert!(!err.contains("column"), "{err}");
}

/// Issue 12: a symbolic link looping back up a GLEE tree multiplied the data (861
/// episodes from 21, exit 0). A small tree of the real layout, its files linked to three
/// real games, loads the same with a loop and a second path to a game as without them.
#[cfg(unix)]
#[test]
fn a_symlink_loop_does_not_multiply_the_games() {
    use std::os::unix::fs::symlink;
    let real_family = shared_data_dir().join("glee/human_vs_llm/bargaining");
    let scan = descry_game_kit::glee::scan::<serde::de::IgnoredAny>(&real_family, NAME).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let family = tmp.path().join("human_vs_llm/bargaining");
    let mut linked = Vec::new();
    for game in scan.games.iter().take(3) {
        let rel = game.label.strip_prefix("bargaining/").unwrap();
        let dir = family.join(rel);
        std::fs::create_dir_all(&dir).unwrap();
        symlink(&game.config_path, dir.join("config.json")).unwrap();
        symlink(&game.log_path, dir.join("game.csv")).unwrap();
        linked.push(rel.to_string());
    }
    assert_eq!(linked.len(), 3);
    let ids = |data: &LoadedData| -> Vec<String> {
        data.episodes.iter().map(|e| e.id.to_string()).collect()
    };
    let clean = load(tmp.path()).unwrap();
    assert!(!clean.episodes.is_empty());

    // `<c1>/loop` → the family folder; `again` → the first game's folder.
    let first_c1 = linked[0].split('/').next().unwrap();
    symlink(&family, family.join(first_c1).join("loop")).unwrap();
    symlink(family.join(&linked[0]), family.join("again")).unwrap();
    let looped = load(tmp.path()).unwrap();
    assert_eq!(ids(&looped), ids(&clean));
    assert_eq!(points(&looped).len(), points(&clean).len());
    let walked_again: Vec<String> = looped
        .skipped
        .iter()
        .filter(|s| s.reason.starts_with(reasons::ALREADY_WALKED))
        .map(|s| s.item.to_string())
        .collect();
    assert_eq!(
        walked_again,
        [format!("bargaining/{first_c1}/loop"), "bargaining/again".to_string()]
    );
    assert_eq!(looped.skipped.len(), clean.skipped.len() + 2);
}

/// A two-round game with inflation (the real sample has none): Alice proposed 60/40 and Bob
/// rejected; Bob offers 30/70.
fn small_game(messages_allowed: bool) -> Context {
    let round = |round, human_proposed, human_gain, opponent_gain, response: Option<&str>| Round {
        round,
        human_proposed,
        offer: Split { human_gain, opponent_gain },
        message: human_proposed.then(|| "fair?".to_string()),
        response: response.map(str::to_string),
    };
    Context {
        human: "Alice".into(),
        opponent: "Bob".into(),
        first_proposer: "Alice".into(),
        money_to_divide: 100.0,
        max_rounds: 3,
        complete_information: true,
        messages_allowed,
        delta_human: 0.9,
        delta_opponent: 0.8,
        rounds: vec![round(1, true, 60.0, 40.0, Some("reject")), round(2, false, 30.0, 70.0, None)],
    }
}

#[test]
fn inflation_is_told_from_the_discount_factors() {
    let prompt = <Bargaining as Game>::prompt(&small_game(false), Variant::Native);
    let system = prompt.messages[0].content.as_str();
    assert!(system.contains("Beware of inflation! With each round that passes, the money is worth 10% less for you and 20% less for Bob."), "{system}");
    assert!(system.contains("You have 3 rounds to divide the money"), "{system}");
    assert_eq!(
        prompt.messages[1].content.as_str(),
        "Round 1\nYou offered: you would get $60, and Bob would get $40.\nBob rejected your offer.\n\n\
         Round 2\nDue to inflation, the money you gain is worth 10% less than in the first round, and the money Bob gains is worth 20% less.\n\
         Bob's offer:\nYou would get $30, and Bob would get $70.\nDo you accept this offer?"
    );
}

#[test]
fn the_humans_own_offer_is_an_assistant_json_turn() {
    let prompt = <Bargaining as Game>::prompt(&small_game(true), Variant::Transcript);
    let turns: Vec<(&str, &str)> =
        prompt.messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
    assert_eq!(turns[1], ("user", "Round 1\nSend your offer to divide $100 and a message to Bob."));
    assert_eq!(
        turns[2],
        ("assistant", r#"{"alice_gain": 60, "bob_gain": 40, "message": "fair?"}"#)
    );
    assert!(turns[3].1.starts_with("Bob rejected your offer.\n\nRound 2\n"), "{}", turns[3].1);
    assert_eq!(turns.len(), 4);
    let system = turns[0].1;
    assert!(system.contains("answer in JSON: {\"alice_gain\": the amount you receive, \"bob_gain\": the amount Bob receives, \"message\": your message to Bob}."), "{system}");
}
