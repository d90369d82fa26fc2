//! `int $n` from a guest: delivered through the trap table's DPL checks.
//!
//! Every gate of the hypervisor's IDT has DPL 0 (except the breakpoint and
//! overflow gates, whose instructions are their own DPL check), so a
//! guest's `int $n` cannot run a hypervisor handler that does not expect
//! it. The processor answers it with a general protection fault whose
//! error code names the gate (`n * 8 + 2`: the IDT bit set, the external
//! bit clear). The hypervisor then does the DPL check the guest's own IDT
//! would have done, with the privilege the guest gave the vector in its
//! trap table (Xen's `permit_softint`):
//!
//! | the guest is in | `int $n` reaches the handler when its DPL is |
//! |-----------------|----------------------------------------------|
//! | kernel mode     | 1, 2 or 3 (the guest kernel is "ring 1")      |
//! | user mode       | 3                                            |
//!
//! A permitted `int $n` is bounced to the handler like a trap: no error
//! code, RIP after the instruction. Anything else is the `#GP` it was.
//!
//! QEMU 7.2's software emulation reports such a fault with the error code
//! `n * 16 + 2` instead (TOOLCHAIN.md), so the vector is taken from the
//! instruction itself (`CD ib`, read at the faulting RIP through the
//! guest's page tables like any guest access), and the error code the guest
//! sees for a refused one is corrected to what hardware reports. The two
//! rules are pure functions with host tests in `crate::traps::software_interrupts`.

use crate::arch::x86_64::frame::GuestFrame;
use crate::domain::Domain;
use crate::mm::guest_access;

use super::bounce::{self, BounceError};
use crate::traps::software_interrupts::{permitted, software_interrupt_vector, ERROR_CODE_IDT};

/// Length of `int imm8`.
const INT_IMM8_LENGTH: u64 = 2;

/// What became of a `#GP`.
pub enum Outcome {
    /// It was not an `int $n`: handle it as the `#GP` it is.
    NotSoftwareInterrupt,
    /// It was a refused `int $n`: a `#GP` for the guest, with the error
    /// code hardware gives (`n * 8 + 2`), now in the frame.
    Refused,
    /// It was delivered to the guest's handler (or could not be: the
    /// guest is then crashed with the reason).
    Delivered(Result<(), BounceError>),
}

/// Looks at a `#GP` the current guest took at `frame.rip`: delivers a
/// permitted `int $n` to its handler.
pub fn handle(domain: &mut Domain, frame: &mut GuestFrame) -> Outcome {
    let instruction = guest_access::read_from_guest::<u16>(frame.rip)
        .ok()
        .map(u16::to_le_bytes);
    let Some(vector) = software_interrupt_vector(frame.error_code, instruction) else {
        return Outcome::NotSoftwareInterrupt;
    };
    let handler = domain.vcpu.trap_table[usize::from(vector)];
    if handler.address == 0 || !permitted(handler.privilege, domain.vcpu.kernel_mode) {
        frame.error_code = u64::from(vector) * 8 + ERROR_CODE_IDT;
        return Outcome::Refused;
    }
    frame.rip = frame.rip.wrapping_add(INT_IMM8_LENGTH);
    Outcome::Delivered(bounce::bounce_to(
        domain,
        frame,
        handler.address,
        None,
        handler.mask_events,
    ))
}
