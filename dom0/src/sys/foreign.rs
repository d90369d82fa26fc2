//! Another domain's frames mapped into Dom0: the builder's window onto a
//! new domain's start of day, and each domain's store ring.
//!
//! The same rule as the guest kernel's `sys::memory`: no Rust reference
//! ever points into such a mapping. The other domain may write the page at
//! any time, and the mapping goes away when its owner drops it, so every
//! access is a volatile read or write of a range checked against what was
//! mapped. The address must lie in one of Dom0's run-time areas
//! ([`crate::areas::MAPPED_AT_RUN_TIME`]), which the areas table proves
//! apart from everything that holds Rust objects (the start-of-day region,
//! the heap). At worst, then, a mapping that changed underneath costs a
//! page fault, never a reference to memory that is no longer there.

use crate::areas;
use alloc::vec::Vec;
use guest_kernel::abi::XenError;
use guest_kernel::paging::{self, PagingError, NO_EXECUTE, PAGE_SIZE, PRESENT, USER, WRITABLE};

/// Entries of one L1 page table: a batch of mappings never crosses one.
const ENTRIES_PER_TABLE: u64 = 512;

/// Frames of another domain, mapped at consecutive pages of Dom0's address
/// space from `start`, until [`ForeignPages::unmap`] or drop.
#[derive(Debug)]
pub struct ForeignPages {
    start: u64,
    /// Pages mapped (or being mapped) from `start` on.
    pages: u64,
    writable: bool,
}

impl ForeignPages {
    /// Maps `frames` (machine frames of domain `owner`) at `address`
    /// onwards, read-only or `writable`: all of them, or an error with
    /// none left mapped. `address` must be page-aligned and the range must
    /// lie in one of Dom0's run-time areas.
    pub fn map(
        address: u64,
        owner: u16,
        frames: &[u64],
        writable: bool,
    ) -> Result<Self, PagingError> {
        let refused = PagingError::Refused(XenError::EINVAL.as_return());
        let length = (frames.len() as u64)
            .checked_mul(PAGE_SIZE)
            .ok_or(refused)?;
        let inside_an_area = areas::MAPPED_AT_RUN_TIME.iter().any(|area| {
            address >= area.start
                && address
                    .checked_add(length)
                    .is_some_and(|end| end <= area.end())
        });
        if !address.is_multiple_of(PAGE_SIZE) || !inside_an_area {
            return Err(refused);
        }
        let flags = PRESENT | USER | NO_EXECUTE | if writable { WRITABLE } else { 0 };
        // Counted before each batch is written, so that dropping it on an
        // error unmaps a batch done in part too.
        let mut mapped = Self {
            start: address,
            pages: 0,
            writable,
        };
        while mapped.pages < frames.len() as u64 {
            let first = address + mapped.pages * PAGE_SIZE;
            let l1 = paging::ensure_l1(first)?;
            let left_in_table = ENTRIES_PER_TABLE - (first / PAGE_SIZE) % ENTRIES_PER_TABLE;
            let count = left_in_table.min(frames.len() as u64 - mapped.pages);
            let requests: Vec<(u64, u64)> = (0..count)
                .map(|page| {
                    let frame = frames[(mapped.pages + page) as usize];
                    (
                        paging::l1_entry_address(l1, first + page * PAGE_SIZE),
                        (frame * PAGE_SIZE) | flags,
                    )
                })
                .collect();
            mapped.pages += count;
            paging::write_entries_foreign(&requests, owner)?;
        }
        Ok(mapped)
    }

    /// Length in bytes.
    fn length(&self) -> u64 {
        self.pages * PAGE_SIZE
    }

    /// Whether `[offset, offset + length)` lies inside the pages.
    fn contains(&self, offset: u64, length: u64) -> bool {
        offset
            .checked_add(length)
            .is_some_and(|end| end <= self.length())
    }

    /// Writes `bytes` at byte `offset` of the pages; `false`, writing
    /// nothing, when the range does not fit or the pages are read-only.
    pub fn write(&self, offset: u64, bytes: &[u8]) -> bool {
        if !self.writable || !self.contains(offset, bytes.len() as u64) {
            return false;
        }
        let target = self.start + offset;
        for (index, &byte) in bytes.iter().enumerate() {
            // SAFETY: inside the pages (checked above), mapped writable
            // until `self` goes; no Rust reference points there (module
            // comment).
            unsafe { ((target + index as u64) as *mut u8).write_volatile(byte) };
        }
        true
    }

    /// The byte at `offset`, if inside.
    pub fn read_byte(&self, offset: u64) -> Option<u8> {
        // SAFETY: inside the pages (checked first), mapped until `self`
        // goes; a volatile read, since the other domain may write it.
        self.contains(offset, 1)
            .then(|| unsafe { ((self.start + offset) as *const u8).read_volatile() })
    }

    /// The aligned u32 at `offset`, if inside (`None` when unaligned).
    pub fn read_u32(&self, offset: u64) -> Option<u32> {
        let fits = offset.is_multiple_of(4) && self.contains(offset, 4);
        // SAFETY: as in `read_byte`; aligned (checked).
        fits.then(|| unsafe { ((self.start + offset) as *const u32).read_volatile() })
    }

    /// Stores the aligned u32 `value` at `offset`; `false` when it does
    /// not fit, is unaligned, or the pages are read-only.
    pub fn write_u32(&self, offset: u64, value: u32) -> bool {
        if !self.writable || !offset.is_multiple_of(4) || !self.contains(offset, 4) {
            return false;
        }
        // SAFETY: inside, aligned and writable (checked above); no Rust
        // reference points there.
        unsafe { ((self.start + offset) as *mut u32).write_volatile(value) };
        true
    }

    /// Removes the mappings, saying whether the hypervisor refused.
    pub fn unmap(mut self) -> Result<(), PagingError> {
        self.unmap_all()
    }

    /// Clears every entry this mapping made; afterwards nothing is mapped.
    fn unmap_all(&mut self) -> Result<(), PagingError> {
        let mut outcome = Ok(());
        let mut done = 0;
        while done < self.pages {
            let first = self.start + done * PAGE_SIZE;
            let left_in_table = ENTRIES_PER_TABLE - (first / PAGE_SIZE) % ENTRIES_PER_TABLE;
            let count = left_in_table.min(self.pages - done);
            // No table: nothing of this batch was mapped.
            if let Some(l1) = paging::l1_table(first) {
                let requests: Vec<(u64, u64)> = (0..count)
                    .map(|page| (paging::l1_entry_address(l1, first + page * PAGE_SIZE), 0))
                    .collect();
                if let Err(error) = paging::write_entries(&requests) {
                    outcome = outcome.and(Err(error));
                }
            }
            done += count;
        }
        self.pages = 0;
        outcome
    }
}

impl Drop for ForeignPages {
    /// A mapping of another domain's frame keeps that frame (and a dying
    /// domain) alive, so an owner that forgets to unmap still lets go.
    fn drop(&mut self) {
        let _ = self.unmap_all();
    }
}
