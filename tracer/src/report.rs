//! `tracer report FILE`: a saved trace (the `--json` document, or `--jsonl` lines) read
//! back without root and shown as the lifecycle table, timelines, the document itself, or a
//! Chrome trace. Input is untrusted: anything malformed gives a clear error or a report
//! with warnings, never a panic.

use std::{
    collections::BTreeMap,
    fmt,
    io::{self, BufRead, BufReader, Read, Write},
    path::Path,
};

use anyhow::Context as _;
use serde::{
    de::{IgnoredAny, SeqAccess, Visitor},
    Deserialize, Deserializer,
};

use crate::{
    correlate,
    event::Event,
    render::{
        chrome,
        document::{self, DocCounters, Document, Host},
        lifecycle,
        stream::Clock,
        timeline,
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

/// A trace read back, with what was wrong with it.
pub struct Loaded {
    pub doc: Document,
    pub warnings: Vec<String>,
}

/// Event reordering beyond this is reported (small inversions are normal: the rtnetlink
/// monitor stamps on receipt).
const DISORDER_WARN_NS: u64 = 100_000_000;

/// An events array read element by element: an element that is not an event is counted and
/// skipped instead of failing the whole document.
#[derive(Default)]
struct Events {
    events: Vec<Event>,
    skipped: u64,
    first_error: Option<String>,
}

impl<'de> Deserialize<'de> for Events {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Events;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of events")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Events, A::Error> {
                let mut out = Events::default();
                while let Some(v) = seq.next_element::<serde_json::Value>()? {
                    match serde_json::from_value::<Event>(v) {
                        Ok(ev) => out.events.push(ev),
                        Err(e) => {
                            out.skipped += 1;
                            out.first_error.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Deserialize)]
struct RawDocument {
    format: String,
    version: u32,
    host: Host,
    counters: DocCounters,
    #[serde(default)]
    cgroups: BTreeMap<u64, String>,
    events: Events,
    #[serde(default, rename = "containers")]
    _containers: IgnoredAny,
}

#[derive(Deserialize)]
struct Header {
    format: Option<String>,
    version: Option<u32>,
}

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

/// Reads a trace from bytes: a document, or JSON Lines of events.
pub fn parse(bytes: &[u8]) -> anyhow::Result<Loaded> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_none() {
        anyhow::bail!("empty file: no trace in it");
    }
    if first != Some(&b'{') {
        anyhow::bail!("not a tracer trace: it does not start with a JSON object");
    }
    // JSON Lines (`watch --jsonl`): more than one line, the first one an event.
    let first_line = bytes
        .split(|b| *b == b'\n')
        .find(|l| !l.trim_ascii().is_empty());
    if let Some(line) = first_line {
        if line.len() < bytes.trim_ascii().len() && serde_json::from_slice::<Event>(line).is_ok() {
            return parse_jsonl(bytes);
        }
    }
    let raw: RawDocument = match serde_json::from_slice(bytes) {
        Ok(raw) => raw,
        Err(e) => {
            if let Ok(h) = serde_json::from_slice::<Header>(bytes) {
                check_header(h.format.as_deref(), h.version)?;
            }
            return Err(match e.classify() {
                serde_json::error::Category::Eof => anyhow::anyhow!(
                    "the trace is truncated: the JSON ends early (line {}, column {})",
                    e.line(),
                    e.column()
                ),
                serde_json::error::Category::Syntax => anyhow::anyhow!("not valid JSON: {e}"),
                _ => anyhow::anyhow!("not a valid tracer trace: {e}"),
            });
        }
    };
    check_header(Some(&raw.format), Some(raw.version))?;
    let mut warnings = Vec::new();
    if raw.events.skipped > 0 {
        warnings.push(format!(
            "{} events could not be read and were left out (first: {})",
            raw.events.skipped,
            raw.events.first_error.unwrap_or_default()
        ));
    }
    let mut doc = Document {
        format: raw.format,
        version: document::VERSION,
        host: raw.host,
        counters: raw.counters,
        cgroups: raw.cgroups,
        events: raw.events.events,
        containers: Vec::new(),
    };
    finish(&mut doc, &mut warnings);
    Ok(Loaded { doc, warnings })
}

fn parse_jsonl(bytes: &[u8]) -> anyhow::Result<Loaded> {
    let mut events = Vec::new();
    let (mut skipped, mut first_error) = (0u64, None);
    for (n, line) in BufReader::new(bytes).split(b'\n').enumerate() {
        let line = line?;
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice::<Event>(&line) {
            Ok(ev) => events.push(ev),
            Err(e) => {
                skipped += 1;
                first_error.get_or_insert_with(|| format!("line {}: {e}", n + 1));
            }
        }
    }
    let mut warnings = vec![
        "JSON Lines have no host section: host namespaces are guessed and wall-clock times \
         are boot times"
            .to_string(),
    ];
    if skipped > 0 {
        warnings.push(format!(
            "{skipped} lines could not be read and were left out (first: {})",
            first_error.unwrap_or_default()
        ));
    }
    let mut counters = DocCounters {
        events: BTreeMap::new(),
        lost: BTreeMap::new(),
        malformed: skipped,
    };
    for ev in &events {
        *counters
            .events
            .entry(ev.detail.kind().to_string())
            .or_default() += 1;
    }
    let mut doc = Document {
        format: document::FORMAT.into(),
        version: document::VERSION,
        host: Host {
            kernel: String::new(),
            boot_to_wall_ns: 0,
            hooks: BTreeMap::new(),
            ns: Default::default(),
        },
        counters,
        cgroups: BTreeMap::new(),
        events,
        containers: Vec::new(),
    };
    finish(&mut doc, &mut warnings);
    Ok(Loaded { doc, warnings })
}

/// Orders the events (warning when they were far out of order) and notes losses.
fn finish(doc: &mut Document, warnings: &mut Vec<String>) {
    let mut max = 0u64;
    let mut worst = 0u64;
    for e in &doc.events {
        worst = worst.max(max.saturating_sub(e.ts_ns));
        max = max.max(e.ts_ns);
    }
    if worst > DISORDER_WARN_NS {
        warnings.push(format!(
            "events were out of time order (by up to {} ms); they were sorted",
            worst / 1_000_000
        ));
    }
    doc.events.sort_by_key(|e| e.ts_ns);
    let lost: u64 = doc.counters.lost.values().sum();
    if lost > 0 {
        warnings.push(format!(
            "{lost} events were lost while tracing (ring buffer full): containers may be \
             incomplete"
        ));
    }
}

/// Reads `path` (`-`: stdin).
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        io::stdin().read_to_end(&mut bytes)?;
    } else {
        bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    }
    parse(&bytes).with_context(|| format!("{}", path.display()))
}

/// Renders a loaded trace.
pub fn render(loaded: &Loaded, opts: &ReportOptions, out: &mut dyn Write) -> anyhow::Result<()> {
    let doc = &loaded.doc;
    let ctx = doc.context();
    let (containers, owners) = correlate::correlate(&doc.events, &ctx);
    let clock = Clock::from_offset(doc.host.boot_to_wall_ns);
    match opts.format {
        Format::Table => {
            writeln!(
                out,
                "{}",
                lifecycle::table(&containers, &clock, lifecycle::width(), opts.color)
            )?;
        }
        Format::Timeline => {
            write!(out, "{}", timeline::render(&containers, opts.explain))?;
            if opts.all {
                write!(out, "{}", timeline::host_activity(&doc.events, &owners))?;
            }
        }
        Format::Json => {
            let doc = Document {
                format: doc.format.clone(),
                version: document::VERSION,
                host: doc.host.clone(),
                counters: doc.counters.clone(),
                cgroups: doc.cgroups.clone(),
                events: doc.events.clone(),
                containers,
            };
            serde_json::to_writer(&mut *out, &doc)?;
            writeln!(out)?;
        }
        Format::Chrome => {
            serde_json::to_writer(
                &mut *out,
                &chrome::trace(&containers, &doc.events, &owners, opts.all),
            )?;
            writeln!(out)?;
        }
    }
    Ok(())
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

    #[test]
    fn reads_a_document() {
        let l = parse(doc_json(FORK).as_bytes()).unwrap();
        assert_eq!(l.doc.events.len(), 1);
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    }

    #[test]
    fn clear_errors() {
        let err = |s: &str| format!("{:#}", parse(s.as_bytes()).err().expect(s));
        assert!(err("").contains("empty"));
        assert!(err("[1,2]").contains("does not start with a JSON object"));
        assert!(err("{nope").contains("not valid JSON"));
        let full = doc_json(FORK);
        assert!(err(&full[..full.len() - 10]).contains("truncated"));
        assert!(err(&full.replace("\"version\":2", "\"version\":99")).contains("version 99"));
        assert!(err(&full.replace("tracer-trace", "other")).contains("\"other\""));
        assert!(err(r#"{"a":1}"#).contains("no \"format\""));
    }

    #[test]
    fn best_effort_with_warnings() {
        let bad = r#"{"ts_ns":1,"kind":"nonsense"}"#;
        let late = FORK.replace("\"ts_ns\":5", "\"ts_ns\":900000000");
        let l = parse(doc_json(&format!("{late},{bad},{FORK}")).as_bytes()).unwrap();
        assert_eq!(l.doc.events.len(), 2);
        assert_eq!(l.doc.events[0].ts_ns, 5, "sorted");
        assert!(l
            .warnings
            .iter()
            .any(|w| w.contains("1 events could not be read")));
        assert!(l.warnings.iter().any(|w| w.contains("out of time order")));
    }

    #[test]
    fn reads_json_lines() {
        let l = parse(format!("{FORK}\n{FORK}\nnot json\n").as_bytes()).unwrap();
        assert_eq!(l.doc.events.len(), 2);
        assert!(l
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
            if let Ok(loaded) = parse(&input) {
                read += 1;
                for format in [
                    Format::Table,
                    Format::Timeline,
                    Format::Json,
                    Format::Chrome,
                ] {
                    let mut sink = Vec::new();
                    render(&loaded, &ReportOptions { format, ..opts }, &mut sink).unwrap();
                }
            }
        }
        assert!(read > 0, "some mutations still read");
    }
}
