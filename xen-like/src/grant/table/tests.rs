//! Host tests of the grant rules: one rule at a time, then random
//! sequences with an invariant oracle (`tests/random_sequences.rs`).

use std::collections::HashMap;

use hypercall_abi::grant_table::{GrantFlags, GrantRef, GrantStatus};

use super::*;
use crate::mm::frame_table::{FrameInfo, FrameTable, Mfn, Owner, PageType, TableMemory};

/// Long random sequences of grant operations, with the oracle after every
/// step.
mod random_sequences;

/// The granting domain in these tests.
const GRANTER: DomainId = 1;
/// The mapping domain.
const MAPPER: DomainId = 2;
/// A third domain, granted nothing.
const OTHER: DomainId = 3;
/// The granter's data frame that it grants.
const GRANTED_FRAME: Mfn = 10;
/// Another frame of the granter's.
const SPARE_FRAME: Mfn = 11;
/// A frame of the mapper's own.
const MAPPER_FRAME: Mfn = 20;
/// Frames in the small machine.
const MACHINE_FRAMES: usize = 32;

/// Page-table memory of the tests; absent entries read 0.
#[derive(Default)]
pub(super) struct FakeTables {
    entries: HashMap<(Mfn, usize), u64>,
}

impl TableMemory for FakeTables {
    fn read_entry(&self, table: Mfn, index: usize) -> u64 {
        self.entries.get(&(table, index)).copied().unwrap_or(0)
    }

    fn write_entry(&mut self, table: Mfn, index: usize, value: u64) {
        self.entries.insert((table, index), value);
    }
}

/// A grant table in plain memory, with a switch that makes every
/// compare-and-exchange fail, as if the granter rewrote the entry each time.
#[derive(Clone, Debug)]
pub(super) struct FakeShared {
    pub(super) entries: Vec<(u32, u32)>,
    pub(super) unstable: bool,
}

impl FakeShared {
    pub(super) fn new(count: usize) -> Self {
        Self {
            entries: vec![(0, 0); count],
            unstable: false,
        }
    }

    /// The granter writes entry `reference`, as a guest does.
    pub(super) fn grant(&mut self, reference: GrantRef, to: DomainId, frame: Mfn, readonly: bool) {
        let mut flags = GrantFlags::PERMIT_ACCESS;
        if readonly {
            flags |= GrantFlags::READONLY;
        }
        self.entries[reference as usize] = (
            u32::from(flags.bits()) | (u32::from(to) << 16),
            frame as u32,
        );
    }

    pub(super) fn flags(&self, reference: GrantRef) -> GrantFlags {
        GrantFlags::from_bits_retain(self.entries[reference as usize].0 as u16)
    }

    /// An honest granter's revocation: compare-and-exchange of the flags to
    /// 0, expecting neither `GTF_reading` nor `GTF_writing`.
    pub(super) fn revoke(&mut self, reference: GrantRef) -> bool {
        let (header, frame) = self.entries[reference as usize];
        let flags = GrantFlags::from_bits_retain(header as u16);
        if flags.intersects(GrantFlags::READING | GrantFlags::WRITING) {
            return false;
        }
        self.entries[reference as usize] = (0, frame);
        true
    }
}

impl SharedEntries for FakeShared {
    fn entry_count(&self) -> u32 {
        self.entries.len() as u32
    }

    fn header(&self, reference: GrantRef) -> u32 {
        self.entries[reference as usize].0
    }

    fn frame(&self, reference: GrantRef) -> u32 {
        self.entries[reference as usize].1
    }

    fn compare_exchange_header(
        &mut self,
        reference: GrantRef,
        current: u32,
        new: u32,
    ) -> Result<(), u32> {
        let slot = &mut self.entries[reference as usize].0;
        if self.unstable || *slot != current {
            return Err(*slot);
        }
        *slot = new;
        Ok(())
    }

    fn clear_flags(&mut self, reference: GrantRef, flags: GrantFlags) {
        self.entries[reference as usize].0 &= !u32::from(flags.bits());
    }
}

/// A small machine: the granter owns frames 10..=15, the mapper 20..=25.
fn machine() -> Vec<FrameInfo> {
    let mut frames = vec![FrameInfo::FREE; MACHINE_FRAMES];
    for frame in &mut frames[10..=15] {
        *frame = FrameInfo {
            owner: Owner::Domain(GRANTER),
            ref_count: 1,
            ..FrameInfo::FREE
        };
    }
    for frame in &mut frames[20..=25] {
        *frame = FrameInfo {
            owner: Owner::Domain(MAPPER),
            ref_count: 1,
            ..FrameInfo::FREE
        };
    }
    frames
}

/// Everything one test needs.
struct World {
    frames: Vec<FrameInfo>,
    tables: FakeTables,
    shared: FakeShared,
    active: ActiveTable,
    maptrack: Maptrack,
}

/// Active entries for a table of `count` references, grown as the
/// hypervisor grows them (`setup_table`), with a heap that says yes.
pub(super) fn active_entries(count: u32) -> ActiveTable {
    let mut active = ActiveTable::new();
    active.grow_to(count, admit_all).expect("room");
    active
}

/// A heap budget that admits everything (the rules' tests are not about
/// the heap; `mm::heap_budget` has its own).
pub(super) fn admit_all(_bytes: usize) -> Result<(), crate::mm::heap_budget::HeapRefusal> {
    Ok(())
}

impl World {
    fn new() -> Self {
        Self {
            frames: machine(),
            tables: FakeTables::default(),
            shared: FakeShared::new(16),
            active: active_entries(16),
            maptrack: Maptrack::new(8),
        }
    }

    fn map(&mut self, reference: GrantRef, access: Access) -> Result<(GrantHandle, Mfn), Refusal> {
        self.map_as(MAPPER, reference, access)
    }

    fn map_as(
        &mut self,
        mapper: DomainId,
        reference: GrantRef,
        access: Access,
    ) -> Result<(GrantHandle, Mfn), Refusal> {
        let mut table = FrameTable::new(&mut self.frames, [0; 16]);
        let mut references = FrameTableReferences {
            table: &mut table,
            memory: &mut self.tables,
        };
        let granter = Granter {
            id: GRANTER,
            active: &mut self.active,
            shared: &mut self.shared,
        };
        self.maptrack.reserve_room(admit_all)?;
        map(
            &mut self.maptrack,
            mapper,
            granter,
            &mut references,
            reference,
            access,
            Kinds::HOST,
        )
    }

    fn unmap(&mut self, handle: GrantHandle) -> Result<Mapping, Refusal> {
        let mut table = FrameTable::new(&mut self.frames, [0; 16]);
        let mut references = FrameTableReferences {
            table: &mut table,
            memory: &mut self.tables,
        };
        let granter = Granter {
            id: GRANTER,
            active: &mut self.active,
            shared: &mut self.shared,
        };
        unmap(
            &mut self.maptrack,
            handle,
            Kinds::BOTH,
            Some(granter),
            &mut references,
        )
    }

    fn frame(&self, mfn: Mfn) -> FrameInfo {
        self.frames[mfn as usize]
    }

    /// The granter pins `mfn` as an L1 page table (all entries empty).
    fn make_page_table(&mut self, mfn: Mfn) {
        let mut table = FrameTable::new(&mut self.frames, [0; 16]);
        table
            .pin(&mut self.tables, mfn, 1, GRANTER)
            .expect("an empty frame validates as an L1");
    }

    fn copy(&mut self, caller: DomainId, side: CopySide, access: Access) -> Result<Mfn, Refusal> {
        let mut table = FrameTable::new(&mut self.frames, [0; 16]);
        let mut references = FrameTableReferences {
            table: &mut table,
            memory: &mut self.tables,
        };
        let granter = Granter {
            id: GRANTER,
            active: &mut self.active,
            shared: &mut self.shared,
        };
        acquire_for_copy(caller, side, Some(granter), &mut references, access)
    }
}

fn status<T: core::fmt::Debug>(result: Result<T, Refusal>) -> GrantStatus {
    result.expect_err("refused").status
}

#[test]
fn a_granted_frame_maps_and_unmaps_with_the_status_bits() {
    let mut world = World::new();
    world.shared.grant(3, MAPPER, GRANTED_FRAME, false);
    let before = world.frame(GRANTED_FRAME);

    let (handle, frame) = world.map(3, Access::Write).expect("granted writable");
    assert_eq!(frame, GRANTED_FRAME);
    assert!(world
        .shared
        .flags(3)
        .contains(GrantFlags::READING | GrantFlags::WRITING));
    let mapped = world.frame(GRANTED_FRAME);
    assert_eq!(mapped.ref_count, before.ref_count + 1);
    assert_eq!(
        (mapped.page_type, mapped.type_count),
        (PageType::Writable, 1)
    );
    assert!(
        !world.shared.revoke(3),
        "an honest revocation fails while mapped"
    );

    let mapping = world.unmap(handle).expect("the handle is ours");
    assert_eq!((mapping.granter, mapping.reference), (GRANTER, 3));
    assert!(!world
        .shared
        .flags(3)
        .intersects(GrantFlags::READING | GrantFlags::WRITING));
    assert_eq!(world.frame(GRANTED_FRAME).ref_count, before.ref_count);
    assert_eq!(world.frame(GRANTED_FRAME).type_count, 0);
    assert!(world.shared.revoke(3), "revocable once unmapped");
}

#[test]
fn host_and_device_halves_unmap_on_their_own() {
    let mut world = World::new();
    world.shared.grant(8, MAPPER, GRANTED_FRAME, false);
    let mut table = FrameTable::new(&mut world.frames, [0; 16]);
    let mut references = FrameTableReferences {
        table: &mut table,
        memory: &mut world.tables,
    };
    let granter = Granter {
        id: GRANTER,
        active: &mut world.active,
        shared: &mut world.shared,
    };
    world.maptrack.reserve_room(admit_all).expect("room");
    let (handle, _) = map(
        &mut world.maptrack,
        MAPPER,
        granter,
        &mut references,
        8,
        Access::Write,
        Kinds::BOTH,
    )
    .expect("granted");
    assert_eq!(
        references.table.info(GRANTED_FRAME).map(|f| f.type_count),
        Some(2)
    );
    let mut unmap_kind =
        |kinds: Kinds, references: &mut FrameTableReferences<'_, '_, FakeTables>| {
            let granter = Granter {
                id: GRANTER,
                active: &mut world.active,
                shared: &mut world.shared,
            };
            unmap(
                &mut world.maptrack,
                handle,
                kinds,
                Some(granter),
                references,
            )
        };
    unmap_kind(Kinds::HOST, &mut references).expect("the host half");
    // XSA-224: the host unmap drops exactly one writable reference.
    assert_eq!(
        references.table.info(GRANTED_FRAME).map(|f| f.type_count),
        Some(1)
    );
    unmap_kind(Kinds::HOST, &mut references).expect("nothing left to drop, ignored");
    assert_eq!(
        references.table.info(GRANTED_FRAME).map(|f| f.type_count),
        Some(1)
    );
    unmap_kind(Kinds::DEVICE, &mut references).expect("the device half");
    assert_eq!(
        references.table.info(GRANTED_FRAME).map(|f| f.type_count),
        Some(0)
    );
    assert_eq!(
        unmap_kind(Kinds::DEVICE, &mut references).map_err(|refusal| refusal.status),
        Err(GrantStatus::BadHandle)
    );
    assert_eq!(world.shared.flags(8), GrantFlags::PERMIT_ACCESS);
}

#[test]
fn a_reference_never_granted_is_refused() {
    let mut world = World::new();
    assert_eq!(
        status(world.map(4, Access::Read)),
        GrantStatus::GeneralError
    );
    assert_eq!(world.shared.flags(4), GrantFlags::empty(), "nothing set");
    assert_eq!(world.maptrack.in_use(), 0);
}

#[test]
fn a_reference_beyond_the_table_is_a_bad_gntref() {
    let mut world = World::new();
    assert_eq!(status(world.map(16, Access::Read)), GrantStatus::BadGntref);
    assert_eq!(
        status(world.map(u32::MAX, Access::Read)),
        GrantStatus::BadGntref
    );
}

#[test]
fn a_grant_to_another_domain_is_refused() {
    let mut world = World::new();
    world.shared.grant(2, OTHER, GRANTED_FRAME, false);
    assert_eq!(
        status(world.map(2, Access::Read)),
        GrantStatus::GeneralError
    );
    assert_eq!(world.shared.flags(2), GrantFlags::PERMIT_ACCESS);
}

#[test]
fn a_read_only_grant_maps_only_read_only() {
    let mut world = World::new();
    world.shared.grant(5, MAPPER, GRANTED_FRAME, true);
    assert_eq!(
        status(world.map(5, Access::Write)),
        GrantStatus::GeneralError
    );
    assert_eq!(world.frame(GRANTED_FRAME).type_count, 0);
    let (handle, _) = world.map(5, Access::Read).expect("read-only is allowed");
    assert!(world.shared.flags(5).contains(GrantFlags::READING));
    assert!(!world.shared.flags(5).contains(GrantFlags::WRITING));
    // Already pinned: the read-only bit is still checked for a writer.
    assert_eq!(
        status(world.map(5, Access::Write)),
        GrantStatus::GeneralError
    );
    world.unmap(handle).expect("ours");
}

#[test]
fn a_second_unmap_and_a_handle_out_of_range_are_bad_handles() {
    let mut world = World::new();
    world.shared.grant(1, MAPPER, GRANTED_FRAME, false);
    let (handle, _) = world.map(1, Access::Read).expect("granted");
    world.unmap(handle).expect("first unmap");
    let refs = world.frame(GRANTED_FRAME).ref_count;
    assert_eq!(status(world.unmap(handle)), GrantStatus::BadHandle);
    assert_eq!(status(world.unmap(7)), GrantStatus::BadHandle);
    assert_eq!(status(world.unmap(8)), GrantStatus::BadHandle);
    assert_eq!(status(world.unmap(u32::MAX)), GrantStatus::BadHandle);
    assert_eq!(
        world.frame(GRANTED_FRAME).ref_count,
        refs,
        "nothing dropped twice"
    );
}

#[test]
fn a_full_maptrack_is_no_device_space() {
    let mut world = World::new();
    world.shared.grant(1, MAPPER, GRANTED_FRAME, true);
    let handles: Vec<_> = (0..8)
        .map(|_| world.map(1, Access::Read).expect("room").0)
        .collect();
    assert_eq!(handles, (0..8).collect::<Vec<_>>());
    assert_eq!(
        status(world.map(1, Access::Read)),
        GrantStatus::NoDeviceSpace
    );
    assert_eq!(world.active.entry(1).map(|entry| entry.readers), Some(8));
    world.unmap(3).expect("ours");
    assert_eq!(world.map(1, Access::Read).expect("room again").0, 3);
}

#[test]
fn a_page_table_is_never_mapped_writable() {
    let mut world = World::new();
    world.make_page_table(SPARE_FRAME);
    world.shared.grant(6, MAPPER, SPARE_FRAME, false);
    assert_eq!(
        status(world.map(6, Access::Write)),
        GrantStatus::GeneralError
    );
    assert_eq!(
        world.shared.flags(6),
        GrantFlags::PERMIT_ACCESS,
        "bits cleared again"
    );
    assert_eq!(
        world.frame(SPARE_FRAME).ref_count,
        2,
        "allocation and pin only"
    );
    // Read-only, as the granter's own page tables are mapped, is fine.
    let (handle, _) = world.map(6, Access::Read).expect("read-only");
    world.unmap(handle).expect("ours");
}

#[test]
fn a_frame_mapped_writable_cannot_become_a_page_table() {
    let mut world = World::new();
    world.shared.grant(6, MAPPER, SPARE_FRAME, false);
    let (handle, _) = world.map(6, Access::Write).expect("granted");
    let mut table = FrameTable::new(&mut world.frames, [0; 16]);
    let pinned = table.pin(&mut world.tables, SPARE_FRAME, 1, GRANTER);
    assert!(
        pinned.is_err(),
        "frame-table invariant 2 holds through the grant"
    );
    world.unmap(handle).expect("ours");
}

#[test]
fn an_entry_in_use_by_one_domain_cannot_be_pinned_by_another() {
    let mut world = World::new();
    world.shared.grant(2, MAPPER, GRANTED_FRAME, false);
    let (handle, _) = world.map(2, Access::Read).expect("granted");
    // The granter rewrites the entry for another domain while mapped.
    world.shared.grant(2, OTHER, SPARE_FRAME, false);
    assert_eq!(
        status(world.map_as(OTHER, 2, Access::Read)),
        GrantStatus::GeneralError
    );
    // The mapper's next pin uses the frame fixed at the first pin.
    let (second, frame) = world.map(2, Access::Read).expect("still pinned for us");
    assert_eq!(frame, GRANTED_FRAME);
    world.unmap(second).expect("ours");
    world.unmap(handle).expect("ours");
}

#[test]
fn a_granter_that_keeps_changing_its_entry_is_refused() {
    let mut world = World::new();
    world.shared.grant(1, MAPPER, GRANTED_FRAME, false);
    world.shared.unstable = true;
    assert_eq!(
        status(world.map(1, Access::Read)),
        GrantStatus::GeneralError
    );
    assert_eq!(world.maptrack.in_use(), 0);
    assert!(!world.active.entry(1).is_some_and(ActiveEntry::is_pinned));
}

#[test]
fn a_granted_frame_the_granter_does_not_own_is_refused() {
    let mut world = World::new();
    world.shared.grant(1, MAPPER, MAPPER_FRAME, false);
    assert_eq!(
        status(world.map(1, Access::Read)),
        GrantStatus::GeneralError
    );
    assert_eq!(world.shared.flags(1), GrantFlags::PERMIT_ACCESS);
    assert_eq!(world.frame(MAPPER_FRAME).ref_count, 1);
}

#[test]
fn a_mapping_keeps_the_frame_when_the_granter_is_gone() {
    let mut world = World::new();
    world.shared.grant(1, MAPPER, GRANTED_FRAME, false);
    let (handle, _) = world.map(1, Access::Write).expect("granted");
    let mut table = FrameTable::new(&mut world.frames, [0; 16]);
    let released = table.release(GRANTED_FRAME, Owner::Domain(GRANTER));
    assert!(released.is_err(), "the granter cannot free a mapped frame");
    let mut references = FrameTableReferences {
        table: &mut table,
        memory: &mut world.tables,
    };
    // The granter was destroyed: its active entries went with it.
    unmap::<FakeShared>(
        &mut world.maptrack,
        handle,
        Kinds::HOST,
        None,
        &mut references,
    )
    .expect("ours");
    table
        .release(GRANTED_FRAME, Owner::Domain(GRANTER))
        .expect("free once unmapped");
}

#[test]
fn copies_check_extents_owners_and_types() {
    assert_eq!(check_copy_extent(0, 0, 4096), Ok(()));
    assert_eq!(check_copy_extent(4095, 0, 1), Ok(()));
    assert_eq!(
        check_copy_extent(4095, 0, 2).map_err(|refusal| refusal.status),
        Err(GrantStatus::BadCopyArg)
    );
    assert_eq!(
        check_copy_extent(0, 0xffff, 0xffff).map_err(|refusal| refusal.status),
        Err(GrantStatus::BadCopyArg)
    );

    let mut world = World::new();
    let foreign = CopySide::Local {
        frame: GRANTED_FRAME,
    };
    assert_eq!(
        status(world.copy(MAPPER, foreign, Access::Read)),
        GrantStatus::BadPage
    );
    world.make_page_table(SPARE_FRAME);
    let own_table = CopySide::Local { frame: SPARE_FRAME };
    assert_eq!(
        status(world.copy(GRANTER, own_table, Access::Write)),
        GrantStatus::GeneralError
    );
    world.shared.grant(2, MAPPER, GRANTED_FRAME, true);
    let granted = CopySide::Granted { reference: 2 };
    assert_eq!(
        status(world.copy(MAPPER, granted, Access::Write)),
        GrantStatus::GeneralError
    );
    let frame = world.copy(MAPPER, granted, Access::Read).expect("readable");
    assert!(world.shared.flags(2).contains(GrantFlags::READING));
    let mut table = FrameTable::new(&mut world.frames, [0; 16]);
    let mut references = FrameTableReferences {
        table: &mut table,
        memory: &mut world.tables,
    };
    let granter = Granter {
        id: GRANTER,
        active: &mut world.active,
        shared: &mut world.shared,
    };
    release_after_copy(granted, frame, Some(granter), &mut references, Access::Read);
    assert!(!world.shared.flags(2).contains(GrantFlags::READING));
    assert_eq!(world.frame(GRANTED_FRAME).ref_count, 1);
}

#[test]
fn a_domain_grant_frame_limit_is_its_own_or_the_hosts_and_never_above_the_hosts() {
    assert_eq!(domain_grant_frame_limit(0, 64), Some(64));
    assert_eq!(domain_grant_frame_limit(1, 64), Some(1));
    assert_eq!(domain_grant_frame_limit(64, 64), Some(64));
    assert_eq!(domain_grant_frame_limit(65, 64), None);
    assert_eq!(domain_grant_frame_limit(4, 2), None);
}
