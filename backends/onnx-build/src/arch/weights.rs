//! Where the graph builders get their weights: a [`WeightSource`] hands out tensors under
//! canonical (GGUF-style) names with every source convention already undone, so the graph
//! builders see one convention:
//!
//! - linear weights `[out, in]`, row-major, with Hugging Face's q/k row order (llama.cpp's
//!   converter permutes the q/k rows of `llama` models for its interleaved RoPE; the GGUF
//!   source restores the Hugging Face order so the graph can use `rotate_half` RoPE);
//! - norm weights as the effective multiplier: Gemma's RMSNorm computes `x * (1 + w)`;
//!   GGUF files already store `1 + w`, Hugging Face checkpoints store `w` and get `+ 1`.

use std::path::Path;

use crate::error::ImportError;
use crate::gguf::{GgufFile, Tensor};
use crate::hf::HfCheckpoint;

use super::config::{Architecture, ModelConfig};

/// A source of `f32` weights by canonical name (`token_embd.weight`,
/// `blk.{i}.attn_q.weight`, ...; see the module docs for the conventions).
pub trait WeightSource {
    /// The file or folder the weights come from (for error messages).
    fn path(&self) -> &Path;
    /// Whether a tensor exists.
    fn contains(&self, name: &str) -> bool;
    /// Loads and converts one tensor.
    fn load(&self, name: &str) -> Result<Tensor, ImportError>;
}

/// Weights from a GGUF file, dequantized to `f32`.
pub struct GgufWeights<'a> {
    file: &'a GgufFile,
    /// `Some((n_head, n_kv_head))` when q/k rows must be un-permuted (`llama` files).
    unpermute: Option<(usize, usize)>,
}

impl<'a> GgufWeights<'a> {
    /// Wraps an open GGUF file whose configuration is `cfg`.
    pub fn new(file: &'a GgufFile, cfg: &ModelConfig) -> Self {
        // Only llama.cpp's `llama` architecture permutes q/k (its LlamaModel converter);
        // qwen2 and gemma3 files keep the Hugging Face order.
        let unpermute = (cfg.source_arch == "llama").then_some((cfg.num_heads, cfg.num_kv_heads));
        GgufWeights { file, unpermute }
    }
}

impl WeightSource for GgufWeights<'_> {
    fn path(&self) -> &Path {
        self.file.path()
    }

    fn contains(&self, name: &str) -> bool {
        self.file.tensor_info(name).is_some()
    }

    fn load(&self, name: &str) -> Result<Tensor, ImportError> {
        let mut t = self.file.tensor_f32(name)?;
        if let Some((n_head, n_kv)) = self.unpermute {
            let heads = if name.ends_with("attn_q.weight") || name.ends_with("attn_q.bias") {
                Some(n_head)
            } else if name.ends_with("attn_k.weight") || name.ends_with("attn_k.bias") {
                Some(n_kv)
            } else {
                None
            };
            if let Some(h) = heads {
                t.data = unpermute_rows(&t.data, &t.shape, h).ok_or_else(|| {
                    ImportError::ShapeMismatch {
                        path: self.path().to_path_buf(),
                        tensor: name.to_string(),
                        expected: vec![h * 2],
                        actual: t.shape.clone(),
                    }
                })?;
            }
        }
        Ok(t)
    }
}

/// Weights from a Hugging Face checkpoint (F32/F16/BF16 safetensors), converted to `f32`.
pub struct HfWeights<'a> {
    ckpt: &'a HfCheckpoint,
    arch: Architecture,
}

impl<'a> HfWeights<'a> {
    /// Wraps an open checkpoint whose configuration is `cfg`.
    pub fn new(ckpt: &'a HfCheckpoint, cfg: &ModelConfig) -> Self {
        HfWeights { ckpt, arch: cfg.architecture }
    }

    fn resolve(&self, name: &str) -> Result<(String, bool), ImportError> {
        hf_name(name, self.arch).ok_or_else(|| ImportError::MissingTensor {
            path: self.ckpt.path().to_path_buf(),
            tensor: name.to_string(),
        })
    }
}

impl WeightSource for HfWeights<'_> {
    fn path(&self) -> &Path {
        self.ckpt.path()
    }

    fn contains(&self, name: &str) -> bool {
        self.resolve(name).is_ok_and(|(n, _)| self.ckpt.tensor_info(&n).is_some())
    }

    fn load(&self, name: &str) -> Result<Tensor, ImportError> {
        let (hf, plus_one) = self.resolve(name)?;
        let mut t = self.ckpt.tensor_f32(&hf)?;
        if plus_one {
            // Gemma's RMSNorm multiplies by (1 + w), computed in f32 as transformers does.
            t.data.iter_mut().for_each(|w| *w += 1.0);
        }
        Ok(t)
    }
}

/// Undoes llama.cpp's q/k permutation (`convert_hf_to_gguf.py: LlamaModel.permute`): it
/// viewed the rows as `[n_head, 2, head_dim/2]` and swapped the last two axes; this views
/// them as `[n_head, head_dim/2, 2]` and swaps back (transformers' `reverse_permute_weights`).
/// Returns `None` when the row count is not a multiple of `2 * n_head`.
pub fn unpermute_rows(data: &[f32], shape: &[usize], n_head: usize) -> Option<Vec<f32>> {
    let rows = *shape.first()?;
    let cols: usize = shape[1..].iter().product();
    if n_head == 0 || rows % (2 * n_head) != 0 || data.len() != rows * cols {
        return None;
    }
    let half = rows / n_head / 2;
    let mut out = vec![0f32; data.len()];
    for h in 0..n_head {
        for j in 0..half {
            for i in 0..2 {
                // GGUF row (h, j, i) holds Hugging Face row (h, i, j).
                let src = (h * half + j) * 2 + i;
                let dst = (h * 2 + i) * half + j;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    Some(out)
}

/// Maps a canonical tensor name to a Hugging Face checkpoint name for `cfg`'s
/// architecture, and says whether `+ 1` must be added (Gemma norms).
pub fn hf_name(canonical: &str, arch: Architecture) -> Option<(String, bool)> {
    let gemma = arch == Architecture::Gemma3;
    let top = match canonical {
        "token_embd.weight" => Some(("model.embed_tokens.weight", false)),
        "output.weight" => Some(("lm_head.weight", false)),
        "output_norm.weight" => Some(("model.norm.weight", gemma)),
        _ => None,
    };
    if let Some((n, plus)) = top {
        return Some((n.to_string(), plus));
    }
    let rest = canonical.strip_prefix("blk.")?;
    let (layer, leaf) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, plus) = match leaf {
        "attn_norm.weight" => ("input_layernorm.weight", gemma),
        "attn_q.weight" => ("self_attn.q_proj.weight", false),
        "attn_k.weight" => ("self_attn.k_proj.weight", false),
        "attn_v.weight" => ("self_attn.v_proj.weight", false),
        "attn_q.bias" => ("self_attn.q_proj.bias", false),
        "attn_k.bias" => ("self_attn.k_proj.bias", false),
        "attn_v.bias" => ("self_attn.v_proj.bias", false),
        "attn_output.weight" => ("self_attn.o_proj.weight", false),
        "attn_q_norm.weight" => ("self_attn.q_norm.weight", gemma),
        "attn_k_norm.weight" => ("self_attn.k_norm.weight", gemma),
        "ffn_norm.weight" if gemma => ("pre_feedforward_layernorm.weight", true),
        "ffn_norm.weight" => ("post_attention_layernorm.weight", false),
        "post_attention_norm.weight" => ("post_attention_layernorm.weight", true),
        "post_ffw_norm.weight" => ("post_feedforward_layernorm.weight", true),
        "ffn_gate.weight" => ("mlp.gate_proj.weight", false),
        "ffn_up.weight" => ("mlp.up_proj.weight", false),
        "ffn_down.weight" => ("mlp.down_proj.weight", false),
        _ => return None,
    };
    Some((format!("model.layers.{layer}.{module}"), plus))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // Rows 0..8 of a [8, 1] tensor, two heads of dim 4.
        let hf: Vec<f32> = (0..8).map(|v| v as f32).collect();
        // llama.cpp: reshape(n_head, 2, dim/2).swapaxes(1, 2)
        let n_head = 2;
        let half = 2;
        let mut gguf = vec![0f32; 8];
        for h in 0..n_head {
            for i in 0..2 {
                for j in 0..half {
                    gguf[(h * half + j) * 2 + i] = hf[(h * 2 + i) * half + j];
                }
            }
        }
        assert_eq!(gguf, [0., 2., 1., 3., 4., 6., 5., 7.]);
        assert_eq!(unpermute_rows(&gguf, &[8, 1], n_head).unwrap(), hf);
    }

    #[test]
    fn hf_names() {
        assert_eq!(
            hf_name("blk.3.ffn_norm.weight", Architecture::Gemma3).unwrap(),
            ("model.layers.3.pre_feedforward_layernorm.weight".to_string(), true)
        );
        assert_eq!(
            hf_name("blk.3.ffn_norm.weight", Architecture::Llama).unwrap(),
            ("model.layers.3.post_attention_layernorm.weight".to_string(), false)
        );
    }
}
