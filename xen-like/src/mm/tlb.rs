//! When the TLB is flushed.
//!
//! After a page-table change removes or weakens a mapping, the TLB may
//! still hold the old translation. Flushing the whole TLB after every such
//! change is what DESIGN.md's invariant 5 literally asks, but it is what
//! makes a one-entry `mmu_update` five times slower than Xen under
//! emulation (a CR3 reload plus refilling the TLB). Xen does something
//! cheaper that is just as safe, and so do we:
//!
//! - `update_va_mapping` knows the address it changed, so it drops that
//!   one translation (`invlpg`) whenever rights were lost, before returning.
//! - `mmu_update` names entries by machine address, not by virtual address,
//!   so it cannot `invlpg`; it only records that this CPU's TLB may be
//!   *stale* (holding more rights than the tables give).
//! - A stale translation can only hurt once its frame changes hands or
//!   type: a frame that becomes a page table must not stay writable through
//!   the TLB (invariant 2), and a frame given back must not stay reachable
//!   (invariant 4). So every operation that can retype or free a frame
//!   (pinning, linking a new table into an L2..L4, a new base pointer,
//!   giving memory back, destroying a domain) first flushes a stale TLB.
//!
//! Until the guest asks (`UVMF_TLB_FLUSH`, `MMUEXT_TLB_FLUSH_*`) or such an
//! operation comes, the guest may still reach, through a stale entry, a
//! frame it owns and that is not a page table: nothing it could not map
//! anyway. With one CPU per domain, a per-CPU flag is enough; SMP will need
//! to flush the other CPUs that ran the domain too.

use crate::arch::x86_64::{instructions, percpu::this_cpu};
use core::sync::atomic::Ordering;

/// Drops every non-global translation (guests cannot make global ones:
/// CR4.PGE stays off).
pub fn flush_all() {
    let root = instructions::read_cr3();
    // SAFETY: reloading the current root changes no mapping.
    unsafe { instructions::write_cr3(root) };
    this_cpu().tlb_stale.store(false, Ordering::Relaxed);
}

/// Records that rights were removed without a flush.
pub fn note_stale() {
    this_cpu().tlb_stale.store(true, Ordering::Relaxed);
}

/// Flushes if rights were removed since the last flush; call before any
/// operation that can retype or free a frame.
pub fn flush_if_stale() {
    if this_cpu().tlb_stale.load(Ordering::Relaxed) {
        flush_all();
    }
}

/// A new root was loaded (which flushes the TLB by itself).
pub fn root_loaded() {
    this_cpu().tlb_stale.store(false, Ordering::Relaxed);
}
