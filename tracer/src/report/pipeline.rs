//! The calling thread's side of a report: the document's fields as they come, events through
//! the reorder window into the correlation, and each one handed to the sink; at the end the
//! containers, and warnings for everything that was not as it should be.

use std::{collections::BTreeMap, io};

use bytes::Bytes;

use super::{
    parallel::{Element, Parsed},
    window::{Window, REORDER_WINDOW_NS},
    End, Head, Prerender, Sink, Summary,
};
use crate::{
    correlate::{engine::Engine, guess_host, Context, Filter},
    document::{DocCounters, Host, Previous, Record},
    event::{Clock, Event},
};

/// Event reordering beyond this is reported (small inversions are normal: the rtnetlink
/// monitor stamps on receipt).
const DISORDER_WARN_NS: u64 = 100_000_000;
/// Without the host's namespaces in the trace (version 1, JSON Lines), they are guessed
/// from this many first events.
pub(super) const GUESS_EVENTS: usize = 10_000;

/// What went wrong or out of order while reading, for the warnings.
#[derive(Default)]
struct Oddities {
    max_ts: u64,
    worst_disorder: u64,
    last_fed: u64,
    /// Events fed out of order (later than the window).
    late: u64,
    skipped: u64,
    first_error: Option<String>,
    /// Where the input (of each file cut short) ends.
    cuts: Vec<String>,
    /// The watch was restarted over this one's document.
    previous: Option<Previous>,
}

pub(super) struct Pipeline<'s> {
    pub(super) format: Option<String>,
    pub(super) version: Option<u32>,
    host: Option<Host>,
    counters: Option<DocCounters>,
    cgroups: BTreeMap<u64, String>,
    /// Events read before the context is known (with their rendered text).
    waiting: Vec<(Event, Bytes)>,
    engine: Option<Engine>,
    sink: &'s mut dyn Sink,
    window: Window,
    events: u64,
    kinds: BTreeMap<String, u64>,
    odd: Oddities,
    /// The file being read, when there are several (for the warnings).
    pub(super) file: Option<String>,
    filter: Filter,
}

impl<'s> Pipeline<'s> {
    pub(super) fn new(sink: &'s mut dyn Sink, filter: Filter) -> Self {
        Self {
            format: None,
            version: None,
            host: None,
            counters: None,
            cgroups: BTreeMap::new(),
            waiting: Vec::new(),
            engine: None,
            sink,
            window: Window::default(),
            events: 0,
            kinds: BTreeMap::new(),
            odd: Oddities::default(),
            file: None,
            filter,
        }
    }

    pub(super) fn prerender(&self) -> Option<Prerender> {
        self.sink.prerender()
    }

    /// A top-level field of the document.
    pub(super) fn field(&mut self, key: &str, value: &[u8]) -> anyhow::Result<()> {
        fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], key: &str) -> anyhow::Result<T> {
            serde_json::from_slice(bytes)
                .map_err(|e| anyhow::anyhow!("not a valid tracer trace: {key}: {e}"))
        }
        match key {
            "format" => self.format = Some(parse(value, key)?),
            "version" => self.version = Some(parse(value, key)?),
            "host" => self.host = Some(parse(value, key)?),
            "counters" => self.counters = Some(parse(value, key)?),
            "cgroups" => self.cgroups = parse(value, key)?,
            "previous" => {
                let p: Previous = parse(value, key)?;
                self.odd.previous = Some(p);
            }
            // Containers are worked out again; anything else is not ours.
            _ => {}
        }
        Ok(())
    }

    pub(super) fn parsed(&mut self, batch: Parsed) -> io::Result<()> {
        let mut texts = batch.texts.into_iter();
        for element in batch.events {
            let text = texts.next().unwrap_or_default();
            match element {
                Ok(Element::Event(ev)) => self.push(ev, text)?,
                Ok(Element::Record(Record::Cgroup { id, path })) => self.cgroup(id, path)?,
                Err(e) => {
                    self.odd.skipped += 1;
                    self.odd.first_error.get_or_insert(e);
                }
            }
        }
        Ok(())
    }

    /// How many inputs were cut short so far.
    pub(super) fn cuts(&self) -> usize {
        self.odd.cuts.len()
    }

    /// The input ends inside a value at `at`.
    pub(super) fn cut(&mut self, at: &str) {
        self.odd.cuts.push(match &self.file {
            Some(file) => format!("{file} at {at}"),
            None => at.to_string(),
        });
    }

    /// A cgroup's name, learnt among the events.
    fn cgroup(&mut self, id: u64, path: String) -> io::Result<()> {
        if let Some(engine) = &mut self.engine {
            engine.learn_cgroup(id, &path);
            self.sink.cgroup(id, &path)?;
        }
        self.cgroups.insert(id, path);
        Ok(())
    }

    fn push(&mut self, ev: Event, text: Bytes) -> io::Result<()> {
        self.events += 1;
        let kind = ev.detail.kind_name();
        match self.kinds.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.kinds.insert(kind.to_string(), 1);
            }
        }
        let odd = &mut self.odd;
        odd.worst_disorder = odd.worst_disorder.max(odd.max_ts.saturating_sub(ev.ts_ns));
        odd.max_ts = odd.max_ts.max(ev.ts_ns);
        if self.engine.is_none() {
            self.waiting.push((ev, text));
            let known = self.host.as_ref().is_some_and(|h| h.ns.mnt != 0);
            if known || self.waiting.len() >= GUESS_EVENTS {
                self.start()?;
            }
            return Ok(());
        }
        self.window.place(ev, text);
        while let Some(p) = self.window.pop_ready() {
            self.feed(&p.ev, &p.text)?;
        }
        Ok(())
    }

    /// The context is known (or guessed): correlation and output begin.
    fn start(&mut self) -> io::Result<()> {
        let host = match &self.host {
            Some(h) if h.ns.mnt != 0 => h.ns,
            _ => guess_host(self.waiting.iter().map(|(e, _)| e)),
        };
        self.engine = Some(Engine::new(&Context {
            host,
            cgroups: &self.cgroups,
        }));
        let first = self.waiting.iter().map(|(e, _)| e.ts_ns).min().unwrap_or(0);
        let clock = Clock::from_offset(self.host.as_ref().map_or(0, |h| h.boot_to_wall_ns));
        self.filter.resolve(&clock, first);
        self.sink.begin(&Head {
            host: self.host.as_ref(),
            cgroups: &self.cgroups,
        })?;
        // Old enough to be placed: everything read so far goes through the window.
        for (ev, text) in std::mem::take(&mut self.waiting) {
            self.window.place(ev, text);
        }
        Ok(())
    }

    fn feed(&mut self, ev: &Event, text: &[u8]) -> io::Result<()> {
        if ev.ts_ns < self.odd.last_fed {
            self.odd.late += 1;
        }
        self.odd.last_fed = self.odd.last_fed.max(ev.ts_ns);
        let engine = self.engine.as_mut().expect("started");
        let owner = engine.feed_owned(ev).1;
        if !self.filter.is_empty() && !self.filter.event(ev, owner.map(|c| engine.current(c))) {
            return Ok(());
        }
        self.sink.event(ev, text, owner)
    }

    /// Flushes the window, finishes the output; the containers and warnings.
    pub(super) fn finish(mut self, jsonl: bool) -> anyhow::Result<Summary> {
        if self.engine.is_none() {
            self.start()?;
        }
        while let Some(p) = self.window.pop() {
            self.feed(&p.ev, &p.text)?;
        }
        let correlation = self.engine.take().expect("started").finish_all();
        let (tracks, containers): (Vec<usize>, Vec<_>) = correlation
            .containers
            .into_iter()
            .enumerate()
            .filter(|(_, c)| self.filter.container(c))
            .unzip();
        let counters = self.counters.take().unwrap_or_else(|| DocCounters {
            events: self.kinds.clone(),
            lost: BTreeMap::new(),
            malformed: self.odd.skipped,
        });
        self.sink.end(&End {
            host: self.host.as_ref(),
            containers: &containers,
            tracks: &tracks,
            counters: &counters,
            unattributed: &correlation.unattributed,
            unattributed_total: correlation.unattributed_total,
        })?;
        let warnings = self.warnings(jsonl, &counters);
        Ok(Summary {
            containers,
            unattributed: correlation.unattributed,
            unattributed_total: correlation.unattributed_total,
            events: self.events,
            warnings,
            boot_to_wall_ns: self.host.as_ref().map_or(0, |h| h.boot_to_wall_ns),
            last_ts_ns: (self.events > 0).then_some(self.odd.max_ts),
            cut: !self.odd.cuts.is_empty(),
            kernel: self
                .host
                .as_ref()
                .map(|h| h.kernel.clone())
                .unwrap_or_default(),
        })
    }

    fn warnings(&self, jsonl: bool, counters: &DocCounters) -> Vec<String> {
        let odd = &self.odd;
        let mut warnings = Vec::new();
        if let Some(p) = &odd.previous {
            warnings.push(format!(
                "this watch was restarted: the previous one's document ({} events{}) is {}",
                p.events,
                if p.cut { ", cut short" } else { "" },
                p.path
            ));
        }
        for at in &odd.cuts {
            warnings.push(format!(
                "the trace ends abruptly at {at} (cut short while it was written): the events \
                 before it are read"
            ));
        }
        if jsonl {
            warnings.push(
                "JSON Lines have no host section: host namespaces are guessed and wall-clock \
                 times are boot times"
                    .to_string(),
            );
        }
        if odd.skipped > 0 {
            warnings.push(format!(
                "{} {} could not be read and were left out (first: {})",
                odd.skipped,
                if jsonl { "lines" } else { "events" },
                odd.first_error.as_deref().unwrap_or_default()
            ));
        }
        if odd.worst_disorder > DISORDER_WARN_NS {
            let by = odd.worst_disorder / 1_000_000;
            warnings.push(if odd.late == 0 {
                format!("events were out of time order (by up to {by} ms); they were sorted")
            } else {
                format!(
                    "events were out of time order (by up to {by} ms); {} of them, later than \
                     {} s, were taken where they were in the file",
                    odd.late,
                    REORDER_WINDOW_NS / 1_000_000_000
                )
            });
        }
        let lost: u64 = counters.lost.values().sum();
        if lost > 0 {
            warnings.push(format!(
                "{lost} events were lost while tracing (ring buffer full): containers may be \
                 incomplete"
            ));
        }
        warnings
    }
}
