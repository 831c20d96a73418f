//! Helpers of the root tests (`tests/`), which run the real `tracer` binary with its real
//! eBPF programs and start real containers. They need root: they load programs into the
//! running kernel. Without root they fail with a message saying so. Plain `cargo test`
//! leaves this crate out; `cargo xtask test` builds the tracer and runs it as root.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{mpsc, LazyLock},
    thread,
    time::Duration,
};

pub mod services;
pub mod telemetry;

use tracer::event::{Detail, Event};

/// The `tracer` binary of this build: beside the test binaries' `deps/` folder
/// (`TRACER_BIN` overrides it).
pub static TRACER: LazyLock<PathBuf> = LazyLock::new(|| {
    if let Some(path) = std::env::var_os("TRACER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    let tracer = dir.join("tracer");
    assert!(
        tracer.is_file(),
        "{} is missing: build it first (cargo build -p tracer; cargo xtask test does)",
        tracer.display()
    );
    tracer
});

/// Runs `tracer ARGS` as nobody, with no capabilities (for the "needs root" errors).
pub fn as_nobody(args: &[&str]) -> std::process::Output {
    require_root();
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&*TRACER)
        .args(args)
        .output()
        .unwrap()
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test loads eBPF programs and must run as root (cargo xtask test runs it as root)"
    );
}

/// Whether the ready line says every kind this kernel has is observed: `N/N event kinds
/// observed`, the kinds the kernel lacks by design (a syscall it does not have) named.
fn every_kind_observed(line: &str) -> bool {
    let Some((seen, rest)) = line
        .split_once("ready: ")
        .and_then(|(_, r)| r.split_once(" event kinds observed"))
    else {
        return false;
    };
    let Some((covered, kinds)) = seen.split_once('/') else {
        return false;
    };
    let absent = rest
        .strip_prefix(" (not in this kernel: ")
        .and_then(|r| r.split_once(')'))
        .map_or(0, |(names, _)| names.split(", ").count());
    covered == kinds
        && kinds.parse::<usize>().ok().map(|k| k + absent)
            == Some(tracer::event::EventKind::ALL.len())
}

/// A running `tracer watch --jsonl FILE`.
pub struct Watch {
    child: Child,
    jsonl: PathBuf,
    stderr: mpsc::Receiver<String>,
    /// What it said before it was ready.
    early: Vec<String>,
    _dir: tempfile::TempDir,
}

/// What a stopped tracer wrote.
pub struct Output {
    pub events: Vec<Event>,
    pub stderr: String,
    pub success: bool,
}

impl Watch {
    /// Starts the tracer and waits until every hook is attached.
    pub fn start(extra: &[&str]) -> Self {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join("events.jsonl");
        let mut child = Command::new(&*TRACER)
            .args(["watch", "--quiet", "--jsonl"])
            .arg(&jsonl)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning tracer");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.starts_with("tracer: ready") => {
                    assert!(
                        every_kind_observed(&line),
                        "some event kind has no hook: {line}\n{}",
                        seen.join("\n")
                    );
                    break;
                }
                Ok(line) => seen.push(line),
                Err(e) => panic!("tracer never became ready ({e}):\n{}", seen.join("\n")),
            }
        }
        Self {
            child,
            jsonl,
            stderr: rx,
            early: seen,
            _dir: dir,
        }
    }

    /// The tracer's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it with SIGKILL (nothing of it runs after), waits for it, and gives the JSON
    /// Lines it had written.
    pub fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        std::fs::read_to_string(&self.jsonl).unwrap()
    }

    /// Stops it with SIGINT, as Ctrl-C would, and reads everything it wrote.
    pub fn stop(mut self) -> Output {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let status = self.child.wait().unwrap();
        // Everything it wrote: the reader ends at the end of its stderr.
        let mut stderr = std::mem::take(&mut self.early);
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(10)) {
            stderr.push(line);
        }
        let text = std::fs::read_to_string(&self.jsonl).unwrap();
        let events = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
            .collect();
        Output {
            events,
            stderr: stderr.join("\n"),
            success: status.success(),
        }
    }
}

/// A test that fails before stopping its tracer leaves nothing running.
impl Drop for Watch {
    fn drop(&mut self) {
        if self.child.try_wait().is_ok_and(|s| s.is_none()) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Output {
    pub fn of_process(&self, tgid: u32) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.tgid == tgid)
    }

    /// `(events, lost, malformed)` from the summary line.
    pub fn totals(&self) -> (u64, u64, u64) {
        let line = self
            .stderr
            .lines()
            .find(|l| l.contains(" events in ") && l.contains(" lost, "))
            .unwrap_or_else(|| panic!("no summary in:\n{}", self.stderr));
        let nums: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit() && c != '.')
            .filter(|s| !s.is_empty() && !s.contains('.'))
            .map(|s| s.parse().unwrap())
            .collect();
        // "N events in S.SS s, L lost, M malformed"
        (nums[0], nums[1], nums[2])
    }

    /// The lost count of one kind, from the summary table.
    pub fn lost_of(&self, kind: &str) -> u64 {
        let row = self
            .stderr
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} row in:\n{}", self.stderr));
        let cols: Vec<&str> = row.split_whitespace().collect();
        cols[3].parse().unwrap()
    }
}

pub fn exit_of(ev: &Event) -> Option<(Option<i32>, Option<i32>)> {
    match ev.detail {
        Detail::Exit {
            exit_code, signal, ..
        } => Some((exit_code, signal)),
        _ => None,
    }
}
