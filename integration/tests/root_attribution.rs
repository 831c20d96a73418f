//! Root only: containers started at the same instant by real engines and runtimes, each
//! checked against what the engine and the kernel say of it while it runs (its overlay, the
//! host end of its veth, its cgroup, its exit code). Every container must be found once, with
//! exactly its own facts and none of another's. Docker's daemons are started by the test
//! when they are not running, and stopped after.

use std::{
    collections::BTreeMap,
    fs,
    path::Path,
    process::{Command, Output, Stdio},
    thread,
    time::Duration,
};

use tracer::{correlate::Container, document::Document};
use tracer_integration::{
    services::{busybox_rootfs, Docker, Podman, IMAGE},
    Watch, TRACER,
};

/// What the engine and the kernel say of one running container.
#[derive(Debug, Clone)]
struct Truth {
    /// The id the trace must find it by (for `tracer run`, learnt from its cgroup).
    id: String,
    exit_code: i32,
    rootfs: Option<String>,
    /// The host end of its veth pair.
    veth: Option<String>,
    /// Its cgroup on the cgroup2 hierarchy.
    cgroup: String,
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text(&out)
}

/// The host end of the veth whose other end is `eth0` inside `pid`'s network namespace
/// (waiting for the container to have set it up).
fn host_veth(pid: u32) -> Option<String> {
    let mut inside = String::new();
    for _ in 0..100 {
        let out = Command::new("nsenter")
            .args([
                "-t",
                &pid.to_string(),
                "-n",
                "ip",
                "-o",
                "link",
                "show",
                "eth0",
            ])
            .output()
            .unwrap();
        if out.status.success() {
            inside = text(&out);
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    // `2: eth0@if9: ...`: 9 is the host end's index.
    let index = inside.split_once("@if")?.1.split(':').next()?.to_string();
    let host = run(Command::new("ip").args(["-o", "link"]));
    host.lines().find_map(|l| {
        let (i, rest) = l.split_once(": ")?;
        (i == index).then(|| rest.split(['@', ':']).next().unwrap_or("").to_string())
    })
}

/// `pid`'s cgroup: on the cgroup2 hierarchy (`0::/path`), or where a runtime left it at the
/// root there (runc on a hybrid host), on the v1 pids hierarchy.
fn cgroup2(pid: u32) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let line = |prefix: &str| {
        text.lines()
            .find_map(|l| l.split_once(prefix).map(|(_, p)| p.to_string()))
    };
    match line("0::") {
        Some(p) if p != "/" => p,
        _ => line(":pids:").unwrap_or_default(),
    }
}

fn mnt_ns(pid: u32) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&fs::metadata(format!("/proc/{pid}/ns/mnt")).unwrap())
}

fn engine_truth(engine: &str, name: &str, exit_code: i32) -> Truth {
    let inspect = |f: &str| run(Command::new(engine).args(["inspect", "-f", f, name]));
    let pid: u32 = inspect("{{.State.Pid}}").parse().unwrap();
    Truth {
        id: inspect("{{.Id}}"),
        exit_code,
        rootfs: Some(inspect("{{.GraphDriver.Data.MergedDir}}")),
        veth: host_veth(pid),
        cgroup: cgroup2(pid),
    }
}

/// The children of `pid` (the container init of a `tracer run` or `runc run`), made by any
/// of its threads (Go forks from whichever it is on).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .flat_map(|t| {
            fs::read_to_string(t.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Waits for `pid` to have a child in a mount namespace of its own (the container's
/// init), and returns it.
fn container_init(pid: u32) -> u32 {
    for _ in 0..100 {
        for c in children(pid) {
            if fs::metadata(format!("/proc/{c}/ns/mnt")).is_ok() && mnt_ns(c) != mnt_ns(pid) {
                return c;
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("process {pid} started no container");
}

/// A `runc spec` bundle on a busybox-static root running `sh -c SCRIPT`.
fn bundle(dir: &Path, script: &str) -> std::path::PathBuf {
    fs::create_dir_all(dir).unwrap();
    busybox_rootfs(dir);
    run(Command::new("runc").arg("spec").current_dir(dir));
    let config = dir.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["sh", "-c", script]);
    fs::write(&config, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    dir.to_path_buf()
}

/// Checks every container of the trace against the truth: found once, its own exit code,
/// overlay, veth and cgroup, and no other container's veth or overlay.
fn check(doc: &Document, truth: &[Truth]) -> (usize, usize) {
    let (mut checked, mut right) = (0, 0);
    let mut fact = |ok: bool, what: String| {
        checked += 1;
        if ok {
            right += 1;
        } else {
            eprintln!("WRONG: {what}");
        }
    };
    for t in truth {
        let found: Vec<&Container> = doc.containers.iter().filter(|c| c.id == t.id).collect();
        assert_eq!(found.len(), 1, "{} found {} times", t.id, found.len());
        let c = found[0];
        fact(
            c.exit_code == Some(t.exit_code),
            format!("{}: exit {:?}, not {}", t.id, c.exit_code, t.exit_code),
        );
        fact(
            c.rootfs == t.rootfs,
            format!("{}: rootfs {:?}, not {:?}", t.id, c.rootfs, t.rootfs),
        );
        match &t.veth {
            Some(v) => fact(
                c.veths.contains(v),
                format!("{}: veths {:?} lack {v}", t.id, c.veths),
            ),
            None => fact(c.veths.is_empty(), format!("{}: veths {:?}", t.id, c.veths)),
        }
        fact(
            c.cgroups.contains(&t.cgroup),
            format!("{}: cgroups {:?} lack {}", t.id, c.cgroups, t.cgroup),
        );
        for other in truth.iter().filter(|o| o.id != t.id) {
            if let Some(v) = &other.veth {
                fact(
                    !c.veths.contains(v),
                    format!("{} has {}'s veth", t.id, other.id),
                );
            }
        }
    }
    (checked, right)
}

/// A trace that got facts wrong is kept for a look (the test's own directory goes away).
fn keep_if_wrong(json: &Path, wrong: bool) {
    if wrong {
        let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "wrong-{}-{}.json",
            std::process::id(),
            thread::current().name().unwrap_or("test")
        ));
        if fs::copy(json, &kept).is_ok() {
            eprintln!("the trace is kept at {}", kept.display());
        }
    }
}

fn stop_and_read(watch: Watch, json: &Path) -> Document {
    let out = watch.stop();
    assert!(out.success, "{}", out.stderr);
    serde_json::from_str(&fs::read_to_string(json).unwrap()).unwrap()
}

/// 8 `docker run -d` (`sleep 6; exit N`), 3 `runc run` and 3 `tracer run` started at the
/// same instant.
#[test]
fn root_docker_runc_and_tracer_run_at_once() {
    let _docker = Docker::up();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("trace.json");
    let watch = Watch::start(&["--json", json.to_str().unwrap()]);
    let pid = std::process::id();
    let docker: Vec<(String, i32)> = (1..=8).map(|n| (format!("tr-par-{pid}-{n}"), n)).collect();
    let starts: Vec<_> = docker
        .iter()
        .map(|(name, n)| {
            let (name, n) = (name.clone(), *n);
            thread::spawn(move || {
                run(Command::new("docker")
                    .args(["run", "-d", "--name", &name, IMAGE, "sh", "-c"])
                    .arg(format!("sleep 6; exit {n}")));
            })
        })
        .collect();
    let runc: Vec<_> = (1..=3)
        .map(|n| {
            let b = bundle(
                &dir.path().join(format!("b{n}")),
                &format!("sleep 6; exit {}", 10 + n),
            );
            let id = format!("tr-runc-{pid}-{n}");
            let child = Command::new("runc")
                .args(["run", "--bundle", b.to_str().unwrap(), &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            (id, 10 + n, child)
        })
        .collect();
    let ours: Vec<_> = (1..=3)
        .map(|n| {
            let child = Command::new(&*TRACER)
                .args(["run", "-q", "--", "sh", "-c"])
                .arg(format!("sleep 6; exit {}", 20 + n))
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            (20 + n, child)
        })
        .collect();
    // The runtimes' containers first: they are up in milliseconds, dockerd's take longer.
    let mut truth = Vec::new();
    for (id, code, child) in &runc {
        let init = container_init(child.id());
        truth.push(Truth {
            id: id.clone(),
            exit_code: *code,
            rootfs: None,
            veth: None,
            cgroup: cgroup2(init),
        });
    }
    for (code, child) in &ours {
        let init = container_init(child.id());
        // The runtime moves its init into the cgroup just after cloning it.
        let mut cgroup = cgroup2(init);
        for _ in 0..100 {
            if cgroup.starts_with("/tracer/") {
                break;
            }
            thread::sleep(Duration::from_millis(20));
            cgroup = cgroup2(init);
        }
        let id = cgroup.rsplit('/').next().unwrap().to_string();
        truth.push(Truth {
            rootfs: Some(format!("/run/tracer/{id}/merged")),
            veth: host_veth(init),
            id,
            exit_code: *code,
            cgroup,
        });
    }
    for s in starts {
        s.join().unwrap();
    }
    truth.extend(
        docker
            .iter()
            .map(|(name, n)| engine_truth("docker", name, *n)),
    );
    for (_, _, mut child) in runc {
        child.wait().unwrap();
    }
    for (_, mut child) in ours {
        child.wait().unwrap();
    }
    for (name, _) in &docker {
        run(Command::new("docker").args(["wait", name]));
        run(Command::new("docker").args(["rm", name]));
    }
    let doc = stop_and_read(watch, &json);
    let (checked, right) = check(&doc, &truth);
    keep_if_wrong(&json, right != checked);
    assert_eq!(
        right, checked,
        "{right} of {checked} facts right (events lost: {:?})",
        doc.counters.lost
    );
    assert_eq!(
        doc.containers.len(),
        14,
        "every container once, nothing else"
    );
}

/// 5 `podman run -d` at once: the same checks (podman makes each container's netns first).
#[test]
fn root_podman_at_once() {
    let _podman = Podman::up();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("trace.json");
    let watch = Watch::start(&["--json", json.to_str().unwrap()]);
    let pid = std::process::id();
    let names: Vec<(String, i32)> = (1..=5).map(|n| (format!("tr-pod-{pid}-{n}"), n)).collect();
    let starts: Vec<_> = names
        .iter()
        .map(|(name, n)| {
            let (name, n) = (name.clone(), *n);
            thread::spawn(move || {
                run(Command::new("podman")
                    .args(["run", "-d", "--runtime", "runc", "--name", &name])
                    .args([
                        "--ulimit",
                        "nofile=20000:20000",
                        "--ulimit",
                        "nproc=32768:32768",
                    ])
                    .args([IMAGE, "sh", "-c"])
                    .arg(format!("sleep 6; exit {n}")));
            })
        })
        .collect();
    for s in starts {
        s.join().unwrap();
    }
    thread::sleep(Duration::from_millis(500));
    let truth: Vec<Truth> = names
        .iter()
        .map(|(name, n)| engine_truth("podman", name, *n))
        .collect();
    for (name, _) in &names {
        run(Command::new("podman").args(["wait", name]));
        run(Command::new("podman").args(["rm", name]));
    }
    let doc = stop_and_read(watch, &json);
    let (checked, right) = check(&doc, &truth);
    keep_if_wrong(&json, right != checked);
    assert_eq!(
        right, checked,
        "{right} of {checked} facts right (events lost: {:?})",
        doc.counters.lost
    );
    assert_eq!(doc.containers.len(), 5);
}

/// 40 docker containers over about half a minute, 4 in flight at a time.
#[test]
fn root_docker_churn() {
    let _docker = Docker::up();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("trace.json");
    let watch = Watch::start(&["--json", json.to_str().unwrap()]);
    let pid = std::process::id();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            thread::spawn(move || {
                let mut truth = Vec::new();
                for i in 0..10 {
                    let name = format!("tr-churn-{pid}-{w}-{i}");
                    let code = (w * 10 + i) % 100;
                    run(Command::new("docker")
                        .args(["run", "-d", "--name", &name, IMAGE, "sh", "-c"])
                        .arg(format!("sleep 1; exit {code}")));
                    truth.push(engine_truth("docker", &name, code));
                    run(Command::new("docker").args(["wait", &name]));
                    run(Command::new("docker").args(["rm", &name]));
                }
                truth
            })
        })
        .collect();
    let truth: Vec<Truth> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let doc = stop_and_read(watch, &json);
    let (checked, right) = check(&doc, &truth);
    keep_if_wrong(&json, right != checked);
    assert_eq!(
        right, checked,
        "{right} of {checked} facts right (events lost: {:?})",
        doc.counters.lost
    );
    let ids: BTreeMap<&str, usize> = doc.containers.iter().fold(BTreeMap::new(), |mut m, c| {
        *m.entry(c.id.as_str()).or_default() += 1;
        m
    });
    assert_eq!(ids.len(), 40);
    assert!(ids.values().all(|n| *n == 1));
}
