//! `sched_op`: yield, block (until an event), poll (ports, with a
//! timeout), and shut down.

use crate::console::{caller_log, guest_log};
use crate::domain;
use crate::mm::guest_access;
use hypercall_abi::sched::SchedPoll;
use hypercall_abi::sched::{SchedOp, ShutdownReason};
use hypercall_abi::{SchedShutdown, XenError};

/// `sched_op(cmd, arg)`.
pub fn sched_op(command: u64, argument: u64) -> Result<u64, XenError> {
    match SchedOp::from_register(command) {
        Some(SchedOp::Yield) => {
            crate::sched::yield_current();
            Ok(0)
        }
        Some(SchedOp::Shutdown) => {
            let request: SchedShutdown = guest_access::read_from_guest(argument)?;
            let reason = ShutdownReason::try_from(request.reason).map_err(|_| XenError::EINVAL)?;
            domain::shutdown_current(reason);
            Ok(0)
        }
        Some(SchedOp::Block) => {
            // As Xen: unmask events, and block unless an upcall is already
            // pending (then the exit path delivers it at once).
            domain::with_current(|domain| {
                let info = domain.vcpu_info();
                info.set_upcall_mask(0);
                if info.upcall_pending() == 0 {
                    domain.blocked = true;
                    crate::sched::request_reschedule();
                }
            });
            Ok(0)
        }
        Some(SchedOp::Poll) => poll(argument),
        other => {
            let name = other.map_or("unknown", |op| op.name());
            caller_log!(
                Warn,
                "sched_op {name} ({command}) is not implemented: -ENOSYS"
            );
            Err(XenError::ENOSYS)
        }
    }
}

/// `SCHEDOP_poll`: block until one of the listed ports is pending (masked
/// or not) or the timeout (absolute system time in ns, 0 = none) passes.
fn poll(argument: u64) -> Result<u64, XenError> {
    let request: SchedPoll = guest_access::read_from_guest(argument)?;
    if request.nr_ports > 16 {
        return Err(XenError::EINVAL);
    }
    guest_access::check_array(request.ports, u64::from(request.nr_ports), 4)?;
    let mut ports: heapless::Vec<u32, 16> = heapless::Vec::new();
    for index in 0..u64::from(request.nr_ports) {
        let port: u32 = guest_access::read_from_guest(request.ports + index * 4)?;
        let _ = ports.push(port);
    }
    domain::with_current(|domain| {
        let shared = domain.shared_info();
        if ports
            .iter()
            .any(|&port| crate::evtchn::ports::is_pending(shared, port))
        {
            return Ok(0);
        }
        // A timeout already past: Xen's poll timer fires at once and the
        // vCPU never sleeps. Waiting for the next tick would make a guest
        // that polls in a loop (XTF's XSA-221 test) 10 ms a call slower.
        if request.timeout != 0 && request.timeout <= crate::time::system_time_ns() {
            return Ok(0);
        }
        if ports.is_empty() && request.timeout == 0 {
            // Legitimate, as in Xen, and easy to do by mistake: nothing but
            // `xl destroy` ends this sleep. Say so, so that `xl dmesg`
            // explains the `b` in `xl list`.
            guest_log!(
                domain,
                Warn,
                "polls no port and has no timeout: it sleeps until it is destroyed"
            );
        }
        domain.polling = Some(crate::domain::Poll {
            ports,
            deadline: request.timeout,
        });
        domain.blocked = true;
        crate::sched::request_reschedule();
        Ok(0)
    })
    .unwrap_or(Err(XenError::ESRCH))
}
