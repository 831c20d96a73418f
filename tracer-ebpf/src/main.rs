//! Kernel programs of the tracer. Each syscall of interest is split in two: the entry program
//! fills a record from the arguments and parks it per task; the exit program adds the result
//! and sends it, so a failed exec or mount is reported as failed.
#![no_std]
#![no_main]

mod cgroup;
mod exec;
mod idmap;
mod maps;
mod mount;
mod namespaces;
mod process;
mod record;
mod security;
mod syscall;
mod veth;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
