//! Guest-kernel mode and guest-user mode: two page-table roots, one switch.
//!
//! A 64-bit PV guest runs both its kernel and its user programs in ring 3,
//! so the processor cannot tell them apart; the hypervisor does, as Xen
//! does with `TF_kernel_mode`. Each vCPU has two page-table roots:
//!
//! ```text
//!                 guest-kernel mode            guest-user mode
//!   CR3           kernel_root (NEW_BASEPTR)    user_root (NEW_USER_BASEPTR)
//!   GS base       the kernel's                 the user's
//!   `syscall`     a hypercall                  a system call: bounced to the
//!                                              guest kernel's syscall callback
//!   exception     frame below the current      frame on the kernel stack
//!                 stack (red zone skipped)     from `stack_switch`
//! ```
//!
//! The user root maps only what the guest kernel chose to share with its
//! programs (their code, data and stacks): the guest kernel's own memory is
//! simply absent from it, which is how a PV kernel protects itself from its
//! user programs when both run in the same ring.
//!
//! Every crossing goes through [`toggle_guest_mode`] (Xen's function of the
//! same name): into the kernel on a `syscall` from user mode, an exception
//! or an event taken in user mode (`bounce::bounce_to`), out of it on an
//! `iret` whose CS has RPL 3 (`hypercalls::iret`). The switch flips the
//! mode, swaps the two GS bases (what `swapgs` would do for a native
//! kernel) and loads the other root.

use crate::arch::x86_64::frame::GuestFrame;
use crate::arch::x86_64::instructions;
use crate::arch::x86_64::percpu::this_cpu;
use crate::domain::Domain;
use crate::mm::paging;
use crate::traps::bounce::{self, BounceError};
use core::sync::atomic::Ordering;

/// RFLAGS.DF, cleared on entry to the syscall callback (as Xen does).
const RFLAGS_DF: u64 = 1 << 10;
/// Length of the `syscall` instruction (`0f 05`).
const SYSCALL_LENGTH: u64 = 2;
const VECTOR_INVALID_OPCODE: u8 = 6;

/// Switches `domain`'s vCPU, which runs on this CPU, between guest-kernel
/// and guest-user mode: flips the mode, swaps the active and the shadow GS
/// base, and loads the root of the new mode.
///
/// The caller has checked that the new mode can run: entering user mode
/// needs a user root (`iret` checks).
pub fn toggle_guest_mode(domain: &mut Domain) {
    let vcpu = &mut domain.vcpu;
    vcpu.kernel_mode = !vcpu.kernel_mode;
    // While the hypervisor runs, the guest's active GS base waits in the
    // CPU's shadow GS register (the exit's `swapgs` brings it back).
    let active = instructions::read_kernel_gs_base();
    instructions::write_kernel_gs_base(vcpu.shadow_gs_base);
    vcpu.shadow_gs_base = active;
    this_cpu()
        .guest_user_mode
        .store(!vcpu.kernel_mode, Ordering::Relaxed);
    paging::load_guest_root(domain);
}

/// A `syscall` from guest user mode: a system call for the guest kernel,
/// never a hypercall. Bounces it to the guest's syscall callback on its
/// kernel stack, as Xen's `switch_to_kernel` does:
///
/// ```text
///   kernel_sp -> RCX (the user's return RIP), R11 (its RFLAGS), RIP, CS
///                (0xe033, RPL 3: from user mode), RFLAGS, RSP, SS
/// ```
///
/// The handler finds the system call's number and arguments in the
/// registers, as the user program left them. Events are masked on entry
/// if the callback was registered with `CALLBACKF_mask_events`. A guest
/// with no syscall callback gets `#UD` at the `syscall` instruction, as a
/// processor without `syscall` would give it (Xen does the same).
pub fn user_syscall(domain: &mut Domain, frame: &mut GuestFrame) -> Result<(), BounceError> {
    let callbacks = domain.vcpu.callbacks;
    if callbacks.syscall == 0 {
        frame.rip = frame.rip.wrapping_sub(SYSCALL_LENGTH);
        frame.error_code = 0;
        return bounce::bounce_exception(domain, frame, VECTOR_INVALID_OPCODE, 0);
    }
    bounce::bounce_to(
        domain,
        frame,
        callbacks.syscall,
        None,
        callbacks.syscall_masks_events,
    )?;
    frame.rflags &= !RFLAGS_DF;
    Ok(())
}
