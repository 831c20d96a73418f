//! Root only (it makes an unprivileged user, `tracer-rootless`, once): rootless podman as that
//! user, with `--network none` (slirp4netns needs `/dev/net/tun`, root-only here) and runc
//! (crun refuses this host's hybrid cgroups rootless). The container is found with its id,
//! its user namespace (made by podman's pause process while traced) and the maps shadow's
//! newuidmap wrote for it: container root is the user's own uid on the host. And Docker with
//! `--userns-remap` (a second dockerd the test starts and stops): runc's user namespace and
//! the `dockremap` range as the container's root.

use std::fs;

use tracer::document::Document;
use tracer_integration::{
    services::{RootlessPodman, IMAGE, ROOTLESS_USER},
    Watch,
};

/// The trace document a watch wrote.
fn document(path: &std::path::Path) -> Document {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// Container `id` of the document: found, the engine's, and exited 0.
fn found<'d>(doc: &'d Document, id: &str, engine: &str) -> &'d tracer::correlate::Container {
    let c = doc
        .containers
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} not found"));
    assert_eq!(
        c.engine
            .as_ref()
            .map(tracer::correlate::ContainerEngine::name),
        Some(engine)
    );
    assert_eq!(c.exit_code, Some(0));
    c
}

#[test]
fn root_rootless_podman_container_and_its_mapping() {
    let podman = RootlessPodman::up();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("trace.json");
    let watch = Watch::start(&["--json", json.to_str().unwrap()]);
    let name = format!("tr-rootless-{}", std::process::id());
    let run = podman.podman(&[
        "run",
        "--name",
        &name,
        "--network",
        "none",
        "--runtime",
        "runc",
        IMAGE,
        "cat",
        "/proc/self/uid_map",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let inside_map = String::from_utf8(run.stdout).unwrap();
    let id = String::from_utf8(podman.podman(&["inspect", "-f", "{{.Id}}", &name]).stdout)
        .unwrap()
        .trim()
        .to_string();
    let user_ns = String::from_utf8(
        podman
            .podman(&["unshare", "readlink", "/proc/self/ns/user"])
            .stdout,
    )
    .unwrap();
    podman.podman(&["rm", &name]);
    let out = watch.stop();
    assert!(out.success, "{}", out.stderr);

    let doc = document(&json);
    let c = found(&doc, &id, "podman");
    assert_eq!(
        format!("user:[{}]", c.ns.user),
        user_ns.trim(),
        "the container's user namespace is the pause process's"
    );
    let uid = nix::unistd::User::from_name(ROOTLESS_USER)
        .unwrap()
        .unwrap()
        .uid;
    let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let map = c
        .security
        .uid_map
        .as_deref()
        .expect("the uid map written for it");
    assert_eq!(
        words(map),
        words(&inside_map),
        "the map as the container reads it"
    );
    assert_eq!(
        c.security.uid_mapping().as_deref(),
        Some(&*format!("0 → {uid} (1)"))
    );
    let table = tracer::render::lifecycle::table(
        std::slice::from_ref(c),
        &tracer::event::Clock::now(),
        100,
        false,
    );
    assert!(table.contains(&format!("uid 0→{uid}")), "{table}");
}

/// Docker with `--userns-remap=default` (a second dockerd beside any plain one): runc makes
/// the container's user namespace from the spec's mappings and writes its maps; the container
/// is Docker's, in its own user namespace, with the `dockremap` range as its root.
#[test]
fn root_docker_userns_remap_container_and_its_mapping() {
    let docker = tracer_integration::services::RemappedDocker::up();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("trace.json");
    let watch = Watch::start(&["--json", json.to_str().unwrap()]);
    let name = format!("tr-remap-{}", std::process::id());
    let run = docker.docker(&[
        "run",
        "--name",
        &name,
        "--network",
        "none",
        IMAGE,
        "cat",
        "/proc/self/uid_map",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let inside_map = String::from_utf8(run.stdout).unwrap();
    let id = String::from_utf8(docker.docker(&["inspect", "-f", "{{.Id}}", &name]).stdout)
        .unwrap()
        .trim()
        .to_string();
    docker.docker(&["rm", &name]);
    let out = watch.stop();
    assert!(out.success, "{}", out.stderr);
    let doc = document(&json);
    let c = found(&doc, &id, "docker");
    assert!(
        c.new_namespaces.contains(&tracer::event::NsKind::User),
        "{:?}",
        c.new_namespaces
    );
    let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let map = c
        .security
        .uid_map
        .as_deref()
        .expect("the uid map runc wrote");
    assert_eq!(words(map), words(&inside_map));
    let subuid = fs::read_to_string("/etc/subuid").unwrap();
    let start = subuid
        .lines()
        .find_map(|l| l.strip_prefix("dockremap:"))
        .and_then(|r| r.split(':').next())
        .expect("dockremap's range");
    assert_eq!(words(&inside_map)[..2], ["0", start]);
    assert!(
        c.security
            .uid_mapping()
            .is_some_and(|m| m.starts_with(&format!("0 → {start} "))),
        "{:?}",
        c.security
    );
}
