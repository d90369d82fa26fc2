//! xen-like: the hypervisor binary.
//!
//! Everything lives in the library (`src/lib.rs`, built with the `kernel`
//! feature for this binary); this file only names the two symbols that
//! the library cannot: the entry point the boot code jumps to, and the
//! panic handler.
#![no_std]
#![no_main]

extern crate kernel_rt;

/// Rust's entry point, called by `high_entry` (in `arch::x86_64::boot`)
/// with the multiboot magic and the physical address of the boot
/// information.
#[no_mangle]
extern "C" fn hypervisor_start(magic: u32, info: u32) -> ! {
    xen_like::boot::start::start(magic, info)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    xen_like::console::panic(info)
}
