//! The host's side of the backend contract: a study's `[backend]` settings as the typed
//! [`BackendSettings`] every backend takes, the backend's check of them (before any data is
//! read), and loading a model through a backend plugin. Nothing here knows an engine.

use crate::{
    config::{BackendOptions, Study, BACKEND_KEYS},
    error::RunError,
    registry::{LoadedBackend, Registry},
    study::StudyModel,
};
use descry_abi::{
    backend::ModelBox,
    types::{BackendSettings, ModelLoadRequest, SettingsProblem, SettingsScope},
};
use std::path::Path;

/// The study's backend: `backend.plugin`, or the one backend plugin loaded when the study
/// names none.
pub fn study_backend<'r>(
    study: &Study,
    registry: &'r Registry,
) -> Result<&'r LoadedBackend, RunError> {
    find_backend(registry, &study.backend.plugin)
}

/// The backend plugin named `name`, or the one loaded when `name` is empty.
pub fn find_backend<'r>(registry: &'r Registry, name: &str) -> Result<&'r LoadedBackend, RunError> {
    if !name.is_empty() {
        return registry.backend(name).ok_or_else(|| RunError::NoBackend(name.to_string()));
    }
    match registry.backends.as_slice() {
        [only] => Ok(only),
        [] => Err(RunError::Config(
            "config key `backend.plugin`: no backend plugin is loaded; build them with `cargo \
             build --workspace` or pass --plugin-dir (see `descry plugins`)"
                .into(),
        )),
        several => {
            let names: Vec<&str> = several.iter().map(|b| b.info.plugin.name.as_str()).collect();
            Err(RunError::Config(format!(
                "config key `backend.plugin`: {} backend plugins are loaded ({}); name one",
                names.len(),
                names.join(", ")
            )))
        }
    }
}

/// Every key of `[backend]` that is neither a shared setting nor a backend's table is an
/// error: one a loaded backend now takes in its own table says where it moved.
pub fn check_backend_keys(study: &Study, registry: &Registry) -> Result<(), RunError> {
    if let Some(key) = study.backend.stray_keys().next() {
        let source = study.origin.source_of(&format!("backend.{key}"));
        let moved = registry.backends.iter().find_map(|b| {
            let m = b.info.moved_keys.iter().find(|m| m.old.as_str() == key)?;
            Some((b.info.plugin.name.as_str(), m.new.as_str()))
        });
        return Err(RunError::Config(match moved {
            Some((plugin, new)) => format!(
                "config key `backend.{key}` from {source}: moved to the backend's own table; \
                 write `{new} = ...` under `[backend.{plugin}]` (or --set backend.{plugin}.{new}=...)"
            ),
            None => format!(
                "config key `backend.{key}` from {source}: unknown key; `[backend]` takes {} and \
                 one table per backend plugin, `[backend.PLUGIN]`, for its own settings (see \
                 `descry plugins`)",
                BACKEND_KEYS.join(", ")
            ),
        }));
    }
    Ok(())
}

/// The settings a study's models are loaded with by `plugin`: the study's `[backend]`
/// table and the plugin's own table, verbatim.
pub fn backend_settings(study: &Study, plugin: &str) -> BackendSettings {
    settings_of(&study.backend, plugin, &study.origin.base_dir())
}

/// [`BackendSettings`] from `[backend]` options for `plugin`; relative paths of its own
/// table are relative to `base_dir`.
pub fn settings_of(options: &BackendOptions, plugin: &str, base_dir: &Path) -> BackendSettings {
    BackendSettings {
        device: options.device.as_str().into(),
        threads: u32::try_from(options.threads).unwrap_or(u32::MAX),
        token_budget: options.batch_tokens as u64,
        prefix_reuse: options.prefix_reuse,
        prefix_cache_tokens: options.prefix_cache_tokens.into(),
        engine_json: options.engine_table(plugin).to_string().into(),
        base_dir: base_dir.to_string_lossy().as_ref().into(),
    }
}

/// The config key of a backend's settings problem.
pub fn settings_key(plugin: &str, problem: &SettingsProblem) -> String {
    match problem.scope {
        // An empty key is the table itself (not a table, say).
        SettingsScope::Engine if problem.key.is_empty() => format!("backend.{plugin}"),
        SettingsScope::Engine => format!("backend.{plugin}.{}", problem.key),
        SettingsScope::Shared => match problem.key.as_str() {
            "token_budget" => "backend.batch_tokens".to_string(),
            key => format!("backend.{key}"),
        },
    }
}

/// Asks a backend to check settings; every problem as (config key, reason).
pub fn check_settings(
    backend: &LoadedBackend,
    settings: &BackendSettings,
) -> Result<Vec<(String, String)>, RunError> {
    let plugin = backend.info.plugin.name.as_str();
    let problems = backend.backend.check(settings).into_result().map_err(|e| {
        RunError::Config(format!("backend `{plugin}` could not check its settings: {e}"))
    })?;
    Ok(problems.iter().map(|p| (settings_key(plugin, p), p.reason.to_string())).collect())
}

/// Asks the study's backend to check its settings, before any data is read: every
/// problem is named by its config key and the layer (file, variable, `--set`) it came from.
pub(crate) fn check_backend(study: &Study, backend: &LoadedBackend) -> Result<(), RunError> {
    let problems =
        check_settings(backend, &backend_settings(study, backend.info.plugin.name.as_str()))?;
    if problems.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = problems
        .iter()
        .map(|(key, reason)| {
            format!("config key `{key}` from {}: {reason}", study.origin.source_of(key))
        })
        .collect();
    Err(RunError::Config(lines.join("\n")))
}

/// Loads a model folder through a backend plugin with the given settings.
pub fn load_model_with(
    registry: &Registry,
    plugin: &str,
    model_dir: &Path,
    settings: &BackendSettings,
) -> Result<ModelBox, RunError> {
    let backend =
        registry.backend(plugin).ok_or_else(|| RunError::NoBackend(plugin.to_string()))?;
    let request = ModelLoadRequest {
        model_dir: model_dir.to_string_lossy().as_ref().into(),
        settings: settings.clone(),
    };
    backend.backend.load(&request).into_result().map_err(|e| RunError::BackendLoad {
        backend: plugin.to_string(),
        model: model_dir.display().to_string(),
        reason: e.to_string(),
    })
}

/// Loads a model of the study through the study's backend.
pub fn load_backend_model(
    study: &Study,
    registry: &Registry,
    model: &StudyModel,
) -> Result<ModelBox, RunError> {
    let plugin = study_backend(study, registry)?.info.plugin.name.as_str();
    load_model_with(registry, plugin, &model.folder.dir, &backend_settings(study, plugin)).map_err(
        |e| match e {
            RunError::BackendLoad { backend, reason, .. } => {
                RunError::BackendLoad { backend, model: model.name.clone(), reason }
            }
            other => other,
        },
    )
}
