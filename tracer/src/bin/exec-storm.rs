//! Load generator: fork+exec a program N times, one after another, as fast as possible.
//! Used by the exec-storm tests and benchmarks; prints the count and rate when done.

use std::{
    process::{Command, ExitCode, Stdio},
    time::Instant,
};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(n), program) = (args.next().and_then(|n| n.parse::<u64>().ok()), args.next()) else {
        eprintln!("usage: exec-storm N [PROGRAM (default /bin/true)]");
        return ExitCode::from(2);
    };
    let program = program.unwrap_or_else(|| "/bin/true".into());
    let start = Instant::now();
    for i in 0..n {
        let status = Command::new(&program)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
        if let Err(e) = status {
            eprintln!("exec-storm: run {i} of {program}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "exec-storm: {n} execs of {program} in {secs:.3} s ({:.0}/s)",
        n as f64 / secs
    );
    ExitCode::SUCCESS
}
