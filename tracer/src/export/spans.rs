//! A container's lifecycle as OpenTelemetry spans: one trace per container (per lifecycle),
//! a root span from its first event to its last, a child span per phase with its key event
//! as a span event. Ids are derived from the container's id, lifecycle and creation, so a
//! replayed trace (`tracer report --otlp`) carries the same ids as the live one.
//!
//! Attributes follow OpenTelemetry's semantic conventions (`container.*`, `process.*`; the
//! host's `host.name`, `os.type`, `os.version` on the resource); this tool's own are under
//! `tracer.`.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    time::{Duration, SystemTime},
};

use opentelemetry::{
    trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState},
    InstrumentationScope, KeyValue,
};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use crate::{
    correlate::{Container, Phase, PhaseKind},
    event::{redact::Redactor, Clock},
};

/// A value's name as the trace document writes it (`image_mount`, `rootfs_path`).
fn json_name(v: &impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// The resource every span of this host carries.
pub fn resource(kernel: &str) -> opentelemetry_sdk::Resource {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    opentelemetry_sdk::Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "tracer"),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("host.name", host),
            KeyValue::new("os.type", "linux"),
            KeyValue::new("os.version", kernel.to_string()),
        ])
        .build()
}

fn hash(parts: &[&dyn Fn(&mut DefaultHasher)]) -> u64 {
    let mut h = DefaultHasher::new();
    for p in parts {
        p(&mut h);
    }
    h.finish()
}

/// The trace of container `c`: the same for the same container, lifecycle and creation.
pub fn trace_id(c: &Container) -> TraceId {
    let half = |salt: u8| {
        hash(&[
            &|h| salt.hash(h),
            &|h| c.id.hash(h),
            &|h| c.lifecycle.hash(h),
            &|h| c.created_ns.hash(h),
        ])
    };
    let id = (u128::from(half(1)) << 64) | u128::from(half(2));
    TraceId::from_bytes(id.max(1).to_be_bytes())
}

fn span_id(trace: TraceId, salt: &str, at: u64) -> SpanId {
    let id = hash(&[&|h| trace.hash(h), &|h| salt.hash(h), &|h| at.hash(h)]);
    SpanId::from_bytes(id.max(1).to_be_bytes())
}

/// The root span's id.
pub fn root_id(c: &Container) -> SpanId {
    span_id(trace_id(c), "container", 0)
}

fn time(clock: &Clock, boot_ns: u64) -> SystemTime {
    let wall = u64::try_from(clock.wall_ns(boot_ns)).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::from_nanos(wall)
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("tracer")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

fn span(
    context: SpanContext,
    parent: SpanId,
    name: String,
    (start, end): (SystemTime, SystemTime),
    attributes: Vec<KeyValue>,
    events: SpanEvents,
    status: Status,
) -> SpanData {
    SpanData {
        span_context: context,
        parent_span_id: parent,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: name.into(),
        start_time: start,
        end_time: end.max(start),
        attributes,
        dropped_attributes_count: 0,
        events,
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope(),
    }
}

fn context(trace: TraceId, span: SpanId) -> SpanContext {
    SpanContext::new(
        trace,
        span,
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    )
}

/// When the container was last seen doing anything (its teardown's end).
pub fn gone_ns(c: &Container) -> u64 {
    c.last_seen_ns()
}

/// Why a container's trace is an error: it never started, or its init did not exit 0.
fn status(c: &Container) -> Status {
    let why = if c.oom_killed {
        "killed by the OOM killer".to_string()
    } else if c.exited_ns.is_some() && c.started_ns.is_none() {
        "the container did not start".to_string()
    } else if let Some(code) = c.exit_code.filter(|&code| code != 0) {
        format!("exit code {code}")
    } else if let Some(sig) = c.signal {
        match &c.killed_by {
            Some(s) => format!("killed by signal {sig} from {} {}", s.comm, s.pid),
            None => format!("killed by signal {sig}"),
        }
    } else {
        return Status::Unset;
    };
    Status::error(why)
}

/// The container's init: the process that exec'd the user's command.
fn init_pid(c: &Container) -> Option<u32> {
    c.phases
        .iter()
        .find(|p| p.kind == PhaseKind::UserExec)
        .map(|p| p.pid)
}

/// The root span: created to gone (`end_ns`, for one still running when the watch ends).
pub fn root(c: &Container, clock: &Clock, end_ns: u64, redact: &Redactor) -> SpanData {
    let trace = trace_id(c);
    let mut a = vec![
        KeyValue::new("container.id", c.id.clone()),
        KeyValue::new("container.runtime", c.runtime.name().to_string()),
        KeyValue::new("tracer.lifecycle", i64::from(c.lifecycle)),
        KeyValue::new("tracer.found_by", c.found_by.clone()),
        KeyValue::new("tracer.mounts", i64::from(c.mounts)),
    ];
    if let Some(name) = &c.name {
        a.push(KeyValue::new("container.name", name.clone()));
    }
    if let Some(e) = &c.engine {
        a.push(KeyValue::new("tracer.engine", e.name().to_string()));
    }
    if !c.command.is_empty() {
        let argv = redact.argv(&c.command);
        a.push(KeyValue::new("process.command_line", argv.join(" ")));
    }
    if let Some(pid) = init_pid(c) {
        a.push(KeyValue::new("process.pid", i64::from(pid)));
    }
    if let Some(code) = c.exit_code {
        a.push(KeyValue::new("process.exit.code", i64::from(code)));
    }
    if let Some(sig) = c.signal {
        a.push(KeyValue::new("tracer.signal", i64::from(sig)));
    }
    if c.oom_killed {
        a.push(KeyValue::new("tracer.oom_killed", true));
    }
    if let Some(s) = &c.killed_by {
        a.push(KeyValue::new(
            "tracer.killed_by",
            format!("{} {}", s.comm, s.pid),
        ));
    }
    if let Some(ns) = c.start_latency_ns() {
        a.push(KeyValue::new("tracer.start_latency_ms", ns as f64 / 1e6));
    }
    if let Some(rootfs) = &c.rootfs {
        a.push(KeyValue::new(
            "tracer.rootfs",
            redact.text(rootfs).into_owned(),
        ));
    }
    a.push(KeyValue::new(
        "tracer.state",
        if c.exited_ns.is_some() {
            "exited"
        } else {
            "running"
        },
    ));
    let name = format!("container {}", c.name.as_deref().unwrap_or(c.short_id()));
    span(
        context(trace, root_id(c)),
        SpanId::INVALID,
        name,
        (time(clock, c.created_ns), time(clock, end_ns)),
        a,
        SpanEvents::default(),
        status(c),
    )
}

/// The span of one of its phases, a child of the root, with its key event.
pub fn phase(c: &Container, p: &Phase, clock: &Clock, redact: &Redactor) -> SpanData {
    let trace = trace_id(c);
    let mut a = vec![
        KeyValue::new("container.id", c.id.clone()),
        KeyValue::new("tracer.phase.kind", json_name(&p.kind)),
        KeyValue::new("tracer.phase.events", i64::from(p.events)),
        KeyValue::new("tracer.evidence", json_name(&p.evidence)),
        KeyValue::new("process.pid", i64::from(p.pid)),
        KeyValue::new("process.executable.name", p.comm.clone()),
    ];
    if let Some(hook) = &p.hook {
        a.push(KeyValue::new("tracer.hook", hook.clone()));
    }
    let key = redact.text(&p.key).into_owned();
    let mut events = SpanEvents::default();
    let mut attrs = vec![KeyValue::new("tracer.event", key)];
    if let Some(call) = &p.call {
        attrs.push(KeyValue::new("tracer.syscall", call.clone()));
    }
    events.events.push(opentelemetry::trace::Event::new(
        p.call.clone().unwrap_or_else(|| p.kind.name().to_string()),
        time(clock, p.start_ns),
        attrs,
        0,
    ));
    span(
        context(trace, span_id(trace, p.kind.name(), p.start_ns)),
        root_id(c),
        p.kind.name().to_string(),
        (time(clock, p.start_ns), time(clock, p.end_ns)),
        a,
        events,
        Status::Unset,
    )
}

/// Every span of a container that is over (or seen to the end of a trace).
pub fn all(c: &Container, clock: &Clock, redact: &Redactor) -> Vec<SpanData> {
    let mut out: Vec<SpanData> = c
        .phases
        .iter()
        .map(|p| phase(c, p, clock, redact))
        .collect();
    out.push(root(c, clock, gone_ns(c), redact));
    out
}
