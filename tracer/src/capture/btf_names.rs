//! The type ids of a kernel BTF by name, found in one pass over its type section.
//!
//! btf_rs's mapped backend scans every type of vmlinux for each lookup by name (8.7 M
//! instructions each; the layout makes 51, which was most of getting ready), and its cached
//! backend parses every type up front (~150 ms). This index reads only each type's name.

use std::hash::BuildHasher;

/// Named types of one (base) BTF, chained by the hash of their names: `heads[hash & mask]`
/// is one past the last entry of that bucket, each entry one past the one before it (0
/// ends a chain). Building it is one push per type; sorting by hash cost as much again.
pub(super) struct BtfNames {
    data: Data,
    strings: std::ops::Range<usize>,
    heads: Vec<u32>,
    entries: Vec<Entry>,
}

struct Entry {
    id: u32,
    name_off: u32,
    next: u32,
}

enum Data {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl std::ops::Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Data::Mapped(m) => m,
            Data::Read(v) => v,
        }
    }
}

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;

fn hasher() -> foldhash::fast::FixedState {
    foldhash::fast::FixedState::with_seed(0x6274_665f_6e61_6d65)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Bytes that follow a type's 12-byte record, by kind (`include/uapi/linux/btf.h`).
fn trailing(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        2 | 7..=12 | 16 | 18 => 0, // ptr, fwd, typedef, qualifiers, func, float, type tag
        1 | 14 | 17 => 4,          // int, var, decl tag
        3 => 12,                   // array
        4 | 5 | 15 | 19 => vlen * 12, // struct, union, datasec, enum64
        6 | 13 => vlen * 8,        // enum, func proto
        _ => return None,
    })
}

impl BtfNames {
    /// Maps (or, where sysfs cannot map it, reads) the BTF at `path` and indexes its names.
    pub(super) fn open(path: &std::path::Path) -> Result<Self, String> {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        // Private: sysfs refuses a shared mapping of BTF.
        // SAFETY: the kernel's BTF does not change while it is mapped.
        let data = match unsafe { memmap2::MmapOptions::new().map_copy_read_only(&file) } {
            Ok(m) => Data::Mapped(m),
            Err(_) => Data::Read(std::fs::read(path).map_err(|e| e.to_string())?),
        };
        Self::index(data)
    }

    /// Indexes a base BTF held in memory.
    #[cfg(test)]
    fn from_bytes(bytes: Vec<u8>) -> Result<Self, String> {
        Self::index(Data::Read(bytes))
    }

    fn index(data: Data) -> Result<Self, String> {
        let bad = |what: &str| format!("BTF name index: {what}");
        let b: &[u8] = &data;
        if b.len() < HEADER_LEN || u16::from_ne_bytes([b[0], b[1]]) != MAGIC {
            return Err(bad("not native-endian BTF"));
        }
        let field = |at| {
            u32_at(b, at)
                .map(|v| v as usize)
                .ok_or_else(|| bad("short header"))
        };
        let hdr_len = field(4)?;
        let (type_off, type_len) = (field(8)?, field(12)?);
        let (str_off, str_len) = (field(16)?, field(20)?);
        let types = hdr_len + type_off..hdr_len + type_off + type_len;
        let strings = hdr_len + str_off..hdr_len + str_off + str_len;
        if types.end > b.len() || strings.end > b.len() {
            return Err(bad("sections past the end"));
        }
        let names = &b[strings.clone()];
        let state = hasher();
        // Twice the types at most (a record is at least 12 bytes): chains stay short.
        let buckets = (type_len / 12).max(1).next_power_of_two();
        let mut heads = vec![0u32; buckets];
        let mut entries = Vec::with_capacity(type_len / 24);
        let mut at = types.start;
        // Type ids start at 1 (0 is void).
        let mut id = 1u32;
        while at < types.end {
            let (name_off, info) = u32_at(b, at)
                .zip(u32_at(b, at + 4))
                .ok_or_else(|| bad("type record past the end"))?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let more = trailing(kind, vlen).ok_or_else(|| bad("unknown type kind"))?;
            if name_off != 0 {
                if let Some(name) = names.get(name_off as usize..).and_then(until_nul) {
                    let head = &mut heads[state.hash_one(name) as usize & (buckets - 1)];
                    entries.push(Entry {
                        id,
                        name_off,
                        next: *head,
                    });
                    *head = entries.len() as u32;
                }
            }
            at += 12 + more;
            id += 1;
        }
        if at != types.end {
            return Err(bad("type section ends inside a type"));
        }
        Ok(Self {
            data,
            strings,
            heads,
            entries,
        })
    }

    /// The ids of the types named `name`, the last first.
    pub(super) fn ids<'a>(&'a self, name: &'a str) -> impl Iterator<Item = u32> + 'a {
        let bucket = hasher().hash_one(name.as_bytes()) as usize & (self.heads.len() - 1);
        let names = &self.data[self.strings.clone()];
        let mut next = self.heads[bucket];
        std::iter::from_fn(move || {
            while let Some(e) = next.checked_sub(1).map(|i| &self.entries[i as usize]) {
                next = e.next;
                if names.get(e.name_off as usize..).and_then(until_nul) == Some(name.as_bytes()) {
                    return Some(e.id);
                }
            }
            None
        })
    }
}

fn until_nul(b: &[u8]) -> Option<&[u8]> {
    memchr::memchr(0, b).map(|end| &b[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF with: 1 int "int", 2 struct "task" (two members), 3 ptr, 4 func proto (one
    /// parameter), 5 func "task" (a second type of the same name), 6 enum (anonymous).
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0task\0a\0b\0".to_vec();
        let mut types = Vec::new();
        let mut ty = |name: u32, kind: u32, vlen: u32, size_type: u32, extra: &[u32]| {
            for v in [name, kind << 24 | vlen, size_type].iter().chain(extra) {
                types.extend_from_slice(&v.to_ne_bytes());
            }
        };
        ty(1, 1, 0, 4, &[32]);
        ty(5, 4, 2, 8, &[10, 1, 0, 12, 1, 32]);
        ty(0, 2, 0, 2, &[]);
        ty(0, 13, 1, 1, &[0, 3]);
        ty(5, 12, 0, 4, &[]);
        ty(0, 6, 1, 4, &[10, 7]);
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_ne_bytes());
        b.extend_from_slice(&[1, 0]);
        for v in [HEADER_LEN as u32, 0, types.len() as u32, types.len() as u32] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(&(strings.len() as u32).to_ne_bytes());
        b.extend_from_slice(&types);
        b.extend_from_slice(&strings);
        b
    }

    #[test]
    fn names_give_every_id_of_that_name() {
        let names = BtfNames::from_bytes(sample()).unwrap();
        assert_eq!(names.ids("int").collect::<Vec<_>>(), [1]);
        assert_eq!(names.ids("task").collect::<Vec<_>>(), [5, 2]);
        assert_eq!(names.ids("ta").count(), 0);
        assert_eq!(names.ids("a").count(), 0, "member names are not type names");
        // The sample agrees with btf_rs, which reads every type in full.
        let btf = btf_rs::Btf::from_bytes(&sample()).unwrap();
        assert_eq!(btf.resolve_ids_by_name("task").unwrap(), [2, 5]);
    }

    #[test]
    fn a_cut_or_foreign_section_is_refused() {
        let mut cut = sample();
        cut.truncate(cut.len() - 20);
        assert!(BtfNames::from_bytes(cut).is_err());
        let mut unknown = sample();
        unknown[HEADER_LEN + 7] = 31; // first type's kind
        assert!(BtfNames::from_bytes(unknown).is_err());
        assert!(BtfNames::from_bytes(b"not btf at all, not at all".to_vec()).is_err());
    }

    /// Root-free: reads the running kernel's BTF where it is readable, and checks every
    /// lookup the layout makes against btf_rs's own scan.
    #[test]
    fn kernel_names_match_btf_rs() {
        let path = std::path::Path::new(super::super::kernel_layout::VMLINUX_BTF);
        let Ok(names) = BtfNames::open(path) else {
            eprintln!("no readable {}: skipped", path.display());
            return;
        };
        // Older kernels cannot map sysfs BTF: btf_rs reads it in full there.
        let btf = btf_rs::Btf::from_file_with_backend(path, btf_rs::Backend::Mmap)
            .or_else(|_| btf_rs::Btf::from_file(path))
            .unwrap();
        for name in [
            "task_struct",
            "nsproxy",
            "net_device",
            "upid",
            "__dev_change_net_namespace",
        ] {
            let mut ours: Vec<u32> = names.ids(name).collect();
            ours.sort_unstable();
            let mut theirs = btf.resolve_ids_by_name(name).unwrap();
            theirs.sort_unstable();
            assert!(!ours.is_empty(), "{name}");
            assert_eq!(ours, theirs, "{name}");
        }
    }
}
