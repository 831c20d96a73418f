//! A watch that runs long: the peak RSS of `watch --json` (the document streamed as it goes)
//! over about 100k and 1M events, beside `watch --jsonl` over the same storm in the same run.
//! Flat memory means the two stay close however many events go by.

use std::{
    fmt::Write as _,
    fs,
    path::Path,
    process::{Command, Stdio},
    sync::{atomic::AtomicU32, Arc},
    time::Duration,
};

use anyhow::{bail, Context as _};

use super::{
    process::{wait_usage, Peer},
    release,
    storm::{tracer_rules, tracer_totals},
    verdict, Sizes, Verdict, WORK,
};

/// Events an exec of the storm makes: its fork, its exec, its exit.
const EVENTS_PER_EXEC: u64 = 3;

struct Soak {
    events: u64,
    lost: u64,
    peak_mb: f64,
    cpu: f64,
}

fn soak_run(flag: &str, execs: u64) -> anyhow::Result<Soak> {
    eprintln!("bench: soak of {execs} execs under tracer watch {flag}");
    let file = Path::new(WORK).join(format!("soak.{}", flag.trim_start_matches('-')));
    let _ = fs::remove_file(&file);
    let storm_pid = Arc::new(AtomicU32::new(0));
    let peer = Peer::spawn(
        Command::new(release("tracer"))
            .args(["watch", "--quiet", flag])
            .arg(&file),
        tracer_rules(),
        &storm_pid,
    )?;
    peer.wait_ready(Duration::from_secs(60))?;
    let storm = Command::new(release("exec-storm"))
        .args(["-j", "2", &execs.to_string(), "/bin/true"])
        .stdout(Stdio::null())
        .spawn()
        .context("starting exec-storm")?;
    if wait_usage(&storm)?.code != 0 {
        bail!("exec-storm failed");
    }
    let size = || fs::metadata(&file).map_or(0, |m| m.len());
    peer.drain(size, Duration::from_secs(300));
    let (usage, scan) = peer.stop()?;
    let (events, lost) = tracer_totals(&scan);
    let _ = fs::remove_file(&file);
    Ok(Soak {
        events,
        lost,
        peak_mb: usage.max_rss_kb as f64 / 1024.0,
        cpu: usage.cpu,
    })
}

pub(super) fn soak(
    sizes: &Sizes,
    md: &mut String,
    verdicts: &mut Vec<Verdict>,
) -> anyhow::Result<()> {
    let _ = writeln!(
        md,
        "## 7. A long watch: peak memory\n\n`tracer watch --quiet --json FILE` (the document \
         streamed as it goes) and `--jsonl FILE` over the same parallel exec storm (2 threads), \
         peak RSS from the kernel's accounting (`wait4`). The document's writer keeps nothing \
         per event, so the two should stay close at any length.\n\n\
         | events | `--jsonl` peak RSS | `--json` peak RSS | ratio | tracer CPU (json) | lost |\n\
         |---|---|---|---|---|---|"
    );
    let mut rows = Vec::new();
    for &events in sizes.soak {
        let execs = events / EVENTS_PER_EXEC;
        let lines = soak_run("--jsonl", execs)?;
        let doc = soak_run("--json", execs)?;
        let _ = writeln!(
            md,
            "| {} | {:.1} MB | {:.1} MB | {:.2} | {:.2} s | {} |",
            doc.events,
            lines.peak_mb,
            doc.peak_mb,
            doc.peak_mb / lines.peak_mb,
            doc.cpu,
            doc.lost + lines.lost
        );
        rows.push((lines, doc));
    }
    md.push('\n');
    if let (Some((small_lines, small)), Some((big_lines, big))) = (rows.first(), rows.last()) {
        let ratio = big.peak_mb / big_lines.peak_mb;
        verdict(
            verdicts,
            "`watch --json` peak RSS within 1.25x of `--jsonl` at the longest soak",
            format!("{ratio:.2}x at {} events", big.events),
            ratio <= 1.25,
        );
        let growth = big.peak_mb - small.peak_mb;
        let lines_growth = big_lines.peak_mb - small_lines.peak_mb;
        verdict(
            verdicts,
            "`watch --json` peak RSS grows less than 10 MB from the shortest soak to the longest",
            format!(
                "{growth:+.1} MB from {} to {} events (`--jsonl`: {lines_growth:+.1} MB)",
                small.events, big.events
            ),
            growth < 10.0,
        );
    }
    Ok(())
}
