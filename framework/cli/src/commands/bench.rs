//! `descry bench`: naive per-decision scoring vs descry's plan, side by side, on real data
//! with a real model (see `descry_core::bench` for what each phase does and how FLOPs are
//! counted).
//!
//! The parent process plans every data set (checking the configuration before any model
//! runs), measures the fp32 matrix-multiply rate of the cores through ONNX Runtime, then runs
//! each phase in a child process of this binary (`--phase`, hidden) so that each phase's
//! peak memory is its own, compares the predictions, prints the table and writes the JSON.

use crate::Cli;
use anyhow::{bail, Context, Result};
use descry_core::{
    bench::{
        contention_warnings, data_set, format_table, is_data_root, load_average, machine_info,
        planned_tokens, run_phase, targets, DataSetReport, MemoryCheck, ModelInfo, Phase,
        PhaseResult, PhaseSettings, PlannedTokens, DATA_SETS,
    },
    config::Study,
    model::ModelFolder,
    store::write_file_atomic,
};
use serde::Serialize;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

/// Options of `descry bench`.
pub struct BenchArgs<'a> {
    pub model: &'a Path,
    pub out: &'a Path,
    /// `N` (every data set) or `NAME=N`.
    pub limits: &'a [String],
    pub threads: usize,
    pub batch_tokens: usize,
    pub request_tokens: Option<usize>,
    pub data: Option<&'a Path>,
    pub data_sets: &'a [String],
    pub memory_episodes: usize,
    pub backend: &'a str,
    pub ort_library: Option<&'a Path>,
    pub sgemm_size: usize,
    pub full_plan: bool,
    pub skip_full_plan: bool,
    pub phase: Option<&'a str>,
}

/// The fp32 matrix-multiply rate of this machine's cores, as measured.
#[derive(Debug, Clone, Serialize)]
struct SgemmReport {
    method: String,
    n: usize,
    threads: usize,
    flops_per_s_before: f64,
    flops_per_s_after: f64,
    /// Every measurement, in order (before, before each phase, after).
    flops_per_s_all: Vec<f64>,
    /// The best seen (the stricter reference for the FLOP/s target).
    flops_per_s: f64,
}

#[derive(Serialize)]
struct Settings {
    threads: usize,
    threads_effective: usize,
    batch_tokens: usize,
    request_tokens: usize,
    /// `--limit N`: episodes per data set, unless a data set has its own.
    limit: Option<usize>,
    /// The limit each data set was benched with.
    limits: BTreeMap<String, Option<usize>>,
    full_plan: bool,
    memory_episodes: usize,
    backend: String,
    data_root: PathBuf,
    ort_library: PathBuf,
}

#[derive(Serialize)]
struct Report {
    descry_version: &'static str,
    command: String,
    model: ModelInfo,
    machine: descry_core::bench::MachineInfo,
    load_average_end: Option<String>,
    settings: Settings,
    sgemm: SgemmReport,
    sgemm_flops_per_s: f64,
    data_sets: BTreeMap<String, DataSetReport>,
    memory_check: Option<MemoryCheck>,
    targets: Vec<descry_core::bench::Target>,
    notes: Vec<String>,
    total_s: f64,
}

pub fn run(cli: &Cli, args: &BenchArgs) -> Result<()> {
    if args.batch_tokens == 0 {
        bail!("--batch-tokens must be at least 1");
    }
    let (default_limit, set_limits) = parse_limits(args.limits)?;
    let limit_of = |name: &str| set_limits.get(name).copied().or(default_limit);
    let data_root = match args.data {
        Some(d) => d.to_path_buf(),
        None => Study::default().data_root(),
    };
    if !is_data_root(&data_root) {
        bail!(
            "{} holds none of the benchmark's data folders ({}); give --data DIR, or run `descry data fetch`",
            data_root.display(),
            DATA_SETS.iter().map(|d| d.data).collect::<Vec<_>>().join(", ")
        );
    }
    let data_root =
        std::fs::canonicalize(&data_root).with_context(|| format!("{}", data_root.display()))?;
    let model_dir = std::fs::canonicalize(args.model).with_context(|| {
        format!("model folder {}: not found (see `descry import`)", args.model.display())
    })?;
    let ort_library = args
        .ort_library
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| {
            descry_core::config::descry_home().join("onnxruntime").join("libonnxruntime.so.1.31.1")
        });
    let settings = |data_set: &str, phase: Phase, limit: Option<usize>| PhaseSettings {
        model_dir: model_dir.clone(),
        data_root: data_root.clone(),
        data_set: data_set.to_string(),
        phase,
        limit,
        backend: args.backend.to_string(),
        threads: args.threads,
        batch_tokens: args.batch_tokens,
        request_tokens: args.request_tokens.unwrap_or(args.batch_tokens.saturating_mul(4)).max(1),
        ort_library: Some(ort_library.clone()),
    };
    let registry = super::registry(cli, None)?;

    // A child: one phase on one data set, its result to --out.
    if let Some(phase) = args.phase {
        let phase = Phase::parse(phase)
            .with_context(|| format!("--phase {phase}: expected naive or plan"))?;
        let [name] = args.data_sets else { bail!("--phase needs exactly one --data-set") };
        if !set_limits.is_empty() {
            bail!("--phase takes a plain --limit N");
        }
        let result = run_phase(&registry, &settings(name, phase, default_limit))?;
        write_file_atomic(args.out, serde_json::to_string(&result)?.as_bytes())?;
        return Ok(());
    }

    let started = Instant::now();
    let machine = machine_info();
    let folder = ModelFolder::open(&model_dir)?;
    let model = ModelInfo::of(&folder);
    let names: Vec<String> = if args.data_sets.is_empty() {
        DATA_SETS.iter().map(|d| d.name.to_string()).collect()
    } else {
        args.data_sets.to_vec()
    };
    for name in names.iter().chain(set_limits.keys()) {
        data_set(name)?;
    }
    if registry.backend(args.backend).is_none() {
        bail!("no backend plugin named `{}` is loaded; see `descry plugins`", args.backend);
    }
    let threads_effective = if args.threads == 0 { machine.cores } else { args.threads };
    let request_tokens = settings(&names[0], Phase::Plan, None).request_tokens;
    eprintln!(
        "descry bench: {} ({}, {:.1}M non-embedding parameters, {} format) on {} ({} cores, load {}); {} threads, batch {} tokens, requests of {} tokens, limit {}",
        model.name,
        model.architecture,
        model.non_embedding_params as f64 / 1e6,
        model.format,
        machine.cpu_model,
        machine.cores,
        machine.load_average.as_deref().unwrap_or("?"),
        threads_effective,
        args.batch_tokens,
        request_tokens,
        describe_limits(&names, &limit_of),
    );

    // The whole data sets through the planner: checks games, data and tokenizer before any
    // model runs, and gives the planner's token figures for all decisions.
    let mut planned: BTreeMap<String, PlannedTokens> = BTreeMap::new();
    for name in &names {
        if args.skip_full_plan {
            // Still validate the configuration cheaply: plan the benched subset.
            planned_tokens(&registry, &settings(name, Phase::Plan, limit_of(name)))?;
            continue;
        }
        let (decisions, naive_tokens, transcript_tokens) =
            planned_tokens(&registry, &settings(name, Phase::Plan, None))?;
        let p = PlannedTokens {
            decisions,
            naive_tokens,
            transcript_tokens,
            ratio: naive_tokens as f64 / transcript_tokens.max(1) as f64,
        };
        eprintln!(
            "{name}: whole data set, planner only: {} decisions, {} prompt tokens (naive) vs {} in transcripts ({:.2}x before shared-prefix reuse)",
            p.decisions, p.naive_tokens, p.transcript_tokens, p.ratio
        );
        planned.insert(name.clone(), p);
    }

    let sgemm_before = measure_sgemm(&ort_library, args.threads, args.sgemm_size)?;
    eprintln!(
        "sgemm: {:.2} GFLOP/s (ONNX Runtime MatMul {n}x{n}x{n} fp32, {threads_effective} threads)",
        sgemm_before / 1e9,
        n = args.sgemm_size
    );

    let scratch = std::env::temp_dir().join(format!("descry-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let mut results: BTreeMap<String, (PhaseResult, PhaseResult)> = BTreeMap::new();
    let mut wholes: BTreeMap<String, PhaseResult> = BTreeMap::new();
    // The matrix-multiply rate just before each phase: how busy the cores were at the time.
    let mut sgemm_at: BTreeMap<(String, &'static str), f64> = BTreeMap::new();
    let mut sgemm_seen = vec![sgemm_before];
    let outcome = (|| -> Result<Option<MemoryCheck>> {
        let mut phase = |name: &str,
                         phase: Phase,
                         limit: Option<usize>,
                         label: &'static str|
         -> Result<PhaseResult> {
            let rate = measure_sgemm(&ort_library, args.threads, args.sgemm_size)?;
            sgemm_seen.push(rate);
            sgemm_at.insert((name.to_string(), label), rate);
            spawn_phase(cli, &settings(name, phase, limit), &scratch)
        };
        for name in &names {
            let naive = phase(name, Phase::Naive, limit_of(name), "naive")?;
            let plan = phase(name, Phase::Plan, limit_of(name), "plan")?;
            results.insert(name.clone(), (naive, plan));
            if args.full_plan && limit_of(name).is_some() {
                wholes.insert(name.clone(), phase(name, Phase::Plan, None, "whole")?);
            }
        }
        let memory_set = DATA_SETS[0].name;
        if args.memory_episodes == 0 || !names.iter().any(|n| n == memory_set) {
            return Ok(None);
        }
        // With the plan run over the whole set, the check is at full scale: a tenth of the
        // episodes against all of them (the whole-set run is reused).
        if let Some(whole) = wholes.get(memory_set) {
            let tenth = whole.episodes_total.div_ceil(10).max(1);
            let small =
                spawn_phase(cli, &settings(memory_set, Phase::Plan, Some(tenth)), &scratch)?;
            return Ok(Some(MemoryCheck::new(&small, whole)));
        }
        let small = spawn_phase(
            cli,
            &settings(memory_set, Phase::Plan, Some(args.memory_episodes)),
            &scratch,
        )?;
        let large = spawn_phase(
            cli,
            &settings(memory_set, Phase::Plan, Some(args.memory_episodes * 10)),
            &scratch,
        )?;
        Ok(Some(MemoryCheck::new(&small, &large)))
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    let memory_check = outcome?;

    let sgemm_after = measure_sgemm(&ort_library, args.threads, args.sgemm_size)?;
    sgemm_seen.push(sgemm_after);
    let best = sgemm_seen.iter().copied().fold(0.0, f64::max);
    let sgemm = SgemmReport {
        method: "ONNX Runtime (the backend's runtime and library) MatMul of an n x n input by an n x n constant \
                 initializer, fp32, best of three timed rounds after warm-up; measured before the benchmark, \
                 before each phase and after; flops_per_s is the best seen (the stricter reference)"
            .into(),
        n: args.sgemm_size,
        threads: threads_effective,
        flops_per_s_before: sgemm_before,
        flops_per_s_after: sgemm_after,
        flops_per_s_all: sgemm_seen.clone(),
        flops_per_s: best,
    };

    let mut data_sets = BTreeMap::new();
    for name in &names {
        let Some((naive, plan)) = results.get(name) else { continue };
        let spec = data_set(name)?;
        let mut report = DataSetReport::new(
            spec,
            &folder.manifest,
            naive,
            plan,
            sgemm.flops_per_s,
            limit_of(name),
            planned.get(name).cloned(),
        )?;
        report.naive.sgemm_flops_per_s_at_start = sgemm_at.get(&(name.clone(), "naive")).copied();
        report.plan.sgemm_flops_per_s_at_start = sgemm_at.get(&(name.clone(), "plan")).copied();
        if let Some(whole) = wholes.get(name) {
            report.add_whole_set(&folder.manifest, naive, whole)?;
            if let Some(w) = report.whole_set.as_mut() {
                w.plan.sgemm_flops_per_s_at_start = sgemm_at.get(&(name.clone(), "whole")).copied();
            }
        }
        data_sets.insert(name.clone(), report);
    }
    let targets = targets(&data_sets, memory_check.as_ref());
    let warnings = contention_warnings(&data_sets);
    let mut notes = vec![
        "tokens: tokens the backend computed (padding excluded); wall_s: scoring only (model load and tokenization, identical for both phases, are in setup_s)".to_string(),
        "model FLOPs = 2 x non_embedding_params x tokens + 4 x layers x heads x head_dim x sum of attention contexts + 2 x hidden x vocab x queries (see descry_core::bench)".to_string(),
        "naive: one sequence per decision, backend prefix reuse off (min_shared_prefix past any length), checked: tokens == sum of prompt tokens".to_string(),
        "plan: episode transcripts (Grouping::Prefix) + the backend's shared-prefix reuse within each request, as `descry run` does".to_string(),
    ];
    if names.iter().any(|n| limit_of(n).is_some()) {
        notes.push(format!(
            "limits ({}): the first episodes of a data set only; ratios on a subset differ from the whole data set (full_data_planned: the planner's whole-set token figures; whole_set: the plan run over every episode, with --full-plan)",
            describe_limits(&names, &limit_of)
        ));
    }
    notes.extend(warnings);
    if let Some(load) = &machine.load_average {
        notes.push(format!("load average at start: {load} (other work on the machine slows both phases and the sgemm measurement)"));
    }
    let report = Report {
        descry_version: env!("CARGO_PKG_VERSION"),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        model: model.clone(),
        machine,
        load_average_end: load_average(),
        settings: Settings {
            threads: args.threads,
            threads_effective,
            batch_tokens: args.batch_tokens,
            request_tokens,
            limit: default_limit,
            limits: names.iter().map(|n| (n.clone(), limit_of(n))).collect(),
            full_plan: args.full_plan,
            memory_episodes: args.memory_episodes,
            backend: args.backend.to_string(),
            data_root,
            ort_library,
        },
        sgemm_flops_per_s: sgemm.flops_per_s,
        sgemm,
        data_sets,
        memory_check,
        targets,
        notes,
        total_s: started.elapsed().as_secs_f64(),
    };
    write_file_atomic(args.out, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!(
        "descry bench: {} on {} ({} cores, load {} -> {}), {} threads, batch {} tokens, limit {}; sgemm {:.2} GFLOP/s (ONNX Runtime MatMul fp32)",
        report.model.name,
        report.machine.cpu_model,
        report.machine.cores,
        report.machine.load_average.as_deref().unwrap_or("?"),
        report.load_average_end.as_deref().unwrap_or("?"),
        threads_effective,
        args.batch_tokens,
        describe_limits(&names, &limit_of),
        report.sgemm_flops_per_s / 1e9,
    );
    print!(
        "{}",
        format_table(
            &report.model,
            &report.data_sets,
            report.memory_check.as_ref(),
            &report.targets
        )
    );
    println!("results: {}", args.out.display());
    Ok(())
}

/// `--limit` values: `N` for every data set, `NAME=N` for one.
fn parse_limits(values: &[String]) -> Result<(Option<usize>, BTreeMap<String, usize>)> {
    let mut default = None;
    let mut per_set = BTreeMap::new();
    for v in values {
        let (name, n) = match v.split_once('=') {
            Some((name, n)) => (Some(name.trim()), n.trim()),
            None => (None, v.trim()),
        };
        let n: usize = n
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .with_context(|| format!("--limit {v}: expected N or NAME=N with N at least 1"))?;
        match name {
            Some(name) => {
                per_set.insert(name.to_string(), n);
            }
            None => default = Some(n),
        }
    }
    Ok((default, per_set))
}

fn describe_limits(names: &[String], limit_of: &dyn Fn(&str) -> Option<usize>) -> String {
    names
        .iter()
        .map(|n| {
            format!(
                "{n}: {}",
                limit_of(n).map_or("every episode".to_string(), |l| format!("{l} episodes"))
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs one phase in a child process of this binary and reads its result.
fn spawn_phase(cli: &Cli, settings: &PhaseSettings, scratch: &Path) -> Result<PhaseResult> {
    let exe = std::env::current_exe().context("cannot locate the descry binary")?;
    let file = scratch.join(format!(
        "{}-{}-{}.json",
        settings.data_set,
        settings.phase,
        settings.limit.map_or("all".to_string(), |l| l.to_string())
    ));
    let mut cmd = Command::new(exe);
    for dir in &cli.plugin_dirs {
        cmd.arg("--plugin-dir").arg(dir);
    }
    cmd.arg("bench")
        .arg("--model")
        .arg(&settings.model_dir)
        .arg("--out")
        .arg(&file)
        .arg("--phase")
        .arg(settings.phase.as_str())
        .arg("--data-set")
        .arg(&settings.data_set)
        .arg("--data")
        .arg(&settings.data_root)
        .arg("--threads")
        .arg(settings.threads.to_string())
        .arg("--batch-tokens")
        .arg(settings.batch_tokens.to_string())
        .arg("--request-tokens")
        .arg(settings.request_tokens.to_string())
        .arg("--backend")
        .arg(&settings.backend);
    if let Some(lib) = &settings.ort_library {
        cmd.arg("--ort-library").arg(lib);
    }
    if let Some(limit) = settings.limit {
        cmd.arg("--limit").arg(limit.to_string());
    }
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .context("starting a bench phase")?;
    if !status.success() {
        bail!(
            "the {} phase on {} failed ({status}); its error is above",
            settings.phase,
            settings.data_set
        );
    }
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let result: PhaseResult = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a phase result", file.display()))?;
    eprintln!(
        "  {} / {}: {} decisions, {} tokens computed ({} reused, {} padding) in {:.2}s = {:.2} decisions/s, peak RSS {} MB",
        settings.data_set,
        settings.phase,
        result.decisions,
        result.tokens_computed,
        result.tokens_reused,
        result.tokens_padding,
        result.wall_s,
        result.decisions_per_s(),
        result.peak_rss_mb.map_or("?".into(), |m| format!("{m:.0}"))
    );
    Ok(result)
}

/// The fp32 matrix-multiply rate of the cores through ONNX Runtime, FLOP/s: a graph with one
/// MatMul of an `n × n` input by an `n × n` constant (as the model's weights are), run with
/// the same library and thread count as the model; the best of three timed rounds after
/// warm-up.
fn measure_sgemm(library: &Path, threads: usize, n: usize) -> Result<f64> {
    use descry_onnx_build::onnx::{DataType, Dim, GraphBuilder, Model};
    use ort::{session::Session, value::Tensor};

    if n == 0 {
        bail!("--sgemm-size must be at least 1");
    }
    let mut g = GraphBuilder::new("sgemm");
    let a = g.input("a", DataType::Float, vec![Dim::Fixed(n as i64), Dim::Fixed(n as i64)]);
    // Deterministic, well-scaled values (no denormals, no overflow).
    let b_data: Vec<f32> =
        (0..n * n).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 1000.0).collect();
    let a_data: Vec<f32> =
        (0..n * n).map(|i| ((i * 104729 % 1000) as f32 - 500.0) / 1000.0).collect();
    let b = g.initializer_f32("b", &[n, n], b_data.clone());
    let c = g.node("MatMul", &[&a, &b], vec![]);
    g.output(&c, DataType::Float, vec![Dim::Fixed(n as i64), Dim::Fixed(n as i64)]);
    let model = Model {
        ir_version: 8,
        opsets: vec![(String::new(), 17)],
        producer_name: "descry-bench".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        metadata: Vec::new(),
        graph: g.finish(),
    };
    let mut bytes = Vec::new();
    model.write_to(&mut bytes, &mut |_| {}).context("encoding the sgemm graph")?;

    let env = sgemm_environment(library)?;
    let mut builder = Session::builder(env).map_err(|e| anyhow::anyhow!("ONNX Runtime: {e}"))?;
    if threads > 0 {
        builder = builder
            .with_intra_threads(threads)
            .map_err(|e| anyhow::anyhow!("ONNX Runtime: {e}"))?;
    }
    let mut session = builder
        .commit_from_memory(&bytes)
        .map_err(|e| anyhow::anyhow!("ONNX Runtime: loading the sgemm graph: {e}"))?;
    let input = Tensor::from_array((vec![n, n], a_data.clone()))
        .map_err(|e| anyhow::anyhow!("ONNX Runtime: {e}"))?;
    let mut run_once = || -> Result<f32> {
        let outputs = session
            .run(ort::inputs!["a" => &input])
            .map_err(|e| anyhow::anyhow!("ONNX Runtime: {e}"))?;
        let (_, data) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| anyhow::anyhow!("ONNX Runtime: {e}"))?;
        Ok(data[n * n - 1])
    };
    // Check one element against a plain dot product: the rate must be of a real product.
    let got = run_once()?;
    let want: f64 =
        (0..n).map(|k| a_data[(n - 1) * n + k] as f64 * b_data[k * n + n - 1] as f64).sum();
    if (got as f64 - want).abs() > 1e-3 * (1.0 + want.abs()) {
        bail!("the sgemm check failed: C[n-1][n-1] = {got}, expected {want}");
    }
    for _ in 0..2 {
        run_once()?;
    }
    let flops_per_run = 2.0 * (n as f64).powi(3);
    let mut best = 0.0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let mut runs = 0u32;
        while runs < 3 || start.elapsed().as_secs_f64() < 0.7 {
            run_once()?;
            runs += 1;
        }
        best = best.max(flops_per_run * runs as f64 / start.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn sgemm_environment(library: &Path) -> Result<&'static ort::environment::Environment> {
    static ENV: std::sync::OnceLock<ort::environment::Environment> = std::sync::OnceLock::new();
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    if !library.is_file() {
        bail!(
            "ONNX Runtime library {} not found; set ORT_DYLIB_PATH or --ort-library, or run scripts/setup-models.sh",
            library.display()
        );
    }
    let env = ort::init_from(library)
        .map_err(|e| anyhow::anyhow!("ONNX Runtime library {}: {e}", library.display()))?
        .with_name("descry-bench")
        .build()
        .map_err(|e| anyhow::anyhow!("ONNX Runtime library {}: {e}", library.display()))?;
    Ok(ENV.get_or_init(|| env))
}
