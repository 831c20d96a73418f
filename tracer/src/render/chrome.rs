//! The Chrome Trace Event format (Perfetto, chrome://tracing): one track per container
//! with a slice per phase, and an instant per event on a thread per process.

use serde_json::{json, Value};

use crate::{correlate::Container, event::Event, render::stream};

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// The trace: `owners[i]` is the container of `events[i]`; events of no container are
/// included (on a "host" track) only with `all`.
pub fn trace(
    containers: &[Container],
    events: &[Event],
    owners: &[Option<usize>],
    all: bool,
) -> Value {
    let mut out = Vec::new();
    let track = |i: usize| i + 1;
    for (i, c) in containers.iter().enumerate() {
        let label = format!(
            "{} {} {}",
            c.name.as_deref().unwrap_or(c.short_id()),
            c.runtime_label(),
            c.command.join(" ")
        );
        out.push(json!({"name": "process_name", "ph": "M", "pid": track(i),
            "args": {"name": label}}));
        out.push(
            json!({"name": "thread_name", "ph": "M", "pid": track(i), "tid": 0,
            "args": {"name": "phases"}}),
        );
        for p in &c.phases {
            out.push(json!({
                "name": p.kind.name(), "cat": "phase", "ph": "X",
                "ts": us(p.start_ns), "dur": us(p.end_ns - p.start_ns).max(1.0),
                "pid": track(i), "tid": 0,
                "args": {"event": p.key, "events": p.events},
            }));
        }
    }
    if all {
        out.push(json!({"name": "process_name", "ph": "M", "pid": 0,
            "args": {"name": "host (no container)"}}));
    }
    for (ev, owner) in events.iter().zip(owners) {
        let pid = match owner {
            Some(c) => track(*c),
            None if all => 0,
            None => continue,
        };
        out.push(json!({
            "name": ev.detail.kind(), "cat": "event", "ph": "i", "s": "t",
            "ts": us(ev.ts_ns), "pid": pid, "tid": ev.tgid,
            "args": {"comm": ev.comm, "content": stream::content(ev)},
        }));
    }
    json!({"traceEvents": out, "displayTimeUnit": "ms"})
}
