//! How operators deploy the tracer. Root: its image (`scripts/build-image.sh`, what
//! `cargo xtask image` runs) in a Docker container with the host's PID namespace traces a
//! `docker run` on the host with the same containers and phases as a tracer on the host, and
//! puts no host process in a container. The Kubernetes DaemonSet is checked against the
//! Kubernetes schemas offline (kubernetes-validate), the systemd unit by systemd-analyze; a
//! watch restarted over its document says where the previous one ended.

use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use tracer::document::Document;
use tracer_integration::{
    services::{Docker, IMAGE},
    telemetry::venv_bin,
    Watch, TRACER,
};

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn root_tracer_in_a_container_sees_what_the_host_sees() {
    let _docker = Docker::up();
    let tag = "tracer-test-image:latest";
    ok(Command::new(repo("scripts/build-image.sh"))
        .arg(&*TRACER)
        .arg(tag));
    let dir = tempfile::tempdir().unwrap();
    let host_json = dir.path().join("host.json");
    let watch = Watch::start(&["--json", host_json.to_str().unwrap()]);
    let name = format!("tr-in-{}", std::process::id());
    // The flags of a tracer container here (root lacks CAP_SYS_RESOURCE: no --privileged).
    ok(Command::new("docker")
        .args([
            "run",
            "-d",
            "--name",
            &name,
            "--pid=host",
            "--cgroupns=host",
        ])
        .args(["--network", "host", "--security-opt", "seccomp=unconfined"])
        .args([
            "--cap-add",
            "SYS_ADMIN",
            "--cap-add",
            "NET_ADMIN",
            "--cap-add",
            "SYS_PTRACE",
        ])
        .args([
            "--cap-add",
            "IPC_LOCK",
            "--cap-add",
            "DAC_READ_SEARCH",
            "--cap-add",
            "SYSLOG",
        ])
        .args(["-v", "/sys:/sys", "-v"])
        .arg(format!("{}:/out", dir.path().display()))
        .args([tag, "watch", "--quiet", "--json", "/out/in.json"]));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let logs = Command::new("docker")
            .args(["logs", &name])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&logs.stderr).into_owned();
        if text.contains("tracer: ready") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tracer container never got ready:\n{text}"
        );
        thread::sleep(Duration::from_millis(200));
    }
    let id = ok(Command::new("docker").args(["run", "-d", IMAGE, "sh", "-c", "sleep 1; exit 3"]));
    ok(Command::new("docker").args(["wait", &id]));
    ok(Command::new("docker").args(["rm", &id]));
    ok(Command::new("docker").args(["stop", "-t", "20", &name]));
    let logs = Command::new("docker")
        .args(["logs", &name])
        .output()
        .unwrap();
    ok(Command::new("docker").args(["rm", &name]));
    let out = watch.stop();
    assert!(out.success, "{}", out.stderr);
    ok(Command::new("docker").args(["rmi", tag]));

    let read =
        |p: &Path| -> Document { serde_json::from_str(&fs::read_to_string(p).unwrap()).unwrap() };
    let (host, inside) = (read(&host_json), read(&dir.path().join("in.json")));
    assert_eq!(
        inside.host.ns,
        host.host.ns,
        "the host's namespaces, from its init: {}",
        String::from_utf8_lossy(&logs.stderr)
    );
    let find = |d: &Document| d.containers.iter().find(|c| c.id == id).cloned();
    let (h, i) = (
        find(&host).expect("the host saw it"),
        find(&inside).expect("the container saw it"),
    );
    let kinds =
        |c: &tracer::correlate::Container| c.phases.iter().map(|p| p.kind).collect::<Vec<_>>();
    assert_eq!(kinds(&i), kinds(&h), "the same phases");
    assert_eq!(i.exit_code, Some(3));
    assert_eq!(i.veths, h.veths);
    assert_eq!(i.rootfs, h.rootfs);
    let pids = |c: &tracer::correlate::Container| {
        let mut p: Vec<u32> = c.processes.iter().map(|p| p.pid).collect();
        p.sort_unstable();
        p
    };
    assert_eq!(pids(&i), pids(&h), "the same processes, no host one");
    // Every container it found, the host found too (it cannot see its own start).
    for c in &inside.containers {
        assert!(
            host.containers.iter().any(|h| h.id == c.id),
            "{} is no container",
            c.id
        );
    }
}

#[test]
fn deploy_manifests_are_valid() {
    let validate = venv_bin("kubernetes-validate");
    let daemonset = repo("deploy/kubernetes/daemonset.yaml");
    ok(Command::new(&validate).arg(&daemonset));
    // A wrong field is named.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = fs::read_to_string(&daemonset).unwrap();
    fs::write(&bad, text.replace("hostPID: true", "hostPID: \"yes\"")).unwrap();
    let out = Command::new(&validate).arg(&bad).output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("hostPID"), "{said}");
    // The unit, with the tracer where this build has it.
    let unit = fs::read_to_string(repo("deploy/systemd/tracer.service")).unwrap();
    let local = dir.path().join("tracer.service");
    fs::write(
        &local,
        unit.replace("/usr/local/bin/tracer", &TRACER.display().to_string()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&local)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    assert!(
        !said.contains("tracer.service:"),
        "no complaint about the unit: {said}"
    );
}

/// A watch killed and started again over the same `--json` (systemd's Restart=on-failure):
/// the old document is kept, and the new one says where it is and how it ended.
#[test]
fn root_a_restarted_watch_says_where_the_previous_ended() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("trace.json");
    let first = Watch::start(&["--json", json.to_str().unwrap()]);
    let status = Command::new(&*TRACER)
        .args(["run", "-q", "--", "true"])
        .status()
        .unwrap();
    assert!(status.success());
    thread::sleep(Duration::from_millis(1500));
    first.kill();
    let second = Watch::start(&["--json", json.to_str().unwrap()]);
    let out = second.stop();
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("previous watch's document was moved to"),
        "{}",
        out.stderr
    );
    let doc: Document = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    let previous = doc
        .previous
        .expect("the header names the previous document");
    assert!(previous.cut, "the first watch was killed");
    assert!(previous.events > 0 && previous.last_event_ns.is_some());
    let old = Command::new(&*TRACER)
        .arg("report")
        .arg(&previous.path)
        .output()
        .unwrap();
    assert!(old.status.success(), "the previous document reads");
    let new = Command::new(&*TRACER)
        .arg("report")
        .arg(&json)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&new.stderr);
    assert!(said.contains("this watch was restarted"), "{said}");
}
