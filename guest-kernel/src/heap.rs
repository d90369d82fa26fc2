//! The guest's heap: a fixed area in the image's `.bss` for now; it will
//! grow through the page-table hypercalls once the guest manages its own
//! mappings.

#[cfg(not(test))]
use linked_list_allocator::LockedHeap;

/// Size of the heap.
pub const HEAP_SIZE: usize = 2 << 20;

#[cfg(not(test))]
#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

#[cfg(not(test))]
#[repr(C, align(4096))]
struct HeapArea([u8; HEAP_SIZE]);

#[cfg(not(test))]
static mut HEAP_AREA: HeapArea = HeapArea([0; HEAP_SIZE]);

/// Hands the heap its memory. Called once by `guest_start`.
#[cfg(not(test))]
pub fn init() {
    // SAFETY: HEAP_AREA is used by nothing but the heap, and guest_start
    // calls this exactly once, before anything allocates.
    unsafe {
        HEAP.lock()
            .init(core::ptr::addr_of_mut!(HEAP_AREA) as *mut u8, HEAP_SIZE)
    };
}
