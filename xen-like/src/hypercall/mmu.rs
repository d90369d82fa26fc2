//! The page-table hypercalls: `mmu_update`, `mmuext_op` and
//! `update_va_mapping`.
//!
//! A PV guest owns and writes its page tables, but never directly: its
//! page-table frames are mapped read-only, and every change goes through
//! these hypercalls, which hand it to the frame table
//! (`xen_like::frame_table`) for validation. When a change removed or
//! weakened a mapping, stale translations are dealt with as `mm::tlb`
//! explains.

use super::caller;
use crate::arch::x86_64::instructions;
use crate::console::{caller_log, guest_log};
use crate::domain::{self, Domain};
use crate::mm::{frame_table, guest_access, m2p, physical_pointer, tlb, PAGE_SIZE};
use hypercall_abi::layout::{DOMID_SELF, HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};
use hypercall_abi::mmu::{
    MmuUpdate, MmuUpdateKind, MmuextCmd, MmuextOp, UVMF_FLUSHTYPE_MASK, UVMF_INVLPG, UVMF_TLB_FLUSH,
};
use hypercall_abi::XenError;
use xen_like::frame_table::{Flush, PageType, Refusal};
use xen_like::pagewalk::{is_canonical, PTE_ADDRESS_MASK, PTE_PRESENT};

// SAFETY: repr(C) structs of integers.
unsafe impl guest_access::Plain for MmuUpdate {}
// SAFETY: as above.
unsafe impl guest_access::Plain for MmuextOp {}

/// The most requests one `mmu_update` or `mmuext_op` call may carry.
/// (Xen preempts long batches with continuations; we bound them instead.)
pub const MAX_BATCH: u64 = 4096;

/// Logs why the frame table refused the caller's request and returns its
/// error (not inside `domain::with`: see [`refused_to`]).
fn refused(what: &str, refusal: Refusal) -> XenError {
    caller_log!(Debug, "{what} refused: {}", refusal.reason);
    refusal.error
}

/// [`refused`], with the calling domain in hand.
fn refused_to(domain: &mut Domain, what: &str, refusal: Refusal) -> XenError {
    guest_log!(domain, Debug, "{what} refused: {}", refusal.reason);
    refusal.error
}

/// Whose frames the entries may map: the caller's own (`DOMID_SELF` or
/// its ID), or, for a privileged caller building a domain, that domain's
/// (a *foreign* mapping; L1 entries only).
fn page_owner(foreign: u64) -> Result<u16, XenError> {
    let me = caller();
    if foreign == u64::from(DOMID_SELF) || foreign == u64::from(me) {
        return Ok(me);
    }
    let foreign = u16::try_from(foreign).map_err(|_| XenError::ESRCH)?;
    super::require_privileged().inspect_err(|_| {
        caller_log!(
            Debug,
            "page-table update for domain {foreign} refused: not privileged"
        );
    })?;
    domain::with(foreign, |_| foreign).ok_or(XenError::ESRCH)
}

/// Checks a batch's guest pointers before any request in it is applied:
/// the array of `count` requests of `size` bytes, and the `done` word if
/// the guest asked for it. An address the guest may never name (the
/// hypervisor's range, non-canonical, wrapping) fails the whole call with
/// `-EFAULT` and nothing applied; an unmapped or read-only `done` page is
/// found only when `done` is written at the end, as in Xen.
fn check_batch(array: u64, count: u64, size: u64, done_out: u64) -> Result<(), XenError> {
    guest_access::check_array(array, count, size)?;
    if done_out != 0 {
        guest_access::check_range(done_out, 4)?;
    }
    Ok(())
}

/// `mmu_update(requests, count, done, foreign_domain)`: apply a batch of
/// page-table writes (`MMU_NORMAL_PT_UPDATE`, `MMU_PT_UPDATE_PRESERVE_AD`)
/// and M2P updates (`MMU_MACHPHYS_UPDATE`), in order. The first failure
/// stops the batch: earlier requests stay applied, and `*done` says how
/// many succeeded.
pub fn mmu_update(requests: u64, count: u64, done_out: u64, foreign: u64) -> Result<u64, XenError> {
    let owner = page_owner(foreign)?;
    check_batch(requests, count, 16, done_out)?;
    if count > MAX_BATCH {
        return Err(XenError::EINVAL);
    }
    let id = caller();
    let mut done = 0u64;
    let mut result = Ok(0);
    for index in 0..count {
        let outcome = guest_access::read_from_guest::<MmuUpdate>(requests + index * 16)
            .and_then(|request| apply_update(&request, id, owner));
        match outcome {
            Ok(Flush::Needed) => tlb::note_stale(),
            Ok(Flush::None) => {}
            Err(error) => {
                result = Err(error);
                break;
            }
        }
        done += 1;
    }
    if done_out != 0 {
        // Xen's `done` is an unsigned int: write exactly 4 bytes.
        guest_access::write_to_guest(done_out, &(done as u32))?;
    }
    // The batch may have removed the last mapping of a dying domain's frame.
    domain::release_dying_frames();
    result
}

fn apply_update(request: &MmuUpdate, id: u16, owner: u16) -> Result<Flush, XenError> {
    let address = request.machine_address();
    match request.kind() {
        kind @ (MmuUpdateKind::NormalPtUpdate | MmuUpdateKind::PtUpdatePreserveAd) => {
            if !address.is_multiple_of(8) {
                return Err(XenError::EINVAL);
            }
            let (table, index) = (address / PAGE_SIZE, ((address % PAGE_SIZE) / 8) as usize);
            // An entry above L1 can link in a table, which retypes frames:
            // no stale writable translation may survive that.
            let is_l1 = frame_table::with(|frames, _| {
                frames
                    .info(table)
                    .is_some_and(|info| info.page_type == PageType::L1)
            });
            if !is_l1 {
                tlb::flush_if_stale();
            }
            let preserve = kind == MmuUpdateKind::PtUpdatePreserveAd;
            frame_table::with(|frames, memory| {
                frames.update_entry_foreign(memory, table, index, request.val, id, owner, preserve)
            })
            .map_err(|refusal| refused("mmu_update", refusal))
        }
        MmuUpdateKind::MachphysUpdate => {
            let mfn = address / PAGE_SIZE;
            if !frame_table::with(|frames, _| frames.is_owned_by(mfn, owner)) {
                caller_log!(Debug, "M2P update of frame {mfn:#x}, not owned by d{owner}");
                return Err(XenError::EPERM);
            }
            m2p::set(mfn, request.val);
            Ok(Flush::None)
        }
        MmuUpdateKind::PtUpdateNoTranslate => Err(XenError::EINVAL),
    }
}

/// `mmuext_op(ops, count, done, foreign_domain)`: pin and unpin page
/// tables, switch page-table roots, flush TLBs.
pub fn mmuext_op(
    operations: u64,
    count: u64,
    done_out: u64,
    foreign: u64,
) -> Result<u64, XenError> {
    if page_owner(foreign)? != caller() {
        // Pinning another domain's tables is done by setvcpucontext.
        return Err(XenError::EPERM);
    }
    check_batch(operations, count, 24, done_out)?;
    if count > MAX_BATCH {
        return Err(XenError::EINVAL);
    }
    let mut done = 0u64;
    let mut result = Ok(0);
    for index in 0..count {
        let outcome = guest_access::read_from_guest::<MmuextOp>(operations + index * 24).and_then(
            |operation| {
                domain::with_current(|domain| extended_operation(domain, &operation))
                    .unwrap_or(Err(XenError::ESRCH))
            },
        );
        if let Err(error) = outcome {
            result = Err(error);
            break;
        }
        done += 1;
    }
    if done_out != 0 {
        // Xen's `done` is an unsigned int: write exactly 4 bytes.
        guest_access::write_to_guest(done_out, &(done as u32))?;
    }
    // An unpin or a new base may have devalidated a table that mapped a
    // dying domain's frame.
    domain::release_dying_frames();
    result
}

fn extended_operation(domain: &mut Domain, operation: &MmuextOp) -> Result<(), XenError> {
    let id = domain.id;
    let Some(command) = operation.command() else {
        guest_log!(
            domain,
            Warn,
            "unknown mmuext_op command {}: -ENOSYS",
            operation.cmd
        );
        return Err(XenError::ENOSYS);
    };
    let mfn = operation.arg1;
    let pin_level = match command {
        MmuextCmd::PinL1Table => Some(1),
        MmuextCmd::PinL2Table => Some(2),
        MmuextCmd::PinL3Table => Some(3),
        MmuextCmd::PinL4Table => Some(4),
        _ => None,
    };
    if pin_level.is_some() || matches!(command, MmuextCmd::NewBaseptr | MmuextCmd::NewUserBaseptr) {
        tlb::flush_if_stale();
    }
    if let Some(level) = pin_level {
        return frame_table::with(|frames, memory| frames.pin(memory, mfn, level, id))
            .map_err(|refusal| refused_to(domain, command.name(), refusal));
    }
    match command {
        MmuextCmd::UnpinTable => {
            let flush = frame_table::with(|frames, memory| frames.unpin(memory, mfn, id))
                .map_err(|refusal| refused_to(domain, command.name(), refusal))?;
            if flush == Flush::Needed {
                tlb::note_stale();
            }
        }
        MmuextCmd::NewBaseptr => new_baseptr(domain, mfn)?,
        MmuextCmd::NewUserBaseptr => {
            let old = domain.user_root;
            if mfn == 0 {
                if let Some(old) = old {
                    let flush = frame_table::with(|frames, memory| {
                        let flush = frames.put_page_type(memory, old);
                        frames.put_page(old);
                        flush
                    });
                    if flush == Flush::Needed {
                        tlb::note_stale();
                    }
                }
                domain.user_root = None;
            } else {
                frame_table::with(|frames, memory| frames.switch_base(memory, mfn, old, id))
                    .map_err(|refusal| refused_to(domain, command.name(), refusal))?;
                domain.user_root = Some(mfn);
            }
        }
        MmuextCmd::ClearPage => {
            // Zero one of the domain's frames without the guest mapping it
            // (handy for a frame about to become a page table). The frame
            // must be one that could be mapped writable: not a page table.
            frame_table::clear_page(mfn, id)
                .map_err(|refusal| refused_to(domain, command.name(), refusal))?;
        }
        MmuextCmd::TlbFlushLocal | MmuextCmd::TlbFlushAll | MmuextCmd::TlbFlushMulti => {
            tlb::flush_all()
        }
        MmuextCmd::InvlpgLocal | MmuextCmd::InvlpgAll | MmuextCmd::InvlpgMulti => {
            if !is_canonical(operation.arg1) {
                return Err(XenError::EINVAL);
            }
            instructions::invlpg(operation.arg1);
        }
        other => {
            guest_log!(
                domain,
                Warn,
                "mmuext_op {} is not implemented: -ENOSYS",
                other.name()
            );
            return Err(XenError::ENOSYS);
        }
    }
    Ok(())
}

/// `MMUEXT_NEW_BASEPTR`, also reached by an emulated `mov %reg, %cr3`:
/// makes the L4 `mfn` the domain's kernel page-table root, after the frame
/// table validated it as one of the domain's L4s, and loads it.
pub(crate) fn new_baseptr(domain: &mut Domain, mfn: u64) -> Result<(), XenError> {
    let old = domain.kernel_root;
    frame_table::with(|frames, memory| frames.switch_base(memory, mfn, Some(old), domain.id))
        .map_err(|refusal| refused_to(domain, MmuextCmd::NewBaseptr.name(), refusal))?;
    domain.kernel_root = mfn;
    // The guest is in kernel mode (it made a hypercall, or executed the
    // instruction being emulated): load the new root now. Writing CR3 also
    // flushes the TLB.
    // SAFETY: the frame table validated `mfn` as an L4 of this domain, and
    // validation copied the hypervisor's slots into it, so the hypervisor
    // stays mapped.
    unsafe { instructions::write_cr3(mfn * PAGE_SIZE) };
    tlb::root_loaded();
    Ok(())
}

/// Finds the L1 table and index that map `address` in the tree rooted at
/// `root` (an MFN); `None` when an upper level is missing.
fn find_l1(root: u64, address: u64) -> Option<(u64, usize)> {
    let mut table = root;
    for level in [4u32, 3, 2] {
        let index = (address >> (12 + 9 * (level - 1))) & 511;
        // SAFETY: `table` is a validated page table of the current domain
        // (the root, or a frame an entry of a validated table points at),
        // so it is RAM covered by the direct map.
        let entry =
            unsafe { physical_pointer::<u64>(table * PAGE_SIZE + index * 8).read_volatile() };
        if entry & PTE_PRESENT == 0 {
            return None;
        }
        table = (entry & PTE_ADDRESS_MASK) / PAGE_SIZE;
    }
    Some((table, ((address >> 12) & 511) as usize))
}

/// `update_va_mapping(address, pte, flags)`: replace the L1 entry that maps
/// `address` in the current address space, then flush as `flags` asks
/// (`UVMF_INVLPG`, `UVMF_TLB_FLUSH`), and in any case when a mapping was
/// removed or weakened.
pub fn update_va_mapping(address: u64, value: u64, flags: u64) -> Result<u64, XenError> {
    if !is_canonical(address) || (HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END).contains(&address) {
        return Err(XenError::EINVAL);
    }
    let (id, root) =
        domain::with_current(|domain| (domain.id, domain.kernel_root)).ok_or(XenError::ESRCH)?;
    let (table, index) = find_l1(root, address).ok_or(XenError::EINVAL)?;
    let flush = frame_table::with(|frames, memory| {
        frames.update_entry(memory, table, index, value, id, false)
    })
    .map_err(|refusal| refused("update_va_mapping", refusal))?;
    match flags & UVMF_FLUSHTYPE_MASK {
        UVMF_TLB_FLUSH => tlb::flush_all(),
        UVMF_INVLPG => instructions::invlpg(address),
        _ if flush == Flush::Needed => instructions::invlpg(address),
        _ => {}
    }
    if flush == Flush::Needed {
        // The same L1 entry may be reachable through other addresses (an L1
        // linked from two L2 entries): their translations may be stale too.
        tlb::note_stale();
        // It may have been the last mapping of a dying domain's frame.
        domain::release_dying_frames();
    }
    Ok(0)
}
