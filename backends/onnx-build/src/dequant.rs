//! Dequantization of ggml tensor data to `f32`, bit-exact with ggml's reference
//! `dequantize_row_*` functions (ggml-quants.c).
//!
//! Bit-exactness matters because the golden log-probs were computed from weights that
//! transformers dequantized the same way; we therefore evaluate every expression in the
//! same order and precision as the C code (no fused multiply-add, `f32` throughout).

use rayon::prelude::*;

use crate::error::ImportError;

/// A ggml tensor element type, as stored in a GGUF tensor info (`ggml_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types, missing_docs)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
    /// A type id this reader does not know (newer ggml, or a removed type).
    Unknown(u32),
}

impl GgmlType {
    /// Maps a `ggml_type` id to the type.
    pub fn from_id(id: u32) -> GgmlType {
        use GgmlType::*;
        match id {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            9 => Q8_1,
            10 => Q2_K,
            11 => Q3_K,
            12 => Q4_K,
            13 => Q5_K,
            14 => Q6_K,
            15 => Q8_K,
            16 => IQ2_XXS,
            17 => IQ2_XS,
            18 => IQ3_XXS,
            19 => IQ1_S,
            20 => IQ4_NL,
            21 => IQ3_S,
            22 => IQ2_S,
            23 => IQ4_XS,
            24 => I8,
            25 => I16,
            26 => I32,
            27 => I64,
            28 => F64,
            29 => IQ1_M,
            30 => BF16,
            34 => TQ1_0,
            35 => TQ2_0,
            39 => MXFP4,
            other => Unknown(other),
        }
    }

    /// The type's name as ggml prints it (`Q4_K`, `BF16`, ...), or `type <id>` when unknown.
    pub fn name(self) -> String {
        match self {
            GgmlType::Unknown(id) => format!("type {id}"),
            known => format!("{known:?}"),
        }
    }

    /// `(elements per block, bytes per block)`, or `None` for an unknown type.
    pub fn block_layout(self) -> Option<(usize, usize)> {
        use GgmlType::*;
        Some(match self {
            F32 => (1, 4),
            F16 => (1, 2),
            Q4_0 => (32, 18),
            Q4_1 => (32, 20),
            Q5_0 => (32, 22),
            Q5_1 => (32, 24),
            Q8_0 => (32, 34),
            Q8_1 => (32, 36),
            Q2_K => (256, 84),
            Q3_K => (256, 110),
            Q4_K => (256, 144),
            Q5_K => (256, 176),
            Q6_K => (256, 210),
            Q8_K => (256, 292),
            IQ2_XXS => (256, 66),
            IQ2_XS => (256, 74),
            IQ3_XXS => (256, 98),
            IQ1_S => (256, 50),
            IQ4_NL => (32, 18),
            IQ3_S => (256, 110),
            IQ2_S => (256, 82),
            IQ4_XS => (256, 136),
            I8 => (1, 1),
            I16 => (1, 2),
            I32 => (1, 4),
            I64 => (1, 8),
            F64 => (1, 8),
            IQ1_M => (256, 56),
            BF16 => (1, 2),
            TQ1_0 => (256, 54),
            TQ2_0 => (256, 66),
            MXFP4 => (32, 17),
            Unknown(_) => return None,
        })
    }

    /// Whether [`dequantize`] supports this type.
    pub fn is_supported(self) -> bool {
        use GgmlType::*;
        matches!(self, F32 | F16 | BF16 | Q8_0 | Q4_0 | Q4_1 | Q5_0 | Q4_K | Q5_K | Q6_K)
    }

    /// Bytes needed for `n_elements` elements, or `None` when the type is unknown, `n` is
    /// not a whole number of blocks, or the size overflows.
    pub fn data_size(self, n_elements: u64) -> Option<u64> {
        let (block, bytes) = self.block_layout()?;
        if !n_elements.is_multiple_of(block as u64) {
            return None;
        }
        (n_elements / block as u64).checked_mul(bytes as u64)
    }
}

/// Blocks handed to one rayon task: large enough to amortise scheduling, small enough to
/// spread a single 50 MB tensor over all cores.
const BLOCKS_PER_TASK: usize = 4096;

/// Dequantizes `data` (whole blocks of type `ty`) into `out`, one `f32` per element.
///
/// `tensor` only names the tensor in errors. `data.len()` must equal
/// `ty.data_size(out.len())`; any other length is reported as an error, never a panic.
/// Runs in parallel over blocks; the result does not depend on the thread count.
pub fn dequantize(
    tensor: &str,
    ty: GgmlType,
    data: &[u8],
    out: &mut [f32],
) -> Result<(), ImportError> {
    let unsupported = || ImportError::UnsupportedQuantization {
        // GGUF readers check the type first and name their file; this is API misuse.
        path: "(in-memory tensor data)".into(),
        tensor: tensor.to_string(),
        type_name: ty.name(),
    };
    if !ty.is_supported() {
        return Err(unsupported());
    }
    let (block, bytes) = ty.block_layout().ok_or_else(unsupported)?;
    if !out.len().is_multiple_of(block) || data.len() != out.len() / block * bytes {
        return Err(ImportError::Format {
            // Callers pass data read from a file whose sizes were already validated, so
            // this only fires on misuse of the API; there is no file to name.
            path: "(in-memory tensor data)".into(),
            format: "ggml tensor",
            reason: format!(
                "tensor \"{tensor}\": {} bytes of {} data do not hold {} elements",
                data.len(),
                ty.name(),
                out.len()
            ),
        });
    }
    let kernel: fn(&[u8], &mut [f32]) = match ty {
        GgmlType::F32 => row_f32,
        GgmlType::F16 => row_f16,
        GgmlType::BF16 => row_bf16,
        GgmlType::Q8_0 => row_q8_0,
        GgmlType::Q4_0 => row_q4_0,
        GgmlType::Q4_1 => row_q4_1,
        GgmlType::Q5_0 => row_q5_0,
        GgmlType::Q4_K => row_q4_k,
        GgmlType::Q5_K => row_q5_k,
        GgmlType::Q6_K => row_q6_k,
        _ => return Err(unsupported()),
    };
    let (data_chunk, out_chunk) = (BLOCKS_PER_TASK * bytes, BLOCKS_PER_TASK * block);
    if out.len() <= out_chunk {
        kernel(data, out);
    } else {
        data.par_chunks(data_chunk)
            .zip(out.par_chunks_mut(out_chunk))
            .for_each(|(d, o)| kernel(d, o));
    }
    Ok(())
}

#[inline(always)]
fn f16(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

// The kernels below take whole blocks (lengths checked by `dequantize`) and mirror the
// ggml reference loops one to one.

fn row_f32(data: &[u8], out: &mut [f32]) {
    for (o, b) in out.iter_mut().zip(data.chunks_exact(4)) {
        *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}

fn row_f16(data: &[u8], out: &mut [f32]) {
    for (o, b) in out.iter_mut().zip(data.chunks_exact(2)) {
        *o = half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
    }
}

fn row_bf16(data: &[u8], out: &mut [f32]) {
    for (o, b) in out.iter_mut().zip(data.chunks_exact(2)) {
        *o = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16);
    }
}

/// block_q8_0 { f16 d; i8 qs[32] }: y = q * d.
fn row_q8_0(data: &[u8], out: &mut [f32]) {
    for (x, y) in data.chunks_exact(34).zip(out.chunks_exact_mut(32)) {
        let d = f16(x, 0);
        for (yj, &q) in y.iter_mut().zip(&x[2..34]) {
            *yj = (q as i8) as f32 * d;
        }
    }
}

/// block_q4_0 { f16 d; u8 qs[16] }: low nibbles are elements 0..16, high nibbles 16..32,
/// y = (q - 8) * d.
fn row_q4_0(data: &[u8], out: &mut [f32]) {
    for (x, y) in data.chunks_exact(18).zip(out.chunks_exact_mut(32)) {
        let d = f16(x, 0);
        let (lo, hi) = y.split_at_mut(16);
        for j in 0..16 {
            let q = x[2 + j];
            lo[j] = ((q & 0x0F) as i32 - 8) as f32 * d;
            hi[j] = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

/// block_q4_1 { f16 d; f16 m; u8 qs[16] }: y = q * d + m.
fn row_q4_1(data: &[u8], out: &mut [f32]) {
    for (x, y) in data.chunks_exact(20).zip(out.chunks_exact_mut(32)) {
        let d = f16(x, 0);
        let m = f16(x, 2);
        let (lo, hi) = y.split_at_mut(16);
        for j in 0..16 {
            let q = x[4 + j];
            lo[j] = (q & 0x0F) as f32 * d + m;
            hi[j] = (q >> 4) as f32 * d + m;
        }
    }
}

/// block_q5_0 { f16 d; u8 qh[4]; u8 qs[16] }: bit j of qh is the fifth bit of element j,
/// y = (q - 16) * d.
fn row_q5_0(data: &[u8], out: &mut [f32]) {
    for (x, y) in data.chunks_exact(22).zip(out.chunks_exact_mut(32)) {
        let d = f16(x, 0);
        let qh = u32::from_le_bytes([x[2], x[3], x[4], x[5]]);
        let (lo, hi) = y.split_at_mut(16);
        for j in 0..16 {
            let q = x[6 + j];
            let xh0 = (((qh >> j) << 4) & 0x10) as u8;
            let xh1 = ((qh >> (j + 12)) & 0x10) as u8;
            lo[j] = (((q & 0x0F) | xh0) as i32 - 16) as f32 * d;
            hi[j] = (((q >> 4) | xh1) as i32 - 16) as f32 * d;
        }
    }
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K/Q5_K block
/// (`get_scale_min_k4`).
#[inline(always)]
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// block_q4_K { f16 d; f16 dmin; u8 scales[12]; u8 qs[128] }: eight sub-blocks of 32;
/// each 32 bytes of qs hold two sub-blocks (low nibbles, then high nibbles);
/// y = d*sc * q - dmin*m.
fn row_q4_k(data: &[u8], out: &mut [f32]) {
    for (x, y) in data.chunks_exact(144).zip(out.chunks_exact_mut(256)) {
        let d = f16(x, 0);
        let min = f16(x, 2);
        let scales = &x[4..16];
        for (k, (q, y)) in x[16..144].chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
            let (sc, m) = scale_min_k4(2 * k, scales);
            let (d1, m1) = (d * sc as f32, min * m as f32);
            let (sc, m) = scale_min_k4(2 * k + 1, scales);
            let (d2, m2) = (d * sc as f32, min * m as f32);
            let (lo, hi) = y.split_at_mut(32);
            for l in 0..32 {
                lo[l] = d1 * (q[l] & 0xF) as f32 - m1;
                hi[l] = d2 * (q[l] >> 4) as f32 - m2;
            }
        }
    }
}

/// block_q5_K { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] }: as Q4_K plus a
/// fifth bit per element from qh (bit 2k for the low-nibble sub-block of pair k, 2k+1 for
/// the high-nibble one).
fn row_q5_k(data: &[u8], out: &mut [f32]) {
    for (x, y) in data.chunks_exact(176).zip(out.chunks_exact_mut(256)) {
        let d = f16(x, 0);
        let min = f16(x, 2);
        let scales = &x[4..16];
        let qh = &x[16..48];
        for (k, (ql, y)) in x[48..176].chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
            let (sc, m) = scale_min_k4(2 * k, scales);
            let (d1, m1) = (d * sc as f32, min * m as f32);
            let (sc, m) = scale_min_k4(2 * k + 1, scales);
            let (d2, m2) = (d * sc as f32, min * m as f32);
            let (u1, u2) = (1u8 << (2 * k), 2u8 << (2 * k));
            let (lo, hi) = y.split_at_mut(32);
            for l in 0..32 {
                let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
                let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
                lo[l] = d1 * ((ql[l] & 0xF) + h1) as f32 - m1;
                hi[l] = d2 * ((ql[l] >> 4) + h2) as f32 - m2;
            }
        }
    }
}

/// block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d }: two halves of 128
/// elements; y = d * sc * (q - 32), evaluated as `(d * sc) * q` like the C code.
fn row_q6_k(data: &[u8], out: &mut [f32]) {
    for (x, y) in data.chunks_exact(210).zip(out.chunks_exact_mut(256)) {
        let d = f16(x, 208);
        for (n, y) in y.chunks_exact_mut(128).enumerate() {
            let ql = &x[64 * n..64 * n + 64];
            let qh = &x[128 + 32 * n..128 + 32 * n + 32];
            let sc = &x[192 + 8 * n..192 + 8 * n + 8];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
                let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
                y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
                y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
                y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Hand-built blocks; every expected value is worked out from the block layout in the
    //! comments of the kernels above, not from running the code.
    use super::*;

    fn f16_bits(x: f32) -> [u8; 2] {
        half::f16::from_f32(x).to_bits().to_le_bytes()
    }

    fn run(ty: GgmlType, data: &[u8], n: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; n];
        dequantize("t", ty, data, &mut out).expect("dequantize");
        out
    }

    #[test]
    fn plain_floats() {
        let data: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(run(GgmlType::F32, &data, 2), [1.5, -2.0]);
        // f16: 0x3C00 = 1.0, 0xC000 = -2.0, 0x3800 = 0.5
        assert_eq!(run(GgmlType::F16, &[0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38], 3), [1.0, -2.0, 0.5]);
        // bf16: upper half of the f32: 0x3F80 = 1.0, 0xC040 = -3.0
        assert_eq!(run(GgmlType::BF16, &[0x80, 0x3F, 0x40, 0xC0], 2), [1.0, -3.0]);
    }

    #[test]
    fn q8_0() {
        let mut b = vec![0u8; 34];
        b[..2].copy_from_slice(&f16_bits(0.5));
        for (j, q) in [-128i8, -1, 0, 1, 127].iter().enumerate() {
            b[2 + j] = *q as u8;
        }
        let y = run(GgmlType::Q8_0, &b, 32);
        assert_eq!(&y[..5], [-64.0, -0.5, 0.0, 0.5, 63.5]);
        assert!(y[5..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn q4_0() {
        let mut b = vec![0x88u8; 18]; // nibble 8 decodes to 0
        b[..2].copy_from_slice(&f16_bits(2.0));
        b[2] = 0x3A; // element 0: (10-8)*2 = 4; element 16: (3-8)*2 = -10
        let y = run(GgmlType::Q4_0, &b, 32);
        assert_eq!(y[0], 4.0);
        assert_eq!(y[16], -10.0);
        assert!(y.iter().enumerate().all(|(i, &v)| i == 0 || i == 16 || v == 0.0));
    }

    #[test]
    fn q4_1() {
        let mut b = vec![0u8; 20];
        b[..2].copy_from_slice(&f16_bits(0.5));
        b[2..4].copy_from_slice(&f16_bits(-1.0));
        b[5] = 0xF0; // element 1: 0*0.5-1 = -1; element 17: 15*0.5-1 = 6.5
        let y = run(GgmlType::Q4_1, &b, 32);
        assert_eq!(y[1], -1.0);
        assert_eq!(y[17], 6.5);
        assert_eq!(y[0], -1.0);
    }

    #[test]
    fn q5_0() {
        let mut b = vec![0u8; 22];
        b[..2].copy_from_slice(&f16_bits(1.0));
        // qh bit 0: fifth bit of element 0; bit 17: fifth bit of element 17.
        b[2..6].copy_from_slice(&((1u32 << 0) | (1u32 << 17)).to_le_bytes());
        b[7] = 0x21; // element 1: low nibble 1; element 17: high nibble 2
        let y = run(GgmlType::Q5_0, &b, 32);
        assert_eq!(y[0], 0.0); // (0|16)-16
        assert_eq!(y[16], -16.0); // (0|0)-16
        assert_eq!(y[1], -15.0); // (1|0)-16
        assert_eq!(y[17], 2.0); // (2|16)-16
        assert_eq!(y[31], -16.0);
    }

    /// Scales for the K-quant tests: sub-block 0: sc 2, m 3; sub-block 1: sc 1, m 0;
    /// sub-block 4: sc 21, m 34 (its upper bits come from bytes 0 and 4); all others 0.
    fn k_scales() -> [u8; 12] {
        let mut s = [0u8; 12];
        s[0] = 2 | (1 << 6); // sc0 = 2; bits 4-5 of sc4 = 1
        s[1] = 1; // sc1 = 1
        s[4] = 3 | (2 << 6); // m0 = 3; bits 4-5 of m4 = 2
        s[8] = 0x25; // sc4 low = 5, m4 low = 2
        s
    }

    #[test]
    fn q4_k() {
        let mut b = vec![0u8; 144];
        b[..2].copy_from_slice(&f16_bits(1.0));
        b[2..4].copy_from_slice(&f16_bits(0.5));
        b[4..16].copy_from_slice(&k_scales());
        b[16] = 0x37; // qs[0]: element 0 = 7 (sub-block 0), element 32 = 3 (sub-block 1)
        b[16 + 64] = 0x0A; // qs[64]: element 128 = 10 (sub-block 4)
        let y = run(GgmlType::Q4_K, &b, 256);
        assert_eq!(y[0], 2.0 * 7.0 - 0.5 * 3.0); // 12.5
        assert_eq!(y[1], -1.5);
        assert_eq!(y[32], 3.0);
        assert_eq!(y[33], 0.0);
        assert_eq!(y[128], 21.0 * 10.0 - 0.5 * 34.0); // 193
        assert_eq!(y[129], -17.0);
        assert_eq!(y[64], 0.0);
        assert_eq!(y[255], 0.0);
    }

    #[test]
    fn q5_k() {
        let mut b = vec![0u8; 176];
        b[..2].copy_from_slice(&f16_bits(1.0));
        b[2..4].copy_from_slice(&f16_bits(0.5));
        b[4..16].copy_from_slice(&k_scales());
        b[16] = 0x01 | 0x10; // qh[0]: +16 for element 0 (bit 0) and element 128 (bit 4)
        b[17] = 0x02; // qh[1]: +16 for element 33 (bit 1: high-nibble sub-block 1)
        b[48] = 0x37;
        b[48 + 64] = 0x0A;
        let y = run(GgmlType::Q5_K, &b, 256);
        assert_eq!(y[0], 2.0 * 23.0 - 1.5); // 44.5
        assert_eq!(y[1], -1.5);
        assert_eq!(y[32], 3.0);
        assert_eq!(y[33], 16.0);
        assert_eq!(y[128], 21.0 * 26.0 - 17.0); // 529
        assert_eq!(y[129], -17.0);
    }

    #[test]
    fn q6_k() {
        let mut b = vec![0u8; 210];
        b[208..210].copy_from_slice(&f16_bits(0.5));
        let scales: [(usize, i8); 6] = [(0, 2), (1, 4), (2, -1), (4, 1), (6, 3), (8, -2)];
        for (i, s) in scales {
            b[192 + i] = s as u8;
        }
        b[0] = 0x5F; // ql[0]
        b[128] = 0xE4; // qh[0] = 0b11_10_01_00
        let y = run(GgmlType::Q6_K, &b, 256);
        assert_eq!(y[0], 0.5 * 2.0 * (15.0 - 32.0)); // ql low 15, qh bits 0
        assert_eq!(y[32], -0.5 * (16.0 - 32.0)); // ql[32] low 0, qh bits 1
        assert_eq!(y[64], 0.5 * 1.0 * (37.0 - 32.0)); // ql high 5, qh bits 2
        assert_eq!(y[96], 0.5 * 3.0 * (48.0 - 32.0)); // ql[32] high 0, qh bits 3
        assert_eq!(y[1], 0.5 * 2.0 * -32.0);
        assert_eq!(y[16], 0.5 * 4.0 * -32.0); // l = 16 uses scale 1
        assert_eq!(y[128], 0.5 * -2.0 * -32.0); // second half, scale 8
    }

    #[test]
    fn unsupported_types_are_errors() {
        let mut out = vec![0f32; 256];
        let err = dequantize("blk.0.w", GgmlType::IQ2_XS, &[0u8; 74], &mut out).unwrap_err();
        match &err {
            ImportError::UnsupportedQuantization { tensor, type_name, .. } => {
                assert_eq!(tensor, "blk.0.w");
                assert_eq!(type_name, "IQ2_XS");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("blk.0.w") && err.to_string().contains("IQ2_XS"));
        let err = dequantize("x", GgmlType::from_id(99), &[], &mut []).unwrap_err();
        assert!(err.to_string().contains("type 99"), "{err}");
        for ty in [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q5_1, GgmlType::Q8_K, GgmlType::I32] {
            assert!(!ty.is_supported());
        }
    }

    #[test]
    fn wrong_length_is_an_error_not_a_panic() {
        let mut out = vec![0f32; 32];
        assert!(dequantize("t", GgmlType::Q8_0, &[0u8; 33], &mut out).is_err());
        let mut out = vec![0f32; 31];
        assert!(dequantize("t", GgmlType::Q8_0, &[0u8; 34], &mut out).is_err());
    }

    #[test]
    fn parallel_path_matches_block_by_block() {
        // More blocks than one task takes, so the rayon path runs.
        let n_blocks = BLOCKS_PER_TASK * 2 + 3;
        let mut data = Vec::with_capacity(n_blocks * 34);
        for i in 0..n_blocks {
            data.extend_from_slice(&f16_bits((i % 7) as f32 * 0.25));
            data.extend((0..32).map(|j| ((i * 31 + j * 7) % 256) as u8));
        }
        let all = run(GgmlType::Q8_0, &data, n_blocks * 32);
        for i in [0, 1, BLOCKS_PER_TASK - 1, BLOCKS_PER_TASK, n_blocks - 1] {
            let one = run(GgmlType::Q8_0, &data[i * 34..(i + 1) * 34], 32);
            assert_eq!(&all[i * 32..(i + 1) * 32], &one[..], "block {i}");
        }
    }

    #[test]
    fn layouts() {
        assert_eq!(GgmlType::Q4_K.data_size(512), Some(288));
        assert_eq!(GgmlType::Q4_K.data_size(100), None);
        assert_eq!(GgmlType::from_id(12), GgmlType::Q4_K);
        assert_eq!(GgmlType::from_id(30), GgmlType::BF16);
        assert_eq!(GgmlType::Q6_K.name(), "Q6_K");
    }
}
