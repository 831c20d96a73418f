//! An event's one-line text: what it did, as the live stream's CONTENT column shows it.
//! Written piece by piece into the formatter: a Chrome report writes it for every event,
//! and building it as strings first was a seventh of that report's work.

use std::fmt::{self, Write as _};

use super::{flags, ns, Detail, Event};

/// What the event did, in one line (the stream's CONTENT column), with any failure spelled
/// out and any text the kernel had to cut marked with `…`.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        what(self, f)?;
        if let Some(r) = self.detail.result() {
            match &r.error {
                Some(err) => write!(f, "  = {err}")?,
                // fd-returning calls: the fd is what later calls refer to.
                None if matches!(
                    self.detail,
                    Detail::Fsopen { .. } | Detail::Fsmount { .. } | Detail::OpenTree { .. }
                ) =>
                {
                    write!(f, "  = fd {}", r.ret)?;
                }
                None => {}
            }
        }
        Ok(())
    }
}

/// `text`, with `…` when the kernel cut the field it came from.
struct Cut<'a>(&'a Event, &'a str, &'a str);

impl fmt::Display for Cut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Cut(ev, field, text) = *self;
        f.write_str(text)?;
        if ev.truncated.iter().any(|t| t == field) {
            f.write_char('…')?;
        }
        Ok(())
    }
}

fn cut<'a>(ev: &'a Event, field: &'a str, text: &'a str) -> Cut<'a> {
    Cut(ev, field, text)
}

/// Capabilities set, a prctl option, a seccomp filter.
fn security(ev: &Event, f: &mut fmt::Formatter) -> fmt::Result {
    let filter = |f: &mut fmt::Formatter, n: u32| match n {
        0 => Ok(()),
        n => write!(f, ", {n} instructions"),
    };
    match &ev.detail {
        Detail::Capset {
            target_pid,
            effective,
            permitted,
            inheritable,
            ..
        } => {
            f.write_str(&flags::cap_sets(*effective, *permitted, *inheritable))?;
            match target_pid {
                0 => Ok(()),
                pid => write!(f, " (pid {pid})"),
            }
        }
        Detail::Prctl {
            option,
            arg,
            filter_len,
            ..
        } => {
            f.write_str(&flags::prctl(*option, *arg))?;
            filter(f, *filter_len)
        }
        Detail::Seccomp {
            operation,
            flags,
            filter_len,
            ..
        } => {
            write!(
                f,
                "{} flags={}",
                flags::seccomp_op(*operation),
                flags::seccomp_flags(*flags)
            )?;
            filter(f, *filter_len)
        }
        _ => Ok(()),
    }
}

/// What the event did, without its result.
fn what(ev: &Event, f: &mut fmt::Formatter) -> fmt::Result {
    match &ev.detail {
        Detail::Exec { .. } => exec(ev, f),
        Detail::Mount { .. }
        | Detail::Umount { .. }
        | Detail::PivotRoot { .. }
        | Detail::Fsopen { .. }
        | Detail::Fsconfig { .. }
        | Detail::Fsmount { .. }
        | Detail::MoveMount { .. }
        | Detail::OpenTree { .. }
        | Detail::MountSetattr { .. } => mount_what(ev, f),
        Detail::Fork { child_pid } => write!(f, "child={child_pid}"),
        Detail::Exit { .. } => exit(ev, f),
        Detail::Rename {
            target_pid,
            oldcomm,
            newcomm,
        } if *target_pid != ev.pid => write!(f, "{oldcomm} -> {newcomm} (task {target_pid})"),
        Detail::Rename {
            oldcomm, newcomm, ..
        } => write!(f, "{oldcomm} -> {newcomm}"),
        Detail::Namespaces { .. } => namespaces(ev, f),
        Detail::Setns {
            fd,
            nstype,
            joined,
            ns,
            ..
        } if !joined.is_empty() => write!(
            f,
            "fd={fd}, nstype={}: joined {}",
            flags::clone_flags(*nstype),
            ns::list(joined, ns)
        ),
        Detail::Setns { fd, nstype, .. } => {
            write!(f, "fd={fd}, nstype={}", flags::clone_flags(*nstype))
        }
        Detail::CgroupMkdir { root, id, path, .. } | Detail::CgroupRmdir { root, id, path, .. } => {
            write!(f, "{} (hierarchy {root}, id {id})", cut(ev, "path", path))
        }
        Detail::CgroupAttach {
            root,
            path,
            target_pid,
            ..
        } => write!(
            f,
            "pid {target_pid} -> {} (hierarchy {root})",
            cut(ev, "path", path)
        ),
        Detail::NetdevMove {
            name,
            ifindex,
            netns,
            to_netns,
            ..
        } => write!(f, "{name} (ifindex {ifindex}): netns {netns} -> {to_netns}"),
        Detail::OomKill { target_pid } => write!(f, "victim {target_pid}"),
        Detail::Capset { .. } | Detail::Prctl { .. } | Detail::Seccomp { .. } => security(ev, f),
        Detail::IdMap {
            file,
            target_pid,
            mapped_ns,
            data,
            path,
            ..
        } => {
            match (target_pid, mapped_ns) {
                (0, 0) => write!(f, "{path}: ")?,
                (0, ns) => write!(f, "user:[{ns}] {}: ", file.name())?,
                (pid, _) => write!(f, "pid {pid} {}: ", file.name())?,
            }
            let lines: Vec<&str> = data.lines().map(str::trim).collect();
            write!(f, "{}", cut(ev, "data", &lines.join(", ")))
        }
        Detail::Signal {
            signal,
            target_pid,
            result,
            ..
        } => write!(
            f,
            "{} -> {target_pid}{}",
            flags::signal_name(*signal),
            match result {
                0 => "",
                1 => " (ignored)",
                2 => " (already pending)",
                _ => " (not delivered)",
            }
        ),
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
            write!(
                f,
                "{name} <-> {peer}  (ifindex {ifindex}/{peer_ifindex}, netns {netns}/{peer_netns})"
            )
        }
    }
}

/// What a mount-family call did.
fn mount_what(ev: &Event, f: &mut fmt::Formatter) -> fmt::Result {
    let at = |dfd: &i32, field: &str, path: &str| {
        flags::dirfd_path(*dfd, &cut(ev, field, path).to_string())
    };
    match &ev.detail {
        Detail::Mount {
            fstype,
            source,
            target,
            flags: fl,
            ..
        } => write!(
            f,
            "type={}, dev={}, dir={}, flags={}",
            cut(ev, "fstype", fstype),
            cut(ev, "source", source),
            cut(ev, "target", target),
            flags::mount_flags(*fl)
        ),
        Detail::Umount {
            target, flags: fl, ..
        } => write!(
            f,
            "dir={}, flags={}",
            cut(ev, "target", target),
            flags::umount_flags(*fl)
        ),
        Detail::PivotRoot {
            new_root, put_old, ..
        } => write!(
            f,
            "new_root={}, put_old={}",
            cut(ev, "new_root", new_root),
            cut(ev, "put_old", put_old)
        ),
        Detail::Fsopen { fstype, .. } => write!(f, "type={}", cut(ev, "fstype", fstype)),
        Detail::Fsconfig { .. } => fsconfig(ev, f),
        Detail::Fsmount {
            fs_fd, attr_flags, ..
        } => write!(
            f,
            "fs_fd={fs_fd}, attrs={}",
            flags::mount_attr(u64::from(*attr_flags))
        ),
        Detail::MoveMount {
            from_dfd,
            from_path,
            to_dfd,
            to_path,
            ..
        } => write!(
            f,
            "from={}, to={}",
            at(from_dfd, "from_path", from_path),
            at(to_dfd, "to_path", to_path)
        ),
        Detail::OpenTree {
            dfd,
            path,
            flags: fl,
            ..
        } => write!(
            f,
            "path={}, flags={}",
            at(dfd, "path", path),
            flags::open_tree_flags(*fl)
        ),
        Detail::MountSetattr { .. } => mount_setattr(ev, f),
        // Dispatched by `what`.
        _ => Ok(()),
    }
}

fn exec(ev: &Event, f: &mut fmt::Formatter) -> fmt::Result {
    let Detail::Exec {
        filename,
        argv,
        argv_truncated,
        filename_truncated,
        argv_unreadable,
        execveat,
        ..
    } = &ev.detail
    else {
        return Ok(());
    };
    for (i, arg) in argv.iter().enumerate() {
        if i > 0 {
            f.write_char(' ')?;
        }
        f.write_str(arg)?;
    }
    if *argv_unreadable {
        f.write_str("(argv unreadable)")?;
    }
    if *argv_truncated {
        f.write_str(" …")?;
    }
    if argv.first() != Some(filename) || *filename_truncated {
        let cut = if *filename_truncated { "…" } else { "" };
        write!(f, "  (file={filename}{cut}")?;
        if let Some(at) = execveat {
            write!(f, ", dirfd={}, {}", at.dirfd, flags::at_flags(at.flags))?;
        }
        f.write_char(')')?;
    }
    Ok(())
}

fn fsconfig(ev: &Event, f: &mut fmt::Formatter) -> fmt::Result {
    let Detail::Fsconfig {
        fd,
        cmd,
        key,
        value,
        ..
    } = &ev.detail
    else {
        return Ok(());
    };
    write!(f, "fd={fd}, {}", flags::fsconfig_cmd(*cmd))?;
    if !key.is_empty() {
        write!(f, ", {}", cut(ev, "key", key))?;
        if let Some(v) = value {
            write!(f, "={}", cut(ev, "value", v))?;
        }
    }
    Ok(())
}

fn mount_setattr(ev: &Event, f: &mut fmt::Formatter) -> fmt::Result {
    let Detail::MountSetattr {
        dfd,
        path,
        attr_set,
        attr_clr,
        propagation,
        idmap_userns,
        ..
    } = &ev.detail
    else {
        return Ok(());
    };
    write!(
        f,
        "path={}, set={}, clear={}",
        flags::dirfd_path(*dfd, &cut(ev, "path", path).to_string()),
        flags::mount_attr(*attr_set),
        flags::mount_attr(*attr_clr)
    )?;
    if *propagation != 0 {
        write!(f, ", propagation={}", flags::mount_flags(*propagation))?;
    }
    if *idmap_userns != 0 {
        write!(f, ", idmapped through user:[{idmap_userns}]")?;
    }
    Ok(())
}

fn exit(ev: &Event, f: &mut fmt::Formatter) -> fmt::Result {
    let Detail::Exit {
        exit_code,
        signal,
        core_dumped,
    } = &ev.detail
    else {
        return Ok(());
    };
    match (exit_code, signal) {
        (Some(code), _) => write!(f, "code={code}"),
        (None, Some(sig)) if *core_dumped => {
            write!(f, "killed by {} (core dumped)", flags::signal_name(*sig))
        }
        (None, Some(sig)) => write!(f, "killed by {}", flags::signal_name(*sig)),
        (None, None) => f.write_char('?'),
    }
}

fn namespaces(ev: &Event, f: &mut fmt::Formatter) -> fmt::Result {
    let Detail::Namespaces {
        op,
        target_pid,
        new,
        ns,
        user_owner,
        ..
    } = &ev.detail
    else {
        return Ok(());
    };
    f.write_str(op.name())?;
    if *target_pid != 0 && *target_pid != ev.tgid {
        write!(f, " child={target_pid}")?;
    }
    write!(f, ": new {}", ns::list(new, ns))?;
    if let Some(uid) = user_owner {
        write!(f, " (user namespace owned by uid {uid})")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ExecAt, NsInodes, NsKind, NsOp, SysResult};

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
            argv_unreadable: false,
            execveat: None,
            result: SysResult::from_ret(0),
        });
        assert_eq!(e.to_string(), "/bin/echo a b");
        let e = ev(Detail::Exec {
            filename: String::new(),
            argv: vec!["runc".into(), "init".into()],
            argv_truncated: true,
            filename_truncated: false,
            argv_unreadable: false,
            execveat: Some(ExecAt {
                dirfd: 5,
                flags: 0x1000,
            }),
            result: SysResult::from_ret(-2),
        });
        assert_eq!(
            e.to_string(),
            "runc init …  (file=, dirfd=5, AT_EMPTY_PATH)  = ENOENT"
        );
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
            e.to_string(),
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
        assert_eq!(e.to_string(), "killed by SIGKILL");
        let e = ev(Detail::Rename {
            target_pid: 10,
            oldcomm: "exe".into(),
            newcomm: "runc:[0:PARENT]".into(),
        });
        assert_eq!(e.to_string(), "exe -> runc:[0:PARENT]");
    }

    #[test]
    fn namespace_and_veth_lines() {
        let ns = NsInodes::from_array([1, 2, 3, 4, 5, 6, 7, 8]);
        let e = ev(Detail::Namespaces {
            op: NsOp::Clone,
            flags: 0,
            target_pid: 11,
            user_owner: None,
            new: vec![NsKind::Mnt, NsKind::Pid],
            ns,
            result: SysResult::from_ret(0),
        });
        assert_eq!(e.to_string(), "clone child=11: new mnt:[3] pid:[4]");
        let e = ev(Detail::Setns {
            fd: 4,
            nstype: 0x4000_0000,
            joined: vec![NsKind::Net],
            ns,
            result: SysResult::from_ret(0),
        });
        assert_eq!(e.to_string(), "fd=4, nstype=CLONE_NEWNET: joined net:[5]");
        let e = ev(Detail::Veth {
            name: "A".into(),
            peer: "B".into(),
            ifindex: 6,
            peer_ifindex: 5,
            netns: 9,
            peer_netns: 9,
            result: SysResult::from_ret(0),
        });
        assert_eq!(e.to_string(), "A <-> B  (ifindex 6/5, netns 9/9)");
    }

    #[test]
    fn cut_text_is_marked() {
        let mut e = ev(Detail::Umount {
            target: "/very/long".into(),
            flags: 0,
            result: SysResult::from_ret(0),
        });
        e.truncated = vec!["target".into()];
        assert_eq!(e.to_string(), "dir=/very/long…, flags=0");
        let e = ev(Detail::Exec {
            filename: "/a/b".into(),
            argv: vec![],
            argv_truncated: false,
            filename_truncated: true,
            argv_unreadable: true,
            execveat: None,
            result: SysResult::from_ret(0),
        });
        assert_eq!(e.to_string(), "(argv unreadable)  (file=/a/b…)");
    }
}
