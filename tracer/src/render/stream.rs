//! The live stream: one aligned line per event, in the spirit of the classic bpftrace script
//! (`TIME  COMMAND  PID  ACTION  CONTENT`).

use crate::event::{Clock, Event, SysResult};

pub const HEADER: &str = "TIME          COMMAND          PID      ACTION         CONTENT";

/// One stream line (without newline).
pub fn line(clock: &Clock, ev: &Event) -> String {
    let mut action = ev.detail.kind_name().to_string();
    if ev.detail.result().is_some_and(SysResult::failed) {
        action.push('!');
    }
    format!(
        "{:<13} {:<16} {:<8} {:<14} {}",
        clock.time_of_day(ev.ts_ns),
        ev.comm,
        ev.tgid,
        action,
        ev
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Detail;

    fn ev(detail: Detail) -> Event {
        Event {
            ts_ns: 1,
            ppid: 1,
            comm: "runc".into(),
            cgroup_id: 1,
            ..Event::for_test(10, detail)
        }
    }

    #[test]
    fn failures_end_the_action_in_a_bang() {
        let e = ev(Detail::Umount {
            target: "/x".into(),
            flags: 0,
            result: SysResult::from_ret(-2),
        });
        assert!(line(&Clock::now(), &e).contains(" umount! "));
    }

    #[test]
    fn columns_align() {
        let clock = Clock::now();
        let e = ev(Detail::Fork { child_pid: 11 });
        let l = line(&clock, &e);
        let content_col = HEADER.find("CONTENT").unwrap();
        assert_eq!(&l[content_col..], "child=11");
        assert_eq!(l.find("runc"), HEADER.find("COMMAND"));
        assert_eq!(l.find("fork"), HEADER.find("ACTION"));
    }
}
