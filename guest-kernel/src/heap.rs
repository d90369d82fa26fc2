//! The guest's heap, which grows by mapping fresh frames through the
//! page-table hypercalls (see `paging`); the allocator itself is in
//! `sys/heap.rs`.
//!
//! It lives at `HEAP_START`, a region of the address space nothing else
//! uses, and starts with `INITIAL_PAGES` pages. When an allocation does not
//! fit, the heap maps at least `GROWTH_PAGES` more pages right after its
//! end and retries; it fails, having mapped nothing, when the domain's free frames cannot cover
//! the growth.
#![forbid(unsafe_code)]

/// Where the heap starts (PML4 slot 384, in the guest's part of the space).
pub const HEAP_START: u64 = 0xffff_c000_0000_0000;
/// The address space kept for the heap: all of PML4 slot 384. Nothing else
/// is ever mapped there (`sys::memory` refuses it).
pub const HEAP_RESERVED: u64 = 1 << 39;
/// Pages mapped at start.
pub const INITIAL_PAGES: u64 = 64;
/// Fewest pages added at a time.
pub const GROWTH_PAGES: u64 = 64;

/// Frames that mapping `pages` fresh pages may take: the pages, an L1
/// table per 512 of them (and one more when they straddle two tables), and
/// one for an L2 should a new L1 need it.
pub fn growth_frames(pages: u64) -> u64 {
    pages + pages.div_ceil(512) + 2
}

/// Bytes currently mapped for the heap.
pub fn size() -> u64 {
    crate::sys::heap::size()
}
