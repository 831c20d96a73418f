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
    let mut session = Session::open(tracer_common::DEFAULT_RING_BYTES).await?;
    for w in &session.loaded.warnings {
        log::info!("{w}");
    }
    let clock = Clock::now();
    let mut doc = match (json_file, &trace.json) {
        (Some(file), Some(path)) => {
            let host = Host::new(&session.loaded.plans, clock.offset_ns());
            Some(DocumentWriter::start(file, path, host, None)?)
        }
        _ => None,
    };
    let mut tree = ProcessTree::new(std::process::id());
    for link in naming::veth_names(&opts.id) {
        tree.add_link(link);
    }
    let mut engine = Engine::new(&Context {
        host: HostNs::own(),
        cgroups: &Default::default(),
    });
    // With --explain the timeline tells the story; the raw stream would repeat it.
    if !trace.quiet && !trace.views.explain {
        eprintln!("{}", stream::HEADER);
    }
    let mut emit = |batch: &mut Vec<Event>, session: &mut Session| -> anyhow::Result<()> {
        for (id, path) in session.cgroups.fresh() {
            engine.learn_cgroup(id, &path);
            if let Some(doc) = &mut doc {
                doc.cgroup(id, &path)?;
            }
        }
        batch.sort_by_key(|e| e.ts_ns);
        for ev in batch.drain(..) {
            if !tree.accept(&ev) {
                continue;
            }
            let owner = engine.feed_owned(&ev).1;
            let filter = &trace.filter;
            if filter.is_empty() || filter.event(&ev, owner.map(|c| engine.current(c))) {
                if !trace.quiet && !trace.views.explain {
                    eprintln!("{}", stream::line(&clock, &ev));
                }
                if let Some(out) = out.as_mut() {
                    jsonl::write_event(out, &ev)?;
                }
            }
            if let Some(doc) = &mut doc {
                doc.event(&ev)?;
            }
        }
        if let Some(doc) = &mut doc {
            doc.tick(&DocCounters::from(&session.counters))?;
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
                emit(&mut batch, &mut session)?;
            }
        }
    };
    // Everything up to the cleanup's unmount is already in the ring.
    session.drain(&mut batch);
    emit(&mut batch, &mut session)?;
    if let Some(out) = out.as_mut() {
        out.flush()?;
    }
    let counters = session.finish();
    let mut found = engine.finish_all();
    // This process execs nothing, so only it knows the name it gave.
    for c in found.containers.iter_mut().filter(|c| c.id == opts.id) {
        c.name.clone_from(&opts.name);
    }
    if let Some(doc) = doc {
        doc.finish(&DocCounters::from(&counters), &found)
            .context("writing the trace document")?;
    }
    // A launch that failed is one error line, nothing more.
    if !trace.quiet && result.is_ok() {
        eprint!(
            "{}",
            trace.views.render(
                &found,
                &trace.filter,
                &clock,
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
    Ok(result?.exit_code)
}
