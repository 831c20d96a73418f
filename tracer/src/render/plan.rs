//! How each event kind is observed on this kernel: `tracer check`'s table and `watch -v`'s
//! one line per kind.

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

use crate::capture::loader::PlanReport;

/// One line per kind: the hook used, and why better ones were not.
pub fn lines(plans: &[PlanReport]) -> Vec<String> {
    plans
        .iter()
        .map(|p| {
            let skipped: Vec<String> = p
                .options
                .iter()
                .take(p.chosen.unwrap_or(p.options.len()))
                .filter_map(|o| {
                    o.unavailable
                        .as_ref()
                        .map(|why| format!("{}: {why}", o.option.name))
                })
                .collect();
            let used = p.chosen().map_or_else(
                || "NOT OBSERVED".to_string(),
                |o| format!("using {}", o.name),
            );
            if skipped.is_empty() {
                format!("{}: {used}", p.plan.kind.name())
            } else {
                format!(
                    "{}: {used} (not {})",
                    p.plan.kind.name(),
                    skipped.join("; not ")
                )
            }
        })
        .collect()
}

/// The `tracer check` table: every kind, every hook wanted, available or why not, used.
pub fn table(plans: &[PlanReport]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(100)
        .set_header(vec!["event kind", "hook", "available here", "used"]);
    for p in plans {
        for (i, o) in p.options.iter().enumerate() {
            let available = match (&o.unavailable, p.chosen) {
                (None, _) => "yes".to_string(),
                (Some(_), Some(c)) if i > c => "not tried (a better hook works)".to_string(),
                (Some(why), _) => format!("no: {why}"),
            };
            let used = if p.chosen == Some(i) { "yes" } else { "" };
            let kind = if i == 0 { p.plan.kind.name() } else { "" };
            t.add_row(vec![kind, o.option.name, available.as_str(), used]);
        }
        if p.chosen.is_none() {
            t.add_row(vec!["", "(none)", "NOT OBSERVED on this kernel", ""]);
        }
    }
    t.to_string()
}
