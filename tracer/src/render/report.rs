//! The outputs of `tracer report`: the lifecycle table, timelines, the trace document again,
//! and the Chrome trace, each a [`Sink`] of the report pipeline.

use std::io::{self, Read, Write};

use super::{
    chrome, lifecycle,
    timeline::{self, HostActivity},
};
use crate::{
    correlate::Container,
    document::{self, Host},
    event::{redact::Redactor, Clock, Event, HostNs},
    report::{self, End, Head, Prerender, Sink, Summary},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The lifecycle table.
    Table,
    /// Each container's phases in order (with --explain, what each does).
    Timeline,
    /// The trace document (the current version, containers worked out again).
    Json,
    /// Chrome Trace Event format, for Perfetto or chrome://tracing.
    Chrome,
    /// One self-contained HTML page: phases and processes on a time axis, and the table.
    Html,
    /// Per engine and runtime and per phase: count, p50, p90, p99 and max of the duration
    /// and of the start latency (JSON with --json).
    Stats,
}

#[derive(Clone, Copy, Debug)]
pub struct ReportOptions {
    pub format: Format,
    pub explain: bool,
    pub all: bool,
    pub color: bool,
    /// Stats as JSON.
    pub json: bool,
}

/// The lifecycle table or the timelines: written at the end, from the containers.
struct Containers<'o> {
    out: &'o mut dyn Write,
    opts: ReportOptions,
    host: Option<HostActivity>,
}

impl Sink for Containers<'_> {
    fn prerender(&self) -> Option<Prerender> {
        None
    }

    fn begin(&mut self, _: &Head<'_>) -> io::Result<()> {
        Ok(())
    }

    fn event(&mut self, ev: &Event, _: &[u8], owner: Option<usize>) -> io::Result<()> {
        if let (Some(host), None) = (&mut self.host, owner) {
            host.add(ev);
        }
        Ok(())
    }

    fn end(&mut self, end: &End<'_>) -> io::Result<()> {
        if self.opts.format == Format::Stats {
            let groups = super::stats::groups(end.containers);
            if self.opts.json {
                serde_json::to_writer_pretty(&mut *self.out, &groups)?;
                return writeln!(self.out);
            }
            return writeln!(self.out, "{}", super::stats::table(&groups));
        }
        if self.opts.format == Format::Table {
            let clock = Clock::from_offset(end.host.map_or(0, |h| h.boot_to_wall_ns));
            let table =
                lifecycle::table(end.containers, &clock, lifecycle::width(), self.opts.color);
            return writeln!(self.out, "{table}");
        }
        let mut text = timeline::render(end.containers, self.opts.explain);
        text.push_str(&timeline::unattributed(
            end.unattributed,
            end.unattributed_total,
        ));
        if let Some(host) = &self.host {
            text.push_str(&host.render());
        }
        self.out.write_all(text.as_bytes())
    }
}

/// The document again, in the current version: header, events as they come, counters and
/// containers at the end.
struct Json<'o> {
    out: &'o mut dyn Write,
    first: bool,
}

fn json_event(ev: &Event, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(out, &*Redactor::global().event(ev));
}

impl Sink for Json<'_> {
    fn prerender(&self) -> Option<Prerender> {
        Some(json_event)
    }

    fn begin(&mut self, head: &Head<'_>) -> io::Result<()> {
        let host = head.host.cloned().unwrap_or_else(|| Host {
            kernel: String::new(),
            boot_to_wall_ns: 0,
            hooks: Default::default(),
            ns: HostNs::default(),
        });
        write!(
            self.out,
            r#"{{"format":"{}","version":{},"host":"#,
            document::FORMAT,
            document::VERSION
        )?;
        serde_json::to_writer(&mut *self.out, &host)?;
        self.out.write_all(br#","cgroups":"#)?;
        serde_json::to_writer(&mut *self.out, head.cgroups)?;
        self.out.write_all(br#","events":["#)
    }

    fn event(&mut self, _: &Event, text: &[u8], _: Option<usize>) -> io::Result<()> {
        if !std::mem::take(&mut self.first) {
            self.out.write_all(b",")?;
        }
        self.out.write_all(text)
    }

    fn cgroup(&mut self, id: u64, path: &str) -> io::Result<()> {
        if !std::mem::take(&mut self.first) {
            self.out.write_all(b",")?;
        }
        let record = document::Record::Cgroup {
            id,
            path: path.to_string(),
        };
        serde_json::to_writer(&mut *self.out, &record).map_err(io::Error::from)
    }

    fn end(&mut self, end: &End<'_>) -> io::Result<()> {
        self.out.write_all(br#"],"counters":"#)?;
        serde_json::to_writer(&mut *self.out, end.counters)?;
        self.out.write_all(br#","containers":"#)?;
        let shown: Vec<_> = end.containers.iter().map(Container::redacted).collect();
        serde_json::to_writer(&mut *self.out, &shown)?;
        self.out.write_all(br#","unattributed":"#)?;
        serde_json::to_writer(&mut *self.out, end.unattributed)?;
        write!(
            self.out,
            r#","unattributed_total":{}}}"#,
            end.unattributed_total
        )?;
        self.out.write_all(b"\n")
    }
}

/// The Chrome trace: instants as they come, tracks and phase slices at the end.
struct Chrome<'o> {
    out: Option<&'o mut dyn Write>,
    writer: Option<chrome::Writer<&'o mut dyn Write>>,
    all: bool,
}

impl Sink for Chrome<'_> {
    fn prerender(&self) -> Option<Prerender> {
        Some(chrome::instant)
    }

    fn begin(&mut self, _: &Head<'_>) -> io::Result<()> {
        let out = self.out.take().expect("begun once");
        self.writer = Some(chrome::Writer::begin(out, self.all)?);
        Ok(())
    }

    fn event(&mut self, _: &Event, text: &[u8], owner: Option<usize>) -> io::Result<()> {
        self.writer.as_mut().expect("begun").rendered(text, owner)
    }

    fn end(&mut self, end: &End<'_>) -> io::Result<()> {
        self.writer
            .take()
            .expect("begun")
            .finish(end.containers, end.tracks)
            .map(drop)
    }
}

/// Runs `read` with the sink of `opts.format` writing to `out`.
fn with_sink<R>(
    opts: &ReportOptions,
    out: &mut dyn Write,
    read: impl FnOnce(&mut dyn Sink) -> R,
) -> R {
    match opts.format {
        Format::Table | Format::Timeline | Format::Stats => read(&mut Containers {
            out,
            opts: *opts,
            host: (opts.format == Format::Timeline && opts.all).then(HostActivity::default),
        }),
        Format::Json => read(&mut Json { out, first: true }),
        Format::Chrome => read(&mut Chrome {
            out: Some(out),
            writer: None,
            all: opts.all,
        }),
        Format::Html => read(&mut super::html::Html::new(out)),
    }
}

/// Reads a trace and writes the report in `opts.format` as it goes.
pub fn report(
    input: impl Read + Send,
    opts: &ReportOptions,
    out: &mut dyn Write,
) -> anyhow::Result<Summary> {
    with_sink(opts, out, |sink| report::read(input, sink))
}

/// Reports on `path` (`-`: stdin).
pub fn report_path(
    path: &std::path::Path,
    opts: &ReportOptions,
    out: &mut dyn Write,
) -> anyhow::Result<Summary> {
    with_sink(opts, out, |sink| report::read_path(path, sink))
}

/// Reports on several files read as one trace (`-`: stdin).
pub fn report_paths(
    paths: &[std::path::PathBuf],
    filter: &crate::correlate::Filter,
    opts: &ReportOptions,
    out: &mut dyn Write,
) -> anyhow::Result<Summary> {
    with_sink(opts, out, |sink| report::read_paths(paths, filter, sink))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Summary;

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
            json: false,
        };
        let summary = report(input.as_bytes(), &opts, &mut out)?;
        Ok((String::from_utf8(out).unwrap(), summary))
    }

    /// The events of the document the json format writes.
    fn events_out(input: &str) -> Vec<u64> {
        let (out, _) = run(input, Format::Json).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["version"], document::VERSION);
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
        assert!(err(&full.replace("\"version\":2", "\"version\":99")).contains("version 99"));
        assert!(err(&full.replace("tracer-trace", "other")).contains("\"other\""));
        assert!(err(r#"{"a":1}"#).contains("no \"format\""));
        assert!(err(&format!("{full} x")).contains("expected the end of the trace"));
        assert!(err(&full.replace("\"host\":{", "\"host\":[")).contains("host:"));
    }

    /// A document cut short reads up to the cut, with one warning saying where.
    #[test]
    fn cut_documents_read_up_to_the_cut() {
        let full = doc_json(&format!("{FORK},{FORK}"));
        let cut_at = |n: usize| run(&full[..n], Format::Table).unwrap().1;
        assert_eq!(cut_at(full.len() - 2).events, 2);
        let s = cut_at(full.len() - 10);
        assert_eq!(s.events, 1, "the event cut in two is left out");
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(
            s.warnings[0].starts_with("the trace ends abruptly at line 1 column "),
            "{:?}",
            s.warnings
        );
        // In the header: nothing to show, and still no error.
        assert_eq!(cut_at(40).events, 0);
        // JSON Lines cut inside the last line.
        let lines = format!("{FORK}\n{FORK}\n{}", &FORK[..30]);
        let s = run(&lines, Format::Table).unwrap().1;
        assert_eq!(s.events, 2);
        assert!(
            s.warnings.iter().any(|w| w.contains("at line 3 column 31")),
            "{:?}",
            s.warnings
        );
        // A cut is no excuse for a wrong version.
        let wrong = full.replace("\"version\":2", "\"version\":99");
        let e = run(&wrong[..wrong.len() - 10], Format::Table).unwrap_err();
        assert!(format!("{e:#}").contains("version 99"), "{e:#}");
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
        let n = 10_000u64 + 5_000;
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
            json: false,
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

    /// A rotated document's parts, given in any order, read as one trace: every event once,
    /// in time order.
    #[test]
    fn rotated_parts_read_as_one_trace() {
        use crate::{
            correlate::{Correlation, Filter},
            document::{
                writer::{part_path, DocumentWriter},
                DocCounters,
            },
            event::Detail,
            report::parts::in_order,
        };
        use std::path::PathBuf;
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("trace.json");
        let host = Host {
            kernel: "k".into(),
            boot_to_wall_ns: 0,
            hooks: Default::default(),
            ns: Default::default(),
        };
        let mut w = DocumentWriter::create(&base, host, Some(400)).unwrap();
        for ts in 1..=30 {
            w.event(&Event {
                ts_ns: ts * 1_000,
                ..Event::for_test(1, Detail::Fork { child_pid: 2 })
            })
            .unwrap();
            w.tick(&DocCounters::default()).unwrap();
        }
        let parts = w.parts();
        assert!(parts > 10, "{parts} parts");
        w.finish(&DocCounters::default(), &Correlation::default())
            .unwrap();
        let mut files: Vec<PathBuf> = (0..parts).map(|n| part_path(&base, n)).rev().collect();
        files.swap(0, 3);
        let opts = ReportOptions {
            format: Format::Json,
            explain: false,
            all: true,
            color: false,
            json: false,
        };
        let mut out = Vec::new();
        let s = report_paths(&in_order(files), &Filter::default(), &opts, &mut out).unwrap();
        assert_eq!(s.events, 30);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let ts: Vec<u64> = doc["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["ts_ns"].as_u64().unwrap())
            .collect();
        assert_eq!(ts, (1..=30).map(|t| t * 1_000).collect::<Vec<_>>());
    }
}
