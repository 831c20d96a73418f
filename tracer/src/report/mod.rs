//! Reading a saved trace back (the `--json` document, or `--jsonl` lines), without root: its
//! events put back in time order, correlated into containers again, and handed one by one
//! to a [`Sink`] that writes the output. Input is untrusted: anything malformed gives a clear
//! error or a report with warnings, never a panic.
//!
//! The trace is streamed: each event is read, put back in time order within a window,
//! correlated and given to the sink before the next is read, so memory stays flat however
//! long the trace is. [`sniff`] tells what the file is, [`split`] cuts a document into
//! fields and events, [`parallel`] parses them on every CPU, [`window`] reorders and
//! [`pipeline`] correlates.

mod parallel;
pub mod parts;
mod pipeline;
mod scan;
mod sniff;
mod split;
mod window;

use std::{
    collections::BTreeMap,
    io::{self, Read},
    path::{Path, PathBuf},
};

use anyhow::Context as _;

use crate::{
    correlate::{Container, Filter, Unattributed},
    document::{DocCounters, Host},
    event::Event,
};

/// Renders one event into bytes, on a parser thread, the way a sink will write it.
pub type Prerender = fn(&Event, &mut Vec<u8>);

/// What the trace says before its events: known when the output may begin.
pub struct Head<'a> {
    pub host: Option<&'a Host>,
    pub cgroups: &'a BTreeMap<u64, String>,
}

/// What is known once every event has been read.
pub struct End<'a> {
    pub host: Option<&'a Host>,
    /// The containers shown.
    pub containers: &'a [Container],
    /// For each, the index [`Sink::event`] named it by.
    pub tracks: &'a [usize],
    pub counters: &'a DocCounters,
    /// Events no evidence ties to a container (the first ones), and how many in all.
    pub unattributed: &'a [Unattributed],
    pub unattributed_total: u64,
}

/// Where a report goes: the output of one format.
pub trait Sink {
    /// How each event is rendered ahead, in parallel (`None`: events are not written).
    fn prerender(&self) -> Option<Prerender>;
    /// The output begins.
    fn begin(&mut self, head: &Head<'_>) -> io::Result<()>;
    /// One event in time order, with its pre-rendered text and the container (an index
    /// into [`End::containers`]) it belongs to.
    fn event(&mut self, ev: &Event, text: &[u8], owner: Option<usize>) -> io::Result<()>;
    /// A cgroup's name, learnt after the output began.
    fn cgroup(&mut self, _id: u64, _path: &str) -> io::Result<()> {
        Ok(())
    }
    /// The output ends.
    fn end(&mut self, end: &End<'_>) -> io::Result<()>;
}

/// What a report found besides its output.
#[derive(Debug)]
pub struct Summary {
    pub containers: Vec<Container>,
    /// Events no evidence ties to a container (the first ones), and how many in all.
    pub unattributed: Vec<Unattributed>,
    pub unattributed_total: u64,
    /// Events read (unreadable ones are not counted).
    pub events: u64,
    pub warnings: Vec<String>,
    /// The traced host's clock offset and kernel (0 and empty when the trace has no host).
    pub boot_to_wall_ns: i128,
    pub kernel: String,
    /// The latest event's time.
    pub last_ts_ns: Option<u64>,
    /// A file was cut short.
    pub cut: bool,
}

/// A sink that writes nothing: to read a trace for its summary.
pub struct Discard;

impl Sink for Discard {
    fn prerender(&self) -> Option<Prerender> {
        None
    }
    fn begin(&mut self, _: &Head<'_>) -> io::Result<()> {
        Ok(())
    }
    fn event(&mut self, _: &Event, _: &[u8], _: Option<usize>) -> io::Result<()> {
        Ok(())
    }
    fn end(&mut self, _: &End<'_>) -> io::Result<()> {
        Ok(())
    }
}

/// Reads a trace (a document, or JSON Lines of events) into `sink` as it goes.
pub fn read(input: impl Read + Send, sink: &mut dyn Sink) -> anyhow::Result<Summary> {
    let mut p = pipeline::Pipeline::new(sink, Filter::default());
    let jsonl = read_into(input, &mut p)?;
    p.finish(jsonl)
}

/// Reads one file of a trace into the pipeline; whether it was JSON Lines.
fn read_into(mut input: impl Read + Send, p: &mut pipeline::Pipeline) -> anyhow::Result<bool> {
    let (head, jsonl) = sniff::sniff(&mut input)?;
    let input = io::Cursor::new(head).chain(input);
    // Each file says its own format and version.
    p.format = None;
    p.version = None;
    let cuts = p.cuts();
    if let Err(e) = parallel::read_parallel(input, jsonl, p) {
        // A wrong format or version says more than what it made fail further on.
        sniff::check_known(p.format.as_deref(), p.version)?;
        return Err(e);
    }
    if !jsonl {
        if p.cuts() > cuts {
            // Cut before its format or version: what was read is all there is.
            sniff::check_known(p.format.as_deref(), p.version)?;
        } else {
            sniff::check_header(p.format.as_deref(), p.version)?;
        }
    }
    Ok(jsonl)
}

/// Reads the trace at `path` (`-`: stdin).
pub fn read_path(path: &Path, sink: &mut dyn Sink) -> anyhow::Result<Summary> {
    read_paths(&[path.to_path_buf()], &Filter::default(), sink)
}

/// Reads several files (`-`: stdin) as one trace, in the order given: the parts of a rotated
/// document ([`parts::in_order`] sorts them), or traces of the same host one after another.
/// Only what `filter` chooses is shown (everything is correlated).
pub fn read_paths(
    paths: &[PathBuf],
    filter: &Filter,
    sink: &mut dyn Sink,
) -> anyhow::Result<Summary> {
    let mut p = pipeline::Pipeline::new(sink, filter.clone());
    let mut jsonl = false;
    for path in paths {
        let name = path.display().to_string();
        if paths.len() > 1 {
            p.file = Some(name.clone());
        }
        let result = if path == Path::new("-") {
            read_into(io::stdin(), &mut p)
        } else {
            let file = std::fs::File::open(path).with_context(|| format!("reading {name}"))?;
            read_into(file, &mut p)
        };
        jsonl |= result.with_context(|| name)?;
    }
    p.finish(jsonl)
}
