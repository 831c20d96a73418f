//! The live stream: one aligned line per event, in the spirit of the classic bpftrace script
//! (`TIME  COMMAND  PID  ACTION  CONTENT`).

use std::fmt::Write as _;

use crate::{
    event::{Detail, Event, NsInodes, SysResult},
    render::flags,
};

/// Converts boot-time nanoseconds to local wall-clock text.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// `CLOCK_REALTIME - CLOCK_BOOTTIME`, in nanoseconds, measured once.
    offset_ns: i128,
}

impl Clock {
    pub fn now() -> Self {
        use nix::time::{clock_gettime, ClockId};
        let ns = |c| {
            clock_gettime(c).map_or(0, |t| {
                i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
            })
        };
        let boot = ns(ClockId::CLOCK_BOOTTIME);
        let real = ns(ClockId::CLOCK_REALTIME);
        Self {
            offset_ns: real - boot,
        }
    }

    /// The clock of a saved trace.
    pub fn from_offset(offset_ns: i128) -> Self {
        Self { offset_ns }
    }

    /// `CLOCK_REALTIME - CLOCK_BOOTTIME`, in nanoseconds.
    pub fn offset_ns(&self) -> i128 {
        self.offset_ns
    }

    /// Wall-clock nanoseconds since the epoch of a boot-time stamp.
    pub fn wall_ns(&self, boot_ns: u64) -> i128 {
        i128::from(boot_ns) + self.offset_ns
    }

    /// `HH:MM:SS.mmm` in local time.
    pub fn time_of_day(&self, boot_ns: u64) -> String {
        let wall = self.wall_ns(boot_ns);
        let secs = i64::try_from(wall.div_euclid(1_000_000_000)).unwrap_or(0);
        let nanos = wall.rem_euclid(1_000_000_000) as u32;
        match chrono::DateTime::from_timestamp(secs, nanos) {
            Some(t) => t
                .with_timezone(&chrono::Local)
                .format("%H:%M:%S%.3f")
                .to_string(),
            None => format!("{boot_ns}"),
        }
    }
}

pub const HEADER: &str = "TIME          COMMAND          PID      ACTION         CONTENT";

/// One stream line (without newline).
pub fn line(clock: &Clock, ev: &Event) -> String {
    let mut action = ev.detail.kind().to_string();
    if ev.detail.result().is_some_and(SysResult::failed) {
        action.push('!');
    }
    format!(
        "{:<13} {:<16} {:<8} {:<14} {}",
        clock.time_of_day(ev.ts_ns),
        ev.comm,
        ev.tgid,
        action,
        content(ev)
    )
}

/// The CONTENT column: what the event did, with any failure spelled out.
pub fn content(ev: &Event) -> String {
    let mut s = String::new();
    match &ev.detail {
        Detail::Exec {
            filename,
            argv,
            argv_truncated,
            execveat,
            ..
        } => {
            s.push_str(&argv.join(" "));
            if *argv_truncated {
                s.push_str(" …");
            }
            if argv.first() != Some(filename) {
                let _ = write!(s, "  (file={filename}");
                if let Some(at) = execveat {
                    let _ = write!(s, ", dirfd={}, {}", at.dirfd, flags::at_flags(at.flags));
                }
                s.push(')');
            }
        }
        Detail::Mount {
            fstype,
            source,
            target,
            flags: f,
            ..
        } => {
            let _ = write!(
                s,
                "type={fstype}, dev={source}, dir={target}, flags={}",
                flags::mount_flags(*f)
            );
        }
        Detail::Umount {
            target, flags: f, ..
        } => {
            let _ = write!(s, "dir={target}, flags={}", flags::umount_flags(*f));
        }
        Detail::PivotRoot {
            new_root, put_old, ..
        } => {
            let _ = write!(s, "new_root={new_root}, put_old={put_old}");
        }
        Detail::Fsopen { fstype, .. } => {
            let _ = write!(s, "type={fstype}");
        }
        Detail::Fsconfig {
            fd,
            cmd,
            key,
            value,
            ..
        } => {
            let _ = write!(s, "fd={fd}, {}", flags::fsconfig_cmd(*cmd));
            if !key.is_empty() {
                let _ = write!(s, ", {key}");
                if let Some(v) = value {
                    let _ = write!(s, "={v}");
                }
            }
        }
        Detail::Fsmount {
            fs_fd, attr_flags, ..
        } => {
            let _ = write!(
                s,
                "fs_fd={fs_fd}, attrs={}",
                flags::mount_attr(u64::from(*attr_flags))
            );
        }
        Detail::MoveMount {
            from_dfd,
            from_path,
            to_dfd,
            to_path,
            ..
        } => {
            let _ = write!(
                s,
                "from={}, to={}",
                flags::dirfd_path(*from_dfd, from_path),
                flags::dirfd_path(*to_dfd, to_path)
            );
        }
        Detail::OpenTree {
            dfd,
            path,
            flags: f,
            ..
        } => {
            let _ = write!(
                s,
                "path={}, flags={}",
                flags::dirfd_path(*dfd, path),
                flags::open_tree_flags(*f)
            );
        }
        Detail::MountSetattr {
            dfd,
            path,
            attr_set,
            attr_clr,
            propagation,
            ..
        } => {
            let _ = write!(
                s,
                "path={}, set={}, clear={}",
                flags::dirfd_path(*dfd, path),
                flags::mount_attr(*attr_set),
                flags::mount_attr(*attr_clr)
            );
            if *propagation != 0 {
                let _ = write!(s, ", propagation={}", flags::mount_flags(*propagation));
            }
        }
        Detail::Fork { child_pid } => {
            let _ = write!(s, "child={child_pid}");
        }
        Detail::Exit {
            exit_code,
            signal,
            core_dumped,
        } => match (exit_code, signal) {
            (Some(code), _) => {
                let _ = write!(s, "code={code}");
            }
            (None, Some(sig)) => {
                let _ = write!(s, "killed by {}", flags::signal_name(*sig));
                if *core_dumped {
                    s.push_str(" (core dumped)");
                }
            }
            (None, None) => s.push('?'),
        },
        Detail::Rename {
            target_pid,
            oldcomm,
            newcomm,
        } => {
            let _ = write!(s, "{oldcomm} -> {newcomm}");
            if *target_pid != ev.pid {
                let _ = write!(s, " (task {target_pid})");
            }
        }
        Detail::Namespaces {
            op,
            target_pid,
            new,
            ns,
            ..
        } => {
            s.push_str(op);
            if *target_pid != 0 && *target_pid != ev.tgid {
                let _ = write!(s, " child={target_pid}");
            }
            let _ = write!(s, ": new {}", ns_list(new, ns));
        }
        Detail::Setns {
            fd,
            nstype,
            joined,
            ns,
            ..
        } => {
            let _ = write!(s, "fd={fd}, nstype={}", flags::clone_flags(*nstype));
            if !joined.is_empty() {
                let _ = write!(s, ": joined {}", ns_list(joined, ns));
            }
        }
        Detail::Veth {
            name,
            peer,
            ifindex,
            peer_ifindex,
            netns,
            peer_netns,
            ..
        } => {
            let peer = if peer.is_empty() { "?" } else { peer };
            let _ = write!(
                s,
                "{name} <-> {peer}  (ifindex {ifindex}/{peer_ifindex}, netns {netns}/{peer_netns})"
            );
        }
    }
    if let Some(r) = ev.detail.result() {
        match &r.error {
            Some(err) => {
                let _ = write!(s, "  = {err}");
            }
            // fd-returning calls: the fd is what later calls refer to.
            None if matches!(
                ev.detail,
                Detail::Fsopen { .. } | Detail::Fsmount { .. } | Detail::OpenTree { .. }
            ) =>
            {
                let _ = write!(s, "  = fd {}", r.ret);
            }
            None => {}
        }
    }
    s
}

/// `mnt:[4026532281] pid:[4026532284]`, as `/proc/PID/ns/*` links read.
fn ns_list(kinds: &[String], ns: &NsInodes) -> String {
    if kinds.is_empty() {
        return "none".into();
    }
    kinds
        .iter()
        .map(|k| {
            let inum = match k.as_str() {
                "uts" => ns.uts,
                "ipc" => ns.ipc,
                "mnt" => ns.mnt,
                "pid" => ns.pid,
                "net" => ns.net,
                "cgroup" => ns.cgroup,
                "time" => ns.time,
                _ => 0,
            };
            format!("{k}:[{inum}]")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ExecAt;

    fn ev(detail: Detail) -> Event {
        Event {
            ts_ns: 1,
            ppid: 1,
            comm: "runc".into(),
            cgroup_id: 1,
            ..Event::for_test(10, detail)
        }
    }

    #[test]
    fn exec_lines() {
        let e = ev(Detail::Exec {
            filename: "/bin/echo".into(),
            argv: vec!["/bin/echo".into(), "a".into(), "b".into()],
            argv_truncated: false,
            filename_truncated: false,
            execveat: None,
            result: SysResult::from_ret(0),
        });
        assert_eq!(content(&e), "/bin/echo a b");
        let e = ev(Detail::Exec {
            filename: "".into(),
            argv: vec!["runc".into(), "init".into()],
            argv_truncated: true,
            filename_truncated: false,
            execveat: Some(ExecAt {
                dirfd: 5,
                flags: 0x1000,
            }),
            result: SysResult::from_ret(-2),
        });
        assert_eq!(
            content(&e),
            "runc init …  (file=, dirfd=5, AT_EMPTY_PATH)  = ENOENT"
        );
        assert!(line(&Clock::now(), &e).contains(" exec! "));
    }

    #[test]
    fn mount_line_is_bpftrace_like() {
        let e = ev(Detail::Mount {
            fstype: "tmpfs".into(),
            source: "tmpfs".into(),
            target: "/tmp/x".into(),
            flags: libc::MS_NOSUID | libc::MS_NODEV,
            result: SysResult::from_ret(0),
        });
        assert_eq!(
            content(&e),
            "type=tmpfs, dev=tmpfs, dir=/tmp/x, flags=MS_NOSUID|MS_NODEV"
        );
    }

    #[test]
    fn exit_and_rename_lines() {
        let e = ev(Detail::Exit {
            exit_code: None,
            signal: Some(9),
            core_dumped: false,
        });
        assert_eq!(content(&e), "killed by SIGKILL");
        let e = ev(Detail::Rename {
            target_pid: 10,
            oldcomm: "exe".into(),
            newcomm: "runc:[0:PARENT]".into(),
        });
        assert_eq!(content(&e), "exe -> runc:[0:PARENT]");
    }

    #[test]
    fn namespace_and_veth_lines() {
        let ns = NsInodes::from_array([1, 2, 3, 4, 5, 6, 7]);
        let e = ev(Detail::Namespaces {
            op: "clone".into(),
            flags: 0,
            target_pid: 11,
            new: vec!["mnt".into(), "pid".into()],
            ns,
            result: SysResult::from_ret(0),
        });
        assert_eq!(content(&e), "clone child=11: new mnt:[3] pid:[4]");
        let e = ev(Detail::Setns {
            fd: 4,
            nstype: 0x4000_0000,
            joined: vec!["net".into()],
            ns,
            result: SysResult::from_ret(0),
        });
        assert_eq!(content(&e), "fd=4, nstype=CLONE_NEWNET: joined net:[5]");
        let e = ev(Detail::Veth {
            name: "A".into(),
            peer: "B".into(),
            ifindex: 6,
            peer_ifindex: 5,
            netns: 9,
            peer_netns: 9,
            result: SysResult::from_ret(0),
        });
        assert_eq!(content(&e), "A <-> B  (ifindex 6/5, netns 9/9)");
    }

    #[test]
    fn columns_align() {
        let clock = Clock::now();
        let e = ev(Detail::Fork { child_pid: 11 });
        let l = line(&clock, &e);
        let content_col = HEADER.find("CONTENT").unwrap();
        assert_eq!(&l[content_col..], "child=11");
        assert_eq!(l.find("runc"), HEADER.find("COMMAND"));
        assert_eq!(l.find("fork"), HEADER.find("ACTION"));
    }
}
