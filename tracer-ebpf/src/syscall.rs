//! Reading syscall tracepoint records: arguments at entry, the result at exit.

use aya_ebpf::programs::TracePointContext;

/// Offset of argument `n` in a `sys_enter_*` record: an 8-byte common header, the syscall
/// number padded to 8 bytes, then each argument in an 8-byte slot. This layout is the same
/// on every kernel (`include/trace/syscall.h`).
pub(crate) const fn arg(n: usize) -> usize {
    16 + 8 * n
}

/// Offset of `ret` in a `sys_exit_*` record.
const RET: usize = 16;

/// Syscall argument `n` (0 when unreadable, which cannot happen for a valid record).
#[inline(always)]
pub(crate) fn arg_u64(ctx: &TracePointContext, n: usize) -> u64 {
    // SAFETY: the offset lies within the syscall tracepoint record.
    unsafe { ctx.read_at::<u64>(arg(n)).unwrap_or(0) }
}

/// The return value in a `sys_exit_*` record.
#[inline(always)]
pub(crate) fn ret(ctx: &TracePointContext) -> i64 {
    // SAFETY: `ret` is at a fixed offset of every syscall exit record.
    unsafe { ctx.read_at::<i64>(RET).unwrap_or(0) }
}

/// The syscall number of a `sys_enter_*` or `sys_exit_*` record (`__syscall_nr`, after the
/// 8-byte common header): which syscall a program shared by a family was called for.
#[inline(always)]
pub(crate) fn nr(ctx: &TracePointContext) -> u32 {
    // SAFETY: `__syscall_nr` is at a fixed offset of every syscall record.
    unsafe { ctx.read_at::<i32>(8).unwrap_or(-1) as u32 }
}
