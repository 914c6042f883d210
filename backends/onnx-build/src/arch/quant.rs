//! How the linear layers' weights are stored: f32 as imported, or 8-bit blocks run by ONNX
//! Runtime's `MatMulNBits` (`com.microsoft`), which on CPU multiplies in int8 (activations
//! quantized per block at run time) and dequantizes the products.

/// The storage of the linear layers' weights (embedding, norms and the output projection
/// stay f32 in every format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightFormat {
    /// f32, the imported values as they are (the default; the golden log-probs hold).
    #[default]
    F32,
    /// Symmetric 8-bit blocks of [`INT8_BLOCK`] weights along the input axis, one f32 scale
    /// per block, computed with int8 arithmetic.
    Int8,
}

impl WeightFormat {
    /// The name used on the command line and in the manifest's `dtype`.
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::Int8 => "int8",
        }
    }

    /// Parses [`WeightFormat::name`].
    pub fn parse(s: &str) -> Option<WeightFormat> {
        match s {
            "f32" => Some(WeightFormat::F32),
            "int8" => Some(WeightFormat::Int8),
            _ => None,
        }
    }
}

/// Weights per quantization block (along the input axis).
pub const INT8_BLOCK: usize = 32;

/// A weight matrix in `MatMulNBits`' 8-bit layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Blocks {
    /// `[out, blocks, INT8_BLOCK]`: `round(w / scale) + 128` (the operator's default zero
    /// point for 8 bits); a last partial block is padded with the zero point.
    pub data: Vec<u8>,
    /// `[out × blocks]`: `max |w| / 127` of each block (1 for an all-zero block).
    pub scales: Vec<f32>,
    /// Blocks per output row.
    pub blocks: usize,
}

/// Quantizes a weight stored `[out, inp]` row-major (one output unit per row) into
/// symmetric 8-bit blocks along `inp`.
pub fn quantize_int8(w: &[f32], out: usize, inp: usize) -> Int8Blocks {
    let blocks = inp.div_ceil(INT8_BLOCK);
    let mut data = vec![128u8; out * blocks * INT8_BLOCK];
    let mut scales = vec![1f32; out * blocks];
    for r in 0..out {
        let row = &w[r * inp..(r + 1) * inp];
        for (b, chunk) in row.chunks(INT8_BLOCK).enumerate() {
            let max = chunk.iter().fold(0f32, |m, x| m.max(x.abs()));
            if max == 0.0 {
                continue;
            }
            let scale = max / 127.0;
            scales[r * blocks + b] = scale;
            let at = (r * blocks + b) * INT8_BLOCK;
            for (i, &x) in chunk.iter().enumerate() {
                let q = (x / scale).round().clamp(-127.0, 127.0) as i32;
                data[at + i] = (q + 128) as u8;
            }
        }
    }
    Int8Blocks { data, scales, blocks }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_within_half_a_step() {
        // Two rows of 40 inputs: a full block and a padded partial one each.
        let w: Vec<f32> = (0..80).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect();
        let q = quantize_int8(&w, 2, 40);
        assert_eq!(q.blocks, 2);
        assert_eq!(q.data.len(), 2 * 2 * INT8_BLOCK);
        for r in 0..2 {
            for i in 0..40 {
                let (b, j) = (i / INT8_BLOCK, i % INT8_BLOCK);
                let scale = q.scales[r * 2 + b];
                let back = (q.data[(r * 2 + b) * INT8_BLOCK + j] as f32 - 128.0) * scale;
                assert!((back - w[r * 40 + i]).abs() <= scale / 2.0 + 1e-6);
            }
            // Padding dequantizes to zero.
            assert!(q.data[(r * 2 + 1) * INT8_BLOCK + 8..(r * 2 + 2) * INT8_BLOCK]
                .iter()
                .all(|&v| v == 128));
        }
        // The largest weight of a block maps to ±127.
        let max_at = (0..32).max_by(|&a, &b| w[a].abs().total_cmp(&w[b].abs())).unwrap();
        assert_eq!((q.data[max_at] as i32 - 128).abs(), 127);
        assert_eq!(WeightFormat::parse("int8"), Some(WeightFormat::Int8));
        assert_eq!(WeightFormat::parse("bf16"), None);
    }

    #[test]
    fn an_all_zero_block_keeps_a_unit_scale() {
        let q = quantize_int8(&[0.0; 32], 1, 32);
        assert_eq!(q.scales, vec![1.0]);
        assert!(q.data.iter().all(|&v| v == 128));
    }
}
