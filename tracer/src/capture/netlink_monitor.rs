//! veth creation where kprobes are missing: a userspace rtnetlink monitor of `RTNLGRP_LINK`,
//! like `ip monitor link`. It needs no kernel hook at all, at a price stated in `tracer check`:
//! it sees links of the tracer's own network namespace only (where runtimes create veth pairs
//! before moving one end into the container), the creator is the notification's netlink port
//! id (normally the creating process's pid), and its timestamps are taken on receipt.

use std::{collections::HashMap, os::unix::fs::MetadataExt as _};

use futures::{StreamExt as _, TryStreamExt as _};
use rtnetlink::{
    new_multicast_connection,
    packet_core::{NetlinkMessage, NetlinkPayload},
    packet_route::{
        link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage},
        RouteNetlinkMessage,
    },
    MulticastGroup,
};
use tokio::sync::mpsc;
use tracer_common::Hook;

use crate::event::{Detail, Event, SysResult};

/// Whether a link monitor can run here (a NETLINK_ROUTE socket bound to the link group).
pub fn available() -> Result<(), String> {
    use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| format!("netlink socket: {e}"))?;
    socket
        .bind(&SocketAddr::new(0, rtnetlink::constants::RTMGRP_LINK))
        .map_err(|e| format!("binding to RTNLGRP_LINK: {e}"))
}

/// What the monitor knows of one interface.
#[derive(Debug, Default, Clone)]
struct Link {
    name: String,
    veth: bool,
    reported: bool,
}

/// Turns link notifications into veth events: one per pair, when the first end that names
/// its peer is announced (the peer is registered first, without a peer).
#[derive(Debug)]
pub struct VethTracker {
    links: HashMap<u32, Link>,
    netns: u32,
}

impl VethTracker {
    pub fn new(netns: u32) -> Self {
        Self {
            links: HashMap::new(),
            netns,
        }
    }

    /// Learns a link without reporting it (initial dump).
    fn learn(&mut self, msg: &LinkMessage) {
        let (name, veth, _, _) = parse(msg);
        let link = self.links.entry(msg.header.index).or_default();
        link.name = name;
        link.veth = veth;
        link.reported = true;
    }

    /// A `RTM_NEWLINK` notification: the veth pair's details, once per pair.
    pub fn new_link(&mut self, msg: &LinkMessage) -> Option<Detail> {
        let index = msg.header.index;
        let (name, veth, peer, peer_elsewhere) = parse(msg);
        let link = self.links.entry(index).or_default();
        link.name.clone_from(&name);
        link.veth = veth;
        if !veth || link.reported {
            return None;
        }
        let peer = peer.filter(|p| *p != 0 && *p != index)?;
        link.reported = true;
        let peer_name = if peer_elsewhere {
            String::new()
        } else {
            let p = self.links.entry(peer).or_default();
            p.reported = true;
            p.name.clone()
        };
        Some(Detail::Veth {
            name,
            peer: peer_name,
            ifindex: index,
            peer_ifindex: peer,
            netns: self.netns,
            // Another namespace's inode cannot be read from here.
            peer_netns: if peer_elsewhere { 0 } else { self.netns },
            result: SysResult::from_ret(0),
        })
    }

    pub fn del_link(&mut self, msg: &LinkMessage) {
        self.links.remove(&msg.header.index);
    }
}

/// (name, is veth, peer ifindex, peer in another netns)
fn parse(msg: &LinkMessage) -> (String, bool, Option<u32>, bool) {
    let mut name = String::new();
    let mut veth = false;
    let mut peer = None;
    let mut elsewhere = false;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name.clone_from(n),
            LinkAttribute::Link(i) => peer = Some(*i),
            LinkAttribute::LinkNetNsId(_) => elsewhere = true,
            LinkAttribute::LinkInfo(infos) => {
                veth |= infos
                    .iter()
                    .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Veth)));
            }
            _ => {}
        }
    }
    (name, veth, peer, elsewhere)
}

fn boot_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).map_or(0, |t| {
        (t.tv_sec() as u64) * 1_000_000_000 + t.tv_nsec() as u64
    })
}

fn own_ns(kind: &str) -> u32 {
    std::fs::metadata(format!("/proc/self/ns/{kind}")).map_or(0, |m| m.ino() as u32)
}

/// The event for a notification sent on behalf of netlink port `portid`.
fn event(detail: Detail, portid: u32) -> Event {
    // The creator may already be gone: then its name stays empty.
    let comm = std::fs::read_to_string(format!("/proc/{portid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default();
    Event {
        ts_ns: boot_ns(),
        pid: portid,
        tgid: portid,
        ppid: 0,
        uid: 0,
        comm,
        cgroup_id: 0,
        mnt_ns: 0,
        pid_ns: 0,
        net_ns: own_ns("net"),
        hook: Hook::RtnetlinkMonitor.name().to_string(),
        truncated: Vec::new(),
        detail,
    }
}

/// Starts the monitor; events arrive on the returned channel until it is dropped.
pub async fn start() -> std::io::Result<mpsc::UnboundedReceiver<Event>> {
    let (conn, handle, mut messages) = new_multicast_connection(&[MulticastGroup::Link])?;
    tokio::spawn(conn);
    let mut tracker = VethTracker::new(own_ns("net"));
    // Existing links are known (for peer names) but not reported.
    let mut dump = handle.link().get().execute();
    while let Ok(Some(msg)) = dump.try_next().await {
        tracker.learn(&msg);
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((msg, _)) = messages.next().await {
            let NetlinkMessage {
                header, payload, ..
            } = msg;
            match payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    if let Some(detail) = tracker.new_link(&link) {
                        if tx.send(event(detail, header.port_number)).is_err() {
                            break;
                        }
                    }
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                    tracker.del_link(&link);
                }
                _ => {}
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, veth: bool, peer: Option<u32>) -> LinkMessage {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        if veth {
            msg.attributes
                .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                    InfoKind::Veth,
                )]));
        }
        if let Some(p) = peer {
            msg.attributes.push(LinkAttribute::Link(p));
        }
        msg
    }

    /// The order `ip link add A type veth peer name B` produces: B without a peer, then A@B,
    /// then state changes of both.
    #[test]
    fn one_event_per_pair_named_like_the_kernel_hook() {
        let mut t = VethTracker::new(77);
        assert_eq!(t.new_link(&link(5, "B", true, None)), None);
        let detail = t.new_link(&link(6, "A", true, Some(5))).unwrap();
        assert_eq!(
            detail,
            Detail::Veth {
                name: "A".into(),
                peer: "B".into(),
                ifindex: 6,
                peer_ifindex: 5,
                netns: 77,
                peer_netns: 77,
                result: SysResult::from_ret(0),
            }
        );
        assert_eq!(t.new_link(&link(5, "B", true, Some(6))), None);
        assert_eq!(t.new_link(&link(6, "A", true, Some(5))), None);
    }

    #[test]
    fn non_veth_and_known_links_are_not_reported() {
        let mut t = VethTracker::new(1);
        assert_eq!(t.new_link(&link(3, "br0", false, None)), None);
        t.learn(&link(8, "old0", true, Some(9)));
        assert_eq!(t.new_link(&link(8, "old0", true, Some(9))), None);
        // A deleted and re-created index is new again.
        t.del_link(&link(8, "old0", true, None));
        assert!(t.new_link(&link(8, "new0", true, Some(3))).is_some());
    }

    #[test]
    fn peer_in_another_namespace_has_no_name() {
        let mut t = VethTracker::new(1);
        let mut msg = link(4, "veth1", true, Some(2));
        msg.attributes.push(LinkAttribute::LinkNetNsId(0));
        let Some(Detail::Veth {
            peer, peer_netns, ..
        }) = t.new_link(&msg)
        else {
            panic!("not reported")
        };
        assert_eq!((peer.as_str(), peer_netns), ("", 0));
    }
}
