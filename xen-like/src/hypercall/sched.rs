//! `sched_op`: yield, and shut down.

use crate::domain;
use crate::mm::guest_access;
use hypercall_abi::sched::{SchedOp, ShutdownReason};
use hypercall_abi::{SchedShutdown, XenError};

/// `sched_op(cmd, arg)`.
pub fn sched_op(command: u64, argument: u64) -> Result<u64, XenError> {
    match SchedOp::from_register(command) {
        Some(SchedOp::Yield) => {
            crate::sched::request_reschedule();
            Ok(0)
        }
        Some(SchedOp::Shutdown) => {
            let request: SchedShutdown = guest_access::read_from_guest(argument)?;
            let reason = ShutdownReason::try_from(request.reason).map_err(|_| XenError::EINVAL)?;
            domain::shutdown_current(reason);
            Ok(0)
        }
        other => {
            let name = other.map_or("unknown", |op| op.name());
            log::warn!(target: crate::console::GUEST, "d{}: sched_op {name} ({command}) is not implemented: -ENOSYS", super::caller());
            Err(XenError::ENOSYS)
        }
    }
}
