//! Where the container's root filesystem comes from, as overlay lower layers: a directory
//! (`--rootfs`), or by default a small skeleton with the host's `/usr` bind-mounted read-only,
//! so `tracer run -- echo hi` needs no download.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _};
use nix::mount::MsFlags;

use super::rootfs::MountSpec;

/// The lower layers, and mounts the image needs inside the container.
pub struct Image {
    pub lowerdirs: Vec<PathBuf>,
    pub mounts: Vec<MountSpec>,
    /// `PATH` to give the command when the image says nothing.
    pub default_path: String,
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A directory used read-only as the single lower layer.
pub fn rootfs_dir(dir: &Path) -> anyhow::Result<Image> {
    let meta = fs::metadata(dir).with_context(|| format!("rootfs {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("rootfs {} is not a directory", dir.display());
    }
    Ok(Image {
        lowerdirs: vec![fs::canonicalize(dir)?],
        mounts: Vec::new(),
        default_path: DEFAULT_PATH.into(),
    })
}

/// Where the built-in image's skeleton is kept between runs, as image layers are.
pub const SKELETON_CACHE: &str = "/var/lib/tracer/skeleton";

/// The built-in image: a skeleton from `cache` (merged-/usr symlinks, `/etc` basics) plus the
/// host's `/usr`, bind-mounted read-only.
pub fn host(cache: &Path) -> anyhow::Result<Image> {
    let dir =
        skeleton(cache).with_context(|| format!("the skeleton image in {}", cache.display()))?;
    Ok(Image {
        lowerdirs: vec![dir],
        mounts: vec![MountSpec {
            source: "/usr".into(),
            destination: "/usr".into(),
            fstype: String::new(),
            flags: (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY).bits(),
            data: String::new(),
        }],
        default_path: DEFAULT_PATH.into(),
    })
}

/// The skeleton for the host's `/etc` as it is now: built once (into a temporary directory,
/// then renamed, so concurrent runs never see half of one) and reused until what it copies
/// changes. Building it took most of a run (copying `/etc/alternatives`). Older ones are
/// removed.
fn skeleton(cache: &Path) -> anyhow::Result<PathBuf> {
    let dir = cache.join(format!("{:016x}", skeleton_key()));
    if dir.is_dir() {
        return Ok(dir);
    }
    fs::create_dir_all(cache)?;
    let tmp = cache.join(format!(".building-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    if let Err(e) = build_skeleton(&tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if let Err(e) = fs::rename(&tmp, &dir) {
        let _ = fs::remove_dir_all(&tmp);
        // Another run made the same one first.
        if !dir.is_dir() {
            return Err(e.into());
        }
    }
    for e in fs::read_dir(cache)?.filter_map(Result::ok) {
        let name = e.file_name();
        let stale_build = name
            .to_str()
            .and_then(|n| n.strip_prefix(".building-"))
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if (e.path() != dir && !name.to_string_lossy().starts_with('.')) || stale_build {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    Ok(dir)
}

/// What the skeleton is made of, in one number: which `/usr` directories it links to, and the
/// size and time of each `/etc` entry it copies.
fn skeleton_key() -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    // Bumped when the skeleton's contents change in this code.
    1u32.hash(&mut h);
    for l in USR_LINKS {
        Path::new("/usr").join(l).exists().hash(&mut h);
    }
    for f in [
        "/etc/alternatives",
        "/etc/ld.so.cache",
        "/etc/nsswitch.conf",
    ] {
        if let Ok(m) = fs::metadata(f) {
            use std::os::unix::fs::MetadataExt as _;
            (m.len(), m.mtime(), m.mtime_nsec(), m.ino()).hash(&mut h);
        }
    }
    h.finish()
}

const USR_LINKS: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

fn build_skeleton(dir: &Path) -> anyhow::Result<()> {
    for d in [
        "usr", "etc", "proc", "sys", "dev", "tmp", "root", "run", "var/tmp", "home",
    ] {
        fs::create_dir_all(dir.join(d))?;
    }
    for l in USR_LINKS {
        if Path::new("/usr").join(l).exists() {
            symlink(format!("usr/{l}"), dir.join(l))?;
        }
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    )?;
    fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    fs::write(
        dir.join("etc/hosts"),
        "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
    )?;
    // Debian's alternatives (/usr/bin/awk -> /etc/alternatives/awk -> /usr/bin/mawk).
    let alternatives = Path::new("/etc/alternatives");
    if let Ok(entries) = fs::read_dir(alternatives) {
        fs::create_dir_all(dir.join("etc/alternatives"))?;
        for e in entries.filter_map(Result::ok) {
            if let Ok(target) = fs::read_link(e.path()) {
                let _ = symlink(target, dir.join("etc/alternatives").join(e.file_name()));
            }
        }
    }
    // Shared libraries are found through /usr; the loader cache lives in /etc.
    for f in ["ld.so.cache", "nsswitch.conf"] {
        let host = Path::new("/etc").join(f);
        if host.exists() {
            fs::copy(&host, dir.join("etc").join(f))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built once, reused as is, and what an older build left is removed.
    #[test]
    fn the_skeleton_is_built_once_and_reused() {
        let cache = tempfile::tempdir().unwrap();
        let old = cache.path().join("0000000000000000");
        fs::create_dir_all(old.join("etc")).unwrap();
        let first = skeleton(cache.path()).unwrap();
        assert!(first.join("etc/passwd").is_file());
        assert!(fs::symlink_metadata(first.join("bin"))
            .unwrap()
            .is_symlink());
        assert!(!old.exists(), "the older skeleton is removed");
        // A mark inside survives: the second run builds nothing.
        fs::write(first.join("mark"), "").unwrap();
        let second = skeleton(cache.path()).unwrap();
        assert_eq!(first, second);
        assert!(second.join("mark").exists());
        let names: Vec<_> = fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
