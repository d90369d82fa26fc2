//! Event channels, the guest's side: binding ports, the upcall that
//! delivers them, and waiting for one without burning CPU.
//!
//! The hypervisor marks a port pending in shared_info's `evtchn_pending`
//! bitmap, sets the bit of its 64-port word in our `evtchn_pending_sel`,
//! sets `evtchn_upcall_pending`, and, when events are not masked
//! (`evtchn_upcall_mask` clear), enters [`handle_upcall`] through the
//! callback we registered (`CALLBACKTYPE_event`), with a frame like an
//! exception's. We scan selector → words → bits, clear what we found, note
//! each port as fired, and return with `iret`, which restores the mask.
//!
//! Waiting: to sleep until something happens, [`wait_until`] masks events,
//! checks its condition, and only if it does not hold calls `sched_op
//! block`, which unmasks and blocks in one step, so an event that arrives
//! between the check and the block is never missed.

#![forbid(unsafe_code)]

use crate::sys::hypercalls::{self, EventChannelRequest};
use crate::sys::shared_info;
use core::sync::atomic::{AtomicU64, Ordering};
use hypercall_abi::event_channel::{
    EventChannelPort, EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindVirq, EvtchnClose,
    EvtchnSend, EvtchnUnmask,
};
use hypercall_abi::layout::DOMID_SELF;
use hypercall_abi::wrappers;

/// Ports that fired and were not yet taken, one bit each (4096 ports).
static FIRED: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];
/// Upcalls taken (for statistics and tests).
static UPCALLS: AtomicU64 = AtomicU64::new(0);

fn op<T: EventChannelRequest>(argument: &mut T) -> Result<(), i64> {
    match hypercalls::event_channel_op(argument) {
        0 => Ok(()),
        error => Err(error),
    }
}

/// Registers the upcall and lets events in. Called once at start.
#[cfg(not(test))]
pub fn init() {
    let result = crate::sys::entry::register_callback(
        hypercall_abi::callback::CallbackType::Event,
        crate::traps::upcall_entry(),
    );
    if result != 0 {
        crate::println!("guest kernel: cannot register the event upcall ({result})");
        return;
    }
    set_mask(false);
}

/// Masks (`true`) or unmasks event delivery for this vCPU.
pub fn set_mask(masked: bool) {
    let pending = shared_info::set_upcall_mask(masked);
    if !masked && pending == Some(true) {
        // Something arrived while masked: any hypercall lets the
        // hypervisor deliver it on the way back (as Linux does).
        wrappers::xen_version_number();
    }
}

/// Delivers the pending events: called by the upcall stub.
pub fn handle_upcall() {
    if shared_info::shared_info().is_none() {
        return;
    }
    UPCALLS.fetch_add(1, Ordering::Relaxed);
    shared_info::take_pending_events(|word, ready| {
        FIRED[word].fetch_or(ready, Ordering::SeqCst);
    });
    // The kernel's own store watches (`control/shutdown`) are served here,
    // so that a guest busy with anything else still hears them.
    #[cfg(not(test))]
    crate::xenbus::poll();
}

/// Whether event delivery is masked for this vCPU now (as it is inside
/// the upcall).
pub fn masked() -> bool {
    shared_info::upcall_mask()
}

/// Whether `port` fired since it was last taken; takes it.
pub fn take(port: EventChannelPort) -> bool {
    let (word, bit) = ((port / 64) as usize, 1u64 << (port % 64));
    FIRED
        .get(word)
        .is_some_and(|fired| fired.fetch_and(!bit, Ordering::SeqCst) & bit != 0)
}

/// Upcalls taken so far.
pub fn upcalls() -> u64 {
    UPCALLS.load(Ordering::Relaxed)
}

/// Sleeps (`sched_op block`) until `condition` holds, re-checking after
/// every event. Never misses an event between check and sleep.
pub fn wait_until(mut condition: impl FnMut() -> bool) {
    loop {
        set_mask(true);
        if condition() {
            set_mask(false);
            return;
        }
        // Unmasks and blocks unless an event is already pending; the upcall
        // runs on the way back.
        wrappers::sched_block();
    }
}

/// Binds virtual interrupt `virq` to a new port.
pub fn bind_virq(virq: u32) -> Result<EventChannelPort, i64> {
    let mut request = EvtchnBindVirq {
        virq,
        vcpu: 0,
        port: 0,
    };
    op(&mut request)?;
    Ok(request.port)
}

/// A new port that domain `remote` may connect to.
pub fn alloc_unbound(remote: u16) -> Result<EventChannelPort, i64> {
    let mut request = EvtchnAllocUnbound {
        dom: DOMID_SELF,
        remote_dom: remote,
        port: 0,
    };
    op(&mut request)?;
    Ok(request.port)
}

/// Connects to port `remote_port` of domain `remote`.
pub fn bind_interdomain(
    remote: u16,
    remote_port: EventChannelPort,
) -> Result<EventChannelPort, i64> {
    let mut request = EvtchnBindInterdomain {
        remote_dom: remote,
        pad: 0,
        remote_port,
        local_port: 0,
    };
    op(&mut request)?;
    Ok(request.local_port)
}

/// Signals the other end of `port`.
pub fn send(port: EventChannelPort) -> Result<(), i64> {
    op(&mut EvtchnSend { port })
}

/// Closes `port`.
pub fn close(port: EventChannelPort) -> Result<(), i64> {
    op(&mut EvtchnClose { port })
}

/// Unmasks `port` (delivering it if it was pending).
pub fn unmask(port: EventChannelPort) -> Result<(), i64> {
    op(&mut EvtchnUnmask { port })
}
