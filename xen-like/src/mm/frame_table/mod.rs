//! The frame table: who owns each machine frame, what it is used for, and
//! the rules that are the only way either of those can change.
//!
//! # Why the hypervisor needs it
//!
//! A PV guest runs on real page tables. Its kernel builds them in its own
//! memory and the MMU walks them directly; there is no second stage of
//! translation behind them. That is what makes PV fast, and it is also why
//! the hypervisor must never let the guest write a page-table entry on its
//! own: one entry that maps a frame of another domain, or of the hypervisor,
//! or that makes a page table writable, and the guest owns the machine.
//! So the guest's page tables are mapped read-only in its own address space
//! and every change goes through a hypercall (`mmu_update`, `mmuext_op`,
//! `update_va_mapping`) that asks this module whether the change is safe.
//!
//! The frame table answers with one [`FrameInfo`] per machine frame (MFN):
//!
//! * `owner`: free, the hypervisor's, or a domain's. Frames change owner
//!   only through [`FrameTable::assign`] and [`FrameTable::release`]. A
//!   domain owner is a bare domain ID, which is only an identity while
//!   that domain's record exists (see "Owners" below).
//! * `page_type`: what the frame is being used as. A frame can be put to
//!   one of several mutually exclusive uses: an L1, L2, L3 or L4 page table,
//!   a page mapped writable somewhere, or a segment-descriptor page. It can
//!   of course be used in none of these ways, and then it can still be
//!   mapped read-only as often as the owner likes.
//! * `type_count`: how many things rely on the frame *keeping* that type:
//!   each writable mapping of a `Writable` frame, each page-table entry that
//!   points at an L1..L3 table, each pin, each vCPU whose CR3 is an L4. The
//!   type may change only when this count is zero.
//! * `ref_count`: how many things refer to the frame at all: the allocation
//!   itself (1 while the frame is owned), every present entry that maps or
//!   points at it, every pin, every base pointer. A frame can be given back
//!   only when nothing but the allocation refers to it.
//! * `pinned`: the guest asked (`MMUEXT_PIN_Lx_TABLE`) that the frame keep
//!   its page-table type even while no other table points at it. A pin holds
//!   one general and one type reference; a frame is pinned at most once.
//! * `validated`: the frame's contents have been checked for its type and
//!   the references its entries need have been taken. A page table is
//!   validated exactly while its type count is above zero.
//!
//! This is the scheme of Xen's `xen/arch/x86/mm.c`, where `count_info` and
//! `type_info` are the two counts and the opening comment of the file tells
//! the same story.
//!
//! # The invariants
//!
//! 1. **A domain maps only frames it owns.** Every present entry of a
//!    validated table names a frame owned by the table's owner. Checked
//!    entry by entry when a table is validated and when an entry is updated
//!    ([`FrameTable::update_entry`]); frames of the hypervisor are refused
//!    too for now (Xen lets a guest map its `shared_info` page and the M2P
//!    read-only; that will come as an explicit allow-list).
//! 2. **A page table is never writable.** A frame in use as a page table
//!    (type L1..L4, type count > 0) is mapped writable by no entry, and a
//!    frame mapped writable (type `Writable`, count > 0) cannot become a
//!    page table. Both halves follow from one rule: a writable L1 entry
//!    holds a `Writable` type reference on its target, a table entry or a
//!    pin holds a table type reference, and a frame has one type at a time.
//! 3. **The hypervisor's part of the address space is out of reach.** L4
//!    slots 256..=271 (Xen's hole, `0xffff800000000000..0xffff880000000000`)
//!    are overwritten with the hypervisor's own entries when an L4 is
//!    validated, hold no references, and are never written on a guest's
//!    request (`-EPERM`).
//! 4. **Counts stop a frame from going away while in use.** A frame with a
//!    type count above zero, or any reference beyond its allocation, cannot
//!    be released, retyped or handed to another domain. References are
//!    always taken on the new thing before they are dropped on the old one,
//!    so no update can free what it is about to use.
//! 5. **Removed rights are flushed.** The TLB may still hold a translation
//!    after its entry is gone. Every operation that removes or downgrades a
//!    mapping reports [`Flush::Needed`], and the caller makes sure no stale
//!    translation outlives what it protects: the hypervisor drops the one
//!    address `update_va_mapping` changed at once, and flushes everything
//!    before any operation that can retype or free a frame (see the
//!    hypervisor's `mm/tlb.rs`). This matters for invariant 2: once the
//!    last writable mapping of a frame is dropped the frame may become a
//!    page table, and a stale writable TLB entry would then be a way to
//!    write it.
//! 6. **A frame the hypervisor writes on its own is never a page table.**
//!    Some frames of a domain are written by the hypervisor whenever it
//!    likes, not on the guest's request through a checked mapping: the
//!    shared info page above all (pending bits, the upcall mask, `cr2` on a
//!    page fault, the time, the shutdown reason). For as long as it writes
//!    such a frame, the hypervisor holds a general and a `Writable` type
//!    reference on it ([`FrameTable::hold_for_hypervisor`]) and marks it
//!    `hypervisor_writes`. The type count then never drops to zero, so by
//!    invariant 2 the frame can never be validated as a page table (pinned,
//!    linked from a table, made a base) or become a descriptor page:
//!    `-EINVAL`, "frame already in use as a writable page". Without this
//!    rule a guest could remap its shared info page read-only (dropping its
//!    own `Writable` reference), pin the all-zero page as an L1, link it,
//!    and let a page fault make the hypervisor write `cr2` (an address the
//!    guest chose) into it: a page-table entry nobody validated, mapping
//!    any machine frame. Frames written only through a guest's own writable
//!    mapping (bounce frames on its stack, hypercall results) need no such
//!    hold: the checked walk finds a writable L1 entry, which holds a
//!    `Writable` reference at that moment.
//!
//! # Owners: an ID is valid only while its domain's record exists
//!
//! `Owner::Domain(7)` names "the domain whose ID is 7", and IDs are reused:
//! once domain 7 is gone, the next domain created may be 7 again. A frame
//! that still says `Domain(7)` would then belong to the new domain, which
//! could map it and read what the old one left in it. Releasing a domain's
//! frames cannot always happen at destruction: a frame that another domain
//! still maps (a privileged domain's foreign mapping, a grant mapping)
//! keeps its references, and [`FrameTable::release`] refuses it (`-EBUSY`,
//! invariant 4). So the rule, kept by the hypervisor's domain table, is:
//! **a frame is owned by domain N only while domain N's record exists.**
//! A destroyed domain with frames still referenced stays a *zombie* (Xen's
//! dying domain): its record, and with it its ID, lives until its last
//! frame is released, after the last mapping of it is removed. No
//! generation number is needed beside the ID as long as this holds: every
//! path that makes a frame's owner `Domain(N)` (`assign`) starts from a
//! live record N, and a record goes only when it owns no frame.
//!
//! A dying domain's frame is not looked for later: destruction
//! *relinquishes* each frame it cannot release at once
//! ([`FrameTable::relinquish`]), giving up the allocation reference and
//! marking the frame `relinquished`. The frame then lives exactly as long
//! as the references others hold, and the [`FrameTable::put_page`] that
//! drops the last one frees it on the spot and reports it
//! ([`FrameTable::take_freed`]), so that the hypervisor returns it to the
//! allocator and counts it off its zombie (Xen's `put_page` freeing a page
//! whose `PGC_allocated` is clear).
//!
//! # Validation
//!
//! Taking a page-table type on a frame whose type count is zero validates
//! the frame: each of its 512 entries is checked for its level and the
//! references it needs are taken (an L1 entry: a general reference, plus a
//! `Writable` type reference if it is writable; an L2, L3 or L4 entry: a
//! general reference and the L1, L2 or L3 type on the table it points at,
//! which validates that table in turn). If any entry is refused, every
//! reference taken so far is given back and the frame keeps its old type.
//! While a frame is being validated as type T it already counts as "type T,
//! in use, not yet validated", so a table that points at itself, directly or
//! through its children, is refused rather than recursed into forever. When
//! the last type reference of a table is dropped, the references held by its
//! entries are dropped too (devalidation), and the next user validates it
//! afresh, because the guest may have rewritten it while it was plain memory.
//!
//! # Segment-descriptor pages
//!
//! A frame of a guest's GDT takes the `SegmentDescriptor` type. Taking it
//! validates the frame like a table: each of its 512 descriptors must pass
//! Xen's `check_descriptor` ([`crate::mm::descriptor`]: no call gate into a
//! segment of the hypervisor's, no TSS, LDT, interrupt or trap gate; DPLs
//! below 3 raised to 3), and the fix-ups are written back only when all
//! pass ([`validate_descriptor_page`]). Descriptors name no frames, so the
//! type holds no references and devalidation has nothing to drop. Since a
//! frame has one type at a time, invariant 2 covers descriptor pages as it
//! covers page tables: never writable while in use, and a frame mapped
//! writable (or held by the hypervisor, invariant 6) cannot become one.
//! [`FrameTable::update_descriptor`] is the only way to change one in use.
//!
//! # Preemption
//!
//! Validation is recursive and can be long: pinning an L4 over 511 L1
//! tables checks some 262,000 entries in one operation, and unpinning it
//! gives as many references back. The hypervisor runs with interrupts off,
//! so no operation may run that long (issue 19: one `mmuext_op` held the
//! CPU for 45 s). Every preemptible operation therefore spends a *work
//! budget* (one unit per entry checked or given back, one per operation
//! begun; see [`FrameTable::set_work_budget`]) and stops when it runs out,
//! keeping its progress in the frames themselves, as Xen's `PGT_partial`:
//!
//! * A table being validated is `Partial::Validating { done }`: entries
//!   `0..done` hold their references. Its type count is 0 (nobody may use
//!   it as a table yet) but it can take no other type, cannot be mapped
//!   writable and cannot be released. Whoever next asks for the same type
//!   (normally the same operation, made again as a continuation) goes on
//!   from entry `done`, and the one who completes it gets the type
//!   reference. A parent whose entry leads to a half-validated child holds
//!   nothing for that entry: the child keeps its own progress.
//! * A table being devalidated is `Partial::Devalidating { remaining }`:
//!   entries `0..remaining` still hold references, given back from the
//!   last down. When giving back entry `remaining - 1` starts the
//!   devalidation of a lower table and that stops, the entry waits, holding
//!   only its general reference, until the lower table is done. Such a
//!   chain (at most four tables) is the caller's *deferred* devalidation
//!   (Xen's `old_guest_table`): the operation that started it is complete
//!   for the guest, and the guest's next page-table operation finishes the
//!   chain before doing anything else ([`FrameTable::finish_deferred`]).
//! * A validation refused halfway gives back what it took the same way,
//!   as a devalidation, deferred if it runs out of budget.
//!
//! At every stop all the invariants above hold, counting the references
//! held by the entries of partial tables; a half-done table is in use by
//! nobody, so another domain can never see one. The non-preemptible forms
//! (`pin`, `unpin`, `update_entry`, `switch_base`, `get_page_type`,
//! `put_page_type`) run with an unlimited budget, for the domain builder and
//! domain destruction ([`FrameTable::abandon_partial`] ends what a
//! destroyed domain left halfway).
//!
//! # A refused update, worked through
//!
//! Domain 1 has pinned frame 0x42 as an L1 table, and frame 0x40 is the L1
//! table that maps its kernel's page tables read-only, as every PV kernel
//! does. The kernel now asks, through `mmu_update`, to write entry 3 of
//! table 0x40 with `0x42 << 12 | PRESENT | WRITABLE`: a writable mapping of
//! its own page table, from which it could write any entry it likes.
//!
//! 1. Table 0x40 is owned by domain 1 and in use as an L1 (type count 1,
//!    validated), and index 3 is below 512: the update may be considered.
//! 2. The new entry at L1: no reserved bits, no PAT bit. It is present, so
//!    the user bit is forced on.
//! 3. Its target, frame 0x42, is owned by domain 1: a general reference is
//!    taken (its ref count goes up by one).
//! 4. The entry is writable, so a `Writable` type reference is needed on
//!    0x42. But 0x42 has type L1 with type count 1 (the pin): refused with
//!    `-EINVAL`, "frame already in use as an L1 page table".
//! 5. The general reference of step 3 is given back. Entry 3 of
//!    0x40 is untouched, no count has changed, and the hypercall returns
//!    `-EINVAL` (a batch stops here; earlier updates of it stay applied).
//!
//! Had the kernel asked for the same entry without `WRITABLE`, step 4 would
//! have been skipped and the update accepted: page tables may be read.
#![deny(unsafe_code)]

// The glue reads and writes table entries through the direct map.
#[cfg(feature = "kernel")]
#[allow(unsafe_code)]
mod global;
#[cfg(feature = "kernel")]
pub use global::*;

use alloc::vec::Vec;
use hypercall_abi::XenError;

use crate::mm::descriptor::{check_descriptor, BadDescriptor, DESCRIPTORS_PER_PAGE};
use crate::mm::pagewalk::{
    PTE_ADDRESS_MASK, PTE_NO_EXECUTE, PTE_PAGE_SIZE, PTE_PRESENT, PTE_USER, PTE_WRITABLE,
};

/// A machine frame number: a physical address divided by 4096.
pub type Mfn = u64;

/// A domain's identifier (Xen's `domid_t`).
pub type DomainId = u16;

/// Entries in one page table of any level.
pub const ENTRIES_PER_TABLE: usize = 512;

/// The first L4 slot of the hypervisor's part of every address space
/// (`0xffff800000000000`).
pub const FIRST_HYPERVISOR_L4_SLOT: usize = 256;

/// How many L4 slots belong to the hypervisor (256..=271, 8 TiB).
pub const HYPERVISOR_L4_SLOT_COUNT: usize = 16;

/// Accessed: set by the MMU when the entry is used.
const PTE_ACCESSED: u64 = 1 << 5;
/// Dirty: set by the MMU when the page is written (meaningful at L1).
const PTE_DIRTY: u64 = 1 << 6;
/// Global: the translation survives CR3 reloads.
const PTE_GLOBAL: u64 = 1 << 8;
/// In an L1 entry, bit 7 selects a PAT entry instead of meaning "large page".
const PTE_PAT_L1: u64 = PTE_PAGE_SIZE;
/// Bits 52..=62: ignored by the MMU or reserved (protection keys); guests
/// may not use them, so that the hypervisor may later.
const PTE_RESERVED_HIGH: u64 = 0x7ff0_0000_0000_0000;

/// What a frame is being used for (Xen's `PGT_*` types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageType {
    /// No particular use; the frame may be mapped read-only.
    None,
    /// Mapped writable by at least one entry (when the type count is > 0).
    Writable,
    /// A page table of level 1 (maps 4 KiB pages).
    L1,
    /// A page table of level 2 (points at L1 tables).
    L2,
    /// A page table of level 3 (points at L2 tables).
    L3,
    /// A page table of level 4, the root of an address space.
    L4,
    /// A page of a GDT or LDT.
    SegmentDescriptor,
}

impl PageType {
    /// The page-table level of this type, 1 to 4, or `None` if it is not a
    /// page-table type.
    pub fn table_level(self) -> Option<u8> {
        match self {
            Self::L1 => Some(1),
            Self::L2 => Some(2),
            Self::L3 => Some(3),
            Self::L4 => Some(4),
            Self::None | Self::Writable | Self::SegmentDescriptor => None,
        }
    }

    /// The page-table type of level `level` (1 to 4).
    pub fn for_level(level: u8) -> Option<PageType> {
        match level {
            1 => Some(Self::L1),
            2 => Some(Self::L2),
            3 => Some(Self::L3),
            4 => Some(Self::L4),
            _ => None,
        }
    }

    /// The reason given when a frame cannot take another type because it
    /// is in use as this one.
    fn in_use_reason(self) -> &'static str {
        match self {
            Self::None => "frame already in use as an untyped page",
            Self::Writable => "frame already in use as a writable page",
            Self::L1 => "frame already in use as an L1 page table",
            Self::L2 => "frame already in use as an L2 page table",
            Self::L3 => "frame already in use as an L3 page table",
            Self::L4 => "frame already in use as an L4 page table",
            Self::SegmentDescriptor => "frame already in use as a segment-descriptor page",
        }
    }
}

/// Who a frame belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// In the allocator's free pool.
    Free,
    /// The hypervisor's own (its image, heap and tables, the M2P table).
    /// A domain's `shared_info` page is the domain's, with an extra
    /// reference the hypervisor holds.
    Hypervisor,
    /// A domain's memory.
    Domain(DomainId),
}

/// The frame table's entry for one machine frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Who the frame belongs to.
    pub owner: Owner,
    /// What the frame is used as; meaningful while `type_count > 0`, kept
    /// afterwards so that a frame returning to the same use is recognisable.
    pub page_type: PageType,
    /// How many users rely on the frame keeping `page_type`.
    pub type_count: u32,
    /// How many references to the frame exist, the allocation's included.
    pub ref_count: u32,
    /// Whether the guest pinned the frame's page-table type.
    pub pinned: bool,
    /// Whether the contents were checked for `page_type` and their
    /// references taken.
    pub validated: bool,
    /// Whether the hypervisor writes the frame on its own and holds a
    /// general and a `Writable` type reference for it (invariant 6).
    pub hypervisor_writes: bool,
    /// A validation or devalidation of this page table that is under way:
    /// stopped by preemption, or running further up the call chain (Xen's
    /// `PGT_partial`). See "Preemption" above.
    pub partial: Partial,
    /// Whether its owner gave it up while others still referenced it
    /// (its domain is being destroyed): the allocation reference is gone,
    /// and the last [`FrameTable::put_page`] frees the frame (Xen's
    /// cleared `PGC_allocated`). See "Owners" above.
    pub relinquished: bool,
}

/// How far a validation or devalidation of a page table has got.
///
/// A frame in either state has type count 0 (nothing relies on it being a
/// table yet, or any more), but it is not free to change type or owner:
/// some of its entries hold references.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partial {
    /// Neither: the frame is validated (type count > 0) or holds nothing.
    None,
    /// Being validated: entries `0..done` are checked and hold their
    /// references, the others hold none.
    Validating {
        /// Entries checked so far.
        done: u16,
    },
    /// Being devalidated (or a failed validation being undone): entries
    /// `0..remaining` still hold their references. Entry `remaining - 1` may
    /// be half done: when its target is itself being devalidated, the type
    /// reference the entry held has become that devalidation, and only the
    /// general reference is left to drop once it ends.
    Devalidating {
        /// Entries that still hold references.
        remaining: u16,
    },
}

impl FrameInfo {
    /// A frame in the free pool: no owner, no type, no references.
    pub const FREE: FrameInfo = FrameInfo {
        owner: Owner::Free,
        page_type: PageType::None,
        type_count: 0,
        ref_count: 0,
        pinned: false,
        validated: false,
        hypervisor_writes: false,
        partial: Partial::None,
        relinquished: false,
    };
}

/// Access to page-table contents by MFN (the hypervisor's direct map, or a
/// fake memory in tests).
pub trait TableMemory {
    /// Reads entry `index` (0..512) of the table in frame `table`.
    fn read_entry(&self, table: Mfn, index: usize) -> u64;
    /// Writes entry `index` (0..512) of the table in frame `table`.
    fn write_entry(&mut self, table: Mfn, index: usize, value: u64);
}

/// Whether the caller must flush the TLB before returning to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Flush {
    /// No mapping was removed or downgraded.
    None,
    /// A mapping was removed or lost rights: stale translations may remain.
    Needed,
}

impl Flush {
    /// One flush covers both: needed if either operation needed it (for a
    /// batch of updates that flushes once at the end).
    pub fn combine(self, other: Flush) -> Flush {
        if self == Flush::Needed || other == Flush::Needed {
            Flush::Needed
        } else {
            Flush::None
        }
    }
}

/// What became of a frame its dying owner gave up
/// ([`FrameTable::relinquish`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relinquished {
    /// Nothing else referred to it: it is free, for the allocator.
    Now,
    /// Still referenced: the last reference frees it.
    Later,
}

/// Why an operation was refused: a Xen error code for the guest, and a
/// reason for the hypervisor's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What the hypercall returns (negated).
    pub error: XenError,
    /// What was wrong, for the log.
    pub reason: &'static str,
}

/// Builds a refusal.
const fn refuse(error: XenError, reason: &'static str) -> Refusal {
    Refusal { error, reason }
}

/// What a preemptible operation returns when its budget ran out: Xen's
/// `-ERESTART`, which never reaches a guest. The hypercall turns it into a
/// continuation, and the same call made again goes on where this one
/// stopped.
pub const PREEMPTED: Refusal = refuse(
    XenError::ERESTART,
    "preempted: the work budget ran out, call again to go on",
);

/// A work budget that never runs out, for the callers that must finish what
/// they start (the domain builder, domain destruction).
pub const UNLIMITED_WORK: u64 = u64::MAX;

/// A devalidation ran out of budget; its progress is kept in the frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Preempted;

/// Why taking a type stopped before the end (inside the frame table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Refused; everything this step took was given back.
    Refused(Refusal),
    /// Refused, but undoing the checked entries of the frame whose
    /// validation failed ran out of budget: the frame is left
    /// `Partial::Devalidating`. The caller keeps its general reference on
    /// it and must see the undo finished.
    Undoing(Refusal),
    /// Out of budget; the progress stays in the frames, nothing half done
    /// is in use.
    Preempted,
}

impl Stop {
    /// The refusal a public operation returns for this stop.
    fn into_refusal(self) -> Refusal {
        match self {
            Stop::Refused(refusal) | Stop::Undoing(refusal) => refusal,
            Stop::Preempted => PREEMPTED,
        }
    }
}

impl From<Refusal> for Stop {
    fn from(refusal: Refusal) -> Self {
        Stop::Refused(refusal)
    }
}

/// One page-table write asked for by `mmu_update` (the arguments of
/// [`FrameTable::update_entry_preemptible`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryUpdate {
    /// The page table written.
    pub table: Mfn,
    /// The entry written (0..512).
    pub index: usize,
    /// The new entry, as the guest wrote it.
    pub new: u64,
    /// The domain that owns the table and asks for the write.
    pub domain: DomainId,
    /// Whose frames an L1 entry may map (`domain`, or the domain a
    /// privileged caller builds).
    pub page_owner: DomainId,
    /// `MMU_PT_UPDATE_PRESERVE_AD`: keep the old entry's A and D bits.
    pub preserve_ad: bool,
}

// ---------------------------------------------------------------------------
// The rules for a single entry. Each is one small function so that it can be
// read, tested and handed out on its own.
// ---------------------------------------------------------------------------

/// The frame an entry points at (bits 12..51).
fn entry_target(entry: u64) -> Mfn {
    (entry & PTE_ADDRESS_MASK) >> 12
}

/// Whether the entry is present. A non-present entry is always acceptable
/// and holds no references: the MMU ignores all its other bits, and the
/// guest may use them as it likes (Linux keeps swap entries there).
fn is_present(entry: u64) -> bool {
    entry & PTE_PRESENT != 0
}

/// Rule: bits 52..=62 must be clear at every level (`-EINVAL`).
fn check_reserved_bits(entry: u64) -> Result<(), Refusal> {
    if entry & PTE_RESERVED_HIGH != 0 {
        return Err(refuse(XenError::EINVAL, "sets reserved bits"));
    }
    Ok(())
}

/// Rule: bit 7 means something different at each level, and we allow it
/// at none (`-EINVAL`):
/// - L1: the PAT bit. Guests get the default memory types only.
/// - L2, L3: a 2 MiB or 1 GiB superpage. A superpage would map 512 (or
///   512 * 512) frames with one reference, which this frame table does not
///   account for.
/// - L4: reserved by the architecture.
fn check_bit_7(level: u8, entry: u64) -> Result<(), Refusal> {
    // The same bit under its two names: PAT in an L1, PS above.
    let bit_7 = if level == 1 {
        PTE_PAT_L1
    } else {
        PTE_PAGE_SIZE
    };
    if entry & bit_7 == 0 {
        return Ok(());
    }
    Err(match level {
        1 => refuse(XenError::EINVAL, "sets the PAT bit, which is not supported"),
        2 | 3 => refuse(
            XenError::EINVAL,
            "asks for a superpage, which is not supported",
        ),
        _ => refuse(
            XenError::EINVAL,
            "sets bit 7, which is reserved in an L4 entry",
        ),
    })
}

/// Rule: the global bit (8) is allowed in L1 entries only, as in Xen's
/// `L1_DISALLOW_MASK`. At L2 and L3 it means nothing without a superpage,
/// and at L4 it is reserved (`-EINVAL`).
fn check_global_bit(level: u8, entry: u64) -> Result<(), Refusal> {
    if level != 1 && entry & PTE_GLOBAL != 0 {
        return Err(refuse(
            XenError::EINVAL,
            "sets the global bit, which only an L1 entry may use",
        ));
    }
    Ok(())
}

/// Rule: the guest kernel runs in ring 3, so every present entry must allow
/// user access or the kernel could not use its own mappings. The hypervisor
/// sets the bit itself (Xen's `adjust_guest_l*e`); the entry it stores has
/// it. Guest user space is kept from kernel pages by the separate kernel
/// and user page tables of a 64-bit PV guest, not by this bit.
fn with_user_bit(entry: u64) -> u64 {
    entry | PTE_USER
}

/// All the rules on an entry's bits for a table of `level`; returns the
/// entry as it will be stored. NX (63), the cache bits (3, 4), A/D (5, 6)
/// and the software bits (9..=11) are allowed everywhere.
fn check_entry_bits(level: u8, entry: u64) -> Result<u64, Refusal> {
    if !is_present(entry) {
        return Ok(entry);
    }
    check_reserved_bits(entry)?;
    check_bit_7(level, entry)?;
    check_global_bit(level, entry)?;
    Ok(with_user_bit(entry))
}

/// Rule: the type a present entry of a table at `level` needs its target to
/// have. An L1 entry maps data: a writable one needs `Writable` (so that the
/// target cannot be a page table, invariant 2), a read-only one no type. An
/// entry of an L2, L3 or L4 points at a table one level down.
fn required_target_type(level: u8, entry: u64) -> Option<PageType> {
    if level == 1 {
        (entry & PTE_WRITABLE != 0).then_some(PageType::Writable)
    } else {
        PageType::for_level(level - 1)
    }
}

/// Rule: slots 256..=271 of an L4 belong to the hypervisor.
fn is_hypervisor_slot(level: u8, index: usize) -> bool {
    level == 4
        && (FIRST_HYPERVISOR_L4_SLOT..FIRST_HYPERVISOR_L4_SLOT + HYPERVISOR_L4_SLOT_COUNT)
            .contains(&index)
}

/// Rule: a guest may not write the hypervisor's slots of an L4 (`-EPERM`).
fn check_guest_may_write_slot(level: u8, index: usize) -> Result<(), Refusal> {
    if is_hypervisor_slot(level, index) {
        return Err(refuse(
            XenError::EPERM,
            "writes the hypervisor's part of the address space",
        ));
    }
    Ok(())
}

/// With `MMU_PT_UPDATE_PRESERVE_AD`, the accessed and dirty bits the MMU set
/// in the old entry are kept, so that a guest rewriting an entry does not
/// lose the information that the page was used or written. Only a present
/// old entry has A/D bits set by the MMU; in a non-present one they are the
/// guest's own data.
fn keep_accessed_dirty(old: u64, new: u64) -> u64 {
    if is_present(old) {
        new | (old & (PTE_ACCESSED | PTE_DIRTY))
    } else {
        new
    }
}

/// Rule (invariant 5): replacing `old` by `new` needs a TLB flush unless the
/// old entry was not present, or the new one maps the same frame with at
/// least the same rights (writable, user, executable).
fn flush_after_replacing(old: u64, new: u64) -> Flush {
    if !is_present(old) {
        return Flush::None;
    }
    let keeps_rights = is_present(new)
        && entry_target(new) == entry_target(old)
        && (new & PTE_WRITABLE != 0 || old & PTE_WRITABLE == 0)
        && (new & PTE_USER != 0 || old & PTE_USER == 0)
        && (new & PTE_NO_EXECUTE == 0 || old & PTE_NO_EXECUTE != 0);
    if keeps_rights {
        Flush::None
    } else {
        Flush::Needed
    }
}

/// Validation of a segment-descriptor page (Xen's `validate_segdesc_page`):
/// every one of its 512 descriptors must pass [`check_descriptor`]. Only
/// when all do are the fix-ups (DPLs raised to 3, call gates made DPL 0)
/// written back, so a refused page is left as the guest wrote it.
/// Descriptors name no frames, so no references are taken.
pub fn validate_descriptor_page(memory: &mut impl TableMemory, mfn: Mfn) -> Result<(), Refusal> {
    for index in 0..DESCRIPTORS_PER_PAGE {
        check_descriptor(memory.read_entry(mfn, index))
            .map_err(|BadDescriptor(reason)| refuse(XenError::EINVAL, reason))?;
    }
    for index in 0..DESCRIPTORS_PER_PAGE {
        let descriptor = memory.read_entry(mfn, index);
        if let Ok(stored) = check_descriptor(descriptor) {
            if stored != descriptor {
                memory.write_entry(mfn, index, stored);
            }
        }
    }
    Ok(())
}

/// The frame table over all of machine memory, and the rules that change it.
#[derive(Debug)]
pub struct FrameTable<'a> {
    frames: &'a mut [FrameInfo],
    hypervisor_slots: [u64; HYPERVISOR_L4_SLOT_COUNT],
    /// Work left before a preemptible operation must stop (see
    /// "Preemption"); [`UNLIMITED_WORK`] outside hypercalls.
    budget: u64,
    /// Relinquished frames whose last reference went, not yet handed back
    /// (see [`FrameTable::take_freed`]).
    freed: Vec<(DomainId, Mfn)>,
}

impl<'a> FrameTable<'a> {
    /// Wraps `frames` (one entry per MFN, contents kept as given) with the
    /// hypervisor's L4 entries for slots 256..=271.
    pub fn new(frames: &'a mut [FrameInfo], hypervisor_slots: [u64; 16]) -> Self {
        Self {
            frames,
            hypervisor_slots,
            budget: UNLIMITED_WORK,
            freed: Vec::new(),
        }
    }

    /// The entry for `mfn`, if it is within machine memory.
    pub fn info(&self, mfn: Mfn) -> Option<&FrameInfo> {
        self.frames.get(usize::try_from(mfn).ok()?)
    }

    /// Number of machine frames the table covers.
    pub fn frame_count(&self) -> u64 {
        self.frames.len() as u64
    }

    /// Replaces the hypervisor's L4 entries copied into every L4 validated
    /// from now on.
    pub fn set_hypervisor_slots(&mut self, slots: [u64; 16]) {
        self.hypervisor_slots = slots;
    }

    /// Whether `mfn` exists and belongs to `domain`.
    pub fn is_owned_by(&self, mfn: Mfn, domain: DomainId) -> bool {
        self.info(mfn)
            .is_some_and(|frame| frame.owner == Owner::Domain(domain))
    }

    fn frame_mut(&mut self, mfn: Mfn) -> Option<&mut FrameInfo> {
        self.frames.get_mut(usize::try_from(mfn).ok()?)
    }

    /// The frame `mfn` if `domain` owns it, else `-EPERM` with `reason`.
    fn owned_frame_mut(
        &mut self,
        mfn: Mfn,
        domain: DomainId,
        reason: &'static str,
    ) -> Result<&mut FrameInfo, Refusal> {
        match self.frame_mut(mfn) {
            Some(frame) if frame.owner == Owner::Domain(domain) => Ok(frame),
            Some(_) => Err(refuse(XenError::EPERM, reason)),
            None => Err(refuse(
                XenError::EPERM,
                "frame number is beyond the end of machine memory",
            )),
        }
    }

    /// A free frame becomes owned by `owner` with `ref_count` 1 (the
    /// allocation reference) and no type.
    pub fn assign(&mut self, mfn: Mfn, owner: Owner) -> Result<(), Refusal> {
        if owner == Owner::Free {
            return Err(refuse(XenError::EINVAL, "cannot assign a frame to no one"));
        }
        let frame = self.frame_mut(mfn).ok_or(refuse(
            XenError::EINVAL,
            "frame number is beyond the end of machine memory",
        ))?;
        if frame.owner != Owner::Free || frame.ref_count != 0 || frame.type_count != 0 {
            return Err(refuse(XenError::EBUSY, "frame is not free"));
        }
        *frame = FrameInfo {
            owner,
            ref_count: 1,
            ..FrameInfo::FREE
        };
        Ok(())
    }

    /// The owner gives a frame back (`decrease_reservation`, domain
    /// destruction). Refused with `-EBUSY` while anything but the allocation
    /// refers to it (invariant 4), `-EPERM` if `owner` does not own it. On
    /// success the frame is free and the caller returns it to the allocator.
    pub fn release(&mut self, mfn: Mfn, owner: Owner) -> Result<(), Refusal> {
        let frame = self.frame_mut(mfn).ok_or(refuse(
            XenError::EINVAL,
            "frame number is beyond the end of machine memory",
        ))?;
        if frame.owner == Owner::Free {
            return Err(refuse(XenError::EINVAL, "frame is already free"));
        }
        if frame.owner != owner {
            return Err(refuse(
                XenError::EPERM,
                "releases a frame the caller does not own",
            ));
        }
        if frame.relinquished {
            return Err(refuse(
                XenError::EINVAL,
                "frame was already given up by its dying owner",
            ));
        }
        if frame.type_count > 0 {
            return Err(refuse(
                XenError::EBUSY,
                "frame is in use as a page table, writable mapping or base",
            ));
        }
        if frame.partial != Partial::None {
            return Err(refuse(
                XenError::EBUSY,
                "frame is a page table being validated or devalidated",
            ));
        }
        if frame.ref_count > 1 {
            return Err(refuse(
                XenError::EBUSY,
                "frame is still mapped or referenced",
            ));
        }
        *frame = FrameInfo::FREE;
        Ok(())
    }

    /// Takes a general reference on `mfn`, which `domain` must own.
    pub fn get_page(&mut self, mfn: Mfn, domain: DomainId) -> Result<(), Refusal> {
        let frame = self.owned_frame_mut(mfn, domain, "frame is not owned by the domain")?;
        frame.ref_count = frame
            .ref_count
            .checked_add(1)
            .ok_or(refuse(XenError::EBUSY, "reference count would overflow"))?;
        Ok(())
    }

    /// Drops a general reference taken by [`FrameTable::get_page`].
    ///
    /// A put without a matching get is a hypervisor bug: debug builds panic;
    /// release builds leave the count at zero rather than wrapping it.
    pub fn put_page(&mut self, mfn: Mfn) {
        let frame = self.frame_mut(mfn);
        debug_assert!(frame.is_some(), "put_page of a frame beyond memory");
        if let Some(frame) = frame {
            debug_assert!(frame.ref_count > 0, "put_page without a reference");
            frame.ref_count = frame.ref_count.saturating_sub(1);
            if frame.ref_count == 0 && frame.relinquished {
                // The last reference to a dying domain's frame: it is free
                // now (a reference count of 0 leaves no type reference).
                if let Owner::Domain(owner) = frame.owner {
                    *frame = FrameInfo::FREE;
                    self.freed.push((owner, mfn));
                }
            }
        }
    }

    /// The owner, a dying domain, gives `mfn` up (domain destruction). A
    /// frame nothing else refers to is released at once
    /// ([`Relinquished::Now`]: the caller returns it to the allocator, as
    /// after [`FrameTable::release`]). One still mapped, typed or
    /// referenced loses its allocation reference and is marked
    /// `relinquished` ([`Relinquished::Later`]): the [`FrameTable::put_page`]
    /// that drops its last reference frees it and lists it for
    /// [`FrameTable::take_freed`]. Refused for a frame `owner` does not own,
    /// and for a page table still being validated or devalidated, which
    /// destruction ends first ([`FrameTable::abandon_partial_preemptible`]).
    pub fn relinquish(&mut self, mfn: Mfn, owner: Owner) -> Result<Relinquished, Refusal> {
        match self.release(mfn, owner) {
            Ok(()) => return Ok(Relinquished::Now),
            Err(refusal) if refusal.error != XenError::EBUSY => return Err(refusal),
            Err(_) => {}
        }
        let frame = self.frame_mut(mfn).ok_or(refuse(
            XenError::EINVAL,
            "frame number is beyond the end of machine memory",
        ))?;
        if frame.partial != Partial::None {
            return Err(refuse(
                XenError::EBUSY,
                "frame is a page table being validated or devalidated",
            ));
        }
        if frame.ref_count < 2 {
            // Typed with no reference beside the allocation's: every type
            // reference comes with a general one, so this cannot be.
            return Err(refuse(
                XenError::EBUSY,
                "frame is typed but holds no reference besides its allocation",
            ));
        }
        frame.ref_count -= 1;
        frame.relinquished = true;
        Ok(Relinquished::Later)
    }

    /// The relinquished frames freed by their last [`FrameTable::put_page`]
    /// since the last call, with the domain each belonged to: the caller
    /// returns them to the allocator and counts them off their zombies.
    pub fn take_freed(&mut self) -> Vec<(DomainId, Mfn)> {
        core::mem::take(&mut self.freed)
    }

    /// How much work (entries of page tables checked or released, and
    /// operations begun) the table may still do before it must stop and let
    /// the caller return a continuation.
    pub fn work_budget(&self) -> u64 {
        self.budget
    }

    /// Sets the work budget (see "Preemption"); [`UNLIMITED_WORK`] for a
    /// caller that must finish whatever it starts.
    pub fn set_work_budget(&mut self, work: u64) {
        self.budget = work;
    }

    /// Spends `units` of work on a step of the caller's own (domain
    /// destruction's walk over its frames): `-ERESTART` ([`PREEMPTED`]) when
    /// none is left. A step begun with some budget left always runs, as an
    /// operation does.
    pub fn spend(&mut self, units: u64) -> Result<(), Refusal> {
        if self.budget == 0 {
            return Err(PREEMPTED);
        }
        self.budget = self.budget.saturating_sub(units);
        Ok(())
    }

    /// Spends one unit of work; `false` when none is left.
    fn spend_work(&mut self) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        true
    }

    /// Runs `action` with an unlimited budget, then restores the budget: the
    /// operations that are not preemptible are these wrappers.
    fn unbounded<R>(&mut self, action: impl FnOnce(&mut Self) -> R) -> R {
        let saved = core::mem::replace(&mut self.budget, UNLIMITED_WORK);
        let result = action(self);
        self.budget = saved;
        result
    }

    fn set_partial(&mut self, mfn: Mfn, partial: Partial) {
        if let Some(frame) = self.frame_mut(mfn) {
            frame.partial = partial;
        }
    }

    fn partial_of(&self, mfn: Mfn) -> Partial {
        self.info(mfn).map_or(Partial::None, |frame| frame.partial)
    }

    /// Takes a type reference on `mfn` (owned by `domain`). If the type
    /// count is 0 the frame may take any type: a page-table type only once
    /// all 512 entries are validated and their references taken (given back
    /// if one is refused). If it already has `page_type`, the count goes up.
    /// Otherwise it is refused (`-EINVAL`, "frame already in use as ...").
    /// Not preemptible: it finishes whatever validation it starts.
    pub fn get_page_type(
        &mut self,
        memory: &mut impl TableMemory,
        mfn: Mfn,
        page_type: PageType,
        domain: DomainId,
    ) -> Result<(), Refusal> {
        self.unbounded(|table| {
            table
                .get_type(memory, mfn, page_type, domain)
                .map_err(Stop::into_refusal)
        })
    }

    /// The preemptible heart of [`FrameTable::get_page_type`]. A frame
    /// whose validation stopped halfway (`Partial::Validating`) goes on
    /// where it stopped, whoever asks for the same type next; whoever
    /// completes it gets the type reference.
    fn get_type(
        &mut self,
        memory: &mut impl TableMemory,
        mfn: Mfn,
        page_type: PageType,
        domain: DomainId,
    ) -> Result<(), Stop> {
        if page_type == PageType::None {
            return Err(Stop::Refused(refuse(
                XenError::EINVAL,
                "type None cannot be taken: it is the absence of a type",
            )));
        }
        let frame = self.owned_frame_mut(mfn, domain, "frame is not owned by the domain")?;
        let before = *frame;
        match before.partial {
            Partial::Devalidating { .. } => {
                return Err(Stop::Refused(refuse(
                    XenError::EBUSY,
                    "frame is still being devalidated as a page table",
                )))
            }
            Partial::Validating { .. } if before.page_type != page_type => {
                return Err(Stop::Refused(refuse(
                    XenError::EINVAL,
                    before.page_type.in_use_reason(),
                )))
            }
            // Half validated as this very type: go on below.
            Partial::Validating { .. } => {}
            Partial::None if before.type_count > 0 => {
                if before.page_type != page_type {
                    return Err(Stop::Refused(refuse(
                        XenError::EINVAL,
                        before.page_type.in_use_reason(),
                    )));
                }
                frame.type_count = before
                    .type_count
                    .checked_add(1)
                    .ok_or(refuse(XenError::EBUSY, "type count would overflow"))?;
                return Ok(());
            }
            Partial::None => {
                // The type count is 0: nothing relies on the old type, so
                // the frame may change type.
                frame.page_type = page_type;
                frame.validated = false;
                if page_type == PageType::SegmentDescriptor {
                    // 512 descriptors that name no frames: checked at once
                    // (bounded work, no recursion, nothing to undo).
                    return match validate_descriptor_page(memory, mfn) {
                        Ok(()) => {
                            if let Some(frame) = self.frame_mut(mfn) {
                                frame.type_count = 1;
                                frame.validated = true;
                            }
                            Ok(())
                        }
                        Err(refusal) => {
                            if let Some(frame) = self.frame_mut(mfn) {
                                frame.page_type = before.page_type;
                            }
                            Err(Stop::Refused(refusal))
                        }
                    };
                }
                if page_type.table_level().is_none() {
                    // `Writable`: there is nothing in the frame to check.
                    frame.type_count = 1;
                    frame.validated = true;
                    return Ok(());
                }
                // From here on the frame counts as "being validated as
                // `page_type`": it can take no other type, which is what
                // stops a table from reaching itself through its entries.
                frame.partial = Partial::Validating { done: 0 };
            }
        }
        let Some(level) = page_type.table_level() else {
            return Err(Stop::Refused(refuse(
                XenError::EINVAL,
                "only page tables are validated",
            )));
        };
        self.validate_table(memory, mfn, level, domain)?;
        if let Some(frame) = self.frame_mut(mfn) {
            frame.partial = Partial::None;
            frame.validated = true;
            frame.type_count = 1;
        }
        Ok(())
    }

    /// Drops a type reference. When a page table's count reaches 0 the
    /// references held by its entries are dropped (devalidation); returns
    /// [`Flush::Needed`] when that removed mappings. Not preemptible.
    pub fn put_page_type(&mut self, memory: &mut impl TableMemory, mfn: Mfn) -> Flush {
        self.unbounded(|table| table.put_type(memory, mfn).unwrap_or(Flush::Needed))
    }

    /// The preemptible heart of [`FrameTable::put_page_type`]: when the
    /// budget runs out, the frame is left `Partial::Devalidating` and
    /// [`Preempted`] is returned; the type reference is gone either way.
    fn put_type(&mut self, memory: &mut impl TableMemory, mfn: Mfn) -> Result<Flush, Preempted> {
        // As for `put_page`: a put without a get is a hypervisor bug.
        let frame = self.frame_mut(mfn);
        debug_assert!(frame.is_some(), "put_page_type of a frame beyond memory");
        let Some(frame) = frame else {
            return Ok(Flush::None);
        };
        debug_assert!(
            frame.type_count > 0,
            "put_page_type without a type reference"
        );
        let Some(remaining) = frame.type_count.checked_sub(1) else {
            return Ok(Flush::None);
        };
        frame.type_count = remaining;
        if frame.type_count > 0 {
            return Ok(Flush::None);
        }
        if frame.page_type == PageType::SegmentDescriptor {
            // Descriptors hold no references: nothing to drop, but the
            // guest may rewrite the frame from now on, so the next use
            // checks it afresh.
            frame.validated = false;
            return Ok(Flush::None);
        }
        let Some(level) = frame.page_type.table_level() else {
            return Ok(Flush::None);
        };
        frame.validated = false;
        frame.partial = Partial::Devalidating {
            remaining: ENTRIES_PER_TABLE as u16,
        };
        self.devalidate_table(memory, mfn, level)
    }

    /// Checks the entries of `table` for `level` from where an earlier,
    /// preempted validation stopped, and takes the references they need;
    /// copies the hypervisor's slots into an L4. On a refusal, the entries
    /// checked so far are undone (see [`FrameTable::undo_validation`]).
    fn validate_table(
        &mut self,
        memory: &mut impl TableMemory,
        table: Mfn,
        level: u8,
        domain: DomainId,
    ) -> Result<(), Stop> {
        let first = match self.partial_of(table) {
            Partial::Validating { done } => usize::from(done),
            _ => 0,
        };
        for index in first..ENTRIES_PER_TABLE {
            if !self.spend_work() {
                self.set_partial(table, Partial::Validating { done: index as u16 });
                return Err(Stop::Preempted);
            }
            if is_hypervisor_slot(level, index) {
                let slot = self.hypervisor_slots[index - FIRST_HYPERVISOR_L4_SLOT];
                memory.write_entry(table, index, slot);
                continue;
            }
            let entry = memory.read_entry(table, index);
            if !is_present(entry) {
                // Nothing to check or take (`check_entry_bits` and
                // `get_entry_references` would accept it as it is): most
                // entries of a new table, kept off the per-entry call.
                continue;
            }
            let stored = match check_entry_bits(level, entry) {
                Ok(stored) => stored,
                Err(refusal) => {
                    return self.undo_validation(memory, table, level, index, refusal, false)
                }
            };
            match self.get_entry_references(memory, level, stored, domain, domain) {
                Ok(()) => {
                    if stored != entry {
                        memory.write_entry(table, index, stored);
                    }
                }
                Err(Stop::Preempted) => {
                    // Entry `index` holds nothing: its target keeps its own
                    // progress and is taken up again with it.
                    self.set_partial(table, Partial::Validating { done: index as u16 });
                    return Err(Stop::Preempted);
                }
                Err(Stop::Refused(refusal)) => {
                    return self.undo_validation(memory, table, level, index, refusal, false)
                }
                Err(Stop::Undoing(refusal)) => {
                    return self.undo_validation(memory, table, level, index, refusal, true)
                }
            }
        }
        Ok(())
    }

    /// A validation of `table` failed at entry `index`: entries `0..index`
    /// hold references, and so does entry `index` when its target's own
    /// validation failed and is still being undone (`target_undoing`). The
    /// table turns `Partial::Devalidating` over those entries and gives them
    /// back; if the budget runs out first, the caller learns that the undo
    /// goes on ([`Stop::Undoing`]).
    fn undo_validation(
        &mut self,
        memory: &mut impl TableMemory,
        table: Mfn,
        level: u8,
        index: usize,
        refusal: Refusal,
        target_undoing: bool,
    ) -> Result<(), Stop> {
        let remaining = index + usize::from(target_undoing);
        self.set_partial(
            table,
            Partial::Devalidating {
                remaining: remaining as u16,
            },
        );
        // The table was never in use, so nothing could have cached its
        // mappings: no flush to report.
        match self.devalidate_table(memory, table, level) {
            Ok(_never_in_use) => Err(Stop::Refused(refusal)),
            Err(Preempted) => Err(Stop::Undoing(refusal)),
        }
    }

    /// Drops the references held by the entries of `table` (a table of
    /// `level` in `Partial::Devalidating`), from the last that holds one
    /// down to entry 0, then marks the table as holding nothing. Preempted
    /// when the budget runs out, with the progress kept in the frame.
    /// Flush is needed if any entry was present (reported only when the
    /// devalidation ends here; a preempted one is assumed to need it).
    fn devalidate_table(
        &mut self,
        memory: &mut impl TableMemory,
        table: Mfn,
        level: u8,
    ) -> Result<Flush, Preempted> {
        let Partial::Devalidating { remaining: first } = self.partial_of(table) else {
            return Ok(Flush::None);
        };
        // The progress lives in a local while the loop runs and is written
        // back to the frame only when the loop stops (preempted, or done):
        // nothing reads this table's `partial` meanwhile, since the tables
        // below it, which the loop may devalidate, never point back up.
        let mut remaining = first;
        let mut flush = Flush::None;
        while remaining > 0 {
            if !self.spend_work() {
                self.set_partial(table, Partial::Devalidating { remaining });
                return Err(Preempted);
            }
            let index = usize::from(remaining) - 1;
            let entry = memory.read_entry(table, index);
            if !is_hypervisor_slot(level, index) && is_present(entry) {
                let target = entry_target(entry);
                if required_target_type(level, entry).is_some() {
                    // A lower table already being devalidated holds the type
                    // reference this entry held (see `Partial`): go on with
                    // it. Otherwise drop the type reference, which may start
                    // that devalidation. Either may be preempted, leaving
                    // this entry for next time.
                    let target_undoing = level > 1
                        && matches!(self.partial_of(target), Partial::Devalidating { .. });
                    // This entry was present, so a flush is needed anyway:
                    // it covers whatever the cascade removed.
                    let cascade = if target_undoing {
                        self.devalidate_table(memory, target, level - 1)
                    } else {
                        self.put_type(memory, target)
                    };
                    if cascade.is_err() {
                        self.set_partial(table, Partial::Devalidating { remaining });
                        return Err(Preempted);
                    }
                }
                self.put_page(target);
                flush = Flush::Needed;
            }
            remaining = index as u16;
        }
        self.set_partial(table, Partial::None);
        Ok(flush)
    }

    /// Takes what a present entry of a table at `level` needs (invariant 1:
    /// the target must be `page_owner`'s, which is the table's owner except
    /// for an L1 entry of a foreign mapping; invariant 2 through the type).
    /// Gives back what it took, except when the target's validation failed
    /// and is still being undone: then the general reference stays, for the
    /// caller to drop once the undo ends ([`Stop::Undoing`]).
    fn get_entry_references(
        &mut self,
        memory: &mut impl TableMemory,
        level: u8,
        entry: u64,
        domain: DomainId,
        page_owner: DomainId,
    ) -> Result<(), Stop> {
        if !is_present(entry) {
            return Ok(());
        }
        // Only leaf (L1) entries may name another domain's frames: a foreign
        // page table would let the caller reach that domain's whole tree.
        let owner = if level == 1 { page_owner } else { domain };
        let target = entry_target(entry);
        self.check_entry_target(target, owner)?;
        self.get_page(target, owner)?;
        if let Some(page_type) = required_target_type(level, entry) {
            match self.get_type(memory, target, page_type, owner) {
                Ok(()) => {}
                Err(Stop::Undoing(refusal)) => return Err(Stop::Undoing(refusal)),
                Err(other) => {
                    self.put_page(target);
                    return Err(other);
                }
            }
        }
        Ok(())
    }

    /// Rule: an entry may map only a frame that exists and belongs to the
    /// domain (`-EPERM`). Hypervisor frames are refused too; Xen allows
    /// read-only L1 mappings of some (`shared_info`, the M2P), which will
    /// come as an explicit allow-list.
    fn check_entry_target(&self, target: Mfn, domain: DomainId) -> Result<(), Refusal> {
        match self.info(target) {
            None => Err(refuse(
                XenError::EPERM,
                "maps a frame beyond the end of machine memory",
            )),
            Some(frame) if frame.owner == Owner::Domain(domain) => Ok(()),
            Some(_) => Err(refuse(
                XenError::EPERM,
                "maps a frame the domain does not own",
            )),
        }
    }

    /// Records `root`, a table left `Partial::Devalidating`, as the
    /// caller's deferred devalidation. A caller finishes its deferred work
    /// before it starts anything new, so the slot is empty; should it not
    /// be, the new devalidation is finished at once rather than forgotten.
    fn defer(&mut self, memory: &mut impl TableMemory, root: Mfn, deferred: &mut Option<Mfn>) {
        if deferred.is_none() {
            *deferred = Some(root);
            return;
        }
        debug_assert!(false, "a second deferred devalidation");
        if let Some(level) = self
            .info(root)
            .and_then(|frame| frame.page_type.table_level())
        {
            let _flushed_by_caller =
                self.unbounded(|table| table.devalidate_table(memory, root, level));
        }
    }

    /// Drops a type and then a general reference on `mfn` (a base pointer
    /// given up); a devalidation that runs out of budget goes to `deferred`
    /// (and counts as needing a flush).
    pub fn put_page_and_type_preemptible(
        &mut self,
        memory: &mut impl TableMemory,
        mfn: Mfn,
        deferred: &mut Option<Mfn>,
    ) -> Flush {
        let flush = match self.put_type(memory, mfn) {
            Ok(flush) => flush,
            Err(Preempted) => {
                self.defer(memory, mfn, deferred);
                Flush::Needed
            }
        };
        self.put_page(mfn);
        flush
    }

    /// Drops what a present entry held; returns the flush needed by any
    /// devalidation this caused further down (not for the entry itself).
    fn put_entry_references(
        &mut self,
        memory: &mut impl TableMemory,
        level: u8,
        entry: u64,
        deferred: &mut Option<Mfn>,
    ) -> Flush {
        if !is_present(entry) {
            return Flush::None;
        }
        let target = entry_target(entry);
        match required_target_type(level, entry) {
            Some(_) => self.put_page_and_type_preemptible(memory, target, deferred),
            None => {
                self.put_page(target);
                Flush::None
            }
        }
    }

    /// Goes on with the deferred devalidation in `deferred`, if any;
    /// `-ERESTART` ([`PREEMPTED`]) while it is not done. Preemptible
    /// callers call this before anything else, so that a guest never sees
    /// a frame "still being devalidated" by an operation it has finished.
    pub fn finish_deferred(
        &mut self,
        memory: &mut impl TableMemory,
        deferred: &mut Option<Mfn>,
    ) -> Result<Flush, Refusal> {
        let Some(root) = *deferred else {
            return Ok(Flush::None);
        };
        let level = self
            .info(root)
            .and_then(|frame| frame.page_type.table_level());
        let outcome = match level {
            Some(level) => self.devalidate_table(memory, root, level),
            None => Ok(Flush::None),
        };
        match outcome {
            Ok(flush) => {
                *deferred = None;
                Ok(flush)
            }
            Err(Preempted) => Err(PREEMPTED),
        }
    }

    /// Ends every validation and devalidation left halfway among `frames`
    /// (domain destruction), without a budget: half-validated tables give
    /// back what their checked entries took, half-devalidated ones finish.
    pub fn abandon_partial(&mut self, memory: &mut impl TableMemory, frames: &[Mfn]) {
        let mut position = 0;
        let _always_finishes = self
            .unbounded(|table| table.abandon_partial_preemptible(memory, frames, &mut position));
    }

    /// The preemptible form of [`FrameTable::abandon_partial`]: one unit of
    /// work per frame looked at, plus the entries given back; `-ERESTART`
    /// ([`PREEMPTED`]) when the budget runs out, with `position` (0 at the
    /// start) saying where to go on. Higher levels go first, so that a
    /// table being devalidated finishes the lower table its last entry is
    /// waiting for.
    pub fn abandon_partial_preemptible(
        &mut self,
        memory: &mut impl TableMemory,
        frames: &[Mfn],
        position: &mut usize,
    ) -> Result<(), Refusal> {
        let count = frames.len();
        while *position < 4 * count {
            let level = 4 - (*position / count) as u8;
            let mfn = frames[*position % count];
            if !self.spend_work() {
                return Err(PREEMPTED);
            }
            if let Some(frame) = self.info(mfn) {
                if frame.page_type.table_level() == Some(level) {
                    if let Partial::Validating { done } = frame.partial {
                        self.set_partial(mfn, Partial::Devalidating { remaining: done });
                    }
                    if let Partial::Devalidating { .. } = self.partial_of(mfn) {
                        // A flush is the caller's: destruction flushes
                        // before it frees anything.
                        if self.devalidate_table(memory, mfn, level).is_err() {
                            return Err(PREEMPTED);
                        }
                    }
                }
            }
            *position += 1;
        }
        Ok(())
    }

    /// `MMU_NORMAL_PT_UPDATE` / `MMU_PT_UPDATE_PRESERVE_AD`: writes `new`
    /// into entry `index` of `table`, which must be a page table in use
    /// (type L1..L4, type count > 0, validated) owned by `domain`. The new
    /// entry is checked for the table's level and its references taken
    /// before the old entry's are dropped. Returns whether the caller must
    /// flush (the old entry was present and the new one does not map the
    /// same frame with at least the same rights). Not preemptible.
    pub fn update_entry(
        &mut self,
        memory: &mut impl TableMemory,
        table: Mfn,
        index: usize,
        new: u64,
        domain: DomainId,
        preserve_ad: bool,
    ) -> Result<Flush, Refusal> {
        self.update_entry_foreign(memory, table, index, new, domain, domain, preserve_ad)
    }

    /// Like [`FrameTable::update_entry`], but an L1 entry maps a frame of
    /// `page_owner` instead of the table's owner: a *foreign mapping*, with
    /// which a privileged domain builds another domain (the caller checks
    /// the privilege). Entries above L1 always name the table owner's
    /// frames. The foreign frame gets the references of any mapping, so it
    /// cannot become a page table or be freed while mapped.
    #[allow(clippy::too_many_arguments)] // the two owners are the point
    pub fn update_entry_foreign(
        &mut self,
        memory: &mut impl TableMemory,
        table: Mfn,
        index: usize,
        new: u64,
        domain: DomainId,
        page_owner: DomainId,
        preserve_ad: bool,
    ) -> Result<Flush, Refusal> {
        let update = EntryUpdate {
            table,
            index,
            new,
            domain,
            page_owner,
            preserve_ad,
        };
        self.unbounded(|frames| frames.update_entry_preemptible(memory, &update, &mut None))
    }

    /// The preemptible form of [`FrameTable::update_entry_foreign`]: a new
    /// entry whose table takes too long to validate is `-ERESTART`
    /// ([`PREEMPTED`]) with nothing written (call again to go on), and an
    /// old entry whose table takes too long to devalidate leaves that
    /// devalidation in `deferred`.
    pub fn update_entry_preemptible(
        &mut self,
        memory: &mut impl TableMemory,
        update: &EntryUpdate,
        deferred: &mut Option<Mfn>,
    ) -> Result<Flush, Refusal> {
        let EntryUpdate {
            table,
            index,
            new,
            domain,
            page_owner,
            preserve_ad,
        } = *update;
        if index >= ENTRIES_PER_TABLE {
            return Err(refuse(
                XenError::EINVAL,
                "entry index beyond the 512 entries of a table",
            ));
        }
        let frame =
            *self.owned_frame_mut(table, domain, "updates a table the domain does not own")?;
        // Xen would validate an unused table on the fly; we require it to be
        // in use (pinned or referenced), which every PV kernel arranges.
        let level = match frame.page_type.table_level() {
            Some(level) if frame.type_count > 0 && frame.validated => level,
            _ => return Err(refuse(XenError::EINVAL, "is not a page table")),
        };
        check_guest_may_write_slot(level, index)?;
        if !self.spend_work() {
            return Err(PREEMPTED);
        }

        let old = memory.read_entry(table, index);
        let requested = if preserve_ad {
            keep_accessed_dirty(old, new)
        } else {
            new
        };
        let stored = check_entry_bits(level, requested)?;
        // New references first: if the new entry needs the same frame as the
        // old one (the same L1 table, say), dropping the old first could
        // devalidate it only to validate it again, or free it.
        match self.get_entry_references(memory, level, stored, domain, page_owner) {
            Ok(()) => {}
            Err(Stop::Undoing(refusal)) => {
                let target = entry_target(stored);
                self.put_page(target);
                self.defer(memory, target, deferred);
                return Err(refusal);
            }
            Err(other) => return Err(other.into_refusal()),
        }
        memory.write_entry(table, index, stored);
        let cascade = self.put_entry_references(memory, level, old, deferred);
        Ok(flush_after_replacing(old, stored).combine(cascade))
    }

    /// `update_descriptor`: writes `descriptor` into slot `index` (0..512)
    /// of `domain`'s frame `mfn`, as Xen's `do_update_descriptor`. The
    /// descriptor must pass [`check_descriptor`] whatever the frame is used
    /// for (`-EINVAL`); a frame in use as a descriptor page keeps its type
    /// for the write, any other must be able to take the `Writable` type
    /// for a moment, so that a page table can never be written this way
    /// (`-EINVAL`, invariant 2). Returns the descriptor as stored, with its
    /// fix-ups, and whether the frame is a descriptor page in use (whose
    /// live copy the caller then updates).
    pub fn update_descriptor(
        &mut self,
        memory: &mut impl TableMemory,
        mfn: Mfn,
        index: usize,
        descriptor: u64,
        domain: DomainId,
    ) -> Result<(u64, bool), Refusal> {
        if index >= DESCRIPTORS_PER_PAGE {
            return Err(refuse(
                XenError::EINVAL,
                "descriptor index beyond the 512 descriptors of a page",
            ));
        }
        let stored = check_descriptor(descriptor)
            .map_err(|BadDescriptor(reason)| refuse(XenError::EINVAL, reason))?;
        let frame = *self.owned_frame_mut(
            mfn,
            domain,
            "updates a descriptor in a frame the domain does not own",
        )?;
        let in_use = frame.page_type == PageType::SegmentDescriptor && frame.type_count > 0;
        let page_type = if in_use {
            PageType::SegmentDescriptor
        } else {
            PageType::Writable
        };
        self.get_page(mfn, domain)?;
        if let Err(refusal) = self.get_page_type(memory, mfn, page_type, domain) {
            self.put_page(mfn);
            return Err(refusal);
        }
        memory.write_entry(mfn, index, stored);
        // Neither type has references to drop: no flush.
        let _no_flush = self.put_page_type(memory, mfn);
        self.put_page(mfn);
        Ok((stored, in_use))
    }

    /// `MMUEXT_PIN_Lx_TABLE`: keeps `mfn` validated as a table of `level`
    /// until unpinned (a general and a type reference). `-EINVAL` if it is
    /// already pinned. Not preemptible.
    pub fn pin(
        &mut self,
        memory: &mut impl TableMemory,
        mfn: Mfn,
        level: u8,
        domain: DomainId,
    ) -> Result<(), Refusal> {
        self.unbounded(|table| table.pin_preemptible(memory, mfn, level, domain, &mut None))
    }

    /// The preemptible form of [`FrameTable::pin`]: `-ERESTART`
    /// ([`PREEMPTED`]) when the validation ran out of budget (the progress
    /// stays in the frames; the same call made again goes on), and a failed
    /// validation whose undo ran out of budget leaves it in `deferred`.
    pub fn pin_preemptible(
        &mut self,
        memory: &mut impl TableMemory,
        mfn: Mfn,
        level: u8,
        domain: DomainId,
        deferred: &mut Option<Mfn>,
    ) -> Result<(), Refusal> {
        let page_type = PageType::for_level(level)
            .ok_or(refuse(XenError::EINVAL, "page-table level must be 1 to 4"))?;
        if self
            .owned_frame_mut(mfn, domain, "pins a frame the domain does not own")?
            .pinned
        {
            return Err(refuse(XenError::EINVAL, "frame is already pinned"));
        }
        if !self.spend_work() {
            return Err(PREEMPTED);
        }
        self.get_page(mfn, domain)?;
        match self.get_type(memory, mfn, page_type, domain) {
            Ok(()) => {
                if let Some(frame) = self.frame_mut(mfn) {
                    frame.pinned = true;
                }
                Ok(())
            }
            Err(stop) => {
                self.put_page(mfn);
                if let Stop::Undoing(_) = stop {
                    self.defer(memory, mfn, deferred);
                }
                Err(stop.into_refusal())
            }
        }
    }

    /// `MMUEXT_UNPIN_TABLE`: drops the pin's references, devalidating the
    /// table if nothing else uses it. `-EINVAL` if it is not pinned. Not
    /// preemptible.
    pub fn unpin(
        &mut self,
        memory: &mut impl TableMemory,
        mfn: Mfn,
        domain: DomainId,
    ) -> Result<Flush, Refusal> {
        self.unbounded(|table| table.unpin_preemptible(memory, mfn, domain, &mut None))
    }

    /// The preemptible form of [`FrameTable::unpin`]: the unpin itself is
    /// done at once (as in Xen); a devalidation that runs out of budget goes
    /// on in `deferred`.
    pub fn unpin_preemptible(
        &mut self,
        memory: &mut impl TableMemory,
        mfn: Mfn,
        domain: DomainId,
        deferred: &mut Option<Mfn>,
    ) -> Result<Flush, Refusal> {
        let frame = self.owned_frame_mut(mfn, domain, "unpins a frame the domain does not own")?;
        if !frame.pinned {
            return Err(refuse(XenError::EINVAL, "frame is not pinned"));
        }
        if !self.spend_work() {
            return Err(PREEMPTED);
        }
        if let Some(frame) = self.frame_mut(mfn) {
            frame.pinned = false;
        }
        Ok(self.put_page_and_type_preemptible(memory, mfn, deferred))
    }

    /// Invariant 6: the hypervisor is about to write `mfn` (owned by
    /// `domain`) on its own, for as long as the domain lives. Takes a
    /// general and a `Writable` type reference, so that the frame can never
    /// become a page table or a descriptor page while the hold lasts.
    /// Refused if the frame is already in use as a table (`-EINVAL`) or
    /// already held (`-EBUSY`).
    pub fn hold_for_hypervisor(
        &mut self,
        memory: &mut impl TableMemory,
        mfn: Mfn,
        domain: DomainId,
    ) -> Result<(), Refusal> {
        if self
            .owned_frame_mut(mfn, domain, "frame is not owned by the domain")?
            .hypervisor_writes
        {
            return Err(refuse(
                XenError::EBUSY,
                "the hypervisor already holds the frame",
            ));
        }
        self.get_page(mfn, domain)?;
        if let Err(refusal) = self.get_page_type(memory, mfn, PageType::Writable, domain) {
            self.put_page(mfn);
            return Err(refusal);
        }
        if let Some(frame) = self.frame_mut(mfn) {
            frame.hypervisor_writes = true;
        }
        Ok(())
    }

    /// Ends a hold taken by [`FrameTable::hold_for_hypervisor`]: the
    /// hypervisor will not write the frame again (its domain is being
    /// destroyed). Ending a hold that was never taken is a hypervisor bug:
    /// debug builds panic, release builds leave the counts alone.
    pub fn release_hypervisor_hold(&mut self, memory: &mut impl TableMemory, mfn: Mfn) {
        let held = self.frame_mut(mfn).is_some_and(|frame| {
            let held = frame.hypervisor_writes;
            frame.hypervisor_writes = false;
            held
        });
        debug_assert!(held, "release of a hypervisor hold never taken");
        if held {
            // A `Writable` type has no contents to devalidate: no flush.
            let _no_flush = self.put_page_type(memory, mfn);
            self.put_page(mfn);
        }
    }

    /// `MMUEXT_NEW_BASEPTR`: takes a general and an L4 type reference on
    /// `new`, then drops those held for `old` (if any), which must be an L4
    /// in use. The caller switches CR3, which flushes. Not preemptible.
    pub fn switch_base(
        &mut self,
        memory: &mut impl TableMemory,
        new: Mfn,
        old: Option<Mfn>,
        domain: DomainId,
    ) -> Result<(), Refusal> {
        self.unbounded(|table| table.switch_base_preemptible(memory, new, old, domain, &mut None))
    }

    /// The preemptible form of [`FrameTable::switch_base`]: `-ERESTART`
    /// ([`PREEMPTED`]) while the new L4 is not validated yet; the old one's
    /// devalidation, if it runs out of budget, goes on in `deferred`.
    pub fn switch_base_preemptible(
        &mut self,
        memory: &mut impl TableMemory,
        new: Mfn,
        old: Option<Mfn>,
        domain: DomainId,
        deferred: &mut Option<Mfn>,
    ) -> Result<(), Refusal> {
        if let Some(old) = old {
            let frame = self.owned_frame_mut(old, domain, "old base is not the domain's")?;
            if frame.page_type != PageType::L4 || frame.type_count == 0 {
                return Err(refuse(
                    XenError::EINVAL,
                    "old base is not an L4 table in use",
                ));
            }
        }
        if !self.spend_work() {
            return Err(PREEMPTED);
        }
        self.get_page(new, domain)?;
        if let Err(stop) = self.get_type(memory, new, PageType::L4, domain) {
            self.put_page(new);
            if let Stop::Undoing(_) = stop {
                self.defer(memory, new, deferred);
            }
            return Err(stop.into_refusal());
        }
        if let Some(old) = old {
            // Loading CR3 flushes the non-global TLB entries, which is all a
            // PV guest has: the caller's switch covers this flush.
            let _covered_by_cr3_load = self.put_page_and_type_preemptible(memory, old, deferred);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Long random sequences of operations, with [`check_invariants`] after
    /// every step (in `frame_table/tests/random_sequences.rs`).
    mod random_sequences;

    /// Page-table memory as a map from (table, index) to entry; absent
    /// entries read as 0.
    #[derive(Default)]
    struct FakeMemory {
        entries: HashMap<(Mfn, usize), u64>,
    }

    impl TableMemory for FakeMemory {
        fn read_entry(&self, table: Mfn, index: usize) -> u64 {
            assert!(index < ENTRIES_PER_TABLE);
            self.entries.get(&(table, index)).copied().unwrap_or(0)
        }
        fn write_entry(&mut self, table: Mfn, index: usize, value: u64) {
            assert!(index < ENTRIES_PER_TABLE);
            self.entries.insert((table, index), value);
        }
    }

    const DOM: DomainId = 1;
    const OTHER: DomainId = 2;
    const FRAMES: usize = 64;

    const L4: Mfn = 10;
    const L3: Mfn = 11;
    const L2: Mfn = 12;
    const L1: Mfn = 13;
    /// A second L1 table, for mapping the first one.
    const L1_B: Mfn = 14;
    const DATA: Mfn = 20;
    const DATA2: Mfn = 21;
    const SPARE: Mfn = 22;
    const FOREIGN: Mfn = 30;
    const XEN_FRAME: Mfn = 31;

    const P: u64 = PTE_PRESENT;
    const W: u64 = PTE_WRITABLE;
    const U: u64 = PTE_USER;

    fn pte(mfn: Mfn, flags: u64) -> u64 {
        (mfn << 12) | flags
    }

    fn hypervisor_slots() -> [u64; 16] {
        core::array::from_fn(|i| pte(0x1000 + i as u64, P | W))
    }

    fn frames() -> Vec<FrameInfo> {
        vec![FrameInfo::FREE; FRAMES]
    }

    /// Gives DOM frames 10..=29, OTHER frame 30, the hypervisor frame 31.
    fn assign_all(table: &mut FrameTable) {
        for mfn in 10..30 {
            table.assign(mfn, Owner::Domain(DOM)).unwrap();
        }
        table.assign(FOREIGN, Owner::Domain(OTHER)).unwrap();
        table.assign(XEN_FRAME, Owner::Hypervisor).unwrap();
    }

    /// The setup most tests share: [`FRAMES`] frames of which DOM owns
    /// 10..=29, OTHER frame 30 and the hypervisor frame 31 ([`assign_all`]),
    /// and empty page-table memory. Declares `$table` (a [`FrameTable`]) and
    /// `$memory` (a [`FakeMemory`]) in the test's own scope: a macro rather
    /// than a function because the table borrows frames that must live as
    /// long as the test.
    /// `fixture!(table, memory, unassigned)` leaves every frame free, for
    /// the tests of assignment itself.
    macro_rules! fixture {
        ($table:ident, $memory:ident) => {
            fixture!($table, $memory, unassigned);
            assign_all(&mut $table);
        };
        ($table:ident, $memory:ident, unassigned) => {
            let mut frames = frames();
            // Some tests only read the memory.
            #[allow(unused_mut)]
            let mut $memory = FakeMemory::default();
            let mut $table = FrameTable::new(&mut frames, hypervisor_slots());
        };
    }

    /// Writes (unvalidated, as a domain builder would) a tree
    /// L4[0] -> L3[0] -> L2[0] -> L1, whose entry 0 maps DATA writable and
    /// entry 1 maps DATA2 read-only; L4 slot 256 holds guest junk.
    fn write_tree(memory: &mut FakeMemory) {
        memory.write_entry(L4, 0, pte(L3, P | W));
        memory.write_entry(L4, 256, pte(DATA, P | W));
        memory.write_entry(L3, 0, pte(L2, P | W));
        memory.write_entry(L2, 0, pte(L1, P | W));
        memory.write_entry(L1, 0, pte(DATA, P | W));
        memory.write_entry(L1, 1, pte(DATA2, P));
    }

    fn counts(table: &FrameTable) -> Vec<(u32, u32, bool)> {
        (0..table.frame_count())
            .map(|mfn| {
                let frame = table.info(mfn).unwrap();
                (frame.ref_count, frame.type_count, frame.pinned)
            })
            .collect()
    }

    /// The domains a test's frame table lives beside: the domain records
    /// that exist (alive or dying), and those privileged to map other
    /// domains' frames (foreign mappings, L1 entries only).
    struct Domains<'a> {
        records: &'a [DomainId],
        privileged: &'a [DomainId],
    }

    /// Most tests: both domains exist, neither maps the other's frames.
    const BOTH_DOMAINS: Domains = Domains {
        records: &[DOM, OTHER],
        privileged: &[],
    };

    /// The global invariants, with the usual domains ([`BOTH_DOMAINS`]).
    fn check_invariants(table: &FrameTable, memory: &FakeMemory, bases: &[Mfn]) {
        check_invariants_with(table, memory, bases, &BOTH_DOMAINS);
    }

    /// The global invariants, checked against the actual table contents:
    /// - a frame owned by a domain belongs to one whose record exists (an
    ///   owner ID is valid only while its record does: "Owners");
    /// - no frame in use as a page table is mapped writable by a validated L1;
    /// - every present entry of a validated table maps a frame of its owner
    ///   (or, at L1 in a privileged domain's table, a foreign frame), has
    ///   the user bit, and its target has the type the entry needs;
    /// - L4 hypervisor slots hold the hypervisor's entries;
    /// - every ref and type count equals the references that exist: the
    ///   allocation, entries of validated tables, pins and `bases`;
    /// - a page table is validated exactly while its type count is > 0.
    fn check_invariants_with(
        table: &FrameTable,
        memory: &FakeMemory,
        bases: &[Mfn],
        domains: &Domains,
    ) {
        check_all_invariants(table, memory, bases, &[], domains);
    }

    /// [`check_invariants_with`], where `descriptor_pages` lists the
    /// general and segment-descriptor type references held (a pair per
    /// installed GDT frame, as a vCPU's GDT holds them): each such frame has every
    /// descriptor in the form [`check_descriptor`] stores.
    fn check_all_invariants(
        table: &FrameTable,
        memory: &FakeMemory,
        bases: &[Mfn],
        descriptor_pages: &[Mfn],
        domains: &Domains,
    ) {
        for &page in descriptor_pages {
            let frame = table.info(page).unwrap();
            assert_eq!(frame.page_type, PageType::SegmentDescriptor);
            assert!(frame.validated, "descriptor page {page} not validated");
            for index in 0..DESCRIPTORS_PER_PAGE {
                let descriptor = memory.read_entry(page, index);
                assert_eq!(
                    check_descriptor(descriptor),
                    Ok(descriptor),
                    "descriptor {page}[{index}] is not checked"
                );
            }
        }
        let n = table.frame_count() as usize;
        let mut refs = vec![0u32; n];
        let mut types = vec![0u32; n];
        for mfn in 0..n {
            let frame = table.info(mfn as Mfn).unwrap();
            if frame.owner == Owner::Free {
                assert_eq!(*frame, FrameInfo::FREE, "free frame {mfn} has state");
                continue;
            }
            if let Owner::Domain(owner) = frame.owner {
                assert!(
                    domains.records.contains(&owner),
                    "frame {mfn} is owned by domain {owner}, which has no record: \
                     a new domain given ID {owner} would inherit it"
                );
            }
            if frame.relinquished {
                // Given up by its dying owner: only others' references
                // keep it, and the last of them frees it.
                assert!(frame.ref_count > 0, "relinquished frame {mfn} leaked");
            } else {
                refs[mfn] += 1;
            }
            if frame.hypervisor_writes {
                // Invariant 6.
                assert_eq!(
                    frame.page_type,
                    PageType::Writable,
                    "frame {mfn} the hypervisor writes is not typed writable"
                );
                refs[mfn] += 1;
                types[mfn] += 1;
            }
            if frame.pinned {
                assert!(
                    frame.page_type.table_level().is_some(),
                    "pinned non-table {mfn}"
                );
                refs[mfn] += 1;
                types[mfn] += 1;
            }
            if frame.type_count > 0 {
                assert!(frame.validated, "frame {mfn} in use but not validated");
            }
            if frame.partial != Partial::None {
                // Half validated or half devalidated: nothing relies on it
                // as a table, but its entries hold references (below).
                assert!(
                    frame.page_type.table_level().is_some(),
                    "partial non-table {mfn}"
                );
                assert_eq!(frame.type_count, 0, "partial frame {mfn} in use");
                assert!(!frame.validated && !frame.pinned, "partial frame {mfn}");
            } else if frame.page_type.table_level().is_some() {
                assert_eq!(frame.validated, frame.type_count > 0, "table {mfn}");
            }
        }
        for &base in bases {
            assert_eq!(table.info(base).unwrap().page_type, PageType::L4);
            refs[base as usize] += 1;
            types[base as usize] += 1;
        }
        for &page in descriptor_pages {
            refs[page as usize] += 1;
            types[page as usize] += 1;
        }
        for mfn in 0..n {
            let frame = *table.info(mfn as Mfn).unwrap();
            let Some(level) = frame.page_type.table_level() else {
                continue;
            };
            // The entries that hold references: all of a table in use, the
            // checked ones of a table being validated, those not yet given
            // back of one being devalidated.
            let holding = match frame.partial {
                Partial::None if frame.type_count > 0 => ENTRIES_PER_TABLE,
                Partial::None => 0,
                Partial::Validating { done } => usize::from(done),
                Partial::Devalidating { remaining } => usize::from(remaining),
            };
            let Owner::Domain(domain) = frame.owner else {
                panic!("table {mfn} not owned by a domain");
            };
            for index in 0..holding {
                let entry = memory.read_entry(mfn as Mfn, index);
                if is_hypervisor_slot(level, index) {
                    assert_eq!(entry, table.hypervisor_slots[index - 256]);
                    continue;
                }
                if !is_present(entry) {
                    continue;
                }
                let target = entry_target(entry);
                let target_frame = table.info(target).expect("entry beyond memory");
                // The last entry of a table being devalidated may be half
                // done: its type reference has become the devalidation of
                // its target (see `Partial`), and if the table's validation
                // failed there, the entry was never stored with its user bit.
                let half_done = level > 1
                    && matches!(frame.partial, Partial::Devalidating { .. })
                    && index + 1 == holding
                    && matches!(target_frame.partial, Partial::Devalidating { .. });
                if !half_done {
                    assert_ne!(
                        entry & PTE_USER,
                        0,
                        "entry {mfn}[{index}] lacks the user bit"
                    );
                }
                let foreign_allowed = level == 1 && domains.privileged.contains(&domain);
                if !(foreign_allowed && matches!(target_frame.owner, Owner::Domain(_))) {
                    assert_eq!(target_frame.owner, Owner::Domain(domain), "foreign mapping");
                }
                refs[target as usize] += 1;
                if level == 1 && entry & PTE_WRITABLE != 0 {
                    // Invariant 2, stated directly.
                    assert!(
                        target_frame.page_type.table_level().is_none()
                            || target_frame.type_count == 0,
                        "page table {target} mapped writable by {mfn}[{index}]"
                    );
                    assert_eq!(target_frame.page_type, PageType::Writable);
                    types[target as usize] += 1;
                } else if level > 1 {
                    assert_eq!(Some(target_frame.page_type), PageType::for_level(level - 1));
                    if !half_done {
                        assert_eq!(target_frame.partial, Partial::None, "entry {mfn}[{index}]");
                        types[target as usize] += 1;
                    }
                }
            }
        }
        for mfn in 0..n {
            let frame = table.info(mfn as Mfn).unwrap();
            assert_eq!(frame.ref_count, refs[mfn], "ref count of frame {mfn}");
            assert_eq!(frame.type_count, types[mfn], "type count of frame {mfn}");
        }
    }

    #[test]
    #[should_panic(expected = "ref count of frame 20")]
    fn checker_notices_a_lost_reference() {
        fixture!(table, memory);
        write_tree(&mut memory);
        table.pin(&mut memory, L4, 4, DOM).unwrap();
        table.frames[DATA as usize].ref_count -= 1;
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    #[should_panic(expected = "mapped writable")]
    fn checker_notices_a_writable_page_table() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        // What a guest writing its page table directly would do.
        memory.write_entry(L1_B, 0, pte(L1, P | W | U));
        check_invariants(&table, &memory, &[]);
    }

    /// Pins L1 (empty) and L1_B (empty) so that entries can be updated.
    fn pin_empty_l1s(table: &mut FrameTable, memory: &mut FakeMemory) {
        table.pin(memory, L1, 1, DOM).unwrap();
        table.pin(memory, L1_B, 1, DOM).unwrap();
    }

    fn error_of<T: core::fmt::Debug>(result: Result<T, Refusal>) -> XenError {
        result.unwrap_err().error
    }

    // --- Page types ------------------------------------------------------

    #[test]
    fn page_type_levels_round_trip() {
        for level in 1..=4 {
            assert_eq!(
                PageType::for_level(level).unwrap().table_level(),
                Some(level)
            );
        }
        assert_eq!(PageType::for_level(0), None);
        assert_eq!(PageType::for_level(5), None);
        assert_eq!(PageType::Writable.table_level(), None);
    }

    #[test]
    fn type_none_cannot_be_taken() {
        fixture!(table, memory);
        assert_eq!(
            error_of(table.get_page_type(&mut memory, DATA, PageType::None, DOM)),
            XenError::EINVAL
        );
        check_invariants(&table, &memory, &[]);
    }

    // --- Segment-descriptor pages ------------------------------------------

    /// A flat data segment of DPL 3, DPL 0 code, and a call gate to the
    /// hypervisor's code selector 0xe008.
    const DATA_DPL3: u64 = 0x00cf_f200_0000_ffff;
    const CODE_DPL0: u64 = 0x00af_9a00_0000_ffff;
    const GATE_TO_RING_0: u64 = 0x0000_ec00_e008_1000;
    const TSS_32: u64 = 0x0000_e900_0000_0067;

    /// What `set_gdt` takes on each frame: a general and a type reference.
    fn install_gdt_frame(
        table: &mut FrameTable,
        memory: &mut FakeMemory,
        mfn: Mfn,
    ) -> Result<(), Refusal> {
        table.get_page(mfn, DOM)?;
        table
            .get_page_type(memory, mfn, PageType::SegmentDescriptor, DOM)
            .inspect_err(|_| table.put_page(mfn))
    }

    /// What tearing the GDT down gives back.
    fn remove_gdt_frame(table: &mut FrameTable, memory: &mut FakeMemory, mfn: Mfn) {
        assert_eq!(table.put_page_type(memory, mfn), Flush::None);
        table.put_page(mfn);
    }

    #[test]
    fn descriptor_page_validates_and_fixes_up_dpl() {
        fixture!(table, memory);
        memory.write_entry(DATA, 1, DATA_DPL3);
        memory.write_entry(DATA, 2, CODE_DPL0);
        install_gdt_frame(&mut table, &mut memory, DATA).unwrap();
        assert_eq!(memory.read_entry(DATA, 1), DATA_DPL3);
        assert_eq!(memory.read_entry(DATA, 2), CODE_DPL0 | (3 << 45));
        check_all_invariants(&table, &memory, &[], &[DATA], &BOTH_DOMAINS);
        // A second user of the same GDT frame shares the type.
        install_gdt_frame(&mut table, &mut memory, DATA).unwrap();
        check_all_invariants(&table, &memory, &[], &[DATA, DATA], &BOTH_DOMAINS);
        remove_gdt_frame(&mut table, &mut memory, DATA);
        remove_gdt_frame(&mut table, &mut memory, DATA);
        assert!(!table.info(DATA).unwrap().validated);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn descriptor_page_with_a_bad_descriptor_is_refused_and_left_alone() {
        for bad in [GATE_TO_RING_0, TSS_32] {
            fixture!(table, memory);
            memory.write_entry(DATA, 0, CODE_DPL0);
            memory.write_entry(DATA, 511, bad);
            assert_eq!(
                error_of(install_gdt_frame(&mut table, &mut memory, DATA)),
                XenError::EINVAL
            );
            // Unchanged: not even the fix-up of entry 0 was written.
            assert_eq!(memory.read_entry(DATA, 0), CODE_DPL0);
            assert_eq!(table.info(DATA).unwrap().type_count, 0);
            check_invariants(&table, &memory, &[]);
        }
    }

    #[test]
    fn descriptor_page_and_writable_mapping_exclude_each_other() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        // Mapped writable: it cannot become a descriptor page.
        let _ = table
            .update_entry(&mut memory, L1, 0, pte(DATA, P | W), DOM, false)
            .unwrap();
        assert_eq!(
            error_of(table.get_page_type(&mut memory, DATA, PageType::SegmentDescriptor, DOM)),
            XenError::EINVAL
        );
        // A descriptor page cannot be mapped writable, only read-only.
        install_gdt_frame(&mut table, &mut memory, DATA2).unwrap();
        assert_eq!(
            error_of(table.update_entry(&mut memory, L1, 1, pte(DATA2, P | W), DOM, false)),
            XenError::EINVAL
        );
        let _ = table
            .update_entry(&mut memory, L1, 1, pte(DATA2, P), DOM, false)
            .unwrap();
        // Nor can it become a page table, nor be released while in use.
        assert_eq!(
            error_of(table.pin(&mut memory, DATA2, 1, DOM)),
            XenError::EINVAL
        );
        assert_eq!(
            error_of(table.release(DATA2, Owner::Domain(DOM))),
            XenError::EBUSY
        );
        check_all_invariants(&table, &memory, &[], &[DATA2], &BOTH_DOMAINS);
    }

    #[test]
    fn descriptor_page_of_another_domain_is_refused() {
        fixture!(table, memory);
        for mfn in [FOREIGN, XEN_FRAME, 1000] {
            assert_eq!(
                error_of(table.get_page_type(&mut memory, mfn, PageType::SegmentDescriptor, DOM)),
                XenError::EPERM
            );
        }
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn update_descriptor_checks_the_descriptor_and_the_frame() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        // A plain frame takes a checked descriptor (with its fix-up).
        assert_eq!(
            table.update_descriptor(&mut memory, DATA, 3, CODE_DPL0, DOM),
            Ok((CODE_DPL0 | (3 << 45), false))
        );
        assert_eq!(memory.read_entry(DATA, 3), CODE_DPL0 | (3 << 45));
        // A bad descriptor is refused wherever it goes.
        for bad in [GATE_TO_RING_0, TSS_32] {
            assert_eq!(
                error_of(table.update_descriptor(&mut memory, DATA, 4, bad, DOM)),
                XenError::EINVAL
            );
        }
        assert_eq!(memory.read_entry(DATA, 4), 0);
        // A page table is never written this way.
        assert_eq!(
            error_of(table.update_descriptor(&mut memory, L1, 5, DATA_DPL3, DOM)),
            XenError::EINVAL
        );
        assert_eq!(memory.read_entry(L1, 5), 0);
        // Nor another domain's frame, nor one beyond memory, nor slot 512.
        assert_eq!(
            error_of(table.update_descriptor(&mut memory, FOREIGN, 0, DATA_DPL3, DOM)),
            XenError::EPERM
        );
        assert_eq!(
            error_of(table.update_descriptor(&mut memory, 1000, 0, DATA_DPL3, DOM)),
            XenError::EPERM
        );
        assert_eq!(
            error_of(table.update_descriptor(&mut memory, DATA, 512, DATA_DPL3, DOM)),
            XenError::EINVAL
        );
        // A descriptor page in use is updated in place, keeping its type.
        install_gdt_frame(&mut table, &mut memory, DATA).unwrap();
        assert_eq!(
            table.update_descriptor(&mut memory, DATA, 6, DATA_DPL3, DOM),
            Ok((DATA_DPL3, true))
        );
        assert_eq!(table.info(DATA).unwrap().type_count, 1);
        assert_eq!(
            error_of(table.update_descriptor(&mut memory, DATA, 7, GATE_TO_RING_0, DOM)),
            XenError::EINVAL
        );
        check_all_invariants(&table, &memory, &[], &[DATA], &BOTH_DOMAINS);
    }

    #[test]
    fn hypervisor_held_frame_cannot_become_a_descriptor_page() {
        fixture!(table, memory);
        table.hold_for_hypervisor(&mut memory, DATA, DOM).unwrap();
        assert_eq!(
            error_of(table.get_page_type(&mut memory, DATA, PageType::SegmentDescriptor, DOM)),
            XenError::EINVAL
        );
        check_invariants(&table, &memory, &[]);
    }

    // --- Ownership: assign and release -----------------------------------

    #[test]
    fn assign_gives_owner_and_allocation_reference() {
        fixture!(table, memory, unassigned);
        table.assign(DATA, Owner::Domain(DOM)).unwrap();
        let frame = table.info(DATA).unwrap();
        assert_eq!(frame.owner, Owner::Domain(DOM));
        assert_eq!((frame.ref_count, frame.type_count), (1, 0));
        assert!(table.is_owned_by(DATA, DOM));
        assert!(!table.is_owned_by(DATA, OTHER));
        assert!(!table.is_owned_by(1000, DOM));
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn assign_twice_is_refused_busy() {
        fixture!(table, memory, unassigned);
        table.assign(DATA, Owner::Domain(DOM)).unwrap();
        assert_eq!(
            error_of(table.assign(DATA, Owner::Domain(OTHER))),
            XenError::EBUSY
        );
        assert_eq!(error_of(table.assign(DATA, Owner::Free)), XenError::EINVAL);
        assert_eq!(
            error_of(table.assign(1000, Owner::Domain(DOM))),
            XenError::EINVAL
        );
        assert_eq!(table.info(DATA).unwrap().owner, Owner::Domain(DOM));
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn release_returns_frame_to_free_and_it_can_be_reassigned() {
        fixture!(table, memory, unassigned);
        table.assign(DATA, Owner::Domain(DOM)).unwrap();
        table.release(DATA, Owner::Domain(DOM)).unwrap();
        assert_eq!(*table.info(DATA).unwrap(), FrameInfo::FREE);
        assert_eq!(
            error_of(table.release(DATA, Owner::Domain(DOM))),
            XenError::EINVAL
        );
        table.assign(DATA, Owner::Domain(OTHER)).unwrap();
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn release_by_non_owner_is_refused() {
        fixture!(table, memory, unassigned);
        table.assign(DATA, Owner::Domain(DOM)).unwrap();
        assert_eq!(
            error_of(table.release(DATA, Owner::Domain(OTHER))),
            XenError::EPERM
        );
        assert_eq!(
            error_of(table.release(DATA, Owner::Hypervisor)),
            XenError::EPERM
        );
        assert!(table.is_owned_by(DATA, DOM));
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn release_while_mapped_read_only_is_refused_busy() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        let _ = table
            .update_entry(&mut memory, L1, 0, pte(DATA, P), DOM, false)
            .unwrap();
        assert_eq!(
            error_of(table.release(DATA, Owner::Domain(DOM))),
            XenError::EBUSY
        );
        // Unmapped, it can go.
        let flush = table
            .update_entry(&mut memory, L1, 0, 0, DOM, false)
            .unwrap();
        assert_eq!(flush, Flush::Needed);
        table.release(DATA, Owner::Domain(DOM)).unwrap();
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn release_while_typed_is_refused_busy() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        // A pinned page table.
        assert_eq!(
            error_of(table.release(L1, Owner::Domain(DOM))),
            XenError::EBUSY
        );
        // A frame holding only a type reference (no extra general one).
        table
            .get_page_type(&mut memory, DATA, PageType::Writable, DOM)
            .unwrap();
        assert_eq!(table.info(DATA).unwrap().ref_count, 1);
        assert_eq!(
            error_of(table.release(DATA, Owner::Domain(DOM))),
            XenError::EBUSY
        );
        let _ = table.put_page_type(&mut memory, DATA);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn release_of_current_base_is_refused_busy() {
        fixture!(table, memory);
        write_tree(&mut memory);
        table.switch_base(&mut memory, L4, None, DOM).unwrap();
        assert_eq!(
            error_of(table.release(L4, Owner::Domain(DOM))),
            XenError::EBUSY
        );
        // Its children are busy too: they are page tables in use.
        assert_eq!(
            error_of(table.release(L1, Owner::Domain(DOM))),
            XenError::EBUSY
        );
        assert_eq!(
            error_of(table.release(DATA, Owner::Domain(DOM))),
            XenError::EBUSY
        );
        check_invariants(&table, &memory, &[L4]);
    }

    #[test]
    fn get_page_of_foreign_or_missing_frame_is_refused() {
        fixture!(table, memory);
        assert_eq!(error_of(table.get_page(FOREIGN, DOM)), XenError::EPERM);
        assert_eq!(error_of(table.get_page(XEN_FRAME, DOM)), XenError::EPERM);
        assert_eq!(error_of(table.get_page(1000, DOM)), XenError::EPERM);
        table.get_page(DATA, DOM).unwrap();
        assert_eq!(table.info(DATA).unwrap().ref_count, 2);
        table.put_page(DATA);
        check_invariants(&table, &memory, &[]);
    }

    // --- L1 entries --------------------------------------------------------

    #[test]
    fn mapping_owned_frame_writable_gives_it_writable_type() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        let flush = table
            .update_entry(&mut memory, L1, 5, pte(DATA, P | W), DOM, false)
            .unwrap();
        assert_eq!(flush, Flush::None);
        let frame = table.info(DATA).unwrap();
        assert_eq!(frame.page_type, PageType::Writable);
        assert_eq!((frame.ref_count, frame.type_count), (2, 1));
        // A second writable mapping adds to the same type.
        let _ = table
            .update_entry(&mut memory, L1_B, 0, pte(DATA, P | W), DOM, false)
            .unwrap();
        assert_eq!(table.info(DATA).unwrap().type_count, 2);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn present_entries_get_the_user_bit() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        let _ = table
            .update_entry(&mut memory, L1, 0, pte(DATA, P), DOM, false)
            .unwrap();
        assert_eq!(memory.read_entry(L1, 0), pte(DATA, P | U));
        // Non-present entries are stored as given (guest data).
        let _ = table
            .update_entry(&mut memory, L1, 1, 0xdead_0000, DOM, false)
            .unwrap();
        assert_eq!(memory.read_entry(L1, 1), 0xdead_0000);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn mapping_foreign_frame_is_refused() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        let before = counts(&table);
        let refusal = table.update_entry(&mut memory, L1, 0, pte(FOREIGN, P), DOM, false);
        assert_eq!(
            refusal,
            Err(refuse(
                XenError::EPERM,
                "maps a frame the domain does not own"
            ))
        );
        assert_eq!(counts(&table), before);
        assert_eq!(memory.read_entry(L1, 0), 0);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn mapping_hypervisor_frame_is_refused_even_read_only() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        let result = table.update_entry(&mut memory, L1, 0, pte(XEN_FRAME, P), DOM, false);
        assert_eq!(error_of(result), XenError::EPERM);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn mapping_out_of_range_frame_is_refused() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        let result = table.update_entry(&mut memory, L1, 0, pte(FRAMES as Mfn, P), DOM, false);
        assert_eq!(error_of(result), XenError::EPERM);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn reserved_bits_are_refused_at_every_level() {
        for bit in 52..=62 {
            assert_eq!(
                check_entry_bits(1, pte(DATA, P) | 1 << bit),
                Err(refuse(XenError::EINVAL, "sets reserved bits"))
            );
            assert!(check_entry_bits(4, pte(DATA, P) | 1 << bit).is_err());
        }
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        let result = table.update_entry(&mut memory, L1, 0, pte(DATA, P) | 1 << 52, DOM, false);
        assert_eq!(error_of(result), XenError::EINVAL);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn pat_bit_at_l1_is_refused() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        let result = table.update_entry(&mut memory, L1, 0, pte(DATA, P | PTE_PAT_L1), DOM, false);
        assert_eq!(
            result,
            Err(refuse(
                XenError::EINVAL,
                "sets the PAT bit, which is not supported"
            ))
        );
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn superpages_at_l2_and_l3_are_refused() {
        for level in [2, 3] {
            assert_eq!(
                check_entry_bits(level, pte(DATA, P | PTE_PAGE_SIZE)),
                Err(refuse(
                    XenError::EINVAL,
                    "asks for a superpage, which is not supported"
                ))
            );
        }
        fixture!(table, memory);
        write_tree(&mut memory);
        table.pin(&mut memory, L4, 4, DOM).unwrap();
        for (table_mfn, target) in [(L2, SPARE), (L3, SPARE)] {
            let entry = pte(target, P | W | PTE_PAGE_SIZE);
            let result = table.update_entry(&mut memory, table_mfn, 1, entry, DOM, false);
            assert_eq!(error_of(result), XenError::EINVAL);
        }
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn global_and_bit_7_at_l4_are_refused_global_at_l1_allowed() {
        assert!(check_entry_bits(4, pte(L3, P | PTE_GLOBAL)).is_err());
        assert!(check_entry_bits(4, pte(L3, P | PTE_PAGE_SIZE)).is_err());
        assert!(check_entry_bits(2, pte(L1, P | PTE_GLOBAL)).is_err());
        assert!(check_entry_bits(1, pte(DATA, P | PTE_GLOBAL)).is_ok());

        fixture!(table, memory);
        write_tree(&mut memory);
        table.pin(&mut memory, L4, 4, DOM).unwrap();
        table.pin(&mut memory, L1_B, 1, DOM).unwrap();
        // A second L3 to point at: an empty one, pinned so it is in use.
        table.pin(&mut memory, SPARE, 3, DOM).unwrap();
        let result = table.update_entry(&mut memory, L4, 1, pte(SPARE, P | PTE_GLOBAL), DOM, false);
        assert_eq!(error_of(result), XenError::EINVAL);
        let _ = table
            .update_entry(&mut memory, L1_B, 0, pte(DATA2, P | PTE_GLOBAL), DOM, false)
            .unwrap();
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn nx_cache_and_software_bits_are_allowed() {
        let bits = PTE_NO_EXECUTE | 1 << 3 | 1 << 4 | 1 << 9 | 1 << 10 | 1 << 11;
        for level in 1..=4 {
            assert_eq!(
                check_entry_bits(level, pte(DATA, P) | bits),
                Ok(pte(DATA, P | U) | bits)
            );
        }
    }

    // --- Invariant 2: page tables are never writable -------------------------

    #[test]
    fn writable_frame_cannot_be_pinned_as_l1() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        let _ = table
            .update_entry(&mut memory, L1, 0, pte(SPARE, P | W), DOM, false)
            .unwrap();
        let before = counts(&table);
        assert_eq!(
            table.pin(&mut memory, SPARE, 1, DOM),
            Err(refuse(
                XenError::EINVAL,
                "frame already in use as a writable page"
            ))
        );
        assert_eq!(counts(&table), before);
        check_invariants(&table, &memory, &[]);
        // Once the writable mapping is gone (and flushed), it may.
        let flush = table
            .update_entry(&mut memory, L1, 0, pte(SPARE, P), DOM, false)
            .unwrap();
        assert_eq!(flush, Flush::Needed);
        table.pin(&mut memory, SPARE, 1, DOM).unwrap();
        assert_eq!(table.info(SPARE).unwrap().page_type, PageType::L1);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn pinned_l1_cannot_be_mapped_writable_but_can_be_read_only() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        let before = counts(&table);
        // The worked example of the opening comment.
        let result = table.update_entry(&mut memory, L1_B, 3, pte(L1, P | W), DOM, false);
        assert_eq!(
            result,
            Err(refuse(
                XenError::EINVAL,
                "frame already in use as an L1 page table"
            ))
        );
        assert_eq!(counts(&table), before);
        // Mapping itself writable is refused the same way.
        let result = table.update_entry(&mut memory, L1, 3, pte(L1, P | W), DOM, false);
        assert_eq!(error_of(result), XenError::EINVAL);
        // Read-only is fine, including a table mapping itself.
        let _ = table
            .update_entry(&mut memory, L1_B, 3, pte(L1, P), DOM, false)
            .unwrap();
        let _ = table
            .update_entry(&mut memory, L1, 3, pte(L1, P), DOM, false)
            .unwrap();
        assert_eq!(table.info(L1).unwrap().ref_count, 4);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn validation_refuses_an_l1_that_maps_itself_writable() {
        fixture!(table, memory);
        memory.write_entry(L1, 0, pte(DATA, P | W));
        memory.write_entry(L1, 7, pte(L1, P | W));
        let before = counts(&table);
        assert_eq!(
            error_of(table.pin(&mut memory, L1, 1, DOM)),
            XenError::EINVAL
        );
        assert_eq!(counts(&table), before);
        assert!(!table.info(L1).unwrap().validated);
        check_invariants(&table, &memory, &[]);
    }

    // --- Whole trees -------------------------------------------------------

    #[test]
    fn pinning_l4_validates_whole_tree_and_copies_hypervisor_slots() {
        fixture!(table, memory);
        write_tree(&mut memory);
        table.pin(&mut memory, L4, 4, DOM).unwrap();
        let expect = [
            (L4, PageType::L4, 2, 1),
            (L3, PageType::L3, 2, 1),
            (L2, PageType::L2, 2, 1),
            (L1, PageType::L1, 2, 1),
            (DATA, PageType::Writable, 2, 1),
        ];
        for (mfn, page_type, ref_count, type_count) in expect {
            let frame = table.info(mfn).unwrap();
            assert_eq!(frame.page_type, page_type, "frame {mfn}");
            assert_eq!((frame.ref_count, frame.type_count), (ref_count, type_count));
            assert!(frame.validated);
        }
        assert_eq!(table.info(DATA2).unwrap().ref_count, 2);
        assert_eq!(table.info(DATA2).unwrap().type_count, 0);
        assert!(table.info(L4).unwrap().pinned);
        let slots = hypervisor_slots();
        for (i, slot) in slots.iter().enumerate() {
            assert_eq!(memory.read_entry(L4, 256 + i), *slot);
        }
        assert_eq!(memory.read_entry(L4, 0), pte(L3, P | W | U));
        assert_eq!(memory.read_entry(L1, 1), pte(DATA2, P | U));
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn set_hypervisor_slots_applies_to_later_validations() {
        fixture!(table, memory);
        let slots = core::array::from_fn(|i| pte(0x2000 + i as u64, P));
        table.set_hypervisor_slots(slots);
        table.pin(&mut memory, L4, 4, DOM).unwrap();
        assert_eq!(memory.read_entry(L4, 271), slots[15]);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn unpinning_devalidates_and_returns_counts_to_start() {
        fixture!(table, memory);
        write_tree(&mut memory);
        let start = counts(&table);
        table.pin(&mut memory, L4, 4, DOM).unwrap();
        assert_eq!(table.unpin(&mut memory, L4, DOM), Ok(Flush::Needed));
        assert_eq!(counts(&table), start);
        for mfn in [L4, L3, L2, L1] {
            assert!(!table.info(mfn).unwrap().validated);
        }
        check_invariants(&table, &memory, &[]);
        // Now plain memory again: every frame can be given back.
        for mfn in [L4, L3, L2, L1, DATA, DATA2] {
            table.release(mfn, Owner::Domain(DOM)).unwrap();
        }
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn pin_and_unpin_refusals() {
        fixture!(table, memory);
        table.pin(&mut memory, L1, 1, DOM).unwrap();
        assert_eq!(
            table.pin(&mut memory, L1, 1, DOM),
            Err(refuse(XenError::EINVAL, "frame is already pinned"))
        );
        assert_eq!(
            error_of(table.pin(&mut memory, L1_B, 0, DOM)),
            XenError::EINVAL
        );
        assert_eq!(
            error_of(table.pin(&mut memory, L1_B, 5, DOM)),
            XenError::EINVAL
        );
        assert_eq!(
            error_of(table.pin(&mut memory, FOREIGN, 1, DOM)),
            XenError::EPERM
        );
        assert_eq!(
            error_of(table.unpin(&mut memory, L1_B, DOM)),
            XenError::EINVAL
        );
        assert_eq!(
            error_of(table.unpin(&mut memory, L1, OTHER)),
            XenError::EPERM
        );
        // A frame in use as an L1 cannot be pinned as another level.
        table
            .get_page_type(&mut memory, L1_B, PageType::L1, DOM)
            .unwrap();
        assert_eq!(
            table.pin(&mut memory, L1_B, 2, DOM),
            Err(refuse(
                XenError::EINVAL,
                "frame already in use as an L1 page table"
            ))
        );
        assert_eq!(table.put_page_type(&mut memory, L1_B), Flush::None);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn failed_validation_gives_back_everything_taken() {
        fixture!(table, memory);
        // L2 entry 0 -> a good L1; entry 1 -> an L1 that maps a foreign frame.
        memory.write_entry(L2, 0, pte(L1, P | W));
        memory.write_entry(L2, 1, pte(L1_B, P | W));
        memory.write_entry(L1, 0, pte(DATA, P | W));
        memory.write_entry(L1_B, 0, pte(DATA2, P | W));
        memory.write_entry(L1_B, 1, pte(FOREIGN, P));
        let start = counts(&table);
        assert_eq!(
            error_of(table.pin(&mut memory, L2, 2, DOM)),
            XenError::EPERM
        );
        assert_eq!(counts(&table), start);
        for mfn in [L2, L1, L1_B] {
            assert!(!table.info(mfn).unwrap().validated);
        }
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn l2_entry_pointing_at_an_l4_is_refused() {
        fixture!(table, memory);
        write_tree(&mut memory);
        table.pin(&mut memory, L4, 4, DOM).unwrap();
        let result = table.update_entry(&mut memory, L2, 1, pte(L4, P | W), DOM, false);
        assert_eq!(
            result,
            Err(refuse(
                XenError::EINVAL,
                "frame already in use as an L4 page table"
            ))
        );
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn l4_entry_pointing_at_the_same_l4_is_refused() {
        // During validation: the L4 is "L4, being validated" and cannot also
        // become the L3 its entry asks for.
        fixture!(table, memory);
        write_tree(&mut memory);
        memory.write_entry(L4, 1, pte(L4, P));
        let start = counts(&table);
        assert_eq!(
            error_of(table.pin(&mut memory, L4, 4, DOM)),
            XenError::EINVAL
        );
        assert_eq!(counts(&table), start);
        check_invariants(&table, &memory, &[]);

        // By update, once it is in use.
        memory.write_entry(L4, 1, 0);
        table.pin(&mut memory, L4, 4, DOM).unwrap();
        let result = table.update_entry(&mut memory, L4, 1, pte(L4, P), DOM, false);
        assert_eq!(error_of(result), XenError::EINVAL);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn l4_update_in_hypervisor_slots_is_refused() {
        fixture!(table, memory);
        write_tree(&mut memory);
        table.pin(&mut memory, L4, 4, DOM).unwrap();
        for index in [256, 263, 271] {
            for new in [0, pte(L3, P)] {
                let result = table.update_entry(&mut memory, L4, index, new, DOM, false);
                assert_eq!(error_of(result), XenError::EPERM);
            }
        }
        // Just outside the hole is the guest's.
        let _ = table
            .update_entry(&mut memory, L4, 255, pte(L3, P), DOM, false)
            .unwrap();
        let _ = table
            .update_entry(&mut memory, L4, 272, pte(L3, P), DOM, false)
            .unwrap();
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn update_of_a_frame_that_is_not_a_table_in_use_is_refused() {
        fixture!(table, memory);
        // Untyped data.
        let result = table.update_entry(&mut memory, DATA, 0, pte(DATA2, P), DOM, false);
        assert_eq!(result, Err(refuse(XenError::EINVAL, "is not a page table")));
        // A writable page.
        table
            .get_page_type(&mut memory, DATA, PageType::Writable, DOM)
            .unwrap();
        let result = table.update_entry(&mut memory, DATA, 0, pte(DATA2, P), DOM, false);
        assert_eq!(error_of(result), XenError::EINVAL);
        let _ = table.put_page_type(&mut memory, DATA);
        // A former page table whose type count fell to 0.
        table.pin(&mut memory, L1, 1, DOM).unwrap();
        let _ = table.unpin(&mut memory, L1, DOM).unwrap();
        let result = table.update_entry(&mut memory, L1, 0, pte(DATA2, P), DOM, false);
        assert_eq!(error_of(result), XenError::EINVAL);
        // Another domain's table, and a bad index.
        table.pin(&mut memory, L1, 1, DOM).unwrap();
        let result = table.update_entry(&mut memory, L1, 0, pte(FOREIGN, P), OTHER, false);
        assert_eq!(error_of(result), XenError::EPERM);
        let result = table.update_entry(&mut memory, L1, 512, pte(DATA2, P), DOM, false);
        assert_eq!(error_of(result), XenError::EINVAL);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn batch_stops_at_a_refused_update_and_keeps_earlier_ones() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        let batch = [
            (L1, 0, pte(DATA, P | W)),
            (L1, 1, pte(DATA2, P)),
            (L1, 2, pte(FOREIGN, P)),
            (L1, 3, pte(SPARE, P | W)),
        ];
        let mut done = 0;
        let mut flush = Flush::None;
        let mut failure = None;
        for (table_mfn, index, entry) in batch {
            match table.update_entry(&mut memory, table_mfn, index, entry, DOM, false) {
                Ok(f) => {
                    flush = flush.combine(f);
                    done += 1;
                }
                Err(refusal) => {
                    failure = Some(refusal.error);
                    break;
                }
            }
        }
        assert_eq!(
            (done, failure, flush),
            (2, Some(XenError::EPERM), Flush::None)
        );
        assert_eq!(memory.read_entry(L1, 0), pte(DATA, P | W | U));
        assert_eq!(memory.read_entry(L1, 1), pte(DATA2, P | U));
        assert_eq!(memory.read_entry(L1, 2), 0);
        assert_eq!(memory.read_entry(L1, 3), 0);
        assert_eq!(table.info(SPARE).unwrap().ref_count, 1);
        check_invariants(&table, &memory, &[]);
    }

    // --- Replacing entries and flushes (invariant 5) -------------------------

    #[test]
    fn replacing_an_entry_drops_the_old_target_and_needs_a_flush() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        let _ = table
            .update_entry(&mut memory, L1, 0, pte(DATA, P | W), DOM, false)
            .unwrap();
        let flush = table
            .update_entry(&mut memory, L1, 0, pte(DATA2, P | W), DOM, false)
            .unwrap();
        assert_eq!(flush, Flush::Needed);
        let old = table.info(DATA).unwrap();
        assert_eq!((old.ref_count, old.type_count), (1, 0));
        assert_eq!(table.info(DATA2).unwrap().type_count, 1);
        // Removing the mapping entirely.
        let flush = table
            .update_entry(&mut memory, L1, 0, 0, DOM, false)
            .unwrap();
        assert_eq!(flush, Flush::Needed);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn flush_is_needed_only_when_rights_are_lost() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        let mut update = |table: &mut FrameTable, entry| {
            table
                .update_entry(&mut memory, L1, 0, entry, DOM, false)
                .unwrap()
        };
        assert_eq!(update(&mut table, pte(DATA, P)), Flush::None); // new mapping
        assert_eq!(update(&mut table, pte(DATA, P | W)), Flush::None); // upgrade
        assert_eq!(update(&mut table, pte(DATA, P | W)), Flush::None); // same
        assert_eq!(update(&mut table, pte(DATA, P)), Flush::Needed); // read-only
        assert_eq!(
            update(&mut table, pte(DATA, P) | PTE_NO_EXECUTE),
            Flush::Needed
        );
        assert_eq!(update(&mut table, pte(DATA, P)), Flush::None); // executable again
        assert_eq!(update(&mut table, pte(DATA2, P)), Flush::Needed); // other frame
        assert_eq!(update(&mut table, 0), Flush::Needed); // removed
        assert_eq!(update(&mut table, 0), Flush::None); // nothing to remove
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn unlinking_the_last_reference_devalidates_the_subtree() {
        fixture!(table, memory);
        write_tree(&mut memory);
        table.pin(&mut memory, L4, 4, DOM).unwrap();
        let flush = table
            .update_entry(&mut memory, L2, 0, 0, DOM, false)
            .unwrap();
        assert_eq!(flush, Flush::Needed);
        let l1 = table.info(L1).unwrap();
        assert_eq!((l1.ref_count, l1.type_count, l1.validated), (1, 0, false));
        let data = table.info(DATA).unwrap();
        assert_eq!((data.ref_count, data.type_count), (1, 0));
        // The former L1 may now be mapped writable: it is plain memory.
        let _ = table
            .update_entry(&mut memory, L2, 0, pte(L1_B, P), DOM, false)
            .unwrap();
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn relinking_the_same_table_keeps_it_validated() {
        fixture!(table, memory);
        write_tree(&mut memory);
        table.pin(&mut memory, L4, 4, DOM).unwrap();
        // Rewriting L2[0] with the same L1 (new reference taken first).
        let flush = table
            .update_entry(&mut memory, L2, 0, pte(L1, P | W), DOM, false)
            .unwrap();
        assert_eq!(flush, Flush::None);
        assert!(table.info(L1).unwrap().validated);
        assert_eq!(table.info(DATA).unwrap().type_count, 1);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn put_page_type_reports_flush_when_devalidation_removes_mappings() {
        fixture!(table, memory);
        memory.write_entry(L1, 0, pte(DATA, P));
        table
            .get_page_type(&mut memory, L1, PageType::L1, DOM)
            .unwrap();
        table
            .get_page_type(&mut memory, L1_B, PageType::L1, DOM)
            .unwrap();
        assert_eq!(table.put_page_type(&mut memory, L1), Flush::Needed);
        assert_eq!(table.put_page_type(&mut memory, L1_B), Flush::None);
        check_invariants(&table, &memory, &[]);
    }

    #[test]
    fn preserve_ad_keeps_accessed_and_dirty() {
        fixture!(table, memory);
        pin_empty_l1s(&mut table, &mut memory);
        let _ = table
            .update_entry(&mut memory, L1, 0, pte(DATA, P | W), DOM, false)
            .unwrap();
        // The MMU sets A and D.
        let used = memory.read_entry(L1, 0) | PTE_ACCESSED | PTE_DIRTY;
        memory.write_entry(L1, 0, used);
        let _ = table
            .update_entry(&mut memory, L1, 0, pte(DATA, P | W), DOM, true)
            .unwrap();
        assert_eq!(memory.read_entry(L1, 0), used);
        let _ = table
            .update_entry(&mut memory, L1, 0, pte(DATA, P | W), DOM, false)
            .unwrap();
        assert_eq!(memory.read_entry(L1, 0), pte(DATA, P | W | U));
        // A non-present old entry's bits 5 and 6 are guest data, not A/D.
        let _ = table
            .update_entry(&mut memory, L1, 1, PTE_ACCESSED | PTE_DIRTY, DOM, false)
            .unwrap();
        let _ = table
            .update_entry(&mut memory, L1, 1, pte(DATA2, P), DOM, true)
            .unwrap();
        assert_eq!(memory.read_entry(L1, 1), pte(DATA2, P | U));
        check_invariants(&table, &memory, &[]);
    }

    // --- Base pointers -------------------------------------------------------

    #[test]
    fn switch_base_takes_l4_type_on_new_and_drops_old() {
        fixture!(table, memory);
        write_tree(&mut memory);
        table.switch_base(&mut memory, L4, None, DOM).unwrap();
        let l4 = table.info(L4).unwrap();
        assert_eq!(
            (l4.page_type, l4.ref_count, l4.type_count),
            (PageType::L4, 2, 1)
        );
        check_invariants(&table, &memory, &[L4]);

        // A second address space sharing the L3.
        memory.write_entry(SPARE, 0, pte(L3, P | W));
        table
            .switch_base(&mut memory, SPARE, Some(L4), DOM)
            .unwrap();
        let old = table.info(L4).unwrap();
        assert_eq!(
            (old.ref_count, old.type_count, old.validated),
            (1, 0, false)
        );
        assert_eq!(table.info(L3).unwrap().type_count, 1);
        check_invariants(&table, &memory, &[SPARE]);

        // Refusals: new not an L4 candidate, old not a base in use.
        let result = table.switch_base(&mut memory, DATA, Some(SPARE), DOM);
        assert_eq!(error_of(result), XenError::EINVAL);
        let result = table.switch_base(&mut memory, FOREIGN, Some(SPARE), DOM);
        assert_eq!(error_of(result), XenError::EPERM);
        let result = table.switch_base(&mut memory, SPARE, Some(L4), DOM);
        assert_eq!(error_of(result), XenError::EINVAL);
        check_invariants(&table, &memory, &[SPARE]);
    }

    #[test]
    fn foreign_mappings_only_at_l1_and_only_of_the_named_owner() {
        let mut infos = frames();
        let mut memory = FakeMemory::default();
        let mut table = FrameTable::new(&mut infos, hypervisor_slots());
        assign_all(&mut table);
        table.pin(&mut memory, L1, 1, DOM).unwrap();
        let entry = pte(FOREIGN, P | W);
        // Not named as foreign: refused.
        let refusal = table
            .update_entry(&mut memory, L1, 0, entry, DOM, false)
            .unwrap_err();
        assert_eq!(refusal.error, XenError::EPERM);
        // Named with the right owner: accepted, and the frame is Writable.
        let _ = table
            .update_entry_foreign(&mut memory, L1, 0, entry, DOM, OTHER, false)
            .unwrap();
        assert_eq!(table.info(FOREIGN).unwrap().page_type, PageType::Writable);
        // While mapped, its owner cannot make it a page table...
        assert!(table.pin(&mut memory, FOREIGN, 1, OTHER).is_err());
        // ...nor give it back.
        assert_eq!(
            table
                .release(FOREIGN, Owner::Domain(OTHER))
                .unwrap_err()
                .error,
            XenError::EBUSY
        );
        // Above L1, foreign frames are never accepted.
        table.pin(&mut memory, L2, 2, DOM).unwrap();
        let refusal = table
            .update_entry_foreign(&mut memory, L2, 0, pte(FOREIGN, P | W), DOM, OTHER, false)
            .unwrap_err();
        assert_eq!(refusal.error, XenError::EPERM);
        let _ = table
            .update_entry_foreign(&mut memory, L1, 0, 0, DOM, OTHER, false)
            .unwrap();
        table.pin(&mut memory, FOREIGN, 1, OTHER).unwrap();
        check_invariants(&table, &memory, &[]);
    }

    // --- Owners across destruction: zombies ------------------------------

    /// DOM stands for Dom0 (privileged), OTHER for the domain it destroys,
    /// FOREIGN for OTHER's frame that DOM maps writable at L1[0].
    const DOM0_AND_OTHER: Domains = Domains {
        records: &[DOM, OTHER],
        privileged: &[DOM],
    };

    /// DOM has mapped OTHER's frame FOREIGN writable, and OTHER is being
    /// destroyed: every frame of OTHER that can go has gone.
    fn destroy_other_while_mapped(table: &mut FrameTable, memory: &mut FakeMemory) {
        table.pin(memory, L1, 1, DOM).unwrap();
        let _ = table
            .update_entry_foreign(memory, L1, 0, pte(FOREIGN, P | W), DOM, OTHER, false)
            .unwrap();
        check_invariants_with(table, memory, &[], &DOM0_AND_OTHER);
        assert_eq!(
            error_of(table.release(FOREIGN, Owner::Domain(OTHER))),
            XenError::EBUSY
        );
    }

    #[test]
    fn a_mapped_frame_of_a_destroyed_domain_keeps_its_owner_until_unmapped() {
        fixture!(table, memory);
        destroy_other_while_mapped(&mut table, &mut memory);
        // The frame still names OTHER: OTHER's record (a zombie) must stay,
        // and it is consistent as long as it does.
        assert_eq!(table.info(FOREIGN).unwrap().owner, Owner::Domain(OTHER));
        check_invariants_with(&table, &memory, &[], &DOM0_AND_OTHER);
        // The last mapping goes: now the frame can be released, and OTHER's
        // record may go with it (no frame names OTHER any more).
        let flush = table
            .update_entry_foreign(&mut memory, L1, 0, 0, DOM, OTHER, false)
            .unwrap();
        assert_eq!(flush, Flush::Needed, "the caller must flush before freeing");
        table.release(FOREIGN, Owner::Domain(OTHER)).unwrap();
        let only_dom0 = Domains {
            records: &[DOM],
            privileged: &[DOM],
        };
        check_invariants_with(&table, &memory, &[], &only_dom0);
        // A new domain given OTHER's ID gets nothing of the old one's.
        assert!(!table.is_owned_by(FOREIGN, OTHER));
    }

    #[test]
    fn a_relinquished_frame_is_freed_by_the_put_of_its_last_reference() {
        let mut frames = frames();
        let mut memory = FakeMemory::default();
        let mut table = FrameTable::new(&mut frames, hypervisor_slots());
        assign_all(&mut table);
        destroy_other_while_mapped(&mut table, &mut memory);
        // Destruction gives up OTHER's frames: the unmapped one at once,
        // the mapped one when its mapping goes.
        assert_eq!(
            table.relinquish(DATA2, Owner::Domain(OTHER)),
            Err(refuse(
                XenError::EPERM,
                "releases a frame the caller does not own"
            ))
        );
        table.assign(40, Owner::Domain(OTHER)).unwrap();
        assert_eq!(
            table.relinquish(40, Owner::Domain(OTHER)),
            Ok(Relinquished::Now)
        );
        assert_eq!(
            table.relinquish(FOREIGN, Owner::Domain(OTHER)),
            Ok(Relinquished::Later)
        );
        assert_eq!(
            error_of(table.relinquish(FOREIGN, Owner::Domain(OTHER))),
            XenError::EINVAL,
            "given up once only"
        );
        check_invariants_with(&table, &memory, &[], &DOM0_AND_OTHER);
        assert!(table.take_freed().is_empty());
        let _flush = table
            .update_entry_foreign(&mut memory, L1, 0, 0, DOM, OTHER, false)
            .unwrap();
        assert_eq!(table.take_freed(), vec![(OTHER, FOREIGN)]);
        assert_eq!(*table.info(FOREIGN).unwrap(), FrameInfo::FREE);
        assert!(table.take_freed().is_empty(), "reported once");
        let only_dom0 = Domains {
            records: &[DOM],
            privileged: &[DOM],
        };
        check_invariants_with(&table, &memory, &[], &only_dom0);
    }

    #[test]
    fn a_preempted_abandon_ends_as_an_unpreempted_one() {
        // A tree pinned halfway (validation preempted), abandoned with a
        // budget of 3 at a time and without one: the same end.
        let run = |budget: u64| {
            let mut frames = frames();
            let mut memory = FakeMemory::default();
            let mut table = FrameTable::new(&mut frames, hypervisor_slots());
            assign_all(&mut table);
            write_tree(&mut memory);
            table.set_work_budget(5);
            let refusal = table.pin_preemptible(&mut memory, L4, 4, DOM, &mut None);
            assert_eq!(refusal, Err(PREEMPTED));
            table.set_work_budget(UNLIMITED_WORK);
            let owned: Vec<Mfn> = (0..FRAMES as Mfn)
                .filter(|&mfn| table.is_owned_by(mfn, DOM))
                .collect();
            let mut position = 0;
            let mut calls = 0;
            loop {
                calls += 1;
                table.set_work_budget(budget);
                let done = table.abandon_partial_preemptible(&mut memory, &owned, &mut position);
                table.set_work_budget(UNLIMITED_WORK);
                check_invariants(&table, &memory, &[]);
                match done {
                    Ok(()) => break,
                    Err(refusal) => assert_eq!(refusal, PREEMPTED),
                }
            }
            assert!(owned
                .iter()
                .all(|&mfn| table.info(mfn).unwrap().partial == Partial::None));
            (counts(&table), calls)
        };
        let (unbounded, one_call) = run(UNLIMITED_WORK);
        let (bounded, calls) = run(3);
        assert_eq!(one_call, 1);
        assert!(calls > 10, "{calls} calls");
        assert_eq!(bounded, unbounded);
    }

    #[test]
    #[should_panic(expected = "which has no record")]
    fn checker_notices_a_frame_that_outlives_its_domains_record() {
        // What the hypervisor did before zombies: the record went at
        // destruction while FOREIGN, still mapped, kept OTHER as its owner,
        // so the next domain with OTHER's ID inherited it.
        fixture!(table, memory);
        destroy_other_while_mapped(&mut table, &mut memory);
        let record_removed = Domains {
            records: &[DOM],
            privileged: &[DOM],
        };
        check_invariants_with(&table, &memory, &[], &record_removed);
    }

    #[test]
    #[should_panic(expected = "foreign mapping")]
    fn checker_allows_foreign_mappings_only_in_a_privileged_domains_l1() {
        fixture!(table, memory);
        destroy_other_while_mapped(&mut table, &mut memory);
        check_invariants(&table, &memory, &[]);
    }

    // --- Invariant 6: frames the hypervisor writes ----------------------

    /// The attack of issue 8, step by step, on a frame standing for the
    /// shared info page (SPARE), mapped writable at L1[2] as a guest maps
    /// its shared info page.
    fn map_spare_then_remap_read_only(table: &mut FrameTable, memory: &mut FakeMemory) {
        table.pin(memory, L1, 1, DOM).unwrap();
        let _ = table
            .update_entry(memory, L1, 2, pte(SPARE, P | W), DOM, false)
            .unwrap();
        // Step 1: the guest remaps the page read-only; its own Writable
        // reference goes.
        let _ = table
            .update_entry(memory, L1, 2, pte(SPARE, P), DOM, false)
            .unwrap();
    }

    #[test]
    fn without_the_hold_the_shared_page_could_become_a_page_table() {
        // What the hypervisor did before invariant 6: only a general
        // reference on the page. Step 2 of the attack then succeeds.
        fixture!(table, memory);
        table.get_page(SPARE, DOM).unwrap();
        map_spare_then_remap_read_only(&mut table, &mut memory);
        assert_eq!(table.pin(&mut memory, SPARE, 1, DOM), Ok(()));
    }

    #[test]
    fn a_frame_the_hypervisor_writes_can_never_be_pinned_or_linked() {
        fixture!(table, memory);
        table.hold_for_hypervisor(&mut memory, SPARE, DOM).unwrap();
        check_invariants(&table, &memory, &[]);
        map_spare_then_remap_read_only(&mut table, &mut memory);
        check_invariants(&table, &memory, &[]);
        let in_use = "frame already in use as a writable page";
        for level in 1..=4 {
            let refusal = table.pin(&mut memory, SPARE, level, DOM).unwrap_err();
            assert_eq!(refusal, refuse(XenError::EINVAL, in_use));
        }
        // Linked from an L2 as if it were an L1 table: refused too.
        table.pin(&mut memory, L2, 2, DOM).unwrap();
        let refusal = table
            .update_entry(&mut memory, L2, 5, pte(SPARE, P | W), DOM, false)
            .unwrap_err();
        assert_eq!(refusal.error, XenError::EINVAL);
        // As a base pointer (an L4).
        let refusal = table
            .switch_base(&mut memory, SPARE, None, DOM)
            .unwrap_err();
        assert_eq!(refusal.error, XenError::EINVAL);
        check_invariants(&table, &memory, &[]);
        // Nor can the guest give it back while the hypervisor writes it.
        assert_eq!(
            table.release(SPARE, Owner::Domain(DOM)).unwrap_err().error,
            XenError::EBUSY
        );
    }

    #[test]
    fn a_page_table_cannot_become_a_frame_the_hypervisor_writes() {
        fixture!(table, memory);
        table.pin(&mut memory, L1, 1, DOM).unwrap();
        let before = counts(&table);
        let refusal = table.hold_for_hypervisor(&mut memory, L1, DOM).unwrap_err();
        assert_eq!(refusal.error, XenError::EINVAL);
        assert_eq!(counts(&table), before, "a refused hold changes nothing");
        assert_eq!(
            table
                .hold_for_hypervisor(&mut memory, FOREIGN, DOM)
                .unwrap_err()
                .error,
            XenError::EPERM
        );
    }

    #[test]
    fn a_hold_is_taken_once_and_released_once() {
        fixture!(table, memory);
        table.hold_for_hypervisor(&mut memory, SPARE, DOM).unwrap();
        assert_eq!(
            table
                .hold_for_hypervisor(&mut memory, SPARE, DOM)
                .unwrap_err()
                .error,
            XenError::EBUSY
        );
        table.release_hypervisor_hold(&mut memory, SPARE);
        check_invariants(&table, &memory, &[]);
        assert_eq!(table.release(SPARE, Owner::Domain(DOM)), Ok(()));
        // Once released, the frame is ordinary memory again.
        table.assign(SPARE, Owner::Domain(DOM)).unwrap();
        assert_eq!(table.pin(&mut memory, SPARE, 1, DOM), Ok(()));
    }

    // --- Preemption: continuations and partial validation ----------------

    /// A machine big enough for the attack of issue 19 in small: an L4, an
    /// L3, an L2 and `l1_count` L1 tables whose 512 entries map data frames
    /// read-only (every eighth writable).
    struct DeepTree {
        frames: Vec<FrameInfo>,
        memory: FakeMemory,
        l1_count: u64,
    }

    const DEEP_L4: Mfn = 100;
    const DEEP_L3: Mfn = 101;
    const DEEP_L2: Mfn = 102;
    const DEEP_FIRST_L1: Mfn = 103;
    const DEEP_DATA: Mfn = 200;
    const DEEP_DATA_COUNT: u64 = 64;

    impl DeepTree {
        fn new(l1_count: u64) -> Self {
            assert!(DEEP_FIRST_L1 + l1_count <= DEEP_DATA);
            let mut frames = vec![FrameInfo::FREE; 300];
            let mut memory = FakeMemory::default();
            let mut table = FrameTable::new(&mut frames, hypervisor_slots());
            for mfn in DEEP_L4..DEEP_DATA + DEEP_DATA_COUNT {
                table.assign(mfn, Owner::Domain(DOM)).unwrap();
            }
            table.assign(FOREIGN, Owner::Domain(OTHER)).unwrap();
            memory.write_entry(DEEP_L4, 0, pte(DEEP_L3, P | W));
            memory.write_entry(DEEP_L3, 0, pte(DEEP_L2, P | W));
            for l1 in 0..l1_count {
                memory.write_entry(DEEP_L2, l1 as usize, pte(DEEP_FIRST_L1 + l1, P | W));
                for index in 0..ENTRIES_PER_TABLE {
                    let data = DEEP_DATA + (index as u64 % DEEP_DATA_COUNT);
                    let flags = if index % 8 == 0 { P | W } else { P };
                    memory.write_entry(DEEP_FIRST_L1 + l1, index, pte(data, flags));
                }
            }
            Self {
                frames,
                memory,
                l1_count,
            }
        }

        /// Entries a full validation of the tree checks.
        fn entries(&self) -> u64 {
            (3 + self.l1_count) * ENTRIES_PER_TABLE as u64
        }
    }

    /// Runs `operation` as a hypercall would with `budget` units of work per
    /// entry: the deferred devalidation first, and again from the start
    /// after every `-ERESTART`, checking the invariants at every
    /// continuation. Returns the result and how many continuations it took.
    fn run_with_budget<T>(
        table: &mut FrameTable,
        memory: &mut FakeMemory,
        deferred: &mut Option<Mfn>,
        budget: u64,
        mut operation: impl FnMut(
            &mut FrameTable,
            &mut FakeMemory,
            &mut Option<Mfn>,
        ) -> Result<T, Refusal>,
    ) -> (Result<T, Refusal>, u64) {
        let mut continuations = 0;
        loop {
            table.set_work_budget(budget);
            let result = table
                .finish_deferred(memory, deferred)
                .and_then(|_flush| operation(table, memory, deferred));
            assert!(table.work_budget() <= budget);
            check_invariants(table, memory, &[]);
            match result {
                Err(refusal) if refusal == PREEMPTED => continuations += 1,
                other => return (other, continuations),
            }
        }
    }

    /// One operation of the attacking batch.
    #[derive(Clone, Copy, Debug)]
    enum BatchOperation {
        Pin(Mfn, u8),
        Unpin(Mfn),
        Update(Mfn, usize, u64),
    }

    fn run_batch(
        tree: &mut DeepTree,
        operations: &[BatchOperation],
        budget: u64,
    ) -> (Vec<Result<Flush, Refusal>>, u64) {
        let mut table = FrameTable::new(&mut tree.frames, hypervisor_slots());
        let memory = &mut tree.memory;
        let mut deferred = None;
        let mut results = Vec::new();
        let mut continuations = 0;
        for &operation in operations {
            let (result, steps) = run_with_budget(
                &mut table,
                memory,
                &mut deferred,
                budget,
                |table, memory, deferred| match operation {
                    BatchOperation::Pin(mfn, level) => table
                        .pin_preemptible(memory, mfn, level, DOM, deferred)
                        .map(|()| Flush::None),
                    BatchOperation::Unpin(mfn) => {
                        table.unpin_preemptible(memory, mfn, DOM, deferred)
                    }
                    BatchOperation::Update(table_mfn, index, new) => {
                        let update = EntryUpdate {
                            table: table_mfn,
                            index,
                            new,
                            domain: DOM,
                            page_owner: DOM,
                            preserve_ad: false,
                        };
                        table.update_entry_preemptible(memory, &update, deferred)
                    }
                },
            );
            results.push(result.map(|_flush| Flush::None));
            continuations += steps;
        }
        // The end of the batch: what is deferred is finished by the next
        // page-table call; finish it here so that the states compare.
        let (finished, steps) =
            run_with_budget(&mut table, memory, &mut deferred, budget, |_, _, _| Ok(()));
        assert_eq!(finished, Ok(()));
        assert_eq!(deferred, None);
        (results, continuations + steps)
    }

    #[test]
    fn a_preempted_pin_unpin_batch_ends_as_an_unpreempted_one() {
        let mut operations = Vec::new();
        for _ in 0..6 {
            operations.push(BatchOperation::Pin(DEEP_L4, 4));
            operations.push(BatchOperation::Unpin(DEEP_L4));
        }
        operations.push(BatchOperation::Pin(DEEP_L4, 4));
        // Unlink and relink an L1, pin an L1 twice (refused), pin the L3.
        operations.push(BatchOperation::Update(DEEP_L2, 3, 0));
        operations.push(BatchOperation::Update(
            DEEP_L2,
            3,
            pte(DEEP_FIRST_L1 + 3, P | W),
        ));
        operations.push(BatchOperation::Pin(DEEP_FIRST_L1, 1));
        operations.push(BatchOperation::Pin(DEEP_FIRST_L1, 1));
        operations.push(BatchOperation::Pin(DEEP_L3, 3));
        operations.push(BatchOperation::Unpin(DEEP_L4));

        let mut whole = DeepTree::new(12);
        let (whole_results, whole_continuations) =
            run_batch(&mut whole, &operations, UNLIMITED_WORK);
        assert_eq!(whole_continuations, 0);

        let mut preempted = DeepTree::new(12);
        let entries = preempted.entries();
        let (preempted_results, continuations) = run_batch(&mut preempted, &operations, 97);
        // Each pin and each unpin of the L4 goes through every entry once.
        assert!(
            continuations >= 12 * entries / 97,
            "{continuations} continuations"
        );

        assert_eq!(preempted_results, whole_results);
        assert_eq!(
            whole_results[16],
            Err(refuse(XenError::EINVAL, "frame is already pinned"))
        );
        assert_eq!(preempted.frames, whole.frames);
        assert_eq!(preempted.memory.entries, whole.memory.entries);
    }

    #[test]
    fn a_failed_deep_validation_is_undone_across_continuations() {
        let mut tree = DeepTree::new(10);
        // The last L1 maps a foreign frame near its end: found after ~5,000
        // entries were checked and their references taken.
        tree.memory
            .write_entry(DEEP_FIRST_L1 + 9, 500, pte(FOREIGN, P));
        let start = tree.frames.clone();
        let (results, continuations) = run_batch(&mut tree, &[BatchOperation::Pin(DEEP_L4, 4)], 50);
        assert_eq!(
            results[0].map_err(|refusal| refusal.error),
            Err(XenError::EPERM)
        );
        assert!(continuations > 2 * 5000 / 50);
        let end = tree.frames.clone();
        assert_eq!(
            end.iter()
                .map(|frame| (frame.ref_count, frame.type_count, frame.partial))
                .collect::<Vec<_>>(),
            start
                .iter()
                .map(|frame| (frame.ref_count, frame.type_count, frame.partial))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_deferred_devalidation_keeps_the_frame_from_other_uses_until_finished() {
        let mut tree = DeepTree::new(4);
        let mut table = FrameTable::new(&mut tree.frames, hypervisor_slots());
        let memory = &mut tree.memory;
        table.pin(memory, DEEP_L4, 4, DOM).unwrap();
        let mut deferred = None;
        table.set_work_budget(10);
        assert_eq!(
            table.unpin_preemptible(memory, DEEP_L4, DOM, &mut deferred),
            Ok(Flush::Needed)
        );
        assert_eq!(deferred, Some(DEEP_L4));
        check_invariants(&table, memory, &[]);
        // Half devalidated: no other type, no new use, no release.
        table.set_work_budget(UNLIMITED_WORK);
        assert_eq!(
            error_of(table.get_page_type(memory, DEEP_L4, PageType::Writable, DOM)),
            XenError::EBUSY
        );
        assert_eq!(
            error_of(table.pin(memory, DEEP_L4, 4, DOM)),
            XenError::EBUSY
        );
        assert_eq!(
            error_of(table.release(DEEP_L4, Owner::Domain(DOM))),
            XenError::EBUSY
        );
        check_invariants(&table, memory, &[]);
        // Once finished it can be pinned again.
        assert_eq!(
            table.finish_deferred(memory, &mut deferred),
            Ok(Flush::Needed)
        );
        assert_eq!(deferred, None);
        table.pin(memory, DEEP_L4, 4, DOM).unwrap();
        check_invariants(&table, memory, &[]);
    }

    #[test]
    fn a_half_validated_table_cannot_be_mapped_or_retyped_and_anyone_may_finish_it() {
        let mut tree = DeepTree::new(4);
        let mut table = FrameTable::new(&mut tree.frames, hypervisor_slots());
        let memory = &mut tree.memory;
        let mut deferred = None;
        table.set_work_budget(700);
        assert_eq!(
            table.pin_preemptible(memory, DEEP_L4, 4, DOM, &mut deferred),
            Err(PREEMPTED)
        );
        check_invariants(&table, memory, &[]);
        assert!(matches!(
            table.info(DEEP_L4).unwrap().partial,
            Partial::Validating { .. }
        ));
        table.set_work_budget(UNLIMITED_WORK);
        assert_eq!(
            error_of(table.get_page_type(memory, DEEP_FIRST_L1 + 1, PageType::Writable, DOM)),
            XenError::EINVAL
        );
        assert_eq!(
            error_of(table.get_page_type(memory, DEEP_L2, PageType::L1, DOM)),
            XenError::EINVAL
        );
        assert_eq!(
            error_of(table.release(DEEP_FIRST_L1 + 1, Owner::Domain(DOM))),
            XenError::EBUSY
        );
        // Pinning the half-validated L2 finishes it and takes its reference;
        // the L4's pin then goes on and finds it validated.
        table.pin(memory, DEEP_L2, 2, DOM).unwrap();
        check_invariants(&table, memory, &[]);
        table.pin(memory, DEEP_L4, 4, DOM).unwrap();
        assert_eq!(table.info(DEEP_L2).unwrap().type_count, 2);
        check_invariants(&table, memory, &[]);
    }

    #[test]
    fn abandoning_partial_work_gives_every_reference_back() {
        let mut tree = DeepTree::new(6);
        let start = tree.frames.clone();
        let mut table = FrameTable::new(&mut tree.frames, hypervisor_slots());
        let memory = &mut tree.memory;
        let mut deferred = None;
        // A preempted pin of the L3 (its own chain), and a pinned L4 whose
        // unpin is deferred.
        table.pin(memory, DEEP_FIRST_L1 + 5, 1, DOM).unwrap();
        table.set_work_budget(1500);
        assert_eq!(
            table.pin_preemptible(memory, DEEP_L3, 3, DOM, &mut deferred),
            Err(PREEMPTED)
        );
        table.set_work_budget(300);
        let _ = table
            .unpin_preemptible(memory, DEEP_FIRST_L1 + 5, DOM, &mut deferred)
            .unwrap();
        check_invariants(&table, memory, &[]);
        let all: Vec<Mfn> = (DEEP_L4..DEEP_DATA + DEEP_DATA_COUNT).collect();
        table.abandon_partial(memory, &all);
        check_invariants(&table, memory, &[]);
        for mfn in all {
            assert_eq!(table.info(mfn).unwrap().partial, Partial::None);
            table.release(mfn, Owner::Domain(DOM)).unwrap();
        }
        assert_eq!(table.info(FOREIGN), Some(&start[FOREIGN as usize]));
    }
}
