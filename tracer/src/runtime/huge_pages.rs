//! Transparent huge pages: off for the tracer itself, as the host has them for what it runs.
//!
//! mimalloc asks for huge pages on its arenas (`MADV_HUGEPAGE`), so the first touch of each
//! 2 MB of a heap of a few MB had the kernel zero 2 MB: at start-up, on a machine whose
//! fresh memory is slow to come by, that was 41 % of the time to ready (80 ms instead of
//! 40). The setting is inherited by children and kept across exec, so each child the
//! tracer starts gets back what the tracer had.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether [`off_for_this_process`] turned them off (they were not off already).
static TURNED_OFF: AtomicBool = AtomicBool::new(false);

/// Turns transparent huge pages off for this process, unless they already are.
pub fn off_for_this_process() {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        if libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) == 0
            && libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0
        {
            TURNED_OFF.store(true, Ordering::Relaxed);
        }
    }
}

/// In a child about to become what the tracer runs: the setting the tracer started with.
/// Async-signal-safe (an atomic load and one syscall), for use between clone and exec.
pub fn restore_in_child() {
    if TURNED_OFF.load(Ordering::Relaxed) {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off() -> bool {
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1 }
    }

    /// Off here, and back on in a child (a fork, as the runtime's clone).
    #[test]
    fn a_child_gets_back_what_the_tracer_had() {
        let before = off();
        off_for_this_process();
        assert!(off());
        // SAFETY: the child only makes syscalls and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            restore_in_child();
            // SAFETY: as above.
            unsafe { libc::_exit(i32::from(off())) };
        }
        let mut status = 0;
        // SAFETY: our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status));
        assert_eq!(
            libc::WEXITSTATUS(status) == 1,
            before,
            "the child's setting"
        );
    }
}
