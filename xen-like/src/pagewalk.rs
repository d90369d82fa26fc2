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

/// Reads machine memory by physical address (the hypervisor's direct map,
/// or a fake memory in tests).
pub trait PhysicalMemory {
    /// Reads the 8-byte little-endian word at `physical` (8-byte aligned).
    fn read_u64(&self, physical: u64) -> u64;
}

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
    fn large_pages_end_the_walk() {
        let mut memory = four_levels(USER_RW);
        memory.set(0x3000, 1, 0x4000_0000 | USER_RW | PTE_PAGE_SIZE);
        assert_eq!(
            translate(&memory, 0x1000, ADDRESS, Access::Read),
            Ok(0x4000_0000 + 0x3456)
        );
    }
}
