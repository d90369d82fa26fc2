//! A `vcpu_info` the guest moved out of the shared info page: the frame it named, held for the vCPU's life.
//!
//! `VCPUOP_register_vcpu_info` lets a guest put a vCPU's `vcpu_info` (its
//! upcall flag and mask, the pending selector, `cr2`, its time) in a page
//! of its own choosing, at an offset of its choosing. From then on the
//! hypervisor writes that place whenever it likes, exactly as it writes the
//! shared info page, so the same two rules apply (see `frame.rs`):
//!
//! 1. **The frame stays the hypervisor's to write.** A [`VcpuInfoFrame`]
//!    exists only with a general and a `Writable` type reference on the
//!    frame (`FrameTable::hold_for_hypervisor`, frame-table invariant 6),
//!    taken in [`VcpuInfoFrame::register`] and ended only by
//!    [`VcpuInfoFrame::release_hold`] at domain destruction. The guest can
//!    therefore never give the frame back nor make it a page table: without
//!    the hold, it could pin the frame as an L1 and let the next event make
//!    the hypervisor write an entry nobody validated.
//! 2. **Every access is atomic**, through
//!    [`VcpuInfoCells`](crate::mm::shared_page::VcpuInfoCells), the same
//!    type as a slot of the shared info page.
//!
//! Unlike the shared info frame, this one is part of the domain's memory:
//! the hold ends first, then the frame goes back with the rest.

use crate::mm::frame_table::{self, DirectMapTables, DomainId, FrameTable, Mfn};
use crate::mm::shared_page::{vcpu_info_offset_refusal, VcpuInfoCells};
use crate::mm::{physical_pointer, physical_to_virtual, PAGE_SIZE};
use hypercall_abi::XenError;

/// Where a vCPU's `vcpu_info` lives once the guest registered a place for
/// it: frame and offset, held by the hypervisor (invariant 6). Neither
/// `Clone` nor `Copy`: one per vCPU, registered at most once.
#[derive(Debug)]
pub struct VcpuInfoFrame {
    mfn: Mfn,
    offset: u64,
}

impl VcpuInfoFrame {
    /// Checks and holds frame `mfn` of `domain` for a `vcpu_info` at
    /// `offset`, then moves the vCPU's `vcpu_info` there from `current` (its
    /// place until now) and marks every event pending there, as Xen's
    /// `map_vcpu_info` does. Refusals, each with the reason to log, are
    /// Xen's: `-EINVAL` for an offset where 64 aligned bytes do not fit, for
    /// a frame that is not the domain's, and for one that cannot be a
    /// writable page (a page table, a descriptor page) or that the
    /// hypervisor already holds.
    pub fn register(
        domain: DomainId,
        mfn: Mfn,
        offset: u64,
        current: &VcpuInfoCells,
    ) -> Result<Self, (XenError, &'static str)> {
        if let Some(reason) = vcpu_info_offset_refusal(offset) {
            return Err((XenError::EINVAL, reason));
        }
        frame_table::with(|table, memory| table.hold_for_hypervisor(memory, mfn, domain))
            .map_err(|refusal| (XenError::EINVAL, refusal.reason))?;
        let registered = Self { mfn, offset };
        let cells = registered.cells();
        cells.copy_from(current);
        cells.mark_everything_pending();
        Ok(registered)
    }

    /// The machine frame that holds the `vcpu_info`.
    pub fn mfn(&self) -> Mfn {
        self.mfn
    }

    /// The `vcpu_info`, as atomics.
    pub fn cells(&self) -> &VcpuInfoCells {
        // SAFETY:
        // 1. `self` exists only while the hypervisor holds the frame
        //    (`register` took the hold, `release_hold` consumes `self`), so
        //    the frame is RAM, covered by the direct map, and never freed or
        //    retyped while the returned reference (tied to `&self`) lives.
        // 2. `register` checked that the 64 bytes of `VcpuInfoCells` lie in
        //    the frame at an 8-byte-aligned offset, the alignment the type
        //    needs; every bit pattern is a valid value of its atomics.
        // 3. The guest writes the bytes concurrently; all of the
        //    hypervisor's accesses through the reference are atomic.
        unsafe { &*physical_pointer::<VcpuInfoCells>(self.mfn * PAGE_SIZE + self.offset) }
    }

    /// The direct-map address of the `vcpu_info`, published per CPU for the
    /// exit path's quick look (`running_vcpu_needs_upcall`).
    pub fn address(&self) -> u64 {
        physical_to_virtual(self.mfn * PAGE_SIZE + self.offset)
    }

    /// Ends the hypervisor's hold (domain destruction, with the frame table
    /// locked by the caller); the frame stays the domain's, released with
    /// the rest of its memory.
    pub fn release_hold(self, table: &mut FrameTable<'_>, memory: &mut DirectMapTables) {
        table.release_hypervisor_hold(memory, self.mfn);
    }
}
