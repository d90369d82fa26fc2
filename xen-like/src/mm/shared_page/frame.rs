//! Each domain's shared info page: the one way the hypervisor reaches it.
//!
//! The page is a frame of the domain's that the hypervisor writes whenever
//! it likes (event bits, the upcall flag, `cr2`, the time, the shutdown
//! reason), while the guest writes it too. Two rules make that safe, and
//! both live here so that no other module needs `unsafe` or a `&mut` to
//! guest-shared memory:
//!
//! 1. **The frame stays the hypervisor's to write.** [`SharedInfoFrame`] is
//!    created only by taking a fresh frame and a hold on it
//!    (`FrameTable::hold_for_hypervisor`: a general and a `Writable` type
//!    reference, frame-table invariant 6), and the hold ends only in
//!    [`SharedInfoFrame::release_hold`], when the domain is torn down. For
//!    as long as a `SharedInfoFrame` exists, the frame is RAM, belongs to
//!    its domain, and can never become a page table.
//! 2. **Every access is atomic.** The page is seen as a
//!    [`SharedInfoPage`](crate::mm::shared_page::SharedInfoPage), Xen's
//!    layout made of atomics, whose operations are the locked bit
//!    operations Xen uses: a guest changing the same words at the same
//!    moment loses nothing, and Rust's rules about shared references hold.

use crate::arch::x86_64::percpu::this_cpu;
use crate::mm::frame_table::{DomainId, Owner};
use crate::mm::shared_page::{SharedInfoPage, VcpuInfoCells};
use crate::mm::{frame_table, physical_pointer, physical_to_virtual, PAGE_SIZE};
use core::sync::atomic::Ordering;
use hypercall_abi::XenError;

/// A domain's shared info frame, held by the hypervisor for the domain's
/// life (invariant 6). Neither `Clone` nor `Copy`: one per domain.
#[derive(Debug)]
pub struct SharedInfoFrame {
    mfn: u64,
}

impl SharedInfoFrame {
    /// Takes a free frame for `domain`'s shared info page and the
    /// hypervisor's hold on it. The page comes zeroed, as Xen clears it; the
    /// caller publishes the time and masks events before the domain runs.
    pub fn allocate(domain: DomainId) -> Result<Self, XenError> {
        let mfn = frame_table::allocate_for(Owner::Domain(domain)).ok_or(XenError::ENOMEM)?;
        let held =
            frame_table::with(|table, memory| table.hold_for_hypervisor(memory, mfn, domain));
        if let Err(refusal) = held {
            // A frame fresh from the allocator is always holdable: a bug.
            log::error!(
                "d{domain}: cannot hold its new shared info frame {mfn:#x}: {}",
                refusal.reason
            );
            let _ = frame_table::release(mfn, Owner::Domain(domain));
            return Err(XenError::ENOMEM);
        }
        Ok(Self { mfn })
    }

    /// The machine frame (for `start_info.shared_info` and `xl` tools).
    pub fn mfn(&self) -> u64 {
        self.mfn
    }

    /// The page, as atomics.
    pub fn page(&self) -> &SharedInfoPage {
        // SAFETY:
        // 1. `self` exists only while the hypervisor holds the frame
        //    (`allocate` took the hold, `release_hold` consumes `self`), so
        //    the frame is RAM, covered by the direct map, and never freed
        //    or retyped while the returned reference (tied to `&self`) lives.
        // 2. `SharedInfoPage` is made only of atomics and has the ABI's
        //    size (3136 bytes, within the page) and an 8-byte alignment the
        //    page-aligned address meets; every bit pattern is a valid value.
        // 3. The guest writes the page concurrently; all of the
        //    hypervisor's accesses through the reference are atomic, which
        //    is what a shared reference to memory others write requires.
        unsafe { &*physical_pointer::<SharedInfoPage>(self.mfn * PAGE_SIZE) }
    }

    /// The direct-map address of the slot `vcpu_info[0]`, published per CPU
    /// for the exit path's quick look ([`running_vcpu_needs_upcall`]) while
    /// the guest keeps its `vcpu_info` there.
    pub fn vcpu0_address(&self) -> u64 {
        physical_to_virtual(self.mfn * PAGE_SIZE)
    }

    /// Ends the hypervisor's hold (domain destruction, with the frame table
    /// already locked by the caller); the caller then releases the frame
    /// with the rest of the domain's memory.
    pub fn release_hold(
        self,
        table: &mut crate::mm::frame_table::FrameTable<'_>,
        memory: &mut frame_table::DirectMapTables,
    ) -> u64 {
        table.release_hypervisor_hold(memory, self.mfn);
        self.mfn
    }
}

/// Whether the vCPU running on this CPU has an upcall due (pending and not
/// masked): the exit path's check, made without the domain lock.
#[inline]
pub fn running_vcpu_needs_upcall() -> bool {
    let address = this_cpu().vcpu_info.load(Ordering::Relaxed);
    if address == 0 {
        return false;
    }
    // SAFETY: `domain::set_current` stores here the direct-map address of
    // the `vcpu_info` of the domain it puts on this CPU (0 when idle): its
    // slot in the `SharedInfoFrame`, or its `VcpuInfoFrame` once the guest
    // registered one (`VCPUOP_register_vcpu_info` stores the new address
    // at once, on this CPU, where the registering vCPU runs). That domain
    // cannot be torn down while it is current here (destruction is asked
    // for by another domain, running on this CPU instead, and
    // `set_current` runs on every switch), and a registration is never
    // undone before destruction, so the frame and its hold exist; the
    // cells are atomics over the ABI's `vcpu_info`, 8-byte aligned (see
    // `SharedInfoFrame::page` and `VcpuInfoFrame::cells`).
    let vcpu = unsafe { &*(address as *const VcpuInfoCells) };
    vcpu.events_need_delivery()
}
