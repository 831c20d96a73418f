//! Kernel layout facts the programs need, resolved from the running kernel at load time:
//! struct member offsets from BTF and tracepoint record offsets from tracefs `format` files.
//! Rust eBPF programs get no CO-RE relocations, so nothing here may be baked in at build time.

use std::{fs, path::Path, sync::Arc};

use btf_rs::{Btf, Type};
use tracer_common::{KernelLayout, SyscallNrs, NS_KINDS};

use super::btf_names::BtfNames;

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// Split BTF of the veth module, where veth is a module (most distribution kernels).
pub const VETH_BTF: &str = "/sys/kernel/btf/veth";
/// `NETDEV_ALIGN`: `netdev_priv()` is this far past an aligned `struct net_device` on kernels
/// whose `net_device` has no `priv[]` member.
const NETDEV_ALIGN: u32 = 32;

/// The `struct nsproxy` member and namespace struct of each kind, in `NsKind` order. The
/// user namespace is not in `nsproxy` (a task's is `cred->user_ns`): no member.
const NS_MEMBERS: [(&str, &str); NS_KINDS] = [
    ("uts_ns", "uts_namespace"),
    ("ipc_ns", "ipc_namespace"),
    ("mnt_ns", "mnt_namespace"),
    ("pid_ns_for_children", "pid_namespace"),
    ("net_ns", "net"),
    ("cgroup_ns", "cgroup_namespace"),
    ("time_ns_for_children", "time_namespace"),
    ("", "user_namespace"),
];

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("reading kernel BTF {path}: {source}")]
    Btf { path: String, source: btf_rs::Error },
    #[error("BTF has no struct {0}")]
    NoStruct(String),
    #[error("struct {strukt} has no member {member}")]
    NoMember { strukt: String, member: String },
    #[error("function {0} is not in BTF")]
    NoFunc(String),
    #[error("no parameter of {func} is a pointer to struct {strukt}")]
    NoParam { func: String, strukt: String },
    #[error("{strukt}.{member} is a bitfield")]
    Bitfield { strukt: String, member: String },
    #[error("BTF lookup failed: {0}")]
    Lookup(#[from] btf_rs::Error),
}

/// A kernel BTF with its type names indexed (see [`BtfNames`]).
pub struct KernelBtf {
    pub btf: Btf,
    /// The base BTF's names; `None` where it could not be indexed (btf_rs scans then).
    names: Option<Arc<BtfNames>>,
}

impl KernelBtf {
    /// The types named `name`: the split BTF's own first, then the base's.
    fn types_named(&self, name: &str) -> Result<Vec<Type>, LayoutError> {
        let Some(names) = &self.names else {
            return Ok(self.btf.resolve_types_by_name(name)?);
        };
        let mut types = match self.btf.split() {
            Some(split) => split
                .resolve_ids_by_name(name)?
                .into_iter()
                .map(|id| self.btf.resolve_type_by_id(id))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        // In id order, as btf_rs gives them: the first struct of a name is the one used.
        let mut ids: Vec<u32> = names.ids(name).collect();
        ids.sort_unstable();
        for id in ids {
            types.push(self.btf.resolve_type_by_id(id)?);
        }
        Ok(types)
    }
}

/// Opens the running kernel's BTF.
pub fn open_kernel_btf() -> Result<KernelBtf, LayoutError> {
    open_btf(VMLINUX_BTF)
}

/// Opens the veth module's split BTF on top of `base`, if veth is a loaded module.
pub fn open_veth_btf(base: &KernelBtf) -> Option<Result<KernelBtf, LayoutError>> {
    let path = Path::new(VETH_BTF);
    path.exists().then(|| {
        let err = |source| LayoutError::Btf {
            path: VETH_BTF.into(),
            source,
        };
        let bytes = std::fs::read(path).map_err(|e| err(e.into()))?;
        Ok(KernelBtf {
            btf: Btf::from_split_bytes(&bytes, &base.btf).map_err(err)?,
            names: base.names.clone(),
        })
    })
}

pub fn open_btf(path: impl AsRef<Path>) -> Result<KernelBtf, LayoutError> {
    let path = path.as_ref();
    let err = |source| LayoutError::Btf {
        path: path.display().to_string(),
        source,
    };
    // Mapped, only the few types looked up are parsed (~2 ms instead of ~150 ms for the
    // whole vmlinux BTF), but btf_rs scans every type for each lookup by name: the names
    // are indexed once. Older kernels cannot map sysfs BTF: read in one go then (parsing
    // through a buffered file costs a seek syscall per type), btf_rs keeps a name map.
    if let Ok(btf) = Btf::from_file_with_backend(path, btf_rs::Backend::Mmap) {
        let names = BtfNames::open(path)
            .map_err(|e| log::debug!("{}: {e}; looking names up by scanning", path.display()))
            .ok()
            .map(Arc::new);
        return Ok(KernelBtf { btf, names });
    }
    let bytes = std::fs::read(path).map_err(|e| err(e.into()))?;
    let btf = Btf::from_bytes(&bytes).map_err(err)?;
    Ok(KernelBtf { btf, names: None })
}

/// Byte offset of `member` in `struct strukt`, looking through anonymous structs and unions
/// (as `randomize_layout` and many kernel structs use).
pub fn member_offset(btf: &KernelBtf, strukt: &str, member: &str) -> Result<u32, LayoutError> {
    path_offset(btf, strukt, &[member])
}

/// Offset of a member path such as `nd_net.net`: each step looks in the previous member's
/// own type, so anonymous and typedef'd structs (`possible_net_t`) work.
pub fn path_offset(btf: &KernelBtf, strukt: &str, path: &[&str]) -> Result<u32, LayoutError> {
    let not_found = || LayoutError::NoMember {
        strukt: strukt.into(),
        member: path.join("."),
    };
    let mut current = named_struct(btf, strukt)?;
    let mut bits = 0;
    for (i, name) in path.iter().enumerate() {
        let (off, member) = find_member(&btf.btf, &current, name)?.ok_or_else(not_found)?;
        bits += off;
        if i + 1 < path.len() {
            current = aggregate_of(&btf.btf, &member)?.ok_or_else(not_found)?;
        }
    }
    if bits % 8 != 0 {
        return Err(LayoutError::Bitfield {
            strukt: strukt.into(),
            member: path.join("."),
        });
    }
    Ok(bits / 8)
}

fn named_struct(btf: &KernelBtf, strukt: &str) -> Result<btf_rs::Struct, LayoutError> {
    btf.types_named(strukt)?
        .into_iter()
        .find_map(|ty| match ty {
            Type::Struct(s) => Some(s),
            _ => None,
        })
        .ok_or_else(|| LayoutError::NoStruct(strukt.into()))
}

/// Size of `struct strukt` in bytes.
pub fn struct_size(btf: &KernelBtf, strukt: &str) -> Result<u32, LayoutError> {
    for ty in btf.types_named(strukt)? {
        if let Type::Struct(s) = ty {
            return Ok(s.size() as u32);
        }
    }
    Err(LayoutError::NoStruct(strukt.into()))
}

/// Index of the first parameter of function `func` that is a `struct strukt *`.
pub fn param_index(btf: &KernelBtf, func: &str, strukt: &str) -> Result<u32, LayoutError> {
    let (names, btf) = (btf, &btf.btf);
    let proto = names
        .types_named(func)?
        .into_iter()
        .find_map(|ty| match ty {
            Type::Func(f) => match btf.resolve_chained_type(&f) {
                Ok(Type::FuncProto(p)) => Some(p),
                _ => None,
            },
            _ => None,
        })
        .ok_or_else(|| LayoutError::NoFunc(func.into()))?;
    for (i, param) in proto.parameters.iter().enumerate() {
        if let Ok(Type::Ptr(ptr)) = btf.resolve_chained_type(param) {
            if let Some(name) = pointee_struct_name(btf, &ptr) {
                if name == strukt {
                    return Ok(i as u32);
                }
            }
        }
    }
    Err(LayoutError::NoParam {
        func: func.into(),
        strukt: strukt.into(),
    })
}

/// The struct name a pointer points to, through qualifiers and typedefs.
fn pointee_struct_name(btf: &Btf, ptr: &btf_rs::Ptr) -> Option<String> {
    let mut ty = btf.resolve_chained_type(ptr).ok()?;
    for _ in 0..8 {
        ty = match ty {
            Type::Struct(ref s) => return btf.resolve_name(s).ok(),
            Type::Const(ref t) | Type::Volatile(ref t) | Type::Restrict(ref t) => {
                btf.resolve_chained_type(t).ok()?
            }
            Type::Typedef(ref t) => btf.resolve_chained_type(t).ok()?,
            Type::TypeTag(ref t) => btf.resolve_chained_type(t).ok()?,
            _ => return None,
        };
    }
    None
}

/// Where `netdev_priv(dev)` starts: the `priv[]` flexible array on kernels that have it,
/// else just past the `NETDEV_ALIGN`-aligned struct.
pub fn netdev_priv_offset(btf: &KernelBtf) -> Result<u32, LayoutError> {
    match member_offset(btf, "net_device", "priv") {
        Ok(off) => Ok(off),
        Err(LayoutError::NoMember { .. }) => {
            let size = struct_size(btf, "net_device")?;
            Ok(size.div_ceil(NETDEV_ALIGN) * NETDEV_ALIGN)
        }
        Err(e) => Err(e),
    }
}

/// Bit offset of `name` inside `s` and the member itself, recursing into anonymous members.
fn find_member(
    btf: &Btf,
    s: &btf_rs::Struct,
    name: &str,
) -> Result<Option<(u32, btf_rs::Member)>, LayoutError> {
    for m in &s.members {
        let m_name = btf.resolve_name(m).unwrap_or_default();
        if m_name == name {
            return Ok(Some((m.bit_offset(), m.clone())));
        }
        if m_name.is_empty() {
            if let Some(inner) = aggregate_of(btf, m)? {
                if let Some((bits, found)) = find_member(btf, &inner, name)? {
                    return Ok(Some((m.bit_offset() + bits, found)));
                }
            }
        }
    }
    Ok(None)
}

/// The struct or union type of a member, through typedefs and qualifiers.
fn aggregate_of(btf: &Btf, m: &btf_rs::Member) -> Result<Option<btf_rs::Struct>, LayoutError> {
    let mut ty = btf.resolve_chained_type(m)?;
    loop {
        match ty {
            Type::Struct(s) | Type::Union(s) => return Ok(Some(s)),
            Type::Typedef(ref t) => ty = btf.resolve_chained_type(t)?,
            Type::Const(ref t) | Type::Volatile(ref t) => ty = btf.resolve_chained_type(t)?,
            _ => return Ok(None),
        }
    }
}

/// Byte offset of a field in a tracepoint record, from the text of its tracefs `format` file
/// (`field:pid_t pid;\toffset:8;\tsize:4;\tsigned:1;`).
pub fn format_field_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let decl = line.trim().strip_prefix("field:")?;
        let (decl, rest) = decl.split_once(';')?;
        // The name is the last word of the declaration, without any array suffix.
        let name = decl.split_whitespace().last()?;
        let name = name.split('[').next()?;
        if name != field {
            return None;
        }
        let off = rest
            .split(';')
            .find_map(|kv| kv.trim().strip_prefix("offset:"))?;
        off.trim().parse().ok()
    })
}

/// Fills every BTF-derived offset; `veth` is the veth module's split BTF where it has one.
fn resolve_btf(
    btf: &KernelBtf,
    veth: &KernelBtf,
    l: &mut KernelLayout,
    problems: &mut Vec<String>,
) {
    let mut set = |slot: &mut u32, r: Result<u32, LayoutError>| match r {
        Ok(v) => *slot = v,
        Err(e) => problems.push(e.to_string()),
    };
    let task = |m| member_offset(btf, "task_struct", m);
    set(&mut l.task_pid, task("pid"));
    set(&mut l.task_tgid, task("tgid"));
    set(&mut l.task_real_parent, task("real_parent"));
    set(&mut l.task_exit_code, task("exit_code"));
    set(&mut l.task_nsproxy, task("nsproxy"));
    set(&mut l.task_thread_pid, task("thread_pid"));
    set(&mut l.pid_level, member_offset(btf, "pid", "level"));
    set(&mut l.pid_numbers, member_offset(btf, "pid", "numbers"));
    set(&mut l.upid_size, struct_size(btf, "upid"));
    set(&mut l.upid_ns, member_offset(btf, "upid", "ns"));
    for (i, (member, strukt)) in NS_MEMBERS.iter().enumerate() {
        if !member.is_empty() {
            set(&mut l.nsproxy[i], member_offset(btf, "nsproxy", member));
        }
        set(&mut l.ns_inum[i], path_offset(btf, strukt, &["ns", "inum"]));
    }
    // `real_cred` (the objective credentials): `cred` can be overridden for a moment.
    set(&mut l.task_cred, task("real_cred"));
    set(&mut l.cred_user_ns, member_offset(btf, "cred", "user_ns"));
    set(
        &mut l.file_private_data,
        member_offset(btf, "file", "private_data"),
    );
    set(
        &mut l.seq_file_private,
        member_offset(btf, "seq_file", "private"),
    );
    set(&mut l.task_files, task("files"));
    set(&mut l.files_fdt, member_offset(btf, "files_struct", "fdt"));
    set(&mut l.fdtable_fd, member_offset(btf, "fdtable", "fd"));
    set(
        &mut l.file_dentry,
        path_offset(btf, "file", &["f_path", "dentry"]),
    );
    set(
        &mut l.dentry_name,
        path_offset(btf, "dentry", &["d_name", "name"]),
    );
    set(&mut l.file_inode, member_offset(btf, "file", "f_inode"));
    set(&mut l.inode_ino, member_offset(btf, "inode", "i_ino"));
    let userns = |m| member_offset(btf, "user_namespace", m);
    set(&mut l.userns_uid_map, userns("uid_map"));
    set(&mut l.userns_gid_map, userns("gid_map"));
    set(&mut l.userns_flags, userns("flags"));
    set(&mut l.userns_owner, userns("owner"));
    let map = |m| member_offset(btf, "uid_gid_map", m);
    set(&mut l.map_nr_extents, map("nr_extents"));
    set(&mut l.map_extent, map("extent"));
    set(&mut l.map_forward, map("forward"));
    l.net_inum = l.ns_inum[4];
    set(&mut l.netdev_name, member_offset(btf, "net_device", "name"));
    set(
        &mut l.netdev_ifindex,
        member_offset(btf, "net_device", "ifindex"),
    );
    set(
        &mut l.netdev_net,
        path_offset(btf, "net_device", &["nd_net", "net"]),
    );
    set(&mut l.netdev_priv, netdev_priv_offset(btf));
    set(
        &mut l.veth_priv_peer,
        member_offset(veth, "veth_priv", "peer"),
    );
    set(
        &mut l.veth_newlink_dev_arg,
        param_index(veth, "veth_newlink", "net_device"),
    );
    let devmove = "__dev_change_net_namespace";
    set(
        &mut l.devmove_dev_arg,
        param_index(btf, devmove, "net_device"),
    );
    set(&mut l.devmove_net_arg, param_index(btf, devmove, "net"));
}

/// Reads the record offsets of `fields` from tracepoint `event`'s format file.
fn format_fields(
    tracefs: &Path,
    event: &str,
    fields: &mut [(&str, &mut u32)],
    problems: &mut Vec<String>,
) {
    let path = tracefs.join("events").join(event).join("format");
    match fs::read_to_string(&path) {
        Ok(format) => {
            for (field, slot) in fields.iter_mut() {
                match format_field_offset(&format, field) {
                    Some(off) => **slot = off,
                    None => {
                        problems.push(format!("{event} has no field {field} ({})", path.display()));
                    }
                }
            }
        }
        Err(e) => problems.push(format!("reading {}: {e}", path.display())),
    }
}

/// Environment variable that deliberately skews resolved offsets (`GROUP:BYTES`, e.g.
/// `ns_inum:8`): for proving that the kernel tests fail when an offset is wrong.
pub const SKEW_ENV: &str = "TRACER_LAYOUT_SKEW";

/// Adds `bytes` to every offset of a group. Groups: `ns_inum`, `nsproxy`, `task`, `netdev`.
pub fn skew(layout: &mut KernelLayout, spec: &str) -> Result<(), String> {
    let (group, bytes) = spec
        .split_once(':')
        .ok_or_else(|| format!("{SKEW_ENV}={spec}: expected GROUP:BYTES"))?;
    let bytes: u32 = bytes
        .parse()
        .map_err(|_| format!("{SKEW_ENV}={spec}: {bytes} is not a byte count"))?;
    let fields: Vec<&mut u32> = match group {
        "ns_inum" => layout.ns_inum.iter_mut().collect(),
        "nsproxy" => layout.nsproxy.iter_mut().collect(),
        "task" => vec![
            &mut layout.task_pid,
            &mut layout.task_tgid,
            &mut layout.task_real_parent,
            &mut layout.task_nsproxy,
        ],
        "netdev" => vec![&mut layout.netdev_name, &mut layout.netdev_ifindex],
        _ => return Err(format!("{SKEW_ENV}: unknown group {group}")),
    };
    for f in fields {
        *f = f.wrapping_add(bytes);
    }
    Ok(())
}

/// This architecture's numbers of the syscalls whose tracepoints share a program.
fn syscall_nrs() -> SyscallNrs {
    // Syscall numbers are small and positive.
    let nr = |n: libc::c_long| n as u32;
    SyscallNrs {
        execve: nr(libc::SYS_execve),
        execveat: nr(libc::SYS_execveat),
        mount: nr(libc::SYS_mount),
        umount2: nr(libc::SYS_umount2),
        pivot_root: nr(libc::SYS_pivot_root),
        fsopen: nr(libc::SYS_fsopen),
        fsconfig: nr(libc::SYS_fsconfig),
        fsmount: nr(libc::SYS_fsmount),
        move_mount: nr(libc::SYS_move_mount),
        open_tree: nr(libc::SYS_open_tree),
        mount_setattr: nr(libc::SYS_mount_setattr),
        unshare: nr(libc::SYS_unshare),
        setns: nr(libc::SYS_setns),
        capset: nr(libc::SYS_capset),
        prctl: nr(libc::SYS_prctl),
        seccomp: nr(libc::SYS_seccomp),
    }
}

/// What was resolved, and what was not (and why), for `tracer` to report.
#[derive(Debug)]
pub struct Resolved {
    pub layout: KernelLayout,
    pub problems: Vec<String>,
}

/// Resolves every offset the programs use. Unresolved ones stay unknown (the
/// programs then leave the dependent fields empty) and are listed in `problems`.
pub fn resolve(btf: Option<&KernelBtf>, veth_btf: Option<&KernelBtf>, tracefs: &Path) -> Resolved {
    let mut layout = KernelLayout::UNKNOWN;
    layout.sys = syscall_nrs();
    let mut problems = Vec::new();
    match btf {
        Some(btf) => resolve_btf(btf, veth_btf.unwrap_or(btf), &mut layout, &mut problems),
        None => problems.push(format!(
            "no kernel BTF ({VMLINUX_BTF}): ppid, fork, exit codes, namespaces and veth \
             details are not observed"
        )),
    }
    let l = &mut layout;
    format_fields(
        tracefs,
        "task/task_rename",
        &mut [
            ("pid", &mut l.rename_pid),
            ("oldcomm", &mut l.rename_oldcomm),
            ("newcomm", &mut l.rename_newcomm),
        ],
        &mut problems,
    );
    // cgroup_rmdir shares cgroup_mkdir's record (the `cgroup` event class).
    format_fields(
        tracefs,
        "cgroup/cgroup_mkdir",
        &mut [
            ("root", &mut l.cgroup_root),
            ("level", &mut l.cgroup_level),
            ("id", &mut l.cgroup_id),
            ("path", &mut l.cgroup_path),
        ],
        &mut problems,
    );
    format_fields(
        tracefs,
        "oom/mark_victim",
        &mut [("pid", &mut l.oom_pid)],
        &mut problems,
    );
    format_fields(
        tracefs,
        "signal/signal_generate",
        &mut [
            ("sig", &mut l.signal_sig),
            ("code", &mut l.signal_code),
            ("pid", &mut l.signal_pid),
            ("result", &mut l.signal_result),
        ],
        &mut problems,
    );
    format_fields(
        tracefs,
        "cgroup/cgroup_attach_task",
        &mut [
            ("dst_root", &mut l.attach_root),
            ("dst_level", &mut l.attach_level),
            ("dst_id", &mut l.attach_id),
            ("pid", &mut l.attach_pid),
            ("dst_path", &mut l.attach_path),
        ],
        &mut problems,
    );
    Resolved { layout, problems }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded from this kernel (6.18) and from Debian's 6.1: the comm fields moved to
    // `__data_loc` in sched_process_fork, and task_rename kept its layout.
    const RENAME_6_18: &str = "name: task_rename\nID: 150\nformat:\n\
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
        \tfield:pid_t pid;\toffset:8;\tsize:4;\tsigned:1;\n\
        \tfield:char oldcomm[16];\toffset:12;\tsize:16;\tsigned:0;\n\
        \tfield:char newcomm[16];\toffset:28;\tsize:16;\tsigned:0;\n\
        \tfield:short oom_score_adj;\toffset:44;\tsize:2;\tsigned:1;\n";
    const FORK_6_18: &str =
        "\tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;\n\
        \tfield:pid_t parent_pid;\toffset:12;\tsize:4;\tsigned:1;\n\
        \tfield:__data_loc char[] child_comm;\toffset:16;\tsize:4;\tsigned:0;\n\
        \tfield:pid_t child_pid;\toffset:20;\tsize:4;\tsigned:1;\n";
    const FORK_6_1: &str = "\tfield:char parent_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
        \tfield:pid_t parent_pid;\toffset:24;\tsize:4;\tsigned:1;\n\
        \tfield:char child_comm[16];\toffset:28;\tsize:16;\tsigned:0;\n\
        \tfield:pid_t child_pid;\toffset:44;\tsize:4;\tsigned:1;\n";

    #[test]
    fn format_offsets_are_parsed() {
        assert_eq!(format_field_offset(RENAME_6_18, "pid"), Some(8));
        assert_eq!(format_field_offset(RENAME_6_18, "oldcomm"), Some(12));
        assert_eq!(format_field_offset(RENAME_6_18, "newcomm"), Some(28));
        assert_eq!(format_field_offset(RENAME_6_18, "common_pid"), Some(4));
        assert_eq!(format_field_offset(RENAME_6_18, "missing"), None);
        assert_eq!(format_field_offset(FORK_6_18, "child_pid"), Some(20));
        assert_eq!(format_field_offset(FORK_6_18, "child_comm"), Some(16));
        assert_eq!(format_field_offset(FORK_6_1, "child_pid"), Some(44));
        assert_eq!(format_field_offset("", "pid"), None);
        assert_eq!(format_field_offset("field:garbage", "garbage"), None);
    }

    /// Reads this machine's kernel BTF (world-readable: no root needed).
    #[test]
    fn task_struct_offsets_from_running_kernel_btf() {
        let btf = open_kernel_btf().expect("this test needs /sys/kernel/btf/vmlinux");
        let pid = member_offset(&btf, "task_struct", "pid").unwrap();
        let tgid = member_offset(&btf, "task_struct", "tgid").unwrap();
        let parent = member_offset(&btf, "task_struct", "real_parent").unwrap();
        // pid_t pid; pid_t tgid; are adjacent in every kernel since 2.6.
        assert_eq!(tgid, pid + 4);
        assert!(parent > tgid, "real_parent follows tgid");
        assert!(member_offset(&btf, "task_struct", "exit_code").is_ok());
        assert!(matches!(
            member_offset(&btf, "task_struct", "no_such_member"),
            Err(LayoutError::NoMember { .. })
        ));
        assert!(matches!(
            member_offset(&btf, "no_such_struct_xyz", "pid"),
            Err(LayoutError::NoStruct(_))
        ));
    }

    #[test]
    fn skew_moves_a_group_and_rejects_nonsense() {
        let mut l = KernelLayout::UNKNOWN;
        l.ns_inum = [16; NS_KINDS];
        skew(&mut l, "ns_inum:8").unwrap();
        assert_eq!(l.ns_inum, [24; NS_KINDS]);
        assert!(skew(&mut l, "nope:8").is_err());
        assert!(skew(&mut l, "ns_inum").is_err());
        assert!(skew(&mut l, "ns_inum:x").is_err());
    }

    #[test]
    fn member_paths_follow_typedefs_of_anonymous_structs() {
        let btf = open_kernel_btf().unwrap();
        // possible_net_t is `typedef struct { struct net *net; } possible_net_t;`
        let nd_net = member_offset(&btf, "net_device", "nd_net").unwrap();
        assert_eq!(
            path_offset(&btf, "net_device", &["nd_net", "net"]).unwrap(),
            nd_net
        );
        let ns = member_offset(&btf, "mnt_namespace", "ns").unwrap();
        let inum = member_offset(&btf, "ns_common", "inum").unwrap();
        assert_eq!(
            path_offset(&btf, "mnt_namespace", &["ns", "inum"]).unwrap(),
            ns + inum
        );
        assert!(matches!(
            path_offset(&btf, "net_device", &["nd_net", "nope"]),
            Err(LayoutError::NoMember { .. })
        ));
    }

    /// Every offset the programs use resolves on this kernel, and the values hang together.
    #[test]
    fn full_layout_resolves_on_running_kernel() {
        let btf = open_kernel_btf().unwrap();
        let veth = open_veth_btf(&btf).map(Result::unwrap);
        let tracefs = Path::new("/nonexistent-tracefs");
        let r = resolve(Some(&btf), veth.as_ref(), tracefs);
        // Only the tracefs-derived rename offsets may be missing (no tracefs given here).
        assert!(
            r.problems.iter().all(|p| p.contains("nonexistent-tracefs")),
            "{:?}",
            r.problems
        );
        let l = r.layout;
        let user = tracer_common::NsKind::User as usize;
        assert_eq!(l.nsproxy[user], tracer_common::OFFSET_UNKNOWN);
        assert!(l.ns_inum[user] < 512 && l.task_cred < 8192 && l.cred_user_ns < 256);
        let mut sorted: Vec<u32> = l.nsproxy[..user].to_vec();
        assert!(sorted.iter().all(|o| *o < 128), "{:?}", l.nsproxy);
        // nsproxy members are pointers, 8 bytes apart at least.
        sorted.sort_unstable();
        assert!(sorted.windows(2).all(|w| w[1] >= w[0] + 8));
        assert_eq!(
            l.upid_size, 16,
            "struct upid {{ int nr; struct pid_namespace *ns; }}"
        );
        assert_eq!(l.upid_ns, 8);
        assert!(l.veth_newlink_dev_arg <= 1, "{}", l.veth_newlink_dev_arg);
        assert!(l.netdev_priv > l.netdev_name);
        assert_eq!(l.netdev_name % 8, 0);
        assert_eq!((l.devmove_dev_arg, l.devmove_net_arg), (0, 1));
    }

    /// The cgroup tracepoints' fields, as this kernel's format files give them.
    #[test]
    fn cgroup_record_fields_parse() {
        let mkdir = "\tfield:int root;\toffset:8;\tsize:4;\tsigned:1;\n\
                     \tfield:int level;\toffset:12;\tsize:4;\tsigned:1;\n\
                     \tfield:u64 id;\toffset:16;\tsize:8;\tsigned:0;\n\
                     \tfield:__data_loc char[] path;\toffset:24;\tsize:4;\tsigned:0;\n";
        assert_eq!(format_field_offset(mkdir, "id"), Some(16));
        assert_eq!(format_field_offset(mkdir, "path"), Some(24));
        let attach = "\tfield:int dst_root;\toffset:8;\tsize:4;\tsigned:1;\n\
                      \tfield:int pid;\toffset:24;\tsize:4;\tsigned:1;\n\
                      \tfield:__data_loc char[] dst_path;\toffset:28;\tsize:4;\tsigned:0;\n";
        assert_eq!(format_field_offset(attach, "pid"), Some(24));
        assert_eq!(format_field_offset(attach, "dst_path"), Some(28));
    }

    /// The net_device argument of veth_newlink is found by type, whatever its position.
    #[test]
    fn veth_newlink_parameter_is_found_by_type() {
        let btf = open_kernel_btf().unwrap();
        let veth = open_veth_btf(&btf).map(Result::unwrap);
        let btf = veth.as_ref().unwrap_or(&btf);
        let idx = param_index(btf, "veth_newlink", "net_device").unwrap();
        // 6.1: (struct net *src_net, struct net_device *dev, ...); newer kernels start with
        // the device.
        let net_first = param_index(btf, "veth_newlink", "net").ok();
        match net_first {
            Some(0) => assert_eq!(idx, 1),
            _ => assert_eq!(idx, 0),
        }
        assert!(matches!(
            param_index(btf, "veth_newlink", "no_such_struct"),
            Err(LayoutError::NoParam { .. })
        ));
        assert!(matches!(
            param_index(btf, "no_such_function_xyz", "net_device"),
            Err(LayoutError::NoFunc(_))
        ));
    }

    /// Members inside anonymous unions are found with the union's offset added.
    #[test]
    fn anonymous_members_are_searched() {
        let btf = open_kernel_btf().expect("this test needs /sys/kernel/btf/vmlinux");
        // `struct page` keeps nearly everything in anonymous unions of anonymous structs.
        let off = member_offset(&btf, "page", "mapping").unwrap();
        assert!((8..64).contains(&off), "page.mapping at {off}");
    }
}
