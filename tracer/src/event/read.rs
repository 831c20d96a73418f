//! Reading an [`Event`] back from JSON in one pass. The derived reader of a struct with
//! `flatten`ed, internally tagged fields buffers every field and reads it again, twice: on
//! a million-event trace that was most of `tracer report`'s time. Here every field any kind
//! has is read straight into its slot, then the kind picks what it needs. The layout stays
//! the one `Serialize` writes (the round-trip tests hold them together).
//!
//! The slots and their visitor are written out by [`fields!`] rather than derived: a derived
//! struct of ~100 optional fields fills each absent one through serde's missing-field path
//! and moves the whole struct out of its locals, a fifth of the parse per event.

use std::fmt;

use serde::{
    de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor},
    Deserialize, Deserializer,
};

use super::{
    json_cursor::{Cursor, Fast},
    Detail, Event, EventKind, ExecAt, MapFile, NsInodes, NsKind, NsOp, SysResult,
};

/// The slots of every field of every kind, as they appear in the JSON; the key that names
/// each; and the reading of a key's value into its slot.
macro_rules! fields {
    ($($name:ident: $ty:ty,)*) => {
        /// Every field of every kind, as read (absent ones `None`).
        #[derive(Default)]
        struct Fields {
            $($name: Option<$ty>,)*
        }

        /// A key of the event object.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy)]
        enum Key {
            $($name,)*
            /// Not a field of any kind: skipped, as the derived reader did.
            Other,
        }

        impl Key {
            fn from_name(text: &str) -> Self {
                match text {
                    $(stringify!($name) => Self::$name,)*
                    _ => Self::Other,
                }
            }
        }

        impl Fields {
            fn read<'de, A: MapAccess<'de>>(&mut self, slot: Key, map: &mut A) -> Result<(), A::Error> {
                match slot {
                    $(Key::$name => {
                        if self.$name.is_some() {
                            return Err(de::Error::duplicate_field(stringify!($name)));
                        }
                        self.$name = Some(map.next_value()?);
                    })*
                    Key::Other => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(())
            }

            /// [`Fields::read`] on the fast path: `None` where serde_json must judge (a
            /// repeated or unknown key, a value it cannot read).
            fn read_fast(&mut self, slot: Key, c: &mut Cursor) -> Option<()> {
                match slot {
                    $(Key::$name => {
                        if self.$name.is_some() {
                            return None;
                        }
                        self.$name = Some(<$ty as Fast>::fast(c)?);
                    })*
                    Key::Other => return None,
                }
                Some(())
            }
        }
    };
}

fields! {
    ts_ns: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    uid: u32,
    comm: String,
    cgroup_id: u64,
    mnt_ns: u32,
    pid_ns: u32,
    net_ns: u32,
    user_ns: u32,
    hook: String,
    truncated: Vec<String>,
    kind: KindName,
    ret: i64,
    error: String,
    filename: String,
    argv: Vec<String>,
    argv_truncated: bool,
    filename_truncated: bool,
    argv_unreadable: bool,
    execveat: ExecAt,
    fstype: String,
    source: String,
    target: String,
    flags: u64,
    new_root: String,
    put_old: String,
    fd: i32,
    cmd: u32,
    key: String,
    value: String,
    aux: i32,
    fs_fd: i32,
    attr_flags: u32,
    from_dfd: i32,
    from_path: String,
    to_dfd: i32,
    to_path: String,
    dfd: i32,
    path: String,
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    child_pid: u32,
    exit_code: i32,
    signal: i32,
    core_dumped: bool,
    target_pid: u32,
    oldcomm: String,
    newcomm: String,
    op: NsOp,
    new: Vec<NsKind>,
    ns: NsInodes,
    nstype: u64,
    joined: Vec<NsKind>,
    name: String,
    peer: String,
    ifindex: u32,
    peer_ifindex: u32,
    netns: u32,
    peer_netns: u32,
    to_netns: u32,
    id: u64,
    root: i32,
    level: i32,
    code: i32,
    result: i32,
    version: u32,
    effective: u64,
    permitted: u64,
    inheritable: u64,
    option: u32,
    arg: u64,
    filter_len: u32,
    operation: u32,
    user_owner: u32,
    idmap_userns: u32,
    file: MapFile,
    data: String,
    mapped_ns: u32,
}

/// The `kind` tag, read as the kind it names.
struct KindName(EventKind);

impl<'de> Deserialize<'de> for KindName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = KindName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an event kind")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KindName, E> {
                EventKind::from_name(v)
                    .map(KindName)
                    .ok_or_else(|| E::custom(format!("unknown event kind {v:?}")))
            }
        }
        d.deserialize_str(Name)
    }
}

impl Fast for KindName {
    fn fast(c: &mut Cursor) -> Option<Self> {
        EventKind::from_name(c.plain_str()?).map(KindName)
    }
}

/// Types read rarely: serde_json reads them where the cursor is.
macro_rules! fast_by_serde {
    ($($ty:ty),*) => {
        $(impl Fast for $ty {
            fn fast(c: &mut Cursor) -> Option<Self> {
                c.by_serde()
            }
        })*
    };
}

fast_by_serde!(ExecAt, NsOp, Vec<NsKind>, NsInodes, MapFile);

impl Event {
    /// Reads one event's JSON object: directly where it is written as this tracer writes
    /// events, by serde_json otherwise (which also words every error). The same event
    /// either way.
    pub fn from_json(text: &str) -> serde_json::Result<Event> {
        match fast_event(text) {
            Some(ev) => Ok(ev),
            None => serde_json::from_str(text),
        }
    }
}

/// The fast path of [`Event::from_json`].
fn fast_event(text: &str) -> Option<Event> {
    let mut c = Cursor::new(text);
    if !c.eat(b'{') {
        return None;
    }
    let mut fields = Fields::default();
    if !c.eat(b'}') {
        loop {
            let slot = Key::from_name(c.plain_str()?);
            if !c.eat(b':') {
                return None;
            }
            fields.read_fast(slot, &mut c)?;
            if c.eat(b'}') {
                break;
            }
            if !c.eat(b',') {
                return None;
            }
        }
    }
    if !c.at_end() {
        return None;
    }
    fields.take_event().ok()
}

/// Reads a key as the [`Key`] it names, without allocating it.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key::from_name(v))
    }
}

fn req<T>(v: Option<T>, name: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("missing field `{name}`"))
}

/// A required field, taken out of what was read.
macro_rules! req {
    ($f:ident . $field:ident) => {
        req($f.$field.take(), stringify!($field))?
    };
}

/// A syscall's result: its return value and errno name.
macro_rules! result {
    ($f:ident) => {
        SysResult {
            ret: req!($f.ret),
            error: $f.error.take(),
        }
    };
}

impl Fields {
    /// Taken by reference: moving the slots (over a kilobyte) cost more than reading them.
    fn take_event(&mut self) -> Result<Event, String> {
        let KindName(kind) = req(self.kind.take(), "kind")?;
        let detail = match kind {
            EventKind::Mount
            | EventKind::Umount
            | EventKind::PivotRoot
            | EventKind::Fsopen
            | EventKind::Fsconfig
            | EventKind::Fsmount
            | EventKind::MoveMount
            | EventKind::OpenTree
            | EventKind::MountSetattr => self.mount_detail(kind)?,
            EventKind::Capset | EventKind::Prctl | EventKind::Seccomp => {
                self.security_detail(kind)?
            }
            EventKind::IdMap => {
                let f = &mut *self;
                Detail::IdMap {
                    file: req!(f.file),
                    path: req!(f.path),
                    target_pid: req!(f.target_pid),
                    mapped_ns: f.mapped_ns.unwrap_or_default(),

                    data: req!(f.data),
                    result: result!(f),
                }
            }
            _ => self.detail(kind)?,
        };
        let f = self;
        Ok(Event {
            ts_ns: req!(f.ts_ns),
            pid: req!(f.pid),
            tgid: req!(f.tgid),
            ppid: req!(f.ppid),
            uid: req!(f.uid),
            comm: req!(f.comm),
            cgroup_id: req!(f.cgroup_id),
            mnt_ns: f.mnt_ns.unwrap_or_default(),
            pid_ns: f.pid_ns.unwrap_or_default(),
            net_ns: f.net_ns.unwrap_or_default(),
            user_ns: f.user_ns.unwrap_or_default(),
            hook: f.hook.take().unwrap_or_default(),
            truncated: f.truncated.take().unwrap_or_default(),
            detail,
        })
    }

    /// The security setup's fields.
    fn security_detail(&mut self, kind: EventKind) -> Result<Detail, String> {
        let f = self;
        Ok(match kind {
            EventKind::Capset => Detail::Capset {
                target_pid: req!(f.target_pid),
                version: req!(f.version),
                effective: req!(f.effective),
                permitted: req!(f.permitted),
                inheritable: req!(f.inheritable),
                result: result!(f),
            },
            EventKind::Prctl => Detail::Prctl {
                option: req!(f.option),
                arg: req!(f.arg),
                filter_len: f.filter_len.unwrap_or_default(),
                result: result!(f),
            },
            _ => Detail::Seccomp {
                operation: req!(f.operation),
                flags: req!(f.flags),
                filter_len: f.filter_len.unwrap_or_default(),
                result: result!(f),
            },
        })
    }

    /// The mount family's fields.
    fn mount_detail(&mut self, kind: EventKind) -> Result<Detail, String> {
        let f = self;
        Ok(match kind {
            EventKind::Mount => Detail::Mount {
                fstype: req!(f.fstype),
                source: req!(f.source),
                target: req!(f.target),
                flags: req!(f.flags),
                result: result!(f),
            },
            EventKind::Umount => Detail::Umount {
                target: req!(f.target),
                flags: req!(f.flags),
                result: result!(f),
            },
            EventKind::PivotRoot => Detail::PivotRoot {
                new_root: req!(f.new_root),
                put_old: req!(f.put_old),
                result: result!(f),
            },
            EventKind::Fsopen => Detail::Fsopen {
                fstype: req!(f.fstype),
                flags: req!(f.flags),
                result: result!(f),
            },
            EventKind::Fsconfig => Detail::Fsconfig {
                fd: req!(f.fd),
                cmd: req!(f.cmd),
                key: req!(f.key),
                value: f.value.take(),
                aux: req!(f.aux),
                result: result!(f),
            },
            EventKind::Fsmount => Detail::Fsmount {
                fs_fd: req!(f.fs_fd),
                flags: req!(f.flags),
                attr_flags: req!(f.attr_flags),
                result: result!(f),
            },
            EventKind::MoveMount => Detail::MoveMount {
                from_dfd: req!(f.from_dfd),
                from_path: req!(f.from_path),
                to_dfd: req!(f.to_dfd),
                to_path: req!(f.to_path),
                flags: req!(f.flags),
                result: result!(f),
            },
            EventKind::OpenTree => Detail::OpenTree {
                dfd: req!(f.dfd),
                path: req!(f.path),
                flags: req!(f.flags),
                result: result!(f),
            },
            EventKind::MountSetattr => Detail::MountSetattr {
                dfd: req!(f.dfd),
                path: req!(f.path),
                flags: req!(f.flags),
                attr_set: req!(f.attr_set),
                attr_clr: req!(f.attr_clr),
                propagation: req!(f.propagation),
                idmap_userns: f.idmap_userns.unwrap_or_default(),
                result: result!(f),
            },
            // Dispatched by `take_event`.
            _ => unreachable!("not a mount-family kind"),
        })
    }

    /// Every other kind's fields: processes, namespaces, network, cgroups, signals.
    fn detail(&mut self, kind: EventKind) -> Result<Detail, String> {
        let f = self;
        Ok(match kind {
            EventKind::Exec => Detail::Exec {
                filename: req!(f.filename),
                argv: req!(f.argv),
                argv_truncated: req!(f.argv_truncated),
                filename_truncated: req!(f.filename_truncated),
                argv_unreadable: f.argv_unreadable.unwrap_or_default(),
                execveat: f.execveat.take(),
                result: result!(f),
            },
            EventKind::Fork => Detail::Fork {
                child_pid: req!(f.child_pid),
            },
            EventKind::Exit => Detail::Exit {
                exit_code: f.exit_code.take(),
                signal: f.signal.take(),
                core_dumped: f.core_dumped.take().unwrap_or(false),
            },
            EventKind::Rename => Detail::Rename {
                target_pid: req!(f.target_pid),
                oldcomm: req!(f.oldcomm),
                newcomm: req!(f.newcomm),
            },
            EventKind::Namespaces => Detail::Namespaces {
                op: req!(f.op),
                flags: req!(f.flags),
                target_pid: req!(f.target_pid),
                new: req!(f.new),
                user_owner: f.user_owner.take(),
                ns: req!(f.ns),
                result: result!(f),
            },
            EventKind::Setns => Detail::Setns {
                fd: req!(f.fd),
                nstype: req!(f.nstype),
                joined: req!(f.joined),
                ns: req!(f.ns),
                result: result!(f),
            },
            EventKind::Veth => Detail::Veth {
                name: req!(f.name),
                peer: req!(f.peer),
                ifindex: req!(f.ifindex),
                peer_ifindex: req!(f.peer_ifindex),
                netns: req!(f.netns),
                peer_netns: req!(f.peer_netns),
                result: result!(f),
            },
            EventKind::CgroupMkdir => Detail::CgroupMkdir {
                id: req!(f.id),
                root: req!(f.root),
                level: req!(f.level),
                path: req!(f.path),
            },
            EventKind::CgroupRmdir => Detail::CgroupRmdir {
                id: req!(f.id),
                root: req!(f.root),
                level: req!(f.level),
                path: req!(f.path),
            },
            EventKind::CgroupAttach => Detail::CgroupAttach {
                id: req!(f.id),
                root: req!(f.root),
                level: req!(f.level),
                path: req!(f.path),
                target_pid: req!(f.target_pid),
            },
            EventKind::OomKill => Detail::OomKill {
                target_pid: req!(f.target_pid),
            },
            EventKind::Signal => Detail::Signal {
                signal: req!(f.signal),
                target_pid: req!(f.target_pid),
                code: req!(f.code),
                result: req!(f.result),
            },
            EventKind::NetdevMove => Detail::NetdevMove {
                name: req!(f.name),
                ifindex: req!(f.ifindex),
                netns: req!(f.netns),
                to_netns: req!(f.to_netns),
                result: result!(f),
            },
            // Dispatched by `take_event`.
            _ => unreachable!("a mount-family kind"),
        })
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Event;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
                let mut fields = Fields::default();
                while let Some(slot) = map.next_key_seed(KeySeed)? {
                    fields.read(slot, &mut map)?;
                }
                fields.take_event().map_err(de::Error::custom)
            }
        }
        d.deserialize_map(Object)
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
            user_ns: 10,
            hook: "h".into(),
            truncated: vec!["target".into()],
            detail,
        }
    }

    /// Every kind reads back as it was written.
    #[test]
    fn every_kind_round_trips() {
        for ev in one_of_each() {
            let text = serde_json::to_string(&ev).unwrap();
            let back: Event = serde_json::from_str(&text).unwrap();
            assert_eq!(back, ev, "{text}");
            assert_eq!(Event::from_json(&text).unwrap(), ev, "{text}");
        }
    }

    /// An event of each kind, in the kinds' order.
    fn one_of_each() -> Vec<Event> {
        let r = SysResult::from_ret(-13);
        let ns = NsInodes::from_array([1, 2, 3, 4, 5, 6, 7, 8]);
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
                attr_set: 0x10_0002,
                attr_clr: 3,
                propagation: 4,
                idmap_userns: 4026532999,
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
                user_owner: None,
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
                result: r.clone(),
            },
            Detail::OomKill { target_pid: 77 },
            Detail::Signal {
                signal: 9,
                target_pid: 78,
                code: 0,
                result: 0,
            },
            Detail::Capset {
                target_pid: 0,
                version: 0x2008_0522,
                effective: 0xa80_425fb,
                permitted: 0xa80_425fb,
                inheritable: 0,
                result: r.clone(),
            },
            Detail::Prctl {
                option: 24,
                arg: 21,
                filter_len: 0,
                result: r.clone(),
            },
            Detail::Seccomp {
                operation: 1,
                flags: 1,
                filter_len: 371,
                result: r.clone(),
            },
            Detail::IdMap {
                file: MapFile::UidMap,
                path: "/proc/4242/uid_map".into(),
                target_pid: 4242,
                mapped_ns: 4026532999,

                data: "0 100000 65536\n".into(),
                result: r.clone(),
            },
        ];
        let kinds: Vec<EventKind> = all.iter().map(Detail::kind).collect();
        assert_eq!(kinds, EventKind::ALL, "one of each kind, in order");
        all.into_iter().map(event).collect()
    }

    /// The fast path reads a text as serde_json does, or leaves it to serde_json.
    fn agrees(text: &str) {
        let slow = serde_json::from_str::<Event>(text);
        match (fast_event(text), &slow) {
            (Some(fast), Ok(slow)) => assert_eq!(&fast, slow, "{text}"),
            (Some(fast), Err(e)) => panic!("read {fast:?} where serde_json fails ({e}): {text}"),
            (None, _) => {}
        }
        assert_eq!(Event::from_json(text).ok(), slow.ok(), "{text}");
    }

    /// What this tracer writes (its own key order, sorted keys, pretty-printed) takes the fast
    /// path whenever its strings need no escapes: a change that sends it all to serde_json
    /// fails here rather than only in the benchmark.
    #[test]
    fn the_fast_path_reads_what_this_tracer_writes() {
        for mut ev in one_of_each() {
            for comm in ["runc:[2:INIT]", "c\"omm", "é☃"] {
                ev.comm = comm.into();
                let v = serde_json::to_value(&ev).unwrap();
                for text in [
                    serde_json::to_string(&ev).unwrap(),
                    v.to_string(),
                    serde_json::to_string_pretty(&v).unwrap(),
                ] {
                    agrees(&text);
                    if !text.contains('\\') {
                        assert!(fast_event(&text).is_some(), "left to serde_json: {text}");
                    }
                }
            }
        }
    }

    /// Damaged and unusual texts: each kind's text cut, with bytes dropped, added or
    /// changed (a few thousand of each), and the cases JSON is strict about.
    #[test]
    fn the_fast_path_leaves_the_rest_to_serde_json() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        const BYTES: &[u8] = b"{}[]\",:0123456789-.eE+ \ttrue\\u\x01x";
        for ev in one_of_each() {
            let text = serde_json::to_string(&ev).unwrap().into_bytes();
            for _ in 0..2000 {
                let mut b = text.clone();
                let at = (next() % b.len() as u64) as usize;
                let byte = BYTES[(next() % BYTES.len() as u64) as usize];
                match next() % 4 {
                    0 => {
                        b.remove(at);
                    }
                    1 => b.insert(at, byte),
                    2 => b[at] = byte,
                    _ => b.truncate(at),
                }
                if let Ok(t) = String::from_utf8(b) {
                    agrees(&t);
                }
            }
        }
        let fork = r#""cgroup_id":1,"comm":"c","hook":"h","kind":"fork","pid":1,"ppid":1,"tgid":1,"uid":0"#;
        for (child, ts) in [
            ("7", "1"),
            ("-0", "1"),
            ("-7", "1"),
            ("07", "1"),
            ("7.0", "1"),
            ("7e0", "1"),
            ("4294967296", "1"),
            ("4294967295", "18446744073709551615"),
            ("1", "18446744073709551616"),
            ("1", "-1"),
            ("1", "00"),
            ("\"7\"", "1"),
            ("null", "1"),
        ] {
            agrees(&format!(r#"{{{fork},"child_pid":{child},"ts_ns":{ts}}}"#));
        }
        for extra in [
            r#","child_pid":8"#,
            r#","other":[1,{"a":"}"}]"#,
            r#","p\u0069d":1"#,
            r#","comm":"d""#,
        ] {
            agrees(&format!(r#"{{{fork},"child_pid":7,"ts_ns":1{extra}}}"#));
        }
        for around in [" ", "\n\t\r", " x", "}"] {
            agrees(&format!(
                r#"{around}{{{fork},"child_pid":7,"ts_ns":1}}{around}"#
            ));
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

    /// A key no kind has is skipped whatever its value (a later version's field); a key
    /// given twice is an error, as with the derived reader.
    #[test]
    fn unknown_keys_are_skipped_and_repeated_ones_refused() {
        let ev = event(Detail::Fork { child_pid: 9 });
        let text = serde_json::to_string(&ev).unwrap();
        let extra = format!(r#"{{"later":{{"a":[1,"}}",{{}}]}},{}"#, &text[1..]);
        assert_eq!(serde_json::from_str::<Event>(&extra).unwrap(), ev);
        let twice = format!(r#"{{"pid":7,{}"#, &text[1..]);
        let e = serde_json::from_str::<Event>(&twice)
            .unwrap_err()
            .to_string();
        assert!(e.contains("duplicate field `pid`"), "{e}");
    }
}
