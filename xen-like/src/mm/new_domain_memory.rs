//! A domain's memory while the hypervisor builds it: its frames, written before the domain first runs.
//!
//! The Dom0 builder copies the kernel, the ramdisk, the P2M list, the
//! start_info page and the first page tables into Dom0's frames before Dom0
//! exists. Those writes go through the direct map, so they are raw memory
//! operations; this type keeps them in `mm/` and makes them sound by
//! construction:
//!
//! - it owns the new domain's frame list, and only a list it allocated
//!   itself (fresh, zeroed frames given to the new domain in the frame
//!   table), so every frame it writes is RAM the direct map covers and no
//!   hypervisor data;
//! - every write names a *pseudo-physical* address of the new domain and is
//!   checked to lie inside its memory: a bad layout is an error, never a
//!   write to somebody else's frame;
//! - it is consumed ([`NewDomainMemory::into_frames`]) before any frame is
//!   typed as a page table (the builder pins the root only afterwards), so
//!   these plain writes never bypass the frame table's validation
//!   (frame-table invariants 2 and 6).

use crate::mm::frame_table::{self, DomainId, Mfn, Owner};
use crate::mm::{m2p, physical_pointer, PAGE_SIZE};
use alloc::vec::Vec;
use hypercall_abi::StartInfo;

/// A write that would leave the new domain's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutsideMemory {
    /// The pseudo-physical address of the write.
    pub address: u64,
    /// Its length in bytes.
    pub length: usize,
}

/// The frames of a domain being built, by pseudo-physical frame number
/// (its P2M), and the only way to write them before the domain runs.
pub struct NewDomainMemory {
    /// `p2m[pfn]` is the machine frame behind pseudo-physical frame `pfn`.
    p2m: Vec<Mfn>,
}

impl NewDomainMemory {
    /// Takes `pages` free frames (zeroed) for domain `owner`, in the frame
    /// table and in the M2P (frame `i` taken is pseudo-physical frame `i`).
    /// `None` when the machine runs out; the frames taken so far go back.
    pub fn allocate(owner: DomainId, pages: u64) -> Option<Self> {
        let mut p2m = Vec::with_capacity(pages as usize);
        for pfn in 0..pages {
            let Some(mfn) = frame_table::allocate_for(Owner::Domain(owner)) else {
                for &mfn in &p2m {
                    m2p::set(mfn, m2p::INVALID_ENTRY);
                    let _ = frame_table::release(mfn, Owner::Domain(owner));
                }
                return None;
            };
            m2p::set(mfn, pfn);
            p2m.push(mfn);
        }
        Some(Self { p2m })
    }

    /// How many pages the domain has.
    pub fn pages(&self) -> u64 {
        self.p2m.len() as u64
    }

    /// The P2M: the machine frame of each pseudo-physical frame.
    pub fn p2m(&self) -> &[Mfn] {
        &self.p2m
    }

    /// Checks that `length` bytes at pseudo-physical `address` lie inside
    /// the domain's memory.
    fn check(&self, address: u64, length: usize) -> Result<(), OutsideMemory> {
        let end = address.checked_add(length as u64);
        match end {
            Some(end) if end <= self.pages() * PAGE_SIZE => Ok(()),
            _ => Err(OutsideMemory { address, length }),
        }
    }

    /// Copies `data` to pseudo-physical `address` of the domain, page by
    /// page (consecutive pseudo-physical pages need not be consecutive
    /// machine frames). Nothing is written unless all of it fits.
    pub fn write(&self, address: u64, data: &[u8]) -> Result<(), OutsideMemory> {
        self.check(address, data.len())?;
        let mut done = 0;
        while done < data.len() {
            let current = address + done as u64;
            let chunk = ((PAGE_SIZE - current % PAGE_SIZE) as usize).min(data.len() - done);
            let machine =
                self.p2m[(current / PAGE_SIZE) as usize] * PAGE_SIZE + current % PAGE_SIZE;
            // SAFETY:
            // 1. `check` put [current, current + chunk) inside the domain's
            //    memory, and the chunk does not cross a page, so it lies in
            //    the frame `p2m` names: a frame this value allocated, RAM
            //    covered by the direct map, holding no hypervisor data;
            // 2. the domain has not run and no frame of it is a page table
            //    yet (see the module comment), so nothing else reads or
            //    writes these bytes meanwhile;
            // 3. `data` is a Rust slice, which cannot overlap guest memory.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    data[done..].as_ptr(),
                    physical_pointer::<u8>(machine),
                    chunk,
                );
            }
            done += chunk;
        }
        Ok(())
    }

    /// Stores entry `index` (below 512) of the page table in pseudo-physical
    /// frame `table`: a table still being written, not yet validated.
    pub fn write_entry(&self, table: u64, index: usize, value: u64) -> Result<(), OutsideMemory> {
        let address = table
            .checked_mul(PAGE_SIZE)
            .filter(|_| index < 512)
            .map(|start| start + index as u64 * 8)
            .ok_or(OutsideMemory {
                address: u64::MAX,
                length: 8,
            })?;
        self.write(address, &value.to_le_bytes())
    }

    /// Writes `start_info` at pseudo-physical `address`, byte for byte as
    /// the guest reads it.
    pub fn write_start_info(
        &self,
        address: u64,
        start_info: &StartInfo,
    ) -> Result<(), OutsideMemory> {
        // StartInfo is Pod (hypercall_abi derives it): all its bytes are
        // initialised, so it can be viewed as bytes without `unsafe`.
        let bytes = bytemuck::bytes_of(start_info);
        self.write(address, bytes)
    }

    /// Ends the building: the frame list becomes the domain's (`frames`),
    /// and from here on its frames change only through the frame table.
    pub fn into_frames(self) -> Vec<Mfn> {
        self.p2m
    }
}
