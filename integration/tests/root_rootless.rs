//! Root only (it makes an unprivileged user, `tracer-rootless`, once): rootless podman as that
//! user, with `--network none` (slirp4netns needs `/dev/net/tun`, root-only here) and runc
//! (crun refuses this host's hybrid cgroups rootless). The container is found with its id,
//! its user namespace (made by podman's pause process while traced) and the maps shadow's
//! newuidmap wrote for it: container root is the user's own uid on the host. And Docker with
//! `--userns-remap` (a second dockerd the test starts and stops): runc's user namespace and
//! the `dockremap` range as the container's root. Rootless podman again with slirp4netns
//! (`/dev/net/tun` opened to the user while the test runs): its user-mode network is the
//! container's. And `unshare -r` run by the user: a sandbox of its own in the table.

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

/// The lifecycle table of container `c` alone.
fn table_of(c: &tracer::correlate::Container) -> String {
    tracer::render::lifecycle::table(
        std::slice::from_ref(c),
        &tracer::event::Clock::now(),
        100,
        false,
    )
}

/// The rootless user's uid on the host.
fn rootless_uid() -> nix::unistd::Uid {
    nix::unistd::User::from_name(ROOTLESS_USER)
        .unwrap()
        .unwrap()
        .uid
}

/// What one traced rootless `podman run` gave.
struct Traced {
    doc: Document,
    id: String,
    stdout: String,
    /// The user namespace of podman's pause process (`user:[N]`).
    user_ns: String,
}

/// `podman run --network NETWORK --runtime runc IMAGE CMD...` as the rootless user under a
/// watch writing a document; the container removed after.
fn traced_run(podman: &RootlessPodman, network: &str, cmd: &[&str]) -> Traced {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("trace.json");
    let watch = Watch::start(&["--json", json.to_str().unwrap()]);
    let name = format!("tr-rootless-{network}-{}", std::process::id());
    let mut args = vec![
        "run",
        "--name",
        &name,
        "--network",
        network,
        "--runtime",
        "runc",
        IMAGE,
    ];
    args.extend_from_slice(cmd);
    let run = podman.podman(&args);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = |out: std::process::Output| String::from_utf8(out.stdout).unwrap();
    let id = text(podman.podman(&["inspect", "-f", "{{.Id}}", &name]))
        .trim()
        .to_string();
    let user_ns = text(podman.podman(&["unshare", "readlink", "/proc/self/ns/user"]))
        .trim()
        .to_string();
    podman.podman(&["rm", &name]);
    let out = watch.stop();
    assert!(out.success, "{}", out.stderr);
    Traced {
        doc: document(&json),
        id,
        stdout: text(run),
        user_ns,
    }
}

#[test]
fn root_rootless_podman_container_and_its_mapping() {
    let podman = RootlessPodman::up();
    let t = traced_run(&podman, "none", &["cat", "/proc/self/uid_map"]);
    let (doc, inside_map) = (&t.doc, &t.stdout);
    let c = found(doc, &t.id, "podman");
    assert_eq!(
        format!("user:[{}]", c.ns.user),
        t.user_ns,
        "the container's user namespace is the pause process's"
    );
    let uid = rootless_uid();
    let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let map = c
        .security
        .uid_map
        .as_deref()
        .expect("the uid map written for it");
    assert_eq!(
        words(map),
        words(inside_map),
        "the map as the container reads it"
    );
    assert_eq!(
        c.security.uid_mapping().as_deref(),
        Some(&*format!("0 → {uid} (1)"))
    );
    let table = table_of(c);
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

/// `/dev/net/tun` opened to every user while it lives (slirp4netns opens it as the rootless
/// user; it is 0600 here), its mode put back after.
struct TunOpen(u32);

impl TunOpen {
    fn new() -> Self {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata("/dev/net/tun").unwrap().permissions().mode();
        fs::set_permissions("/dev/net/tun", fs::Permissions::from_mode(0o666)).unwrap();
        Self(mode & 0o7777)
    }
}

impl Drop for TunOpen {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = fs::set_permissions("/dev/net/tun", fs::Permissions::from_mode(self.0));
    }
}

/// Rootless podman with `--network slirp4netns`: the container is found with its mapping,
/// and slirp4netns, which enters its network namespace to make `tap0` there, is its network
/// (no veth), in the table and in the timeline's explanation.
#[test]
fn root_rootless_podman_with_slirp4netns() {
    let podman = RootlessPodman::up();
    let _tun = TunOpen::new();
    let t = traced_run(&podman, "slirp4netns", &["ls", "/sys/class/net"]);
    assert!(
        t.stdout.split_whitespace().any(|l| l == "tap0"),
        "{}",
        t.stdout
    );
    let (doc, id) = (&t.doc, &t.id);
    let c = found(doc, id, "podman");
    assert!(c.veths.is_empty(), "{:?}", c.veths);
    let helper: Vec<_> = c
        .facts
        .iter()
        .filter(|f| f.fact == tracer::correlate::FactKind::NetworkHelper)
        .map(|f| (f.value.as_str(), f.evidence))
        .collect();
    assert_eq!(
        helper,
        [("slirp4netns", tracer::correlate::Evidence::Netns)],
        "{:?}",
        c.facts
    );
    // Only this container's: no other container of the trace has it.
    assert!(doc.containers.iter().filter(|o| o.id != *id).all(|o| o
        .facts
        .iter()
        .all(|f| f.fact != tracer::correlate::FactKind::NetworkHelper)));
    let uid = rootless_uid();
    assert_eq!(
        c.security.uid_mapping().as_deref(),
        Some(&*format!("0 → {uid} (1)"))
    );
    let table = table_of(c);
    assert!(table.contains("slirp4netns"), "{table}");
    let timeline = tracer::render::timeline::render(std::slice::from_ref(c), true);
    assert!(
        timeline.contains("slirp4netns (a user-mode network"),
        "{timeline}"
    );
}

/// `unshare -r` run by an unprivileged user: not a container of any engine, yet a sandbox
/// of its own in the table, with its user namespace, its mapping (root inside is the user
/// outside), its command and its exit.
#[test]
fn root_rootless_unshare_is_a_sandbox_in_the_table() {
    let _podman = RootlessPodman::up();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("trace.json");
    let watch = Watch::start(&["--json", json.to_str().unwrap()]);
    let marker = format!("sandbox-{}", std::process::id());
    let script = "readlink /proc/self/ns/user; cat /proc/self/uid_map; exit 3";
    let out = std::process::Command::new("runuser")
        .args([
            "-u",
            ROOTLESS_USER,
            "--",
            "unshare",
            "-r",
            "sh",
            "-c",
            script,
            &marker,
        ])
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (user_ns, uid_map) = stdout.split_once('\n').unwrap();
    let watched = watch.stop();
    assert!(watched.success, "{}", watched.stderr);

    let doc = document(&json);
    let c = doc
        .containers
        .iter()
        .find(|c| c.command.last() == Some(&marker))
        .unwrap_or_else(|| panic!("no sandbox running {marker}"));
    assert_eq!(c.runtime.name(), "unshare");
    assert!(c.engine.is_none());
    assert!(c.id.starts_with("unshare-"), "{}", c.id);
    assert_eq!(c.found_by, "unshare argv");
    assert_eq!(format!("user:[{}]", c.ns.user), user_ns.trim());
    assert!(c.new_namespaces.contains(&tracer::event::NsKind::User));
    assert_eq!(c.exit_code, Some(3));
    let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        words(c.security.uid_map.as_deref().expect("its uid map")),
        words(uid_map)
    );
    let uid = rootless_uid();
    assert_eq!(
        c.security.uid_mapping().as_deref(),
        Some(&*format!("0 → {uid} (1)"))
    );
    let kinds: Vec<_> = c.phases.iter().map(|p| p.kind).collect();
    for k in [
        tracer::correlate::PhaseKind::RuntimeInit,
        tracer::correlate::PhaseKind::UserExec,
        tracer::correlate::PhaseKind::Exit,
    ] {
        assert!(kinds.contains(&k), "{k:?} in {kinds:?}");
    }
    let table = table_of(c);
    assert!(table.contains(&format!("uid 0→{uid}")), "{table}");
    assert!(table.contains("unshare"), "{table}");
}
