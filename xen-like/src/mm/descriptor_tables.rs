//! A guest's GDT: `set_gdt`, `update_descriptor`, and how its descriptors
//! become the ones the processor uses.
//!
//! A PV guest keeps its GDT in frames of its own, up to 14 of them (7,168
//! entries, selectors below 0xe000), and hands their machine frame numbers
//! to `set_gdt`. Each frame then takes the *segment-descriptor* type in the
//! frame table (`crate::mm::frame_table`): all 512 descriptors in it must
//! pass `check_descriptor` (`crate::mm::descriptor`), and while the type is
//! held no writable mapping of the frame can exist (invariant 2 covers
//! descriptor pages as it covers page tables). The guest may still map the
//! frames read-only and read them; it changes a descriptor with
//! `update_descriptor`, which checks it first.
//!
//! # How the descriptors become live: a checked copy per vCPU
//!
//! Xen maps the guest's frames into a per-vCPU window of its own address
//! space (`GDT_VIRT_START`), followed by its reserved page at 0xe000, and
//! points GDTR there. This hypervisor has no per-vCPU part of the address
//! space (its slots are the same in every L4), so it keeps, for each vCPU
//! with a GDT, a *copy*: `GDT_ENTRIES` descriptors on the hypervisor's
//! heap, the guest's frames first, zeros up to 0xe000, then the
//! hypervisor's own entries (its code and data segments, the guest's flat
//! selectors, the TSS), and GDTR is loaded with it when the vCPU is
//! switched in (one `lgdt`). A vCPU without a GDT, or none, uses the
//! hypervisor's own table, whose guest part is empty.
//!
//! The copy is correct because the copy and the frames change together and
//! only here: the copy is taken while the frame table lock is held, right
//! after the frames were validated; afterwards a frame of the GDT changes
//! only through `update_descriptor`, which writes the checked descriptor to
//! the frame and to the copy. Nothing else can write it: no writable
//! mapping may exist (the type), the hypervisor writes no frame of a
//! domain without a `Writable` type (invariant 6), and the frame cannot be
//! freed while its references are held. The copy even makes a stale
//! writable TLB entry harmless (the guest would write a frame the CPU does
//! not read), though the TLB is flushed before the frames are retyped
//! anyway (`mm::tlb`). The processor sets accessed bits in the copy, not
//! in the guest's frames, which a guest cannot tell apart from Xen (where
//! its frames are mapped read-only too). On several CPUs, each copy's TSS
//! entry will need to be the one of the CPU the vCPU runs on.

use crate::arch::x86_64::cpu::{self, FIRST_RESERVED_GDT_ENTRY, GDT_ENTRIES};
use crate::arch::x86_64::instructions;
use crate::console::guest_log;
use crate::domain::{Domain, Vcpu};
use crate::mm::descriptor::{DESCRIPTORS_PER_PAGE, MAX_GDT_FRAMES};
use crate::mm::frame_table::{FrameTable, Mfn, PageType, Refusal, TableMemory};
use crate::mm::{frame_table, guest_access, tlb};
use alloc::vec::Vec;
use hypercall_abi::XenError;

/// A vCPU's GDT: the guest's frames and the live copy of their descriptors.
pub struct GuestGdt {
    /// The guest's GDT frames, in order; each holds a general and a
    /// segment-descriptor type reference for as long as it is here.
    frames: heapless::Vec<Mfn, MAX_GDT_FRAMES>,
    /// What GDTR points at while the vCPU runs: [`GDT_ENTRIES`] descriptors.
    /// Never resized, so it never moves while loaded.
    live: Vec<u64>,
}

impl GuestGdt {
    /// Heap bytes its copy holds (for the domain's heap account).
    pub fn heap_bytes(&self) -> usize {
        self.live.capacity() * size_of::<u64>()
    }
}

/// `set_gdt(frame_list, entries)`: the current vCPU's GDT becomes the
/// `entries` descriptors in the frames listed (`-EINVAL` if there are more
/// than 7,168, or any frame is not the caller's, is in use as something
/// else, or holds a descriptor `check_descriptor` refuses; the old GDT then
/// stays). With 0 entries the vCPU has no GDT of its own any more.
pub fn set_gdt(domain: &mut Domain, frame_list: u64, entries: u64) -> Result<u64, XenError> {
    if entries > FIRST_RESERVED_GDT_ENTRY as u64 {
        guest_log!(
            domain,
            Debug,
            "set_gdt refused: {entries} entries, more than the {FIRST_RESERVED_GDT_ENTRY} below the hypervisor's"
        );
        return Err(XenError::EINVAL);
    }
    let mut frames = heapless::Vec::<Mfn, MAX_GDT_FRAMES>::new();
    for slot in 0..entries.div_ceil(DESCRIPTORS_PER_PAGE as u64) {
        let mfn = guest_access::read_from_guest::<u64>(frame_list + slot * 8)?;
        // Cannot fail: at most MAX_GDT_FRAMES slots, checked above.
        let _ = frames.push(mfn);
    }
    // The copy (57 KiB, up to the hypervisor's selectors) is guest-sized:
    // any domain may ask for one, and 64 of them would be most of the heap.
    // It passes the heap's accounting like a grant table does.
    let copy_bytes = GDT_ENTRIES * size_of::<u64>();
    if let Err(refusal) =
        super::heap::admit_guest_allocation(domain.guest_sized_heap_bytes(), copy_bytes)
    {
        guest_log!(
            domain,
            Warn,
            "set_gdt: no heap for the GDT copy: {}: -ENOMEM",
            refusal.reason()
        );
        return Err(XenError::ENOMEM);
    }
    let mut live = Vec::new();
    if live.try_reserve_exact(GDT_ENTRIES).is_err() {
        guest_log!(domain, Warn, "set_gdt: no memory for the GDT copy");
        return Err(XenError::ENOMEM);
    }
    live.resize(GDT_ENTRIES, 0);
    // A stale writable translation must not outlive the retyping (mm::tlb).
    tlb::flush_if_stale();
    let id = domain.id;
    frame_table::with(|table, memory| {
        for (taken, &mfn) in frames.iter().enumerate() {
            if let Err(refusal) = take_frame(table, memory, mfn, id) {
                put_frames(table, memory, &frames[..taken]);
                return Err(refusal);
            }
        }
        for (slot, &mfn) in frames.iter().enumerate() {
            for index in 0..DESCRIPTORS_PER_PAGE {
                live[slot * DESCRIPTORS_PER_PAGE + index] = memory.read_entry(mfn, index);
            }
        }
        Ok(())
    })
    .map_err(|refusal: Refusal| {
        guest_log!(domain, Debug, "set_gdt refused: {}", refusal.reason);
        XenError::EINVAL
    })?;
    live[FIRST_RESERVED_GDT_ENTRY..].copy_from_slice(&cpu::reserved_gdt_entries());
    let new = (!frames.is_empty()).then_some(GuestGdt { frames, live });
    let old = core::mem::replace(&mut domain.vcpu.gdt, new);
    // The caller is the running vCPU: its new GDT is live from now on, and
    // only then may the old copy go.
    load(&domain.vcpu);
    if let Some(old) = old {
        frame_table::with(|table, memory| put_frames(table, memory, &old.frames));
    }
    Ok(0)
}

/// `update_descriptor(maddr, descriptor)`: writes one checked descriptor
/// at machine address `maddr` (8-byte aligned, in a frame of the caller's
/// that is not a page table), and into the live GDT if that frame is part
/// of it. Every refusal is `-EINVAL`, as in Xen.
pub fn update_descriptor(
    domain: &mut Domain,
    maddr: u64,
    descriptor: u64,
) -> Result<u64, XenError> {
    if !maddr.is_multiple_of(8) {
        guest_log!(
            domain,
            Debug,
            "update_descriptor refused: address {maddr:#x} is not 8-byte aligned"
        );
        return Err(XenError::EINVAL);
    }
    let mfn = maddr >> 12;
    let index = ((maddr & 0xfff) / 8) as usize;
    let id = domain.id;
    let (stored, in_use) = frame_table::with(|table, memory| {
        table.update_descriptor(memory, mfn, index, descriptor, id)
    })
    .map_err(|refusal| {
        guest_log!(
            domain,
            Debug,
            "update_descriptor of {descriptor:#018x} at {maddr:#x} refused: {}",
            refusal.reason
        );
        XenError::EINVAL
    })?;
    if in_use {
        if let Some(gdt) = domain.vcpu.gdt.as_mut() {
            for (slot, _) in gdt.frames.iter().enumerate().filter(|(_, &f)| f == mfn) {
                gdt.live[slot * DESCRIPTORS_PER_PAGE + index] = stored;
            }
        }
    }
    Ok(0)
}

/// Makes `vcpu`'s GDT the live one (at a context switch, or after
/// `set_gdt`): its copy, or the hypervisor's own table if it has none.
pub fn load(vcpu: &Vcpu) {
    match &vcpu.gdt {
        // SAFETY: the copy has GDT_ENTRIES descriptors, the guest's checked
        // and the reserved ones copied from the hypervisor's table; it is
        // never resized, and it is dropped only after another GDT is loaded
        // (`set_gdt` above; a domain is torn down only while not running,
        // and `release` reloads the hypervisor's table to be sure).
        Some(gdt) => unsafe { cpu::load_gdt(gdt.live.as_ptr()) },
        None => cpu::load_hypervisor_gdt(),
    }
}

/// The descriptor `selector` names in `vcpu`'s live GDT (0 for an LDT
/// selector: there is no LDT, so it cannot be loaded).
pub fn live_descriptor(vcpu: &Vcpu, selector: u16) -> u64 {
    if selector & 4 != 0 {
        return 0;
    }
    let index = usize::from(selector >> 3);
    match &vcpu.gdt {
        Some(gdt) => gdt.live.get(index).copied().unwrap_or(0),
        None => cpu::hypervisor_gdt_entry(index),
    }
}

/// Gives back the references `vcpu`'s GDT holds (domain destruction),
/// first making sure GDTR no longer points at its copy. Runs with the frame
/// table in hand.
pub fn release(table: &mut FrameTable, memory: &mut impl TableMemory, vcpu: &mut Vcpu) {
    if let Some(gdt) = vcpu.gdt.take() {
        cpu::load_hypervisor_gdt();
        put_frames(table, memory, &gdt.frames);
    }
}

/// A general and a segment-descriptor type reference on `mfn`: the type
/// validates every descriptor in it (with Xen's fix-ups) unless it already
/// holds it.
fn take_frame(
    table: &mut FrameTable,
    memory: &mut impl TableMemory,
    mfn: Mfn,
    domain: u16,
) -> Result<(), Refusal> {
    table.get_page(mfn, domain)?;
    table
        .get_page_type(memory, mfn, PageType::SegmentDescriptor, domain)
        .inspect_err(|_| table.put_page(mfn))
}

/// Drops what [`take_frame`] took on each of `frames`.
fn put_frames(table: &mut FrameTable, memory: &mut impl TableMemory, frames: &[Mfn]) {
    for &mfn in frames {
        // A descriptor page holds no references and no mappings: no flush.
        let _no_flush = table.put_page_type(memory, mfn);
        table.put_page(mfn);
    }
}

/// `set_segment_base(SEGBASE_GS_USER_SEL, selector)`, as Xen's: loads
/// `selector` (RPL 3 unless null) into GS for guest user code, and its
/// base becomes the user GS base (the shadow one while the guest kernel
/// makes the call; `traps::guest_mode` swaps it in for user mode). A
/// selector that would fault (not present, a system descriptor, DPL below
/// 3, an LDT selector: there is no LDT) loads the null selector instead,
/// as Xen does after catching the fault; the hypercall still succeeds,
/// since Linux cannot handle its failure. A null selector leaves the user
/// base as it was (Intel's behaviour, which Xen shows on Intel hardware).
pub fn load_user_gs_selector(domain: &mut Domain, selector: u16) {
    let selector = if selector > 3 { selector | 3 } else { 0 };
    let descriptor = live_descriptor(&domain.vcpu, selector);
    let loadable = selector != 0 && crate::mm::descriptor::loadable_as_data_segment(descriptor);
    if selector != 0 && !loadable {
        guest_log!(
            domain,
            Debug,
            "SEGBASE_GS_USER_SEL: selector {selector:#x} cannot be loaded; null loaded"
        );
    }
    let loaded = if loadable { selector } else { 0 };
    // SAFETY: interrupts are off in the hypervisor; `loaded` is null or
    // names, in the live GDT (this vCPU's, loaded since it runs), a present
    // DPL-3 data or readable code descriptor, which ring 0 loads with an
    // RPL-3 selector without a fault.
    unsafe { crate::arch::x86_64::instructions::load_gs_selector_keeping_base(loaded) };
    if loadable {
        domain.vcpu.shadow_gs_base = crate::mm::descriptor::segment_base(descriptor);
    }
}

/// The selector `selector` as the vCPU may have it loaded: itself if it is
/// null or names a descriptor of the vCPU's live GDT that ring 0 can load
/// (present, data or readable code, DPL 3), with RPL 3; null otherwise, as
/// Xen's `load_segments` falls back to null when a reload faults.
fn loadable_selector(vcpu: &Vcpu, selector: u16) -> u16 {
    if selector <= 3 {
        return 0;
    }
    let selector = selector | 3;
    if crate::mm::descriptor::loadable_as_data_segment(live_descriptor(vcpu, selector)) {
        selector
    } else {
        0
    }
}

/// Saves the data segment selectors of the vCPU leaving the CPU.
pub fn save_selectors(vcpu: &mut Vcpu) {
    vcpu.data_selectors = instructions::read_data_selectors();
}

/// Loads the data segment selectors of the vCPU taking the CPU (after its
/// GDT is live, before its FS base is written), so that no guest sees the
/// selectors another guest or the hypervisor left (Xen's
/// `load_segments`). A selector that no longer names a loadable descriptor
/// (its GDT changed meanwhile) becomes null. Returns whether every saved
/// selector that named a descriptor was loaded (Xen's `all_segs_okay`);
/// if not, the scheduler bounces the vCPU to its failsafe callback.
pub fn load_selectors(vcpu: &Vcpu) -> bool {
    let loaded = vcpu
        .data_selectors
        .map(|selector| loadable_selector(vcpu, selector));
    let [ds, es, fs, gs] = loaded;
    // SAFETY: interrupts are off in the hypervisor; `loadable_selector`
    // made each selector null or one naming, in the live GDT (this vCPU's,
    // loaded just before), a present DPL-3 data or readable code
    // descriptor, which ring 0 loads with an RPL-3 selector without a
    // fault. The GS load keeps the hypervisor's per-CPU GS base.
    unsafe {
        instructions::load_data_selectors(ds, es, fs);
        instructions::load_gs_selector_keeping_base(gs);
    }
    // A null selector with any RPL (1..3) loads as null: not a failure.
    vcpu.data_selectors
        .iter()
        .zip(loaded)
        .all(|(&saved, loaded)| saved <= 3 || loaded != 0)
}

/// No vCPU runs: the hypervisor's own GDT is the live one.
pub fn load_idle() {
    cpu::load_hypervisor_gdt();
}
