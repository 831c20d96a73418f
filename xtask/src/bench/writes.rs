//! A write storm: `dd if=/dev/zero of=/dev/null bs=1` (one read and one write per byte),
//! untraced, under `tracer watch` and under execsnoop, interleaved: what the tracer costs the
//! hottest syscalls. No program runs on write (ID maps are seen at their open and close);
//! every syscall pays the kernel's syscall-tracepoint path once any syscall tracepoint is on,
//! which execsnoop's one pair of them shows.

use std::{
    fmt::Write as _,
    process::{Command, Stdio},
    sync::{atomic::AtomicU32, Arc},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

use super::{
    process::{never, Peer, Rules},
    ready::settle,
    release, stats,
    storm::{execsnoop, tracer_rules},
    verdict_ratio, Sizes, Verdict,
};

/// One dd: its wall time in seconds.
fn dd(bytes: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let status = Command::new("dd")
        .args(["if=/dev/zero", "of=/dev/null", "bs=1"])
        .arg(format!("count={bytes}"))
        .stderr(Stdio::null())
        .status()
        .context("running dd")?;
    if !status.success() {
        bail!("dd failed");
    }
    Ok(started.elapsed().as_secs_f64())
}

pub(super) fn writes(
    sizes: &Sizes,
    md: &mut String,
    verdicts: &mut Vec<Verdict>,
) -> anyhow::Result<()> {
    let (bytes, rounds) = sizes.writes;
    let (mut bare, mut traced, mut snooped) = (Vec::new(), Vec::new(), Vec::new());
    let storm = Arc::new(AtomicU32::new(0));
    let snoop_rules = Rules {
        ready: |l| l.starts_with("PCOMM"),
        captured: never,
        lost: |_| None,
    };
    for round in 0..rounds {
        eprintln!("bench: write storm, round {}/{rounds}", round + 1);
        bare.push(dd(bytes)?);
        let peer = Peer::spawn(
            Command::new(release("tracer")).args(["watch", "--quiet"]),
            tracer_rules(),
            &storm,
        )?;
        peer.wait_ready(Duration::from_secs(60))?;
        traced.push(dd(bytes)?);
        peer.stop()?;
        // Each dd once the previous tool has let go of its tracepoints: until then every
        // syscall still takes the tracing path.
        settle();
        let peer = Peer::spawn(&mut execsnoop(), snoop_rules, &storm)?;
        peer.wait_ready(Duration::from_secs(60))?;
        snooped.push(dd(bytes)?);
        peer.stop()?;
        settle();
    }
    let (b, b_min, b_max) = stats(&mut bare);
    let (t, t_min, t_max) = stats(&mut traced);
    let (e, e_min, e_max) = stats(&mut snooped);
    let (slowdown, floor) = (t / b, e / b);
    let per_write = |x: f64| (x - b) * 1e9 / bytes as f64;
    let _ = writeln!(
        md,
        "## 8. A write storm\n\n`dd if=/dev/zero of=/dev/null bs=1 count={bytes}` ({bytes} reads \
         and as many writes), untraced, under `tracer watch --quiet` (every kind on) and under \
         execsnoop (one pair of syscall tracepoints: enough to put every syscall of the host \
         on the kernel's tracing path), {rounds} interleaved rounds, wall time.\n\n\
         | | median | min | max | slowdown | per write |\n|---|---|---|---|---|---|\n\
         | untraced | {b:.3} s | {b_min:.3} s | {b_max:.3} s | | |\n\
         | `tracer watch` | {t:.3} s | {t_min:.3} s | {t_max:.3} s | {slowdown:.3}× | {:.0} ns |\n\
         | execsnoop | {e:.3} s | {e_min:.3} s | {e_max:.3} s | {floor:.3}× | {:.0} ns |\n",
        per_write(t),
        per_write(e),
    );
    // The same kernel path for both. The margin is the spread of this ratio between runs
    // of one build here (0.99 to 1.04), where the slowdowns themselves went from 0.96 to 1.37:
    // the syscall-tracepoint path's cost on this machine varies more than anything the
    // tracer adds to it.
    let vs = slowdown / floor;
    verdict_ratio(
        verdicts,
        (
            "write storm (dd bs=1) slowdown ≤ execsnoop's (+5 %)",
            format!("{slowdown:.3}× vs {floor:.3}×"),
            vs <= 1.05,
        ),
        "writes.vs_execsnoop",
        vs,
    );
    Ok(())
}
