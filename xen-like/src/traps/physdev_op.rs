//! `physdev_op`: what a domain that drives devices asks of the hypervisor; for now, its virtual IOPL.
//!
//! `PHYSDEVOP_set_iopl` sets the calling vCPU's virtual IOPL, which is what
//! its `in`, `out`, `cli` and `sti` are checked against when they fault
//! (`traps::io_ports`, `traps::emulate`). As in Xen, any domain may set it:
//! it is the guest kernel's permission to itself, not the hypervisor's to
//! the domain. Which ports an allowed access then reaches is the
//! hypervisor's decision (none for a DomU). The other sub-ops (the I/O
//! bitmap, physical interrupts, PCI devices) are `-ENOSYS` with a log line.

use crate::console::guest_log;
use crate::domain::Domain;
use crate::mm::guest_access;
use hypercall_abi::physdev::{PhysdevOp, PhysdevSetIopl, MAX_IOPL};
use hypercall_abi::XenError;

/// `physdev_op(cmd, arg)` for the calling domain.
pub fn physdev_op(domain: &mut Domain, command: u64, argument: u64) -> Result<u64, XenError> {
    match u32::try_from(command)
        .ok()
        .and_then(|raw| PhysdevOp::try_from(raw).ok())
    {
        Some(PhysdevOp::SetIopl) => {
            let request: PhysdevSetIopl = guest_access::read_from_guest(argument)?;
            set_iopl(domain, request.iopl)
        }
        Some(other) => {
            guest_log!(
                domain,
                Debug,
                "physdev_op {} is not implemented: -ENOSYS",
                other.name()
            );
            Err(XenError::ENOSYS)
        }
        None => {
            guest_log!(domain, Debug, "physdev_op {command} is unknown: -ENOSYS");
            Err(XenError::ENOSYS)
        }
    }
}

/// `PHYSDEVOP_set_iopl`: 0..=3, anything larger `-EINVAL` (Xen's check).
fn set_iopl(domain: &mut Domain, iopl: u32) -> Result<u64, XenError> {
    if iopl > MAX_IOPL {
        guest_log!(domain, Debug, "set_iopl {iopl}: above 3: -EINVAL");
        return Err(XenError::EINVAL);
    }
    domain.vcpu.iopl = iopl as u8;
    Ok(0)
}
