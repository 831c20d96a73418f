//! `cargo xtask bench`: the tracer measured beside the tools a user would otherwise reach
//! for (bpftrace, libbpf-tools' execsnoop, runc, crun), all in one run so the ratios hold on
//! a noisy machine. Writes the results, with the targets met or missed, to BENCHMARKS.md.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::Command,
    thread,
};

use anyhow::{bail, Context as _};

use crate::{cargo, require_root, root, run, setup};

mod check;
mod concurrency;
mod process;
mod ready;
mod report;
mod report_input;
mod soak;
mod start;
mod storm;
mod writes;

const WORK: &str = "/tmp/tracer-bench";
/// Everything after this line of BENCHMARKS.md is kept when the results are rewritten.
const NOTES_MARK: &str = "<!-- notes: kept when the results above are regenerated -->";

struct Sizes {
    /// The sequential storm (one fork+exec after another).
    storm: u64,
    /// The longer, parallel storm (both CPUs busy, or all of them).
    storm_long: u64,
    /// Interleaved rounds that share each storm's execs.
    storm_rounds: usize,
    small_ring: u64,
    ready_runs: usize,
    container_runs: usize,
    report_events: u64,
    report_runs: usize,
    /// Containers started at once, per round.
    concurrency: &'static [usize],
    /// Events of each long watch.
    soak: &'static [u64],
    /// Bytes of each write storm (one write each), and its rounds.
    writes: (u64, usize),
}

const FULL: Sizes = Sizes {
    storm: 100_000,
    storm_long: 250_000,
    storm_rounds: 5,
    small_ring: 20_000,
    ready_runs: 7,
    container_runs: 60,
    report_events: 1_000_000,
    report_runs: 5,
    concurrency: &[1, 4, 8, 16],
    soak: &[100_000, 1_000_000],
    writes: (2 << 20, 5),
};

const QUICK: Sizes = Sizes {
    storm: 9_000,
    storm_long: 24_000,
    storm_rounds: 3,
    small_ring: 4_000,
    ready_runs: 5,
    container_runs: 15,
    report_events: 50_000,
    report_runs: 2,
    concurrency: &[1, 4],
    soak: &[20_000, 100_000],
    writes: (200_000, 3),
};

pub(crate) const USAGE: &str =
    "  bench   [--quick] [--check] [--only storm,ring,ready,start,report,concurrency,soak,writes] [--out FILE]
          measure the tracer beside bpftrace, execsnoop, runc and crun (root; about 20
          minutes): exec storms, ring buffer limits, time to ready, container start, report
          speed, containers started at once (facts right, CPU), peak memory of a long
          watch (--json against --jsonl), a write storm (dd bs=1); writes BENCHMARKS.md
          (--quick: small sizes, to /tmp/tracer-bench); each run keeps its ratios in
          BENCHMARKS.json; --check compares them with the committed ones instead and fails
          naming each that got worse by more than this machine's noise";

const SECTIONS: [&str; 8] = [
    "storm",
    "ring",
    "ready",
    "start",
    "report",
    "concurrency",
    "soak",
    "writes",
];

pub(crate) fn bench(args: &[String]) -> anyhow::Result<()> {
    let mut quick = false;
    let mut check = false;
    let mut only: Vec<String> = SECTIONS
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    let mut out = None;
    let mut args = args.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--check" => check = true,
            "--only" => {
                let list = args.next().context("--only needs a list of sections")?;
                only = list.split(',').map(str::to_string).collect();
                if let Some(bad) = only.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
                    bail!("unknown section {bad:?} (sections: {})", SECTIONS.join(","));
                }
            }
            "--out" => out = Some(PathBuf::from(args.next().context("--out needs a file")?)),
            other => bail!("unknown bench argument {other:?}\n{USAGE}"),
        }
    }
    require_root("cargo xtask bench")?;
    setup::tasks(&[crate::tools::Task::Build, crate::tools::Task::Bench])?;
    run(cargo().args(["build", "--release", "--package", "tracer"]))?;
    run(cargo().args(["build", "--release", "--package", "tracer-integration"]))?;
    fs::create_dir_all(WORK)?;
    let sizes = if quick { &QUICK } else { &FULL };
    let out = out.unwrap_or_else(|| {
        if quick {
            Path::new(WORK).join("BENCHMARKS.md")
        } else {
            root().join("BENCHMARKS.md")
        }
    });

    let mut md = header(quick, &only)?;
    let mut verdicts = Vec::new();
    let want = |s: &str| only.iter().any(|o| o == s);
    if want("storm") || want("ring") {
        let storms = storm::storms(sizes, &mut md, &mut verdicts)?;
        if want("ring") {
            storm::ring(sizes, &storms, &mut md, &mut verdicts)?;
        }
    }
    let mut ready = None;
    if want("ready") {
        ready = Some(ready::ready(sizes, &mut md, &mut verdicts)?);
    }
    if want("start") {
        start::container_start(sizes, ready, &mut md, &mut verdicts)?;
    }
    if want("report") {
        report::report(sizes, &mut md, &mut verdicts)?;
    }
    if want("concurrency") {
        concurrency::concurrency(sizes, &mut md, &mut verdicts)?;
    }
    if want("soak") {
        soak::soak(sizes, &mut md, &mut verdicts)?;
    }
    if want("writes") {
        writes::writes(sizes, &mut md, &mut verdicts)?;
    }
    let mut targets = String::from("## Targets\n\n| target | measured | |\n|---|---|---|\n");
    for v in &verdicts {
        let _ = writeln!(
            targets,
            "| {} | {} | {} |",
            v.target,
            v.measured,
            if v.met { "met" } else { "**missed**" }
        );
    }
    // The verdicts go first: they are what a reader looks for.
    let (head, body) = md.split_once("\n\n## ").unwrap_or((&md, ""));
    let mut doc = format!("{head}\n\n{targets}\n## {body}");
    let kept = fs::read_to_string(&out)
        .ok()
        .and_then(|old| old.find(NOTES_MARK).map(|i| old[i..].to_string()))
        .unwrap_or_else(|| format!("{NOTES_MARK}\n"));
    doc.push('\n');
    doc.push_str(&kept);
    fs::write(&out, doc).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("\nbench: results in {}", out.display());
    for v in &verdicts {
        eprintln!(
            "bench: {:<7} {} ({})",
            if v.met { "met" } else { "MISSED" },
            v.target,
            v.measured
        );
    }
    let ratios: check::Ratios = verdicts.iter().filter_map(|v| v.ratio.clone()).collect();
    let committed = root().join("BENCHMARKS.json");
    let mode = if quick { "quick" } else { "full" };
    if check {
        eprint!("{}", check::check(&committed, mode, &ratios)?);
        eprintln!("bench check: no ratio worse than committed beyond the noise");
    } else {
        check::record(&committed, mode, &ratios)?;
        eprintln!("bench: ratios kept in {}", committed.display());
    }
    Ok(())
}

struct Verdict {
    target: String,
    measured: String,
    met: bool,
    /// Its figure as a ratio (lower is better) under a stable key, for `--check`.
    ratio: Option<(String, f64)>,
}

fn verdict(out: &mut Vec<Verdict>, target: &str, measured: String, met: bool) {
    out.push(Verdict {
        target: target.into(),
        measured,
        met,
        ratio: None,
    });
}

/// A verdict whose figure is also kept as ratio `key`.
fn verdict_ratio(
    out: &mut Vec<Verdict>,
    (target, measured, met): (&str, String, bool),
    key: &str,
    ratio: f64,
) {
    verdict(out, target, measured, met);
    if ratio.is_finite() {
        out.last_mut().expect("just pushed").ratio = Some((key.to_string(), ratio));
    }
}

fn release(bin: &str) -> PathBuf {
    root().join("target/release").join(bin)
}

fn first_line(cmd: &mut Command) -> String {
    cmd.output().ok().map_or_else(
        || "?".into(),
        |o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines().next().unwrap_or("").trim().to_string()
        },
    )
}

fn header(quick: bool, only: &[String]) -> anyhow::Result<String> {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let cpus = thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut md = String::from("# Benchmarks\n\n");
    let _ = writeln!(
        md,
        "Produced by `sudo -E cargo xtask bench{}{}` (the numbers below are from one run; \
         every ratio compares tools measured in that same run).\n",
        if quick { " --quick" } else { "" },
        if only.len() < SECTIONS.len() {
            format!(" --only {}", only.join(","))
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        md,
        "- machine: {cpus} CPUs ({cpu}), kernel {}\n- tracer: {}\n- peers: {}; execsnoop from \
         libbpf-tools {}; {}; {}\n",
        first_line(Command::new("uname").arg("-r")),
        first_line(Command::new(release("tracer")).arg("--version")),
        first_line(Command::new("bpftrace").arg("--version")),
        first_line(Command::new("dpkg-query").args(["-W", "-f", "${Version}", "libbpf-tools"])),
        first_line(Command::new("runc").arg("--version")),
        first_line(Command::new("crun").arg("--version")),
    );
    Ok(md)
}

pub(super) fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let median = if v.is_empty() {
        0.0
    } else if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    (
        median,
        v.first().copied().unwrap_or(0.0),
        v.last().copied().unwrap_or(0.0),
    )
}
