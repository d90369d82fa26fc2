//! The global allocator: a `linked_list_allocator` heap behind a lock,
//! grown by mapping fresh pages after its end (the growth policy is
//! `crate::heap`'s).

use crate::heap::{growth_frames, GROWTH_PAGES, HEAP_START, INITIAL_PAGES};
use crate::paging;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use linked_list_allocator::Heap;
use spin::Mutex;

/// A heap that grows on demand.
pub struct GrowingHeap {
    heap: Mutex<Heap>,
}

impl GrowingHeap {
    const fn new() -> Self {
        Self {
            heap: Mutex::new(Heap::empty()),
        }
    }
}

// SAFETY: allocation and deallocation go through one lock around a
// linked_list_allocator Heap, whose memory is mapped for the heap alone.
unsafe impl GlobalAlloc for GrowingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut heap = self.heap.lock();
        if let Ok(block) = heap.allocate_first_fit(layout) {
            return block.as_ptr();
        }
        let needed = (layout.size() + layout.align()) as u64;
        let pages = needed.div_ceil(paging::PAGE_SIZE).max(GROWTH_PAGES);
        // Grow only when the free frames cover all of it (the pages and
        // the L1 tables that map them, plus one for a table above): a growth
        // that runs out half-way would keep frames the failed allocation
        // cannot use, and the bump allocator cannot take them back.
        if paging::free_frames() < growth_frames(pages) {
            return core::ptr::null_mut();
        }
        let end = heap.top() as u64;
        match paging::map_fresh_pages(end, pages) {
            Ok(mapped) => {
                // SAFETY: `mapped` pages right after the heap's top were just
                // mapped writable for the heap alone.
                unsafe { heap.extend((mapped * paging::PAGE_SIZE) as usize) };
            }
            Err(_) => return core::ptr::null_mut(),
        }
        heap.allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        if let Some(block) = NonNull::new(pointer) {
            // SAFETY: the caller passes a block this allocator handed out,
            // with the layout it was allocated with.
            unsafe { self.heap.lock().deallocate(block, layout) };
        }
    }
}

#[cfg(not(test))]
#[global_allocator]
static HEAP: GrowingHeap = GrowingHeap::new();

/// Bytes currently mapped for the heap.
pub fn size() -> u64 {
    #[cfg(not(test))]
    {
        HEAP.heap.lock().size() as u64
    }
    #[cfg(test)]
    0
}

/// Maps the first pages and hands them to the heap. Called once by
/// `guest_start`, after `paging::init`.
#[cfg(not(test))]
pub(super) fn init() {
    let mapped = match paging::map_fresh_pages(HEAP_START, INITIAL_PAGES) {
        Ok(mapped) => mapped,
        Err(error) => panic!("cannot map the initial heap: {error:?}"),
    };
    // SAFETY: the pages were just mapped for the heap alone; init runs once.
    unsafe {
        HEAP.heap
            .lock()
            .init(HEAP_START as *mut u8, (mapped * paging::PAGE_SIZE) as usize)
    };
}
