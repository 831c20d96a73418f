//! The recorded traces in `fixtures/` (made by `scripts/record-fixtures.sh` on real Docker,
//! podman, runc, crun and `tracer run`) read back as the containers that were there: ids,
//! runtimes, exit codes and the phases in order. No root needed.

use std::path::Path;

use tracer::{correlate::Container, render::report};

fn containers(name: &str) -> Vec<Container> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(format!("{name}.json"));
    let opts = report::ReportOptions {
        format: report::Format::Table,
        explain: false,
        all: false,
        color: false,
    };
    let summary = report::report_path(&path, &opts, &mut std::io::sink()).unwrap();
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    summary.containers
}

fn only(name: &str) -> Container {
    let cs = containers(name);
    assert_eq!(
        cs.len(),
        1,
        "{name}: exactly one container, got {:?}",
        cs.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
    let c = cs.into_iter().next().unwrap();
    // The recording script's own processes (grep waiting for the tracer, sleeps) are host
    // activity, never part of the container.
    for p in &c.processes {
        assert!(
            !p.argv
                .iter()
                .any(|a| a == "ready:" || a == "0.05" || a == "0.5"),
            "{name}: host process {p:?} taken for the container's"
        );
    }
    c
}

/// A runtime run by hand on a bundle: no engine, so no image, network, shim or start.
const PLAIN_RUNTIME: [&str; 7] = [
    "runtime init",
    "namespaces",
    "rootfs mounts",
    "pivot_root",
    "mask paths",
    "user command",
    "exit",
];

fn names(kinds: &[tracer::event::NsKind]) -> Vec<&'static str> {
    kinds.iter().map(|k| k.name()).collect()
}

fn phases(c: &Container) -> Vec<&'static str> {
    c.phases.iter().map(|p| p.kind.name()).collect()
}

fn assert_ordered(c: &Container) {
    assert!(
        c.phases.windows(2).all(|w| w[0].start_ns <= w[1].start_ns),
        "phases in time order"
    );
    assert!(c
        .phases
        .iter()
        .all(|p| p.end_ns >= p.start_ns && p.events > 0));
    assert!(c.started_ns.unwrap() > c.created_ns);
    assert!(c.exited_ns.unwrap() >= c.started_ns.unwrap());
}

#[test]
fn docker_run_rm() {
    let c = only("docker-run");
    assert_eq!(
        c.id,
        "c468aa9aa8fc0a21afadb17947872fdc78bfd612f3b64f3440ec48c033c2c924"
    );
    assert_eq!(c.runtime_label(), "docker/runc");
    assert_eq!(c.command, ["echo", "hi"]);
    assert_eq!(c.exit_code, Some(0));
    assert_eq!(
        phases(&c),
        [
            "image mount",
            "network",
            "shim start",
            "runtime init",
            "namespaces",
            "rootfs mounts",
            "pivot_root",
            "mask paths",
            "start",
            "user command",
            "exit",
            "delete",
            "unmount",
            "network cleanup"
        ]
    );
    assert_eq!(
        names(&c.new_namespaces),
        ["uts", "ipc", "mnt", "pid", "net"]
    );
    assert_eq!(c.veths, ["veth73fcf9c", "veth2bd96ed"]);
    // runc's helpers are the container's, by name as they renamed themselves.
    for comm in [
        "containerd-shim",
        "runc:[0:PARENT]",
        "runc:[1:CHILD]",
        "runc:[2:INIT]",
    ] {
        assert!(
            c.processes
                .iter()
                .any(|p| p.comms.iter().any(|x| x == comm)),
            "{comm} attributed"
        );
    }
    // The netns bind mount names the init's pid: part of the network phase.
    let net = c
        .phases
        .iter()
        .find(|p| p.kind.name() == "network")
        .unwrap();
    assert!(net.events >= 3, "veth, libnetwork-setkey, netns bind mount");
    assert_ordered(&c);
}

#[test]
fn docker_run_detached_exec_stop() {
    let c = only("docker-exec");
    assert_eq!(
        c.id,
        "c1c327a90ed81b15116538a269cfd809722eb4b9741a210241a4d795c1558b05"
    );
    assert_eq!(c.command, ["sleep", "60"]);
    // PID 1 ignores SIGTERM: docker stop -t 1 ends with SIGKILL.
    assert_eq!((c.exit_code, c.signal), (None, Some(9)));
    assert_eq!(
        phases(&c),
        [
            "image mount",
            "network",
            "shim start",
            "runtime init",
            "namespaces",
            "rootfs mounts",
            "pivot_root",
            "mask paths",
            "start",
            "user command",
            "exec",
            "kill",
            "exit",
            "delete",
            "unmount",
            "network cleanup"
        ]
    );
    let exec = c.phases.iter().find(|p| p.kind.name() == "exec").unwrap();
    assert!(exec.events >= 3, "runc exec, setns, echo: {exec:?}");
    assert!(c
        .processes
        .iter()
        .any(|p| p.argv == ["echo", "inside"] && p.exit_code == Some(0)));
    assert_ordered(&c);
}

#[test]
fn plain_runc_run() {
    let c = only("runc");
    assert_eq!(c.id, "fx-runc");
    assert_eq!(c.runtime_label(), "runc");
    assert_eq!(c.exit_code, Some(0));
    assert_eq!(phases(&c), PLAIN_RUNTIME);
    assert_ordered(&c);
}

#[test]
fn crun_run_with_clone() {
    let c = only("crun");
    assert_eq!(c.id, "fx-crun");
    assert_eq!(c.runtime_label(), "crun");
    assert_eq!(c.exit_code, Some(0));
    let ns = c
        .phases
        .iter()
        .find(|p| p.kind.name() == "namespaces")
        .unwrap();
    assert!(ns.key.contains("clone"), "crun clones: {}", ns.key);
    assert_eq!(phases(&c), PLAIN_RUNTIME);
    assert_ordered(&c);
}

#[test]
fn podman_run_rm() {
    let c = only("podman");
    assert_eq!(
        c.id,
        "a1488cc63a66b97819452a8297f7c8b0e8f88f48b6a10cef82b7ca3047965338"
    );
    assert_eq!(c.runtime_label(), "podman/runc");
    assert_eq!(c.name.as_deref(), Some("elegant_mcclintock"));
    assert_eq!(c.exit_code, Some(0));
    assert_eq!(
        phases(&c),
        [
            "network",
            "image mount",
            "shim start",
            "runtime init",
            "namespaces",
            "rootfs mounts",
            "pivot_root",
            "mask paths",
            "start",
            "user command",
            "exit",
            "network cleanup",
            "delete",
            "unmount"
        ]
    );
    // podman made the netns before runc; runc:[1:CHILD] joins it and unshares the rest.
    assert_eq!(names(&c.new_namespaces), ["uts", "ipc", "mnt", "pid"]);
    assert_ne!(c.ns.net, 0);
    assert_ordered(&c);
}

#[test]
fn built_in_runtime() {
    let c = only("tracer-run");
    assert_eq!(c.id, "03dc7d77b7e6");
    assert_eq!(c.name.as_deref(), Some("fx-tracer"));
    assert_eq!(c.runtime_label(), "tracer");
    assert_eq!(c.exit_code, Some(0));
    assert_eq!(
        phases(&c),
        [
            "image mount",
            "network",
            "namespaces",
            "runtime init",
            "rootfs mounts",
            "pivot_root",
            "mask paths",
            "user command",
            "exit",
            "unmount"
        ]
    );
    assert_eq!(c.veths, ["tv03dc7d77", "tp03dc7d77"]);
    assert!(
        !c.processes
            .iter()
            .any(|p| p.comms.iter().any(|x| x == "tokio-rt-worker")),
        "thread names are not process names"
    );
    assert_ordered(&c);
}

/// Every fixture renders in every format, and `--explain` has a sentence per phase.
#[test]
fn every_format_renders() {
    for name in [
        "docker-run",
        "docker-exec",
        "runc",
        "crun",
        "podman",
        "tracer-run",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures")
            .join(format!("{name}.json"));
        for format in [
            report::Format::Table,
            report::Format::Timeline,
            report::Format::Json,
            report::Format::Chrome,
        ] {
            let mut out = Vec::new();
            let opts = report::ReportOptions {
                format,
                explain: true,
                all: false,
                color: false,
            };
            report::report_path(&path, &opts, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            match format {
                report::Format::Chrome => {
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    let evs = v["traceEvents"].as_array().unwrap();
                    let slices = evs.iter().filter(|e| e["ph"] == "X").count();
                    let phases = containers(name)[0].phases.len();
                    assert_eq!(slices, phases, "{name}: a slice per phase");
                    assert!(evs.iter().any(|e| e["ph"] == "i"), "instants");
                    assert!(evs.iter().any(|e| e["ph"] == "M"), "track names");
                }
                report::Format::Json => {
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(v["version"], tracer::document::VERSION);
                    assert_eq!(v["containers"].as_array().unwrap().len(), 1);
                }
                report::Format::Timeline => {
                    let c = &containers(name)[0];
                    for p in &c.phases {
                        let sentence = tracer::render::timeline::sentence(c, p);
                        assert!(text.contains(&sentence[..40]), "{name}: {sentence}");
                    }
                }
                report::Format::Table => {
                    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
                }
            }
        }
    }
}
