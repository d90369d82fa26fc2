//! The guest's page tables, changed only through hypercalls.
//!
//! A PV guest owns its page tables, but the hypervisor maps every
//! page-table frame read-only in it and validates each change (see the
//! hypervisor's `mm/frame_table/`). So this module never writes a page-table
//! entry itself; it asks:
//!
//! - `update_va_mapping` to change the entry that maps one address;
//! - `mmu_update` to write entries by machine address, in batches;
//! - `mmuext_op` to zero a frame (`CLEAR_PAGE`), pin tables, switch roots.
//!
//! To walk its tables the guest must be able to read them, so every
//! page-table frame is mapped, read-only, in the *physmap*: pseudo-physical
//! frame `p` at `VIRT_BASE + p * 4096`. The start-of-day region is the
//! beginning of the physmap (the builder mapped it that way). Frames beyond
//! it are handed out by a simple frame allocator; a page-table frame gets
//! its physmap mapping when it is created. When the physmap has no L1 for
//! that 2 MiB stretch yet, the new frame itself becomes that L1 (mapping
//! itself read-only), and another frame is taken for the original purpose.
//!
//! Pseudo-physical to machine: the P2M list the builder gave us
//! (`start_info.mfn_list`). Machine to pseudo-physical: the M2P table the
//! hypervisor maps read-only at `MACH2PHYS_VIRT_START`.

#![forbid(unsafe_code)]

use crate::start::{self, VIRT_BASE};
use crate::sys::{hypercalls, memory};
use hypercall_abi::layout::DOMID_SELF;
use hypercall_abi::mmu::{MmuUpdate, MmuUpdateKind, MmuextCmd, MmuextOp, UVMF_INVLPG};
use spin::Mutex;

/// Size of a page.
pub const PAGE_SIZE: u64 = 4096;
/// Present.
pub const PRESENT: u64 = 1 << 0;
/// Writable.
pub const WRITABLE: u64 = 1 << 1;
/// User-accessible (the hypervisor sets it anyway: guests run in ring 3).
pub const USER: u64 = 1 << 2;
/// No execute.
pub const NO_EXECUTE: u64 = 1 << 63;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Entries per update batch.
const BATCH: usize = 64;

/// Why a mapping could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingError {
    /// No free pseudo-physical frames left.
    OutOfFrames,
    /// The hypervisor refused (a negated Xen errno).
    Refused(i64),
}

/// The frame allocator and what it knows about the guest's memory.
struct Frames {
    /// First PFN the allocator has not handed out.
    next_free: u64,
    /// Number of PFNs the domain has.
    nr_pages: u64,
}

static FRAMES: Mutex<Frames> = Mutex::new(Frames {
    next_free: 0,
    nr_pages: 0,
});

/// The machine frame of pseudo-physical frame `pfn`, from the P2M list.
pub fn pfn_to_mfn(pfn: u64) -> u64 {
    memory::p2m_entry(pfn)
}

/// The pseudo-physical frame of machine frame `mfn`, from the M2P table.
pub fn mfn_to_pfn(mfn: u64) -> u64 {
    memory::m2p_entry(mfn)
}

/// Where pseudo-physical frame `pfn` appears in the physmap.
pub fn physmap_address(pfn: u64) -> u64 {
    VIRT_BASE + pfn * PAGE_SIZE
}

/// The start-of-day region the builder mapped at `VIRT_BASE` (image,
/// start_info, P2M, page tables, bootstrap stack), as (start, end).
pub fn start_of_day_region() -> (u64, u64) {
    let info = start::start_info();
    // The region ends at a 4 MiB boundary after the bootstrap stack (Xen's
    // layout); everything from there on is unused.
    let stack_end = info.pt_base + info.nr_pt_frames * PAGE_SIZE + PAGE_SIZE;
    (
        VIRT_BASE,
        (stack_end + (512 << 10)).next_multiple_of(4 << 20),
    )
}

/// Sets up the frame allocator: frames after the start-of-day region are free.
pub fn init() {
    let info = start::start_info();
    let (_, region_end) = start_of_day_region();
    let mut frames = FRAMES.lock();
    frames.next_free = (region_end - VIRT_BASE) / PAGE_SIZE;
    frames.nr_pages = info.nr_pages;
}

/// Takes a free pseudo-physical frame.
pub fn allocate_frame() -> Result<u64, PagingError> {
    let mut frames = FRAMES.lock();
    if frames.next_free >= frames.nr_pages {
        return Err(PagingError::OutOfFrames);
    }
    frames.next_free += 1;
    Ok(frames.next_free - 1)
}

/// Frames never handed out (the allocator does not take frames back: the
/// guest kernel frees nothing yet).
pub fn free_frames() -> u64 {
    let frames = FRAMES.lock();
    frames.nr_pages - frames.next_free
}

/// The root (L4) the vCPU runs on now.
pub fn current_root() -> u64 {
    ROOT.lock().unwrap_or_else(|| {
        let info = start::start_info();
        pfn_to_mfn((info.pt_base - VIRT_BASE) / PAGE_SIZE)
    })
}

static ROOT: Mutex<Option<u64>> = Mutex::new(None);

fn check(result: i64) -> Result<(), PagingError> {
    if result < 0 {
        Err(PagingError::Refused(result))
    } else {
        Ok(())
    }
}

/// Reads entry `index` of the page table in machine frame `mfn`, through
/// its read-only physmap mapping.
pub fn read_entry(mfn: u64, index: u64) -> u64 {
    memory::page_table_entry(mfn_to_pfn(mfn), index)
}

/// Writes entries through `mmu_update`, `BATCH` at a time. Each request is
/// (machine address of the entry, new value).
pub fn write_entries(requests: &[(u64, u64)]) -> Result<(), PagingError> {
    write_entries_foreign(requests, DOMID_SELF)
}

/// Like [`write_entries`], but L1 entries map frames of domain `owner` (a
/// *foreign* mapping: only a privileged domain building another may).
pub fn write_entries_foreign(requests: &[(u64, u64)], owner: u16) -> Result<(), PagingError> {
    for chunk in requests.chunks(BATCH) {
        let mut batch: heapless::Vec<MmuUpdate, BATCH> = heapless::Vec::new();
        for &(address, value) in chunk {
            let _ = batch.push(MmuUpdate::new(
                MmuUpdateKind::NormalPtUpdate,
                address,
                value,
            ));
        }
        check(hypercalls::mmu_update(&batch, owner).0)?;
    }
    Ok(())
}

fn extended(operation: MmuextOp) -> Result<(), PagingError> {
    check(hypercalls::mmuext_op(&[operation], DOMID_SELF).0)
}

/// Zeroes a frame without mapping it (`MMUEXT_CLEAR_PAGE`).
pub fn clear_frame(mfn: u64) -> Result<(), PagingError> {
    extended(MmuextOp::with_mfn(MmuextCmd::ClearPage, mfn))
}

/// Pins a page table of `level` (1..4), so that it stays validated.
pub fn pin(mfn: u64, level: u8) -> Result<(), PagingError> {
    let command = match level {
        1 => MmuextCmd::PinL1Table,
        2 => MmuextCmd::PinL2Table,
        3 => MmuextCmd::PinL3Table,
        _ => MmuextCmd::PinL4Table,
    };
    extended(MmuextOp::with_mfn(command, mfn))
}

/// Unpins a page table.
pub fn unpin(mfn: u64) -> Result<(), PagingError> {
    extended(MmuextOp::with_mfn(MmuextCmd::UnpinTable, mfn))
}

/// Switches the address space to the L4 in `mfn` (`MMUEXT_NEW_BASEPTR`).
pub fn switch_root(mfn: u64) -> Result<(), PagingError> {
    extended(MmuextOp::with_mfn(MmuextCmd::NewBaseptr, mfn))?;
    *ROOT.lock() = Some(mfn);
    Ok(())
}

/// Changes the entry that maps `address` (whose L1 must exist).
pub fn set_pte(address: u64, value: u64) -> Result<(), PagingError> {
    check(hypercalls::update_va_mapping(address, value, UVMF_INVLPG))
}

/// Index of `address` in its table at `level`.
fn index(address: u64, level: u32) -> u64 {
    (address >> (12 + 9 * (level - 1))) & 511
}

/// Finds the L1 that maps `address`, or `None` and the level that is missing.
fn find_l1(address: u64) -> Result<u64, (u32, u64)> {
    let mut table = current_root();
    for level in [4u32, 3, 2] {
        let entry = read_entry(table, index(address, level));
        if entry & PRESENT == 0 {
            return Err((level, table));
        }
        table = (entry & ADDRESS_MASK) / PAGE_SIZE;
    }
    Ok(table)
}

/// The machine frame of the L1 table that maps `address`, if it exists.
pub fn l1_table(address: u64) -> Option<u64> {
    find_l1(address).ok()
}

/// Makes a new, empty page table and maps it read-only in the physmap.
/// Returns its machine frame.
pub fn new_table() -> Result<u64, PagingError> {
    loop {
        let pfn = allocate_frame()?;
        let mfn = pfn_to_mfn(pfn);
        clear_frame(mfn)?;
        let address = physmap_address(pfn);
        match find_l1(address) {
            Ok(_) => {
                set_pte(address, (mfn * PAGE_SIZE) | PRESENT | USER)?;
                return Ok(mfn);
            }
            Err((2, l2)) => {
                // No physmap L1 for this 2 MiB stretch yet: this frame
                // becomes it, maps itself read-only, and we go round again
                // for the table the caller wanted.
                write_entries(&[(
                    (l2 * PAGE_SIZE) + index(address, 2) * 8,
                    (mfn * PAGE_SIZE) | PRESENT | WRITABLE | USER,
                )])?;
                write_entries(&[(
                    (mfn * PAGE_SIZE) + index(address, 1) * 8,
                    (mfn * PAGE_SIZE) | PRESENT | USER,
                )])?;
            }
            Err(_) => {
                // The physmap beyond the first GiB would need new L2s; guests
                // this kernel supports are smaller.
                return Err(PagingError::OutOfFrames);
            }
        }
    }
}

/// Maps `address` to machine frame `mfn` with `flags`, creating the
/// tables on the way.
pub fn map(address: u64, mfn: u64, flags: u64) -> Result<(), PagingError> {
    loop {
        match find_l1(address) {
            Ok(_) => return set_pte(address, (mfn * PAGE_SIZE) | flags | PRESENT),
            Err((level, parent)) => {
                let table = new_table()?;
                let entry = (parent * PAGE_SIZE) + index(address, level) * 8;
                write_entries(&[(entry, (table * PAGE_SIZE) | PRESENT | WRITABLE | USER)])?;
            }
        }
    }
}

/// Makes sure the tables down to the L1 that maps `address` exist, and
/// returns that L1's machine frame.
pub fn ensure_l1(address: u64) -> Result<u64, PagingError> {
    loop {
        match find_l1(address) {
            Ok(l1) => return Ok(l1),
            Err((level, parent)) => {
                let table = new_table()?;
                let entry = (parent * PAGE_SIZE) + index(address, level) * 8;
                write_entries(&[(entry, (table * PAGE_SIZE) | PRESENT | WRITABLE | USER)])?;
            }
        }
    }
}

/// Machine address of the L1 entry that maps `address` in table `l1`.
pub fn l1_entry_address(l1: u64, address: u64) -> u64 {
    l1 * PAGE_SIZE + index(address, 1) * 8
}

/// Removes the mapping of `address`.
pub fn unmap(address: u64) -> Result<(), PagingError> {
    set_pte(address, 0)
}

/// Makes `address` read-only or writable, keeping its frame.
pub fn protect(address: u64, writable: bool) -> Result<(), PagingError> {
    let l1 = find_l1(address).map_err(|_| PagingError::Refused(-22))?;
    let entry = read_entry(l1, index(address, 1));
    if entry & PRESENT == 0 {
        return Err(PagingError::Refused(-22));
    }
    let value = if writable {
        entry | WRITABLE
    } else {
        entry & !WRITABLE
    };
    set_pte(address, value)
}

/// Maps `count` fresh frames at `address` onwards, writable, batching the
/// L1 writes. Returns how many pages were mapped.
pub fn map_fresh_pages(address: u64, count: u64) -> Result<u64, PagingError> {
    let mut mapped = 0;
    while mapped < count {
        let first = address + mapped * PAGE_SIZE;
        // Make sure the L1 exists (maps the first page the slow way).
        let Ok(pfn) = allocate_frame() else {
            return if mapped > 0 {
                Ok(mapped)
            } else {
                Err(PagingError::OutOfFrames)
            };
        };
        map(first, pfn_to_mfn(pfn), WRITABLE | USER | NO_EXECUTE)?;
        mapped += 1;
        let l1 = find_l1(first).map_err(|_| PagingError::Refused(-22))?;
        // The rest of this L1, in batches.
        let mut requests: heapless::Vec<(u64, u64), BATCH> = heapless::Vec::new();
        while mapped < count && index(address + mapped * PAGE_SIZE, 1) != 0 {
            let Ok(pfn) = allocate_frame() else { break };
            let entry = l1 * PAGE_SIZE + index(address + mapped * PAGE_SIZE, 1) * 8;
            let _ = requests.push((
                entry,
                (pfn_to_mfn(pfn) * PAGE_SIZE) | PRESENT | WRITABLE | USER | NO_EXECUTE,
            ));
            mapped += 1;
            if requests.is_full() {
                write_entries(&requests)?;
                requests.clear();
            }
        }
        write_entries(&requests)?;
    }
    Ok(mapped)
}
