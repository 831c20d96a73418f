//! Containers started at the same instant: N parallel `docker run -d` under `tracer watch
//! --json`, every fact the tracer gives each container (exit code, overlay, host veth,
//! cgroup) checked against what Docker and the kernel say while it runs, and the tracer's CPU
//! per container. containerd and dockerd are started when they are not running, and stopped
//! after.

use std::{
    fmt::Write as _,
    fs,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{atomic::AtomicU32, Arc},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

use super::{
    process::{signal, Peer},
    release,
    storm::tracer_rules,
    verdict, Sizes, Verdict, WORK,
};

const IMAGE: &str = "tracer-bench-busybox";

/// Daemons started here, stopped on drop.
struct Daemons(Vec<Child>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for child in self.0.iter().rev() {
            signal(child, libc::SIGTERM);
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn wait_for(what: &str, ready: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        if Instant::now() > deadline {
            bail!("{what} did not come up");
        }
        thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

fn docker_up() -> anyhow::Result<Daemons> {
    let mut started = Vec::new();
    if !quiet(Command::new("docker").arg("info")) {
        let log = |n: &str| fs::File::create(Path::new(WORK).join(n));
        if !Path::new("/run/containerd/containerd.sock").exists() {
            started.push(
                Command::new("containerd")
                    .stdout(log("containerd.log")?)
                    .stderr(log("containerd.err")?)
                    .spawn()
                    .context("starting containerd")?,
            );
            wait_for("containerd", || {
                Path::new("/run/containerd/containerd.sock").exists()
            })?;
        }
        started.push(
            Command::new("dockerd")
                .arg("--containerd=/run/containerd/containerd.sock")
                .stdout(log("dockerd.log")?)
                .stderr(log("dockerd.err")?)
                .spawn()
                .context("starting dockerd")?,
        );
        wait_for("dockerd", || quiet(Command::new("docker").arg("info")))?;
    }
    let daemons = Daemons(started);
    if !quiet(Command::new("docker").args(["image", "inspect", IMAGE])) {
        let root = Path::new(WORK).join("concurrency-rootfs");
        fs::create_dir_all(root.join("bin"))?;
        fs::copy("/bin/busybox", root.join("bin/busybox")).context("copying /bin/busybox")?;
        for applet in ["sh", "sleep"] {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
        let tar = Path::new(WORK).join("concurrency-rootfs.tar");
        output(
            Command::new("tar")
                .arg("-C")
                .arg(&root)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        )?;
        output(Command::new("docker").arg("import").arg(&tar).arg(IMAGE))?;
    }
    Ok(daemons)
}

/// What Docker and the kernel say of one running container.
struct Truth {
    id: String,
    code: i32,
    rootfs: String,
    veth: String,
    cgroup: String,
}

fn truth(name: &str, code: i32) -> anyhow::Result<Truth> {
    let inspect = |f: &str| output(Command::new("docker").args(["inspect", "-f", f, name]));
    let pid = inspect("{{.State.Pid}}")?;
    let inside = output(
        Command::new("nsenter").args(["-t", &pid, "-n", "ip", "-o", "link", "show", "eth0"]),
    )?;
    let index = inside
        .split_once("@if")
        .and_then(|(_, r)| r.split(':').next())
        .unwrap_or_default()
        .to_string();
    let links = output(Command::new("ip").args(["-o", "link"]))?;
    let veth = links
        .lines()
        .find_map(|l| {
            let (i, rest) = l.split_once(": ")?;
            (i == index).then(|| rest.split(['@', ':']).next().unwrap_or("").to_string())
        })
        .unwrap_or_default();
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup"))?
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .unwrap_or_default();
    Ok(Truth {
        id: inspect("{{.Id}}")?,
        code,
        rootfs: inspect("{{.GraphDriver.Data.MergedDir}}")?,
        veth,
        cgroup,
    })
}

/// (facts right, facts checked) of the document against the truth.
fn score(doc: &serde_json::Value, truth: &[Truth]) -> (usize, usize) {
    let containers = doc["containers"].as_array().cloned().unwrap_or_default();
    let (mut right, mut checked) = (0, 0);
    for t in truth {
        let found: Vec<&serde_json::Value> = containers
            .iter()
            .filter(|c| c["id"] == t.id.as_str())
            .collect();
        let c = found.first().filter(|_| found.len() == 1);
        let strings = |c: &serde_json::Value, k: &str| -> Vec<String> {
            c[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let others_veth = |c: &serde_json::Value| {
            truth
                .iter()
                .filter(|o| o.id != t.id)
                .any(|o| strings(c, "veths").contains(&o.veth))
        };
        let facts = [
            c.is_some_and(|c| c["exit_code"] == t.code),
            c.is_some_and(|c| c["rootfs"] == t.rootfs.as_str()),
            c.is_some_and(|c| strings(c, "veths").contains(&t.veth) && !others_veth(c)),
            c.is_some_and(|c| t.cgroup.is_empty() || strings(c, "cgroups").contains(&t.cgroup)),
        ];
        checked += facts.len();
        right += facts.iter().filter(|ok| **ok).count();
    }
    (right, checked)
}

/// One round: `n` containers at once; (right, checked, tracer CPU seconds).
fn round(n: usize) -> anyhow::Result<(usize, usize, f64)> {
    let json = Path::new(WORK).join(format!("concurrency-{n}.json"));
    let storm = Arc::new(AtomicU32::new(0));
    let tracer = Peer::spawn(
        Command::new(release("tracer"))
            .args(["watch", "--quiet", "--no-table", "--json"])
            .arg(&json),
        tracer_rules(),
        &storm,
    )?;
    tracer.wait_ready(Duration::from_secs(30))?;
    let names: Vec<(String, i32)> = (1..=n)
        .map(|i| (format!("bench-par-{i}"), i as i32))
        .collect();
    for (name, _) in &names {
        let _ = quiet(Command::new("docker").args(["rm", "-f", name]));
    }
    let starts: Vec<_> = names
        .iter()
        .map(|(name, code)| {
            let (name, code) = (name.clone(), *code);
            thread::spawn(move || {
                output(
                    Command::new("docker")
                        .args(["run", "-d", "--name", &name, IMAGE, "sh", "-c"])
                        .arg(format!("sleep 4; exit {code}")),
                )
            })
        })
        .collect();
    for s in starts {
        s.join()
            .map_err(|_| anyhow::anyhow!("docker run panicked"))??;
    }
    let truth: Vec<Truth> = names
        .iter()
        .map(|(name, code)| truth(name, *code))
        .collect::<anyhow::Result<_>>()?;
    for (name, _) in &names {
        output(Command::new("docker").args(["wait", name]))?;
        output(Command::new("docker").args(["rm", name]))?;
    }
    thread::sleep(Duration::from_millis(500));
    signal(&tracer.child, libc::SIGINT);
    let (usage, _) = tracer.stop()?;
    let doc: serde_json::Value = serde_json::from_str(&fs::read_to_string(&json)?)?;
    let (right, checked) = score(&doc, &truth);
    Ok((right, checked, usage.cpu))
}

pub(super) fn concurrency(
    sizes: &Sizes,
    md: &mut String,
    verdicts: &mut Vec<Verdict>,
) -> anyhow::Result<()> {
    let _daemons = docker_up()?;
    let _ = writeln!(
        md,
        "## 6. Containers started at once\n\n`docker run -d` of N containers at the same \
         instant (`sleep 4; exit i`) under `tracer watch --json`: each container's exit code, \
         overlay (`docker inspect`'s `MergedDir`), host veth (its `eth0@ifN` and `ip link`) and \
         cgroup (`/proc/PID/cgroup`), as the tracer gives them, against what Docker and the \
         kernel say while it runs; a veth of another container counts as wrong. Tracer CPU: \
         user+system seconds of the whole watch (loading included), and per container.\n\n\
         | N | facts right | facts checked | tracer CPU s | CPU ms / container |\n\
         |---|---|---|---|---|"
    );
    let (mut all_right, mut all_checked) = (0, 0);
    for &n in sizes.concurrency {
        eprintln!("bench: {n} containers at once");
        let (right, checked, cpu) = round(n)?;
        all_right += right;
        all_checked += checked;
        let _ = writeln!(
            md,
            "| {n} | {right} | {checked} | {cpu:.2} | {:.0} |",
            cpu * 1000.0 / n as f64
        );
    }
    md.push('\n');
    let sizes_text: Vec<String> = sizes.concurrency.iter().map(ToString::to_string).collect();
    verdict(
        verdicts,
        &format!(
            "every fact right, {} parallel docker run",
            sizes_text.join("/")
        ),
        format!("{all_right} of {all_checked}"),
        all_right == all_checked,
    );
    Ok(())
}
