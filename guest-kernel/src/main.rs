//! The DomU kernel: a small PV guest built on the guest-kernel library.
//!
//! For now it greets, shows what the builder told it, and powers off; the
//! workloads named by a domain's configuration (a CPU-bound counter, a
//! deliberate crash) come with Dom0's domain builder.
#![no_std]
#![no_main]

use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::{println, start, StartInfo};

/// The guest's main function, called by the library once it is set up.
#[no_mangle]
fn guest_main(start_info: &'static StartInfo) -> ! {
    println!(
        "Hello from a PV guest: {} pages, command line \"{}\"",
        start_info.nr_pages,
        start::command_line()
    );
    guest_kernel::shutdown(ShutdownReason::Poweroff)
}
