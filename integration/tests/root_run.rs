//! Root tests of the built-in runtime: real containers started by `tracer run` on this
//! machine (namespaces, overlay, cgroups, veth on the bridge), checked from inside and out.

use std::{
    collections::BTreeSet,
    fs,
    os::unix::fs::MetadataExt as _,
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use tracer_integration::{as_nobody, require_root, TRACER};

/// Tests that compare snapshots of the host hold this exclusively; the others share it.
static HOST: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    HOST.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    HOST.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts `tracer run -- ARGS` in the background and waits until its container runs
/// `comm`; returns the tracer and the container's PID 1 (host view).
// The child is returned to the caller, which waits for it.
#[allow(clippy::zombie_processes)]
fn start(args: &[&str], comm: &str) -> (std::process::Child, i32) {
    require_root();
    let child = Command::new(&*TRACER)
        .arg("run")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let children =
            fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id()))
                .unwrap_or_default();
        if let Some(p) = children
            .split_whitespace()
            .find(|p| fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == comm))
        {
            return (child, p.parse().unwrap());
        }
        if Instant::now() > deadline {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            panic!("the container never ran {comm}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
}

fn run(args: &[&str]) -> Output {
    require_root();
    Command::new(&*TRACER)
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawning tracer run")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// What a container run may leave behind: mounts, links, cgroups, state.
fn snapshot() -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    for line in fs::read_to_string("/proc/self/mountinfo").unwrap().lines() {
        // Mount point and source, without the ids that change between reads.
        let f: Vec<&str> = line.split_whitespace().collect();
        s.insert(format!("mount {} {}", f[4], f.last().unwrap()));
    }
    for e in fs::read_dir("/sys/class/net")
        .unwrap()
        .filter_map(Result::ok)
    {
        s.insert(format!("link {}", e.file_name().to_string_lossy()));
    }
    for root in ["memory", "pids", "unified", ""] {
        let dir = format!("/sys/fs/cgroup/{root}/tracer");
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.filter_map(Result::ok).filter(|e| e.path().is_dir()) {
                s.insert(format!("cgroup {}", e.path().display()));
            }
        }
    }
    if let Ok(entries) = fs::read_dir("/run/tracer") {
        for e in entries.filter_map(Result::ok) {
            s.insert(format!("state {}", e.file_name().to_string_lossy()));
        }
    }
    if let Ok(entries) = fs::read_dir("/run/tracer/ipam") {
        for e in entries.filter_map(Result::ok) {
            s.insert(format!("address {}", e.file_name().to_string_lossy()));
        }
    }
    s
}

/// The bridge, the parent cgroups and /run/tracer/ipam are made on first use and kept, like
/// Docker's docker0: warm them up before taking a "before" snapshot.
fn warm_up() {
    assert!(run(&["--", "true"]).status.success());
}

#[test]
fn root_run_echo_exit_codes_and_signals() {
    let _g = shared();
    let out = run(&["--net", "none", "--", "echo", "hi"]);
    assert_eq!(text(&out.stdout), "hi\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(run(&["--", "sh", "-c", "exit 7"]).status.code(), Some(7));
    // Death by a signal maps to 128+N (from outside: a PID 1 ignores its own SIGKILL).
    let (child, pid1) = start(&["--net", "none", "--", "sleep", "30"], "sleep");
    signal(pid1, nix::sys::signal::Signal::SIGKILL);
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(137));
    // A PID 1 with a handler sees the forwarded signal itself.
    let (child, pid1) = start(
        &[
            "--net",
            "none",
            "--",
            "sh",
            "-c",
            "trap 'exit 143' TERM; while :; do sleep 0.1; done",
        ],
        "sh",
    );
    // Give the shell time to install its trap.
    thread::sleep(Duration::from_millis(300));
    signal(pid1, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(143));
}

#[test]
fn root_run_is_isolated_like_docker() {
    let _g = shared();
    let script = "echo pid=$$; hostname; \
        for n in cgroup ipc mnt net pid uts user time; do echo ns $n $(stat -L -c %i /proc/self/ns/$n); done; \
        grep CapEff /proc/self/status; \
        if echo x > /proc/sys/kernel/hostname 2>/dev/null; then echo procsys=writable; else echo procsys=readonly; fi; \
        echo timer_list=$(wc -c < /proc/timer_list); \
        if [ -e /proc/kcore ]; then echo kcore=$(wc -c < /proc/kcore); fi; \
        ip -4 -o addr show eth0 | awk '{print \"eth0=\" $4}'; \
        busybox ping -c1 -W3 10.89.0.1 > /dev/null && echo ping=ok; \
        cat /proc/self/status | grep NoNewPrivs";
    let out = run(&["--hostname", "trc-iso", "--", "sh", "-c", script]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "pid=1", "PID 1 is the command");
    assert_eq!(lines[1], "trc-iso");
    for line in lines.iter().filter(|l| l.starts_with("ns ")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let host = fs::metadata(format!("/proc/self/ns/{}", f[1]))
            .unwrap()
            .ino();
        let inside: u64 = f[2].parse().unwrap();
        if f[1] == "user" || f[1] == "time" {
            assert_eq!(inside, host, "{} is shared with the host", f[1]);
        } else {
            assert_ne!(inside, host, "{} namespace is the host's", f[1]);
        }
    }
    assert!(stdout.contains("CapEff:\t00000000a80425fb"), "{stdout}");
    assert!(stdout.contains("procsys=readonly"), "{stdout}");
    assert!(
        stdout.contains("timer_list=0"),
        "masked: {stdout}\n{}",
        text(&out.stderr)
    );
    assert!(fs::read_to_string("/proc/timer_list").unwrap().len() > 100);
    if std::path::Path::new("/proc/kcore").exists() {
        assert!(stdout.contains("kcore=0"), "{stdout}");
    }
    assert!(stdout.contains("eth0=10.89.0."), "{stdout}");
    assert!(stdout.contains("/24"), "{stdout}");
    assert!(stdout.contains("ping=ok"), "the bridge answers: {stdout}");
    assert!(stdout.contains("NoNewPrivs:\t1"), "{stdout}");
}

#[test]
fn root_run_net_none_has_no_eth0() {
    let _g = shared();
    let out = run(&["--net", "none", "--", "sh", "-c", "ls /sys/class/net"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).split_whitespace().collect::<Vec<_>>(),
        ["lo"]
    );
}

#[test]
fn root_run_rootfs_dir_is_used() {
    let _g = shared();
    // A minimal root: busybox-static alone.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy("/usr/bin/busybox", bin.join("busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", bin.join("sh")).unwrap();
    std::os::unix::fs::symlink("busybox", bin.join("cat")).unwrap();
    fs::write(dir.path().join("marker"), "from the rootfs\n").unwrap();
    let root = dir.path().to_str().unwrap();
    let out = run(&["--rootfs", root, "--net", "none", "--", "cat", "/marker"]);
    assert_eq!(
        text(&out.stdout),
        "from the rootfs\n",
        "{}",
        text(&out.stderr)
    );
    // The rootfs is a read-only lower layer: writes land in the container's upper dir.
    let out = run(&[
        "--rootfs",
        root,
        "--net",
        "none",
        "--",
        "sh",
        "-c",
        "echo new > /marker",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(dir.path().join("marker")).unwrap(),
        "from the rootfs\n"
    );
}

#[test]
fn root_run_errors_are_one_line_and_leave_nothing() {
    let _g = exclusive();
    warm_up();
    let before = snapshot();
    // --quiet: no trace on stderr, so the error is all there is.
    let out = run(&["--quiet", "--", "no-such-command-xyz"]);
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        text(&out.stderr).trim(),
        "tracer: error: no-such-command-xyz is not in the image"
    );
    let out = run(&["--quiet", "--rootfs", "/nonexistent-rootfs", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent-rootfs"), "{stderr}");
    let out = run(&["--quiet", "--env", "NOEQUALS", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--env NOEQUALS"));
    assert_eq!(snapshot(), before);
}

#[test]
fn root_run_forwards_sigint_and_cleans_up() {
    let _g = exclusive();
    warm_up();
    let before = snapshot();
    // A command that handles SIGINT gets it from tracer run.
    let (child, _) = start(
        &[
            "--",
            "sh",
            "-c",
            "trap 'exit 130' INT; while :; do sleep 0.1; done",
        ],
        "sh",
    );
    thread::sleep(Duration::from_millis(300));
    signal(child.id() as i32, nix::sys::signal::Signal::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    // A PID 1 without a handler ignores it, as in Docker: a second Ctrl-C kills it.
    let (child, _) = start(&["--", "sleep", "30"], "sleep");
    signal(child.id() as i32, nix::sys::signal::Signal::SIGINT);
    thread::sleep(Duration::from_millis(200));
    signal(child.id() as i32, nix::sys::signal::Signal::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("again to kill it"));
    assert_eq!(snapshot(), before);
}

/// 20 runs, successes and every kind of failure, including a SIGKILL of the container from
/// outside: the mount table, links, cgroups and state are exactly as before.
#[test]
fn root_run_twenty_runs_leave_nothing_behind() {
    let _g = exclusive();
    warm_up();
    let before = snapshot();
    for i in 0..20 {
        let code = match i % 5 {
            0 => run(&["--", "true"]).status.code(),
            1 => run(&["--net", "none", "--", "sh", "-c", "exit 3"])
                .status
                .code(),
            2 => run(&["--", "missing-command"]).status.code(),
            3 => run(&[
                "--memory",
                "64M",
                "--pids-limit",
                "50",
                "--",
                "sh",
                "-c",
                "exit 137",
            ])
            .status
            .code(),
            _ => {
                let (child, pid1) = start(&["--", "sleep", "30"], "sleep");
                signal(pid1, nix::sys::signal::Signal::SIGKILL);
                child.wait_with_output().unwrap().status.code()
            }
        };
        let expected = [0, 3, 127, 137, 137][i % 5];
        assert_eq!(code, Some(expected), "run {i}");
    }
    assert_eq!(snapshot(), before);
}

#[test]
fn root_run_ten_in_parallel_get_distinct_addresses() {
    let _g = exclusive();
    warm_up();
    let children: Vec<_> = (0..10)
        .map(|_| {
            Command::new(&*TRACER)
                .args([
                    "run",
                    "--",
                    "sh",
                    "-c",
                    // Stay up long enough for all ten to hold an address at once.
                    "ip -4 -o addr show eth0 | awk '{print $4}'; sleep 3",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut addresses = BTreeSet::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let addr = text(&out.stdout).trim().to_string();
        assert!(addr.starts_with("10.89.0."), "{addr}");
        addresses.insert(addr);
    }
    assert_eq!(addresses.len(), 10, "{addresses:?}");
}

/// Without a limit the init is born into its cgroup2 cgroup (`clone3` with
/// `CLONE_INTO_CGROUP`, nothing moves it) and is put in no v1 hierarchy.
#[test]
fn root_run_init_is_born_into_its_cgroup() {
    let _g = shared();
    if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        && !std::path::Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists()
    {
        eprintln!("no cgroup2 hierarchy on this host: skipped");
        return;
    }
    let (child, pid1) = start(&["--net", "none", "--", "sleep", "30"], "sleep");
    let cgroups = fs::read_to_string(format!("/proc/{pid1}/cgroup")).unwrap();
    signal(pid1, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait_with_output();
    let v2 = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup2 line");
    let id = v2
        .strip_prefix("/tracer/")
        .unwrap_or_else(|| panic!("not in a tracer cgroup: {cgroups}"));
    assert_eq!(id.len(), 12, "{cgroups}");
    assert!(
        !cgroups
            .lines()
            .any(|l| !l.starts_with("0::") && l.contains("/tracer/")),
        "in a v1 hierarchy without a limit: {cgroups}"
    );
}

#[test]
fn root_run_applies_cgroup_limits() {
    let _g = exclusive();
    let child = Command::new(&*TRACER)
        .args([
            "run",
            "--pids-limit",
            "33",
            "--memory",
            "48M",
            "--",
            "sleep",
            "3",
        ])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (pids, memory) = loop {
        let find = |hier: &str, file: &str| -> Option<String> {
            fs::read_dir(format!("/sys/fs/cgroup/{hier}"))
                .ok()?
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .find_map(|e| fs::read_to_string(e.path().join(file)).ok())
                .map(|s| s.trim().to_string())
        };
        let v1 = std::path::Path::new("/sys/fs/cgroup/pids").exists();
        let (p, m) = if v1 {
            (
                find("pids/tracer", "pids.max"),
                find("memory/tracer", "memory.limit_in_bytes"),
            )
        } else {
            (find("tracer", "pids.max"), find("tracer", "memory.max"))
        };
        if let (Some(p), Some(m)) = (p, m) {
            break (p, m);
        }
        assert!(Instant::now() < deadline, "no container cgroup appeared");
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(pids, "33");
    assert_eq!(memory, (48u64 << 20).to_string());
    assert!(child.wait_with_output().unwrap().status.success());
}

/// Every step of a launch is in the trace, in order: the image mount, the veth, the clone
/// into new namespaces, the runtime's re-exec, the rootfs mounts, pivot_root, the masked
/// paths, the command, its exit, and the cleanup.
#[test]
fn root_run_trace_shows_every_step() {
    use tracer::event::{Detail, Event};
    let _g = shared();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.jsonl");
    let out = run(&[
        "--quiet",
        "--jsonl",
        file.to_str().unwrap(),
        "--",
        "echo",
        "hi",
    ]);
    assert_eq!(text(&out.stdout), "hi\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events: Vec<Event> = fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |what: &str, f: &dyn Fn(&Event) -> bool| -> usize {
        events
            .iter()
            .position(f)
            .unwrap_or_else(|| panic!("no {what} in the trace:\n{events:#?}"))
    };
    let overlay = find("overlay mount", &|e| {
        matches!(&e.detail, Detail::Mount { fstype, target, result, .. }
            if fstype == "overlay" && target.ends_with("/merged") && result.ret == 0)
    });
    let veth = find(
        "veth",
        &|e| matches!(&e.detail, Detail::Veth { name, .. } if name.starts_with("tv")),
    );
    let ns = find("namespaces", &|e| {
        matches!(&e.detail, Detail::Namespaces { new, .. }
            if ["mnt", "uts", "ipc", "pid", "net"].iter().all(|k| new.iter().any(|n| n.name() == *k)))
    });
    let cgroupns = find(
        "cgroup namespace",
        &|e| matches!(&e.detail, Detail::Namespaces { new, .. } if new.iter().map(|k| k.name()).eq(["cgroup"])),
    );
    let proc_mount = find(
        "proc mount",
        &|e| matches!(&e.detail, Detail::Mount { fstype, .. } if fstype == "proc"),
    );
    let pivot = find(
        "pivot_root",
        &|e| matches!(&e.detail, Detail::PivotRoot { result, .. } if result.ret == 0),
    );
    let mask = find("masked path", &|e| {
        matches!(&e.detail, Detail::Mount { source, target, .. }
            if source == "/dev/null" && target.starts_with("/proc/"))
    });
    let exec = find(
        "the command",
        &|e| matches!(&e.detail, Detail::Exec { argv, result, .. } if argv == &["echo", "hi"] && result.ret == 0),
    );
    let pid1 = events[exec].tgid;
    let exit = find("its exit", &|e| {
        e.tgid == pid1
            && matches!(
                e.detail,
                Detail::Exit {
                    exit_code: Some(0),
                    ..
                }
            )
    });
    let cleanup = find(
        "cleanup unmount",
        &|e| matches!(&e.detail, Detail::Umount { target, .. } if target.ends_with("/merged")),
    );
    assert!(
        overlay < ns && veth < ns,
        "image and network before the clone"
    );
    assert!(ns < cgroupns && cgroupns < proc_mount);
    assert!(proc_mount < pivot && pivot < mask && mask < exec && exec < exit && exit < cleanup);
    // The container's processes carry its namespaces; the runtime's parent does not.
    assert_ne!(events[exec].mnt_ns, events[overlay].mnt_ns);
    // The cloned child sets the container up itself (this run has no other thread when it
    // clones) and becomes the command: no re-exec of the runtime in between.
    let Detail::Namespaces { target_pid, .. } = events[ns].detail else {
        unreachable!("found as a namespaces event")
    };
    assert_eq!(target_pid, pid1, "the init becomes the command (PID 1)");
    assert_eq!(
        events[cgroupns].tgid, pid1,
        "the init makes its cgroup namespace"
    );
    assert!(
        !events.iter().any(|e| matches!(&e.detail,
            Detail::Exec { argv, .. } if argv.get(1).is_some_and(|a| a == "__init"))),
        "no re-exec"
    );
}

/// The init set up by the cloned copy of `tracer run` (no other thread at the clone) and by
/// the re-executed `tracer __init` (the path where other threads run, forced here with
/// `TRACER_INIT_EXEC`) give the same container: hostname, PID 1, capabilities, filter,
/// signals, descriptors, `lo` and `eth0`, exit codes, the failures' messages. Traced, the
/// re-exec is an event of the launch.
#[test]
fn root_run_cloned_and_re_executed_init_agree() {
    let _g = shared();
    let probe = "hostname; cat /proc/1/comm; \
        grep -E '^(CapEff|NoNewPrivs|Seccomp|SigBlk|SigIgn|SigCgt|THP_enabled):' /proc/self/status; \
        ls /proc/self/fd | wc -l; ip -o link show lo | grep -c LOWER_UP; \
        ip -o -4 addr show eth0 | grep -c 10.89.0; exit 3";
    let outcome = |exec: bool, args: &[&str]| {
        let mut cmd = Command::new(&*TRACER);
        cmd.arg("run").args(args).stdin(Stdio::null());
        if exec {
            cmd.env("TRACER_INIT_EXEC", "1");
        }
        let out = cmd.output().expect("spawning tracer run");
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let agree = |args: &[&str]| {
        let cloned = outcome(false, args);
        assert_eq!(cloned, outcome(true, args), "{args:?}");
        cloned
    };
    let shell = ["--hostname", "same", "--", "sh", "-c", probe];
    for net in [
        &[][..],
        &["--net", "none"],
        &["--net", "none", "--userns", "200000:65536"],
    ] {
        let (code, stdout, _) = agree(&[&["-q", "--no-trace"][..], net, &shell].concat());
        assert_eq!(code, Some(3), "{stdout}");
        assert!(stdout.starts_with("same\nsh\n"), "{stdout}");
        // The tracer runs without transparent huge pages; its container as the host has them.
        let ours = fs::read_to_string("/proc/self/status").unwrap();
        let thp = |s: &str| {
            s.lines()
                .find(|l| l.starts_with("THP_enabled:"))
                .map(str::to_owned)
        };
        // On here: else the container's setting could not tell a restore from none.
        assert_eq!(thp(&ours).as_deref(), Some("THP_enabled:\t1"));
        assert_eq!(thp(&stdout), thp(&ours), "{stdout}");
    }
    for (args, want) in [
        (&["--", "no-such-command"][..], 127),
        (&["-w", "/no/such/dir", "--", "true"], 125),
    ] {
        let (code, _, stderr) = agree(&[&["-q", "--no-trace", "--net", "none"][..], args].concat());
        assert_eq!(code, Some(want), "{stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("run.jsonl");
    let mut cmd = Command::new(&*TRACER);
    cmd.args(["run", "-q", "--net", "none", "--jsonl"])
        .arg(&jsonl)
        .args(["--", "true"])
        .env("TRACER_INIT_EXEC", "1");
    assert!(cmd.status().unwrap().success());
    let events = fs::read_to_string(&jsonl).unwrap();
    assert!(
        events.contains(r#""argv":["tracer","__init""#),
        "the re-exec is traced"
    );
}

/// A bundle made by `runc spec` on a busybox-static rootfs: `tracer run --bundle` prints
/// exactly what `runc run` prints on it.
#[test]
fn root_run_bundle_runs_like_runc() {
    let _g = shared();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy("/usr/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "echo", "hostname", "id", "grep", "cat", "wc", "ls", "touch", "head",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    let st = Command::new("runc")
        .arg("spec")
        .current_dir(dir.path())
        .status()
        .expect("runc (cargo xtask setup installs it)");
    assert!(st.success());
    let config = dir.path().join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!([
        "sh",
        "-c",
        "echo hi; hostname; id -u; grep -E 'CapEff|NoNewPrivs' /proc/self/status; ulimit -n; \
         ls /sys/class/net; cat /proc/timer_list | wc -c; touch /x 2>&1 | head -1; echo pid=$$"
    ]);
    fs::write(&config, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    let runc = Command::new("runc")
        .args(["run", &format!("trc-cmp-{}", std::process::id())])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(runc.status.success(), "{}", text(&runc.stderr));
    let ours = run(&["-q", "--bundle", dir.path().to_str().unwrap()]);
    assert!(ours.status.success(), "{}", text(&ours.stderr));
    assert_eq!(text(&ours.stdout), text(&runc.stdout));
    assert!(
        text(&runc.stdout).starts_with("hi\nrunc\n0\n"),
        "{}",
        text(&runc.stdout)
    );
    // Fields the runtime does not apply are named, not silently ignored.
    assert!(text(&ours.stderr).contains("bundle field not applied: mount /sys/fs/cgroup"));
}

#[test]
fn root_run_bad_bundle_is_one_line_and_leaves_nothing() {
    let _g = exclusive();
    warm_up();
    let before = snapshot();
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("rootfs")).unwrap();
    fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    let out = run(&["-q", "--bundle", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("config.json"), "{stderr}");
    assert_eq!(snapshot(), before);
}

/// Makes an OCI image layout with umoci: busybox and /etc files in a first layer, a second
/// layer that deletes one file (a whiteout) and appends to another, and a config.
fn umoci_image(dir: &std::path::Path) -> String {
    let layout = dir.join("img");
    let bundle = dir.join("unpacked");
    let umoci = |args: &[&str]| {
        let out = Command::new("umoci")
            .args(args)
            .output()
            .expect("umoci (cargo xtask setup installs it)");
        assert!(
            out.status.success(),
            "umoci {args:?}: {}",
            text(&out.stderr)
        );
    };
    let image = format!("{}:v1", layout.display());
    let b = bundle.to_str().unwrap();
    umoci(&["init", "--layout", layout.to_str().unwrap()]);
    umoci(&["new", "--image", &image]);
    umoci(&["unpack", "--image", &image, b]);
    let rootfs = bundle.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::copy("/usr/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for a in ["sh", "cat", "ls", "echo", "pwd"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    fs::write(rootfs.join("etc/motd"), "layer one\n").unwrap();
    fs::write(rootfs.join("etc/removed"), "gone\n").unwrap();
    umoci(&["repack", "--image", &image, b]);
    fs::remove_dir_all(&bundle).unwrap();
    umoci(&["unpack", "--image", &image, b]);
    fs::remove_file(bundle.join("rootfs/etc/removed")).unwrap();
    fs::write(bundle.join("rootfs/etc/motd"), "layer one\nlayer two\n").unwrap();
    umoci(&["repack", "--image", &image, b]);
    umoci(&[
        "config",
        "--image",
        &image,
        "--config.cmd",
        "sh",
        "--config.cmd",
        "-c",
        "--config.cmd",
        "cat /etc/motd; ls /etc; echo cwd=$(pwd) GREETING=$GREETING",
        "--config.workingdir",
        "/etc",
        "--config.env",
        "GREETING=hello",
    ]);
    image
}

#[test]
fn root_run_oci_image_layout() {
    let _g = shared();
    let dir = tempfile::tempdir().unwrap();
    let image = umoci_image(dir.path());
    let out = run(&["-q", "--net", "none", "--image", &image]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "layer one\nlayer two\nmotd\ncwd=/etc GREETING=hello\n",
        "both layers stacked, the whiteout applied, the image config honoured"
    );
    // A command given replaces the image's.
    let out = run(&[
        "-q", "--net", "none", "--image", &image, "--", "echo", "mine",
    ]);
    assert_eq!(text(&out.stdout), "mine\n");
}

#[test]
fn root_run_unknown_image_tag_is_one_line_and_leaves_nothing() {
    let _g = exclusive();
    warm_up();
    let dir = tempfile::tempdir().unwrap();
    let image = umoci_image(dir.path());
    let before = snapshot();
    let bad = image.replace(":v1", ":nope");
    let out = run(&["-q", "--image", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("has no tag nope (tags: v1)"), "{stderr}");
    assert_eq!(snapshot(), before);
}

/// `--json`: one versioned document with the host, the hooks, the counters and the events.
#[test]
fn root_run_json_document() {
    use tracer::document::Document;
    let _g = shared();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trace.json");
    let out = run(&["-q", "--json", file.to_str().unwrap(), "--", "echo", "hi"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: Document = serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(
        (doc.format.as_str(), doc.version),
        ("tracer-trace", tracer::document::VERSION)
    );
    assert_ne!(doc.host.ns.mnt, 0, "the host's namespaces");
    assert_eq!(doc.containers.len(), 1, "{:#?}", doc.containers);
    let c = &doc.containers[0];
    assert_eq!((c.runtime.name(), c.exit_code), ("tracer", Some(0)));
    assert_eq!(c.command, ["echo", "hi"]);
    let phases: Vec<&str> = c.phases.iter().map(|p| p.kind.name()).collect();
    for p in [
        "image mount",
        "namespaces",
        "rootfs mounts",
        "pivot_root",
        "user command",
        "exit",
    ] {
        assert!(phases.contains(&p), "{p} in {phases:?}");
    }
    assert_eq!(
        doc.host.kernel,
        nix::sys::utsname::uname()
            .unwrap()
            .release()
            .to_str()
            .unwrap()
    );
    assert!(doc.host.hooks["exec"].is_some());
    assert!(
        doc.host.hooks.values().all(Option::is_some),
        "every kind observed here"
    );
    assert!(doc.events.iter().any(|e| matches!(&e.detail,
        tracer::event::Detail::Exec { argv, .. } if argv == &["echo", "hi"])));
    assert!(doc.counters.events["exec"] >= 1, "the command");
    assert!(doc.counters.lost.is_empty());

    // --explain: the timeline with a sentence per phase, then the lifecycle table.
    let out = run(&["--net", "none", "--explain", "--", "true"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("pivot_root() swaps the prepared directory"),
        "{stderr}"
    );
    assert!(
        stderr.contains("CONTAINER") && stderr.contains("LATENCY"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("ACTION"),
        "no raw stream with --explain: {stderr}"
    );
}

/// A `tracer run` killed with SIGKILL leaves its container and resources; `tracer cleanup`
/// releases all of them.
#[test]
fn root_run_crashed_tracer_is_cleaned_up() {
    let _g = exclusive();
    warm_up();
    let before = snapshot();
    let (mut child, pid1) = start(&["-q", "--", "sleep", "60"], "sleep");
    signal(child.id() as i32, nix::sys::signal::Signal::SIGKILL);
    child.wait().unwrap();
    assert!(
        fs::metadata(format!("/proc/{pid1}")).is_ok(),
        "the container outlives its tracer"
    );
    assert_ne!(snapshot(), before, "the crash left state behind");
    let out = Command::new(&*TRACER).arg("cleanup").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).trim(),
        "tracer: cleaned up 1 container(s)"
    );
    assert_eq!(snapshot(), before);
    // Dead: gone, or a zombie until its new parent (after the crash) reaps it.
    let state = fs::read_to_string(format!("/proc/{pid1}/stat")).unwrap_or_default();
    let running = state
        .rsplit_once(')')
        .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'));
    assert!(!running, "the container still runs: {state}");
}

#[test]
fn root_run_without_root_is_one_line() {
    let _g = shared();
    let out = as_nobody(&["run", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("tracer: error: tracer run needs root"),
        "{stderr}"
    );
}
