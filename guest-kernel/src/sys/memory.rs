//! Reading and writing memory that is not an ordinary Rust object: the P2M
//! list and the M2P table, page tables through their read-only physmap
//! mapping, pages this kernel maps for itself at run time
//! ([`OwnedPages`]), and the console and store rings another domain writes
//! at the same time ([`ConsoleRing`], [`StoreRing`]).
//!
//! The rule that keeps the rest of the kernel safe: no Rust reference ever
//! points into such memory. Every access is a volatile read or write, of a
//! range checked against what was mapped, through the types below. A
//! mapping that changes underneath (the hypervisor refusing, a guest
//! unmapping its half) then costs at worst a page fault, which the trap
//! handler reports, never a reference to memory that is no longer there.

use crate::paging::{self, PagingError, PAGE_SIZE};
use crate::start::start_info;
use hypercall_abi::console::{
    ring_position, ConsoleInterface, CONSOLE_IN_RING_SIZE, CONSOLE_OUT_RING_SIZE,
    XENCONSOLE_CONNECTED, XENCONSOLE_DISCONNECTED,
};
use hypercall_abi::layout::MACH2PHYS_VIRT_START;
use hypercall_abi::xs_wire::{self, XenstoreDomainInterface};

/// Entry `pfn` of the P2M list the builder gave us (`start_info.mfn_list`).
pub fn p2m_entry(pfn: u64) -> u64 {
    let info = start_info();
    assert!(
        pfn < info.nr_pages,
        "PFN {pfn:#x} beyond the domain's memory"
    );
    // SAFETY: mfn_list is the P2M array of nr_pages entries that the builder
    // mapped in the start-of-day region for the domain's whole life;
    // pfn < nr_pages (checked above).
    unsafe {
        (info.mfn_list as *const u64)
            .add(pfn as usize)
            .read_volatile()
    }
}

/// Entry `mfn` of the M2P table the hypervisor maps read-only at
/// `MACH2PHYS_VIRT_START` in every address space.
pub fn m2p_entry(mfn: u64) -> u64 {
    // SAFETY: one u64 per machine frame, read-only; the guest only asks
    // about frames its own tables name, which the table covers. A frame
    // beyond it would fault (a reported crash), not read Rust memory.
    unsafe { ((MACH2PHYS_VIRT_START + mfn * 8) as *const u64).read_volatile() }
}

/// Entry `index` (0..512) of the page table in pseudo-physical frame
/// `pfn`, through its read-only physmap mapping.
pub fn page_table_entry(pfn: u64, index: u64) -> u64 {
    assert!(index < 512, "page-table index {index} out of range");
    let address = paging::physmap_address(pfn) + index * 8;
    // SAFETY: every page-table frame of this guest is mapped read-only in
    // the physmap (start-of-day tables by the builder, later ones by
    // `paging::new_table`); the read is aligned and within the frame.
    unsafe { (address as *const u64).read_volatile() }
}

/// Pages this kernel mapped for itself at run time, named by their
/// address range. Nothing else in the kernel points into them (they are
/// not Rust objects), so the owner reads and writes them through the
/// bounds-checked, volatile accessors below. The handle can be copied: the
/// pages stay mapped for the domain's life (the kernel maps, it never
/// unmaps them; it may make them read-only, after which a write faults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnedPages {
    start: u64,
    length: u64,
}

impl OwnedPages {
    /// Maps `count` fresh frames at `address` onwards, writable (see
    /// [`paging::map_fresh_pages`]); all of them or an error.
    pub fn map_fresh(address: u64, count: u64) -> Result<Self, PagingError> {
        check_unused(address, count)?;
        match paging::map_fresh_pages(address, count)? {
            mapped if mapped == count => Ok(Self {
                start: address,
                length: count * PAGE_SIZE,
            }),
            _ => Err(PagingError::OutOfFrames),
        }
    }

    /// Maps frames this domain already owns but that its frame allocator
    /// did not hand out (its grant-table frames, which the hypervisor gives
    /// it with `GNTTABOP_setup_table`), one page each from `address` on,
    /// writable; all of them or an error.
    pub fn map_owned(address: u64, mfns: &[u64]) -> Result<Self, PagingError> {
        let count = mfns.len() as u64;
        check_unused(address, count)?;
        for (page, &mfn) in mfns.iter().enumerate() {
            paging::map(
                address + page as u64 * PAGE_SIZE,
                mfn,
                paging::WRITABLE | paging::USER | paging::NO_EXECUTE,
            )?;
        }
        Ok(Self {
            start: address,
            length: count * PAGE_SIZE,
        })
    }

    /// Maps each page of `count` at `address` onwards to a fresh frame with
    /// `flags` (one `paging::map` per page, so `flags` may differ from
    /// [`OwnedPages::map_fresh`]'s).
    pub fn map_each(address: u64, count: u64, flags: u64) -> Result<Self, PagingError> {
        check_unused(address, count)?;
        for page in 0..count {
            let pfn = paging::allocate_frame()?;
            paging::map(address + page * PAGE_SIZE, paging::pfn_to_mfn(pfn), flags)?;
        }
        Ok(Self {
            start: address,
            length: count * PAGE_SIZE,
        })
    }

    /// The first address.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Whether `[address, address + length)` lies inside these pages.
    pub fn contains(&self, address: u64, length: u64) -> bool {
        address >= self.start
            && address
                .checked_add(length)
                .is_some_and(|end| end <= self.start + self.length)
    }

    /// Writes `bytes` at `address` (an absolute address inside the pages);
    /// `false`, writing nothing, when the range does not fit.
    pub fn write(&self, address: u64, bytes: &[u8]) -> bool {
        if !self.contains(address, bytes.len() as u64) {
            return false;
        }
        for (offset, &byte) in bytes.iter().enumerate() {
            // SAFETY: inside the pages (checked above), mapped for this
            // owner; no Rust reference points there.
            unsafe { ((address + offset as u64) as *mut u8).write_volatile(byte) };
        }
        true
    }

    /// Reads `out.len()` bytes at `address`; `false` when the range does
    /// not fit.
    pub fn read(&self, address: u64, out: &mut [u8]) -> bool {
        if !self.contains(address, out.len() as u64) {
            return false;
        }
        for (offset, byte) in out.iter_mut().enumerate() {
            // SAFETY: as in `write`.
            *byte = unsafe { ((address + offset as u64) as *const u8).read_volatile() };
        }
        true
    }

    /// The (possibly unaligned) little-endian u64 at `address`, if inside.
    pub fn read_u64(&self, address: u64) -> Option<u64> {
        let mut bytes = [0u8; 8];
        self.read(address, &mut bytes)
            .then(|| u64::from_le_bytes(bytes))
    }
}

/// Refuses ranges that wrap or that overlap the start-of-day region (the
/// kernel image, its stack, start_info and the P2M) or the heap's part of
/// the address space: those hold Rust objects that a new mapping must
/// never replace.
pub(crate) fn check_unused(address: u64, count: u64) -> Result<(), PagingError> {
    let end = count
        .checked_mul(PAGE_SIZE)
        .and_then(|length| address.checked_add(length))
        .ok_or(PagingError::Refused(
            hypercall_abi::XenError::EINVAL.as_return(),
        ))?;
    let (region_start, region_end) = paging::start_of_day_region();
    let heap = crate::heap::HEAP_START..crate::heap::HEAP_START + crate::heap::HEAP_RESERVED;
    if (address < region_end && region_start < end) || (address < heap.end && heap.start < end) {
        return Err(PagingError::Refused(
            hypercall_abi::XenError::EINVAL.as_return(),
        ));
    }
    Ok(())
}

/// A console ring page (Xen's `io/console.h`) mapped at a fixed address:
/// the guest's own (it produces output, consumes input) or, in Dom0's
/// backend, a guest's (the other way round). The other domain writes the
/// page at any time, so every access is a volatile one, and every ring
/// position is reduced modulo the ring's size before use.
#[derive(Debug)]
pub struct ConsoleRing {
    ring: *mut ConsoleInterface,
}

// SAFETY: the ring is a mapping in this domain's address space, not tied
// to a thread; every access is a volatile one through `&self`.
unsafe impl Send for ConsoleRing {}
// SAFETY: as for Send: shared use is what the ring is for (the other
// domain writes it concurrently anyway), and each access is one volatile
// read or write of a field.
unsafe impl Sync for ConsoleRing {}

impl ConsoleRing {
    /// Maps machine frame `mfn` at `address` and returns the ring there.
    /// `owner` is the domain the frame belongs to: `None` for our own
    /// console page, `Some(domain)` for a backend mapping a guest's (a
    /// foreign mapping, written into the L1 with `mmu_update`).
    pub fn map(address: u64, mfn: u64, owner: Option<u16>) -> Result<Self, PagingError> {
        check_unused(address, 1)?;
        let flags = paging::PRESENT | paging::WRITABLE | paging::USER | paging::NO_EXECUTE;
        match owner {
            None => paging::map(address, mfn, flags)?,
            Some(domain) => {
                let l1 = paging::ensure_l1(address)?;
                let entry = (
                    paging::l1_entry_address(l1, address),
                    (mfn * PAGE_SIZE) | flags,
                );
                paging::write_entries_foreign(&[entry], domain)?;
            }
        }
        Ok(Self {
            ring: address as *mut ConsoleInterface,
        })
    }

    /// Unmaps the ring.
    pub fn unmap(self) {
        let address = self.ring as u64;
        if let Some(l1) = paging::l1_table(address) {
            let _ = paging::write_entries(&[(paging::l1_entry_address(l1, address), 0)]);
        }
    }

    /// The output ring's (producer, consumer) indices.
    pub fn output_indices(&self) -> (u32, u32) {
        // SAFETY: the ring is mapped while `self` lives; aligned u32 fields.
        unsafe {
            (
                core::ptr::addr_of!((*self.ring).out_prod).read_volatile(),
                core::ptr::addr_of!((*self.ring).out_cons).read_volatile(),
            )
        }
    }

    /// The input ring's (producer, consumer) indices.
    pub fn input_indices(&self) -> (u32, u32) {
        // SAFETY: as in `output_indices`.
        unsafe {
            (
                core::ptr::addr_of!((*self.ring).in_prod).read_volatile(),
                core::ptr::addr_of!((*self.ring).in_cons).read_volatile(),
            )
        }
    }

    /// Sets the output producer index.
    pub fn set_output_producer(&self, value: u32) {
        // SAFETY: as in `output_indices`.
        unsafe { core::ptr::addr_of_mut!((*self.ring).out_prod).write_volatile(value) }
    }

    /// Sets the output consumer index.
    pub fn set_output_consumer(&self, value: u32) {
        // SAFETY: as in `output_indices`.
        unsafe { core::ptr::addr_of_mut!((*self.ring).out_cons).write_volatile(value) }
    }

    /// Sets the input producer index.
    pub fn set_input_producer(&self, value: u32) {
        // SAFETY: as in `output_indices`.
        unsafe { core::ptr::addr_of_mut!((*self.ring).in_prod).write_volatile(value) }
    }

    /// Sets the input consumer index.
    pub fn set_input_consumer(&self, value: u32) {
        // SAFETY: as in `output_indices`.
        unsafe { core::ptr::addr_of_mut!((*self.ring).in_cons).write_volatile(value) }
    }

    /// The output byte at free-running index `index`.
    pub fn output_byte(&self, index: u32) -> u8 {
        let position = ring_position(index, CONSOLE_OUT_RING_SIZE);
        // SAFETY: as in `output_indices`; position < CONSOLE_OUT_RING_SIZE.
        unsafe { core::ptr::addr_of!((*self.ring).output[position]).read_volatile() }
    }

    /// Stores the output byte at free-running index `index`.
    pub fn set_output_byte(&self, index: u32, byte: u8) {
        let position = ring_position(index, CONSOLE_OUT_RING_SIZE);
        // SAFETY: as in `output_byte`.
        unsafe { core::ptr::addr_of_mut!((*self.ring).output[position]).write_volatile(byte) }
    }

    /// The input byte at free-running index `index`.
    pub fn input_byte(&self, index: u32) -> u8 {
        let position = ring_position(index, CONSOLE_IN_RING_SIZE);
        // SAFETY: as in `output_indices`; position < CONSOLE_IN_RING_SIZE.
        unsafe { core::ptr::addr_of!((*self.ring).input[position]).read_volatile() }
    }

    /// Stores the input byte at free-running index `index`.
    pub fn set_input_byte(&self, index: u32, byte: u8) {
        let position = ring_position(index, CONSOLE_IN_RING_SIZE);
        // SAFETY: as in `input_byte`.
        unsafe { core::ptr::addr_of_mut!((*self.ring).input[position]).write_volatile(byte) }
    }

    /// Marks the backend connected (`true`) or gone (`false`).
    pub fn set_connected(&self, connected: bool) {
        let value = if connected {
            XENCONSOLE_CONNECTED
        } else {
            XENCONSOLE_DISCONNECTED
        };
        // SAFETY: as in `output_indices`.
        unsafe { core::ptr::addr_of_mut!((*self.ring).connection).write_volatile(value) }
    }
}

/// The XenStore ring page (`io/xs_wire.h`) this domain shares with the
/// store daemon in Dom0, mapped at a fixed address. The daemon writes it at
/// any time, so, as for [`ConsoleRing`], every access is a volatile one and
/// every ring position is reduced modulo the ring's size. We produce into
/// `req` and consume from `rsp`; the protocol on top is `crate::xenbus`'s.
#[derive(Debug)]
pub struct StoreRing {
    page: *mut XenstoreDomainInterface,
}

// SAFETY: as for `ConsoleRing`: a mapping in this domain's address space,
// not tied to a thread, every access one volatile read or write.
unsafe impl Send for StoreRing {}
// SAFETY: as for `ConsoleRing`.
unsafe impl Sync for StoreRing {}

impl StoreRing {
    /// Maps our own store page, machine frame `mfn`
    /// (`start_info.store_mfn`), at `address`.
    pub fn map(address: u64, mfn: u64) -> Result<Self, PagingError> {
        check_unused(address, 1)?;
        let flags = paging::PRESENT | paging::WRITABLE | paging::USER | paging::NO_EXECUTE;
        paging::map(address, mfn, flags)?;
        Ok(Self {
            page: address as *mut XenstoreDomainInterface,
        })
    }

    /// The request ring's (consumer, producer) indices.
    pub fn request_indices(&self) -> (u32, u32) {
        // SAFETY: the page is mapped for the domain's life (never unmapped);
        // aligned u32 fields, read volatile since the daemon writes them.
        unsafe {
            (
                core::ptr::addr_of!((*self.page).req_cons).read_volatile(),
                core::ptr::addr_of!((*self.page).req_prod).read_volatile(),
            )
        }
    }

    /// Stores a request byte at free-running index `index`.
    pub fn set_request_byte(&self, index: u32, byte: u8) {
        let position = xs_wire::ring_position(index);
        // SAFETY: as in `request_indices`; position < XENSTORE_RING_SIZE.
        unsafe { core::ptr::addr_of_mut!((*self.page).req[position]).write_volatile(byte) }
    }

    /// Publishes requests up to `producer`: the bytes written before are
    /// visible to the daemon before the index moves.
    pub fn set_request_producer(&self, producer: u32) {
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
        // SAFETY: as in `request_indices`.
        unsafe { core::ptr::addr_of_mut!((*self.page).req_prod).write_volatile(producer) }
    }

    /// The response ring's (consumer, producer) indices; the bytes the
    /// producer covers are read after it.
    pub fn response_indices(&self) -> (u32, u32) {
        // SAFETY: as in `request_indices`.
        let indices = unsafe {
            (
                core::ptr::addr_of!((*self.page).rsp_cons).read_volatile(),
                core::ptr::addr_of!((*self.page).rsp_prod).read_volatile(),
            )
        };
        core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
        indices
    }

    /// The response byte at free-running index `index`.
    pub fn response_byte(&self, index: u32) -> u8 {
        let position = xs_wire::ring_position(index);
        // SAFETY: as in `request_indices`; position < XENSTORE_RING_SIZE.
        unsafe { core::ptr::addr_of!((*self.page).rsp[position]).read_volatile() }
    }

    /// Frees the response ring up to `consumer` (after the bytes were read).
    pub fn set_response_consumer(&self, consumer: u32) {
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
        // SAFETY: as in `request_indices`.
        unsafe { core::ptr::addr_of_mut!((*self.page).rsp_cons).write_volatile(consumer) }
    }

    /// The daemon's `error` field (`XENSTORE_ERROR_*`): non-zero once it
    /// stopped serving us.
    pub fn error(&self) -> u32 {
        // SAFETY: as in `request_indices`.
        unsafe { core::ptr::addr_of!((*self.page).error).read_volatile() }
    }
}
