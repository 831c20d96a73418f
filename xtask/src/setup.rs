//! Idempotent machine setup. Every step checks first, prints one line saying whether it was
//! already there or what it installed, and does nothing the second time.
//!
//! Versions are pinned to what builds and loads here (see README): aya 0.14 needs the nightly
//! toolchain already on the machine (never updated: a newer one uses an LLVM that bpf-linker
//! 0.13 cannot read) and bpf-linker 0.13.0 built against LLVM 22.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context as _};

use crate::tools::{self, Task};

const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
const BPF_LINKER_VERSION: &str = "0.13.0";
const TRACEFS: &str = "/sys/kernel/tracing";

/// What the README's two commands need: the build, the host tests, the VM test and the demo.
pub(crate) fn all() -> anyhow::Result<()> {
    tasks(&[Task::Build, Task::Test, Task::Vm, Task::Demo])
}

/// The toolchain pieces, then every package the tasks need (from [`crate::tools::TOOLS`]),
/// then bpf-linker and tracefs.
pub(crate) fn tasks(tasks: &[Task]) -> anyhow::Result<()> {
    nightly()?;
    rust_src()?;
    Apt::default().ensure(&tools::packages_for(tasks))?;
    bpf_linker()?;
    tracefs()?;
    if tasks.contains(&Task::Test) {
        python_tools()?;
    }
    Ok(())
}

/// Python tools the tests run, pinned, in a virtualenv of their own (the system Python
/// refuses `pip install`): rotel, a Rust OTLP collector shipped as a wheel, and
/// kubernetes-validate, which checks manifests against bundled schemas.
pub(crate) const PYTHON_TOOLS: &[(&str, &str)] =
    &[("rotel", "0.0.1a15"), ("kubernetes-validate", "1.37.0")];

/// Where they are installed.
pub(crate) fn venv() -> PathBuf {
    crate::root().join("target/venv")
}

fn python_tools() -> anyhow::Result<()> {
    let venv = venv();
    let pip = venv.join("bin/pip");
    if !pip.is_file() {
        step("venv", &format!("creating {}", venv.display()));
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    for (name, version) in PYTHON_TOOLS {
        let have = output(Command::new(&pip).args(["show", name])).unwrap_or_default();
        if have.lines().any(|l| l == format!("Version: {version}")) {
            step(name, &format!("already installed ({version})"));
            continue;
        }
        step(
            name,
            &format!("pip installing {version} into {}", venv.display()),
        );
        run(Command::new(&pip)
            .args(["install", "--quiet", &format!("{name}=={version}")])
            .stdout(std::process::Stdio::null()))?;
    }
    // The collector's binary comes without its execute bit.
    for site in std::fs::read_dir(venv.join("lib"))?.flatten() {
        let agent = site.path().join("site-packages/rotel/rotel-agent");
        if agent.is_file() {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

fn step(what: &str, outcome: &str) {
    eprintln!("setup: {what:<16} {outcome}");
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

/// Where apt's own output goes: one line per package is printed instead.
fn log_path() -> PathBuf {
    crate::root().join("target/setup.log")
}

/// apt-get, with `apt-get update` run at most once and only when something must be
/// installed; its output goes to [`log_path`].
#[derive(Default)]
struct Apt {
    updated: bool,
}

impl Apt {
    /// The installed version of each of `packages` that is installed.
    fn versions(packages: &[&str]) -> BTreeMap<String, String> {
        // dpkg-query fails when a package is unknown, but still prints the others.
        let out = Command::new("dpkg-query")
            .args(["-W", "-f=${Package} ${Version} ${db:Status-Status}\n"])
            .args(packages)
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (name, version, status) = (f.next()?, f.next()?, f.next()?);
                (status == "installed").then(|| (name.to_string(), version.to_string()))
            })
            .collect()
    }

    /// Installs those of `packages` that are missing, in one apt-get call.
    fn ensure(&mut self, packages: &[&str]) -> anyhow::Result<()> {
        let have = Self::versions(packages);
        for p in packages.iter().filter(|p| have.contains_key(**p)) {
            step(p, &format!("already installed ({})", have[*p]));
        }
        let missing: Vec<&str> = packages
            .iter()
            .copied()
            .filter(|p| !have.contains_key(*p))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let log = log_path();
        if let Some(dir) = log.parent() {
            fs::create_dir_all(dir)?;
        }
        if !self.updated {
            step(
                "apt",
                &format!("updating package lists (log: {})", log.display()),
            );
            apt(&["update", "-q"], &log)?;
            self.updated = true;
        }
        step("apt", &format!("installing {}", missing.join(" ")));
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend(&missing);
        apt(&args, &log)?;
        let now = Self::versions(&missing);
        for p in &missing {
            match now.get(*p) {
                Some(v) => step(p, &format!("installed ({v})")),
                None => bail!(
                    "{p} is still not installed after apt-get; see {}",
                    log.display()
                ),
            }
        }
        Ok(())
    }
}

/// Runs apt-get with its output appended to `log`; on failure, the end of the log is the
/// error.
fn apt(args: &[&str], log: &Path) -> anyhow::Result<()> {
    let file = fs::OpenOptions::new().create(true).append(true).open(log)?;
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .context("starting apt-get")?;
    if !status.success() {
        let text = fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        bail!(
            "apt-get {} failed ({status}); the end of {}:\n{}",
            args.join(" "),
            log.display(),
            lines[lines.len().saturating_sub(15)..].join("\n")
        );
    }
    Ok(())
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
