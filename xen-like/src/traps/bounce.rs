//! Delivering an exception to a guest: the bounce frame.
//!
//! The guest registered a handler per vector with `set_trap_table`. To
//! deliver exception `v`, the hypervisor does what the processor would do
//! for a native kernel, but on the guest's behalf and in ring 3:
//!
//! ```text
//!   guest kernel stack after the bounce (higher addresses up)
//!
//!        | SS                   |  the interrupted context's stack segment
//!        | RSP                  |  ... and stack pointer
//!        | RFLAGS               |  IF shows whether events were unmasked,
//!        |                      |  IOPL the virtual IOPL (architectural_iopl)
//!        | CS                   |  RPL 0 if it was kernel mode; bits 32..39
//!        |                      |  hold the saved event mask
//!        | RIP                  |  where the exception happened
//!        | error code           |  only for vectors that have one
//!        | R11                  |
//!   rsp->| RCX                  |
//! ```
//!
//! RCX and R11 sit on top, as in Xen, because a hypervisor that returns to
//! the handler with `sysretq` destroys them (ours does after a `syscall`
//! bounce); the handler pops them first and then sees a frame like the
//! processor's. It returns with the `iret` hypercall. The frame is declared
//! once, as `hypercall_abi::layout::BounceFrame`, which the guest kernel's
//! entry stubs read.
//!
//! Where the frame goes depends on the mode the guest was in (see
//! `guest_mode`):
//! - **guest-kernel mode**: below its stack pointer, skipping the 128-byte
//!   red zone that code built with one may be using; CS is shown with RPL 0
//!   ("you interrupted the kernel"), as Xen shows it;
//! - **guest-user mode**: the vCPU first switches to guest-kernel mode (the
//!   kernel's root and GS base), and the frame goes at the top of the
//!   kernel stack the guest named with `stack_switch` (no red zone: nothing
//!   of the kernel's lives there); CS keeps RPL 3.
//!
//! Either way the stack is 16-byte aligned as the processor would align it.
//!
//! The failsafe callback gets the same frame without an error code and
//! with the four data segment selectors the vCPU had saved between R11 and
//! RIP (`bounce_to_failsafe`): the hypervisor calls it when it switches
//! back to a vCPU whose saved selectors no longer all load (its GDT
//! changed meanwhile), as Xen's `load_segments` does.

use crate::arch::x86_64::frame::{GuestFrame, RFLAGS_IF, RFLAGS_IOPL, RFLAGS_IOPL_SHIFT};
use crate::domain::Domain;
use crate::mm::guest_access;
use crate::mm::pagewalk::check_guest_range;
use core::fmt;
use hypercall_abi::layout::{BounceFrame, FLAT_RING3_CS64, FLAT_RING3_SS64};
use hypercall_abi::mmu::VMASST_TYPE_ARCHITECTURAL_IOPL;
use hypercall_abi::x86::has_error_code;

const RED_ZONE: u64 = 128;
const VECTOR_PAGE_FAULT: u8 = 14;
/// The page-fault error code's bit for an access from user mode.
const PAGE_FAULT_USER: u64 = 1 << 2;
/// RFLAGS bits cleared on entry to a handler: TF, NT, RF, VM (as hardware
/// does), and AC (as Xen does: no alignment checks in the guest kernel).
const RFLAGS_CLEARED_ON_ENTRY: u64 = (1 << 8) | (1 << 14) | (1 << 16) | (1 << 17) | (1 << 18);

/// Why an exception could not be delivered (the guest then crashes).
#[derive(Clone, Copy, Debug)]
pub enum BounceError {
    /// The trap table has no handler for the vector.
    NoHandler,
    /// The frame could not be written: the stack is not mapped writable,
    /// or is not the guest's to name (the hypervisor's range).
    BadStack(u64),
    /// The handler is in the hypervisor's range or not canonical.
    BadHandler(u64),
}

impl fmt::Display for BounceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoHandler => write!(f, "no handler in the trap table"),
            Self::BadStack(address) => write!(
                f,
                "cannot write the exception frame to the guest stack at {address:#x}"
            ),
            Self::BadHandler(address) => write!(
                f,
                "the handler {address:#x} is not a guest address (hypervisor range or non-canonical)"
            ),
        }
    }
}

/// Rewrites `frame` so that the guest resumes in its handler for `vector`.
pub fn bounce_exception(
    domain: &mut Domain,
    frame: &mut GuestFrame,
    vector: u8,
    fault_address: u64,
) -> Result<(), BounceError> {
    let handler = domain.vcpu.trap_table[usize::from(vector)];
    if handler.address == 0 {
        return Err(BounceError::NoHandler);
    }
    let mut error_code = has_error_code(vector).then_some(frame.error_code);
    if vector == VECTOR_PAGE_FAULT {
        domain.vcpu_info().set_cr2(fault_address);
        // The processor saw ring 3 either way; the guest is told which of
        // its own modes faulted, as Xen tells it: a kernel's read of an
        // unmapped page is a supervisor fault (error code 0), as natively.
        error_code = error_code.map(|code| {
            let code = code & !PAGE_FAULT_USER;
            if domain.vcpu.kernel_mode {
                code
            } else {
                code | PAGE_FAULT_USER
            }
        });
    }
    bounce_to(
        domain,
        frame,
        handler.address,
        error_code,
        handler.mask_events,
    )
}

/// Rewrites `frame` so that the guest resumes at `handler` with a bounce
/// frame (and `error_code`, if any) on its stack; `mask_events` masks
/// event delivery on entry. Used for exceptions and for callbacks.
pub fn bounce_to(
    domain: &mut Domain,
    frame: &mut GuestFrame,
    handler: u64,
    error_code: Option<u64>,
    mask_events: bool,
) -> Result<(), BounceError> {
    deliver(domain, frame, handler, mask_events, |bounce, words| {
        let bounce = BounceFrame {
            error_code: error_code.unwrap_or(0),
            ..*bounce
        };
        let (frame_words, count) = bounce.stack_words(error_code.is_some());
        words[..count].copy_from_slice(&frame_words[..count]);
        count
    })
}

/// Rewrites `frame` so that the guest resumes in its failsafe callback,
/// as Xen's `load_segments` does when a saved data segment selector no
/// longer loads: the bounce frame without an error code, with the saved
/// `[ds, es, fs, gs]` between R11 and RIP
/// ([`BounceFrame::failsafe_stack_words`]). Events are masked on entry if
/// the callback was registered with `CALLBACKF_mask_events` (Xen's
/// `VGCF_failsafe_disables_events`).
pub fn bounce_to_failsafe(
    domain: &mut Domain,
    frame: &mut GuestFrame,
    saved_selectors: [u16; 4],
) -> Result<(), BounceError> {
    let callbacks = domain.vcpu.callbacks;
    deliver(
        domain,
        frame,
        callbacks.failsafe,
        callbacks.failsafe_masks_events,
        |bounce, words| {
            words.copy_from_slice(&bounce.failsafe_stack_words(saved_selectors));
            BounceFrame::FAILSAFE_WORDS
        },
    )
}

/// The work common to every bounce: checks `handler`, switches to
/// guest-kernel mode if needed, builds the interrupted context's
/// [`BounceFrame`], lets `lay_out` turn it into the words that go on the
/// stack (returning how many), writes them, and points `frame` at
/// `handler`.
fn deliver(
    domain: &mut Domain,
    frame: &mut GuestFrame,
    handler: u64,
    mask_events: bool,
    lay_out: impl FnOnce(&BounceFrame, &mut [u64; BounceFrame::FAILSAFE_WORDS]) -> usize,
) -> Result<(), BounceError> {
    if handler == 0 {
        return Err(BounceError::NoHandler);
    }
    // Registration refuses non-canonical handlers but, as in Xen, accepts
    // the hypervisor's range; never enter it, even in ring 3.
    if check_guest_range(handler, 1).is_err() {
        return Err(BounceError::BadHandler(handler));
    }
    let saved_mask = domain.vcpu_info().upcall_mask();

    let (stack_top, shown_cs) = if domain.vcpu.kernel_mode {
        (frame.rsp.wrapping_sub(RED_ZONE), frame.cs & !3)
    } else {
        // From here on the kernel's root is loaded: the frame is written
        // through the kernel's page tables, which map its stack.
        super::guest_mode::toggle_guest_mode(domain);
        (domain.vcpu.kernel_sp, frame.cs)
    };
    let interrupted_cs = (shown_cs & 0xffff) | (u64::from(saved_mask) << 32);
    // IF shows the event mask; IOPL shows the virtual IOPL to a guest that
    // opted into VMASST_TYPE_architectural_iopl (it restores it with its
    // `iret`), and 0 to any other, as in Xen's create_bounce_frame.
    let shown_iopl = if domain.vm_assist & (1 << VMASST_TYPE_ARCHITECTURAL_IOPL) != 0 {
        u64::from(domain.vcpu.iopl) << RFLAGS_IOPL_SHIFT
    } else {
        0
    };
    let interrupted_rflags = (frame.rflags & !(RFLAGS_IF | RFLAGS_IOPL))
        | if saved_mask == 0 { RFLAGS_IF } else { 0 }
        | shown_iopl;
    let bounce = BounceFrame {
        rcx: frame.rcx,
        r11: frame.r11,
        error_code: 0, // `lay_out` places one where there is one
        rip: frame.rip,
        cs: interrupted_cs,
        rflags: interrupted_rflags,
        rsp: frame.rsp,
        ss: frame.ss,
    };
    let mut words = [0; BounceFrame::FAILSAFE_WORDS];
    let count = lay_out(&bounce, &mut words);
    let stack = (stack_top & !15).wrapping_sub(count as u64 * 8);
    let bytes: &[u8] = bytemuck::cast_slice(&words[..count]);
    guest_access::copy_to_guest(stack, bytes).map_err(|_| BounceError::BadStack(stack))?;

    if mask_events {
        domain.vcpu_info().set_upcall_mask(1);
    }
    frame.rip = handler;
    frame.rsp = stack;
    frame.cs = u64::from(FLAT_RING3_CS64);
    frame.ss = u64::from(FLAT_RING3_SS64);
    frame.rflags &= !RFLAGS_CLEARED_ON_ENTRY;
    Ok(())
}
