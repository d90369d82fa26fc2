//! The grant-table rules: active entries, the maptrack, pins and the
//! `GTF_reading`/`GTF_writing` protocol, over abstract shared entries and
//! frame references so that they run in host tests.
//!
//! See the parent module for the invariants these functions keep. The
//! hypervisor's glue (`grant_table_op`) resolves domains, reads and writes
//! guest memory and page tables, and calls these for every decision.

use alloc::vec::Vec;

use hypercall_abi::grant_table::{GrantFlags, GrantHandle, GrantRef, GrantStatus};

use crate::mm::frame_table::{DomainId, FrameTable, Mfn, PageType, TableMemory};
use crate::mm::heap_budget::HeapRefusal;

/// Why a grant operation was refused: the `GNTST_*` status for the guest
/// and a reason for the hypervisor's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What goes into the operation's `status` field.
    pub status: GrantStatus,
    /// What was wrong, for the log.
    pub reason: &'static str,
}

/// Builds a refusal.
pub const fn refuse(status: GrantStatus, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

/// How many times the hypervisor retries its compare-and-exchange on an
/// entry that the granter keeps changing under it before it gives up, as
/// Xen does: a guest can write its own entry faster than the hypervisor can
/// read-modify-exchange it, and must not make the hypervisor spin forever.
pub const COMPARE_EXCHANGE_RETRIES: u32 = 4;

/// The most pins of one kind (read-only or writable) an active entry may
/// hold: Xen keeps each count in a byte and refuses a pin that would set its
/// top bit, so that no count can wrap.
pub const MAX_PINS_PER_KIND: u16 = 0x7f;

/// Grant-table frames a domain may have unless configured otherwise
/// (Xen's `gnttab_max_frames` default).
pub const DEFAULT_MAX_GRANT_FRAMES: u32 = 64;

/// A new domain's grant-table limit: the `max_grant_frames` its toolstack
/// asked for (xl.cfg, through `domctl createdomain`), or the host's
/// `gnttab_max_frames` when it asked for 0. `None` (refused, `-EINVAL` as in
/// Xen) above the host's limit: the command line bounds every domain.
pub fn domain_grant_frame_limit(requested: u32, host_limit: u32) -> Option<u32> {
    match requested {
        0 => Some(host_limit),
        frames if frames <= host_limit => Some(frames),
        _ => None,
    }
}

/// Maptrack frames a domain may have unless configured otherwise
/// (`gnttab_max_maptrack_frames`): 16, 4,096 mappings. Xen's default is
/// 1024 (262,144 mappings), but Xen keeps its maptrack in frames of its own
/// large heap, while here every domain's maptrack shares the hypervisor's
/// 8 MiB heap: at some 32 bytes a mapping, Xen's default would let one
/// guest take all of it.
pub const DEFAULT_MAX_MAPTRACK_FRAMES: u32 = 16;

/// Maptrack entries in one maptrack frame: Xen's `struct grant_mapping` is
/// 16 bytes, so a 4 KiB frame holds 256. The maptrack here lives on the
/// hypervisor's heap, but its limit counts in Xen's units so that Xen's
/// option means the same.
pub const MAPTRACK_ENTRIES_PER_FRAME: u32 = 256;

/// The guest-visible grant entries of one domain (its grant-table frames),
/// seen through atomic accesses: the granter writes them whenever it likes.
/// The hypervisor's version lives in `mm/`, a test's in plain memory.
///
/// An entry's *header* is its `flags` (low 16 bits) and `domid` (high 16
/// bits) read as one 32-bit word, Xen's `grant_combo`: the hypervisor
/// checks and updates both together, so a granter cannot change the
/// grantee between the check and the update.
pub trait SharedEntries {
    /// How many entries the table has now.
    fn entry_count(&self) -> u32;
    /// Reads entry `reference`'s header (`flags | domid << 16`).
    fn header(&self, reference: GrantRef) -> u32;
    /// Reads entry `reference`'s `frame`.
    fn frame(&self, reference: GrantRef) -> u32;
    /// Atomically replaces the header with `new` if it is still `current`;
    /// otherwise returns what it found.
    fn compare_exchange_header(
        &mut self,
        reference: GrantRef,
        current: u32,
        new: u32,
    ) -> Result<(), u32>;
    /// Atomically clears `flags` in the entry's `flags`, leaving the other
    /// bits as the granter has them.
    fn clear_flags(&mut self, reference: GrantRef, flags: GrantFlags);
}

/// The frame table, as the grant rules need it: references that keep a
/// frame allocated, and the `Writable` type that keeps it from being a page
/// table or a descriptor page (frame-table invariant 2).
pub trait FrameReferences {
    /// Takes a general reference on `frame`, which `owner` must own.
    fn get_page(&mut self, frame: Mfn, owner: DomainId) -> Result<(), &'static str>;
    /// Drops a reference taken by [`FrameReferences::get_page`].
    fn put_page(&mut self, frame: Mfn);
    /// Takes a `Writable` type reference on `owner`'s `frame`: refused
    /// while the frame is in use as a page table or a descriptor page.
    fn get_writable(&mut self, frame: Mfn, owner: DomainId) -> Result<(), &'static str>;
    /// Drops a reference taken by [`FrameReferences::get_writable`].
    fn put_writable(&mut self, frame: Mfn);
}

/// The frame table itself as the grant rules' [`FrameReferences`].
#[derive(Debug)]
pub struct FrameTableReferences<'a, 'frames, M: TableMemory> {
    /// The frame table.
    pub table: &'a mut FrameTable<'frames>,
    /// Page-table memory, which a `Writable` type never needs to read (it
    /// has no contents to validate) but the frame table's interface takes.
    pub memory: &'a mut M,
}

impl<M: TableMemory> FrameReferences for FrameTableReferences<'_, '_, M> {
    fn get_page(&mut self, frame: Mfn, owner: DomainId) -> Result<(), &'static str> {
        self.table
            .get_page(frame, owner)
            .map_err(|refusal| refusal.reason)
    }

    fn put_page(&mut self, frame: Mfn) {
        self.table.put_page(frame);
    }

    fn get_writable(&mut self, frame: Mfn, owner: DomainId) -> Result<(), &'static str> {
        self.table
            .get_page_type(self.memory, frame, PageType::Writable, owner)
            .map_err(|refusal| refusal.reason)
    }

    fn put_writable(&mut self, frame: Mfn) {
        // A `Writable` type has no contents to devalidate: no flush.
        let _no_flush = self.table.put_page_type(self.memory, frame);
    }
}

/// Whether an operation reads a granted frame or writes it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read-only (`GNTMAP_readonly`, the source of a copy).
    Read,
    /// Read and write (a writable mapping, the destination of a copy).
    Write,
}

/// The hypervisor's own record of one of a granter's entries while it is
/// in use (Xen's `active_grant_entry`). The granter cannot write it: once
/// an entry is pinned, the frame and grantee the hypervisor uses come from
/// here, not from the shared entry the granter may have changed since.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActiveEntry {
    /// The domain using the entry (meaningful while pinned).
    pub mapper: DomainId,
    /// The granted frame (meaningful while pinned).
    pub frame: Mfn,
    /// Read-only pins: read-only mappings, and copies from the frame.
    pub readers: u16,
    /// Writable pins: writable mappings, and copies into the frame.
    pub writers: u16,
}

impl ActiveEntry {
    /// Whether anything uses the entry.
    pub fn is_pinned(&self) -> bool {
        self.readers + self.writers > 0
    }
}

/// A granter's active entries, one per grant reference of its table.
#[derive(Clone, Debug, Default)]
pub struct ActiveTable {
    entries: Vec<ActiveEntry>,
}

impl ActiveTable {
    /// An empty table (no grant-table frames yet).
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Makes room for `count` entries (the table grew); never shrinks.
    /// The new buffer is a guest-sized allocation: `admit` (the heap's
    /// accounting, `crate::mm::heap::admit_guest_allocation` in the
    /// hypervisor) is asked first with its size in bytes, and the growth is
    /// fallible. Fails, changing nothing, when either says no: a guest's
    /// request must never make the hypervisor abort.
    pub fn grow_to(
        &mut self,
        count: u32,
        admit: impl FnOnce(usize) -> Result<(), HeapRefusal>,
    ) -> Result<(), Refusal> {
        let count = count as usize;
        if count > self.entries.len() {
            admit(count * size_of::<ActiveEntry>())
                .map_err(|refusal| refuse(GrantStatus::GeneralError, refusal.reason()))?;
            self.entries
                .try_reserve_exact(count - self.entries.len())
                .map_err(|_| {
                    refuse(
                        GrantStatus::GeneralError,
                        "no hypervisor memory for the active entries",
                    )
                })?;
            self.entries.resize(count, ActiveEntry::default());
        }
        Ok(())
    }

    /// Heap bytes the entries hold (for the domain's heap account).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<ActiveEntry>()
    }

    /// The entry of `reference`, if the table has one.
    pub fn entry(&self, reference: GrantRef) -> Option<&ActiveEntry> {
        self.entries.get(reference as usize)
    }

    /// Every entry, by reference.
    pub fn entries(&self) -> &[ActiveEntry] {
        &self.entries
    }
}

/// What a mapping is for: the host CPUs (`GNTMAP_host_map`: a page-table
/// entry), devices (`GNTMAP_device_map`: a bus address, which without an
/// I/O MMU is the machine address), or both. Each kind holds its own pin
/// and its own frame references, and is unmapped on its own, as in Xen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kinds {
    /// For the host CPUs.
    pub host: bool,
    /// For devices.
    pub device: bool,
}

impl Kinds {
    /// Host and device.
    pub const BOTH: Kinds = Kinds {
        host: true,
        device: true,
    };
    /// Host only.
    pub const HOST: Kinds = Kinds {
        host: true,
        device: false,
    };
    /// Device only.
    pub const DEVICE: Kinds = Kinds {
        host: false,
        device: true,
    };

    /// How many kinds (0, 1 or 2): pins and references held.
    pub fn count(self) -> u16 {
        u16::from(self.host) + u16::from(self.device)
    }

    /// The kinds both have.
    pub fn and(self, other: Kinds) -> Kinds {
        Kinds {
            host: self.host && other.host,
            device: self.device && other.device,
        }
    }

    /// The kinds of `self` that `other` lacks.
    pub fn without(self, other: Kinds) -> Kinds {
        Kinds {
            host: self.host && !other.host,
            device: self.device && !other.device,
        }
    }
}

/// One mapping a domain made of another's (or its own) grant: an entry of
/// its maptrack (Xen's `grant_mapping`), found again by its handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The domain that granted the frame.
    pub granter: DomainId,
    /// The grant reference in the granter's table.
    pub reference: GrantRef,
    /// The frame mapped.
    pub frame: Mfn,
    /// Read-only or writable.
    pub access: Access,
    /// The kinds still mapped; the entry goes when none is left.
    pub kinds: Kinds,
    /// Machine address of the page-table entry that maps it (set by the
    /// hypervisor once it has written the entry; 0 before).
    pub entry_address: u64,
}

/// A domain's maptrack: its mappings of granted frames, indexed by handle.
/// Handles are per mapper: a handle names only the caller's own mappings.
#[derive(Clone, Debug)]
pub struct Maptrack {
    slots: Vec<Option<Mapping>>,
    limit: u32,
    in_use: u32,
}

impl Maptrack {
    /// An empty maptrack of at most `limit` mappings.
    pub const fn new(limit: u32) -> Self {
        Self {
            slots: Vec::new(),
            limit,
            in_use: 0,
        }
    }

    /// The most mappings it may hold.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// How many mappings it holds.
    pub fn in_use(&self) -> u32 {
        self.in_use
    }

    /// One past the highest handle ever given out: every mapping's handle
    /// is below it.
    pub fn handle_end(&self) -> GrantHandle {
        self.slots.len() as GrantHandle
    }

    /// Makes sure the next [`map`] has a slot to record its mapping in:
    /// when every slot is taken and the limit allows more, grows the
    /// maptrack by one maptrack frame's worth of entries (as Xen adds a
    /// maptrack page at a time). The new buffer is a guest-sized
    /// allocation, asked of `admit` first (see [`ActiveTable::grow_to`]);
    /// a refusal is `GNTST_no_device_space`, as a full maptrack is. Nothing
    /// else in the maptrack allocates.
    pub fn reserve_room(
        &mut self,
        admit: impl FnOnce(usize) -> Result<(), HeapRefusal>,
    ) -> Result<(), Refusal> {
        let has_free_slot = (self.in_use as usize) < self.slots.len();
        if has_free_slot || self.slots.len() < self.slots.capacity() {
            return Ok(());
        }
        if self.slots.len() as u32 >= self.limit {
            return Err(refuse(
                GrantStatus::NoDeviceSpace,
                "the maptrack is full: unmap something first",
            ));
        }
        let more = (self.limit - self.slots.len() as u32).min(MAPTRACK_ENTRIES_PER_FRAME) as usize;
        let new_capacity = self.slots.len() + more;
        admit(new_capacity * size_of::<Option<Mapping>>())
            .map_err(|refusal| refuse(GrantStatus::NoDeviceSpace, refusal.reason()))?;
        // The heap is shared by all domains: running out is a refusal for
        // this one, never an abort of the hypervisor.
        self.slots.try_reserve_exact(more).map_err(|_| {
            refuse(
                GrantStatus::NoDeviceSpace,
                "no hypervisor memory for more maptrack entries",
            )
        })
    }

    /// Heap bytes the maptrack holds (for the domain's heap account).
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Option<Mapping>>()
    }

    /// Records `mapping` under the lowest free handle, in room that
    /// [`Maptrack::reserve_room`] made: never allocates.
    /// `GNTST_no_device_space` when there is no room (as Xen answers).
    fn insert(&mut self, mapping: Mapping) -> Result<GrantHandle, Refusal> {
        if let Some(handle) = self.slots.iter().position(Option::is_none) {
            self.slots[handle] = Some(mapping);
            self.in_use += 1;
            return Ok(handle as GrantHandle);
        }
        if self.slots.len() as u32 >= self.limit || self.slots.len() == self.slots.capacity() {
            return Err(refuse(
                GrantStatus::NoDeviceSpace,
                "the maptrack is full: unmap something first",
            ));
        }
        self.slots.push(Some(mapping));
        self.in_use += 1;
        Ok((self.slots.len() - 1) as GrantHandle)
    }

    /// Whether a new mapping would fit.
    fn has_room(&self) -> bool {
        self.in_use < self.limit
    }

    /// The mapping of `handle`: `GNTST_bad_handle` for a handle out of range
    /// or not in use (never made, or unmapped already).
    pub fn get(&self, handle: GrantHandle) -> Result<&Mapping, Refusal> {
        if handle >= self.limit {
            return Err(refuse(
                GrantStatus::BadHandle,
                "handle beyond the end of the maptrack",
            ));
        }
        self.slots
            .get(handle as usize)
            .and_then(Option::as_ref)
            .ok_or(refuse(
                GrantStatus::BadHandle,
                "handle names no mapping (never mapped, or unmapped already)",
            ))
    }

    /// Records where the hypervisor wrote the page-table entry of `handle`.
    pub fn set_entry_address(&mut self, handle: GrantHandle, entry_address: u64) {
        if let Some(Some(mapping)) = self.slots.get_mut(handle as usize) {
            mapping.entry_address = entry_address;
        }
    }

    /// Every mapping, with its handle.
    pub fn mappings(&self) -> impl Iterator<Item = (GrantHandle, &Mapping)> {
        self.slots.iter().enumerate().filter_map(|(handle, slot)| {
            slot.as_ref()
                .map(|mapping| (handle as GrantHandle, mapping))
        })
    }

    /// Takes `kinds` off the mapping of `handle`, and forgets the mapping
    /// when no kind is left. Returns the mapping as it was.
    fn remove(&mut self, handle: GrantHandle, kinds: Kinds) -> Result<Mapping, Refusal> {
        let before = *self.get(handle)?;
        let left = before.kinds.without(kinds);
        let slot = &mut self.slots[handle as usize];
        if left.count() == 0 {
            *slot = None;
            self.in_use -= 1;
        } else if let Some(mapping) = slot {
            mapping.kinds = left;
        }
        Ok(before)
    }
}

/// A shared entry's header as flags and grantee.
fn split_header(header: u32) -> (GrantFlags, DomainId) {
    (
        GrantFlags::from_bits_retain(header as u16),
        (header >> 16) as DomainId,
    )
}

/// A header from flags and grantee.
fn join_header(flags: GrantFlags, domid: DomainId) -> u32 {
    u32::from(flags.bits()) | (u32::from(domid) << 16)
}

/// Rule: the entry must grant access (type `GTF_permit_access`, not a
/// sub-page grant, which may only be copied) to `mapper`, and must not be
/// read-only when `access` is [`Access::Write`].
fn check_grant(
    flags: GrantFlags,
    domid: DomainId,
    mapper: DomainId,
    access: Access,
) -> Result<(), Refusal> {
    let kind = flags & GrantFlags::TYPE_MASK;
    if kind != GrantFlags::PERMIT_ACCESS || flags.contains(GrantFlags::SUB_PAGE) {
        return Err(refuse(
            GrantStatus::GeneralError,
            "the entry grants no access (its type is not GTF_permit_access)",
        ));
    }
    if domid != mapper {
        return Err(refuse(
            GrantStatus::GeneralError,
            "the entry grants access to another domain",
        ));
    }
    if access == Access::Write && flags.contains(GrantFlags::READONLY) {
        return Err(refuse(
            GrantStatus::GeneralError,
            "writable access to a read-only grant",
        ));
    }
    Ok(())
}

/// Sets `GTF_reading` (and `GTF_writing` for [`Access::Write`]) in the
/// granter's entry, with a compare-and-exchange that checks the grant at
/// the same instant (Xen's `_set_status_v1`). While the entry is pinned the
/// grantee is not checked again: the active entry already fixed it.
fn set_status(
    shared: &mut impl SharedEntries,
    reference: GrantRef,
    mapper: DomainId,
    access: Access,
    already_pinned: bool,
) -> Result<(), Refusal> {
    let mut current = shared.header(reference);
    for _ in 0..=COMPARE_EXCHANGE_RETRIES {
        let (flags, domid) = split_header(current);
        if already_pinned {
            if access == Access::Write && flags.contains(GrantFlags::READONLY) {
                return Err(refuse(
                    GrantStatus::GeneralError,
                    "writable access to a read-only grant",
                ));
            }
        } else {
            check_grant(flags, domid, mapper, access)?;
        }
        let mut new = flags | GrantFlags::READING;
        if access == Access::Write {
            new |= GrantFlags::WRITING;
        }
        match shared.compare_exchange_header(reference, current, join_header(new, domid)) {
            Ok(()) => return Ok(()),
            Err(found) => current = found,
        }
    }
    Err(refuse(
        GrantStatus::GeneralError,
        "the shared grant entry is unstable (the granter keeps changing it)",
    ))
}

/// Pins entry `reference` of `granter`'s table for `mapper` (Xen's
/// acquire step of `map_grant_ref` and `gnttab_copy`): checks the grant,
/// sets the `GTF_*` status bits the first time they are needed, fixes the
/// frame in the active entry on the first pin, and counts the pin. Returns
/// the granted frame. Takes no frame reference: see [`map`] and
/// [`acquire_for_copy`].
pub fn pin(
    active: &mut ActiveTable,
    shared: &mut impl SharedEntries,
    mapper: DomainId,
    reference: GrantRef,
    access: Access,
) -> Result<Mfn, Refusal> {
    if reference >= shared.entry_count() {
        return Err(refuse(
            GrantStatus::BadGntref,
            "grant reference beyond the end of the granter's table",
        ));
    }
    // The hypervisor grows the active entries with the table
    // (`setup_table`); a reference beyond them is one whose growth the
    // heap refused.
    let Some(&entry) = active.entries.get(reference as usize) else {
        return Err(refuse(
            GrantStatus::GeneralError,
            "the grant reference has no active entry (the table could not grow)",
        ));
    };
    let pinned = entry.is_pinned();
    if pinned && entry.mapper != mapper {
        return Err(refuse(
            GrantStatus::GeneralError,
            "the entry is in use by another domain",
        ));
    }
    let count = match access {
        Access::Read => entry.readers,
        Access::Write => entry.writers,
    };
    if count >= MAX_PINS_PER_KIND {
        return Err(refuse(
            GrantStatus::GeneralError,
            "the entry is pinned too often (its count would overflow)",
        ));
    }
    // The status bits are set on the first pin, and again on the first
    // writable one (GTF_writing); the check of the grant goes with them.
    if !pinned || (access == Access::Write && entry.writers == 0) {
        set_status(shared, reference, mapper, access, pinned)?;
    }
    let slot = &mut active.entries[reference as usize];
    if !pinned {
        slot.mapper = mapper;
        slot.frame = Mfn::from(shared.frame(reference));
    }
    match access {
        Access::Read => slot.readers += 1,
        Access::Write => slot.writers += 1,
    }
    Ok(slot.frame)
}

/// Drops a pin taken by [`pin`], and clears `GTF_writing` when the last
/// writable pin goes and `GTF_reading` when the last pin goes: from then on
/// the granter may revoke the entry.
pub fn unpin(
    active: &mut ActiveTable,
    shared: &mut impl SharedEntries,
    reference: GrantRef,
    access: Access,
) {
    let Some(slot) = active.entries.get_mut(reference as usize) else {
        debug_assert!(false, "unpin of a reference beyond the table");
        return;
    };
    let count = match access {
        Access::Read => &mut slot.readers,
        Access::Write => &mut slot.writers,
    };
    debug_assert!(*count > 0, "unpin without a pin");
    *count = count.saturating_sub(1);
    let mut clear = GrantFlags::empty();
    if access == Access::Write && slot.writers == 0 {
        clear |= GrantFlags::WRITING;
    }
    if !slot.is_pinned() {
        clear |= GrantFlags::READING;
    }
    if !clear.is_empty() {
        shared.clear_flags(reference, clear);
    }
}

/// The references a mapping or a copy holds on a granted frame: a general
/// one, so that the frame stays allocated (and its owner a zombie if it
/// dies), and for writes a `Writable` type one, so that it can be neither a
/// page table nor a descriptor page while written. On failure nothing is
/// held.
fn get_frame(
    frames: &mut impl FrameReferences,
    frame: Mfn,
    owner: DomainId,
    access: Access,
) -> Result<(), Refusal> {
    frames
        .get_page(frame, owner)
        .map_err(|reason| refuse(GrantStatus::GeneralError, reason))?;
    if access == Access::Write {
        if let Err(reason) = frames.get_writable(frame, owner) {
            frames.put_page(frame);
            return Err(refuse(GrantStatus::GeneralError, reason));
        }
    }
    Ok(())
}

/// Drops what [`get_frame`] took.
fn put_frame(frames: &mut impl FrameReferences, frame: Mfn, access: Access) {
    if access == Access::Write {
        frames.put_writable(frame);
    }
    frames.put_page(frame);
}

/// The granter's side of a map, an unmap or a copy: its active entries and
/// its shared entries.
pub struct Granter<'a, S: SharedEntries> {
    /// Its ID.
    pub id: DomainId,
    /// Its active entries.
    pub active: &'a mut ActiveTable,
    /// Its shared entries.
    pub shared: &'a mut S,
}

/// `GNTTABOP_map_grant_ref`, the part that is rules: takes a maptrack
/// handle of `mapper`'s, pins the granter's entry and takes the frame
/// references of [`get_frame`] once for each of `kinds`, and records the
/// mapping. Returns the handle and the frame; the caller then writes the
/// page-table entry of a host mapping and records where
/// ([`Maptrack::set_entry_address`]), or undoes everything with [`unmap`]
/// if it cannot. On failure nothing changed.
pub fn map<S: SharedEntries>(
    maptrack: &mut Maptrack,
    mapper: DomainId,
    granter: Granter<'_, S>,
    frames: &mut impl FrameReferences,
    reference: GrantRef,
    access: Access,
    kinds: Kinds,
) -> Result<(GrantHandle, Mfn), Refusal> {
    if kinds.count() == 0 {
        return Err(refuse(
            GrantStatus::BadGntref,
            "neither GNTMAP_host_map nor GNTMAP_device_map",
        ));
    }
    // Xen takes the handle first: a full maptrack is refused before the
    // reference is even looked at.
    if !maptrack.has_room() {
        return Err(refuse(
            GrantStatus::NoDeviceSpace,
            "the maptrack is full: unmap something first",
        ));
    }
    let frame = pin(granter.active, granter.shared, mapper, reference, access)?;
    if let Err(refusal) = get_frame(frames, frame, granter.id, access) {
        unpin(granter.active, granter.shared, reference, access);
        return Err(refusal);
    }
    if kinds.count() == 2 {
        // The second kind pins and references the frame once more.
        let second =
            pin(granter.active, granter.shared, mapper, reference, access).and_then(|_| {
                get_frame(frames, frame, granter.id, access)
                    .inspect_err(|_| unpin(granter.active, granter.shared, reference, access))
            });
        if let Err(refusal) = second {
            put_frame(frames, frame, access);
            unpin(granter.active, granter.shared, reference, access);
            return Err(refusal);
        }
    }
    let mapping = Mapping {
        granter: granter.id,
        reference,
        frame,
        access,
        kinds,
        entry_address: 0,
    };
    match maptrack.insert(mapping) {
        Ok(handle) => Ok((handle, frame)),
        Err(refusal) => {
            for _ in 0..kinds.count() {
                put_frame(frames, frame, access);
                unpin(granter.active, granter.shared, reference, access);
            }
            Err(refusal)
        }
    }
}

/// `GNTTABOP_unmap_grant_ref`, the part that is rules: takes `kinds` off
/// the mapping of `handle` (`GNTST_bad_handle` if there is none, so a
/// second unmap of the same handle is refused), drops the frame references
/// and pins of the kinds it held, and forgets the mapping once no kind is
/// left. A kind asked for but not held is ignored, as in Xen.
/// `granter` is `None` when the granter is gone (destroyed while mapped):
/// its active entries went with it, and only the references remain to
/// drop, which lets its zombie go. The caller has removed the page-table
/// entry (and flushed the TLB) first.
pub fn unmap<S: SharedEntries>(
    maptrack: &mut Maptrack,
    handle: GrantHandle,
    kinds: Kinds,
    granter: Option<Granter<'_, S>>,
    frames: &mut impl FrameReferences,
) -> Result<Mapping, Refusal> {
    let mapping = maptrack.remove(handle, kinds)?;
    let dropped = mapping.kinds.and(kinds).count();
    for _ in 0..dropped {
        put_frame(frames, mapping.frame, mapping.access);
    }
    if let Some(granter) = granter {
        debug_assert_eq!(granter.id, mapping.granter);
        for _ in 0..dropped {
            unpin(
                granter.active,
                granter.shared,
                mapping.reference,
                mapping.access,
            );
        }
    }
    Ok(mapping)
}

/// One side of a `GNTTABOP_copy`, resolved by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopySide {
    /// A grant reference of another domain (or of the caller itself).
    Granted {
        /// The reference.
        reference: GrantRef,
    },
    /// A frame of the caller's own (`gmfn`: a machine frame for PV).
    Local {
        /// The frame.
        frame: Mfn,
    },
}

/// Rule: neither side of a copy may cross the end of its page
/// (`GNTST_bad_copy_arg`).
pub fn check_copy_extent(source_offset: u16, dest_offset: u16, length: u16) -> Result<(), Refusal> {
    let end = |offset: u16| u32::from(offset) + u32::from(length);
    if end(source_offset) > 4096 || end(dest_offset) > 4096 {
        return Err(refuse(
            GrantStatus::BadCopyArg,
            "the copy crosses the end of a page",
        ));
    }
    Ok(())
}

/// Makes one side of a copy usable for `access`: for a granted side, pins
/// the entry as [`map`] does; for a local frame, checks that the caller
/// owns it (`GNTST_bad_page`). Either way takes the frame references of
/// [`get_frame`] (so that a copy into a page table is refused) and returns
/// the frame. Undo with [`release_after_copy`].
pub fn acquire_for_copy<S: SharedEntries>(
    caller: DomainId,
    side: CopySide,
    granter: Option<Granter<'_, S>>,
    frames: &mut impl FrameReferences,
    access: Access,
) -> Result<Mfn, Refusal> {
    match side {
        CopySide::Local { frame } => {
            frames
                .get_page(frame, caller)
                .map_err(|_| refuse(GrantStatus::BadPage, "the frame is not the caller's"))?;
            if access == Access::Write {
                if let Err(reason) = frames.get_writable(frame, caller) {
                    frames.put_page(frame);
                    return Err(refuse(GrantStatus::GeneralError, reason));
                }
            }
            Ok(frame)
        }
        CopySide::Granted { reference } => {
            let Some(granter) = granter else {
                return Err(refuse(GrantStatus::BadDomain, "no such granting domain"));
            };
            let frame = pin(granter.active, granter.shared, caller, reference, access)?;
            if let Err(refusal) = get_frame(frames, frame, granter.id, access) {
                unpin(granter.active, granter.shared, reference, access);
                return Err(refusal);
            }
            Ok(frame)
        }
    }
}

/// Gives back what [`acquire_for_copy`] took for `side`.
pub fn release_after_copy<S: SharedEntries>(
    side: CopySide,
    frame: Mfn,
    granter: Option<Granter<'_, S>>,
    frames: &mut impl FrameReferences,
    access: Access,
) {
    put_frame(frames, frame, access);
    if let (CopySide::Granted { reference }, Some(granter)) = (side, granter) {
        unpin(granter.active, granter.shared, reference, access);
    }
}

#[cfg(test)]
mod tests;
