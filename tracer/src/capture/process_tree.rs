//! The live filter of one `tracer run`'s events: its process tree, grown from fork events,
//! plus the veth pair it creates (and moves).

use std::collections::HashSet;

use crate::event::{Detail, Event};

/// The processes descending from a root (the `tracer run` process), and named links.
#[derive(Debug)]
pub struct ProcessTree {
    root: u32,
    pids: HashSet<u32>,
    links: HashSet<String>,
}

impl ProcessTree {
    pub fn new(root: u32) -> Self {
        Self {
            root,
            pids: HashSet::from([root]),
            links: HashSet::new(),
        }
    }

    /// A network link that belongs to the tree, whoever reports creating it (the rtnetlink
    /// monitor cannot name the creator).
    pub fn add_link(&mut self, name: String) {
        self.links.insert(name);
    }

    /// Whether `ev` belongs to the tree; a fork by a member makes the child a member.
    pub fn accept(&mut self, ev: &Event) -> bool {
        let member = self.pids.contains(&ev.tgid);
        match &ev.detail {
            Detail::Fork { child_pid } if member => {
                self.pids.insert(*child_pid);
                true
            }
            Detail::Veth { name, peer, .. } => {
                member || self.links.contains(name) || self.links.contains(peer)
            }
            Detail::NetdevMove { name, .. } => member || self.links.contains(name),
            // The root's own thread pool naming its threads says nothing about the run.
            Detail::Rename { .. } if ev.tgid == self.root => false,
            _ => member,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SysResult;

    fn ev(tgid: u32, detail: Detail) -> Event {
        Event::for_test(tgid, detail)
    }

    #[test]
    fn tree_grows_from_forks_and_ignores_strangers() {
        let mut t = ProcessTree::new(10);
        let exit = || Detail::Exit {
            exit_code: Some(0),
            signal: None,
            core_dumped: false,
        };
        assert!(!t.accept(&ev(11, exit())), "not forked from the root yet");
        assert!(t.accept(&ev(10, Detail::Fork { child_pid: 11 })));
        assert!(t.accept(&ev(11, Detail::Fork { child_pid: 12 })));
        assert!(t.accept(&ev(12, exit())));
        assert!(!t.accept(&ev(99, Detail::Fork { child_pid: 100 })));
        let rename = || Detail::Rename {
            target_pid: 10,
            oldcomm: "tracer".into(),
            newcomm: "tokio-rt-worker".into(),
        };
        assert!(!t.accept(&ev(10, rename())));
        assert!(t.accept(&ev(11, rename())));
        assert!(!t.accept(&ev(100, exit())));
        let veth = |name: &str| Detail::Veth {
            name: name.into(),
            peer: "x".into(),
            ifindex: 1,
            peer_ifindex: 2,
            netns: 0,
            peer_netns: 0,
            result: SysResult::from_ret(0),
        };
        t.add_link("tvabc".into());
        assert!(t.accept(&ev(0, veth("tvabc"))));
        assert!(!t.accept(&ev(0, veth("other"))));
    }
}
