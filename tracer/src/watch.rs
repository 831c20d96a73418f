//! `tracer watch`: read the ring buffer until told to stop, render every event, then print
//! what was seen, lost and malformed.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use aya::maps::{MapData, PerCpuArray, RingBuf};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{signal, SignalKind},
};
use tracer_common::EventKind;

use crate::{
    decode::decode,
    event::Event,
    loader::{self, Loaded},
    netlink_monitor, privilege,
    render::{jsonl, plan, stream, summary},
    stats::Counters,
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
}

/// Where rendered events go.
struct Sinks {
    clock: stream::Clock,
    stream: Option<Box<dyn Write>>,
    jsonl: Option<Box<dyn Write>>,
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
            clock: stream::Clock::now(),
            stream,
            jsonl,
        })
    }

    fn write(&mut self, ev: &Event) -> io::Result<()> {
        if let Some(out) = &mut self.stream {
            writeln!(out, "{}", stream::line(&self.clock, ev))?;
        }
        if let Some(out) = &mut self.jsonl {
            jsonl::write_event(out, ev)?;
        }
        Ok(())
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

/// Registers a map for readiness polling.
fn poll_fd<T: std::os::fd::AsRawFd>(map: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: the map owns its fd, keeps it open and returns the same one for as long as it
    // lives, and the AsyncFd owns the map.
    unsafe { AsyncFd::register_with_interest(map, tokio::io::Interest::READABLE) }
        .map_err(Into::into)
}

/// Sums the per-CPU lost counters.
fn read_lost(map: &PerCpuArray<MapData, u64>, counters: &mut Counters) {
    for kind in EventKind::ALL {
        if let Ok(values) = map.get(&(kind as u32), 0) {
            let n: u64 = values.iter().sum();
            if n > 0 {
                counters.lost.insert(kind.name(), n);
            }
        }
    }
}

/// Drains every record currently in the ring. Returns false when output is gone (EPIPE).
fn drain(ring: &mut RingBuf<MapData>, sinks: &mut Sinks, counters: &mut Counters) -> bool {
    while let Some(item) = ring.next() {
        match decode(&item) {
            Ok(ev) => {
                counters.seen(ev.detail.kind());
                if sinks.write(&ev).is_err() {
                    return false;
                }
            }
            Err(e) => {
                counters.malformed += 1;
                log::debug!("malformed record: {e}");
            }
        }
    }
    sinks.flush().is_ok()
}

/// `tracer check`: load, attach the best hook of every kind, print the plan; the kinds left
/// without any hook, if any, are returned.
pub fn check() -> anyhow::Result<Vec<&'static str>> {
    privilege::require_tracing("tracer check")?;
    let loaded = loader::load(tracer_common::DEFAULT_RING_BYTES)?;
    for w in &loaded.warnings {
        eprintln!("tracer: warning: {w}");
    }
    println!("{}", plan::table(&loaded.plans));
    let missing: Vec<&str> = loaded
        .plans
        .iter()
        .filter(|p| p.chosen.is_none())
        .map(|p| p.plan.kinds)
        .collect();
    let (covered, kinds) = loaded.covered();
    println!("{covered}/{kinds} event kinds observed on this kernel");
    Ok(missing)
}

pub async fn watch(opts: WatchOptions) -> anyhow::Result<Counters> {
    let ring_bytes = loader::check_ring_bytes(opts.ring_bytes)?;
    privilege::require_tracing("tracer watch")?;
    let mut sinks = Sinks::open(&opts)?;
    let started = Instant::now();
    let mut loaded = loader::load(ring_bytes)?;
    report_plans(&loaded, opts.verbose);
    if loaded.covered().0 == 0 {
        anyhow::bail!("no hook could be attached; nothing to observe");
    }
    let mut monitor = if loaded.wants_rtnetlink_monitor() {
        Some(
            netlink_monitor::start()
                .await
                .context("starting the rtnetlink monitor")?,
        )
    } else {
        None
    };

    let mut logger = match aya_log::EbpfLogger::init(&mut loaded.ebpf) {
        Ok(l) => Some(poll_fd(l).context("polling the eBPF log")?),
        Err(e) => {
            eprintln!("tracer: warning: eBPF program diagnostics unavailable: {e}");
            None
        }
    };
    let ring = RingBuf::try_from(loaded.ebpf.take_map("EVENTS").context("no EVENTS map")?)?;
    let lost: PerCpuArray<MapData, u64> =
        PerCpuArray::try_from(loaded.ebpf.take_map("LOST").context("no LOST map")?)?;
    let mut ring = poll_fd(ring).context("polling the ring buffer")?;

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

    let (covered, kinds) = loaded.covered();
    eprintln!(
        "tracer: ready: {covered}/{kinds} event kinds observed, ring buffer {} KiB, loaded in {} ms{}",
        loaded.ring_bytes / 1024,
        started.elapsed().as_millis(),
        if opts.duration.is_none() {
            "; Ctrl-C to stop"
        } else {
            ""
        }
    );

    let watch_start = Instant::now();
    let mut counters = Counters::default();
    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard?;
                let open = drain(guard.get_inner_mut(), &mut sinks, &mut counters);
                guard.clear_ready();
                if !open {
                    break;
                }
            }
            guard = async { logger.as_mut().expect("guarded").readable_mut().await }, if logger.is_some() => {
                let mut guard = guard?;
                guard.get_inner_mut().flush();
                guard.clear_ready();
            }
            ev = async { monitor.as_mut().expect("guarded").recv().await }, if monitor.is_some() => {
                match ev {
                    Some(ev) => {
                        counters.seen(ev.detail.kind());
                        if sinks.write(&ev).and_then(|()| sinks.flush()).is_err() {
                            break;
                        }
                    }
                    None => monitor = None,
                }
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            () = &mut sleep => break,
        }
    }
    // Whatever was submitted before we stopped is still in the ring: keep it.
    drain(ring.get_mut(), &mut sinks, &mut counters);
    if let Some(m) = monitor.as_mut() {
        while let Ok(ev) = m.try_recv() {
            counters.seen(ev.detail.kind());
            let _ = sinks.write(&ev);
        }
    }
    if let Some(l) = logger.as_mut() {
        l.get_mut().flush();
    }
    read_lost(&lost, &mut counters);
    let _ = sinks.flush();
    eprintln!(
        "{}",
        summary::summary(&counters, watch_start.elapsed().as_secs_f64())
    );
    Ok(counters)
}
