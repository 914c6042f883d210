//! `descry-bench`: the same science with a fraction of the arithmetic, measured.
//!
//! The benchmark scores the same decisions of a real data set twice with the same model,
//! backend, threads and batch token budget, on the same machine, in the same run:
//!
//! - **naive** (the published method): one sequence per decision over its whole prompt
//!   ([`Grouping::PerDecision`](descry_core::plan::Grouping)), with the backend's
//!   shared-prefix reuse switched off (`prefix_reuse = false`), so every prompt token of
//!   every decision is computed; the phase checks that the backend computed exactly
//!   Σ prompt tokens and fails otherwise;
//! - **plan** (descry's plan, what `descry run` does): episode transcripts
//!   ([`Grouping::Prefix`](descry_core::plan::Grouping): a decision whose prompt tokens are a
//!   prefix of its episode's last prompt is a query inside that one sequence), ordered by
//!   their tokens ([`order_for_reuse`](descry_core::plan::order_for_reuse)) and sent in
//!   requests of `request_tokens` tokens; the backend runs each request's radix tree, every
//!   distinct token prefix once on top of its parent's key/values, and keeps the last
//!   sequence's past for the next request. Beside both: the trie minimum
//!   ([`distinct_prefix_tokens`](descry_core::plan::distinct_prefix_tokens)), the tokens no
//!   exact method can go below.
//!
//! It is built on core's public pipeline (the planner, the scorer, the plugin registry)
//! and the backend interface alone, so it runs any backend plugin and links no engine: the
//! reference arithmetic rate comes from the backend's `matmul_rate` entry (square fp32
//! matrix multiplies timed through the engine, under the phases' threads).
//!
//! Each phase runs in its own process (this binary with `--phase`), so that its peak
//! resident memory is its own ([`PhaseResult::peak_rss_mb`], from `/proc/self/status`).
//! The parent compares the two phases' predictions decision by decision
//! ([`compare`](phase::compare)) and puts them side by side with the engine's measured
//! matrix-multiply rate, and with the targets ([`report::targets`]), which live here and in
//! the README, not in a library.
//!
//! Arithmetic ([`model_flops`](report::model_flops)), per phase, counting only tokens the
//! backend computed (padding excluded):
//!
//! ```text
//! FLOPs = 2 · P_non-embedding · T                       dense layers
//!       + 4 · L · (heads · head_dim) · C                attention: QKᵀ and A·V
//!       + 2 · hidden · vocab · Q                        output projection at query positions
//! ```
//!
//! with `T` the tokens computed, `L` the layers, `Q` the queried positions and `C` the sum,
//! over computed tokens, of the context each attends to. A sequence of `n` tokens computed
//! from scratch contributes `n(n+1)/2`; when the backend reuses a shared prefix the sum is
//! scaled by `tokens computed / tokens sent` (an approximation: reused tokens are the
//! earliest, whose contexts are the shortest, so it slightly undercounts). Attention is
//! counted over the full causal context, as the graph computes it (a sliding window masks
//! scores; it does not skip them).

mod machine;
mod phase;
mod report;

use anyhow::{bail, Context, Result};
use clap::Parser;
use descry_abi::types::{BackendSettings, MatmulRate};
use descry_core::{
    backend::check_settings,
    config::Study,
    model::ModelFolder,
    registry::{LoadedBackend, Registry},
    store::write_file_atomic,
};
use machine::{load_average, machine_info, MachineInfo};
use phase::{
    data_set, is_data_root, phase_backend_settings, planned_tokens, run_phase, Phase, PhaseResult,
    PhaseSettings, DATA_SETS,
};
use report::{
    contention_warnings, format_table, targets, DataSetReport, MemoryCheck, ModelInfo,
    PlannedTokens, Target,
};
use serde::Serialize;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "descry-bench",
    version,
    about = "Benchmark: score real data sets (repeated matrix games, GLEE bargaining, persuasion, \
             negotiation) the naive way (one forward pass per decision) and with descry's plan \
             (the radix tree of the prompts, each distinct prefix computed once), side by side: \
             tokens beside the trie minimum, wall time, decisions/s, peak memory, model FLOP/s \
             against the engine's measured fp32 matrix-multiply rate, and the targets. Writes \
             JSON."
)]
struct Cli {
    /// Plugin folder to scan instead of the folder of the `descry-bench` binary (repeatable).
    #[arg(long = "plugin-dir", value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,
    /// The model folder.
    #[arg(long)]
    model: PathBuf,
    /// The JSON file to write.
    #[arg(long)]
    out: PathBuf,
    /// Bench only the first N episodes of each data set (the naive method is slow):
    /// `--limit N` for every data set, `--limit NAME=N` for one (repeatable).
    #[arg(long = "limit", value_name = "N|NAME=N")]
    limits: Vec<String>,
    /// Compute threads for the model and the matrix-multiply measurement (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Token budget of one forward batch.
    #[arg(long, default_value_t = 2048)]
    batch_tokens: usize,
    /// Tokens per scoring request (default: 4 x batch tokens, as `descry run`).
    #[arg(long)]
    request_tokens: Option<usize>,
    /// The data root holding `akata/` and `glee/` (default: ../shared/data, else
    /// $DESCRY_HOME/data).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Data sets to bench (repeatable; default: all): matrix-native, matrix-transcript,
    /// glee-bargaining, glee-persuasion, glee-persuasion-transcript, glee-negotiation.
    #[arg(long = "data-set", value_name = "NAME")]
    data_sets: Vec<String>,
    /// The memory check: the plan on N and on 10 N episodes of the matrix set (0: skip).
    /// N should fill a forward batch (about 900 tokens an episode), so that the check
    /// compares data sizes, not a part-filled batch with a full one. With --full-plan
    /// the check is a tenth of the episodes against all of them instead.
    #[arg(long, default_value_t = 3)]
    memory_episodes: usize,
    /// Backend plugin (it must honour `prefix_reuse = false`).
    #[arg(long, default_value = "onnx")]
    backend: String,
    /// A key of the backend's own table, as a study's `[backend.<plugin>]` would set it:
    /// `--engine library=/path/libonnxruntime.so` (repeatable; the value is read as JSON
    /// when it parses, else as a string).
    #[arg(long = "engine", value_name = "KEY=VALUE")]
    engine: Vec<String>,
    /// Side of the square fp32 matrix multiply that measures the engine.
    #[arg(long, default_value_t = 1024)]
    sgemm_size: u32,
    /// Also run the plan over every episode of each data set (measured tokens, time and
    /// memory for the whole set; the naive method's tokens for it are exact without
    /// running it, its time is extrapolated from the benched subset).
    #[arg(long)]
    full_plan: bool,
    /// Do not plan the whole data sets for the planner-only token figures.
    #[arg(long)]
    skip_full_plan: bool,
    /// Internal: run one phase (`naive` or `plan`) of one data set and write its result
    /// to --out (the parent runs each phase in its own process to measure its memory).
    #[arg(long, hide = true)]
    phase: Option<String>,
}

/// The engine's fp32 matrix-multiply rate, as measured through the backend.
#[derive(Debug, Clone, Serialize)]
struct SgemmReport {
    method: String,
    /// The backend plugin that measured it.
    backend: String,
    n: u32,
    threads: usize,
    /// Multiplies the backend timed in its last measurement.
    repeats: u32,
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
    /// The backend plugin's version.
    backend_version: String,
    /// The backend's own table (`--engine`).
    engine: serde_json::Map<String, serde_json::Value>,
    data_root: PathBuf,
}

#[derive(Serialize)]
struct Report {
    descry_version: &'static str,
    command: String,
    model: ModelInfo,
    machine: MachineInfo,
    load_average_end: Option<String>,
    settings: Settings,
    sgemm: SgemmReport,
    sgemm_flops_per_s: f64,
    data_sets: BTreeMap<String, DataSetReport>,
    memory_check: Option<MemoryCheck>,
    targets: Vec<Target>,
    notes: Vec<String>,
    total_s: f64,
}

fn main() -> std::process::ExitCode {
    descry_cli_support::run_main(|| run(&Cli::parse()))
}

/// The plugin folders: `--plugin-dir` folders, else the folder of the running binary (the
/// build puts the plugins beside it).
fn plugin_folders(cli: &Cli) -> Result<Vec<PathBuf>> {
    if !cli.plugin_dirs.is_empty() {
        return Ok(cli.plugin_dirs.clone());
    }
    let exe = std::env::current_exe().context("cannot locate the descry-bench binary")?;
    Ok(vec![exe.parent().map(Path::to_path_buf).unwrap_or_default()])
}

fn run(cli: &Cli) -> Result<()> {
    if cli.batch_tokens == 0 {
        bail!("--batch-tokens must be at least 1");
    }
    if cli.sgemm_size == 0 {
        bail!("--sgemm-size must be at least 1");
    }
    let (default_limit, set_limits) = parse_limits(&cli.limits)?;
    let limit_of = |name: &str| set_limits.get(name).copied().or(default_limit);
    let engine = parse_engine(&cli.engine)?;
    let data_root = match &cli.data {
        Some(d) => d.clone(),
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
    let model_dir = std::fs::canonicalize(&cli.model).with_context(|| {
        format!("model folder {}: not found (see `descry import`)", cli.model.display())
    })?;
    let settings = |data_set: &str, phase: Phase, limit: Option<usize>| PhaseSettings {
        model_dir: model_dir.clone(),
        data_root: data_root.clone(),
        data_set: data_set.to_string(),
        phase,
        limit,
        backend: cli.backend.clone(),
        threads: cli.threads,
        batch_tokens: cli.batch_tokens,
        request_tokens: cli.request_tokens.unwrap_or(cli.batch_tokens.saturating_mul(4)).max(1),
        engine: engine.clone(),
    };
    let registry = Registry::scan(&plugin_folders(cli)?);

    // A child: one phase on one data set, its result to --out.
    if let Some(phase) = &cli.phase {
        let phase = Phase::parse(phase)
            .with_context(|| format!("--phase {phase}: expected naive or plan"))?;
        let [name] = cli.data_sets.as_slice() else {
            bail!("--phase needs exactly one --data-set")
        };
        if !set_limits.is_empty() {
            bail!("--phase takes a plain --limit N");
        }
        let result = run_phase(&registry, &settings(name, phase, default_limit))?;
        write_file_atomic(&cli.out, serde_json::to_string(&result)?.as_bytes())?;
        return Ok(());
    }

    let started = Instant::now();
    let machine = machine_info();
    let folder = ModelFolder::open(&model_dir)?;
    let model = ModelInfo::of(&folder);
    let names: Vec<String> = if cli.data_sets.is_empty() {
        DATA_SETS.iter().map(|d| d.name.to_string()).collect()
    } else {
        cli.data_sets.clone()
    };
    for name in names.iter().chain(set_limits.keys()) {
        data_set(name)?;
    }
    let Some(backend) = registry.backend(&cli.backend) else {
        bail!(
            "no backend plugin named `{}` is loaded from {}; see `descry plugins`",
            cli.backend,
            registry.folders.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    };
    // The model folder must hold the files this backend loads, and the backend must accept
    // the settings, before any data is read.
    folder.check_artifacts(backend.info.artifacts.as_str())?;
    let backend_settings = phase_backend_settings(&settings(&names[0], Phase::Plan, None))?;
    check_backend(backend, &backend_settings)?;
    let threads_effective = if cli.threads == 0 { machine.cores } else { cli.threads };
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
        cli.batch_tokens,
        request_tokens,
        describe_limits(&names, &limit_of),
    );

    // The whole data sets through the planner: checks games, data and tokenizer before any
    // model runs, and gives the planner's token figures for all decisions.
    let mut planned: BTreeMap<String, PlannedTokens> = BTreeMap::new();
    for name in &names {
        if cli.skip_full_plan {
            // Still validate the configuration cheaply: plan the benched subset.
            planned_tokens(&registry, &settings(name, Phase::Plan, limit_of(name)))?;
            continue;
        }
        let (decisions, naive_tokens, transcript_tokens, trie_minimum_tokens) =
            planned_tokens(&registry, &settings(name, Phase::Plan, None))?;
        let p = PlannedTokens {
            decisions,
            naive_tokens,
            transcript_tokens,
            ratio: naive_tokens as f64 / transcript_tokens.max(1) as f64,
            trie_minimum_tokens,
            trie_ratio: naive_tokens as f64 / trie_minimum_tokens.max(1) as f64,
        };
        eprintln!(
            "{name}: whole data set, planner only: {} decisions, {} prompt tokens (naive) vs {} in transcripts ({:.2}x before shared-prefix reuse) and a trie minimum of {} ({:.2}x)",
            p.decisions, p.naive_tokens, p.transcript_tokens, p.ratio, p.trie_minimum_tokens, p.trie_ratio
        );
        planned.insert(name.clone(), p);
    }

    let measure = || measure_matmul(backend, &backend_settings, cli.sgemm_size);
    let first = measure()?;
    let sgemm_before = flops_per_s(&first);
    eprintln!(
        "sgemm: {:.2} GFLOP/s (backend `{}` matmul_rate {n}x{n}x{n} fp32, {threads_effective} threads)",
        sgemm_before / 1e9,
        cli.backend,
        n = cli.sgemm_size
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
            let rate = flops_per_s(&measure()?);
            sgemm_seen.push(rate);
            sgemm_at.insert((name.to_string(), label), rate);
            spawn_phase(cli, &settings(name, phase, limit), &scratch)
        };
        for name in &names {
            let naive = phase(name, Phase::Naive, limit_of(name), "naive")?;
            let plan = phase(name, Phase::Plan, limit_of(name), "plan")?;
            results.insert(name.clone(), (naive, plan));
            if cli.full_plan && limit_of(name).is_some() {
                wholes.insert(name.clone(), phase(name, Phase::Plan, None, "whole")?);
            }
        }
        let memory_set = DATA_SETS[0].name;
        if cli.memory_episodes == 0 || !names.iter().any(|n| n == memory_set) {
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
            &settings(memory_set, Phase::Plan, Some(cli.memory_episodes)),
            &scratch,
        )?;
        let large = spawn_phase(
            cli,
            &settings(memory_set, Phase::Plan, Some(cli.memory_episodes * 10)),
            &scratch,
        )?;
        Ok(Some(MemoryCheck::new(&small, &large)))
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    let memory_check = outcome?;

    let last = measure()?;
    let sgemm_after = flops_per_s(&last);
    sgemm_seen.push(sgemm_after);
    let best = sgemm_seen.iter().copied().fold(0.0, f64::max);
    let sgemm = SgemmReport {
        method: format!(
            "the backend's matmul_rate entry (`{}`): n x n by n x n fp32 multiplies timed through \
             its engine under the phases' device and threads; measured before the benchmark, \
             before each phase and after; flops_per_s is the best seen (the stricter reference)",
            cli.backend
        ),
        backend: cli.backend.clone(),
        n: cli.sgemm_size,
        threads: threads_effective,
        repeats: last.repeats,
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
            &model,
            naive,
            plan,
            sgemm.flops_per_s,
            limit_of(name),
            planned.get(name).cloned(),
        )?;
        report.naive.sgemm_flops_per_s_at_start = sgemm_at.get(&(name.clone(), "naive")).copied();
        report.plan.sgemm_flops_per_s_at_start = sgemm_at.get(&(name.clone(), "plan")).copied();
        if let Some(whole) = wholes.get(name) {
            report.add_whole_set(&model, naive, whole)?;
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
        "model FLOPs = 2 x non_embedding_params x tokens + 4 x layers x heads x head_dim x sum of attention contexts + 2 x hidden x vocab x queries (see the descry-bench crate docs)".to_string(),
        "naive: one sequence per decision, backend prefix reuse off (prefix_reuse = false), checked: tokens == sum of prompt tokens".to_string(),
        "plan: episode transcripts (Grouping::Prefix), sorted by tokens, + the backend's radix-tree schedule (each distinct prefix once per request, the last sequence's key/values kept for the next request), as `descry run` does".to_string(),
        "trie minimum: the distinct token prefixes of the sequences (the nodes of their token trie), the least any plan computes (the warm-up pass's reversed tokens leave nothing the measured requests can use)".to_string(),
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
            threads: cli.threads,
            threads_effective,
            batch_tokens: cli.batch_tokens,
            request_tokens,
            limit: default_limit,
            limits: names.iter().map(|n| (n.clone(), limit_of(n))).collect(),
            full_plan: cli.full_plan,
            memory_episodes: cli.memory_episodes,
            backend: cli.backend.clone(),
            backend_version: backend.info.plugin.version.to_string(),
            engine,
            data_root,
        },
        sgemm_flops_per_s: sgemm.flops_per_s,
        sgemm,
        data_sets,
        memory_check,
        targets,
        notes,
        total_s: started.elapsed().as_secs_f64(),
    };
    write_file_atomic(&cli.out, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!(
        "descry bench: {} on {} ({} cores, load {} -> {}), {} threads, batch {} tokens, limit {}; sgemm {:.2} GFLOP/s (backend `{}` matmul_rate fp32)",
        report.model.name,
        report.machine.cpu_model,
        report.machine.cores,
        report.machine.load_average.as_deref().unwrap_or("?"),
        report.load_average_end.as_deref().unwrap_or("?"),
        threads_effective,
        cli.batch_tokens,
        describe_limits(&names, &limit_of),
        report.sgemm_flops_per_s / 1e9,
        cli.backend,
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
    println!("results: {}", cli.out.display());
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

/// `--engine KEY=VALUE` values: the backend's own table. A value is JSON when it parses as
/// JSON (`4`, `true`, `"x"`), else a string, so paths need no quoting.
fn parse_engine(values: &[String]) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut table = serde_json::Map::new();
    for v in values {
        let Some((key, value)) = v.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
            bail!("--engine {v}: expected KEY=VALUE (a key of the backend's own table)");
        };
        let value = serde_json::from_str(value.trim())
            .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        table.insert(key.trim().to_string(), value);
    }
    Ok(table)
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

/// Asks the backend whether it accepts the settings, before any data is read or any model
/// runs; every problem is reported with the option it comes from.
fn check_backend(backend: &LoadedBackend, settings: &BackendSettings) -> Result<()> {
    let plugin = backend.info.plugin.name.as_str();
    let problems = check_settings(backend, settings)?;
    if problems.is_empty() {
        return Ok(());
    }
    let engine_prefix = format!("backend.{plugin}.");
    let lines: Vec<String> = problems
        .iter()
        .map(|(key, reason)| match key.strip_prefix(&engine_prefix) {
            Some(engine_key) => format!("--engine {engine_key} (`{key}`): {reason}"),
            None => format!("`{key}`: {reason}"),
        })
        .collect();
    bail!("backend `{plugin}` rejects the settings: {}", lines.join("; "))
}

/// A measured rate in FLOP/s.
fn flops_per_s(rate: &MatmulRate) -> f64 {
    rate.gflops * 1e9
}

/// The engine's fp32 matrix-multiply rate through the backend's `matmul_rate` entry, under
/// the phases' settings (device, threads).
fn measure_matmul(
    backend: &LoadedBackend,
    settings: &BackendSettings,
    n: u32,
) -> Result<MatmulRate> {
    let rate = backend.backend.matmul_rate(settings, n).into_result().map_err(|e| {
        anyhow::anyhow!("backend `{}`: measuring the matmul rate: {e}", backend.info.plugin.name)
    })?;
    if !(rate.gflops.is_finite() && rate.gflops > 0.0) {
        bail!(
            "backend `{}`: matmul_rate gave {} GFLOP/s for n = {n}; expected a positive rate",
            backend.info.plugin.name,
            rate.gflops
        );
    }
    Ok(rate)
}

/// Runs one phase in a child process of this binary and reads its result.
fn spawn_phase(cli: &Cli, settings: &PhaseSettings, scratch: &Path) -> Result<PhaseResult> {
    let exe = std::env::current_exe().context("cannot locate the descry-bench binary")?;
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
    cmd.arg("--model")
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
    // As JSON, so that the child reads back exactly the parent's values.
    for (key, value) in &settings.engine {
        cmd.arg("--engine").arg(format!("{key}={value}"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_plain_or_per_data_set_and_at_least_one() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (default, per_set) = parse_limits(&v(&["4", "glee-persuasion = 1"])).unwrap();
        assert_eq!(default, Some(4));
        assert_eq!(per_set.get("glee-persuasion"), Some(&1));
        for bad in ["0", "x", "matrix-native=0", "a=b"] {
            let err = parse_limits(&v(&[bad])).unwrap_err().to_string();
            assert!(err.contains(&format!("--limit {bad}")), "{err}");
        }
    }

    #[test]
    fn engine_values_are_json_when_they_parse_and_survive_the_child_round_trip() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let table =
            parse_engine(&v(&["library=/opt/ort lib.so", "graph_optimization=basic", "n=4"]))
                .unwrap();
        assert_eq!(
            serde_json::Value::Object(table.clone()),
            serde_json::json!({"library": "/opt/ort lib.so", "graph_optimization": "basic", "n": 4})
        );
        // What spawn_phase passes a child reads back as the same table.
        let again: Vec<String> = table.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(parse_engine(&again).unwrap(), table);
        assert!(parse_engine(&v(&["novalue"])).unwrap_err().to_string().contains("KEY=VALUE"));
        assert!(parse_engine(&v(&["=x"])).is_err());
    }

    #[test]
    fn the_command_line_parses_and_rejects_unknown_options() {
        let cli = Cli::try_parse_from([
            "descry-bench",
            "--model",
            "m",
            "--out",
            "o.json",
            "--limit",
            "4",
            "--engine",
            "library=/x.so",
        ])
        .unwrap();
        assert_eq!(cli.batch_tokens, 2048);
        assert_eq!(cli.sgemm_size, 1024);
        assert_eq!(cli.backend, "onnx");
        assert!(
            Cli::try_parse_from(["descry-bench", "--model", "m", "--out", "o", "--ort"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["descry-bench", "--out", "o"]).is_err(),
            "--model is required"
        );
    }
}
