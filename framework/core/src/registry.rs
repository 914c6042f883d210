//! The plugin registry: finds plugin libraries in folders, loads each through its
//! abi_stable header, and records every library that fails with its reason.
//!
//! Libraries are opened with `lib_header_from_path` + `init_root_module` (not
//! `load_from_directory`, which caches one module per interface type, so a second game
//! library would silently return the first). Libraries are never unloaded: plugin objects
//! and the strings they hand out must outlive every use.

use crate::config::{AnalysisSection, ConfigError};
use abi_stable::library::{lib_header_from_path, LibHeader, LibraryError, RootModule};
use descry_abi::{
    backend::{BackendBox, BackendModuleRef},
    game::{GameBox, GameModuleRef},
    metric::{MetricBox, MetricsModuleRef},
    root_names,
    types::{BackendInfo, GameInfo, MetricInfo, PluginInfo},
    ABI_VERSION,
};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The kind of a plugin library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// A game family.
    Game,
    /// An inference backend.
    Backend,
    /// A set of metrics.
    Metric,
}

/// A loaded game plugin.
pub struct LoadedGame {
    /// What the game says about itself.
    pub info: GameInfo,
    /// The library it came from.
    pub path: PathBuf,
    /// The game object.
    pub game: GameBox,
}

/// A loaded backend plugin.
pub struct LoadedBackend {
    /// Who the backend is and which model-folder artifacts it loads.
    pub info: BackendInfo,
    /// The library it came from.
    pub path: PathBuf,
    /// The backend object.
    pub backend: BackendBox,
}

/// A loaded metric (a metrics library provides several).
pub struct LoadedMetric {
    /// What the metric is.
    pub info: MetricInfo,
    /// The library that provides it.
    pub library: PluginInfo,
    /// The library it came from.
    pub path: PathBuf,
    /// The metric object.
    pub metric: MetricBox,
}

/// A library that could not be loaded, and why.
#[derive(Debug, Clone, Serialize)]
pub struct LoadFailure {
    /// The file.
    pub path: PathBuf,
    /// Why, in words.
    pub reason: String,
}

/// Everything found in the plugin folders.
#[derive(Default)]
pub struct Registry {
    /// Loaded games, in discovery order.
    pub games: Vec<LoadedGame>,
    /// Loaded backends.
    pub backends: Vec<LoadedBackend>,
    /// Loaded metrics.
    pub metrics: Vec<LoadedMetric>,
    /// Libraries that failed to load.
    pub failures: Vec<LoadFailure>,
    /// Folders scanned, in order.
    pub folders: Vec<PathBuf>,
}

/// One row of `descry plugins`: a loaded plugin.
#[derive(Debug, Clone, Serialize)]
pub struct PluginListing {
    /// Game, backend or metric.
    pub kind: PluginKind,
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// One line description.
    pub description: String,
    /// Library file.
    pub path: PathBuf,
}

/// True for files named like descry plugin libraries on this platform: `libdescry_*.so`,
/// `libdescry_*.dylib` or `descry_*.dll`. The name rule keeps the scan away from other
/// shared libraries that live beside the binary (an engine's runtime and its providers would
/// otherwise be opened, run their initialisers and be reported as broken plugins).
pub fn is_plugin_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    let stem = name.strip_prefix("lib").unwrap_or(name);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    stem.starts_with("descry_") && matches!(ext, "so" | "dylib" | "dll")
}

impl Registry {
    /// Scans `folders` in order (not recursively) and loads every shared library found.
    /// A folder that does not exist is skipped; a library that fails is recorded in
    /// `failures` and the scan goes on. A plugin whose name was already loaded from an
    /// earlier folder is recorded as a failure (shadowed), so the first folder wins.
    pub fn scan(folders: &[PathBuf]) -> Registry {
        let mut registry = Registry { folders: folders.to_vec(), ..Registry::default() };
        for folder in folders {
            let Ok(entries) = std::fs::read_dir(folder) else { continue };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_plugin_file(p))
                .collect();
            // Deterministic order whatever the file system returns.
            files.sort();
            for file in files {
                registry.load_library(&file);
            }
        }
        registry
    }

    /// Loads one library, recording a failure instead of returning an error.
    pub fn load_library(&mut self, path: &Path) {
        if let Err(reason) = self.try_load(path) {
            self.failures.push(LoadFailure { path: path.to_path_buf(), reason });
        }
    }

    fn try_load(&mut self, path: &Path) -> Result<(), String> {
        let header = lib_header_from_path(path).map_err(|e| describe_library_error(&e))?;
        let base_name = header.root_mod_consts().base_name().as_str().to_string();
        match base_name.as_str() {
            root_names::GAME => {
                let module = init::<GameModuleRef>(header)?;
                check_abi(module.abi_version())?;
                let game = into_result((module.new())())?;
                let info = into_result(game.info())?;
                let name = info.plugin.name.to_string();
                self.check_unique(PluginKind::Game, &name)?;
                self.games.push(LoadedGame { info, path: path.to_path_buf(), game });
            }
            root_names::BACKEND => {
                let module = init::<BackendModuleRef>(header)?;
                check_abi(module.abi_version())?;
                let backend = into_result((module.new())())?;
                let info = into_result(backend.info())?;
                let name = info.plugin.name.to_string();
                self.check_unique(PluginKind::Backend, &name)?;
                self.backends.push(LoadedBackend { info, path: path.to_path_buf(), backend });
            }
            root_names::METRICS => {
                let module = init::<MetricsModuleRef>(header)?;
                check_abi(module.abi_version())?;
                let library = (module.info())();
                let metrics = into_result((module.new())())?;
                for metric in metrics {
                    let info = into_result(metric.info())?;
                    self.check_unique(PluginKind::Metric, info.name.as_str())?;
                    self.metrics.push(LoadedMetric {
                        info,
                        library: library.clone(),
                        path: path.to_path_buf(),
                        metric,
                    });
                }
            }
            other => {
                return Err(format!(
                    "an abi_stable library, but not a descry plugin (root module `{other}`; \
                     expected one of {}, {}, {})",
                    root_names::GAME,
                    root_names::BACKEND,
                    root_names::METRICS
                ))
            }
        }
        Ok(())
    }

    fn check_unique(&self, kind: PluginKind, name: &str) -> Result<(), String> {
        let existing =
            self.listings().into_iter().find(|l| l.kind == kind && l.name == name).map(|l| l.path);
        match existing {
            Some(first) => Err(format!(
                "a {kind:?} plugin named `{name}` was already loaded from {}; this one is ignored",
                first.display()
            )
            .to_lowercase()),
            None => Ok(()),
        }
    }

    /// Every loaded plugin, games first, then backends, then metrics.
    pub fn listings(&self) -> Vec<PluginListing> {
        let games = self.games.iter().map(|g| PluginListing {
            kind: PluginKind::Game,
            name: g.info.plugin.name.to_string(),
            version: g.info.plugin.version.to_string(),
            description: g.info.plugin.description.to_string(),
            path: g.path.clone(),
        });
        let backends = self.backends.iter().map(|b| PluginListing {
            kind: PluginKind::Backend,
            name: b.info.plugin.name.to_string(),
            version: b.info.plugin.version.to_string(),
            description: b.info.plugin.description.to_string(),
            path: b.path.clone(),
        });
        let metrics = self.metrics.iter().map(|m| PluginListing {
            kind: PluginKind::Metric,
            name: m.info.name.to_string(),
            version: m.library.version.to_string(),
            description: m.info.description.to_string(),
            path: m.path.clone(),
        });
        games.chain(backends).chain(metrics).collect()
    }

    /// The game plugin with this name.
    pub fn game(&self, name: &str) -> Option<&LoadedGame> {
        self.games.iter().find(|g| g.info.plugin.name.as_str() == name)
    }

    /// The backend plugin with this name.
    pub fn backend(&self, name: &str) -> Option<&LoadedBackend> {
        self.backends.iter().find(|b| b.info.plugin.name.as_str() == name)
    }

    /// The metric with this name.
    pub fn metric(&self, name: &str) -> Option<&LoadedMetric> {
        self.metrics.iter().find(|m| m.info.name.as_str() == name)
    }

    /// Checks that every metric a study's `[analysis]` names is loaded. The error names
    /// the key that names the missing metric: `analysis.metrics` or
    /// `analysis.primary_metric`.
    pub fn check_metrics(&self, analysis: &AnalysisSection) -> Result<(), ConfigError> {
        let named = analysis
            .metrics
            .iter()
            .map(|m| ("analysis.metrics", m))
            .chain(std::iter::once(("analysis.primary_metric", &analysis.primary_metric)));
        for (key, name) in named {
            if self.metric(name).is_none() {
                let loaded: Vec<&str> = self.metrics.iter().map(|m| m.info.name.as_str()).collect();
                let loaded = if loaded.is_empty() { "none".to_string() } else { loaded.join(", ") };
                return Err(ConfigError::Invalid(format!(
                    "config key `{key}`: no metric named `{name}` is loaded (loaded: {loaded}); see `descry plugins`"
                )));
            }
        }
        Ok(())
    }
}

fn init<M: RootModule>(header: &'static LibHeader) -> Result<M, String> {
    header.init_root_module::<M>().map_err(|e| describe_library_error(&e))
}

fn check_abi(found: u32) -> Result<(), String> {
    if found == ABI_VERSION {
        Ok(())
    } else {
        Err(format!(
            "built against descry plugin ABI version {found}, but this descry speaks version \
             {ABI_VERSION}; rebuild the plugin against the current descry-abi"
        ))
    }
}

fn into_result<T>(
    r: abi_stable::std_types::RResult<T, abi_stable::std_types::RBoxError>,
) -> Result<T, String> {
    r.into_result().map_err(|e| e.to_string())
}

/// Turns abi_stable's loading errors into one line a user can act on.
fn describe_library_error(error: &LibraryError) -> String {
    match error {
        LibraryError::OpenError { .. } | LibraryError::GetSymbolError { .. } => {
            let text = error.to_string();
            if text.contains("undefined symbol")
                || matches!(error, LibraryError::GetSymbolError { .. })
            {
                format!("not a descry plugin (no abi_stable root module): {}", first_line(&text))
            } else {
                format!("not a loadable shared library: {}", first_line(&text))
            }
        }
        LibraryError::AbiInstability(_) => {
            format!(
                "type layout mismatch with this descry's plugin ABI: {}",
                first_line(&error.to_string())
            )
        }
        LibraryError::IncompatibleVersionNumber { .. } => {
            format!("incompatible descry-abi version: {}", first_line(&error.to_string()))
        }
        LibraryError::InvalidAbiHeader(_) => {
            format!(
                "built with an incompatible abi_stable version: {}",
                first_line(&error.to_string())
            )
        }
        other => first_line(&other.to_string()),
    }
}

/// abi_stable's messages span several lines; a failure is reported on one.
fn first_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
