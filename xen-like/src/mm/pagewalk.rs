//! Walking a guest's page tables in software.
//!
//! When a hypercall hands the hypervisor a guest-virtual address (a buffer
//! to fill, the `iret` frame on the guest's stack, the place to push an
//! exception frame), the hypervisor must not simply dereference it: the
//! address could point at the hypervisor itself, or at nothing, and a fault
//! in ring 0 is the hypervisor's own crash. Instead it walks the guest's page
//! tables the way the MMU would, with the permissions of guest (user) mode,
//! and reaches the memory through its own direct map.
//!
//! A 4-level walk splits the address like this (xv6 draws the same picture):
//!
//! ```text
//!  63      48 47    39 38    30 29    21 20    12 11         0
//! +----------+--------+--------+--------+--------+------------+
//! | sign ext | L4 idx | L3 idx | L2 idx | L1 idx | page offset|
//! +----------+--------+--------+--------+--------+------------+
//! ```
//!
//! Every level must be present and user-accessible, and writable too when
//! the access is a write. A large page (PS bit) at L3 or L2 ends the walk
//! early.
#![forbid(unsafe_code)]

use hypercall_abi::layout::{HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};

/// Reads machine memory by physical address (the hypervisor's direct map,
/// or a fake memory in tests).
pub trait PhysicalMemory {
    /// Reads the 8-byte little-endian word at `physical` (8-byte aligned).
    fn read_u64(&self, physical: u64) -> u64;
}

// The entry bits are plain `u64` masks, not a `bitflags` type: an entry is
// a word a guest wrote, with an address and flags in one value, and the
// rules mask and compare it as such (`entry & PTE_ADDRESS_MASK`, `entry &
// !allowed`). A flags type would have to be split off and put back around
// every rule for no gain in checking. The grant table's `GTF_*` flags,
// which are only flags, are a `bitflags` type.

/// Present.
pub const PTE_PRESENT: u64 = 1 << 0;
/// Writable.
pub const PTE_WRITABLE: u64 = 1 << 1;
/// Accessible from user mode (ring 3, where PV guests run).
pub const PTE_USER: u64 = 1 << 2;
/// Large page (at L3: 1 GiB, at L2: 2 MiB).
pub const PTE_PAGE_SIZE: u64 = 1 << 7;
/// No execute.
pub const PTE_NO_EXECUTE: u64 = 1 << 63;
/// The physical address bits of an entry (bits 12..51).
pub const PTE_ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

/// What the access will do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only.
    Read,
    /// Read and write.
    Write,
}

/// Why an address cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// Bits 63..48 are not copies of bit 47.
    NonCanonical,
    /// Some level is not present.
    NotPresent {
        /// Level (4..1) whose entry is missing.
        level: u8,
    },
    /// Some level is present but not accessible to the guest as asked
    /// (supervisor-only, or read-only for a write).
    Forbidden {
        /// Level (4..1) whose entry refuses the access.
        level: u8,
    },
}

/// Whether bits 63..48 of `address` copy bit 47.
pub fn is_canonical(address: u64) -> bool {
    let top = address >> 47;
    top == 0 || top == 0x1_ffff
}

/// Why a guest buffer was refused before any page of it was walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeError {
    /// Some byte of it is not canonical (bits 63..48 do not copy bit 47),
    /// or it runs from the low half of the address space into the high.
    NonCanonical,
    /// Some byte of it is in the hypervisor's reserved range.
    Hypervisor,
    /// Its end is beyond 2^64: it wraps around to address 0.
    Wraps,
}

impl core::fmt::Display for RangeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NonCanonical => "not canonical",
            Self::Hypervisor => "in the hypervisor's reserved range",
            Self::Wraps => "wraps around the end of the address space",
        })
    }
}

/// The two parts of an address space a guest owns (Xen's `__addr_ok`):
///
/// ```text
///   0x0000_0000_0000_0000 ..= 0x0000_7fff_ffff_ffff   low half: guest
///   0x0000_8000_0000_0000 ..= 0xffff_7fff_ffff_ffff   non-canonical hole
///   0xffff_8000_0000_0000 ..= 0xffff_87ff_ffff_ffff   hypervisor (PML4 256-271)
///   0xffff_8800_0000_0000 ..= 0xffff_ffff_ffff_ffff   high half: guest
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
enum GuestPart {
    Low,
    High,
}

fn guest_part(address: u64) -> Result<GuestPart, RangeError> {
    if !is_canonical(address) {
        Err(RangeError::NonCanonical)
    } else if address < HYPERVISOR_VIRT_START {
        Ok(GuestPart::Low)
    } else if address < HYPERVISOR_VIRT_END {
        Err(RangeError::Hypervisor)
    } else {
        Ok(GuestPart::High)
    }
}

/// Whether the guest may name `[address, address + length)` as a buffer
/// for a hypercall: every byte canonical, none in the hypervisor's
/// reserved range, no wrap past 2^64. A zero-length buffer is judged by
/// its address alone, as Xen's `guest_handle_okay` judges it.
///
/// The whole reserved range is refused, even the read-only M2P window a
/// guest may read with its own loads: the hypervisor never reads or writes
/// its own memory on a guest's behalf. This check comes before the page
/// walk, which then refuses what is unmapped, read-only for a write, or
/// supervisor-only.
pub fn check_guest_range(address: u64, length: u64) -> Result<(), RangeError> {
    let last = address
        .checked_add(length.saturating_sub(1))
        .ok_or(RangeError::Wraps)?;
    let first_part = guest_part(address)?;
    let last_part = guest_part(last)?;
    // Low to high passes the non-canonical hole and the hypervisor.
    if first_part != last_part {
        return Err(RangeError::NonCanonical);
    }
    Ok(())
}

/// Translates guest-virtual `address` to a physical address through the
/// page tables rooted at `root` (a physical address), as a ring-3 access.
pub fn translate(
    memory: &impl PhysicalMemory,
    root: u64,
    address: u64,
    access: Access,
) -> Result<u64, WalkError> {
    if !is_canonical(address) {
        return Err(WalkError::NonCanonical);
    }
    let mut table = root & PTE_ADDRESS_MASK;
    for level in (1..=4u8).rev() {
        let shift = 12 + 9 * u32::from(level - 1);
        let index = (address >> shift) & 511;
        let entry = memory.read_u64(table + index * 8);
        if entry & PTE_PRESENT == 0 {
            return Err(WalkError::NotPresent { level });
        }
        let writable_needed = access == Access::Write;
        if entry & PTE_USER == 0 || (writable_needed && entry & PTE_WRITABLE == 0) {
            return Err(WalkError::Forbidden { level });
        }
        let large = (level == 2 || level == 3) && entry & PTE_PAGE_SIZE != 0;
        if large || level == 1 {
            let page_mask = (1u64 << shift) - 1;
            return Ok((entry & PTE_ADDRESS_MASK & !page_mask) | (address & page_mask));
        }
        table = entry & PTE_ADDRESS_MASK;
    }
    unreachable!("level 1 always returns")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A sparse fake machine memory.
    #[derive(Default)]
    struct FakeMemory(HashMap<u64, u64>);

    impl PhysicalMemory for FakeMemory {
        fn read_u64(&self, physical: u64) -> u64 {
            *self.0.get(&physical).unwrap_or(&0)
        }
    }

    impl FakeMemory {
        fn set(&mut self, table: u64, index: u64, value: u64) {
            self.0.insert(table + index * 8, value);
        }
    }

    const USER_RW: u64 = PTE_PRESENT | PTE_WRITABLE | PTE_USER;
    const ADDRESS: u64 = 0xffff_ffff_8020_3456;

    /// L4 at 0x1000, L3 at 0x2000, L2 at 0x3000, L1 at 0x4000, page at 0x9000.
    fn four_levels(l1_flags: u64) -> FakeMemory {
        let mut memory = FakeMemory::default();
        memory.set(0x1000, 511, 0x2000 | USER_RW);
        memory.set(0x2000, 510, 0x3000 | USER_RW);
        memory.set(0x3000, 1, 0x4000 | USER_RW);
        memory.set(0x4000, 3, 0x9000 | l1_flags);
        memory
    }

    #[test]
    fn translates_a_mapped_address() {
        let memory = four_levels(USER_RW);
        assert_eq!(
            translate(&memory, 0x1000, ADDRESS, Access::Write),
            Ok(0x9456)
        );
    }

    #[test]
    fn read_only_pages_refuse_writes_but_allow_reads() {
        let memory = four_levels(PTE_PRESENT | PTE_USER);
        assert_eq!(
            translate(&memory, 0x1000, ADDRESS, Access::Read),
            Ok(0x9456)
        );
        assert_eq!(
            translate(&memory, 0x1000, ADDRESS, Access::Write),
            Err(WalkError::Forbidden { level: 1 })
        );
    }

    #[test]
    fn supervisor_pages_are_out_of_reach() {
        let mut memory = four_levels(USER_RW);
        memory.set(0x2000, 510, 0x3000 | PTE_PRESENT | PTE_WRITABLE);
        assert_eq!(
            translate(&memory, 0x1000, ADDRESS, Access::Read),
            Err(WalkError::Forbidden { level: 3 })
        );
    }

    #[test]
    fn missing_levels_are_reported() {
        let memory = four_levels(0);
        assert_eq!(
            translate(&memory, 0x1000, ADDRESS, Access::Read),
            Err(WalkError::NotPresent { level: 1 })
        );
        assert_eq!(
            translate(&memory, 0x1000, 0x1000, Access::Read),
            Err(WalkError::NotPresent { level: 4 })
        );
    }

    #[test]
    fn non_canonical_addresses_are_refused() {
        let memory = four_levels(USER_RW);
        assert_eq!(
            translate(&memory, 0x1000, 0x0000_8000_0000_0000, Access::Read),
            Err(WalkError::NonCanonical)
        );
        assert!(is_canonical(0xffff_8000_0000_0000));
        assert!(is_canonical(0x0000_7fff_ffff_ffff));
        assert!(!is_canonical(0x1234_0000_0000_0000));
    }

    #[test]
    fn guest_ranges_in_either_half_are_accepted() {
        assert_eq!(check_guest_range(0, 0), Ok(()));
        assert_eq!(check_guest_range(0x1000, 4096), Ok(()));
        assert_eq!(check_guest_range(0x7fff_ffff_f000, 0x1000), Ok(()));
        assert_eq!(check_guest_range(HYPERVISOR_VIRT_END, 8), Ok(()));
        assert_eq!(check_guest_range(0xffff_ffff_ffff_fff8, 8), Ok(()));
        assert_eq!(check_guest_range(u64::MAX, 1), Ok(()));
    }

    #[test]
    fn every_byte_of_the_hypervisor_range_is_refused() {
        for address in [
            HYPERVISOR_VIRT_START, // the read-only M2P window
            0xffff_82d0_4000_0000, // the hypervisor image
            0xffff_8300_0000_0000, // the direct map
            HYPERVISOR_VIRT_END - 1,
        ] {
            assert_eq!(check_guest_range(address, 1), Err(RangeError::Hypervisor));
            assert_eq!(check_guest_range(address, 0), Err(RangeError::Hypervisor));
        }
        // Ending in it from above is impossible; from just below the end of
        // the range into the guest's high half is caught by its first byte.
        assert_eq!(
            check_guest_range(HYPERVISOR_VIRT_END - 8, 16),
            Err(RangeError::Hypervisor)
        );
    }

    #[test]
    fn non_canonical_and_hole_crossing_ranges_are_refused() {
        assert_eq!(
            check_guest_range(0x0000_8000_0000_0000, 8),
            Err(RangeError::NonCanonical)
        );
        assert_eq!(
            check_guest_range(0x8000_0000_0000_0000, 0),
            Err(RangeError::NonCanonical)
        );
        // Starts in the low half, ends past it.
        assert_eq!(
            check_guest_range(0x7fff_ffff_fff8, 16),
            Err(RangeError::NonCanonical)
        );
        // Low half to high half: all of the hole and the hypervisor between.
        assert_eq!(
            check_guest_range(0x1000, 0xffff_9000_0000_0000),
            Err(RangeError::NonCanonical)
        );
    }

    #[test]
    fn ranges_that_wrap_are_refused() {
        assert_eq!(
            check_guest_range(0xffff_ffff_ffff_fff8, 16),
            Err(RangeError::Wraps)
        );
        assert_eq!(check_guest_range(2, u64::MAX), Err(RangeError::Wraps));
        assert_eq!(
            check_guest_range(0, u64::MAX),
            Err(RangeError::NonCanonical)
        );
    }

    #[test]
    fn large_pages_end_the_walk() {
        let mut memory = four_levels(USER_RW);
        memory.set(0x3000, 1, 0x4000_0000 | USER_RW | PTE_PAGE_SIZE);
        assert_eq!(
            translate(&memory, 0x1000, ADDRESS, Access::Read),
            Ok(0x4000_0000 + 0x3456)
        );
    }
}
