//! Safe forms of the hypercalls whose arguments are pointers: each takes
//! the argument as a Rust value or slice, so the pointer the hypervisor
//! receives always names memory of the right type and size for the call.
//!
//! The page-table calls change what addresses mean. They are safe to
//! offer because the hypervisor validates every entry, and because of the
//! rule in [`super::memory`]: memory that is mapped or unmapped at run
//! time is never a Rust object, only the target of volatile accessors.

use hypercall_abi::event_channel::{
    EventChannelOp, EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindVirq, EvtchnClose,
    EvtchnSend, EvtchnStatus, EvtchnUnmask,
};
use hypercall_abi::mmu::{MmuUpdate, MmuextOp};
use hypercall_abi::wrappers;

/// An event-channel request structure and the operation that takes it.
pub trait EventChannelRequest {
    /// The `EVTCHNOP_*` that reads and writes this structure.
    const OPERATION: EventChannelOp;
}

macro_rules! event_channel_request {
    ($($request:ty => $operation:ident),* $(,)?) => {
        $(impl EventChannelRequest for $request {
            const OPERATION: EventChannelOp = EventChannelOp::$operation;
        })*
    };
}

event_channel_request! {
    EvtchnAllocUnbound => AllocUnbound,
    EvtchnBindInterdomain => BindInterdomain,
    EvtchnBindVirq => BindVirq,
    EvtchnClose => Close,
    EvtchnSend => Send,
    EvtchnStatus => Status,
    EvtchnUnmask => Unmask,
}

/// `event_channel_op` with `request`, which the hypervisor reads and
/// updates in place: 0 or a negated errno.
pub fn event_channel_op<T: EventChannelRequest>(request: &mut T) -> i64 {
    // SAFETY: `request` is the structure T::OPERATION expects (the trait
    // pairs them), borrowed mutably for the call.
    unsafe { wrappers::event_channel_op(T::OPERATION, request as *mut T as *mut u8) }
}

/// `mmu_update` with `requests` on behalf of `owner` (`DOMID_SELF`, or the
/// domain whose frames a privileged builder maps): 0 or a negated errno,
/// and how many requests were done.
pub fn mmu_update(requests: &[MmuUpdate], owner: u16) -> (i64, u32) {
    let mut done = 0u32;
    // SAFETY: the batch and `done` are ours for the call; the hypervisor
    // validates every entry, and no Rust reference depends on mappings this
    // changes (see the module comment).
    let result = unsafe { wrappers::mmu_update(requests, &mut done, owner) };
    (result, done)
}

/// `mmuext_op` with `operations`: 0 or a negated errno, and how many were
/// done. Operations that take a pointer (`vcpumask`) are refused here:
/// none of this kernel's callers needs one.
pub fn mmuext_op(operations: &[MmuextOp], owner: u16) -> (i64, u32) {
    let mut done = 0u32;
    // SAFETY: the operations name frames and addresses the hypervisor
    // checks, the ones this kernel issues carry no guest pointers, and
    // switching roots keeps the kernel's own slots (its image, stack and
    // heap), so every live Rust reference stays valid.
    let result = unsafe { wrappers::mmuext_op(operations, &mut done, owner) };
    (result, done)
}

/// `update_va_mapping`: the entry that maps `address` becomes `entry`.
pub fn update_va_mapping(address: u64, entry: u64, flags: u64) -> i64 {
    // SAFETY: the hypervisor validates the entry; callers change only
    // mappings that no live Rust reference relies on (module comment).
    unsafe { wrappers::update_va_mapping(address, entry, flags) }
}

/// `memory_op(XENMEM_machphys_mapping)`: the M2P table's extent, as
/// (virtual start, virtual end, highest MFN).
pub fn machphys_mapping() -> Result<[u64; 3], i64> {
    let mut mapping = [0u64; 3];
    // SAFETY: XENMEM_machphys_mapping (12) writes three words, the size
    // of `mapping`, which lives for the call.
    let result = unsafe {
        wrappers::hypercall2(
            hypercall_abi::Hypercall::MemoryOp,
            12,
            mapping.as_mut_ptr() as u64,
        )
    };
    if result == 0 {
        Ok(mapping)
    } else {
        Err(result)
    }
}

/// `set_segment_base(which, base)`: changes one of this vCPU's segment
/// bases (FS, the kernel or the user GS). The kernel's Rust code does not
/// address memory through FS or GS, so no reference depends on them.
pub fn set_segment_base(which: u64, base: u64) -> i64 {
    // SAFETY: takes no pointer; see the function comment.
    unsafe { wrappers::hypercall2(hypercall_abi::Hypercall::SetSegmentBase, which, base) }
}

/// `xen_version(operation)` into `buffer`, which must be the size the
/// operation writes: `-EINVAL` without calling when it is not.
pub fn xen_version_into(operation: hypercall_abi::version::XenVersionOp, buffer: &mut [u8]) -> i64 {
    use hypercall_abi::version::*;
    let needed = match operation {
        XenVersionOp::Extraversion => XEN_EXTRAVERSION_LEN,
        XenVersionOp::Capabilities => XEN_CAPABILITIES_INFO_LEN,
        XenVersionOp::Changeset => XEN_CHANGESET_INFO_LEN,
        _ => 0,
    };
    if buffer.len() < needed || (needed == 0 && !matches!(operation, XenVersionOp::Pagesize)) {
        return hypercall_abi::XenError::EINVAL.as_return();
    }
    let pointer = if needed == 0 {
        core::ptr::null_mut()
    } else {
        buffer.as_mut_ptr()
    };
    // SAFETY: the buffer holds at least the bytes the operation writes
    // (checked above); `Pagesize` writes nothing.
    unsafe { wrappers::xen_version(operation, pointer) }
}
