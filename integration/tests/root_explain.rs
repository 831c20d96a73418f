//! Root only: `tracer explain -- docker run ...` explains every step of the launch of the
//! container the command started (real Docker, its daemons started by the test when not
//! running, and stopped after), with the command's own output and exit code.

use std::process::Command;

use tracer_integration::{
    services::{Docker, IMAGE},
    TRACER,
};

#[test]
fn root_explain_a_docker_run() {
    let _docker = Docker::up();
    let out = Command::new(&*TRACER)
        .args([
            "explain",
            "--",
            "docker",
            "run",
            "--rm",
            IMAGE,
            "sh",
            "-c",
            "echo hi; exit 5",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert_eq!(stdout.trim(), "hi", "the command's output passes through");
    assert_eq!(
        stderr.matches("\ncontainer ").count(),
        1,
        "one container: {stderr}"
    );
    for sentence in [
        "pivot_root() swaps the prepared directory in",
        "libnetwork-setkey",
        "enters the container's network namespace",
        "starts the containerd shim",
    ] {
        assert!(stderr.contains(sentence), "{sentence}:\n{stderr}");
    }
    assert!(
        stderr.contains("CONTAINER") && stderr.contains("docker/runc"),
        "{stderr}"
    );
}
