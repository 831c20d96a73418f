//! `cargo xtask`: project tasks. `setup` installs what the build and tests need (idempotent:
//! each step checks first and says what it did); `test` runs every check; `demo` runs the
//! main job.

mod bench;
mod setup;
mod tools;
mod vm;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{bail, Context as _};

const USAGE: &str = "usage: cargo xtask <setup|tools|test|demo|vm-test|image|bench>

  setup   install what is missing for test and demo: rust-src for nightly, the Debian
          packages of every program they run (see `tools`; apt's output goes to
          target/setup.log), bpf-linker 0.13.0 (LLVM 22), a tracefs mount; one line per step
  tools   list every external program the tasks run, its package and who needs it
  test    setup, then cargo fmt --check, clippy, the unit and fixture tests (what plain
          `cargo test` runs, no root needed), the root tests of integration/ that load the
          eBPF programs into this kernel and start containers, and vm-test; run as root
  demo    setup, build, then show how events are observed here (tracer check), and launch
          a container with the built-in runtime: each phase of its launch explained
          (tracer run --explain) and its lifecycle table (run as root)
  vm-test boot Debian's stock kernels in QEMU (5.10, 6.1 and 6.12; --kernel X for one)
          and run the kernel tests on each, where the designed kprobe hooks exist (part of
          `test`); any kernel's failure fails the step
  image   build the tracer's OCI image offline (the release binary and the libraries it
          links, FROM scratch) into Docker as tracer:VERSION, and save it to
          target/image/tracer.tar (needs dockerd running)
";

fn main() -> ExitCode {
    let task = std::env::args().nth(1);
    let result = match task.as_deref() {
        Some("setup") => setup::all(),
        Some("tools") => {
            tools::print();
            Ok(())
        }
        Some("test") => test(),
        Some("demo") => demo(),
        Some("vm-test") => {
            vm_lines(&std::env::args().skip(2).collect::<Vec<_>>()).and_then(|lines| {
                setup::tasks(&[tools::Task::Build, tools::Task::Vm])?;
                vm::vm_test(&lines)
            })
        }
        Some("image") => image(),
        Some("bench") => bench::bench(&std::env::args().skip(2).collect::<Vec<_>>()),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}{}", bench::USAGE);
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}{}", bench::USAGE);
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs a command (in the workspace root unless it names a directory), failing with its
/// name if it fails.
fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: running {shown}");
    if cmd.get_current_dir().is_none() {
        cmd.current_dir(root());
    }
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn require_root(what: &str) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("{what} loads eBPF programs into the kernel and must run as root (sudo -E cargo xtask ...)");
    }
    Ok(())
}

fn test() -> anyhow::Result<()> {
    require_root("cargo xtask test")?;
    setup::all()?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--exclude",
        "tracer-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The kernel programs only build for the BPF target, with the nightly toolchain.
    run(Command::new("rustup")
        .args([
            "run",
            "nightly",
            "cargo",
            "clippy",
            "--release",
            "--package",
            "tracer-ebpf",
        ])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        .args(["--", "-D", "warnings"]))?;
    // Unit and fixture tests (no root needed), then the root tests against this build.
    run(cargo().args(["test", "--no-fail-fast"]))?;
    run(cargo().args(["build", "--package", "tracer"]))?;
    run(cargo().args(["test", "--no-fail-fast", "--package", "tracer-integration"]))?;
    vm::vm_test(&vm::LINES)?;
    eprintln!("xtask: all tests passed");
    Ok(())
}

/// `vm-test [--kernel 5.10|6.1|6.12]`: the kernels to boot (all of them by default).
fn vm_lines(args: &[String]) -> anyhow::Result<Vec<vm::Line>> {
    match args {
        [] => Ok(vm::LINES.to_vec()),
        [flag, name] if flag == "--kernel" => vm::LINES
            .iter()
            .find(|l| l.name == name)
            .map(|l| vec![*l])
            .with_context(|| {
                let names: Vec<&str> = vm::LINES.iter().map(|l| l.name).collect();
                format!("no kernel line {name:?} (the lines: {})", names.join(", "))
            }),
        _ => bail!("usage: cargo xtask vm-test [--kernel 5.10|6.1|6.12]"),
    }
}

fn image() -> anyhow::Result<()> {
    require_root("cargo xtask image")?;
    setup::tasks(&[tools::Task::Build])?;
    run(cargo().args(["build", "--release", "--package", "tracer"]))?;
    let tag = format!("tracer:{}", env!("CARGO_PKG_VERSION"));
    let dir = root().join("target/image");
    std::fs::create_dir_all(&dir)?;
    let save = dir.join("tracer.tar");
    run(Command::new(root().join("scripts/build-image.sh"))
        .arg(root().join("target/release/tracer"))
        .arg(&tag)
        .arg(&save))?;
    eprintln!("xtask: image {tag} in Docker, saved to {}", save.display());
    Ok(())
}

fn demo() -> anyhow::Result<()> {
    require_root("cargo xtask demo")?;
    setup::tasks(&[tools::Task::Build, tools::Task::Demo])?;
    run(cargo().args(["build", "--release", "--package", "tracer"]))?;
    let tracer = root().join("target/release/tracer");
    eprintln!("\nxtask: how each event kind is observed on this kernel:");
    run(Command::new(&tracer).arg("check"))?;
    eprintln!(
        "\nxtask: a container launched by the built-in runtime; its launch, step by step, \
         then its lifecycle:"
    );
    let picture = root().join("target/demo.html");
    run(Command::new(&tracer)
        .args(["run", "--explain", "--hostname", "demo", "--html"])
        .arg(&picture)
        .args([
            "--",
            "sh",
            "-c",
            "echo hello from $(hostname), pid $$, $(ip -4 -o addr show eth0 | awk '{print $4}')",
        ]))?;
    demo_docker(&tracer)?;
    eprintln!(
        "\nxtask: the picture of the built-in runtime's launch: {} (open it in a browser)",
        picture.display()
    );
    Ok(())
}

/// With Docker installed and running: a `docker run`, explained (its image made from the
/// busybox-static root filesystem when missing).
fn demo_docker(tracer: &Path) -> anyhow::Result<()> {
    let quiet = |cmd: &mut Command| {
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !quiet(Command::new("docker").arg("version")) {
        eprintln!("\nxtask: Docker is not installed or not running: no docker run to explain");
        return Ok(());
    }
    let image = "tracer-demo-busybox";
    if !quiet(Command::new("docker").args(["image", "inspect", image])) {
        let dir = root().join("target/demo-rootfs");
        std::fs::create_dir_all(dir.join("bin"))?;
        std::fs::copy("/usr/bin/busybox", dir.join("bin/busybox"))?;
        run(Command::new("chroot")
            .arg(&dir)
            .args(["/bin/busybox", "--install", "-s", "/bin"]))?;
        let tar = root().join("target/demo-rootfs.tar");
        run(Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&tar)
            .arg("."))?;
        run(Command::new("docker").arg("import").arg(&tar).arg(image))?;
    }
    eprintln!("\nxtask: a docker run, explained by tracer explain:");
    run(Command::new(tracer).args([
        "explain",
        "--",
        "docker",
        "run",
        "--rm",
        image,
        "echo",
        "hello from docker",
    ]))
}
