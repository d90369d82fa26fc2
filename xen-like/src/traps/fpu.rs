//! The guest's lazy FPU switch: `fpu_taskswitch` and the #NM it implies.
//!
//! A PV kernel that switches FPU state lazily between its processes does
//! what a native kernel does with CR0.TS, through the hypervisor: it sets
//! the flag with `fpu_taskswitch(1)` when it switches process, takes the
//! device-not-available exception (#NM, vector 7) on the new process's
//! first FPU or SSE instruction, switches the FPU state in its handler, and
//! clears the flag (`fpu_taskswitch(0)`, or an emulated `clts`). Xen keeps
//! the flag per vCPU (`ctrlreg[0] & TS`), sets the real CR0.TS while the
//! vCPU runs with it, and when the #NM comes, clears the virtual flag and
//! bounces the exception to the guest's trap-table handler for vector 7.
//! This hypervisor does the same.
//!
//! # CR0.TS and the hypervisor's own SSE
//!
//! While CR0.TS is set, every SSE instruction faults, in ring 0 too, and
//! the hypervisor's Rust code (the precompiled `core` included) uses SSE
//! freely; its entry code even saves the guest's XMM registers with
//! `movaps`. So the real CR0.TS is set only while a guest runs, never
//! while the hypervisor does:
//!
//! - the virtual flag lives in the vCPU (`Vcpu::fpu_ts`) and, for the vCPU
//!   running on a CPU, in that CPU's `PerCpu::guest_ts`, which the entry
//!   and exit code read;
//! - the exit paths set CR0.TS when `guest_ts` is set, after
//!   `RESTORE_ALL` (the last SSE instruction) and right before `sysretq` or
//!   `iretq` to ring 3;
//! - every entry from ring 3 clears it (`clts`) when `guest_ts` is set,
//!   before `SAVE_ALL` (the first SSE instruction); an entry from ring 0
//!   clears it unconditionally, for the few exit-path instructions after it
//!   was set (a fault of `iretq` itself, an NMI);
//! - `guest_ts` changes only while the hypervisor runs (here, and at a
//!   context switch), so at every entry it says what the exit path did.
//!
//! No guest ever sees another's FPU state through this: the XMM registers
//! are saved in every entry frame and the x87/SSE state at every context
//! switch (`fxsave`/`fxrstor`), whatever CR0.TS says. The flag is only a
//! service to the guest, not a protection.

use crate::arch::x86_64::frame::GuestFrame;
use crate::arch::x86_64::percpu::this_cpu;
use crate::console::guest_log;
use crate::domain::Domain;
use core::sync::atomic::Ordering;
use hypercall_abi::XenError;

/// The device-not-available exception.
pub const VECTOR_DEVICE_NOT_AVAILABLE: u8 = 7;

/// `fpu_taskswitch(set)`: sets (non-zero) or clears (0) the calling
/// vCPU's virtual CR0.TS. Always succeeds, as in Xen.
pub fn fpu_taskswitch(domain: &mut Domain, set: u64) -> Result<u64, XenError> {
    if set != 0 {
        set_ts_for_guest(domain);
    } else {
        clear_ts_for_guest(domain);
    }
    Ok(0)
}

/// Sets the running vCPU's virtual CR0.TS: `fpu_taskswitch(1)`, and an
/// emulated `mov` to CR0 with TS set.
pub fn set_ts_for_guest(domain: &mut Domain) {
    set_ts(domain, true);
}

/// Clears the running vCPU's virtual CR0.TS: `fpu_taskswitch(0)`, and an
/// emulated `clts` (an emulated read of CR0 shows `Vcpu::fpu_ts` in bit 3).
pub fn clear_ts_for_guest(domain: &mut Domain) {
    set_ts(domain, false);
}

/// The flag of `domain`, which is the one running on this CPU.
fn set_ts(domain: &mut Domain, set: bool) {
    domain.vcpu.fpu_ts = set;
    this_cpu().guest_ts.store(set, Ordering::Relaxed);
}

/// What the exit path does for the vCPU being switched in.
pub fn switch_to(domain: &Domain) {
    this_cpu()
        .guest_ts
        .store(domain.vcpu.fpu_ts, Ordering::Relaxed);
}

/// No vCPU runs here any more: the exit path must not set CR0.TS.
pub fn switch_to_idle() {
    this_cpu().guest_ts.store(false, Ordering::Relaxed);
}

/// #NM from the guest. With the virtual CR0.TS set (the only way the real
/// one was set), the guest asked for exactly this: clear the flag and
/// bounce vector 7 to its handler (`Err` if it has none: the caller
/// crashes it). Without it, nothing of the guest's caused the fault: the
/// instruction is simply retried, as Xen does after its own lazy restore.
pub fn device_not_available(
    domain: &mut Domain,
    frame: &mut GuestFrame,
) -> Result<(), super::bounce::BounceError> {
    if !domain.vcpu.fpu_ts {
        guest_log!(
            domain,
            Debug,
            "#NM without CR0.TS at rip {:#x}: retried",
            frame.rip
        );
        return Ok(());
    }
    set_ts(domain, false);
    super::bounce::bounce_exception(domain, frame, VECTOR_DEVICE_NOT_AVAILABLE, 0)
}
