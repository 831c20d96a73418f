//! Spans to an OpenTelemetry collector over OTLP (gRPC or HTTP/protobuf, encoded by the
//! `opentelemetry-otlp` crate). A bounded queue stands in front of the exporter and a thread
//! of its own drains it in batches, so a collector that is down or slow costs dropped spans,
//! each counted, never a stalled tracer or a lost kernel event. (The SDK's batch processor
//! would drop without saying; this counts.)

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc::{self, RecvTimeoutError, SyncSender, TrySendError},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};

/// Spans waiting for the exporter, at most.
pub const QUEUE: usize = 4096;
/// Spans per export request, at most.
const BATCH: usize = 512;
/// How long a batch waits for more spans.
const LINGER: Duration = Duration::from_millis(500);
/// How long one export may take before its spans count as dropped.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The transport, from `--otlp-protocol` or `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// OTLP/gRPC (port 4317 by convention).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318, path /v1/traces).
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

impl Transport {
    /// The protocol the standard environment variables ask for (gRPC when none).
    pub fn from_env() -> anyhow::Result<Self> {
        let var = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"));
        match var.as_deref() {
            Err(_) | Ok("grpc") => Ok(Self::Grpc),
            Ok("http/protobuf") => Ok(Self::HttpProtobuf),
            Ok(other) => anyhow::bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other:?} is not supported (grpc or http/protobuf)"
            ),
        }
    }
}

#[derive(Default)]
struct Stats {
    queued: AtomicU64,
    sent: AtomicU64,
    dropped: AtomicU64,
}

/// The export of one tracer.
pub struct Otlp {
    queue: Option<SyncSender<SpanData>>,
    stats: Arc<Stats>,
    worker: Option<thread::JoinHandle<()>>,
    /// Where it sends (for messages).
    pub target: String,
}

/// The endpoint: the flag's, or the standard environment variables' (the exporter reads
/// them when none is given here).
fn target(endpoint: Option<&str>, transport: Transport) -> String {
    endpoint.map_or_else(
        || {
            std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT"))
                .unwrap_or_else(|_| match transport {
                    Transport::Grpc => "http://localhost:4317".into(),
                    Transport::HttpProtobuf => "http://localhost:4318/v1/traces".into(),
                })
        },
        str::to_string,
    )
}

impl Otlp {
    /// Starts the export to `endpoint` (or the environment's) over `transport`, with
    /// `resource` on every span.
    pub fn start(
        endpoint: Option<&str>,
        transport: Transport,
        resource: &opentelemetry_sdk::Resource,
    ) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let target = target(endpoint, transport);
        let mut exporter = {
            let _in_runtime = rt.enter();
            let built = match (transport, endpoint) {
                (Transport::Grpc, Some(e)) => opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(e)
                    .with_timeout(EXPORT_TIMEOUT)
                    .build(),
                (Transport::Grpc, None) => opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_timeout(EXPORT_TIMEOUT)
                    .build(),
                (Transport::HttpProtobuf, Some(e)) => opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(e)
                    .with_timeout(EXPORT_TIMEOUT)
                    .build(),
                (Transport::HttpProtobuf, None) => opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_timeout(EXPORT_TIMEOUT)
                    .build(),
            };
            built.map_err(|e| anyhow::anyhow!("--otlp {target}: {e}"))?
        };
        exporter.set_resource(resource);
        let (tx, rx) = mpsc::sync_channel::<SpanData>(QUEUE);
        let stats = Arc::new(Stats::default());
        let worker = {
            let stats = stats.clone();
            thread::Builder::new().name("otlp".into()).spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    let deadline = Instant::now() + LINGER;
                    while batch.len() < BATCH {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(s) => batch.push(s),
                            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                                break
                            }
                        }
                    }
                    let n = batch.len() as u64;
                    let sent = rt.block_on(async {
                        tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(batch)).await
                    });
                    let counter = match sent {
                        Ok(Ok(())) => &stats.sent,
                        _ => &stats.dropped,
                    };
                    counter.fetch_add(n, Ordering::Relaxed);
                }
                let _ = exporter.shutdown_with_timeout(Duration::from_secs(1));
            })?
        };
        Ok(Self {
            queue: Some(tx),
            stats,
            worker: Some(worker),
            target,
        })
    }

    /// Queues a span; a full queue drops it (counted).
    pub fn send(&self, span: SpanData) {
        let Some(queue) = &self.queue else { return };
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        match queue.try_send(span) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Spans accepted by the collector, and dropped, so far.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.stats.sent.load(Ordering::Relaxed),
            self.stats.dropped.load(Ordering::Relaxed),
        )
    }

    /// Sends what is queued, waiting at most `wait`; what is still unsent then counts as
    /// dropped. The totals.
    pub fn finish(mut self, wait: Duration) -> (u64, u64) {
        drop(self.queue.take());
        let deadline = Instant::now() + wait;
        if let Some(worker) = self.worker.take() {
            while !worker.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
            if worker.is_finished() {
                let _ = worker.join();
            }
        }
        // Still queued or in flight: dropped too.
        let sent = self.stats.sent.load(Ordering::Relaxed);
        let queued = self.stats.queued.load(Ordering::Relaxed);
        (sent, queued.saturating_sub(sent))
    }
}
