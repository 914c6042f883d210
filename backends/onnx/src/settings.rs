//! The backend's settings: the shared fields of [`BackendSettings`] and its own table
//! (`[backend.onnx]` in a study), parsed into [`EngineOptions`], every problem reported with
//! its key and without loading anything.
//!
//! The `[backend.onnx]` keys:
//! - `library`: the ONNX Runtime shared library; a relative path is relative to the study's
//!   folder (default: `ORT_DYLIB_PATH`, else
//!   `$DESCRY_HOME/onnxruntime/libonnxruntime.so.1.31.1`, `$DESCRY_HOME` defaulting to
//!   `~/.cache/descry`; `scripts/setup-models.sh` installs it there);
//! - `graph_optimization`: ONNX Runtime's graph optimisation level, `disable`, `basic`,
//!   `extended` or `all` (default `all`);
//! - `min_shared_prefix`: the shortest run of tokens that sequences share worth a pass of
//!   its own (default 32: a shorter node of the radix tree is recomputed in each child,
//!   which costs a few percent over the trie minimum and saves more in passes; 1 computes
//!   exactly the trie minimum; off when the shared `prefix_reuse` is false).

use std::path::{Path, PathBuf};

use descry_abi::types::{BackendSettings, SettingsProblem, SettingsScope};
use serde_json::{Map, Value};

/// The keys of the backend's own table.
pub const ENGINE_KEYS: &[&str] = &["library", "graph_optimization", "min_shared_prefix"];

/// The ONNX Runtime release descry is built and tested against.
pub const ORT_LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";

/// The default shortest shared prefix worth computing once.
pub const DEFAULT_MIN_SHARED_PREFIX: usize = 32;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// The CUDA provider on the given GPU (needs the `cuda` feature and the
    /// `onnxruntime-gpu` library); failing to register it is an error, never a silent
    /// fallback to the CPU.
    Cuda {
        /// CUDA device ordinal.
        device_id: i32,
    },
}

impl Device {
    /// Parses `cpu`, `cuda` or `cuda:N`.
    pub fn parse(text: &str) -> Option<Device> {
        match text {
            "cpu" => Some(Device::Cpu),
            "cuda" => Some(Device::Cuda { device_id: 0 }),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<i32>().ok())
                .filter(|&id| id >= 0)
                .map(|device_id| Device::Cuda { device_id }),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda { device_id } => write!(f, "cuda:{device_id}"),
        }
    }
}

/// ONNX Runtime's graph optimisation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphOptimization {
    /// No graph optimisation.
    Disable,
    /// Constant folding and redundant-node elimination.
    Basic,
    /// Basic plus complex node fusions.
    Extended,
    /// Everything, layout optimisations included.
    #[default]
    All,
}

impl GraphOptimization {
    /// The names, in order of level.
    pub const NAMES: [&'static str; 4] = ["disable", "basic", "extended", "all"];

    /// Parses one of [`GraphOptimization::NAMES`].
    pub fn parse(text: &str) -> Option<GraphOptimization> {
        match text {
            "disable" => Some(GraphOptimization::Disable),
            "basic" => Some(GraphOptimization::Basic),
            "extended" => Some(GraphOptimization::Extended),
            "all" => Some(GraphOptimization::All),
            _ => None,
        }
    }

    /// The name of the level.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// How to load and run a model.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// CPU or CUDA.
    pub device: Device,
    /// Intra-op threads (`None`: ONNX Runtime's default, one per core).
    pub threads: Option<usize>,
    /// Most padded tokens in one forward pass; longer sequences run in chunks.
    pub token_budget: usize,
    /// Sequences sharing at least this many leading tokens compute them once
    /// (`usize::MAX`: never).
    pub min_shared_prefix: usize,
    /// Tokens of shared-prefix key/values kept from one call to the next (`None`: the
    /// token budget; 0: none).
    pub prefix_cache_tokens: Option<usize>,
    /// The ONNX Runtime shared library (`None`: [`default_library`]).
    pub library: Option<PathBuf>,
    /// ONNX Runtime graph optimisation level.
    pub graph_optimization: GraphOptimization,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            device: Device::Cpu,
            threads: None,
            token_budget: 4096,
            min_shared_prefix: DEFAULT_MIN_SHARED_PREFIX,
            prefix_cache_tokens: None,
            library: None,
            graph_optimization: GraphOptimization::All,
        }
    }
}

impl EngineOptions {
    /// The ONNX Runtime library these options load.
    pub fn library_path(&self) -> PathBuf {
        self.library.clone().unwrap_or_else(default_library)
    }

    /// Tokens of shared prefixes kept from one call to the next.
    pub fn cache_tokens(&self) -> usize {
        self.prefix_cache_tokens.unwrap_or(self.token_budget)
    }
}

/// `$DESCRY_HOME`, else `$HOME/.cache/descry` (as the host resolves it).
fn descry_home() -> PathBuf {
    if let Some(home) = std::env::var_os("DESCRY_HOME") {
        return PathBuf::from(home);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("descry")
}

/// The default ONNX Runtime library: `ORT_DYLIB_PATH`, else
/// `$DESCRY_HOME/onnxruntime/libonnxruntime.so.1.31.1`.
pub fn default_library() -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| descry_home().join("onnxruntime").join(ORT_LIBRARY_FILE))
}

fn problem(scope: SettingsScope, key: &str, reason: String) -> SettingsProblem {
    SettingsProblem { scope, key: key.into(), reason: reason.into() }
}

/// What a JSON value is, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

/// Parses the settings into options, or returns every problem found. Checks only what the
/// settings say: the library's presence is [`check`]'s.
pub fn parse(settings: &BackendSettings) -> Result<EngineOptions, Vec<SettingsProblem>> {
    let mut problems = Vec::new();
    let mut options = EngineOptions::default();

    match Device::parse(settings.device.as_str()) {
        Some(Device::Cuda { .. }) if !cfg!(feature = "cuda") => problems.push(problem(
            SettingsScope::Shared,
            "device",
            format!(
                "\"{}\": this build of the onnx backend has no CUDA support; rebuild it with \
                 `--features cuda`",
                settings.device
            ),
        )),
        Some(device) => options.device = device,
        None => problems.push(problem(
            SettingsScope::Shared,
            "device",
            format!("unknown device \"{}\" (expected cpu, cuda or cuda:N)", settings.device),
        )),
    }
    options.threads = (settings.threads > 0).then_some(settings.threads as usize);
    if settings.token_budget == 0 {
        problems.push(problem(SettingsScope::Shared, "token_budget", "must be at least 1".into()));
    }
    options.token_budget = usize::try_from(settings.token_budget).unwrap_or(usize::MAX);
    options.prefix_cache_tokens = settings
        .prefix_cache_tokens
        .into_option()
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));

    let engine = |key: &str, reason: String| problem(SettingsScope::Engine, key, reason);
    // No table at all reads as an empty one.
    let text = match settings.engine_json.trim() {
        "" => "{}",
        text => text,
    };
    let table: Map<String, Value> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            problems.push(engine("", format!("expected a table, found {}", kind(&other))));
            Map::new()
        }
        Err(e) => {
            problems.push(engine("", format!("not valid JSON: {e}")));
            Map::new()
        }
    };
    let mut min_shared_prefix = DEFAULT_MIN_SHARED_PREFIX;
    for (key, value) in &table {
        match key.as_str() {
            "library" => match value {
                Value::String(s) if !s.is_empty() => {
                    let p = Path::new(s);
                    options.library = Some(if p.is_relative() && !settings.base_dir.is_empty() {
                        Path::new(settings.base_dir.as_str()).join(p)
                    } else {
                        p.to_path_buf()
                    });
                }
                Value::String(_) => problems.push(engine(
                    key,
                    "is empty; give the path of the ONNX Runtime library, or leave the key out \
                     for the default"
                        .into(),
                )),
                other => problems.push(engine(
                    key,
                    format!("must be a string (a file path), found {}", kind(other)),
                )),
            },
            "graph_optimization" => {
                let allowed = GraphOptimization::NAMES.join(", ");
                match value.as_str().map(|s| (s, GraphOptimization::parse(s))) {
                    Some((_, Some(level))) => options.graph_optimization = level,
                    Some((s, None)) => problems.push(engine(
                        key,
                        format!("unknown level \"{s}\" (expected one of {allowed})"),
                    )),
                    None => problems.push(engine(
                        key,
                        format!("must be a string ({allowed}), found {}", kind(value)),
                    )),
                }
            }
            "min_shared_prefix" => match value.as_u64() {
                Some(n) => min_shared_prefix = usize::try_from(n).unwrap_or(usize::MAX),
                None => problems.push(engine(
                    key,
                    format!("must be a non-negative integer, found {}", kind(value)),
                )),
            },
            _ => problems.push(engine(
                key,
                format!("unknown key (the onnx backend's keys: {})", ENGINE_KEYS.join(", ")),
            )),
        }
    }
    // Reuse off: no beginning is long enough to share.
    options.min_shared_prefix = if settings.prefix_reuse { min_shared_prefix } else { usize::MAX };
    if problems.is_empty() {
        Ok(options)
    } else {
        Err(problems)
    }
}

/// Every problem with the settings, the ONNX Runtime library's presence included; loads
/// nothing.
pub fn check(settings: &BackendSettings) -> Vec<SettingsProblem> {
    match parse(settings) {
        Err(problems) => problems,
        Ok(options) => {
            let library = options.library_path();
            if library.is_file() {
                return Vec::new();
            }
            let reason =
                format!("the ONNX Runtime library {} {}", library.display(), missing_library());
            vec![problem(SettingsScope::Engine, "library", reason)]
        }
    }
}

/// Why the library the options name cannot be used, and what to do (after its path).
pub(crate) fn missing_library() -> String {
    format!(
        "does not exist; set `backend.onnx.library` to the ONNX Runtime library, or leave it out \
         for the default (ORT_DYLIB_PATH, else $DESCRY_HOME/onnxruntime/{ORT_LIBRARY_FILE}, where \
         scripts/setup-models.sh installs it)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::ROption;

    fn settings(engine_json: &str) -> BackendSettings {
        BackendSettings {
            device: "cpu".into(),
            threads: 0,
            token_budget: 4096,
            prefix_reuse: true,
            prefix_cache_tokens: ROption::RNone,
            engine_json: engine_json.into(),
            base_dir: "/study".into(),
        }
    }

    fn keys(problems: &[SettingsProblem]) -> Vec<(SettingsScope, String)> {
        problems.iter().map(|p| (p.scope, p.key.to_string())).collect()
    }

    #[test]
    fn shared_fields_and_defaults() {
        let o = parse(&settings("{}")).expect("defaults parse");
        assert_eq!(parse(&settings(" ")).expect("no table"), o);
        assert_eq!(o.graph_optimization, GraphOptimization::All);
        assert_eq!((o.threads, o.token_budget, o.min_shared_prefix), (None, 4096, 32));
        assert_eq!((&o.library, o.prefix_cache_tokens, o.cache_tokens()), (&None, None, 4096));
        let mut s = settings(
            r#"{"library": "ort/lib.so", "graph_optimization": "basic",
            "min_shared_prefix": 7}"#,
        );
        s.device = "cuda:1".into();
        s.threads = 3;
        s.prefix_cache_tokens = ROption::RSome(0);
        let o = parse(&s).expect("parses");
        if cfg!(feature = "cuda") {
            assert_eq!(o.device, Device::Cuda { device_id: 1 });
        }
        assert_eq!(o.threads, Some(3));
        assert_eq!(o.library, Some(PathBuf::from("/study/ort/lib.so")), "relative to base_dir");
        assert_eq!((o.graph_optimization, o.min_shared_prefix), (GraphOptimization::Basic, 7));
        assert_eq!(o.cache_tokens(), 0);
        s.prefix_reuse = false;
        assert_eq!(parse(&s).expect("parses").min_shared_prefix, usize::MAX, "reuse off");
        let abs = parse(&settings(r#"{"library": "/abs/lib.so"}"#)).expect("parses");
        assert_eq!(abs.library, Some(PathBuf::from("/abs/lib.so")));
        assert_eq!(Device::parse("cuda"), Some(Device::Cuda { device_id: 0 }));
        assert_eq!(Device::Cuda { device_id: 2 }.to_string(), "cuda:2");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let mut s = settings(
            r#"{"gpu": true, "library": 3, "graph_optimization": "max", "min_shared_prefix": -1}"#,
        );
        s.device = "tpu".into();
        s.token_budget = 0;
        let problems = parse(&s).unwrap_err();
        assert_eq!(
            keys(&problems),
            [
                (SettingsScope::Shared, "device".into()),
                (SettingsScope::Shared, "token_budget".into()),
                (SettingsScope::Engine, "gpu".into()),
                (SettingsScope::Engine, "library".into()),
                (SettingsScope::Engine, "graph_optimization".into()),
                (SettingsScope::Engine, "min_shared_prefix".into()),
            ]
        );
        let reason = |i: usize| problems[i].reason.to_string();
        assert!(reason(0).contains("unknown device \"tpu\" (expected cpu, cuda or cuda:N)"));
        assert!(
            reason(2).contains("library, graph_optimization, min_shared_prefix"),
            "{}",
            reason(2)
        );
        assert!(reason(3).contains("must be a string") && reason(3).contains("an integer"));
        assert!(
            reason(4).contains("\"max\"") && reason(4).contains("disable, basic, extended, all")
        );
        assert!(reason(5).contains("non-negative integer"));
        for bad in ["[1]", "nope"] {
            let p = parse(&settings(bad)).unwrap_err();
            assert_eq!(keys(&p), [(SettingsScope::Engine, String::new())], "{bad}");
        }
        assert_eq!(keys(&parse(&settings(r#"{"graph_optimization": 1}"#)).unwrap_err()).len(), 1);
    }

    #[test]
    fn check_names_a_missing_library_without_loading_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let lib = tmp.path().join("libonnxruntime.so");
        let json = serde_json::json!({ "library": lib }).to_string();
        let problems = check(&settings(&json));
        assert_eq!(keys(&problems), [(SettingsScope::Engine, "library".into())]);
        let reason = problems[0].reason.to_string();
        assert!(reason.contains(&lib.display().to_string()) && reason.contains("does not exist"));
        assert!(reason.contains("scripts/setup-models.sh") && reason.contains("ORT_DYLIB_PATH"));
        // Not a library at all: check only looks for the file, it never loads it.
        std::fs::write(&lib, b"not a library").expect("write");
        assert!(check(&settings(&json)).is_empty());
        // Parse problems come first; the library is not looked at then.
        assert_eq!(check(&settings(r#"{"x": 1}"#)).len(), 1);
    }
}
