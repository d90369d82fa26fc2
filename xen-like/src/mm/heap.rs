//! The hypervisor's heap, for the structures whose number is only known at
//! run time (domains, their frame lists, grant tables), and the one gate
//! that guest-sized allocations pass (`heap_budget.rs` has the rule).

use alloc::boxed::Box;
use core::alloc::Layout;
use core::sync::atomic::{AtomicU64, Ordering};
use linked_list_allocator::LockedHeap;

use super::heap_budget::{HeapBudget, HeapRefusal};

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// The part of the heap that does not depend on the machine's size: the
/// domains' fixed structures and the guest-sized state (grant tables).
pub const BASE_HEAP_SIZE: u64 = 8 << 20;

/// The heap's size, set by [`init`].
static SIZE: AtomicU64 = AtomicU64::new(0);

/// The heap to carve out of RAM at boot for a machine of `machine_frames`
/// frames: the base, plus `bytes_per_frame` for every frame (the domains'
/// lists of their frames grow with the machine; see
/// `crate::domain::HEAP_BYTES_PER_FRAME`), in whole pages.
pub fn size_for(machine_frames: u64, bytes_per_frame: u64) -> u64 {
    let size = BASE_HEAP_SIZE + machine_frames * bytes_per_frame;
    size.next_multiple_of(super::PAGE_SIZE)
}

/// The heap's size in bytes.
pub fn size() -> u64 {
    SIZE.load(Ordering::Relaxed)
}

/// The limits on guest-sized allocations, set once at boot by
/// [`set_reserve`]. Until then nothing guest-sized is admitted.
static BUDGET: spin::Once<HeapBudget> = spin::Once::new();

/// Hands the heap its memory.
///
/// # Safety
/// `[start, start + size)` must be memory that nothing else uses, ever, and
/// `init` must be called only once.
pub unsafe fn init(start: u64, size: u64) {
    // SAFETY: the caller upholds the contract above.
    unsafe { HEAP.lock().init(start as *mut u8, size as usize) };
    SIZE.store(size, Ordering::Relaxed);
}

/// Fixes the reserve: the heap bytes the hypervisor's own structures may
/// need at most (see `crate::domain::heap_reserve`). Called once at boot.
pub fn set_reserve(reserve: usize) {
    let heap_size = size();
    let budget = BUDGET.call_once(|| HeapBudget::new(heap_size as usize, reserve));
    // Less than this for guests is fewer than three full grant tables.
    const SMALL_GUEST_SHARE: usize = 2 << 20;
    if (heap_size as usize).saturating_sub(reserve) < SMALL_GUEST_SHARE {
        log::warn!(
            "heap: the hypervisor may need {} KiB of its {} KiB heap for itself: little is left for grant tables",
            reserve >> 10,
            heap_size >> 10
        );
    }
    log::info!(
        "heap: {} KiB, {} KiB reserved for the hypervisor's own structures, at most {} KiB of guest-sized state per domain",
        heap_size >> 10,
        budget.reserve >> 10,
        budget.per_domain_cap >> 10
    );
}

/// The budget fixed at boot (all zero before [`set_reserve`]).
pub fn budget() -> HeapBudget {
    BUDGET.get().copied().unwrap_or(HeapBudget {
        reserve: usize::MAX,
        per_domain_cap: 0,
    })
}

/// Bytes of the heap not allocated now (they may be in several pieces).
pub fn free_bytes() -> usize {
    HEAP.lock().free()
}

/// The accounting function every guest-sized allocation goes through:
/// whether a domain that holds `domain_bytes` of guest-sized heap may now
/// allocate a block of `bytes` (a vector's whole new buffer). The caller
/// allocates right after, fallibly (`try_reserve`), under the same domain
/// lock, and turns a refusal into the hypercall's own error (`-ENOMEM`,
/// `GNTST_no_space`...).
pub fn admit_guest_allocation(domain_bytes: usize, bytes: usize) -> Result<(), HeapRefusal> {
    budget().admit(free_bytes(), domain_bytes, bytes)
}

/// `Box::new` that fails instead of aborting when the heap has no room
/// (`Box::try_new` is not stable): for the hypervisor's own structures
/// that a control-domain request creates, such as a `Domain`. On failure
/// the value comes back, so that the caller can undo what it holds.
pub fn try_box<T>(value: T) -> Result<Box<T>, T> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Ok(Box::new(value));
    }
    // SAFETY: the layout has a non-zero size, as `alloc` requires.
    let pointer = unsafe { alloc::alloc::alloc(layout) }.cast::<T>();
    if pointer.is_null() {
        return Err(value);
    }
    // SAFETY:
    // 1. `pointer` is non-null, aligned and valid for a `T`: the global
    //    allocator just returned it for `Layout::new::<T>()`.
    // 2. `write` initialises it without reading or dropping what was there.
    // 3. `Box::from_raw` then owns a block allocated by the global
    //    allocator with `T`'s layout, which is what `Box<T>` frees.
    unsafe {
        pointer.write(value);
        Ok(Box::from_raw(pointer))
    }
}
