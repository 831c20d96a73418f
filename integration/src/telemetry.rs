//! The real telemetry components the export tests run against, each started by the test on
//! free ports and stopped when dropped: rotel (an OTLP collector, from the virtualenv setup
//! makes) logging every span it receives, and Prometheus scraping the tracer.

use std::{
    collections::BTreeMap,
    fs,
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command},
    thread,
    time::{Duration, Instant},
};

/// The workspace's `target/` (the virtualenv lives there).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// A program of the tests' virtualenv (`cargo xtask setup` makes it).
pub fn venv_bin(name: &str) -> PathBuf {
    let bin = target_dir().join("venv/bin").join(name);
    assert!(
        bin.is_file(),
        "{} is missing: cargo xtask setup installs it",
        bin.display()
    );
    bin
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} never listened on {port}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// One span as the collector logged it.
#[derive(Clone, Debug, Default)]
pub struct Span {
    pub trace: String,
    pub parent: String,
    pub id: String,
    pub name: String,
    /// Start time, ns since the epoch.
    pub start: u64,
    pub status: String,
    pub attributes: BTreeMap<String, String>,
    /// Its resource's attributes.
    pub resource: BTreeMap<String, String>,
    /// Its span events' names.
    pub events: Vec<String>,
}

/// rotel, receiving OTLP over gRPC and HTTP and logging each span in detail.
pub struct Rotel {
    child: Option<Child>,
    pub grpc: u16,
    pub http: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Rotel {
    pub fn start() -> Self {
        let agent = fs::read_dir(target_dir().join("venv/lib"))
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .map(|d| d.path().join("site-packages/rotel/rotel-agent"))
            .find(|p| p.is_file())
            .expect("rotel-agent is missing: cargo xtask setup installs it");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("rotel.log");
        let (grpc, http) = (free_port(), free_port());
        let out = fs::File::create(&log).unwrap();
        let child = Command::new(agent)
            .args([
                "start",
                "--otlp-grpc-endpoint",
                &format!("127.0.0.1:{grpc}"),
            ])
            .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
            .args(["--debug-log", "traces", "--debug-log-verbosity", "detailed"])
            .args(["--exporter", "blackhole"])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("starting rotel-agent");
        wait_listening(grpc, "rotel");
        wait_listening(http, "rotel");
        Self {
            child: Some(child),
            grpc,
            http,
            log,
            _dir: dir,
        }
    }

    /// Stops it (a collector that goes down).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Everything it logged.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        parse(&self.log())
    }

    /// Waits until `want` holds of the spans received; the spans then.
    pub fn wait_for(&self, what: &str, mut want: impl FnMut(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let spans = self.spans();
            if want(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "the collector never received {what}; it got {} spans",
                spans.len()
            );
            thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `-> key: Str(value)` → (key, value).
fn attribute(line: &str) -> Option<(String, String)> {
    let (key, value) = line.trim().strip_prefix("-> ")?.split_once(": ")?;
    let value = value
        .split_once('(')
        .map_or(value, |(_, v)| v.strip_suffix(')').unwrap_or(v));
    Some((key.to_string(), value.to_string()))
}

/// Reads rotel's detailed debug log.
fn parse(log: &str) -> Vec<Span> {
    #[derive(PartialEq)]
    enum In {
        Resource,
        Attributes,
        Events,
        Other,
    }
    let mut spans: Vec<Span> = Vec::new();
    let mut resource = BTreeMap::new();
    let mut section = In::Other;
    for line in log.lines() {
        let field = |name: &str| {
            line.trim()
                .strip_prefix(name)
                .and_then(|r| r.trim_start().strip_prefix(':'))
                .map(|v| v.trim().to_string())
        };
        if line.starts_with("ResourceSpans #") {
            resource = BTreeMap::new();
            section = In::Other;
        } else if line.starts_with("Resource attributes:") {
            section = In::Resource;
        } else if line.starts_with("Span #") {
            spans.push(Span {
                resource: resource.clone(),
                ..Span::default()
            });
            section = In::Other;
        } else if line.starts_with("Attributes:") {
            section = In::Attributes;
        } else if line.starts_with("Events:") {
            section = In::Events;
        } else if line.starts_with("ScopeSpans") || line.starts_with("InstrumentationScope") {
            section = In::Other;
        } else if let Some(span) = spans.last_mut() {
            if let Some(v) = field("Trace ID") {
                span.trace = v;
            } else if let Some(v) = field("Parent ID") {
                span.parent = v;
            } else if let Some(v) = field("ID") {
                span.id = v;
            } else if let Some(v) = field("Name") {
                if section == In::Other {
                    span.name = v;
                }
            } else if let Some(v) = line.strip_prefix("Start time: ") {
                span.start = v.trim().parse().unwrap_or(0);
            } else if let Some(v) = field("Status code") {
                span.status = v;
            } else if section == In::Attributes && line.starts_with("     -> ") {
                if let Some((k, v)) = attribute(line) {
                    span.attributes.insert(k, v);
                }
            } else if section == In::Events && line.trim().starts_with("-> Name: ") {
                span.events
                    .push(line.trim()["-> Name: ".len()..].to_string());
            }
        } else if section == In::Resource {
            if let Some((k, v)) = attribute(line) {
                resource.insert(k, v);
            }
        }
        if section == In::Resource && !spans.is_empty() && line.starts_with("     -> ") {
            if let Some((k, v)) = attribute(line) {
                resource.insert(k, v);
            }
        }
    }
    spans
}

/// Prometheus, scraping one target every second.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(target: SocketAddr) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
                 - job_name: tracer\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting prometheus");
        wait_listening(port, "prometheus");
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    /// The value of an instant query (the first series'), if any.
    pub fn query(&self, q: &str) -> Option<f64> {
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--data-urlencode"])
            .arg(format!("query={q}"))
            .arg(format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_collectors_log() {
        let log = "ResourceSpans #0\nResource attributes:\n     -> host.name: Str(vm)\nScopeSpans #0\n\
                   InstrumentationScope tracer 0.1.0\nSpan #0\n    Trace ID       : aa\n    \
                   Parent ID      : bb\n    ID             : cc\n    Name           : mount\n    \
                   Status code    : STATUS_CODE_UNSET\nAttributes:\n     -> container.id: Str(x)\n     \
                   -> process.pid: Int(7)\nEvents:\nSpanEvent #0\n     -> Name: mount\n     -> \
                   Attributes::\n          -> tracer.event: Str(e)\nSpan #1\n    Trace ID       : aa\n    \
                   Parent ID      : \n    ID             : bb\n    Name           : container x\n";
        let spans = parse(log);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].name, "mount");
        assert_eq!(spans[0].parent, "bb");
        assert_eq!(spans[0].attributes["container.id"], "x");
        assert_eq!(spans[0].attributes["process.pid"], "7");
        assert_eq!(spans[0].events, ["mount"]);
        assert_eq!(spans[0].resource["host.name"], "vm");
        assert_eq!(spans[1].parent, "");
        assert_eq!(spans[1].name, "container x");
    }
}
