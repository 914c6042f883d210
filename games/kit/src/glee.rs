//! GLEE human-vs-LLM games: finding them and telling which player was the human.
//!
//! The published layout is `human_vs_llm/<family>/<c1>/<c2>/<c3>/<GAME_ID>/` with a
//! `config.json` (game parameters, player types) and a `game.csv` (the log). Games are
//! found by walking the family folder, never from an index file, so any sample of the
//! published data in that layout loads the same way. The human is the player whose type is
//! `otree` (`otree_LLM` is the LLM): `player_1_type == "otree"` means player 1 (Alice) is
//! human, `"otree_LLM"` means player 2 (Bob) is. A game folder is skipped, with its reason,
//! when it has no `config.json` (the human cannot be determined, and is never guessed), no
//! `game.csv` (no log), or player types that do not say who is human.
//!
//! Symbolic links are followed (a sample may be a tree of links into the full data), but
//! no folder is walked twice: one reached again (a link looping back up the tree, or a
//! second path to a folder already walked) is skipped with [`reasons::ALREADY_WALKED`]
//! and both paths. Skipped rather than refused: everything under it is already counted
//! once through its first path, so nothing is lost or doubled, the run goes on over a tree
//! the researcher may not be able to change, and the skip is listed with the data. Two
//! different folders holding the same game id are an error: the same game twice, whose
//! copies may differ, so neither is picked silently.

use crate::{csv_table::CsvTable, json::read_json, KitError};
use descry_abi::types::SkippedItem;
use serde::{de::DeserializeOwned, Deserialize};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

/// Reasons a game folder is skipped; each [`SkippedItem::reason`] starts with one of these.
pub mod reasons {
    /// The folder has a log but no `config.json`.
    pub const NO_CONFIG: &str = "no config.json, so which player was human cannot be determined";
    /// The folder has a `config.json` but no log.
    pub const NO_LOG: &str = "no game.csv (a configuration without a game log)";
    /// The player types do not identify the human.
    pub const UNKNOWN_HUMAN: &str = "the player types do not say which player was human";
    /// The human made no decision of the kind the game predicts.
    pub const NO_HUMAN_DECISION: &str = "the human made no decision of the kind predicted here";
    /// The folder was reached again through a symbolic link (a loop, or a second path).
    pub const ALREADY_WALKED: &str =
        "a folder already walked, reached again through a symbolic link (its games count once)";
}

/// `player_N_args` of a GLEE config (other keys are ignored).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PlayerArgs {
    /// The name the player went by in the game (`Alice`, `Bob`).
    pub public_name: Option<String>,
    /// The player's discount factor, where the config gives it here (older bargaining
    /// configs) rather than in `game_args`.
    pub delta: Option<f64>,
}

/// A GLEE `config.json`, with the family-specific `game_args` as `A`.
#[derive(Debug, Clone, Deserialize)]
pub struct GleeConfig<A> {
    /// Configuration name (e.g. `bargaining_622`).
    pub name: Option<String>,
    /// `otree` (human) or `otree_LLM`.
    pub player_1_type: Option<String>,
    /// `otree` (human) or `otree_LLM`.
    pub player_2_type: Option<String>,
    /// Player 1's arguments.
    #[serde(default)]
    pub player_1_args: PlayerArgs,
    /// Player 2's arguments.
    #[serde(default)]
    pub player_2_args: PlayerArgs,
    /// The game's parameters.
    pub game_args: A,
}

/// Which player of a GLEE game.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seat {
    /// Player 1 (Alice: proposes first; the seller in negotiation and persuasion).
    Player1,
    /// Player 2 (Bob).
    Player2,
}

/// A game folder with a log, a config and a known human player.
#[derive(Debug, Clone)]
pub struct GleeGame<A> {
    /// The game id (the folder name).
    pub id: String,
    /// The folder, as `<family>/<c1>/<c2>/<c3>/<GAME_ID>` (for messages).
    pub label: String,
    /// `config.json`.
    pub config_path: PathBuf,
    /// `game.csv`.
    pub log_path: PathBuf,
    /// The parsed config.
    pub config: GleeConfig<A>,
    /// The human's seat.
    pub human: Seat,
}

impl<A> GleeGame<A> {
    /// The public name of the player in `seat` (`Alice` / `Bob` when the config is silent).
    pub fn name(&self, seat: Seat) -> String {
        let (args, default) = match seat {
            Seat::Player1 => (&self.config.player_1_args, "Alice"),
            Seat::Player2 => (&self.config.player_2_args, "Bob"),
        };
        args.public_name.clone().unwrap_or_else(|| default.to_string())
    }

    /// The human's public name.
    pub fn human_name(&self) -> String {
        self.name(self.human)
    }

    /// The LLM opponent's public name.
    pub fn opponent_name(&self) -> String {
        self.name(self.opponent())
    }

    /// The LLM opponent's seat.
    pub fn opponent(&self) -> Seat {
        match self.human {
            Seat::Player1 => Seat::Player2,
            Seat::Player2 => Seat::Player1,
        }
    }

    /// Checks that a log row's `player` (at `line` of `table`) names one of the two players.
    pub fn check_player(&self, table: &CsvTable, line: u64, player: &str) -> Result<(), KitError> {
        let (p1, p2) = (self.name(Seat::Player1), self.name(Seat::Player2));
        if player == p1 || player == p2 {
            return Ok(());
        }
        Err(table.error(
            line,
            "player",
            format!("unknown player `{player}`; expected `{p1}` or `{p2}`"),
        ))
    }

    /// A skipped item for this game.
    pub fn skip(&self, reason: impl Into<String>) -> SkippedItem {
        SkippedItem { item: self.label.clone().into(), reason: reason.into().into() }
    }
}

/// The games found under one family folder, and the folders skipped.
#[derive(Debug)]
pub struct Scan<A> {
    /// Games with a log and a known human, sorted by folder.
    pub games: Vec<GleeGame<A>>,
    /// Folders that were not turned into games, with reasons.
    pub skipped: Vec<SkippedItem>,
}

/// The folder holding `family`'s games under `path`, which may be the GLEE data folder
/// (containing `human_vs_llm/`), the `human_vs_llm` folder itself, or the family folder.
pub fn family_dir(path: &Path, family: &str) -> Result<PathBuf, KitError> {
    let candidates =
        [path.join("human_vs_llm").join(family), path.join(family), path.to_path_buf()];
    for (i, dir) in candidates.iter().enumerate() {
        // The path itself only counts when it is named after the family.
        if i == 2 && path.file_name().and_then(|n| n.to_str()) != Some(family) {
            continue;
        }
        if dir.is_dir() {
            return Ok(dir.clone());
        }
    }
    Err(KitError::io(
        path,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "no `{family}` games here: expected `human_vs_llm/{family}/` or `{family}/` inside it, \
                 or the `{family}` folder itself"
            ),
        ),
    ))
}

/// Walks `path` (see [`family_dir`]) for `family`'s game folders and reads each config.
/// Errors: the folder does not exist or cannot be listed; a `config.json` is malformed; two
/// folders hold the same game id.
pub fn scan<A: DeserializeOwned>(path: &Path, family: &str) -> Result<Scan<A>, KitError> {
    let root = family_dir(path, family)?;
    let mut walk = Walk {
        root: root.clone(),
        family,
        seen: HashMap::new(),
        folders: Vec::new(),
        skipped: Vec::new(),
    };
    let canonical = std::fs::canonicalize(&root).map_err(|e| KitError::io(&root, e))?;
    walk.seen.insert(canonical, family.to_string());
    walk.collect(&root)?;
    let mut games = Vec::new();
    let mut skipped = walk.skipped;
    let mut ids: HashMap<String, String> = HashMap::new();
    for dir in walk.folders {
        let label = walk_label(&root, family, &dir);
        let id = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let config_path = dir.join("config.json");
        let log_path = dir.join("game.csv");
        let skip =
            |reason: String| SkippedItem { item: label.clone().into(), reason: reason.into() };
        if !config_path.is_file() {
            skipped.push(skip(reasons::NO_CONFIG.to_string()));
            continue;
        }
        if !log_path.is_file() {
            skipped.push(skip(reasons::NO_LOG.to_string()));
            continue;
        }
        if let Some(first) = ids.insert(id.clone(), label.clone()) {
            return Err(KitError::file(
                &dir,
                format!(
                    "game id `{id}` is also the folder `{first}`: the same game twice (a copy?); \
                     keep one of the two folders"
                ),
            ));
        }
        let config: GleeConfig<A> = read_json(&config_path)?;
        let p1 = config.player_1_type.as_deref();
        let p2 = config.player_2_type.as_deref();
        let human = match (p1, p2) {
            (Some("otree"), None | Some("otree_LLM")) => Seat::Player1,
            (Some("otree_LLM"), None | Some("otree")) => Seat::Player2,
            _ => {
                skipped.push(skip(format!(
                    "{}: player_1_type = {:?}, player_2_type = {:?} (expected one `otree`, the other `otree_LLM`)",
                    reasons::UNKNOWN_HUMAN,
                    p1,
                    p2
                )));
                continue;
            }
        };
        games.push(GleeGame { id, label, config_path, log_path, config, human });
    }
    Ok(Scan { games, skipped })
}

/// `<family>/<path below the family folder>`, `/`-separated (for messages and skips).
fn walk_label(root: &Path, family: &str, dir: &Path) -> String {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    Path::new(family).join(rel).to_string_lossy().replace('\\', "/")
}

/// The state of one walk of a family folder.
struct Walk<'a> {
    root: PathBuf,
    family: &'a str,
    /// Canonical path of every folder walked so far → its label where first reached.
    seen: HashMap<PathBuf, String>,
    folders: Vec<PathBuf>,
    skipped: Vec<SkippedItem>,
}

impl Walk<'_> {
    /// Depth-first, in name order: a folder holding `config.json` or `game.csv` is a game
    /// folder (not descended further); other folders are walked. A folder whose canonical
    /// path was reached before is skipped with its reason: without this a link to a folder
    /// above multiplied every game under it until the path grew too long to resolve.
    fn collect(&mut self, dir: &Path) -> Result<(), KitError> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| KitError::io(dir, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .filter(|p| !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')))
            .collect();
        entries.sort();
        for sub in entries {
            let canonical = std::fs::canonicalize(&sub).map_err(|e| KitError::io(&sub, e))?;
            let label = walk_label(&self.root, self.family, &sub);
            if let Some(first) = self.seen.get(&canonical) {
                self.skipped.push(SkippedItem {
                    item: label.clone().into(),
                    reason: format!(
                        "{}: `{label}` is `{first}` (`{}`)",
                        reasons::ALREADY_WALKED,
                        canonical.display()
                    )
                    .into(),
                });
                continue;
            }
            self.seen.insert(canonical, label);
            if sub.join("config.json").is_file() || sub.join("game.csv").is_file() {
                self.folders.push(sub);
            } else {
                self.collect(&sub)?;
            }
        }
        Ok(())
    }
}

/// Checks that a response row of `round` (at `line` of `table`) answers the latest offer:
/// one of the same round, not answered yet. `latest` is that offer's round and whether it
/// already has a response.
pub fn check_response(
    table: &CsvTable,
    line: u64,
    round: u32,
    latest: Option<(u32, bool)>,
) -> Result<(), KitError> {
    match latest {
        Some((r, false)) if r == round => Ok(()),
        _ => Err(table.error(
            line,
            "round",
            format!("a response in round {round} without an offer before it"),
        )),
    }
}

/// Scans `path` for `family`'s games and turns each into an episode with `load_game`.
/// `skip_reason` may refuse a game before it is read (e.g. a human seller where only buyers
/// are predicted); a game whose log holds no decision of the human is skipped with
/// `no_decision` as the reason. Both are counted, never guessed.
pub fn load_episodes<A: DeserializeOwned>(
    path: &Path,
    family: &str,
    skip_reason: impl Fn(&GleeGame<A>) -> Option<&'static str>,
    no_decision: &str,
    load_game: impl Fn(&GleeGame<A>) -> Result<descry_abi::types::Episode, KitError>,
) -> Result<descry_abi::types::LoadedData, KitError> {
    let scan = scan::<A>(path, family)?;
    let mut episodes = Vec::new();
    let mut skipped = scan.skipped;
    for game in &scan.games {
        if let Some(why) = skip_reason(game) {
            skipped.push(game.skip(format!("{}: {why}", reasons::NO_HUMAN_DECISION)));
            continue;
        }
        let episode = load_game(game)?;
        if episode.decisions.is_empty() {
            skipped.push(game.skip(format!("{}: {no_decision}", reasons::NO_HUMAN_DECISION)));
        } else {
            episodes.push(episode);
        }
    }
    Ok(descry_abi::types::LoadedData { episodes: episodes.into(), skipped: skipped.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Args {}

    fn game(root: &Path, id: &str, config: Option<&str>, log: bool) {
        let dir = root.join("human_vs_llm/bargaining/0/1").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(types) = config {
            std::fs::write(dir.join("config.json"), format!("{{{types}, \"game_args\": {{}}}}"))
                .unwrap();
        }
        if log {
            std::fs::write(dir.join("game.csv"), "x\n").unwrap();
        }
    }

    #[test]
    fn finds_games_and_tells_who_is_human_without_guessing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        game(root, "A", Some(r#""player_1_type": "otree", "player_2_type": "otree_LLM""#), true);
        game(
            root,
            "B",
            Some(
                r#""player_1_type": "otree_LLM", "player_2_type": "otree", "player_2_args": {"public_name": "Bea"}"#,
            ),
            true,
        );
        game(root, "C", None, true);
        game(root, "D", Some(r#""player_1_type": "otree""#), false);
        game(root, "E", Some(r#""player_1_type": "otree", "player_2_type": "otree""#), true);
        let found_games = scan::<Args>(root, "bargaining").unwrap();
        let found: Vec<(&str, Seat, String)> =
            found_games.games.iter().map(|g| (g.id.as_str(), g.human, g.human_name())).collect();
        assert_eq!(
            found,
            [("A", Seat::Player1, "Alice".to_string()), ("B", Seat::Player2, "Bea".to_string())]
        );
        let skipped: Vec<(String, String)> = found_games
            .skipped
            .iter()
            .map(|s| (s.item.to_string(), s.reason.to_string()))
            .collect();
        assert_eq!(skipped.len(), 3);
        assert_eq!(skipped[0], ("bargaining/0/1/C".to_string(), reasons::NO_CONFIG.to_string()));
        assert_eq!(skipped[1].1, reasons::NO_LOG);
        assert!(skipped[2].1.starts_with(reasons::UNKNOWN_HUMAN), "{:?}", skipped[2]);
        // The same games from the family folder itself.
        assert_eq!(
            scan::<Args>(&root.join("human_vs_llm/bargaining"), "bargaining").unwrap().games.len(),
            2
        );
        assert!(scan::<Args>(root, "negotiation").is_err());
    }

    /// A link back up the tree and a second path to a game are walked once (with the
    /// real game folders of a tiny tree); before, the loop multiplied every game.
    #[cfg(unix)]
    #[test]
    fn a_folder_reached_again_through_a_link_is_walked_once() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let types = r#""player_1_type": "otree", "player_2_type": "otree_LLM""#;
        game(root, "A", Some(types), true);
        game(root, "B", Some(types), true);
        let family = root.join("human_vs_llm/bargaining");
        // A loop: `0/1/up` is the family folder itself; a second path: `Z` is game A.
        symlink(&family, family.join("0/1/up")).unwrap();
        symlink(family.join("0/1/A"), family.join("Z")).unwrap();
        let found = scan::<Args>(root, "bargaining").unwrap();
        let ids: Vec<&str> = found.games.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["A", "B"]);
        let skipped: Vec<(String, String)> =
            found.skipped.iter().map(|s| (s.item.to_string(), s.reason.to_string())).collect();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert_eq!(skipped[0].0, "bargaining/0/1/up");
        assert!(
            skipped[0].1.starts_with(reasons::ALREADY_WALKED)
                && skipped[0].1.contains("`bargaining/0/1/up` is `bargaining`"),
            "{skipped:?}"
        );
        assert_eq!(skipped[1].0, "bargaining/Z");
        assert!(
            skipped[1].1.starts_with(reasons::ALREADY_WALKED)
                && skipped[1].1.contains("`bargaining/Z` is `bargaining/0/1/A`"),
            "{skipped:?}"
        );
    }

    /// A copy of a game folder (not a link) is the same game twice: an error naming both.
    #[test]
    fn the_same_game_id_in_two_folders_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let types = r#""player_1_type": "otree", "player_2_type": "otree_LLM""#;
        game(root, "A", Some(types), true);
        let copy = root.join("human_vs_llm/bargaining/9/A");
        std::fs::create_dir_all(&copy).unwrap();
        for file in ["config.json", "game.csv"] {
            std::fs::copy(root.join("human_vs_llm/bargaining/0/1/A").join(file), copy.join(file))
                .unwrap();
        }
        let e = scan::<Args>(root, "bargaining").unwrap_err().to_string();
        assert!(
            e.contains(&copy.display().to_string())
                && e.contains("game id `A` is also the folder `bargaining/0/1/A`"),
            "{e}"
        );
    }

    #[test]
    fn player_and_response_checks_name_line_and_column() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        game(
            root,
            "A",
            Some(
                r#""player_1_type": "otree", "player_2_type": "otree_LLM", "player_2_args": {"public_name": "Bea"}"#,
            ),
            true,
        );
        let scan = scan::<Args>(root, "bargaining").unwrap();
        let g = &scan.games[0];
        let log = root.join("log.csv");
        std::fs::write(&log, "round,player\n1,Alice\n1,Carol\n").unwrap();
        let table = CsvTable::read(&log, &["round", "player"]).unwrap();
        assert!(g.check_player(&table, 2, "Alice").is_ok());
        assert!(g.check_player(&table, 2, "Bea").is_ok());
        let e = g.check_player(&table, 3, "Carol").unwrap_err().to_string();
        assert!(
            e.contains("line 3")
                && e.contains("player")
                && e.contains("unknown player `Carol`; expected `Alice` or `Bea`"),
            "{e}"
        );

        assert!(check_response(&table, 2, 3, Some((3, false))).is_ok());
        for latest in [None, Some((3, true)), Some((2, false))] {
            let e = check_response(&table, 2, 3, latest).unwrap_err().to_string();
            assert!(
                e.contains("line 2")
                    && e.contains("round")
                    && e.contains("a response in round 3 without an offer before it"),
                "{latest:?}: {e}"
            );
        }
    }
}
