//! The direct map: every machine frame at a fixed virtual address in the hypervisor's region.

use crate::mm::pagewalk::PhysicalMemory;

/// Start of the direct map of machine memory (PML4 slot 262).
pub const DIRECTMAP_START: u64 = 0xffff_8300_0000_0000;
/// Size of a page.
pub const PAGE_SIZE: u64 = 4096;

/// The virtual address at which the hypervisor sees machine address `physical`.
pub fn physical_to_virtual(physical: u64) -> u64 {
    DIRECTMAP_START + physical
}

/// A pointer to machine address `physical` through the direct map.
pub fn physical_pointer<T>(physical: u64) -> *mut T {
    physical_to_virtual(physical) as *mut T
}

/// Machine memory read through the direct map, for page-table walks.
pub struct DirectMap;

impl PhysicalMemory for DirectMap {
    fn read_u64(&self, physical: u64) -> u64 {
        // SAFETY: the direct map covers all RAM (paging::map_all_ram), and
        // page-table walks only read frames that a page table points at,
        // which are RAM frames the walker's caller has vouched for (the
        // current guest's own tables).
        unsafe { physical_pointer::<u64>(physical).read_volatile() }
    }
}

/// Fills the frame `mfn` with zeros.
///
/// # Safety
/// `mfn` must be a RAM frame (the direct map covers it) whose contents the
/// caller may overwrite: a frame it just took from the allocator, or one
/// whose owner could write it itself (typed `Writable` for the time of the
/// call, as `frame_table::clear_page` arranges). Never a page table, a
/// descriptor page, or a frame of the hypervisor's.
///
/// Eight bytes at a time, not with `write_bytes`: that becomes a `memset`
/// whose `rep stosb` QEMU's emulation runs byte by byte, some 20,000 to
/// 40,000 TSC cycles a frame, which made each extent of an
/// `increase_reservation` cost about ten page-table entries' worth of work.
/// The volatile stores keep the compiler from turning the loop back into
/// that `memset`.
pub unsafe fn zero_frame(mfn: u64) {
    let words = physical_pointer::<u64>(mfn * PAGE_SIZE);
    for index in 0..(PAGE_SIZE / 8) as usize {
        // SAFETY: the caller vouches for the frame (see above); `index`
        // stays within its 512 words.
        unsafe { words.add(index).write_volatile(0) };
    }
}
