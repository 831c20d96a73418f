//! The JSON trace document (`--json FILE`): one versioned object with the host, how each
//! event kind was observed, the events (with the cgroup names learnt on the way, as records
//! of their own), the counters and the containers. It is written as it goes ([`writer`]):
//! what was written before a crash reads back. Its schema is `docs/trace-format.md`.

pub mod writer;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    capture::{loader::PlanReport, stats::Counters},
    correlate::{self, Container, Unattributed},
    event::{Event, EventKind, HostNs},
};

pub const FORMAT: &str = "tracer-trace";
pub const VERSION: u32 = 8;
/// The oldest version `tracer report` still reads (1: no containers, cgroups or host
/// namespaces; they are worked out again from the events).
pub const OLDEST_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(from = "RawDocument")]
pub struct Document {
    pub format: String,
    pub version: u32,
    pub host: Host,
    /// At the end: absent from a document cut short.
    #[serde(default)]
    pub counters: DocCounters,
    /// Cgroup id → path in the cgroup2 hierarchy, for the ids the events carry (with the
    /// names recorded among the events).
    #[serde(default)]
    pub cgroups: BTreeMap<u64, String>,
    pub events: Vec<Event>,
    /// The containers the events make up (`correlate`).
    #[serde(default)]
    pub containers: Vec<Container>,
    /// Events no evidence ties to a container: the daemons' own activity (the first
    /// thousand; `unattributed_total` counts them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unattributed: Vec<Unattributed>,
    #[serde(default)]
    pub unattributed_total: u64,
    /// Containers the watch dropped to stay within `--max-containers` (the oldest exited):
    /// their events are here, they are not among `containers`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub containers_dropped: u64,
    /// Host processes the watch forgot to stay within its process limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub processes_forgotten: u64,
    /// The previous watch's document, when this watch was restarted over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Previous>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Host {
    /// `uname -r`.
    pub kernel: String,
    /// `CLOCK_REALTIME - CLOCK_BOOTTIME` in ns when the trace was taken: adds to `ts_ns`.
    pub boot_to_wall_ns: i128,
    /// Per event kind, the hook used (absent: not observed).
    pub hooks: BTreeMap<String, Option<String>>,
    /// The tracer's own namespaces: the host's (0: unknown).
    #[serde(default)]
    pub ns: HostNs,
}

/// The document of the watch before this one (restarted, e.g. by systemd), set aside when
/// this one began: where it is, and where it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous {
    /// Where it was moved.
    pub path: String,
    /// Its last event's time (`ts_ns`), if it had any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_ns: Option<u64>,
    pub events: u64,
    /// It was cut short (the watch was killed): it ends at its last flush.
    pub cut: bool,
}

/// Something other than an event in the events array: a cgroup's name, learnt when it was
/// made (`{"record":"cgroup","id":N,"path":P}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Cgroup { id: u64, path: String },
}

impl Record {
    /// Whether the bytes of an array element are a record (how the writer starts them).
    pub fn is_record(bytes: &[u8]) -> bool {
        bytes.trim_ascii_start().starts_with(br#"{"record""#)
    }
}

/// An element of the events array.
#[derive(Deserialize)]
#[serde(untagged)]
enum Item {
    Record(Record),
    Event(Box<Event>),
}

/// The document as written: records among the events, their cgroup names put with the
/// others when read.
#[derive(Deserialize)]
struct RawDocument {
    format: String,
    version: u32,
    host: Host,
    #[serde(default)]
    counters: DocCounters,
    #[serde(default)]
    cgroups: BTreeMap<u64, String>,
    events: Vec<Item>,
    #[serde(default)]
    containers: Vec<Container>,
    #[serde(default)]
    unattributed: Vec<Unattributed>,
    #[serde(default)]
    unattributed_total: u64,
    #[serde(default)]
    containers_dropped: u64,
    #[serde(default)]
    processes_forgotten: u64,
    #[serde(default)]
    previous: Option<Previous>,
}

impl From<RawDocument> for Document {
    fn from(raw: RawDocument) -> Self {
        let mut cgroups = raw.cgroups;
        let mut events = Vec::with_capacity(raw.events.len());
        for item in raw.events {
            match item {
                Item::Event(e) => events.push(*e),
                Item::Record(Record::Cgroup { id, path }) => {
                    cgroups.insert(id, path);
                }
            }
        }
        Self {
            format: raw.format,
            version: raw.version,
            host: raw.host,
            counters: raw.counters,
            cgroups,
            events,
            containers: raw.containers,
            unattributed: raw.unattributed,
            unattributed_total: raw.unattributed_total,
            containers_dropped: raw.containers_dropped,
            processes_forgotten: raw.processes_forgotten,
            previous: raw.previous,
        }
    }
}

impl Host {
    /// This host, traced with `plans`.
    pub fn new(plans: &[PlanReport], boot_to_wall_ns: i128) -> Self {
        let kernel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            kernel,
            boot_to_wall_ns,
            hooks: plans
                .iter()
                .map(|p| {
                    (
                        p.plan.kind.name().to_string(),
                        p.chosen().map(|o| o.name.to_string()),
                    )
                })
                .collect(),
            ns: HostNs::detect(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DocCounters {
    pub events: BTreeMap<String, u64>,
    pub lost: BTreeMap<String, u64>,
    pub malformed: u64,
}

impl From<&Counters> for DocCounters {
    /// Kinds with nothing seen (or nothing lost) are left out, as in every version.
    fn from(c: &Counters) -> Self {
        let named = |n: fn(&Counters, EventKind) -> u64| {
            EventKind::ALL
                .into_iter()
                .filter(|&k| n(c, k) > 0)
                .map(|k| (k.name().to_string(), n(c, k)))
                .collect()
        };
        Self {
            events: named(Counters::events),
            lost: named(Counters::lost),
            malformed: c.malformed,
        }
    }
}

impl Document {
    /// The document of a finished session; its containers are correlated from `events`.
    pub fn new(
        plans: &[PlanReport],
        counters: &Counters,
        boot_to_wall_ns: i128,
        cgroups: BTreeMap<u64, String>,
        events: Vec<Event>,
    ) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            host: Host::new(plans, boot_to_wall_ns),
            counters: DocCounters::from(counters),
            cgroups,
            events,
            containers: Vec::new(),
            unattributed: Vec::new(),
            unattributed_total: 0,
            containers_dropped: 0,
            processes_forgotten: 0,
            previous: None,
        }
        .correlated()
    }

    /// Works out the containers from the events.
    pub fn correlated(mut self) -> Self {
        let c = correlate::containers(&self.events, &self.context());
        self.containers = c.containers;
        self.unattributed = c.unattributed;
        self.unattributed_total = c.unattributed_total;
        self
    }

    /// What correlation found, as a copy of the document's containers and unattributed
    /// events.
    pub fn correlation(&self) -> correlate::Correlation {
        correlate::Correlation {
            containers: self.containers.clone(),
            unattributed: self.unattributed.clone(),
            unattributed_total: self.unattributed_total,
            containers_dropped: self.containers_dropped,
            processes_forgotten: self.processes_forgotten,
        }
    }

    pub fn context(&self) -> correlate::Context<'_> {
        correlate::Context {
            host: self.host.ns,
            cgroups: &self.cgroups,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Detail;

    #[test]
    fn document_round_trips_with_format_and_version() {
        let mut counters = Counters::default();
        counters.seen(EventKind::Fork);
        let ev = Event {
            ts_ns: 1,
            ppid: 1,
            comm: "sh".into(),
            cgroup_id: 3,
            mnt_ns: 4,
            pid_ns: 5,
            net_ns: 6,
            hook: "raw_tracepoint:sched_process_fork".into(),
            ..Event::for_test(2, Detail::Fork { child_pid: 7 })
        };
        let doc = Document::new(&[], &counters, 42, BTreeMap::new(), vec![ev.clone()]);
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["format"], "tracer-trace");
        assert_eq!(json["version"], VERSION);
        assert_eq!(json["counters"]["events"]["fork"], 1);
        let back: Document = serde_json::from_value(json).unwrap();
        assert_eq!(back.events, [ev]);
        assert_eq!(back.host.boot_to_wall_ns, 42);
    }
}
