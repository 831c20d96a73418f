//! What a command line says about containers: `containerd-shim-runc-v2 -namespace moby -id
//! ID`, `runc --root R create --bundle B ID`, `conmon --cid ID --name N`, `tracer run`, and
//! the paths runtimes put ids in.

use super::model::{ContainerEngine, Runtime};

/// A command line that names (or serves) a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// containerd's shim for one container; `engine` from its `-namespace` (`moby`: Docker).
    Shim { id: String, engine: ContainerEngine },
    /// podman's monitor for one container.
    Conmon { id: String, name: Option<String> },
    /// runc or crun with a subcommand and the container id.
    Runtime {
        runtime: Runtime,
        sub: Sub,
        id: String,
    },
    /// `tracer run` (its container id appears in its first mount).
    TracerRun { name: Option<String> },
    /// A runtime hook.
    Hook,
    /// util-linux `unshare` making a user namespace (`-U`, `-r`, `-c`, `--map-*`): a rootless
    /// sandbox of its own, with no engine or runtime around it.
    Unshare,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sub {
    Create,
    Run,
    Start,
    Delete,
    Exec,
    Kill,
    Other,
}

/// Runtime options that take a value as the next argument (runc and crun).
const VALUE_OPTS: &[&str] = &[
    "--root",
    "--log",
    "--log-format",
    "--criu",
    "--rootless",
    "--cgroup-manager",
    "--bundle",
    "-b",
    "--console-socket",
    "--pid-file",
    "--preserve-fds",
    "--process",
    "-p",
    "--cwd",
    "--env",
    "-e",
    "--user",
    "-u",
    "--cap",
    "-c",
    "--process-label",
    "--apparmor",
    "--cgroup",
    "--additional-gids",
    "-g",
    "--signal",
    "-s",
];

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// The value following `-id`/`--id` style options (also `--opt=value`).
pub(crate) fn opt_value<'a>(argv: &'a [String], names: &[&str]) -> Option<&'a str> {
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        if names.contains(&a.as_str()) {
            return it.next().map(String::as_str);
        }
        for n in names {
            if let Some(v) = a.strip_prefix(n).and_then(|r| r.strip_prefix('=')) {
                return Some(v);
            }
        }
    }
    None
}

/// Recognises a command line (`filename` is what was executed, `argv` its arguments).
pub fn classify(filename: &str, argv: &[String]) -> Option<Call> {
    let prog = basename(argv.first().map_or(filename, String::as_str));
    let file = basename(filename);
    if prog.starts_with("containerd-shim") || file.starts_with("containerd-shim") {
        let id = opt_value(argv, &["-id", "--id"])?;
        let engine = match opt_value(argv, &["-namespace", "--namespace"]) {
            Some("moby") => ContainerEngine::Docker,
            _ => ContainerEngine::Containerd,
        };
        return Some(Call::Shim {
            id: id.to_string(),
            engine,
        });
    }
    if prog == "conmon" || file == "conmon" {
        let id = opt_value(argv, &["--cid", "-c"])?;
        return Some(Call::Conmon {
            id: id.to_string(),
            name: opt_value(argv, &["--name", "-n"]).map(str::to_string),
        });
    }
    if prog == "libnetwork-setkey" || prog.ends_with("-hook") {
        return Some(Call::Hook);
    }
    if prog == "unshare" || file == "unshare" {
        return unshares_user(argv).then_some(Call::Unshare);
    }
    let runtime = match (prog, file) {
        ("runc", _) | (_, "runc") => Runtime::Runc,
        ("crun", _) | (_, "crun") => Runtime::Crun,
        ("tracer", _) | (_, "tracer") => {
            return (argv.get(1).map(String::as_str) == Some("run")).then(|| Call::TracerRun {
                name: opt_value(argv, &["--name"])
                    .filter(|_| {
                        // Only options before `--` belong to tracer.
                        let end = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
                        argv[..end].iter().any(|a| a.starts_with("--name"))
                    })
                    .map(str::to_string),
            });
        }
        _ => return None,
    };
    runtime_call(runtime, argv)
}

/// `runc|crun [global options] SUBCOMMAND [options] ID`: global options are skipped, then
/// the subcommand, then its first positional argument is the id.
fn runtime_call(runtime: Runtime, argv: &[String]) -> Option<Call> {
    let mut it = argv.iter().skip(1);
    let mut sub = None;
    while let Some(a) = it.next() {
        if a.starts_with('-') {
            if VALUE_OPTS.contains(&a.as_str()) {
                it.next();
            }
            continue;
        }
        if sub.is_none() {
            sub = Some(match a.as_str() {
                "create" => Sub::Create,
                "run" => Sub::Run,
                "start" => Sub::Start,
                "delete" => Sub::Delete,
                "exec" => Sub::Exec,
                "kill" => Sub::Kill,
                // `runc init` is the runtime's own helper: it inherits its parent's container.
                "init" | "spec" | "list" | "features" | "checkpoint" | "restore" => return None,
                _ => Sub::Other,
            });
            continue;
        }
        return Some(Call::Runtime {
            runtime,
            sub: sub?,
            id: a.clone(),
        });
    }
    None
}

/// Whether `unshare`'s options (those before its command) ask for a user namespace.
fn unshares_user(argv: &[String]) -> bool {
    // Options whose value may be the next argument.
    const LONG_VALUE: &[&str] = &[
        "--map-user",
        "--map-users",
        "--map-group",
        "--map-groups",
        "--propagation",
        "--setgroups",
        "--root",
        "--wd",
        "--setuid",
        "--setgid",
        "--monotonic",
        "--boottime",
    ];
    let mut it = argv.iter().skip(1);
    let mut user = false;
    while let Some(a) = it.next() {
        if a == "--" || !a.starts_with('-') || a == "-" {
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            user |= name == "user" || name.starts_with("map-");
            if !long.contains('=') && LONG_VALUE.contains(&a.as_str()) {
                it.next();
            }
            continue;
        }
        for (i, ch) in a.char_indices().skip(1) {
            match ch {
                'U' | 'r' | 'c' => user = true,
                // An optional value: the rest of the cluster.
                'm' | 'u' | 'i' | 'n' | 'p' | 'C' | 'T' if i + 1 < a.len() => break,
                // A required value: the rest of the cluster or the next argument.
                'R' | 'w' | 'S' | 'G' => {
                    if i + 1 == a.len() {
                        it.next();
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    user
}

/// A container id (64 hex digits) that is a whole component of `path`, as engines name
/// their per-container directories (`/var/lib/docker/containers/<id>/...`).
pub fn id_in_path(path: &str) -> Option<&str> {
    path.split('/').find(|part| is_long_id(part))
}

fn is_long_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A container id in a cgroup path, with the engine it implies: `/docker/<64 hex>`,
/// `docker-<id>.scope`, `libpod-<id>.scope`, `/machine.slice/libpod-<id>`.
pub fn cgroup_container(path: &str) -> Option<(ContainerEngine, &str)> {
    for part in path.rsplit('/') {
        let part = part.strip_suffix(".scope").unwrap_or(part);
        for (prefix, engine) in [
            ("libpod-", ContainerEngine::Podman),
            ("docker-", ContainerEngine::Docker),
            ("cri-containerd-", ContainerEngine::Containerd),
            ("crio-", ContainerEngine::Other("crio".into())),
            ("", ContainerEngine::Docker),
        ] {
            if let Some(id) = part.strip_prefix(prefix) {
                if is_long_id(id) {
                    let engine = if prefix.is_empty() && !path.contains("docker") {
                        ContainerEngine::Containerd
                    } else {
                        engine
                    };
                    return Some((engine, id));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    const ID: &str = "3f1ae2b5c7d94e0a8b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a";

    #[test]
    fn docker_shim_and_runc() {
        let shim = argv(&format!(
            "/usr/bin/containerd-shim-runc-v2 -namespace moby -address /run/containerd/containerd.sock -publish-binary /usr/bin/containerd -id {ID} start"
        ));
        assert_eq!(
            classify(&shim[0], &shim),
            Some(Call::Shim {
                id: ID.into(),
                engine: ContainerEngine::Docker
            })
        );
        let create = argv(&format!(
            "runc --root /var/run/docker/runtime-runc/moby --log /run/containerd/io.containerd.runtime.v2.task/moby/{ID}/log.json --log-format json create --bundle /run/containerd/io.containerd.runtime.v2.task/moby/{ID} --pid-file /run/x/init.pid {ID}"
        ));
        assert_eq!(
            classify("/usr/sbin/runc", &create),
            Some(Call::Runtime {
                runtime: Runtime::Runc,
                sub: Sub::Create,
                id: ID.into()
            })
        );
        let kill = argv(&format!("runc --root /r kill --all {ID} 15"));
        assert!(
            matches!(classify("/usr/sbin/runc", &kill), Some(Call::Runtime { sub: Sub::Kill, id, .. }) if id == ID)
        );
        assert_eq!(classify("/proc/self/exe", &argv("runc init")), None);
    }

    #[test]
    fn plain_runtimes_conmon_and_tracer() {
        assert_eq!(
            classify("/usr/bin/crun", &argv("crun run -b /tmp/bundle c1")),
            Some(Call::Runtime {
                runtime: Runtime::Crun,
                sub: Sub::Run,
                id: "c1".into()
            })
        );
        assert_eq!(
            classify(
                "/usr/bin/conmon",
                &argv(&format!(
                    "/usr/bin/conmon --api-version 1 -c {ID} -u {ID} -r /usr/sbin/runc -n web"
                ))
            ),
            Some(Call::Conmon {
                id: ID.into(),
                name: Some("web".into())
            })
        );
        assert_eq!(
            classify(
                "/usr/local/bin/tracer",
                &argv("tracer run --name web -- echo --name x")
            ),
            Some(Call::TracerRun {
                name: Some("web".into())
            })
        );
        assert_eq!(
            classify(
                "/usr/local/bin/tracer",
                &argv("tracer run -- echo --name x")
            ),
            Some(Call::TracerRun { name: None })
        );
        assert_eq!(classify("/usr/bin/tracer", &argv("tracer watch")), None);
        assert_eq!(classify("/bin/ls", &argv("ls -l")), None);
        assert_eq!(
            classify(
                "/usr/bin/containerd-shim-runc-v2",
                &argv("containerd-shim-runc-v2 -v")
            ),
            None
        );
    }

    #[test]
    fn unshare_with_a_user_namespace() {
        for yes in [
            "unshare -U -r -m -n sh",
            "unshare -Urmn sh",
            "unshare --user --map-root-user sh",
            "unshare --map-user=1000 --map-group 1000 sh",
            "unshare -c sleep 1",
            "unshare -f -p --mount-proc -r sh",
        ] {
            assert_eq!(
                classify("/usr/bin/unshare", &argv(yes)),
                Some(Call::Unshare),
                "{yes}"
            );
        }
        for no in [
            "unshare -m sh",
            "unshare -n -- sh -U",
            "unshare -mU sh",
            "unshare -R /r sh -r",
            "unshare --propagation private -m sh",
            "unshare",
        ] {
            assert_eq!(classify("/usr/bin/unshare", &argv(no)), None, "{no}");
        }
    }

    #[test]
    fn ids_in_paths() {
        assert_eq!(
            cgroup_container(&format!("/docker/{ID}")),
            Some((ContainerEngine::Docker, ID))
        );
        assert_eq!(
            cgroup_container(&format!("/machine.slice/libpod-{ID}.scope/container")),
            Some((ContainerEngine::Podman, ID))
        );
        assert_eq!(cgroup_container("/user.slice"), None);
        assert_eq!(
            cgroup_container(&format!(
                "/kubepods.slice/kubepods-besteffort.slice/x/cri-containerd-{ID}.scope"
            )),
            Some((ContainerEngine::Containerd, ID))
        );
        assert_eq!(
            id_in_path(&format!("/var/lib/docker/containers/{ID}/mounts/shm")),
            Some(ID)
        );
        assert_eq!(id_in_path("/var/lib/docker/overlay2/abc/merged"), None);
    }
}
