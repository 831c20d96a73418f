//! Container start: the built-in runtime against runc and crun on one bundle.

use std::{
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context as _};

use super::{release, run, stats, verdict_ratio, Sizes, Verdict, WORK};

/// A mount namespace where crun accepts this host's hybrid cgroup layout: cgroup2's
/// controller list is hidden under an empty file. Every runtime runs in it, so all three
/// see the same mounts. Held open by a sleeping process.
pub(super) struct CgroupFixNs {
    holder: Child,
    ns: fs::File,
}

impl CgroupFixNs {
    pub(super) fn open() -> anyhow::Result<Option<Self>> {
        let controllers = "/sys/fs/cgroup/unified/cgroup.controllers";
        if !Path::new(controllers).exists() {
            return Ok(None);
        }
        let empty = Path::new(WORK).join("empty");
        fs::write(&empty, "")?;
        let mut holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind {} {controllers} && echo ok && exec sleep 100000",
                empty.display()
            ))
            .stdout(Stdio::piped())
            .spawn()
            .context("starting unshare")?;
        let mut line = String::new();
        BufReader::new(holder.stdout.take().expect("piped")).read_line(&mut line)?;
        if line.trim() != "ok" {
            let _ = holder.kill();
            let _ = holder.wait();
            bail!("could not prepare the mount namespace for crun");
        }
        let ns = fs::File::open(format!("/proc/{}/ns/mnt", holder.id()))?;
        Ok(Some(Self { holder, ns }))
    }
}

impl Drop for CgroupFixNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

pub(super) fn bundle() -> anyhow::Result<PathBuf> {
    let dir = Path::new(WORK).join("bundle");
    let bin = dir.join("rootfs/bin");
    fs::create_dir_all(&bin)?;
    if !bin.join("busybox").exists() {
        fs::copy("/bin/busybox", bin.join("busybox")).context("copying /bin/busybox")?;
    }
    for applet in ["sh", "true"] {
        if fs::symlink_metadata(bin.join(applet)).is_err() {
            std::os::unix::fs::symlink("busybox", bin.join(applet))?;
        }
    }
    let config = dir.join("config.json");
    let _ = fs::remove_file(&config);
    run(Command::new("runc").arg("spec").current_dir(&dir))?;
    let mut spec: serde_json::Value = serde_json::from_str(&fs::read_to_string(&config)?)?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["/bin/true"]);
    fs::write(&config, serde_json::to_vec_pretty(&spec)?)?;
    Ok(dir)
}

/// The rows of the start table, in the order measured.
const NAMES: [&str; 6] = [
    "tracer run --no-trace",
    "runc run",
    "crun run",
    "tracer run (traced)",
    "tracer run --no-trace, default image",
    "tracer run --no-trace --seccomp default",
];

/// The command of row `which`, on bundle `b`: the first four on the bundle as `runc spec`
/// made it (no seccomp); the default image (Docker's default seccomp profile) against the
/// bundle given that same profile.
fn start_command(which: usize, tracer: &Path, b: &str, id: &str) -> Command {
    let mut c = Command::new(match which {
        1 => Path::new("runc"),
        2 => Path::new("crun"),
        _ => tracer,
    });
    match which {
        0 => c.args(["run", "-q", "--no-trace", "--net", "none", "--bundle", b]),
        1 | 2 => c.args(["run", "--bundle", b, id]),
        3 => c.args(["run", "-q", "--net", "none", "--bundle", b]),
        4 => c.args(["run", "-q", "--no-trace", "--net", "none"]),
        _ => c
            .args(["run", "-q", "--no-trace", "--net", "none", "--bundle", b])
            .args(["--seccomp", "default"]),
    };
    if which != 1 && which != 2 {
        c.args(["--", "/bin/true"]);
    }
    c
}

pub(super) fn container_start(
    sizes: &Sizes,
    ready: Option<f64>,
    md: &mut String,
    verdicts: &mut Vec<Verdict>,
) -> anyhow::Result<()> {
    let bundle = bundle()?;
    let ns = CgroupFixNs::open()?;
    let tracer = release("tracer");
    let b = bundle.to_str().context("bundle path")?.to_string();
    let names = NAMES;
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    // Round 0 warms up (each binary and the bundle read once) and is not kept: a first start
    // pays for the page cache, the others do not.
    for i in 0..=sizes.container_runs {
        eprintln!("bench: container start, round {i}");
        // Rotated each round so no runtime always follows the same one.
        for k in 0..names.len() {
            let which = (i + k) % names.len();
            let id = format!("bench-{}-{i}", std::process::id());
            let mut cmd = start_command(which, &tracer, &b, &id);
            if let Some(ns) = &ns {
                let fd = std::os::fd::AsRawFd::as_raw_fd(&ns.ns);
                // SAFETY: setns is async-signal-safe; runs in the child before exec.
                unsafe {
                    cmd.pre_exec(move || {
                        if libc::setns(fd, libc::CLONE_NEWNS) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            let t = Instant::now();
            let out = cmd
                .stdin(Stdio::null())
                .output()
                .with_context(|| format!("starting {}", names[which]))?;
            let secs = t.elapsed().as_secs_f64();
            if !out.status.success() {
                bail!(
                    "{} failed ({}): {}",
                    names[which],
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            if i > 0 {
                times[which].push(secs);
            }
        }
    }
    let _ = writeln!(
        md,
        "## 4. Container start\n\nOne container running `/bin/true` from the same busybox-static \
         bundle (`runc spec`, loopback-only network), start to exit to cleanup, {} runs each, \
         interleaved{}. The last two rows: the default image (the host's `/usr` on a skeleton, \
         with Docker's default seccomp profile) against the bundle given that same \
         profile.\n\n| runtime | median ms | min ms | max ms | vs runc |\n|---|---|---|---|---|",
        sizes.container_runs,
        if ns.is_some() {
            "; all in one mount namespace where cgroup2's controller list is hidden, which crun \
             needs on this hybrid cgroup host"
        } else {
            ""
        }
    );
    let mut medians = Vec::new();
    for v in &mut times {
        medians.push(stats(v).0);
    }
    for (name, v) in names.iter().zip(&mut times) {
        let (m, lo, hi) = stats(v);
        let _ = writeln!(
            md,
            "| {name} | {:.1} | {:.1} | {:.1} | {:.2}× |",
            m * 1e3,
            lo * 1e3,
            hi * 1e3,
            m / medians[1]
        );
    }
    md.push('\n');
    for (target, peer, k, key) in [
        (
            "container start (--no-trace) ≤ runc's median",
            "runc",
            1,
            "start.vs_runc",
        ),
        (
            "container start (--no-trace) ≤ crun's median",
            "crun",
            2,
            "start.vs_crun",
        ),
    ] {
        verdict_ratio(
            verdicts,
            (
                target,
                format!(
                    "{:.1} ms vs {peer} {:.1} ms ({:.2}×)",
                    medians[0] * 1e3,
                    medians[k] * 1e3,
                    medians[0] / medians[k]
                ),
                medians[0] <= medians[k],
            ),
            key,
            medians[0] / medians[k],
        );
    }
    let image = medians[4] / medians[5];
    verdict_ratio(
        verdicts,
        (
            "default image ≤ 1.2× the bundle (same seccomp profile)",
            format!(
                "{:.1} ms vs {:.1} ms ({image:.2}×)",
                medians[4] * 1e3,
                medians[5] * 1e3
            ),
            image <= 1.2,
        ),
        "start.default_image_vs_bundle",
        image,
    );
    if let Some(ready) = ready {
        let extra = medians[3] - medians[0];
        verdict_ratio(
            verdicts,
            (
                "traced run ≤ untraced + ready + 25 ms",
                format!(
                    "{:.1} ms over untraced, ready {:.1} ms",
                    extra * 1e3,
                    ready * 1e3
                ),
                extra <= ready + 0.025,
            ),
            "start.traced_extra_vs_ready",
            extra / ready,
        );
    }
    Ok(())
}
