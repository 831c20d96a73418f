//! The live lifecycle table of `tracer watch --live`: one row per container as it is created,
//! starts, exits and goes away, redrawn in place. Only the drawing is here; the terminal is
//! set up and restored by the command.

use ratatui::{
    layout::{Constraint, Layout},
    style::{Color, Modifier, Style},
    text::Line,
    widgets::{Cell, Row, Table},
    Frame,
};

use super::lifecycle::{exit_text, ms, truncate};
use crate::correlate::{Container, PhaseKind};

/// What the header line says besides the containers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Totals {
    pub events: u64,
    pub lost: u64,
    /// Containers dropped from memory (`--max-containers`).
    pub dropped: u64,
}

/// Where a container is in its life.
pub fn state(c: &Container) -> &'static str {
    let torn_down = c.phases.iter().any(|p| {
        matches!(p.kind, PhaseKind::Delete | PhaseKind::Unmount)
            && c.exited_ns.is_some_and(|e| p.end_ns >= e)
    });
    match (c.started_ns, c.exited_ns) {
        (_, Some(_)) if torn_down => "removed",
        (_, Some(_)) => "exited",
        (Some(_), None) => "running",
        (None, None) => "created",
    }
}

/// `5s`, `3m04s`, `2h05m`.
pub fn age(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
    }
}

/// Draws the table of `containers` (in the order recognised; the latest when they do not all
/// fit), `now_ns` being the current boot time.
pub fn draw(frame: &mut Frame, containers: &[&Container], now_ns: u64, totals: Totals) {
    let [head, body] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(frame.area());
    let running = containers.iter().filter(|c| state(c) == "running").count();
    let mut title = format!(
        " tracer watch: {} containers, {running} running · {} events",
        containers.len(),
        totals.events
    );
    if totals.lost > 0 {
        title.push_str(&format!(" · {} LOST", totals.lost));
    }
    if totals.dropped > 0 {
        title.push_str(&format!(" · {} dropped", totals.dropped));
    }
    title.push_str(" · q to quit");
    frame.render_widget(
        Line::styled(title, Style::new().add_modifier(Modifier::REVERSED)),
        head,
    );
    // One row for the header: the latest containers that fit.
    let fit = usize::from(body.height.saturating_sub(1));
    let shown = &containers[containers.len().saturating_sub(fit)..];
    let rows = shown.iter().map(|c| row(c, now_ns));
    let widths = [
        Constraint::Length(14),
        Constraint::Length(8),
        Constraint::Length(14),
        Constraint::Min(12),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(12),
    ];
    let header = Row::new([
        "CONTAINER",
        "STATE",
        "RUNTIME",
        "COMMAND",
        "AGE",
        "START",
        "EXIT",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    frame.render_widget(Table::new(rows, widths).header(header), body);
}

fn row(c: &Container, now_ns: u64) -> Row<'static> {
    let who = c.name.clone().unwrap_or_else(|| c.short_id().to_string());
    let st = state(c);
    let color = match st {
        "running" => Color::Green,
        "created" => Color::Yellow,
        _ => Color::Reset,
    };
    let exit = exit_text(c);
    let exit_style = match (c.exit_code, c.signal) {
        (Some(0), _) => Style::new().fg(Color::Green),
        (Some(_), _) | (None, Some(_)) => Style::new().fg(Color::Red),
        _ => Style::new(),
    };
    let end = c.exited_ns.unwrap_or(now_ns);
    Row::new([
        Cell::from(truncate(&who, 14)),
        Cell::from(st).style(Style::new().fg(color)),
        Cell::from(truncate(&c.runtime_label(), 14)),
        Cell::from(c.command.join(" ")),
        Cell::from(age(end.saturating_sub(c.created_ns))),
        Cell::from(c.start_latency_ns().map_or("-".into(), ms)),
        Cell::from(exit).style(exit_style),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(age(5_000_000_000), "5s");
        assert_eq!(age(184_000_000_000), "3m04s");
        assert_eq!(age(7_500_000_000_000), "2h05m");
    }
}
