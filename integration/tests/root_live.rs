//! Root only: `tracer watch --live` in a real terminal (a tmux pane): a container started and
//! exited while it runs appears, shows running, then exited with its code; `q` and SIGTERM
//! give the terminal back as it was (main screen, canonical mode, echo).

use std::{
    process::Command,
    thread,
    time::{Duration, Instant},
};

use tracer_integration::{require_root, TRACER};

/// A tmux server of its own (its socket in a temporary directory), killed when dropped.
struct Tmux {
    socket: tempfile::TempDir,
}

impl Tmux {
    fn new(command: &str) -> Self {
        let socket = tempfile::tempdir().unwrap();
        let t = Self { socket };
        assert!(t
            .cmd(&["new-session", "-d", "-x", "140", "-y", "30", "bash --norc"])
            .status()
            .unwrap()
            .success());
        t.keys(&[command, "Enter"]);
        t
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(self.socket.path().join("s")).args(args);
        c
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend(keys);
        assert!(self.cmd(&args).status().unwrap().success());
    }

    fn pane(&self) -> String {
        let out = self
            .cmd(&["capture-pane", "-p", "-t", "0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn alternate_screen(&self) -> bool {
        let out = self
            .cmd(&["display-message", "-p", "-t", "0", "#{alternate_on}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// Waits until the pane shows what `want` looks for; the pane then.
    fn wait_for(&self, what: &str, mut want: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pane = self.pane();
            if want(&pane) {
                return pane;
            }
            assert!(Instant::now() < deadline, "never saw {what}:\n{pane}");
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The terminal as a shell finds it: main screen, canonical mode, echo on.
    fn assert_restored(&self) {
        self.wait_for("the main screen back", |_| !self.alternate_screen());
        self.keys(&["stty -a", "Enter"]);
        let pane = self.wait_for("stty's answer", |p| p.contains("icanon"));
        let words: Vec<&str> = pane.split([' ', ';', '\n']).collect();
        assert!(
            words.contains(&"icanon") && words.contains(&"echo"),
            "{pane}"
        );
    }

    /// The pid of the program the pane's shell runs.
    fn program_pid(&self) -> String {
        let out = self
            .cmd(&["display-message", "-p", "-t", "0", "#{pane_pid}"])
            .output()
            .unwrap();
        let shell = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let out = Command::new("pgrep").args(["-P", &shell]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
    }
}

fn live_command() -> String {
    format!("{} watch --live 2>/dev/null", TRACER.display())
}

#[test]
fn root_live_table_shows_a_container_come_and_go_and_q_restores() {
    require_root();
    let tmux = Tmux::new(&live_command());
    tmux.wait_for("the live table", |p| {
        p.contains("tracer watch:") && p.contains("q to quit")
    });
    assert!(tmux.alternate_screen());
    // Short enough for the table's column.
    let name = format!("live{}", std::process::id() % 100_000);
    let mut run = Command::new(&*TRACER)
        .args([
            "run",
            "-q",
            "--name",
            &name,
            "--",
            "sh",
            "-c",
            "sleep 2; exit 7",
        ])
        .spawn()
        .unwrap();
    let row = |p: &str, state: &str| p.lines().any(|l| l.contains(&name) && l.contains(state));
    tmux.wait_for("the container running", |p| row(p, "running"));
    assert_eq!(run.wait().unwrap().code(), Some(7));
    let pane = tmux.wait_for("the container exited", |p| {
        p.lines().any(|l| {
            l.contains(&name)
                && (l.contains("exited") || l.contains("removed"))
                && l.split_whitespace().last() == Some("7")
        })
    });
    assert!(pane.contains("running ·"), "{pane}");
    tmux.keys(&["q"]);
    tmux.assert_restored();
    // The final table follows on the main screen.
    let pane = tmux.pane();
    assert!(pane.contains("CONTAINER"), "{pane}");
}

#[test]
fn root_live_table_sigterm_restores() {
    require_root();
    let tmux = Tmux::new(&live_command());
    tmux.wait_for("the live table", |p| p.contains("q to quit"));
    let pid = tmux.program_pid();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    tmux.assert_restored();
}

/// The terminal closed under it (the pane killed: SIGHUP): the watch ends as if stopped,
/// its document finished.
#[test]
fn root_live_table_closed_terminal_finishes_the_document() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("trace.json");
    let tmux = Tmux::new(&format!(
        "{} watch --live --json {} 2>/dev/null",
        TRACER.display(),
        json.display()
    ));
    tmux.wait_for("the live table", |p| p.contains("q to quit"));
    let pid = tmux.program_pid();
    assert!(tmux.cmd(&["kill-server"]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "the watch did not end on SIGHUP");
        thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&json).unwrap();
    let doc: tracer::document::Document =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("the document is not finished: {e}"));
    assert_eq!(doc.version, tracer::document::VERSION);
}

/// `tracer run -i -t -- sh` in a real terminal: the shell is PID 1 on a terminal of its own
/// that has the pane's size and follows it when resized, Ctrl-C reaches it, `exit 3` is the
/// run's code, and the terminal is sane after.
#[test]
fn root_run_interactive_terminal() {
    require_root();
    let tmux = Tmux::new(&format!("{} run -i -t -- sh", TRACER.display()));
    let prompt = |p: &str| p.lines().filter(|l| l.trim_end() == "#").count();
    tmux.wait_for("the container's shell", |p| prompt(p) >= 1);
    tmux.keys(&["echo pid=$$; tty", "Enter"]);
    tmux.wait_for("its pid and terminal", |p| {
        p.contains("pid=1") && p.contains("/dev/pts/")
    });
    let size = |t: &Tmux| {
        let out = t
            .cmd(&[
                "display-message",
                "-p",
                "-t",
                "0",
                "#{pane_height} #{pane_width}",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    tmux.keys(&["echo size=$(stty size)", "Enter"]);
    let want = format!("size={}", size(&tmux));
    tmux.wait_for(&want, |p| p.contains(&want));
    assert!(tmux
        .cmd(&["resize-window", "-t", "0", "-x", "100", "-y", "25"])
        .status()
        .unwrap()
        .success());
    tmux.keys(&["clear; echo size=$(stty size)", "Enter"]);
    tmux.wait_for("the new size", |p| p.contains("size=25 100"));
    tmux.keys(&["sleep 60", "Enter"]);
    thread::sleep(Duration::from_millis(500));
    tmux.keys(&["C-c"]);
    tmux.keys(&["echo after=interrupt", "Enter"]);
    tmux.wait_for("Ctrl-C reaching the shell", |p| {
        p.contains("after=interrupt")
    });
    tmux.keys(&["exit 3", "Enter"]);
    tmux.wait_for("the table after the shell", |p| p.contains("CONTAINER"));
    tmux.keys(&["echo rc=$?", "Enter"]);
    tmux.wait_for("the run's exit code", |p| p.contains("rc=3"));
    tmux.assert_restored();
}
