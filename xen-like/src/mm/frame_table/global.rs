//! The hypervisor's instance of the frame table (see
//! `crate::mm::frame_table` for the rules and their invariants): one
//! `FrameInfo` per machine frame, in memory taken at boot, behind one lock,
//! with page tables read and written through the direct map.

use crate::mm::frame_table::{
    DomainId, FrameInfo, FrameTable, Mfn, Owner, PageType, Refusal, TableMemory, UNLIMITED_WORK,
};
use crate::mm::{frames, physical_pointer, PAGE_SIZE};
use crate::sync::lock_order::LockLevel;
use crate::sync::ordered_lock::OrderedMutex;

/// Page-table contents through the direct map.
pub struct DirectMapTables;

impl TableMemory for DirectMapTables {
    fn read_entry(&self, table: Mfn, index: usize) -> u64 {
        // SAFETY: the frame table only names frames below its frame count,
        // all of which the direct map covers; index < 512 by construction.
        unsafe {
            physical_pointer::<u64>(table * PAGE_SIZE + (index as u64 & 511) * 8).read_volatile()
        }
    }

    fn write_entry(&mut self, table: Mfn, index: usize, value: u64) {
        // SAFETY: as above; the frame table writes only entries of frames it
        // has validated as page tables of the calling domain.
        unsafe {
            physical_pointer::<u64>(table * PAGE_SIZE + (index as u64 & 511) * 8)
                .write_volatile(value)
        }
    }
}

static TABLE: OrderedMutex<Option<FrameTable<'static>>> =
    OrderedMutex::new(LockLevel::FrameTable, None);

/// Takes memory for one `FrameInfo` per machine frame and records the
/// frames the hypervisor already uses (those not free in the allocator).
pub fn init(frame_count: u64) {
    let bytes = frame_count * core::mem::size_of::<FrameInfo>() as u64;
    let pages = bytes.div_ceil(PAGE_SIZE);
    let first = frames::allocate_contiguous(pages).expect("memory for the frame table");
    // SAFETY: the frames were just taken from the allocator for good, the
    // direct map covers them, and FrameInfo is plain data; the slice is
    // initialised below before use.
    let infos = unsafe {
        core::slice::from_raw_parts_mut(
            physical_pointer::<FrameInfo>(first * PAGE_SIZE),
            frame_count as usize,
        )
    };
    for (mfn, info) in infos.iter_mut().enumerate() {
        *info = FrameInfo::FREE;
        if !frames::is_free(mfn as u64) {
            info.owner = Owner::Hypervisor;
            info.ref_count = 1;
        }
    }
    *TABLE.lock() = Some(FrameTable::new(infos, [0; 16]));
}

/// Runs `action` on the frame table with direct-map access to page tables.
/// If it dropped the last reference to frames a dying domain gave up,
/// they are handed to `domain::dying_frames_freed` once the table is let
/// go (which takes the dying domains' lock, taken before this one).
pub fn with<R>(action: impl FnOnce(&mut FrameTable<'static>, &mut DirectMapTables) -> R) -> R {
    let (result, freed) = {
        let mut guard = TABLE.lock();
        let table = guard.as_mut().expect("the frame table is set up at boot");
        let result = action(table, &mut DirectMapTables);
        (result, table.take_freed())
    };
    if !freed.is_empty() {
        crate::domain::dying_frames_freed(freed);
    }
    result
}

/// Runs `action` on the frame table with `budget` units of work (see
/// `crate::mm::frame_table`, "Preemption"), and leaves in `budget` what is
/// left. Outside this, the table works without a limit.
pub fn with_budget<R>(
    budget: &mut u64,
    action: impl FnOnce(&mut FrameTable<'static>, &mut DirectMapTables) -> R,
) -> R {
    with(|table, memory| {
        table.set_work_budget(*budget);
        let result = action(table, memory);
        *budget = table.work_budget();
        table.set_work_budget(UNLIMITED_WORK);
        result
    })
}

/// Takes a free frame (zeroed) and gives it to `owner`.
pub fn allocate_for(owner: Owner) -> Option<Mfn> {
    let mfn = frames::allocate()?;
    let assigned = with(|table, _| table.assign(mfn, owner));
    if assigned.is_err() {
        // The allocator and the table disagree: a hypervisor bug.
        panic!("frame {mfn:#x} is free in the allocator but not in the frame table");
    }
    Some(mfn)
}

/// Gives back frames `[start, end)` that the hypervisor held since boot
/// (the boot modules, once Dom0 is built): the frame table forgets the
/// hypervisor's ownership and the allocator gets them back.
pub fn release_boot_range(start: u64, end: u64) {
    for mfn in start.div_ceil(PAGE_SIZE)..end / PAGE_SIZE {
        if with(|table, _| table.release(mfn, Owner::Hypervisor)).is_ok() {
            frames::free(mfn);
        }
    }
}

/// Lets the hypervisor write `domain`'s frame `mfn` on the domain's
/// behalf, once: the frame must be one the domain could map writable
/// (owned, and not a page table or descriptor page), and it holds the
/// `Writable` type while `write` runs, so it cannot become a table halfway.
/// The write goes through the same type check as any writable mapping
/// (invariants 2 and 6).
fn write_guest_frame(
    mfn: Mfn,
    domain: DomainId,
    write: impl FnOnce(&mut [u8; PAGE_SIZE as usize]),
) -> Result<(), Refusal> {
    with(|table, memory| {
        table.get_page_type(memory, mfn, PageType::Writable, domain)?;
        // SAFETY: `mfn` is RAM (the frame table covers only RAM frames and
        // the type check found it), owned by `domain`, and typed Writable
        // for as long as the reference lives: writing it can only change
        // data the domain may write itself. The direct map covers it, and
        // nothing else holds a Rust reference to a guest frame.
        let page = unsafe { &mut *physical_pointer::<[u8; PAGE_SIZE as usize]>(mfn * PAGE_SIZE) };
        write(page);
        // A `Writable` type has no contents to devalidate: no flush.
        let _no_flush = table.put_page_type(memory, mfn);
        Ok(())
    })
}

/// `MMUEXT_CLEAR_PAGE`: zeroes `domain`'s frame `mfn` (see
/// [`write_guest_frame`] for which frames may be).
pub fn clear_page(mfn: Mfn, domain: DomainId) -> Result<(), Refusal> {
    write_guest_frame(mfn, domain, |page| page.fill(0))
}

/// Writes the hypercall page into `domain`'s frame `mfn`, for a guest
/// that asked for it through MSR 0x40000000 (the frame is named in the
/// MSR value, as CPUID leaf 0x40000002 advertises; see
/// [`write_guest_frame`] for which frames may be).
pub fn fill_hypercall_page(mfn: Mfn, domain: DomainId) -> Result<(), Refusal> {
    write_guest_frame(mfn, domain, |page| {
        hypercall_abi::hypercall_page::fill(page)
    })
}

/// `owner` gives `mfn` back; the frame returns to the allocator.
pub fn release(mfn: Mfn, owner: Owner) -> Result<(), Refusal> {
    with(|table, _| table.release(mfn, owner))?;
    frames::free(mfn);
    Ok(())
}
