//! `tracer watch`: read the ring buffer until told to stop, render every event, then print
//! what was seen, lost and malformed.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tokio::signal::unix::{signal, Signal, SignalKind};

use super::{
    live::{self, LiveView},
    privilege,
};
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
    document::{
        writer::{part_path, DocumentWriter},
        DocCounters, Host, Previous,
    },
    event::{Clock, Event, HostNs},
    export::{ExportOptions, Exports},
    render::{jsonl, lifecycle, live::Totals, plan, stream, summary, views::Views},
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
    /// The live table in the terminal instead of the stream.
    pub live: bool,
    /// OTLP spans and Prometheus metrics.
    pub export: ExportOptions,
    /// The HTML picture, rendered from the document when the watch stops.
    pub html: Option<PathBuf>,
}

/// Where rendered events go.
struct Sinks {
    clock: Clock,
    /// The stream's runs of capability drops, one line each.
    compact: stream::Compact,
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
        // JSON on stdout replaces the human stream there; the live table replaces it.
        let shown = !opts.quiet && !opts.live;
        let stream = (shown && opts.jsonl != Some(JsonlTarget::Stdout)).then(|| {
            let mut out = stdout();
            let _ = writeln!(out, "{}", stream::HEADER);
            out
        });
        let clock = Clock::now();
        Ok(Self {
            clock,
            compact: stream::Compact::new(clock),
            stream,
            jsonl,
            doc: None,
        })
    }

    fn write(&mut self, ev: &Event, stream: bool, jsonl: bool) -> io::Result<()> {
        if let Some(out) = &mut self.stream.as_mut().filter(|_| stream) {
            for line in self.compact.push(ev) {
                writeln!(out, "{line}")?;
            }
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
        opts: &WatchOptions,
    ) -> io::Result<()> {
        let (all, filter) = (opts.views.all, &opts.filter);
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
            if let Some(line) = self.compact.flush() {
                writeln!(out, "{line}")?;
            }
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

/// What ends a watch: Ctrl-C, SIGTERM, the duration, and with the live table a closed
/// terminal (only then: a `nohup` watch keeps running).
struct Stops {
    sigint: Signal,
    sigterm: Signal,
    sighup: Option<Signal>,
    deadline: Option<tokio::time::Instant>,
}

impl Stops {
    fn new(opts: &WatchOptions) -> io::Result<Self> {
        Ok(Self {
            sigint: signal(SignalKind::interrupt())?,
            sigterm: signal(SignalKind::terminate())?,
            sighup: opts
                .live
                .then(|| signal(SignalKind::hangup()))
                .transpose()?,
            deadline: opts.duration.map(|d| tokio::time::Instant::now() + d),
        })
    }

    /// Returns when the watch should stop.
    async fn wait(&mut self) {
        let Self {
            sigint,
            sigterm,
            sighup,
            deadline,
        } = self;
        let hangup = async {
            match sighup {
                Some(s) => drop(s.recv().await),
                None => std::future::pending().await,
            }
        };
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(*d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
            () = hangup => {}
            () = sleep => {}
        }
    }
}

/// Refuses what cannot work, before anything is loaded; the ring's size.
fn check(opts: &WatchOptions) -> anyhow::Result<u32> {
    let ring_bytes = loader::check_ring_bytes(opts.ring_bytes)?;
    if opts.live {
        if opts.jsonl == Some(JsonlTarget::Stdout) {
            anyhow::bail!("--live takes the terminal: write JSON Lines to a file (--jsonl FILE)");
        }
        live::require_terminal()?;
    }
    privilege::require_tracing("tracer watch")?;
    Ok(ring_bytes)
}

fn engine(opts: &WatchOptions) -> Engine {
    let limits = Limits {
        max_containers: usize::try_from(opts.max_containers).unwrap_or(usize::MAX),
    };
    Engine::with_limits(
        &Context {
            host: HostNs::detect(),
            cgroups: &Default::default(),
        },
        limits,
    )
}

pub async fn watch(opts: WatchOptions) -> anyhow::Result<Counters> {
    let ring_bytes = check(&opts)?;
    let mut sinks = Sinks::open(&opts)?;
    // Created first: an unwritable path fails before anything is loaded. A document left by
    // an earlier watch (restarted by systemd, say) is kept, and this one says where it is.
    let previous = match &opts.json {
        Some(path) => set_aside(path)?,
        None => None,
    };
    let json_file = match &opts.json {
        Some(path) => {
            Some(File::create(path).with_context(|| format!("creating {}", path.display()))?)
        }
        None => None,
    };
    let started = Instant::now();
    let mut session = Session::open(ring_bytes).await?;
    report_plans(&session.loaded, opts.verbose);

    let mut stops = Stops::new(&opts)?;
    announce_ready(&session.loaded, started, opts.duration.is_none());

    let watch_start = Instant::now();
    let mut batch = Vec::new();
    let mut engine = engine(&opts);
    let host = Host::new(&session.loaded.plans, sinks.clock.offset_ns());
    let mut exports = Exports::start(&opts.export, &host.kernel, sinks.clock).await?;
    if let (Some(file), Some(path)) = (json_file, &opts.json) {
        sinks.doc = Some(DocumentWriter::start_after(
            file,
            path,
            host,
            opts.json_rotate,
            previous,
        )?);
    }
    let view = if opts.live {
        Some(LiveView::open()?)
    } else {
        None
    };
    let mut live = Live {
        session: &mut session,
        engine: &mut engine,
        sinks: &mut sinks,
        exports: &mut exports,
        batch: &mut batch,
    };
    live.until_stopped(&opts, &mut stops, view).await?;
    // Whatever was submitted before we stopped is still in the ring: keep it.
    session.drain(&mut batch);
    let _ = sinks.write_all(&mut batch, &mut engine, &mut session, &opts);
    let counters = session.finish();
    exports.tick(&engine, &counters, Clock::boot_now_ns(), true);
    let found = engine.finish_all();
    if let Some(doc) = sinks.doc.take() {
        doc.finish(&DocCounters::from(&counters), &found)
            .context("writing the trace document")?;
    }
    eprintln!(
        "{}",
        summary::summary(&counters, watch_start.elapsed().as_secs_f64())
    );
    if let Some(line) = exports.finish() {
        eprintln!("tracer: {line}");
    }
    if let (Some(html), Some(json)) = (&opts.html, &opts.json) {
        super::report::html_from_document(json, html)?;
    }
    print_views(&opts, &found, &sinks.clock);
    Ok(counters)
}

/// What a watch works on while it runs.
struct Live<'a> {
    session: &'a mut Session,
    engine: &'a mut Engine,
    sinks: &'a mut Sinks,
    exports: &'a mut Exports,
    batch: &'a mut Vec<Event>,
}

impl Live<'_> {
    /// Reads, correlates and writes batch after batch (and redraws the live table, and
    /// sends the exports) until told to stop or the output goes; the terminal is given back
    /// (the live view dropped) before anything more is printed.
    async fn until_stopped(
        &mut self,
        opts: &WatchOptions,
        stops: &mut Stops,
        mut view: Option<LiveView>,
    ) -> anyhow::Result<()> {
        let mut export_tick = tokio::time::interval(Duration::from_secs(1));
        let mut redraw = tokio::time::interval(live::REDRAW);
        loop {
            tokio::select! {
                r = self.session.next_batch(self.batch) => r?,
                () = stops.wait() => break,
                _ = export_tick.tick(), if opts.export.any() => {
                    self.exports.tick(self.engine, &self.session.counters, Clock::boot_now_ns(), false);
                    continue;
                }
                _ = redraw.tick(), if view.is_some() => {
                    if !redraw_live(view.as_mut().expect("live"), self.engine, self.session) {
                        break;
                    }
                    continue;
                }
            }
            // Output gone (a closed pipe): stop as if interrupted.
            if self
                .sinks
                .write_all(self.batch, self.engine, self.session, opts)
                .is_err()
            {
                break;
            }
        }
        drop(view);
        Ok(())
    }
}

/// Moves the document (and its parts) an earlier watch left at `path` aside, to
/// `NAME.previous-SECS.json`; where it ended, for the new document's header.
fn set_aside(path: &Path) -> anyhow::Result<Option<Previous>> {
    if !path.exists() {
        return Ok(None);
    }
    let summary = crate::report::read_path(path, &mut crate::report::Discard).ok();
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let ext = path
        .extension()
        .map_or_else(String::new, |e| format!(".{}", e.to_string_lossy()));
    let aside = path.with_file_name(format!("{stem}.previous-{secs}{ext}"));
    for n in 0.. {
        let (from, to) = (part_path(path, n), part_path(&aside, n));
        if !from.exists() {
            break;
        }
        std::fs::rename(&from, &to)
            .with_context(|| format!("moving the previous document {} aside", from.display()))?;
    }
    eprintln!(
        "tracer: the previous watch's document was moved to {}",
        aside.display()
    );
    Ok(Some(Previous {
        path: aside.display().to_string(),
        last_event_ns: summary.as_ref().and_then(|s| s.last_ts_ns),
        events: summary.as_ref().map_or(0, |s| s.events),
        cut: summary.as_ref().is_none_or(|s| s.cut),
    }))
}

/// Redraws the live table; false when it should stop (a key, or the terminal gone).
fn redraw_live(view: &mut LiveView, engine: &Engine, session: &Session) -> bool {
    let containers: Vec<_> = engine.containers().collect();
    let totals = Totals {
        events: session.counters.total_events(),
        lost: session.counters.total_lost(),
        dropped: engine.containers_dropped(),
    };
    let now = Clock::boot_now_ns();
    match view.stop_asked() {
        Ok(false) => view.draw(&containers, now, totals).is_ok(),
        Ok(true) | Err(_) => false,
    }
}

/// The line tests and scripts wait for: every hook is attached.
fn announce_ready(loaded: &Loaded, started: Instant, until_interrupted: bool) {
    let (covered, kinds) = loaded.covered();
    let absent = loaded.absent();
    let absent = if absent.is_empty() {
        String::new()
    } else {
        format!(" (not in this kernel: {})", absent.join(", "))
    };
    eprintln!(
        "tracer: ready: {covered}/{kinds} event kinds observed{absent}, ring buffer {} KiB, loaded in {} ms{}",
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
