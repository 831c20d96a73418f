//! Exports to the fleet's telemetry: each container's lifecycle as an OpenTelemetry trace
//! ([`spans`], sent over OTLP by [`otlp`]) and Prometheus metrics ([`metrics`]), fed as
//! containers live ([`follow`]). Beside `render`: both read what `correlate` found.

pub mod follow;
pub mod metrics;
pub mod otlp;
pub mod spans;

use std::{net::SocketAddr, time::Duration};

use self::{
    follow::{Change, Follower},
    metrics::Metrics,
    otlp::{Otlp, Transport},
};
use crate::{
    capture::stats::Counters,
    correlate::{engine::Engine, Container},
    event::{redact::Redactor, Clock},
};

/// What a watch or a run exports.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// `--otlp [ENDPOINT]`: `Some(None)` takes the endpoint from the environment.
    pub otlp: Option<Option<String>>,
    pub transport: Option<Transport>,
    /// `--metrics [ADDR:]PORT`.
    pub metrics: Option<SocketAddr>,
}

impl ExportOptions {
    pub fn any(&self) -> bool {
        self.otlp.is_some() || self.metrics.is_some()
    }
}

/// The exports of a live session.
pub struct Exports {
    otlp: Option<Otlp>,
    metrics: Option<Metrics>,
    follower: Follower,
    clock: Clock,
}

/// How long the end of a session waits for the collector.
const FINAL_WAIT: Duration = Duration::from_secs(10);

impl Exports {
    /// Starts the OTLP export and the metrics server asked for.
    pub async fn start(opts: &ExportOptions, kernel: &str, clock: Clock) -> anyhow::Result<Self> {
        let otlp = match &opts.otlp {
            Some(endpoint) => {
                let transport = match opts.transport {
                    Some(t) => t,
                    None => Transport::from_env()?,
                };
                Some(Otlp::start(
                    endpoint.as_deref(),
                    transport,
                    &spans::resource(kernel),
                )?)
            }
            None => None,
        };
        let metrics = match opts.metrics {
            Some(addr) => {
                let m = Metrics::new();
                let bound = m.serve(addr).await?;
                eprintln!("tracer: metrics at http://{bound}/metrics");
                Some(m)
            }
            None => None,
        };
        Ok(Self {
            otlp,
            metrics,
            follower: Follower::default(),
            clock,
        })
    }

    /// Sends what changed since the last tick (`now_ns`: boot time now; `last`: the
    /// session ends).
    pub fn tick(&mut self, engine: &Engine, counters: &Counters, now_ns: u64, last: bool) {
        if self.otlp.is_none() && self.metrics.is_none() {
            return;
        }
        let (otlp, metrics, clock) = (&self.otlp, &self.metrics, &self.clock);
        let redact = Redactor::global();
        self.follower.look(
            engine.containers_indexed(),
            now_ns,
            last,
            |change| match change {
                Change::Started(c) => {
                    if let Some(m) = metrics {
                        m.started(c);
                    }
                }
                Change::Exited(c) => {
                    if let Some(m) = metrics {
                        m.exited(c);
                    }
                }
                Change::PhaseOver(c, p) => {
                    if let Some(m) = metrics {
                        m.phase(c, p);
                    }
                    if let Some(o) = otlp {
                        o.send(spans::phase(c, p, clock, redact));
                    }
                }
                Change::Gone(c, end) => {
                    if let Some(o) = otlp {
                        o.send(spans::root(c, clock, end, redact));
                    }
                }
            },
        );
        if let Some(m) = &mut self.metrics {
            m.counters(counters);
            if let Some(o) = &self.otlp {
                let (sent, dropped) = o.totals();
                m.spans(sent, dropped);
            }
        }
    }

    /// Ends the exports: what is queued is sent (waiting a little for the collector); a line
    /// saying what was sent and dropped.
    pub fn finish(self) -> Option<String> {
        let otlp = self.otlp?;
        let target = otlp.target.clone();
        let (sent, dropped) = otlp.finish(FINAL_WAIT);
        Some(spans_line(sent, dropped, &target))
    }
}

pub fn spans_line(sent: u64, dropped: u64, target: &str) -> String {
    if dropped == 0 {
        format!("{sent} spans sent to {target}")
    } else {
        format!(
            "{sent} spans sent to {target}, {dropped} DROPPED (the collector was down, slow or \
             the queue of {} full)",
            otlp::QUEUE
        )
    }
}

/// Sends every span of `containers` (a saved trace replayed); the line saying what went.
pub fn replay(
    containers: &[Container],
    endpoint: Option<&str>,
    transport: Option<Transport>,
    clock: &Clock,
    kernel: &str,
) -> anyhow::Result<String> {
    let transport = match transport {
        Some(t) => t,
        None => Transport::from_env()?,
    };
    let otlp = Otlp::start(endpoint, transport, &spans::resource(kernel))?;
    let redact = Redactor::global();
    for c in containers {
        for s in spans::all(c, clock, redact) {
            otlp.send(s);
        }
    }
    let target = otlp.target.clone();
    let (sent, dropped) = otlp.finish(Duration::from_secs(30));
    Ok(spans_line(sent, dropped, &target))
}
