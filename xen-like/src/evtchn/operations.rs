//! The `event_channel_op` hypercall, raising events, and delivering them as upcalls.

use crate::arch::x86_64::frame::GuestFrame;
use crate::console::caller_log;
use crate::domain::{self, Domain, DomainId};
use crate::evtchn::ports::{self as rules, Channel, Port, Target};
use crate::mm::{guest_access, PAGE_SIZE};
use crate::traps::bounce;
use hypercall_abi::event_channel::{
    EventChannelOp, EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi, EvtchnBindVcpu,
    EvtchnBindVirq, EvtchnClose, EvtchnInitControl, EvtchnSend, EvtchnStatus, EvtchnStatusDetail,
    EvtchnStatusKind, EvtchnUnmask,
};
use hypercall_abi::XenError;

/// Marks `port` of `domain` pending; wakes the domain if an upcall became
/// due (or if it was polling that port).
pub fn notify(domain: &mut Domain, port: Port) {
    let due = rules::set_pending(domain.shared_info(), domain.vcpu_info(), port);
    let polled = domain
        .polling
        .as_ref()
        .is_some_and(|poll| poll.ports.contains(&port));
    if (due || polled) && domain.blocked {
        domain.blocked = false;
        domain.polling = None;
        crate::sched::request_reschedule();
    }
}

/// Raises virtual interrupt `virq` in domain `id`, if it bound one.
pub fn send_virq(id: DomainId, virq: u32) {
    domain::with(id, |domain| {
        if let Some(port) = domain.ports.virq_port(virq) {
            notify(domain, port);
        }
    });
}

/// On the way back to the running guest: enter its event callback if an
/// upcall is pending and events are unmasked.
pub fn deliver_upcall(frame: &mut GuestFrame) {
    let failure = domain::with_current(|domain| {
        if !domain.vcpu_info().events_need_delivery() {
            return None;
        }
        let callback = domain.vcpu.callbacks.event;
        if callback == 0 {
            return None; // no callback: events stay pending until it polls them
        }
        bounce::bounce_to(domain, frame, callback, None, true).err()
    });
    // As Xen's failed bounce: the guest cannot take its events, crash it
    // (outside the domain lock, which crashing takes).
    if let Some(Some(problem)) = failure {
        let mut reason = heapless::String::<160>::new();
        let _ = core::fmt::Write::write_fmt(
            &mut reason,
            format_args!("cannot deliver an event upcall: {problem}"),
        );
        domain::crash_current(&reason);
    }
}

/// `event_channel_op(cmd, arg)`: decodes the command and hands the
/// guest's argument (an `evtchn_*` struct, IN and OUT fields as in Xen's
/// `event_channel.h`) to the function for that operation.
pub fn event_channel_op(command: u64, argument: u64) -> Result<u64, XenError> {
    let caller = crate::domain::caller();
    let Some(operation) = EventChannelOp::from_register(command) else {
        caller_log!(Warn, "unknown event_channel_op {command}: -ENOSYS");
        return Err(XenError::ENOSYS);
    };
    match operation {
        EventChannelOp::AllocUnbound => evtchn_alloc_unbound(argument)?,
        EventChannelOp::BindInterdomain => evtchn_bind_interdomain(caller, argument)?,
        EventChannelOp::BindVirq => evtchn_bind_virq(caller, argument)?,
        EventChannelOp::BindIpi => evtchn_bind_ipi(caller, argument)?,
        EventChannelOp::Close => {
            let request: EvtchnClose = guest_access::read_from_guest(argument)?;
            evtchn_close(caller, request.port)?;
        }
        EventChannelOp::Send => {
            let request: EvtchnSend = guest_access::read_from_guest(argument)?;
            evtchn_send(caller, request.port)?;
        }
        EventChannelOp::Status => evtchn_status(argument)?,
        EventChannelOp::Unmask => evtchn_unmask(caller, argument)?,
        EventChannelOp::BindVcpu => evtchn_bind_vcpu(caller, argument)?,
        EventChannelOp::InitControl => return evtchn_init_control(caller, argument),
        other => {
            caller_log!(
                Warn,
                "event_channel_op {} is not implemented: -ENOSYS",
                other.name()
            );
            return Err(XenError::ENOSYS);
        }
    }
    Ok(0)
}

/// `EVTCHNOP_alloc_unbound`: a new port of domain `dom` (IN; the caller,
/// or any domain for a privileged caller: `domain::resolve_target`) that
/// domain `remote_dom` (IN; `DOMID_SELF` is the caller) and only it may
/// later connect to. Writes the new port to `port` (OUT).
///
/// Invariant: the port is `Unbound { remote }` until `remote` binds it or
/// its owner closes it; nothing is delivered on it until then.
fn evtchn_alloc_unbound(argument: u64) -> Result<(), XenError> {
    let mut request: EvtchnAllocUnbound = guest_access::read_for_update(argument)?;
    let owner = domain::resolve_target(request.dom)?;
    let remote = domain::resolve_peer(request.remote_dom);
    request.port = domain::with(owner, |domain| domain.ports.alloc_unbound(remote))
        .ok_or(XenError::ESRCH)??;
    guest_access::write_to_guest(argument, &request)
}

/// `EVTCHNOP_bind_interdomain`: connects a new port of the caller to port
/// `remote_port` (IN) of domain `remote_dom` (IN; `DOMID_SELF` is the
/// caller), which must be unbound and waiting for the caller. Writes the
/// new port to `local_port` (OUT).
///
/// Invariants: afterwards both ends name each other (the rules are in
/// `evtchn::ports::bind_interdomain`, with their tests); the new local port
/// starts pending, as in Xen, making up for any send dropped while the
/// other end was unbound.
fn evtchn_bind_interdomain(caller: DomainId, argument: u64) -> Result<(), XenError> {
    let mut request: EvtchnBindInterdomain = guest_access::read_for_update(argument)?;
    let remote = domain::resolve_peer(request.remote_dom);
    request.local_port = if remote == caller {
        domain::with(caller, |domain| {
            rules::bind_interdomain_local(&mut domain.ports, caller, request.remote_port)
        })
        .ok_or(XenError::ESRCH)??
    } else {
        domain::with_two(caller, remote, |local, other| {
            rules::bind_interdomain(
                &mut local.ports,
                caller,
                &mut other.ports,
                remote,
                request.remote_port,
            )
        })
        .ok_or(XenError::ESRCH)??
    };
    domain::with(caller, |domain| notify(domain, request.local_port));
    guest_access::write_to_guest(argument, &request)
}

/// `EVTCHNOP_bind_virq`: a new port of the caller on which virtual
/// interrupt `virq` (IN) of vCPU `vcpu` (IN) is delivered. Writes the port
/// to `port` (OUT). A VIRQ is bound to at most one port per domain.
fn evtchn_bind_virq(caller: DomainId, argument: u64) -> Result<(), XenError> {
    let mut request: EvtchnBindVirq = guest_access::read_for_update(argument)?;
    request.port = domain::with(caller, |domain| {
        domain.ports.bind_virq(request.virq, request.vcpu)
    })
    .ok_or(XenError::ESRCH)??;
    guest_access::write_to_guest(argument, &request)
}

/// `EVTCHNOP_bind_ipi`: a new port of the caller that, when the caller
/// sends on it, is raised on the caller's vCPU `vcpu` (IN). Writes the port
/// to `port` (OUT).
fn evtchn_bind_ipi(caller: DomainId, argument: u64) -> Result<(), XenError> {
    let mut request: EvtchnBindIpi = guest_access::read_for_update(argument)?;
    request.port = domain::with(caller, |domain| domain.ports.bind_ipi(request.vcpu))
        .ok_or(XenError::ESRCH)??;
    guest_access::write_to_guest(argument, &request)
}

/// `EVTCHNOP_status`: what port `port` (IN) of domain `dom` (IN; the
/// caller, or any domain for a privileged caller) is: `status`, `vcpu` and
/// the detail union (OUT), in Xen's encoding. Changes nothing.
fn evtchn_status(argument: u64) -> Result<(), XenError> {
    let mut request: EvtchnStatus = guest_access::read_for_update(argument)?;
    let owner = domain::resolve_target(request.dom)?;
    let channel = domain::with(owner, |domain| domain.ports.status(request.port))
        .ok_or(XenError::ESRCH)??;
    let (kind, detail) = match channel {
        Channel::Free => (EvtchnStatusKind::Closed, EvtchnStatusDetail::unbound(0)),
        Channel::Unbound { remote } => (
            EvtchnStatusKind::Unbound,
            EvtchnStatusDetail::unbound(remote),
        ),
        Channel::Interdomain {
            remote,
            remote_port,
        } => (
            EvtchnStatusKind::Interdomain,
            EvtchnStatusDetail::interdomain(remote, remote_port),
        ),
        Channel::Virq { virq } => (EvtchnStatusKind::Virq, EvtchnStatusDetail::irq(virq)),
        Channel::Ipi => (EvtchnStatusKind::Ipi, EvtchnStatusDetail::irq(0)),
    };
    request.status = kind.raw();
    request.vcpu = 0;
    request.detail = detail;
    guest_access::write_to_guest(argument, &request)
}

/// `EVTCHNOP_unmask`: clears the mask bit of the caller's port `port` (IN)
/// in its shared info page; if the port is pending, the upcall becomes due
/// (Xen's 2-level rules: `evtchn::ports::unmask`). A port the caller does
/// not have is `-EINVAL`.
fn evtchn_unmask(caller: DomainId, argument: u64) -> Result<(), XenError> {
    let request: EvtchnUnmask = guest_access::read_from_guest(argument)?;
    domain::with(caller, |domain| {
        domain.ports.status(request.port)?;
        rules::unmask(domain.shared_info(), domain.vcpu_info(), request.port);
        Ok::<(), XenError>(())
    })
    .ok_or(XenError::ESRCH)?
}

/// `EVTCHNOP_bind_vcpu`: makes the caller's port `port` (IN) notify vCPU
/// `vcpu` (IN) from now on. With one vCPU per domain only vCPU 0 exists.
fn evtchn_bind_vcpu(caller: DomainId, argument: u64) -> Result<(), XenError> {
    let request: EvtchnBindVcpu = guest_access::read_from_guest(argument)?;
    domain::with(caller, |domain| {
        domain.ports.bind_vcpu(request.port, request.vcpu)
    })
    .ok_or(XenError::ESRCH)?
}

/// Size of the FIFO ABI's control block (`evtchn_fifo_control_block`:
/// `ready`, a reserved word, and 16 queue heads).
const FIFO_CONTROL_BLOCK_SIZE: u32 = 8 + 16 * 4;

/// `EVTCHNOP_init_control`: the switch to the FIFO ABI. Only the 2-level
/// ABI is offered, but the request is checked first, in Xen's order, so
/// that a malformed one gets Xen's answer (XSA-188: a bad frame must be
/// refused, not used): a control block that is misaligned or runs off its
/// page is `-EINVAL`, a vCPU the domain does not have `-ENOENT`, a frame
/// that is not the caller's memory `-EINVAL`. A well-formed request is
/// then `-ENOSYS`, and the guest stays on the 2-level ABI (Linux falls
/// back to it when this call fails).
fn evtchn_init_control(caller: DomainId, argument: u64) -> Result<u64, XenError> {
    let request: EvtchnInitControl = guest_access::read_for_update(argument)?;
    if !request.offset.is_multiple_of(8)
        || request.offset > PAGE_SIZE as u32 - FIFO_CONTROL_BLOCK_SIZE
    {
        caller_log!(Debug, "EVTCHNOP_init_control: control block offset {:#x} is misaligned or runs off the page: -EINVAL", request.offset);
        return Err(XenError::EINVAL);
    }
    if request.vcpu != 0 {
        caller_log!(
            Debug,
            "EVTCHNOP_init_control: no vCPU {}: -ENOENT",
            request.vcpu
        );
        return Err(XenError::ENOENT);
    }
    // A PV guest names machine frames.
    let owned =
        crate::mm::frame_table::with(|table, _| table.is_owned_by(request.control_gfn, caller));
    if !owned {
        caller_log!(
            Debug,
            "EVTCHNOP_init_control: frame {:#x} is not the caller's memory: -EINVAL",
            request.control_gfn
        );
        return Err(XenError::EINVAL);
    }
    caller_log!(
        Debug,
        "EVTCHNOP_init_control: the FIFO ABI is not offered; the 2-level ABI stays: -ENOSYS"
    );
    Err(XenError::ENOSYS)
}

/// `EVTCHNOP_close` of `caller`'s `port`: frees it; the other end of an
/// interdomain channel goes back to unbound (waiting for a new partner).
pub fn evtchn_close(caller: DomainId, port: Port) -> Result<(), XenError> {
    let closed = domain::with(caller, |domain| {
        let closed = domain.ports.close(port)?;
        rules::clear_pending(domain.shared_info(), port);
        Ok::<_, XenError>(closed)
    })
    .ok_or(XenError::ESRCH)??;
    if let rules::Closed::Interdomain {
        remote,
        remote_port,
    } = closed
    {
        domain::with(remote, |domain| {
            if domain.ports.revert_to_unbound(remote_port, caller).is_err() {
                log::error!("event channel {remote_port} of d{remote} was not connected to d{caller}'s port {port}");
            }
        });
    }
    Ok(())
}

/// Closes every port of a domain being destroyed (its table goes with it);
/// the other ends of its interdomain channels become unbound.
pub fn close_all(domain: &mut Domain) -> alloc::vec::Vec<rules::RemoteEnd> {
    let id = domain.id;
    domain.ports.close_all(id).collect()
}

/// Gives the other domains their side back after `close_all`.
pub fn release_remote_ends(closer: DomainId, ends: &[rules::RemoteEnd]) {
    for end in ends {
        domain::with(end.domain, |domain| {
            let _ = domain.ports.revert_to_unbound(end.port, closer);
        });
    }
}

/// `EVTCHNOP_send` from `caller` on `port`.
pub fn evtchn_send(caller: DomainId, port: Port) -> Result<(), XenError> {
    let target = domain::with(caller, |domain| rules::send_target(&domain.ports, port))
        .ok_or(XenError::ESRCH)??;
    match target {
        Target::Drop => {}
        Target::Local { port } => {
            domain::with(caller, |domain| notify(domain, port));
        }
        Target::Remote {
            domain: remote,
            port,
        } => {
            domain::with(remote, |domain| notify(domain, port));
        }
    }
    Ok(())
}
