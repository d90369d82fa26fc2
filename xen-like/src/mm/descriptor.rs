//! Segment descriptors a PV guest may put in its GDT: Xen's
//! `check_descriptor`, and what a selector names.
//!
//! # Why the hypervisor checks descriptors
//!
//! A descriptor table is the other way, beside page tables, in which the
//! processor trusts memory the guest writes. A GDT entry can be a *call
//! gate*: `lcall` through it jumps to the gate's code selector at the
//! gate's privilege, so a DPL-3 gate naming the hypervisor's ring-0 code
//! segment (selector 0xe008) would let the guest run any address it likes
//! in ring 0. A code or data segment of DPL 0 does not by itself raise the
//! privilege of whoever loads it (CPL changes only through gates,
//! interrupts and `syscall`), but ring-0 descriptors of the guest's making
//! are still no business of a ring-3 guest, and a TSS, LDT, interrupt or
//! trap gate descriptor belongs to the hypervisor alone. So, as in Xen,
//! every descriptor that reaches a live GDT passes [`check_descriptor`]:
//!
//! | descriptor (present)          | Xen's rule (64-bit PV guest)                  |
//! |-------------------------------|-----------------------------------------------|
//! | code or data segment (S = 1)  | accepted; a DPL below 3 is raised to 3        |
//! | system type 0 (reserved)      | accepted: it faults on any use (Xen uses it for the upper half of a call gate) |
//! | call gate (type 0xc)          | accepted only if its code selector is the guest's (below 0xe000, `FLAT_RING3_CS64`, or an LDT selector); its DPL is forced to 0 so that any use faults (and can be emulated), the DPL asked for kept in the selector's RPL; reserved bits must be 0 |
//! | any other system descriptor   | refused: TSS (16/32/64-bit), LDT, interrupt and trap gates, task gates |
//!
//! A descriptor that is not present faults on any use and is accepted as
//! it is. The checked descriptor may differ from the one asked for (the
//! DPL fix-ups): the caller stores the returned value.
//!
//! Layout of a descriptor as a `u64` (the high 32 bits are Xen's `b`, the
//! low 32 bits its `a`):
//!
//! ```text
//!  63    56 55 54 53 52 51  48 47 46 45 44 43  40 39    32 31            16 15             0
//! +--------+--+--+--+--+------+--+-----+--+------+--------+----------------+----------------+
//! |base    |G |DB|L |AV|limit |P | DPL |S | type |base    | base 15:0      | limit 15:0     |
//! |31:24   |  |  |  |  |19:16 |  |     |  |      |23:16   | (gate: selector)| (gate: offset) |
//! +--------+--+--+--+--+------+--+-----+--+------+--------+----------------+----------------+
//! ```
#![forbid(unsafe_code)]

/// Bytes in one descriptor.
pub const DESCRIPTOR_SIZE: u64 = 8;

/// Descriptors in one 4 KiB page.
pub const DESCRIPTORS_PER_PAGE: usize = 512;

/// The first GDT entry the hypervisor keeps for itself (selector 0xe000,
/// Xen's `FIRST_RESERVED_GDT_ENTRY`): a guest's GDT has at most this many
/// entries, in at most [`MAX_GDT_FRAMES`] frames.
pub const FIRST_RESERVED_GDT_ENTRY: usize = 0xe000 / 8;

/// Frames a guest's GDT may span (Xen's `FIRST_RESERVED_GDT_PAGE`).
pub const MAX_GDT_FRAMES: usize = FIRST_RESERVED_GDT_ENTRY / DESCRIPTORS_PER_PAGE;

/// The guest kernel's flat code selector (`FLAT_RING3_CS64`), the one
/// reserved selector a guest's call gate may name.
const FLAT_KERNEL_CS: u16 = 0xe033;

/// Present.
const SEGMENT_P: u64 = 1 << 47;
/// Descriptor privilege level, two bits.
const SEGMENT_DPL_SHIFT: u32 = 45;
const SEGMENT_DPL: u64 = 3 << SEGMENT_DPL_SHIFT;
/// Code or data (1) rather than a system descriptor (0).
const SEGMENT_S: u64 = 1 << 44;
/// The four type bits.
const SEGMENT_TYPE_SHIFT: u32 = 40;
const SEGMENT_TYPE: u64 = 0xf << SEGMENT_TYPE_SHIFT;
/// Type of a 64-bit call gate.
const TYPE_CALL_GATE: u64 = 0xc;
/// In a code or data type: code (1) or data (0).
const TYPE_CODE: u64 = 0x8;
/// In a code type: readable; in a data type: writable.
const TYPE_READ_WRITE: u64 = 0x2;
/// Bits 32..=39 of a call gate: reserved (Xen's `b & 0xff`).
const GATE_RESERVED: u64 = 0xff << 32;

/// Why a descriptor was refused, for the hypervisor's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadDescriptor(pub &'static str);

fn is_present(descriptor: u64) -> bool {
    descriptor & SEGMENT_P != 0
}

fn dpl(descriptor: u64) -> u64 {
    (descriptor & SEGMENT_DPL) >> SEGMENT_DPL_SHIFT
}

fn with_dpl(descriptor: u64, dpl: u64) -> u64 {
    (descriptor & !SEGMENT_DPL) | (dpl << SEGMENT_DPL_SHIFT)
}

fn segment_type(descriptor: u64) -> u64 {
    (descriptor & SEGMENT_TYPE) >> SEGMENT_TYPE_SHIFT
}

/// Rule (Xen's `guest_gate_selector_okay`): a gate may name one of the
/// guest's own segments (GDT entries below the reserved ones, or any LDT
/// selector) or the guest kernel's flat code segment, never a segment of
/// the hypervisor's: the processor ignores the RPL of a gate's selector, so
/// a gate naming 0xe008 would run in ring 0.
pub fn gate_selector_okay(selector: u16) -> bool {
    usize::from(selector >> 3) < FIRST_RESERVED_GDT_ENTRY
        || selector == FLAT_KERNEL_CS
        || selector & 4 != 0
}

/// Xen's `check_descriptor` for a 64-bit PV guest: returns the descriptor
/// to store (with its fix-ups), or why it is refused.
pub fn check_descriptor(descriptor: u64) -> Result<u64, BadDescriptor> {
    // A not-present descriptor faults on any use: safe as it is.
    if !is_present(descriptor) {
        return Ok(descriptor);
    }
    // The guest kernel runs in ring 3: nothing of its own is more
    // privileged than that (Xen's `__fixup_guest_selector`).
    let asked_dpl = dpl(descriptor);
    let descriptor = with_dpl(descriptor, asked_dpl.max(3));
    if descriptor & SEGMENT_S != 0 {
        // Code and data segments: no base or limit checks in 64-bit mode,
        // where bases (but FS's and GS's) and limits are ignored.
        return Ok(descriptor);
    }
    match segment_type(descriptor) {
        0 => Ok(descriptor),
        TYPE_CALL_GATE => {
            let selector = ((descriptor >> 16) & 0xffff) as u16;
            if !gate_selector_okay(selector) {
                return Err(BadDescriptor(
                    "a call gate into a segment of the hypervisor's",
                ));
            }
            if descriptor & GATE_RESERVED != 0 {
                return Err(BadDescriptor("a call gate with reserved bits set"));
            }
            // DPL 0: every use from ring 3 faults, with the gate named in the
            // error code; the DPL the guest asked for rides in the RPL.
            let selector = u64::from(selector & !3) | asked_dpl.max(3);
            let gate = (descriptor & !(0xffff << 16)) | (selector << 16);
            Ok(with_dpl(gate, 0))
        }
        _ => Err(BadDescriptor(
            "a system descriptor other than a call gate (TSS, LDT, interrupt, trap or task gate)",
        )),
    }
}

/// The 32-bit base of a code or data segment descriptor (what loading its
/// selector into FS or GS puts in the base in 64-bit mode).
pub fn segment_base(descriptor: u64) -> u64 {
    ((descriptor >> 16) & 0xff_ffff) | (((descriptor >> 56) & 0xff) << 24)
}

/// Whether `descriptor` may be loaded into DS, ES, FS or GS with an RPL-3
/// selector without a fault: present, code or data, data or readable code,
/// DPL 3. The hypervisor asks before it loads a guest's selector itself
/// (`SEGBASE_GS_USER_SEL`), since a fault there would be in ring 0.
pub fn loadable_as_data_segment(descriptor: u64) -> bool {
    let kind = segment_type(descriptor);
    is_present(descriptor)
        && descriptor & SEGMENT_S != 0
        && (kind & TYPE_CODE == 0 || kind & TYPE_READ_WRITE != 0)
        && dpl(descriptor) == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat 64-bit code segment, DPL 0 (what an HVM kernel would use).
    const CODE64_DPL0: u64 = 0x00af_9a00_0000_ffff;
    /// A flat data segment, DPL 3.
    const DATA_DPL3: u64 = 0x00cf_f200_0000_ffff;
    /// A flat data segment, DPL 0.
    const DATA_DPL0: u64 = 0x00cf_9200_0000_ffff;

    /// A present 64-bit call gate (low half) to `selector`, DPL `dpl`.
    fn call_gate(selector: u16, dpl: u64) -> u64 {
        0x1234 | (u64::from(selector) << 16) | (0x8c << 40) | (dpl << 45) | (0x5678 << 48)
    }

    /// A present TSS descriptor of `kind` (0x9: 32/64-bit available).
    fn system(kind: u64) -> u64 {
        0x0000_8000_0000_0067 | (kind << 40)
    }

    #[test]
    fn not_present_descriptors_are_kept_as_they_are() {
        for raw in [
            0,
            CODE64_DPL0 & !SEGMENT_P,
            system(0x9) & !SEGMENT_P,
            !SEGMENT_P,
        ] {
            assert_eq!(check_descriptor(raw), Ok(raw));
        }
    }

    #[test]
    fn code_and_data_below_dpl_3_are_raised_to_dpl_3() {
        assert_eq!(dpl(check_descriptor(CODE64_DPL0).unwrap()), 3);
        assert_eq!(dpl(check_descriptor(DATA_DPL0).unwrap()), 3);
        for asked in 0..3 {
            let fixed = check_descriptor(with_dpl(DATA_DPL3, asked)).unwrap();
            assert_eq!(fixed, DATA_DPL3, "DPL {asked}");
        }
        // Nothing else changes: base, limit, type, flags.
        assert_eq!(
            check_descriptor(CODE64_DPL0).unwrap(),
            CODE64_DPL0 | SEGMENT_DPL
        );
    }

    #[test]
    fn dpl_3_code_and_data_are_accepted_unchanged() {
        assert_eq!(check_descriptor(DATA_DPL3), Ok(DATA_DPL3));
        let code = CODE64_DPL0 | SEGMENT_DPL;
        assert_eq!(check_descriptor(code), Ok(code));
        // A conforming code segment is also only usable from ring 3 then.
        let conforming = code | (0x4 << 40);
        assert_eq!(check_descriptor(conforming), Ok(conforming));
    }

    #[test]
    fn system_descriptors_other_than_call_gates_are_refused() {
        // 16-bit TSS, LDT, busy 16-bit TSS, 16-bit call gate, task gate,
        // 16-bit interrupt/trap gates, 32/64-bit TSS (available and busy),
        // 32/64-bit interrupt and trap gates, and the reserved types.
        for kind in [
            0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0x9, 0xa, 0xb, 0xd, 0xe, 0xf,
        ] {
            assert!(check_descriptor(system(kind)).is_err(), "type {kind:#x}");
            assert!(
                check_descriptor(with_dpl(system(kind), 3)).is_err(),
                "type {kind:#x} DPL 3"
            );
        }
    }

    #[test]
    fn type_0_is_harmless_and_accepted() {
        let raw = 0x0000_8000_ffff_ffff;
        assert_eq!(check_descriptor(raw), Ok(with_dpl(raw, 3)));
    }

    #[test]
    fn call_gate_into_the_hypervisor_is_refused() {
        for selector in [0xe008, 0xe00b, 0xe010, 0xe040, 0xfff8] {
            assert!(
                check_descriptor(call_gate(selector, 3)).is_err(),
                "{selector:#x}"
            );
        }
    }

    #[test]
    fn call_gate_to_a_guest_segment_gets_dpl_0_and_keeps_the_asked_dpl_in_the_rpl() {
        for selector in [0x0008, 0x0010, 0xdff8, 0xe033, 0xe00c] {
            let checked = check_descriptor(call_gate(selector, 3)).unwrap();
            assert_eq!(dpl(checked), 0, "{selector:#x}");
            let stored_selector = ((checked >> 16) & 0xffff) as u16;
            assert_eq!(stored_selector, (selector & !3) | 3);
            // Offset bits untouched.
            assert_eq!(checked & 0xffff, 0x1234);
            assert_eq!(checked >> 48, 0x5678);
        }
    }

    #[test]
    fn call_gate_with_reserved_bits_is_refused() {
        let gate = call_gate(0x0008, 3) | (1 << 32);
        assert!(check_descriptor(gate).is_err());
    }

    #[test]
    fn gate_selectors_are_the_guests_own() {
        assert!(gate_selector_okay(0x0008));
        assert!(gate_selector_okay(0xdffb));
        assert!(gate_selector_okay(0xe033));
        assert!(gate_selector_okay(0xe00c)); // LDT
        assert!(!gate_selector_okay(0xe008));
        assert!(!gate_selector_okay(0xe000));
        assert!(!gate_selector_okay(0xe02b));
    }

    #[test]
    fn checking_twice_changes_nothing_more() {
        for raw in [
            CODE64_DPL0,
            DATA_DPL0,
            DATA_DPL3,
            call_gate(0x10, 1),
            0x0000_8000_0000_0000,
        ] {
            let once = check_descriptor(raw).unwrap();
            // A gate is re-checked with the DPL it was stored with (0),
            // which Xen raises and forces again: the stored value is stable.
            assert_eq!(check_descriptor(once), Ok(once), "{raw:#x}");
        }
    }

    #[test]
    fn segment_base_is_assembled_from_its_three_parts() {
        let descriptor = 0xab00_f2cd_1234_ffff_u64;
        assert_eq!(segment_base(descriptor), 0xabcd_1234);
        assert_eq!(segment_base(DATA_DPL3), 0);
    }

    #[test]
    fn only_present_dpl_3_data_or_readable_code_loads_as_data() {
        assert!(loadable_as_data_segment(DATA_DPL3));
        assert!(loadable_as_data_segment(CODE64_DPL0 | SEGMENT_DPL)); // readable code
        assert!(!loadable_as_data_segment(DATA_DPL0));
        assert!(!loadable_as_data_segment(DATA_DPL3 & !SEGMENT_P));
        assert!(!loadable_as_data_segment(
            (CODE64_DPL0 | SEGMENT_DPL) & !(TYPE_READ_WRITE << 40)
        ));
        assert!(!loadable_as_data_segment(with_dpl(system(0x9), 3)));
        assert!(!loadable_as_data_segment(0));
    }
}
