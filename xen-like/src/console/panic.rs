//! What a panic in the hypervisor prints before the machine stops.

use crate::arch::x86_64::power;
use core::fmt::Write;

/// Reports a hypervisor panic on the serial line, bypassing every lock,
/// and stops the machine. Called by the binary's panic handler.
pub fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut out = super::fatal_writer();
    let _ = writeln!(out, "\n(XEN) ****************************************");
    let _ = writeln!(out, "(XEN) PANIC in the hypervisor: {info}");
    let _ = writeln!(out, "(XEN) stopping the machine");
    power::fail(power::FailureCode::HypervisorFatal)
}
