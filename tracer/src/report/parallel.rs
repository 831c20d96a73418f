//! Reading on one thread, parsing (and pre-rendering) on every CPU, and taking the results
//! back in input order on the calling thread, which correlates and writes. Memory is bounded
//! by the batches in flight.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read},
};

use bytes::Bytes;

use super::{
    pipeline::Pipeline,
    scan::{ScanError, Scanner},
    sniff::check_known,
    split::{read_document, Item},
    Prerender,
};
use crate::{document::Record, event::Event};

/// An element of the events array: an event, or a record (a cgroup's name).
// Records are few: boxing every event instead would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub(super) enum Element {
    Event(Event),
    Record(Record),
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

/// A batch parsed, each event also rendered the way the output format writes it: the
/// texts share one buffer (an allocation per event, freed on another thread, cost a
/// fifth of a Chrome report).
pub(super) struct Parsed {
    pub(super) events: Vec<Result<Element, String>>,
    pub(super) texts: Vec<Bytes>,
}

const BATCH_EVENTS: usize = 1024;
/// Batches read ahead of the correlation, at most.
const IN_FLIGHT: usize = 16;

impl Batch {
    fn parse(&self, prerender: Option<Prerender>) -> Parsed {
        let mut start = 0;
        // About the size of the input: grown by doubling, the spare half would stay
        // allocated as long as any of its events waits in the reorder window.
        let mut rendered = Vec::with_capacity(if prerender.is_some() {
            self.bytes.len()
        } else {
            0
        });
        let mut text_ends = Vec::with_capacity(self.ends.len());
        // UTF-8 checked once for the batch: read from a str, serde_json does not check
        // every string again (a seventh of the parse).
        let text = std::str::from_utf8(&self.bytes).ok();
        let events = self
            .ends
            .iter()
            .enumerate()
            .map(|(i, &end)| {
                let bytes = &self.bytes[start..end];
                let r = if Record::is_record(bytes) {
                    serde_json::from_slice(bytes).map(Element::Record)
                } else if let Some(s) = text.and_then(|t| t.get(start..end)) {
                    Event::from_json(s).map(Element::Event)
                } else {
                    serde_json::from_slice(bytes).map(Element::Event)
                };
                let r = r.map_err(|e| match self.lines.get(i) {
                    Some(line) => format!("line {line}: {e}"),
                    None => e.to_string(),
                });
                start = end;
                if let (Ok(Element::Event(ev)), Some(render)) = (&r, prerender) {
                    render(ev, &mut rendered);
                }
                text_ends.push(rendered.len());
                r
            })
            .collect();
        let rendered = Bytes::from(rendered);
        let mut from = 0;
        let texts = text_ends
            .into_iter()
            .map(|to| {
                let text = rendered.slice(from..to);
                from = to;
                text
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
    /// The input ends inside a value, here: what came before it is read.
    Cut(String),
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
    /// Where the input ended inside a value.
    cut: Option<String>,
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
        // The next batch is likely about the size of this one: sized once, not grown.
        let next = Batch {
            bytes: Vec::with_capacity(self.batch.bytes.len() + self.batch.bytes.len() / 4),
            ends: Vec::with_capacity(BATCH_EVENTS),
            lines: Vec::new(),
        };
        self.work
            .send((self.seq, std::mem::replace(&mut self.batch, next)))
            .map_err(|_| stopped())?;
        self.seq += 1;
        Ok(())
    }

    /// Reads the whole input; one cut short is read up to where it ends.
    fn read(&mut self, input: impl Read, jsonl: bool) -> anyhow::Result<()> {
        let result = if jsonl {
            self.read_lines(input)
        } else {
            self.read_document(input)
        };
        // What was read before a cut (or an error) is still given.
        self.send()?;
        if let Err(e) = result {
            match e.downcast_ref::<ScanError>() {
                Some(ScanError::Truncated { line, column }) => {
                    self.cut = Some(format!("line {line} column {column}"));
                }
                _ => return Err(e),
            }
        }
        if let Some(at) = self.cut.take() {
            self.found(Found::Cut(at))?;
        }
        Ok(())
    }

    fn read_document(&mut self, input: impl Read) -> anyhow::Result<()> {
        let mut sc = Scanner::new(input);
        read_document(&mut sc, &mut |item| match item {
            Item::Field(key, value) => self.found(Found::Field(key.into(), value.to_vec())),
            Item::Events => self.found(Found::Events),
            Item::Event(bytes) => self.event(bytes, None),
        })
    }

    fn read_lines(&mut self, input: impl Read) -> anyhow::Result<()> {
        let mut reader = BufReader::with_capacity(1 << 16, input);
        let mut line = Vec::new();
        for n in 1.. {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let ended = line.last() == Some(&b'\n');
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            // A last line without its newline that is not whole JSON: the writer was
            // stopped while writing it.
            if !ended
                && serde_json::from_slice::<serde::de::IgnoredAny>(text).is_err_and(|e| e.is_eof())
            {
                self.cut = Some(format!("line {n} column {}", line.len() + 1));
                break;
            }
            self.event(text, Some(n))?;
        }
        Ok(())
    }
}

/// Reads on one thread, parses (and renders) on every CPU, and correlates and writes on
/// the calling thread, in input order.
pub(super) fn read_parallel(
    input: impl Read + Send,
    jsonl: bool,
    p: &mut Pipeline,
) -> anyhow::Result<()> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let prerender = p.prerender();
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
                if found
                    .send((n, Found::Parsed(batch.parse(prerender))))
                    .is_err()
                {
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
                cut: None,
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
                    Found::Cut(at) => p.cut(&at),
                    Found::End(result) => return result,
                }
            }
        }
    })
}
