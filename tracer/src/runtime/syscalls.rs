//! The one seam between the runtime's setup logic and the kernel: every mount, pivot_root,
//! device node and hostname call goes through [`Syscall`]. [`Real`] calls the kernel;
//! [`Recorder`] records the calls, so the container setup order is unit-testable without root.

use std::{cell::RefCell, collections::HashSet, path::Path};

use nix::{
    mount::{MntFlags, MsFlags},
    sys::stat::{Mode, SFlag},
};

/// What is at a path (for masking: a directory gets a tmpfs, anything else /dev/null).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Missing,
}

#[derive(Debug, thiserror::Error)]
#[error("{call} {what}: {source}")]
pub struct SyscallError {
    pub call: &'static str,
    pub what: String,
    pub source: std::io::Error,
}

pub type Result<T> = std::result::Result<T, SyscallError>;

fn err(
    call: &'static str,
    what: impl std::fmt::Display,
    e: impl Into<std::io::Error>,
) -> SyscallError {
    SyscallError {
        call,
        what: what.to_string(),
        source: e.into(),
    }
}

pub trait Syscall {
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()>;
    fn umount(&self, target: &Path, flags: MntFlags) -> Result<()>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()>;
    fn chdir(&self, path: &Path) -> Result<()>;
    fn chroot(&self, path: &Path) -> Result<()>;
    fn mkdir_all(&self, path: &Path) -> Result<()>;
    /// An empty file (a bind-mount target).
    fn touch(&self, path: &Path) -> Result<()>;
    fn mknod(&self, path: &Path, kind: SFlag, mode: Mode, dev: u64) -> Result<()>;
    fn symlink(&self, target: &str, link: &Path) -> Result<()>;
    fn sethostname(&self, name: &str) -> Result<()>;
    fn kind(&self, path: &Path) -> Kind;
}

/// The kernel.
pub struct Real;

impl Syscall for Real {
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        nix::mount::mount(source, target, fstype, flags, data).map_err(|e| {
            err(
                "mount",
                format!("{} on {}", source.unwrap_or("none"), target.display()),
                e,
            )
        })
    }

    fn umount(&self, target: &Path, flags: MntFlags) -> Result<()> {
        nix::mount::umount2(target, flags).map_err(|e| err("umount", target.display(), e))
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()> {
        nix::unistd::pivot_root(new_root, put_old)
            .map_err(|e| err("pivot_root", new_root.display(), e))
    }

    fn chdir(&self, path: &Path) -> Result<()> {
        nix::unistd::chdir(path).map_err(|e| err("chdir", path.display(), e))
    }

    fn chroot(&self, path: &Path) -> Result<()> {
        nix::unistd::chroot(path).map_err(|e| err("chroot", path.display(), e))
    }

    fn mkdir_all(&self, path: &Path) -> Result<()> {
        std::fs::create_dir_all(path).map_err(|e| err("mkdir", path.display(), e))
    }

    fn touch(&self, path: &Path) -> Result<()> {
        if let Some(parent) = path.parent() {
            self.mkdir_all(parent)?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| err("create", path.display(), e))
    }

    fn mknod(&self, path: &Path, kind: SFlag, mode: Mode, dev: u64) -> Result<()> {
        nix::sys::stat::mknod(path, kind, mode, dev).map_err(|e| err("mknod", path.display(), e))
    }

    fn symlink(&self, target: &str, link: &Path) -> Result<()> {
        std::os::unix::fs::symlink(target, link).map_err(|e| err("symlink", link.display(), e))
    }

    fn sethostname(&self, name: &str) -> Result<()> {
        nix::unistd::sethostname(name).map_err(|e| err("sethostname", name, e))
    }

    fn kind(&self, path: &Path) -> Kind {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Kind::Dir,
            Ok(_) => Kind::File,
            Err(_) => Kind::Missing,
        }
    }
}

/// One recorded call, with its arguments as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: String,
        target: String,
        fstype: String,
        flags: MsFlags,
        data: String,
    },
    Umount(String, MntFlags),
    PivotRoot(String, String),
    Chdir(String),
    Chroot(String),
    Mkdir(String),
    Touch(String),
    Mknod(String, u64),
    Symlink(String, String),
    Sethostname(String),
}

/// Records calls instead of making them. Paths in `files` are files, in `dirs` directories;
/// the rest are missing. `pivot_root_fails` makes pivot_root fail as on an initramfs root.
#[derive(Default)]
pub struct Recorder {
    pub calls: RefCell<Vec<Call>>,
    pub files: HashSet<String>,
    pub dirs: HashSet<String>,
    pub pivot_root_fails: bool,
}

impl Recorder {
    fn push(&self, c: Call) -> Result<()> {
        self.calls.borrow_mut().push(c);
        Ok(())
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

impl Syscall for Recorder {
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        self.push(Call::Mount {
            source: source.unwrap_or_default().into(),
            target: s(target),
            fstype: fstype.unwrap_or_default().into(),
            flags,
            data: data.unwrap_or_default().into(),
        })
    }
    fn umount(&self, target: &Path, flags: MntFlags) -> Result<()> {
        self.push(Call::Umount(s(target), flags))
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()> {
        self.push(Call::PivotRoot(s(new_root), s(put_old)))?;
        if self.pivot_root_fails {
            return Err(err("pivot_root", s(new_root), nix::errno::Errno::EINVAL));
        }
        Ok(())
    }
    fn chdir(&self, path: &Path) -> Result<()> {
        self.push(Call::Chdir(s(path)))
    }
    fn chroot(&self, path: &Path) -> Result<()> {
        self.push(Call::Chroot(s(path)))
    }
    fn mkdir_all(&self, path: &Path) -> Result<()> {
        self.push(Call::Mkdir(s(path)))
    }
    fn touch(&self, path: &Path) -> Result<()> {
        self.push(Call::Touch(s(path)))
    }
    fn mknod(&self, path: &Path, _kind: SFlag, _mode: Mode, dev: u64) -> Result<()> {
        self.push(Call::Mknod(s(path), dev))
    }
    fn symlink(&self, target: &str, link: &Path) -> Result<()> {
        self.push(Call::Symlink(target.into(), s(link)))
    }
    fn sethostname(&self, name: &str) -> Result<()> {
        self.push(Call::Sethostname(name.into()))
    }
    fn kind(&self, path: &Path) -> Kind {
        let p = s(path);
        if self.files.contains(&p) {
            Kind::File
        } else if self.dirs.contains(&p) {
            Kind::Dir
        } else {
            Kind::Missing
        }
    }
}
