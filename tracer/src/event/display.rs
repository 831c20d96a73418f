//! An event's one-line text: what it did, as the live stream's CONTENT column shows it.

use std::{fmt, fmt::Write as _};

use super::{flags, ns, Detail, Event};

/// What the event did, in one line (the stream's CONTENT column), with any failure spelled
/// out and any text the kernel had to cut marked with `…`.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&content(self))
    }
}

/// `text`, with `…` when the kernel cut the field it came from.
fn cut<'a>(ev: &Event, field: &str, text: &'a str) -> std::borrow::Cow<'a, str> {
    if ev.truncated.iter().any(|t| t == field) {
        format!("{text}…").into()
    } else {
        text.into()
    }
}

fn content(ev: &Event) -> String {
    let mut s = what(ev);
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

/// Capabilities set, a prctl option, a seccomp filter.
fn security(ev: &Event) -> String {
    let filter = |n: &u32| match n {
        0 => String::new(),
        n => format!(", {n} instructions"),
    };
    match &ev.detail {
        Detail::Capset {
            target_pid,
            effective,
            permitted,
            inheritable,
            ..
        } => {
            let sets = flags::cap_sets(*effective, *permitted, *inheritable);
            match target_pid {
                0 => sets,
                pid => format!("{sets} (pid {pid})"),
            }
        }
        Detail::Prctl {
            option,
            arg,
            filter_len,
            ..
        } => format!("{}{}", flags::prctl(*option, *arg), filter(filter_len)),
        Detail::Seccomp {
            operation,
            flags,
            filter_len,
            ..
        } => format!(
            "{} flags={}{}",
            flags::seccomp_op(*operation),
            flags::seccomp_flags(*flags),
            filter(filter_len)
        ),
        _ => String::new(),
    }
}

/// What the event did, without its result.
fn what(ev: &Event) -> String {
    match &ev.detail {
        Detail::Exec { .. } => exec(ev),
        Detail::Mount { .. }
        | Detail::Umount { .. }
        | Detail::PivotRoot { .. }
        | Detail::Fsopen { .. }
        | Detail::Fsconfig { .. }
        | Detail::Fsmount { .. }
        | Detail::MoveMount { .. }
        | Detail::OpenTree { .. }
        | Detail::MountSetattr { .. } => mount_what(ev),
        Detail::Fork { child_pid } => format!("child={child_pid}"),
        Detail::Exit { .. } => exit(ev),
        Detail::Rename {
            target_pid,
            oldcomm,
            newcomm,
        } if *target_pid != ev.pid => format!("{oldcomm} -> {newcomm} (task {target_pid})"),
        Detail::Rename {
            oldcomm, newcomm, ..
        } => format!("{oldcomm} -> {newcomm}"),
        Detail::Namespaces { .. } => namespaces(ev),
        Detail::Setns {
            fd,
            nstype,
            joined,
            ns,
            ..
        } if !joined.is_empty() => format!(
            "fd={fd}, nstype={}: joined {}",
            flags::clone_flags(*nstype),
            ns::list(joined, ns)
        ),
        Detail::Setns { fd, nstype, .. } => {
            format!("fd={fd}, nstype={}", flags::clone_flags(*nstype))
        }
        Detail::CgroupMkdir { root, id, path, .. } | Detail::CgroupRmdir { root, id, path, .. } => {
            format!("{} (hierarchy {root}, id {id})", cut(ev, "path", path))
        }
        Detail::CgroupAttach {
            root,
            path,
            target_pid,
            ..
        } => format!(
            "pid {target_pid} -> {} (hierarchy {root})",
            cut(ev, "path", path)
        ),
        Detail::NetdevMove {
            name,
            ifindex,
            netns,
            to_netns,
            ..
        } => format!("{name} (ifindex {ifindex}): netns {netns} -> {to_netns}"),
        Detail::OomKill { target_pid } => format!("victim {target_pid}"),
        Detail::Capset { .. } | Detail::Prctl { .. } | Detail::Seccomp { .. } => security(ev),
        Detail::IdMap {
            file,
            target_pid,
            mapped_ns,
            data,
            path,
            ..
        } => {
            let whose = match (target_pid, mapped_ns) {
                (0, 0) => format!("{path}: "),
                (0, ns) => format!("user:[{ns}] {}: ", file.name()),
                (pid, _) => format!("pid {pid} {}: ", file.name()),
            };
            let lines: Vec<&str> = data.lines().map(str::trim).collect();
            format!("{whose}{}", cut(ev, "data", &lines.join(", ")))
        }
        Detail::Signal {
            signal,
            target_pid,
            result,
            ..
        } => format!(
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
            format!(
                "{name} <-> {peer}  (ifindex {ifindex}/{peer_ifindex}, netns {netns}/{peer_netns})"
            )
        }
    }
}

/// What a mount-family call did.
fn mount_what(ev: &Event) -> String {
    let at = |dfd: &i32, field: &str, path: &str| flags::dirfd_path(*dfd, &cut(ev, field, path));
    match &ev.detail {
        Detail::Mount {
            fstype,
            source,
            target,
            flags: f,
            ..
        } => format!(
            "type={}, dev={}, dir={}, flags={}",
            cut(ev, "fstype", fstype),
            cut(ev, "source", source),
            cut(ev, "target", target),
            flags::mount_flags(*f)
        ),
        Detail::Umount {
            target, flags: f, ..
        } => format!(
            "dir={}, flags={}",
            cut(ev, "target", target),
            flags::umount_flags(*f)
        ),
        Detail::PivotRoot {
            new_root, put_old, ..
        } => format!(
            "new_root={}, put_old={}",
            cut(ev, "new_root", new_root),
            cut(ev, "put_old", put_old)
        ),
        Detail::Fsopen { fstype, .. } => format!("type={}", cut(ev, "fstype", fstype)),
        Detail::Fsconfig { .. } => fsconfig(ev),
        Detail::Fsmount {
            fs_fd, attr_flags, ..
        } => format!(
            "fs_fd={fs_fd}, attrs={}",
            flags::mount_attr(u64::from(*attr_flags))
        ),
        Detail::MoveMount {
            from_dfd,
            from_path,
            to_dfd,
            to_path,
            ..
        } => format!(
            "from={}, to={}",
            at(from_dfd, "from_path", from_path),
            at(to_dfd, "to_path", to_path)
        ),
        Detail::OpenTree {
            dfd,
            path,
            flags: f,
            ..
        } => format!(
            "path={}, flags={}",
            at(dfd, "path", path),
            flags::open_tree_flags(*f)
        ),
        Detail::MountSetattr { .. } => mount_setattr(ev),
        // Dispatched by `what`.
        _ => String::new(),
    }
}

fn exec(ev: &Event) -> String {
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
        return String::new();
    };
    let mut s = argv.join(" ");
    if *argv_unreadable {
        s.push_str("(argv unreadable)");
    }
    if *argv_truncated {
        s.push_str(" …");
    }
    if argv.first() != Some(filename) || *filename_truncated {
        let cut = if *filename_truncated { "…" } else { "" };
        let _ = write!(s, "  (file={filename}{cut}");
        if let Some(at) = execveat {
            let _ = write!(s, ", dirfd={}, {}", at.dirfd, flags::at_flags(at.flags));
        }
        s.push(')');
    }
    s
}

fn fsconfig(ev: &Event) -> String {
    let Detail::Fsconfig {
        fd,
        cmd,
        key,
        value,
        ..
    } = &ev.detail
    else {
        return String::new();
    };
    let mut s = format!("fd={fd}, {}", flags::fsconfig_cmd(*cmd));
    if !key.is_empty() {
        let _ = write!(s, ", {}", cut(ev, "key", key));
        if let Some(v) = value {
            let _ = write!(s, "={}", cut(ev, "value", v));
        }
    }
    s
}

fn mount_setattr(ev: &Event) -> String {
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
        return String::new();
    };
    let mut s = format!(
        "path={}, set={}, clear={}",
        flags::dirfd_path(*dfd, &cut(ev, "path", path)),
        flags::mount_attr(*attr_set),
        flags::mount_attr(*attr_clr)
    );
    if *propagation != 0 {
        let _ = write!(s, ", propagation={}", flags::mount_flags(*propagation));
    }
    if *idmap_userns != 0 {
        let _ = write!(s, ", idmapped through user:[{idmap_userns}]");
    }
    s
}

fn exit(ev: &Event) -> String {
    let Detail::Exit {
        exit_code,
        signal,
        core_dumped,
    } = &ev.detail
    else {
        return String::new();
    };
    match (exit_code, signal) {
        (Some(code), _) => format!("code={code}"),
        (None, Some(sig)) if *core_dumped => {
            format!("killed by {} (core dumped)", flags::signal_name(*sig))
        }
        (None, Some(sig)) => format!("killed by {}", flags::signal_name(*sig)),
        (None, None) => "?".into(),
    }
}

fn namespaces(ev: &Event) -> String {
    let Detail::Namespaces {
        op,
        target_pid,
        new,
        ns,
        user_owner,
        ..
    } = &ev.detail
    else {
        return String::new();
    };
    let mut s = op.name().to_string();
    if *target_pid != 0 && *target_pid != ev.tgid {
        let _ = write!(s, " child={target_pid}");
    }
    let _ = write!(s, ": new {}", ns::list(new, ns));
    if let Some(uid) = user_owner {
        let _ = write!(s, " (user namespace owned by uid {uid})");
    }
    s
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
