//! Two containers side by side (`tracer report A B --compare`), phase by phase: how long each
//! took and how many events (system calls) it held, and the difference; the phases only one
//! of them has (what Docker does that plain runc does not).

use comfy_table::{presets, CellAlignment, Table};

use super::lifecycle::fine_ms as ms;
use crate::correlate::{Container, PhaseKind};

/// A phase kind's time and events in one container (a repeated phase summed).
fn of(c: &Container, kind: PhaseKind) -> Option<(u64, u64)> {
    let mut found = None;
    for p in c.phases.iter().filter(|p| p.kind == kind) {
        let (t, n) = found.get_or_insert((0, 0));
        *t += p.end_ns.saturating_sub(p.start_ns);
        *n += u64::from(p.events);
    }
    found
}

fn signed_ms(a: u64, b: u64) -> String {
    if b >= a {
        format!("+{}", ms(b - a))
    } else {
        format!("-{}", ms(a - b))
    }
}

fn signed(a: u64, b: u64) -> String {
    if b >= a {
        format!("+{}", b - a)
    } else {
        format!("-{}", a - b)
    }
}

fn name(c: &Container) -> String {
    format!(
        "{} ({})",
        c.name.as_deref().unwrap_or(c.short_id()),
        c.runtime_label()
    )
}

/// The phase kinds of either container, in the order the first has them, then the second.
fn kinds(a: &Container, b: &Container) -> Vec<PhaseKind> {
    let mut out: Vec<PhaseKind> = Vec::new();
    for p in a.phases.iter().chain(&b.phases) {
        if !out.contains(&p.kind) {
            out.push(p.kind);
        }
    }
    out
}

/// The phases only `a` has.
pub fn only_in(a: &Container, b: &Container) -> Vec<PhaseKind> {
    kinds(a, b)
        .into_iter()
        .filter(|&k| of(a, k).is_some() && of(b, k).is_none())
        .collect()
}

/// The comparison table, and a line for what only one side does.
pub fn compare(a: &Container, b: &Container) -> String {
    let (na, nb) = (name(a), name(b));
    let mut t = Table::new();
    t.load_preset(presets::UTF8_BORDERS_ONLY).force_no_tty();
    t.set_header(vec![
        "PHASE".to_string(),
        format!("A: {na}"),
        format!("B: {nb}"),
        "B - A".into(),
        "EVENTS A".into(),
        "EVENTS B".into(),
        "B - A".into(),
    ]);
    let cell = |v: Option<(u64, u64)>, f: fn((u64, u64)) -> String| v.map_or("-".to_string(), f);
    for k in kinds(a, b) {
        let (x, y) = (of(a, k), of(b, k));
        t.add_row(vec![
            k.name().to_string(),
            cell(x, |(t, _)| ms(t)),
            cell(y, |(t, _)| ms(t)),
            match (x, y) {
                (Some((p, _)), Some((q, _))) => signed_ms(p, q),
                (Some(_), None) => "only A".into(),
                _ => "only B".into(),
            },
            cell(x, |(_, n)| n.to_string()),
            cell(y, |(_, n)| n.to_string()),
            match (x, y) {
                (Some((_, p)), Some((_, q))) => signed(p, q),
                _ => String::new(),
            },
        ]);
    }
    let (la, lb) = (a.start_latency_ns(), b.start_latency_ns());
    t.add_row(vec![
        "start latency".to_string(),
        la.map_or("-".into(), ms),
        lb.map_or("-".into(), ms),
        match (la, lb) {
            (Some(p), Some(q)) => signed_ms(p, q),
            _ => String::new(),
        },
        String::new(),
        String::new(),
        String::new(),
    ]);
    for col in 1..7 {
        if let Some(c) = t.column_mut(col) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let list = |v: Vec<PhaseKind>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
        }
    };
    format!(
        "{t}\nonly A ({na}): {}\nonly B ({nb}): {}\n",
        list(only_in(a, b)),
        list(only_in(b, a))
    )
}
