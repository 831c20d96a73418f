//! Ring-buffer records → [`Event`]s. Every read is bounds-checked and copied out (records are
//! not necessarily aligned for the Rust types): a short or unknown record is an error for the
//! caller to count, never a panic or a misread.

use tracer_common::{
    exec_flags, mount_truncated, ns_op, CgroupEvent, EventKind, ExecEvent, ExitEvent, ForkEvent,
    Header, Hook, IdMapEvent, MountEvent, NetdevMoveEvent, NsEvent, OomEvent, RenameEvent,
    SecurityEvent, SignalEvent, VethEvent, ARGV_LEN, NS_KINDS,
};

use crate::event::{
    ns::kinds_in, split_exit_code, Detail, Event, ExecAt, MapFile, NsInodes, NsKind, NsOp,
    SysResult,
};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than an event header")]
    NoHeader(usize),
    #[error("unknown event kind {0}")]
    UnknownKind(u32),
    #[error("{kind} record with {field} {value}, which no program sends")]
    BadValue {
        kind: &'static str,
        field: &'static str,
        value: u64,
    },
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
/// Each record type is a `repr(C)` struct of integers and byte arrays (see tracer-common).
macro_rules! plain {
    ($($t:ty),+) => {
        $(
            // SAFETY: a `repr(C)` struct of integers and byte arrays: any bytes are a value.
            unsafe impl Plain for $t {}
        )+
    };
}
plain!(
    Header,
    ExecEvent,
    MountEvent,
    ForkEvent,
    ExitEvent,
    RenameEvent,
    NsEvent,
    VethEvent,
    CgroupEvent,
    NetdevMoveEvent,
    OomEvent,
    SignalEvent,
    SecurityEvent,
    IdMapEvent
);

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
    let mut truncated = Vec::new();
    // Every kind is named: a new one does not compile until it is decoded here.
    let detail = match kind {
        EventKind::Exec => exec(&record(buf), &mut truncated),
        EventKind::Fork => fork(&record(buf)),
        EventKind::Exit => exit(&record(buf)),
        EventKind::Rename => rename(&record(buf)),
        EventKind::Namespaces => namespaces(&record(buf))?,
        EventKind::Setns => setns(&record(buf)),
        EventKind::Veth => veth(&record(buf)),
        EventKind::NetdevMove => netdev_move(&record(buf)),
        EventKind::OomKill => oom(&record(buf)),
        EventKind::Signal => signal(&record(buf)),
        EventKind::Capset | EventKind::Prctl | EventKind::Seccomp => security(kind, &record(buf)),
        EventKind::IdMap => id_map(&record(buf), h.tgid, &mut truncated),
        EventKind::CgroupMkdir | EventKind::CgroupRmdir | EventKind::CgroupAttach => {
            cgroup_detail(kind, &record(buf), &mut truncated)
        }
        EventKind::Mount => mount(&read_mount(
            buf,
            ("fstype", "source", "target"),
            &mut truncated,
        )),
        EventKind::Umount => umount(&read_mount(buf, ("", "", "target"), &mut truncated)),
        EventKind::PivotRoot => pivot_root(&read_mount(
            buf,
            ("", "new_root", "put_old"),
            &mut truncated,
        )),
        EventKind::Fsopen => fsopen(&read_mount(buf, ("fstype", "", ""), &mut truncated)),
        EventKind::Fsconfig => fsconfig(&read_mount(buf, ("key", "value", ""), &mut truncated)),
        EventKind::Fsmount => fsmount(&read_mount(buf, ("", "", ""), &mut truncated)),
        EventKind::MoveMount => move_mount(&read_mount(
            buf,
            ("", "from_path", "to_path"),
            &mut truncated,
        )),
        EventKind::OpenTree => open_tree(&read_mount(buf, ("", "path", ""), &mut truncated)),
        EventKind::MountSetattr => {
            mount_setattr(&read_mount(buf, ("", "path", ""), &mut truncated))
        }
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
        user_ns: h.user_ns,
        hook: hook_name(h.hook),
        truncated,
        detail,
    })
}

fn security(kind: EventKind, ev: &SecurityEvent) -> Detail {
    let result = SysResult::from_ret(ev.ret);
    match kind {
        EventKind::Capset => Detail::Capset {
            target_pid: ev.arg as u32,
            version: ev.op,
            effective: ev.effective,
            permitted: ev.permitted,
            inheritable: ev.inheritable,
            result,
        },
        EventKind::Prctl => Detail::Prctl {
            option: ev.op,
            arg: ev.arg,
            filter_len: ev.filter_len,
            result,
        },
        _ => Detail::Seccomp {
            operation: ev.op,
            flags: ev.arg,
            filter_len: ev.filter_len,
            result,
        },
    }
}

fn id_map(ev: &IdMapEvent, writer: u32, truncated: &mut Vec<String>) -> Detail {
    let path = text(&ev.path, ev.path_len as usize);
    let dir = text(&ev.dir, ev.dir.len());
    let target_pid = if path.starts_with('/') {
        map_target(&path, writer)
    } else {
        dir.parse().unwrap_or(0)
    };
    let file = match ev.which {
        tracer_common::id_map_file::UID_MAP => MapFile::UidMap,
        tracer_common::id_map_file::GID_MAP => MapFile::GidMap,
        _ => MapFile::Setgroups,
    };
    let held = [Hook::IdMapClose as u32, Hook::IdMapExit as u32].contains(&ev.header.hook);
    let data = if held {
        held_map(ev, file, truncated)
    } else {
        if ev.count > ev.len {
            truncated.push("data".into());
        }
        text(&ev.data, ev.len as usize)
    };
    Detail::IdMap {
        file,
        target_pid,
        mapped_ns: ev.user_ns,
        path,
        data,
        result: SysResult::from_ret(ev.ret),
    }
}

/// The map the kernel holds, as a writer writes it: `first lower_first count` a line; for
/// setgroups, `allow` or `deny` (`USERNS_SETGROUPS_ALLOWED` in the namespace's flags).
fn held_map(ev: &IdMapEvent, file: MapFile, truncated: &mut Vec<String>) -> String {
    let word = |i: usize| {
        ev.data
            .get(i * 4..i * 4 + 4)
            .map_or(0, |b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
    };
    if file == MapFile::Setgroups {
        return if word(0) & 1 != 0 { "allow" } else { "deny" }.into();
    }
    let nr = word(0) as usize;
    let kept = nr.min(tracer_common::MAP_EXTENTS);
    if kept < nr {
        truncated.push("data".into());
    }
    (0..kept)
        .map(|e| {
            format!(
                "{} {} {}\n",
                word(1 + e * 3),
                word(2 + e * 3),
                word(3 + e * 3)
            )
        })
        .collect()
}

/// The pid a map file's path names: `/proc/4242/uid_map` → 4242, `/proc/self/...` → the
/// writer, anything else (a path relative to a directory fd) → 0.
fn map_target(path: &str, writer: u32) -> u32 {
    let mut parts = path.strip_prefix("/proc/").unwrap_or_default().split('/');
    match parts.next() {
        Some("self") => writer,
        Some(n) => n.parse().unwrap_or(0),
        None => 0,
    }
}

fn oom(ev: &OomEvent) -> Detail {
    Detail::OomKill { target_pid: ev.pid }
}

fn signal(ev: &SignalEvent) -> Detail {
    Detail::Signal {
        signal: ev.sig,
        target_pid: ev.pid,
        code: ev.code,
        result: ev.result,
    }
}

/// A cgroup made, removed, or a task moved in.
fn cgroup_detail(kind: EventKind, ev: &CgroupEvent, truncated: &mut Vec<String>) -> Detail {
    let (id, root, level, path) = cgroup(ev, truncated);
    match kind {
        EventKind::CgroupMkdir => Detail::CgroupMkdir {
            id,
            root,
            level,
            path,
        },
        EventKind::CgroupRmdir => Detail::CgroupRmdir {
            id,
            root,
            level,
            path,
        },
        _ => Detail::CgroupAttach {
            id,
            root,
            level,
            path,
            target_pid: ev.pid,
        },
    }
}

/// The record of a kind whose length `decode` checked.
fn record<T: Plain>(buf: &[u8]) -> T {
    read(buf).expect("length checked")
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

fn setns(ev: &NsEvent) -> Detail {
    Detail::Setns {
        fd: ev.fd,
        nstype: ev.flags,
        joined: kinds_in(changed(ev)),
        ns: NsInodes::from_array(ev.inum),
        result: SysResult::from_ret(ev.ret),
    }
}

fn namespaces(ev: &NsEvent) -> Result<Detail, DecodeError> {
    let mask = changed(ev);
    let op = match ev.op {
        ns_op::UNSHARE => NsOp::Unshare,
        ns_op::CLONE => NsOp::Clone,
        ns_op::SETNS => NsOp::Setns,
        ns_op::CREATE => NsOp::Create,
        other => {
            return Err(DecodeError::BadValue {
                kind: "namespaces",
                field: "op",
                value: u64::from(other),
            })
        }
    };
    // The fork-time fallback cannot see the clone flags: they follow from what changed.
    let flags = if op == NsOp::Clone && ev.flags == 0 {
        kinds_in(mask)
            .into_iter()
            .fold(0, |f, k: NsKind| f | k.clone_flag())
    } else {
        ev.flags
    };
    let new = kinds_in(mask);
    Ok(Detail::Namespaces {
        op,
        flags,
        target_pid: ev.target_pid,
        user_owner: new.contains(&NsKind::User).then_some(ev.user_owner),
        new,
        ns: NsInodes::from_array(ev.inum),
        result: SysResult::from_ret(ev.ret),
    })
}

fn fork(ev: &ForkEvent) -> Detail {
    Detail::Fork {
        child_pid: ev.child_pid,
    }
}

fn exit(ev: &ExitEvent) -> Detail {
    let (exit_code, signal, core_dumped) = split_exit_code(ev.exit_code);
    Detail::Exit {
        exit_code,
        signal,
        core_dumped,
    }
}

fn rename(ev: &RenameEvent) -> Detail {
    Detail::Rename {
        target_pid: ev.pid,
        oldcomm: comm(&ev.oldcomm),
        newcomm: comm(&ev.newcomm),
    }
}

fn veth(ev: &VethEvent) -> Detail {
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

fn exec(ev: &ExecEvent, truncated: &mut Vec<String>) -> Detail {
    let filename_truncated = ev.flags & exec_flags::FILENAME_TRUNCATED != 0;
    let argv_truncated = ev.flags & exec_flags::ARGV_TRUNCATED != 0;
    for (cut, field) in [(filename_truncated, "filename"), (argv_truncated, "argv")] {
        if cut {
            truncated.push(field.to_string());
        }
    }
    Detail::Exec {
        filename: text(&ev.filename, usize::from(ev.filename_len)),
        argv: argv(ev),
        argv_truncated,
        filename_truncated,
        argv_unreadable: ev.flags & exec_flags::ARGV_UNREADABLE != 0,
        execveat: (ev.flags & exec_flags::EXECVEAT != 0).then_some(ExecAt {
            dirfd: ev.dirfd,
            flags: ev.at_flags,
        }),
        result: SysResult::from_ret(ev.ret),
    }
}

fn netdev_move(ev: &NetdevMoveEvent) -> Detail {
    Detail::NetdevMove {
        name: comm(&ev.name),
        ifindex: ev.ifindex,
        netns: ev.netns,
        to_netns: ev.to_netns,
        result: SysResult::from_ret(ev.ret),
    }
}

/// A cgroup record's (id, hierarchy, level, path), noting a cut path.
fn cgroup(ev: &CgroupEvent, truncated: &mut Vec<String>) -> (u64, i32, i32, String) {
    if ev.truncated != 0 {
        truncated.push("path".to_string());
    }
    (
        ev.id,
        ev.root,
        ev.level,
        text(&ev.path, usize::from(ev.path_len)),
    )
}

/// The text fields of a mount-family record.
struct MountFields<'a> {
    ev: &'a MountEvent,
}

/// Which JSON fields a mount-family kind puts its fstype, src and dst strings in.
type Slots = (&'static str, &'static str, &'static str);

/// Reads a mount-family record and notes which of its strings the kernel cut, under the
/// kind's field names (`names`; empty: not a string of that kind).
fn read_mount(buf: &[u8], names: Slots, truncated: &mut Vec<String>) -> MountEvent {
    let ev: MountEvent = record(buf);
    for (bit, name) in [
        (mount_truncated::FSTYPE, names.0),
        (mount_truncated::SRC, names.1),
        (mount_truncated::DST, names.2),
    ] {
        if ev.truncated & bit != 0 && !name.is_empty() {
            truncated.push(name.to_string());
        }
    }
    ev
}

impl MountFields<'_> {
    fn fstype(&self) -> String {
        text(&self.ev.fstype, usize::from(self.ev.fstype_len))
    }
    fn src(&self) -> String {
        text(&self.ev.src, usize::from(self.ev.src_len))
    }
    fn dst(&self) -> String {
        text(&self.ev.dst, usize::from(self.ev.dst_len))
    }
    fn result(&self) -> SysResult {
        SysResult::from_ret(self.ev.ret)
    }
}

fn mount(ev: &MountEvent) -> Detail {
    let m = MountFields { ev };
    Detail::Mount {
        fstype: m.fstype(),
        source: m.src(),
        target: m.dst(),
        flags: ev.flags,
        result: m.result(),
    }
}

fn umount(ev: &MountEvent) -> Detail {
    let m = MountFields { ev };
    Detail::Umount {
        target: m.dst(),
        flags: ev.flags,
        result: m.result(),
    }
}

fn pivot_root(ev: &MountEvent) -> Detail {
    let m = MountFields { ev };
    Detail::PivotRoot {
        new_root: m.src(),
        put_old: m.dst(),
        result: m.result(),
    }
}

fn fsopen(ev: &MountEvent) -> Detail {
    let m = MountFields { ev };
    Detail::Fsopen {
        fstype: m.fstype(),
        flags: ev.flags,
        result: m.result(),
    }
}

fn fsconfig(ev: &MountEvent) -> Detail {
    let m = MountFields { ev };
    Detail::Fsconfig {
        fd: ev.fd,
        cmd: ev.cmd,
        key: m.fstype(),
        value: (ev.src_len > 0).then(|| m.src()),
        aux: ev.fd2,
        result: m.result(),
    }
}

fn fsmount(ev: &MountEvent) -> Detail {
    Detail::Fsmount {
        fs_fd: ev.fd,
        flags: ev.flags,
        attr_flags: ev.cmd,
        result: MountFields { ev }.result(),
    }
}

fn move_mount(ev: &MountEvent) -> Detail {
    let m = MountFields { ev };
    Detail::MoveMount {
        from_dfd: ev.fd,
        from_path: m.src(),
        to_dfd: ev.fd2,
        to_path: m.dst(),
        flags: ev.flags,
        result: m.result(),
    }
}

fn open_tree(ev: &MountEvent) -> Detail {
    let m = MountFields { ev };
    Detail::OpenTree {
        dfd: ev.fd,
        path: m.src(),
        flags: ev.flags,
        result: m.result(),
    }
}

fn mount_setattr(ev: &MountEvent) -> Detail {
    let m = MountFields { ev };
    Detail::MountSetattr {
        dfd: ev.fd,
        path: m.src(),
        flags: ev.flags,
        attr_set: ev.attr_set,
        attr_clr: ev.attr_clr,
        propagation: ev.propagation,
        idmap_userns: if ev.attr_set & MOUNT_ATTR_IDMAP != 0 {
            ev.cmd
        } else {
            0
        },
        result: m.result(),
    }
}

/// `MOUNT_ATTR_IDMAP`: the mount's ids mapped through a user namespace.
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

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
            assert_eq!(ev.detail.kind(), kind);
            assert!(ev.truncated.is_empty());
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
                    idmap_userns: 0,
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
        ns.inum = [1, 2, 3, 4, 5, 6, 7, 8];
        // mnt and pid changed; time became unknown (0), which is not "new".
        ns.prev = [1, 2, 30, 40, 5, 6, 70, 8];
        ns.inum[6] = 0;
        let ev = decode(&bytes_of(&ns)).unwrap();
        assert_eq!(ev.hook, "tracepoint:syscalls:sys_exit_unshare");
        assert_eq!(
            ev.detail,
            Detail::Namespaces {
                op: NsOp::Unshare,
                flags: 0x2002_0000,
                target_pid: 41,
                user_owner: None,
                new: vec![NsKind::Mnt, NsKind::Pid],
                ns: NsInodes::from_array([1, 2, 3, 4, 5, 6, 0, 8]),
                result: SysResult::from_ret(0),
            }
        );
        // The fork-time fallback sends no flags: they are derived from what changed.
        ns.op = ns_op::CLONE;
        ns.flags = 0;
        let Detail::Namespaces { op, flags, .. } = decode(&bytes_of(&ns)).unwrap().detail else {
            panic!("not namespaces")
        };
        assert_eq!((op, flags), (NsOp::Clone, 0x2002_0000));
        ns.op = 77;
        assert!(matches!(
            decode(&bytes_of(&ns)),
            Err(DecodeError::BadValue {
                field: "op",
                value: 77,
                ..
            })
        ));
        ns.op = ns_op::CLONE;
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
        assert_eq!((fd, nstype, joined), (5, 0x4000_0000, vec![NsKind::Net]));
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

    /// Strings the kernel cut are named in `truncated`, under the kind's own field names.
    #[test]
    fn cut_strings_are_named() {
        let mut rec = mount_record(EventKind::Mount);
        rec.truncated = mount_truncated::DST | mount_truncated::FSTYPE;
        assert_eq!(
            decode(&bytes_of(&rec)).unwrap().truncated,
            ["fstype", "target"]
        );
        let mut rec = mount_record(EventKind::PivotRoot);
        rec.truncated = mount_truncated::SRC;
        assert_eq!(decode(&bytes_of(&rec)).unwrap().truncated, ["new_root"]);
        let mut rec = exec_record(&[b"a"], 0);
        rec.flags = exec_flags::FILENAME_TRUNCATED | exec_flags::ARGV_UNREADABLE;
        let ev = decode(&bytes_of(&rec)).unwrap();
        assert_eq!(ev.truncated, ["filename"]);
        assert!(matches!(
            ev.detail,
            Detail::Exec {
                argv_unreadable: true,
                filename_truncated: true,
                ..
            }
        ));
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

    /// Every kind the table declares decodes from a record of its size.
    #[test]
    fn every_kind_decodes() {
        for kind in EventKind::ALL {
            let mut buf = vec![0u8; kind.record_size()];
            let h = header(kind);
            buf[..size_of::<Header>()].copy_from_slice(&bytes_of(&h));
            if kind == EventKind::Namespaces {
                let mut ns: NsEvent = zeroed();
                ns.header = h;
                ns.op = ns_op::UNSHARE;
                buf = bytes_of(&ns);
            }
            let ev = decode(&buf).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!(ev.detail.kind(), kind);
        }
    }

    #[test]
    fn id_maps_and_security_records_decode() {
        let mut m: IdMapEvent = zeroed();
        m.header = header(EventKind::IdMap);
        m.header.tgid = 77;
        m.which = tracer_common::id_map_file::GID_MAP;
        m.ret = 15;
        let (path, data) = (b"/proc/4242/gid_map", b"0 100000 65536\n");
        m.path[..path.len()].copy_from_slice(path);
        m.path_len = path.len() as u32;
        m.data[..data.len()].copy_from_slice(data);
        (m.len, m.count) = (data.len() as u32, data.len() as u32);
        let ev = decode(&bytes_of(&m)).unwrap();
        assert_eq!(
            ev.detail,
            Detail::IdMap {
                file: MapFile::GidMap,
                path: "/proc/4242/gid_map".into(),
                target_pid: 4242,
                mapped_ns: 0,
                data: "0 100000 65536\n".into(),
                result: SysResult::from_ret(15),
            }
        );
        assert!(ev.truncated.is_empty());
        assert_eq!(ev.to_string(), "pid 4242 gid_map: 0 100000 65536");
        // A longer write than was kept is marked cut.
        m.count = 4000;
        assert_eq!(decode(&bytes_of(&m)).unwrap().truncated, ["data"]);
        // Without kprobes: at the close, the map the kernel holds, below a directory fd.
        let mut held: IdMapEvent = zeroed();
        held.header = header(EventKind::IdMap);
        held.header.hook = Hook::IdMapClose as u32;
        held.which = tracer_common::id_map_file::UID_MAP;
        held.path[..7].copy_from_slice(b"uid_map");
        held.path_len = 7;
        held.dir[..4].copy_from_slice(b"4242");
        held.user_ns = 4026532999;
        for (i, w) in [2u32, 0, 1001, 1, 1, 100_000, 65536].iter().enumerate() {
            held.data[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
        }
        let ev = decode(&bytes_of(&held)).unwrap();
        let Detail::IdMap {
            target_pid,
            mapped_ns,
            data,
            ..
        } = &ev.detail
        else {
            panic!("{ev:?}")
        };
        assert_eq!((*target_pid, *mapped_ns), (4242, 4026532999));
        assert_eq!(data, "0 1001 1\n1 100000 65536\n");
        held.which = tracer_common::id_map_file::SETGROUPS;
        held.data[..4].copy_from_slice(&0u32.to_ne_bytes());
        assert!(decode(&bytes_of(&held))
            .unwrap()
            .to_string()
            .ends_with("setgroups: deny"));
        assert_eq!(map_target("/proc/self/uid_map", 77), 77);
        assert_eq!(map_target("uid_map", 77), 0);
        assert_eq!(map_target("/proc/thread-self/uid_map", 77), 0);

        let mut s: SecurityEvent = zeroed();
        s.header = header(EventKind::Capset);
        (s.effective, s.permitted, s.op) = (1 << 21, 1 << 21, 0x2008_0522);
        let ev = decode(&bytes_of(&s)).unwrap();
        assert_eq!(ev.to_string(), "cap_sys_admin=ep");
        s.header = header(EventKind::Seccomp);
        (s.op, s.arg, s.filter_len, s.ret) = (1, 1, 974, 0);
        let ev = decode(&bytes_of(&s)).unwrap();
        assert_eq!(
            ev.to_string(),
            "SECCOMP_SET_MODE_FILTER flags=TSYNC, 974 instructions"
        );
    }

    #[test]
    fn unknown_kinds_are_rejected() {
        for kind in [0u32, tracer_common::KIND_SLOTS, 999, u32::MAX] {
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
