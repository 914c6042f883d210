//! descry-cli-support: the `main` that every descry binary (`descry`, `descry-import`,
//! `descry-bench`) shares, so that they end and report errors the same way.
#![deny(missing_docs)]

use std::process::ExitCode;

/// Runs a binary's work: restores the default action of `SIGPIPE` first, then runs `work`
/// (which parses the command line), and prints an error with its causes on one line.
pub fn run_main(work: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    // Rust ignores SIGPIPE, so printing to a closed pipe (`descry plugins | head`) is an
    // error and `println!` panics on it. Every command prints with `println!`, so the one
    // fix for all of them is the Unix default: a write to a closed pipe ends the process
    // quietly, as it ends `cat`. Sockets are unaffected (std sends with MSG_NOSIGNAL).
    // SAFETY: called first in main, before any thread exists; SIG_DFL is a valid handler.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match work() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause only if the text so far does not
/// already say it: an error type that prints its source in its own message (`{source}`
/// and `#[source]`) would otherwise be printed twice.
pub fn describe(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_text_is_not_repeated() {
        let inner = anyhow::anyhow!("file x.toml: no such file");
        let outer = inner.context("study file x.toml: file x.toml: no such file");
        assert_eq!(describe(&outer), "study file x.toml: file x.toml: no such file");
        let outer = anyhow::anyhow!("disk full").context("writing run.json");
        assert_eq!(describe(&outer), "writing run.json: disk full");
    }
}
