//! The `tracer` library, in pipeline order (each stage uses only those before it):
//!
//! - [`event`]: the decoded, typed event (and its one-line text);
//! - [`capture`]: the kernel programs loaded and attached, their records decoded into events;
//! - [`correlate`]: events into containers, with phases and processes;
//! - [`document`]: the versioned trace document, and [`report`], which reads one back;
//! - [`render`]: the stream, JSON Lines, tables, timelines, Chrome traces;
//! - [`commands`]: the subcommands that drive them.
//!
//! [`runtime`] is the built-in container runtime behind `tracer run`, beside the pipeline
//! rather than inside it; correlation reads only its naming rules ([`runtime::naming`]).

pub mod capture;
pub mod commands;
pub mod correlate;
pub mod document;
pub mod event;
pub mod export;
pub mod render;
pub mod report;
pub mod runtime;

/// The stages depend on each other in one direction only: each file may name only the
/// stages allowed below its own.
#[cfg(test)]
mod layering {
    use std::{collections::BTreeSet, fs, path::Path};

    /// Each stage and the stages it may use.
    const ALLOWED: &[(&str, &[&str])] = &[
        ("event", &[]),
        ("capture", &["event"]),
        ("correlate", &["event", "runtime::naming"]),
        ("document", &["event", "capture", "correlate"]),
        ("report", &["event", "capture", "correlate", "document"]),
        ("export", &["event", "capture", "correlate"]),
        (
            "render",
            &["event", "capture", "correlate", "document", "report"],
        ),
        (
            "commands",
            &[
                "event",
                "capture",
                "correlate",
                "document",
                "report",
                "render",
                "export",
                "runtime",
            ],
        ),
        ("runtime", &["event"]),
    ];

    /// The crate paths a source names: `crate::a::b` and the items of `use crate::{a, b::c}`,
    /// each as its first two segments.
    fn named(text: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut rest = text;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 1;
                let end = group
                    .char_indices()
                    .find(|&(_, c)| {
                        depth += match c {
                            '{' => 1,
                            '}' => -1,
                            _ => 0,
                        };
                        depth == 0
                    })
                    .map_or(group.len(), |(i, _)| i);
                let mut depth = 0;
                let mut item = String::new();
                for c in group[..end].chars().chain([',']) {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.insert(two_segments(item.trim()));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
            } else {
                let path: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                out.insert(two_segments(&path));
            }
        }
        out.remove("");
        out
    }

    fn two_segments(path: &str) -> String {
        let path = path.trim_start_matches('{');
        let mut parts = path
            .split("::")
            .map(|p| p.trim_matches(|c: char| !c.is_alphanumeric() && c != '_'));
        match (parts.next(), parts.next()) {
            (Some(a), Some(b)) if !b.is_empty() => format!("{a}::{b}"),
            (Some(a), _) => a.to_string(),
            _ => String::new(),
        }
    }

    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    #[test]
    fn stages_depend_one_way() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut all = Vec::new();
        files(&src, &mut all);
        let mut bad = Vec::new();
        let mut checked = 0;
        for path in &all {
            let rel = path.strip_prefix(&src).unwrap();
            let stage = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            let Some((_, allowed)) = ALLOWED.iter().find(|(s, _)| *s == stage) else {
                // main.rs and lib.rs sit above every stage.
                continue;
            };
            checked += 1;
            for name in named(&fs::read_to_string(path).unwrap()) {
                let top = name.split("::").next().unwrap();
                let ok = top == stage
                    || allowed
                        .iter()
                        .any(|a| *a == top || (a.contains("::") && name.starts_with(a)));
                if !ok {
                    bad.push(format!("{} uses crate::{name}", rel.display()));
                }
            }
        }
        assert!(checked > 40, "only {checked} files checked");
        assert!(
            bad.is_empty(),
            "imports against the pipeline's direction:\n  {}",
            bad.join("\n  ")
        );
    }

    #[test]
    fn crate_paths_are_found() {
        let names = named(
            "use crate::{\n    capture::{loader::X, stats},\n    event::Event,\n};\nlet a = crate::runtime::naming::veth_names(id);",
        );
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            names,
            ["capture::loader", "event::Event", "runtime::naming"]
        );
    }
}
