//! Seeded random byte edits of real data files through a game's loader, for the game
//! crates' tests (feature `mutation`): a damaged file must give an error naming it, or a
//! data set that holds only what a study can use; never a panic or a hang.
//!
//! [`check_plugin`] writes small slices of the real files into a folder and, case by
//! case, damages one file with a few edits (a byte changed, bytes deleted or inserted, the file
//! truncated, a line duplicated), loads the folder through [`GamePlugin::load`] (the
//! entry point the host calls) on a thread of its own, and checks:
//!
//! - no panic (caught and reported with the case), and no case running past a time limit;
//! - an error names the damaged file by its full path;
//! - a data set that loads has decision point ids unique, rates in [0, 1], finite weights
//!   above 0, and every point renders in every variant of the game.
//!
//! The edits are drawn from a ChaCha generator with a fixed seed, so a failure is
//! reproduced by its case number.

use descry_abi::{
    game::GamePlugin,
    types::{LoadRequest, LoadedData},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::mpsc,
    time::{Duration, Instant},
};

/// A data file of a slice: its path under the data folder and its bytes.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// Path relative to the folder given to the loader (e.g. `repgames.csv`).
    pub path: PathBuf,
    /// The original bytes.
    pub bytes: Vec<u8>,
}

/// What the cases came to.
#[derive(Debug, Default)]
pub struct Summary {
    /// Cases whose damaged data still loaded (and passed the checks).
    pub loaded: usize,
    /// Cases refused with an error naming the damaged file.
    pub errors: usize,
    /// The slowest case: its number and how long it took.
    pub slowest: (usize, Duration),
    /// Time spent in the cases (loading and rendering), all together.
    pub busy: Duration,
}

/// The longest one case may take (load and render); the slices are a few kilobytes, so
/// this is a hang, not a slow machine.
pub const CASE_LIMIT: Duration = Duration::from_secs(20);

/// Bytes that change a CSV or JSON file's structure or numbers when inserted.
const INTERESTING: &[u8] = b",\"\n\r{}[]:0123456789-.eE+nNaI \t\\\x00\xff";

/// One damaged copy of `bytes`: one to four edits.
fn damage(rng: &mut ChaCha8Rng, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = out.len();
        let at = if len == 0 { 0 } else { rng.random_range(0..len) };
        let byte = |rng: &mut ChaCha8Rng| {
            if rng.random_bool(0.7) {
                INTERESTING[rng.random_range(0..INTERESTING.len())]
            } else {
                rng.random()
            }
        };
        match rng.random_range(0..5) {
            0 if len > 0 => out[at] = byte(rng),
            1 if len > 0 => {
                let n = rng.random_range(1..=8).min(len - at);
                out.drain(at..at + n);
            }
            2 => {
                let n = rng.random_range(1..=8);
                let insert: Vec<u8> = (0..n).map(|_| byte(rng)).collect();
                out.splice(at..at, insert);
            }
            3 => out.truncate(at),
            _ => {
                // A whole line again right after itself (a duplicated row).
                let start = out[..at].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                let end = out[at..].iter().position(|b| *b == b'\n').map_or(len, |i| at + i + 1);
                let line = out[start..end].to_vec();
                out.splice(end..end, line);
            }
        }
    }
    out
}

/// What one case came to, or what was wrong with it.
enum Outcome {
    Loaded,
    Refused,
    Wrong(String),
}

/// Runs `cases` damaged copies of `files` through `plugin.load` with `params` (JSON) and
/// checks each (see the module docs). Panics with every wrong case, numbered, when any.
pub fn check_plugin<P: GamePlugin + Clone>(
    plugin: P,
    params: &str,
    files: &[DataFile],
    cases: usize,
    seed: u64,
) -> Summary {
    assert!(!files.is_empty(), "no data files to damage");
    // One folder for all cases, the damaged file rewritten and restored around each: file
    // system operations, not the loader, would otherwise take most of the time.
    let base = tempfile::tempdir().expect("a temporary folder");
    let dir = base.path().to_path_buf();
    for file in files {
        let path = dir.join(&file.path);
        std::fs::create_dir_all(path.parent().unwrap_or(&dir)).expect("a case folder");
        std::fs::write(&path, &file.bytes).expect("a case file");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut summary = Summary::default();
    let mut wrong = Vec::new();
    for case in 0..cases {
        let victim = &files[rng.random_range(0..files.len())];
        let damaged = dir.join(&victim.path);
        let bytes = damage(&mut rng, &victim.bytes);
        std::fs::write(&damaged, &bytes).expect("a case file");
        let (send, receive) = mpsc::channel();
        let (p, params, folder, named) =
            (plugin.clone(), params.to_string(), dir.clone(), damaged.clone());
        let start = Instant::now();
        std::thread::spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_case(&p, &params, &folder, &named)
            }))
            .unwrap_or_else(|panic| {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Outcome::Wrong(format!("panicked: {text}"))
            });
            let _ = send.send(outcome);
        });
        let outcome = receive.recv_timeout(CASE_LIMIT).unwrap_or_else(|_| {
            Outcome::Wrong(format!("still running after {CASE_LIMIT:?} (a hang?)"))
        });
        summary.busy += start.elapsed();
        if start.elapsed() > summary.slowest.1 {
            summary.slowest = (case, start.elapsed());
        }
        match outcome {
            Outcome::Loaded => summary.loaded += 1,
            Outcome::Refused => summary.errors += 1,
            Outcome::Wrong(why) => {
                // Keep the damaged file for a look; it outlives the test.
                let name = victim
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let kept =
                    std::env::temp_dir().join(format!("descry-mutation-{seed}-{case}-{name}"));
                let _ = std::fs::write(&kept, &bytes);
                let hang = why.starts_with("still running");
                wrong.push(format!(
                    "case {case} (damaged {}, kept as {}): {why}",
                    victim.path.display(),
                    kept.display()
                ));
                if hang {
                    // The thread still runs on the folder; later cases would race with it.
                    break;
                }
            }
        }
        std::fs::write(&damaged, &victim.bytes).expect("a case file");
    }
    assert!(
        wrong.is_empty(),
        "{} of {cases} damaged data sets went wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    summary
}

fn run_case<P: GamePlugin>(plugin: &P, params: &str, folder: &Path, damaged: &Path) -> Outcome {
    let request =
        LoadRequest { path: folder.display().to_string().into(), params_json: params.into() };
    match plugin.load(&request) {
        Err(e) => {
            let message = e.to_string();
            if message.contains(&damaged.display().to_string()) {
                Outcome::Refused
            } else {
                Outcome::Wrong(format!(
                    "the error does not name `{}`: {message}",
                    damaged.display()
                ))
            }
        }
        Ok(data) => match check_loaded(plugin, &data) {
            Ok(()) => Outcome::Loaded,
            Err(why) => Outcome::Wrong(why),
        },
    }
}

/// What a data set that loads must hold: nothing a study did not ask for.
fn check_loaded<P: GamePlugin>(plugin: &P, data: &LoadedData) -> Result<(), String> {
    let variants: Vec<String> = plugin.info().variants.iter().map(|v| v.name.to_string()).collect();
    let mut ids = HashSet::new();
    for point in data.episodes.iter().flat_map(|e| e.decisions.iter()) {
        let id = point.id.as_str();
        if !ids.insert(id.to_string()) {
            return Err(format!("decision point `{id}` twice"));
        }
        let o = &point.outcome;
        if !((0.0..=1.0).contains(&o.rate) && o.weight.is_finite() && o.weight > 0.0) {
            return Err(format!("`{id}`: outcome rate {} weight {}", o.rate, o.weight));
        }
        for variant in &variants {
            plugin
                .render(point, variant)
                .map_err(|e| format!("`{id}` does not render in `{variant}`: {e}"))?;
        }
    }
    Ok(())
}

/// The files of the first `games` games of `family` in the real GLEE sample (a config and
/// a log each, as `human_vs_llm/<family>/.../<GAME_ID>/…`), for [`check_plugin`] with the
/// data folder as the path.
pub fn glee_slice(family: &str, games: usize) -> Vec<DataFile> {
    let glee = crate::shared_data_dir().join("glee");
    let scan = crate::glee::scan::<serde::de::IgnoredAny>(&glee, family)
        .unwrap_or_else(|e| panic!("the real GLEE sample must be at {}: {e}", glee.display()));
    let mut files = Vec::new();
    for game in scan.games.iter().take(games) {
        for path in [&game.config_path, &game.log_path] {
            let name = path.file_name().expect("a file name");
            files.push(DataFile {
                path: Path::new("human_vs_llm").join(&game.label).join(name),
                bytes: std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            });
        }
    }
    assert_eq!(files.len(), 2 * games, "fewer than {games} {family} games");
    files
}
