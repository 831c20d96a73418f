//! Netns ids into namespace inodes. Seen from one namespace, another is named by a netns id
//! (`IFLA_LINK_NETNSID` of a veth whose peer is there), while events name namespaces by inode.
//! The kernel maps a namespace to its id (`RTM_GETNSID` with a file of it), not the other way,
//! so every namespace some process or nsfs mount holds is asked until one has the id.

use std::{
    collections::BTreeMap,
    fs,
    os::{fd::AsRawFd as _, unix::fs::MetadataExt as _},
    path::PathBuf,
    time::Duration,
};

use futures::StreamExt as _;
use rtnetlink::{
    packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_REQUEST},
    packet_route::{
        nsid::{NsidAttribute, NsidMessage},
        RouteNetlinkMessage,
    },
    Handle,
};

/// A namespace may be made a moment after its id is announced (or held only once a runtime
/// joins it): the search is repeated this many times, this far apart.
const ATTEMPTS: u32 = 20;
const PAUSE: Duration = Duration::from_millis(50);

/// The inode of the network namespace that `nsid` names, seen from this one (`own`).
pub(super) async fn inode_of(handle: &mut Handle, own: u32, nsid: i32) -> Option<u32> {
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(PAUSE).await;
        }
        for (inode, path) in candidates(own) {
            if id_of(handle, &path).await == Some(nsid) {
                return Some(inode);
            }
        }
    }
    None
}

/// The netns id of the namespace at `path` (`None`: none assigned, or not readable).
async fn id_of(handle: &mut Handle, path: &PathBuf) -> Option<i32> {
    let file = fs::File::open(path).ok()?;
    let mut msg = NsidMessage::default();
    msg.attributes
        .push(NsidAttribute::Fd(file.as_raw_fd() as u32));
    let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetNsId(msg));
    req.header.flags = NLM_F_REQUEST;
    let mut replies = handle.request(req).ok()?;
    while let Some(reply) = replies.next().await {
        if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNsId(m)) = reply.payload {
            return m.attributes.iter().find_map(|a| match a {
                NsidAttribute::Id(id) if *id >= 0 => Some(*id),
                _ => None,
            });
        }
    }
    None
}

/// One path to each network namespace held by a process or an nsfs mount (podman keeps a
/// container's namespace under /run/netns before anything runs in it), other than `own`.
fn candidates(own: u32) -> BTreeMap<u32, PathBuf> {
    let mut found = BTreeMap::new();
    if let Ok(procs) = fs::read_dir("/proc") {
        for p in procs.flatten() {
            if !p
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
            {
                continue;
            }
            let path = p.path().join("ns/net");
            if let Ok(inode) = fs::metadata(&path).map(|m| m.ino() as u32) {
                found.entry(inode).or_insert(path);
            }
        }
    }
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mounts.lines() {
        // `ID PARENT DEV ROOT MOUNTPOINT ... - FSTYPE SOURCE OPTIONS`; an nsfs root is
        // `net:[INODE]`.
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.get(dash + 1) != Some(&"nsfs") {
            continue;
        }
        let inode = fields
            .get(3)
            .and_then(|root| root.strip_prefix("net:["))
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|n| n.parse::<u32>().ok());
        if let (Some(inode), Some(point)) = (inode, fields.get(4)) {
            found.entry(inode).or_insert_with(|| PathBuf::from(point));
        }
    }
    found.remove(&own);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's own namespace is never a candidate; those of others are found.
    #[test]
    fn candidates_leave_out_our_own() {
        let own = fs::metadata("/proc/self/ns/net").unwrap().ino() as u32;
        assert!(!candidates(own).contains_key(&own));
        assert!(candidates(0).contains_key(&own), "ours, when not excluded");
    }
}
