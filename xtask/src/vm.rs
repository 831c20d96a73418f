//! `cargo xtask vm-test`: the kernel tests on a stock distribution kernel, where the designed
//! kprobe hooks exist. Debian's `linux-image-amd64` (6.1 line) is fetched once from the package
//! mirror into `target/vm/`, booted in QEMU from its uncompressed vmlinux (PVH) with a busybox
//! initramfs; the host's `/usr`, `/etc` and the workspace are shared over virtio-9p so the
//! host-built tracer and test binaries run in the guest unchanged.
//!
//! In the guest: `tracer check`, a short live trace whose namespace and veth events are
//! printed (with the hook that produced them), a traced `tracer run -- echo` whose namespace
//! and veth events must come from the kprobes, the root namespace/veth tests (which expect
//! kprobe-sourced events when kprobes exist), then the same unshare test with a deliberately
//! skewed offset, which must fail: proof that the test can fail.

use std::{
    fs,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{mpsc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

use crate::{cargo, root, run};

/// A guest that prints nothing for this long is hung. Its longest quiet stretch is one test
/// (the console line of a test comes when it ends) or the skewed-offset run, whose output
/// goes to a file: about 30 s a test on the slowest day seen (10 tests in 265 s).
const GUEST_SILENCE: Duration = Duration::from_secs(180);
/// The whole guest must finish within this. Alone a guest takes 200 to 500 s (by how busy
/// the host is), and guests that share the CPUs take longer each.
const GUEST_DEADLINE: Duration = Duration::from_secs(1200);
/// Modules the guest loads: 9p sharing over virtio-pci, veth for the veth test, and overlay
/// and bridge for `tracer run`.
const MODULES: &[&str] = &[
    "virtio_pci",
    "9pnet_virtio",
    "9p",
    "veth",
    "overlay",
    "bridge",
];

/// Boots every kernel of `lines` and runs the guest tests on each, as many guests at once as
/// the host has CPUs (a guest under software emulation keeps about one CPU busy); every
/// kernel's result is said, and any failure fails the step.
pub(crate) fn vm_test(lines: &[Line]) -> anyhow::Result<()> {
    let started = Instant::now();
    // The test build's binaries (dependencies are optimized in the dev profile).
    run(cargo().args(["build", "--package", "tracer"]))?;
    let test_bin = build_test_binary("root_namespaces")?;
    let watch_bin = build_test_binary("root_watch")?;
    let host_phases = host_run_phases()?;
    // Fetching and packing run one at a time (apt and the cache directory are shared).
    let queue: Vec<(Line, anyhow::Result<(Kernel, PathBuf)>)> = lines
        .iter()
        .map(|line| {
            let ready = fetch_kernel(line).and_then(|kernel| {
                let initramfs = build_initramfs(&kernel, &test_bin, &watch_bin)?;
                Ok((kernel, initramfs))
            });
            (*line, ready)
        })
        .collect();
    let at_once = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let workers = at_once.min(queue.len());
    // Popped from the end, so newest first: they take longest, and the last to start
    // should be short.
    let queue = Mutex::new(queue);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                // The lock is let go before the guest boots.
                let Some((line, ready)) = queue.lock().expect("no panics").pop() else {
                    break;
                };
                let began = Instant::now();
                let result = ready.and_then(|(kernel, initramfs)| {
                    guest_test(&line, &kernel, &initramfs, &host_phases)
                });
                let took = began.elapsed().as_secs_f64();
                match &result {
                    Ok(version) => eprintln!(
                        "xtask: vm-test {}: {version} passed in {took:.0} s",
                        line.name
                    ),
                    Err(e) => {
                        eprintln!("xtask: vm-test {}: FAILED in {took:.0} s: {e:#}", line.name);
                    }
                }
                results.lock().expect("no panics").push((line.name, result));
            });
        }
    });
    eprintln!(
        "xtask: vm-test finished in {:.0} s ({workers} guests at a time)",
        started.elapsed().as_secs_f64()
    );
    let mut failed: Vec<&str> = results
        .into_inner()
        .expect("no panics")
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(n, _)| *n)
        .collect();
    failed.sort_by_key(|n| lines.iter().position(|l| l.name == *n));
    if !failed.is_empty() {
        bail!("the guest tests failed on {}", failed.join(", "));
    }
    Ok(())
}

/// Boots one kernel, checks what its guest printed and compares `tracer run`'s phases with
/// the host's; gives the kernel's version and measures.
fn guest_test(
    line: &Line,
    kernel: &Kernel,
    initramfs: &Path,
    host_phases: &[String],
) -> anyhow::Result<String> {
    let guest = boot_once_more_on_early_panic(line, kernel, initramfs)?;
    check_guest(line, &guest)?;
    // The same phases; their order may differ where a hook stamps events at another moment
    // (the rtnetlink monitor on receipt, a kretprobe when the call returns).
    let (mut in_guest, mut on_host) = (guest_run_phases(&guest.output), host_phases.to_vec());
    in_guest.sort();
    on_host.sort();
    if in_guest != on_host {
        bail!("tracer run's phases in the guest {in_guest:?} are not the host's {host_phases:?}");
    }
    Ok(format!("{} ({})", kernel.version, measures(&guest.output)))
}

/// The hooks a traced `tracer run` must show events from on `line`. 5.10 has no module BTF
/// (veth's private struct cannot be read) and no `__dev_change_net_namespace` (5.13): its
/// veth and the move of its end come from the rtnetlink monitor there.
fn expected_hooks(line: &Line) -> Vec<&'static str> {
    let mut hooks = vec![
        "kretprobe:create_new_namespaces",
        "tracepoint:cgroup:cgroup_mkdir",
    ];
    if line.name == "5.10" {
        hooks.extend([
            "\"hook\":\"rtnetlink:RTNLGRP_LINK\",\"kind\":\"veth\"",
            "\"hook\":\"rtnetlink:RTNLGRP_LINK\",\"kind\":\"netdev_move\"",
        ]);
    } else {
        hooks.extend([
            "kretprobe:veth_newlink",
            "kretprobe:__dev_change_net_namespace",
        ]);
    }
    hooks
}

/// The phases of a traced `tracer run -- echo` on the host, in order.
fn host_run_phases() -> anyhow::Result<Vec<String>> {
    let dir = cache_dir();
    fs::create_dir_all(&dir)?;
    let json = dir.join("host-run.json");
    let tracer = root().join("target/debug/tracer");
    run(Command::new(&tracer)
        .args(["run", "--quiet", "--json"])
        .arg(&json)
        .args(["--", "echo", "hi from the host"])
        .stdout(Stdio::null()))?;
    let out = Command::new(&tracer)
        .args(["report", "--format", "timeline"])
        .arg(&json)
        .output()?;
    Ok(phase_names(&String::from_utf8_lossy(&out.stdout)))
}

/// The phase names of timeline lines (`  +12.3ms  namespaces   0.0ms  ...`).
fn phase_names(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.trim_start().starts_with('+'))
        .filter_map(|l| l.get(14..29).map(|n| n.trim().to_string()))
        .filter(|n| !n.starts_with('('))
        .collect()
}

/// The same, from what the guest printed.
fn guest_run_phases(output: &str) -> Vec<String> {
    let lines: Vec<&str> = output
        .lines()
        .filter_map(|l| l.split_once("VMTEST phase:").map(|(_, r)| r))
        .collect();
    phase_names(&lines.join("\n"))
}

/// What the note wants of each kernel: ready after boot, the largest program the verifier
/// took, the fallbacks chosen and the kinds the kernel lacks.
fn measures(output: &str) -> String {
    let marker = |name: &str| {
        output
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(str::to_string))
    };
    let mut parts = Vec::new();
    if let Some(at) = marker("VMTEST-READY-AT=") {
        parts.push(format!("ready {at} s after boot"));
    }
    if let Some(progs) = marker("VMTEST-PROGS=") {
        let progs: Vec<serde_json::Value> = serde_json::from_str(&progs).unwrap_or_default();
        // verified_insns where the kernel reports it (5.16+), else the translated length.
        let insns = |p: &serde_json::Value| {
            p["verified_insns"]
                .as_u64()
                .unwrap_or_else(|| p["bytes_xlated"].as_u64().unwrap_or(0) / 8)
        };
        if let Some(big) = progs.iter().max_by_key(|p| insns(p)) {
            parts.push(format!(
                "{} programs, largest {} ({} insns{})",
                progs.len(),
                big["name"].as_str().unwrap_or("?"),
                insns(big),
                if big["verified_insns"].is_null() {
                    ", translated"
                } else {
                    " verified"
                }
            ));
        }
    }
    if let Some(f) = marker("fallbacks used: ") {
        parts.push(format!("fallbacks: {f}"));
    }
    if let Some(a) = marker("not in this kernel at all (its syscall came later): ") {
        parts.push(format!("absent: {a}"));
    }
    parts.join("; ")
}

/// What the guest printed, checked.
fn check_guest(line: &Line, guest: &Guest) -> anyhow::Result<()> {
    let output = guest.output.as_str();
    let marker = |name: &str| {
        output
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(str::to_string))
    };
    if marker("VMTEST: tracer check exit ").as_deref() != Some("0") {
        bail!("tracer check did not pass in the guest (every kind a hook, or absent by design)");
    }
    let Some(tests) = marker("VMTEST-TESTS=") else {
        match &guest.cut {
            Some(why) => bail!("the guest did not report its test result: {why}; output above"),
            None => bail!(
                "the guest did not report its test result (qemu exit {:?}); output above",
                guest.code
            ),
        }
    };
    if tests != "0" {
        bail!("kernel tests failed inside the guest (exit {tests}); their output is above");
    }
    if marker("VMTEST-RUN=").as_deref() != Some("0") {
        bail!("tracer run failed inside the guest; its output is above");
    }
    let run_events: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("VMTEST run event:"))
        .collect();
    for hook in expected_hooks(line) {
        if !run_events.iter().any(|l| l.contains(hook)) {
            bail!("tracer run in the guest shows no event from {hook}");
        }
    }
    // The skewed run must fail, and on the inode check, not for some unrelated reason.
    let negative = marker("VMTEST-NEGATIVE=");
    let on_inodes = output
        .lines()
        .any(|l| l.contains("negative control") && l.contains("assertion"));
    if negative.as_deref() != Some("failed-as-expected") || !on_inodes {
        bail!(
            "with a deliberately skewed namespace offset the guest test did not fail on its \
             inode check ({negative:?}): the test cannot tell right from wrong"
        );
    }
    Ok(())
}

struct Kernel {
    version: String,
    vmlinux: PathBuf,
    modules: PathBuf,
}

fn cache_dir() -> PathBuf {
    root().join("target/vm")
}

/// A line of stock kernels the matrix boots.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Line {
    /// `5.10`, `6.1`, `6.12`.
    pub(crate) name: &'static str,
    /// Where its package comes from: this machine's apt sources (`None`), or a suite of its
    /// own, read with a private sources list.
    suite: Option<(&'static str, &'static str)>,
}

/// Debian 11's (bullseye-security), Debian 12's (this machine's sources) and Debian 13's.
pub(crate) const LINES: [Line; 3] = [
    Line {
        name: "5.10",
        suite: Some(("http://deb.debian.org/debian-security", "bullseye-security")),
    },
    Line {
        name: "6.1",
        suite: None,
    },
    Line {
        name: "6.12",
        suite: Some(("http://deb.debian.org/debian", "trixie")),
    },
];

/// apt's options for a private sources list of `suite` (lists and cache under target/vm).
fn private_apt(uri: &str, suite: &str) -> anyhow::Result<Vec<String>> {
    let dir = cache_dir().join("apt").join(suite);
    for d in ["lists/partial", "cache/archives/partial"] {
        fs::create_dir_all(dir.join(d))?;
    }
    let list = dir.join("sources.list");
    fs::write(
        &list,
        format!(
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {uri} {suite} main\n"
        ),
    )?;
    Ok(vec![
        format!("-oDir::Etc::SourceList={}", list.display()),
        "-oDir::Etc::SourceParts=/dev/null".into(),
        format!("-oDir::State::Lists={}", dir.join("lists").display()),
        format!("-oDir::Cache={}", dir.join("cache").display()),
    ])
}

/// The newest `linux-image-<line>…-amd64` package of a private suite.
fn suite_package(line: &Line, apt: &[String]) -> anyhow::Result<String> {
    run(Command::new("apt-get").args(apt).args(["update", "-qq"]))?;
    let out = Command::new("apt-cache")
        .args(apt)
        .args(["pkgnames", &format!("linux-image-{}", line.name)])
        .output()
        .context("apt-cache")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The plain flavour (not -cloud, -rt, -dbg, -unsigned), newest by its numbers.
    let numbers = |p: &str| -> Vec<u64> {
        p.split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect()
    };
    text.lines()
        .filter(|p| {
            p.ends_with("-amd64")
                && !["cloud", "rt-", "dbg", "unsigned"]
                    .iter()
                    .any(|x| p.contains(x))
                && p[format!("linux-image-{}", line.name).len()..].starts_with(['.', '-'])
        })
        .max_by_key(|p| numbers(p))
        .map(str::to_string)
        .with_context(|| format!("no linux-image-{} package in its suite", line.name))
}

/// Downloads and unpacks a line's kernel package once; extracts the uncompressed vmlinux.
fn fetch_kernel(line: &Line) -> anyhow::Result<Kernel> {
    let dir = cache_dir();
    fs::create_dir_all(&dir)?;
    let apt = match line.suite {
        Some((uri, suite)) => private_apt(uri, suite)?,
        None => Vec::new(),
    };
    // A kernel of this line already unpacked is used as it is (no network needed).
    let cached = fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&format!("vmlinux-{}", line.name)))
        .filter(|n| n[format!("vmlinux-{}", line.name).len()..].starts_with(['.', '-']))
        .max();
    let package = match (cached, line.suite) {
        (Some(v), _) => format!("linux-image-{}", &v["vmlinux-".len()..]),
        (None, Some(_)) => suite_package(line, &apt)?,
        (None, None) => kernel_package()?,
    };
    let version = package
        .strip_prefix("linux-image-")
        .context("unexpected kernel package name")?
        .to_string();
    let unpacked = dir.join(&package);
    let vmlinux = dir.join(format!("vmlinux-{version}"));
    if !vmlinux.exists() {
        eprintln!("xtask: fetching {package} from the package mirror");
        fs::create_dir_all(&unpacked)?;
        run(Command::new("apt-get")
            .args(&apt)
            .args(["download", "-q", &package])
            .current_dir(&dir))?;
        let deb = fs::read_dir(&dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&package) && n.ends_with(".deb"))
            })
            .context("the downloaded .deb is missing")?;
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
        fs::remove_file(&deb)?;
        extract_vmlinux(&unpacked.join(format!("boot/vmlinuz-{version}")), &vmlinux)?;
    } else {
        eprintln!("xtask: kernel {version} already in {}", dir.display());
    }
    // Debian 13's packages put the modules under usr/ (merged /usr).
    let modules = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|d| unpacked.join(d).join(&version))
        .find(|d| d.is_dir())
        .with_context(|| format!("no modules for {version} in {}", unpacked.display()))?;
    Ok(Kernel {
        modules,
        version,
        vmlinux,
    })
}

/// The concrete package behind the `linux-image-amd64` metapackage (6.1 line on Debian 12).
fn kernel_package() -> anyhow::Result<String> {
    let out = Command::new("apt-cache")
        .args(["depends", "linux-image-amd64"])
        .output()
        .context("apt-cache")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Depends: ")
                .filter(|p| p.starts_with("linux-image-"))
        })
        .map(str::to_string)
        .context("apt-cache knows no linux-image-amd64 (run apt-get update)")
}

/// The bzImage payload is xz (Debian 11, 12) or zstd (Debian 13): find its magic and
/// decompress (like the kernel's `scripts/extract-vmlinux`).
fn extract_vmlinux(vmlinuz: &Path, out: &Path) -> anyhow::Result<()> {
    let image = fs::read(vmlinuz).with_context(|| format!("reading {}", vmlinuz.display()))?;
    let find = |magic: &[u8]| image.windows(magic.len()).position(|w| w == magic);
    let (start, program, args): (usize, &str, &[&str]) =
        match (find(b"\xfd7zXZ\x00"), find(b"\x28\xb5\x2f\xfd")) {
            (Some(at), _) => (at, "xz", &["-dc", "--single-stream"]),
            (None, Some(at)) => (at, "zstd", &["-dcq"]),
            (None, None) => bail!("no xz or zstd payload in the kernel image"),
        };
    let mut xz = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting xz")?;
    let mut stdin = xz.stdin.take().expect("piped");
    let payload = image[start..].to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &payload));
    let output = xz.wait_with_output()?;
    // xz stops at the end of the stream; trailing bytes make the writer fail: that is fine.
    let _ = writer.join();
    if !output.stdout.starts_with(b"\x7fELF") {
        bail!("decompressed kernel is not an ELF image");
    }
    fs::write(out, &output.stdout)?;
    Ok(())
}

/// Builds a root test binary (already built by `cargo test`) and returns its path.
fn build_test_binary(name: &str) -> anyhow::Result<PathBuf> {
    let out = cargo()
        .args(["test", "--no-run", "--package", "tracer-integration"])
        .args(["--test", name, "--message-format=json"])
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("building the {name} test binary failed");
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| {
            (v["target"]["name"] == name)
                .then(|| v["executable"].as_str().map(PathBuf::from))
                .flatten()
        })
        .context("cargo reported no test executable")
}

/// busybox, the modules and their dependency list, and an init that runs the guest tests.
fn build_initramfs(kernel: &Kernel, test_bin: &Path, watch_bin: &Path) -> anyhow::Result<PathBuf> {
    // One per kernel: guests of several kernels boot at once.
    let stage = cache_dir().join(format!("initramfs-{}", kernel.version));
    let _ = fs::remove_dir_all(&stage);
    for d in ["bb", "dev", "proc", "sys", "tmp", "usr", "etc", "run"] {
        fs::create_dir_all(stage.join(d))?;
    }
    // busybox lives apart in /bb: the host's binaries and their absolute symlinks
    // (/usr/sbin/ip -> /bin/ip) must find the host's /bin, as on a merged-/usr host.
    fs::copy("/bin/busybox", stage.join("bb/busybox")).context("busybox-static")?;
    for l in ["bin", "lib", "lib64", "sbin"] {
        std::os::unix::fs::symlink(format!("usr/{l}"), stage.join(l))?;
    }
    // The modules the guest needs, with their dependencies, and a depmod index for them.
    // /lib is a symlink to usr/lib (for the host binaries once /usr is shared); modules are
    // loaded before that share hides the initramfs's own usr/.
    let mod_root = stage.join("usr/lib/modules").join(&kernel.version);
    fs::create_dir_all(&mod_root)?;
    copy_tree(&kernel.modules.join("kernel"), &mod_root.join("kernel"))?;
    // Debian 13 ships its modules xz-compressed; the guest's busybox modprobe wants them
    // plain.
    run(Command::new("find")
        .arg(&mod_root)
        .args(["-name", "*.ko.xz", "-exec", "xz", "-d", "{}", "+"]))?;
    for f in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        let src = kernel.modules.join(f);
        if src.exists() {
            fs::copy(&src, mod_root.join(f))?;
        }
    }
    run(Command::new("depmod")
        .arg("-b")
        .arg(stage.join("usr"))
        .arg(&kernel.version))?;

    let work = root();
    let tracer = work.join("target/debug/tracer");
    let init = format!(
        r#"#!/bb/busybox sh
/bb/busybox --install -s /bb
export PATH=/usr/sbin:/usr/bin:/bb HOME=/root
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
mount -t tmpfs run /run; mount -t cgroup2 cgroup2 /sys/fs/cgroup
for m in {modules}; do modprobe $m || echo "VMTEST: modprobe $m failed"; done
share() {{ mkdir -p "$2"; mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,$3 "$1" "$2"; }}
share usr /usr ro; share etc /etc ro; share work "{work}" rw
echo "VMTEST: kernel $(uname -r), kprobe PMU: $(cat /sys/bus/event_source/devices/kprobe/type 2>/dev/null || echo none)"
cd "{work}"
"{tracer}" check
echo "VMTEST: tracer check exit $?"
# A short live trace, to show the kprobe-sourced events themselves.
"{tracer}" watch --quiet --duration 8 --jsonl /tmp/events.jsonl 2>/tmp/watch.err &
for i in $(seq 60); do grep -q ready /tmp/watch.err && break; sleep 0.2; done
echo "VMTEST-READY-AT=$(cut -d' ' -f1 /proc/uptime)"
grep ready /tmp/watch.err | sed 's/^/VMTEST /'
# The programs as the kernel verified them: the largest one's instruction count.
bpftool -j prog show 2>/dev/null | sed 's/^/VMTEST-PROGS=/'
# Absolute paths: busybox's shell would run its own applets of the same names.
/usr/bin/unshare -m -u -i -n -p -f /usr/bin/true
/usr/bin/ip link add vmtA type veth peer name vmtB && /usr/bin/ip link del vmtA
wait
grep -E '"kind":"(namespaces|veth)"' /tmp/events.jsonl | sed 's/^/VMTEST event: /'
# A container launched by the built-in runtime, traced: its namespaces and veth come from
# the kprobes here.
"{tracer}" run --quiet --jsonl /tmp/run.jsonl --json /tmp/run.json -- echo hi from the guest container
echo "VMTEST-RUN=$?"
"{tracer}" report --format timeline /tmp/run.json | grep -E '^ +\+[0-9]' | sed 's/^/VMTEST phase:/'
grep -E '"kind":"(namespaces|veth|netdev_move|cgroup_mkdir)"' /tmp/run.jsonl | sed 's/^/VMTEST run event: /' 
"{test_bin}" --test-threads=1
T=$?
# The exec, mount-family and rename paths of this kernel, and each syscall of the families
# that share a program.
"{watch_bin}" --test-threads=1 --exact root_exec_argv_result_and_exit_code root_mount_in_private_namespace root_failed_exec_is_shown_as_failed root_task_rename_is_seen root_each_syscall_of_a_family_is_reported_as_itself
W=$?
echo "VMTEST-TESTS=$((T | W))"
TRACER_LAYOUT_SKEW=ns_inum:8 "{test_bin}" --test-threads=1 --exact root_unshare_namespaces_match_proc > /tmp/negative.log 2>&1
if [ $? -ne 0 ]; then echo "VMTEST-NEGATIVE=failed-as-expected"; else echo "VMTEST-NEGATIVE=passed"; fi
grep -E "panicked|left|right|tracer: |error" /tmp/negative.log | head -8 | sed 's/^/VMTEST negative control: /'
poweroff -f
"#,
        modules = MODULES.join(" "),
        work = work.display(),
        tracer = tracer.display(),
        test_bin = test_bin.display(),
        watch_bin = watch_bin.display(),
    );
    let init_path = stage.join("init");
    fs::write(&init_path, init)?;
    run(Command::new("chmod").arg("755").arg(&init_path))?;

    let out = cache_dir().join(format!("initramfs-{}.cpio", kernel.version));
    let cpio = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd '{}' && find . | cpio -o -H newc --quiet > '{}'",
            stage.display(),
            out.display()
        ))
        .status()?;
    if !cpio.success() {
        bail!("packing the initramfs failed");
    }
    // The archive holds it all; the tree would only take the disk space a second time.
    let _ = fs::remove_dir_all(&stage);
    Ok(out)
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status()?;
    if !status.success() {
        bail!("copying {} failed", from.display());
    }
    Ok(())
}

/// KVM only where the CPU really virtualizes (here /dev/kvm exists without vmx/svm and
/// stock kernels die under it). Software emulation runs both vCPUs on one host thread:
/// with a thread per vCPU, a vCPU could run a kernel text site another was patching and
/// take the patch's `int3` as an oops (6.12 died so during boot in two of five boots here);
/// a guest kept only about one host CPU busy anyway, and guests run side by side.
fn accel() -> &'static str {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let hw = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    if hw && Path::new("/dev/kvm").exists() {
        "kvm"
    } else {
        "tcg,thread=single"
    }
}

/// The line where the guest kernel says it panicked, if it did.
fn kernel_panic(output: &str) -> Option<&str> {
    output
        .lines()
        .find(|l| l.contains("Kernel panic - not syncing"))
}

/// Boots the guest; a kernel that panics before the guest's script printed anything (seen
/// under QEMU's software emulation on a busy host: an `int3` oops in `sched_clock_cpu`
/// during boot) is booted once more, since no tracer code ran. A panic once the script
/// runs is an error that names it.
fn boot_once_more_on_early_panic(
    line: &Line,
    kernel: &Kernel,
    initramfs: &Path,
) -> anyhow::Result<Guest> {
    let started = |output: &str| output.lines().any(|l| l.contains("VMTEST"));
    let mut guest = boot(line, kernel, initramfs)?;
    if let Some(panic) = kernel_panic(&guest.output) {
        if started(&guest.output) {
            bail!(
                "the guest kernel panicked while the tests ran: {}",
                panic.trim()
            );
        }
        eprintln!(
            "xtask: the {} guest kernel panicked during boot, before any tracer code ran ({}); booting it once more",
            kernel.version,
            panic.trim()
        );
        guest = boot(line, kernel, initramfs)?;
        if let Some(panic) = kernel_panic(&guest.output) {
            bail!("the guest kernel panicked again: {}", panic.trim());
        }
    }
    Ok(guest)
}

/// What a guest printed and how it ended.
struct Guest {
    output: String,
    /// qemu's exit code (`None` when it was killed).
    code: Option<i32>,
    /// Why it was killed, if it was.
    cut: Option<String>,
}

/// Boots the guest, echoing its console (each line marked with the kernel line, since
/// guests run side by side), and returns everything it printed. A guest that prints
/// nothing for [`GUEST_SILENCE`] is hung and killed; [`GUEST_DEADLINE`] bounds the whole.
fn boot(line: &Line, kernel: &Kernel, initramfs: &Path) -> anyhow::Result<Guest> {
    let accel = accel();
    eprintln!("xtask: booting {} under {accel}", kernel.version);
    let share = |tag: &str, path: &Path, ro: bool| {
        vec![
            "-fsdev".to_string(),
            format!(
                "local,id={tag},path={},security_model=none{}",
                path.display(),
                if ro { ",readonly=on" } else { "" }
            ),
            "-device".to_string(),
            format!("virtio-9p-pci,fsdev={tag},mount_tag={tag}"),
        ]
    };
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-accel",
        accel,
        "-m",
        "2048",
        "-smp",
        "2",
        "-nodefaults",
        "-no-reboot",
    ])
    .args([
        "-bios",
        "/usr/share/qemu/qboot.rom",
        "-nographic",
        "-serial",
        "stdio",
    ])
    .arg("-kernel")
    .arg(&kernel.vmlinux)
    .arg("-initrd")
    .arg(initramfs)
    .args(["-append", "console=ttyS0 quiet panic=-1 rdinit=/init"])
    .args(share("usr", Path::new("/usr"), true))
    .args(share("etc", Path::new("/etc"), true))
    .args(share("work", &root(), false))
    .stdin(Stdio::null())
    .stdout(Stdio::piped());
    let mut child = cmd.spawn().context("starting qemu-system-x86_64")?;
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            if tx.send(l.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let began = Instant::now();
    let mut output = String::new();
    let mut cut = None;
    loop {
        let left = GUEST_DEADLINE.saturating_sub(began.elapsed());
        match rx.recv_timeout(GUEST_SILENCE.min(left)) {
            Ok(l) => {
                println!("guest {}| {l}", line.name);
                output.push_str(&l);
                output.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let why = if left <= GUEST_SILENCE {
                    format!("it did not finish within {GUEST_DEADLINE:?}")
                } else {
                    format!("it printed nothing for {GUEST_SILENCE:?} (hung)")
                };
                eprintln!("xtask: the {} guest was killed: {why}", line.name);
                let _ = child.kill();
                cut = Some(why);
                break;
            }
        }
    }
    let status = child.wait()?;
    Ok(Guest {
        output,
        code: status.code(),
        cut,
    })
}
