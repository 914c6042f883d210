//! The engine's own arithmetic rate: square f32 matrix multiplies timed through an ONNX
//! Runtime session made exactly as a model's is ([`crate::session::builder`]: same library,
//! device, threads and graph optimisation), so the benchmark can compare a model's
//! throughput with what the engine achieves on the same cores.

use std::time::Instant;

use descry_abi::types::MatmulRate;
use descry_onnx_proto::{DataType, Dim, GraphBuilder, Model};
use ort::value::Tensor;

use crate::engine::EngineError;
use crate::session::ort_err;
use crate::settings::EngineOptions;

/// Each timed round runs at least this long (and at least [`MIN_RUNS`] multiplies).
const ROUND_SECONDS: f64 = 0.7;
/// Fewest multiplies in a timed round.
const MIN_RUNS: u32 = 3;
/// Timed rounds; the best one is reported.
const ROUNDS: usize = 3;

/// The graph: one `MatMul` of an `n × n` input by an `n × n` constant (as a model's weights
/// are constants), encoded as ONNX.
fn graph(n: usize, b: Vec<f32>) -> Result<Vec<u8>, EngineError> {
    let mut g = GraphBuilder::new("matmul");
    let dims = || vec![Dim::Fixed(n as i64), Dim::Fixed(n as i64)];
    let a = g.input("a", DataType::Float, dims());
    let b = g.initializer_f32("b", &[n, n], b);
    let c = g.node("MatMul", &[&a, &b], vec![]);
    g.output(&c, DataType::Float, dims());
    let model = Model {
        ir_version: 8,
        opsets: vec![(String::new(), 17)],
        producer_name: "descry-backend-onnx".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        metadata: Vec::new(),
        graph: g.finish(),
    };
    let mut bytes = Vec::new();
    model
        .write_to(&mut bytes, &mut |_| {})
        .map_err(|e| EngineError::Ort(format!("encoding the matmul graph: {e}")))?;
    Ok(bytes)
}

/// Deterministic, well-scaled values in [-0.5, 0.5) (no denormals, no overflow).
fn values(n: usize, stride: usize) -> Vec<f32> {
    (0..n * n).map(|i| ((i * stride % 1000) as f32 - 500.0) / 1000.0).collect()
}

/// Times `n × n` by `n × n` f32 multiplies under `options`: one checked against a plain dot
/// product (the rate must be of a real product), two for warm-up, then the best of three
/// rounds of at least 0.7 s each; 2n³ floating-point operations per multiply.
pub fn matmul_rate(options: &EngineOptions, n: u32) -> Result<MatmulRate, EngineError> {
    if n == 0 {
        return Err(EngineError::Options("the matrix size must be at least 1".into()));
    }
    let size = n as usize;
    let a_data = values(size, 104_729);
    let b_data = values(size, 7919);
    let bytes = graph(size, b_data.clone())?;
    let mut session = crate::session::builder(options)?
        .commit_from_memory(&bytes)
        .map_err(|e| EngineError::Ort(format!("loading the matmul graph: {e}")))?;
    let input = Tensor::from_array((vec![size, size], a_data.clone())).map_err(ort_err)?;
    let mut run_once = || -> Result<f32, EngineError> {
        let outputs = session.run(ort::inputs!["a" => &input]).map_err(ort_err)?;
        let (_, data) = outputs[0].try_extract_tensor::<f32>().map_err(ort_err)?;
        data.get(size * size - 1)
            .copied()
            .ok_or_else(|| EngineError::Ort("the matmul output is too short".into()))
    };
    let got = run_once()?;
    let want: f64 = (0..size)
        .map(|k| f64::from(a_data[(size - 1) * size + k]) * f64::from(b_data[k * size + size - 1]))
        .sum();
    if (f64::from(got) - want).abs() > 1e-3 * (1.0 + want.abs()) {
        return Err(EngineError::Ort(format!(
            "the matmul check failed: C[n-1][n-1] = {got}, expected {want}"
        )));
    }
    for _ in 0..2 {
        run_once()?;
    }
    let flops_per_run = 2.0 * f64::from(n).powi(3);
    let mut best = MatmulRate { n, gflops: 0.0, repeats: 0 };
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut runs = 0u32;
        while runs < MIN_RUNS || start.elapsed().as_secs_f64() < ROUND_SECONDS {
            run_once()?;
            runs += 1;
        }
        let gflops = flops_per_run * f64::from(runs) / start.elapsed().as_secs_f64() / 1e9;
        if gflops > best.gflops {
            best = MatmulRate { n, gflops, repeats: runs };
        }
    }
    Ok(best)
}
