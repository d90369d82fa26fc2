//! The rules for a guest's `int $n`: which fault was one, and whose DPL
//! lets it through (used by the hypervisor's `traps::software_interrupt`).

/// Error-code bit: the fault concerns an IDT gate.
pub const ERROR_CODE_IDT: u64 = 1 << 1;
/// Error-code bit: an external event (not an instruction) caused it.
const ERROR_CODE_EXTERNAL: u64 = 1 << 0;
/// The opcode of `int imm8`.
const OPCODE_INT_IMM8: u8 = 0xcd;

/// The vector of the `int $n` that caused a `#GP` with `error_code`, given
/// the two instruction bytes at the faulting RIP (`None` when unreadable):
/// `None` when the fault was not an `int $n` at a gate.
pub fn software_interrupt_vector(error_code: u64, instruction: Option<[u8; 2]>) -> Option<u8> {
    if error_code & (ERROR_CODE_IDT | ERROR_CODE_EXTERNAL) != ERROR_CODE_IDT {
        return None;
    }
    match instruction? {
        [OPCODE_INT_IMM8, vector] => Some(vector),
        _ => None,
    }
}

/// Whether a trap-table entry of `privilege` (its DPL) may be reached by
/// `int $n` from the guest's current mode (Xen's `permit_softint`).
pub fn permitted(privilege: u8, kernel_mode: bool) -> bool {
    privilege >= if kernel_mode { 1 } else { 3 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_int_instruction_at_a_gate_is_recognised_by_its_bytes() {
        // Hardware's error code for int $0x80, and QEMU 7.2's (0x80 * 16 + 2).
        assert_eq!(
            software_interrupt_vector(0x402, Some([0xcd, 0x80])),
            Some(0x80)
        );
        assert_eq!(
            software_interrupt_vector(0x802, Some([0xcd, 0x80])),
            Some(0x80)
        );
    }

    #[test]
    fn other_faults_are_not_software_interrupts() {
        // A plain #GP (error code 0), an external event, a segment fault.
        assert_eq!(software_interrupt_vector(0, Some([0xcd, 0x80])), None);
        assert_eq!(software_interrupt_vector(0x403, Some([0xcd, 0x80])), None);
        assert_eq!(software_interrupt_vector(0xe030, Some([0xcd, 0x80])), None);
        // The IDT bit, but the instruction is not `int imm8` (int3 is 0xcc).
        assert_eq!(software_interrupt_vector(0x1a, Some([0xcc, 0x90])), None);
        // The instruction could not be read.
        assert_eq!(software_interrupt_vector(0x402, None), None);
    }

    #[test]
    fn user_mode_needs_dpl_3_and_kernel_mode_dpl_1() {
        assert!(permitted(3, false));
        assert!(!permitted(2, false));
        assert!(!permitted(0, false));
        assert!(permitted(1, true));
        assert!(permitted(3, true));
        assert!(!permitted(0, true));
    }
}
