//! [`import`]: a GGUF file or Hugging Face checkpoint folder in, a complete model folder
//! (`docs/model-folder.md`) with its `onnx` artifacts out.
//!
//! Everything is written into `OUT.partial-<pid>` and renamed to `OUT` at the end, with the
//! manifest written last, so a folder with `descry-model.json` is always complete and a
//! failed or interrupted import never leaves something that looks like a model.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::arch::{build_graph, GgufWeights, HfWeights, ModelConfig, WeightFormat, WeightSource};
use crate::error::ImportError;
use crate::gguf::GgufFile;
use crate::hf::HfCheckpoint;
use crate::onnx::{self, Model};
use descry_model_folder::{
    ArtifactFiles, Manifest, SourceInfo, CHAT_TEMPLATE_FILE, FORMAT_VERSION, MANIFEST_FILE,
    TOKENIZER_CONFIG_FILE, TOKENIZER_FILE,
};

/// Options of [`import`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The model's short name; default: derived from the source file or folder name
    /// (lower-cased, quantization suffix removed: `SmolLM2-135M-Instruct.Q4_1.gguf` →
    /// `smollm2-135m-instruct`).
    pub name: Option<String>,
    /// Replace an existing output folder.
    pub force: bool,
    /// Store weights in `model.onnx.data` even when they would fit inline.
    pub external_data: bool,
    /// How the linear layers' weights are stored (default f32).
    pub weights: WeightFormat,
}

/// The kinds of source [`import`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A single `.gguf` file.
    Gguf,
    /// A Hugging Face checkpoint folder (`config.json` + `*.safetensors`).
    Hf,
}

impl SourceKind {
    /// `gguf` or `hf`, as written in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Gguf => "gguf",
            SourceKind::Hf => "hf",
        }
    }
}

/// Says whether `source` is a GGUF file (by its magic bytes) or a Hugging Face folder.
pub fn detect_source(source: &Path) -> Result<SourceKind, ImportError> {
    let meta = std::fs::metadata(source).map_err(|e| ImportError::io(source, e))?;
    if meta.is_dir() {
        if source.join("config.json").is_file() {
            return Ok(SourceKind::Hf);
        }
        return Err(ImportError::UnrecognizedSource {
            path: source.to_path_buf(),
            reason: "is a folder without config.json; expected a GGUF file or a Hugging Face \
                     checkpoint folder (config.json, *.safetensors, tokenizer files)"
                .into(),
        });
    }
    let mut magic = [0u8; 4];
    let mut f = File::open(source).map_err(|e| ImportError::io(source, e))?;
    let n = f.read(&mut magic).map_err(|e| ImportError::io(source, e))?;
    if n == 4 && &magic == b"GGUF" {
        Ok(SourceKind::Gguf)
    } else {
        Err(ImportError::UnrecognizedSource {
            path: source.to_path_buf(),
            reason: "is not a GGUF file (no GGUF magic) nor a Hugging Face checkpoint folder"
                .into(),
        })
    }
}

/// Imports `source` (GGUF file or Hugging Face folder) into the model folder `out`.
///
/// `out` may be missing or an empty folder. An existing model folder (see
/// [`output_state`]) is replaced only with `opts.force`; anything else (a file, a link, a
/// folder holding files an import does not write) is never replaced, force or not. On
/// error nothing is left behind and `out` is as it was.
pub fn import(source: &Path, out: &Path, opts: &ImportOptions) -> Result<Manifest, ImportError> {
    let kind = detect_source(source)?;
    if output_state(out)? == OutputState::ModelFolder && !opts.force {
        return Err(ImportError::OutputExists {
            path: out.to_path_buf(),
            what: "a model folder".into(),
        });
    }
    let file_name = out.file_name().ok_or_else(|| ImportError::UnrecognizedSource {
        path: out.to_path_buf(),
        reason: "the output path has no folder name".into(),
    })?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| ImportError::io(&parent, e))?;
    let partial =
        parent.join(format!("{}.partial-{}", file_name.to_string_lossy(), std::process::id()));
    if partial.exists() {
        // Left over by an earlier run of a process with our pid: nobody else owns it.
        std::fs::remove_dir_all(&partial).map_err(|e| ImportError::io(&partial, e))?;
    }
    std::fs::create_dir(&partial).map_err(|e| ImportError::io(&partial, e))?;
    // Removes the partial folder on every way out but success, panics included.
    let guard = PartialDir(Some(partial.clone()));

    let manifest = build_folder(source, kind, &partial, opts)?;
    // Checked again: the import takes minutes, and a user may have put a file there since.
    match output_state(out)? {
        OutputState::Absent => {}
        OutputState::Empty => std::fs::remove_dir(out).map_err(|e| ImportError::io(out, e))?,
        OutputState::ModelFolder => {
            // The old folder steps aside (one rename) instead of being deleted first, so
            // `out` is missing only between two renames and a failed rename loses nothing.
            let old = parent.join(format!(
                "{}.replaced-{}",
                file_name.to_string_lossy(),
                std::process::id()
            ));
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(|e| ImportError::io(&old, e))?;
            }
            std::fs::rename(out, &old).map_err(|e| ImportError::io(out, e))?;
            if let Err(e) = std::fs::rename(&partial, out) {
                let _ = std::fs::rename(&old, out);
                return Err(ImportError::io(out, e));
            }
            guard.disarm();
            std::fs::remove_dir_all(&old).map_err(|e| ImportError::io(&old, e))?;
            return Ok(manifest);
        }
    }
    std::fs::rename(&partial, out).map_err(|e| ImportError::io(out, e))?;
    guard.disarm();
    Ok(manifest)
}

/// The engine name of the artifacts an import writes (`artifacts.onnx` in the manifest).
pub const ARTIFACTS: &str = "onnx";

/// The graph file of the `onnx` artifacts.
pub const MODEL_FILE: &str = "model.onnx";

/// The files an import writes into a model folder (`docs/model-folder.md`): a folder holding
/// `descry-model.json` and nothing but these is one `--force` may replace.
pub const MODEL_FOLDER_FILES: &[&str] = &[
    MANIFEST_FILE,
    MODEL_FILE,
    onnx::EXTERNAL_DATA_FILE,
    TOKENIZER_FILE,
    TOKENIZER_CONFIG_FILE,
    CHAT_TEMPLATE_FILE,
];

/// What is at an import's output path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputState {
    /// Nothing: the import creates it.
    Absent,
    /// An empty folder: the import fills it.
    Empty,
    /// A model folder: `descry-model.json` plus only [`MODEL_FOLDER_FILES`], all plain
    /// files; replaced only with `--force`.
    ModelFolder,
}

/// Says what is at `out`, or why an import must never replace it (with or without
/// `--force`): a file, a symbolic link, or a folder that is not a model folder because it
/// lacks `descry-model.json` or holds anything an import does not write.
pub fn output_state(out: &Path) -> Result<OutputState, ImportError> {
    let refuse = |reason: String| ImportError::NotAModelFolder { path: out.to_path_buf(), reason };
    let meta = match std::fs::symlink_metadata(out) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(OutputState::Absent),
        Err(e) => return Err(ImportError::io(out, e)),
    };
    if meta.file_type().is_symlink() {
        return Err(refuse("it is a symbolic link; give the folder it points to as --out".into()));
    }
    if !meta.is_dir() {
        return Err(refuse("it is a file, not a folder".into()));
    }
    let mut foreign = Vec::new();
    let mut has_manifest = false;
    let mut any = false;
    for entry in std::fs::read_dir(out).map_err(|e| ImportError::io(out, e))? {
        let entry = entry.map_err(|e| ImportError::io(out, e))?;
        any = true;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(|e| ImportError::io(entry.path(), e))?;
        if kind.is_file() && MODEL_FOLDER_FILES.contains(&name.as_str()) {
            has_manifest |= name == MANIFEST_FILE;
        } else if kind.is_dir() {
            foreign.push(format!("{name}/"));
        } else {
            foreign.push(name);
        }
    }
    if !any {
        return Ok(OutputState::Empty);
    }
    if !foreign.is_empty() {
        foreign.sort();
        let shown = foreign.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        let more = if foreign.len() > 5 {
            format!(" and {} more", foreign.len() - 5)
        } else {
            String::new()
        };
        return Err(refuse(format!(
            "it holds {shown}{more}, which an import does not write (a model folder holds only {}); \
             choose another --out, or move those away",
            MODEL_FOLDER_FILES.join(", ")
        )));
    }
    if !has_manifest {
        return Err(refuse(format!(
            "it has no {MANIFEST_FILE}, so it is not a model folder written by descry import; \
             choose another --out, or empty it"
        )));
    }
    Ok(OutputState::ModelFolder)
}

/// A partial output folder, removed when dropped unless disarmed.
struct PartialDir(Option<PathBuf>);

impl PartialDir {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for PartialDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// Writes every file of the model folder into `dir`, the manifest last.
fn build_folder(
    source: &Path,
    kind: SourceKind,
    dir: &Path,
    opts: &ImportOptions,
) -> Result<Manifest, ImportError> {
    let (cfg, built, source_sha) = match kind {
        SourceKind::Gguf => {
            let file = GgufFile::open(source)?;
            let cfg = ModelConfig::from_gguf(&file)?;
            // The tokenizer first: it is cheap and fails fast on unsupported vocabularies.
            crate::tokenizer::from_gguf(&file)?.write_to(dir)?;
            let weights = GgufWeights::new(&file, &cfg);
            let built = build_graph(&cfg, &weights as &dyn WeightSource, opts.weights)?;
            (cfg, built, sha256_files(&[source.to_path_buf()])?)
        }
        SourceKind::Hf => build_hf(source, dir, opts.weights)?,
    };
    let mut opsets = vec![(String::new(), 17)];
    if opts.weights == WeightFormat::Int8 {
        // MatMulNBits is one of ONNX Runtime's own operators.
        opsets.push(("com.microsoft".to_string(), 1));
    }
    let model = Model {
        ir_version: 8,
        opsets,
        producer_name: "descry-onnx-build".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        metadata: vec![("descry.architecture".into(), cfg.architecture.name().into())],
        graph: built.graph,
    };
    let summary = onnx::write_model(model, dir, opts.external_data)?;

    let tok = TokenizerFacts::read(dir)?;
    let manifest = Manifest {
        format: FORMAT_VERSION,
        architecture: cfg.architecture.name().into(),
        name: opts.name.clone().unwrap_or_else(|| default_name(source)),
        source: SourceInfo {
            kind: kind.name().into(),
            path: source.display().to_string(),
            sha256: source_sha,
        },
        weights_sha256: summary.weights_sha256,
        dtype: opts.weights.name().into(),
        vocab_size: cfg.vocab_size,
        hidden_size: cfg.hidden_size,
        num_layers: cfg.num_layers,
        num_attention_heads: cfg.num_heads,
        num_kv_heads: cfg.num_kv_heads,
        head_dim: cfg.head_dim,
        context_length: cfg.context_length,
        sliding_window: cfg.sliding_window.filter(|_| cfg.layer_sliding.iter().any(|&s| s)),
        non_embedding_params: built.non_embedding_params,
        has_chat_template: dir.join(CHAT_TEMPLATE_FILE).is_file(),
        add_bos_token: tok.add_bos_token,
        bos_token: tok.bos_token,
        eos_token: tok.eos_token,
        artifacts: [(ARTIFACTS.to_string(), onnx_artifacts(dir, summary.external)?)].into(),
    };
    manifest.write(dir)?;
    Ok(manifest)
}

/// The `onnx` artifacts as written into `dir`: each file the backend loads with its size.
fn onnx_artifacts(dir: &Path, external: bool) -> Result<ArtifactFiles, ImportError> {
    let mut names = vec![MODEL_FILE];
    if external {
        names.push(onnx::EXTERNAL_DATA_FILE);
    }
    names
        .into_iter()
        .map(|name| {
            let p = dir.join(name);
            let len = std::fs::metadata(&p).map_err(|e| ImportError::io(&p, e))?.len();
            Ok((name.to_string(), len))
        })
        .collect()
}

/// Reads a Hugging Face checkpoint: configuration, graph, and its tokenizer files copied
/// over (`chat_template.jinja` also extracted from `tokenizer_config.json`).
fn build_hf(
    source: &Path,
    dir: &Path,
    weights: WeightFormat,
) -> Result<(ModelConfig, crate::arch::BuiltGraph, String), ImportError> {
    let ckpt = HfCheckpoint::open(source)?;
    let cfg = ModelConfig::from_hf_config(ckpt.config(), &source.join("config.json"))?;
    let tokenizer_json = ckpt.tokenizer_json().ok_or_else(|| ImportError::Tokenizer {
        path: source.to_path_buf(),
        reason: "no tokenizer.json in the checkpoint folder (save the tokenizer with \
                 `tokenizer.save_pretrained(DIR)` from a fast tokenizer)"
            .into(),
    })?;
    let built = build_graph(&cfg, &HfWeights::new(&ckpt, &cfg), weights)?;

    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| ImportError::io(&p, e))
    };
    write("tokenizer.json", tokenizer_json)?;
    let mut config = ckpt.tokenizer_config().cloned().unwrap_or_else(|| serde_json::json!({}));
    if let Some(obj) = config.as_object_mut() {
        if !obj.contains_key("add_bos_token") {
            // The manifest and the host read this flag; when the checkpoint leaves it out,
            // the post-processor of tokenizer.json decides (llama 3 style templates).
            obj.insert(
                "add_bos_token".into(),
                serde_json::Value::Bool(post_processor_adds_bos(tokenizer_json)),
            );
        }
    }
    let text = serde_json::to_string_pretty(&config).map_err(|e| ImportError::Format {
        path: source.join("tokenizer_config.json"),
        format: "tokenizer_config.json",
        reason: e.to_string(),
    })?;
    write("tokenizer_config.json", &text)?;
    if let Some(template) = ckpt.chat_template() {
        write("chat_template.jinja", template)?;
    }
    let mut files: Vec<PathBuf> = vec![source.join("config.json")];
    files.extend(ckpt.safetensors_files().into_iter().map(Path::to_path_buf));
    let sha = sha256_files(&files)?;
    Ok((cfg, built, sha))
}

/// Whether a `tokenizer.json`'s post-processor puts a special token before the sequence.
fn post_processor_adds_bos(tokenizer_json: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(tokenizer_json) else {
        return false;
    };
    let pp = &v["post_processor"];
    let template = |pp: &serde_json::Value| {
        pp["single"]
            .as_array()
            .and_then(|s| s.first())
            .is_some_and(|first| first.get("SpecialToken").is_some())
    };
    match pp["type"].as_str() {
        Some("TemplateProcessing") => template(pp),
        Some("Sequence") => pp["processors"].as_array().is_some_and(|ps| ps.iter().any(template)),
        _ => false,
    }
}

/// The special-token facts the manifest repeats from `tokenizer_config.json`.
struct TokenizerFacts {
    add_bos_token: bool,
    bos_token: Option<String>,
    eos_token: Option<String>,
}

impl TokenizerFacts {
    fn read(dir: &Path) -> Result<TokenizerFacts, ImportError> {
        let path = dir.join("tokenizer_config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| ImportError::io(&path, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ImportError::Format {
                path: path.clone(),
                format: "tokenizer_config.json",
                reason: e.to_string(),
            })?;
        // Token strings appear either plain or as AddedToken objects with a `content` field.
        let token = |k: &str| -> Option<String> {
            match v.get(k)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Object(o) => {
                    o.get("content").and_then(|c| c.as_str()).map(str::to_string)
                }
                _ => None,
            }
        };
        Ok(TokenizerFacts {
            add_bos_token: v.get("add_bos_token").and_then(|b| b.as_bool()).unwrap_or(false),
            bos_token: token("bos_token"),
            eos_token: token("eos_token"),
        })
    }
}

/// Hex SHA-256 over the files' bytes, concatenated in the order given.
fn sha256_files(files: &[PathBuf]) -> Result<String, ImportError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for p in files {
        let mut f = File::open(p).map_err(|e| ImportError::io(p, e))?;
        loop {
            let n = f.read(&mut buf).map_err(|e| ImportError::io(p, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(onnx::hex(&h.finalize()))
}

/// The default model name: the file (or folder) name, lower-cased, without `.gguf` and
/// without a trailing quantization tag (`.Q4_1`, `-q4_k_m`, `-f16`, ...).
pub fn default_name(source: &Path) -> String {
    let stem = source.file_name().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
    let mut name = stem.strip_suffix(".gguf").unwrap_or(&stem).to_string();
    if let Some(idx) = name.rfind(['.', '-']) {
        let tag = &name[idx + 1..];
        if is_quant_tag(tag) {
            name.truncate(idx);
        }
    }
    if name.is_empty() {
        "model".into()
    } else {
        name
    }
}

fn is_quant_tag(tag: &str) -> bool {
    let t = tag.to_ascii_lowercase();
    matches!(t.as_str(), "f16" | "f32" | "bf16" | "fp16" | "fp32")
        || ((t.starts_with('q') || t.starts_with("iq") || t.starts_with("tq"))
            && t.chars()
                .nth(if t.starts_with('q') { 1 } else { 2 })
                .is_some_and(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder with a user's file is never replaced, `--force` or not, and the error says
    /// why without suggesting `--force`; the file stays.
    #[test]
    fn force_refuses_a_folder_with_a_users_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let gguf = tmp.path().join("m.gguf");
        std::fs::write(&gguf, b"GGUF\x03\0\0\0").expect("write");
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        std::fs::write(out.join("descry-model.json"), "{}").expect("write");
        std::fs::write(out.join("thesis.tex"), "years of work").expect("write");
        for force in [false, true] {
            let opts = ImportOptions { force, ..Default::default() };
            let err = import(&gguf, &out, &opts).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("not a model folder") && msg.contains("thesis.tex"), "{msg}");
            assert!(msg.contains(&out.display().to_string()), "{msg}");
            assert!(!msg.contains("--force"), "suggests --force, which would refuse: {msg}");
            assert_eq!(
                std::fs::read_to_string(out.join("thesis.tex")).expect("kept"),
                "years of work"
            );
        }
    }

    /// What `--force` may replace (`docs/model-folder.md`): a model folder only.
    #[test]
    fn only_model_folders_are_replaceable() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        std::fs::write(out.join("descry-model.json"), "{}").expect("write");
        std::fs::write(out.join("thesis.tex"), "years of work").expect("write");
        // A subfolder, a folder without a manifest, a plain file and a link: all refused.
        std::fs::remove_file(out.join("thesis.tex")).expect("rm");
        std::fs::create_dir(out.join("runs")).expect("mkdir");
        assert!(output_state(&out).unwrap_err().to_string().contains("runs/"));
        std::fs::remove_dir(out.join("runs")).expect("rm");
        assert_eq!(output_state(&out).expect("model folder"), OutputState::ModelFolder);
        std::fs::write(out.join("model.onnx"), b"x").expect("write");
        std::fs::remove_file(out.join("descry-model.json")).expect("rm");
        assert!(output_state(&out).unwrap_err().to_string().contains("no descry-model.json"));
        let file = tmp.path().join("notes.txt");
        std::fs::write(&file, "mine").expect("write");
        assert!(output_state(&file).unwrap_err().to_string().contains("is a file"));
        #[cfg(unix)]
        {
            let link = tmp.path().join("link");
            std::os::unix::fs::symlink(&out, &link).expect("symlink");
            assert!(output_state(&link).unwrap_err().to_string().contains("symbolic link"));
        }
        std::fs::remove_file(out.join("model.onnx")).expect("rm");
        assert_eq!(output_state(&out).expect("empty"), OutputState::Empty);
        assert_eq!(output_state(&tmp.path().join("none")).expect("absent"), OutputState::Absent);
    }

    #[test]
    fn names() {
        assert_eq!(
            default_name(Path::new("/x/SmolLM2-135M-Instruct.Q4_1.gguf")),
            "smollm2-135m-instruct"
        );
        assert_eq!(default_name(Path::new("gemma-3-270m-q4_k_m.gguf")), "gemma-3-270m");
        assert_eq!(default_name(Path::new("models/Qwen2.5-0.5B")), "qwen2.5-0.5b");
        assert_eq!(default_name(Path::new("llama-3.2-1b-f16.gguf")), "llama-3.2-1b");
    }
}
