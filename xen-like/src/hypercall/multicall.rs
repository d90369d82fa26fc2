//! `multicall`: many hypercalls for the price of one entry.
//!
//! The guest passes an array of `multicall_entry` (op, result, args[6]);
//! each is dispatched like a hypercall of its own, and its result is written
//! into the entry. Every entry runs, whatever the earlier results, except
//! after an `iret`:
//!
//! - A `multicall` entry is `-EINVAL` (no nesting).
//! - An `iret` entry returns from the multicall's own `syscall` as the
//!   `iret` hypercall would (the `iret_context` is on the guest's stack at
//!   that `syscall`), and **ends the multicall** there: its result, the
//!   restored rax, is the entry's result and the multicall's return value,
//!   and the entries after it do not run. Xen's XSA-213 fix: the `iret`
//!   may enter guest *user* mode, and an entry run after it would then run
//!   with the user's page tables and privilege, a user program making the
//!   kernel's hypercalls.
//!
//! Entries are read 16 at a time, one guest copy (one page walk) per batch
//! instead of per entry, which saves about 150 cycles an entry. The one
//! difference from Xen, which reads each entry just before running it: a
//! call that rewrites a later entry of the same batch of 16 does not change
//! what that entry does. No PV guest builds such a batch.
//!
//! A multicall shares one work budget among its entries (one unit per
//! entry, plus what each uses). When the budget runs out between entries,
//! or an entry itself answers with a continuation, the multicall continues
//! itself as Xen's does: the stopped entry's arguments in guest memory are
//! replaced by the updated ones, and the guest makes the multicall again
//! from that entry on (see `hypercall`, "Continuations").

use super::{dispatch, Outcome};
use crate::arch::x86_64::frame::GuestFrame;
use crate::domain;
use crate::mm::guest_access;
use crate::traps::hypercalls as trap_calls;
use hypercall_abi::error::result_to_raw;
use hypercall_abi::hypercall::Hypercall;
use hypercall_abi::{MulticallEntry, XenError};

/// The most entries one call may carry.
pub const MAX_ENTRIES: u64 = 1024;
const ENTRY_SIZE: u64 = core::mem::size_of::<MulticallEntry>() as u64;
/// Where an entry's `result` and `args` sit in it.
const RESULT_OFFSET: u64 = core::mem::offset_of!(MulticallEntry, result) as u64;
const ARGUMENTS_OFFSET: u64 = core::mem::offset_of!(MulticallEntry, args) as u64;

/// Entries read from the guest in one copy (one page walk per page
/// instead of one per entry).
const CHUNK: usize = 16;

/// How the entries ended.
enum Ending {
    /// All ran.
    Done,
    /// The work budget ran out: the entry at this index is the first not done.
    Stopped(u64),
    /// An `iret` entry returned to the guest with this rax.
    Iret(u64),
}

/// `multicall(entries, count)`; `frame` is the guest's, which an `iret`
/// entry rewrites.
pub fn multicall(entries: u64, count: u64, budget: &mut u64, frame: &mut GuestFrame) -> Outcome {
    if let Err(error) = guest_access::check_array(entries, count, ENTRY_SIZE) {
        return Outcome::Done(Err(error));
    }
    if count > MAX_ENTRIES {
        return Outcome::Done(Err(XenError::EINVAL));
    }
    match run_entries(entries, count, budget, frame) {
        Ok(Ending::Done) => Outcome::Done(Ok(0)),
        Ok(Ending::Stopped(stopped_at)) => Outcome::Continue(heapless::Vec::from_iter([
            entries + stopped_at * ENTRY_SIZE,
            count - stopped_at,
        ])),
        Ok(Ending::Iret(rax)) => Outcome::Done(Ok(rax)),
        Err(error) => Outcome::Done(Err(error)),
    }
}

/// Runs the entries in order, until the last, the end of the work budget
/// or an `iret`.
fn run_entries(
    entries: u64,
    count: u64,
    budget: &mut u64,
    frame: &mut GuestFrame,
) -> Result<Ending, XenError> {
    let mut chunk = [MulticallEntry::default(); CHUNK];
    let mut first = 0;
    while first < count {
        let length = (count - first).min(CHUNK as u64) as usize;
        let address = entries + first * ENTRY_SIZE;
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut chunk[..length]);
        // The results are written back into these entries: a read-only
        // array fails here, before any of its calls has run.
        guest_access::copy_from_guest_for_update(address, bytes)?;
        for (offset, entry) in chunk[..length].iter().enumerate() {
            let index = first + offset as u64;
            let entry_address = address + offset as u64 * ENTRY_SIZE;
            // One unit per entry; the first entry of a call always runs, so
            // every call makes progress.
            if *budget == 0 {
                return Ok(Ending::Stopped(index));
            }
            *budget -= 1;
            let call = Hypercall::from_register(entry.op);
            let outcome = match call {
                Some(Hypercall::Multicall) => Outcome::Done(Err(XenError::EINVAL)),
                Some(Hypercall::Iret) => {
                    let rax = iret(frame);
                    // Best effort, as in Xen: the guest has already left
                    // through its iret frame.
                    let _ = guest_access::write_to_guest(entry_address + RESULT_OFFSET, &rax);
                    return Ok(Ending::Iret(rax));
                }
                _ => {
                    let [a0, a1, a2, a3, a4, _] = entry.args;
                    dispatch(call, entry.op, &[a0, a1, a2, a3, a4], budget)
                }
            };
            match outcome {
                Outcome::Done(result) => {
                    // Only the result is written back: the calls themselves
                    // may have changed the rest of the guest's memory, the
                    // array included.
                    let result = result_to_raw(result) as u64;
                    guest_access::write_to_guest(entry_address + RESULT_OFFSET, &result)?;
                }
                Outcome::Continue(arguments) => {
                    // The entry goes on, from where it stopped, when the
                    // guest makes the multicall again.
                    for (slot, argument) in arguments.iter().enumerate() {
                        let slot_address = entry_address + ARGUMENTS_OFFSET + slot as u64 * 8;
                        guest_access::write_to_guest(slot_address, argument)?;
                    }
                    return Ok(Ending::Stopped(index));
                }
            }
        }
        first += length as u64;
    }
    Ok(Ending::Done)
}

/// An `iret` entry: the `iret` hypercall on the multicall's frame. A frame
/// it cannot return to crashes the guest, as the hypercall does; the rax
/// then no longer matters.
fn iret(frame: &mut GuestFrame) -> u64 {
    match domain::with_current(|domain| trap_calls::iret(domain, frame)) {
        Some(Ok(rax)) => rax,
        Some(Err(reason)) => {
            trap_calls::iret_failed(reason);
            0
        }
        None => 0,
    }
}
