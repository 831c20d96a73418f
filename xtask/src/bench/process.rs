//! Processes under measurement: spawned, their output watched as it comes, stopped, and
//! their resource usage read from `wait4`.

use std::{
    collections::VecDeque,
    fs,
    io::{BufRead, BufReader, Read},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU32, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

/// How a child ended and what it used (from `wait4`).
pub(super) struct Usage {
    pub(super) code: i32,
    /// User + system CPU seconds.
    pub(super) cpu: f64,
    pub(super) max_rss_kb: i64,
}

pub(super) fn wait_usage(child: &Child) -> anyhow::Result<Usage> {
    Ok(try_wait_usage(child, 0)?.expect("waited without WNOHANG"))
}

/// `wait4` with `flags` (WNOHANG: None while it runs).
pub(super) fn try_wait_usage(child: &Child, flags: i32) -> anyhow::Result<Option<Usage>> {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our child; status and ru are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut ru) };
        if r == pid {
            break;
        }
        if r == 0 {
            return Ok(None);
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
    Ok(Some(Usage {
        code,
        cpu: secs(ru.ru_utime) + secs(ru.ru_stime),
        max_rss_kb: ru.ru_maxrss,
    }))
}

/// User + system CPU seconds a running process has used so far (`/proc/PID/stat`, in
/// clock ticks); 0 if it cannot be read.
pub(super) fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which may hold spaces: state is the first.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after state.
    // SAFETY: sysconf has no memory preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) as f64 / hz
}

pub(super) fn signal(child: &Child, sig: i32) {
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(child.id() as libc::pid_t, sig) };
}

/// What is read from a tool's output as it runs.
#[derive(Default)]
pub(super) struct Scan {
    pub(super) ready: Mutex<Option<Duration>>,
    pub(super) lines: AtomicU64,
    pub(super) captured: AtomicU64,
    pub(super) lost: AtomicU64,
    pub(super) tail: Mutex<VecDeque<String>>,
}

/// How a tool's output is read: the line that says it is attached, the lines that report
/// one of the storm's execs (given the storm's pid), and the lines that report losses.
#[derive(Clone, Copy)]
pub(super) struct Rules {
    pub(super) ready: fn(&str) -> bool,
    pub(super) captured: fn(&str, u32) -> bool,
    pub(super) lost: fn(&str) -> Option<u64>,
}

/// A tool running under observation.
pub(super) struct Peer {
    pub(super) child: Child,
    pub(super) started: Instant,
    pub(super) scan: Arc<Scan>,
    pub(super) readers: Vec<thread::JoinHandle<()>>,
}

impl Peer {
    pub(super) fn spawn(
        cmd: &mut Command,
        rules: Rules,
        storm: &Arc<AtomicU32>,
    ) -> anyhow::Result<Self> {
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
    pub(super) fn wait_ready(&self, limit: Duration) -> anyhow::Result<Duration> {
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
    pub(super) fn wait_perf_events(&self, n: usize, limit: Duration) -> anyhow::Result<Duration> {
        let dir = format!("/proc/{}/fd", self.child.id());
        while self.started.elapsed() < limit {
            let count = fs::read_dir(&dir).map_or(0, |d| {
                d.filter_map(|e| fs::read_link(e.ok()?.path()).ok())
                    .filter(|t| t.as_os_str() == "anon_inode:[perf_event]")
                    .count()
            });
            if count >= n {
                return Ok(self.started.elapsed());
            }
            thread::sleep(Duration::from_millis(1));
        }
        bail!("not attached after {limit:?}: {}", self.tail())
    }

    /// Waits until the output stops growing (the tool has caught up), at most `limit`.
    pub(super) fn drain(&self, progress: impl Fn() -> u64, limit: Duration) {
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
    pub(super) fn stop(self) -> anyhow::Result<(Usage, Arc<Scan>)> {
        // execsnoop can miss a SIGINT that lands while it is still setting up (seen once
        // in 7 runs): it is sent again every second, and SIGKILL ends it after 20 s.
        let asked = Instant::now();
        let mut sent = 0;
        let usage = loop {
            if asked.elapsed().as_secs() >= sent {
                signal(
                    &self.child,
                    if sent < 20 {
                        libc::SIGINT
                    } else {
                        libc::SIGKILL
                    },
                );
                sent += 1;
            }
            if let Some(u) = try_wait_usage(&self.child, libc::WNOHANG)? {
                break u;
            }
            thread::sleep(Duration::from_millis(5));
        };
        for r in self.readers {
            let _ = r.join();
        }
        Ok((usage, self.scan))
    }

    pub(super) fn tail(&self) -> String {
        let tail = self.scan.tail.lock().unwrap();
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

pub(super) fn read_lines(
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
pub(super) fn lost_events(line: &str) -> Option<u64> {
    let rest = &line[line.find("Lost ")? + 5..];
    let n = rest.split_whitespace().next()?.parse().ok()?;
    rest.contains("event").then_some(n)
}

pub(super) fn never(_: &str, _: u32) -> bool {
    false
}
