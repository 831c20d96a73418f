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

/// The built-in image: a skeleton in `dir` (merged-/usr symlinks, `/etc` basics) plus the
/// host's `/usr`, bind-mounted read-only.
pub fn host(dir: &Path) -> anyhow::Result<Image> {
    for d in [
        "usr", "etc", "proc", "sys", "dev", "tmp", "root", "run", "var/tmp", "home",
    ] {
        fs::create_dir_all(dir.join(d))?;
    }
    for l in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
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
    Ok(Image {
        lowerdirs: vec![dir.to_path_buf()],
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
