//! Turning the machine off, resetting it, and telling QEMU a verdict.
//!
//! Power-off uses the ACPI PM1a control register at the ports QEMU's
//! firmware configures (0x604 on current machines, 0xb004 on older ones):
//! writing 0x2000 (SLP_EN with sleep type 0, which QEMU's DSDT defines as
//! S5, off) there makes QEMU exit with status 0. On real
//! hardware the right port and sleep type come from the ACPI tables, which
//! the hypervisor does not read yet: there it halts and says so.
//!
//! Failures end QEMU through its `isa-debug-exit` device at port 0xf4: QEMU
//! exits with status `(value << 1) | 1`, so the codes below can never be
//! confused with a power-off (0) or a QEMU error (1). On real hardware the
//! port is unused and the CPU halts.

use super::instructions::{halt_forever, outb, outl, outw};

/// Why the hypervisor stops with a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum FailureCode {
    /// The hypervisor itself hit an error it cannot survive (QEMU status 33).
    HypervisorFatal = 0x10,
    /// Dom0 crashed, so the machine has no control domain (QEMU status 35).
    Dom0Crashed = 0x11,
}

const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Powers the machine off.
pub fn power_off() -> ! {
    // SAFETY: these are the ACPI PM1a control ports of QEMU's PC machines;
    // the value requests sleep state S5 (off). On other hardware the write
    // goes nowhere useful and we fall through to halting.
    unsafe {
        outw(0x604, 0x2000);
        outw(0xb004, 0x2000);
    }
    // QEMU stops at once; real hardware may take a moment. Wait about a
    // second's worth of cycles before saying it did not work.
    let start = super::instructions::rdtsc();
    while super::instructions::rdtsc() - start < 3_000_000_000 {
        core::hint::spin_loop();
    }
    log::error!("ACPI power-off did not take effect: the machine is halted and safe to turn off");
    halt_forever()
}

/// Resets the machine through the keyboard controller.
pub fn reboot() -> ! {
    // SAFETY: pulsing the reset line through the 8042 controller (command
    // 0xfe) resets a PC; nothing else uses the controller.
    unsafe { outb(0x64, 0xfe) };
    log::error!("reset through the keyboard controller did not take effect: halting");
    halt_forever()
}

/// Stops the machine with a failure code (see the module comment).
pub fn fail(code: FailureCode) -> ! {
    // SAFETY: port 0xf4 is QEMU's debug-exit device when present, and free
    // on real PCs.
    unsafe { outl(DEBUG_EXIT_PORT, code as u32) };
    halt_forever()
}
