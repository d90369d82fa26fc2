//! `multicall`: many hypercalls for the price of one entry.
//!
//! The guest passes an array of `multicall_entry` (op, result, args[6]);
//! each is dispatched like a hypercall of its own, and its result is written
//! into the entry. Entries may not be `multicall` (no nesting) or `iret`
//! (which does not return). Every entry runs, whatever the earlier results.

use super::dispatch;
use crate::mm::guest_access;
use hypercall_abi::error::result_to_raw;
use hypercall_abi::hypercall::Hypercall;
use hypercall_abi::{MulticallEntry, XenError};

// SAFETY: a repr(C) struct of integers.
unsafe impl guest_access::Plain for MulticallEntry {}

/// The most entries one call may carry.
pub const MAX_ENTRIES: u64 = 1024;
const ENTRY_SIZE: u64 = core::mem::size_of::<MulticallEntry>() as u64;

/// `multicall(entries, count)`.
pub fn multicall(entries: u64, count: u64) -> Result<u64, XenError> {
    if count > MAX_ENTRIES {
        return Err(XenError::EINVAL);
    }
    for index in 0..count {
        let address = entries + index * ENTRY_SIZE;
        let mut entry: MulticallEntry = guest_access::read_from_guest(address)?;
        let call = Hypercall::from_register(entry.op);
        let result = match call {
            Some(Hypercall::Multicall | Hypercall::Iret) => Err(XenError::EINVAL),
            _ => {
                let arguments = [
                    entry.args[0],
                    entry.args[1],
                    entry.args[2],
                    entry.args[3],
                    entry.args[4],
                ];
                dispatch(call, entry.op, &arguments)
            }
        };
        entry.result = result_to_raw(result) as u64;
        guest_access::write_to_guest(address + 8, &entry.result)?;
    }
    Ok(0)
}
