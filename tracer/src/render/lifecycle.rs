//! The lifecycle table: one row per container, sized for the terminal (80 columns when
//! not a terminal), coloured only on a terminal.

use comfy_table::{
    presets, Attribute, Cell, CellAlignment, Color, ColumnConstraint, ContentArrangement, Table,
    Width,
};

use crate::{correlate::Container, event::Clock};

/// Longest command shown in the table.
const COMMAND_CHARS: usize = 40;

/// The terminal's width on stdout, or 80.
pub fn width() -> u16 {
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we own.
    let ok = unsafe { nix::libc::ioctl(nix::libc::STDOUT_FILENO, nix::libc::TIOCGWINSZ, &mut ws) };
    if ok == 0 && ws.ws_col >= 40 {
        ws.ws_col
    } else {
        80
    }
}

/// Colour when `out` is a terminal and `NO_COLOR` is not set.
pub fn color_on(out: &impl std::io::IsTerminal) -> bool {
    out.is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Words joined by spaces into lines of at most `width` characters.
fn pack<'a>(words: impl IntoIterator<Item = &'a str>, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for w in words {
        match lines.last_mut() {
            Some(l) if l.len() + 1 + w.len() <= width => {
                l.push(' ');
                l.push_str(w);
            }
            _ => lines.push(w.to_string()),
        }
    }
    lines.join("\n")
}

/// Cuts `s` to `max` characters, ending in `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub fn ms(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms >= 10_000.0 {
        format!("{:.1}s", ms / 1000.0)
    } else {
        format!("{ms:.1}ms")
    }
}

/// A duration for tables of many small ones: µs below a millisecond.
pub fn fine_ms(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{}µs", ns / 1000)
    } else {
        ms(ns)
    }
}

/// Milliseconds in at most 7 characters.
fn short_ms(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms < 100.0 {
        format!("{ms:.1}ms")
    } else if ms < 100_000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.0}s", ms / 1000.0)
    }
}

/// Exit code, or the signal that killed it.
/// How its init ended: the status or signal, and why (the OOM killer, or who sent it).
pub fn exit_text(c: &Container) -> String {
    let base = match (c.exit_code, c.signal) {
        (Some(code), _) => code.to_string(),
        (None, Some(sig)) => format!("sig {sig}"),
        _ => return "-".into(),
    };
    match &c.killed_by {
        _ if c.oom_killed => format!("{base} OOM"),
        Some(s) => format!("{base} by {}", truncate(&s.comm, 10)),
        None => base,
    }
}

/// One container's row.
fn row(c: &Container, clock: &Clock, color: bool) -> Vec<Cell> {
    let time = |ns: Option<u64>| ns.map_or("-".to_string(), |ns| clock.time_of_day(ns));
    let mut who = format!("{}\n{}", c.short_id(), truncate(&c.runtime_label(), 14));
    if let Some(n) = c.name.as_ref().filter(|n| *n != c.short_id()) {
        who = format!("{}\n{who}", truncate(n, 14));
    }
    // The cause on a line of its own: the column stays narrow.
    let exit = Cell::new(
        exit_text(c)
            .replacen(' ', "\n", 1)
            .replace("\nby ", "\nby\n"),
    )
    .set_alignment(CellAlignment::Right);
    let exit = match (color, c.exit_code, c.signal) {
        (true, Some(0), _) => exit.fg(Color::Green),
        (true, Some(_), _) | (true, None, Some(_)) => exit.fg(Color::Red),
        _ => exit,
    };
    let mut ns = if c.new_namespaces.is_empty() {
        "-".to_string()
    } else {
        pack(c.new_namespaces.iter().map(|k| k.name()), 7)
    };
    // Host ↔ container uids of its user namespace: `uid 0→100000`.
    if let Some(m) = c.security.uid_mapping() {
        let m = m.split(" (").next().unwrap_or_default().replace(" → ", "→");
        ns.push_str(&format!("\nuid {m}"));
    }
    let helper = c
        .facts
        .iter()
        .find(|f| f.fact == crate::correlate::FactKind::NetworkHelper);
    let veth = if let (true, Some(h)) = (c.veths.is_empty(), helper) {
        truncate(&h.value, 15)
    } else if c.veths.is_empty() {
        "-".to_string()
    } else {
        c.veths
            .iter()
            .take(4)
            .map(|v| truncate(v, 15))
            .collect::<Vec<_>>()
            .join("\n")
    };
    vec![
        Cell::new(who),
        Cell::new(truncate(&c.command.join(" "), COMMAND_CHARS)),
        Cell::new(format!(
            "{}\n{}\n{}",
            time(Some(c.created_ns)),
            time(c.started_ns),
            time(c.exited_ns)
        )),
        Cell::new(c.start_latency_ns().map_or("-".into(), short_ms))
            .set_alignment(CellAlignment::Right),
        exit,
        Cell::new(ns),
        Cell::new(veth),
        Cell::new(c.mounts).set_alignment(CellAlignment::Right),
    ]
}

pub fn table(containers: &[Container], clock: &Clock, width: u16, color: bool) -> String {
    if containers.is_empty() {
        return "no containers seen".into();
    }
    let mut t = Table::new();
    t.load_preset(presets::UTF8_HORIZONTAL_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width);
    if color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    // Three facts stacked per cell keep a row readable in 80 columns.
    let header = [
        "CONTAINER\nRUNTIME",
        "COMMAND",
        "CREATED\nSTARTED\nEXITED",
        "START\nLATENCY",
        "EXIT",
        "NEW NS",
        "VETH",
        "MOUNT\nCALLS",
    ];
    t.set_header(header.iter().map(|h| {
        let c = Cell::new(h);
        if color {
            c.add_attribute(Attribute::Bold)
        } else {
            c
        }
    }));
    for c in containers {
        t.add_row(row(c, clock, color));
    }
    // Lower bounds keep ids and times whole; the command takes what is left.
    let mins = [12u16, 7, 12, 7, 5, 7, 11, 5];
    for (col, min) in t.column_iter_mut().zip(mins) {
        col.set_padding((0, 0));
        col.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(min)));
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        correlate::{ContainerEngine, Runtime},
        event::{NsInodes, NsKind},
    };

    pub(super) fn sample(id: &str, command: &str) -> Container {
        Container {
            id: id.into(),
            lifecycle: 1,
            oom_killed: false,
            killed_by: None,
            rootfs: None,
            cgroups: Vec::new(),
            shares_netns_with: None,
            facts: Vec::new(),
            name: Some("a-rather-long-container-name-that-goes-on".into()),
            engine: Some(ContainerEngine::Docker),
            runtime: Runtime::Runc,
            found_by: "test".into(),
            command: command.split(' ').map(str::to_string).collect(),
            security: Default::default(),
            created_ns: 1_000_000_000,
            started_ns: Some(1_250_000_000),
            exited_ns: Some(2_000_000_000),
            exit_code: Some(3),
            signal: None,
            ns: NsInodes::default(),
            new_namespaces: vec![
                NsKind::Uts,
                NsKind::Ipc,
                NsKind::Mnt,
                NsKind::Pid,
                NsKind::Net,
            ],
            veths: vec!["veth1234567".into(), "veth7654321".into()],
            mounts: 42,
            exec_sessions: 0,
            processes_omitted: 0,
            phases: vec![],
            processes: vec![],
        }
    }

    #[test]
    fn fits_80_columns_and_truncates() {
        let long = format!("sh -c {}", "x".repeat(10_000));
        let cs = [
            sample(&"a".repeat(64), "echo hi"),
            sample(&"b".repeat(64), &long),
        ];
        let out = table(&cs, &Clock::from_offset(0), 80, false);
        for line in out.lines() {
            assert!(
                unicode_width(line) <= 80,
                "{} columns: {line}",
                unicode_width(line)
            );
        }
        assert!(out.contains("aaaaaaaaaaaa"), "{out}");
        assert!(out.contains("docker/runc"), "{out}");
        assert!(out.contains("250ms"), "{out}");
        assert!(
            !out.contains("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
            "{out}"
        );
        assert!(!out.contains('\u{1b}'), "no colour when asked for none");
        let coloured = table(&cs, &Clock::from_offset(0), 80, true);
        assert!(coloured.contains('\u{1b}'), "colour when asked");
    }

    fn unicode_width(s: &str) -> usize {
        s.chars().count()
    }
}
