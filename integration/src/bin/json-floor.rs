//! The floor under `tracer report` on this machine: reads a JSON file from the page cache
//! and parses it with a SIMD JSON parser (simd-json, into its tape: every value found and
//! checked, nothing built), timing each. Used by `cargo xtask bench`; prints
//! `read_s parse_s nodes`.

use std::{process::ExitCode, time::Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path] = &args[..] else {
        eprintln!("usage: json-floor FILE");
        return ExitCode::from(2);
    };
    let t = Instant::now();
    let mut bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("json-floor: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let read = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let nodes = match simd_json::to_tape(&mut bytes) {
        Ok(tape) => tape.0.len(),
        Err(e) => {
            eprintln!("json-floor: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let parse = t.elapsed().as_secs_f64();
    println!("{read:.3} {parse:.3} {nodes}");
    ExitCode::SUCCESS
}
