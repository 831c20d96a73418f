//! Load generator: fork+exec a program N times as fast as possible, one after another in
//! each of J threads (default 1). Used by the exec-storm tests and `cargo xtask bench`;
//! prints the count and rate when done.

use std::{
    process::{Command, ExitCode, Stdio},
    time::Instant,
};

const USAGE: &str = "usage: exec-storm [-j JOBS] N [PROGRAM (default /bin/true)]";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut jobs = 1u64;
    if args.first().map(String::as_str) == Some("-j") {
        match args.get(1).and_then(|j| j.parse().ok()).filter(|&j| j > 0) {
            Some(j) => jobs = j,
            None => {
                eprintln!("{USAGE}\nexec-storm: -j needs a positive number");
                return ExitCode::from(2);
            }
        }
        args.drain(..2);
    }
    let (Some(n), program) = (
        args.first().and_then(|n| n.parse::<u64>().ok()),
        args.get(1).cloned(),
    ) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let program = program.unwrap_or_else(|| "/bin/true".into());
    let start = Instant::now();
    let failed = std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs)
            .map(|j| {
                // The first N % J threads take one more.
                let share = n / jobs + u64::from(j < n % jobs);
                let program = &program;
                s.spawn(move || {
                    for i in 0..share {
                        let status = Command::new(program)
                            .stdin(Stdio::null())
                            .stdout(Stdio::null())
                            .status();
                        if let Err(e) = status {
                            eprintln!("exec-storm: run {i} of {program} (thread {j}): {e}");
                            return true;
                        }
                    }
                    false
                })
            })
            .collect();
        workers.into_iter().any(|w| w.join().unwrap_or(true))
    });
    if failed {
        return ExitCode::FAILURE;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "exec-storm: {n} execs of {program} in {secs:.3} s ({:.0}/s, {jobs} thread{})",
        n as f64 / secs,
        if jobs == 1 { "" } else { "s" }
    );
    ExitCode::SUCCESS
}
