//! `tracer report FILE`: a saved trace (the `--json` document, or `--jsonl` lines) read
//! back without root and shown as the lifecycle table, timelines, the document itself, or a
//! Chrome trace. Input is untrusted: anything malformed gives a clear error or a report
//! with warnings, never a panic.
//!
//! The trace is streamed: each event is read, put back in time order within a window,
//! correlated and written out (json, chrome) before the next is read, so memory stays flat
//! however long the trace is.

mod scan;

use std::{
    collections::{BTreeMap, VecDeque},
    io::{self, BufRead, BufReader, Read, Write},
    path::Path,
};

use anyhow::Context as _;

use self::scan::Scanner;
use crate::{
    correlate::{engine::Engine, guess_host, Container, Context},
    event::Event,
    render::{
        chrome,
        document::{self, DocCounters, Host, HostNs},
        lifecycle,
        stream::Clock,
        timeline::{self, HostActivity},
    },
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The lifecycle table.
    Table,
    /// Each container's phases in order (with --explain, what each does).
    Timeline,
    /// The trace document (version 2, containers worked out again).
    Json,
    /// Chrome Trace Event format, for Perfetto or chrome://tracing.
    Chrome,
}

#[derive(Clone, Copy, Debug)]
pub struct ReportOptions {
    pub format: Format,
    pub explain: bool,
    pub all: bool,
    pub color: bool,
}

/// What a report found besides its output.
#[derive(Debug)]
pub struct Summary {
    pub containers: Vec<Container>,
    /// Events read (unreadable ones are not counted).
    pub events: u64,
    pub warnings: Vec<String>,
}

/// Event reordering beyond this is reported (small inversions are normal: the rtnetlink
/// monitor stamps on receipt).
const DISORDER_WARN_NS: u64 = 100_000_000;
/// Events are put back in time order within this window; one later than that is taken
/// where it arrives (and said so).
const REORDER_WINDOW_NS: u64 = 2_000_000_000;
/// Without the host's namespaces in the trace (version 1, JSON Lines), they are guessed
/// from this many first events.
const GUESS_EVENTS: usize = 10_000;
/// How much of the input is looked at to tell JSON Lines from a document.
const HEAD_BYTES: u64 = 1 << 20;

fn check_header(format: Option<&str>, version: Option<u32>) -> anyhow::Result<()> {
    match format {
        Some(document::FORMAT) => {}
        Some(other) => anyhow::bail!(
            "not a tracer trace: its format is {other:?}, expected {:?}",
            document::FORMAT
        ),
        None => anyhow::bail!("not a tracer trace: no \"format\" field"),
    }
    match version {
        Some(v) if (document::OLDEST_VERSION..=document::VERSION).contains(&v) => Ok(()),
        Some(v) => anyhow::bail!(
            "trace format version {v} is not supported (this tracer reads versions {} to {})",
            document::OLDEST_VERSION,
            document::VERSION
        ),
        None => anyhow::bail!("not a tracer trace: no \"version\" field"),
    }
}

/// Refuses a format or version that is there and wrong (a missing one may still come).
fn check_known(format: Option<&str>, version: Option<u32>) -> anyhow::Result<()> {
    check_header(
        Some(format.unwrap_or(document::FORMAT)),
        Some(version.unwrap_or(document::VERSION)),
    )
}

/// Where the correlated events go, by format.
enum Sink<'o> {
    /// Only the containers are shown, at the end.
    Containers,
    Timeline(Option<HostActivity>),
    Json {
        out: &'o mut dyn Write,
        first: bool,
    },
    Chrome(chrome::Writer<&'o mut dyn Write>),
}

/// An event waiting in the reorder window.
struct Pending {
    ts: u64,
    seq: u64,
    ev: Event,
    /// The event as the format writes it (rendered by a parser thread).
    text: Vec<u8>,
}

/// The read side (header fields as they come), the correlation, and the output.
struct Pipeline<'o> {
    opts: ReportOptions,
    format: Option<String>,
    version: Option<u32>,
    host: Option<Host>,
    counters: Option<DocCounters>,
    cgroups: BTreeMap<u64, String>,
    /// Events read before the context is known (with their rendered text).
    waiting: Vec<(Event, Vec<u8>)>,
    engine: Option<Engine>,
    sink: Option<Sink<'o>>,
    out: Option<&'o mut dyn Write>,
    /// Ordered by (ts, seq). Input is nearly sorted, so nearly every event goes on the
    /// back (a heap moved each ~250-byte event a dozen times).
    window: VecDeque<Pending>,
    seq: u64,
    max_ts: u64,
    worst_disorder: u64,
    last_fed: u64,
    /// Events fed out of order (later than the window).
    late: u64,
    events: u64,
    kinds: BTreeMap<String, u64>,
    skipped: u64,
    first_error: Option<String>,
}

impl<'o> Pipeline<'o> {
    fn new(opts: ReportOptions, out: &'o mut dyn Write) -> Self {
        Self {
            opts,
            format: None,
            version: None,
            host: None,
            counters: None,
            cgroups: BTreeMap::new(),
            waiting: Vec::new(),
            engine: None,
            sink: None,
            out: Some(out),
            window: VecDeque::new(),
            seq: 0,
            max_ts: 0,
            worst_disorder: 0,
            last_fed: 0,
            late: 0,
            events: 0,
            kinds: BTreeMap::new(),
            skipped: 0,
            first_error: None,
        }
    }

    fn skip(&mut self, error: String) {
        self.skipped += 1;
        self.first_error.get_or_insert(error);
    }

    fn push(&mut self, ev: Event, text: Vec<u8>) -> io::Result<()> {
        self.events += 1;
        if let Some(n) = self.kinds.get_mut(ev.detail.kind()) {
            *n += 1;
        } else {
            self.kinds.insert(ev.detail.kind().to_string(), 1);
        }
        self.worst_disorder = self
            .worst_disorder
            .max(self.max_ts.saturating_sub(ev.ts_ns));
        self.max_ts = self.max_ts.max(ev.ts_ns);
        if self.engine.is_none() {
            self.waiting.push((ev, text));
            let known = self.host.as_ref().is_some_and(|h| h.ns.mnt != 0);
            if known || self.waiting.len() >= GUESS_EVENTS {
                self.start()?;
            }
            return Ok(());
        }
        self.place(ev, text);
        while let Some(p) = self.window.front() {
            if p.ts.saturating_add(REORDER_WINDOW_NS) > self.max_ts {
                break;
            }
            let p = self.window.pop_front().expect("looked at");
            self.feed(&p)?;
        }
        Ok(())
    }

    /// Puts an event in the window at its place in time (ties in arrival order).
    fn place(&mut self, ev: Event, text: Vec<u8>) {
        let p = Pending {
            ts: ev.ts_ns,
            seq: self.seq,
            ev,
            text,
        };
        self.seq += 1;
        let key = (p.ts, p.seq);
        let at = match self.window.back() {
            Some(last) if (last.ts, last.seq) > key => {
                self.window.partition_point(|q| (q.ts, q.seq) <= key)
            }
            _ => self.window.len(),
        };
        self.window.insert(at, p);
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
        self.sink = Some(match self.opts.format {
            Format::Table => Sink::Containers,
            Format::Timeline => Sink::Timeline(self.opts.all.then(HostActivity::default)),
            Format::Json => {
                let out = self.out.take().expect("started once");
                let host = self.host.clone().unwrap_or_else(|| Host {
                    kernel: String::new(),
                    boot_to_wall_ns: 0,
                    hooks: BTreeMap::new(),
                    ns: HostNs::default(),
                });
                write!(
                    out,
                    r#"{{"format":"{}","version":{},"host":"#,
                    document::FORMAT,
                    document::VERSION
                )?;
                serde_json::to_writer(&mut *out, &host)?;
                out.write_all(br#","cgroups":"#)?;
                serde_json::to_writer(&mut *out, &self.cgroups)?;
                out.write_all(br#","events":["#)?;
                Sink::Json { out, first: true }
            }
            Format::Chrome => Sink::Chrome(chrome::Writer::begin(
                self.out.take().expect("started once"),
                self.opts.all,
            )?),
        });
        // Old enough to be placed: everything read so far goes through the window.
        for (ev, text) in std::mem::take(&mut self.waiting) {
            self.place(ev, text);
        }
        Ok(())
    }

    fn feed(&mut self, p: &Pending) -> io::Result<()> {
        let ev = &p.ev;
        if ev.ts_ns < self.last_fed {
            self.late += 1;
        }
        self.last_fed = self.last_fed.max(ev.ts_ns);
        let engine = self.engine.as_mut().expect("started");
        let owner = engine.feed_owned(ev).1;
        match self.sink.as_mut().expect("started") {
            Sink::Containers => {}
            Sink::Timeline(host) => {
                if let (Some(host), None) = (host, owner) {
                    host.add(ev);
                }
            }
            Sink::Json { out, first } => {
                if !std::mem::take(first) {
                    out.write_all(b",")?;
                }
                out.write_all(&p.text)?;
            }
            Sink::Chrome(w) => w.rendered(&p.text, owner)?,
        }
        Ok(())
    }

    /// Flushes the window, finishes the output; the containers and warnings.
    fn finish(mut self, jsonl: bool) -> anyhow::Result<Summary> {
        if self.engine.is_none() {
            self.start()?;
        }
        while let Some(p) = self.window.pop_front() {
            self.feed(&p)?;
        }
        let containers = self.engine.take().expect("started").finish();
        let counters = self.counters.take().unwrap_or_else(|| DocCounters {
            events: self.kinds.clone(),
            lost: BTreeMap::new(),
            malformed: self.skipped,
        });
        let opts = self.opts;
        match self.sink.take().expect("started") {
            Sink::Containers => {
                let clock = Clock::from_offset(self.host.as_ref().map_or(0, |h| h.boot_to_wall_ns));
                let out = self.out_after_start();
                writeln!(
                    out,
                    "{}",
                    lifecycle::table(&containers, &clock, lifecycle::width(), opts.color)
                )?;
            }
            Sink::Timeline(host) => {
                let mut text = timeline::render(&containers, opts.explain);
                if let Some(host) = host {
                    text.push_str(&host.render());
                }
                self.out_after_start().write_all(text.as_bytes())?;
            }
            Sink::Json { out, .. } => {
                out.write_all(br#"],"counters":"#)?;
                serde_json::to_writer(&mut *out, &counters)?;
                out.write_all(br#","containers":"#)?;
                serde_json::to_writer(&mut *out, &containers)?;
                out.write_all(b"}\n")?;
            }
            Sink::Chrome(w) => {
                w.finish(&containers)?;
            }
        }
        let mut warnings = Vec::new();
        if jsonl {
            warnings.push(
                "JSON Lines have no host section: host namespaces are guessed and wall-clock \
                 times are boot times"
                    .to_string(),
            );
        }
        if self.skipped > 0 {
            warnings.push(format!(
                "{} {} could not be read and were left out (first: {})",
                self.skipped,
                if jsonl { "lines" } else { "events" },
                self.first_error.unwrap_or_default()
            ));
        }
        if self.worst_disorder > DISORDER_WARN_NS {
            warnings.push(if self.late == 0 {
                format!(
                    "events were out of time order (by up to {} ms); they were sorted",
                    self.worst_disorder / 1_000_000
                )
            } else {
                format!(
                    "events were out of time order (by up to {} ms); {} of them, later than \
                     {} s, were taken where they were in the file",
                    self.worst_disorder / 1_000_000,
                    self.late,
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
        Ok(Summary {
            containers,
            events: self.events,
            warnings,
        })
    }

    /// The output, for formats written only at the end (their sink did not take it).
    fn out_after_start(&mut self) -> &mut dyn Write {
        self.out
            .as_deref_mut()
            .expect("table and timeline sinks leave the output here")
    }
}

/// What the document is made of, as the scanner finds it.
enum Item<'a> {
    /// A top-level field other than the events: its name and whole value.
    Field(&'a str, &'a [u8]),
    /// The events array begins.
    Events,
    /// One element of the events array.
    Event(&'a [u8]),
}

/// Splits the document into its fields and its events' elements.
fn read_document<R: Read>(
    sc: &mut Scanner<R>,
    on: &mut dyn FnMut(Item) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    sc.expect(b'{', "an object")?;
    if sc.peek()? == Some(b'}') {
        sc.one_of(b"}", "'}'")?;
    } else {
        loop {
            if sc.peek()? != Some(b'"') {
                return Err(sc.error("a field name").into());
            }
            let key: String = serde_json::from_slice(sc.value()?)
                .map_err(|e| anyhow::anyhow!("not valid JSON: a field name: {e}"))?;
            sc.expect(b':', "':'")?;
            if key == "events" {
                on(Item::Events)?;
                sc.expect(b'[', "the events array")?;
                if sc.peek()? == Some(b']') {
                    sc.one_of(b"]", "']'")?;
                } else {
                    loop {
                        on(Item::Event(sc.value()?))?;
                        if sc.one_of(b",]", "',' or ']'")? == b']' {
                            break;
                        }
                    }
                }
            } else {
                on(Item::Field(&key, sc.value()?))?;
            }
            if sc.one_of(b",}", "',' or '}'")? == b'}' {
                break;
            }
        }
    }
    if sc.peek()?.is_some() {
        return Err(sc.error("the end of the trace").into());
    }
    Ok(())
}

impl Pipeline<'_> {
    /// A top-level field of the document.
    fn field(&mut self, key: &str, value: &[u8]) -> anyhow::Result<()> {
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
            // Containers are worked out again; anything else is not ours.
            _ => {}
        }
        Ok(())
    }

    fn parsed(&mut self, batch: Parsed) -> io::Result<()> {
        let mut texts = batch.texts.into_iter();
        for ev in batch.events {
            let text = texts.next().unwrap_or_default();
            match ev {
                Ok(ev) => self.push(ev, text)?,
                Err(e) => self.skip(e),
            }
        }
        Ok(())
    }
}

/// Events handed to the parser threads, many at a time.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// Where each event ends in `bytes`.
    ends: Vec<usize>,
    /// The input line of each (JSON Lines: for errors).
    lines: Vec<usize>,
}

/// A batch parsed, each event also rendered the way the output format writes it.
struct Parsed {
    events: Vec<Result<Event, String>>,
    texts: Vec<Vec<u8>>,
}

const BATCH_EVENTS: usize = 1024;
/// Batches read ahead of the correlation, at most.
const IN_FLIGHT: usize = 16;

impl Batch {
    fn parse(&self, format: Format) -> Parsed {
        let mut start = 0;
        let mut texts = Vec::new();
        let events =
            self.ends
                .iter()
                .enumerate()
                .map(|(i, &end)| {
                    let r = serde_json::from_slice::<Event>(&self.bytes[start..end]).map_err(|e| {
                        match self.lines.get(i) {
                            Some(line) => format!("line {line}: {e}"),
                            None => e.to_string(),
                        }
                    });
                    start = end;
                    let mut text = Vec::new();
                    if let Ok(ev) = &r {
                        match format {
                            Format::Json => {
                                let _ = serde_json::to_writer(&mut text, ev);
                            }
                            Format::Chrome => chrome::instant(ev, &mut text),
                            Format::Table | Format::Timeline => {}
                        }
                    }
                    texts.push(text);
                    r
                })
                .collect();
        Parsed { events, texts }
    }
}

/// What the reader thread finds, in input order.
enum Found {
    Field(String, Vec<u8>),
    /// The events array begins.
    Events,
    Parsed(Parsed),
    /// The input is read (or could not be).
    End(anyhow::Result<()>),
}

/// The reader thread: splits the input into fields and batches of events; the batches go
/// to the parser threads, everything is numbered so it is taken back in input order.
struct Reader {
    work: std::sync::mpsc::SyncSender<(u64, Batch)>,
    found: std::sync::mpsc::Sender<(u64, Found)>,
    /// One token per batch not yet taken back: bounds memory when output is the slow part.
    tokens: std::sync::mpsc::SyncSender<()>,
    seq: u64,
    batch: Batch,
}

impl Reader {
    fn found(&mut self, f: Found) -> anyhow::Result<()> {
        self.found
            .send((self.seq, f))
            .map_err(|_| anyhow::anyhow!("report stopped"))?;
        self.seq += 1;
        Ok(())
    }

    fn event(&mut self, bytes: &[u8], line: Option<usize>) -> anyhow::Result<()> {
        self.batch.bytes.extend_from_slice(bytes);
        self.batch.ends.push(self.batch.bytes.len());
        self.batch.lines.extend(line);
        if self.batch.ends.len() == BATCH_EVENTS {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> anyhow::Result<()> {
        if self.batch.ends.is_empty() {
            return Ok(());
        }
        let stopped = || anyhow::anyhow!("report stopped");
        self.tokens.send(()).map_err(|_| stopped())?;
        self.work
            .send((self.seq, std::mem::take(&mut self.batch)))
            .map_err(|_| stopped())?;
        self.seq += 1;
        Ok(())
    }

    fn read(&mut self, input: impl Read, jsonl: bool) -> anyhow::Result<()> {
        if jsonl {
            let reader = BufReader::with_capacity(1 << 16, input);
            for (n, line) in reader.split(b'\n').enumerate() {
                let line = line?;
                if !line.trim_ascii().is_empty() {
                    self.event(&line, Some(n + 1))?;
                }
            }
        } else {
            let mut sc = Scanner::new(input);
            read_document(&mut sc, &mut |item| match item {
                Item::Field(key, value) => self.found(Found::Field(key.into(), value.to_vec())),
                Item::Events => self.found(Found::Events),
                Item::Event(bytes) => self.event(bytes, None),
            })?;
        }
        self.send()
    }
}

/// Reads on one thread, parses (and renders) on every CPU, and correlates and writes on
/// the calling thread, in input order.
fn read_parallel(input: impl Read + Send, jsonl: bool, p: &mut Pipeline) -> anyhow::Result<()> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let format = p.opts.format;
    std::thread::scope(|s| {
        let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<(u64, Batch)>(workers);
        let (found_tx, found_rx) = std::sync::mpsc::channel::<(u64, Found)>();
        let (tokens_tx, tokens_rx) = std::sync::mpsc::sync_channel::<()>(IN_FLIGHT);
        let work_rx = std::sync::Arc::new(std::sync::Mutex::new(work_rx));
        for _ in 0..workers {
            let (work, found) = (work_rx.clone(), found_tx.clone());
            s.spawn(move || loop {
                let next = work.lock().map(|w| w.recv());
                let Ok(Ok((n, batch))) = next else { return };
                if found.send((n, Found::Parsed(batch.parse(format)))).is_err() {
                    return;
                }
            });
        }
        s.spawn(move || {
            let mut reader = Reader {
                work: work_tx,
                found: found_tx,
                tokens: tokens_tx,
                seq: 0,
                batch: Batch::default(),
            };
            let result = reader.read(input, jsonl);
            let _ = reader.found(Found::End(result));
        });
        let mut next = 0;
        let mut arrived = BTreeMap::new();
        loop {
            let (n, found) = found_rx
                .recv()
                .map_err(|_| anyhow::anyhow!("the trace reader stopped"))?;
            arrived.insert(n, found);
            while let Some(found) = arrived.remove(&next) {
                next += 1;
                match found {
                    Found::Field(key, value) => p.field(&key, &value)?,
                    // A wrong format or version is refused before its events are read.
                    Found::Events => check_known(p.format.as_deref(), p.version)?,
                    Found::Parsed(batch) => {
                        let _ = tokens_rx.recv();
                        p.parsed(batch)?;
                    }
                    Found::End(result) => return result,
                }
            }
        }
    })
}

/// Reads a trace (a document, or JSON Lines of events) and writes the report as it goes.
pub fn report(
    input: impl Read + Send,
    opts: &ReportOptions,
    out: &mut dyn Write,
) -> anyhow::Result<Summary> {
    let mut input = input;
    let mut head = Vec::new();
    input.by_ref().take(HEAD_BYTES).read_to_end(&mut head)?;
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_none() {
        anyhow::bail!("empty file: no trace in it");
    }
    if first != Some(&b'{') {
        anyhow::bail!("not a tracer trace: it does not start with a JSON object");
    }
    // JSON Lines (`watch --jsonl`): more than one line, the first one an event.
    let trimmed = head.trim_ascii();
    let jsonl = trimmed
        .iter()
        .position(|b| *b == b'\n')
        .is_some_and(|end| serde_json::from_slice::<Event>(&trimmed[..end]).is_ok());
    let input = io::Cursor::new(head).chain(input);
    let mut p = Pipeline::new(*opts, out);
    if let Err(e) = read_parallel(input, jsonl, &mut p) {
        // A wrong format or version says more than what it made fail further on.
        check_known(p.format.as_deref(), p.version)?;
        return Err(e);
    }
    if !jsonl {
        check_header(p.format.as_deref(), p.version)?;
    }
    p.finish(jsonl)
}

/// Reports on `path` (`-`: stdin).
pub fn report_path(
    path: &Path,
    opts: &ReportOptions,
    out: &mut dyn Write,
) -> anyhow::Result<Summary> {
    let result = if path == Path::new("-") {
        report(io::stdin(), opts, out)
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        report(file, opts, out)
    };
    result.with_context(|| format!("{}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_json(events: &str) -> String {
        format!(
            r#"{{"format":"tracer-trace","version":2,"host":{{"kernel":"6.1","boot_to_wall_ns":0,"hooks":{{}}}},"counters":{{"events":{{}},"lost":{{}},"malformed":0}},"events":[{events}]}}"#
        )
    }

    const FORK: &str = r#"{"ts_ns":5,"pid":1,"tgid":1,"ppid":0,"uid":0,"comm":"sh","cgroup_id":1,"kind":"fork","child_pid":2}"#;

    /// The report of `input` in `format`: its output and summary.
    fn run(input: &str, format: Format) -> anyhow::Result<(String, Summary)> {
        let mut out = Vec::new();
        let opts = ReportOptions {
            format,
            explain: false,
            all: true,
            color: false,
        };
        let summary = report(input.as_bytes(), &opts, &mut out)?;
        Ok((String::from_utf8(out).unwrap(), summary))
    }

    /// The events of the document the json format writes.
    fn events_out(input: &str) -> Vec<u64> {
        let (out, _) = run(input, Format::Json).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["version"], 2);
        doc["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["ts_ns"].as_u64().unwrap())
            .collect()
    }

    #[test]
    fn reads_a_document() {
        let (_, s) = run(&doc_json(FORK), Format::Table).unwrap();
        assert_eq!(s.events, 1);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(events_out(&doc_json(FORK)), [5]);
        // Fields in any order, unknown ones skipped, whitespace anywhere.
        let shuffled = format!(
            "{{ \"events\" : [ {FORK} ] ,\n \"extra\": [1, {{\"a\": \"]\"}}], \"version\": 2, \
             \"format\": \"tracer-trace\" }}\n"
        );
        let (_, s) = run(&shuffled, Format::Table).unwrap();
        assert_eq!(s.events, 1);
    }

    #[test]
    fn clear_errors() {
        let err = |s: &str| format!("{:#}", run(s, Format::Table).expect_err(s));
        assert!(err("").contains("empty"));
        assert!(err("[1,2]").contains("does not start with a JSON object"));
        assert!(err("{nope").contains("not valid JSON"));
        let full = doc_json(FORK);
        assert!(err(&full[..full.len() - 10]).contains("truncated"));
        assert!(err(&full[..40]).contains("truncated"));
        assert!(err(&full.replace("\"version\":2", "\"version\":99")).contains("version 99"));
        assert!(err(&full.replace("tracer-trace", "other")).contains("\"other\""));
        assert!(err(r#"{"a":1}"#).contains("no \"format\""));
        assert!(err(&format!("{full} x")).contains("expected the end of the trace"));
        assert!(err(&full.replace("\"host\":{", "\"host\":[")).contains("host:"));
    }

    #[test]
    fn best_effort_with_warnings() {
        let bad = r#"{"ts_ns":1,"kind":"nonsense"}"#;
        let late = FORK.replace("\"ts_ns\":5", "\"ts_ns\":900000000");
        let input = doc_json(&format!("{late},{bad},{FORK}"));
        let (_, s) = run(&input, Format::Table).unwrap();
        assert_eq!(s.events, 2);
        assert_eq!(events_out(&input), [5, 900_000_000], "sorted");
        assert!(s
            .warnings
            .iter()
            .any(|w| w.contains("1 events could not be read")));
        assert!(s
            .warnings
            .iter()
            .any(|w| w.contains("out of time order") && w.contains("they were sorted")));
    }

    /// Far beyond the reorder window, an event is taken where it is, and that is said.
    #[test]
    fn very_late_events_are_reported() {
        let at = |ts: u64| FORK.replace("\"ts_ns\":5", &format!("\"ts_ns\":{ts}"));
        // With the host's namespaces known, events stream through the window at once.
        let input = doc_json(&format!(
            "{},{},{},{}",
            at(1_000_000_000),
            at(10_000_000_000),
            at(13_000_000_000),
            at(2_000_000_000)
        ))
        .replace(
            r#""hooks":{}"#,
            r#""hooks":{},"ns":{"mnt":1,"pid":2,"net":3}"#,
        );
        // 10 s had gone out when 13 s came; 2 s came after that.
        assert_eq!(
            events_out(&input),
            [1_000_000_000, 10_000_000_000, 2_000_000_000, 13_000_000_000]
        );
        let (_, s) = run(&input, Format::Table).unwrap();
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("1 of them, later than 2 s")),
            "{:?}",
            s.warnings
        );
    }

    /// More events than the reorder window and the host guess hold: every one comes out,
    /// in order.
    #[test]
    fn long_traces_stream_in_order() {
        let n = GUESS_EVENTS as u64 + 5_000;
        let events: Vec<String> = (0..n)
            .map(|i| {
                // Pairs swapped: slightly out of order throughout.
                let ts = (i ^ 1) * 1_000_000;
                FORK.replace("\"ts_ns\":5", &format!("\"ts_ns\":{ts}"))
            })
            .collect();
        let out = events_out(&doc_json(&events.join(",")));
        assert_eq!(out.len() as u64, n);
        assert!(out.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn reads_json_lines() {
        let (_, s) = run(&format!("{FORK}\n{FORK}\nnot json\n"), Format::Table).unwrap();
        assert_eq!(s.events, 2);
        assert!(s
            .warnings
            .iter()
            .any(|w| w.contains("1 lines could not be read")));
    }

    /// Random and mutated input never panics: it is read or refused with an error.
    #[test]
    fn random_and_mutated_input_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let fixture = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/docker-run.json"
        ))
        .unwrap();
        let opts = ReportOptions {
            format: Format::Timeline,
            explain: true,
            all: true,
            color: false,
        };
        let mut read = 0;
        for round in 0..400 {
            let mut input = fixture.clone();
            match round % 4 {
                // Truncated anywhere.
                0 => input.truncate((next() % input.len() as u64) as usize),
                // Bytes flipped.
                1 => {
                    for _ in 0..1 + next() % 8 {
                        let i = (next() % input.len() as u64) as usize;
                        input[i] = (next() & 0xff) as u8;
                    }
                }
                // A span replaced by a huge string or deep nesting.
                2 => {
                    let i = (next() % input.len() as u64) as usize;
                    let filler: Vec<u8> = if next() % 2 == 0 {
                        format!("\"{}\"", "x".repeat(200_000)).into_bytes()
                    } else {
                        "[".repeat(10_000).into_bytes()
                    };
                    input.splice(i..i, filler);
                }
                // Pure noise.
                _ => {
                    input = (0..next() % 4096).map(|_| (next() & 0xff) as u8).collect();
                    if next() % 2 == 0 {
                        input.insert(0, b'{');
                    }
                }
            }
            for format in [
                Format::Table,
                Format::Timeline,
                Format::Json,
                Format::Chrome,
            ] {
                let mut sink = Vec::new();
                if report(&input[..], &ReportOptions { format, ..opts }, &mut sink).is_ok() {
                    read += 1;
                }
            }
        }
        assert!(read > 0, "some mutations still read");
    }
}
