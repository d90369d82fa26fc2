//! `event_channel_op` sub-ops, their structures, and VIRQ numbers (`event_channel.h`, `xen.h`).
//!
//! An event channel is a one-bit virtual interrupt line. Each domain has
//! numbered ports; a port can be bound to a virtual IRQ (VIRQ), an
//! inter-processor interrupt, a physical IRQ, or a port of another domain.
//! Sending on a port sets its bit in the receiver's
//! `shared_info.evtchn_pending` (see [`crate::layout::VcpuInfo`] for how the
//! upcall follows).
//!
//! `event_channel_op(cmd, arg)`: `cmd` in `rdi` is an [`EventChannelOp`],
//! `arg` in `rsi` points at the structure named below. Directions (IN/OUT)
//! are from the caller's point of view.

use bytemuck::{Pod, Zeroable};
use core::mem::{offset_of, size_of};

use crate::layout::DomainId;

/// An event-channel port number (`evtchn_port_t`).
pub type EventChannelPort = u32;

/// Number of ports in the two-level event-channel ABI on x86_64:
/// 64 words of 64 bits (`EVTCHN_2L_NR_CHANNELS`).
pub const NR_EVENT_CHANNELS: usize = 64 * 64;

abi_enum! {
    /// An `event_channel_op` sub-op (`EVTCHNOP_*`).
    pub enum EventChannelOp: u32 {
        /// Connect to a remote domain's unbound port; [`EvtchnBindInterdomain`].
        BindInterdomain = 0 => "EVTCHNOP_bind_interdomain",
        /// Bind a VIRQ on a vCPU to a new port; [`EvtchnBindVirq`].
        BindVirq = 1 => "EVTCHNOP_bind_virq",
        /// Bind a physical IRQ to a new port (privileged); [`EvtchnBindPirq`].
        BindPirq = 2 => "EVTCHNOP_bind_pirq",
        /// Close a port; [`EvtchnClose`].
        Close = 3 => "EVTCHNOP_close",
        /// Signal the other end of a port; [`EvtchnSend`].
        Send = 4 => "EVTCHNOP_send",
        /// Query a port's state; [`EvtchnStatus`].
        Status = 5 => "EVTCHNOP_status",
        /// Allocate a port that a given remote domain may connect to;
        /// [`EvtchnAllocUnbound`].
        AllocUnbound = 6 => "EVTCHNOP_alloc_unbound",
        /// Allocate a port for inter-processor interrupts to a vCPU;
        /// [`EvtchnBindIpi`].
        BindIpi = 7 => "EVTCHNOP_bind_ipi",
        /// Choose which vCPU a port notifies; [`EvtchnBindVcpu`].
        BindVcpu = 8 => "EVTCHNOP_bind_vcpu",
        /// Unmask a port and deliver its event if pending; [`EvtchnUnmask`].
        Unmask = 9 => "EVTCHNOP_unmask",
        /// Close all of a domain's ports; [`EvtchnReset`].
        Reset = 10 => "EVTCHNOP_reset",
        /// Switch to the FIFO ABI for a vCPU; [`EvtchnInitControl`].
        InitControl = 11 => "EVTCHNOP_init_control",
        /// Add a page to the FIFO event array; [`EvtchnExpandArray`].
        ExpandArray = 12 => "EVTCHNOP_expand_array",
        /// Set a port's FIFO priority; [`EvtchnSetPriority`].
        SetPriority = 13 => "EVTCHNOP_set_priority",
    }
}

// ---------------------------------------------------------------------------
// Virtual IRQs (xen.h). V = per-vCPU, G = global, D = per-domain.
// ---------------------------------------------------------------------------

/// (V) Timer: the single-shot or periodic timer fired.
pub const VIRQ_TIMER: u32 = 0;
/// (V) Request to dump debug information.
pub const VIRQ_DEBUG: u32 = 1;
/// (G) Bytes received on the hypervisor's emergency console.
pub const VIRQ_CONSOLE: u32 = 2;
/// (G) Exceptional event for some domain (such as a shutdown).
pub const VIRQ_DOM_EXC: u32 = 3;
/// (G) Trace buffer has records available.
pub const VIRQ_TBUF: u32 = 4;
/// (G) A domain has paused for debugging.
pub const VIRQ_DEBUGGER: u32 = 6;
/// (V) Profiling sample available.
pub const VIRQ_XENOPROF: u32 = 7;
/// (G) Bytes received on the console ring.
pub const VIRQ_CON_RING: u32 = 8;
/// (G) A physical CPU changed state.
pub const VIRQ_PCPU_STATE: u32 = 9;
/// (G) A memory event has occurred.
pub const VIRQ_MEM_EVENT: u32 = 10;
/// (D) Argo message notification.
pub const VIRQ_ARGO: u32 = 11;
/// (G) The hypervisor is low on heap memory.
pub const VIRQ_ENOMEM: u32 = 12;
/// (V) Performance counter interrupt.
pub const VIRQ_XENPMU: u32 = 13;
/// First architecture-specific VIRQ (`VIRQ_ARCH_0`; there are eight).
pub const VIRQ_ARCH_0: u32 = 16;
/// Number of VIRQs (`NR_VIRQS`).
pub const NR_VIRQS: u32 = 24;

// ---------------------------------------------------------------------------
// Argument structures.
// ---------------------------------------------------------------------------

/// `EVTCHNOP_alloc_unbound` (`evtchn_alloc_unbound`), 8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EvtchnAllocUnbound {
    /// IN: domain to allocate the port in (usually `DOMID_SELF`).
    pub dom: DomainId,
    /// IN: the only domain allowed to connect to it.
    pub remote_dom: DomainId,
    /// OUT: the new port.
    pub port: EventChannelPort,
}

const _: () = assert!(size_of::<EvtchnAllocUnbound>() == 8);
const _: () = assert!(offset_of!(EvtchnAllocUnbound, port) == 4);

/// `EVTCHNOP_bind_interdomain` (`evtchn_bind_interdomain`), 12 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EvtchnBindInterdomain {
    /// IN: the remote domain.
    pub remote_dom: DomainId,
    /// Padding; zero.
    pub pad: u16,
    /// IN: its unbound port, which must accept the caller.
    pub remote_port: EventChannelPort,
    /// OUT: the new local port, connected to it.
    pub local_port: EventChannelPort,
}

const _: () = assert!(size_of::<EvtchnBindInterdomain>() == 12);
const _: () = assert!(offset_of!(EvtchnBindInterdomain, remote_port) == 4);
const _: () = assert!(offset_of!(EvtchnBindInterdomain, local_port) == 8);

/// `EVTCHNOP_bind_virq` (`evtchn_bind_virq`), 12 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EvtchnBindVirq {
    /// IN: the VIRQ (`VIRQ_*`).
    pub virq: u32,
    /// IN: the vCPU it should notify.
    pub vcpu: u32,
    /// OUT: the new port.
    pub port: EventChannelPort,
}

const _: () = assert!(size_of::<EvtchnBindVirq>() == 12);
const _: () = assert!(offset_of!(EvtchnBindVirq, port) == 8);

/// [`EvtchnBindPirq::flags`]: the IRQ may be shared with other domains.
pub const BIND_PIRQ_WILL_SHARE: u32 = 1;

/// `EVTCHNOP_bind_pirq` (`evtchn_bind_pirq`), 12 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EvtchnBindPirq {
    /// IN: the physical IRQ.
    pub pirq: u32,
    /// IN: `BIND_PIRQ_*` flags.
    pub flags: u32,
    /// OUT: the new port.
    pub port: EventChannelPort,
}

const _: () = assert!(size_of::<EvtchnBindPirq>() == 12);

/// `EVTCHNOP_bind_ipi` (`evtchn_bind_ipi`), 8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EvtchnBindIpi {
    /// IN: the vCPU to notify.
    pub vcpu: u32,
    /// OUT: the new port.
    pub port: EventChannelPort,
}

const _: () = assert!(size_of::<EvtchnBindIpi>() == 8);

/// `EVTCHNOP_close` (`evtchn_close`), 4 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EvtchnClose {
    /// IN: the port to close. An interdomain peer's port reverts to unbound.
    pub port: EventChannelPort,
}

const _: () = assert!(size_of::<EvtchnClose>() == 4);

/// `EVTCHNOP_send` (`evtchn_send`), 4 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EvtchnSend {
    /// IN: the local port whose other end is signalled.
    pub port: EventChannelPort,
}

const _: () = assert!(size_of::<EvtchnSend>() == 4);

abi_enum! {
    /// State of a port, as reported in [`EvtchnStatus::status`] (`EVTCHNSTAT_*`).
    pub enum EvtchnStatusKind: u32 {
        /// Not in use.
        Closed = 0 => "EVTCHNSTAT_closed",
        /// Waiting for a remote domain to connect.
        Unbound = 1 => "EVTCHNSTAT_unbound",
        /// Connected to a remote domain's port.
        Interdomain = 2 => "EVTCHNSTAT_interdomain",
        /// Bound to a physical IRQ.
        Pirq = 3 => "EVTCHNSTAT_pirq",
        /// Bound to a VIRQ.
        Virq = 4 => "EVTCHNSTAT_virq",
        /// Bound to an inter-processor interrupt.
        Ipi = 5 => "EVTCHNSTAT_ipi",
    }
}

/// The status-specific part of [`EvtchnStatus`]: a C union, 8 bytes.
///
/// ```text
/// byte:         0        2        4
/// unbound:      | dom    |        |
/// interdomain:  | dom    | pad    | port (u32)
/// pirq / virq:  | number (u32)    |
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EvtchnStatusDetail {
    words: [u32; 2],
}

const _: () = assert!(size_of::<EvtchnStatusDetail>() == 8);

impl EvtchnStatusDetail {
    /// Detail of an unbound port: the domain allowed to connect.
    pub const fn unbound(dom: DomainId) -> Self {
        Self {
            words: [dom as u32, 0],
        }
    }

    /// Detail of an interdomain port: the remote domain and port.
    pub const fn interdomain(dom: DomainId, port: EventChannelPort) -> Self {
        Self {
            words: [dom as u32, port],
        }
    }

    /// Detail of a PIRQ or VIRQ port: the IRQ number.
    pub const fn irq(number: u32) -> Self {
        Self { words: [number, 0] }
    }

    /// Unbound or interdomain view: the remote domain.
    pub const fn dom(&self) -> DomainId {
        self.words[0] as DomainId
    }

    /// Interdomain view: the remote port.
    pub const fn port(&self) -> EventChannelPort {
        self.words[1]
    }

    /// PIRQ or VIRQ view: the IRQ number.
    pub const fn irq_number(&self) -> u32 {
        self.words[0]
    }
}

/// `EVTCHNOP_status` (`evtchn_status`), 24 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EvtchnStatus {
    /// IN: the domain owning the port (`DOMID_SELF` unless privileged).
    pub dom: DomainId,
    /// Padding; zero.
    pub pad: u16,
    /// IN: the port.
    pub port: EventChannelPort,
    /// OUT: an [`EvtchnStatusKind`] number.
    pub status: u32,
    /// OUT: the vCPU the port notifies.
    pub vcpu: u32,
    /// OUT: status-specific detail.
    pub detail: EvtchnStatusDetail,
}

const _: () = assert!(size_of::<EvtchnStatus>() == 24);
const _: () = assert!(offset_of!(EvtchnStatus, port) == 4);
const _: () = assert!(offset_of!(EvtchnStatus, status) == 8);
const _: () = assert!(offset_of!(EvtchnStatus, vcpu) == 12);
const _: () = assert!(offset_of!(EvtchnStatus, detail) == 16);

/// `EVTCHNOP_bind_vcpu` (`evtchn_bind_vcpu`), 8 bytes. Both fields are IN.
///
/// IPI ports and per-vCPU VIRQ ports cannot be moved; other ports notify
/// vCPU 0 until moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EvtchnBindVcpu {
    /// The port.
    pub port: EventChannelPort,
    /// The vCPU it should notify from now on.
    pub vcpu: u32,
}

const _: () = assert!(size_of::<EvtchnBindVcpu>() == 8);

/// `EVTCHNOP_unmask` (`evtchn_unmask`), 4 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EvtchnUnmask {
    /// IN: the port to unmask; if it is pending, the upcall is delivered.
    pub port: EventChannelPort,
}

const _: () = assert!(size_of::<EvtchnUnmask>() == 4);

/// `EVTCHNOP_reset` (`evtchn_reset`), 2 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EvtchnReset {
    /// IN: the domain whose ports are all closed (`DOMID_SELF` unless
    /// privileged).
    pub dom: DomainId,
}

const _: () = assert!(size_of::<EvtchnReset>() == 2);

/// `EVTCHNOP_init_control` (`evtchn_init_control`), 24 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EvtchnInitControl {
    /// IN: guest frame holding the FIFO control block.
    pub control_gfn: u64,
    /// IN: offset of the control block in that frame.
    pub offset: u32,
    /// IN: the vCPU.
    pub vcpu: u32,
    /// OUT: number of bits in a FIFO link field.
    pub link_bits: u8,
    /// Padding; zero.
    pub pad: [u8; 7],
}

const _: () = assert!(size_of::<EvtchnInitControl>() == 24);
const _: () = assert!(offset_of!(EvtchnInitControl, link_bits) == 16);

/// `EVTCHNOP_expand_array` (`evtchn_expand_array`), 8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EvtchnExpandArray {
    /// IN: guest frame to add to the FIFO event array.
    pub array_gfn: u64,
}

const _: () = assert!(size_of::<EvtchnExpandArray>() == 8);

/// `EVTCHNOP_set_priority` (`evtchn_set_priority`), 8 bytes. Both fields are IN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EvtchnSetPriority {
    /// The port.
    pub port: EventChannelPort,
    /// Priority 0 (highest) to 15 (lowest); the default is 7.
    pub priority: u32,
}

const _: () = assert!(size_of::<EvtchnSetPriority>() == 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_status_detail() {
        assert_eq!(EventChannelOp::Send.raw(), 4);
        assert_eq!(EventChannelOp::Unmask.raw(), 9);
        assert_eq!(EventChannelOp::ExpandArray.raw(), 12);
        for &op in EventChannelOp::ALL {
            assert_eq!(EventChannelOp::try_from(op.raw()), Ok(op));
        }
        let detail = EvtchnStatusDetail::interdomain(3, 17);
        assert_eq!(detail.dom(), 3);
        assert_eq!(detail.port(), 17);
        assert_eq!(EvtchnStatusDetail::irq(VIRQ_DOM_EXC).irq_number(), 3);
        assert_eq!(NR_EVENT_CHANNELS, 4096);
    }
}
