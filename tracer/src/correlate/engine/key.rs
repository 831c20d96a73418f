//! How a phase names the event that marks it.

use crate::event::{Detail, Event, NsOp};

/// Key events are cut to this many characters.
const KEY_CHARS: usize = 160;

/// The event in words: `runc:[1:CHILD] 4242 namespaces: unshare: new mnt:[...] ...`.
pub(super) fn text(ev: &Event) -> String {
    let mut s = if ev.tgid == 0 && ev.comm.is_empty() {
        // The rtnetlink monitor: link notifications carry no creator.
        format!("[rtnetlink] {}", ev.detail.kind_name())
    } else {
        format!("{} {} {}", ev.comm, ev.tgid, ev.detail.kind_name())
    };
    if ev
        .detail
        .result()
        .is_some_and(crate::event::SysResult::failed)
    {
        s.push('!');
    }
    s.push_str(": ");
    s.push_str(&ev.to_string());
    if s.chars().count() > KEY_CHARS {
        s = s.chars().take(KEY_CHARS - 1).collect();
        s.push('…');
    }
    // Kept as long as its container: without the spare room growing it left.
    s.shrink_to_fit();
    s
}

/// The call behind an event, as a person would name it.
pub(super) fn call(ev: &Event) -> Option<&'static str> {
    Some(match &ev.detail {
        Detail::Exec { execveat, .. } => {
            if execveat.is_some() {
                "execveat"
            } else {
                "execve"
            }
        }
        Detail::Mount { .. } => "mount",
        Detail::Umount { .. } => "umount2",
        Detail::PivotRoot { .. } => "pivot_root",
        Detail::Fsopen { .. } => "fsopen",
        Detail::Fsconfig { .. } => "fsconfig",
        Detail::Fsmount { .. } => "fsmount",
        Detail::MoveMount { .. } => "move_mount",
        Detail::OpenTree { .. } => "open_tree",
        Detail::MountSetattr { .. } => "mount_setattr",
        Detail::Fork { .. } => "fork",
        Detail::Exit { .. } => "exit",
        Detail::Rename { .. } => "prctl",
        Detail::Namespaces { op, target_pid, .. } => match op {
            NsOp::Unshare => "unshare",
            NsOp::Clone => "clone",
            NsOp::Setns => "setns",
            // The kprobe sees both: an unshare changes the caller itself.
            NsOp::Create if *target_pid == ev.tgid => "unshare",
            NsOp::Create => "clone",
        },
        Detail::Setns { .. } => "setns",
        Detail::CgroupMkdir { .. } => "mkdir",
        Detail::CgroupRmdir { .. } => "rmdir",
        Detail::CgroupAttach { .. } => "write",
        Detail::Signal { .. } => "kill",
        Detail::Capset { .. } => "capset",
        Detail::Prctl { .. } => "prctl",
        Detail::Seccomp { .. } => "seccomp",
        Detail::IdMap { .. } => "write",
        Detail::OomKill { .. } => return None,
        Detail::NetdevMove { .. } | Detail::Veth { .. } => return None,
    })
}
