//! Every external program the project runs, with the Debian package that provides it and the
//! tasks that need it. `setup` installs from this table; the guard test below scans the code
//! and the scripts for the programs they start and fails on one that is in neither this table
//! nor [`BASE`], so the table cannot drift from the code.

/// What a program is needed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Task {
    /// Building the tracer and its kernel programs.
    Build,
    /// `cargo xtask test` on the host (unit, fixture and root tests).
    Test,
    /// `cargo xtask vm-test`: the stock kernel in QEMU.
    Vm,
    /// `cargo xtask demo`: the main job.
    Demo,
    /// `cargo xtask bench`: the peers and what the measurements run.
    Bench,
    /// `scripts/record-fixtures.sh`: real runtimes recorded by hand.
    Fixtures,
}

/// One program and where it comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tool {
    /// The program as the code names it (`Command::new` name, or the file name of a path
    /// the code reads, such as `/usr/bin/busybox`); `None` for a library package.
    pub(crate) program: Option<&'static str>,
    /// The Debian package.
    pub(crate) package: &'static str,
    pub(crate) tasks: &'static [Task],
}

const fn tool(program: &'static str, package: &'static str, tasks: &'static [Task]) -> Tool {
    Tool {
        program: Some(program),
        package,
        tasks,
    }
}

use Task::{Bench, Build, Demo, Fixtures, Test, Vm};

/// Everything installed from Debian's packages, by program.
pub(crate) const TOOLS: &[Tool] = &[
    // bpf-linker is built against this LLVM (`cargo install`, see setup).
    Tool {
        program: None,
        package: "llvm-22-dev",
        tasks: &[Build],
    },
    // tracer's build.rs strips the kernel programs' debug info (llvm-22 comes with -dev).
    tool("llvm-objcopy-22", "llvm-22-dev", &[Build]),
    // The built-in runtime's seccomp filters are compiled with libseccomp (linked).
    Tool {
        program: None,
        package: "libseccomp-dev",
        tasks: &[Build],
    },
    // tracefs is mounted with it when the system did not.
    tool("mount", "mount", &[Build, Test, Demo]),
    tool("umount", "mount", &[Demo]),
    tool("pivot_root", "util-linux", &[Demo]),
    tool("unshare", "util-linux", &[Test, Bench, Fixtures, Demo]),
    tool("setpriv", "util-linux", &[Test]),
    tool("nsenter", "util-linux", &[Test, Bench]),
    tool("ip", "iproute2", &[Test, Vm, Demo, Bench]),
    tool("runc", "runc", &[Test, Bench, Fixtures]),
    tool("umoci", "umoci", &[Test]),
    // Copied into test root filesystems and the VM's initramfs: it must be the static one.
    tool("busybox", "busybox-static", &[Test, Vm, Bench, Fixtures]),
    tool("qemu-system-x86_64", "qemu-system-x86", &[Vm]),
    tool("depmod", "kmod", &[Vm]),
    tool("cpio", "cpio", &[Vm]),
    tool("xz", "xz-utils", &[Vm]),
    tool("zstd", "zstd", &[Vm]),
    // The guest lists the loaded programs (the verifier's instruction counts) with it.
    tool("bpftool", "bpftool", &[Vm]),
    tool("bpftrace", "bpftrace", &[Bench]),
    tool("execsnoop", "libbpf-tools", &[Bench]),
    tool("crun", "crun", &[Bench, Fixtures]),
    // The attribution tests run real engines; their daemons are started by the tests.
    tool("docker", "docker.io", &[Test, Bench, Fixtures]),
    tool("dockerd", "docker.io", &[Test, Bench, Fixtures]),
    tool("containerd", "containerd", &[Test, Bench, Fixtures]),
    tool("podman", "podman", &[Test, Fixtures]),
    tool("pgrep", "procps", &[Test, Fixtures]),
    tool("pkill", "procps", &[Test]),
    // Rootless podman: a user of its own (useradd gives it /etc/subuid and /etc/subgid
    // ranges), shadow's newuidmap and newgidmap writing its maps.
    tool("useradd", "passwd", &[Test]),
    tool("runuser", "util-linux", &[Test]),
    tool("newuidmap", "uidmap", &[Test]),
    // Its user-mode network (the test opens /dev/net/tun to the user while it runs).
    tool("slirp4netns", "slirp4netns", &[Test]),
    // The live table's test draws it in a real terminal.
    tool("tmux", "tmux", &[Test]),
    // The telemetry tests: a real Prometheus scraping the metrics, curl for its HTTP API,
    // a virtualenv for the pinned Python tools (setup's `python_tools`), the unit checked.
    tool("prometheus", "prometheus", &[Test]),
    tool("curl", "curl", &[Test]),
    tool("python3", "python3", &[Test, Bench]),
    Tool {
        program: None,
        package: "python3-venv",
        tasks: &[Test],
    },
    tool("systemd-analyze", "systemd", &[Test]),
    // The HTML picture is opened in a real browser, offline.
    tool("chromium", "chromium", &[Test]),
    // The tracer's image is assembled from the binary and the libraries `ldd` lists.
    tool("ldd", "libc-bin", &[Test, Build]),
];

/// Programs that are part of the base system here and are never installed: Debian's
/// essential and required packages (coreutils, dash, bash, grep, sed, mawk, tar, dpkg, apt,
/// hostname), the Rust toolchain the machine comes with (rustup, cargo), what setup builds
/// itself (bpf-linker with `cargo install`), and the tracer's own binaries.
pub(crate) const BASE: &[&str] = &[
    // coreutils
    "cat",
    "chmod",
    "chroot",
    "cp",
    "dirname",
    "echo",
    "id",
    "ln",
    "ls",
    "mkdir",
    "mktemp",
    "rm",
    "rmdir",
    "seq",
    "sleep",
    "stdbuf",
    "timeout",
    "true",
    "dd",
    "touch",
    "stat",
    "uname",
    "wc",
    ":",
    // shells and text tools
    "sh",
    "bash",
    "grep",
    "sed",
    "awk",
    "tar",
    "hostname",
    "install",
    "find",
    "kill",
    "wait",
    // package tools
    "apt-get",
    "apt-cache",
    "dpkg-query",
    "dpkg-deb",
    // the toolchain, and what setup builds with it
    "rustup",
    "cargo",
    "bpf-linker",
    // this project's binaries
    "tracer",
    "exec-storm",
    "json-floor",
    "build-image.sh",
];

/// The Debian packages the tasks need, each once, in table order.
pub(crate) fn packages_for(tasks: &[Task]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for t in TOOLS {
        if t.tasks.iter().any(|k| tasks.contains(k)) && !out.contains(&t.package) {
            out.push(t.package);
        }
    }
    out
}

/// `cargo xtask tools`: the table, as setup uses it.
pub(crate) fn print() {
    println!("{:<20} {:<16} needed by", "program", "package");
    for t in TOOLS {
        let tasks: Vec<String> = t
            .tasks
            .iter()
            .map(|k| format!("{k:?}").to_lowercase())
            .collect();
        println!(
            "{:<20} {:<16} {}",
            t.program.unwrap_or("(library)"),
            t.package,
            tasks.join(", ")
        );
    }
    println!("\nbase system, never installed: {}", BASE.join(" "));
}

/// Whether `program` is accounted for: in the table or in the base system.
#[cfg(test)]
pub(crate) fn known(program: &str) -> bool {
    BASE.contains(&program) || TOOLS.iter().any(|t| t.program == Some(program))
}

#[cfg(test)]
mod guard {
    //! Finds every program the code and the scripts start (`Command::new("…")` in Rust,
    //! programs read by absolute path in tests and tasks, command words in shell scripts) and
    //! checks each against the table.

    use std::{
        fs,
        path::{Path, PathBuf},
    };

    use super::*;

    /// Shell words that are not programs.
    const SHELL_WORDS: &[&str] = &[
        "if", "then", "else", "elif", "fi", "for", "in", "do", "done", "while", "until", "case",
        "esac", "function", "return", "local", "set", "shift", "exit", "exec", "trap", "cd",
        "export", "read", "break", "continue", "[", "[[", "test", "{", "}", "!", "eval", "unset",
        "printf", "source", ".", "declare", "readonly", "command", "type",
    ];

    /// Programs that take another program as their first non-option argument.
    const WRAPPERS: &[&str] = &["timeout", "stdbuf"];

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        if dir.is_file() {
            out.push(dir.to_path_buf());
            return;
        }
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// String literals in `text` with their offsets (plain `"…"`, escapes skipped).
    fn literals_at(text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let mut chars = text.char_indices();
        while let Some((at, c)) = chars.next() {
            if c != '"' {
                continue;
            }
            let mut s = String::new();
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => break,
                    c => s.push(c),
                }
            }
            out.push((at, s));
        }
        out
    }

    fn literals(text: &str) -> Vec<String> {
        literals_at(text).into_iter().map(|(_, s)| s).collect()
    }

    /// The text from `start` (just after an opening parenthesis) to its closing one.
    fn balanced(text: &str, start: usize) -> &str {
        let mut depth = 1;
        let mut in_str = false;
        let mut escaped = false;
        for (i, c) in text[start..].char_indices() {
            if in_str {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_str = true,
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return &text[start..start + i];
                    }
                }
                _ => {}
            }
        }
        &text[start..]
    }

    fn program_name(s: &str) -> Option<String> {
        let name = s.rsplit('/').next()?;
        let ok = !name.is_empty()
            && !name.starts_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
        ok.then(|| name.to_string())
    }

    /// Programs a Rust source starts: the literals of every `Command::new(…)` and, for a
    /// wrapper such as `timeout`, the first plain literal argument after it.
    pub(super) fn rust_programs(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (at, _) in text.match_indices("Command::new(") {
            let start = at + "Command::new(".len();
            let args = balanced(text, start);
            for (at, lit) in literals_at(args) {
                // `env!("CARGO_BIN_EXE_x")`, `var("CARGO")`: a program found at run time.
                let before = args[..at].trim_end();
                if before.ends_with("env!(") || before.ends_with("var(") {
                    continue;
                }
                let Some(name) = program_name(&lit) else {
                    continue;
                };
                if WRAPPERS.contains(&name.as_str()) {
                    // The wrapped program is the first literal after it that is neither an
                    // option nor a number, in the calls that follow.
                    let rest = &text[start + args.len()..];
                    let end = rest.find("Command::new(").unwrap_or(rest.len()).min(600);
                    if let Some(p) = literals(&rest[..end.min(rest.len())])
                        .into_iter()
                        .find(|l| !l.starts_with('-') && !l.chars().all(|c| c.is_ascii_digit()))
                    {
                        out.extend(program_name(&p));
                    }
                }
                out.push(name);
            }
        }
        out
    }

    /// Programs named by absolute path (`"/usr/bin/busybox"`), as tests and tasks copy or
    /// run them.
    pub(super) fn path_programs(text: &str) -> Vec<String> {
        literals(text)
            .into_iter()
            .filter_map(|l| {
                ["/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/"]
                    .iter()
                    .find_map(|d| l.strip_prefix(d))
                    .filter(|rest| !rest.contains('/') && !rest.contains(' '))
                    .and_then(program_name)
            })
            .collect()
    }

    /// Command words of a shell script: the first word of each simple command. A single-quoted
    /// string is scanned as code when it is a `-c` script (`bash -c '…'`) and skipped
    /// otherwise (a `sed` expression); double-quoted `sh -c "…"` bodies are split like code.
    pub(super) fn shell_programs(text: &str) -> Vec<String> {
        let functions: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().split_once("()"))
            .map(|(name, _)| name.trim())
            .filter(|n| !n.contains(' '))
            .collect();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(|l| l.split(" #").next().unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        // `${VAR:-default}` is a value, not code.
        let mut code = code;
        while let Some(open) = code.find("${") {
            let close = code[open..].find('}').map_or(code.len(), |c| open + c + 1);
            code.replace_range(open..close, "$V");
        }
        let mut unquoted = String::new();
        let mut scripts = Vec::new();
        let mut rest = code.as_str();
        while let Some(open) = rest.find('\'') {
            let (before, after) = rest.split_at(open);
            unquoted.push_str(before);
            let after = &after[1..];
            let close = after.find('\'').unwrap_or(after.len());
            if before.trim_end().ends_with("-c") {
                scripts.push(after[..close].to_string());
            }
            unquoted.push('Q');
            rest = &after[(close + 1).min(after.len())..];
        }
        unquoted.push_str(rest);
        let mut out = Vec::new();
        let separators = ['\n', ';', '|', '&', '(', '`', '{', '}'];
        for segment in unquoted.split(separators) {
            let mut program = None;
            for (i, raw) in segment.split_whitespace().enumerate() {
                // `pattern) command ;;` in a case.
                if i == 0 && raw.ends_with(')') && !raw.starts_with('"') {
                    continue;
                }
                let w = raw.trim_start_matches('"').trim_end_matches([')', '"']);
                let keyword = matches!(
                    w,
                    "if" | "then"
                        | "else"
                        | "elif"
                        | "do"
                        | "while"
                        | "until"
                        | "!"
                        | "time"
                        | "exec"
                );
                // `X=1 cmd`: the command follows.
                let assignment = w.split('/').next().is_some_and(|h| h.contains('='));
                if !keyword && !assignment {
                    program = Some(w);
                    break;
                }
            }
            let Some(w) = program else { continue };
            let skip = w.is_empty()
                || w.starts_with(['$', '[', '-', '<', '>', '*', '.'])
                || w.chars().next().is_some_and(|c| c.is_ascii_digit())
                || SHELL_WORDS.contains(&w)
                || functions.contains(&w);
            if !skip {
                out.extend(program_name(w));
            }
        }
        for script in scripts {
            out.extend(shell_programs(&script));
        }
        out
    }

    fn unknown(found: Vec<String>, place: &Path, bad: &mut Vec<String>) {
        for p in found {
            if !known(&p) {
                bad.push(format!("{p} (in {})", place.display()));
            }
        }
    }

    #[test]
    fn every_program_the_code_starts_is_in_the_table() {
        let root = crate::root();
        let mut files = Vec::new();
        for dir in [
            "tracer/build.rs",
            "tracer/src",
            "tracer/tests",
            "integration/src",
            "integration/tests",
            "xtask/src",
            "tracer-common/src",
        ] {
            rust_files(&root.join(dir), &mut files);
        }
        assert!(files.len() > 20, "found only {} Rust files", files.len());
        let mut bad = Vec::new();
        let mut seen = 0;
        for f in &files {
            let text = fs::read_to_string(f).unwrap();
            let rel = f.strip_prefix(&root).unwrap();
            let mut found = rust_programs(&text);
            // Test data in the product's sources names programs it never runs.
            if !rel.starts_with("tracer/src") {
                found.extend(path_programs(&text));
            }
            // The guard's own tests name made-up programs on purpose.
            if rel.ends_with("tools.rs") {
                continue;
            }
            seen += found.len();
            unknown(found, rel, &mut bad);
        }
        for e in fs::read_dir(root.join("scripts")).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "sh") {
                let found = shell_programs(&fs::read_to_string(&p).unwrap());
                seen += found.len();
                unknown(found, p.strip_prefix(&root).unwrap(), &mut bad);
            }
        }
        assert!(seen > 50, "the scan found only {seen} program uses");
        assert!(
            bad.is_empty(),
            "programs started by the code but in neither xtask's TOOLS table nor BASE:\n  {}",
            bad.join("\n  ")
        );
    }

    #[test]
    fn a_new_program_is_caught() {
        let code = r#"let out = Command::new("sometool").arg("-x").output();"#;
        let found = rust_programs(code);
        assert_eq!(found, ["sometool"]);
        assert!(!known("sometool"));
        assert_eq!(
            rust_programs(r#"Command::new(if a { "runc" } else { "crun" })"#),
            ["runc", "crun"]
        );
        let wrapped = r#"let mut c = Command::new("timeout"); c.arg(secs.to_string()).arg("qemu-system-x86_64").args(["-m", "1"]);"#;
        assert_eq!(rust_programs(wrapped), ["qemu-system-x86_64", "timeout"]);
        assert_eq!(
            path_programs(r#"fs::copy("/usr/bin/busybox", dst); let x = "/proc/self/exe";"#),
            ["busybox"]
        );
    }

    #[test]
    fn shell_command_words() {
        let script = "#!/bin/bash\nset -eu\nfoo() {\n  docker info >/dev/null 2>&1 || {\n    pgrep -x containerd || (containerd &)\n  }\n}\nX=1 skopeo copy a b\nfor n in a b; do foo; done\nid=$(umoci raw x) && tar -cf x .\n[ -x f ] && echo ok # not: comment\n";
        let found = shell_programs(script);
        for want in [
            "docker",
            "pgrep",
            "containerd",
            "skopeo",
            "umoci",
            "tar",
            "echo",
        ] {
            assert!(found.iter().any(|f| f == want), "{want} not in {found:?}");
        }
        for not in ["foo", "set", "for", "n", "comment", "x", "info"] {
            assert!(!found.iter().any(|f| f == not), "{not} in {found:?}");
        }
    }

    #[test]
    fn every_task_has_its_packages() {
        let test = packages_for(&[Task::Build, Task::Test, Task::Vm]);
        for p in ["llvm-22-dev", "umoci", "runc", "busybox-static", "iproute2"] {
            assert!(test.contains(&p), "{p} missing from the test packages");
        }
        assert!(!test.contains(&"bpftrace"));
    }
}
