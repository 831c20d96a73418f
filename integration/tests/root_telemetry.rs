//! Root only: the telemetry a fleet collects, against real components started by the tests
//! (rotel as the OpenTelemetry collector, Prometheus) and stopped after. Each container's
//! lifecycle arrives as one trace (a root span and a span per phase, in order, with the
//! semantic-convention attributes), secrets blanked; a collector that goes down costs counted
//! spans, never kernel events; Prometheus scrapes the start-latency histogram.

use std::{
    fs,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use tracer::{correlate::Container, document::Document};
use tracer_integration::{
    services::{Docker, IMAGE},
    telemetry::{free_port, Prometheus, Rotel, Span},
    Watch, TRACER,
};

fn tracer_run(name: &str, script: &str) {
    let status = Command::new(&*TRACER)
        .args(["run", "-q", "--name", name, "--", "sh", "-c", script])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "tracer run {name}");
}

/// The spans of container `c`'s trace, checked: one root, every other its child, one per
/// phase in the order of the phases.
fn check_trace(c: &Container, spans: &[Span], kernel: &str) -> Span {
    let mine: Vec<&Span> = spans
        .iter()
        .filter(|s| s.attributes.get("container.id") == Some(&c.id))
        .collect();
    let roots: Vec<&&Span> = mine.iter().filter(|s| s.parent.is_empty()).collect();
    assert_eq!(roots.len(), 1, "{}: one root span: {mine:#?}", c.id);
    let root = roots[0];
    assert!(mine.iter().all(|s| s.trace == root.trace), "one trace");
    let mut children: Vec<&&Span> = mine.iter().filter(|s| !s.parent.is_empty()).collect();
    assert!(
        children.iter().all(|s| s.parent == root.id),
        "children of the root"
    );
    // In time order, as the phases are.
    children.sort_by_key(|s| (s.start, s.name.clone()));
    let mut phases: Vec<(u64, String)> = c
        .phases
        .iter()
        .map(|p| (p.start_ns, p.kind.name().to_string()))
        .collect();
    phases.sort();
    let phases: Vec<String> = phases.into_iter().map(|(_, n)| n).collect();
    let names: Vec<String> = children.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, phases, "{}: a span per phase, in order", c.id);
    assert_eq!(root.attributes["container.runtime"], c.runtime.name());
    assert!(
        root.attributes.contains_key("process.command_line"),
        "{root:#?}"
    );
    assert!(root.attributes.contains_key("process.pid"), "{root:#?}");
    assert_eq!(root.resource["os.type"], "linux");
    assert_eq!(root.resource["os.version"], kernel);
    assert!(!root.resource["host.name"].is_empty());
    assert!(children
        .iter()
        .all(|s| s.attributes.contains_key("tracer.hook")));
    assert!(
        children.iter().all(|s| !s.events.is_empty()),
        "a span event per key syscall"
    );
    (*root).clone()
}

#[test]
fn root_otlp_traces_of_tracer_run_and_docker_run() {
    let _docker = Docker::up();
    let rotel = Rotel::start();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("trace.json");
    let watch = Watch::start(&[
        "--json",
        json.to_str().unwrap(),
        "--otlp",
        &format!("http://127.0.0.1:{}", rotel.grpc),
        "--redact",
        "zz[0-9]+zz",
    ]);
    let name = format!("otel-{}", std::process::id() % 100_000);
    // Secrets on the command line: none may reach an export.
    tracer_run(
        &name,
        "true --password=s3cr3t-pw AWS_SECRET_KEY=k3y-v4l zz42zz; exit 0",
    );
    let out = Command::new("docker")
        .args(["run", "-d", IMAGE, "sh", "-c", "sleep 1; exit 4"])
        .output()
        .unwrap();
    let docker_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success());
    // Live: the docker container's phases arrive while the watch still runs.
    rotel.wait_for(
        "the docker container's phase spans during the watch",
        |spans| {
            spans
                .iter()
                .filter(|s| s.attributes.get("container.id") == Some(&docker_id))
                .count()
                >= 5
        },
    );
    assert!(Command::new("docker")
        .args(["wait", &docker_id])
        .status()
        .unwrap()
        .success());
    assert!(Command::new("docker")
        .args(["rm", &docker_id])
        .status()
        .unwrap()
        .success());
    let stopped = watch.stop();
    assert!(stopped.success, "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("spans sent to"),
        "{}",
        stopped.stderr
    );
    assert!(!stopped.stderr.contains("DROPPED"), "{}", stopped.stderr);
    let doc: Document = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    let run = doc
        .containers
        .iter()
        .find(|c| c.name.as_deref() == Some(&name))
        .expect("the run's container")
        .clone();
    let docker = doc
        .containers
        .iter()
        .find(|c| c.id == docker_id)
        .expect("docker's")
        .clone();
    let spans = rotel.wait_for("both roots", |spans| {
        [&run.id, &docker.id].iter().all(|id| {
            spans
                .iter()
                .any(|s| s.parent.is_empty() && s.attributes.get("container.id") == Some(id))
        })
    });
    let root = check_trace(&run, &spans, &doc.host.kernel);
    assert_eq!(root.attributes["container.name"], name);
    assert_eq!(root.status, "STATUS_CODE_UNSET", "exit 0 is no error");
    let root = check_trace(&docker, &spans, &doc.host.kernel);
    assert_eq!(root.status, "STATUS_CODE_ERROR", "exit 4 is an error");
    assert_eq!(root.attributes["tracer.engine"], "docker");

    // The saved trace replayed (`tracer report --otlp`): the same trace, the same ids.
    let before = rotel.spans().len();
    let replay = Command::new(&*TRACER)
        .arg("report")
        .arg(&json)
        .args(["--otlp", &format!("http://127.0.0.1:{}", rotel.grpc)])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&replay.stderr);
    assert!(
        replay.status.success() && said.contains("spans sent to"),
        "{said}"
    );
    let again = rotel.wait_for("the replayed spans", |s| s.len() > before);
    let replayed: Vec<&Span> = again[before..]
        .iter()
        .filter(|s| s.parent.is_empty() && s.attributes.get("container.id") == Some(&docker.id))
        .collect();
    assert_eq!(replayed.len(), 1);
    assert_eq!(
        (&replayed[0].trace, &replayed[0].id),
        (&root.trace, &root.id)
    );

    // `tracer run --otlp` over HTTP/protobuf: its own container's trace.
    let (run_json, run_jsonl) = (dir.path().join("run.json"), dir.path().join("run.jsonl"));
    let status = Command::new(&*TRACER)
        .args(["run", "-q", "--json"])
        .arg(&run_json)
        .arg("--jsonl")
        .arg(&run_jsonl)
        .args([
            "--otlp",
            &format!("http://127.0.0.1:{}/v1/traces", rotel.http),
        ])
        .args(["--otlp-protocol", "http/protobuf"])
        .args(["--", "sh", "-c", "true --token=t0k3n-v4l; exit 0"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let own: Document = serde_json::from_str(&fs::read_to_string(&run_json).unwrap()).unwrap();
    let c = own.containers[0].clone();
    let spans = rotel.wait_for("the run's own trace", |spans| {
        spans
            .iter()
            .any(|s| s.parent.is_empty() && s.attributes.get("container.id") == Some(&c.id))
    });
    check_trace(&c, &spans, &own.host.kernel);

    // Nothing secret left in any export; the names stay, the values go.
    let log = rotel.log();
    let files = [&json, &run_json, &run_jsonl].map(|f| fs::read_to_string(f).unwrap());
    for secret in ["s3cr3t-pw", "k3y-v4l", "zz42zz", "t0k3n-v4l"] {
        assert!(!log.contains(secret), "{secret} in the spans");
        assert!(
            files.iter().all(|f| !f.contains(secret)),
            "{secret} in a file"
        );
    }
    assert!(log.contains("--password=***"), "{log}");
}

/// The collector stops mid-run: the watch goes on, counts the spans it could not send
/// (in its summary and its metrics), and loses no kernel event.
#[test]
fn root_otlp_collector_down_costs_counted_spans_only() {
    let mut rotel = Rotel::start();
    let metrics = free_port();
    let watch = Watch::start(&[
        "--otlp",
        &format!("http://127.0.0.1:{}", rotel.grpc),
        "--metrics",
        &metrics.to_string(),
    ]);
    tracer_run("otel-up", "exit 0");
    rotel.wait_for("the first run's spans", |s| s.len() >= 5);
    rotel.stop();
    for n in 0..3 {
        tracer_run(&format!("otel-down-{n}"), "exit 0");
    }
    // Its phases are over 2 s after their last event: the watch tries to send them.
    let deadline = Instant::now() + Duration::from_secs(30);
    let dropped = loop {
        let out = Command::new("curl")
            .args(["-sS", &format!("http://127.0.0.1:{metrics}/metrics")])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let dropped: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("tracer_spans_dropped_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        if dropped > 0.0 || Instant::now() > deadline {
            break dropped;
        }
        thread::sleep(Duration::from_millis(500));
    };
    assert!(dropped > 0.0, "the metrics count dropped spans");
    let out = watch.stop();
    assert!(out.success, "{}", out.stderr);
    assert!(out.stderr.contains("DROPPED"), "{}", out.stderr);
    let (_, lost, _) = out.totals();
    assert_eq!(lost, 0, "no kernel event lost: {}", out.stderr);
}

/// Prometheus scrapes `--metrics`: its API counts the containers started in the
/// start-latency histogram.
#[test]
fn root_prometheus_scrapes_the_start_latency_histogram() {
    let port = free_port();
    let watch = Watch::start(&["--metrics", &port.to_string()]);
    let prometheus = Prometheus::start(([127, 0, 0, 1], port).into());
    for n in 0..3 {
        tracer_run(&format!("prom-{n}"), "exit 0");
    }
    let query = "sum(tracer_container_start_latency_seconds_count{runtime=\"tracer\"})";
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut last = None;
    while Instant::now() < deadline {
        last = prometheus.query(query);
        if last == Some(3.0) {
            break;
        }
        thread::sleep(Duration::from_millis(500));
    }
    let out = watch.stop();
    assert!(out.success, "{}", out.stderr);
    assert_eq!(last, Some(3.0), "{query}");
}
