//! A reader for Hugging Face checkpoint folders: `config.json`, `*.safetensors` (single file
//! or sharded with `model.safetensors.index.json`), and the tokenizer files.
//!
//! Only the safetensors headers are read on open; tensor data is read from the file when a
//! tensor is asked for, so a checkpoint never has to fit in memory twice.

use crate::gguf::read_exact_at;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Metadata, TensorInfo as StInfo};
use safetensors::Dtype;
use serde_json::Value;

use crate::error::ImportError;
use crate::gguf::Tensor;

/// safetensors caps its JSON header at 100 MB; a larger length means a corrupt file.
const MAX_HEADER: u64 = 100_000_000;

/// One `.safetensors` file: its header and where its data starts.
struct Shard {
    path: PathBuf,
    file: File,
    data_start: u64,
    metadata: Metadata,
}

/// Shape and element type of one checkpoint tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfTensorInfo {
    /// The safetensors dtype name (`F32`, `BF16`, ...).
    pub dtype: String,
    /// Row-major shape, as stored (PyTorch order).
    pub shape: Vec<usize>,
}

/// An opened Hugging Face checkpoint folder.
pub struct HfCheckpoint {
    dir: PathBuf,
    config: Value,
    shards: Vec<Shard>,
    /// Tensor name → index into `shards`.
    by_name: BTreeMap<String, usize>,
    tokenizer_json: Option<String>,
    tokenizer_config: Option<Value>,
    chat_template: Option<String>,
}

impl std::fmt::Debug for HfCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfCheckpoint")
            .field("dir", &self.dir)
            .field("shards", &self.shards.iter().map(|s| &s.path).collect::<Vec<_>>())
            .field("tensors", &self.by_name.len())
            .finish()
    }
}

fn format_err(path: &Path, format: &'static str, reason: String) -> ImportError {
    ImportError::Format { path: path.to_path_buf(), format, reason }
}

fn read_json(path: &Path) -> Result<Value, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ImportError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| format_err(path, "JSON", e.to_string()))
}

fn read_optional(path: &Path) -> Result<Option<String>, ImportError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ImportError::io(path, e)),
    }
}

impl Shard {
    fn open(path: &Path) -> Result<Shard, ImportError> {
        let file = File::open(path).map_err(|e| ImportError::io(path, e))?;
        let file_len = file.metadata().map_err(|e| ImportError::io(path, e))?.len();
        let truncated = |what: &str, offset: u64| ImportError::Truncated {
            path: path.to_path_buf(),
            what: what.to_string(),
            offset,
        };
        if file_len < 8 {
            return Err(truncated("the header length", file_len));
        }
        let mut len = [0u8; 8];
        (&file).read_exact(&mut len).map_err(|e| ImportError::io(path, e))?;
        let n = u64::from_le_bytes(len);
        if n > MAX_HEADER {
            return Err(format_err(
                path,
                "safetensors",
                format!("header length {n} is implausible"),
            ));
        }
        if 8 + n > file_len {
            return Err(truncated("the header", file_len));
        }
        let mut header = vec![0u8; n as usize];
        (&file).read_exact(&mut header).map_err(|e| ImportError::io(path, e))?;
        let metadata: Metadata = serde_json::from_slice(&header)
            .map_err(|e| format_err(path, "safetensors", format!("header: {e}")))?;
        let data_start = 8 + n;
        // Check every tensor against its shape and the file size now, so reads cannot fail
        // later on a short file; report the first tensor that is cut off.
        let mut infos: Vec<(&String, &StInfo)> = Vec::new();
        let tensors = metadata.tensors();
        for (name, info) in &tensors {
            infos.push((name, info));
        }
        infos.sort_by_key(|(_, i)| i.data_offsets);
        for (name, info) in infos {
            let (s, e) = info.data_offsets;
            let expected = info
                .shape
                .iter()
                .try_fold(info.dtype.size(), |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| {
                    format_err(
                        path,
                        "safetensors",
                        format!("tensor \"{name}\" has an impossible shape {:?}", info.shape),
                    )
                })?;
            if e < s || e - s != expected {
                return Err(format_err(
                    path,
                    "safetensors",
                    format!(
                        "tensor \"{name}\": data offsets {s}..{e} do not match shape {:?} of {:?}",
                        info.shape, info.dtype
                    ),
                ));
            }
            if data_start + e as u64 > file_len {
                return Err(truncated(&format!("the data of tensor \"{name}\""), file_len));
            }
        }
        Ok(Shard { path: path.to_path_buf(), file, data_start, metadata })
    }
}

impl HfCheckpoint {
    /// Opens a checkpoint folder: parses `config.json`, the safetensors headers (via
    /// `model.safetensors.index.json` when present, else `model.safetensors`, else every
    /// `*.safetensors` file) and reads the tokenizer files that exist.
    pub fn open(dir: impl AsRef<Path>) -> Result<HfCheckpoint, ImportError> {
        let dir = dir.as_ref();
        let config = read_json(&dir.join("config.json"))?;

        let index_path = dir.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if index_path.is_file() {
            let index = read_json(&index_path)?;
            let map = index["weight_map"].as_object().ok_or_else(|| {
                format_err(&index_path, "safetensors index", "no \"weight_map\" object".into())
            })?;
            let mut files: Vec<&str> = Vec::new();
            for (name, file) in map {
                let file = file.as_str().ok_or_else(|| {
                    format_err(
                        &index_path,
                        "safetensors index",
                        format!("weight_map[\"{name}\"] is not a file name"),
                    )
                })?;
                if !files.contains(&file) {
                    files.push(file);
                }
            }
            files.sort_unstable();
            files.into_iter().map(|f| dir.join(f)).collect()
        } else if dir.join("model.safetensors").is_file() {
            vec![dir.join("model.safetensors")]
        } else {
            let entries = std::fs::read_dir(dir).map_err(|e| ImportError::io(dir, e))?;
            let mut files = Vec::new();
            for entry in entries {
                let p = entry.map_err(|e| ImportError::io(dir, e))?.path();
                if p.extension().is_some_and(|x| x == "safetensors") {
                    files.push(p);
                }
            }
            files.sort();
            files
        };
        if files.is_empty() {
            return Err(format_err(dir, "Hugging Face checkpoint", "no *.safetensors files (PyTorch .bin checkpoints are not supported; convert them to safetensors)".into()));
        }

        let mut shards = Vec::with_capacity(files.len());
        let mut by_name = BTreeMap::new();
        for path in files {
            let shard = Shard::open(&path)?;
            for name in shard.metadata.tensors().keys() {
                if by_name.insert(name.clone(), shards.len()).is_some() {
                    return Err(format_err(
                        &path,
                        "safetensors",
                        format!("tensor \"{name}\" is stored in more than one file"),
                    ));
                }
            }
            shards.push(shard);
        }

        let tokenizer_json = read_optional(&dir.join("tokenizer.json"))?;
        let config_path = dir.join("tokenizer_config.json");
        let tokenizer_config =
            if config_path.is_file() { Some(read_json(&config_path)?) } else { None };
        let chat_template = match read_optional(&dir.join("chat_template.jinja"))? {
            Some(t) => Some(t),
            None => tokenizer_config
                .as_ref()
                .and_then(|c| chat_template_from_config(&c["chat_template"])),
        };

        Ok(HfCheckpoint {
            dir: dir.to_path_buf(),
            config,
            shards,
            by_name,
            tokenizer_json,
            tokenizer_config,
            chat_template,
        })
    }

    /// The checkpoint folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The parsed `config.json`.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The `.safetensors` files, in the order they were read (for hashing the source).
    pub fn safetensors_files(&self) -> Vec<&Path> {
        self.shards.iter().map(|s| s.path.as_path()).collect()
    }

    /// All tensor names, sorted.
    pub fn tensor_names(&self) -> Vec<&str> {
        self.by_name.keys().map(String::as_str).collect()
    }

    fn raw_info(&self, name: &str) -> Option<(&Shard, &StInfo)> {
        let shard = &self.shards[*self.by_name.get(name)?];
        Some((shard, shard.metadata.info(name)?))
    }

    /// Shape and dtype of a tensor, if present.
    pub fn tensor_info(&self, name: &str) -> Option<HfTensorInfo> {
        self.raw_info(name)
            .map(|(_, i)| HfTensorInfo { dtype: format!("{:?}", i.dtype), shape: i.shape.clone() })
    }

    /// Reads a tensor and converts it to `f32` (from F32, F16 or BF16; F64 is rounded).
    /// The name is the checkpoint's own (e.g. `model.layers.0.self_attn.q_proj.weight`).
    pub fn tensor_f32(&self, name: &str) -> Result<Tensor, ImportError> {
        let (shard, info) = self.raw_info(name).ok_or_else(|| ImportError::MissingTensor {
            path: self.dir.clone(),
            tensor: name.to_string(),
        })?;
        let (s, e) = info.data_offsets;
        let mut bytes = vec![0u8; e - s];
        read_exact_at(&shard.file, &mut bytes, shard.data_start + s as u64).map_err(|err| {
            if err.kind() == std::io::ErrorKind::UnexpectedEof {
                ImportError::Truncated {
                    path: shard.path.clone(),
                    what: format!(
                        "the data of tensor \"{name}\" (the file changed after it was opened)"
                    ),
                    offset: shard.data_start + s as u64,
                }
            } else {
                ImportError::io(&shard.path, err)
            }
        })?;
        let data: Vec<f32> = match info.dtype {
            Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::F64 => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
                .collect(),
            other => {
                return Err(format_err(
                    &shard.path,
                    "safetensors",
                    format!("tensor \"{name}\" has dtype {other:?}; only floating-point weights (F32, F16, BF16, F64) can be imported"),
                ))
            }
        };
        Ok(Tensor { shape: info.shape.clone(), data })
    }

    /// The `tokenizer.json` text, when the folder has one.
    pub fn tokenizer_json(&self) -> Option<&str> {
        self.tokenizer_json.as_deref()
    }

    /// The parsed `tokenizer_config.json`, when the folder has one.
    pub fn tokenizer_config(&self) -> Option<&Value> {
        self.tokenizer_config.as_ref()
    }

    /// The chat template: `chat_template.jinja`, else `chat_template` in
    /// `tokenizer_config.json` (the `default` entry when it is a list of named templates).
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }
}

fn chat_template_from_config(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => {
            let named: HashMap<&str, &str> = items
                .iter()
                .filter_map(|i| Some((i["name"].as_str()?, i["template"].as_str()?)))
                .collect();
            named.get("default").map(|s| s.to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn write_shard(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).expect("view")))
            .collect();
        let bytes = safetensors::serialize(views, &None).expect("serialize");
        std::fs::write(path, bytes).expect("write");
    }

    fn checkpoint(dir: &Path) {
        std::fs::write(dir.join("config.json"), r#"{"model_type": "llama", "hidden_size": 2}"#)
            .expect("config");
        let f32s: Vec<u8> = [1.0f32, -2.0, 3.5, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let f16s: Vec<u8> =
            [0.5f32, -1.0].iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
        let bf16s: Vec<u8> = [2.0f32, -0.25, 8.0]
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect();
        write_shard(
            &dir.join("model-00001-of-00002.safetensors"),
            &[("a.weight", Dtype::F32, vec![2, 2], f32s)],
        );
        write_shard(
            &dir.join("model-00002-of-00002.safetensors"),
            &[
                ("b.weight", Dtype::F16, vec![2], f16s),
                ("c.weight", Dtype::BF16, vec![3, 1], bf16s),
                ("ids", Dtype::I64, vec![1], vec![0; 8]),
            ],
        );
        std::fs::write(
            dir.join("model.safetensors.index.json"),
            r#"{"metadata": {}, "weight_map": {"a.weight": "model-00001-of-00002.safetensors",
               "b.weight": "model-00002-of-00002.safetensors", "c.weight": "model-00002-of-00002.safetensors",
               "ids": "model-00002-of-00002.safetensors"}}"#,
        )
        .expect("index");
        std::fs::write(dir.join("tokenizer.json"), "{}").expect("tok");
        std::fs::write(
            dir.join("tokenizer_config.json"),
            r#"{"chat_template": [{"name": "default", "template": "T"}]}"#,
        )
        .expect("tc");
    }

    #[test]
    fn reads_sharded_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        checkpoint(dir.path());
        let ck = HfCheckpoint::open(dir.path()).expect("open");
        assert_eq!(ck.config()["hidden_size"], 2);
        assert_eq!(ck.tensor_names(), ["a.weight", "b.weight", "c.weight", "ids"]);
        assert_eq!(ck.safetensors_files().len(), 2);
        let a = ck.tensor_f32("a.weight").expect("a");
        assert_eq!(
            (a.shape.as_slice(), a.data.as_slice()),
            (&[2, 2][..], &[1.0, -2.0, 3.5, 4.0][..])
        );
        assert_eq!(ck.tensor_f32("b.weight").expect("b").data, [0.5, -1.0]);
        let c = ck.tensor_f32("c.weight").expect("c");
        assert_eq!((c.shape.as_slice(), c.data.as_slice()), (&[3, 1][..], &[2.0, -0.25, 8.0][..]));
        assert_eq!(ck.tensor_info("c.weight").expect("info").dtype, "BF16");
        let err = ck.tensor_f32("ids").unwrap_err().to_string();
        assert!(err.contains("\"ids\"") && err.contains("I64"), "{err}");
        let err = ck.tensor_f32("zzz").unwrap_err().to_string();
        assert!(err.contains("\"zzz\" not found"), "{err}");
        assert_eq!(ck.tokenizer_json(), Some("{}"));
        assert_eq!(ck.chat_template(), Some("T"));
    }

    #[test]
    fn truncated_shard_names_file_and_tensor() {
        let dir = tempfile::tempdir().expect("tempdir");
        checkpoint(dir.path());
        let p = dir.path().join("model-00002-of-00002.safetensors");
        let bytes = std::fs::read(&p).expect("read");
        for cut in [3, 20, bytes.len() - 1] {
            std::fs::write(&p, &bytes[..cut]).expect("write");
            let err = HfCheckpoint::open(dir.path()).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, ImportError::Truncated { .. }), "{msg}");
            assert!(msg.contains("model-00002-of-00002.safetensors"), "{msg}");
            if cut == bytes.len() - 1 {
                assert!(msg.contains("tensor \""), "{msg}");
            }
        }
    }

    #[test]
    fn missing_pieces_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = HfCheckpoint::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        std::fs::write(dir.path().join("config.json"), "{}").expect("config");
        let err = HfCheckpoint::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no *.safetensors"), "{err}");
    }
}
