//! Loading a study's games: the configured plugin reads its data set into episodes.

use crate::{
    config::{GameSection, Study},
    registry::{LoadedGame, Registry},
};
use abi_stable::std_types::RString;
use descry_abi::types::{Episode, GameInfo, LoadRequest, SkippedItem};
use std::path::PathBuf;

/// Why a game of the study cannot be loaded. Messages name the config key.
#[derive(Debug, thiserror::Error)]
pub enum GameError {
    /// The plugin named by `games.NAME.plugin` is not loaded.
    #[error("config key `games.{game}.plugin`: no game plugin named `{plugin}` is loaded (loaded: {loaded}); check the name or `descry plugins`")]
    UnknownPlugin {
        /// The study's name for the game.
        game: String,
        /// The plugin asked for.
        plugin: String,
        /// The plugins that are loaded.
        loaded: String,
    },
    /// The data path does not exist.
    #[error("config key `games.{game}.data`: {path} does not exist (data.root is {root}); fix the path, set data.root, or run `descry data fetch`")]
    MissingData {
        /// The study's name for the game.
        game: String,
        /// The resolved path.
        path: PathBuf,
        /// The data root.
        root: PathBuf,
    },
    /// A variant named in `games.NAME.variants` does not exist.
    #[error(
        "config key `games.{game}.variants`: the game has no variant `{variant}` (it has: {known})"
    )]
    UnknownVariant {
        /// The study's name for the game.
        game: String,
        /// The variant asked for.
        variant: String,
        /// The variants it has.
        known: String,
    },
    /// The plugin's loader failed (bad data, or a panic, reported by the plugin guard).
    #[error("games.{game}: loading {path} failed: {reason}")]
    Load {
        /// The study's name for the game.
        game: String,
        /// The data path.
        path: PathBuf,
        /// The plugin's error.
        reason: String,
    },
}

/// A game of the study, resolved against the registry (no data read yet).
pub struct StudyGame<'r> {
    /// The study's name for it (`games.NAME`).
    pub name: String,
    /// The plugin.
    pub plugin: &'r LoadedGame,
    /// Its info.
    pub info: GameInfo,
    /// The resolved data path.
    pub data_path: PathBuf,
    /// The game section.
    pub section: GameSection,
    /// The variants to run, in the game's order.
    pub variants: Vec<String>,
}

/// A loaded data set.
pub struct GameData {
    /// Episodes (after `limit`).
    pub episodes: Vec<Episode>,
    /// Episodes that existed before `limit`.
    pub episodes_total: usize,
    /// What the loader skipped.
    pub skipped: Vec<SkippedItem>,
}

/// Resolves every game of a study: plugin, data path, variants. Checks everything a run
/// needs before any data is read or any model is run.
pub fn resolve_games<'r>(
    study: &Study,
    registry: &'r Registry,
) -> Result<Vec<StudyGame<'r>>, GameError> {
    let mut games = Vec::new();
    for (name, section) in &study.games {
        let plugin_name = section.plugin.clone().unwrap_or_else(|| name.clone());
        let plugin = registry.game(&plugin_name).ok_or_else(|| GameError::UnknownPlugin {
            game: name.clone(),
            plugin: plugin_name.clone(),
            loaded: registry
                .games
                .iter()
                .map(|g| g.info.plugin.name.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        let data_path = study.game_data_path(section);
        if !data_path.exists() {
            return Err(GameError::MissingData {
                game: name.clone(),
                path: data_path,
                root: study.data_root(),
            });
        }
        let info = plugin.info.clone();
        let known: Vec<String> = info.variants.iter().map(|v| v.name.to_string()).collect();
        let variants = if section.variants.is_empty() {
            known.clone()
        } else {
            for v in &section.variants {
                if !known.contains(v) {
                    return Err(GameError::UnknownVariant {
                        game: name.clone(),
                        variant: v.clone(),
                        known: known.join(", "),
                    });
                }
            }
            known.iter().filter(|k| section.variants.contains(k)).cloned().collect()
        };
        games.push(StudyGame {
            name: name.clone(),
            plugin,
            info,
            data_path,
            section: section.clone(),
            variants,
        });
    }
    Ok(games)
}

impl StudyGame<'_> {
    /// Reads the data set through the plugin and applies `limit` (the first N episodes in
    /// the loader's order, which is deterministic).
    pub fn load(&self) -> Result<GameData, GameError> {
        let request = LoadRequest {
            path: RString::from(self.data_path.to_string_lossy().as_ref()),
            params_json: RString::from(self.section.params.to_string()),
        };
        let loaded =
            self.plugin.game.load(&request).into_result().map_err(|e| GameError::Load {
                game: self.name.clone(),
                path: self.data_path.clone(),
                reason: e.to_string(),
            })?;
        let mut episodes: Vec<Episode> = loaded.episodes.into_vec();
        let episodes_total = episodes.len();
        if let Some(limit) = self.section.limit {
            episodes.truncate(limit);
        }
        Ok(GameData { episodes, episodes_total, skipped: loaded.skipped.into_vec() })
    }
}
