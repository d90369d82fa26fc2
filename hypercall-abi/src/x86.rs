//! Facts of the x86 architecture that both sides of the ABI name: the
//! exception vectors. A guest's trap table is indexed by them, and the
//! hypervisor and guests both print them.

/// Names of the architectural exceptions, by vector.
pub const EXCEPTION_NAMES: [&str; 32] = [
    "divide error",
    "debug",
    "non-maskable interrupt",
    "breakpoint",
    "overflow",
    "bound range exceeded",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor segment overrun",
    "invalid TSS",
    "segment not present",
    "stack-segment fault",
    "general protection fault",
    "page fault",
    "reserved (15)",
    "x87 floating-point error",
    "alignment check",
    "machine check",
    "SIMD floating-point error",
    "virtualization exception",
    "control protection",
    "reserved (22)",
    "reserved (23)",
    "reserved (24)",
    "reserved (25)",
    "reserved (26)",
    "reserved (27)",
    "hypervisor injection",
    "VMM communication",
    "security exception",
    "reserved (31)",
];

/// Whether the processor pushes an error code for `vector`.
pub const fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_error_codes() {
        assert_eq!(EXCEPTION_NAMES[14], "page fault");
        assert!(has_error_code(13) && has_error_code(14) && !has_error_code(3));
    }
}
