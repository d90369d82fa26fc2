//! Random sequences of frame-table operations on a small machine, with the
//! invariant oracle after every step.
//!
//! The hand-written tests of the parent module check one rule at a time.
//! Here a seeded generator plays a guest kernel, a privileged domain
//! builder, the MMU and the hypervisor all at once, for thousands of steps:
//! raw writes into frames that are not page tables (as a guest writes
//! through its own writable mappings), `mmu_update` with and without
//! `MMU_PT_UPDATE_PRESERVE_AD`, foreign `mmu_update`, pins and unpins at
//! every level, `new_baseptr`, the hypervisor's holds (invariant 6),
//! `MMUEXT_CLEAR_PAGE`, `decrease_reservation` and the allocator handing
//! frames out. After every step [`check_invariants_with`] must
//! hold, and a step the frame table refuses must have changed nothing.
//!
//! The generator is biased so that deep trees form: every frame has a
//! *role* (an L4, L3, L2 or L1 candidate, or data) and entries mostly point
//! from a role to the role one level down, so pinning an L4 usually
//! validates a whole tree down to mapped data pages. Some entries are
//! wrong on purpose (reserved bits, superpages, foreign or missing frames,
//! writable mappings of tables), so refusals are exercised too. Each seed
//! must reach minimum counts of accepted deep pins and of refusals, so the
//! test fails if a change to the generator or the rules makes it vacuous.
//!
//! The PRNG is a SplitMix64 of a few lines: the sequences are reproducible
//! from the seed alone, and no dependency is needed.

use std::collections::{BTreeMap, HashMap};

use super::{check_invariants_with, pte, Domains, FakeMemory};
use crate::mm::frame_table::{
    check_entry_bits, entry_target, is_hypervisor_slot, is_present, DomainId, FrameInfo,
    FrameTable, Mfn, Owner, PageType, Refusal, TableMemory, ENTRIES_PER_TABLE,
    FIRST_HYPERVISOR_L4_SLOT, HYPERVISOR_L4_SLOT_COUNT, PTE_ACCESSED, PTE_DIRTY, PTE_GLOBAL,
};
use crate::mm::pagewalk::{PTE_NO_EXECUTE, PTE_PAGE_SIZE, PTE_PRESENT, PTE_USER, PTE_WRITABLE};
use hypercall_abi::splitmix::SplitMix64 as Rng;

/// Machine frames in the simulated machine.
const MACHINE_FRAMES: u64 = 96;
/// The privileged domain: it may map the guest's frames (foreign mappings).
const PRIVILEGED: DomainId = 1;
/// An unprivileged guest.
const GUEST: DomainId = 2;
/// Both domains.
const DOMAINS: [DomainId; 2] = [PRIVILEGED, GUEST];
/// Both domains have records; the privileged one may map the other's
/// frames (the caller's privilege check, which the frame table leaves to
/// it).
const MACHINE_DOMAINS: Domains = Domains {
    records: &[PRIVILEGED, GUEST],
    privileged: &[PRIVILEGED],
};
/// Steps per seed.
const STEPS: usize = 4_000;

/// The level of table a frame is meant to be (0: a data page). Entries
/// mostly point from role `n` to role `n - 1`, which builds trees without
/// cycles; other targets are chosen too, but rarely.
fn role(mfn: Mfn) -> u8 {
    match mfn % 10 {
        0 => 4,
        1 => 3,
        2 | 3 => 2,
        4..=6 => 1,
        _ => 0,
    }
}

/// The operations the generator draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// The guest writes a frame that is not a page table in use.
    GuestWrite,
    /// The MMU sets accessed (and dirty) bits in a validated table.
    HardwareAccessedDirty,
    /// `mmu_update` (`MMU_NORMAL_PT_UPDATE` or `MMU_PT_UPDATE_PRESERVE_AD`).
    Update,
    /// `mmu_update` by the privileged domain, naming the guest's frames.
    UpdateForeign,
    /// `MMUEXT_PIN_Lx_TABLE`.
    Pin,
    /// `MMUEXT_UNPIN_TABLE`.
    Unpin,
    /// `MMUEXT_NEW_BASEPTR` (kernel or user base).
    SwitchBase,
    /// Domain destruction drops a base pointer.
    DropBase,
    /// The hypervisor starts writing a frame on its own (invariant 6).
    Hold,
    /// ... and stops.
    ReleaseHold,
    /// `MMUEXT_CLEAR_PAGE`: a `Writable` type taken for the zeroing.
    ClearPage,
    /// `decrease_reservation`: an owner gives a frame back.
    Release,
    /// The allocator hands a free frame to a domain or the hypervisor.
    Assign,
}

/// The draw: each step with its weight.
const WEIGHTS: [(Step, u64); 13] = [
    (Step::GuestWrite, 30),
    (Step::HardwareAccessedDirty, 4),
    (Step::Update, 22),
    (Step::UpdateForeign, 5),
    (Step::Pin, 12),
    (Step::Unpin, 7),
    (Step::SwitchBase, 5),
    (Step::DropBase, 1),
    (Step::Hold, 3),
    (Step::ReleaseHold, 2),
    (Step::ClearPage, 3),
    (Step::Release, 4),
    (Step::Assign, 4),
];

/// What the test keeps besides the frame table: what the hypervisor's
/// callers record (base pointers, holds), and statistics.
#[derive(Default)]
struct Model {
    /// Kernel and user base pointer of each domain.
    bases: BTreeMap<(DomainId, usize), Mfn>,
    /// Frames the hypervisor holds (invariant 6).
    held: Vec<Mfn>,
    /// Accepted and refused count of each step (None-result steps count as
    /// accepted).
    outcomes: BTreeMap<Step, (u64, u64)>,
    /// Why steps were refused, and how often.
    reasons: BTreeMap<&'static str, u64>,
    /// Accepted L4 pins and base switches, by the depth of the tree they
    /// validated (4: down to a mapped page through L3, L2 and L1).
    l4_depths: [u64; 5],
    /// Most page tables validated at once.
    most_validated: usize,
}

impl Model {
    fn bases(&self) -> Vec<Mfn> {
        self.bases.values().copied().collect()
    }
}

/// The frames `owner` owns now.
fn owned(table: &FrameTable, owner: Owner) -> Vec<Mfn> {
    (0..table.frame_count())
        .filter(|&mfn| table.info(mfn).is_some_and(|frame| frame.owner == owner))
        .collect()
}

/// The frames of `domain` whose role is `role`.
fn owned_with_role(table: &FrameTable, domain: DomainId, wanted: u8) -> Vec<Mfn> {
    owned(table, Owner::Domain(domain))
        .into_iter()
        .filter(|&mfn| role(mfn) == wanted)
        .collect()
}

/// Whether `mfn` is a page table in use (validated, type count > 0).
fn is_table_in_use(table: &FrameTable, mfn: Mfn) -> bool {
    table
        .info(mfn)
        .is_some_and(|frame| frame.page_type.table_level().is_some() && frame.type_count > 0)
}

/// The tables of `domain` in use now.
fn tables_in_use(table: &FrameTable, domain: DomainId) -> Vec<Mfn> {
    owned(table, Owner::Domain(domain))
        .into_iter()
        .filter(|&mfn| is_table_in_use(table, mfn))
        .collect()
}

/// Any frame number, now and then one beyond the end of memory.
fn any_frame(rng: &mut Rng) -> Mfn {
    if rng.chance(5) {
        MACHINE_FRAMES + rng.below(4)
    } else {
        rng.below(MACHINE_FRAMES)
    }
}

/// An entry index, mostly among the first few (so that writes meet), with
/// the hypervisor's L4 slots, the last entry and indices beyond the table
/// now and then (`beyond`: may be 512 or more).
fn entry_index(rng: &mut Rng, beyond: bool) -> usize {
    match rng.below(100) {
        0..=69 => rng.below(4) as usize,
        70..=79 => FIRST_HYPERVISOR_L4_SLOT + rng.below(HYPERVISOR_L4_SLOT_COUNT as u64) as usize,
        80..=89 => rng.below(ENTRIES_PER_TABLE as u64) as usize,
        90..=94 => ENTRIES_PER_TABLE - 1,
        _ if beyond => ENTRIES_PER_TABLE + rng.below(8) as usize,
        _ => 0,
    }
}

/// An entry for a table of `level` owned by `domain`, whose leaf mappings
/// name frames of `page_owner`: mostly a well-formed entry pointing one
/// role down, sometimes not present, sometimes wrong in one way.
fn entry_value(
    rng: &mut Rng,
    table: &FrameTable,
    level: u8,
    domain: DomainId,
    page_owner: DomainId,
) -> u64 {
    match rng.below(100) {
        0..=7 => return 0,
        8..=10 => return rng.next_u64() & !PTE_PRESENT,
        _ => {}
    }
    let owner = if level == 1 { page_owner } else { domain };
    let target = match rng.below(100) {
        0..=74 => {
            let wanted = level.saturating_sub(1);
            rng.pick(&owned_with_role(table, owner, wanted))
        }
        75..=84 => rng.pick(&owned(table, Owner::Domain(owner))),
        85..=89 => {
            let other = if owner == PRIVILEGED {
                GUEST
            } else {
                PRIVILEGED
            };
            rng.pick(&owned(table, Owner::Domain(other)))
        }
        _ => None,
    }
    .unwrap_or_else(|| any_frame(rng));
    let mut flags = PTE_PRESENT;
    let writable_percent = if level == 1 { 50 } else { 85 };
    for (bit, percent) in [
        (PTE_WRITABLE, writable_percent),
        (PTE_USER, 50),
        (PTE_ACCESSED, 20),
        (PTE_DIRTY, 10),
        (PTE_NO_EXECUTE, 5),
        // Refused or level-dependent bits: rare, or no tree would validate.
        (PTE_PAGE_SIZE, 2),
        (PTE_GLOBAL, 3),
        (1 << (52 + rng.below(11)), 2),
    ] {
        if rng.chance(percent) {
            flags |= bit;
        }
    }
    pte(target, flags)
}

/// The frame-table state that a refused step must leave as it was: all of
/// it, except that a frame's type and validated flag are history while its
/// type count is 0 (nothing relies on them, and the next type reference
/// sets both afresh). A refused validation may leave such history behind:
/// a child table validated and then devalidated when a later entry of its
/// parent was refused keeps the type it had for a moment, as an unpinned
/// table keeps its type.
fn frame_states(table: &FrameTable) -> Vec<FrameInfo> {
    (0..table.frame_count())
        .map(|mfn| {
            let frame = *table.info(mfn).unwrap();
            if frame.type_count == 0 {
                FrameInfo {
                    page_type: PageType::None,
                    validated: false,
                    ..frame
                }
            } else {
                frame
            }
        })
        .collect()
}

/// A refused step changed nothing: every frame's state is the same, and
/// memory is the same except for what validation writes into a candidate
/// table before it finds the entry it refuses (as Xen does): the user bit
/// added to present entries, and the hypervisor's entries in an L4's slots
/// 256..=271. Neither changes what any mapping allows the guest.
fn assert_unchanged(
    step: Step,
    refusal: Refusal,
    before: &(Vec<FrameInfo>, HashMap<(Mfn, usize), u64>),
    table: &FrameTable,
    memory: &FakeMemory,
) {
    let (frames_before, memory_before) = before;
    let frames_after = frame_states(table);
    for (mfn, (old, new)) in frames_before.iter().zip(&frames_after).enumerate() {
        assert_eq!(
            old, new,
            "refused {step:?} ({}) changed frame {mfn}",
            refusal.reason
        );
    }
    let keys = memory_before.keys().chain(memory.entries.keys());
    for &(mfn, index) in keys {
        let old = memory_before.get(&(mfn, index)).copied().unwrap_or(0);
        let new = memory.read_entry(mfn, index);
        let normalised = new == old
            || (is_present(old) && new == old | PTE_USER)
            || (is_hypervisor_slot(4, index)
                && new == table.hypervisor_slots[index - FIRST_HYPERVISOR_L4_SLOT]);
        assert!(
            normalised,
            "refused {step:?} ({}) changed entry {mfn}[{index}] from {old:#x} to {new:#x}",
            refusal.reason
        );
    }
}

/// Beyond the parent's oracle: every entry of a table in use is stored as
/// the entry rules would store it (no refused bit slipped in through a
/// path that skipped them, the user bit set).
fn check_stored_entries(table: &FrameTable, memory: &FakeMemory) {
    // Entries never written read as 0, which every rule accepts: looking
    // at the written ones is enough, and much faster than 512 per table.
    for (&(mfn, index), &entry) in &memory.entries {
        let frame = table.info(mfn).unwrap();
        let Some(level) = frame.page_type.table_level() else {
            continue;
        };
        if frame.type_count == 0 || is_hypervisor_slot(level, index) {
            continue;
        }
        assert_eq!(
            check_entry_bits(level, entry),
            Ok(entry),
            "entry {mfn}[{index}] of an L{level} in use breaks the entry rules"
        );
    }
}

/// How many table levels the longest chain of present entries under
/// `table` (of `level`) goes through before it reaches a mapped page.
fn tree_depth(memory: &FakeMemory, table: Mfn, level: u8) -> u8 {
    let mut deepest = 0;
    for index in 0..ENTRIES_PER_TABLE {
        if is_hypervisor_slot(level, index) {
            continue;
        }
        let entry = memory.read_entry(table, index);
        if !is_present(entry) {
            continue;
        }
        let depth = if level == 1 {
            1
        } else {
            match tree_depth(memory, entry_target(entry), level - 1) {
                0 => 0,
                below => below + 1,
            }
        };
        deepest = deepest.max(depth);
    }
    deepest
}

/// Draws one step and runs it. Returns the step and, for steps the frame
/// table may refuse, its result.
fn run_step(
    rng: &mut Rng,
    table: &mut FrameTable,
    memory: &mut FakeMemory,
    model: &mut Model,
) -> (Step, Option<Result<(), Refusal>>) {
    let total: u64 = WEIGHTS.iter().map(|&(_, weight)| weight).sum();
    let mut draw = rng.below(total);
    let step = WEIGHTS
        .iter()
        .find(|&&(_, weight)| {
            let here = draw < weight;
            draw = draw.saturating_sub(weight);
            here
        })
        .map(|&(step, _)| step)
        .unwrap();
    let domain = rng.pick(&DOMAINS).unwrap();
    let result = match step {
        Step::GuestWrite => {
            // The guest writes only frames it could map writable: its own,
            // not in use as page tables.
            let writable: Vec<Mfn> = owned(table, Owner::Domain(domain))
                .into_iter()
                .filter(|&mfn| !is_table_in_use(table, mfn))
                .collect();
            if let Some(mfn) = rng.pick(&writable) {
                let level = match role(mfn) {
                    0 => 1 + rng.below(4) as u8,
                    level => level,
                };
                let value = entry_value(rng, table, level, domain, domain);
                memory.write_entry(mfn, entry_index(rng, false), value);
            }
            None
        }
        Step::HardwareAccessedDirty => {
            if let Some(mfn) = rng.pick(&tables_in_use(table, domain)) {
                let level = table.info(mfn).unwrap().page_type.table_level().unwrap();
                let index = entry_index(rng, false);
                let entry = memory.read_entry(mfn, index);
                if is_present(entry) && !is_hypervisor_slot(level, index) {
                    let dirty = if level == 1 && entry & PTE_WRITABLE != 0 {
                        PTE_DIRTY
                    } else {
                        0
                    };
                    memory.write_entry(mfn, index, entry | PTE_ACCESSED | dirty);
                }
            }
            None
        }
        Step::Update | Step::UpdateForeign => {
            let (domain, page_owner) = if step == Step::Update {
                (domain, domain)
            } else if rng.chance(90) {
                (PRIVILEGED, GUEST)
            } else {
                (PRIVILEGED, PRIVILEGED)
            };
            let target_table = rng
                .pick(&tables_in_use(table, domain))
                .filter(|_| rng.chance(90))
                .unwrap_or_else(|| any_frame(rng));
            let level = table
                .info(target_table)
                .and_then(|frame| frame.page_type.table_level())
                .unwrap_or(1);
            let level = if step == Step::UpdateForeign && rng.chance(80) {
                1
            } else {
                level
            };
            let target_table = if step == Step::UpdateForeign && level == 1 {
                let l1s: Vec<Mfn> = tables_in_use(table, domain)
                    .into_iter()
                    .filter(|&mfn| table.info(mfn).unwrap().page_type == PageType::L1)
                    .collect();
                rng.pick(&l1s).unwrap_or(target_table)
            } else {
                target_table
            };
            let value = entry_value(rng, table, level, domain, page_owner);
            let index = entry_index(rng, true);
            let preserve_ad = rng.chance(30);
            Some(
                table
                    .update_entry_foreign(
                        memory,
                        target_table,
                        index,
                        value,
                        domain,
                        page_owner,
                        preserve_ad,
                    )
                    .map(|_flush| ()),
            )
        }
        Step::Pin => {
            let (mfn, level) = if rng.chance(75) {
                let wanted = 1 + rng.below(4) as u8;
                let level = if rng.chance(50) { 4 } else { wanted };
                let candidate = rng
                    .pick(&owned_with_role(table, domain, level))
                    .unwrap_or_else(|| any_frame(rng));
                (candidate, level)
            } else {
                (any_frame(rng), rng.below(6) as u8)
            };
            let result = table.pin(memory, mfn, level, domain);
            if result.is_ok() && level == 4 {
                model.l4_depths[tree_depth(memory, mfn, 4) as usize] += 1;
            }
            Some(result)
        }
        Step::Unpin => {
            let pinned: Vec<Mfn> = owned(table, Owner::Domain(domain))
                .into_iter()
                .filter(|&mfn| table.info(mfn).unwrap().pinned)
                .collect();
            let mfn = rng
                .pick(&pinned)
                .filter(|_| rng.chance(85))
                .unwrap_or_else(|| any_frame(rng));
            Some(table.unpin(memory, mfn, domain).map(|_flush| ()))
        }
        Step::SwitchBase => {
            let slot = rng.below(2) as usize;
            let old = model.bases.get(&(domain, slot)).copied();
            let new = rng
                .pick(&owned_with_role(table, domain, 4))
                .filter(|_| rng.chance(85))
                .unwrap_or_else(|| any_frame(rng));
            let result = table.switch_base(memory, new, old, domain);
            if result.is_ok() {
                model.bases.insert((domain, slot), new);
                model.l4_depths[tree_depth(memory, new, 4) as usize] += 1;
            }
            Some(result)
        }
        Step::DropBase => {
            let slot = rng.below(2) as usize;
            if let Some(base) = model.bases.remove(&(domain, slot)) {
                // What `domain::destroy` does with each base pointer.
                let _flush = table.put_page_type(memory, base);
                table.put_page(base);
            }
            None
        }
        Step::Hold => {
            let mfn = rng
                .pick(&owned_with_role(table, domain, 0))
                .filter(|_| rng.chance(70))
                .unwrap_or_else(|| any_frame(rng));
            let result = table.hold_for_hypervisor(memory, mfn, domain);
            if result.is_ok() {
                model.held.push(mfn);
            }
            Some(result)
        }
        Step::ReleaseHold => {
            if !model.held.is_empty() {
                let mfn = model
                    .held
                    .swap_remove(rng.below(model.held.len() as u64) as usize);
                table.release_hypervisor_hold(memory, mfn);
            }
            None
        }
        Step::ClearPage => {
            // What `mm::frame_table::clear_page` does around the zeroing.
            let mfn = rng
                .pick(&owned(table, Owner::Domain(domain)))
                .filter(|_| rng.chance(90))
                .unwrap_or_else(|| any_frame(rng));
            let result = table.get_page_type(memory, mfn, PageType::Writable, domain);
            if result.is_ok() {
                for index in 0..ENTRIES_PER_TABLE {
                    memory.entries.remove(&(mfn, index));
                }
                let _no_flush = table.put_page_type(memory, mfn);
            }
            Some(result)
        }
        Step::Release => {
            let mfn = any_frame(rng);
            let owner = match table.info(mfn) {
                Some(frame) if rng.chance(85) => frame.owner,
                _ => rng
                    .pick(&[
                        Owner::Free,
                        Owner::Hypervisor,
                        Owner::Domain(PRIVILEGED),
                        Owner::Domain(GUEST),
                    ])
                    .unwrap(),
            };
            Some(table.release(mfn, owner))
        }
        Step::Assign => {
            let free = owned(table, Owner::Free);
            let mfn = rng
                .pick(&free)
                .filter(|_| rng.chance(85))
                .unwrap_or_else(|| any_frame(rng));
            let owner = match rng.below(10) {
                0 => Owner::Hypervisor,
                1 => Owner::Free,
                _ => Owner::Domain(domain),
            };
            let result = table.assign(mfn, owner);
            if result.is_ok() {
                // The allocator zeroes a frame before handing it out.
                for index in 0..ENTRIES_PER_TABLE {
                    memory.entries.remove(&(mfn, index));
                }
            }
            Some(result)
        }
    };
    (step, result)
}

/// The starting machine: frames 0..4 the hypervisor's, 4..44 the
/// privileged domain's, 44..76 the guest's, the rest free.
fn starting_machine(table: &mut FrameTable) {
    for mfn in 0..MACHINE_FRAMES {
        let owner = match mfn {
            0..=3 => Owner::Hypervisor,
            4..=43 => Owner::Domain(PRIVILEGED),
            44..=75 => Owner::Domain(GUEST),
            _ => continue,
        };
        table.assign(mfn, owner).unwrap();
    }
}

/// Runs `steps` random steps from `seed`, checking after each one.
fn run_sequence(seed: u64, steps: usize) -> Model {
    let mut frames = vec![FrameInfo::FREE; MACHINE_FRAMES as usize];
    let mut memory = FakeMemory::default();
    let mut table = FrameTable::new(&mut frames, super::hypervisor_slots());
    let mut model = Model::default();
    let mut rng = Rng::new(seed);
    starting_machine(&mut table);
    for number in 0..steps {
        let before = (frame_states(&table), memory.entries.clone());
        let (step, result) = run_step(&mut rng, &mut table, &mut memory, &mut model);
        let counts = model.outcomes.entry(step).or_default();
        match result {
            Some(Err(refusal)) => {
                counts.1 += 1;
                *model.reasons.entry(refusal.reason).or_default() += 1;
                assert_unchanged(step, refusal, &before, &table, &memory);
            }
            _ => counts.0 += 1,
        }
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_invariants_with(&table, &memory, &model.bases(), &MACHINE_DOMAINS);
            check_stored_entries(&table, &memory);
        }));
        if let Err(panic) = checked {
            eprintln!(
                "seed {seed:#x}: invariant broken after step {number} ({step:?}: {result:?})"
            );
            std::panic::resume_unwind(panic);
        }
        let validated = (0..MACHINE_FRAMES)
            .filter(|&mfn| is_table_in_use(&table, mfn))
            .count();
        model.most_validated = model.most_validated.max(validated);
    }
    model
}

/// Prints what a run did (visible with `cargo test -- --nocapture`).
fn print_summary(seed: u64, model: &Model) {
    println!("seed {seed:#x}: step: accepted / refused");
    for (step, (accepted, refused)) in &model.outcomes {
        println!("  {step:?}: {accepted} / {refused}");
    }
    println!(
        "  accepted L4 pins and base switches by tree depth [0, 1, 2, 3, 4]: {:?}",
        model.l4_depths
    );
    println!(
        "  most page tables validated at once: {}",
        model.most_validated
    );
    let mut reasons: Vec<_> = model.reasons.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1));
    for (reason, count) in reasons.iter().take(8) {
        println!("  refused {count}x: {reason}");
    }
}

/// Runs one seed and checks that the run was not vacuous: whole trees
/// were validated (and, by the other steps, torn down), and each kind of
/// refusable step was both accepted and refused.
fn check_seed(seed: u64) {
    let model = run_sequence(seed, STEPS);
    print_summary(seed, &model);
    assert!(
        model.l4_depths[4] >= 20,
        "seed {seed:#x}: only {} L4s validated down to a mapped page",
        model.l4_depths[4]
    );
    assert!(
        model.most_validated >= 8,
        "seed {seed:#x}: trees stay small"
    );
    for step in [
        Step::Update,
        Step::UpdateForeign,
        Step::Pin,
        Step::Unpin,
        Step::SwitchBase,
        Step::Hold,
        Step::ClearPage,
        Step::Release,
        Step::Assign,
    ] {
        let (accepted, refused) = model.outcomes.get(&step).copied().unwrap_or_default();
        assert!(
            accepted > 0 && refused > 0,
            "seed {seed:#x}: {step:?} accepted {accepted}, refused {refused}"
        );
    }
}

// One test per seed, so that they run in parallel and a failure names it.

#[test]
fn random_sequence_seed_1() {
    check_seed(1);
}

#[test]
fn random_sequence_seed_2() {
    check_seed(2);
}

#[test]
fn random_sequence_seed_3() {
    check_seed(3);
}

#[test]
fn random_sequence_seed_42() {
    check_seed(42);
}

#[test]
fn random_sequence_seed_5eed_f00d() {
    check_seed(0x5eed_f00d);
}

#[test]
fn random_sequence_seed_dead_beef_cafe() {
    check_seed(0xdead_beef_cafe);
}
