//! Network devices through the designed hooks: veth creation (kprobe + kretprobe on
//! `veth_newlink`: on return the device and its peer are registered, so both names, ifindexes
//! and namespaces can be read) and a device's move into another namespace (kprobe + kretprobe
//! on `__dev_change_net_namespace`). Kernels without kprobes use the loader's rtnetlink
//! monitor instead.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    macros::{kprobe, kretprobe},
    programs::{ProbeContext, RetProbeContext},
};
use tracer_common::{EventKind, Hook, NetdevMoveEvent, VethEvent, COMM_LEN};

use crate::{
    maps::{DEVMOVE_PENDING, EVENTS, VETH_PENDING},
    record::{count_lost, fill_header, kptr, kread, layout, send, wakeup},
};

#[kprobe]
pub(crate) fn veth_newlink_entry(ctx: ProbeContext) -> u32 {
    // Its signature changed (6.1: `(struct net *, struct net_device *dev, ...)`; newer:
    // `(struct net_device *dev, struct rtnl_newlink_params *, ...)`): keep the first three
    // arguments; the return probe picks the one BTF says is the device.
    let args = [
        ctx.arg::<u64>(0).unwrap_or(0),
        ctx.arg::<u64>(1).unwrap_or(0),
        ctx.arg::<u64>(2).unwrap_or(0),
    ];
    if VETH_PENDING
        .insert(bpf_get_current_pid_tgid() as u32, args, 0)
        .is_err()
    {
        count_lost(EventKind::Veth);
    }
    0
}

/// Name, ifindex and netns inode of a `struct net_device`.
fn device(dev: *const u8) -> ([u8; COMM_LEN], u32, u32) {
    let name = kread::<[u8; COMM_LEN]>(dev, layout!(netdev_name));
    let ifindex = kread::<u32>(dev, layout!(netdev_ifindex));
    let net = kptr(dev, layout!(netdev_net));
    let netns = kread::<u32>(net, layout!(net_inum));
    (name, ifindex, netns)
}

#[kretprobe]
pub(crate) fn veth_newlink_exit(ctx: RetProbeContext) -> u32 {
    let tid = bpf_get_current_pid_tgid() as u32;
    // SAFETY: map value read while we hold the only reference.
    let Some(args) = (unsafe { VETH_PENDING.get(tid) }).copied() else {
        return 0;
    };
    let _ = VETH_PENDING.remove(tid);
    let ret = ctx.ret::<u64>() as i32;
    let dev = match layout!(veth_newlink_dev_arg) {
        0 => args[0],
        1 => args[1],
        _ => args[2],
    } as *const u8;
    let Some(mut entry) = EVENTS.reserve::<VethEvent>(0) else {
        count_lost(EventKind::Veth);
        return 0;
    };
    let (name, ifindex, netns) = device(dev);
    let priv_off = layout!(netdev_priv);
    // A failed call leaves no peer; reads through a null or unknown pointer come back zero.
    let peer = if ret == 0 {
        kptr(dev.wrapping_add(priv_off as usize), layout!(veth_priv_peer))
    } else {
        core::ptr::null()
    };
    let (peer_name, peer_ifindex, peer_netns) = device(peer);
    let ev = entry.as_mut_ptr();
    // SAFETY: reserved ring memory of the right size.
    unsafe {
        fill_header(&mut (*ev).header, EventKind::Veth, Hook::VethNewlink);
        (*ev).ret = i64::from(ret);
        (*ev).ifindex = ifindex;
        (*ev).peer_ifindex = peer_ifindex;
        (*ev).netns = netns;
        (*ev).peer_netns = peer_netns;
        (*ev).name = name;
        (*ev).peer = peer_name;
    }
    entry.submit(wakeup(&EVENTS));
    0
}

/// `__dev_change_net_namespace(struct net_device *dev, struct net *net, ...)`: a device
/// about to move into namespace `net`. Which arguments those are comes from BTF.
// By reference: by value the record would be copied again on the 512-byte stack.
#[allow(clippy::needless_borrows_for_generic_args)]
#[kprobe]
pub(crate) fn dev_change_net_namespace_entry(ctx: ProbeContext) -> u32 {
    let args = [
        ctx.arg::<u64>(0).unwrap_or(0),
        ctx.arg::<u64>(1).unwrap_or(0),
        ctx.arg::<u64>(2).unwrap_or(0),
    ];
    let pick = |i: u32| match i {
        0 => args[0],
        1 => args[1],
        _ => args[2],
    } as *const u8;
    let dev = pick(layout!(devmove_dev_arg));
    let net = pick(layout!(devmove_net_arg));
    // SAFETY: `NetdevMoveEvent` is plain data; all-zero is a valid value.
    let mut ev: NetdevMoveEvent = unsafe { core::mem::zeroed() };
    let (name, ifindex, netns) = device(dev);
    ev.name = name;
    ev.ifindex = ifindex;
    ev.netns = netns;
    ev.to_netns = kread::<u32>(net, layout!(net_inum));
    fill_header(
        &mut ev.header,
        EventKind::NetdevMove,
        Hook::DevChangeNetNamespace,
    );
    if DEVMOVE_PENDING
        .insert(bpf_get_current_pid_tgid() as u32, &ev, 0)
        .is_err()
    {
        count_lost(EventKind::NetdevMove);
    }
    0
}

#[kretprobe]
pub(crate) fn dev_change_net_namespace_exit(ctx: RetProbeContext) -> u32 {
    let tid = bpf_get_current_pid_tgid() as u32;
    if let Some(ev) = DEVMOVE_PENDING.get_ptr_mut(tid) {
        // SAFETY: map value pointer, ours until removed below.
        unsafe {
            (*ev).ret = i64::from(ctx.ret::<u64>() as i32);
            send(&EVENTS, &*ev, EventKind::NetdevMove);
        }
        let _ = DEVMOVE_PENDING.remove(tid);
    }
    0
}
