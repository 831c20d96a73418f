//! JSON Lines: one event object per line, secrets blanked (`event::redact`).

use std::io::{self, Write};

use crate::event::{redact::Redactor, Event};

pub fn write_event(out: &mut impl Write, ev: &Event) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &*Redactor::global().event(ev))?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Detail;

    #[test]
    fn one_object_per_line() {
        let ev = Event {
            ts_ns: 1,
            ppid: 1,
            comm: "a\nb".into(),
            cgroup_id: 3,
            mnt_ns: 1,
            pid_ns: 2,
            net_ns: 3,
            hook: "raw_tracepoint:sched_process_fork".into(),
            ..Event::for_test(2, Detail::Fork { child_pid: 4 })
        };
        let mut out = Vec::new();
        write_event(&mut out, &ev).unwrap();
        write_event(&mut out, &ev).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "a newline inside a string must be escaped");
        let back: Event = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(back, ev);
    }
}
