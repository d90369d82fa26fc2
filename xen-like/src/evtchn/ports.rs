//! Event channels: each domain's table of ports, and the two-level pending bits in shared_info.
//!
//! # What an event channel is
//!
//! An event channel is a one-bit virtual interrupt line. Each domain owns a
//! table of numbered *ports*; sending on a port sets one bit in the shared-info
//! page of the domain at the other end, and that bit, if the guest has not
//! masked it, makes the hypervisor call the guest's event callback (the
//! *upcall*). Split drivers, the console, the timer and Dom0's tools all talk
//! to a guest this way. This module is Xen's `xen/common/event_channel.c`
//! (the port states) and `xen/common/event_2l.c` (the bits) as plain data, so
//! that every rule has a host test.
//!
//! # The states of a port
//!
//! A port is in exactly one [`Channel`] state:
//!
//! * `Free`: not in use (Xen's `ECS_FREE`; `EVTCHNOP_status` says "closed").
//!   Port 0 is never handed out (Xen marks it `ECS_RESERVED`), so a guest can
//!   use 0 to mean "no port".
//! * `Unbound { remote }`: allocated by [`PortTable::alloc_unbound`] and
//!   waiting for domain `remote`, and only that domain, to connect to it.
//!   Sending on it is silently dropped: nobody is listening yet.
//! * `Interdomain { remote, remote_port }`: connected to port `remote_port`
//!   of domain `remote` (possibly this same domain: a loopback channel).
//! * `Virq { virq }`: bound to a virtual IRQ that the hypervisor raises
//!   ([`VIRQ_TIMER`] and friends). At most one port per VIRQ.
//! * `Ipi`: a channel a domain sends to itself, to interrupt one of its vCPUs.
//!
//! ```text
//!                 alloc_unbound(remote)             `remote` binds to it
//!       Free ---------------------------> Unbound ----------------------> Interdomain
//!        ^ ^                               |   ^                              |  |
//!        | |            close              |   |     the other end closes     |  |
//!        | +-------------------------------+   +------------------------------+  |
//!        +------------------------------------ close ----------------------------+
//!
//!       Free --- bind_virq ---> Virq --- close ---> Free
//!       Free --- bind_ipi ----> Ipi  --- close ---> Free
//!       Free --- bind_interdomain (the binder's new port) ---> Interdomain
//! ```
//!
//! # Invariants
//!
//! 1. A port is in exactly one state; it leaves `Free` only through an
//!    allocation (`alloc_unbound`, `bind_*`), which always takes the lowest
//!    free port above 0, and returns to `Free` only through `close`.
//! 2. An interdomain pair always points at each other: if port `p` of domain
//!    `a` is `Interdomain { remote: b, remote_port: q }`, then port `q` of
//!    domain `b` is `Interdomain { remote: a, remote_port: p }`. Binding sets
//!    both ends at once ([`bind_interdomain`]). Closing one end sets the other
//!    back to `Unbound { remote: a }`, as Xen does, so that the domain that
//!    closed (a frontend being reloaded, say) can connect to it again; since
//!    the two ends live in two tables, closing is two steps: [`PortTable::close`]
//!    frees the local end and returns [`Closed::Interdomain`], and the caller
//!    then calls [`PortTable::revert_to_unbound`] on the other domain's table
//!    before it lets go of either: the caller holds both tables for the two
//!    steps, as Xen holds both domains' event locks.
//! 3. `virq_port(v)` is `Some(p)` exactly when port `p` is `Virq { virq: v }`.
//! 4. A free port notifies vCPU 0, so a new port starts out notifying vCPU 0
//!    unless its binding names another vCPU.
//!
//! # The two-level ABI
//!
//! The bits live in the guest's `SharedInfo` page, laid out as Xen's
//! two-level ("2L") ABI for 64-bit guests:
//!
//! ```text
//! port p (0..4096):   word = p / 64   which u64 of evtchn_pending / evtchn_mask,
//!                                     and which bit of vcpu_info.evtchn_pending_sel
//!                     bit  = p % 64   which bit of that word
//!
//! level 1:  vcpu_info[v].evtchn_pending_sel   bit w set: word w may hold news
//! level 2:  evtchn_pending[w], evtchn_mask[w] one bit per port
//! ```
//!
//! The guest's upcall handler reads and clears `evtchn_pending_sel`, then for
//! each set bit scans `evtchn_pending[w] & !evtchn_mask[w]`, so it never has
//! to look at all 64 words. Marking a port pending ([`set_pending`]) follows
//! Xen's `evtchn_2l_set_pending` step by step:
//!
//! 1. set the port's pending bit; if it was already set, stop: the guest has
//!    not yet consumed the previous event, and one bit cannot count two;
//! 2. if the port is masked, stop: the bit waits until [`unmask`];
//! 3. set the word's selector bit; if it was already set, stop: the guest will
//!    scan this word anyway;
//! 4. set `evtchn_upcall_pending`; if it was clear, an upcall is now due and
//!    the vCPU must be kicked (woken, or interrupted if it is running).
//!
//! [`unmask`] clears the mask bit and, if the port was masked and is pending,
//! runs steps 3 and 4, because the event that arrived while masked did not.
//!
//! # The upcall rule
//!
//! On every return to a PV guest the hypervisor checks the vCPU's
//! `vcpu_info`: if `evtchn_upcall_pending` is set and `evtchn_upcall_mask` is
//! clear ([`events_need_delivery`]), it enters the guest's event callback,
//! with the mask set, as a real CPU enters an interrupt handler with
//! interrupts off. The mask is the PV guest's interrupt flag: while it is set
//! events still become pending, and the upcall comes when the guest clears it.
//!
//! In Xen these steps are atomic bit operations in exactly this order, because
//! the guest clears the same bits concurrently on another CPU. The functions
//! here do the same: they take the page as a
//! [`SharedInfoPage`](crate::mm::shared_page::SharedInfoPage), whose every
//! field is an atomic, so each step is one locked instruction on the live
//! page in the hypervisor and on a page in ordinary memory in host tests.
//!
//! # Simplifications (for now)
//!
//! One vCPU per domain ([`VCPUS_PER_DOMAIN`]), so the bit functions are
//! handed vCPU 0's `vcpu_info` (its slot in the shared info page, or the
//! place the guest moved it to with `VCPUOP_register_vcpu_info`: the caller
//! asks `Domain::vcpu_info`, the page itself is not enough); all [`PORTS_PER_DOMAIN`] ports are valid from the
//! start (Xen grows the table in buckets of 64 and says `EINVAL` for a port
//! beyond them); no physical IRQs (`ECS_PIRQ`), no Xen-internal consumers, no
//! FIFO ABI.

use crate::mm::shared_page::{SharedInfoPage, VcpuInfoCells};
use hypercall_abi::event_channel::{
    EventChannelPort, NR_EVENT_CHANNELS, NR_VIRQS, VIRQ_DEBUG, VIRQ_TIMER, VIRQ_XENOPROF,
    VIRQ_XENPMU,
};
use hypercall_abi::XenError;

/// An event-channel port number (`evtchn_port_t`).
pub type Port = EventChannelPort;

/// A domain identifier (`domid_t`).
pub type DomainId = hypercall_abi::DomainId;

/// Ports per domain (port 0 is never allocated, as in Xen).
pub const PORTS_PER_DOMAIN: usize = 1024;

// Every port must have a bit in the two-level bitmaps.
const _: () = assert!(PORTS_PER_DOMAIN <= NR_EVENT_CHANNELS);

/// vCPUs per domain. Binding a port to any other vCPU fails with `ENOENT`,
/// as Xen fails for a vCPU the domain does not have.
pub const VCPUS_PER_DOMAIN: u32 = 1;

// `PortTable` stores a port's vCPU in a byte.
const _: () = assert!(VCPUS_PER_DOMAIN <= 256);

/// Bits in one word of the two-level bitmaps (a 64-bit guest's `xen_ulong_t`).
const BITS_PER_WORD: Port = u64::BITS;

/// The state of one port; see the module documentation for the transitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Not in use (`EVTCHNSTAT_closed`).
    Free,
    /// Waiting for domain `remote` to connect (`EVTCHNSTAT_unbound`).
    Unbound {
        /// The only domain that may bind to this port.
        remote: DomainId,
    },
    /// Connected to another port (`EVTCHNSTAT_interdomain`).
    Interdomain {
        /// The domain at the other end (this domain for a loopback channel).
        remote: DomainId,
        /// The port at the other end, in `remote`'s table.
        remote_port: Port,
    },
    /// Bound to a virtual IRQ (`EVTCHNSTAT_virq`).
    Virq {
        /// The VIRQ number (`VIRQ_*`).
        virq: u32,
    },
    /// Bound to an inter-processor interrupt (`EVTCHNSTAT_ipi`).
    Ipi,
}

/// What [`PortTable::close`] leaves for the caller to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// Nothing: the port was unbound, a VIRQ or an IPI.
    Done,
    /// The port was connected to `remote_port` of domain `remote`: call
    /// [`PortTable::revert_to_unbound`]`(remote_port, closer)` on `remote`'s
    /// table (the same table for a loopback channel), where `closer` is the
    /// domain that owns the closed port.
    Interdomain {
        /// The domain at the other end.
        remote: DomainId,
        /// The port at the other end.
        remote_port: Port,
    },
}

/// Where an event sent on a port goes; see [`send_target`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Nowhere: the port is unbound, and Xen silently drops the event.
    Drop,
    /// Port `port` of domain `domain` becomes pending.
    Remote {
        /// The receiving domain.
        domain: DomainId,
        /// The receiving port, in `domain`'s table.
        port: Port,
    },
    /// Port `port` of the sender itself becomes pending (an IPI).
    Local {
        /// The port, which is also the one sent on.
        port: Port,
    },
}

/// The other end of an interdomain channel, in another domain, that
/// [`PortTable::close_all`] closed: call
/// [`PortTable::revert_to_unbound`]`(port, dying)` on `domain`'s table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteEnd {
    /// The domain that owns the other end.
    pub domain: DomainId,
    /// The other end's port, in `domain`'s table.
    pub port: Port,
}

/// One domain's ports, plus which port each VIRQ is bound to.
#[derive(Debug)]
pub struct PortTable {
    /// The state of each port.
    channels: [Channel; PORTS_PER_DOMAIN],
    /// The vCPU each port notifies (Xen's `notify_vcpu_id`); 0 for free ports.
    notify_vcpu: [u8; PORTS_PER_DOMAIN],
    /// The port each VIRQ is bound to; 0 (never a valid port) for none.
    /// (Xen keeps this per vCPU; with one vCPU per domain it is per domain.)
    virq_ports: [Port; NR_VIRQS as usize],
}

impl Default for PortTable {
    fn default() -> Self {
        Self::new()
    }
}

impl PortTable {
    /// A table with every port free.
    pub const fn new() -> Self {
        Self {
            channels: [Channel::Free; PORTS_PER_DOMAIN],
            notify_vcpu: [0; PORTS_PER_DOMAIN],
            virq_ports: [0; NR_VIRQS as usize],
        }
    }

    /// The state of `port`, or `None` if the table has no such port.
    pub fn channel(&self, port: Port) -> Option<Channel> {
        self.channels.get(port as usize).copied()
    }

    /// The vCPU that `port` notifies, or `None` if the table has no such port.
    pub fn notify_vcpu(&self, port: Port) -> Option<u32> {
        self.notify_vcpu
            .get(port as usize)
            .map(|&vcpu| u32::from(vcpu))
    }

    /// `EVTCHNOP_status`: the state of `port`.
    ///
    /// A free port (and port 0) reports [`Channel::Free`], which the
    /// hypercall turns into `EVTCHNSTAT_closed`, as Xen does.
    ///
    /// # Errors
    /// `EINVAL` if the table has no such port.
    pub fn status(&self, port: Port) -> Result<Channel, XenError> {
        self.channel(port).ok_or(XenError::EINVAL)
    }

    /// `EVTCHNOP_alloc_unbound`: a new port that domain `remote`, and only
    /// it, may connect to with [`bind_interdomain`].
    ///
    /// The caller has already turned `DOMID_SELF` into the caller's own ID.
    ///
    /// # Errors
    /// `ENOSPC` if every port is in use.
    pub fn alloc_unbound(&mut self, remote: DomainId) -> Result<Port, XenError> {
        let port = self.free_port()?;
        self.channels[port as usize] = Channel::Unbound { remote };
        Ok(port)
    }

    /// `EVTCHNOP_bind_virq`: a new port that the hypervisor raises for
    /// `virq`, notifying `vcpu`.
    ///
    /// # Errors
    /// In Xen's order:
    /// * `EINVAL` if `virq` is not below `NR_VIRQS`, or if it is a global
    ///   VIRQ (see [`virq_is_global`]) and `vcpu` is not 0;
    /// * `ENOENT` if the domain has no vCPU `vcpu`;
    /// * `EEXIST` if `virq` is already bound to a port;
    /// * `ENOSPC` if every port is in use.
    pub fn bind_virq(&mut self, virq: u32, vcpu: u32) -> Result<Port, XenError> {
        if virq >= NR_VIRQS || (virq_is_global(virq) && vcpu != 0) {
            return Err(XenError::EINVAL);
        }
        let vcpu = check_vcpu(vcpu)?;
        if self.virq_port(virq).is_some() {
            return Err(XenError::EEXIST);
        }
        let port = self.free_port()?;
        self.channels[port as usize] = Channel::Virq { virq };
        self.notify_vcpu[port as usize] = vcpu;
        self.virq_ports[virq as usize] = port;
        Ok(port)
    }

    /// `EVTCHNOP_bind_ipi`: a new port on which the domain can interrupt its
    /// own vCPU `vcpu`.
    ///
    /// # Errors
    /// `ENOENT` if the domain has no vCPU `vcpu`; `ENOSPC` if every port is
    /// in use.
    pub fn bind_ipi(&mut self, vcpu: u32) -> Result<Port, XenError> {
        let vcpu = check_vcpu(vcpu)?;
        let port = self.free_port()?;
        self.channels[port as usize] = Channel::Ipi;
        self.notify_vcpu[port as usize] = vcpu;
        Ok(port)
    }

    /// The port `virq` is bound to, or `None` if it is not bound (or is not a
    /// VIRQ number). The hypervisor asks this each time it raises a VIRQ;
    /// an unbound VIRQ is not delivered at all.
    pub fn virq_port(&self, virq: u32) -> Option<Port> {
        match self.virq_ports.get(virq as usize) {
            Some(&port) if port != 0 => Some(port),
            _ => None,
        }
    }

    /// `EVTCHNOP_bind_vcpu`: make `port` notify `vcpu` from now on.
    ///
    /// Unbound and interdomain ports and global VIRQs can move, as in Xen;
    /// an IPI or a per-vCPU VIRQ belongs to the vCPU it was bound for.
    ///
    /// # Errors
    /// In Xen's order:
    /// * `ENOENT` if the domain has no vCPU `vcpu`;
    /// * `EINVAL` if the table has no such port, or the port is free, an
    ///   IPI, or a per-vCPU VIRQ.
    pub fn bind_vcpu(&mut self, port: Port, vcpu: u32) -> Result<(), XenError> {
        let vcpu = check_vcpu(vcpu)?;
        match self.status(port)? {
            Channel::Unbound { .. } | Channel::Interdomain { .. } => {}
            Channel::Virq { virq } if virq_is_global(virq) => {}
            Channel::Virq { .. } | Channel::Ipi | Channel::Free => return Err(XenError::EINVAL),
        }
        self.notify_vcpu[port as usize] = vcpu;
        Ok(())
    }

    /// `EVTCHNOP_close`: free `port`.
    ///
    /// A VIRQ port stops receiving its VIRQ. An interdomain port's other end
    /// must then go back to `Unbound`: see [`Closed::Interdomain`]. The
    /// caller also clears the port's pending bit ([`clear_pending`]), as
    /// Xen's `free_evtchn` does, so that the port is not pending when it is
    /// used again.
    ///
    /// # Errors
    /// `EINVAL` if the table has no such port or the port is already free
    /// (so closing twice fails the second time).
    pub fn close(&mut self, port: Port) -> Result<Closed, XenError> {
        let closed = match self.status(port)? {
            Channel::Free => return Err(XenError::EINVAL),
            Channel::Unbound { .. } | Channel::Ipi => Closed::Done,
            Channel::Virq { virq } => {
                self.virq_ports[virq as usize] = 0;
                Closed::Done
            }
            Channel::Interdomain {
                remote,
                remote_port,
            } => Closed::Interdomain {
                remote,
                remote_port,
            },
        };
        self.channels[port as usize] = Channel::Free;
        self.notify_vcpu[port as usize] = 0;
        Ok(closed)
    }

    /// The second step of closing an interdomain channel: `port`, whose
    /// other end in domain `closer` was just closed, becomes
    /// `Unbound { remote: closer }`, so `closer` may connect to it again.
    /// It keeps its pending bit and its vCPU.
    ///
    /// # Errors
    /// `EINVAL` if `port` is not an interdomain port connected to `closer`.
    /// Only a caller that passes the wrong table or port can see this (the
    /// pair invariant guarantees the match); Xen treats it as a bug
    /// (`BUG_ON`), and the caller should too.
    pub fn revert_to_unbound(&mut self, port: Port, closer: DomainId) -> Result<(), XenError> {
        match self.status(port)? {
            Channel::Interdomain { remote, .. } if remote == closer => {
                self.channels[port as usize] = Channel::Unbound { remote: closer };
                Ok(())
            }
            _ => Err(XenError::EINVAL),
        }
    }

    /// Close every port of domain `owner` (which owns this table), for
    /// `EVTCHNOP_reset` and for destroying the domain, lowest port first.
    ///
    /// The iterator yields each closed interdomain channel's other end in
    /// another domain, on which the caller calls
    /// [`PortTable::revert_to_unbound`]`(end.port, owner)`. Loopback channels
    /// need nothing more: both of their ends are in this table and are
    /// closed by the same sweep. Ports are closed as the iterator advances,
    /// so it must be run to the end.
    pub fn close_all(&mut self, owner: DomainId) -> CloseAll<'_> {
        CloseAll {
            table: self,
            owner,
            next_port: 1,
        }
    }

    /// The lowest free port above 0.
    fn free_port(&self) -> Result<Port, XenError> {
        (1..PORTS_PER_DOMAIN)
            .find(|&index| self.channels[index] == Channel::Free)
            .map(|index| index as Port)
            .ok_or(XenError::ENOSPC)
    }

    /// Check that `port` waits for domain `binder` to connect.
    fn check_unbound_for(&self, port: Port, binder: DomainId) -> Result<(), XenError> {
        match self.channel(port) {
            Some(Channel::Unbound { remote }) if remote == binder => Ok(()),
            _ => Err(XenError::EINVAL),
        }
    }
}

/// The iterator [`PortTable::close_all`] returns.
#[must_use = "ports are closed only as the iterator advances"]
#[derive(Debug)]
pub struct CloseAll<'a> {
    table: &'a mut PortTable,
    owner: DomainId,
    next_port: Port,
}

impl Iterator for CloseAll<'_> {
    type Item = RemoteEnd;

    fn next(&mut self) -> Option<RemoteEnd> {
        while (self.next_port as usize) < PORTS_PER_DOMAIN {
            let port = self.next_port;
            self.next_port += 1;
            // A free port fails to close with EINVAL and needs nothing.
            if let Ok(Closed::Interdomain {
                remote,
                remote_port,
            }) = self.table.close(port)
            {
                if remote != self.owner {
                    return Some(RemoteEnd {
                        domain: remote,
                        port: remote_port,
                    });
                }
            }
        }
        None
    }
}

/// `EVTCHNOP_bind_interdomain`: connect a new port of domain `local_id`
/// (table `local`) to port `remote_port` of domain `remote_id` (table
/// `remote`), which must be `Unbound { remote: local_id }`. Returns the new
/// local port; both ends now point at each other.
///
/// The caller has looked the remote domain up (`ESRCH` if it does not
/// exist), turning `DOMID_SELF` into the caller's own ID; a domain binding
/// to its own port uses [`bind_interdomain_local`]. Afterwards the caller
/// marks the new local port pending ([`set_pending`]), as Xen does, because
/// events sent on the remote port while it was unbound were dropped.
///
/// # Errors
/// In Xen's order:
/// * `ENOSPC` if every local port is in use;
/// * `EINVAL` if `remote_port` is not a port of `remote`, or is not waiting
///   for `local_id` (free, already connected, a VIRQ or IPI, or unbound for
///   another domain).
pub fn bind_interdomain(
    local: &mut PortTable,
    local_id: DomainId,
    remote: &mut PortTable,
    remote_id: DomainId,
    remote_port: Port,
) -> Result<Port, XenError> {
    let local_port = local.free_port()?;
    remote.check_unbound_for(remote_port, local_id)?;
    local.channels[local_port as usize] = Channel::Interdomain {
        remote: remote_id,
        remote_port,
    };
    remote.channels[remote_port as usize] = Channel::Interdomain {
        remote: local_id,
        remote_port: local_port,
    };
    Ok(local_port)
}

/// [`bind_interdomain`] when both ends are in domain `id` (a loopback
/// channel): connect a new port of `table` to its port `remote_port`, which
/// must be `Unbound { remote: id }`. Same contract and errors.
pub fn bind_interdomain_local(
    table: &mut PortTable,
    id: DomainId,
    remote_port: Port,
) -> Result<Port, XenError> {
    let local_port = table.free_port()?;
    table.check_unbound_for(remote_port, id)?;
    table.channels[local_port as usize] = Channel::Interdomain {
        remote: id,
        remote_port,
    };
    table.channels[remote_port as usize] = Channel::Interdomain {
        remote: id,
        remote_port: local_port,
    };
    Ok(local_port)
}

/// `EVTCHNOP_send`: where an event sent on `port` goes. The caller then
/// marks the target pending ([`set_pending`] on the target domain's shared
/// info) and kicks the vCPU it notifies ([`PortTable::notify_vcpu`]) if an
/// upcall became due.
///
/// # Errors
/// `EINVAL` if the table has no such port, or the port is free or a VIRQ
/// (only the hypervisor raises a VIRQ), as in Xen.
pub fn send_target(table: &PortTable, port: Port) -> Result<Target, XenError> {
    match table.status(port)? {
        Channel::Unbound { .. } => Ok(Target::Drop),
        Channel::Interdomain {
            remote,
            remote_port,
        } => Ok(Target::Remote {
            domain: remote,
            port: remote_port,
        }),
        Channel::Ipi => Ok(Target::Local { port }),
        Channel::Free | Channel::Virq { .. } => Err(XenError::EINVAL),
    }
}

/// Whether `virq` is global, raised for the domain as a whole (such as
/// [`VIRQ_CONSOLE`](hypercall_abi::event_channel::VIRQ_CONSOLE)), rather
/// than per vCPU, raised for one vCPU (such as [`VIRQ_TIMER`]). Xen's
/// `virq_is_global`; on x86 the architecture VIRQs are global. A global VIRQ
/// is bound on vCPU 0 and may be moved with [`PortTable::bind_vcpu`].
pub fn virq_is_global(virq: u32) -> bool {
    !matches!(virq, VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU)
}

/// The vCPU number `vcpu` if the domain has that vCPU, else `ENOENT`.
fn check_vcpu(vcpu: u32) -> Result<u8, XenError> {
    if vcpu < VCPUS_PER_DOMAIN {
        Ok(vcpu as u8)
    } else {
        Err(XenError::ENOENT)
    }
}

/// The word (`port / 64`) and the bit mask within it of `port`, or `None`
/// for a port the two-level ABI has no bit for (4096 and above).
fn word_and_bit(port: Port) -> Option<(usize, u64)> {
    if (port as usize) < NR_EVENT_CHANNELS {
        Some(((port / BITS_PER_WORD) as usize, 1 << (port % BITS_PER_WORD)))
    } else {
        None
    }
}

/// Mark `port` pending in `shared` for the vCPU whose `vcpu_info` is
/// `vcpu` (vCPU 0's, wherever the guest keeps it: its slot in `shared` or
/// the place it registered): Xen's `evtchn_2l_set_pending`, step by step as
/// in the module documentation.
///
/// Returns whether an upcall became due: `evtchn_upcall_pending` was clear
/// and is now set, so the caller must kick the vCPU. A port that was already
/// pending, that is masked, or whose word the guest has yet to scan changes
/// at most its own bit and returns `false`. A port of 4096 or more has no bit
/// and is ignored.
pub fn set_pending(shared: &SharedInfoPage, vcpu: &VcpuInfoCells, port: Port) -> bool {
    let Some((word, bit)) = word_and_bit(port) else {
        return false;
    };
    if shared.test_and_set_pending(word, bit) {
        return false;
    }
    if shared.mask_word(word) & bit != 0 {
        return false;
    }
    vcpu.mark_word_pending(word)
}

/// `EVTCHNOP_unmask`: clear `port`'s mask bit in `shared` and, if it was
/// masked and is pending, raise it to `vcpu` as [`set_pending`] would have:
/// Xen's `evtchn_2l_unmask`.
///
/// Returns whether an upcall became due. A port of 4096 or more has no bit
/// and is ignored.
pub fn unmask(shared: &SharedInfoPage, vcpu: &VcpuInfoCells, port: Port) -> bool {
    let Some((word, bit)) = word_and_bit(port) else {
        return false;
    };
    if !shared.test_and_clear_mask(word, bit) {
        return false;
    }
    if shared.pending_word(word) & bit == 0 {
        return false;
    }
    vcpu.mark_word_pending(word)
}

/// Whether `port` is pending in `shared` (`false` for a port of 4096 or
/// more, which has no bit).
pub fn is_pending(shared: &SharedInfoPage, port: Port) -> bool {
    word_and_bit(port).is_some_and(|(word, bit)| shared.pending_word(word) & bit != 0)
}

/// Clear `port`'s pending bit in `shared` (done when a port is closed, so a
/// re-used port starts quiet). Selector bits are left to the guest, which
/// clears them as it scans. A port of 4096 or more is ignored.
pub fn clear_pending(shared: &SharedInfoPage, port: Port) {
    if let Some((word, bit)) = word_and_bit(port) {
        shared.clear_pending(word, bit);
    }
}

/// The upcall rule: whether the hypervisor must enter the guest's event
/// callback when it next returns to this vCPU (events are waiting and the
/// guest has not masked upcalls). Xen's `local_events_need_delivery`.
pub fn events_need_delivery(vcpu: &VcpuInfoCells) -> bool {
    vcpu.events_need_delivery()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypercall_abi::event_channel::{VIRQ_CONSOLE, VIRQ_DOM_EXC};

    const DOM0: DomainId = 0;
    const DOMU: DomainId = 1;
    const OTHER: DomainId = 2;

    fn new_table() -> Box<PortTable> {
        Box::new(PortTable::new())
    }

    fn new_shared() -> Box<SharedInfoPage> {
        Box::new(SharedInfoPage::new())
    }

    /// A connected pair: port of Dom0 (allocated unbound for DomU) and the
    /// DomU port that bound to it.
    fn connected_pair(dom0: &mut PortTable, domu: &mut PortTable) -> (Port, Port) {
        let dom0_port = dom0.alloc_unbound(DOMU).unwrap();
        let domu_port = bind_interdomain(domu, DOMU, dom0, DOM0, dom0_port).unwrap();
        (dom0_port, domu_port)
    }

    #[test]
    fn allocation_starts_at_port_1_and_reuses_closed_ports() {
        let mut table = new_table();
        assert_eq!(table.alloc_unbound(DOMU), Ok(1));
        assert_eq!(table.alloc_unbound(DOMU), Ok(2));
        assert_eq!(table.alloc_unbound(OTHER), Ok(3));
        assert_eq!(table.close(2), Ok(Closed::Done));
        assert_eq!(table.channel(2), Some(Channel::Free));
        // The lowest free port is handed out again.
        assert_eq!(table.alloc_unbound(OTHER), Ok(2));
        assert_eq!(table.channel(2), Some(Channel::Unbound { remote: OTHER }));
        assert_eq!(table.channel(0), Some(Channel::Free));
    }

    #[test]
    fn exhausting_all_ports_gives_enospc() {
        let mut table = new_table();
        for expected in 1..PORTS_PER_DOMAIN as Port {
            assert_eq!(table.alloc_unbound(DOMU), Ok(expected));
        }
        assert_eq!(table.alloc_unbound(DOMU), Err(XenError::ENOSPC));
        assert_eq!(table.bind_ipi(0), Err(XenError::ENOSPC));
        assert_eq!(table.bind_virq(VIRQ_TIMER, 0), Err(XenError::ENOSPC));
        // A full table does not keep a VIRQ half-bound.
        assert_eq!(table.virq_port(VIRQ_TIMER), None);
        table.close(7).unwrap();
        assert_eq!(table.bind_ipi(0), Ok(7));
    }

    #[test]
    fn bind_interdomain_connects_both_ends_to_each_other() {
        let (mut dom0, mut domu) = (new_table(), new_table());
        let (dom0_port, domu_port) = connected_pair(&mut dom0, &mut domu);
        assert_eq!(
            dom0.channel(dom0_port),
            Some(Channel::Interdomain {
                remote: DOMU,
                remote_port: domu_port
            })
        );
        assert_eq!(
            domu.channel(domu_port),
            Some(Channel::Interdomain {
                remote: DOM0,
                remote_port: dom0_port
            })
        );
    }

    #[test]
    fn bind_interdomain_to_a_port_unbound_for_another_domain_is_einval() {
        let (mut dom0, mut domu) = (new_table(), new_table());
        let port = dom0.alloc_unbound(OTHER).unwrap();
        assert_eq!(
            bind_interdomain(&mut domu, DOMU, &mut dom0, DOM0, port),
            Err(XenError::EINVAL)
        );
        // Neither table changed.
        assert_eq!(dom0.channel(port), Some(Channel::Unbound { remote: OTHER }));
        assert_eq!(domu.channel(1), Some(Channel::Free));
    }

    #[test]
    fn bind_interdomain_to_a_free_or_missing_port_is_einval() {
        let (mut dom0, mut domu) = (new_table(), new_table());
        for port in [0, 5, PORTS_PER_DOMAIN as Port, Port::MAX] {
            assert_eq!(
                bind_interdomain(&mut domu, DOMU, &mut dom0, DOM0, port),
                Err(XenError::EINVAL),
                "port {port}"
            );
        }
    }

    #[test]
    fn bind_interdomain_to_a_bound_port_is_einval() {
        let (mut dom0, mut domu) = (new_table(), new_table());
        let (dom0_port, _) = connected_pair(&mut dom0, &mut domu);
        assert_eq!(
            bind_interdomain(&mut domu, DOMU, &mut dom0, DOM0, dom0_port),
            Err(XenError::EINVAL)
        );
        let virq_port = dom0.bind_virq(VIRQ_CONSOLE, 0).unwrap();
        let ipi_port = dom0.bind_ipi(0).unwrap();
        for port in [virq_port, ipi_port] {
            assert_eq!(
                bind_interdomain(&mut domu, DOMU, &mut dom0, DOM0, port),
                Err(XenError::EINVAL)
            );
        }
    }

    #[test]
    fn bind_interdomain_with_a_full_local_table_is_enospc() {
        let (mut dom0, mut domu) = (new_table(), new_table());
        let port = dom0.alloc_unbound(DOMU).unwrap();
        while domu.alloc_unbound(OTHER).is_ok() {}
        assert_eq!(
            bind_interdomain(&mut domu, DOMU, &mut dom0, DOM0, port),
            Err(XenError::ENOSPC)
        );
        assert_eq!(dom0.channel(port), Some(Channel::Unbound { remote: DOMU }));
    }

    #[test]
    fn loopback_channel_within_one_domain() {
        let mut table = new_table();
        let first = table.alloc_unbound(DOMU).unwrap();
        let second = bind_interdomain_local(&mut table, DOMU, first).unwrap();
        assert_ne!(first, second);
        assert_eq!(
            table.channel(first),
            Some(Channel::Interdomain {
                remote: DOMU,
                remote_port: second
            })
        );
        assert_eq!(
            table.channel(second),
            Some(Channel::Interdomain {
                remote: DOMU,
                remote_port: first
            })
        );
        assert_eq!(
            send_target(&table, first),
            Ok(Target::Remote {
                domain: DOMU,
                port: second
            })
        );
        // Unbound for someone else, or already connected: EINVAL.
        let foreign = table.alloc_unbound(OTHER).unwrap();
        assert_eq!(
            bind_interdomain_local(&mut table, DOMU, foreign),
            Err(XenError::EINVAL)
        );
        assert_eq!(
            bind_interdomain_local(&mut table, DOMU, first),
            Err(XenError::EINVAL)
        );
        // Closing one end, then reverting the other in the same table.
        let closed = table.close(first).unwrap();
        assert_eq!(
            closed,
            Closed::Interdomain {
                remote: DOMU,
                remote_port: second
            }
        );
        assert_eq!(table.revert_to_unbound(second, DOMU), Ok(()));
        assert_eq!(
            table.channel(second),
            Some(Channel::Unbound { remote: DOMU })
        );
    }

    #[test]
    fn closing_one_end_turns_the_other_back_to_unbound_and_it_can_be_rebound() {
        let (mut dom0, mut domu) = (new_table(), new_table());
        let (dom0_port, domu_port) = connected_pair(&mut dom0, &mut domu);
        let closed = domu.close(domu_port).unwrap();
        assert_eq!(
            closed,
            Closed::Interdomain {
                remote: DOM0,
                remote_port: dom0_port
            }
        );
        assert_eq!(domu.channel(domu_port), Some(Channel::Free));
        assert_eq!(dom0.revert_to_unbound(dom0_port, DOMU), Ok(()));
        assert_eq!(
            dom0.channel(dom0_port),
            Some(Channel::Unbound { remote: DOMU })
        );
        // The closer can connect again, as a reloaded frontend does.
        let again = bind_interdomain(&mut domu, DOMU, &mut dom0, DOM0, dom0_port).unwrap();
        assert_eq!(again, domu_port);
    }

    #[test]
    fn revert_to_unbound_checks_the_pair() {
        let (mut dom0, mut domu) = (new_table(), new_table());
        let (dom0_port, _) = connected_pair(&mut dom0, &mut domu);
        // Wrong closer, free port, out of range, not interdomain.
        assert_eq!(
            dom0.revert_to_unbound(dom0_port, OTHER),
            Err(XenError::EINVAL)
        );
        assert_eq!(dom0.revert_to_unbound(9, DOMU), Err(XenError::EINVAL));
        assert_eq!(
            dom0.revert_to_unbound(PORTS_PER_DOMAIN as Port, DOMU),
            Err(XenError::EINVAL)
        );
        let unbound = dom0.alloc_unbound(DOMU).unwrap();
        assert_eq!(dom0.revert_to_unbound(unbound, DOMU), Err(XenError::EINVAL));
        assert_eq!(
            dom0.channel(dom0_port),
            Some(Channel::Interdomain {
                remote: DOMU,
                remote_port: 1
            })
        );
    }

    #[test]
    fn closing_twice_is_einval() {
        let mut table = new_table();
        let port = table.bind_ipi(0).unwrap();
        assert_eq!(table.close(port), Ok(Closed::Done));
        assert_eq!(table.close(port), Err(XenError::EINVAL));
        // Port 0 is never open.
        assert_eq!(table.close(0), Err(XenError::EINVAL));
    }

    #[test]
    fn closing_out_of_range_is_einval() {
        let mut table = new_table();
        assert_eq!(table.close(PORTS_PER_DOMAIN as Port), Err(XenError::EINVAL));
        assert_eq!(table.close(Port::MAX), Err(XenError::EINVAL));
    }

    #[test]
    fn binding_a_virq_twice_is_eexist() {
        let mut table = new_table();
        let port = table.bind_virq(VIRQ_TIMER, 0).unwrap();
        assert_eq!(table.bind_virq(VIRQ_TIMER, 0), Err(XenError::EEXIST));
        assert_eq!(
            table.channel(port),
            Some(Channel::Virq { virq: VIRQ_TIMER })
        );
        assert_eq!(table.channel(port + 1), Some(Channel::Free));
    }

    #[test]
    fn bad_virq_numbers_and_vcpus_are_rejected_as_xen_does() {
        let mut table = new_table();
        assert_eq!(table.bind_virq(NR_VIRQS, 0), Err(XenError::EINVAL));
        assert_eq!(table.bind_virq(u32::MAX, 0), Err(XenError::EINVAL));
        // A global VIRQ is only ever bound on vCPU 0.
        assert_eq!(table.bind_virq(VIRQ_CONSOLE, 1), Err(XenError::EINVAL));
        // A per-vCPU VIRQ on a vCPU the domain does not have.
        assert_eq!(table.bind_virq(VIRQ_TIMER, 1), Err(XenError::ENOENT));
        assert_eq!(table.channel(1), Some(Channel::Free));
    }

    #[test]
    fn virq_port_lookup_and_clearing_on_close() {
        let mut table = new_table();
        assert_eq!(table.virq_port(VIRQ_DOM_EXC), None);
        assert_eq!(table.virq_port(NR_VIRQS), None);
        let timer = table.bind_virq(VIRQ_TIMER, 0).unwrap();
        let dom_exc = table.bind_virq(VIRQ_DOM_EXC, 0).unwrap();
        assert_eq!(table.virq_port(VIRQ_TIMER), Some(timer));
        assert_eq!(table.virq_port(VIRQ_DOM_EXC), Some(dom_exc));
        assert_eq!(table.close(timer), Ok(Closed::Done));
        assert_eq!(table.virq_port(VIRQ_TIMER), None);
        assert_eq!(table.virq_port(VIRQ_DOM_EXC), Some(dom_exc));
        // Once closed, the VIRQ can be bound again.
        assert_eq!(table.bind_virq(VIRQ_TIMER, 0), Ok(timer));
    }

    #[test]
    fn ipi_ports_send_to_themselves_and_need_an_existing_vcpu() {
        let mut table = new_table();
        assert_eq!(table.bind_ipi(1), Err(XenError::ENOENT));
        let port = table.bind_ipi(0).unwrap();
        assert_eq!(table.channel(port), Some(Channel::Ipi));
        assert_eq!(table.notify_vcpu(port), Some(0));
        assert_eq!(send_target(&table, port), Ok(Target::Local { port }));
    }

    #[test]
    fn status_of_each_state() {
        let (mut dom0, mut domu) = (new_table(), new_table());
        let unbound = dom0.alloc_unbound(OTHER).unwrap();
        let (dom0_port, domu_port) = connected_pair(&mut dom0, &mut domu);
        let virq = dom0.bind_virq(VIRQ_DOM_EXC, 0).unwrap();
        let ipi = dom0.bind_ipi(0).unwrap();
        assert_eq!(dom0.status(0), Ok(Channel::Free));
        assert_eq!(dom0.status(100), Ok(Channel::Free));
        assert_eq!(dom0.status(unbound), Ok(Channel::Unbound { remote: OTHER }));
        assert_eq!(
            dom0.status(dom0_port),
            Ok(Channel::Interdomain {
                remote: DOMU,
                remote_port: domu_port
            })
        );
        assert_eq!(dom0.status(virq), Ok(Channel::Virq { virq: VIRQ_DOM_EXC }));
        assert_eq!(dom0.status(ipi), Ok(Channel::Ipi));
        assert_eq!(dom0.status(PORTS_PER_DOMAIN as Port), Err(XenError::EINVAL));
        assert_eq!(dom0.channel(PORTS_PER_DOMAIN as Port), None);
    }

    #[test]
    fn send_target_of_each_state() {
        let (mut dom0, mut domu) = (new_table(), new_table());
        let unbound = dom0.alloc_unbound(OTHER).unwrap();
        let (dom0_port, domu_port) = connected_pair(&mut dom0, &mut domu);
        let virq = dom0.bind_virq(VIRQ_CONSOLE, 0).unwrap();
        let ipi = dom0.bind_ipi(0).unwrap();
        assert_eq!(send_target(&dom0, unbound), Ok(Target::Drop));
        assert_eq!(
            send_target(&dom0, dom0_port),
            Ok(Target::Remote {
                domain: DOMU,
                port: domu_port
            })
        );
        assert_eq!(
            send_target(&domu, domu_port),
            Ok(Target::Remote {
                domain: DOM0,
                port: dom0_port
            })
        );
        assert_eq!(send_target(&dom0, ipi), Ok(Target::Local { port: ipi }));
        assert_eq!(send_target(&dom0, virq), Err(XenError::EINVAL));
        assert_eq!(send_target(&dom0, 0), Err(XenError::EINVAL));
        assert_eq!(send_target(&dom0, 200), Err(XenError::EINVAL));
        assert_eq!(
            send_target(&dom0, PORTS_PER_DOMAIN as Port),
            Err(XenError::EINVAL)
        );
    }

    #[test]
    fn bind_vcpu_follows_xen() {
        let (mut dom0, mut domu) = (new_table(), new_table());
        let unbound = dom0.alloc_unbound(OTHER).unwrap();
        let (dom0_port, _) = connected_pair(&mut dom0, &mut domu);
        let global_virq = dom0.bind_virq(VIRQ_CONSOLE, 0).unwrap();
        let vcpu_virq = dom0.bind_virq(VIRQ_TIMER, 0).unwrap();
        let ipi = dom0.bind_ipi(0).unwrap();
        for port in [unbound, dom0_port, global_virq] {
            assert_eq!(dom0.bind_vcpu(port, 0), Ok(()), "port {port}");
            assert_eq!(dom0.notify_vcpu(port), Some(0));
        }
        for port in [vcpu_virq, ipi, 0, 300, PORTS_PER_DOMAIN as Port] {
            assert_eq!(
                dom0.bind_vcpu(port, 0),
                Err(XenError::EINVAL),
                "port {port}"
            );
        }
        // A vCPU the domain does not have is checked first.
        assert_eq!(dom0.bind_vcpu(unbound, 1), Err(XenError::ENOENT));
        assert_eq!(dom0.bind_vcpu(300, 1), Err(XenError::ENOENT));
    }

    #[test]
    fn close_all_closes_every_port_and_returns_the_remote_ends() {
        let (mut dom0, mut dying, mut other) = (new_table(), new_table(), new_table());
        let (dom0_port, _) = connected_pair(&mut dom0, &mut dying);
        // Take port 1 so that `other`'s end differs from Dom0's.
        other.bind_ipi(0).unwrap();
        let other_port = other.alloc_unbound(DOMU).unwrap();
        bind_interdomain(&mut dying, DOMU, &mut other, OTHER, other_port).unwrap();
        dying.alloc_unbound(DOM0).unwrap();
        dying.bind_virq(VIRQ_TIMER, 0).unwrap();
        dying.bind_ipi(0).unwrap();
        let loop_end = dying.alloc_unbound(DOMU).unwrap();
        bind_interdomain_local(&mut dying, DOMU, loop_end).unwrap();

        let ends: Vec<RemoteEnd> = dying.close_all(DOMU).collect();
        assert_eq!(
            ends,
            [
                RemoteEnd {
                    domain: DOM0,
                    port: dom0_port
                },
                RemoteEnd {
                    domain: OTHER,
                    port: other_port
                },
            ]
        );
        for port in 0..PORTS_PER_DOMAIN as Port {
            assert_eq!(dying.channel(port), Some(Channel::Free), "port {port}");
        }
        assert_eq!(dying.virq_port(VIRQ_TIMER), None);
        // The survivors' ends go back to waiting for the dying domain.
        for end in ends {
            let table = if end.domain == DOM0 {
                &mut dom0
            } else {
                &mut other
            };
            assert_eq!(table.revert_to_unbound(end.port, DOMU), Ok(()));
            assert_eq!(
                table.channel(end.port),
                Some(Channel::Unbound { remote: DOMU })
            );
        }
    }

    #[test]
    fn virq_is_global_matches_xen() {
        assert!(!virq_is_global(VIRQ_TIMER));
        assert!(!virq_is_global(VIRQ_DEBUG));
        assert!(!virq_is_global(VIRQ_XENOPROF));
        assert!(!virq_is_global(VIRQ_XENPMU));
        assert!(virq_is_global(VIRQ_CONSOLE));
        assert!(virq_is_global(VIRQ_DOM_EXC));
    }

    #[test]
    fn set_pending_sets_the_three_levels_and_raises_an_upcall() {
        let shared = new_shared();
        assert!(set_pending(&shared, shared.vcpu_slot(0), 70));
        assert!(is_pending(&shared, 70));
        assert_eq!(shared.pending_word(1), 1 << 6);
        assert_eq!(shared.vcpu_slot(0).pending_selector(), 1 << 1);
        assert_eq!(shared.vcpu_slot(0).upcall_pending(), 1);
        assert!(events_need_delivery(shared.vcpu_slot(0)));
    }

    #[test]
    fn set_pending_of_a_pending_port_is_a_no_op() {
        let shared = new_shared();
        assert!(set_pending(&shared, shared.vcpu_slot(0), 3));
        // The guest consumed the upcall and the selector, not the port bit.
        shared.guest_write_vcpu(0, 0, 0, 0);
        let before = shared.event_state();
        assert!(!set_pending(&shared, shared.vcpu_slot(0), 3));
        assert_eq!(shared.event_state(), before);
    }

    #[test]
    fn set_pending_on_a_masked_port_sets_only_its_bit() {
        let shared = new_shared();
        shared.guest_write_mask_word(0, 1 << 5);
        assert!(!set_pending(&shared, shared.vcpu_slot(0), 5));
        assert!(is_pending(&shared, 5));
        assert_eq!(shared.vcpu_slot(0).pending_selector(), 0);
        assert_eq!(shared.vcpu_slot(0).upcall_pending(), 0);
    }

    #[test]
    fn unmasking_a_pending_port_raises_the_upcall() {
        let shared = new_shared();
        shared.guest_write_mask_word(2, 1 << 1);
        assert!(!set_pending(&shared, shared.vcpu_slot(0), 129));
        assert!(unmask(&shared, shared.vcpu_slot(0), 129));
        assert_eq!(shared.mask_word(2), 0);
        assert_eq!(shared.vcpu_slot(0).pending_selector(), 1 << 2);
        assert_eq!(shared.vcpu_slot(0).upcall_pending(), 1);
    }

    #[test]
    fn unmasking_a_quiet_or_unmasked_port_raises_nothing() {
        let shared = new_shared();
        shared.guest_write_mask_word(0, 1 << 9);
        assert!(!unmask(&shared, shared.vcpu_slot(0), 9));
        assert_eq!(shared.mask_word(0), 0);
        // Not masked but pending (the guest cleared the selector): Xen's
        // unmask only acts on a mask bit it cleared.
        shared.guest_write_pending_word(0, 1 << 9);
        assert!(!unmask(&shared, shared.vcpu_slot(0), 9));
        assert_eq!(shared.vcpu_slot(0).pending_selector(), 0);
        assert_eq!(shared.vcpu_slot(0).upcall_pending(), 0);
    }

    #[test]
    fn a_set_selector_bit_means_the_word_is_already_being_scanned() {
        let shared = new_shared();
        assert!(set_pending(&shared, shared.vcpu_slot(0), 64));
        // The guest took the upcall but has not yet scanned word 1.
        let selector = shared.vcpu_slot(0).pending_selector();
        shared.guest_write_vcpu(0, 0, selector, 0);
        assert!(!set_pending(&shared, shared.vcpu_slot(0), 65));
        assert!(is_pending(&shared, 65));
        assert_eq!(shared.vcpu_slot(0).upcall_pending(), 0);
    }

    #[test]
    fn upcall_pending_is_not_raised_again_when_already_set() {
        let shared = new_shared();
        assert!(set_pending(&shared, shared.vcpu_slot(0), 1));
        // Another word: its selector bit is new, the upcall is not.
        assert!(!set_pending(&shared, shared.vcpu_slot(0), 200));
        assert_eq!(shared.vcpu_slot(0).pending_selector(), 1 | 1 << 3);
        assert_eq!(shared.vcpu_slot(0).upcall_pending(), 1);
    }

    #[test]
    fn the_upcall_mask_holds_off_delivery_but_not_pending() {
        let shared = new_shared();
        shared.vcpu_slot(0).set_upcall_mask(1);
        assert!(set_pending(&shared, shared.vcpu_slot(0), 2));
        assert!(!events_need_delivery(shared.vcpu_slot(0)));
        shared.vcpu_slot(0).set_upcall_mask(0);
        assert!(events_need_delivery(shared.vcpu_slot(0)));
    }

    #[test]
    fn clear_pending_and_ports_beyond_the_two_level_abi() {
        let shared = new_shared();
        set_pending(&shared, shared.vcpu_slot(0), 4095);
        assert!(is_pending(&shared, 4095));
        clear_pending(&shared, 4095);
        assert!(!is_pending(&shared, 4095));
        // Selector bits are the guest's to clear.
        assert_eq!(shared.vcpu_slot(0).pending_selector(), 1 << 63);
        let before = shared.event_state();
        assert!(!set_pending(&shared, shared.vcpu_slot(0), 4096));
        assert!(!unmask(&shared, shared.vcpu_slot(0), 4096));
        clear_pending(&shared, Port::MAX);
        assert!(!is_pending(&shared, 4096));
        assert_eq!(shared.event_state(), before);
    }
}
