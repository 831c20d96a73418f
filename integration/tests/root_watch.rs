//! Root tests: the real programs loaded into this kernel, observing real processes.

use std::process::{Command, Stdio};

use tracer::event::Detail;
use tracer_integration::{as_nobody, exit_of, require_root, Watch, TRACER};

#[test]
fn root_exec_argv_result_and_exit_code() {
    let watch = Watch::start(&[]);
    let echo = Command::new("/bin/echo")
        .args(["a", "b", "c"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let echo_pid = echo.id();
    assert!(echo.wait_with_output().unwrap().status.success());
    let mut sh = Command::new("/bin/sh")
        .args(["-c", "exit 3"])
        .spawn()
        .unwrap();
    let sh_pid = sh.id();
    assert_eq!(sh.wait().unwrap().code(), Some(3));
    let out = watch.stop();
    assert!(out.success, "{}", out.stderr);

    let execs: Vec<_> = out
        .of_process(echo_pid)
        .filter_map(|e| match &e.detail {
            Detail::Exec {
                filename,
                argv,
                argv_truncated,
                result,
                ..
            } => Some((filename.clone(), argv.clone(), *argv_truncated, result.ret)),
            _ => None,
        })
        .collect();
    assert_eq!(
        execs,
        [(
            "/bin/echo".to_string(),
            vec!["/bin/echo".to_string(), "a".into(), "b".into(), "c".into()],
            false,
            0
        )]
    );
    let echo_exec = out
        .of_process(echo_pid)
        .find(|e| e.detail.kind_name() == "exec")
        .unwrap();
    assert_eq!(
        echo_exec.ppid,
        std::process::id(),
        "ppid is the test process"
    );
    assert_eq!(echo_exec.uid, 0);
    assert_ne!(echo_exec.cgroup_id, 0);
    let exits: Vec<_> = out.of_process(echo_pid).filter_map(exit_of).collect();
    assert_eq!(exits, [(Some(0), None)]);
    let exits: Vec<_> = out.of_process(sh_pid).filter_map(exit_of).collect();
    assert_eq!(exits, [(Some(3), None)]);
    // The fork of each child is seen from this process.
    assert!(out.events.iter().any(|e| e.tgid == std::process::id()
        && e.detail
            == Detail::Fork {
                child_pid: echo_pid
            }));
}

#[test]
fn root_failed_exec_is_shown_as_failed() {
    let watch = Watch::start(&[]);
    let missing = format!("/nonexistent-dir/tracer-missing-{}", std::process::id());
    let err = Command::new(&missing).spawn().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    let out = watch.stop();
    let failed: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::Exec {
                filename, result, ..
            } if *filename == missing => Some(result.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "one exec of {missing}");
    assert_eq!(failed[0].ret, -2);
    assert_eq!(failed[0].error.as_deref(), Some("ENOENT"));
}

#[test]
fn root_mount_in_private_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().to_str().unwrap().to_string();
    let watch = Watch::start(&[]);
    let script = format!("mount -t tmpfs -o size=1m tracer-test-src {target} && umount {target}");
    let status = Command::new("unshare")
        .args(["-m", "--propagation", "private", "/bin/sh", "-c", &script])
        .status()
        .unwrap();
    assert!(status.success());
    // mount(8) would retry other types on failure: make the failing call directly. It
    // fails, so it changes nothing on the host.
    let err = nix::mount::mount(
        Some("none"),
        dir.path(),
        Some("no-such-fs-type"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap_err();
    assert_eq!(err, nix::errno::Errno::ENODEV);
    let out = watch.stop();
    let mounts: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::Mount {
                fstype,
                source,
                target: t,
                result,
                ..
            } if *t == target => Some((fstype.as_str(), source.as_str(), result.ret)),
            _ => None,
        })
        .collect();
    assert_eq!(mounts.len(), 2, "{mounts:?}");
    assert_eq!(mounts[0], ("tmpfs", "tracer-test-src", 0));
    assert_eq!((mounts[1].0, mounts[1].1), ("no-such-fs-type", "none"));
    assert_eq!(mounts[1].2, -19, "ENODEV for an unknown fs type");
    let umounts: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::Umount {
                target: t, result, ..
            } if *t == target => Some(result.ret),
            _ => None,
        })
        .collect();
    assert_eq!(umounts, [0]);
}

#[test]
fn root_task_rename_is_seen() {
    let watch = Watch::start(&[]);
    let name = "trc-rename-ok";
    let tid = std::thread::spawn(move || {
        let cname = std::ffi::CString::new(name).unwrap();
        // SAFETY: PR_SET_NAME with a NUL-terminated string of at most 16 bytes.
        assert_eq!(unsafe { libc::prctl(libc::PR_SET_NAME, cname.as_ptr()) }, 0);
        nix::unistd::gettid().as_raw() as u32
    })
    .join()
    .unwrap();
    let out = watch.stop();
    let renames: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::Rename {
                target_pid,
                newcomm,
                ..
            } if newcomm == name => Some((e.pid, e.tgid, *target_pid)),
            _ => None,
        })
        .collect();
    assert_eq!(renames, [(tid, std::process::id(), tid)]);
}

/// 10,000 execs of /bin/true: exactly 10,000 exec events, none lost, default ring size.
#[test]
fn root_exec_storm_10000_nothing_lost() {
    const N: usize = 10_000;
    let watch = Watch::start(&[]);
    let storm = Command::new(env!("CARGO_BIN_EXE_exec-storm"))
        .args([N.to_string().as_str(), "/bin/true"])
        .output()
        .unwrap();
    assert!(storm.status.success());
    // The storm's pid is only known after spawn: its children's ppid identifies them.
    let out = watch.stop();
    let storm_pid = out
        .events
        .iter()
        .find_map(|e| match &e.detail {
            Detail::Exec { filename, .. } if filename.ends_with("/exec-storm") => Some(e.tgid),
            _ => None,
        })
        .expect("the storm's own exec");
    let trues = out
        .events
        .iter()
        .filter(|e| {
            e.ppid == storm_pid
                && matches!(&e.detail, Detail::Exec { filename, result, .. }
                    if filename == "/bin/true" && result.ret == 0)
        })
        .count();
    let (_, lost, malformed) = out.totals();
    eprintln!("{}", String::from_utf8_lossy(&storm.stdout));
    assert_eq!(trues, N, "exec events of /bin/true from the storm");
    assert_eq!(out.lost_of("exec"), 0);
    assert_eq!(lost, 0, "{}", out.stderr);
    assert_eq!(malformed, 0);
}

#[test]
fn root_not_root_gets_one_clear_line() {
    let out = as_nobody(&["watch", "--duration", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("tracer: error: tracer watch needs root"),
        "{stderr}"
    );
    assert!(stderr.contains("CAP_BPF"));
}

#[test]
fn root_bad_ring_size_is_refused() {
    require_root();
    let out = Command::new(&*TRACER)
        .args(["watch", "--ring-size", "5000", "--duration", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("ring buffer size 5000 is not a power of two"),
        "{stderr}"
    );
}

/// `--duration` stops on its own, with the summary, exit 0.
#[test]
fn root_duration_stops_cleanly() {
    require_root();
    let out = Command::new(&*TRACER)
        .args(["watch", "--quiet", "--duration", "0.5"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(" events in "), "{stderr}");
    assert!(stderr.contains("│ total"), "{stderr}");
}

/// The filters of `watch` and of `run`'s stream choose what JSON Lines hold: `--kind` the
/// kinds, `--container` one container's events (by name here) and none of another's.
#[test]
fn root_watch_and_run_filters() {
    let pid = std::process::id();
    let (a, b) = (format!("flt-a-{pid}"), format!("flt-b-{pid}"));
    let kinds = Watch::start(&["--kind", "exec,exit"]);
    let named = Watch::start(&["--container", &a]);
    let dir = tempfile::tempdir().unwrap();
    let run_jsonl = dir.path().join("run.jsonl");
    for name in [&a, &b] {
        let mut cmd = Command::new(&*TRACER);
        cmd.args(["run", "-q", "--name", name]);
        if name == &a {
            cmd.args(["--kind", "exec", "--jsonl"]).arg(&run_jsonl);
        }
        let status = cmd
            .args(["--", "/bin/echo", name])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let echoed = |out: &tracer_integration::Output, name: &str| {
        out.events.iter().any(|e| {
            matches!(&e.detail, Detail::Exec { argv, .. } if argv.last() == Some(&name.to_string()))
        })
    };
    let out = kinds.stop();
    assert!(out.success, "{}", out.stderr);
    assert!(echoed(&out, &a) && echoed(&out, &b));
    assert!(out
        .events
        .iter()
        .all(|e| matches!(e.detail, Detail::Exec { .. } | Detail::Exit { .. })));
    let out = named.stop();
    assert!(out.success, "{}", out.stderr);
    assert!(echoed(&out, &a), "{a}'s events are there");
    assert!(!echoed(&out, &b), "{b}'s are not");
    let text = std::fs::read_to_string(&run_jsonl).unwrap();
    let run: Vec<tracer::event::Event> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!run.is_empty() && run.iter().all(|e| matches!(e.detail, Detail::Exec { .. })));
}

/// Each syscall of a family whose tracepoints share one kernel program (exec, mount,
/// namespaces, security) is reported as itself: its kind, its hook and its result, from the
/// `syscall-families` helper's own namespaces. A prctl that sets no security is not
/// reported.
#[test]
fn root_each_syscall_of_a_family_is_reported_as_itself() {
    let watch = Watch::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_syscall-families"))
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let helper = child.id();
    let out = child.wait_with_output().unwrap();
    let events = watch.stop();
    assert!(events.success, "{}", events.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    // What each call returned (an fd the next one takes, a child's pid).
    let results: std::collections::HashMap<&str, i64> = stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(name, value)| Some((name, value.parse().ok()?)))
        .collect();
    let d = dir.path().display();
    let mut checked = 0;
    for line in stdout.lines() {
        let (name, value) = line.split_once(' ').unwrap();
        if value == "unsupported" {
            eprintln!("{name}: not in this kernel");
            continue;
        }
        let value: i64 = value.parse().unwrap();
        let fd = |call: &str| results.get(call).map(|&v| v as i32);
        let tp = |dir: &str, sys: &str| format!("tracepoint:syscalls:sys_{dir}_{sys}");
        let (kind, hooks) = match name {
            "execve" | "execveat" => ("exec", vec![tp("enter", name)]),
            "umount2" => ("umount", vec![tp("enter", "umount")]),
            // Where kprobes exist, unshare's namespaces are seen where they are made.
            "unshare" => (
                "namespaces",
                vec![tp("exit", name), "kretprobe:create_new_namespaces".into()],
            ),
            "setns" | "capset" | "prctl" | "seccomp" => (name, vec![tp("exit", name)]),
            _ => (name, vec![tp("enter", name)]),
        };
        // An exec is reported by the child that made it, whose pid is the line's value.
        let (tgid, result) = if kind == "exec" {
            (value as u32, 0)
        } else {
            (helper, value)
        };
        // The arguments as the helper passed them: a merged program reading one syscall's
        // record as another's would get them wrong.
        let arguments = |detail: &Detail| match detail {
            Detail::Exec {
                filename, execveat, ..
            } => filename == "/bin/true" && execveat.is_some() == (name == "execveat"),
            Detail::Mount { target, flags, .. } => {
                (target == "/" && flags & libc::MS_PRIVATE != 0) || *target == format!("{d}/root")
            }
            Detail::Fsopen { fstype, .. } => fstype == "tmpfs",
            Detail::Fsconfig { key, value, .. } => key == "size" && value.as_deref() == Some("1m"),
            Detail::Fsmount { fs_fd, .. } => Some(*fs_fd) == fd("fsopen"),
            Detail::MoveMount {
                from_dfd, to_path, ..
            } => Some(*from_dfd) == fd("fsmount") && *to_path == format!("{d}/new"),
            Detail::OpenTree { path, .. } => *path == format!("{d}/new"),
            Detail::MountSetattr { dfd, attr_set, .. } => {
                Some(*dfd) == fd("open_tree") && *attr_set == libc::MOUNT_ATTR_RDONLY
            }
            Detail::Umount { target, flags, .. } => {
                *target == format!("{d}/new") && *flags == libc::MNT_DETACH as u64
            }
            Detail::PivotRoot {
                new_root, put_old, ..
            } => *new_root == format!("{d}/root") && *put_old == format!("{d}/root/old"),
            Detail::Namespaces { flags, .. } => {
                let both = (libc::CLONE_NEWNS | libc::CLONE_NEWUTS) as u64;
                flags & both == both
            }
            Detail::Setns { nstype, .. } => *nstype == libc::CLONE_NEWUTS as u64,
            Detail::Capset { version, .. } => *version == 0x2008_0522,
            Detail::Prctl { option, arg, .. } => {
                *option == libc::PR_SET_NO_NEW_PRIVS as u32 && *arg == 1
            }
            Detail::Seccomp {
                operation,
                filter_len,
                ..
            } => *operation == libc::SECCOMP_SET_MODE_FILTER && *filter_len == 1,
            _ => false,
        };
        let seen = events.of_process(tgid).any(|e| {
            e.detail.kind_name() == kind
                && hooks.contains(&e.hook)
                && e.detail.result().is_some_and(|r| r.ret == result)
                && arguments(&e.detail)
        });
        assert!(
            seen,
            "{name} → {value}: no {kind} event by {hooks:?} with that result and the \
             helper's arguments in {:#?}",
            events.of_process(tgid).collect::<Vec<_>>()
        );
        checked += 1;
    }
    assert!(checked >= 10, "{stdout}");
    let prctls: Vec<u32> = events
        .of_process(helper)
        .filter_map(|e| match e.detail {
            Detail::Prctl { option, .. } => Some(option),
            _ => None,
        })
        .collect();
    assert_eq!(
        prctls,
        [libc::PR_SET_NO_NEW_PRIVS as u32],
        "only the security option is reported, not PR_SET_NAME"
    );
}
