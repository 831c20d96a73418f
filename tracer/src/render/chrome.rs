//! The Chrome Trace Event format (Perfetto, chrome://tracing): one track per container
//! with a slice per phase, and an instant per event on a thread per process. Written as
//! the events come, so a trace of millions of events is never held in memory.

use std::{
    fmt::Write as _,
    io::{self, Write},
    sync::OnceLock,
};

use serde_json::json;

use crate::{
    correlate::Container,
    event::{Event, EventKind},
};

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Container `i`'s track (0 is the host's).
fn track(i: usize) -> usize {
    i + 1
}

/// What an instant holds before its time: the same for every event of a kind.
#[derive(serde::Serialize)]
struct Head {
    name: &'static str,
    cat: &'static str,
    ph: &'static str,
    s: &'static str,
}

/// Each kind's `{"name":...,"s":"t","ts":`, written by serde_json once per kind rather than
/// once per event (its four keys and values were 7 % of a Chrome report's instructions), indexed by
/// the kind's number.
fn head(kind: EventKind) -> &'static [u8] {
    static HEADS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let heads = HEADS.get_or_init(|| {
        let mut heads = vec![
            Vec::new();
            EventKind::ALL
                .iter()
                .map(|&k| k as usize + 1)
                .max()
                .unwrap_or(0)
        ];
        for k in EventKind::ALL {
            let mut text = serde_json::to_vec(&Head {
                name: k.name(),
                cat: "event",
                ph: "i",
                s: "t",
            })
            .expect("plain strings serialize");
            text.pop();
            text.extend_from_slice(br#","ts":"#);
            heads[k as usize] = text;
        }
        heads
    });
    &heads[kind as usize]
}

#[derive(serde::Serialize)]
struct InstantArgs<'a> {
    comm: &'a str,
    content: &'a str,
}

thread_local! {
    /// The event's line, written into one buffer per thread and escaped in one piece
    /// (escaping each piece as it is written cost more than the copy).
    static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// An event's instant, all but its track: `{...,"pid":` (the container it belongs to is
/// known only once it is correlated, the rest can be written anywhere beforehand).
pub fn instant(ev: &Event, out: &mut Vec<u8>) {
    out.extend_from_slice(head(ev.detail.kind()));
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &us(ev.ts_ns));
    out.extend_from_slice(br#","tid":"#);
    let _ = serde_json::to_writer(&mut *out, &ev.tgid);
    out.extend_from_slice(br#","args":"#);
    LINE.with_borrow_mut(|line| {
        line.clear();
        let _ = write!(line, "{ev}");
        let _ = serde_json::to_writer(
            &mut *out,
            &InstantArgs {
                comm: &ev.comm,
                content: line,
            },
        );
    });
    out.extend_from_slice(br#","pid":"#);
}

pub struct Writer<W: Write> {
    out: W,
    /// Events of no container go on a "host" track.
    all: bool,
    first: bool,
}

impl<W: Write> Writer<W> {
    pub fn begin(mut out: W, all: bool) -> io::Result<Self> {
        out.write_all(br#"{"displayTimeUnit":"ms","traceEvents":["#)?;
        let mut w = Self {
            out,
            all,
            first: true,
        };
        if all {
            w.item(&json!({"name": "process_name", "ph": "M", "pid": 0,
                "args": {"name": "host (no container)"}}))?;
        }
        Ok(w)
    }

    fn item(&mut self, v: &impl serde::Serialize) -> io::Result<()> {
        if !std::mem::take(&mut self.first) {
            self.out.write_all(b",")?;
        }
        serde_json::to_writer(&mut self.out, v)?;
        Ok(())
    }

    /// The instant of an event rendered by [`instant`], on its container's track
    /// (`owner`).
    pub fn rendered(&mut self, instant: &[u8], owner: Option<usize>) -> io::Result<()> {
        let pid = match owner {
            Some(c) => track(c),
            None if self.all => 0,
            None => return Ok(()),
        };
        if !std::mem::take(&mut self.first) {
            self.out.write_all(b",")?;
        }
        self.out.write_all(instant)?;
        write!(self.out, "{pid}}}")
    }

    /// The containers' tracks and phase slices; ends the trace.
    /// `tracks`: the owner index each container's events were given with.
    pub fn finish(mut self, containers: &[Container], tracks: &[usize]) -> io::Result<W> {
        for (&i, c) in tracks.iter().zip(containers) {
            let label = format!(
                "{} {} {}",
                c.name.as_deref().unwrap_or(c.short_id()),
                c.runtime_label(),
                c.command.join(" ")
            );
            self.item(&json!({"name": "process_name", "ph": "M", "pid": track(i),
                "args": {"name": label}}))?;
            self.item(
                &json!({"name": "thread_name", "ph": "M", "pid": track(i), "tid": 0,
                "args": {"name": "phases"}}),
            )?;
            for p in &c.phases {
                self.item(&json!({
                    "name": p.kind.name(), "cat": "phase", "ph": "X",
                    "ts": us(p.start_ns), "dur": us(p.end_ns - p.start_ns).max(1.0),
                    "pid": track(i), "tid": 0,
                    "args": {"event": p.key, "events": p.events},
                }))?;
            }
        }
        self.out.write_all(b"]}\n")?;
        Ok(self.out)
    }
}
