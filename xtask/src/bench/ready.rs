//! Time to ready: from process start to every program attached.

use std::{
    fmt::Write as _,
    process::Command,
    sync::{atomic::AtomicU32, Arc},
    time::Duration,
};

use super::{
    process::*,
    release, stats,
    storm::{execsnoop, tracer_rules},
    verdict_ratio, Sizes, Verdict,
};

/// The syscalls whose enter and exit tracepoints the tracer attaches on this kernel.
pub(super) const TRACER_SYSCALLS: [&str; 17] = [
    "execve",
    "execveat",
    "mount",
    "umount",
    "pivot_root",
    "fsopen",
    "fsconfig",
    "fsmount",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "unshare",
    "setns",
    "capset",
    "prctl",
    "seccomp",
    "openat",
];

/// bpftrace attached to the same hooks as the tracer on this kernel (every kind of this
/// wave: 43 tracepoints), each doing a little.
pub(super) fn same_probes_bt() -> String {
    let list = |dir: &str| {
        TRACER_SYSCALLS
            .iter()
            .map(|s| format!("tracepoint:syscalls:sys_{dir}_{s}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{} {{ @start[tid] = nsecs; }}\n{} {{ delete(@start[tid]); }}\n\
         tracepoint:sched:sched_process_fork {{ @fork = count(); }}\n\
         tracepoint:sched:sched_process_exit {{ @exit = count(); }}\n\
         tracepoint:task:task_rename {{ @rename = count(); }}\n\
         tracepoint:syscalls:sys_enter_close {{ @close = count(); }}\n\
         tracepoint:cgroup:cgroup_mkdir, tracepoint:cgroup:cgroup_rmdir, \
         tracepoint:cgroup:cgroup_attach_task {{ @cgroup = count(); }}\n\
         tracepoint:oom:mark_victim {{ @oom = count(); }}\n\
         tracepoint:signal:signal_generate {{ @signal = count(); }}\n\
         BEGIN {{ printf(\"ready\\n\"); }}\n",
        list("enter"),
        list("exit")
    )
}

/// Detaching its tracepoints takes the kernel a second or two, under the lock attaching
/// needs: the tracer leaves it to a helper after it exits, bpftrace does it before. Each
/// tool starts once the previous one's detach is surely over.
pub(super) fn settle() {
    // A tracer hands its attachments to a helper that lets go of them after it exits, and
    // each detach holds the kernel's tracepoint lock for a grace period: a tool started
    // before the last one is gone would wait on that lock. So: until no tracer or bpftrace
    // process is left (at most 15 s), then a little more.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline && tool_running() {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
}

fn tool_running() -> bool {
    std::fs::read_dir("/proc").is_ok_and(|dir| {
        dir.filter_map(Result::ok).any(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .is_ok_and(|c| matches!(c.trim_end(), "tracer" | "bpftrace" | "execsnoop"))
        })
    })
}

pub(super) fn ready(
    sizes: &Sizes,
    md: &mut String,
    verdicts: &mut Vec<Verdict>,
) -> anyhow::Result<f64> {
    let script = same_probes_bt();
    let storm = Arc::new(AtomicU32::new(0));
    let (mut tracer, mut bpftrace, mut snoop) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..sizes.ready_runs {
        eprintln!("bench: time to ready, round {}", i + 1);
        let t = Peer::spawn(
            Command::new(release("tracer")).args(["watch", "--quiet"]),
            tracer_rules(),
            &storm,
        )?;
        tracer.push(t.wait_ready(Duration::from_secs(30))?.as_secs_f64());
        t.stop()?;
        settle();
        let b = Peer::spawn(
            Command::new("bpftrace").args(["-e", &script]),
            Rules {
                ready: |l| l == "ready",
                captured: never,
                lost: |_| None,
            },
            &storm,
        )?;
        // Every tracepoint of the script, and BEGIN.
        let probes = script.matches("tracepoint:").count() + 1;
        bpftrace.push(
            b.wait_perf_events(probes, Duration::from_secs(60))?
                .as_secs_f64(),
        );
        b.stop()?;
        settle();
        let e = Peer::spawn(
            &mut execsnoop(),
            Rules {
                ready: |l| l.starts_with("PCOMM"),
                captured: never,
                lost: |_| None,
            },
            &storm,
        )?;
        snoop.push(e.wait_ready(Duration::from_secs(30))?.as_secs_f64());
        e.stop()?;
        settle();
    }
    let _ = writeln!(
        md,
        "## 3. Time to ready\n\nFrom process start to every program attached: the tracer's \
         `ready` line (every kind of this wave: 26 event kinds, 43 tracepoints here), \
         bpftrace with the same 43 tracepoints (attached when it holds their perf events and \
         BEGIN's), and execsnoop (2 programs, its header line) for scale; {} runs each, \
         interleaved, each once the previous tool has let go of its tracepoints.\n\n| tool | median s | min s | max s |\n|---|---|---|---|",
        sizes.ready_runs
    );
    let mut medians = Vec::new();
    for (name, v) in [
        ("tracer watch", &mut tracer),
        ("bpftrace, same probes", &mut bpftrace),
        ("execsnoop", &mut snoop),
    ] {
        let (m, lo, hi) = stats(v);
        medians.push(m);
        let _ = writeln!(md, "| {name} | {m:.3} | {lo:.3} | {hi:.3} |");
    }
    md.push('\n');
    verdict_ratio(
        verdicts,
        (
            "ready ≤ bpftrace's median (same probes)",
            format!(
                "{:.3} s median (bpftrace, same probes: {:.3} s; execsnoop: {:.3} s)",
                medians[0], medians[1], medians[2]
            ),
            medians[0] <= medians[1],
        ),
        "ready.vs_bpftrace",
        medians[0] / medians[1],
    );
    Ok(medians[0])
}
