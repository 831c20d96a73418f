//! `tracer run`: the container is launched by the built-in runtime while a
//! tracing session streams every event of its launch (the run's process tree and its veth)
//! to stderr, and optionally to a JSON Lines file.

use std::{
    fs::File,
    io::{BufWriter, Write as _},
    path::PathBuf,
};

use anyhow::Context as _;

use super::privilege;
use crate::{
    capture::{process_tree::ProcessTree, session::Session},
    correlate::{engine::Engine, Context, Filter},
    document::{writer::DocumentWriter, DocCounters, Host},
    event::{Clock, Event, HostNs},
    export::{ExportOptions, Exports},
    render::{jsonl, lifecycle, stream, views::Views},
    runtime::{self, naming, RunOptions},
};

pub struct TraceOptions {
    /// Trace at all (`--no-trace` turns it off: the runtime alone, for benchmarking).
    pub enabled: bool,
    pub jsonl: Option<PathBuf>,
    /// The versioned trace document (`docs/trace-format.md`).
    pub json: Option<PathBuf>,
    /// Print neither the trace nor the views on stderr.
    pub quiet: bool,
    /// What to print about the container afterwards.
    pub views: Views,
    /// What the stream and the views show.
    pub filter: Filter,
    /// OTLP spans of the run's container.
    pub export: ExportOptions,
    /// The HTML picture of the run.
    pub html: Option<PathBuf>,
}

/// Where the run's events go: the stream, JSON Lines and the document, the run's own
/// process tree and veth chosen from everything the session reads.
struct Emitter<'t> {
    trace: &'t TraceOptions,
    terminal: bool,
    /// The stream's runs of capability drops, one line each.
    compact: stream::Compact,
    tree: ProcessTree,
    engine: Engine,
    jsonl: Option<BufWriter<File>>,
    doc: Option<DocumentWriter>,
}

impl<'t> Emitter<'t> {
    /// The run's own process tree and veth, an engine, and where events go.
    fn new(
        trace: &'t TraceOptions,
        opts: &RunOptions,
        clock: Clock,
        jsonl: Option<BufWriter<File>>,
        doc: Option<DocumentWriter>,
    ) -> Self {
        let mut tree = ProcessTree::new(std::process::id());
        for link in naming::veth_names(&opts.id) {
            tree.add_link(link);
        }
        let engine = Engine::new(&Context {
            host: HostNs::detect(),
            cgroups: &Default::default(),
        });
        Self {
            trace,
            terminal: opts.terminal,
            compact: stream::Compact::new(clock),
            tree,
            engine,
            jsonl,
            doc,
        }
    }

    /// Writes a batch (in time order) with the cgroup names learnt meanwhile.
    fn emit(&mut self, batch: &mut Vec<Event>, session: &mut Session) -> anyhow::Result<()> {
        for (id, path) in session.cgroups.fresh() {
            self.engine.learn_cgroup(id, &path);
            if let Some(doc) = &mut self.doc {
                doc.cgroup(id, &path)?;
            }
        }
        batch.sort_by_key(|e| e.ts_ns);
        let filter = &self.trace.filter;
        // With --explain the timeline tells the story; the raw stream would repeat it. With a
        // terminal the stream would garble it.
        let stream = !self.trace.quiet && !self.trace.views.explain && !self.terminal;
        for ev in batch.drain(..) {
            if !self.tree.accept(&ev) {
                continue;
            }
            let owner = self.engine.feed_owned(&ev).1;
            if filter.is_empty() || filter.event(&ev, owner.map(|c| self.engine.current(c))) {
                if stream {
                    for line in self.compact.push(&ev) {
                        eprintln!("{line}");
                    }
                }
                if let Some(out) = self.jsonl.as_mut() {
                    jsonl::write_event(out, &ev)?;
                }
            }
            if let Some(doc) = &mut self.doc {
                doc.event(&ev)?;
            }
        }
        if let Some(doc) = &mut self.doc {
            doc.tick(&DocCounters::from(&session.counters))?;
        }
        if let Some(line) = self.compact.flush() {
            eprintln!("{line}");
        }
        Ok(())
    }
}

/// Creates `path`, if given (before the launch: an unwritable path fails before anything
/// starts).
fn create(path: Option<&PathBuf>) -> anyhow::Result<Option<File>> {
    path.map(|p| File::create(p).with_context(|| format!("creating {}", p.display())))
        .transpose()
}

/// Runs the container; returns its exit code.
pub async fn run(opts: &RunOptions, trace: &TraceOptions) -> anyhow::Result<i32> {
    if !trace.enabled {
        return Ok(runtime::run(opts).await?.exit_code);
    }
    privilege::require_tracing("tracer run (tracing; --no-trace runs without)")?;
    let jsonl = create(trace.jsonl.as_ref())?.map(BufWriter::new);
    // The picture is drawn from a document: the run's own, or one kept just for it.
    let scratch = (trace.html.is_some() && trace.json.is_none())
        .then(|| std::env::temp_dir().join(format!("tracer-run-{}.json", opts.id)));
    let json_path = trace.json.clone().or_else(|| scratch.clone());
    let json_file = create(json_path.as_ref())?;
    let mut session = Session::open(tracer_common::DEFAULT_RING_BYTES).await?;
    for w in &session.loaded.warnings {
        log::info!("{w}");
    }
    let clock = Clock::now();
    let host = Host::new(&session.loaded.plans, clock.offset_ns());
    let mut exports = Exports::start(&trace.export, &host.kernel, clock).await?;
    let doc = match (json_file, &json_path) {
        (Some(file), Some(path)) => Some(DocumentWriter::start(file, path, host, None)?),
        _ => None,
    };
    if !trace.quiet && !trace.views.explain && !opts.terminal {
        eprintln!("{}", stream::HEADER);
    }
    let mut out = Emitter::new(trace, opts, clock, jsonl, doc);
    let launch = runtime::run(opts);
    tokio::pin!(launch);
    let mut batch = Vec::new();
    let mut export_tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let result = loop {
        tokio::select! {
            r = &mut launch => break r,
            r = session.next_batch(&mut batch) => {
                r?;
                out.emit(&mut batch, &mut session)?;
            }
            _ = export_tick.tick(), if trace.export.any() => {
                exports.tick(&out.engine, &session.counters, Clock::boot_now_ns(), false);
            }
        }
    };
    // Everything up to the cleanup's unmount is already in the ring.
    session.drain(&mut batch);
    out.emit(&mut batch, &mut session)?;
    if let Some(jsonl) = out.jsonl.as_mut() {
        jsonl.flush()?;
    }
    let counters = session.finish();
    exports.tick(&out.engine, &counters, Clock::boot_now_ns(), true);
    let mut found = out.engine.finish_all();
    // This process execs nothing, so only it knows the name it gave.
    for c in found.containers.iter_mut().filter(|c| c.id == opts.id) {
        c.name.clone_from(&opts.name);
    }
    if let Some(doc) = out.doc {
        doc.finish(&DocCounters::from(&counters), &found)
            .context("writing the trace document")?;
    }
    // A launch that failed is one error line, nothing more.
    if !trace.quiet && result.is_ok() {
        let color = lifecycle::color_on(&std::io::stderr());
        eprint!(
            "{}",
            trace.views.render(&found, &trace.filter, &clock, color)
        );
    }
    if let Some(line) = exports.finish() {
        eprintln!("tracer: {line}");
    }
    if let (Some(html), Some(json)) = (&trace.html, &json_path) {
        draw(json, html, scratch.as_deref())?;
    }
    if counters.total_lost() > 0 {
        eprintln!(
            "tracer: warning: {} events lost (ring buffer full)",
            counters.total_lost()
        );
    }
    Ok(result?.exit_code)
}

/// The run's picture, from its document (a scratch one is removed after).
fn draw(
    json: &std::path::Path,
    html: &std::path::Path,
    scratch: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let drawn = super::report::html_from_document(json, html);
    if let Some(s) = scratch {
        let _ = std::fs::remove_file(s);
    }
    drawn
}
