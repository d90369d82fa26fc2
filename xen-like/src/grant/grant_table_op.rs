//! `grant_table_op` (hypercall 20): decodes each sub-op, finds the domains,
//! page-table entries and frames it names, and asks the rules
//! (`crate::grant::table`) for every decision.
//!
//! Mappings are written into the mapper's page tables through the frame
//! table (`update_entry_foreign`, with the granter as the page owner), so
//! the entry holds its own references as any entry does; the grant itself
//! holds one more general reference (and a `Writable` type reference for a
//! writable mapping) until it is unmapped, whatever the mapper does to the
//! entry meanwhile. Unmapping clears the entry, flushes the TLB, and only
//! then drops the pin, so the granter never sees its entry free while a
//! stale translation could still reach the frame.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use hypercall_abi::grant_table::{
    GntmapFlags, GnttabCopy, GnttabCopyPtr, GnttabGetVersion, GnttabMapGrantRef, GnttabOp,
    GnttabQuerySize, GnttabSetVersion, GnttabSetupTable, GnttabUnmapAndReplace,
    GnttabUnmapGrantRef, GrantStatus, GNTCOPY_DEST_GREF, GNTCOPY_SOURCE_GREF,
    GRANT_ENTRIES_PER_FRAME,
};
use hypercall_abi::layout::{DomainId, DOMID_SELF, HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};
use hypercall_abi::XenError;

use super::table::{
    self, acquire_for_copy, check_copy_extent, refuse, release_after_copy, Access, ActiveTable,
    CopySide, FrameTableReferences, Granter, Kinds, Mapping, Maptrack, Refusal,
    DEFAULT_MAX_GRANT_FRAMES, DEFAULT_MAX_MAPTRACK_FRAMES, MAPTRACK_ENTRIES_PER_FRAME,
};
use crate::console::caller_log;
use crate::domain::{self, Domain};
use crate::mm::frame_table::{
    self, DirectMapTables, Flush, FrameTable, Mfn, PageType, TableMemory,
};
use crate::mm::grant_frames::{copy_between_frames, GrantFrames};
use crate::mm::heap::admit_guest_allocation;
use crate::mm::pagewalk::{
    is_canonical, PTE_ADDRESS_MASK, PTE_NO_EXECUTE, PTE_PRESENT, PTE_USER, PTE_WRITABLE,
};
use crate::mm::{guest_access, mmu_op, tlb, PAGE_SIZE};
use crate::sched::continuation::Outcome;

/// The grant table's version (only 1 exists here).
const VERSION_1: u32 = 1;
/// Accessed and dirty: set in a new grant mapping's entry, as Xen does,
/// so that the MMU need not write them.
const PTE_ACCESSED_DIRTY: u64 = (1 << 5) | (1 << 6);

/// `gnttab_max_frames` (see [`configure`]).
static MAX_GRANT_FRAMES: AtomicU32 = AtomicU32::new(DEFAULT_MAX_GRANT_FRAMES);
/// `gnttab_max_maptrack_frames` (see [`configure`]).
static MAX_MAPTRACK_FRAMES: AtomicU32 = AtomicU32::new(DEFAULT_MAX_MAPTRACK_FRAMES);

/// Takes the limits of the command line (`gnttab_max_frames`,
/// `gnttab_max_maptrack_frames`) for every domain created from now on.
pub fn configure(max_grant_frames: u32, max_maptrack_frames: u32) {
    MAX_GRANT_FRAMES.store(max_grant_frames, Ordering::Relaxed);
    MAX_MAPTRACK_FRAMES.store(max_maptrack_frames, Ordering::Relaxed);
}

/// The grant-table limit of a domain being created with `max_grant_frames`
/// (0: the host's): `-EINVAL`, logged, above the host's `gnttab_max_frames`.
pub fn grant_frame_limit(requested: u32) -> Result<u32, XenError> {
    let host_limit = MAX_GRANT_FRAMES.load(Ordering::Relaxed);
    table::domain_grant_frame_limit(requested, host_limit).ok_or_else(|| {
        caller_log!(
            Warn,
            "createdomain: max_grant_frames {requested} is above gnttab_max_frames {host_limit}: -EINVAL"
        );
        XenError::EINVAL
    })
}

/// A domain's grant state: its grant-table frames and active entries (its
/// side as a granter) and its maptrack (its side as a mapper).
#[derive(Debug)]
pub struct GrantState {
    /// Its grant-table frames, held for the hypervisor (invariant 7).
    pub frames: GrantFrames,
    /// The most frames its table may grow to.
    pub max_frames: u32,
    /// Its active entries.
    pub active: ActiveTable,
    /// Its mappings of granted frames.
    pub maptrack: Maptrack,
}

impl GrantState {
    /// A new domain's: no frames yet, the configured limits.
    pub fn new() -> Self {
        let maptrack_frames = MAX_MAPTRACK_FRAMES.load(Ordering::Relaxed);
        Self {
            frames: GrantFrames::new(),
            max_frames: MAX_GRANT_FRAMES.load(Ordering::Relaxed),
            active: ActiveTable::new(),
            maptrack: Maptrack::new(maptrack_frames.saturating_mul(MAPTRACK_ENTRIES_PER_FRAME)),
        }
    }
}

impl GrantState {
    /// Heap bytes of guest-sized state the domain holds (its account for
    /// `crate::mm::heap::admit_guest_allocation`): its active entries, its
    /// maptrack, its list of grant-table frames.
    pub fn heap_bytes(&self) -> usize {
        self.active.heap_bytes() + self.maptrack.heap_bytes() + self.frames.heap_bytes()
    }
}

/// Makes room in `domain`'s maptrack for one more mapping, if the limit
/// and the heap's budget allow (see [`Maptrack::reserve_room`]).
fn reserve_map_room(domain: &mut Domain) -> Result<(), Refusal> {
    let held = domain.guest_sized_heap_bytes();
    domain
        .grants
        .maptrack
        .reserve_room(|bytes| admit_guest_allocation(held, bytes))
}

impl Default for GrantState {
    fn default() -> Self {
        Self::new()
    }
}

/// `grant_table_op(cmd, uop, count)`.
pub fn grant_table_op(command: u64, uop: u64, count: u64, budget: &mut u64) -> Outcome {
    let Some(operation) = GnttabOp::from_register(command) else {
        caller_log!(Debug, "grant_table_op: unknown sub-op {command}: -ENOSYS");
        return Outcome::Done(Err(XenError::ENOSYS));
    };
    match operation {
        GnttabOp::MapGrantRef => batch(operation, uop, count, budget, map_one),
        GnttabOp::UnmapGrantRef => batch(operation, uop, count, budget, unmap_one),
        GnttabOp::UnmapAndReplace => batch(operation, uop, count, budget, unmap_and_replace_one),
        GnttabOp::Copy => batch(operation, uop, count, budget, copy_one),
        GnttabOp::SetupTable => Outcome::Done(single(uop, count, setup_table)),
        GnttabOp::QuerySize => Outcome::Done(single(uop, count, query_size)),
        GnttabOp::SetVersion => Outcome::Done(single(uop, count, set_version)),
        GnttabOp::GetVersion => Outcome::Done(single(uop, count, get_version)),
        other => {
            caller_log!(
                Debug,
                "grant_table_op: {} is not implemented: -ENOSYS",
                other.name()
            );
            Outcome::Done(Err(XenError::ENOSYS))
        }
    }
}

/// Runs `run` on each of the `count` requests at `uop` in turn, writing
/// each back with its status; stops for a continuation when the budget is
/// spent, as Xen's batches do.
fn batch<T: bytemuck::Pod>(
    operation: GnttabOp,
    uop: u64,
    count: u64,
    budget: &mut u64,
    run: fn(DomainId, &mut T),
) -> Outcome {
    let size = core::mem::size_of::<T>() as u64;
    if let Err(error) = guest_access::check_array(uop, count, size) {
        return Outcome::Done(Err(error));
    }
    let caller = domain::caller();
    for index in 0..count {
        if index > 0 && *budget == 0 {
            return Outcome::Continue(heapless::Vec::from_iter([
                u64::from(operation.raw()),
                uop + index * size,
                count - index,
            ]));
        }
        *budget = budget.saturating_sub(1);
        let address = uop + index * size;
        let mut request: T = match guest_access::read_for_update(address) {
            Ok(request) => request,
            Err(error) => return Outcome::Done(Err(error)),
        };
        run(caller, &mut request);
        if let Err(error) = guest_access::write_to_guest(address, &request) {
            return Outcome::Done(Err(error));
        }
    }
    Outcome::Done(Ok(0))
}

/// The sub-ops that take exactly one request (Xen: `count != 1` is
/// `-EINVAL`).
fn single<T: bytemuck::Pod>(
    uop: u64,
    count: u64,
    run: fn(DomainId, &mut T) -> Result<(), XenError>,
) -> Result<u64, XenError> {
    if count != 1 {
        return Err(XenError::EINVAL);
    }
    let mut request: T = guest_access::read_for_update(uop)?;
    run(domain::caller(), &mut request)?;
    guest_access::write_to_guest(uop, &request)?;
    Ok(0)
}

/// `DOMID_SELF` means the caller.
fn resolve(caller: DomainId, domid: DomainId) -> DomainId {
    if domid == DOMID_SELF {
        caller
    } else {
        domid
    }
}

/// Logs a refusal (outside any domain lock) and returns its status.
fn refused(what: &str, refusal: Refusal) -> i16 {
    caller_log!(
        Debug,
        "{what} refused: {} ({})",
        refusal.reason,
        refusal.status.message()
    );
    refusal.status.raw()
}

/// Runs `action` with the mapper's maptrack and the granter's side (or
/// `None` when the granter does not exist: never created, or dying), under
/// the domain lock, with the frame table locked too.
fn with_mapper_and_granter<R>(
    mapper: DomainId,
    granter: DomainId,
    action: impl FnOnce(
        &mut Maptrack,
        Option<Granter<'_, GrantFrames>>,
        &mut FrameTableReferences<'_, 'static, DirectMapTables>,
    ) -> R,
) -> Option<R> {
    let mut action = Some(action);
    let mut run = |maptrack: &mut Maptrack, granter: Option<Granter<'_, GrantFrames>>| {
        let action = action.take()?;
        Some(frame_table::with(|table, memory| {
            let mut references = FrameTableReferences { table, memory };
            action(maptrack, granter, &mut references)
        }))
    };
    if mapper == granter {
        return domain::with(mapper, |domain| {
            let GrantState {
                frames,
                active,
                maptrack,
                ..
            } = &mut domain.grants;
            run(
                maptrack,
                Some(Granter {
                    id: granter,
                    active,
                    shared: frames,
                }),
            )
        })
        .flatten();
    }
    let both = domain::with_two(mapper, granter, |mapping, granting| {
        let GrantState { frames, active, .. } = &mut granting.grants;
        run(
            &mut mapping.grants.maptrack,
            Some(Granter {
                id: granter,
                active,
                shared: frames,
            }),
        )
    });
    match both {
        Some(result) => result,
        None => domain::with(mapper, |mapping| run(&mut mapping.grants.maptrack, None)).flatten(),
    }
}

/// Where a mapping's page-table entry is: an L1 table of the caller's and
/// an index in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EntryLocation {
    table: Mfn,
    index: usize,
}

impl EntryLocation {
    fn machine_address(self) -> u64 {
        self.table * PAGE_SIZE + self.index as u64 * 8
    }

    fn from_machine_address(address: u64) -> Self {
        Self {
            table: address / PAGE_SIZE,
            index: ((address % PAGE_SIZE) / 8) as usize,
        }
    }
}

/// Finds the entry a map or unmap names: with `GNTMAP_contains_pte`, the
/// machine address of an entry of one of the caller's L1 tables in use
/// (8-byte aligned: a misaligned one would splice two entries, XSA-227);
/// otherwise the entry that maps the virtual address in the caller's
/// current address space, whose L1 table must exist.
fn locate_entry(
    caller: DomainId,
    host_addr: u64,
    contains_pte: bool,
) -> Result<EntryLocation, Refusal> {
    if contains_pte {
        if !host_addr.is_multiple_of(8) {
            return Err(refuse(
                GrantStatus::GeneralError,
                "the PTE address is not 8-byte aligned",
            ));
        }
        let location = EntryLocation::from_machine_address(host_addr);
        let is_own_l1 = frame_table::with(|table, _| {
            table.info(location.table).is_some_and(|info| {
                info.owner == frame_table::Owner::Domain(caller)
                    && info.page_type == PageType::L1
                    && info.type_count > 0
                    && info.validated
            })
        });
        if !is_own_l1 {
            return Err(refuse(
                GrantStatus::GeneralError,
                "the PTE address is not in an L1 page table of the caller's",
            ));
        }
        return Ok(location);
    }
    if !is_canonical(host_addr) || (HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END).contains(&host_addr)
    {
        return Err(refuse(
            GrantStatus::BadVirtAddr,
            "the address is not canonical or is the hypervisor's",
        ));
    }
    let root = domain::with(caller, |domain| domain.kernel_root).unwrap_or(0);
    let (table, index) = mmu_op::find_l1(root, host_addr).ok_or(refuse(
        GrantStatus::GeneralError,
        "no L1 page table maps the address",
    ))?;
    Ok(EntryLocation { table, index })
}

/// The page-table entry of a grant mapping of `frame`.
fn grant_entry_value(frame: Mfn, access: Access) -> u64 {
    let base = (frame << 12) | PTE_PRESENT | PTE_USER | PTE_NO_EXECUTE | PTE_ACCESSED_DIRTY;
    match access {
        Access::Read => base,
        Access::Write => base | PTE_WRITABLE,
    }
}

/// `GNTTABOP_map_grant_ref`, one request.
fn map_one(caller: DomainId, request: &mut GnttabMapGrantRef) {
    request.handle = u32::MAX;
    match map_grant_ref(caller, request) {
        Ok((handle, frame)) => {
            request.status = GrantStatus::Okay.raw();
            request.handle = handle;
            request.dev_bus_addr = frame * PAGE_SIZE;
        }
        Err(refusal) => request.status = refused("map_grant_ref", refusal),
    }
}

fn map_grant_ref(caller: DomainId, request: &GnttabMapGrantRef) -> Result<(u32, Mfn), Refusal> {
    let flags = GntmapFlags::from_bits_retain(request.flags);
    if !flags.intersects(GntmapFlags::HOST_MAP | GntmapFlags::DEVICE_MAP) {
        return Err(refuse(
            GrantStatus::BadGntref,
            "neither GNTMAP_host_map nor GNTMAP_device_map",
        ));
    }
    // A device mapping only holds the frame for DMA: without an I/O MMU
    // its bus address is the machine address, and nothing is written.
    let kinds = Kinds {
        host: flags.contains(GntmapFlags::HOST_MAP),
        device: flags.contains(GntmapFlags::DEVICE_MAP),
    };
    let granter = resolve(caller, request.dom);
    let access = if flags.contains(GntmapFlags::READONLY) {
        Access::Read
    } else {
        Access::Write
    };
    let location = if kinds.host {
        Some(locate_entry(
            caller,
            request.host_addr,
            flags.contains(GntmapFlags::CONTAINS_PTE),
        )?)
    } else {
        None
    };
    // Xen takes the maptrack handle first: a full maptrack, or a heap that
    // refuses it more room, is refused before the reference is looked at.
    domain::with(caller, reserve_map_room)
        .unwrap_or(Err(refuse(GrantStatus::BadDomain, "no such domain")))?;
    let reference = request.r#ref;
    let outcome = with_mapper_and_granter(
        caller,
        granter,
        |maptrack, granting, references| -> Result<(u32, Mfn, Flush), MapError> {
            let Some(granting) = granting else {
                return Err(refuse(GrantStatus::BadDomain, "no such granting domain").into());
            };
            let (handle, frame) = table::map(
                maptrack, caller, granting, references, reference, access, kinds,
            )?;
            let Some(location) = location else {
                return Ok((handle, frame, Flush::None));
            };
            match references.table.update_entry_foreign(
                references.memory,
                location.table,
                location.index,
                grant_entry_value(frame, access),
                caller,
                granter,
                false,
            ) {
                Ok(flush) => {
                    maptrack.set_entry_address(handle, location.machine_address());
                    Ok((handle, frame, flush))
                }
                Err(refusal) => Err(MapError::Undo(UndoMap {
                    handle,
                    reason: refusal.reason,
                })),
            }
        },
    );
    match outcome {
        None => Err(refuse(GrantStatus::BadDomain, "no such domain")),
        Some(Ok((handle, frame, flush))) => {
            if flush == Flush::Needed {
                // The entry replaced another mapping.
                tlb::note_stale();
                domain::announce_gone_zombies();
            }
            Ok((handle, frame))
        }
        Some(Err(MapError::Refused(refusal))) => Err(refusal),
        Some(Err(MapError::Undo(UndoMap { handle, reason }))) => {
            let _ = with_mapper_and_granter(caller, granter, |maptrack, granting, references| {
                table::unmap(maptrack, handle, kinds, granting, references)
            });
            caller_log!(
                Debug,
                "map_grant_ref: the page-table entry was refused: {reason}"
            );
            Err(refuse(
                GrantStatus::GeneralError,
                "the page-table entry for the mapping was refused",
            ))
        }
    }
}

/// A mapping the rules accepted but whose page-table entry was refused.
struct UndoMap {
    handle: u32,
    reason: &'static str,
}

/// Why a map failed, inside the locks.
enum MapError {
    Refused(Refusal),
    Undo(UndoMap),
}

impl From<Refusal> for MapError {
    fn from(refusal: Refusal) -> Self {
        MapError::Refused(refusal)
    }
}

/// `GNTTABOP_unmap_grant_ref`, one request.
fn unmap_one(caller: DomainId, request: &mut GnttabUnmapGrantRef) {
    request.status = match unmap_grant_ref(caller, request) {
        Ok(()) => GrantStatus::Okay.raw(),
        Err(refusal) => refused("unmap_grant_ref", refusal),
    };
}

fn unmap_grant_ref(caller: DomainId, request: &GnttabUnmapGrantRef) -> Result<(), Refusal> {
    let handle = request.handle;
    let mapping = domain::with(caller, |domain| domain.grants.maptrack.get(handle).copied())
        .ok_or(refuse(GrantStatus::BadDomain, "the caller is gone"))??;
    if request.dev_bus_addr != 0 && request.dev_bus_addr != mapping.frame * PAGE_SIZE {
        return Err(refuse(
            GrantStatus::GeneralError,
            "the bus address is not the mapping's",
        ));
    }
    // As in Xen, a zero address leaves that half alone, and so does an
    // address given for a half the mapping does not have.
    let kinds = Kinds {
        host: request.host_addr != 0 && mapping.kinds.host,
        device: request.dev_bus_addr != 0 && mapping.kinds.device,
    };
    if kinds.host {
        clear_host_entry(caller, request.host_addr, &mapping)?;
    }
    if kinds.count() == 0 {
        return Ok(());
    }
    let unmapped =
        with_mapper_and_granter(caller, mapping.granter, |maptrack, granting, references| {
            table::unmap(maptrack, handle, kinds, granting, references)
        });
    domain::announce_gone_zombies();
    match unmapped {
        Some(result) => result.map(|_| ()),
        None => Err(refuse(GrantStatus::BadDomain, "the caller is gone")),
    }
}

/// Rule: the entry a host unmap removes must still be the grant's: present,
/// mapping the granted frame, and writable exactly when the grant mapping
/// is (Xen's check on the PTE flags, which stops a read-only entry put in
/// place of a writable grant mapping from being unmapped as if it were it:
/// XSA-234).
fn check_still_mapped(entry: u64, mapping: &Mapping) -> Result<(), Refusal> {
    let writable = entry & PTE_WRITABLE != 0;
    if entry & PTE_PRESENT == 0
        || (entry & PTE_ADDRESS_MASK) >> 12 != mapping.frame
        || writable != (mapping.access == Access::Write)
    {
        return Err(refuse(
            GrantStatus::GeneralError,
            "the page-table entry is no longer the grant mapping (frame or rights differ)",
        ));
    }
    Ok(())
}

/// `GNTTABOP_unmap_and_replace`, one request.
fn unmap_and_replace_one(caller: DomainId, request: &mut GnttabUnmapAndReplace) {
    request.status = match unmap_and_replace(caller, request) {
        Ok(()) => GrantStatus::Okay.raw(),
        Err(refusal) => refused("unmap_and_replace", refusal),
    };
}

/// Unmaps the host half of `handle` at `host_addr` and moves the entry that
/// maps `new_addr` into its place, leaving `new_addr` unmapped (Xen's
/// `replace_grant_pv_mapping`). The moved entry goes through the frame
/// table like any write: it takes its references at the new place before
/// the old place gives its own back, so nothing is counted twice or lost.
fn unmap_and_replace(caller: DomainId, request: &GnttabUnmapAndReplace) -> Result<(), Refusal> {
    let handle = request.handle;
    let mapping = domain::with(caller, |domain| domain.grants.maptrack.get(handle).copied())
        .ok_or(refuse(GrantStatus::BadDomain, "the caller is gone"))??;
    if request.new_addr == 0 {
        let plain = GnttabUnmapGrantRef {
            host_addr: request.host_addr,
            handle,
            ..GnttabUnmapGrantRef::default()
        };
        return unmap_grant_ref(caller, &plain);
    }
    if !mapping.kinds.host || request.host_addr == 0 {
        return Err(refuse(
            GrantStatus::GeneralError,
            "the handle has no host mapping at that address",
        ));
    }
    let location = EntryLocation::from_machine_address(mapping.entry_address);
    let named = request.host_addr == mapping.entry_address
        || locate_entry(caller, request.host_addr, false).ok() == Some(location);
    let replacement = locate_entry(caller, request.new_addr, false)?;
    if !named || replacement == location {
        return Err(refuse(
            GrantStatus::GeneralError,
            "the addresses do not name the mapping and another entry",
        ));
    }
    let moved = frame_table::with(|table, memory| {
        check_still_mapped(memory.read_entry(location.table, location.index), &mapping)?;
        let value = memory.read_entry(replacement.table, replacement.index);
        // A present entry names a frame of whoever owns it: the caller's
        // own, or one granted to it (its own entry holds the references).
        let owner = if value & PTE_PRESENT != 0 {
            match table
                .info((value & PTE_ADDRESS_MASK) >> 12)
                .map(|info| info.owner)
            {
                Some(frame_table::Owner::Domain(owner)) => owner,
                _ => {
                    return Err(refuse(
                        GrantStatus::GeneralError,
                        "the replacement entry maps no domain's frame",
                    ))
                }
            }
        } else {
            caller
        };
        let put = table
            .update_entry_foreign(
                memory,
                location.table,
                location.index,
                value,
                caller,
                owner,
                false,
            )
            .map_err(|refusal| refuse(GrantStatus::GeneralError, refusal.reason))?;
        let cleared = table
            .update_entry(
                memory,
                replacement.table,
                replacement.index,
                0,
                caller,
                false,
            )
            .map_err(|refusal| refuse(GrantStatus::GeneralError, refusal.reason))?;
        Ok(put.combine(cleared))
    });
    // The flush covers both entries.
    let _flushed_below: Flush = moved?;
    tlb::flush_all();
    let unmapped =
        with_mapper_and_granter(caller, mapping.granter, |maptrack, granting, references| {
            table::unmap(maptrack, handle, Kinds::HOST, granting, references)
        });
    domain::announce_gone_zombies();
    match unmapped {
        Some(result) => result.map(|_| ()),
        None => Err(refuse(GrantStatus::BadDomain, "the caller is gone")),
    }
}

/// Removes the page-table entry of a host mapping, which `host_addr` must
/// name (its virtual address, or the entry's machine address) and which
/// must still map the granted frame, then flushes the TLB: no translation
/// of the frame may outlive the pin, since once it is dropped the granter
/// may reuse the frame for something else.
fn clear_host_entry(caller: DomainId, host_addr: u64, mapping: &Mapping) -> Result<(), Refusal> {
    let location = EntryLocation::from_machine_address(mapping.entry_address);
    let named = host_addr == mapping.entry_address
        || locate_entry(caller, host_addr, false).ok() == Some(location);
    if !named {
        return Err(refuse(
            GrantStatus::GeneralError,
            "the address does not name the mapping of this handle",
        ));
    }
    let cleared = frame_table::with(|table, memory| {
        check_still_mapped(memory.read_entry(location.table, location.index), mapping)?;
        table
            .update_entry(memory, location.table, location.index, 0, caller, false)
            .map_err(|refusal| refuse(GrantStatus::GeneralError, refusal.reason))
    });
    // The flush below covers whatever rights the entry gave.
    let _flushed_below: Flush = cleared?;
    tlb::flush_all();
    Ok(())
}

/// One side of a copy, as the rules see it, and the domain it is of.
fn copy_side(
    caller: DomainId,
    side: &GnttabCopyPtr,
    is_reference: bool,
) -> Result<(DomainId, CopySide), Refusal> {
    if is_reference {
        return Ok((
            resolve(caller, side.domid),
            CopySide::Granted {
                reference: side.grant_ref(),
            },
        ));
    }
    // Xen: only DOMID_SELF may name a frame directly.
    if side.domid != DOMID_SELF {
        return Err(refuse(
            GrantStatus::PermissionDenied,
            "a frame may be named only with DOMID_SELF (others need a grant reference)",
        ));
    }
    Ok((caller, CopySide::Local { frame: side.u }))
}

/// Runs `action` on the grant side of `owner` (when `side` is a grant) and
/// the frame table.
fn with_copy_side<R>(
    owner: DomainId,
    side: CopySide,
    action: impl FnOnce(
        Option<Granter<'_, GrantFrames>>,
        &mut FrameTableReferences<'_, 'static, DirectMapTables>,
    ) -> R,
) -> Option<R> {
    match side {
        CopySide::Local { .. } => Some(frame_table::with(|table, memory| {
            action(None, &mut FrameTableReferences { table, memory })
        })),
        CopySide::Granted { .. } => domain::with(owner, |domain| {
            let GrantState { frames, active, .. } = &mut domain.grants;
            frame_table::with(|table, memory| {
                action(
                    Some(Granter {
                        id: owner,
                        active,
                        shared: frames,
                    }),
                    &mut FrameTableReferences { table, memory },
                )
            })
        }),
    }
}

fn acquire(
    caller: DomainId,
    owner: DomainId,
    side: CopySide,
    access: Access,
) -> Result<Mfn, Refusal> {
    with_copy_side(owner, side, |granter, references| {
        acquire_for_copy(caller, side, granter, references, access)
    })
    .unwrap_or(Err(refuse(GrantStatus::BadDomain, "no such domain")))
}

fn release(owner: DomainId, side: CopySide, frame: Mfn, access: Access) {
    let _ = with_copy_side(owner, side, |granter, references| {
        release_after_copy(side, frame, granter, references, access)
    });
}

/// `GNTTABOP_copy`, one request.
fn copy_one(caller: DomainId, request: &mut GnttabCopy) {
    request.status = match copy(caller, request) {
        Ok(()) => GrantStatus::Okay.raw(),
        Err(refusal) => refused("grant copy", refusal),
    };
}

fn copy(caller: DomainId, request: &GnttabCopy) -> Result<(), Refusal> {
    check_copy_extent(request.source.offset, request.dest.offset, request.len)?;
    let (source_owner, source) = copy_side(
        caller,
        &request.source,
        request.flags & GNTCOPY_SOURCE_GREF != 0,
    )?;
    let (dest_owner, dest) = copy_side(
        caller,
        &request.dest,
        request.flags & GNTCOPY_DEST_GREF != 0,
    )?;
    let source_frame = acquire(caller, source_owner, source, Access::Read)?;
    let dest_frame = match acquire(caller, dest_owner, dest, Access::Write) {
        Ok(frame) => frame,
        Err(refusal) => {
            release(source_owner, source, source_frame, Access::Read);
            return Err(refusal);
        }
    };
    copy_between_frames(
        source_frame,
        request.source.offset,
        dest_frame,
        request.dest.offset,
        request.len,
    );
    release(dest_owner, dest, dest_frame, Access::Write);
    release(source_owner, source, source_frame, Access::Read);
    Ok(())
}

/// Whose table a `setup_table`, `query_size` or `get_version` names: the
/// caller's, or (privileged callers only) another domain's.
fn table_owner(caller: DomainId, domid: DomainId) -> Result<DomainId, GrantStatus> {
    let owner = resolve(caller, domid);
    if owner != caller && crate::domain::require_privileged().is_err() {
        return Err(GrantStatus::PermissionDenied);
    }
    Ok(owner)
}

/// `GNTTABOP_setup_table`: grows the table to at least `nr_frames` frames
/// and writes the first `nr_frames` frame numbers to `frame_list`.
fn setup_table(caller: DomainId, request: &mut GnttabSetupTable) -> Result<(), XenError> {
    let owner = match table_owner(caller, request.dom) {
        Ok(owner) => owner,
        Err(status) => {
            request.status = status.raw();
            return Ok(());
        }
    };
    let count = request.nr_frames;
    guest_access::check_array(request.frame_list, u64::from(count), 8)?;
    // Inside the domain lock nothing may log against the caller
    // (`caller_log!` takes the lock): the reason comes out and is logged
    // below.
    let grown = domain::with(owner, |domain| {
        let max_frames = domain.grants.max_frames;
        if count > max_frames {
            return Err("more frames than its max_grant_frames");
        }
        // The active entries first: if the heap refuses them, the table
        // has not grown, and every reference of the table keeps an active
        // entry (`table::pin` relies on it).
        let held = domain.guest_sized_heap_bytes();
        let entries = count.max(domain.grants.frames.count()) * GRANT_ENTRIES_PER_FRAME;
        domain
            .grants
            .active
            .grow_to(entries, |bytes| admit_guest_allocation(held, bytes))
            .map_err(|refusal| refusal.reason)?;
        let held = domain.guest_sized_heap_bytes();
        domain
            .grants
            .frames
            .grow(owner, count, |bytes| admit_guest_allocation(held, bytes))
            .map_err(|_| "no memory for more grant-table frames (or for their list)")
    });
    match grown {
        None => {
            request.status = GrantStatus::BadDomain.raw();
            return Ok(());
        }
        Some(Err(reason)) => {
            caller_log!(
                Warn,
                "setup_table: d{owner} cannot have {count} grant-table frames: {reason}: GNTST_general_error"
            );
            request.status = GrantStatus::GeneralError.raw();
            return Ok(());
        }
        Some(Ok(())) => {}
    }
    // One frame at a time, outside the domain lock (a fault in the guest's
    // list is handled while holding nothing), and without a copy of the
    // list: nothing here allocates.
    for index in 0..count {
        let frame = domain::with(owner, |domain| {
            domain.grants.frames.mfns().get(index as usize).copied()
        })
        .flatten();
        let Some(frame) = frame else {
            // The domain died meanwhile.
            request.status = GrantStatus::BadDomain.raw();
            return Ok(());
        };
        guest_access::write_to_guest(request.frame_list + u64::from(index) * 8, &frame)?;
    }
    request.status = GrantStatus::Okay.raw();
    Ok(())
}

/// `GNTTABOP_query_size`.
fn query_size(caller: DomainId, request: &mut GnttabQuerySize) -> Result<(), XenError> {
    let owner = match table_owner(caller, request.dom) {
        Ok(owner) => owner,
        Err(status) => {
            request.status = status.raw();
            return Ok(());
        }
    };
    match domain::with(owner, |domain| {
        (domain.grants.frames.count(), domain.grants.max_frames)
    }) {
        Some((frames, max)) => {
            request.nr_frames = frames;
            request.max_nr_frames = max;
            request.status = GrantStatus::Okay.raw();
        }
        None => request.status = GrantStatus::BadDomain.raw(),
    }
    Ok(())
}

/// `GNTTABOP_set_version`: version 1 is the only one; version 2 (with its
/// separate status frames) is not implemented.
fn set_version(_caller: DomainId, request: &mut GnttabSetVersion) -> Result<(), XenError> {
    match request.version {
        VERSION_1 => Ok(()),
        2 => {
            caller_log!(
                Warn,
                "grant_table_op: grant table version 2 is not supported: -ENOSYS"
            );
            request.version = VERSION_1;
            Err(XenError::ENOSYS)
        }
        _ => Err(XenError::EINVAL),
    }
}

/// `GNTTABOP_get_version`.
fn get_version(caller: DomainId, request: &mut GnttabGetVersion) -> Result<(), XenError> {
    let owner = table_owner(caller, request.dom).map_err(|_| XenError::EPERM)?;
    domain::with(owner, |_| ()).ok_or(XenError::ESRCH)?;
    request.version = VERSION_1;
    Ok(())
}

/// Domain destruction: drops every mapping the dying domain made (its
/// page-table entries go with its page tables; this drops the grants'
/// references and pins, so granters see their entries free) and ends the
/// hypervisor's holds on its grant-table frames, whose numbers it returns
/// for release with the rest of its memory. Other domains' mappings of its
/// frames keep those frames, and the domain a zombie, until unmapped.
pub fn tear_down(dying: &mut Domain) -> Vec<Mfn> {
    let id = dying.id;
    let state = core::mem::take(&mut dying.grants);
    let GrantState {
        mut frames,
        mut active,
        mut maptrack,
        ..
    } = state;
    // By index, not by a list of handles: teardown allocates nothing, so it
    // cannot fail for want of heap.
    for handle in 0..maptrack.handle_end() {
        let Ok(mapping) = maptrack.get(handle).copied() else {
            continue;
        };
        if mapping.granter == id {
            frame_table::with(|table, memory| {
                let granter = Granter {
                    id,
                    active: &mut active,
                    shared: &mut frames,
                };
                let _ = table::unmap(
                    &mut maptrack,
                    handle,
                    Kinds::BOTH,
                    Some(granter),
                    &mut FrameTableReferences { table, memory },
                );
            });
            continue;
        }
        let done = domain::with(mapping.granter, |granting| {
            let GrantState {
                frames: granter_frames,
                active: granter_active,
                ..
            } = &mut granting.grants;
            frame_table::with(|table, memory| {
                let granter = Granter {
                    id: mapping.granter,
                    active: granter_active,
                    shared: granter_frames,
                };
                let _ = table::unmap(
                    &mut maptrack,
                    handle,
                    Kinds::BOTH,
                    Some(granter),
                    &mut FrameTableReferences { table, memory },
                );
            })
        });
        if done.is_none() {
            frame_table::with(|table, memory| {
                let _ = table::unmap::<GrantFrames>(
                    &mut maptrack,
                    handle,
                    Kinds::BOTH,
                    None,
                    &mut FrameTableReferences { table, memory },
                );
            });
        }
    }
    frame_table::with(|table: &mut FrameTable<'static>, memory| frames.release(table, memory))
}
