//! Idempotent machine setup. Every step checks first, prints one line saying whether it was
//! already there or what it installed, and does nothing the second time.
//!
//! Versions are pinned to what builds and loads here (see README): aya 0.14 needs the nightly
//! toolchain already on the machine (never updated: a newer one uses an LLVM that bpf-linker
//! 0.13 cannot read) and bpf-linker 0.13.0 built against LLVM 22.

use std::{path::Path, process::Command};

use anyhow::{bail, Context as _};

const LLVM_PACKAGE: &str = "llvm-22-dev";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
const BPF_LINKER_VERSION: &str = "0.13.0";
const TRACEFS: &str = "/sys/kernel/tracing";

pub fn all() -> anyhow::Result<()> {
    nightly()?;
    rust_src()?;
    let mut apt = Apt::default();
    apt.ensure(LLVM_PACKAGE)?;
    // Tools the root tests drive: unshare, setpriv (util-linux), mount.
    for (tool, package) in [
        ("unshare", "util-linux"),
        ("setpriv", "util-linux"),
        ("mount", "mount"),
    ] {
        if which(tool).is_none() {
            apt.ensure(package)?;
        } else {
            step(tool, "already installed");
        }
    }
    bpf_linker()?;
    tracefs()?;
    Ok(())
}

/// What `vm-test` needs besides the build: QEMU, busybox, depmod, cpio, xz.
pub fn vm_tools() -> anyhow::Result<()> {
    let mut apt = Apt::default();
    for package in [
        "qemu-system-x86",
        "busybox-static",
        "kmod",
        "cpio",
        "xz-utils",
    ] {
        apt.ensure(package)?;
    }
    Ok(())
}

/// What `bench` measures against: the peers (bpftrace, libbpf-tools' execsnoop, runc, crun),
/// the containers' rootfs (busybox-static) and the JSON reader used as a reference.
pub fn bench_tools() -> anyhow::Result<()> {
    let mut apt = Apt::default();
    for package in [
        "bpftrace",
        "libbpf-tools",
        "runc",
        "crun",
        "busybox-static",
        "python3",
    ] {
        apt.ensure(package)?;
    }
    Ok(())
}

fn step(what: &str, outcome: &str) {
    eprintln!("setup: {what:<14} {outcome}");
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn nightly() -> anyhow::Result<()> {
    match output(Command::new("rustup").args(["run", "nightly", "rustc", "--version"])) {
        Some(v) => {
            step("nightly", &format!("present ({})", v.trim()));
            Ok(())
        }
        None => bail!(
            "the nightly Rust toolchain is missing; it must be the one whose LLVM matches \
             bpf-linker's (LLVM 22): install a nightly from 2026-05 (e.g. `rustup toolchain \
             install nightly-2026-05-19` and alias it as `nightly`)"
        ),
    }
}

fn rust_src() -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .unwrap_or_default();
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        step("rust-src", "already installed for nightly");
        return Ok(());
    }
    step(
        "rust-src",
        "installing for nightly (needed by -Z build-std=core)",
    );
    run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

/// apt-get, with `apt-get update` run at most once and only when something must be installed.
#[derive(Default)]
struct Apt {
    updated: bool,
}

impl Apt {
    fn installed(package: &str) -> bool {
        output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
            .is_some_and(|s| s.trim() == "install ok installed")
    }

    fn ensure(&mut self, package: &str) -> anyhow::Result<()> {
        if Self::installed(package) {
            step(package, "already installed");
            return Ok(());
        }
        if !self.updated {
            step("apt", "updating package lists");
            run(Command::new("apt-get").arg("update").arg("-q"))?;
            self.updated = true;
        }
        step(package, "installing");
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive"))
    }
}

fn bpf_linker() -> anyhow::Result<()> {
    let want = format!("bpf-linker {BPF_LINKER_VERSION}");
    let have = output(Command::new("bpf-linker").arg("--version")).unwrap_or_default();
    if have.trim() == want {
        step("bpf-linker", &format!("already installed ({want})"));
        return Ok(());
    }
    step(
        "bpf-linker",
        &format!("installing {BPF_LINKER_VERSION} against LLVM 22 (about 80 s)"),
    );
    run(Command::new("cargo")
        .args([
            "install",
            "--locked",
            "--force",
            "bpf-linker",
            "--version",
            BPF_LINKER_VERSION,
            "--no-default-features",
            "--features",
            "llvm-22",
        ])
        .env("LLVM_PREFIX", LLVM_PREFIX))?;
    if which("bpf-linker").is_none() {
        bail!("bpf-linker was installed but is not on PATH; add ~/.cargo/bin to PATH");
    }
    Ok(())
}

fn tracefs() -> anyhow::Result<()> {
    if Path::new(TRACEFS).join("events").is_dir() {
        step("tracefs", &format!("already mounted on {TRACEFS}"));
        return Ok(());
    }
    step("tracefs", &format!("mounting on {TRACEFS}"));
    run(Command::new("mount").args(["-t", "tracefs", "tracefs", TRACEFS]))
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}
