//! The live stream: one aligned line per event, in the spirit of the classic bpftrace script
//! (`TIME  COMMAND  PID  ACTION  CONTENT`).

use tracer_common::prctl_ops;

use crate::event::{flags, Clock, Detail, Event, SysResult};

pub const HEADER: &str = "TIME          COMMAND          PID      ACTION         CONTENT";

/// The stream's lines, a run of capability drops in one: a runtime drops each capability
/// from the bounding set, and clears each ambient one, with a prctl of its own (about 70
/// for one `docker run`).
pub struct Compact {
    clock: Clock,
    run: Option<Run>,
}

/// Successive successful prctl calls of one process with the same option (and operation).
struct Run {
    first: Event,
    key: (u32, u32, u64),
    caps: Vec<u64>,
}

/// What makes a prctl part of a run: its process, option, and `PR_CAP_AMBIENT`'s operation;
/// and the capability it names.
fn run_key(ev: &Event) -> Option<((u32, u32, u64), u64)> {
    match &ev.detail {
        Detail::Prctl {
            option,
            arg,
            result,
            ..
        } if !result.failed() => match *option {
            prctl_ops::PR_CAPBSET_DROP => Some(((ev.tgid, *option, 0), *arg)),
            prctl_ops::PR_CAP_AMBIENT if arg & 0xffff_ffff == 3 => {
                Some(((ev.tgid, *option, 3), arg >> 32))
            }
            _ => None,
        },
        _ => None,
    }
}

impl Compact {
    pub fn new(clock: Clock) -> Self {
        Self { clock, run: None }
    }

    /// The lines `ev` completes (none while a run goes on).
    pub fn push(&mut self, ev: &Event) -> Vec<String> {
        let mut out = Vec::new();
        let key = run_key(ev);
        if let (Some(run), Some((k, cap))) = (&mut self.run, key) {
            if run.key == k {
                run.caps.push(cap);
                return out;
            }
        }
        out.extend(self.flush());
        match key {
            Some((key, cap)) => {
                self.run = Some(Run {
                    first: ev.clone(),
                    key,
                    caps: vec![cap],
                });
            }
            None => out.push(line(&self.clock, ev)),
        }
        out
    }

    /// The run held back, if any: at the end of a batch, so the stream stays live.
    pub fn flush(&mut self) -> Option<String> {
        let run = self.run.take()?;
        if run.caps.len() == 1 {
            return Some(line(&self.clock, &run.first));
        }
        let what = match run.key.1 {
            prctl_ops::PR_CAPBSET_DROP => "PR_CAPBSET_DROP",
            _ => "PR_CAP_AMBIENT LOWER",
        };
        let set = run
            .caps
            .iter()
            .fold(0u64, |s, c| s | 1u64.checked_shl(*c as u32).unwrap_or(0));
        Some(format!(
            "{:<13} {:<16} {:<8} {:<14} {what} ×{}: {}",
            self.clock.time_of_day(run.first.ts_ns),
            run.first.comm,
            run.first.tgid,
            "prctl",
            run.caps.len(),
            flags::cap_set(set)
        ))
    }
}

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
    fn a_run_of_capability_drops_is_one_line() {
        let drop = |cap: u64| {
            ev(Detail::Prctl {
                option: prctl_ops::PR_CAPBSET_DROP,
                arg: cap,
                filter_len: 0,
                result: SysResult::from_ret(0),
            })
        };
        let mut c = Compact::new(Clock::now());
        assert!(c.push(&drop(21)).is_empty());
        assert!(c.push(&drop(16)).is_empty());
        let lines = c.push(&ev(Detail::Fork { child_pid: 11 }));
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].ends_with("PR_CAPBSET_DROP ×2: cap_sys_module,cap_sys_admin"),
            "{}",
            lines[0]
        );
        assert!(lines[1].ends_with("child=11"));
        // One drop alone is its own line; another process's drop starts its own run.
        c.push(&drop(21));
        let other = Event {
            tgid: 99,
            ..drop(16)
        };
        assert_eq!(c.push(&other).len(), 1);
        assert!(c
            .flush()
            .unwrap()
            .ends_with("PR_CAPBSET_DROP cap_sys_module"));
        assert_eq!(c.flush(), None);
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
