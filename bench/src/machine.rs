//! What the benchmark reads about the machine and its own process: `/proc` on Linux,
//! `getrusage`. Every reader gives `None` (or a placeholder) where its source is missing.

use serde::{Deserialize, Serialize};

/// A field of `/proc/self/status` (`VmHWM`, `VmRSS`) in MB; none where it cannot be read.
pub fn read_status_mb(field: &str) -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kb(&text, field).map(|kb| kb as f64 / 1024.0)
}

/// A `NAME:   123 kB` field of a `/proc/*/status` text, in kB.
pub fn parse_status_kb(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// CPU seconds (user + system, all threads) this process has used; none where
/// `getrusage` fails.
pub fn cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the pointer it is given, which points
    // at one; it is read only when the call reports success.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } == 0;
    if !ok {
        return None;
    }
    // SAFETY: initialised by the successful call above (and zeroed before it).
    let usage = unsafe { usage.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

/// Resets this process's peak resident memory (`VmHWM`) to its current resident memory
/// (Linux: `5` to `/proc/self/clear_refs`). Returns whether it did.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The machine, as far as the benchmark reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineInfo {
    /// CPU model name (`/proc/cpuinfo`).
    pub cpu_model: String,
    /// Logical cores this process may use.
    pub cores: usize,
    /// Whether the CPU has AVX2, AVX-512F, FMA (the matrix kernels' instruction sets).
    pub cpu_flags: Vec<String>,
    /// `/proc/loadavg` when read (other work on the machine shows here).
    pub load_average: Option<String>,
    /// Kernel (`/proc/sys/kernel/osrelease`).
    pub kernel: Option<String>,
}

/// Reads the machine's description.
pub fn machine_info() -> MachineInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let (cpu_model, cpu_flags) = parse_cpuinfo(&cpuinfo);
    MachineInfo {
        cpu_model,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_flags,
        load_average: load_average(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_string()),
    }
}

/// The first CPU's model name (`unknown` when absent) and which of the matrix kernels'
/// instruction sets its flags list, from a `/proc/cpuinfo` text.
pub fn parse_cpuinfo(cpuinfo: &str) -> (String, Vec<String>) {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let flags = field("flags").unwrap_or_default();
    let cpu_flags = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"]
        .iter()
        .filter(|f| flags.split_whitespace().any(|x| x == **f))
        .map(|f| f.to_string())
        .collect();
    (field("model name").unwrap_or_else(|| "unknown".into()), cpu_flags)
}

/// `/proc/loadavg`, trimmed.
pub fn load_average() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg").ok().map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_kb() {
        let text = "Name:\tx\nVmHWM:\t  123456 kB\nVmRSS:\t  2048 kB\n";
        assert_eq!(parse_status_kb(text, "VmHWM"), Some(123456));
        assert_eq!(parse_status_kb(text, "VmRSS"), Some(2048));
        assert_eq!(parse_status_kb(text, "VmSwap"), None);
        // A field whose name starts another's is not taken for it.
        assert_eq!(parse_status_kb("VmHWMx:\t1 kB\n", "VmHWM"), None);
    }

    #[test]
    fn cpuinfo_gives_the_model_and_the_kernels_flags() {
        let text =
            "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 fma sse avx512fx\n";
        let (model, flags) = parse_cpuinfo(text);
        assert_eq!(model, "AMD EPYC 7B13");
        assert_eq!(flags, vec!["avx2", "fma"]);
        assert_eq!(parse_cpuinfo("").0, "unknown");
    }

    #[test]
    fn cpu_seconds_grow_while_the_process_computes() {
        let start = cpu_seconds().expect("getrusage");
        let begun = std::time::Instant::now();
        let mut x = 1u64;
        while begun.elapsed().as_millis() < 100 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let end = cpu_seconds().expect("getrusage");
        assert!(end - start > 0.01, "{start} -> {end} after 100 ms of arithmetic");
    }
}
