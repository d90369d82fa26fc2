//! The control hypercalls in safe forms: `sysctl` and `domctl`, and the
//! builder's `memory_op(populate_physmap)` for another domain.
//!
//! A raw control request may carry a guest virtual address (the log
//! buffer of `readconsole`, the record array of `getdomaininfolist`, the
//! frame array of `populate_physmap`) that the hypervisor then writes. The
//! forms here never take such an address from the caller: they take the
//! buffer itself as a Rust slice and fill in its address and length, so the
//! hypervisor only ever writes memory that is borrowed mutably for the call
//! and is as large as the request says.

use guest_kernel::abi::domctl::Domctl;
use guest_kernel::abi::hypercall::Hypercall;
use guest_kernel::abi::memory::{MemoryOp, MemoryReservation};
use guest_kernel::abi::sysctl::{
    DomainInfo, Sysctl, SysctlGetdomaininfolist, SysctlOp, SysctlReadconsole,
};
use guest_kernel::abi::{wrappers, XenError};

/// A raw result as a `Result`: 0 is success, anything else (a negated
/// errno) the error.
fn result(raw: i64) -> Result<(), i64> {
    match raw {
        0 => Ok(()),
        error => Err(error),
    }
}

/// Makes a sysctl whose payload holds no address (`physinfo` and the
/// benchmarks' operations); `Err` holds the raw (negative) result. The
/// operations with a buffer have their own functions below, and are
/// refused here with `-EINVAL`, as is an unknown command.
pub fn sysctl(request: &mut Sysctl) -> Result<(), i64> {
    match SysctlOp::try_from(request.cmd) {
        // No wildcard: a new operation must be sorted into one of these.
        Ok(
            SysctlOp::Physinfo
            | SysctlOp::BenchSyscallFloor
            | SysctlOp::BenchNative
            | SysctlOp::LongestHypercall,
        ) => {}
        Ok(SysctlOp::Readconsole | SysctlOp::Getdomaininfolist) | Err(_) => {
            return Err(XenError::EINVAL.as_return())
        }
    }
    // SAFETY: the request is ours for the call, and its payload names no
    // memory (the operations that do were refused above).
    result(unsafe { wrappers::sysctl(request) })
}

/// `sysctl(readconsole)` into `buffer`: reads the hypervisor's log from
/// running byte counter `index` on (forgetting what it returned when
/// `clear`). Returns (bytes copied into `buffer`, where to start next).
pub fn readconsole(buffer: &mut [u8], clear: bool, index: u32) -> Result<(usize, u32), i64> {
    let mut request = Sysctl::readconsole(SysctlReadconsole {
        clear: u8::from(clear),
        incremental: 1,
        index,
        buffer: buffer.as_mut_ptr() as u64,
        count: u32::try_from(buffer.len()).unwrap_or(u32::MAX),
        ..Default::default()
    });
    // SAFETY: the hypervisor writes at most `count` bytes at `buffer`,
    // which is a slice of at least that many bytes, borrowed mutably for
    // the call.
    result(unsafe { wrappers::sysctl(&mut request) })?;
    let payload = request.readconsole_payload();
    Ok(((payload.count as usize).min(buffer.len()), payload.index))
}

/// `sysctl(getdomaininfolist)` into `records`, from domain 0 on: returns
/// how many records were filled.
pub fn domain_infos(records: &mut [DomainInfo]) -> Result<usize, i64> {
    let mut request = Sysctl::getdomaininfolist(SysctlGetdomaininfolist {
        first_domain: 0,
        max_domains: u32::try_from(records.len()).unwrap_or(u32::MAX),
        buffer: records.as_mut_ptr() as u64,
        ..Default::default()
    });
    // SAFETY: the hypervisor writes at most `max_domains` records at
    // `buffer`, which is a slice of that many, borrowed mutably for the
    // call; every bit pattern is a valid `DomainInfo` (it is Pod).
    result(unsafe { wrappers::sysctl(&mut request) })?;
    let filled = request.getdomaininfolist_payload().num_domains as usize;
    Ok(filled.min(records.len()))
}

/// Makes a domctl; `Err` holds the raw (negative) result.
pub fn domctl(request: &mut Domctl) -> Result<(), i64> {
    // SAFETY: the request is ours for the call, and no domctl payload
    // holds an address (all are plain numbers: IDs, frame numbers, the
    // new domain's own register values).
    result(unsafe { wrappers::hypercall1(Hypercall::Domctl, request as *mut Domctl as u64) })
}

/// `memory_op(populate_physmap)` for domain `domain`: one fresh frame per
/// entry of `frames`, whose machine frame numbers the hypervisor writes
/// back into it. Returns how many it gave (fewer when memory ran out), or
/// the raw (negative) error.
pub fn populate_physmap(domain: u16, frames: &mut [u64]) -> Result<u64, i64> {
    let given = reservation(MemoryOp::PopulatePhysmap, domain, frames);
    u64::try_from(given).map_err(|_| given)
}

/// A reservation sub-op of `memory_op` (`increase_reservation`,
/// `decrease_reservation`, `populate_physmap`) for domain `domain`, one
/// order-0 extent per entry of `frames` (which the hypervisor reads, or
/// writes the new machine frames into): the raw result, the number of
/// extents done or a negated errno. Any other sub-op is refused with
/// `-EINVAL` (their arguments are other structures).
pub fn reservation(operation: MemoryOp, domain: u16, frames: &mut [u64]) -> i64 {
    if !matches!(
        operation,
        MemoryOp::IncreaseReservation | MemoryOp::DecreaseReservation | MemoryOp::PopulatePhysmap
    ) {
        return XenError::EINVAL.as_return();
    }
    let request = MemoryReservation {
        extent_start: frames.as_mut_ptr() as u64,
        nr_extents: frames.len() as u64,
        extent_order: 0,
        mem_flags: 0,
        domid: domain,
        ..MemoryReservation::default()
    };
    // SAFETY: `operation` takes a `MemoryReservation` (checked above); the
    // request and the frame array (nr_extents entries, the slice's length)
    // are borrowed for the call, and the hypervisor reads or writes at most
    // one u64 per extent of the array.
    unsafe {
        wrappers::hypercall2(
            Hypercall::MemoryOp,
            u64::from(operation.raw()),
            &request as *const MemoryReservation as u64,
        )
    }
}
