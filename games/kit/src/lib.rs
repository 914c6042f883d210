//! descry-game-kit: the pieces every descry game plugin needs, so that a game crate holds
//! only what is specific to its game.
//!
//! - [`game`]: the shape of a plugin: the [`variants!`] enum of prompt variants, the
//!   [`game::Game`] trait and [`plugin!`], which writes the plugin's entry points once;
//! - [`alternating`]: what alternating-offers games (bargaining, negotiation) share: the
//!   log walk, the rounds, the narrative, the dialogue and their three prompts;
//! - [`error`]: [`KitError`], whose messages name the file, line and column of bad input;
//! - [`csv_table`]: CSV reading (`csv` + serde) that checks the header for the columns a
//!   game needs and reports every bad value by file, line and column name;
//! - [`json`]: JSON files (config, problem tables) with line/column errors, game
//!   parameters, and the private rendering context of a decision point;
//! - [`glee`]: discovery of GLEE game folders (`human_vs_llm/<family>/.../<GAME_ID>/`) and
//!   of which player was the human, from each game's `config.json`;
//! - [`options`]: decision options with their surface forms, variant specs, plugin info;
//! - [`render`]: the answer prefix `{"decision": "`, message building, number formatting,
//!   the observer (`predict`) preamble;
//! - `mutation` (feature `mutation`): seeded random byte edits of data files through a
//!   game's loader, for the game crates' tests;
//! - `sample` (feature `testing`): real rendered prompts for docs and examples;
//! - `testing` (feature `testing`): accessors, the transcript check, real prompts for
//!   snapshot tests (`snapshot_prompts!`) and the check of `docs/prompts.md`, for game
//!   plugins' tests. The game crates enable `testing` and `mutation` only in their
//!   dev-dependencies, so no plugin ships them;
//! - [`transcript`]: the exact meaning of the transcript (prefix) property and a checker.
#![deny(missing_docs)]

pub mod alternating;
pub mod csv_table;
pub mod error;
pub mod game;
pub mod glee;
pub mod json;
#[cfg(feature = "mutation")]
pub mod mutation;
pub mod options;
pub mod render;
#[cfg(feature = "testing")]
pub mod sample;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transcript;

pub use error::KitError;
pub use game::{Game, Variant};
pub use render::{answer_json, ANSWER_CLOSE, ANSWER_PREFIX};

/// What the [`plugin!`] macro expands to needs, reachable from the game crate.
#[doc(hidden)]
pub mod __private {
    pub use descry_abi::{
        self,
        game::GamePlugin,
        types::{DecisionPoint, GameInfo, LoadRequest, LoadedData, Prompt},
        PluginError,
    };
}

/// The real human data shipped beside this project (`../shared/data` from the workspace
/// root), for tests and examples. Tests that use it fail, never skip, when it is missing.
#[cfg(feature = "testing")]
pub fn shared_data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}
