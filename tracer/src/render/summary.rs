//! The end-of-run summary table.

use comfy_table::{presets::UTF8_BORDERS_ONLY, CellAlignment, Table};

use crate::capture::stats::Counters;

pub fn summary(c: &Counters, seconds: f64) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_header(vec!["kind", "events", "lost"]);
    for (kind, events, lost) in c.rows() {
        t.add_row(vec![
            kind.name().to_string(),
            events.to_string(),
            lost.to_string(),
        ]);
    }
    t.add_row(vec![
        "total".to_string(),
        c.total_events().to_string(),
        c.total_lost().to_string(),
    ]);
    for col in 1..3 {
        if let Some(column) = t.column_mut(col) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut s = format!(
        "{} events in {seconds:.2} s, {} lost, {} malformed\n{t}",
        c.total_events(),
        c.total_lost(),
        c.malformed
    );
    if c.total_lost() > 0 {
        s.push_str("\nwarning: events were lost because the ring buffer was full; a larger --ring-size keeps more");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    #[test]
    fn summary_lists_every_kind_and_warns_on_loss() {
        let mut c = Counters::default();
        c.seen(EventKind::Exec);
        c.seen(EventKind::Exec);
        c.set_lost(EventKind::Mount, 3);
        c.malformed = 1;
        let s = summary(&c, 1.5);
        assert!(
            s.starts_with("2 events in 1.50 s, 3 lost, 1 malformed"),
            "{s}"
        );
        for kind in ["exec", "mount", "pivot_root", "fork", "exit", "rename"] {
            assert!(s.contains(kind), "{kind} missing in\n{s}");
        }
        assert!(s.contains("warning"));
        assert!(!summary(&Counters::default(), 1.0).contains("warning"));
    }
}
