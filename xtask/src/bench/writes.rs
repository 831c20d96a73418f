//! A write storm: `dd if=/dev/zero of=/dev/null bs=1` (one read and one write per byte),
//! untraced and under `tracer watch`, interleaved: what the tracer costs the hottest
//! syscalls. No program runs on write (ID maps are seen at their open and close); every
//! syscall pays the kernel's syscall-tracepoint path once any syscall tracepoint is on.

use std::{
    fmt::Write as _,
    process::{Command, Stdio},
    sync::{atomic::AtomicU32, Arc},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

use super::{process::Peer, release, stats, storm::tracer_rules, verdict_ratio, Sizes, Verdict};

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
    let (mut bare, mut traced) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        eprintln!("bench: write storm, round {}/{rounds}", round + 1);
        bare.push(dd(bytes)?);
        let peer = Peer::spawn(
            Command::new(release("tracer")).args(["watch", "--quiet"]),
            tracer_rules(),
            &Arc::new(AtomicU32::new(0)),
        )?;
        peer.wait_ready(Duration::from_secs(60))?;
        traced.push(dd(bytes)?);
        peer.stop()?;
    }
    let (b, b_min, b_max) = stats(&mut bare);
    let (t, t_min, t_max) = stats(&mut traced);
    let slowdown = t / b;
    let _ = writeln!(
        md,
        "## 8. A write storm\n\n`dd if=/dev/zero of=/dev/null bs=1 count={bytes}` ({} reads \
         and as many writes), untraced and under `tracer watch --quiet` (every kind on), \
         {rounds} interleaved rounds, wall time.\n\n\
         | | median | min | max |\n|---|---|---|---|\n\
         | untraced | {b:.3} s | {b_min:.3} s | {b_max:.3} s |\n\
         | `tracer watch` | {t:.3} s | {t_min:.3} s | {t_max:.3} s |\n\n\
         Slowdown: {slowdown:.3}×, {:.0} ns per write.\n",
        bytes,
        (t - b) * 1e9 / bytes as f64
    );
    verdict_ratio(
        verdicts,
        (
            "write storm (dd bs=1) slowdown ≤ 1.05×",
            format!("{slowdown:.3}×"),
            slowdown <= 1.05,
        ),
        "writes.slowdown",
        slowdown,
    );
    Ok(())
}
