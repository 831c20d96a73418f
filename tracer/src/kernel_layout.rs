//! Kernel layout facts the programs need, resolved from the running kernel at load time:
//! struct member offsets from BTF and tracepoint record offsets from tracefs `format` files.
//! Rust eBPF programs get no CO-RE relocations, so nothing here may be baked in at build time.

use std::{fs, path::Path};

use btf_rs::{Btf, Type};
use tracer_common::KernelLayout;

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("reading kernel BTF {path}: {source}")]
    Btf { path: String, source: btf_rs::Error },
    #[error("BTF has no struct {0}")]
    NoStruct(String),
    #[error("struct {strukt} has no member {member}")]
    NoMember { strukt: String, member: String },
    #[error("{strukt}.{member} is a bitfield")]
    Bitfield { strukt: String, member: String },
    #[error("BTF lookup failed: {0}")]
    Lookup(#[from] btf_rs::Error),
}

/// Opens the running kernel's BTF.
pub fn open_kernel_btf() -> Result<Btf, LayoutError> {
    open_btf(VMLINUX_BTF)
}

pub fn open_btf(path: impl AsRef<Path>) -> Result<Btf, LayoutError> {
    let path = path.as_ref();
    Btf::from_file(path).map_err(|source| LayoutError::Btf {
        path: path.display().to_string(),
        source,
    })
}

/// Byte offset of `member` in `struct strukt`, looking through anonymous structs and unions
/// (as `randomize_layout` and many kernel structs use).
pub fn member_offset(btf: &Btf, strukt: &str, member: &str) -> Result<u32, LayoutError> {
    for ty in btf.resolve_types_by_name(strukt)? {
        if let Type::Struct(s) = ty {
            if let Some(bits) = find_member(btf, &s, member)? {
                if bits % 8 != 0 {
                    return Err(LayoutError::Bitfield {
                        strukt: strukt.into(),
                        member: member.into(),
                    });
                }
                return Ok(bits / 8);
            }
            return Err(LayoutError::NoMember {
                strukt: strukt.into(),
                member: member.into(),
            });
        }
    }
    Err(LayoutError::NoStruct(strukt.into()))
}

/// Bit offset of `name` inside `s`, recursing into anonymous members.
fn find_member(btf: &Btf, s: &btf_rs::Struct, name: &str) -> Result<Option<u32>, LayoutError> {
    for m in &s.members {
        let m_name = btf.resolve_name(m).unwrap_or_default();
        if m_name == name {
            return Ok(Some(m.bit_offset()));
        }
        if m_name.is_empty() {
            if let Some(inner) = anonymous_aggregate(btf, m)? {
                if let Some(bits) = find_member(btf, &inner, name)? {
                    return Ok(Some(m.bit_offset() + bits));
                }
            }
        }
    }
    Ok(None)
}

/// The struct or union type of an anonymous member, through typedefs and qualifiers.
fn anonymous_aggregate(
    btf: &Btf,
    m: &btf_rs::Member,
) -> Result<Option<btf_rs::Struct>, LayoutError> {
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

/// What was resolved, and what was not (and why), for `tracer` to report.
#[derive(Debug)]
pub struct Resolved {
    pub layout: KernelLayout,
    pub problems: Vec<String>,
}

/// Resolves every offset the programs use. Unresolved ones stay unknown (the
/// programs then leave the dependent fields empty) and are listed in `problems`.
pub fn resolve(btf: Option<&Btf>, tracefs: &Path) -> Resolved {
    let mut layout = KernelLayout::UNKNOWN;
    let mut problems = Vec::new();
    match btf {
        Some(btf) => {
            let task = [
                ("pid", &mut layout.task_pid),
                ("tgid", &mut layout.task_tgid),
                ("real_parent", &mut layout.task_real_parent),
                ("exit_code", &mut layout.task_exit_code),
            ];
            for (member, slot) in task {
                match member_offset(btf, "task_struct", member) {
                    Ok(off) => *slot = off,
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
        None => problems.push(format!(
            "no kernel BTF ({VMLINUX_BTF}): ppid, fork and exit codes are not observed"
        )),
    }
    let format_path = tracefs.join("events/task/task_rename/format");
    match fs::read_to_string(&format_path) {
        Ok(format) => {
            let fields = [
                ("pid", &mut layout.rename_pid),
                ("oldcomm", &mut layout.rename_oldcomm),
                ("newcomm", &mut layout.rename_newcomm),
            ];
            for (field, slot) in fields {
                match format_field_offset(&format, field) {
                    Some(off) => *slot = off,
                    None => problems.push(format!(
                        "task_rename has no field {field} ({})",
                        format_path.display()
                    )),
                }
            }
        }
        Err(e) => problems.push(format!("reading {}: {e}", format_path.display())),
    }
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

    /// Members inside anonymous unions are found with the union's offset added.
    #[test]
    fn anonymous_members_are_searched() {
        let btf = open_kernel_btf().expect("this test needs /sys/kernel/btf/vmlinux");
        // `struct page` keeps nearly everything in anonymous unions of anonymous structs.
        let off = member_offset(&btf, "page", "mapping").unwrap();
        assert!((8..64).contains(&off), "page.mapping at {off}");
    }
}
