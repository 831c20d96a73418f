//! The recorded traces in `fixtures/` (made by `scripts/record-fixtures.sh` on real Docker,
//! podman, runc, crun and `tracer run`) read back as the containers that were there: ids,
//! runtimes, exit codes, the phases in order, and every fact with the evidence that ties it
//! to its container. No root needed.
//!
//! Recorded with the cgroup kinds and the veth moves (rtnetlink here): a daemon's veth is a
//! container's because one end moved into its network namespace, an overlay because the
//! runtime bound its merged directory as the root; nothing goes to a container on timing.

use std::path::Path;

use tracer::{
    correlate::{Container, Evidence, FactKind},
    render::report,
};

fn fixture_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(format!("{name}.json"))
}

fn fixture(name: &str) -> tracer::report::Summary {
    let path = fixture_path(name);
    let opts = report::ReportOptions {
        format: report::Format::Table,
        explain: false,
        all: false,
        color: false,
        json: false,
    };
    let summary = report::report_path(&path, &opts, &mut std::io::sink()).unwrap();
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    summary
}

fn containers(name: &str) -> Vec<Container> {
    fixture(name).containers
}

/// The facts of one kind, with their evidence.
fn facts(c: &Container, kind: FactKind) -> Vec<(String, Evidence)> {
    c.facts
        .iter()
        .filter(|f| f.fact == kind)
        .map(|f| (f.value.clone(), f.evidence))
        .collect()
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

/// A runtime run by hand on a bundle: no engine, so no image, network, shim or start; the
/// runtime makes the cgroup and removes it at the end.
const PLAIN_RUNTIME: [&str; 8] = [
    "runtime init",
    "namespaces",
    "rootfs mounts",
    "pivot_root",
    "mask paths",
    "user command",
    "exit",
    "delete",
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

/// Between the rootfs mounts and pivot_root, runc runs Docker's prestart hook
/// (`libnetwork-setkey`), which has dockerd configure the network from inside the namespace.
const DOCKER_RUN: [&str; 17] = [
    "image mount",
    "network",
    "shim start",
    "runtime init",
    "cgroup",
    "namespaces",
    "rootfs mounts",
    "hooks",
    "network configuration",
    "pivot_root",
    "mask paths",
    "start",
    "user command",
    "exit",
    "delete",
    "unmount",
    "network cleanup",
];

#[test]
fn docker_run_rm() {
    let s = fixture("docker-run");
    let c = only("docker-run");
    assert_eq!(
        c.id,
        "58ef8ace9b5588ef95c739fdc8044b668b9462febeecd6037b355dc4c7968726"
    );
    assert_eq!(c.runtime_label(), "docker/runc");
    assert_eq!(c.command, ["echo", "hi"]);
    assert_eq!(c.exit_code, Some(0));
    assert_eq!(phases(&c), DOCKER_RUN);
    assert_eq!(
        names(&c.new_namespaces),
        ["uts", "ipc", "mnt", "pid", "net"]
    );
    // The pair dockerd made: one end moved into the container's namespace.
    assert_eq!(c.veths, ["vethe1d71a8", "vetha27ec51"]);
    assert!(facts(&c, FactKind::Veth)
        .iter()
        .all(|(_, e)| *e == Evidence::Netns));
    // dockerd's overlay, bound by runc as the root.
    assert_eq!(
        facts(&c, FactKind::Rootfs),
        [(
            "/var/lib/docker/overlay2/ffa847660308d9fcb7470cc4c075aac354a830776b623be9aa5cb7beaf7e1fda/merged".into(),
            Evidence::RootfsPath
        )]
    );
    let image = c
        .phases
        .iter()
        .find(|p| p.kind.name() == "image mount")
        .unwrap();
    assert_eq!(image.evidence, Evidence::RootfsPath);
    assert!(
        image.events >= 3,
        "the init layer, its unmount, the root: {image:?}"
    );
    // runc makes /docker/<id> (and /docker, the parent, which is no fact of its).
    assert_eq!(c.cgroups, [format!("/docker/{}", c.id)]);
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
    // The veth before the namespaces; once they exist, libnetwork-setkey (a hook), then the
    // netns bind mount naming the init's pid and dockerd entering the namespace.
    let kind = |name: &str| c.phases.iter().find(|p| p.kind.name() == name).unwrap();
    assert!(kind("network").events >= 1);
    assert!(
        kind("hooks").key.contains("libnetwork-setkey"),
        "{:?}",
        kind("hooks")
    );
    let config = kind("network configuration");
    assert!(config.events >= 2, "{config:?}");
    assert!(config.start_ns > kind("namespaces").start_ns);
    assert_eq!(s.unattributed_total, 0, "everything names its container");
    assert_ordered(&c);
}

#[test]
fn docker_run_detached_exec_stop() {
    let c = only("docker-exec");
    assert_eq!(
        c.id,
        "88ba777312dab281b124aa66879c9ce6020aa4b9d188efca27d4e21d66ec678d"
    );
    assert_eq!(c.command, ["sleep", "60"]);
    // PID 1 ignores SIGTERM: docker stop -t 1 ends with SIGKILL.
    assert_eq!((c.exit_code, c.signal), (None, Some(9)));
    let mut expected: Vec<&str> = DOCKER_RUN.to_vec();
    expected.splice(13..13, ["exec", "kill"]);
    assert_eq!(phases(&c), expected);
    let exec = c.phases.iter().find(|p| p.kind.name() == "exec").unwrap();
    assert!(exec.events >= 3, "runc exec, setns, echo: {exec:?}");
    assert!(c
        .processes
        .iter()
        .any(|p| p.argv == ["echo", "inside"] && p.exit_code == Some(0)));
    assert_eq!(c.veths.len(), 2);
    assert!(c.rootfs.is_some());
    assert_ordered(&c);
}

/// Four `docker run -d` and two `runc run` started at the same instant: each container has
/// exactly its own exit code, overlay and veth, as Docker and ip(8) said while they ran
/// (`concurrent.truth.json`), and no fact of another's.
#[test]
fn concurrent_containers_each_get_their_own_facts() {
    #[derive(serde::Deserialize)]
    struct Truth {
        id: String,
        exit_code: i32,
        rootfs: String,
        veth: String,
    }
    let truth: Vec<Truth> = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/concurrent.truth.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let s = fixture("concurrent");
    assert_eq!(s.containers.len(), 6, "4 docker, 2 runc");
    for t in &truth {
        let c = s
            .containers
            .iter()
            .find(|c| c.id == t.id)
            .unwrap_or_else(|| panic!("{} not found", t.id));
        assert_eq!(c.exit_code, Some(t.exit_code), "{}", t.id);
        assert_eq!(c.rootfs.as_deref(), Some(t.rootfs.as_str()), "{}", t.id);
        assert!(
            c.veths.contains(&t.veth),
            "{}: {:?} lacks {}",
            t.id,
            c.veths,
            t.veth
        );
        assert_eq!(c.veths.len(), 2, "{}: one pair", t.id);
        assert_eq!(c.cgroups, [format!("/docker/{}", t.id)]);
        for other in truth.iter().filter(|o| o.id != t.id) {
            assert!(
                !c.veths.contains(&other.veth),
                "{} has {}'s veth",
                t.id,
                other.id
            );
        }
    }
    for id in ["fx-par-runc-1", "fx-par-runc-2"] {
        let c = s.containers.iter().find(|c| c.id == id).unwrap();
        assert_eq!(c.exit_code, Some(7));
        assert!(c.veths.is_empty() && c.rootfs.is_none(), "{id}: {c:?}");
    }
    assert_eq!(s.unattributed_total, 0);
}

#[test]
fn plain_runc_run() {
    let c = only("runc");
    assert_eq!(c.id, "fx-runc");
    assert_eq!(c.runtime_label(), "runc");
    assert_eq!(c.exit_code, Some(0));
    let mut expected = PLAIN_RUNTIME.to_vec();
    expected.insert(1, "cgroup");
    assert_eq!(phases(&c), expected);
    assert!(
        c.cgroups.iter().all(|p| p.ends_with("/fx-runc")),
        "{:?}",
        c.cgroups
    );
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
    // crun makes the cgroup once the container's process exists.
    let mut expected = PLAIN_RUNTIME.to_vec();
    expected.insert(2, "cgroup");
    assert_eq!(phases(&c), expected);
    assert_eq!(c.cgroups, ["/fx-crun"]);
    assert_ordered(&c);
}

#[test]
fn podman_run_rm() {
    let s = fixture("podman");
    let c = only("podman");
    assert_eq!(
        c.id,
        "5351f5ec0f00b057bf6b1a8dcfa2355fc449831e074fedb948dc872d8b282ff6"
    );
    assert_eq!(c.runtime_label(), "podman/runc");
    assert_eq!(c.name.as_deref(), Some("kind_jackson"));
    assert_eq!(c.exit_code, Some(0));
    assert_eq!(
        phases(&c),
        [
            "network",
            "engine setup",
            "image mount",
            "shim start",
            "cgroup",
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
    // netavark's veth was made with one end already in that namespace.
    assert_eq!(
        facts(&c, FactKind::Veth),
        [("veth93fe6de9".into(), Evidence::Netns)]
    );
    assert_eq!(
        c.cgroups,
        [format!("/libpod_parent/libpod-{}", c.id)],
        "conmon's cgroup is not the container's"
    );
    assert!(c.rootfs.as_deref().is_some_and(|r| r.ends_with("/merged")));
    // podman's check that overlay works here is its own business.
    assert_eq!(s.unattributed_total, 2);
    assert_ordered(&c);
}

#[test]
fn built_in_runtime() {
    let c = only("tracer-run");
    assert_eq!(c.id, "fa01db8cf44c");
    assert_eq!(c.name.as_deref(), Some("fx-tracer"));
    assert_eq!(c.runtime_label(), "tracer");
    assert_eq!(c.exit_code, Some(0));
    assert_eq!(
        phases(&c),
        [
            "image mount",
            "cgroup",
            "network",
            "namespaces",
            "runtime init",
            "rootfs mounts",
            "pivot_root",
            "mask paths",
            "user command",
            "exit",
            "delete",
            "unmount"
        ]
    );
    assert_eq!(c.veths, ["tvfa01db8c", "tpfa01db8c"]);
    assert_eq!(c.rootfs.as_deref(), Some("/run/tracer/fa01db8cf44c/merged"));
    assert_eq!(c.cgroups, ["/tracer/fa01db8cf44c"]);
    assert_eq!(
        facts(&c, FactKind::Veth),
        [
            ("tvfa01db8c".into(), Evidence::RuntimeNaming),
            ("tpfa01db8c".into(), Evidence::RuntimeNaming)
        ]
    );
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
        "concurrent",
    ] {
        let path = fixture_path(name);
        for format in [
            report::Format::Table,
            report::Format::Timeline,
            report::Format::Json,
            report::Format::Chrome,
            report::Format::Html,
            report::Format::Stats,
        ] {
            let mut out = Vec::new();
            let opts = report::ReportOptions {
                format,
                explain: true,
                all: false,
                color: false,
                json: false,
            };
            report::report_path(&path, &opts, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            match format {
                report::Format::Chrome => {
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    let evs = v["traceEvents"].as_array().unwrap();
                    let slices = evs.iter().filter(|e| e["ph"] == "X").count();
                    let phases: usize = containers(name).iter().map(|c| c.phases.len()).sum();
                    assert_eq!(slices, phases, "{name}: a slice per phase");
                    assert!(evs.iter().any(|e| e["ph"] == "i"), "instants");
                    assert!(evs.iter().any(|e| e["ph"] == "M"), "track names");
                }
                report::Format::Json => {
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(v["version"], tracer::document::VERSION);
                    let n = containers(name).len();
                    assert_eq!(v["containers"].as_array().unwrap().len(), n);
                }
                report::Format::Timeline => {
                    for c in &containers(name) {
                        for p in &c.phases {
                            let sentence = tracer::render::timeline::sentence(c, p);
                            assert!(text.contains(&sentence[..40]), "{name}: {sentence}");
                        }
                    }
                }
                report::Format::Table => {
                    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
                }
                report::Format::Stats => {
                    for c in &containers(name) {
                        assert!(text.contains(&c.runtime_label()), "{name}: {text}");
                    }
                }
                report::Format::Html => {
                    let phases: usize = containers(name).iter().map(|c| c.phases.len()).sum();
                    let procs: usize = containers(name).iter().map(|c| c.processes.len()).sum();
                    assert_eq!(
                        text.matches("<rect class=\"phase\"").count(),
                        phases,
                        "{name}"
                    );
                    assert_eq!(text.matches("<g class=\"lane\"").count(), procs, "{name}");
                    assert!(!text.contains("src=\"http") && !text.contains("href=\"http"));
                }
            }
        }
    }
}

/// The report of `name` with `filter`: the ids of the containers shown, and the kinds of the
/// events written.
fn filtered(name: &str, filter: &tracer::correlate::Filter) -> (Vec<String>, Vec<String>) {
    let path = fixture_path(name);
    let opts = report::ReportOptions {
        format: report::Format::Json,
        explain: false,
        all: false,
        color: false,
        json: false,
    };
    let mut out = Vec::new();
    let summary = report::report_paths(&[path], filter, &opts, &mut out).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let kinds = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("record").to_string())
        .collect();
    let mut ids: Vec<String> = summary
        .containers
        .iter()
        .map(|c| c.id[..12.min(c.id.len())].to_string())
        .collect();
    ids.sort();
    (ids, kinds)
}

/// Each filter flag of `tracer report`, on a recorded trace, with the containers expected.
#[test]
fn filters_choose_the_expected_containers() {
    use tracer::correlate::{filter::TimeArg, Filter};
    let s = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    let docker = s(&[
        "27c1cfb177d2",
        "4b241b842218",
        "56df47827875",
        "ed819d5eb172",
    ]);
    let runc = s(&["fx-par-runc-", "fx-par-runc-"]);
    let all: Vec<String> = runc.iter().chain(&docker).cloned().collect();
    let by = |containers: &[&str], engines: &[&str], runtimes: &[&str]| {
        Filter::new(s(containers), s(engines), s(runtimes), Vec::new())
    };
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(filtered("concurrent", &Filter::default()).0, sorted);
    assert_eq!(filtered("concurrent", &by(&[], &["docker"], &[])).0, docker);
    assert_eq!(
        filtered("concurrent", &by(&[], &["podman"], &[])).0,
        Vec::<String>::new()
    );
    assert_eq!(
        filtered("podman", &by(&[], &["podman"], &[])).0,
        s(&["5351f5ec0f00"])
    );
    assert_eq!(filtered("concurrent", &by(&[], &[], &["runc"])).0, sorted);
    assert_eq!(
        filtered("crun", &by(&[], &[], &["crun"])).0,
        s(&["fx-crun"])
    );
    assert_eq!(
        filtered("tracer-run", &by(&[], &[], &["runc"])).0,
        Vec::<String>::new()
    );
    assert_eq!(filtered("concurrent", &by(&["fx-par"], &[], &[])).0, runc);
    assert_eq!(
        filtered("concurrent", &by(&["27c1", "ed81"], &[], &[])).0,
        s(&["27c1cfb177d2", "ed819d5eb172"])
    );
    // Several criteria: all must hold.
    assert_eq!(
        filtered("concurrent", &by(&["fx-par"], &["docker"], &[])).0,
        Vec::<String>::new()
    );

    // --kind: only those events are written; the containers are still worked out from all.
    let exec = Filter::new(
        Vec::new(),
        Vec::new(),
        Vec::new(),
        vec![tracer::event::EventKind::Exec],
    );
    let (ids, kinds) = filtered("concurrent", &exec);
    assert_eq!(ids, sorted);
    assert!(
        !kinds.is_empty() && kinds.iter().all(|k| k == "exec"),
        "{kinds:?}"
    );
    let events_of_docker = filtered("concurrent", &by(&[], &["docker"], &[])).1.len();
    assert!(events_of_docker < filtered("concurrent", &Filter::default()).1.len());

    // --since/--until: the containers alive at some point in between. The runc ones exit
    // first (at 2404.09 s of boot time), the docker ones are created last (from 2402.077 s).
    let doc: tracer::document::Document =
        serde_json::from_str(&std::fs::read_to_string(fixture_path("concurrent")).unwrap())
            .unwrap();
    let clock = tracer::event::Clock::from_offset(doc.host.boot_to_wall_ns);
    let rfc3339 = |boot_ns: u64| {
        let wall = clock.wall_ns(boot_ns);
        let t = chrono::DateTime::from_timestamp(
            i64::try_from(wall / 1_000_000_000).unwrap(),
            u32::try_from(wall % 1_000_000_000).unwrap(),
        )
        .unwrap();
        t.to_rfc3339().parse::<TimeArg>().unwrap()
    };
    let of_day = |boot_ns: u64| clock.time_of_day(boot_ns).parse::<TimeArg>().unwrap();
    let since = |t| Filter::default().between(Some(t), None);
    let until = |t| Filter::default().between(None, Some(t));
    assert_eq!(
        filtered("concurrent", &since(rfc3339(2_404_200_000_000))).0,
        docker
    );
    assert_eq!(
        filtered("concurrent", &since(of_day(2_404_200_000_000))).0,
        docker
    );
    assert_eq!(
        filtered("concurrent", &until(rfc3339(2_402_060_000_000))).0,
        runc
    );
    assert_eq!(
        filtered("concurrent", &until(of_day(2_402_060_000_000))).0,
        runc
    );
    let (_, kinds) = filtered(
        "concurrent",
        &Filter::default().between(
            Some(rfc3339(2_404_200_000_000)),
            Some(rfc3339(2_404_300_000_000)),
        ),
    );
    assert!(kinds.len() < filtered("concurrent", &Filter::default()).1.len());
}

/// `--compare` on the docker and runc fixtures names the phases only Docker has.
#[test]
fn compare_names_what_only_docker_does() {
    let one = |name: &str| containers(name).into_iter().next().unwrap();
    let (docker, runc) = (one("docker-run"), one("runc"));
    let only: Vec<&str> = tracer::render::compare::only_in(&docker, &runc)
        .iter()
        .map(|k| k.name())
        .collect();
    for phase in ["image mount", "shim start", "network"] {
        assert!(only.contains(&phase), "{only:?}");
    }
    assert!(tracer::render::compare::only_in(&runc, &docker).is_empty());
    let text = tracer::render::compare::compare(&docker, &runc);
    assert!(text.contains("only A"), "{text}");
    assert!(text.contains("start latency"), "{text}");
}

/// Phase statistics over 30 `tracer run` and 30 `runc run` (the runs fixture): 30 of each,
/// percentiles in order.
#[test]
fn stats_count_every_run_with_ordered_percentiles() {
    let groups = tracer::render::stats::groups(&containers("runs"));
    let labels: Vec<&str> = groups.iter().map(|g| g.runtime.as_str()).collect();
    assert_eq!(labels, ["runc", "tracer"]);
    for g in &groups {
        assert_eq!(g.containers, 30, "{}", g.runtime);
        let latency = g.start_latency.as_ref().unwrap();
        assert_eq!(latency.count, 30);
        for (phase, s) in g
            .phases
            .iter()
            .map(|(n, s)| (n.as_str(), s))
            .chain([("start latency", latency)])
        {
            assert!(
                s.p50_ns <= s.p90_ns && s.p90_ns <= s.p99_ns && s.p99_ns <= s.max_ns,
                "{} {phase}: {s:?}",
                g.runtime
            );
        }
        let names: Vec<&str> = g.phases.iter().map(|(n, _)| n.as_str()).collect();
        for phase in ["namespaces", "rootfs mounts", "pivot_root", "user command"] {
            assert!(names.contains(&phase), "{}: {names:?}", g.runtime);
        }
    }
}
