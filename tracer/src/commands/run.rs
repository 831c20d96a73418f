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
    capture::{process_tree::ProcessTree, session::Session, stats::Counters},
    document::Document,
    event::Clock,
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
}

/// Runs the container; returns its exit code.
pub async fn run(opts: &RunOptions, trace: &TraceOptions) -> anyhow::Result<i32> {
    if !trace.enabled {
        return Ok(runtime::run(opts).await?.exit_code);
    }
    privilege::require_tracing("tracer run (tracing; --no-trace runs without)")?;
    let mut out = match &trace.jsonl {
        Some(path) => Some(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    // Created before the launch: an unwritable path fails before anything starts.
    let json_file = match &trace.json {
        Some(path) => {
            Some(File::create(path).with_context(|| format!("creating {}", path.display()))?)
        }
        None => None,
    };
    let mut kept = Vec::new();
    let mut session = Session::open(tracer_common::DEFAULT_RING_BYTES).await?;
    for w in &session.loaded.warnings {
        log::info!("{w}");
    }
    let clock = Clock::now();
    let mut tree = ProcessTree::new(std::process::id());
    for link in naming::veth_names(&opts.id) {
        tree.add_link(link);
    }
    // With --explain the timeline tells the story; the raw stream would repeat it.
    if !trace.quiet && !trace.views.explain {
        eprintln!("{}", stream::HEADER);
    }
    let mut emit = |batch: &mut Vec<crate::event::Event>| -> anyhow::Result<()> {
        for ev in batch.drain(..) {
            if !tree.accept(&ev) {
                continue;
            }
            if !trace.quiet && !trace.views.explain {
                eprintln!("{}", stream::line(&clock, &ev));
            }
            if let Some(out) = out.as_mut() {
                jsonl::write_event(out, &ev)?;
            }
            kept.push(ev);
        }
        Ok(())
    };
    let launch = runtime::run(opts);
    tokio::pin!(launch);
    let mut batch = Vec::new();
    let result = loop {
        tokio::select! {
            r = &mut launch => break r,
            r = session.next_batch(&mut batch) => {
                r?;
                emit(&mut batch)?;
            }
        }
    };
    // Everything up to the cleanup's unmount is already in the ring.
    session.drain(&mut batch);
    emit(&mut batch)?;
    if let Some(out) = out.as_mut() {
        out.flush()?;
    }
    let counters = session.finish();
    let doc = Document::new(
        &session.loaded.plans,
        &counters,
        clock.offset_ns(),
        std::mem::take(&mut session.cgroups).into_map(),
        kept,
    );
    finish(
        opts,
        trace,
        doc,
        json_file,
        &clock,
        &counters,
        result.is_ok(),
    )?;
    Ok(result?.exit_code)
}

/// The run's document and views, and a word about any loss.
fn finish(
    opts: &RunOptions,
    trace: &TraceOptions,
    mut doc: Document,
    json_file: Option<File>,
    clock: &Clock,
    counters: &Counters,
    launched: bool,
) -> anyhow::Result<()> {
    // This process execs nothing, so only it knows the name it gave.
    for c in doc.containers.iter_mut().filter(|c| c.id == opts.id) {
        c.name.clone_from(&opts.name);
    }
    if let Some(file) = json_file {
        serde_json::to_writer(BufWriter::new(file), &doc)?;
    }
    // A launch that failed is one error line, nothing more.
    if !trace.quiet && launched {
        eprint!(
            "{}",
            trace.views.render(
                &doc.correlation(),
                clock,
                lifecycle::color_on(&std::io::stderr())
            )
        );
    }
    if counters.total_lost() > 0 {
        eprintln!(
            "tracer: warning: {} events lost (ring buffer full)",
            counters.total_lost()
        );
    }
    Ok(())
}
