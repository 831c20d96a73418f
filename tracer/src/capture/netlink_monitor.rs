//! Network devices where kprobes are missing: a userspace rtnetlink monitor of
//! `RTNLGRP_LINK`, like `ip monitor link`. It needs no kernel hook at all, at a price stated in
//! `tracer check`: it sees links of the tracer's own network namespace only (where runtimes
//! create veth pairs before moving one end into the container), the creator is the
//! notification's netlink port id (normally the creating process's pid), and its timestamps
//! are taken on receipt.
//!
//! It reports veth pairs, and a veth end moving into another namespace: the end left here then
//! names its peer's namespace by a netns id (`IFLA_LINK_NETNSID`), which [`nsid`] turns into
//! the namespace's inode, the one the container's own events carry.

use std::{
    collections::HashMap,
    os::{fd::AsRawFd as _, unix::fs::MetadataExt as _},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use futures::{StreamExt as _, TryStreamExt as _};
use rtnetlink::{
    new_multicast_connection,
    packet_core::{NetlinkMessage, NetlinkPayload},
    packet_route::{
        link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage},
        RouteNetlinkMessage,
    },
    Handle, MulticastGroup,
};
use tokio::sync::mpsc;
use tracer_common::Hook;

use super::nsid;
use crate::event::{Detail, Event, SysResult};

/// Whether a link monitor can run here (a NETLINK_ROUTE socket bound to the link group).
pub fn available() -> Result<(), String> {
    use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| format!("netlink socket: {e}"))?;
    socket
        .bind(&SocketAddr::new(0, rtnetlink::constants::RTMGRP_LINK))
        .map_err(|e| format!("binding to RTNLGRP_LINK: {e}"))
}

/// What the monitor reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reports {
    /// veth pairs (the `veth` kind's fallback).
    pub veths: bool,
    /// veth ends moving to another namespace (the `netdev_move` kind's fallback).
    pub moves: bool,
}

/// What the monitor knows of one interface.
#[derive(Debug, Default, Clone)]
struct Link {
    name: String,
    veth: bool,
    reported: bool,
    /// Its peer as it was when the pair was made here.
    peer: Option<(u32, String)>,
    /// The netns id its peer is in, once that is another namespace.
    peer_nsid: Option<i32>,
}

/// A notification's meaning: a detail, and the netns id whose inode it still needs (in
/// `peer_netns` of a veth, `to_netns` of a move).
#[derive(Debug, PartialEq)]
pub struct Notice {
    pub detail: Detail,
    pub nsid: Option<i32>,
}

/// Turns link notifications into veth and move events: a pair once, when the first end that
/// names its peer is announced (the peer is registered first, without a peer); a move when an
/// end reported here starts naming its peer by a netns id.
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
        let (name, veth, _, nsid) = parse(msg);
        let link = self.links.entry(msg.header.index).or_default();
        link.name = name;
        link.veth = veth;
        link.peer_nsid = nsid;
        link.reported = true;
    }

    /// A `RTM_NEWLINK` notification.
    pub fn new_link(&mut self, msg: &LinkMessage) -> Option<Notice> {
        let index = msg.header.index;
        let (name, veth, peer, nsid) = parse(msg);
        let netns = self.netns;
        let link = self.links.entry(index).or_default();
        link.name.clone_from(&name);
        link.veth = veth;
        if !veth {
            return None;
        }
        if link.reported {
            // Its peer has just left for another namespace.
            let moved = link.peer_nsid.is_none() && nsid.is_some();
            link.peer_nsid = link.peer_nsid.or(nsid);
            let (peer_index, peer_name) = link.peer.clone().filter(|_| moved)?;
            return Some(Notice {
                detail: Detail::NetdevMove {
                    name: peer_name,
                    ifindex: peer_index,
                    netns,
                    to_netns: 0,
                    result: SysResult::from_ret(0),
                },
                nsid,
            });
        }
        let peer = peer.filter(|p| *p != 0 && *p != index)?;
        link.reported = true;
        link.peer_nsid = nsid;
        let peer_name = if nsid.is_some() {
            String::new()
        } else {
            let p = self.links.entry(peer).or_default();
            p.reported = true;
            p.peer = Some((index, name.clone()));
            p.name.clone()
        };
        self.links.get_mut(&index).expect("just added").peer = Some((peer, peer_name.clone()));
        Some(Notice {
            detail: Detail::Veth {
                name,
                peer: peer_name,
                ifindex: index,
                peer_ifindex: peer,
                netns,
                // Filled from the netns id once resolved.
                peer_netns: if nsid.is_some() { 0 } else { netns },
                result: SysResult::from_ret(0),
            },
            nsid,
        })
    }

    /// A `RTM_DELLINK`: the link left this namespace, deleted or moved. When it was a veth
    /// whose peer is still here, the caller asks the peer whether it now names a netns id
    /// (then the link moved: [`VethTracker::peer_moved`]); that index is returned.
    pub fn del_link(&mut self, msg: &LinkMessage) -> Option<u32> {
        let gone = self.links.remove(&msg.header.index)?;
        let (peer, _) = gone.peer.filter(|_| gone.veth)?;
        self.links
            .get(&peer)
            .filter(|p| p.peer_nsid.is_none())
            .map(|_| peer)
    }

    /// Link `index` (still here) now names its peer by netns id `nsid`: the move of that
    /// peer, reported once (a later notification of `index` says nothing new).
    pub fn peer_moved(&mut self, index: u32, nsid: i32) -> Option<Notice> {
        let link = self.links.get_mut(&index)?;
        if link.peer_nsid.is_some() {
            return None;
        }
        link.peer_nsid = Some(nsid);
        let (peer_index, peer_name) = link.peer.clone()?;
        Some(Notice {
            detail: Detail::NetdevMove {
                name: peer_name,
                ifindex: peer_index,
                netns: self.netns,
                to_netns: 0,
                result: SysResult::from_ret(0),
            },
            nsid: Some(nsid),
        })
    }
}

/// (name, is veth, peer ifindex, the netns id of the peer's namespace when it is another)
fn parse(msg: &LinkMessage) -> (String, bool, Option<u32>, Option<i32>) {
    let mut name = String::new();
    let mut veth = false;
    let mut peer = None;
    let mut nsid = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name.clone_from(n),
            LinkAttribute::Link(i) => peer = Some(*i),
            LinkAttribute::LinkNetNsId(id) => nsid = Some(*id),
            LinkAttribute::LinkInfo(infos) => {
                veth |= infos
                    .iter()
                    .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Veth)));
            }
            _ => {}
        }
    }
    (name, veth, peer, nsid)
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
        user_ns: 0,
        hook: Hook::RtnetlinkMonitor.name().to_string(),
        truncated: Vec::new(),
        detail,
    }
}

/// The socket's receive buffer: a burst of containers starting at once (each veth is several
/// notifications of a kilobyte or more) must not overflow the default 208 KiB while the
/// reader waits for a CPU.
const RECEIVE_BUFFER: libc::c_int = 8 << 20;

/// The running monitor: its events, and how often the kernel dropped notifications because
/// the socket was full (each time one or more; they are counted as lost).
pub struct Monitor {
    pub events: mpsc::UnboundedReceiver<Event>,
    pub overruns: Arc<AtomicU64>,
}

/// Starts the monitor; events arrive on its channel until it is dropped.
pub async fn start(reports: Reports) -> std::io::Result<Monitor> {
    let (mut conn, handle, mut messages) = new_multicast_connection(&[MulticastGroup::Link])?;
    let fd = rtnetlink::sys::AsyncSocket::socket_ref(conn.socket_mut()).as_raw_fd();
    // SAFETY: fd is the connection's open socket; the option value is a c_int that lives
    // across the call. SO_RCVBUFFORCE passes rmem_max (root); failing, the default stays.
    let set = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            std::ptr::from_ref(&RECEIVE_BUFFER).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if set != 0 {
        log::warn!(
            "rtnetlink monitor: receive buffer left at its default ({})",
            std::io::Error::last_os_error()
        );
    }
    tokio::spawn(conn);
    let overruns = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&overruns);
    let own = own_ns("net");
    let mut tracker = VethTracker::new(own);
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
                    let Some(notice) = tracker.new_link(&link) else {
                        continue;
                    };
                    let wanted = match notice.detail {
                        Detail::NetdevMove { .. } => reports.moves,
                        _ => reports.veths,
                    };
                    if wanted {
                        let ev = event(notice.detail, header.port_number);
                        tokio::spawn(resolved(handle.clone(), own, ev, notice.nsid, tx.clone()));
                    }
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                    let Some(peer) = tracker.del_link(&link) else {
                        continue;
                    };
                    // Deleted, or moved: a moved end's peer is still here, naming it by a
                    // netns id (nothing else may change the peer, so nothing else tells).
                    let nsid = peer_nsid(&handle, peer).await;
                    let notice = nsid.and_then(|id| tracker.peer_moved(peer, id));
                    if let (Some(notice), true) = (notice, reports.moves) {
                        let ev = event(notice.detail, header.port_number);
                        tokio::spawn(resolved(handle.clone(), own, ev, notice.nsid, tx.clone()));
                    }
                }
                NetlinkPayload::Overrun(_) => {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    });
    Ok(Monitor {
        events: rx,
        overruns,
    })
}

/// The netns id link `index` names its peer by, if it is there and its peer elsewhere.
async fn peer_nsid(handle: &Handle, index: u32) -> Option<i32> {
    let mut links = handle.link().get().match_index(index).execute();
    let msg = links.try_next().await.ok()??;
    parse(&msg).3
}

/// Sends `ev` once the namespace behind `nsid` is known (a namespace nobody holds any more
/// stays 0). The event keeps the time it was received.
async fn resolved(
    mut handle: Handle,
    own: u32,
    mut ev: Event,
    nsid: Option<i32>,
    tx: mpsc::UnboundedSender<Event>,
) {
    if let Some(id) = nsid {
        let inode = nsid::inode_of(&mut handle, own, id).await.unwrap_or(0);
        match &mut ev.detail {
            Detail::Veth { peer_netns, .. } => *peer_netns = inode,
            Detail::NetdevMove { to_netns, .. } => *to_netns = inode,
            _ => {}
        }
    }
    let _ = tx.send(ev);
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
        let notice = t.new_link(&link(6, "A", true, Some(5))).unwrap();
        assert_eq!(notice.nsid, None);
        let detail = notice.detail;
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

    /// netavark's order: the pair made across namespaces, the host end naming its peer by
    /// a netns id from the start.
    #[test]
    fn peer_in_another_namespace_needs_its_nsid() {
        let mut t = VethTracker::new(1);
        let mut msg = link(4, "veth1", true, Some(2));
        msg.attributes.push(LinkAttribute::LinkNetNsId(7));
        let Some(Notice {
            detail: Detail::Veth {
                peer, peer_netns, ..
            },
            nsid: Some(7),
        }) = t.new_link(&msg)
        else {
            panic!("not reported")
        };
        assert_eq!((peer.as_str(), peer_netns), ("", 0));
        // Later notifications of the same end are not a move.
        assert_eq!(t.new_link(&msg), None);
    }

    /// Docker's order: the pair made here, then one end moved into the container's namespace;
    /// the end left here then names its peer by a netns id.
    #[test]
    fn a_peer_moving_away_is_a_move() {
        let mut t = VethTracker::new(1);
        assert_eq!(t.new_link(&link(5, "vethB", true, None)), None);
        assert!(t.new_link(&link(6, "vethA", true, Some(5))).is_some());
        t.del_link(&link(5, "vethB", true, None));
        let mut moved = link(6, "vethA", true, Some(5));
        moved.attributes.push(LinkAttribute::LinkNetNsId(3));
        assert_eq!(
            t.new_link(&moved),
            Some(Notice {
                detail: Detail::NetdevMove {
                    name: "vethB".into(),
                    ifindex: 5,
                    netns: 1,
                    to_netns: 0,
                    result: SysResult::from_ret(0),
                },
                nsid: Some(3),
            })
        );
        assert_eq!(t.new_link(&moved), None, "once");
    }

    /// `ip link set B netns X` and nothing else: B's deletion here, its peer (asked) naming
    /// a netns id, is the move.
    #[test]
    fn a_deleted_end_whose_peer_names_a_netns_moved() {
        let mut t = VethTracker::new(1);
        assert_eq!(t.new_link(&link(5, "vethB", true, None)), None);
        assert!(t.new_link(&link(6, "vethA", true, Some(5))).is_some());
        assert_eq!(t.del_link(&link(5, "vethB", true, None)), Some(6));
        let moved = t.peer_moved(6, 4).unwrap();
        assert_eq!(moved.nsid, Some(4));
        assert!(matches!(
            moved.detail,
            Detail::NetdevMove { ref name, ifindex: 5, .. } if name == "vethB"
        ));
        assert_eq!(t.peer_moved(6, 4), None, "once");
        // Deleting the pair: the peer is gone too, nothing to ask.
        assert_eq!(t.del_link(&link(6, "vethA", true, Some(5))), None);
    }
}
