//! The timeline of each container: its phases in order, with times relative to its first
//! event, how long each took, and the event behind it. `--explain` adds what each phase
//! does and why, in plain words.

use std::{collections::BTreeMap, fmt::Write as _};

use crate::{
    correlate::{Container, ContainerEngine, Phase, PhaseKind, Runtime, Unattributed},
    event::{Detail, Event},
    render::lifecycle::{exit_text, ms, truncate},
};

/// Longest key event shown.
const KEY_CHARS: usize = 110;

pub fn render(containers: &[Container], explain: bool) -> String {
    let mut out = String::new();
    if containers.is_empty() {
        return out;
    }
    for c in containers {
        let _ = writeln!(
            out,
            "\ncontainer {}{}{} ({}) {}: exit {}, found by {}",
            c.short_id(),
            if c.lifecycle > 1 {
                format!(" (start #{})", c.lifecycle)
            } else {
                String::new()
            },
            c.name
                .as_ref()
                .map(|n| format!(" \"{n}\""))
                .unwrap_or_default(),
            c.runtime_label(),
            truncate(&c.command.join(" "), 60),
            exit_text(c),
            c.found_by,
        );
        for f in &c.facts {
            let _ = writeln!(
                out,
                "  {:>10}  {:<15} {}  [{}]",
                "",
                f.fact.name(),
                truncate(&f.value, 80),
                f.evidence.name()
            );
        }
        for (name, map) in [
            ("uid map", &c.security.uid_map),
            ("gid map", &c.security.gid_map),
        ] {
            if let Some(map) = map {
                let lines: Vec<&str> = map.lines().map(str::trim).collect();
                let _ = writeln!(
                    out,
                    "  {:>10}  {:<15} {}  [written]",
                    "",
                    name,
                    truncate(&lines.join(", "), 80)
                );
            }
        }
        let gaps = gaps(c);
        let mut shown = 0;
        for p in &c.phases {
            for (from, to) in gaps
                .iter()
                .filter(|(_, to)| *to <= p.start_ns && *to > shown)
            {
                let _ = writeln!(
                    out,
                    "  {:>10}  {}",
                    format!("+{}", ms(from.saturating_sub(c.created_ns))),
                    wrap(&gap_sentence(to - from), 90, "              ").trim_start()
                );
            }
            shown = shown.max(p.start_ns);
            let _ = writeln!(
                out,
                "  {:>10}  {:<15} {:>9}  {}  [{}]",
                format!("+{}", ms(p.start_ns.saturating_sub(c.created_ns))),
                p.kind.name(),
                ms(p.end_ns - p.start_ns),
                truncate(&p.key, KEY_CHARS),
                p.evidence.name(),
            );
            if explain {
                let _ = writeln!(out, "{}", wrap(&sentence(c, p), 76, "      "));
            }
        }
    }
    out.push('\n');
    out
}

/// Stretches of a container's launch longer than a tenth of it in which no phase was
/// active: (from, to), `to` being where the next phase starts.
pub fn gaps(c: &Container) -> Vec<(u64, u64)> {
    let Some(started) = c.started_ns else {
        return Vec::new();
    };
    let launch = started.saturating_sub(c.created_ns);
    // A phase of one or two events is busy at those instants only, not in between.
    let mut busy: Vec<(u64, u64)> = Vec::new();
    for p in &c.phases {
        if p.events <= 2 {
            busy.push((p.start_ns, p.start_ns));
            busy.push((p.end_ns, p.end_ns));
        } else {
            busy.push((p.start_ns, p.end_ns));
        }
    }
    busy.sort_unstable();
    let mut out = Vec::new();
    let mut reached = c.created_ns;
    for (start, end) in busy {
        if start > started {
            break;
        }
        if start > reached && (start - reached) * 10 > launch {
            out.push((reached, start));
        }
        reached = reached.max(end);
    }
    out
}

/// What a gap is: time in which nothing this tracer observes happened.
pub fn gap_sentence(ns: u64) -> String {
    format!(
        "({} with no traced call: the runtime and the engine wait on each other over pipes \
         and sockets, and write files (configuration, sysctls, firewall rules): neither is \
         observed)",
        ms(ns)
    )
}

/// Events no evidence ties to a container: the daemons' own activity, shown as such.
pub fn unattributed(list: &[Unattributed], total: u64) -> String {
    const SHOWN: usize = 20;
    if total == 0 {
        return String::new();
    }
    let mut out = format!(
        "\nnot attributed (no event names a container): {total} event{}\n",
        if total == 1 { "" } else { "s" }
    );
    for u in list.iter().take(SHOWN) {
        let _ = writeln!(out, "  {}", truncate(&u.key, 120));
    }
    let shown = list.len().min(SHOWN) as u64;
    if total > shown {
        let _ = writeln!(out, "  ... and {} more", total - shown);
    }
    out
}

/// The host processes of no container, gathered one event at a time (`--all`).
#[derive(Default)]
pub struct HostActivity {
    /// tgid → (comm, events, argv).
    procs: BTreeMap<u32, (String, usize, String)>,
}

impl HostActivity {
    /// Counts an event of no container.
    pub fn add(&mut self, ev: &Event) {
        let entry = self
            .procs
            .entry(ev.tgid)
            .or_insert_with(|| (ev.comm.clone(), 0, String::new()));
        entry.1 += 1;
        if let Detail::Exec { argv, .. } = &ev.detail {
            entry.0 = ev.comm.clone();
            entry.2 = argv.join(" ");
        }
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "\nhost activity (no container): {} processes\n",
            self.procs.len()
        );
        for (pid, (comm, n, argv)) in &self.procs {
            let _ = writeln!(
                out,
                "  {pid:>8}  {:<16} {n:>6} events  {}",
                truncate(comm, 16),
                truncate(argv, 80)
            );
        }
        out
    }
}

/// Word-wraps `text` to `width` columns, each line starting with `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut lines = vec![indent.to_string()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line");
        if line.len() > indent.len() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(format!("{indent}{word}"));
        } else {
            if line.len() > indent.len() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines.join("\n")
}

/// What the phase does and why, in plain words (`--explain`).
pub fn sentence(c: &Container, p: &Phase) -> String {
    match p.kind {
        PhaseKind::ImageMount
        | PhaseKind::EngineSetup
        | PhaseKind::Shim
        | PhaseKind::Hooks
        | PhaseKind::NetworkConfig
        | PhaseKind::Network => preparing(c, p),
        PhaseKind::RuntimeInit | PhaseKind::Cgroup | PhaseKind::Namespaces => isolating(c, p),
        PhaseKind::UserNamespace | PhaseKind::Security => securing(c, p),
        PhaseKind::RootfsMounts
        | PhaseKind::PivotRoot
        | PhaseKind::MaskPaths
        | PhaseKind::Start
        | PhaseKind::UserExec => rooting(c, p),
        PhaseKind::Exec
        | PhaseKind::Kill
        | PhaseKind::Exit
        | PhaseKind::Delete
        | PhaseKind::Unmount
        | PhaseKind::NetworkCleanup => ending(c, p),
    }
}

/// Who acts for the container: the engine, else the runtime.
fn actor(c: &Container) -> &str {
    match &c.engine {
        Some(ContainerEngine::Docker) => "dockerd",
        Some(e) => e.name(),
        None if c.runtime == Runtime::Tracer => "tracer run",
        None => c.runtime.name(),
    }
}

/// The engine's phases before the runtime's root: image, shim, network, hooks.
fn preparing(c: &Container, p: &Phase) -> String {
    let rt = c.runtime.name();
    let who = actor(c);
    match p.kind {
        PhaseKind::ImageMount => format!(
            "{who} stacks the image's read-only layers under a fresh writable layer with an \
             overlay mount: that merged directory becomes the container's root filesystem, \
             and the image itself is never modified."
        ),
        PhaseKind::EngineSetup => format!(
            "{} prepares what the container needs from the engine before the runtime runs: \
             its /dev/shm and its own directory of files (hostname, hosts, resolv.conf).",
            p.comm
        ),
        PhaseKind::Shim => format!(
            "{} starts {}: the shim stays beside the container for its whole life, holding \
             its output and collecting its exit status, so the engine itself can restart \
             without killing it.",
            p.comm,
            match &c.engine {
                Some(ContainerEngine::Podman) => "conmon",
                _ => "the containerd shim (containerd-shim-runc-v2)",
            }
        ),
        PhaseKind::Hooks => format!(
            "{rt} runs the OCI hooks of the bundle while the container waits, namespaces made \
             but root not yet pivoted{}.",
            if c.engine == Some(ContainerEngine::Docker) {
                ": Docker's prestart hook `libnetwork-setkey` calls back into dockerd, which \
                 then configures the container's network"
            } else {
                ""
            }
        ),
        PhaseKind::NetworkConfig => format!(
            "{who} enters the container's network namespace (setns) to configure it from \
             inside: the interface's address and routes, IPv6 settings; the runtime waits \
             for it before pivot_root."
        ),
        PhaseKind::Network if c.veths.is_empty() && network_helper(c).is_some() => format!(
            "{} (a user-mode network, run inside the rootless user namespace) enters the \
             container's network namespace and makes a tap device there; it relays the \
             container's packets through ordinary sockets on the host: no veth, no bridge, \
             nothing that needs root.",
            network_helper(c).unwrap_or_default()
        ),
        PhaseKind::Network => format!(
            "A veth pair is created: one end stays on the host, attached to the bridge, the \
             other is moved into the container's network namespace to become its eth0{}.",
            if c.engine.is_some() {
                "; the engine keeps that namespace alive with a bind mount under /run"
            } else {
                ""
            }
        ),
        // Dispatched by `sentence`.
        _ => String::new(),
    }
}

/// The user-mode network helper that entered the container's network namespace.
fn network_helper(c: &Container) -> Option<&str> {
    c.facts
        .iter()
        .find(|f| f.fact == crate::correlate::FactKind::NetworkHelper)
        .map(|f| f.value.as_str())
}

/// The runtime's own preparation: its helpers, the cgroup, the namespaces.
fn isolating(c: &Container, p: &Phase) -> String {
    let rt = c.runtime.name();
    let kinds = if c.new_namespaces.is_empty() {
        "new".to_string()
    } else {
        let names: Vec<&str> = c.new_namespaces.iter().map(|k| k.name()).collect();
        names.join(", ")
    };
    match p.kind {
        PhaseKind::RuntimeInit => match &c.runtime {
            Runtime::Runc => {
                "runc forks `runc init`, which re-executes itself from a sealed copy of \
                       the runc binary (so the container can never overwrite the host's runc) \
                       and joins the container's cgroup."
                    .into()
            }
            Runtime::Crun => "crun re-executes itself from a sealed copy of its binary (so the \
                       container can never overwrite it) and prepares the cgroup."
                .into(),
            Runtime::Tracer => {
                "tracer run creates the cgroup and state directory, then clones the \
                         container's first process; with other threads running in tracer \
                         run, that process re-executes tracer as its init."
                    .into()
            }
            Runtime::Other(name) if name == "unshare" => {
                "unshare (util-linux) is run with a user namespace: no engine, image or \
                 cgroup of its own, it makes the namespaces itself, writes the ID maps and runs \
                 the command inside, a rootless sandbox."
                    .into()
            }
            Runtime::Other(_) => format!("{rt} prepares the container's processes and cgroup."),
        },
        PhaseKind::Cgroup => format!(
            "{} makes the container's cgroup and moves its first process in: from now on \
             the kernel counts and limits the memory, CPU and processes of everything inside \
             it as one ({}).",
            p.comm,
            c.cgroups
                .first()
                .map_or("its own directory", String::as_str)
        ),
        PhaseKind::Namespaces => {
            let op = match p.call.as_deref() {
                Some("unshare") => "unshare()",
                Some("setns") => "setns()",
                _ => "clone() with CLONE_NEW* flags",
            };
            format!(
                "{} calls {op}: the container gets its own {kinds} namespaces, so it sees only \
                 its own processes, mounts, hostname, IPC objects and network devices.",
                p.comm
            )
        }
        // Dispatched by `sentence`.
        _ => String::new(),
    }
}

/// Docker's default capabilities (moby's `DefaultCapabilities`): 14 of them.
const DOCKER_CAPS: u64 = 1 << 0 // chown
    | 1 << 1 // dac_override
    | 1 << 3 // fowner
    | 1 << 4 // fsetid
    | 1 << 5 // kill
    | 1 << 6 // setgid
    | 1 << 7 // setuid
    | 1 << 8 // setpcap
    | 1 << 10 // net_bind_service
    | 1 << 13 // net_raw
    | 1 << 18 // sys_chroot
    | 1 << 27 // mknod
    | 1 << 29 // audit_write
    | 1 << 31; // setfcap

/// The user namespace and the security setup: what the container's root may do.
fn securing(c: &Container, p: &Phase) -> String {
    let s = &c.security;
    match p.kind {
        PhaseKind::UserNamespace => format!(
            "{} creates a user namespace ({}) and its ID maps are written: {}, and its \
             capabilities count only for what the namespace owns.",
            p.comm,
            match c.ns.user {
                0 => "inode unknown".to_string(),
                n => format!("user:[{n}]"),
            },
            match c.security.uid_mapping() {
                Some(m) => format!(
                    "uids map inside → host as {m}, so the container's root is that host uid"
                ),
                None => "inside it, uid 0 is the container's root, but on the host it is \
                         whichever uid the namespace's uid_map names"
                    .to_string(),
            }
        ),
        PhaseKind::Security => {
            let mut steps = Vec::new();
            if let Some([e, _, _]) = s.caps {
                let n = e.count_ones();
                steps.push(if e == DOCKER_CAPS {
                    "drops to Docker's 14 default capabilities".to_string()
                } else if e & crate::event::flags::ALL_CAPS == crate::event::flags::ALL_CAPS {
                    "keeps every capability".to_string()
                } else {
                    format!(
                        "drops to {n} capabilit{} ({})",
                        if n == 1 { "y" } else { "ies" },
                        truncate(&crate::event::flags::cap_set(e), 60)
                    )
                });
            }
            if s.bounding_dropped != 0 {
                steps.push(format!(
                    "removes {} from the bounding set, so no exec can gain them back",
                    s.bounding_dropped.count_ones()
                ));
            }
            if s.no_new_privs {
                steps.push("sets no_new_privs (setuid binaries no longer raise privileges)".into());
            }
            match s.seccomp_filters.as_slice() {
                [] => {}
                [n] => steps.push(format!(
                    "loads a seccomp filter of {n} instructions{}",
                    if c.engine.is_some() {
                        ": the engine's profile, whose refused calls (keyctl, mount, reboot, \
                         unshare of a user namespace, ...) fail from now on"
                    } else {
                        ": system calls it refuses fail from now on"
                    }
                )),
                many => steps.push(format!(
                    "loads {} seccomp filters ({} instructions)",
                    many.len(),
                    many.iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(" + ")
                )),
            }
            if steps.is_empty() {
                steps.push("adjusts its capabilities".into());
            }
            let last = steps.pop().unwrap_or_default();
            let list = if steps.is_empty() {
                last
            } else {
                format!("{}, and {last}", steps.join(", "))
            };
            format!(
                "Just before the user command, {} {list}. These limits pass to the command and \
                 every process it starts.",
                p.comm
            )
        }
        // Dispatched by `sentence`.
        _ => String::new(),
    }
}

/// The phases that make its root and start its command.
fn rooting(c: &Container, p: &Phase) -> String {
    let rt = c.runtime.name();
    match p.kind {
        PhaseKind::RootfsMounts => format!(
            "Inside its new mount namespace, {} mounts what a Linux program expects into the \
             future root: /proc, /sys, a small /dev with devpts, mqueue and shm, the cgroup \
             files, and bind mounts such as /etc/hostname and /etc/resolv.conf.",
            p.comm
        ),
        PhaseKind::PivotRoot => "pivot_root() swaps the prepared directory in as the root of \
                                 the mount namespace, and the old root is unmounted: the \
                                 host's files are no longer reachable from inside."
            .into(),
        PhaseKind::MaskPaths => "Sensitive kernel files are masked (/dev/null or an empty \
                                 read-only tmpfs mounted over them) and others remounted \
                                 read-only, so the container can neither read host secrets \
                                 nor reconfigure the kernel."
            .into(),
        PhaseKind::Start => format!(
            "The engine runs `{rt} start`: the created container has been waiting, fully set \
             up, and is now told to run its command."
        ),
        PhaseKind::UserExec => format!(
            "The runtime's init process execs the user's command ({}); it becomes PID 1 of the \
             container, with the runtime's code gone from memory.",
            truncate(&c.command.join(" "), 60)
        ),
        // Dispatched by `sentence`.
        _ => String::new(),
    }
}

/// The phases of a running container and its end.
fn ending(c: &Container, p: &Phase) -> String {
    let rt = c.runtime.name();
    match p.kind {
        PhaseKind::Exec => "Another process joins the running container's namespaces with \
                            setns() and runs a command there (docker exec, runc exec): a \
                            second way in, sharing everything with PID 1."
            .into(),
        PhaseKind::Kill => format!(
            "`{rt} kill` signals the container's init (docker stop sends SIGTERM, then SIGKILL \
             when the grace period ends)."
        ),
        PhaseKind::Exit => format!(
            "PID 1 of the container exits ({}); the kernel then kills every other process \
             left in its PID namespace.",
            match (c.exit_code, c.signal, &c.killed_by) {
                (_, _, _) if c.oom_killed => {
                    "chosen by the OOM killer: the cgroup's memory limit was reached".into()
                }
                (Some(code), _, _) => format!("status {code}"),
                (None, Some(sig), Some(s)) => {
                    format!("killed by signal {sig}, sent by {} {}", s.comm, s.pid)
                }
                (None, Some(sig), None) => format!("killed by signal {sig}"),
                _ => "status unknown".into(),
            }
        ),
        PhaseKind::Delete => format!(
            "`{rt} delete` removes what the runtime kept for the container: its state \
             directory and cgroup."
        ),
        PhaseKind::Unmount => "The container's root filesystem and its other mounts are \
                               unmounted; the writable layer goes away with a --rm container."
            .into(),
        PhaseKind::NetworkCleanup => "The network namespace's bind mount is removed, the \
                                      namespace is freed and its veth pair disappears with it."
            .into(),
        // Dispatched by `sentence`.
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_width() {
        let w = wrap(&"word ".repeat(50), 30, "  ");
        assert!(
            w.lines().all(|l| l.len() <= 30 && l.starts_with("  ")),
            "{w}"
        );
        assert_eq!(w.split_whitespace().count(), 50);
    }
}
