//! The hypervisor's own page tables.
//!
//! The boot code left a PML4 (the *idle* page table) with three slots:
//! an identity map of the first 4 GiB (slot 0, only needed to get to the high
//! half), the hypervisor image at `XEN_VIRT_START` (slot 261) and the direct
//! map of the first 4 GiB (slot 262). Here the direct map grows to cover all
//! RAM and the identity map goes away.
//!
//! Every guest's PML4 gets copies of slots 256..=271 (Xen's reserved
//! region) from the idle table. The copies point at the same lower-level
//! tables, so the hypervisor appears identically in every address space,
//! and never with the user bit: a guest in ring 3 cannot touch it.

use super::{frames, physical_pointer, PAGE_SIZE};
use crate::arch::x86_64::{boot::IDENTITY_SLOT, instructions};
use crate::mm::pagewalk::{PTE_ADDRESS_MASK, PTE_PAGE_SIZE, PTE_PRESENT, PTE_WRITABLE};
use core::sync::atomic::{AtomicU64, Ordering};

/// First PML4 slot of the hypervisor's region.
pub const HYPERVISOR_FIRST_SLOT: usize = 256;
/// Last PML4 slot of the hypervisor's region.
pub const HYPERVISOR_LAST_SLOT: usize = 271;
const DIRECTMAP_SLOT: usize = 262;
const GIB: u64 = 1 << 30;

/// Physical address of the idle PML4.
static IDLE_ROOT: AtomicU64 = AtomicU64::new(0);

/// Remembers the boot page table as the idle table. Call first thing.
pub fn adopt_boot_tables() {
    IDLE_ROOT.store(
        instructions::read_cr3() & PTE_ADDRESS_MASK,
        Ordering::Relaxed,
    );
}

/// Physical address of the idle PML4.
pub fn idle_root() -> u64 {
    IDLE_ROOT.load(Ordering::Relaxed)
}

fn table(physical: u64) -> *mut [u64; 512] {
    physical_pointer(physical)
}

/// Extends the direct map (2 MiB pages) to cover RAM up to `ram_end`.
pub fn map_all_ram(ram_end: u64) {
    // SAFETY: the idle PML4 and its direct-map PDPT are the boot tables,
    // which only this CPU uses at this point; new PDs are fresh frames.
    unsafe {
        let pdpt = (*table(idle_root()))[DIRECTMAP_SLOT] & PTE_ADDRESS_MASK;
        let gigabytes = ram_end.div_ceil(GIB).min(512);
        for gigabyte in 0..gigabytes {
            if (*table(pdpt))[gigabyte as usize] & PTE_PRESENT != 0 {
                continue; // the boot code mapped the first 4 GiB
            }
            let Some(pd_mfn) = frames::allocate() else {
                panic!("out of memory while mapping RAM above 4 GiB");
            };
            let pd = pd_mfn * PAGE_SIZE;
            for (index, entry) in (*table(pd)).iter_mut().enumerate() {
                *entry = (gigabyte * GIB + index as u64 * (2 << 20))
                    | PTE_PRESENT
                    | PTE_WRITABLE
                    | PTE_PAGE_SIZE;
            }
            (*table(pdpt))[gigabyte as usize] = pd | PTE_PRESENT | PTE_WRITABLE;
        }
    }
}

/// Removes the boot-time identity map of low memory.
pub fn drop_identity_map() {
    // SAFETY: the hypervisor runs in the high half and its descriptor tables
    // are loaded from high addresses, so nothing uses slot 0 any more;
    // reloading CR3 flushes the stale translations.
    unsafe {
        (*table(idle_root()))[IDENTITY_SLOT] = 0;
        instructions::write_cr3(idle_root());
    }
}

/// The hypervisor's PML4 entries (slots 256..=271), for copying into a
/// guest's PML4.
pub fn hypervisor_slots() -> [u64; HYPERVISOR_LAST_SLOT - HYPERVISOR_FIRST_SLOT + 1] {
    let mut slots = [0; HYPERVISOR_LAST_SLOT - HYPERVISOR_FIRST_SLOT + 1];
    // SAFETY: the idle PML4 is a live page table in RAM covered by the
    // direct map; these slots are only changed at boot.
    let idle = unsafe { &*table(idle_root()) };
    slots.copy_from_slice(&idle[HYPERVISOR_FIRST_SLOT..=HYPERVISOR_LAST_SLOT]);
    slots
}

/// Maps one 4 KiB page of the hypervisor's region in the idle page table
/// (and so in every guest, which share its lower-level tables), creating
/// missing tables with `table_flags`. Used at boot for the M2P table.
pub fn map_hypervisor_page(address: u64, mfn: u64, leaf_flags: u64, table_flags: u64) {
    let mut table = idle_root();
    for level in [4u32, 3, 2] {
        let index = ((address >> (12 + 9 * (level - 1))) & 511) as usize;
        // SAFETY: the tables are the hypervisor's own, in RAM covered by the
        // direct map, and only the boot CPU changes them at boot.
        unsafe {
            let entry = &mut (*self::table(table))[index];
            if *entry & PTE_PRESENT == 0 {
                let new =
                    super::frame_table::allocate_for(crate::mm::frame_table::Owner::Hypervisor)
                        .expect("memory for a hypervisor page table");
                *entry = (new * PAGE_SIZE) | table_flags;
            }
            table = *entry & PTE_ADDRESS_MASK;
        }
    }
    let index = ((address >> 12) & 511) as usize;
    // SAFETY: as above, for the last level.
    unsafe { (*self::table(table))[index] = (mfn * PAGE_SIZE) | leaf_flags };
}

/// The L1 entry that maps `address` in the hypervisor's part of the idle
/// page table, if the tables down to it exist.
pub fn hypervisor_pte(address: u64) -> Option<*mut u64> {
    let mut table = idle_root();
    for level in [4u32, 3, 2] {
        let index = ((address >> (12 + 9 * (level - 1))) & 511) as usize;
        // SAFETY: the hypervisor's own tables, covered by the direct map.
        let entry = unsafe { (*self::table(table))[index] };
        if entry & PTE_PRESENT == 0 || entry & PTE_PAGE_SIZE != 0 {
            return None;
        }
        table = entry & PTE_ADDRESS_MASK;
    }
    let index = ((address >> 12) & 511) as usize;
    // SAFETY: as above; the pointer stays valid for the hypervisor's life.
    Some(unsafe { &mut (*self::table(table))[index] as *mut u64 })
}

/// Loads the idle page table, for a CPU that runs no domain (the
/// scheduler's idle loop): no guest's tables stay in use, and the TLB is
/// flushed.
pub fn load_idle_root() {
    // SAFETY: the idle table is the hypervisor's own; every guest's L4
    // copies its hypervisor slots, so the hypervisor stays mapped exactly
    // as before the switch.
    unsafe { instructions::write_cr3(idle_root()) };
    super::tlb::root_loaded();
}

/// Loads the page-table root that domain's vCPU runs on in its current
/// mode: the kernel's L4 (`NEW_BASEPTR`) in guest-kernel mode, the user's
/// (`NEW_USER_BASEPTR`) in guest-user mode. Writing CR3 flushes the TLB.
///
/// The one place a guest root reaches CR3 (besides `NEW_BASEPTR` loading
/// the root it just validated), so that the mode and the loaded root
/// cannot disagree. A vCPU in user mode always has a user root: `iret`
/// refuses to enter user mode without one, and the root cannot be changed
/// from user mode (only the guest kernel makes hypercalls).
pub fn load_guest_root(domain: &crate::domain::Domain) {
    let root = match (domain.vcpu.kernel_mode, domain.user_root) {
        (false, Some(user_root)) => user_root,
        _ => domain.kernel_root,
    };
    // SAFETY: both roots hold a type reference as validated L4s of this
    // domain for as long as they are its roots (`switch_base`), and
    // validation copied the hypervisor's slots into them, so the
    // hypervisor stays mapped exactly as before.
    unsafe { instructions::write_cr3(root * PAGE_SIZE) };
    super::tlb::root_loaded();
}
