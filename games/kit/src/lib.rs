//! descry-game-kit: the pieces every descry game plugin needs, so that a game crate holds
//! only what is specific to its game.
//!
//! - [`error`]: [`KitError`], whose messages name the file, line and column of bad input;
//! - [`csv_table`]: CSV reading (`csv` + serde) that checks the header for the columns a
//!   game needs and reports every bad value by file, line and column name;
//! - [`json`]: JSON files (config, problem tables) with line/column errors, game
//!   parameters, and the private rendering context of a decision point;
//! - [`glee`]: discovery of GLEE game folders (`human_vs_llm/<family>/.../<GAME_ID>/`) and
//!   of which player was the human, from each game's `config.json`;
//! - [`options`]: decision options with their surface forms, prompt variants, plugin info;
//! - [`render`]: the answer prefix `{"decision": "`, message building, number formatting;
//! - `mutation` (feature `mutation`): seeded random byte edits of data files through a
//!   game's loader, for the game crates' tests;
//! - [`sample`]: real rendered prompts for docs and examples;
//! - [`testing`]: accessors and the transcript check for game plugins' tests;
//! - [`transcript`]: the exact meaning of the transcript (prefix) property and a checker.
#![deny(missing_docs)]

pub mod csv_table;
pub mod error;
pub mod glee;
pub mod json;
#[cfg(feature = "mutation")]
pub mod mutation;
pub mod options;
pub mod render;
pub mod sample;
pub mod testing;
pub mod transcript;

pub use error::KitError;
pub use render::{answer_json, ANSWER_CLOSE, ANSWER_PREFIX};

/// The real human data shipped beside this project (`../shared/data` from the workspace
/// root), for tests and examples. Tests that use it fail, never skip, when it is missing.
pub fn shared_data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}
