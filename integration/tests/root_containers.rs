//! Root only: `tracer watch --json` while the built-in runtime and plain runc each start a
//! container; both must be in the trace's containers with their ids and exit codes, and in
//! the lifecycle table `tracer report` prints from it.

use std::{
    fs,
    process::{Command, Stdio},
};

use tracer_integration::{Watch, TRACER};

/// A `runc spec` bundle on a busybox-static rootfs running `sh -c SCRIPT`.
fn busybox_bundle(dir: &std::path::Path, script: &str) {
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy("/usr/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    let st = Command::new("runc")
        .arg("spec")
        .current_dir(dir)
        .status()
        .expect("runc (cargo xtask setup installs it)");
    assert!(st.success());
    let config = dir.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["sh", "-c", script]);
    fs::write(&config, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
}

#[test]
fn root_watch_json_sees_tracer_run_and_runc_run() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("trace.json");
    let watch = Watch::start(&["--json", json.to_str().unwrap()]);

    let ours = Command::new(&*TRACER)
        .args(["run", "-q", "--net", "none", "--name", "live-ours", "--"])
        .args(["sh", "-c", "exit 3"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        ours.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );

    let bundle = dir.path().join("bundle");
    busybox_bundle(&bundle, "exit 5");
    let runc_id = format!("live-runc-{}", std::process::id());
    let runc = Command::new("runc")
        .args(["run", "--bundle", bundle.to_str().unwrap(), &runc_id])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        runc.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&runc.stderr)
    );

    let out = watch.stop();
    assert!(out.success, "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["format"], "tracer-trace");
    assert_eq!(doc["version"], tracer::document::VERSION);
    let containers = doc["containers"].as_array().unwrap();
    let find = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        containers
            .iter()
            .find(|c| pred(c))
            .unwrap_or_else(|| panic!("not found in {containers:#?}"))
    };

    let t = find(&|c| c["name"] == "live-ours");
    assert_eq!(t["runtime"], "tracer");
    assert_eq!(t["exit_code"], 3);
    assert_eq!(t["command"], serde_json::json!(["sh", "-c", "exit 3"]));
    let phases: Vec<&str> = t["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    for p in [
        "image_mount",
        "namespaces",
        "pivot_root",
        "user_exec",
        "exit",
    ] {
        assert!(phases.contains(&p), "{p} in {phases:?}");
    }

    let r = find(&|c| c["id"] == runc_id.as_str());
    assert_eq!(r["runtime"], "runc");
    assert_eq!(r["exit_code"], 5);
    assert!(r.get("engine").is_none(), "plain runc has no engine");

    // Read back without root, the table shows both.
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&json, fs::Permissions::from_mode(0o644)).unwrap();
    let table = tracer_integration::as_nobody(&["report", json.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    assert!(
        text.contains("live-ours") && text.contains(&runc_id[..12]),
        "{text}"
    );
}
