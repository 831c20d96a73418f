//! The `tracer` command line: a thin layer over the library.

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use tracer::watch::{self, JsonlTarget, WatchOptions};
use tracer_common::DEFAULT_RING_BYTES;

/// Watch what happens on this host when containers start, run and go away.
///
/// eBPF programs on the exec, mount and process tracepoints stream every event of a container
/// launch (runtime helpers, mounts, pivot_root, the user's command, exits) to this program.
/// Loading them needs root.
#[derive(Parser, Debug)]
#[command(name = "tracer", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show how each event kind is observed on this kernel.
    ///
    /// Loads the programs and attaches, for every event kind, the best hook that works here
    /// (the designed kprobes first, then fallbacks), and prints a table of every hook wanted,
    /// whether it is available and why not, and which one is used. Exits 0 when every kind
    /// has a hook, 1 otherwise.
    Check,
    /// Stream exec, mount-family, fork, exit and rename events live, host-wide.
    ///
    /// Each line: TIME COMMAND PID ACTION CONTENT. ACTION ends in `!` when the syscall failed,
    /// and the error is shown at the end of CONTENT. When it stops (Ctrl-C, SIGTERM or
    /// --duration), a summary goes to stderr: events per kind, lost per kind, malformed.
    Watch {
        /// Also write one JSON object per event to FILE (`-` for stdout, which then replaces
        /// the human-readable stream).
        #[arg(long, value_name = "FILE|-")]
        jsonl: Option<JsonlTarget>,
        /// Stop after this many seconds (fractions allowed).
        #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
        duration: Option<Duration>,
        /// Ring buffer size in bytes: a power of two, at least a page (suffixes K, M, G).
        #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value_t = u64::from(DEFAULT_RING_BYTES))]
        ring_size: u64,
        /// Print no human-readable stream (the summary is still printed).
        #[arg(long, short)]
        quiet: bool,
        /// List every hook attached, not only the ones that failed.
        #[arg(long, short)]
        verbose: bool,
    },
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is not a duration >= 0"))
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}` is not a size in bytes (e.g. 16M)"))
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    let result = rt.block_on(async {
        match cli.command {
            Command::Check => match watch::check() {
                Ok(missing) if missing.is_empty() => Ok(()),
                Ok(missing) => Err(anyhow::anyhow!(
                    "not observed on this kernel: {}",
                    missing.join(", ")
                )),
                Err(e) => Err(e),
            },
            Command::Watch {
                jsonl,
                duration,
                ring_size,
                quiet,
                verbose,
            } => watch::watch(WatchOptions {
                jsonl,
                duration,
                ring_bytes: ring_size,
                quiet,
                verbose,
            })
            .await
            .map(|_| ()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tracer: error: {}", tracer::loader::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert!(parse_size("x").is_err());
        assert!(parse_size("99999999999G").is_err());
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
