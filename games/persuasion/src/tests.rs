use super::*;
use descry_game_kit::json::context;
use descry_game_kit::{
    glee::reasons,
    testing::{check_transcripts, count_skipped, points, real_data, render_every_variant},
    transcript::check_episode,
};
use std::path::PathBuf;

fn real() -> LoadedData {
    real_data::<Persuasion>("glee")
}

#[test]
fn counts_match_the_published_sample() {
    let data = real();
    let points = points(&data);
    assert_eq!(data.episodes.len(), 14);
    assert_eq!(points.len(), 280);
    let yes = points.iter().filter(|p| p.outcome.rate == 1.0).count();
    assert_eq!((yes, points.len() - yes), (242, 38));
    assert!(data.episodes.iter().all(|e| e.decisions.len() == 20));
    // Skipped, with reasons: a log without a config (human unknown), configs without a
    // log, and games whose human was the seller.
    assert_eq!(count_skipped(&data, reasons::NO_CONFIG), 1);
    assert_eq!(count_skipped(&data, reasons::NO_LOG), 37);
    assert_eq!(count_skipped(&data, reasons::NO_HUMAN_DECISION), 3);
    assert_eq!(data.skipped.len(), 41);
}

#[test]
fn flags_mark_messy_buyers_and_keep_them() {
    let data = real();
    let points = points(&data);
    let always =
        points.iter().filter(|p| p.flags.iter().any(|f| f.as_str() == "always_buys")).count();
    // 7 of the 14 human buyers bought in all 20 rounds.
    assert_eq!(always, 7 * 20);
    let against = points
        .iter()
        .filter(|p| p.flags.iter().any(|f| f.as_str() == "bought_against_recommendation"))
        .count();
    assert_eq!(against, 15);
}

#[test]
fn transcript_prefix_property_on_real_episodes() {
    check_transcripts(&real(), |p| render(p, "transcript"));
}

#[test]
fn every_point_renders_in_every_variant() {
    render_every_variant::<Persuasion>(&points(&real()));
}

#[test]
fn the_context_never_holds_the_answer_or_the_current_quality() {
    let data = real();
    for p in points(&data) {
        let ctx: Context = context(p).unwrap();
        let current = ctx.rounds.last().unwrap();
        assert_eq!((current.bought, current.high_quality), (None, None));
        assert!(ctx.rounds[..ctx.rounds.len() - 1]
            .iter()
            .all(|r| r.bought.is_some() && r.high_quality.is_some()));
        let prompt = render(p, "native").unwrap();
        assert!(prompt.messages.last().unwrap().content.ends_with(QUESTION));
    }
}

#[test]
fn renders_a_binary_recommendation() {
    let data = real();
    let p = points(&data).into_iter().find(|p| p.id.as_str() == "7AD3027137D18414-r2").unwrap();
    let user = render(p, "native").unwrap().messages[1].content.to_string();
    assert_eq!(
        user,
        "Round 1\nAlice does not recommend that you buy the product.\nYou bought the product for $10,000. \
         The product was low-quality; it is worth $0 to you.\n\nRound 2\nAlice does not recommend that you buy \
         the product.\nWould you like to buy this product?"
    );
}

// ------------------------------------------------------------------- synthetic games

fn game_dir(config: &str, log: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let game = dir.path().join("human_vs_llm/persuasion/0/0/0/G1");
    std::fs::create_dir_all(&game).unwrap();
    std::fs::write(game.join("config.json"), config).unwrap();
    std::fs::write(game.join("game.csv"), log).unwrap();
    let log_path = game.join("game.csv");
    (dir, log_path)
}

fn config(myopic: bool) -> String {
    format!(
        r#"{{"name": "t", "player_1_type": "otree_LLM", "player_2_type": "otree",
 "player_1_args": {{"public_name": "Alice"}}, "player_2_args": {{"public_name": "Bob"}},
 "game_args": {{"p": 0.5, "v": 2.0, "c": 0, "product_price": 100, "is_seller_know_cv": true,
 "seller_message_type": "text", "is_myopic": {myopic}, "total_rounds": 3, "is_buyer_know_p": true,
 "allow_buyer_message": false}}}}"#
    )
}

const HEADER: &str = "round_quality,product_worth,player,round,message,decision\n";

fn three_rounds() -> String {
    format!(
        "{HEADER}high-quality,200.0,Nature,1,,\n,,Alice,1,\"Buy it,\nreally\",\n,,Bob,1,,yes\n\
         low-quality,0,Nature,2,,\n,,Alice,2,Great product,\n,,Bob,2,,no\n\
         high-quality,200.0,Nature,3,,\n,,Alice,3,Trust me,\n,,Bob,3,,yes\n"
    )
}

#[test]
fn a_myopic_buyer_sees_statistics_and_the_transcript_still_holds() {
    let (dir, _) = game_dir(&config(true), &three_rounds());
    let data = load(dir.path()).unwrap();
    let pts = points(&data);
    assert_eq!(pts.len(), 3);
    let native = render(pts[2], "native").unwrap();
    assert_eq!(
        native.messages[1].content.as_str(),
        "Statistics: so far 1 buyer bought the product offered to them, and 1 of the products sold was high-quality.\n\
         Alice's message: Trust me\nWould you like to buy this product?"
    );
    assert!(native.messages[0].content.contains("You are one of the buyers."));
    let prompts: Vec<Prompt> = pts.iter().map(|p| render(p, "transcript").unwrap()).collect();
    check_episode(&prompts, &["yes".into(), "no".into(), "yes".into()]).unwrap();
    // The multi-line message survives CSV quoting.
    assert!(prompts[0].messages[1].content.contains("Buy it,\nreally"));
}

#[test]
fn unknown_decision_names_file_line_and_column() {
    let log = three_rounds().replace(",,Bob,2,,no", ",,Bob,2,,maybe");
    let (dir, path) = game_dir(&config(false), &log);
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    // Line 8: the header, three rows of round 1 (one message spans two lines), then round 2.
    assert!(
        err.contains("line 8, column `decision` (#6): unknown buyer decision `maybe`"),
        "{err}"
    );
}

#[test]
fn malformed_row_and_missing_column_name_file_line_and_column() {
    let log = three_rounds().replace(",,Bob,2,,no", ",,Bob,2,no");
    let (dir, _) = game_dir(&config(false), &log);
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("line 8, column `decision` (#6): malformed row: 5 fields"), "{err}");

    let (dir, _) = game_dir(&config(false), "round_quality,player,round,message\n");
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("line 1, column `decision`: missing from the header"), "{err}");
}

#[test]
fn missing_folder_and_bad_config_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&dir.path().join("nowhere")).unwrap_err().to_string();
    assert!(err.contains("nowhere"), "{err}");

    let (dir, _) =
        game_dir(&config(false).replace("\"p\": 0.5", "\"p\": \"half\""), &three_rounds());
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("config.json") && err.contains("line 3, column"), "{err}");
}
