//! The machine-to-physical (M2P) table: for every machine frame, the
//! pseudo-physical frame its owner uses it as.
//!
//! The hypervisor keeps it (guests change their entries only through
//! `mmu_update` with `MMU_MACHPHYS_UPDATE`, and only for frames they own)
//! and maps it read-only into every address space at Xen's address,
//! `MACH2PHYS_VIRT_START` (0xffff800000000000, PML4 slot 256), so a guest
//! can translate an MFN back to its PFN with one load.
//!
//! The mapping uses the user bit (guests run in ring 3) but never the
//! writable bit; the hypervisor writes the table through its direct map.

use super::{frame_table, physical_pointer, PAGE_SIZE};
use crate::mm::frame_table::Owner;
use crate::mm::pagewalk::{PTE_NO_EXECUTE, PTE_PRESENT, PTE_USER, PTE_WRITABLE};
use crate::mm::paging;
use core::sync::atomic::{AtomicU64, Ordering};
use hypercall_abi::layout::MACH2PHYS_VIRT_START;

/// The M2P value of a frame no domain uses.
pub const INVALID_ENTRY: u64 = u64::MAX;

/// Machine frames that hold the table, in order (set once at boot).
static TABLE_FRAMES: spin::Once<alloc::vec::Vec<u64>> = spin::Once::new();
/// Number of entries (one per machine frame).
static ENTRIES: AtomicU64 = AtomicU64::new(0);

/// Builds the table for `frame_count` machine frames and maps it into the
/// idle page table's slot 256 (which every guest L4 copies).
pub fn init(frame_count: u64) {
    let pages = (frame_count * 8).div_ceil(PAGE_SIZE);
    let mut frames = alloc::vec::Vec::with_capacity(pages as usize);
    for _ in 0..pages {
        let mfn = frame_table::allocate_for(Owner::Hypervisor).expect("memory for the M2P table");
        // SAFETY: a fresh frame of ours, reached through the direct map.
        unsafe {
            core::ptr::write_bytes(
                physical_pointer::<u8>(mfn * PAGE_SIZE),
                0xff,
                PAGE_SIZE as usize,
            )
        };
        frames.push(mfn);
    }
    ENTRIES.store(frame_count, Ordering::Relaxed);
    for (page, &mfn) in frames.iter().enumerate() {
        let address = MACH2PHYS_VIRT_START + page as u64 * PAGE_SIZE;
        paging::map_hypervisor_page(
            address,
            mfn,
            PTE_PRESENT | PTE_USER | PTE_NO_EXECUTE,
            PTE_PRESENT | PTE_USER | PTE_WRITABLE,
        );
    }
    TABLE_FRAMES.call_once(|| frames);
}

fn slot(mfn: u64) -> Option<*mut u64> {
    if mfn >= ENTRIES.load(Ordering::Relaxed) {
        return None;
    }
    let frames = TABLE_FRAMES.get()?;
    let table_frame = frames[(mfn * 8 / PAGE_SIZE) as usize];
    Some(physical_pointer::<u64>(
        table_frame * PAGE_SIZE + (mfn * 8) % PAGE_SIZE,
    ))
}

/// Records that machine frame `mfn` is pseudo-physical frame `pfn` of its owner.
pub fn set(mfn: u64, pfn: u64) {
    if let Some(entry) = slot(mfn) {
        // SAFETY: the slot lies in a frame of the M2P table (slot() checked
        // the index), reached through the direct map.
        unsafe { entry.write_volatile(pfn) };
    }
}

/// Number of machine frames the table covers.
pub fn entries() -> u64 {
    ENTRIES.load(Ordering::Relaxed)
}
