//! The HTML picture opened in a real browser (headless Chromium), with the network cut off
//! (`unshare -n`, root): for each recorded fixture the page holds one bar per phase of the
//! model and one lane per process and refers to nothing outside itself, and the docker
//! fixture's screenshot is a picture and not a blank page.

use std::{fs, path::Path, process::Command};

use tracer_integration::{require_root, TRACER};

const FIXTURES: [&str; 7] = [
    "docker-run",
    "docker-exec",
    "runc",
    "crun",
    "podman",
    "tracer-run",
    "concurrent",
];

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../fixtures/{name}.json"))
}

/// Chromium, headless, in a network namespace of its own (no network at all), with `args`.
fn chromium(args: &[&str]) -> std::process::Output {
    Command::new("unshare")
        .args([
            "-n",
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
        ])
        .args(["--no-first-run", "--disable-extensions"])
        .args(args)
        .output()
        .expect("chromium (cargo xtask setup installs it)")
}

#[test]
fn root_html_opens_offline_with_a_bar_per_phase_and_a_lane_per_process() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let html = dir.path().join(format!("{name}.html"));
        let out = Command::new(&*TRACER)
            .args(["report", "--format", "html", "-o"])
            .arg(&html)
            .arg(fixture(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json = Command::new(&*TRACER)
            .args(["report", "--format", "json"])
            .arg(fixture(name))
            .output()
            .unwrap();
        let doc: tracer::document::Document = serde_json::from_slice(&json.stdout).unwrap();
        let phases: usize = doc.containers.iter().map(|c| c.phases.len()).sum();
        let procs: usize = doc.containers.iter().map(|c| c.processes.len()).sum();
        let url = format!("file://{}", html.display());
        // No network at all: what renders came from the file.
        let dom = chromium(&["--dump-dom", &url]);
        let dom = String::from_utf8_lossy(&dom.stdout);
        assert_eq!(
            dom.matches("class=\"phase\"").count(),
            phases,
            "{name}: a bar per phase"
        );
        assert_eq!(
            dom.matches("class=\"lane\"").count(),
            procs,
            "{name}: a lane per process"
        );
        assert!(dom.contains("Lifecycle"), "{name}: the table");
        // Every bar carries its event and its explanation, shown on hover and focus.
        assert_eq!(dom.matches("data-explain=\"").count(), phases, "{name}");
        // Nothing it could fetch: no script, style, image or frame from elsewhere (the
        // only URL is SVG's namespace name, which is never requested).
        for reference in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "<link",
            "@import",
            "<iframe",
        ] {
            assert!(!dom.contains(reference), "{name}: {reference}");
        }
    }
    // The docker fixture, drawn: many colours, not one.
    let shot = dir.path().join("docker.png");
    let html = dir.path().join("docker-run.html");
    chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1280,900",
        &format!("file://{}", html.display()),
    ]);
    let decoder = png::Decoder::new(std::io::BufReader::new(
        fs::File::open(&shot).expect("a screenshot"),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buf).unwrap();
    let bytes = &buf[..info.buffer_size()];
    let step = info.color_type.samples();
    let mut colours = std::collections::BTreeSet::new();
    for px in bytes.chunks(step) {
        colours.insert(px[..3.min(step)].to_vec());
    }
    assert!(
        colours.len() > 20,
        "a picture, not a blank page: {} colours",
        colours.len()
    );
}

/// `tracer run --html FILE` draws its own launch.
#[test]
fn root_run_draws_its_launch() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("run.html");
    let out = Command::new(&*TRACER)
        .args(["run", "-q", "--net", "none", "--html"])
        .arg(&html)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = fs::read_to_string(&html).unwrap();
    for phase in ["namespaces", "pivot_root", "user command"] {
        assert!(page.contains(&format!("data-kind=\"{phase}\"")), "{phase}");
    }
    assert!(page.contains("class=\"lane\""));
}
