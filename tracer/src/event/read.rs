//! Reading an [`Event`] back from JSON in one pass. The derived reader of a struct with
//! `flatten`ed, internally tagged fields buffers every field and reads it again, twice: on
//! a million-event trace that was most of `tracer report`'s time. Here every field any kind
//! has is read straight into its slot, then the kind picks what it needs. The layout stays
//! the one `Serialize` writes (the round-trip tests hold them together).

use std::borrow::Cow;

use serde::{de, Deserialize, Deserializer};

use super::{Detail, Event, EventKind, ExecAt, NsInodes, NsKind, NsOp, SysResult};

/// Every field of every kind, as it appears in the JSON.
#[derive(Deserialize)]
struct Fields<'a> {
    ts_ns: Option<u64>,
    pid: Option<u32>,
    tgid: Option<u32>,
    ppid: Option<u32>,
    uid: Option<u32>,
    comm: Option<String>,
    cgroup_id: Option<u64>,
    #[serde(default)]
    mnt_ns: u32,
    #[serde(default)]
    pid_ns: u32,
    #[serde(default)]
    net_ns: u32,
    #[serde(default)]
    hook: String,
    #[serde(default)]
    truncated: Vec<String>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    ret: Option<i64>,
    error: Option<String>,
    filename: Option<String>,
    argv: Option<Vec<String>>,
    argv_truncated: Option<bool>,
    filename_truncated: Option<bool>,
    #[serde(default)]
    argv_unreadable: bool,
    execveat: Option<ExecAt>,
    fstype: Option<String>,
    source: Option<String>,
    target: Option<String>,
    flags: Option<u64>,
    new_root: Option<String>,
    put_old: Option<String>,
    fd: Option<i32>,
    cmd: Option<u32>,
    key: Option<String>,
    value: Option<String>,
    aux: Option<i32>,
    fs_fd: Option<i32>,
    attr_flags: Option<u32>,
    from_dfd: Option<i32>,
    from_path: Option<String>,
    to_dfd: Option<i32>,
    to_path: Option<String>,
    dfd: Option<i32>,
    path: Option<String>,
    attr_set: Option<u64>,
    attr_clr: Option<u64>,
    propagation: Option<u64>,
    child_pid: Option<u32>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    core_dumped: Option<bool>,
    target_pid: Option<u32>,
    oldcomm: Option<String>,
    newcomm: Option<String>,
    op: Option<NsOp>,
    new: Option<Vec<NsKind>>,
    ns: Option<NsInodes>,
    nstype: Option<u64>,
    joined: Option<Vec<NsKind>>,
    name: Option<String>,
    peer: Option<String>,
    ifindex: Option<u32>,
    peer_ifindex: Option<u32>,
    netns: Option<u32>,
    peer_netns: Option<u32>,
    to_netns: Option<u32>,
    id: Option<u64>,
    root: Option<i32>,
    level: Option<i32>,
    code: Option<i32>,
    result: Option<i32>,
}

fn req<T>(v: Option<T>, name: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("missing field `{name}`"))
}

impl Fields<'_> {
    fn into_event(self) -> Result<Event, String> {
        let f = self;
        macro_rules! req {
            ($field:ident) => {
                req(f.$field, stringify!($field))?
            };
        }
        macro_rules! result {
            () => {
                SysResult {
                    ret: req!(ret),
                    error: f.error,
                }
            };
        }
        let name = req(f.kind, "kind")?;
        let kind =
            EventKind::from_name(&name).ok_or_else(|| format!("unknown event kind {name:?}"))?;
        let detail = match kind {
            EventKind::Exec => Detail::Exec {
                filename: req!(filename),
                argv: req!(argv),
                argv_truncated: req!(argv_truncated),
                filename_truncated: req!(filename_truncated),
                argv_unreadable: f.argv_unreadable,
                execveat: f.execveat,
                result: result!(),
            },
            EventKind::Mount => Detail::Mount {
                fstype: req!(fstype),
                source: req!(source),
                target: req!(target),
                flags: req!(flags),
                result: result!(),
            },
            EventKind::Umount => Detail::Umount {
                target: req!(target),
                flags: req!(flags),
                result: result!(),
            },
            EventKind::PivotRoot => Detail::PivotRoot {
                new_root: req!(new_root),
                put_old: req!(put_old),
                result: result!(),
            },
            EventKind::Fsopen => Detail::Fsopen {
                fstype: req!(fstype),
                flags: req!(flags),
                result: result!(),
            },
            EventKind::Fsconfig => Detail::Fsconfig {
                fd: req!(fd),
                cmd: req!(cmd),
                key: req!(key),
                value: f.value,
                aux: req!(aux),
                result: result!(),
            },
            EventKind::Fsmount => Detail::Fsmount {
                fs_fd: req!(fs_fd),
                flags: req!(flags),
                attr_flags: req!(attr_flags),
                result: result!(),
            },
            EventKind::MoveMount => Detail::MoveMount {
                from_dfd: req!(from_dfd),
                from_path: req!(from_path),
                to_dfd: req!(to_dfd),
                to_path: req!(to_path),
                flags: req!(flags),
                result: result!(),
            },
            EventKind::OpenTree => Detail::OpenTree {
                dfd: req!(dfd),
                path: req!(path),
                flags: req!(flags),
                result: result!(),
            },
            EventKind::MountSetattr => Detail::MountSetattr {
                dfd: req!(dfd),
                path: req!(path),
                flags: req!(flags),
                attr_set: req!(attr_set),
                attr_clr: req!(attr_clr),
                propagation: req!(propagation),
                result: result!(),
            },
            EventKind::Fork => Detail::Fork {
                child_pid: req!(child_pid),
            },
            EventKind::Exit => Detail::Exit {
                exit_code: f.exit_code,
                signal: f.signal,
                core_dumped: f.core_dumped.unwrap_or(false),
            },
            EventKind::Rename => Detail::Rename {
                target_pid: req!(target_pid),
                oldcomm: req!(oldcomm),
                newcomm: req!(newcomm),
            },
            EventKind::Namespaces => Detail::Namespaces {
                op: req!(op),
                flags: req!(flags),
                target_pid: req!(target_pid),
                new: req!(new),
                ns: req!(ns),
                result: result!(),
            },
            EventKind::Setns => Detail::Setns {
                fd: req!(fd),
                nstype: req!(nstype),
                joined: req!(joined),
                ns: req!(ns),
                result: result!(),
            },
            EventKind::Veth => Detail::Veth {
                name: req!(name),
                peer: req!(peer),
                ifindex: req!(ifindex),
                peer_ifindex: req!(peer_ifindex),
                netns: req!(netns),
                peer_netns: req!(peer_netns),
                result: result!(),
            },
            EventKind::CgroupMkdir => Detail::CgroupMkdir {
                id: req!(id),
                root: req!(root),
                level: req!(level),
                path: req!(path),
            },
            EventKind::CgroupRmdir => Detail::CgroupRmdir {
                id: req!(id),
                root: req!(root),
                level: req!(level),
                path: req!(path),
            },
            EventKind::CgroupAttach => Detail::CgroupAttach {
                id: req!(id),
                root: req!(root),
                level: req!(level),
                path: req!(path),
                target_pid: req!(target_pid),
            },
            EventKind::OomKill => Detail::OomKill {
                target_pid: req!(target_pid),
            },
            EventKind::Signal => Detail::Signal {
                signal: req!(signal),
                target_pid: req!(target_pid),
                code: req!(code),
                result: req!(result),
            },
            EventKind::NetdevMove => Detail::NetdevMove {
                name: req!(name),
                ifindex: req!(ifindex),
                netns: req!(netns),
                to_netns: req!(to_netns),
                result: result!(),
            },
        };
        Ok(Event {
            ts_ns: req!(ts_ns),
            pid: req!(pid),
            tgid: req!(tgid),
            ppid: req!(ppid),
            uid: req!(uid),
            comm: req!(comm),
            cgroup_id: req!(cgroup_id),
            mnt_ns: f.mnt_ns,
            pid_ns: f.pid_ns,
            net_ns: f.net_ns,
            hook: f.hook,
            truncated: f.truncated,
            detail,
        })
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Fields::deserialize(d)?
            .into_event()
            .map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(detail: Detail) -> Event {
        Event {
            ts_ns: 1,
            pid: 2,
            tgid: 3,
            ppid: 4,
            uid: 5,
            comm: "c\"omm".into(),
            cgroup_id: 6,
            mnt_ns: 7,
            pid_ns: 8,
            net_ns: 9,
            hook: "h".into(),
            truncated: vec!["target".into()],
            detail,
        }
    }

    /// Every kind reads back as it was written.
    #[test]
    fn every_kind_round_trips() {
        let r = SysResult::from_ret(-13);
        let ns = NsInodes::from_array([1, 2, 3, 4, 5, 6, 7]);
        let s = |x: &str| x.to_string();
        let all = [
            Detail::Exec {
                filename: s("/bin/sh"),
                argv: vec![s("sh"), s("-c")],
                argv_truncated: true,
                filename_truncated: false,
                argv_unreadable: true,
                execveat: Some(ExecAt { dirfd: 3, flags: 4 }),
                result: r.clone(),
            },
            Detail::Mount {
                fstype: s("overlay"),
                source: s("o"),
                target: s("/t"),
                flags: 7,
                result: r.clone(),
            },
            Detail::Umount {
                target: s("/t"),
                flags: 2,
                result: r.clone(),
            },
            Detail::PivotRoot {
                new_root: s("."),
                put_old: s("."),
                result: r.clone(),
            },
            Detail::Fsopen {
                fstype: s("tmpfs"),
                flags: 1,
                result: r.clone(),
            },
            Detail::Fsconfig {
                fd: 3,
                cmd: 1,
                key: s("source"),
                value: Some(s("v")),
                aux: 0,
                result: r.clone(),
            },
            Detail::Fsmount {
                fs_fd: 3,
                flags: 1,
                attr_flags: 2,
                result: r.clone(),
            },
            Detail::MoveMount {
                from_dfd: 3,
                from_path: s(""),
                to_dfd: -100,
                to_path: s("/m"),
                flags: 4,
                result: r.clone(),
            },
            Detail::OpenTree {
                dfd: -100,
                path: s("/p"),
                flags: 1,
                result: r.clone(),
            },
            Detail::MountSetattr {
                dfd: 3,
                path: s(""),
                flags: 1,
                attr_set: 2,
                attr_clr: 3,
                propagation: 4,
                result: r.clone(),
            },
            Detail::Fork { child_pid: 9 },
            Detail::Exit {
                exit_code: None,
                signal: Some(9),
                core_dumped: true,
            },
            Detail::Rename {
                target_pid: 2,
                oldcomm: s("a"),
                newcomm: s("b"),
            },
            Detail::Namespaces {
                op: NsOp::Unshare,
                flags: 0x2000_0000,
                target_pid: 2,
                new: vec![NsKind::Mnt],
                ns,
                result: r.clone(),
            },
            Detail::Setns {
                fd: 5,
                nstype: 0,
                joined: vec![NsKind::Net],
                ns,
                result: r.clone(),
            },
            Detail::Veth {
                name: s("v0"),
                peer: s("v1"),
                ifindex: 1,
                peer_ifindex: 2,
                netns: 3,
                peer_netns: 4,
                result: r.clone(),
            },
            Detail::CgroupMkdir {
                id: 1 << 40,
                root: 3,
                level: 2,
                path: s("/docker/x"),
            },
            Detail::CgroupRmdir {
                id: 7,
                root: 0,
                level: 1,
                path: s("/x"),
            },
            Detail::CgroupAttach {
                id: 7,
                root: 0,
                level: 1,
                path: s("/x"),
                target_pid: 42,
            },
            Detail::NetdevMove {
                name: s("veth1"),
                ifindex: 9,
                netns: 1,
                to_netns: 2,
                result: r,
            },
            Detail::OomKill { target_pid: 77 },
            Detail::Signal {
                signal: 9,
                target_pid: 78,
                code: 0,
                result: 0,
            },
        ];
        let kinds: Vec<EventKind> = all.iter().map(Detail::kind).collect();
        assert_eq!(kinds, EventKind::ALL, "one of each kind, in order");
        for detail in all {
            let ev = event(detail);
            let text = serde_json::to_string(&ev).unwrap();
            let back: Event = serde_json::from_str(&text).unwrap();
            assert_eq!(back, ev, "{text}");
        }
    }

    #[test]
    fn missing_fields_and_unknown_kinds_are_errors() {
        let fork = serde_json::to_value(event(Detail::Fork { child_pid: 9 })).unwrap();
        let err =
            |v: serde_json::Value| serde_json::from_value::<Event>(v).unwrap_err().to_string();
        let mut v = fork.clone();
        v.as_object_mut().unwrap().remove("child_pid");
        assert!(err(v).contains("missing field `child_pid`"));
        let mut v = fork.clone();
        v.as_object_mut().unwrap().remove("ts_ns");
        assert!(err(v).contains("missing field `ts_ns`"));
        let mut v = fork;
        v["kind"] = "teleport".into();
        assert!(err(v).contains("unknown event kind \"teleport\""));
    }
}
