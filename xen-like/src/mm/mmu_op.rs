//! The page-table hypercalls: `mmu_update`, `mmuext_op` and
//! `update_va_mapping`.
//!
//! A PV guest owns and writes its page tables, but never directly: its
//! page-table frames are mapped read-only, and every change goes through
//! these hypercalls, which hand it to the frame table
//! (`crate::mm::frame_table`) for validation. When a change removed or
//! weakened a mapping, stale translations are dealt with as `mm::tlb`
//! explains.

use crate::arch::x86_64::instructions;
use crate::console::{caller_log, guest_log};
use crate::domain::caller;
use crate::domain::{self, Domain};
use crate::mm::frame_table::{EntryUpdate, Flush, PageType, Refusal};
use crate::mm::pagewalk::{is_canonical, PTE_ADDRESS_MASK, PTE_PRESENT};
use crate::mm::{frame_table, guest_access, m2p, physical_pointer, tlb, PAGE_SIZE};
use crate::sched::continuation::Outcome;
use hypercall_abi::layout::{HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};
use hypercall_abi::mmu::{
    MmuUpdate, MmuUpdateKind, MmuextCmd, MmuextOp, MMU_UPDATE_PREEMPTED, UVMF_FLUSHTYPE_MASK,
    UVMF_INVLPG, UVMF_TLB_FLUSH,
};
use hypercall_abi::XenError;

/// Logs why the frame table refused the caller's request and returns its
/// error (not inside `domain::with`: see [`refused_to`]).
fn refused(what: &str, refusal: Refusal) -> XenError {
    caller_log!(Debug, "{what} refused: {}", refusal.reason);
    refusal.error
}

/// [`refused`], with the calling domain in hand. A preemption
/// (`-ERESTART`) is no refusal: the request goes on in a continuation, and
/// says nothing.
fn refused_to(domain: &mut Domain, what: &str, refusal: Refusal) -> XenError {
    if refusal.error != XenError::ERESTART {
        guest_log!(domain, Debug, "{what} refused: {}", refusal.reason);
    }
    refusal.error
}

/// Whose frames the entries may map: the caller's own (`DOMID_SELF` or
/// its ID), or, for a privileged caller building a domain, that domain's
/// (a *foreign* mapping; L1 entries only). The argument is a full
/// register: a value no domain ID can have names no domain (`-ESRCH`).
fn page_owner(foreign: u64) -> Result<u16, XenError> {
    let foreign = u16::try_from(foreign).map_err(|_| XenError::ESRCH)?;
    domain::resolve_target(foreign)
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

/// Reads the count argument of `mmu_update` or `mmuext_op` and checks the
/// batch's guest pointers (`check_batch`, so an array that would reach the
/// hypervisor or wrap is `-EFAULT` whatever its count): the requests left,
/// and how many the earlier parts of a continued call did (Xen keeps that
/// in the guest's `*done`, so the continuation reads it back). A count that
/// does not fit Xen's 31 bits is `-EINVAL`.
fn start_batch(first: u64, size: u64, count: u64, done_out: u64) -> Result<(u64, u32), XenError> {
    let continued = count & MMU_UPDATE_PREEMPTED != 0;
    let remaining = count & !MMU_UPDATE_PREEMPTED;
    check_batch(first, remaining, size, done_out)?;
    if remaining >= MMU_UPDATE_PREEMPTED {
        return Err(XenError::EINVAL);
    }
    let done = if continued && done_out != 0 {
        guest_access::read_from_guest::<u32>(done_out)?
    } else {
        0
    };
    Ok((remaining, done))
}

/// The loop `mmu_update` and `mmuext_op` share: runs the `count` requests of
/// `size` bytes at `first` through `run` in order, until one fails (its
/// error is the result) or the work budget runs out, either between two
/// requests or inside one (`run` answers `-ERESTART` having done nothing
/// visible). Then `*done` gets the number of requests done, counting the
/// earlier parts of a continued call, and a stopped batch becomes a
/// continuation for the rest: the pointer advanced to the first request not
/// done, the count left with [`MMU_UPDATE_PREEMPTED`] set.
fn run_batch(
    first: u64,
    size: u64,
    count: u64,
    done_out: u64,
    foreign: u64,
    budget: &mut u64,
    mut run: impl FnMut(u64, &mut u64) -> Result<(), XenError>,
) -> Outcome {
    let (remaining, mut done) = match start_batch(first, size, count, done_out) {
        Ok(counts) => counts,
        Err(error) => return Outcome::Done(Err(error)),
    };
    let mut result = Ok(0);
    let mut stopped_at = None;
    for index in 0..remaining {
        // One unit of work per request, so that a long batch of cheap
        // requests is bounded too. The first request of a call always has
        // budget, so every call makes progress.
        if *budget == 0 {
            stopped_at = Some(index);
            break;
        }
        *budget -= 1;
        match run(first + index * size, budget) {
            Ok(()) => done = done.wrapping_add(1),
            Err(XenError::ERESTART) => {
                stopped_at = Some(index);
                break;
            }
            Err(error) => {
                result = Err(error);
                break;
            }
        }
    }
    if done_out != 0 {
        // Xen's `done` is an unsigned int: write exactly 4 bytes.
        if let Err(error) = guest_access::write_to_guest(done_out, &done) {
            return Outcome::Done(Err(error));
        }
    }
    // The batch may have freed the last frame of a dying domain (an
    // update, an unpin, a new base): Dom0 hears of it now.
    domain::announce_gone_zombies();
    match stopped_at {
        Some(index) => Outcome::Continue(heapless::Vec::from_iter([
            first + index * size,
            (remaining - index) | MMU_UPDATE_PREEMPTED,
            done_out,
            foreign,
        ])),
        None => Outcome::Done(result),
    }
}

/// `mmu_update(requests, count, done, foreign_domain)`: apply a batch of
/// page-table writes (`MMU_NORMAL_PT_UPDATE`, `MMU_PT_UPDATE_PRESERVE_AD`)
/// and M2P updates (`MMU_MACHPHYS_UPDATE`), in order. The first failure
/// stops the batch: earlier requests stay applied, and `*done` says how
/// many succeeded. A long batch, or one write that links or unlinks a big
/// tree, continues itself (see `hypercall`, "Continuations").
pub fn mmu_update(
    requests: u64,
    count: u64,
    done_out: u64,
    foreign: u64,
    budget: &mut u64,
) -> Outcome {
    let owner = match page_owner(foreign) {
        Ok(owner) => owner,
        Err(error) => return Outcome::Done(Err(error)),
    };
    let id = caller();
    run_batch(
        requests,
        16,
        count,
        done_out,
        foreign,
        budget,
        |address, budget| {
            let request = guest_access::read_from_guest::<MmuUpdate>(address)?;
            match apply_update(&request, id, owner, budget)? {
                Flush::Needed => tlb::note_stale(),
                Flush::None => {}
            }
            Ok(())
        },
    )
}

fn apply_update(
    request: &MmuUpdate,
    id: u16,
    owner: u16,
    budget: &mut u64,
) -> Result<Flush, XenError> {
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
            let update = EntryUpdate {
                table,
                index,
                new: request.val,
                domain: id,
                page_owner: owner,
                preserve_ad: kind == MmuUpdateKind::PtUpdatePreserveAd,
            };
            domain::with_current(|domain| {
                finish_deferred(domain, budget)?;
                let deferred = &mut domain.vcpu.deferred_devalidation;
                frame_table::with_budget(budget, |frames, memory| {
                    frames.update_entry_preemptible(memory, &update, deferred)
                })
                .map_err(|refusal| refused_to(domain, "mmu_update", refusal))
            })
            .unwrap_or(Err(XenError::ESRCH))
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
/// tables, switch page-table roots, flush TLBs. Continues itself like
/// `mmu_update`: pinning or unpinning a big tree takes as many
/// continuations as its size needs.
pub fn mmuext_op(
    operations: u64,
    count: u64,
    done_out: u64,
    foreign: u64,
    budget: &mut u64,
) -> Outcome {
    match page_owner(foreign) {
        // Pinning another domain's tables is done by setvcpucontext.
        Ok(owner) if owner != caller() => return Outcome::Done(Err(XenError::EPERM)),
        Ok(_) => {}
        Err(error) => return Outcome::Done(Err(error)),
    }
    run_batch(
        operations,
        24,
        count,
        done_out,
        foreign,
        budget,
        |address, budget| {
            let operation = guest_access::read_from_guest::<MmuextOp>(address)?;
            domain::with_current(|domain| extended_operation(domain, &operation, budget))
                .unwrap_or(Err(XenError::ESRCH))
        },
    )
}

/// The guest's next page-table operation first finishes the devalidation an
/// earlier one left (`crate::mm::frame_table`, "Preemption"): `-ERESTART`
/// while it is not done.
fn finish_deferred(domain: &mut Domain, budget: &mut u64) -> Result<(), XenError> {
    if domain.vcpu.deferred_devalidation.is_none() {
        return Ok(());
    }
    let deferred = &mut domain.vcpu.deferred_devalidation;
    let outcome = frame_table::with_budget(budget, |frames, memory| {
        frames.finish_deferred(memory, deferred)
    });
    // Whether it finished or not, it removed mappings since it last noted
    // that a flush is due.
    tlb::note_stale();
    outcome
        .map(|_noted| ())
        .map_err(|refusal| refused_to(domain, "deferred devalidation", refusal))
}

/// One `mmuext_op` request of the current domain: decodes its command and
/// hands it to the function for that command. Commands that can retype a
/// frame (pins, new base pointers) first flush a stale TLB (`mm::tlb`);
/// every command first finishes a devalidation an earlier one deferred.
fn extended_operation(
    domain: &mut Domain,
    operation: &MmuextOp,
    budget: &mut u64,
) -> Result<(), XenError> {
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
    finish_deferred(domain, budget)?;
    if let Some(level) = pin_level {
        return pin_table(domain, command, mfn, level, budget);
    }
    match command {
        MmuextCmd::UnpinTable => unpin_table(domain, mfn, budget),
        MmuextCmd::NewBaseptr => new_baseptr(domain, mfn, budget),
        MmuextCmd::NewUserBaseptr => new_user_baseptr(domain, mfn, budget),
        MmuextCmd::ClearPage => clear_page(domain, mfn),
        MmuextCmd::TlbFlushLocal | MmuextCmd::TlbFlushAll | MmuextCmd::TlbFlushMulti => {
            tlb::flush_all();
            Ok(())
        }
        MmuextCmd::InvlpgLocal | MmuextCmd::InvlpgAll | MmuextCmd::InvlpgMulti => {
            invlpg(operation.arg1)
        }
        other => {
            guest_log!(
                domain,
                Warn,
                "mmuext_op {} is not implemented: -ENOSYS",
                other.name()
            );
            Err(XenError::ENOSYS)
        }
    }
}

/// `MMUEXT_PIN_L1_TABLE` .. `MMUEXT_PIN_L4_TABLE` (`command`): validates
/// the domain's frame `mfn` as a page table of `level` and keeps it so
/// (a pin holds a type reference) until `MMUEXT_UNPIN_TABLE`, whether or
/// not it is in use as a root or linked from another table.
///
/// Invariant: a frame the guest can still write through a mapping never
/// becomes a page table (the frame table refuses it; the caller flushed a
/// stale TLB first). Within `budget`: `-ERESTART` while validation of a
/// big tree is unfinished (the continuation pins it again).
fn pin_table(
    domain: &mut Domain,
    command: MmuextCmd,
    mfn: u64,
    level: u8,
    budget: &mut u64,
) -> Result<(), XenError> {
    let id = domain.id;
    let deferred = &mut domain.vcpu.deferred_devalidation;
    frame_table::with_budget(budget, |frames, memory| {
        frames.pin_preemptible(memory, mfn, level, id, deferred)
    })
    .map_err(|refusal| refused_to(domain, command.name(), refusal))
}

/// `MMUEXT_UNPIN_TABLE`: drops the pin on the domain's page table `mfn`.
/// If that was its last type reference the table is devalidated, dropping
/// the references its entries held (and the removed mappings make the TLB
/// stale). Within `budget`: a big devalidation is deferred to the domain's
/// next page-table operation (`finish_deferred`).
fn unpin_table(domain: &mut Domain, mfn: u64, budget: &mut u64) -> Result<(), XenError> {
    let id = domain.id;
    let deferred = &mut domain.vcpu.deferred_devalidation;
    let flush = frame_table::with_budget(budget, |frames, memory| {
        frames.unpin_preemptible(memory, mfn, id, deferred)
    })
    .map_err(|refusal| refused_to(domain, MmuextCmd::UnpinTable.name(), refusal))?;
    if flush == Flush::Needed {
        tlb::note_stale();
    }
    Ok(())
}

/// `MMUEXT_NEW_USER_BASEPTR`: makes the L4 `mfn` the root the domain's
/// user mode runs on (validated as one of its L4s, holding a type reference
/// while it is the root), or, with `mfn` 0, leaves it with no user root.
/// The old user root's reference is dropped either way. It is not loaded
/// now: the guest is in kernel mode, and the switch to user mode loads it.
fn new_user_baseptr(domain: &mut Domain, mfn: u64, budget: &mut u64) -> Result<(), XenError> {
    let id = domain.id;
    let old = domain.user_root;
    let deferred = &mut domain.vcpu.deferred_devalidation;
    if mfn == 0 {
        if let Some(old) = old {
            let flush = frame_table::with_budget(budget, |frames, memory| {
                frames.put_page_and_type_preemptible(memory, old, deferred)
            });
            if flush == Flush::Needed {
                tlb::note_stale();
            }
        }
        domain.user_root = None;
    } else {
        frame_table::with_budget(budget, |frames, memory| {
            frames.switch_base_preemptible(memory, mfn, old, id, deferred)
        })
        .map_err(|refusal| refused_to(domain, MmuextCmd::NewUserBaseptr.name(), refusal))?;
        domain.user_root = Some(mfn);
    }
    Ok(())
}

/// `MMUEXT_CLEAR_PAGE`: zeroes the domain's frame `mfn` without the guest
/// mapping it (handy for a frame about to become a page table). The frame
/// must be one the guest could map writable: its own, and not a page table
/// (`frame_table::clear_page` checks both).
fn clear_page(domain: &mut Domain, mfn: u64) -> Result<(), XenError> {
    frame_table::clear_page(mfn, domain.id)
        .map_err(|refusal| refused_to(domain, MmuextCmd::ClearPage.name(), refusal))
}

/// `MMUEXT_INVLPG_LOCAL` (and, with one CPU, `_ALL` and `_MULTI`): drops
/// this CPU's translation of the guest-virtual `address`. A non-canonical
/// address is `-EINVAL` (`invlpg` of one is harmless, but Xen refuses it).
fn invlpg(address: u64) -> Result<(), XenError> {
    if !is_canonical(address) {
        return Err(XenError::EINVAL);
    }
    instructions::invlpg(address);
    Ok(())
}

/// `MMUEXT_NEW_BASEPTR`, also reached by an emulated `mov %reg, %cr3`:
/// makes the L4 `mfn` the domain's kernel page-table root, after the frame
/// table validated it as one of the domain's L4s, and loads it.
/// Within `budget` (see `hypercall`, "Continuations"): `-ERESTART` while
/// the new root is not validated yet; the old root's devalidation, if it
/// runs out of budget, is deferred. The emulated instruction cannot be
/// continued, so it passes an unlimited budget.
pub(crate) fn new_baseptr(domain: &mut Domain, mfn: u64, budget: &mut u64) -> Result<(), XenError> {
    let old = domain.kernel_root;
    let id = domain.id;
    let deferred = &mut domain.vcpu.deferred_devalidation;
    frame_table::with_budget(budget, |frames, memory| {
        frames.switch_base_preemptible(memory, mfn, Some(old), id, deferred)
    })
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
pub(crate) fn find_l1(root: u64, address: u64) -> Option<(u64, usize)> {
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
        // It may have freed the last frame of a dying domain.
        domain::announce_gone_zombies();
    }
    Ok(0)
}
