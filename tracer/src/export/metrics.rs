//! Prometheus metrics (`--metrics [ADDR:]PORT`): events, losses and malformed records per
//! kind, containers started and exited per engine and runtime, start latency and each
//! phase's duration as histograms, and the spans the OTLP export dropped. Served at
//! `/metrics` in the OpenMetrics text format, which Prometheus scrapes.

use std::{net::SocketAddr, sync::Arc};

use http_body_util::Full;
use hyper::{body::Bytes, server::conn::http1, service::service_fn, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

use crate::{
    capture::stats::Counters,
    correlate::{Container, Phase},
    event::EventKind,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContainerLabels {
    engine: String,
    runtime: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuntimeLabel {
    runtime: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    runtime: String,
    phase: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_buckets() -> Histogram {
    // 5 ms to about 40 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

fn phase_buckets() -> Histogram {
    // 50 µs to about 200 s.
    Histogram::new(exponential_buckets(0.000_05, 4.0, 12))
}

/// The metrics of one tracer, and what was last counted of the session's totals.
pub struct Metrics {
    registry: Arc<Registry>,
    events: Family<KindLabel, Counter>,
    lost: Family<KindLabel, Counter>,
    malformed: Counter,
    started: Family<ContainerLabels, Counter>,
    exited: Family<ContainerLabels, Counter>,
    start_latency: Histograms<RuntimeLabel>,
    phase_duration: Histograms<PhaseLabels>,
    spans_dropped: Counter,
    spans_sent: Counter,
    /// The session's totals at the last update (metrics count the difference).
    last: Counters,
    last_spans: (u64, u64),
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("tracer");
        let events = Family::<KindLabel, Counter>::default();
        let lost = Family::<KindLabel, Counter>::default();
        let malformed = Counter::default();
        let started = Family::<ContainerLabels, Counter>::default();
        let exited = Family::<ContainerLabels, Counter>::default();
        let start_latency = Histograms::<RuntimeLabel>::new_with_constructor(latency_buckets);
        let phase_duration = Histograms::<PhaseLabels>::new_with_constructor(phase_buckets);
        let spans_dropped = Counter::default();
        let spans_sent = Counter::default();
        r.register("events", "Events decoded, per kind", events.clone());
        r.register(
            "events_lost",
            "Events the kernel could not deliver (ring buffer or pending map full), per kind",
            lost.clone(),
        );
        r.register(
            "records_malformed",
            "Ring records that did not decode",
            malformed.clone(),
        );
        r.register(
            "containers_started",
            "Containers whose user command started, per engine and runtime",
            started.clone(),
        );
        r.register(
            "containers_exited",
            "Containers whose init exited, per engine and runtime",
            exited.clone(),
        );
        r.register(
            "container_start_latency_seconds",
            "From a container's first event to its user command's exec, per runtime",
            start_latency.clone(),
        );
        r.register(
            "phase_duration_seconds",
            "Duration of each lifecycle phase, per runtime and phase",
            phase_duration.clone(),
        );
        r.register(
            "spans_dropped",
            "OTLP spans dropped (queue full, or the collector down or slow)",
            spans_dropped.clone(),
        );
        r.register(
            "spans_sent",
            "OTLP spans the collector accepted",
            spans_sent.clone(),
        );
        Self {
            registry: Arc::new(r),
            events,
            lost,
            malformed,
            started,
            exited,
            start_latency,
            phase_duration,
            spans_dropped,
            spans_sent,
            last: Counters::default(),
            last_spans: (0, 0),
        }
    }

    /// The session's totals so far (counters only grow: the difference is added).
    pub fn counters(&mut self, now: &Counters) {
        for kind in EventKind::ALL {
            let label = KindLabel { kind: kind.name() };
            let seen = now.events(kind).saturating_sub(self.last.events(kind));
            if seen > 0 {
                self.events.get_or_create(&label).inc_by(seen);
            }
            let lost = now.lost(kind).saturating_sub(self.last.lost(kind));
            if lost > 0 {
                self.lost.get_or_create(&label).inc_by(lost);
            }
        }
        self.malformed
            .inc_by(now.malformed.saturating_sub(self.last.malformed));
        self.last = now.clone();
    }

    /// The OTLP export's totals so far.
    pub fn spans(&mut self, sent: u64, dropped: u64) {
        self.spans_sent
            .inc_by(sent.saturating_sub(self.last_spans.0));
        self.spans_dropped
            .inc_by(dropped.saturating_sub(self.last_spans.1));
        self.last_spans = (sent, dropped);
    }

    fn labels(c: &Container) -> ContainerLabels {
        ContainerLabels {
            engine: c
                .engine
                .as_ref()
                .map_or_else(|| "none".to_string(), |e| e.name().to_string()),
            runtime: c.runtime.name().to_string(),
        }
    }

    pub fn started(&self, c: &Container) {
        self.started.get_or_create(&Self::labels(c)).inc();
        if let Some(ns) = c.start_latency_ns() {
            let label = RuntimeLabel {
                runtime: c.runtime.name().to_string(),
            };
            self.start_latency
                .get_or_create(&label)
                .observe(ns as f64 / 1e9);
        }
    }

    pub fn exited(&self, c: &Container) {
        self.exited.get_or_create(&Self::labels(c)).inc();
    }

    pub fn phase(&self, c: &Container, p: &Phase) {
        let label = PhaseLabels {
            runtime: c.runtime.name().to_string(),
            phase: p.kind.name(),
        };
        self.phase_duration
            .get_or_create(&label)
            .observe(p.end_ns.saturating_sub(p.start_ns) as f64 / 1e9);
    }

    /// The metrics in the OpenMetrics text format.
    pub fn text(&self) -> String {
        encode(&self.registry)
    }

    /// Serves `/metrics` on `addr` until the process ends (on the current runtime).
    pub async fn serve(&self, addr: SocketAddr) -> anyhow::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("--metrics: cannot listen on {addr}: {e}"))?;
        let bound = listener.local_addr()?;
        let registry = self.registry.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let registry = registry.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let registry = registry.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(respond(req.uri().path(), &registry))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(bound)
    }
}

fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

fn respond(path: &str, registry: &Registry) -> Response<Full<Bytes>> {
    let (status, kind, body) = if path == "/metrics" {
        (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            encode(registry),
        )
    } else {
        (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "tracer serves /metrics only\n".to_string(),
        )
    };
    Response::builder()
        .status(status)
        .header("content-type", kind)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

/// `PORT` (on 127.0.0.1) or `ADDR:PORT`.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        format!("{s:?} is not PORT or ADDR:PORT (e.g. 9464, 0.0.0.0:9464, [::1]:9464)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_difference_and_encodes() {
        let mut m = Metrics::new();
        let mut c = Counters::default();
        c.seen(EventKind::Exec);
        c.seen(EventKind::Exec);
        m.counters(&c);
        c.seen(EventKind::Exec);
        m.counters(&c);
        m.spans(3, 2);
        let text = m.text();
        assert!(
            text.contains("tracer_events_total{kind=\"exec\"} 3"),
            "{text}"
        );
        assert!(text.contains("tracer_spans_dropped_total 2"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(
            parse_addr("9464"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
        assert!(parse_addr("0.0.0.0:1").is_ok());
        assert!(parse_addr("x").is_err());
    }
}
