//! The lock order: which of the hypervisor's global locks may be taken
//! while which is held, as a rule over plain data.
//!
//! Every global lock of the hypervisor has a [`LockLevel`]. A CPU may take a
//! lock only if every lock it already holds has a *lower* level: locks are
//! taken from the outside in, `Scheduler` first, `LogRing` last. Two CPUs that
//! follow one order can never wait for each other in a circle, so the order
//! rules out deadlocks between locks; and a CPU that takes a lock it already
//! holds (a re-entrant acquisition) breaks the rule too, since a level is not
//! lower than itself: with a spin lock that is a hang on the spot.
//!
//! The order, from outermost to innermost, and why each sits where it does
//! (the same list opens `domain/mod.rs`):
//!
//! 1. `Scheduler` (`sched::CREDIT`): the scheduler's decision walks every
//!    domain for its runnable state while it holds its accounting.
//! 2. `Domains` (`domain::DOMAINS`): a hypercall on a domain's behalf holds
//!    its domain and then changes the frame table (`setvcpucontext` pins
//!    the new domain's tables, `memory_op` takes and gives frames).
//! 3. `Zombies` (`domain::ZOMBIES`): the dying half of the domain table,
//!    read after the live half (`getdomaininfo`, destruction); a zombie's
//!    freed frames go to the allocator while it is held (after the frame
//!    table is let go, whose glue takes it).
//! 4. `FrameTable` (`mm::frame_table::TABLE`): destroying a domain releases
//!    its frames to the allocator while the table is held.
//! 5. `FrameAllocator` (`mm::frames::FRAMES`): takes no other lock but the
//!    console's (a freeing error is logged).
//! 6. `Serial` (`console::SERIAL`) and 7. `LogRing` (`console::RING`): a log
//!    line may be written under any lock above, to the serial line and
//!    then the ring.
//!
//! Below all of them sits the heap's lock (inside `linked_list_allocator`'s
//! `LockedHeap`, `mm/heap.rs`): any code may allocate under any lock, and
//! the allocator calls nothing while it holds its own, so it can neither be
//! re-entered nor taken out of order; it is not checked. The M2P table has
//! no lock: each entry is one aligned word, written by whoever the frame
//! table just let own or give up the frame. The `spin::Once` cells (the M2P's
//! frame list, the benchmark's scratch frames) are written once at first use
//! and only read after.
//!
//! The hypervisor's wrapper (`sync/ordered_lock.rs`) records the
//! levels each CPU holds in a bit mask and asks [`HeldLocks::acquire`]
//! before every acquisition, in builds with the check on.

use core::fmt;

/// The level of a global lock; a lower level is taken first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum LockLevel {
    /// The credit scheduler's state (`sched::CREDIT`).
    Scheduler = 0,
    /// The table of all live domains (`domain::DOMAINS`).
    Domains = 1,
    /// The destroyed domains whose frames are still referenced
    /// (`domain::ZOMBIES`).
    Zombies = 2,
    /// The frame table (`mm::frame_table::TABLE`).
    FrameTable = 3,
    /// The machine-frame allocator's bitmap (`mm::frames::FRAMES`).
    FrameAllocator = 4,
    /// The serial port (`console::SERIAL`).
    Serial = 5,
    /// The hypervisor's log ring (`console::RING`).
    LogRing = 6,
}

impl LockLevel {
    /// Every level, outermost first.
    pub const ALL: [LockLevel; 7] = [
        Self::Scheduler,
        Self::Domains,
        Self::Zombies,
        Self::FrameTable,
        Self::FrameAllocator,
        Self::Serial,
        Self::LogRing,
    ];

    /// The lock's name as the source spells it, for the panic message.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Scheduler => "sched::CREDIT",
            Self::Domains => "domain::DOMAINS",
            Self::Zombies => "domain::ZOMBIES",
            Self::FrameTable => "mm::frame_table::TABLE",
            Self::FrameAllocator => "mm::frames::FRAMES",
            Self::Serial => "console::SERIAL",
            Self::LogRing => "console::RING",
        }
    }

    const fn bit(self) -> u32 {
        1 << self as u8
    }
}

/// The set of lock levels one CPU holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeldLocks(u32);

/// A lock acquisition that breaks the order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// The CPU already holds the lock it asks for: a spin lock would wait
    /// for itself forever.
    Reentrant(LockLevel),
    /// The CPU holds `held`, which must be taken after `wanted`, not
    /// before: another CPU taking them in the right order could deadlock
    /// with this one.
    OutOfOrder {
        /// The innermost lock held that comes after `wanted`.
        held: LockLevel,
        /// The lock asked for.
        wanted: LockLevel,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reentrant(level) => write!(
                formatter,
                "lock order: {} taken again by the CPU that holds it (a spin lock would hang here)",
                level.name()
            ),
            Self::OutOfOrder { held, wanted } => write!(
                formatter,
                "lock order: {} taken while holding {}, which must be taken after it",
                wanted.name(),
                held.name()
            ),
        }
    }
}

impl HeldLocks {
    /// No lock held.
    pub const NONE: HeldLocks = HeldLocks(0);

    /// The set from its bit mask (bit n: the level n is held).
    pub const fn from_bits(bits: u32) -> HeldLocks {
        HeldLocks(bits)
    }

    /// The bit mask of the set.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether `level` is in the set.
    pub const fn holds(self, level: LockLevel) -> bool {
        self.0 & level.bit() != 0
    }

    /// The rule: `wanted` may be taken only if every held lock has a lower
    /// level. Returns the set with `wanted` added.
    pub fn acquire(self, wanted: LockLevel) -> Result<HeldLocks, Violation> {
        if self.holds(wanted) {
            return Err(Violation::Reentrant(wanted));
        }
        // The innermost held lock that should have come after `wanted`.
        if let Some(&held) = LockLevel::ALL
            .iter()
            .rev()
            .find(|&&level| level > wanted && self.holds(level))
        {
            return Err(Violation::OutOfOrder { held, wanted });
        }
        Ok(HeldLocks(self.0 | wanted.bit()))
    }

    /// The set once `level` is released (in any order: guards may be
    /// dropped out of the order they were taken in).
    pub const fn release(self, level: LockLevel) -> HeldLocks {
        HeldLocks(self.0 & !level.bit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LockLevel::*;

    #[test]
    fn levels_are_listed_outermost_first_and_fit_the_mask() {
        for pair in LockLevel::ALL.windows(2) {
            assert!(pair[0] < pair[1]);
        }
        assert!((LockLevel::ALL.len() as u32) < u32::BITS);
    }

    #[test]
    fn locks_taken_in_order_are_allowed() {
        let mut held = HeldLocks::NONE;
        for level in [
            Scheduler,
            Domains,
            Zombies,
            FrameTable,
            FrameAllocator,
            Serial,
            LogRing,
        ] {
            held = held.acquire(level).unwrap();
        }
        assert_eq!(held.bits(), 0b111_1111);
        // Skipping levels is fine: only the direction matters.
        let held = HeldLocks::NONE.acquire(Domains).unwrap();
        assert!(held.acquire(Serial).is_ok());
    }

    #[test]
    fn a_lock_taken_twice_is_reentrant() {
        let held = HeldLocks::NONE.acquire(Domains).unwrap();
        assert_eq!(held.acquire(Domains), Err(Violation::Reentrant(Domains)));
    }

    #[test]
    fn an_outer_lock_under_an_inner_one_is_out_of_order() {
        let held = HeldLocks::NONE.acquire(FrameTable).unwrap();
        assert_eq!(
            held.acquire(Domains),
            Err(Violation::OutOfOrder {
                held: FrameTable,
                wanted: Domains
            })
        );
        // With several inner locks held, the innermost is named.
        let held = held.acquire(Serial).unwrap();
        assert_eq!(
            held.acquire(Scheduler),
            Err(Violation::OutOfOrder {
                held: Serial,
                wanted: Scheduler
            })
        );
    }

    #[test]
    fn released_locks_may_be_taken_again_in_any_release_order() {
        let held = HeldLocks::NONE
            .acquire(Domains)
            .unwrap()
            .acquire(FrameTable)
            .unwrap();
        // The outer guard dropped first, then the inner.
        let held = held.release(Domains);
        assert!(held.acquire(Domains).is_err(), "FrameTable is still held");
        let held = held.release(FrameTable);
        assert_eq!(held, HeldLocks::NONE);
        assert!(held.acquire(Domains).is_ok());
    }

    #[test]
    fn the_messages_name_both_locks() {
        let out_of_order = Violation::OutOfOrder {
            held: FrameTable,
            wanted: Domains,
        };
        let text = std::format!("{out_of_order}");
        assert!(text.contains("domain::DOMAINS") && text.contains("mm::frame_table::TABLE"));
        let text = std::format!("{}", Violation::Reentrant(Domains));
        assert!(text.contains("domain::DOMAINS taken again"));
    }
}
