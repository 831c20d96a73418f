//! Root only: why a container ended, with real Docker (its daemons started by the test when
//! not running, and stopped after). One killed by the OOM killer says so; one whose PID 1
//! ignores SIGTERM, stopped by `docker stop`, names the SIGKILL's sender.

use std::{
    fs,
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use tracer::document::Document;
use tracer_integration::{
    services::{Docker, IMAGE},
    Watch, TRACER,
};

fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

#[test]
fn root_docker_oom_kill_and_stop_sender() {
    let _docker = Docker::up();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("trace.json");
    let watch = Watch::start(&["--json", json.to_str().unwrap()]);
    let pid = std::process::id();
    let (oom, stop) = (format!("tr-oom-{pid}"), format!("tr-stop-{pid}"));
    // 64 MB held by the shell itself (its init) in 8 MB without swap.
    let (ok, _) = docker(&[
        "run",
        "--name",
        &oom,
        "--memory",
        "8m",
        "--memory-swap",
        "8m",
        IMAGE,
        "sh",
        "-c",
        "a=$(head -c 64000000 /dev/zero | tr '\\0' x); echo ${#a}",
    ]);
    assert!(!ok, "the container outgrew its memory");
    let (_, killed) = docker(&["inspect", "-f", "{{.State.OOMKilled}} {{.Id}}", &oom]);
    let (oom_killed, oom_id) = killed.split_once(' ').unwrap();
    assert_eq!(oom_killed, "true", "docker saw the OOM kill too");
    let (ok, stop_id) = docker(&[
        "run",
        "-d",
        "--name",
        &stop,
        IMAGE,
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 1; done",
    ]);
    assert!(ok);
    thread::sleep(Duration::from_secs(1));
    assert!(docker(&["stop", "-t", "1", &stop]).0);
    for name in [&oom, &stop] {
        docker(&["rm", name]);
    }
    let out = watch.stop();
    assert!(out.success, "{}", out.stderr);
    let doc: Document = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    let find = |id: &str| {
        doc.containers
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("{id} not found"))
    };
    let c = find(oom_id);
    assert!(c.oom_killed, "{c:#?}");
    assert_eq!(c.signal, Some(9));
    let c = find(&stop_id);
    let sender = c.killed_by.as_ref().expect("the SIGKILL's sender");
    assert_eq!(sender.signal, 9);
    // Docker's shim kills through `runc kill`.
    assert!(
        sender.comm.starts_with("runc") || sender.comm.starts_with("containerd-shim"),
        "{sender:?}"
    );
    assert!(!c.oom_killed);

    // Both in the table's exit column and in the timeline.
    let report = |args: &[&str]| {
        let out = Command::new(&*TRACER)
            .arg("report")
            .args(args)
            .arg(&json)
            .env("COLUMNS", "200")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let table = report(&["--format", "table"]);
    assert!(table.contains("OOM"), "{table}");
    assert!(table.contains(&sender.comm[..4]), "{table}");
    let timeline = report(&["--format", "timeline", "--explain"]);
    assert!(timeline.contains("chosen by the OOM killer"), "{timeline}");
    assert!(
        timeline.contains(&format!("sent by {}", sender.comm)),
        "{timeline}"
    );
}
