//! The input of the report benchmark: a large trace document made by repeating a recorded
//! container lifecycle with fresh ids, pids, namespaces and times, so that correlation does
//! real work on every copy (each copy is its own container).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::{BufWriter, Write},
    path::Path,
};

use anyhow::Context as _;
use serde_json::{Map, Value};

/// Fields that hold a process id.
const PID_FIELDS: [&str; 5] = ["pid", "tgid", "ppid", "child_pid", "target_pid"];
/// Fields that hold a namespace inode (also every value of an `ns` object).
const NS_FIELDS: [&str; 5] = ["mnt_ns", "pid_ns", "net_ns", "netns", "peer_netns"];
const PID_STRIDE: u64 = 1000;
const NS_STRIDE: u64 = 64;
const CGROUP_STRIDE: u64 = 100_000;

/// One copy's renaming.
struct Copy<'a> {
    k: u64,
    /// Pids born in the recording (they get new numbers); the daemons' stay.
    born: &'a BTreeSet<u64>,
    /// Namespace inodes above this were created in the recording.
    host_ns_max: u64,
    id: &'a str,
    new_id: String,
    /// Cgroup ids of the container's cgroups.
    cgroups: &'a BTreeSet<u64>,
    dt: u64,
}

impl Copy<'_> {
    fn value(&self, key: &str, v: &mut Value) {
        match v {
            Value::Number(n) => {
                let Some(x) = n.as_u64() else { return };
                let shifted = if key == "ts_ns" {
                    x + self.dt
                } else if PID_FIELDS.contains(&key) && self.born.contains(&x) {
                    x + self.k * PID_STRIDE
                } else if (NS_FIELDS.contains(&key) || key == "ns") && x > self.host_ns_max {
                    x + self.k * NS_STRIDE
                } else if key == "cgroup_id" && self.cgroups.contains(&x) {
                    x + self.k * CGROUP_STRIDE
                } else {
                    return;
                };
                *v = shifted.into();
            }
            Value::String(s) => {
                if s.contains(self.id) {
                    *s = s.replace(self.id, &self.new_id);
                }
                if s.contains("/proc/") {
                    for p in self.born {
                        let old = format!("/proc/{p}/");
                        if s.contains(&old) {
                            *s = s.replace(&old, &format!("/proc/{}/", p + self.k * PID_STRIDE));
                        }
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|v| self.value(key, v)),
            Value::Object(o) => self.object(key, o),
            _ => {}
        }
    }

    fn object(&self, key: &str, o: &mut Map<String, Value>) {
        for (k, v) in o.iter_mut() {
            // Inside `ns: {mnt: INODE, ...}` every value is an inode.
            self.value(if key == "ns" { "ns" } else { k }, v);
        }
    }
}

/// Writes `events` events to `out` (kept between runs when it exists); returns the events
/// and containers in it.
pub(super) fn generate(fixture: &Path, events: u64, out: &Path) -> anyhow::Result<(u64, u64)> {
    let doc: Value = serde_json::from_slice(
        &fs::read(fixture).with_context(|| format!("reading {}", fixture.display()))?,
    )?;
    let recorded = doc["events"].as_array().context("fixture events")?;
    let per_copy = recorded.len() as u64;
    let copies = events.div_ceil(per_copy);
    if out.exists() {
        return Ok((events, copies));
    }
    eprintln!("bench: generating {events} events in {}", out.display());
    let cgroup_paths: BTreeMap<u64, String> = serde_json::from_value(doc["cgroups"].clone())?;
    // The container id: the 64-hex last part of its cgroup path.
    let id = cgroup_paths
        .values()
        .filter_map(|p| p.rsplit('/').next())
        .find(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .context("no container id in the fixture's cgroups")?
        .to_string();
    let cgroups: BTreeSet<u64> = cgroup_paths
        .iter()
        .filter(|(_, p)| p.contains(&id))
        .map(|(k, _)| *k)
        .collect();
    let born: BTreeSet<u64> = recorded
        .iter()
        .filter_map(|e| e["child_pid"].as_u64())
        .collect();
    let host_ns_max = ["mnt", "pid", "net"]
        .iter()
        .filter_map(|k| doc["host"]["ns"][k].as_u64())
        .max()
        .context("fixture host namespaces")?
        + 256;
    let first = recorded
        .first()
        .and_then(|e| e["ts_ns"].as_u64())
        .unwrap_or(0);
    let last = recorded
        .last()
        .and_then(|e| e["ts_ns"].as_u64())
        .unwrap_or(0);
    let span = last - first + 10_000_000;

    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..events {
        let kind = recorded[(i % per_copy) as usize]["kind"]
            .as_str()
            .unwrap_or("?");
        *counts.entry(kind.to_string()).or_default() += 1;
    }
    let mut all_cgroups = cgroup_paths.clone();
    let copy = |k: u64| Copy {
        k,
        born: &born,
        host_ns_max,
        id: &id,
        new_id: format!("{k:08x}{}", &id[8..]),
        cgroups: &cgroups,
        dt: k * span,
    };
    for k in 1..copies {
        let c = copy(k);
        for cg in &cgroups {
            all_cgroups.insert(
                cg + k * CGROUP_STRIDE,
                cgroup_paths[cg].replace(&id, &c.new_id),
            );
        }
    }
    let tmp = out.with_extension("partial");
    let mut w = BufWriter::with_capacity(1 << 20, fs::File::create(&tmp)?);
    write!(
        w,
        r#"{{"format":"tracer-trace","version":2,"host":{},"counters":{},"cgroups":{},"events":["#,
        doc["host"],
        serde_json::json!({"events": counts, "lost": {}, "malformed": 0}),
        serde_json::to_string(&all_cgroups)?
    )?;
    let mut written = 0;
    'copies: for k in 0..copies {
        let c = copy(k);
        for e in recorded {
            if written == events {
                break 'copies;
            }
            let mut e = e.clone();
            if let Value::Object(o) = &mut e {
                c.object("", o);
            }
            if written > 0 {
                w.write_all(b",")?;
            }
            serde_json::to_writer(&mut w, &e)?;
            written += 1;
        }
    }
    w.write_all(b"]}\n")?;
    w.flush()?;
    drop(w);
    fs::rename(&tmp, out)?;
    Ok((events, copies))
}
