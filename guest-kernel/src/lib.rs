//! The PV guest kernel: what every guest of this hypervisor is built on,
//! Dom0 included.
//!
//! A PV kernel cannot use the privileged instructions a native kernel
//! would: it runs in ring 3 and asks the hypervisor instead. This library is
//! the thin layer that does so:
//!
//! - [`start`]: the entry point the domain builder jumps to, the Xen ELF
//!   notes that tell the builder how to load us, and the hypercall page;
//! - [`console`]: `print!`/`println!` through the `console_io` hypercall;
//! - [`events`]: event channels, the upcall, and blocking until an event;
//! - [`traps`]: the virtual trap table, and exception handlers that return
//!   with the `iret` hypercall;
//! - [`paging`]: the guest's page tables, changed only through the
//!   validated page-table hypercalls;
//! - [`privileged`]: privileged and sensitive instructions run from ring 3,
//!   with the fault caught when the hypervisor reflects one;
//! - [`heap`]: a heap for `alloc` that grows by mapping fresh frames.
//!
//! A binary built on it provides `guest_main(&'static StartInfo) -> !`.
#![cfg_attr(not(test), no_std)]

#[cfg(not(test))]
extern crate kernel_rt;

pub mod console;
pub mod events;
pub mod heap;
pub mod paging;
#[cfg(not(test))]
pub mod privileged;
pub mod start;
pub mod time;
pub mod traps;

pub use hypercall_abi as abi;
pub use hypercall_abi::StartInfo;

/// Asks the hypervisor to stop this domain for `reason`; never returns.
pub fn shutdown(reason: hypercall_abi::sched::ShutdownReason) -> ! {
    loop {
        hypercall_abi::wrappers::sched_shutdown(reason);
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("guest kernel panic: {info}");
    shutdown(hypercall_abi::sched::ShutdownReason::Crash)
}
