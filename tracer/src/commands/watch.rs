//! `tracer watch`: read the ring buffer until told to stop, render every event, then print
//! what was seen, lost and malformed.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};

use super::privilege;
use crate::{
    capture::{
        loader::{self, Loaded},
        session::Session,
        stats::Counters,
    },
    correlate::{
        engine::{Engine, Limits},
        Context, Correlation, Filter,
    },
    document::{writer::DocumentWriter, DocCounters, Host},
    event::{Clock, Event, HostNs},
    render::{jsonl, lifecycle, plan, stream, summary, views::Views},
};

/// Where JSON Lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonlTarget {
    Stdout,
    File(PathBuf),
}

impl std::str::FromStr for JsonlTarget {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s == "-" {
            JsonlTarget::Stdout
        } else {
            JsonlTarget::File(s.into())
        })
    }
}

#[derive(Clone, Debug)]
pub struct WatchOptions {
    pub jsonl: Option<JsonlTarget>,
    pub duration: Option<Duration>,
    pub ring_bytes: u64,
    /// No human-readable stream (the summary is still printed).
    pub quiet: bool,
    pub verbose: bool,
    /// The versioned trace document (`docs/trace-format.md`), written as it goes.
    pub json: Option<PathBuf>,
    /// Start a new part of the document past this many bytes.
    pub json_rotate: Option<u64>,
    /// What to print about containers when it stops.
    pub views: Views,
    /// What is shown (stream, JSON Lines, tables); the document holds everything.
    pub filter: Filter,
    /// Containers kept for the end-of-watch table.
    pub max_containers: u64,
}

/// Where rendered events go.
struct Sinks {
    clock: Clock,
    stream: Option<Box<dyn Write>>,
    jsonl: Option<Box<dyn Write>>,
    /// The trace document, written as it goes.
    doc: Option<DocumentWriter>,
}

impl Sinks {
    fn open(opts: &WatchOptions) -> anyhow::Result<Self> {
        let stdout =
            || -> Box<dyn Write> { Box::new(BufWriter::with_capacity(1 << 16, io::stdout())) };
        let jsonl = match &opts.jsonl {
            None => None,
            Some(JsonlTarget::Stdout) => Some(stdout()),
            Some(JsonlTarget::File(path)) => Some(Box::new(BufWriter::with_capacity(
                1 << 16,
                File::create(path).with_context(|| format!("creating {}", path.display()))?,
            )) as Box<dyn Write>),
        };
        // JSON on stdout replaces the human stream there.
        let stream = (!opts.quiet && opts.jsonl != Some(JsonlTarget::Stdout)).then(|| {
            let mut out = stdout();
            let _ = writeln!(out, "{}", stream::HEADER);
            out
        });
        Ok(Self {
            clock: Clock::now(),
            stream,
            jsonl,
            doc: None,
        })
    }

    fn write(&mut self, ev: &Event, stream: bool, jsonl: bool) -> io::Result<()> {
        if let Some(out) = &mut self.stream.as_mut().filter(|_| stream) {
            writeln!(out, "{}", stream::line(&self.clock, ev))?;
        }
        if let Some(out) = &mut self.jsonl.as_mut().filter(|_| jsonl) {
            jsonl::write_event(out, ev)?;
        }
        Ok(())
    }

    /// Writes a batch (in time order, correlated as it goes) and flushes it, with the
    /// cgroup names learnt meanwhile.
    fn write_all(
        &mut self,
        batch: &mut Vec<Event>,
        engine: &mut Engine,
        session: &mut Session,
        all: bool,
        filter: &Filter,
    ) -> io::Result<()> {
        for (id, path) in session.cgroups.fresh() {
            engine.learn_cgroup(id, &path);
            if let Some(doc) = &mut self.doc {
                doc.cgroup(id, &path)?;
            }
        }
        batch.sort_by_key(|e| e.ts_ns);
        for ev in batch.iter() {
            let (related, owner) = engine.feed_owned(ev);
            let chosen = filter.is_empty() || filter.event(ev, owner.map(|c| engine.current(c)));
            // The stream shows containers' events (all of them with --all, or those chosen
            // by a container filter); JSON Lines every event chosen.
            self.write(
                ev,
                chosen && (related || all || filter.by_container()),
                chosen,
            )?;
            if let Some(doc) = &mut self.doc {
                doc.event(ev)?;
            }
        }
        batch.clear();
        if let Some(doc) = &mut self.doc {
            doc.tick(&DocCounters::from(&session.counters))?;
        }
        self.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(out) = &mut self.stream {
            out.flush()?;
        }
        if let Some(out) = &mut self.jsonl {
            out.flush()?;
        }
        Ok(())
    }
}

/// Prints how each kind is observed (every kind with `verbose`; kinds without any hook
/// always).
fn report_plans(loaded: &Loaded, verbose: bool) {
    for w in &loaded.warnings {
        eprintln!("tracer: warning: {w}");
    }
    for (line, p) in plan::lines(&loaded.plans).iter().zip(&loaded.plans) {
        if verbose || p.chosen.is_none() {
            eprintln!("tracer: {line}");
        }
    }
}

pub async fn watch(opts: WatchOptions) -> anyhow::Result<Counters> {
    let ring_bytes = loader::check_ring_bytes(opts.ring_bytes)?;
    privilege::require_tracing("tracer watch")?;
    let mut sinks = Sinks::open(&opts)?;
    // Created first: an unwritable path fails before anything is loaded.
    let json_file = match &opts.json {
        Some(path) => {
            Some(File::create(path).with_context(|| format!("creating {}", path.display()))?)
        }
        None => None,
    };
    let started = Instant::now();
    let mut session = Session::open(ring_bytes).await?;
    report_plans(&session.loaded, opts.verbose);

    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let deadline = opts.duration.map(|d| tokio::time::Instant::now() + d);
    let sleep = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);

    announce_ready(&session.loaded, started, opts.duration.is_none());

    let watch_start = Instant::now();
    let mut batch = Vec::new();
    let no_cgroups = Default::default();
    let limits = Limits {
        max_containers: usize::try_from(opts.max_containers).unwrap_or(usize::MAX),
    };
    let mut engine = Engine::with_limits(
        &Context {
            host: HostNs::own(),
            cgroups: &no_cgroups,
        },
        limits,
    );
    if let (Some(file), Some(path)) = (json_file, &opts.json) {
        let host = Host::new(&session.loaded.plans, sinks.clock.offset_ns());
        sinks.doc = Some(DocumentWriter::start(file, path, host, opts.json_rotate)?);
    }
    loop {
        tokio::select! {
            r = session.next_batch(&mut batch) => r?,
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            () = &mut sleep => break,
        }
        // Output gone (a closed pipe): stop as if interrupted.
        if sinks
            .write_all(
                &mut batch,
                &mut engine,
                &mut session,
                opts.views.all,
                &opts.filter,
            )
            .is_err()
        {
            break;
        }
    }
    // Whatever was submitted before we stopped is still in the ring: keep it.
    session.drain(&mut batch);
    let _ = sinks.write_all(
        &mut batch,
        &mut engine,
        &mut session,
        opts.views.all,
        &opts.filter,
    );
    let counters = session.finish();
    let found = engine.finish_all();
    if let Some(doc) = sinks.doc.take() {
        doc.finish(&DocCounters::from(&counters), &found)
            .context("writing the trace document")?;
    }
    eprintln!(
        "{}",
        summary::summary(&counters, watch_start.elapsed().as_secs_f64())
    );
    print_views(&opts, &found, &sinks.clock);
    Ok(counters)
}

/// The line tests and scripts wait for: every hook is attached.
fn announce_ready(loaded: &Loaded, started: Instant, until_interrupted: bool) {
    let (covered, kinds) = loaded.covered();
    eprintln!(
        "tracer: ready: {covered}/{kinds} event kinds observed, ring buffer {} KiB, loaded in {} ms{}",
        loaded.ring_bytes / 1024,
        started.elapsed().as_millis(),
        if until_interrupted {
            "; Ctrl-C to stop"
        } else {
            ""
        }
    );
}

/// The end-of-watch views, on stdout unless JSON Lines took it.
fn print_views(opts: &WatchOptions, found: &Correlation, clock: &Clock) {
    let views = opts.views.render(
        found,
        &opts.filter,
        clock,
        lifecycle::color_on(&io::stdout()),
    );
    if opts.jsonl == Some(JsonlTarget::Stdout) {
        eprint!("{views}");
    } else {
        print!("{views}");
    }
}
