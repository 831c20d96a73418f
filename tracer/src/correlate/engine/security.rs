//! Security setup: a container's process setting its capabilities, cutting its bounding set,
//! setting no_new_privs and loading seccomp filters, the runtime's last steps before the
//! user command (or an exec session's).

use super::{succeeded, Engine};
use crate::{
    correlate::model::PhaseKind,
    event::{Detail, Event},
};
use tracer_common::prctl_ops;

/// Bounded: a runtime loads one or two filters; a process that loads more is not a
/// container's setup.
const MAX_FILTERS: usize = 16;

impl Engine {
    pub(super) fn security(&mut self, ev: &Event) -> bool {
        let Some(c) = self.container_of(ev.tgid) else {
            return false;
        };
        // A runtime probing what the kernel offers (seccomp's GET_* operations, a filter
        // call meant to fail) sets nothing up: the container's, but in no phase.
        let probe = !succeeded(ev)
            || matches!(ev.detail, Detail::Seccomp { operation, .. } if operation > 1);
        if probe {
            return true;
        }
        let exec = self.procs.get(&ev.tgid).is_some_and(|p| p.exec_session);
        if exec || self.containers[c].started() {
            self.extend_last(c, PhaseKind::Exec, ev);
            return true;
        }
        {
            let s = &mut self.containers[c].c.security;
            match &ev.detail {
                Detail::Capset {
                    target_pid: 0,
                    effective,
                    permitted,
                    inheritable,
                    ..
                } => s.caps = Some([*effective, *permitted, *inheritable]),
                Detail::Prctl { option, arg, .. } if *option == prctl_ops::PR_CAPBSET_DROP => {
                    s.bounding_dropped |= 1u64.checked_shl(*arg as u32).unwrap_or(0);
                }
                Detail::Prctl { option, arg, .. } if *option == prctl_ops::PR_SET_NO_NEW_PRIVS => {
                    s.no_new_privs = *arg != 0;
                }
                Detail::Prctl { filter_len, .. } | Detail::Seccomp { filter_len, .. }
                    if *filter_len != 0 && s.seccomp_filters.len() < MAX_FILTERS =>
                {
                    s.seccomp_filters.push(*filter_len);
                }
                _ => {}
            }
        }
        self.phase(c, PhaseKind::Security, ev);
        true
    }
}
