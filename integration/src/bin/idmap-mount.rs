//! Test helper: makes an idmapped mount, which util-linux here cannot (no `X-mount.idmap`).
//! `idmap-mount SRC DST USERNS_PID`: clones the mount at SRC (`open_tree`), maps its ids
//! through the user namespace of USERNS_PID (`mount_setattr` with `MOUNT_ATTR_IDMAP`) and
//! attaches it at DST (`move_mount`). Prints `idmapped user:[INODE]`, or exits 3 with
//! `unsupported: ...` when the kernel or the filesystem cannot (5.10 has no mount_setattr;
//! tmpfs takes idmaps from 6.3). Run it in a mount namespace of its own.

use std::{ffi::CString, os::fd::AsRawFd as _, process::ExitCode};

fn fail(what: &str) -> ExitCode {
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOSYS | libc::EINVAL) => {
            println!("unsupported: {what}: {e}");
            ExitCode::from(3)
        }
        _ => {
            eprintln!("idmap-mount: {what}: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dst, pid] = args.as_slice() else {
        eprintln!("usage: idmap-mount SRC DST USERNS_PID");
        return ExitCode::from(2);
    };
    let userns = match std::fs::File::open(format!("/proc/{pid}/ns/user")) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("idmap-mount: /proc/{pid}/ns/user: {e}");
            return ExitCode::from(1);
        }
    };
    let (src, dst, empty) = (
        CString::new(src.as_str()).unwrap(),
        CString::new(dst.as_str()).unwrap(),
        CString::new("").unwrap(),
    );
    // SAFETY: raw syscalls with valid C strings and a struct of the size given.
    unsafe {
        let tree = libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            src.as_ptr(),
            libc::OPEN_TREE_CLONE | libc::O_CLOEXEC as u32,
        );
        if tree < 0 {
            return fail("open_tree");
        }
        let attr = libc::mount_attr {
            attr_set: libc::MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns.as_raw_fd() as u64,
        };
        if libc::syscall(
            libc::SYS_mount_setattr,
            tree,
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &raw const attr,
            size_of::<libc::mount_attr>(),
        ) < 0
        {
            return fail("mount_setattr");
        }
        if libc::syscall(
            libc::SYS_move_mount,
            tree,
            empty.as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        ) < 0
        {
            return fail("move_mount");
        }
    }
    let inode = std::os::unix::fs::MetadataExt::ino(&userns.metadata().unwrap());
    println!("idmapped user:[{inode}]");
    ExitCode::SUCCESS
}
