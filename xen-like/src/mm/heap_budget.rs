//! The rule that keeps guests from exhausting the hypervisor's heap: a
//! reserve for the hypervisor's own structures, and a cap per domain.
//!
//! The heap (`heap.rs`) is shared by everything the hypervisor allocates at
//! run time. Two kinds of allocation live there:
//!
//! - **The hypervisor's own**, sized by something no guest can grow: one
//!   `Domain` per domain (at most [`crate::domain::MAX_DOMAINS`] of them),
//!   the domain table's nodes, each domain's list of frames (bounded by the
//!   machine's RAM). Some of these cannot fail gracefully (a `BTreeMap`
//!   node), so the heap must always have room for them.
//! - **Guest-sized**: a guest's request decides how big it is (grant-table
//!   active entries, the maptrack). These may fail: the hypercall says
//!   `-ENOMEM` or `GNTST_no_space`.
//!
//! A guest-sized allocation of `bytes` is admitted only if, afterwards, the
//! heap's free bytes stay at or above the **reserve** (what the hypervisor's
//! own structures may still need at the largest domain count), and the
//! domain's guest-sized bytes stay at or below its **cap** (so that one
//! domain alone cannot take what all guests share). Guests together can
//! then fill the heap only down to the reserve, never below.

/// Why a guest-sized allocation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapRefusal {
    /// The heap's free bytes would drop below the hypervisor's reserve.
    Reserve,
    /// The domain would hold more guest-sized heap than its cap.
    DomainCap,
}

impl HeapRefusal {
    /// A sentence for the log.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Reserve => {
                "the hypervisor's heap is down to the reserve kept for its own structures"
            }
            Self::DomainCap => "the domain already holds its share of the hypervisor's heap",
        }
    }
}

/// The limits on guest-sized allocations, fixed at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapBudget {
    /// Free heap bytes that guest-sized allocations may never use.
    pub reserve: usize,
    /// The most guest-sized heap bytes one domain may hold.
    pub per_domain_cap: usize,
}

/// What a guest-sized allocation needs beyond its own size: the
/// allocator's rounding and block header (linked_list_allocator rounds up
/// to 16 bytes and keeps a 16-byte hole header).
pub const ALLOCATION_OVERHEAD: usize = 32;

/// One domain may hold at most this fraction (1/N) of what guests share:
/// one hostile domain alone cannot deny grant tables to the others.
pub const DOMAINS_SHARING_THE_POOL: usize = 4;

impl HeapBudget {
    /// The budget of a heap of `heap_size` bytes whose hypervisor needs
    /// `reserve` bytes for itself. A reserve larger than the heap leaves
    /// guests nothing (every guest-sized allocation is refused).
    pub const fn new(heap_size: usize, reserve: usize) -> Self {
        let pool = heap_size.saturating_sub(reserve);
        Self {
            reserve,
            per_domain_cap: pool / DOMAINS_SHARING_THE_POOL,
        }
    }

    /// Whether a domain already holding `domain_bytes` of guest-sized heap
    /// may allocate `bytes` more while the heap has `free` bytes.
    ///
    /// `bytes` is the size of the new block as a whole: when a vector grows
    /// it allocates its new buffer before freeing the old one, so the heap
    /// must hold both for a moment.
    pub fn admit(&self, free: usize, domain_bytes: usize, bytes: usize) -> Result<(), HeapRefusal> {
        let needed = bytes.saturating_add(ALLOCATION_OVERHEAD);
        if free < self.reserve.saturating_add(needed) {
            return Err(HeapRefusal::Reserve);
        }
        if domain_bytes.saturating_add(bytes) > self.per_domain_cap {
            return Err(HeapRefusal::DomainCap);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn guests_never_reach_into_the_reserve() {
        let budget = HeapBudget::new(8 * MIB, 2 * MIB);
        let mut free = 8 * MIB;
        let mut held = [0usize; 8];
        // Eight domains take 64 KiB at a time, round robin, until refused.
        let mut refusals = 0;
        while refusals < 8 {
            refusals = 0;
            for domain_bytes in held.iter_mut() {
                match budget.admit(free, *domain_bytes, 64 * 1024) {
                    Ok(()) => {
                        free -= 64 * 1024 + ALLOCATION_OVERHEAD;
                        *domain_bytes += 64 * 1024;
                    }
                    Err(_) => refusals += 1,
                }
            }
        }
        assert!(free >= budget.reserve, "free {free} below the reserve");
        assert!(held.iter().all(|&bytes| bytes <= budget.per_domain_cap));
    }

    #[test]
    fn one_domain_gets_at_most_its_cap() {
        let budget = HeapBudget::new(8 * MIB, 2 * MIB);
        assert_eq!(budget.per_domain_cap, 6 * MIB / 4);
        assert_eq!(budget.admit(8 * MIB, 0, budget.per_domain_cap), Ok(()));
        assert_eq!(
            budget.admit(8 * MIB, budget.per_domain_cap, 1),
            Err(HeapRefusal::DomainCap)
        );
    }

    #[test]
    fn the_reserve_counts_the_whole_new_block() {
        let budget = HeapBudget::new(8 * MIB, 2 * MIB);
        let free = 2 * MIB + 4096 + ALLOCATION_OVERHEAD;
        assert_eq!(budget.admit(free, 0, 4096), Ok(()));
        assert_eq!(budget.admit(free, 0, 4097), Err(HeapRefusal::Reserve));
    }

    #[test]
    fn a_reserve_beyond_the_heap_refuses_everything() {
        let budget = HeapBudget::new(MIB, 2 * MIB);
        assert_eq!(budget.per_domain_cap, 0);
        assert_eq!(budget.admit(MIB, 0, 16), Err(HeapRefusal::Reserve));
        // Even a heap that looked empty leaves no share to a domain.
        assert_eq!(budget.admit(usize::MAX, 0, 16), Err(HeapRefusal::DomainCap));
    }
}
