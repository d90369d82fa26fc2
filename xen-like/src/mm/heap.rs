//! The hypervisor's heap, for the few structures whose number is only known
//! at run time (domains, their frame lists).

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Size of the heap carved out of RAM at boot.
pub const HEAP_SIZE: u64 = 8 << 20;

/// Hands the heap its memory.
///
/// # Safety
/// `[start, start + size)` must be memory that nothing else uses, ever, and
/// `init` must be called only once.
pub unsafe fn init(start: u64, size: u64) {
    // SAFETY: the caller upholds the contract above.
    unsafe { HEAP.lock().init(start as *mut u8, size as usize) };
}
