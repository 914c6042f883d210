use super::*;
use descry_abi::game::GamePlugin;
use descry_game_kit::json::context;
use descry_game_kit::{
    glee::reasons,
    testing::{
        answer, check_transcripts, count_flag, count_skipped, option, points, real_data,
        render_every_variant,
    },
    transcript::check_episode,
};
use std::path::PathBuf;

fn real() -> LoadedData {
    real_data::<Negotiation>("glee")
}

#[test]
fn counts_match_the_published_sample() {
    let data = real();
    let points = points(&data);
    assert_eq!(points.len(), 42);
    let count = |o: &str| points.iter().filter(|p| option(p) == o).count();
    assert_eq!((count(ACCEPT), count(REJECT), count(OUTSIDE)), (26, 15, 1));
    assert_eq!(points.iter().filter(|p| answer(p) == BUY_FROM_JOHN).count(), 1);
    assert_eq!(points.iter().filter(|p| p.outcome.rate == 1.0).count(), 26);
    // 39 games with a log and a known human; 7 of them without a human response.
    assert_eq!(data.episodes.len(), 32);
    assert_eq!(count_skipped(&data, reasons::NO_HUMAN_DECISION), 7);
    assert_eq!(count_skipped(&data, reasons::NO_CONFIG), 1);
    assert_eq!(count_skipped(&data, reasons::NO_LOG), 3);
    assert_eq!(data.skipped.len(), 11);
}

#[test]
fn flags_mark_messy_negotiators_and_keep_them() {
    let data = real();
    let points = points(&data);
    assert_eq!(count_flag(&points, "accepted_worse_than_outside"), 17);
    assert_eq!(count_flag(&points, "implausible_own_offer"), 7);
    assert_eq!(count_flag(&points, "outside_option_mismatch"), 0);
}

#[test]
fn transcript_prefix_property_on_real_episodes() {
    let multi = check_transcripts(&real(), |p| render(p, "transcript"));
    assert_eq!(multi, 6);
}

#[test]
fn every_point_renders_in_every_variant() {
    render_every_variant::<Negotiation>(&points(&real()));
}

#[test]
fn the_prompt_names_the_humans_own_outside_option() {
    let data = real();
    for p in points(&data) {
        let ctx: Context = context(p).unwrap();
        let text = render(p, "native").unwrap().messages[1].content.to_string();
        let (own, other) = if ctx.human_is_seller {
            (SELL_TO_JOHN, BUY_FROM_JOHN)
        } else {
            (BUY_FROM_JOHN, SELL_TO_JOHN)
        };
        assert!(text.contains(own) && !text.contains(other), "{text}");
    }
    let info = Negotiation.info();
    let outside = info.options.iter().find(|o| o.id.as_str() == OUTSIDE).unwrap();
    let forms: Vec<&str> = outside.surface_forms.iter().map(|f| f.as_str()).collect();
    assert!(forms.contains(&"SellToJhon") && forms.contains(&"BuyFromJhon"));
}

// --------------------------------------------------------------------------- bad input

const CONFIG: &str = r#"{"name": "t", "player_1_type": "otree", "player_2_type": "otree_LLM",
 "player_1_args": {"public_name": "Alice"}, "player_2_args": {"public_name": "Bob"},
 "game_args": {"seller_value": 1.0, "buyer_value": 1.2, "product_price_order": 100, "max_rounds": 10,
 "messages_allowed": true, "complete_information": false}}"#;

const HEADER: &str = "message,product_price,player,round,decision\n";

fn game_dir(log: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let game = dir.path().join("human_vs_llm/negotiation/0/0/0/G1");
    std::fs::create_dir_all(&game).unwrap();
    std::fs::write(game.join("config.json"), CONFIG).unwrap();
    std::fs::write(game.join("game.csv"), log).unwrap();
    let log_path = game.join("game.csv");
    (dir, log_path)
}

#[test]
fn a_human_seller_game_with_an_outside_option() {
    let (dir, _) = game_dir(&format!(
        "{HEADER}hello,150.0,Alice,1,\n,,Bob,1,RejectOffer\n\"how about\n$90?\",90.0,Bob,2,\n,,Alice,2,RejectOffer\n\
         firm,140.0,Alice,3,\n,,Bob,3,RejectOffer\nno,95.0,Bob,4,\n,,Alice,4,SellToJhon\n"
    ));
    let data = load(dir.path()).unwrap();
    let pts = points(&data);
    assert_eq!(pts.len(), 2);
    assert_eq!(option(pts[1]), OUTSIDE);
    let prompts: Vec<Prompt> = pts.iter().map(|p| render(p, "transcript").unwrap()).collect();
    check_episode(&prompts, &[REJECT.to_string(), SELL_TO_JOHN.to_string()]).unwrap();
    let text = prompts[1]
        .messages
        .iter()
        .map(|m| m.content.to_string())
        .collect::<Vec<_>>()
        .join("\n---\n");
    assert!(text.contains("{\"product_price\": 140, \"message\": \"firm\"}"), "{text}");
    assert!(text.contains("Bob's message: how about\n$90?"), "{text}");
    assert!(text.contains("(3) SellToJhon: sell the product to John for $100"), "{text}");
}

#[test]
fn unknown_decision_names_file_line_and_column() {
    let (dir, log) = game_dir(&format!(
        "{HEADER}hello,150.0,Alice,1,\n,,Bob,1,RejectOffer\nx,90.0,Bob,2,\n,,Alice,2,Maybe\n"
    ));
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&log.display().to_string()), "{err}");
    assert!(err.contains("line 5, column `decision` (#5): unknown decision `Maybe`"), "{err}");
}

#[test]
fn malformed_row_missing_column_and_missing_folder() {
    let (dir, _) = game_dir(&format!("{HEADER}hello,150.0,Alice,1\n"));
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains(
            "line 2, column `decision` (#5): malformed row: 4 fields where the header has 5"
        ),
        "{err}"
    );

    let (dir, _) = game_dir("message,player,round,decision\n");
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("line 1, column `product_price`: missing from the header"), "{err}");

    let (dir, _) = game_dir(&format!("{HEADER}hello,cheap,Alice,1,\n"));
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("line 2, column `product_price` (#2): `cheap` is not a number"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let err = load(&dir.path().join("gone")).unwrap_err().to_string();
    assert!(err.contains("gone"), "{err}");
}

/// A buyer facing the seller's offer in the last of two rounds (Alice, an LLM, proposed
/// in both; the buyer rejected her first price).
fn small_buyer_game() -> Context {
    Context {
        human: "Bob".into(),
        opponent: "Alice".into(),
        human_is_seller: false,
        seller_value: 500.0,
        buyer_value: 800.0,
        max_rounds: 2,
        messages_allowed: true,
        complete_information: false,
        rounds: vec![
            Round {
                round: 1,
                human_proposed: false,
                offer: Price { price: 900.0 },
                message: Some("A bargain.".into()),
                response: Some(REJECT.into()),
            },
            Round {
                round: 2,
                human_proposed: false,
                offer: Price { price: 750.5 },
                message: None,
                response: None,
            },
        ],
    }
}

#[test]
fn the_last_round_offers_no_counteroffer_and_the_buyers_outside_option() {
    let ctx = small_buyer_game();
    let prompt = <Negotiation as Game>::prompt(&ctx, Variant::Native);
    assert_eq!(
        prompt.messages[1].content.as_str(),
        "Round 1\nAlice's offer: the price is $900.\nAlice's message: A bargain.\nYou rejected the offer.\n\n\
         Round 2\nAlice's offer: the price is $750.5.\nYou have three options:\n\
         (1) AcceptOffer: accept Alice's offer and buy the product from Alice for $750.5\n\
         (2) RejectOffer: reject Alice's offer\n\
         (3) BuyFromJhon: buy the product from John for $800\nWhat do you decide?"
    );
    let system = prompt.messages[0].content.as_str();
    assert!(system.contains("You do not know how much the product is worth to Alice."), "{system}");
    assert!(
        system.ends_with("{\"decision\": \"RejectOffer\"} or {\"decision\": \"BuyFromJhon\"}."),
        "{system}"
    );
    let observed = <Negotiation as Game>::prompt(&ctx, Variant::Predict);
    let user = observed.messages[1].content.as_str();
    assert!(
        user.starts_with("The participant played as Bob, the buyer.\n\nInstructions:\n"),
        "{user}"
    );
}
