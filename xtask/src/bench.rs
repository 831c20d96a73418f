//! `cargo xtask bench`: the tracer measured beside the tools a user would otherwise reach
//! for (bpftrace, libbpf-tools' execsnoop, runc, crun), all in one run so the ratios hold on
//! a noisy machine. Writes the results, with the targets met or missed, to BENCHMARKS.md.

use std::{
    collections::VecDeque,
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader, Read},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU32, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

use crate::{cargo, require_root, root, run, setup};

mod report_input;

const WORK: &str = "/tmp/tracer-bench";
/// Everything after this line of BENCHMARKS.md is kept when the results are rewritten.
const NOTES_MARK: &str = "<!-- notes: kept when the results above are regenerated -->";

struct Sizes {
    /// The sequential storm (one fork+exec after another).
    storm: u64,
    /// The longer, parallel storm (both CPUs busy, or all of them).
    storm_long: u64,
    small_ring: u64,
    ready_runs: usize,
    container_runs: usize,
    report_events: u64,
}

const FULL: Sizes = Sizes {
    storm: 100_000,
    storm_long: 250_000,
    small_ring: 20_000,
    ready_runs: 7,
    container_runs: 30,
    report_events: 1_000_000,
};

const QUICK: Sizes = Sizes {
    storm: 2_000,
    storm_long: 4_000,
    small_ring: 4_000,
    ready_runs: 2,
    container_runs: 3,
    report_events: 50_000,
};

pub const USAGE: &str = "  bench   [--quick] [--only storm,ring,ready,start,report] [--out FILE]
          measure the tracer beside bpftrace, execsnoop, runc and crun (root; about 20
          minutes): exec storms, ring buffer limits, time to ready, container start, report
          speed; writes BENCHMARKS.md (--quick: small sizes, to /tmp/tracer-bench)";

const SECTIONS: [&str; 5] = ["storm", "ring", "ready", "start", "report"];

pub fn bench(args: &[String]) -> anyhow::Result<()> {
    let mut quick = false;
    let mut only: Vec<String> = SECTIONS.iter().map(|s| s.to_string()).collect();
    let mut out = None;
    let mut args = args.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
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
    setup::all()?;
    setup::bench_tools()?;
    run(cargo().args(["build", "--release", "--package", "tracer"]))?;
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
        let storms = storms(sizes, &mut md, &mut verdicts)?;
        if want("ring") {
            ring(sizes, &storms, &mut md, &mut verdicts)?;
        }
    }
    if want("ready") {
        ready(sizes, &mut md, &mut verdicts)?;
    }
    if want("start") {
        container_start(sizes, &mut md, &mut verdicts)?;
    }
    if want("report") {
        report(sizes, &mut md, &mut verdicts)?;
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
    Ok(())
}

struct Verdict {
    target: String,
    measured: String,
    met: bool,
}

fn verdict(out: &mut Vec<Verdict>, target: &str, measured: String, met: bool) {
    out.push(Verdict {
        target: target.into(),
        measured,
        met,
    });
}

fn release(bin: &str) -> PathBuf {
    root().join("target/release").join(bin)
}

fn first_line(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_else(|| "?".into())
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
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
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

// ---------------------------------------------------------------------------------------
// Processes: spawn, watch their output, stop, and read their resource usage.

/// How a child ended and what it used (from `wait4`).
struct Usage {
    code: i32,
    /// User + system CPU seconds.
    cpu: f64,
    max_rss_kb: i64,
}

fn wait_usage(child: &Child) -> anyhow::Result<Usage> {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our child; status and ru are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("wait4");
        }
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Ok(Usage {
        code,
        cpu: secs(ru.ru_utime) + secs(ru.ru_stime),
        max_rss_kb: ru.ru_maxrss,
    })
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(child.id() as libc::pid_t, sig) };
}

/// What is read from a tool's output as it runs.
#[derive(Default)]
struct Scan {
    ready: Mutex<Option<Duration>>,
    lines: AtomicU64,
    captured: AtomicU64,
    lost: AtomicU64,
    tail: Mutex<VecDeque<String>>,
}

/// How a tool's output is read: the line that says it is attached, the lines that report
/// one of the storm's execs (given the storm's pid), and the lines that report losses.
#[derive(Clone, Copy)]
struct Rules {
    ready: fn(&str) -> bool,
    captured: fn(&str, u32) -> bool,
    lost: fn(&str) -> Option<u64>,
}

/// A tool running under observation.
struct Peer {
    child: Child,
    started: Instant,
    scan: Arc<Scan>,
    readers: Vec<thread::JoinHandle<()>>,
}

impl Peer {
    fn spawn(cmd: &mut Command, rules: Rules, storm: &Arc<AtomicU32>) -> anyhow::Result<Self> {
        let started = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        let scan = Arc::new(Scan::default());
        let streams: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped")),
            Box::new(child.stderr.take().expect("piped")),
        ];
        let readers = streams
            .into_iter()
            .map(|stream| {
                let (scan, storm) = (scan.clone(), storm.clone());
                thread::spawn(move || read_lines(stream, started, rules, &scan, &storm))
            })
            .collect();
        Ok(Self {
            child,
            started,
            scan,
            readers,
        })
    }

    /// Waits until the tool says it is attached; the time since it was started.
    fn wait_ready(&self, limit: Duration) -> anyhow::Result<Duration> {
        while self.started.elapsed() < limit {
            if let Some(t) = *self.scan.ready.lock().unwrap() {
                return Ok(t);
            }
            thread::sleep(Duration::from_millis(1));
        }
        bail!("not ready after {limit:?}: {}", self.tail())
    }

    /// Waits until the process holds `n` perf events (one per attached tracepoint or
    /// probe): when bpftrace has attached everything. Its BEGIN probe is no signal: it
    /// fires before the other probes are attached.
    fn wait_perf_events(&self, n: usize, limit: Duration) -> anyhow::Result<Duration> {
        let dir = format!("/proc/{}/fd", self.child.id());
        while self.started.elapsed() < limit {
            let count = fs::read_dir(&dir)
                .map(|d| {
                    d.filter_map(|e| fs::read_link(e.ok()?.path()).ok())
                        .filter(|t| t.as_os_str() == "anon_inode:[perf_event]")
                        .count()
                })
                .unwrap_or(0);
            if count >= n {
                return Ok(self.started.elapsed());
            }
            thread::sleep(Duration::from_millis(1));
        }
        bail!("not attached after {limit:?}: {}", self.tail())
    }

    /// Waits until the output stops growing (the tool has caught up), at most `limit`.
    fn drain(&self, progress: impl Fn() -> u64, limit: Duration) {
        let start = Instant::now();
        let mut last = (u64::MAX, Instant::now());
        while start.elapsed() < limit {
            let now = progress() + self.scan.lines.load(Ordering::Relaxed);
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() > Duration::from_millis(700) {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops it with SIGINT and reaps it.
    fn stop(self) -> anyhow::Result<(Usage, Arc<Scan>)> {
        signal(&self.child, libc::SIGINT);
        let usage = wait_usage(&self.child)?;
        for r in self.readers {
            let _ = r.join();
        }
        Ok((usage, self.scan))
    }

    fn tail(&self) -> String {
        let tail = self.scan.tail.lock().unwrap();
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

fn read_lines(
    stream: Box<dyn Read + Send>,
    started: Instant,
    rules: Rules,
    scan: &Scan,
    storm: &AtomicU32,
) {
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end();
        scan.lines.fetch_add(1, Ordering::Relaxed);
        if (rules.ready)(line) {
            scan.ready.lock().unwrap().get_or_insert(started.elapsed());
        }
        let pid = storm.load(Ordering::Relaxed);
        if pid != 0 && (rules.captured)(line, pid) {
            scan.captured.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(n) = (rules.lost)(line) {
            scan.lost.fetch_add(n, Ordering::Relaxed);
        }
        let mut tail = scan.tail.lock().unwrap();
        if tail.len() == 60 {
            tail.pop_front();
        }
        tail.push_back(line.to_string());
    }
}

/// `Lost N events` (bpftrace, and execsnoop's `Lost N events on CPU #C!`).
fn lost_events(line: &str) -> Option<u64> {
    let rest = &line[line.find("Lost ")? + 5..];
    let n = rest.split_whitespace().next()?.parse().ok()?;
    rest.contains("event").then_some(n)
}

fn never(_: &str, _: u32) -> bool {
    false
}

// ---------------------------------------------------------------------------------------
// The tools.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    None,
    Tracer,
    Bpftrace,
    Execsnoop,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::None => "no tracer",
            Tool::Tracer => "tracer watch --jsonl FILE",
            Tool::Bpftrace => "bpftrace (execve argv + mount)",
            Tool::Execsnoop => "execsnoop (libbpf-tools)",
        }
    }
}

/// The classic bpftrace one-liners: execve with its joined argv (as execsnoop.bt), and mount.
const STORM_BT: &str = r#"
tracepoint:syscalls:sys_enter_execve { printf("%d %d ", pid, curtask->real_parent->tgid); join(args->argv); }
tracepoint:syscalls:sys_enter_mount { printf("mount %s %s\n", str(args->dev_name), str(args->dir_name)); }
BEGIN { printf("ready\n"); }
"#;

/// The syscalls whose enter and exit tracepoints the tracer attaches on this kernel.
const TRACER_SYSCALLS: [&str; 13] = [
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
];

/// bpftrace attached to the same hooks as the tracer (30 probes), each doing a little.
fn same_probes_bt() -> String {
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
         BEGIN {{ printf(\"ready\\n\"); }}\n",
        list("enter"),
        list("exit")
    )
}

/// execsnoop printing each line as it comes, as on a terminal (and as bpftrace does): on a
/// pipe, stdio would hold its output back in 4 KiB blocks, even the header that says it is
/// attached.
fn execsnoop() -> Command {
    let mut cmd = Command::new("stdbuf");
    cmd.args(["-oL", "execsnoop"]);
    cmd
}

fn tracer_rules() -> Rules {
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

fn start_tool(
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
fn jsonl_captured(path: &Path, storm: u32) -> anyhow::Result<u64> {
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
fn tracer_totals(scan: &Scan) -> (u64, u64) {
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

struct StormRow {
    tool: Tool,
    n: u64,
    jobs: usize,
    captured: u64,
    lost: u64,
    /// The tracer's events of every kind, and lost of every kind.
    totals: Option<(u64, u64)>,
    tool_cpu: f64,
    tool_rss_mb: f64,
    wall: f64,
}

fn storm_under(tool: Tool, n: u64, jobs: usize, ring: Option<u64>) -> anyhow::Result<StormRow> {
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
            wall,
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
        tool_cpu: usage.cpu,
        tool_rss_mb: usage.max_rss_kb as f64 / 1024.0,
        wall,
    })
}

struct Storms {
    rows: Vec<StormRow>,
}

impl Storms {
    fn of(&self, tool: Tool, jobs: usize) -> Option<&StormRow> {
        self.rows.iter().find(|r| r.tool == tool && r.jobs == jobs)
    }

    fn baseline(&self, jobs: usize) -> f64 {
        let walls: Vec<f64> = self
            .rows
            .iter()
            .filter(|r| r.tool == Tool::None && r.jobs == jobs)
            .map(|r| r.wall)
            .collect();
        walls.iter().sum::<f64>() / walls.len().max(1) as f64
    }
}

fn storms(sizes: &Sizes, md: &mut String, verdicts: &mut Vec<Verdict>) -> anyhow::Result<Storms> {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let order = [
        Tool::None,
        Tool::Tracer,
        Tool::Bpftrace,
        Tool::Execsnoop,
        Tool::None,
    ];
    let mut rows = Vec::new();
    for (n, jobs) in [(sizes.storm, 1), (sizes.storm_long, 2 * cpus)] {
        for tool in order {
            rows.push(storm_under(tool, n, jobs, None)?);
        }
    }
    let storms = Storms { rows };

    let _ = writeln!(
        md,
        "## 1. Exec storm\n\n`exec-storm` (in `tracer/src/bin`) fork+execs `/bin/true` N times, \
         one after another (1 thread), then the longer storm with {} threads ({} CPUs busy). \
         Captured: the storm's execs of `/bin/true` found in each tool's output. Lost: what \
         the tool reports lost (the tracer: exec events; it also records each fork and exit, \
         shown as its events). Tool CPU: user+system seconds of the tool's process (the \
         in-kernel cost lands on the storm, in its wall time). Slowdown: storm wall time \
         over the mean of the two runs without a tracer.\n",
        2 * cpus,
        cpus
    );
    md.push_str(
        "| N | threads | tool | captured | lost | tool CPU s | CPU µs / exec | peak RSS MB | storm s | execs/s | slowdown |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &storms.rows {
        let base = storms.baseline(r.jobs);
        let captured = if r.tool == Tool::None {
            "—".to_string()
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
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.3} |",
            r.n,
            r.jobs,
            r.tool.name(),
            captured,
            if r.tool == Tool::None {
                "—".into()
            } else {
                r.lost.to_string()
            },
            if r.tool == Tool::None {
                "—".into()
            } else {
                format!("{:.2}", r.tool_cpu)
            },
            if r.tool == Tool::None {
                "—".into()
            } else {
                format!("{:.1}", 1e6 * r.tool_cpu / r.captured.max(1) as f64)
            },
            if r.tool == Tool::None {
                "—".into()
            } else {
                format!("{:.0}", r.tool_rss_mb)
            },
            r.wall,
            r.n as f64 / r.wall,
            r.wall / base,
        );
    }
    md.push('\n');

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
        verdict(
            verdicts,
            &format!("CPU per exec ≤ execsnoop's, < ½ bpftrace's ({label})"),
            format!(
                "{:.1} µs vs {:.1} µs (execsnoop), {:.1} µs (bpftrace)",
                1e6 * per(t),
                1e6 * per(e),
                1e6 * per(b)
            ),
            per(t) <= per(e) && per(t) < per(b) / 2.0,
        );
        let slow = t.wall / storms.baseline(jobs);
        verdict(
            verdicts,
            &format!("storm slowdown ≤ 1.10× ({label})"),
            format!("{slow:.3}×"),
            slow <= 1.10,
        );
    }
    Ok(storms)
}

// ---------------------------------------------------------------------------------------

fn ring(
    sizes: &Sizes,
    storms: &Storms,
    md: &mut String,
    verdicts: &mut Vec<Verdict>,
) -> anyhow::Result<()> {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
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
             with nothing lost. That storm is as fast as this machine fork+execs with every \
             CPU busy, so it is a lower bound: the reader used {:.1} % of one CPU at that rate \
             ({:.2} µs per event), so it would keep up with about {:.0} events/s before the \
             ring starts to fill.\n",
            t.totals.map_or(0, |x| x.1),
            t.jobs,
            t.n as f64 / t.wall,
            events as f64 / t.wall,
            t.wall,
            100.0 * t.tool_cpu / t.wall,
            1e6 * t.tool_cpu / events.max(1) as f64,
            events as f64 / t.tool_cpu.max(1e-9),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------

fn stats(v: &mut [f64]) -> (f64, f64, f64) {
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

fn ready(sizes: &Sizes, md: &mut String, verdicts: &mut Vec<Verdict>) -> anyhow::Result<()> {
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
        let b = Peer::spawn(
            Command::new("bpftrace").args(["-e", &script]),
            Rules {
                ready: |l| l == "ready",
                captured: never,
                lost: |_| None,
            },
            &storm,
        )?;
        // 30 tracepoints and BEGIN.
        bpftrace.push(
            b.wait_perf_events(31, Duration::from_secs(60))?
                .as_secs_f64(),
        );
        b.stop()?;
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
    }
    let _ = writeln!(
        md,
        "## 3. Time to ready\n\nFrom process start to every program attached: the tracer's \
         `ready` line (16 event kinds, 30 programs), bpftrace with the same 30 tracepoints \
         (attached when it holds their 30 perf events and BEGIN's), and execsnoop (2 \
         programs, its header line) for scale; {} runs each, interleaved.\n\n| tool | median s | min s | max s |\n|---|---|---|---|",
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
    verdict(
        verdicts,
        "ready in under 0.3 s",
        format!(
            "{:.3} s median (bpftrace {:.2} s: {:.1}× longer)",
            medians[0],
            medians[1],
            medians[1] / medians[0]
        ),
        medians[0] < 0.3,
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------

/// A mount namespace where crun accepts this host's hybrid cgroup layout: cgroup2's
/// controller list is hidden under an empty file. Every runtime runs in it, so all three
/// see the same mounts. Held open by a sleeping process.
struct CgroupFixNs {
    holder: Child,
    ns: fs::File,
}

impl CgroupFixNs {
    fn open() -> anyhow::Result<Option<Self>> {
        let controllers = "/sys/fs/cgroup/unified/cgroup.controllers";
        if !Path::new(controllers).exists() {
            return Ok(None);
        }
        let empty = Path::new(WORK).join("empty");
        fs::write(&empty, "")?;
        let mut holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind {} {controllers} && echo ok && exec sleep 100000",
                empty.display()
            ))
            .stdout(Stdio::piped())
            .spawn()
            .context("starting unshare")?;
        let mut line = String::new();
        BufReader::new(holder.stdout.take().expect("piped")).read_line(&mut line)?;
        if line.trim() != "ok" {
            let _ = holder.kill();
            let _ = holder.wait();
            bail!("could not prepare the mount namespace for crun");
        }
        let ns = fs::File::open(format!("/proc/{}/ns/mnt", holder.id()))?;
        Ok(Some(Self { holder, ns }))
    }
}

impl Drop for CgroupFixNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn bundle() -> anyhow::Result<PathBuf> {
    let dir = Path::new(WORK).join("bundle");
    let bin = dir.join("rootfs/bin");
    fs::create_dir_all(&bin)?;
    if !bin.join("busybox").exists() {
        fs::copy("/bin/busybox", bin.join("busybox")).context("copying /bin/busybox")?;
    }
    for applet in ["sh", "true"] {
        if fs::symlink_metadata(bin.join(applet)).is_err() {
            std::os::unix::fs::symlink("busybox", bin.join(applet))?;
        }
    }
    let config = dir.join("config.json");
    let _ = fs::remove_file(&config);
    run(Command::new("runc").arg("spec").current_dir(&dir))?;
    let mut spec: serde_json::Value = serde_json::from_str(&fs::read_to_string(&config)?)?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["/bin/true"]);
    fs::write(&config, serde_json::to_vec_pretty(&spec)?)?;
    Ok(dir)
}

fn container_start(
    sizes: &Sizes,
    md: &mut String,
    verdicts: &mut Vec<Verdict>,
) -> anyhow::Result<()> {
    let bundle = bundle()?;
    let ns = CgroupFixNs::open()?;
    let tracer = release("tracer");
    let b = bundle.to_str().context("bundle path")?.to_string();
    let names = [
        "tracer run --no-trace",
        "runc run",
        "crun run",
        "tracer run (traced)",
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for i in 0..sizes.container_runs {
        eprintln!("bench: container start, round {}", i + 1);
        // Rotated each round so no runtime always follows the same one.
        for k in 0..names.len() {
            let which = (i + k) % names.len();
            let id = format!("bench-{}-{i}", std::process::id());
            let mut cmd = match which {
                0 => {
                    let mut c = Command::new(&tracer);
                    c.args(["run", "-q", "--no-trace", "--net", "none", "--bundle", &b]);
                    c.args(["--", "/bin/true"]);
                    c
                }
                1 | 2 => {
                    let mut c = Command::new(if which == 1 { "runc" } else { "crun" });
                    c.args(["run", "--bundle", &b, &id]);
                    c
                }
                _ => {
                    let mut c = Command::new(&tracer);
                    c.args(["run", "-q", "--net", "none", "--bundle", &b]);
                    c.args(["--", "/bin/true"]);
                    c
                }
            };
            if let Some(ns) = &ns {
                let fd = std::os::fd::AsRawFd::as_raw_fd(&ns.ns);
                // SAFETY: setns is async-signal-safe; runs in the child before exec.
                unsafe {
                    cmd.pre_exec(move || {
                        if libc::setns(fd, libc::CLONE_NEWNS) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            let t = Instant::now();
            let out = cmd
                .stdin(Stdio::null())
                .output()
                .with_context(|| format!("starting {}", names[which]))?;
            let secs = t.elapsed().as_secs_f64();
            if !out.status.success() {
                bail!(
                    "{} failed ({}): {}",
                    names[which],
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            times[which].push(secs);
        }
    }
    let _ = writeln!(
        md,
        "## 4. Container start\n\nOne container running `/bin/true` from the same busybox-static \
         bundle (`runc spec`, loopback-only network), start to exit to cleanup, {} runs each, \
         interleaved{}.\n\n| runtime | median ms | min ms | max ms | vs runc |\n|---|---|---|---|---|",
        sizes.container_runs,
        if ns.is_some() {
            "; all in one mount namespace where cgroup2's controller list is hidden, which crun \
             needs on this hybrid cgroup host"
        } else {
            ""
        }
    );
    let mut medians = Vec::new();
    for v in &mut times {
        medians.push(stats(v).0);
    }
    for (name, v) in names.iter().zip(&mut times) {
        let (m, lo, hi) = stats(v);
        let _ = writeln!(
            md,
            "| {name} | {:.1} | {:.1} | {:.1} | {:.2}× |",
            m * 1e3,
            lo * 1e3,
            hi * 1e3,
            m / medians[1]
        );
    }
    md.push('\n');
    verdict(
        verdicts,
        "container start (--no-trace) ≤ runc's median",
        format!(
            "{:.1} ms vs runc {:.1} ms ({:.2}×)",
            medians[0] * 1e3,
            medians[1] * 1e3,
            medians[0] / medians[1]
        ),
        medians[0] <= medians[1],
    );
    verdict(
        verdicts,
        "stretch: container start ≤ crun's median",
        format!(
            "{:.1} ms vs crun {:.1} ms ({:.2}×)",
            medians[0] * 1e3,
            medians[2] * 1e3,
            medians[0] / medians[2]
        ),
        medians[0] <= medians[2],
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------

fn report(sizes: &Sizes, md: &mut String, verdicts: &mut Vec<Verdict>) -> anyhow::Result<()> {
    let input = Path::new(WORK).join(format!("trace-{}.json", sizes.report_events));
    let fixture = root().join("fixtures/docker-run.json");
    let (events, containers) = report_input::generate(&fixture, sizes.report_events, &input)?;
    let bytes = fs::metadata(&input)?.len();
    let _ = writeln!(
        md,
        "## 5. Report\n\n`tracer report` on a generated document of {events} events ({:.0} MB): \
         the recorded `docker run` fixture repeated {containers} times with fresh ids, pids, \
         namespaces and times. Python's `json.load` of the same file is shown for scale.\n\n\
         | command | wall s | peak RSS MB |\n|---|---|---|",
        bytes as f64 / 1e6
    );
    let mut measured = Vec::new();
    for format in ["table", "chrome", "json"] {
        eprintln!("bench: tracer report --format {format}");
        let out = Path::new(WORK).join(format!("report.{format}"));
        let t = Instant::now();
        let child = Command::new(release("tracer"))
            .args(["report", "--format", format, "-o"])
            .arg(&out)
            .arg(&input)
            .stderr(Stdio::null())
            .spawn()?;
        let u = wait_usage(&child)?;
        let wall = t.elapsed().as_secs_f64();
        if u.code != 0 {
            bail!("tracer report --format {format} failed ({})", u.code);
        }
        if format == "table" {
            let table = fs::read_to_string(&out)?;
            if !table.contains("docker") {
                bail!("the report table shows no docker container");
            }
        }
        let _ = fs::remove_file(&out);
        let mb = u.max_rss_kb as f64 / 1024.0;
        let _ = writeln!(
            md,
            "| tracer report --format {format} | {wall:.2} | {mb:.0} |"
        );
        measured.push((format, wall, mb));
    }
    let t = Instant::now();
    let child = Command::new("python3")
        .args(["-c", "import json,sys; json.load(open(sys.argv[1]))"])
        .arg(&input)
        .spawn()?;
    let u = wait_usage(&child)?;
    let _ = writeln!(
        md,
        "| python3 json.load (reading only) | {:.2} | {:.0} |\n",
        t.elapsed().as_secs_f64(),
        u.max_rss_kb as f64 / 1024.0
    );
    for (format, wall, mb) in measured.into_iter().filter(|m| m.0 != "json") {
        verdict(
            verdicts,
            &format!("report {events} events, {format}: < 3 s, < 300 MB"),
            format!("{wall:.2} s, {mb:.0} MB"),
            wall < 3.0 && mb < 300.0,
        );
    }
    Ok(())
}
