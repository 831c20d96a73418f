//! Test helper: calls each syscall whose tracepoints share a kernel program with others of
//! its family (exec, mount, namespaces, security), once, and prints what it did, one line
//! each: `NAME RESULT` (for an exec, `NAME PID` of the child that made it). A syscall this
//! kernel lacks prints `NAME unsupported`. Makes its own mount and UTS namespaces first (and
//! stops when it cannot), and ends with a pivot_root in them: the host is left as it was.
//! `syscall-families DIR`: an empty directory to mount on.

use std::{ffi::CString, os::unix::ffi::OsStrExt as _, path::Path, process::ExitCode};

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

fn path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL")
}

/// Prints the call's result (the errno negated on failure) and returns it.
fn report(name: &str, ret: libc::c_long) -> libc::c_long {
    let ret = if ret < 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if errno == libc::ENOSYS {
            println!("{name} unsupported");
            return -1;
        }
        -libc::c_long::from(errno)
    } else {
        ret
    };
    println!("{name} {ret}");
    ret
}

/// Runs `/bin/true` by `execve` or `execveat` in a child; prints the child's pid.
fn exec_child(name: &str, at: bool) {
    let prog = c("/bin/true");
    let argv = [prog.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: fork in a single-threaded process; the child only execs or exits.
    match unsafe { libc::fork() } {
        0 => {
            // SAFETY: valid NUL-terminated arrays.
            unsafe {
                if at {
                    libc::syscall(
                        libc::SYS_execveat,
                        libc::AT_FDCWD,
                        prog.as_ptr(),
                        argv.as_ptr(),
                        envp.as_ptr(),
                        0,
                    );
                } else {
                    libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr());
                }
                libc::_exit(127);
            }
        }
        pid if pid > 0 => {
            let mut status = 0;
            // SAFETY: our child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            println!("{name} {pid}");
        }
        _ => panic!("fork: {}", std::io::Error::last_os_error()),
    }
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: syscall-families DIR");
        return ExitCode::from(2);
    };
    let dir = Path::new(&dir);
    let (new, root) = (dir.join("new"), dir.join("root"));
    for d in [&new, &root] {
        std::fs::create_dir_all(d).expect("making the mount points");
    }
    let (new_c, root_c) = (path(&new), path(&root));
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY: plain syscalls on valid NUL-terminated strings and structs of ours.
    unsafe {
        // Everything after happens in these namespaces, or not at all: on the host's mount
        // namespace the pivot_root would move every process's root.
        if report(
            "unshare",
            libc::c_long::from(libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUTS)),
        ) != 0
            || report(
                "mount",
                libc::c_long::from(libc::mount(
                    none,
                    c("/").as_ptr(),
                    none,
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                )),
            ) != 0
        {
            eprintln!("syscall-families: no mount namespace of its own: stopping");
            return ExitCode::from(1);
        }
        let fs = report(
            "fsopen",
            libc::syscall(libc::SYS_fsopen, c("tmpfs").as_ptr(), 0),
        );
        if fs >= 0 {
            report(
                "fsconfig",
                libc::syscall(
                    libc::SYS_fsconfig,
                    fs,
                    libc::FSCONFIG_SET_STRING,
                    c("size").as_ptr(),
                    c("1m").as_ptr(),
                    0,
                ),
            );
            libc::syscall(
                libc::SYS_fsconfig,
                fs,
                libc::FSCONFIG_CMD_CREATE,
                none,
                none,
                0,
            );
            let m = report("fsmount", libc::syscall(libc::SYS_fsmount, fs, 0, 0));
            report(
                "move_mount",
                libc::syscall(
                    libc::SYS_move_mount,
                    m,
                    c("").as_ptr(),
                    libc::AT_FDCWD,
                    new_c.as_ptr(),
                    libc::MOVE_MOUNT_F_EMPTY_PATH,
                ),
            );
        }
        let tree = report(
            "open_tree",
            libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                new_c.as_ptr(),
                libc::OPEN_TREE_CLONE,
            ),
        );
        if tree >= 0 {
            let attr = libc::mount_attr {
                attr_set: libc::MOUNT_ATTR_RDONLY,
                attr_clr: 0,
                propagation: 0,
                userns_fd: 0,
            };
            report(
                "mount_setattr",
                libc::syscall(
                    libc::SYS_mount_setattr,
                    tree,
                    c("").as_ptr(),
                    libc::AT_EMPTY_PATH,
                    &raw const attr,
                    size_of::<libc::mount_attr>(),
                ),
            );
        }
        report(
            "umount2",
            libc::c_long::from(libc::umount2(new_c.as_ptr(), libc::MNT_DETACH)),
        );
        // capset with the values capget reads: nothing changes.
        let mut header = [0x2008_0522u32, 0]; // _LINUX_CAPABILITY_VERSION_3, this process
        let mut data = [0u32; 6];
        libc::syscall(libc::SYS_capget, header.as_mut_ptr(), data.as_mut_ptr());
        report(
            "capset",
            libc::syscall(libc::SYS_capset, header.as_mut_ptr(), data.as_ptr()),
        );
        // Not a security option: never reported.
        libc::prctl(libc::PR_SET_NAME, c("families").as_ptr());
        report(
            "prctl",
            libc::c_long::from(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)),
        );
        // A filter that allows everything.
        let allow = [libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        }];
        let prog = libc::sock_fprog {
            len: 1,
            filter: allow.as_ptr().cast_mut(),
        };
        report(
            "seccomp",
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &raw const prog,
            ),
        );
        let uts = libc::open(c("/proc/self/ns/uts").as_ptr(), libc::O_RDONLY);
        report(
            "setns",
            libc::c_long::from(libc::setns(uts, libc::CLONE_NEWUTS)),
        );
    }
    exec_child("execve", false);
    exec_child("execveat", true);
    // SAFETY: as above; last, as it changes this process's root.
    unsafe {
        let tmpfs = c("tmpfs");
        libc::mount(
            tmpfs.as_ptr(),
            root_c.as_ptr(),
            tmpfs.as_ptr(),
            0,
            std::ptr::null(),
        );
        let old = root.join("old");
        libc::mkdir(path(&old).as_ptr(), 0o700);
        report(
            "pivot_root",
            libc::syscall(libc::SYS_pivot_root, root_c.as_ptr(), path(&old).as_ptr()),
        );
    }
    ExitCode::SUCCESS
}
