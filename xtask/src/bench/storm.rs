//! Exec storms under each tool, and the ring buffer limits.

use std::{
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

use super::{process::*, release, verdict, verdict_ratio, Sizes, Verdict, WORK};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Tool {
    None,
    Tracer,
    Bpftrace,
    Execsnoop,
}

impl Tool {
    pub(super) fn name(self) -> &'static str {
        match self {
            Tool::None => "no tracer",
            Tool::Tracer => "tracer watch --jsonl FILE",
            Tool::Bpftrace => "bpftrace (execve argv + mount)",
            Tool::Execsnoop => "execsnoop (libbpf-tools)",
        }
    }
}

/// The classic bpftrace one-liners: execve with its joined argv (as execsnoop.bt), and mount.
pub(super) const STORM_BT: &str = r#"
tracepoint:syscalls:sys_enter_execve { printf("%d %d ", pid, curtask->real_parent->tgid); join(args->argv); }
tracepoint:syscalls:sys_enter_mount { printf("mount %s %s\n", str(args->dev_name), str(args->dir_name)); }
BEGIN { printf("ready\n"); }
"#;

/// execsnoop printing each line as it comes, as on a terminal (and as bpftrace does): on a
/// pipe, stdio would hold its output back in 4 KiB blocks, even the header that says it is
/// attached.
pub(super) fn execsnoop() -> Command {
    let mut cmd = Command::new("stdbuf");
    cmd.args(["-oL", "execsnoop"]);
    cmd
}

pub(super) fn tracer_rules() -> Rules {
    Rules {
        ready: |l| l.starts_with("tracer: ready:"),
        // Counted from the JSON Lines file instead.
        captured: never,
        // The summary row `│ exec  EVENTS  LOST │`.
        lost: |l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["│", "exec", _, lost, "│"] => lost.parse().ok(),
                _ => None,
            }
        },
    }
}

pub(super) fn start_tool(
    tool: Tool,
    jsonl: &Path,
    ring: Option<u64>,
    storm: &Arc<AtomicU32>,
) -> anyhow::Result<Option<Peer>> {
    let peer = match tool {
        Tool::None => return Ok(None),
        Tool::Tracer => {
            let mut cmd = Command::new(release("tracer"));
            cmd.args(["watch", "--quiet", "--jsonl"]).arg(jsonl);
            if let Some(bytes) = ring {
                cmd.args(["--ring-size", &bytes.to_string()]);
            }
            Peer::spawn(&mut cmd, tracer_rules(), storm)?
        }
        Tool::Bpftrace => Peer::spawn(
            Command::new("bpftrace").args(["-e", STORM_BT]),
            Rules {
                ready: |l| l == "ready",
                captured: |l, storm| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() >= 3 && f[1].parse() == Ok(storm) && f[2] == "/bin/true"
                },
                lost: lost_events,
            },
            storm,
        )?,
        Tool::Execsnoop => Peer::spawn(
            &mut execsnoop(),
            Rules {
                ready: |l| l.starts_with("PCOMM"),
                // PCOMM PID PPID RET ARGS
                captured: |l, storm| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() >= 5 && f[2].parse() == Ok(storm) && f[3] == "0" && f[4] == "/bin/true"
                },
                lost: lost_events,
            },
            storm,
        )?,
    };
    if tool == Tool::Bpftrace {
        // Two tracepoints and BEGIN.
        peer.wait_perf_events(3, Duration::from_secs(60))?;
    } else {
        peer.wait_ready(Duration::from_secs(60))?;
    }
    Ok(Some(peer))
}

/// The storm's successful execs of /bin/true in the tracer's JSON Lines.
pub(super) fn jsonl_captured(path: &Path, storm: u32) -> anyhow::Result<u64> {
    let ppid = format!("\"ppid\":{storm},");
    let file = fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut n = 0;
    for line in BufReader::with_capacity(1 << 20, file).lines() {
        let line = line?;
        if line.contains("\"kind\":\"exec\"")
            && line.contains(&ppid)
            && line.contains("\"filename\":\"/bin/true\"")
            && line.contains("\"ret\":0")
        {
            n += 1;
        }
    }
    Ok(n)
}

/// `EVENTS events in SECS s, LOST lost, ...`: the tracer's totals.
pub(super) fn tracer_totals(scan: &Scan) -> (u64, u64) {
    let tail = scan.tail.lock().unwrap();
    tail.iter()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [events, "events", "in", _, "s,", lost, "lost,", ..] => {
                    Some((events.parse().ok()?, lost.parse().ok()?))
                }
                _ => None,
            }
        })
        .unwrap_or_default()
}

pub(super) struct StormRow {
    pub(super) tool: Tool,
    pub(super) n: u64,
    pub(super) jobs: usize,
    pub(super) captured: u64,
    pub(super) lost: u64,
    /// The tracer's events of every kind, and lost of every kind.
    pub(super) totals: Option<(u64, u64)>,
    pub(super) tool_cpu: f64,
    pub(super) tool_rss_mb: f64,
    /// The storm's wall time in each round, in round order.
    pub(super) walls: Vec<f64>,
}

impl StormRow {
    /// Wall time over all rounds.
    pub(super) fn wall(&self) -> f64 {
        self.walls.iter().sum()
    }
}

pub(super) fn storm_under(
    tool: Tool,
    n: u64,
    jobs: usize,
    ring: Option<u64>,
) -> anyhow::Result<StormRow> {
    eprintln!(
        "bench: storm of {n} execs ({jobs} thread{}) under {}",
        if jobs == 1 { "" } else { "s" },
        tool.name()
    );
    let storm_pid = Arc::new(AtomicU32::new(0));
    let jsonl = Path::new(WORK).join("storm.jsonl");
    let _ = fs::remove_file(&jsonl);
    let peer = start_tool(tool, &jsonl, ring, &storm_pid)?;
    // Let the tool settle after attaching.
    thread::sleep(Duration::from_millis(300));
    // What starting cost is left out of its CPU per exec: rounds are short enough for a
    // start to weigh.
    let cpu_at_start = peer.as_ref().map_or(0.0, |p| cpu_seconds(p.child.id()));
    let started = Instant::now();
    let storm = Command::new(release("exec-storm"))
        .args(["-j", &jobs.to_string(), &n.to_string(), "/bin/true"])
        .stdout(Stdio::null())
        .spawn()
        .context("starting exec-storm")?;
    storm_pid.store(storm.id(), Ordering::Relaxed);
    let su = wait_usage(&storm)?;
    let wall = started.elapsed().as_secs_f64();
    if su.code != 0 {
        bail!("exec-storm failed ({})", su.code);
    }
    let Some(peer) = peer else {
        return Ok(StormRow {
            tool,
            n,
            jobs,
            captured: 0,
            lost: 0,
            totals: None,
            tool_cpu: 0.0,
            tool_rss_mb: 0.0,
            walls: vec![wall],
        });
    };
    let size = || fs::metadata(&jsonl).map_or(0, |m| m.len());
    peer.drain(size, Duration::from_secs(120));
    let (usage, scan) = peer.stop()?;
    let captured = if tool == Tool::Tracer {
        jsonl_captured(&jsonl, storm.id())?
    } else {
        scan.captured.load(Ordering::Relaxed)
    };
    let _ = fs::remove_file(&jsonl);
    Ok(StormRow {
        tool,
        n,
        jobs,
        captured,
        lost: scan.lost.load(Ordering::Relaxed),
        totals: (tool == Tool::Tracer).then(|| tracer_totals(&scan)),
        tool_cpu: (usage.cpu - cpu_at_start).max(0.0),
        tool_rss_mb: usage.max_rss_kb as f64 / 1024.0,
        walls: vec![wall],
    })
}

pub(super) struct Storms {
    /// Each tool's storms summed over the rounds.
    pub(super) rows: Vec<StormRow>,
    pub(super) rounds: usize,
}

/// The tools of each round; round r starts at the r-th, so that no tool always runs right
/// after the untraced storm or at a round's end.
const ORDER: [Tool; 4] = [Tool::None, Tool::Tracer, Tool::Bpftrace, Tool::Execsnoop];

impl Storms {
    pub(super) fn of(&self, tool: Tool, jobs: usize) -> Option<&StormRow> {
        self.rows.iter().find(|r| r.tool == tool && r.jobs == jobs)
    }

    fn walls(&self, tool: Tool, jobs: usize) -> &[f64] {
        self.of(tool, jobs).map_or(&[], |r| &r.walls)
    }

    /// The tool's slowdown in each round: its storm over the same round's untraced one.
    /// The machine's speed drifts by several per cent over minutes (two untraced storms
    /// of one run 9 % apart), so a tool is compared only with its own round.
    fn ratios(&self, tool: Tool, jobs: usize) -> Vec<f64> {
        let base = self.walls(Tool::None, jobs);
        self.walls(tool, jobs)
            .iter()
            .zip(base)
            .map(|(w, b)| w / b)
            .collect()
    }

    /// The median round's slowdown, with the smallest and largest.
    pub(super) fn slowdown(&self, tool: Tool, jobs: usize) -> (f64, f64, f64) {
        let mut r = self.ratios(tool, jobs);
        r.sort_by(f64::total_cmp);
        if r.is_empty() {
            return (1.0, 1.0, 1.0);
        }
        (r[r.len() / 2], r[0], r[r.len() - 1])
    }
}

/// Adds one round's storm to the tool's sums.
fn add(sum: &mut StormRow, r: &StormRow) {
    sum.n += r.n;
    sum.captured += r.captured;
    sum.lost += r.lost;
    sum.totals = match (sum.totals, r.totals) {
        (Some(a), Some(b)) => Some((a.0 + b.0, a.1 + b.1)),
        (a, b) => a.or(b),
    };
    sum.tool_cpu += r.tool_cpu;
    sum.tool_rss_mb = sum.tool_rss_mb.max(r.tool_rss_mb);
    sum.walls.extend_from_slice(&r.walls);
}

pub(super) fn storms(
    sizes: &Sizes,
    md: &mut String,
    verdicts: &mut Vec<Verdict>,
) -> anyhow::Result<Storms> {
    let cpus = thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let rounds = sizes.storm_rounds;
    let mut storms = Storms {
        rows: Vec::new(),
        rounds,
    };
    for (n, jobs) in [(sizes.storm, 1), (sizes.storm_long, 2 * cpus)] {
        let per_round = n / rounds as u64;
        for round in 0..rounds {
            eprintln!("bench: storm round {} of {rounds}", round + 1);
            for i in 0..ORDER.len() {
                let tool = ORDER[(round + i) % ORDER.len()];
                let r = storm_under(tool, per_round, jobs, None)?;
                match storms
                    .rows
                    .iter_mut()
                    .find(|s| s.tool == tool && s.jobs == jobs)
                {
                    Some(sum) => add(sum, &r),
                    None => storms.rows.push(r),
                }
            }
        }
    }
    storms
        .rows
        .sort_by_key(|r| (r.jobs, ORDER.iter().position(|t| *t == r.tool)));
    storms_md(&storms, cpus, md);
    storm_verdicts(&storms, cpus, verdicts);
    Ok(storms)
}

fn storms_md(storms: &Storms, cpus: usize, md: &mut String) {
    let _ = writeln!(
        md,
        "## 1. Exec storm\n\n`exec-storm` (in `integration/src/bin`) fork+execs `/bin/true` N times, \
         one after another (1 thread), then the longer storm with {} threads ({} CPUs busy). \
         Each storm runs in {} rounds; a round runs it once untraced and once under each \
         tool, each round starting with the next tool, and the figures are the rounds' sums. \
         Captured: the storm's execs of `/bin/true` found in each tool's output. Lost: what \
         the tool reports lost (the tracer: exec events; it also records each fork and exit, \
         shown as its events). Tool CPU: user+system seconds of the tool's process (the \
         in-kernel cost lands on the storm, in its wall time). Slowdown: the median round's \
         storm wall time over the same round's untraced one (the smallest and largest in \
         brackets): the machine's speed drifts over minutes, more than the margins judged \
         here.\n",
        2 * cpus,
        cpus,
        storms.rounds,
    );
    md.push_str(
        "| N | threads | tool | captured | lost | tool CPU s | CPU µs / exec | peak RSS MB | storm s | execs/s | slowdown |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &storms.rows {
        let untraced = r.tool == Tool::None;
        let dash = || "—".to_string();
        let captured = if untraced {
            dash()
        } else {
            let mut s = format!(
                "{} ({:.2} %)",
                r.captured,
                100.0 * r.captured as f64 / r.n as f64
            );
            if let Some((events, lost)) = r.totals {
                let _ = write!(s, "; {events} events, {lost} lost of all kinds");
            }
            s
        };
        let slowdown = if untraced {
            dash()
        } else {
            let (median, min, max) = storms.slowdown(r.tool, r.jobs);
            format!("{median:.3} ({min:.3}–{max:.3})")
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.0} | {} |",
            r.n,
            r.jobs,
            r.tool.name(),
            captured,
            if untraced { dash() } else { r.lost.to_string() },
            if untraced {
                dash()
            } else {
                format!("{:.2}", r.tool_cpu)
            },
            if untraced {
                dash()
            } else {
                format!("{:.1}", 1e6 * r.tool_cpu / r.captured.max(1) as f64)
            },
            if untraced {
                dash()
            } else {
                format!("{:.0}", r.tool_rss_mb)
            },
            r.wall(),
            r.n as f64 / r.wall(),
            slowdown,
        );
    }
    md.push('\n');
}

fn storm_verdicts(storms: &Storms, cpus: usize, verdicts: &mut Vec<Verdict>) {
    for jobs in [1, 2 * cpus] {
        let (Some(t), Some(b), Some(e)) = (
            storms.of(Tool::Tracer, jobs),
            storms.of(Tool::Bpftrace, jobs),
            storms.of(Tool::Execsnoop, jobs),
        ) else {
            continue;
        };
        let label = format!("{} execs, {jobs} thread(s)", t.n);
        verdict(
            verdicts,
            &format!("every exec captured, 0 lost ({label})"),
            format!("{} of {}, {} lost", t.captured, t.n, t.lost),
            t.captured == t.n && t.lost == 0,
        );
        let missed = |r: &StormRow| r.n - r.captured.min(r.n);
        verdict(
            verdicts,
            &format!("fewer missed than bpftrace and execsnoop ({label})"),
            format!(
                "missed: tracer {}, bpftrace {}, execsnoop {}",
                missed(t),
                missed(b),
                missed(e)
            ),
            missed(t) <= missed(b) && missed(t) <= missed(e),
        );
        let per = |r: &StormRow| r.tool_cpu / r.captured.max(1) as f64;
        verdict_ratio(
            verdicts,
            (
                &format!("CPU per exec ≤ execsnoop's, < ½ bpftrace's ({label})"),
                format!(
                    "{:.1} µs vs {:.1} µs (execsnoop), {:.1} µs (bpftrace)",
                    1e6 * per(t),
                    1e6 * per(e),
                    1e6 * per(b)
                ),
                per(t) <= per(e) && per(t) < per(b) / 2.0,
            ),
            &format!("storm.cpu_vs_execsnoop.{jobs}t"),
            per(t) / per(e),
        );
        let (slow, min, max) = storms.slowdown(Tool::Tracer, jobs);
        let (es, _, _) = storms.slowdown(Tool::Execsnoop, jobs);
        let (bt, _, _) = storms.slowdown(Tool::Bpftrace, jobs);
        verdict_ratio(
            verdicts,
            (
                &format!("storm slowdown ≤ 1.10× ({label})"),
                format!(
                    "{slow:.3}× (rounds {min:.3}–{max:.3}; execsnoop {es:.3}×, bpftrace {bt:.3}×)"
                ),
                slow <= 1.10,
            ),
            &format!("storm.slowdown.{jobs}t"),
            slow,
        );
    }
}
// ---------------------------------------------------------------------------------------

pub(super) fn ring(
    sizes: &Sizes,
    storms: &Storms,
    md: &mut String,
    verdicts: &mut Vec<Verdict>,
) -> anyhow::Result<()> {
    let cpus = thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let jobs = 2 * cpus;
    let small = 4096;
    let r = storm_under(Tool::Tracer, sizes.small_ring, jobs, Some(small))?;
    let exact = r.lost == r.n - r.captured.min(r.n);
    let _ = writeln!(
        md,
        "## 2. Ring buffer limits\n\nA {small}-byte ring (one page, the smallest) under a \
         storm of {} execs on {jobs} threads:\n\n\
         | captured | lost (exec) | N − captured | lost = N − captured | all events | lost of all kinds |\n\
         |---|---|---|---|---|---|\n\
         | {} | {} | {} | {} | {} | {} |\n",
        r.n,
        r.captured,
        r.lost,
        r.n - r.captured.min(r.n),
        if exact { "yes" } else { "**no**" },
        r.totals.map_or(0, |t| t.0),
        r.totals.map_or(0, |t| t.1),
    );
    verdict(
        verdicts,
        "small ring: lost = N − captured exactly",
        format!(
            "{} lost, {} − {} = {}",
            r.lost,
            r.n,
            r.captured,
            r.n - r.captured.min(r.n)
        ),
        exact && r.lost > 0,
    );
    if let Some(t) = storms.of(Tool::Tracer, jobs) {
        let events = t.totals.map_or(0, |x| x.0);
        let _ = writeln!(
            md,
            "With the default ring (16 MiB) the tracer lost {} events during the {}-thread \
             storm: {:.0} execs/s, {:.0} events/s (fork, exec, exit) sustained for {:.0} s \
             in each of {} rounds with nothing lost. That storm is as fast as this machine fork+execs with every \
             CPU busy, so it is a lower bound: the reader used {:.1} % of one CPU at that rate \
             ({:.2} µs per event), so it would keep up with about {:.0} events/s before the \
             ring starts to fill.\n",
            t.totals.map_or(0, |x| x.1),
            t.jobs,
            t.n as f64 / t.wall(),
            events as f64 / t.wall(),
            t.wall() / storms.rounds as f64,
            storms.rounds,
            100.0 * t.tool_cpu / t.wall(),
            1e6 * t.tool_cpu / events.max(1) as f64,
            events as f64 / t.tool_cpu.max(1e-9),
        );
    }
    Ok(())
}
