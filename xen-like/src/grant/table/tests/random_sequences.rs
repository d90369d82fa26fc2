//! Random sequences of grant operations on a small machine, with the
//! invariant oracle after every step.
//!
//! A seeded generator plays one granter and two mappers at once: the
//! granter writes and revokes entries (honestly, with the protocol's
//! compare-and-exchange, and dishonestly, rewriting grantee, frame and
//! read-only bit of entries in use), pins and unpins its frames as page
//! tables and tries to give frames back; the mappers map and unmap (good
//! and bad handles, read-only and writable), and copy. The real frame table
//! keeps the counts. After every step [`check_invariants`] checks
//! invariants 2 to 6 of the grant module against the maptracks, the active
//! entries, the shared entries and the frame table. Each seed must reach
//! minimum counts of accepted maps and of each kind of refusal, so that
//! the test fails if the generator or the rules make it vacuous.

use std::collections::BTreeMap;

use super::{FakeShared, FakeTables};
use crate::grant::table::{
    acquire_for_copy, map, release_after_copy, unmap, Access, ActiveTable, CopySide,
    FrameTableReferences, Granter, Kinds, Maptrack,
};
use crate::mm::frame_table::{FrameInfo, FrameTable, Mfn, Owner, PageType};
use hypercall_abi::grant_table::{GrantFlags, GrantStatus};

use crate::mm::frame_table::DomainId;
use hypercall_abi::splitmix::SplitMix64 as Rng;

const GRANTER: DomainId = 1;
const MAPPERS: [DomainId; 2] = [2, 3];
/// Frames 8..16 are the granter's; 16..20 the first mapper's.
const GRANTER_FRAMES: std::ops::Range<Mfn> = 8..16;
const MACHINE_FRAMES: usize = 24;
const ENTRIES: usize = 24;
const MAPTRACK_LIMIT: u32 = 10;
const STEPS: usize = 3_000;

struct Machine {
    frames: Vec<FrameInfo>,
    tables: FakeTables,
    shared: FakeShared,
    active: ActiveTable,
    maptracks: BTreeMap<DomainId, Maptrack>,
    /// The granter's frames it pinned as L1 tables.
    pinned: Vec<Mfn>,
}

#[derive(Default, Debug)]
struct Tally {
    maps: usize,
    unmaps: usize,
    copies: usize,
    refusals: BTreeMap<i16, usize>,
    blocked_releases: usize,
}

impl Machine {
    fn new() -> Self {
        let mut frames = vec![FrameInfo::FREE; MACHINE_FRAMES];
        for mfn in GRANTER_FRAMES {
            frames[mfn as usize] = FrameInfo {
                owner: Owner::Domain(GRANTER),
                ref_count: 1,
                ..FrameInfo::FREE
            };
        }
        for frame in &mut frames[16..20] {
            *frame = FrameInfo {
                owner: Owner::Domain(MAPPERS[0]),
                ref_count: 1,
                ..FrameInfo::FREE
            };
        }
        Self {
            frames,
            tables: FakeTables::default(),
            shared: FakeShared::new(ENTRIES),
            active: super::active_entries(ENTRIES as u32),
            maptracks: MAPPERS
                .iter()
                .map(|&id| (id, Maptrack::new(MAPTRACK_LIMIT)))
                .collect(),
            pinned: Vec::new(),
        }
    }
}

fn any_frame(rng: &mut Rng) -> Mfn {
    if rng.chance(80) {
        GRANTER_FRAMES.start + rng.below(GRANTER_FRAMES.end - GRANTER_FRAMES.start)
    } else {
        rng.below(MACHINE_FRAMES as u64 + 4)
    }
}

fn any_domain(rng: &mut Rng) -> DomainId {
    match rng.below(10) {
        0..=5 => MAPPERS[0],
        6..=8 => MAPPERS[1],
        _ => 7,
    }
}

fn access(rng: &mut Rng) -> Access {
    if rng.chance(50) {
        Access::Read
    } else {
        Access::Write
    }
}

fn kinds(rng: &mut Rng) -> Kinds {
    match rng.below(10) {
        0..=5 => Kinds::HOST,
        6..=7 => Kinds::DEVICE,
        _ => Kinds::BOTH,
    }
}

fn step(rng: &mut Rng, machine: &mut Machine, tally: &mut Tally) {
    let reference = rng.below(ENTRIES as u64 + 2) as u32;
    let Machine {
        frames,
        tables,
        shared,
        active,
        maptracks,
        pinned,
    } = machine;
    let mut table = FrameTable::new(frames, [0; 16]);
    let mut refuse = |status: GrantStatus| *tally.refusals.entry(status.raw()).or_default() += 1;
    match rng.below(100) {
        // The granter grants an entry it may reuse (honest).
        0..=19 => {
            let reference = reference % ENTRIES as u32;
            if shared.revoke(reference) {
                let frame = any_frame(rng);
                shared.grant(reference, any_domain(rng), frame, rng.chance(30));
            }
        }
        // The granter revokes honestly.
        20..=24 => {
            let _ = shared.revoke(reference % ENTRIES as u32);
        }
        // The granter rewrites an entry whatever its state (dishonest),
        // keeping the hypervisor's status bits as they are.
        25..=29 => {
            let reference = (reference % ENTRIES as u32) as usize;
            let status = shared.entries[reference].0
                & u32::from((GrantFlags::READING | GrantFlags::WRITING).bits());
            let mut flags = GrantFlags::PERMIT_ACCESS;
            if rng.chance(50) {
                flags |= GrantFlags::READONLY;
            }
            let header = u32::from(flags.bits()) | (u32::from(any_domain(rng)) << 16);
            shared.entries[reference] = (header | status, any_frame(rng) as u32);
        }
        // The granter pins or unpins a frame as an L1 table.
        30..=37 => {
            let frame = GRANTER_FRAMES.start + rng.below(8);
            if let Some(position) = pinned.iter().position(|&mfn| mfn == frame) {
                let _flush = table.unpin(tables, frame, GRANTER).expect("pinned by us");
                pinned.remove(position);
            } else if table.pin(tables, frame, 1, GRANTER).is_ok() {
                pinned.push(frame);
            }
        }
        // The granter gives a frame back (and gets it again at once).
        38..=41 => {
            let frame = GRANTER_FRAMES.start + rng.below(8);
            match table.release(frame, Owner::Domain(GRANTER)) {
                Ok(()) => table
                    .assign(frame, Owner::Domain(GRANTER))
                    .expect("just freed"),
                Err(_) => tally.blocked_releases += 1,
            }
        }
        // A mapper maps.
        42..=71 => {
            let mapper = MAPPERS[rng.below(2) as usize];
            let maptrack = maptracks.get_mut(&mapper).expect("a mapper");
            let mut references = FrameTableReferences {
                table: &mut table,
                memory: tables,
            };
            let granter = Granter {
                id: GRANTER,
                active,
                shared,
            };
            if let Err(refusal) = maptrack.reserve_room(super::admit_all) {
                refuse(refusal.status);
                return;
            }
            match map(
                maptrack,
                mapper,
                granter,
                &mut references,
                reference,
                access(rng),
                kinds(rng),
            ) {
                Ok(_) => tally.maps += 1,
                Err(refusal) => refuse(refusal.status),
            }
        }
        // A mapper unmaps, sometimes a handle that is not in use.
        72..=89 => {
            let mapper = MAPPERS[rng.below(2) as usize];
            let maptrack = maptracks.get_mut(&mapper).expect("a mapper");
            let handle = rng.below(u64::from(MAPTRACK_LIMIT) + 3) as u32;
            let mut references = FrameTableReferences {
                table: &mut table,
                memory: tables,
            };
            let granter = Granter {
                id: GRANTER,
                active,
                shared,
            };
            let kinds = kinds(rng);
            match unmap(maptrack, handle, kinds, Some(granter), &mut references) {
                Ok(_) => tally.unmaps += 1,
                Err(refusal) => refuse(refusal.status),
            }
        }
        // A mapper copies to or from a grant, or from a frame.
        _ => {
            let caller = MAPPERS[rng.below(2) as usize];
            let side = if rng.chance(70) {
                CopySide::Granted { reference }
            } else {
                CopySide::Local {
                    frame: any_frame(rng),
                }
            };
            let access = access(rng);
            let mut references = FrameTableReferences {
                table: &mut table,
                memory: tables,
            };
            let granter = Granter {
                id: GRANTER,
                active: &mut *active,
                shared: &mut *shared,
            };
            match acquire_for_copy(caller, side, Some(granter), &mut references, access) {
                Ok(frame) => {
                    let granter = Granter {
                        id: GRANTER,
                        active,
                        shared,
                    };
                    release_after_copy(side, frame, Some(granter), &mut references, access);
                    tally.copies += 1;
                }
                Err(refusal) => refuse(refusal.status),
            }
        }
    }
}

/// Invariants 2 to 6 of the grant module.
fn check_invariants(machine: &Machine, step: usize) {
    let mut readers = [0u16; ENTRIES];
    let mut writers = [0u16; ENTRIES];
    let mut general = [0u32; MACHINE_FRAMES];
    let mut writable = [0u32; MACHINE_FRAMES];
    for (&mapper, maptrack) in &machine.maptracks {
        assert!(
            maptrack.in_use() <= maptrack.limit(),
            "step {step}: maptrack over its limit"
        );
        assert_eq!(maptrack.mappings().count() as u32, maptrack.in_use());
        for (_, mapping) in maptrack.mappings() {
            let reference = mapping.reference as usize;
            let entry = machine.active.entries()[reference];
            // Invariant 2: a pinned entry is used by one domain, for one frame.
            assert_eq!(
                entry.mapper, mapper,
                "step {step}: entry {reference} shared by two mappers"
            );
            assert_eq!(
                entry.frame, mapping.frame,
                "step {step}: mapping and entry disagree"
            );
            // Each kind (host, device) holds a pin and references.
            let held = mapping.kinds.count();
            assert!(held > 0, "step {step}: a maptrack entry with no kind left");
            general[mapping.frame as usize] += u32::from(held);
            match mapping.access {
                Access::Read => readers[reference] += held,
                Access::Write => {
                    writers[reference] += held;
                    writable[mapping.frame as usize] += u32::from(held);
                }
            }
        }
    }
    for (reference, entry) in machine.active.entries().iter().enumerate() {
        // Invariant 6: counts equal mappings (no copy is in progress here).
        assert_eq!(
            (entry.readers, entry.writers),
            (readers[reference], writers[reference]),
            "step {step}: pins of entry {reference}"
        );
        let flags = machine.shared.flags(reference as u32);
        assert_eq!(
            flags.contains(GrantFlags::READING),
            entry.is_pinned(),
            "step {step}: GTF_reading of entry {reference}"
        );
        assert_eq!(
            flags.contains(GrantFlags::WRITING),
            entry.writers > 0,
            "step {step}: GTF_writing of entry {reference}"
        );
    }
    for (mfn, frame) in machine.frames.iter().enumerate() {
        let pin = u32::from(machine.pinned.contains(&(mfn as Mfn)));
        let allocation = u32::from(frame.owner != Owner::Free);
        // Invariant 1 (the frame side): one reference per mapping.
        assert_eq!(
            frame.ref_count,
            allocation + pin + general[mfn],
            "step {step}: references of frame {mfn}"
        );
        // Invariant 4: writable mappings hold the Writable type.
        if writable[mfn] > 0 {
            assert_eq!(
                frame.page_type,
                PageType::Writable,
                "step {step}: frame {mfn}"
            );
            assert_eq!(frame.type_count, writable[mfn], "step {step}: frame {mfn}");
            assert!(
                pin == 0,
                "step {step}: a pinned page table is mapped writable"
            );
        }
    }
}

#[test]
fn random_grant_sequences_keep_the_invariants() {
    for seed in 1..=8u64 {
        let mut rng = Rng::new(seed);
        let mut machine = Machine::new();
        let mut tally = Tally::default();
        for index in 0..STEPS {
            step(&mut rng, &mut machine, &mut tally);
            check_invariants(&machine, index);
        }
        let refusals =
            |status: GrantStatus| tally.refusals.get(&status.raw()).copied().unwrap_or(0);
        assert!(tally.maps >= 120, "seed {seed}: too few maps: {tally:?}");
        assert!(
            tally.unmaps >= 100,
            "seed {seed}: too few unmaps: {tally:?}"
        );
        assert!(tally.copies >= 20, "seed {seed}: too few copies: {tally:?}");
        assert!(tally.blocked_releases >= 5, "seed {seed}: {tally:?}");
        for status in [
            GrantStatus::GeneralError,
            GrantStatus::BadGntref,
            GrantStatus::BadHandle,
            GrantStatus::NoDeviceSpace,
            GrantStatus::BadPage,
        ] {
            assert!(
                refusals(status) >= 3,
                "seed {seed}: too few {status:?}: {tally:?}"
            );
        }
    }
}
