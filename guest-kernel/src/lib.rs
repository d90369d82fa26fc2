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
//! - [`grant_table`]: the grant-table client (granting a frame to another
//!   domain, revoking, mapping another domain's grant);
//! - [`heap`]: a heap for `alloc` that grows by mapping fresh frames;
//! - [`xenbus`]: the client of the config store (XenStore) in Dom0: read,
//!   write, watch, transactions, and the device state machine;
//! - [`control`]: the toolstack's shutdown and reboot requests, read from
//!   the store's `control/shutdown`;
//! - [`sys`]: every raw operation the modules above need (hypercalls that
//!   take pointers, pages shared with the hypervisor or other domains,
//!   assembly entry points, the allocator), as small safe functions. It is
//!   the only module allowed `unsafe`; every other one says
//!   `#![forbid(unsafe_code)]`. [`privileged`] (privileged and sensitive
//!   instructions run from ring 3, the fault caught) lives there too.
//!
//! A binary built on it names its main function with
//! [`guest_main!`]: `fn(&'static StartInfo) -> !`.
#![cfg_attr(not(test), no_std)]
// `unsafe` is denied here and allowed only in `sys` (see its comment).
#![deny(unsafe_code)]
// The host test build (of `xenbus`'s framing) leaves out the assembly
// entry points and the hardware paths (`cfg(not(test))`), so the imports
// and helpers only they use would be reported unused there.
#![cfg_attr(test, allow(dead_code, unused_imports))]

extern crate alloc;

#[cfg(not(test))]
extern crate kernel_rt;

pub mod console;
pub mod control;
pub mod events;
pub mod grant_table;
pub mod heap;
pub mod paging;
pub mod start;
// The one module of raw operations, allowed `unsafe` so that no other
// module needs it (each of them forbids it).
#[allow(unsafe_code)]
pub mod sys;
pub mod time;
pub mod traps;
pub mod xenbus;

#[cfg(not(test))]
pub use sys::privileged;

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
