//! A domain's grant-table frames, and the one way the hypervisor touches
//! them and the frames granted through them.
//!
//! The granter writes its grant entries whenever it likes, and so does the
//! hypervisor (the `GTF_reading`/`GTF_writing` bits), so every access to an
//! entry here is atomic: a 32-bit compare-and-exchange of `flags | domid`,
//! an atomic AND to clear status bits, and atomic loads. The frames are held
//! under frame-table invariant 6 for as long as [`GrantFrames`] has them, so
//! they are RAM of the domain that can never become page tables.
//! [`copy_between_frames`] is `GNTTABOP_copy`'s byte copy, safe to call only
//! while the caller holds references on both frames (the grant rules take
//! them).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use hypercall_abi::grant_table::{GrantFlags, GrantRef, GRANT_ENTRIES_PER_FRAME};
use hypercall_abi::XenError;

use super::frame_table::{self, DirectMapTables, DomainId, FrameTable, Mfn, Owner};
use super::heap_budget::HeapRefusal;
use super::{physical_pointer, PAGE_SIZE};
use crate::grant::table::SharedEntries;

/// The frames of one domain's grant table, each held by the hypervisor
/// (invariant 6) from the moment it is added until [`GrantFrames::release`].
#[derive(Debug, Default)]
pub struct GrantFrames {
    mfns: Vec<Mfn>,
}

impl GrantFrames {
    /// No frames yet: the table grows on `GNTTABOP_setup_table`.
    pub const fn new() -> Self {
        Self { mfns: Vec::new() }
    }

    /// The frames, in table order.
    pub fn mfns(&self) -> &[Mfn] {
        &self.mfns
    }

    /// How many frames the table has.
    pub fn count(&self) -> u32 {
        self.mfns.len() as u32
    }

    /// Heap bytes the list of frames holds (for the domain's heap account).
    pub fn heap_bytes(&self) -> usize {
        self.mfns.capacity() * size_of::<Mfn>()
    }

    /// Grows the table of `domain` to `count` frames: fresh zeroed frames
    /// owned by the domain (not part of its memory, like its shared info
    /// page), each held for the hypervisor. The longer list of frames is a
    /// guest-sized allocation, asked of `admit` first (the heap's
    /// accounting) and made fallibly: `-ENOMEM` changes nothing. Stops at
    /// the first frame it cannot get (`-ENOMEM`), keeping those it got.
    pub fn grow(
        &mut self,
        domain: DomainId,
        count: u32,
        admit: impl FnOnce(usize) -> Result<(), HeapRefusal>,
    ) -> Result<(), XenError> {
        let wanted = count as usize;
        if wanted > self.mfns.capacity() {
            admit(wanted * size_of::<Mfn>()).map_err(|_| XenError::ENOMEM)?;
            self.mfns
                .try_reserve_exact(wanted - self.mfns.len())
                .map_err(|_| XenError::ENOMEM)?;
        }
        while self.count() < count {
            let mfn = frame_table::allocate_for(Owner::Domain(domain)).ok_or(XenError::ENOMEM)?;
            let held =
                frame_table::with(|table, memory| table.hold_for_hypervisor(memory, mfn, domain));
            if let Err(refusal) = held {
                // A frame fresh from the allocator is always holdable: a bug.
                log::error!(
                    "d{domain}: cannot hold new grant-table frame {mfn:#x}: {}",
                    refusal.reason
                );
                let _ = frame_table::release(mfn, Owner::Domain(domain));
                return Err(XenError::ENOMEM);
            }
            // Within the capacity reserved above: no allocation.
            self.mfns.push(mfn);
        }
        Ok(())
    }

    /// Ends the hypervisor's holds (domain destruction, with the frame table
    /// locked by the caller) and returns the frames, which the caller
    /// releases with the rest of the domain's memory.
    pub fn release(self, table: &mut FrameTable<'_>, memory: &mut DirectMapTables) -> Vec<Mfn> {
        for &mfn in &self.mfns {
            table.release_hypervisor_hold(memory, mfn);
        }
        self.mfns
    }

    /// The 32-bit word at `offset` (0: `flags | domid`, 4: `frame`) of
    /// entry `reference`, which must be below [`SharedEntries::entry_count`].
    fn word(&self, reference: GrantRef, offset: u64) -> &AtomicU32 {
        let frame = self.mfns[(reference / GRANT_ENTRIES_PER_FRAME) as usize];
        let index = u64::from(reference % GRANT_ENTRIES_PER_FRAME);
        let address = frame * PAGE_SIZE + index * 8 + offset;
        // SAFETY:
        // 1. `frame` is held by the hypervisor for as long as `self` has it
        //    (invariant 6): RAM, covered by the direct map, never freed or
        //    retyped while the reference (tied to `&self`) lives.
        // 2. The address is 4-byte aligned and within the frame.
        // 3. The guest writes the word concurrently; every access through
        //    the reference is atomic, and any bit pattern is a valid u32.
        unsafe { &*physical_pointer::<AtomicU32>(address) }
    }
}

impl SharedEntries for GrantFrames {
    fn entry_count(&self) -> u32 {
        self.count() * GRANT_ENTRIES_PER_FRAME
    }

    fn header(&self, reference: GrantRef) -> u32 {
        self.word(reference, 0).load(Ordering::Acquire)
    }

    fn frame(&self, reference: GrantRef) -> u32 {
        // Read after the header (the granter writes `frame` before `flags`).
        self.word(reference, 4).load(Ordering::Acquire)
    }

    fn compare_exchange_header(
        &mut self,
        reference: GrantRef,
        current: u32,
        new: u32,
    ) -> Result<(), u32> {
        self.word(reference, 0)
            .compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
    }

    fn clear_flags(&mut self, reference: GrantRef, flags: GrantFlags) {
        // `flags` is the low half of the little-endian header word.
        self.word(reference, 0)
            .fetch_and(!u32::from(flags.bits()), Ordering::AcqRel);
    }
}

/// Copies `length` bytes from `source` at `source_offset` to `dest` at
/// `dest_offset` (`GNTTABOP_copy`). The caller has checked that neither
/// range crosses the end of its page and holds a general reference on
/// both frames and a `Writable` type reference on `dest`
/// (`crate::grant::table::acquire_for_copy`), so both are RAM that stays
/// allocated and `dest` is no page table.
pub fn copy_between_frames(
    source: Mfn,
    source_offset: u16,
    dest: Mfn,
    dest_offset: u16,
    length: u16,
) {
    let length = u64::from(length);
    let source_offset = u64::from(source_offset);
    let dest_offset = u64::from(dest_offset);
    if length == 0 || source_offset + length > PAGE_SIZE || dest_offset + length > PAGE_SIZE {
        return;
    }
    let from = physical_pointer::<u8>(source * PAGE_SIZE + source_offset);
    let to = physical_pointer::<u8>(dest * PAGE_SIZE + dest_offset);
    // SAFETY: both ranges lie within RAM frames the caller holds references
    // on (see above), through the direct map; `copy` allows the two to
    // overlap (a domain may copy within one frame). Guests may write the
    // bytes meanwhile; the copy then sees some mix, as with Xen's memcpy.
    unsafe { core::ptr::copy(from, to, length as usize) };
}
