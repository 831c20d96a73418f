//! Ring-buffer records → [`Event`]s. Every read is bounds-checked and copied out (records are
//! not necessarily aligned for the Rust types): a short or unknown record is an error for the
//! caller to count, never a panic or a misread.

use tracer_common::{
    exec_flags, ns_op, EventKind, ExecEvent, ExitEvent, ForkEvent, Header, Hook, MountEvent,
    NsEvent, RenameEvent, VethEvent, ARGV_LEN, NS_CLONE_FLAGS, NS_KINDS,
};

use crate::event::{ns_names, split_exit_code, Detail, Event, ExecAt, NsInodes, SysResult};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than an event header")]
    NoHeader(usize),
    #[error("unknown event kind {0}")]
    UnknownKind(u32),
    #[error("{kind} record of {got} bytes, expected {want}")]
    Short {
        kind: &'static str,
        got: usize,
        want: usize,
    },
}

/// ABI types that may be copied out of raw bytes: `repr(C)`, integers and byte arrays only.
///
/// # Safety
/// Every bit pattern of `size_of::<Self>()` bytes must be a valid value.
unsafe trait Plain: Copy {}
// SAFETY: all are `repr(C)` structs of integers and byte arrays (see tracer-common).
unsafe impl Plain for Header {}
unsafe impl Plain for ExecEvent {}
unsafe impl Plain for MountEvent {}
unsafe impl Plain for ForkEvent {}
unsafe impl Plain for ExitEvent {}
unsafe impl Plain for RenameEvent {}
unsafe impl Plain for NsEvent {}
unsafe impl Plain for VethEvent {}

fn read<T: Plain>(buf: &[u8]) -> Option<T> {
    if buf.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: length checked above; `T: Plain` accepts any bytes; unaligned read copies.
    Some(unsafe { std::ptr::read_unaligned(buf.as_ptr().cast::<T>()) })
}

/// Text of a fixed buffer holding `len` bytes (clamped), cut at the first NUL.
fn text(buf: &[u8], len: usize) -> String {
    let bytes = &buf[..len.min(buf.len())];
    let bytes = bytes.split(|b| *b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(bytes).into_owned()
}

fn comm(buf: &[u8]) -> String {
    text(buf, buf.len())
}

fn argv(ev: &ExecEvent) -> Vec<String> {
    let used = &ev.argv[..usize::from(ev.argv_len).min(ARGV_LEN)];
    used.split(|b| *b == 0)
        .take(usize::from(ev.argc))
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Decodes one ring-buffer record.
pub fn decode(buf: &[u8]) -> Result<Event, DecodeError> {
    let h: Header = read(buf).ok_or(DecodeError::NoHeader(buf.len()))?;
    let kind = EventKind::from_u32(h.kind).ok_or(DecodeError::UnknownKind(h.kind))?;
    let want = kind.record_size();
    if buf.len() < want {
        return Err(DecodeError::Short {
            kind: kind.name(),
            got: buf.len(),
            want,
        });
    }
    let detail = match kind {
        EventKind::Exec => exec(&read::<ExecEvent>(buf).expect("length checked")),
        EventKind::Fork => {
            let ev: ForkEvent = read(buf).expect("length checked");
            Detail::Fork {
                child_pid: ev.child_pid,
            }
        }
        EventKind::Exit => {
            let ev: ExitEvent = read(buf).expect("length checked");
            let (exit_code, signal, core_dumped) = split_exit_code(ev.exit_code);
            Detail::Exit {
                exit_code,
                signal,
                core_dumped,
            }
        }
        EventKind::Rename => {
            let ev: RenameEvent = read(buf).expect("length checked");
            Detail::Rename {
                target_pid: ev.pid,
                oldcomm: comm(&ev.oldcomm),
                newcomm: comm(&ev.newcomm),
            }
        }
        EventKind::Namespaces | EventKind::Setns => {
            namespaces(kind, &read::<NsEvent>(buf).expect("length checked"))
        }
        EventKind::Veth => {
            let ev: VethEvent = read(buf).expect("length checked");
            Detail::Veth {
                name: comm(&ev.name),
                peer: comm(&ev.peer),
                ifindex: ev.ifindex,
                peer_ifindex: ev.peer_ifindex,
                netns: ev.netns,
                peer_netns: ev.peer_netns,
                result: SysResult::from_ret(ev.ret),
            }
        }
        _ => mount_family(kind, &read::<MountEvent>(buf).expect("length checked")),
    };
    Ok(Event {
        ts_ns: h.ts_ns,
        pid: h.pid,
        tgid: h.tgid,
        ppid: h.ppid,
        uid: h.uid,
        comm: comm(&h.comm),
        cgroup_id: h.cgroup_id,
        mnt_ns: h.mnt_ns,
        pid_ns: h.pid_ns,
        net_ns: h.net_ns,
        hook: hook_name(h.hook),
        detail,
    })
}

/// The hook's name; an unknown id is kept visible rather than rejected.
fn hook_name(id: u32) -> String {
    Hook::from_u32(id).map_or_else(|| format!("hook {id}"), |h| h.name().to_string())
}

/// Bit i set where kind i changed to a known namespace.
fn changed(ev: &NsEvent) -> u32 {
    (0..NS_KINDS)
        .filter(|&i| ev.inum[i] != 0 && ev.inum[i] != ev.prev[i])
        .fold(0, |m, i| m | 1 << i)
}

fn namespaces(kind: EventKind, ev: &NsEvent) -> Detail {
    let ns = NsInodes::from_array(ev.inum);
    let result = SysResult::from_ret(ev.ret);
    let mask = changed(ev);
    if kind == EventKind::Setns {
        return Detail::Setns {
            fd: ev.fd,
            nstype: ev.flags,
            joined: ns_names(mask),
            ns,
            result,
        };
    }
    let op = match ev.op {
        ns_op::UNSHARE => "unshare".to_string(),
        ns_op::CLONE => "clone".to_string(),
        ns_op::CREATE => "create".to_string(),
        ns_op::SETNS => "setns".to_string(),
        n => format!("op {n}"),
    };
    // The fork-time fallback cannot see the clone flags: they follow from what changed.
    let flags = if ev.op == ns_op::CLONE && ev.flags == 0 {
        (0..NS_KINDS)
            .filter(|i| mask & (1 << i) != 0)
            .fold(0, |f, i| f | NS_CLONE_FLAGS[i])
    } else {
        ev.flags
    };
    Detail::Namespaces {
        op,
        flags,
        target_pid: ev.target_pid,
        new: ns_names(mask),
        ns,
        result,
    }
}

fn exec(ev: &ExecEvent) -> Detail {
    Detail::Exec {
        filename: text(&ev.filename, usize::from(ev.filename_len)),
        argv: argv(ev),
        argv_truncated: ev.flags & exec_flags::ARGV_TRUNCATED != 0,
        filename_truncated: ev.flags & exec_flags::FILENAME_TRUNCATED != 0,
        execveat: (ev.flags & exec_flags::EXECVEAT != 0).then_some(ExecAt {
            dirfd: ev.dirfd,
            flags: ev.at_flags,
        }),
        result: SysResult::from_ret(ev.ret),
    }
}

fn mount_family(kind: EventKind, ev: &MountEvent) -> Detail {
    let fstype = || text(&ev.fstype, usize::from(ev.fstype_len));
    let src = || text(&ev.src, usize::from(ev.src_len));
    let dst = || text(&ev.dst, usize::from(ev.dst_len));
    let result = SysResult::from_ret(ev.ret);
    match kind {
        EventKind::Mount => Detail::Mount {
            fstype: fstype(),
            source: src(),
            target: dst(),
            flags: ev.flags,
            result,
        },
        EventKind::Umount => Detail::Umount {
            target: dst(),
            flags: ev.flags,
            result,
        },
        EventKind::PivotRoot => Detail::PivotRoot {
            new_root: src(),
            put_old: dst(),
            result,
        },
        EventKind::Fsopen => Detail::Fsopen {
            fstype: fstype(),
            flags: ev.flags,
            result,
        },
        EventKind::Fsconfig => Detail::Fsconfig {
            fd: ev.fd,
            cmd: ev.cmd,
            key: fstype(),
            value: (ev.src_len > 0).then(src),
            aux: ev.fd2,
            result,
        },
        EventKind::Fsmount => Detail::Fsmount {
            fs_fd: ev.fd,
            flags: ev.flags,
            attr_flags: ev.cmd,
            result,
        },
        EventKind::MoveMount => Detail::MoveMount {
            from_dfd: ev.fd,
            from_path: src(),
            to_dfd: ev.fd2,
            to_path: dst(),
            flags: ev.flags,
            result,
        },
        EventKind::OpenTree => Detail::OpenTree {
            dfd: ev.fd,
            path: src(),
            flags: ev.flags,
            result,
        },
        EventKind::MountSetattr => Detail::MountSetattr {
            dfd: ev.fd,
            path: src(),
            flags: ev.flags,
            attr_set: ev.attr_set,
            attr_clr: ev.attr_clr,
            propagation: ev.propagation,
            result,
        },
        EventKind::Exec
        | EventKind::Fork
        | EventKind::Exit
        | EventKind::Rename
        | EventKind::Namespaces
        | EventKind::Setns
        | EventKind::Veth => unreachable!("not a mount-family kind: {kind:?}"),
    }
}

#[cfg(test)]
mod tests {
    use tracer_common::{COMM_LEN, PATH_LEN};

    use super::*;

    fn bytes_of<T: Plain>(v: &T) -> Vec<u8> {
        // SAFETY: reading the bytes of a plain value.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    fn zeroed<T: Plain>() -> T {
        // SAFETY: `Plain` types accept all-zero bytes.
        unsafe { std::mem::zeroed() }
    }

    fn header(kind: EventKind) -> Header {
        let mut h: Header = zeroed();
        h.kind = kind as u32;
        h.pid = 42;
        h.tgid = 41;
        h.ppid = 1;
        h.uid = 1000;
        h.ts_ns = 123_456;
        h.cgroup_id = 77;
        h.comm[..4].copy_from_slice(b"bash");
        h.hook = Hook::Execve as u32;
        h.mnt_ns = 11;
        h.pid_ns = 12;
        h.net_ns = 13;
        h
    }

    fn put(buf: &mut [u8], s: &[u8]) -> u16 {
        buf[..s.len()].copy_from_slice(s);
        s.len() as u16
    }

    fn exec_record(args: &[&[u8]], ret: i64) -> ExecEvent {
        let mut ev: ExecEvent = zeroed();
        ev.header = header(EventKind::Exec);
        ev.ret = ret;
        ev.filename_len = put(&mut ev.filename, b"/bin/echo");
        let mut off = 0;
        for a in args {
            ev.argv[off..off + a.len()].copy_from_slice(a);
            off += a.len() + 1;
        }
        ev.argc = args.len() as u16;
        ev.argv_len = off as u16;
        ev
    }

    #[test]
    fn exec_decodes_argv_and_result() {
        let ev = decode(&bytes_of(&exec_record(
            &[b"/bin/echo", b"a", b"b", b"c"],
            0,
        )))
        .unwrap();
        assert_eq!(ev.pid, 42);
        assert_eq!(ev.tgid, 41);
        assert_eq!(ev.ppid, 1);
        assert_eq!(ev.uid, 1000);
        assert_eq!(ev.comm, "bash");
        assert_eq!(ev.cgroup_id, 77);
        assert_eq!(ev.ts_ns, 123_456);
        assert_eq!((ev.mnt_ns, ev.pid_ns, ev.net_ns), (11, 12, 13));
        assert_eq!(ev.hook, "tracepoint:syscalls:sys_enter_execve");
        match ev.detail {
            Detail::Exec {
                filename,
                argv,
                argv_truncated,
                execveat,
                result,
                ..
            } => {
                assert_eq!(filename, "/bin/echo");
                assert_eq!(argv, ["/bin/echo", "a", "b", "c"]);
                assert!(!argv_truncated);
                assert_eq!(execveat, None);
                assert_eq!(result, SysResult::from_ret(0));
            }
            other => panic!("decoded as {other:?}"),
        }
    }

    #[test]
    fn failed_exec_and_execveat_flags() {
        let mut rec = exec_record(&[b"x"], -2);
        rec.flags = exec_flags::EXECVEAT | exec_flags::ARGV_TRUNCATED;
        rec.dirfd = 5;
        rec.at_flags = 0x1000;
        let Detail::Exec {
            result,
            execveat,
            argv_truncated,
            ..
        } = decode(&bytes_of(&rec)).unwrap().detail
        else {
            panic!("not exec")
        };
        assert!(result.failed());
        assert_eq!(result.error.as_deref(), Some("ENOENT"));
        assert_eq!(
            execveat,
            Some(ExecAt {
                dirfd: 5,
                flags: 0x1000
            })
        );
        assert!(argv_truncated);
    }

    #[test]
    fn exec_lengths_beyond_buffers_are_clamped() {
        let mut rec = exec_record(&[b"a"], 0);
        rec.argv_len = u16::MAX;
        rec.argc = u16::MAX;
        rec.filename_len = u16::MAX;
        rec.filename = [b'f'; PATH_LEN];
        rec.argv = [b'z'; ARGV_LEN];
        let Detail::Exec { filename, argv, .. } = decode(&bytes_of(&rec)).unwrap().detail else {
            panic!("not exec")
        };
        assert_eq!(filename.len(), PATH_LEN);
        assert_eq!(argv, [String::from_utf8(vec![b'z'; ARGV_LEN]).unwrap()]);
    }

    fn mount_record(kind: EventKind) -> MountEvent {
        let mut ev: MountEvent = zeroed();
        ev.header = header(kind);
        ev.fstype_len = put(&mut ev.fstype, b"tmpfs");
        ev.src_len = put(&mut ev.src, b"none");
        ev.dst_len = put(&mut ev.dst, b"/mnt/x");
        ev.flags = 6;
        ev.fd = 3;
        ev.fd2 = -100;
        ev.cmd = 1;
        ev.attr_set = 1;
        ev.attr_clr = 2;
        ev.propagation = 0x40000;
        ev.ret = -1;
        ev
    }

    #[test]
    fn every_mount_family_kind_decodes() {
        for kind in [
            EventKind::Mount,
            EventKind::Umount,
            EventKind::PivotRoot,
            EventKind::Fsopen,
            EventKind::Fsconfig,
            EventKind::Fsmount,
            EventKind::MoveMount,
            EventKind::OpenTree,
            EventKind::MountSetattr,
        ] {
            let ev = decode(&bytes_of(&mount_record(kind))).unwrap();
            assert_eq!(ev.detail.kind(), kind.name());
            assert_eq!(ev.detail.result().unwrap().error.as_deref(), Some("EPERM"));
            let expected = match kind {
                EventKind::Mount => Detail::Mount {
                    fstype: "tmpfs".into(),
                    source: "none".into(),
                    target: "/mnt/x".into(),
                    flags: 6,
                    result: SysResult::from_ret(-1),
                },
                EventKind::Umount => Detail::Umount {
                    target: "/mnt/x".into(),
                    flags: 6,
                    result: SysResult::from_ret(-1),
                },
                EventKind::PivotRoot => Detail::PivotRoot {
                    new_root: "none".into(),
                    put_old: "/mnt/x".into(),
                    result: SysResult::from_ret(-1),
                },
                EventKind::Fsopen => Detail::Fsopen {
                    fstype: "tmpfs".into(),
                    flags: 6,
                    result: SysResult::from_ret(-1),
                },
                EventKind::Fsconfig => Detail::Fsconfig {
                    fd: 3,
                    cmd: 1,
                    key: "tmpfs".into(),
                    value: Some("none".into()),
                    aux: -100,
                    result: SysResult::from_ret(-1),
                },
                EventKind::Fsmount => Detail::Fsmount {
                    fs_fd: 3,
                    flags: 6,
                    attr_flags: 1,
                    result: SysResult::from_ret(-1),
                },
                EventKind::MoveMount => Detail::MoveMount {
                    from_dfd: 3,
                    from_path: "none".into(),
                    to_dfd: -100,
                    to_path: "/mnt/x".into(),
                    flags: 6,
                    result: SysResult::from_ret(-1),
                },
                EventKind::OpenTree => Detail::OpenTree {
                    dfd: 3,
                    path: "none".into(),
                    flags: 6,
                    result: SysResult::from_ret(-1),
                },
                EventKind::MountSetattr => Detail::MountSetattr {
                    dfd: 3,
                    path: "none".into(),
                    flags: 6,
                    attr_set: 1,
                    attr_clr: 2,
                    propagation: 0x40000,
                    result: SysResult::from_ret(-1),
                },
                _ => unreachable!(),
            };
            assert_eq!(ev.detail, expected, "{kind:?}");
        }
    }

    #[test]
    fn process_events_decode() {
        let mut fork: ForkEvent = zeroed();
        fork.header = header(EventKind::Fork);
        fork.child_pid = 99;
        fork.child_tgid = 99;
        assert_eq!(
            decode(&bytes_of(&fork)).unwrap().detail,
            Detail::Fork { child_pid: 99 }
        );

        let mut exit: ExitEvent = zeroed();
        exit.header = header(EventKind::Exit);
        exit.exit_code = 7 << 8;
        assert_eq!(
            decode(&bytes_of(&exit)).unwrap().detail,
            Detail::Exit {
                exit_code: Some(7),
                signal: None,
                core_dumped: false
            }
        );
        exit.exit_code = 9;
        assert_eq!(
            decode(&bytes_of(&exit)).unwrap().detail,
            Detail::Exit {
                exit_code: None,
                signal: Some(9),
                core_dumped: false
            }
        );

        let mut rename: RenameEvent = zeroed();
        rename.header = header(EventKind::Rename);
        rename.pid = 43;
        put(&mut rename.oldcomm, b"exe");
        rename.newcomm = *b"runc:[1:CHILD]\0\0";
        assert_eq!(
            decode(&bytes_of(&rename)).unwrap().detail,
            Detail::Rename {
                target_pid: 43,
                oldcomm: "exe".into(),
                newcomm: "runc:[1:CHILD]".into()
            }
        );
    }

    #[test]
    fn namespace_setns_and_veth_events_decode() {
        let mut ns: NsEvent = zeroed();
        ns.header = header(EventKind::Namespaces);
        ns.header.hook = Hook::Unshare as u32;
        ns.op = ns_op::UNSHARE;
        ns.flags = 0x2002_0000;
        ns.target_pid = 41;
        ns.inum = [1, 2, 3, 4, 5, 6, 7];
        // mnt and pid changed; time became unknown (0), which is not "new".
        ns.prev = [1, 2, 30, 40, 5, 6, 70];
        ns.inum[6] = 0;
        let ev = decode(&bytes_of(&ns)).unwrap();
        assert_eq!(ev.hook, "tracepoint:syscalls:sys_exit_unshare");
        assert_eq!(
            ev.detail,
            Detail::Namespaces {
                op: "unshare".into(),
                flags: 0x2002_0000,
                target_pid: 41,
                new: vec!["mnt".into(), "pid".into()],
                ns: NsInodes::from_array([1, 2, 3, 4, 5, 6, 0]),
                result: SysResult::from_ret(0),
            }
        );
        // The fork-time fallback sends no flags: they are derived from what changed.
        ns.op = ns_op::CLONE;
        ns.flags = 0;
        let Detail::Namespaces { op, flags, .. } = decode(&bytes_of(&ns)).unwrap().detail else {
            panic!("not namespaces")
        };
        assert_eq!((op.as_str(), flags), ("clone", 0x2002_0000));
        ns.header.kind = EventKind::Setns as u32;
        ns.fd = 5;
        ns.flags = 0x4000_0000;
        ns.prev = ns.inum;
        ns.prev[4] = 99;
        ns.ret = -22;
        let Detail::Setns {
            fd,
            nstype,
            joined,
            result,
            ..
        } = decode(&bytes_of(&ns)).unwrap().detail
        else {
            panic!("not setns")
        };
        assert_eq!(
            (fd, nstype, joined),
            (5, 0x4000_0000, vec!["net".to_string()])
        );
        assert_eq!(result.error.as_deref(), Some("EINVAL"));

        let mut veth: VethEvent = zeroed();
        veth.header = header(EventKind::Veth);
        veth.header.hook = 999;
        put(&mut veth.name, b"A");
        put(&mut veth.peer, b"B");
        veth.ifindex = 7;
        veth.peer_ifindex = 6;
        veth.netns = 100;
        veth.peer_netns = 101;
        let ev = decode(&bytes_of(&veth)).unwrap();
        assert_eq!(ev.hook, "hook 999");
        assert_eq!(
            ev.detail,
            Detail::Veth {
                name: "A".into(),
                peer: "B".into(),
                ifindex: 7,
                peer_ifindex: 6,
                netns: 100,
                peer_netns: 101,
                result: SysResult::from_ret(0),
            }
        );
    }

    #[test]
    fn full_comm_without_nul_is_kept() {
        let mut rename: RenameEvent = zeroed();
        rename.header = header(EventKind::Rename);
        rename.newcomm = [b'x'; COMM_LEN];
        let Detail::Rename { newcomm, .. } = decode(&bytes_of(&rename)).unwrap().detail else {
            panic!()
        };
        assert_eq!(newcomm.len(), COMM_LEN);
    }

    #[test]
    fn truncated_records_are_rejected() {
        let full = bytes_of(&exec_record(&[b"a"], 0));
        for len in [0, 1, size_of::<Header>() - 1] {
            assert_eq!(decode(&full[..len]), Err(DecodeError::NoHeader(len)));
        }
        let len = size_of::<Header>() + 10;
        assert_eq!(
            decode(&full[..len]),
            Err(DecodeError::Short {
                kind: "exec",
                got: len,
                want: size_of::<ExecEvent>()
            })
        );
        let mount = bytes_of(&mount_record(EventKind::Mount));
        assert!(matches!(
            decode(&mount[..mount.len() - 1]),
            Err(DecodeError::Short { kind: "mount", .. })
        ));
    }

    #[test]
    fn unknown_kinds_are_rejected() {
        for kind in [0u32, 17, 999, u32::MAX] {
            let mut h = header(EventKind::Exec);
            h.kind = kind;
            let mut buf = bytes_of(&h);
            buf.resize(4096, 0);
            assert_eq!(decode(&buf), Err(DecodeError::UnknownKind(kind)));
        }
    }

    /// Garbage of every length decodes to an error or an event, never a panic; a misaligned
    /// start does not matter.
    #[test]
    fn garbage_never_panics() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut decoded = 0;
        for round in 0..20_000 {
            let len = (next() % 1600) as usize;
            let mut buf: Vec<u8> = (0..len + 1).map(|_| next() as u8).collect();
            if round % 2 == 0 && len >= 4 {
                // Make the kind valid half the time so the per-kind paths run too.
                let kind = 1 + (next() % 16) as u32;
                buf[1..5].copy_from_slice(&kind.to_ne_bytes());
            }
            if decode(&buf[1..]).is_ok() {
                decoded += 1;
            }
        }
        assert!(
            decoded > 0,
            "some random records with valid kinds must decode"
        );
    }
}
