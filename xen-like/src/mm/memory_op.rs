//! `memory_op`: a domain's view of its memory, and growing or shrinking it.
//!
//! For a PV guest the frame numbers in these requests are machine frames
//! (GMFN = MFN): the guest keeps its own P2M.
//!
//! The reservation sub-ops take a guest-chosen number of extents. They run
//! with the hypercall's work budget (one unit per page) and, when it runs
//! out, become a continuation: the same `memory_op` with the extent to
//! resume at in the high bits of `cmd` (`crate::mm::reservation`). The
//! result at the end counts the extents of every part, as in Xen.

use crate::console::{caller_log, guest_log};
use crate::domain::{self, Domain};
use crate::mm::frame_table::Owner;
use crate::mm::reservation::{run_extents, ExtentProgress};
use crate::mm::{frame_table, guest_access, m2p, PAGE_SIZE};
use crate::sched::continuation::Outcome;
use hypercall_abi::layout::MACH2PHYS_VIRT_START;
use hypercall_abi::memory::{
    continuation_command, start_extent, MachphysMapping, MemoryMap, MemoryOp, MemoryReservation,
    MEMOP_CMD_MASK,
};
use hypercall_abi::XenError;

/// Work-budget units one page of a reservation extent costs.
const UNITS_PER_PAGE: u64 = 10;

/// E820 type of RAM.
const E820_RAM: u32 = 1;

/// `memory_op(cmd, arg)`, with the work `budget` left to this hypercall.
pub fn memory_op(command: u64, argument: u64, budget: &mut u64) -> Outcome {
    let Some(operation) = MemoryOp::from_register(command & MEMOP_CMD_MASK) else {
        caller_log!(Warn, "unknown memory_op {command}: -ENOSYS");
        return Outcome::Done(Err(XenError::ENOSYS));
    };
    match operation {
        MemoryOp::IncreaseReservation
        | MemoryOp::DecreaseReservation
        | MemoryOp::PopulatePhysmap => change_reservation(operation, command, argument, budget),
        other => Outcome::Done(short_operation(other, argument)),
    }
}

/// The sub-ops that do a bounded amount of work.
fn short_operation(operation: MemoryOp, argument: u64) -> Result<u64, XenError> {
    match operation {
        MemoryOp::MemoryMap => {
            // The guest's pseudo-physical memory is one RAM range.
            let mut map: MemoryMap = guest_access::read_for_update(argument)?;
            if map.nr_entries < 1 {
                return Err(XenError::EINVAL);
            }
            let pages = domain::with_current(|domain| domain.max_pages).ok_or(XenError::ESRCH)?;
            let mut entry = [0u8; 20];
            entry[8..16].copy_from_slice(&(pages * PAGE_SIZE).to_le_bytes());
            entry[16..20].copy_from_slice(&E820_RAM.to_le_bytes());
            guest_access::copy_to_guest(map.buffer, &entry)?;
            map.nr_entries = 1;
            guest_access::write_to_guest(argument, &map)?;
            Ok(0)
        }
        MemoryOp::MachphysMapping => {
            let entries = m2p::entries();
            let mapping = MachphysMapping {
                v_start: MACH2PHYS_VIRT_START,
                v_end: MACH2PHYS_VIRT_START + entries * 8,
                max_mfn: entries.saturating_sub(1),
            };
            guest_access::write_to_guest(argument, &mapping)?;
            Ok(0)
        }
        MemoryOp::CurrentReservation | MemoryOp::MaximumReservation => {
            let domid: u16 = guest_access::read_from_guest(argument)?;
            let target = domain::resolve_target(domid)?;
            domain::with(target, |domain| {
                if operation == MemoryOp::CurrentReservation {
                    domain.total_pages()
                } else {
                    domain.max_pages
                }
            })
            .ok_or(XenError::ESRCH)
        }
        other => {
            caller_log!(
                Warn,
                "memory_op {} is not implemented: -ENOSYS",
                other.name()
            );
            Err(XenError::ENOSYS)
        }
    }
}

/// `increase_reservation`, `decrease_reservation` and `populate_physmap`:
/// from the extent `cmd` names (0, or where the last part stopped) on.
fn change_reservation(
    operation: MemoryOp,
    command: u64,
    argument: u64,
    budget: &mut u64,
) -> Outcome {
    let start = start_extent(command);
    let (target, request) = match reservation(argument) {
        Ok(found) => found,
        // As Xen: a continued call that cannot read its request any more
        // reports the extents its earlier parts did.
        Err(_) if start != 0 => return Outcome::Done(Ok(start)),
        Err(error) => return Outcome::Done(Err(error)),
    };
    // The budget counts page-table entries' worth of work; one page of an
    // extent (taking or giving back a frame, its M2P entry, the guest's
    // list) costs about ten of them (measured: 19k cycles against 1.8k),
    // so that a part stays near a millisecond like the others.
    let units_per_extent = UNITS_PER_PAGE << request.extent_order;
    let progress = domain::with(target, |domain| match operation {
        MemoryOp::DecreaseReservation => {
            decrease(domain, &request, start, units_per_extent, budget)
        }
        _ => increase(
            domain,
            &request,
            operation == MemoryOp::PopulatePhysmap,
            start,
            units_per_extent,
            budget,
        ),
    });
    match progress {
        None => Outcome::Done(Err(XenError::ESRCH)),
        Some(Err(error)) => Outcome::Done(Err(error)),
        Some(Ok(ExtentProgress::Finished(done))) => Outcome::Done(Ok(done)),
        Some(Ok(ExtentProgress::Preempted(at))) => Outcome::Continue(heapless::Vec::from_iter([
            continuation_command(u64::from(operation.raw()), at),
            argument,
        ])),
    }
}

fn reservation(argument: u64) -> Result<(u16, MemoryReservation), XenError> {
    let request: MemoryReservation = guest_access::read_from_guest(argument)?;
    let target = domain::resolve_target(request.domid)?;
    if request.extent_order != 0 {
        // Extents of more than one page need contiguous machine memory,
        // which the allocator does not offer to guests yet.
        caller_log!(
            Debug,
            "memory_op extent order {} is not supported",
            request.extent_order
        );
        return Err(XenError::EINVAL);
    }
    Ok((target, request))
}

/// Gives frames back from extent `start` on, until the budget runs out;
/// the result counts the frames released in all parts. Stops at the first
/// frame that cannot go (not owned, still mapped, or a page table).
fn decrease(
    domain: &mut Domain,
    request: &MemoryReservation,
    start: u64,
    units_per_extent: u64,
    budget: &mut u64,
) -> Result<ExtentProgress, XenError> {
    // A frame given back must not stay reachable through a stale
    // translation (see mm::tlb).
    crate::mm::tlb::flush_if_stale();
    guest_access::check_array(request.extent_start, request.nr_extents, 8)?;
    run_extents(
        start,
        request.nr_extents,
        units_per_extent,
        budget,
        |index| {
            let mfn: u64 = guest_access::read_from_guest(request.extent_start + index * 8)?;
            if !domain.frames.contains(&mfn) {
                guest_log!(
                    domain,
                    Debug,
                    "decrease_reservation of frame {mfn:#x}, not part of its memory"
                );
                return Ok(false);
            }
            if let Err(refusal) = frame_table::release(mfn, Owner::Domain(domain.id)) {
                guest_log!(
                    domain,
                    Debug,
                    "decrease_reservation of frame {mfn:#x} refused: {}",
                    refusal.reason
                );
                return Ok(false);
            }
            domain.frames.remove(&mfn);
            m2p::set(mfn, m2p::INVALID_ENTRY);
            Ok(true)
        },
    )
}

/// Adds frames from extent `start` on, up to the domain's limit and until
/// the budget runs out; the result counts the frames added in all parts.
/// `populate_physmap` takes the PFN of each new frame from the array and
/// records it in the M2P; both write the new MFNs back into the array.
fn increase(
    domain: &mut Domain,
    request: &MemoryReservation,
    populate: bool,
    start: u64,
    units_per_extent: u64,
    budget: &mut u64,
) -> Result<ExtentProgress, XenError> {
    // A null list is allowed where nothing is read from it: the guest does
    // not want to learn the new frames.
    if populate || request.extent_start != 0 {
        guest_access::check_array(request.extent_start, request.nr_extents, 8)?;
    }
    run_extents(
        start,
        request.nr_extents,
        units_per_extent,
        budget,
        |index| {
            let slot = request.extent_start + index * 8;
            // The slot is read (populate) and written (the new MFN): check it
            // before taking a frame, so that no frame is taken for an answer
            // that cannot be delivered.
            let checked = if populate {
                guest_access::read_for_update(slot)
            } else if request.extent_start != 0 {
                guest_access::check_writable(slot, 8).map(|()| m2p::INVALID_ENTRY)
            } else {
                Ok(m2p::INVALID_ENTRY)
            };
            // As Xen: a fault after some extents reports how many were done.
            let pfn: u64 = match checked {
                Ok(pfn) => pfn,
                Err(error) if index == 0 => return Err(error),
                Err(_) => return Ok(false),
            };
            if domain.total_pages() >= domain.max_pages {
                return Ok(false);
            }
            let Some(mfn) = frame_table::allocate_for(Owner::Domain(domain.id)) else {
                return Ok(false);
            };
            if request.extent_start != 0 {
                if let Err(error) = guest_access::write_to_guest(slot, &mfn) {
                    // The guest cannot learn the frame: take it back.
                    let _ = frame_table::release(mfn, Owner::Domain(domain.id));
                    return if index == 0 { Err(error) } else { Ok(false) };
                }
            }
            m2p::set(mfn, pfn);
            // An infallible B-tree insert: bounded by the machine's frames,
            // and the heap's reserve is sized for it (`domain::heap_reserve`).
            domain.frames.insert(mfn);
            Ok(true)
        },
    )
}
