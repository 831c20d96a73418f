//! Root only: the security setup of a launch, with real Docker (its daemons started by the
//! test when not running, and stopped after) and the built-in runtime. Docker's default is
//! its 14 capabilities, the others dropped from the bounding set, and a seccomp filter;
//! `seccomp=unconfined` loads none; `no-new-privileges` sets no_new_privs.

use std::{
    fs,
    process::{Command, Stdio},
};

use tracer::{
    correlate::{Container, PhaseKind},
    document::Document,
};
use tracer_integration::{
    services::{Docker, IMAGE},
    Watch, TRACER,
};

/// Docker's default capabilities (moby's `DefaultCapabilities`), bit N = capability N.
const DOCKER_CAPS: u64 = 0xa80_425fb;

fn docker_run(name: &str, opts: &[&str]) -> String {
    let status = Command::new("docker")
        .args(["run", "--name", name])
        .args(opts)
        .args([IMAGE, "echo", "hi"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "docker run {opts:?}");
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.Id}}", name])
        .output()
        .unwrap();
    let _ = Command::new("docker")
        .args(["rm", name])
        .stdout(Stdio::null())
        .status();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn security_phase(c: &Container) -> Option<&tracer::correlate::Phase> {
    c.phases.iter().find(|p| p.kind == PhaseKind::Security)
}

/// The security phase comes after mask paths and before the user command.
fn in_order(c: &Container) {
    let at = |k: PhaseKind| c.phases.iter().position(|p| p.kind == k);
    let sec = at(PhaseKind::Security).expect("a security phase");
    assert!(at(PhaseKind::PivotRoot).unwrap() < sec, "{:?}", c.phases);
    assert!(sec < at(PhaseKind::UserExec).unwrap(), "{:?}", c.phases);
}

#[test]
fn root_docker_security_setup_is_seen() {
    let _docker = Docker::up();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("trace.json");
    let watch = Watch::start(&["--json", json.to_str().unwrap()]);
    let pid = std::process::id();
    let default = docker_run(&format!("tr-sec-{pid}"), &[]);
    let unconfined = docker_run(
        &format!("tr-unconf-{pid}"),
        &["--security-opt", "seccomp=unconfined"],
    );
    let nnp = docker_run(
        &format!("tr-nnp-{pid}"),
        &["--security-opt", "no-new-privileges"],
    );
    let out = watch.stop();
    assert!(out.success, "{}", out.stderr);
    let doc: Document = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    let find = |id: &str| {
        doc.containers
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("{id} not found"))
    };

    let c = find(&default);
    in_order(c);
    let s = &c.security;
    assert_eq!(
        s.caps.map(|[e, p, _]| (e, p)),
        Some((DOCKER_CAPS, DOCKER_CAPS))
    );
    assert_ne!(s.bounding_dropped, 0);
    assert_eq!(
        s.bounding_dropped & DOCKER_CAPS,
        0,
        "none of the 14 dropped"
    );
    assert!(!s.no_new_privs);
    assert_eq!(s.seccomp_filters.len(), 1, "{s:?}");
    assert!(s.seccomp_filters[0] > 100, "{s:?}");
    let phase = security_phase(c).unwrap();
    assert_eq!(phase.comm, "runc:[2:INIT]");
    let text = tracer::render::timeline::sentence(c, phase);
    assert!(text.contains("Docker's 14 default capabilities"), "{text}");
    assert!(
        text.contains(&format!(
            "seccomp filter of {} instructions",
            s.seccomp_filters[0]
        )),
        "{text}"
    );

    let c = find(&unconfined);
    in_order(c);
    assert!(c.security.seccomp_filters.is_empty(), "{:?}", c.security);
    assert_eq!(c.security.caps.map(|[e, ..]| e), Some(DOCKER_CAPS));

    let c = find(&nnp);
    in_order(c);
    assert!(c.security.no_new_privs, "{:?}", c.security);
    assert_eq!(c.security.seccomp_filters.len(), 1);
}

/// The built-in runtime drops to the same 14 capabilities and sets no_new_privs; its own
/// trace shows that as the security phase, in one stream line per run of drops.
#[test]
fn root_tracer_run_security_phase() {
    tracer_integration::require_root();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let out = Command::new(&*TRACER)
        .args([
            "run",
            "--net",
            "none",
            "--json",
            json.to_str().unwrap(),
            "--",
            "true",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let drops: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("PR_CAPBSET_DROP"))
        .collect();
    assert_eq!(drops.len(), 1, "one line for the run of drops: {drops:?}");
    assert!(drops[0].contains("PR_CAPBSET_DROP ×"), "{}", drops[0]);
    let doc: Document = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    let c = &doc.containers[0];
    in_order(c);
    assert_eq!(c.security.caps.map(|[e, ..]| e), Some(DOCKER_CAPS));
    assert!(c.security.no_new_privs);
    assert_eq!(c.security.bounding_dropped & DOCKER_CAPS, 0);
    assert_eq!(c.security.seccomp_filters.len(), 1, "{:?}", c.security);
    assert!(c.security.seccomp_filters[0] > 100, "{:?}", c.security);
}

/// Inside `tracer run`, what the filter lets through: its mode, keyctl (python's ctypes, as
/// no keyctl tool is installed) and an unprivileged user namespace.
const PROBE: &str = "grep '^Seccomp:' /proc/self/status; \
    python3 -c 'import ctypes; l = ctypes.CDLL(None, use_errno=True); \
    r = l.syscall(250, 0, 0, 0, 0, 0); print(\"keyctl\", r, ctypes.get_errno())'; \
    unshare -U -r true 2>/dev/null; echo \"unshare $?\"";

fn probe(seccomp: &[&str]) -> String {
    let out = Command::new(&*TRACER)
        .args(["run", "--no-trace", "--net", "none"])
        .args(seccomp)
        .args(["--", "sh", "-c", PROBE])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `tracer run` applies Docker's default profile unless told otherwise: filter mode 2,
/// keyctl and `unshare -U` refused with EPERM; `--seccomp unconfined` lets both through.
#[test]
fn root_tracer_run_seccomp_default_and_unconfined() {
    tracer_integration::require_root();
    let default = probe(&[]);
    assert!(default.contains("Seccomp:\t2"), "{default}");
    assert!(
        default.contains("keyctl -1 1\n"),
        "keyctl: EPERM\n{default}"
    );
    assert!(default.contains("unshare 1"), "{default}");
    assert_eq!(probe(&["--seccomp", "default"]), default);
    let open = probe(&["--seccomp", "unconfined"]);
    assert!(open.contains("Seccomp:\t0"), "{open}");
    assert!(!open.contains("keyctl -1 1\n"), "{open}");
    assert!(open.contains("unshare 0"), "{open}");
    // A profile file: the default action allows, keyctl alone is refused.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profile.json");
    fs::write(
        &file,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let own = probe(&["--seccomp", file.to_str().unwrap()]);
    assert!(
        own.contains("Seccomp:\t2") && own.contains("keyctl -1 1\n"),
        "{own}"
    );
    assert!(own.contains("unshare 0"), "{own}");
    // A file that is not a profile is one line, before anything starts.
    fs::write(&file, "{").unwrap();
    let out = Command::new(&*TRACER)
        .args([
            "run",
            "--no-trace",
            "--seccomp",
            file.to_str().unwrap(),
            "--",
            "true",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("not a seccomp profile"),
        "{err}"
    );
}

/// `tracer run --userns HOSTID:COUNT`: the container's root is that host range (its
/// `uid_map` inside reads `0 HOSTID COUNT`), with Docker's capabilities and filter in its
/// namespace; its trace holds the user namespace phase with the maps its runtime wrote, and
/// the security phase.
#[test]
fn root_tracer_run_userns() {
    tracer_integration::require_root();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let out = Command::new(&*TRACER)
        .args(["run", "--net", "none", "--userns", "200000:65536", "--json"])
        .arg(&json)
        .args([
            "--",
            "sh",
            "-c",
            "cat /proc/self/uid_map; grep -E '^(CapEff|Seccomp):' /proc/self/status; id -u",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(&words[..3], ["0", "200000", "65536"], "{stdout}");
    assert!(stdout.contains("CapEff:\t00000000a80425fb"), "{stdout}");
    assert!(stdout.contains("Seccomp:\t2"), "{stdout}");
    assert!(stdout.trim_end().ends_with("\n0"), "root inside: {stdout}");
    let doc: Document = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    let c = &doc.containers[0];
    assert!(
        c.phases.iter().any(|p| p.kind == PhaseKind::UserNamespace),
        "{:?}",
        c.phases
    );
    assert!(
        c.phases.iter().any(|p| p.kind == PhaseKind::Security),
        "{:?}",
        c.phases
    );
    assert!(
        c.new_namespaces.contains(&tracer::event::NsKind::User),
        "{:?}",
        c.new_namespaces
    );
    assert_eq!(
        c.security.uid_map.as_deref().map(str::trim),
        Some("0 200000 65536")
    );
    assert_eq!(
        c.security.uid_mapping().as_deref(),
        Some("0 → 200000 (65536)")
    );
    // The host range must be given or found; --net host cannot have its own sysfs.
    let bad = Command::new(&*TRACER)
        .args([
            "run",
            "--no-trace",
            "--net",
            "host",
            "--userns",
            "200000",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("own network namespace"),
        "{err}"
    );
}
