//! A watch that runs for a long time (root: real BPF programs, real exec storms): memory stays
//! flat with `--json`, and a watch killed by SIGKILL leaves a document that reads back up to
//! the moment it died.

use std::{
    collections::BTreeSet,
    fs,
    path::Path,
    process::{Command, Stdio},
    sync::{Mutex, MutexGuard},
    thread,
    time::{Duration, Instant},
};

use tracer::event::Event;
use tracer_integration::{Watch, TRACER};

const STORM: &str = env!("CARGO_BIN_EXE_exec-storm");

/// The two storms never overlap: a watch also records every other exec on the host, and the
/// memory test measures what its own storm costs, not a second storm's queue at its peak.
static ONE_STORM: Mutex<()> = Mutex::new(());

fn one_storm() -> MutexGuard<'static, ()> {
    ONE_STORM
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn storm(n: u32) {
    let status = Command::new(STORM)
        .arg(n.to_string())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Resident memory of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Waits until the tracer has written everything it was given: its file stops growing.
fn settled(file: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = u64::MAX;
    while Instant::now() < deadline {
        let len = fs::metadata(file).map_or(0, |m| m.len());
        if len == last {
            return;
        }
        last = len;
        thread::sleep(Duration::from_millis(700));
    }
    panic!("{} kept growing", file.display());
}

#[test]
fn root_watch_json_memory_is_flat_over_50000_execs() {
    let _storm = one_storm();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("trace.json");
    let watch = Watch::start(&["--json", json.to_str().unwrap()]);
    storm(10_000);
    settled(&json);
    let after_10k = rss(watch.pid());
    storm(40_000);
    settled(&json);
    let after_50k = rss(watch.pid());
    let out = watch.stop();
    assert!(out.success, "{}", out.stderr);
    let execs = out
        .events
        .iter()
        .filter(|e| e.detail.kind_name() == "exec")
        .count();
    assert!(execs >= 50_000, "{execs} execs seen");
    eprintln!("RSS after 10k execs {after_10k} B, after 50k {after_50k} B");
    assert!(
        after_50k.saturating_sub(after_10k) < 10 << 20,
        "RSS grew by {} B between 10,000 and 50,000 execs",
        after_50k - after_10k
    );
}

fn boot_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).unwrap();
    u64::try_from(t.tv_sec()).unwrap() * 1_000_000_000 + u64::try_from(t.tv_nsec()).unwrap()
}

/// What identifies an event across the two outputs.
fn key(e: &Event) -> (u64, u32, u32, &'static str) {
    (e.ts_ns, e.pid, e.tgid, e.detail.kind_name())
}

#[test]
fn root_sigkill_mid_storm_leaves_a_readable_document() {
    let _storm = one_storm();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("trace.json");
    let watch = Watch::start(&["--json", json.to_str().unwrap()]);
    let names: Vec<String> = (1..=3)
        .map(|n| format!("tr-kill-{}-{n}", std::process::id()))
        .collect();
    for name in &names {
        let status = Command::new(&*TRACER)
            .args(["run", "-q", "--name", name, "--", "sh", "-c", "exit 0"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let mut load = Command::new(STORM)
        .arg("100000")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(2500));
    let killed_at = boot_ns();
    let text = watch.kill();
    load.kill().unwrap();
    load.wait().unwrap();

    // Ground truth: what the JSON Lines hold up to a second before the kill (a last line
    // cut by the kill is not an event).
    let truth: Vec<Event> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(truth.len() > 1000, "{} events before the kill", truth.len());

    let out = dir.path().join("report.json");
    let report = Command::new(&*TRACER)
        .args(["report", "--format", "json", "-o"])
        .arg(&out)
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&report.stderr);
    assert!(report.status.success(), "{stderr}");
    let cut: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ends abruptly"))
        .collect();
    assert_eq!(cut.len(), 1, "one warning saying where it ends: {stderr}");
    let doc: tracer::document::Document =
        serde_json::from_str(&fs::read_to_string(&out).unwrap()).unwrap();
    let read: BTreeSet<_> = doc.events.iter().map(key).collect();
    let before = killed_at - 1_000_000_000;
    let missing: Vec<_> = truth
        .iter()
        .filter(|e| e.ts_ns <= before)
        .map(key)
        .filter(|k| !read.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "{} events of the JSON Lines are not in the cut document (first {:?})",
        missing.len(),
        missing.first()
    );
    for name in &names {
        assert!(
            doc.containers
                .iter()
                .any(|c| c.name.as_deref() == Some(name.as_str()) && c.exit_code == Some(0)),
            "{name} started before the kill is in the cut document"
        );
    }
}
