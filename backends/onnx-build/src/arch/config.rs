//! [`ModelConfig`]: the hyper-parameters the graph builders need, read from GGUF metadata
//! or a Hugging Face `config.json`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::ImportError;
use crate::gguf::GgufFile;

/// The graph families descry can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Llama and its close relatives (Mistral, Qwen2: optional QKV bias and sliding window).
    Llama,
    /// Gemma 3 (text): QK-norm, interleaved local/global attention, four norms per layer.
    Gemma3,
}

impl Architecture {
    /// The name written to the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Gemma3 => "gemma3",
        }
    }
}

/// Architecture names accepted in GGUF `general.architecture`.
pub const SUPPORTED_GGUF_ARCHS: &[&str] = &["llama", "qwen2", "gemma3"];
/// Values accepted in a Hugging Face `config.json`'s `model_type`.
pub const SUPPORTED_HF_MODEL_TYPES: &[&str] = &["llama", "mistral", "qwen2", "gemma3_text"];

/// How rotary frequencies are rescaled for long contexts.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE.
    None,
    /// Linear position interpolation: every inverse frequency divided by the factor.
    Linear(f64),
    /// Per-frequency divisors (llama 3's `rope_freqs.weight`, or computed from its
    /// `rope_scaling` parameters), one per rotary pair.
    FreqFactors(Vec<f32>),
}

/// Hyper-parameters of a decoder-only transformer, in Hugging Face terms.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Graph family.
    pub architecture: Architecture,
    /// The source's own architecture name (`llama`, `qwen2`, `mistral`, `gemma3`, ...).
    pub source_arch: String,
    /// Rows of the embedding matrix.
    pub vocab_size: usize,
    /// Residual stream width.
    pub hidden_size: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `num_heads`).
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// RoPE base of global-attention layers.
    pub rope_theta: f64,
    /// RoPE base of sliding-window layers (Gemma 3: 10 000; others: `rope_theta`).
    pub rope_local_theta: f64,
    /// Long-context rescaling of the global-layer frequencies.
    pub rope_scaling: RopeScaling,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Trained context length.
    pub context_length: usize,
    /// Sliding-window size, when some layers use one.
    pub sliding_window: Option<usize>,
    /// Per layer: true when the layer attends within the sliding window only.
    pub layer_sliding: Vec<bool>,
    /// Attention scores are multiplied by `query_pre_attn_scalar^-0.5`.
    pub query_pre_attn_scalar: f64,
    /// Whether q/k/v projections have biases (Qwen2).
    pub attention_bias: bool,
    /// Whether the output projection is the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Gemma-2-style soft-capping of the final logits.
    pub final_logit_softcapping: Option<f64>,
    /// Gemma-2-style soft-capping of attention scores.
    pub attn_logit_softcapping: Option<f64>,
}

impl ModelConfig {
    /// Width of the query projection.
    pub fn q_dim(&self) -> usize {
        self.num_heads * self.head_dim
    }

    /// Width of the key (and value) projection.
    pub fn kv_dim(&self) -> usize {
        self.num_kv_heads * self.head_dim
    }

    /// Checks the sizes the graph relies on; `Err` says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("num_kv_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} is 0"));
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return Err(format!(
                "{} key/value heads do not divide {} query heads",
                self.num_kv_heads, self.num_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(format!("head_dim {} is odd; rotary embeddings need pairs", self.head_dim));
        }
        if self.layer_sliding.len() != self.num_layers {
            return Err(format!(
                "{} layer types for {} layers",
                self.layer_sliding.len(),
                self.num_layers
            ));
        }
        if !(self.rms_norm_eps.is_finite()
            && self.rope_theta > 0.0
            && self.query_pre_attn_scalar > 0.0)
        {
            return Err(
                "rms_norm_eps, rope_theta and query_pre_attn_scalar must be finite and positive"
                    .into(),
            );
        }
        Ok(())
    }

    /// Reads the configuration from a GGUF file's metadata (and tensor shapes).
    pub fn from_gguf(f: &GgufFile) -> Result<ModelConfig, ImportError> {
        let path = f.path().to_path_buf();
        let arch = f.get_str("general.architecture")?.to_string();
        let architecture = match arch.as_str() {
            "llama" | "qwen2" => Architecture::Llama,
            "gemma3" => Architecture::Gemma3,
            _ => return Err(unknown_arch(&arch, &path, SUPPORTED_GGUF_ARCHS)),
        };
        let key = |k: &str| format!("{arch}.{k}");
        let usize_of = |k: &str| -> Result<usize, ImportError> { Ok(f.get_u64(&key(k))? as usize) };
        let hidden_size = usize_of("embedding_length")?;
        let num_heads = usize_of("attention.head_count")?;
        let num_kv_heads =
            f.opt_u64(&key("attention.head_count_kv"))?.map_or(num_heads, |v| v as usize);
        if num_heads == 0 || num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(ImportError::BadMetadata {
                path,
                key: key("attention.head_count_kv"),
                reason: format!(
                    "{num_kv_heads} key/value heads do not divide {num_heads} query heads"
                ),
            });
        }
        let head_dim = match f.opt_u64(&key("attention.key_length"))? {
            Some(v) => v as usize,
            None => hidden_size / num_heads,
        };
        let embd = f.tensor_info("token_embd.weight").ok_or_else(|| {
            ImportError::MissingTensor { path: path.clone(), tensor: "token_embd.weight".into() }
        })?;
        let vocab_size = match f.opt_u64(&key("vocab_size"))? {
            Some(v) => v as usize,
            None => embd.shape().first().copied().unwrap_or(0),
        };
        let num_layers = usize_of("block_count")?;
        // Every layer has tensors of its own: a count above the file's tensors is corrupt,
        // and is refused before anything is sized by it.
        if num_layers > f.tensors().len() {
            return Err(ImportError::BadMetadata {
                path,
                key: key("block_count"),
                reason: format!(
                    "{num_layers} layers, but the file has only {} tensors (each layer has its own): \
                     the value is corrupt",
                    f.tensors().len()
                ),
            });
        }
        let rope_theta = f.opt_f32(&key("rope.freq_base"))?.map_or(10_000.0, f64::from);
        let rms_norm_eps = f64::from(f.get_f32(&key("attention.layer_norm_rms_epsilon"))?);
        let context_length = usize_of("context_length")?;
        let sliding_window =
            f.opt_u64(&key("attention.sliding_window"))?.map(|v| v as usize).filter(|&v| v > 0);

        let rope_scaling = match f.opt_str(&key("rope.scaling.type"))? {
            None | Some("none") => None,
            Some("linear") => {
                let factor = f.get_f32(&key("rope.scaling.factor"))?;
                Some(RopeScaling::Linear(f64::from(factor)))
            }
            Some(other) => {
                return Err(ImportError::BadMetadata {
                    path,
                    key: key("rope.scaling.type"),
                    reason: format!(
                        "RoPE scaling \"{other}\" is not supported (supported: none, linear)"
                    ),
                })
            }
        };
        let rope_scaling = match (rope_scaling, f.tensor_info("rope_freqs.weight")) {
            (Some(s), _) => s,
            // llama 3.x stores its long-context frequency divisors as a tensor.
            (None, Some(_)) => RopeScaling::FreqFactors(f.tensor_f32("rope_freqs.weight")?.data),
            (None, None) => RopeScaling::None,
        };

        let (layer_sliding, rope_local_theta, query_pre_attn_scalar) = match architecture {
            Architecture::Gemma3 => {
                // llama.cpp and transformers both fix Gemma 3's pattern: every sixth layer
                // (1-based) is global, the others slide; local layers use RoPE base 10 000.
                let pattern =
                    f.opt_u64(&key("attention.sliding_window_pattern"))?.unwrap_or(6) as usize;
                let sliding = (0..num_layers)
                    .map(|i| sliding_window.is_some() && (i + 1) % pattern.max(1) != 0)
                    .collect();
                // transformers' GGUF loader keeps Gemma3TextConfig's default
                // query_pre_attn_scalar (256), which equals head_dim for every size but 27B;
                // llama.cpp uses head_dim too (hidden/heads for 27B only).
                (sliding, 10_000.0, head_dim as f64)
            }
            Architecture::Llama => {
                (vec![sliding_window.is_some(); num_layers], rope_theta, head_dim as f64)
            }
        };
        let softcap = |k: &str| -> Result<Option<f64>, ImportError> {
            Ok(f.opt_f32(&key(k))?.map(f64::from).filter(|&v| v > 0.0))
        };
        Ok(ModelConfig {
            architecture,
            source_arch: arch.clone(),
            vocab_size,
            hidden_size,
            intermediate_size: usize_of("feed_forward_length")?,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            rope_theta,
            rope_local_theta,
            rope_scaling,
            rms_norm_eps,
            context_length,
            sliding_window,
            layer_sliding,
            query_pre_attn_scalar,
            attention_bias: f.tensor_info("blk.0.attn_q.bias").is_some(),
            tie_word_embeddings: f.tensor_info("output.weight").is_none(),
            final_logit_softcapping: softcap("final_logit_softcapping")?,
            attn_logit_softcapping: softcap("attn_logit_softcapping")?,
        })
    }

    /// Reads the configuration from a Hugging Face `config.json` (already parsed).
    /// `path` names the file in errors.
    pub fn from_hf_config(cfg: &Value, path: &Path) -> Result<ModelConfig, ImportError> {
        let path = path.to_path_buf();
        let model_type = cfg
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| ImportError::MissingMetadata {
                path: path.clone(),
                key: "model_type".into(),
            })?
            .to_string();
        let architecture = match model_type.as_str() {
            "llama" | "mistral" | "qwen2" => Architecture::Llama,
            "gemma3_text" => Architecture::Gemma3,
            _ => return Err(unknown_arch(&model_type, &path, SUPPORTED_HF_MODEL_TYPES)),
        };
        let j = Json { v: cfg, path: &path };
        let hidden_size = j.usize("hidden_size")?;
        let num_heads = j.usize("num_attention_heads")?;
        let num_kv_heads = j.opt_usize("num_key_value_heads")?.unwrap_or(num_heads);
        if num_heads == 0 || num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(ImportError::BadMetadata {
                path,
                key: "num_key_value_heads".into(),
                reason: format!(
                    "{num_kv_heads} key/value heads do not divide {num_heads} query heads"
                ),
            });
        }
        let head_dim = j.opt_usize("head_dim")?.unwrap_or(hidden_size / num_heads);
        let num_layers = j.usize("num_hidden_layers")?;
        let gemma = architecture == Architecture::Gemma3;
        let rope_theta =
            j.opt_f64("rope_theta")?.unwrap_or(if gemma { 1_000_000.0 } else { 10_000.0 });
        let use_sw = match model_type.as_str() {
            // Qwen2 configs carry a sliding_window value that is only used when enabled.
            "qwen2" => j.opt_bool("use_sliding_window")?.unwrap_or(false),
            _ => true,
        };
        let sliding_window =
            if use_sw { j.opt_usize("sliding_window")?.filter(|&v| v > 0) } else { None };
        let layer_sliding: Vec<bool> = match cfg.get("layer_types").and_then(Value::as_array) {
            Some(types) => {
                if types.len() != num_layers {
                    return Err(ImportError::BadMetadata {
                        path,
                        key: "layer_types".into(),
                        reason: format!("{} entries for {num_layers} layers", types.len()),
                    });
                }
                types
                    .iter()
                    .map(|t| t.as_str() == Some("sliding_attention") && sliding_window.is_some())
                    .collect()
            }
            None if gemma => {
                let pattern = j.opt_usize("sliding_window_pattern")?.unwrap_or(6).max(1);
                (0..num_layers)
                    .map(|i| sliding_window.is_some() && (i + 1) % pattern != 0)
                    .collect()
            }
            None => vec![sliding_window.is_some(); num_layers],
        };
        let rope_scaling =
            rope_scaling_from_hf(cfg.get("rope_scaling"), head_dim, rope_theta, &path)?;
        let tie_default = gemma;
        Ok(ModelConfig {
            architecture,
            source_arch: model_type.clone(),
            vocab_size: j.usize("vocab_size")?,
            hidden_size,
            intermediate_size: j.usize("intermediate_size")?,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            rope_theta,
            rope_local_theta: if gemma {
                j.opt_f64("rope_local_base_freq")?.unwrap_or(10_000.0)
            } else {
                rope_theta
            },
            rope_scaling,
            rms_norm_eps: j.opt_f64("rms_norm_eps")?.unwrap_or(1e-6),
            context_length: j.opt_usize("max_position_embeddings")?.unwrap_or(2048),
            sliding_window,
            layer_sliding,
            query_pre_attn_scalar: if gemma {
                j.opt_f64("query_pre_attn_scalar")?.unwrap_or(head_dim as f64)
            } else {
                head_dim as f64
            },
            attention_bias: match model_type.as_str() {
                "qwen2" => true,
                _ => j.opt_bool("attention_bias")?.unwrap_or(false),
            },
            tie_word_embeddings: j.opt_bool("tie_word_embeddings")?.unwrap_or(tie_default),
            final_logit_softcapping: j.opt_f64("final_logit_softcapping")?.filter(|&v| v > 0.0),
            attn_logit_softcapping: j.opt_f64("attn_logit_softcapping")?.filter(|&v| v > 0.0),
        })
    }
}

fn unknown_arch(arch: &str, path: &Path, supported: &[&str]) -> ImportError {
    ImportError::UnsupportedArchitecture {
        arch: arch.to_string(),
        path: path.to_path_buf(),
        supported: supported.join(", "),
    }
}

/// `rope_scaling` of a Hugging Face config: `null`, `linear`, `default` or `llama3`.
fn rope_scaling_from_hf(
    v: Option<&Value>,
    head_dim: usize,
    theta: f64,
    path: &Path,
) -> Result<RopeScaling, ImportError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(RopeScaling::None);
    };
    let path = path.to_path_buf();
    let j = Json { v, path: &path };
    let kind =
        v.get("rope_type").or_else(|| v.get("type")).and_then(Value::as_str).unwrap_or("default");
    match kind {
        "default" => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear(j.f64("factor")?)),
        "llama3" => {
            // transformers' _compute_llama3_parameters, expressed as per-frequency divisors.
            let factor = j.f64("factor")?;
            let low = j.opt_f64("low_freq_factor")?.unwrap_or(1.0);
            let high = j.opt_f64("high_freq_factor")?.unwrap_or(4.0);
            let old_ctx = j.opt_f64("original_max_position_embeddings")?.unwrap_or(8192.0);
            let low_wavelen = old_ctx / low;
            let high_wavelen = old_ctx / high;
            let factors = (0..head_dim / 2)
                .map(|i| {
                    let inv = 1.0 / theta.powf((2 * i) as f64 / head_dim as f64);
                    let wavelen = 2.0 * std::f64::consts::PI / inv;
                    let div = if wavelen < high_wavelen {
                        1.0
                    } else if wavelen > low_wavelen {
                        factor
                    } else {
                        let smooth = (old_ctx / wavelen - low) / (high - low);
                        1.0 / ((1.0 - smooth) / factor + smooth)
                    };
                    div as f32
                })
                .collect();
            Ok(RopeScaling::FreqFactors(factors))
        }
        other => Err(ImportError::BadMetadata {
            path,
            key: "rope_scaling".into(),
            reason: format!(
                "RoPE scaling \"{other}\" is not supported (supported: default, linear, llama3)"
            ),
        }),
    }
}

/// Typed access to a JSON object, with errors naming the file and key.
struct Json<'a> {
    v: &'a Value,
    path: &'a PathBuf,
}

impl Json<'_> {
    fn bad(&self, key: &str, expected: &str) -> ImportError {
        ImportError::BadMetadata {
            path: self.path.clone(),
            key: key.into(),
            reason: format!("expected {expected}"),
        }
    }
    fn present(&self, key: &str) -> Option<&Value> {
        self.v.get(key).filter(|v| !v.is_null())
    }
    fn opt_usize(&self, key: &str) -> Result<Option<usize>, ImportError> {
        self.present(key)
            .map(|v| {
                v.as_u64()
                    .map(|x| x as usize)
                    .ok_or_else(|| self.bad(key, "a non-negative integer"))
            })
            .transpose()
    }
    fn usize(&self, key: &str) -> Result<usize, ImportError> {
        self.opt_usize(key)?.ok_or_else(|| ImportError::MissingMetadata {
            path: self.path.clone(),
            key: key.into(),
        })
    }
    fn opt_f64(&self, key: &str) -> Result<Option<f64>, ImportError> {
        self.present(key).map(|v| v.as_f64().ok_or_else(|| self.bad(key, "a number"))).transpose()
    }
    fn f64(&self, key: &str) -> Result<f64, ImportError> {
        self.opt_f64(key)?.ok_or_else(|| ImportError::MissingMetadata {
            path: self.path.clone(),
            key: key.into(),
        })
    }
    fn opt_bool(&self, key: &str) -> Result<Option<bool>, ImportError> {
        self.present(key)
            .map(|v| v.as_bool().ok_or_else(|| self.bad(key, "true or false")))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemma3_hf_pattern_every_sixth_layer_global() {
        let cfg = serde_json::json!({
            "model_type": "gemma3_text", "hidden_size": 640, "num_attention_heads": 4,
            "num_key_value_heads": 1, "head_dim": 256, "num_hidden_layers": 18,
            "intermediate_size": 2048, "vocab_size": 262144, "sliding_window": 512,
            "rope_theta": 1000000.0, "query_pre_attn_scalar": 256
        });
        let c = ModelConfig::from_hf_config(&cfg, Path::new("config.json")).unwrap();
        let globals: Vec<usize> = (0..18).filter(|&i| !c.layer_sliding[i]).collect();
        assert_eq!(globals, [5, 11, 17]);
        assert!(c.tie_word_embeddings);
        assert_eq!(c.rope_local_theta, 10_000.0);
    }

    #[test]
    fn unknown_model_type_names_supported_ones() {
        let cfg = serde_json::json!({"model_type": "falcon"});
        let e =
            ModelConfig::from_hf_config(&cfg, Path::new("x/config.json")).unwrap_err().to_string();
        assert!(e.contains("falcon") && e.contains("gemma3_text") && e.contains("llama"), "{e}");
    }
}
