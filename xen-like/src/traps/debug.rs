//! A guest's debug registers on the hardware: the `set_debugreg` and
//! `get_debugreg` hypercalls, loading them while the vCPU runs, and the
//! status a `#DB` leaves in DR6.
//!
//! The rules for what a guest may put in them (no breakpoint on the
//! hypervisor's addresses, no general detect, reserved bits fixed) are
//! `crate::traps::debug_registers`; this file only moves the checked values
//! between the vCPU and the processor. The hardware registers are loaded
//! only while a breakpoint is enabled (DR7 has an enable bit set), as in
//! Xen, so a vCPU that never debugs costs nothing on a context switch.

use crate::arch::x86_64::frame::GuestFrame;
use crate::arch::x86_64::instructions::{
    disable_breakpoints, load_debug_registers, take_debug_status,
};
use crate::domain::{Domain, Vcpu};
use hypercall_abi::XenError;

/// CR4.DE: debugging extensions (DR4/DR5 undefined, I/O breakpoints).
pub const CR4_DE: u64 = 1 << 3;

/// Whether the guest turned on CR4.DE in its view of CR4.
pub fn debugging_extensions(vcpu: &Vcpu) -> bool {
    vcpu.guest_cr4 & CR4_DE != 0
}

/// Loads `vcpu`'s debug registers into the processor if it has a
/// breakpoint on (called when it is about to run).
pub fn load(vcpu: &Vcpu) {
    if vcpu.debug.active() {
        load_debug_registers(&vcpu.debug);
    }
}

/// Takes `vcpu`'s breakpoints off the processor (called when it stops
/// running), so that the next vCPU does not inherit them.
pub fn unload(vcpu: &Vcpu) {
    if vcpu.debug.active() {
        disable_breakpoints();
    }
}

/// Sets debug register `register` of the running vCPU to `value` and, as
/// it is running, the processor's too. Used by the hypercall and by the
/// emulated `mov %reg, %drN`.
pub fn set(vcpu: &mut Vcpu, register: u64, value: u64) -> Result<(), XenError> {
    let was_active = vcpu.debug.active();
    let extensions = debugging_extensions(vcpu);
    vcpu.debug.set(register, value, extensions)?;
    if vcpu.debug.active() {
        load_debug_registers(&vcpu.debug);
    } else if was_active {
        disable_breakpoints();
    }
    Ok(())
}

/// Reads debug register `register` of `vcpu` (`-ENODEV` if there is none).
pub fn get(vcpu: &Vcpu, register: u64) -> Result<u64, XenError> {
    vcpu.debug.get(register, debugging_extensions(vcpu))
}

/// `set_debugreg(register, value)`.
pub fn set_debugreg(domain: &mut Domain, register: u64, value: u64) -> Result<u64, XenError> {
    set(&mut domain.vcpu, register, value).inspect_err(|error| {
        crate::console::guest_log!(
            domain,
            Debug,
            "set_debugreg {register} = {value:#x} refused: -{}",
            error.name()
        );
    })?;
    Ok(0)
}

/// `get_debugreg(register)`: the value, or `-ENODEV`.
pub fn get_debugreg(domain: &mut Domain, register: u64) -> Result<u64, XenError> {
    get(&domain.vcpu, register)
}

/// A `#DB` arrived from the running guest: record what the processor put
/// in DR6 in the guest's DR6 (which it reads with `get_debugreg`).
pub fn record_debug_status(vcpu: &mut Vcpu) {
    vcpu.debug.record_status(take_debug_status());
}

/// A `#DB` arrived while the hypervisor ran. The guest's breakpoints are
/// on guest addresses only (`debug_registers`), and the hypervisor reaches
/// guest memory through the direct map, so this is a guest's data
/// breakpoint on a `mov %ss` whose `#DB` the processor held back until the
/// next instruction, a `syscall` or an `int3`, had entered the hypervisor
/// (Xen's XSA-260 and XSA-265; `arch::x86_64::entry` explains the entry
/// side). As Xen does, record the status in the vCPU's DR6 and go on: the
/// `#DB` is a trap, so returning resumes the entry path where it was. A
/// guest must not be able to stop the machine with it, so this is never
/// fatal.
pub fn hypervisor_context(frame: &GuestFrame) {
    let recorded = crate::domain::with_current(|domain| {
        record_debug_status(&mut domain.vcpu);
        crate::console::guest_log!(
            domain,
            Debug,
            "#DB in the hypervisor at rip {:#x} (a breakpoint held back by mov %ss): recorded in DR6, ignored",
            frame.rip
        );
    });
    if recorded.is_none() {
        // No guest runs (the idle loop): nothing can have set a breakpoint,
        // but clear the sticky status all the same.
        take_debug_status();
        log::warn!(
            "#DB in the hypervisor at rip {:#x} with no guest running: ignored",
            frame.rip
        );
    }
}
