//! A tracing session: the loaded programs and every source of events (the ring buffer, the
//! rtnetlink monitor where it stands in for a kprobe), read as decoded events. `watch` and
//! `run` both read through it.

use std::{
    io,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use anyhow::Context as _;
use aya::maps::{MapData, PerCpuArray, RingBuf};
use tokio::{io::unix::AsyncFd, sync::mpsc};
use tracer_common::EventKind;

/// How long events may wait in the ring before they are read (unless it fills up).
const DRAIN_PERIOD: std::time::Duration = std::time::Duration::from_millis(25);

use super::{
    cgroup_names::CgroupNames,
    decode::decode,
    loader::{self, Loaded},
    netlink_monitor,
    stats::Counters,
};
use crate::event::Event;

pub struct Session {
    pub loaded: Loaded,
    ring: AsyncFd<RingBuf<MapData>>,
    lost: PerCpuArray<MapData, u64>,
    monitor: Option<mpsc::UnboundedReceiver<Event>>,
    /// The monitor's socket overruns, and the kind they count against.
    overruns: Option<(Arc<AtomicU64>, EventKind)>,
    pub counters: Counters,
    /// Paths of the cgroups the events were in, looked up while they exist.
    pub cgroups: CgroupNames,
}

/// Registers a map for readiness polling.
fn poll_fd<T: std::os::fd::AsRawFd>(map: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: the map owns its fd, keeps it open and returns the same one for as long as it
    // lives, and the AsyncFd owns the map.
    unsafe { AsyncFd::register_with_interest(map, tokio::io::Interest::READABLE) }
        .map_err(Into::into)
}

impl Session {
    /// Loads and attaches everything; warnings go to `warn`.
    pub async fn open(ring_bytes: u32) -> anyhow::Result<Self> {
        let mut loaded = loader::load(ring_bytes)?;
        if loaded.covered().0 == 0 {
            anyhow::bail!("no hook could be attached; nothing to observe");
        }
        let reports = loaded.rtnetlink_reports();
        let (monitor, overruns) = if reports.veths || reports.moves {
            let m = netlink_monitor::start(reports)
                .await
                .context("starting the rtnetlink monitor")?;
            let kind = if reports.veths {
                EventKind::Veth
            } else {
                EventKind::NetdevMove
            };
            (Some(m.events), Some((m.overruns, kind)))
        } else {
            (None, None)
        };
        let ring = RingBuf::try_from(loaded.ebpf.take_map("EVENTS").context("no EVENTS map")?)?;
        let lost = PerCpuArray::try_from(loaded.ebpf.take_map("LOST").context("no LOST map")?)?;
        Ok(Self {
            loaded,
            ring: poll_fd(ring).context("polling the ring buffer")?,
            lost,
            monitor,
            overruns,
            counters: Counters::default(),
            cgroups: CgroupNames::new(),
        })
    }

    /// Waits for events and appends what is there to `out`.
    pub async fn next_batch(&mut self, out: &mut Vec<Event>) -> anyhow::Result<()> {
        let start = out.len();
        self.next_batch_inner(out).await?;
        self.cgroups.learn(&out[start..]);
        Ok(())
    }

    async fn next_batch_inner(&mut self, out: &mut Vec<Event>) -> anyhow::Result<()> {
        tokio::select! {
            guard = self.ring.readable_mut() => {
                let mut guard = guard?;
                drain_ring(guard.get_inner_mut(), &mut self.counters, out);
                guard.clear_ready();
            }
            // The programs wake us only when the ring fills up (see `wakeup` in the kernel
            // programs): otherwise what came in is read on this beat.
            () = tokio::time::sleep(DRAIN_PERIOD) => {
                drain_ring(self.ring.get_mut(), &mut self.counters, out);
            }
            ev = async { self.monitor.as_mut().expect("guarded").recv().await },
                if self.monitor.is_some() => {
                match ev {
                    Some(ev) => {
                        self.counters.seen(ev.detail.kind());
                        out.push(ev);
                    }
                    None => self.monitor = None,
                }
            }
        }
        Ok(())
    }

    /// Everything already submitted, without waiting: for the end of a session.
    pub fn drain(&mut self, out: &mut Vec<Event>) {
        let start = out.len();
        drain_ring(self.ring.get_mut(), &mut self.counters, out);
        if let Some(m) = self.monitor.as_mut() {
            while let Ok(ev) = m.try_recv() {
                self.counters.seen(ev.detail.kind());
                out.push(ev);
            }
        }
        self.cgroups.learn(&out[start..]);
    }

    /// Final counters, with the kernel's per-kind lost counts.
    pub fn finish(&mut self) -> Counters {
        for kind in EventKind::ALL {
            if let Ok(values) = self.lost.get(&(kind as u32), 0) {
                self.counters.set_lost(kind, values.iter().sum());
            }
        }
        // A full monitor socket lost one notification or more: counted as one.
        if let Some((overruns, kind)) = &self.overruns {
            let n = overruns.load(Ordering::Relaxed);
            self.counters.set_lost(*kind, self.counters.lost(*kind) + n);
        }
        self.counters.clone()
    }
}

fn drain_ring(ring: &mut RingBuf<MapData>, counters: &mut Counters, out: &mut Vec<Event>) {
    while let Some(item) = ring.next() {
        match decode(&item) {
            Ok(ev) => {
                counters.seen(ev.detail.kind());
                out.push(ev);
            }
            Err(e) => {
                counters.malformed += 1;
                log::debug!("malformed record: {e}");
            }
        }
    }
}
