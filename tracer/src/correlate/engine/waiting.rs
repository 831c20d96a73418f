//! Daemon events that no evidence has tied to a container yet, each under the key that will:
//! a rootfs path (an overlay waits for the runtime to bind its merged directory as a root), a
//! network namespace (a netns made, joined or given a device ahead of its container), a
//! link's name (a veth pair waiting for one end to move), a container id (a path holding an
//! id not seen yet). Bounded: past [`CAPACITY`] events the oldest are given up.

use std::collections::BTreeMap;

use foldhash::HashMap;

use crate::{correlate::model::PhaseKind, event::Event};

/// Events waiting at most (a busy host's daemons do many things no container claims).
const CAPACITY: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Key {
    /// An overlay's merged directory.
    Path(String),
    /// A network namespace's inode.
    Netns(u32),
    /// A network link's name.
    Link(String),
    /// A container id.
    Id(String),
}

/// One waiting event, with every key it waits under.
struct Entry {
    kind: PhaseKind,
    ev: Event,
    keys: Vec<Key>,
}

#[derive(Default)]
pub(super) struct Waiting {
    /// By arrival number: the oldest is the first.
    entries: BTreeMap<u64, Entry>,
    by_key: HashMap<Key, Vec<u64>>,
    seq: u64,
    /// Events pushed out by newer ones, not yet handed back.
    evicted: Vec<Event>,
}

impl Waiting {
    pub(super) fn push(&mut self, key: Key, kind: PhaseKind, ev: Event) {
        self.push_keys(vec![key], kind, ev);
    }

    /// One event waiting under several keys (a veth pair under both its names): whichever
    /// comes first takes it.
    pub(super) fn push_keys(&mut self, keys: Vec<Key>, kind: PhaseKind, ev: Event) {
        self.seq += 1;
        for k in &keys {
            self.by_key.entry(k.clone()).or_default().push(self.seq);
        }
        self.entries.insert(self.seq, Entry { kind, ev, keys });
        while self.entries.len() > CAPACITY {
            let Some((&seq, _)) = self.entries.iter().next() else {
                break;
            };
            if let Some(e) = self.remove(seq) {
                self.evicted.push(e.ev);
            }
        }
    }

    fn remove(&mut self, seq: u64) -> Option<Entry> {
        let entry = self.entries.remove(&seq)?;
        for k in &entry.keys {
            if let Some(list) = self.by_key.get_mut(k) {
                list.retain(|s| *s != seq);
                if list.is_empty() {
                    self.by_key.remove(k);
                }
            }
        }
        Some(entry)
    }

    pub(super) fn contains(&self, key: &Key) -> bool {
        self.by_key.contains_key(key)
    }

    /// Everything waiting under `key`, in arrival order.
    pub(super) fn take(&mut self, key: &Key) -> Vec<(PhaseKind, Event)> {
        let seqs = self.by_key.get(key).cloned().unwrap_or_default();
        seqs.into_iter()
            .filter_map(|s| self.remove(s))
            .map(|e| (e.kind, e.ev))
            .collect()
    }

    /// Events given up since the last call.
    pub(super) fn evicted(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.evicted)
    }

    /// Everything still waiting, oldest first: the end of the trace.
    pub(super) fn drain(&mut self) -> Vec<Event> {
        self.by_key.clear();
        let mut out = std::mem::take(&mut self.evicted);
        out.extend(
            std::mem::take(&mut self.entries)
                .into_values()
                .map(|e| e.ev),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Detail;

    fn ev(ts: u64) -> Event {
        Event {
            ts_ns: ts,
            ..Event::for_test(1, Detail::Fork { child_pid: 2 })
        }
    }

    #[test]
    fn taken_by_key_and_bounded() {
        let mut w = Waiting::default();
        w.push(Key::Netns(7), PhaseKind::Network, ev(1));
        w.push(Key::Path("/m".into()), PhaseKind::ImageMount, ev(2));
        w.push(Key::Netns(7), PhaseKind::Network, ev(3));
        let got: Vec<u64> = w
            .take(&Key::Netns(7))
            .iter()
            .map(|(_, e)| e.ts_ns)
            .collect();
        assert_eq!(got, [1, 3]);
        assert!(w.take(&Key::Netns(7)).is_empty());
        assert!(w.contains(&Key::Path("/m".into())));
        for i in 0..CAPACITY as u64 + 10 {
            w.push(Key::Id(format!("{i}")), PhaseKind::Network, ev(100 + i));
        }
        let evicted = w.evicted();
        assert_eq!(evicted.len(), 11, "the path's event and the 10 oldest ids");
        assert_eq!(evicted[0].ts_ns, 2);
        assert_eq!(w.drain().len(), CAPACITY);
        // Under two keys, taken once.
        w.push_keys(
            vec![Key::Link("a".into()), Key::Link("b".into())],
            PhaseKind::Network,
            ev(9),
        );
        assert_eq!(w.take(&Key::Link("b".into())).len(), 1);
        assert!(!w.contains(&Key::Link("a".into())));
        assert!(w.drain().is_empty());
    }
}
