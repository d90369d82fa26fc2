//! Event channels in the hypervisor: the `event_channel_op` hypercall,
//! raising events, and delivering them to guests as upcalls.
//!
//! The state of every port lives in its domain's `PortTable`
//! (`crate::evtchn::ports`, with the rules and their tests); the
//! pending and mask bits live in each domain's shared info page, where the
//! guest reads them. This module connects the two:
//!
//! - [`notify`] marks a port pending (Xen's 2-level ABI) and, when that
//!   makes an upcall due, wakes the domain if it was blocked;
//! - [`send_virq`] raises a virtual interrupt a domain bound to a port
//!   (`VIRQ_TIMER`, `VIRQ_CONSOLE`, `VIRQ_DOM_EXC`);
//! - [`deliver_upcall`], on every exit to a guest, bounces the guest into
//!   its event callback when an upcall is pending and events are not
//!   masked, exactly like an exception without an error code.
//!
//! # Invariants
//!
//! 1. **A port is in exactly one state** (`Free`, `Unbound`, `Interdomain`,
//!    `Virq`, `Ipi`; drawn in `ports.rs`). It leaves `Free` only by an
//!    allocation, which takes the lowest free port above 0 (port 0 is never
//!    handed out), and returns to `Free` only by `close`.
//! 2. **An interdomain pair always points at each other.** Closing one end
//!    turns the other back to `Unbound` waiting for the closer; the caller
//!    holds both domains' tables for both steps (`domain::with_two`).
//! 3. **At most one port per VIRQ**, and `virq_port(v)` names it.
//! 4. **The pending and mask bits live in the guest's shared info page**,
//!    which the guest writes too, so the hypervisor writes them only with
//!    atomic (locked) bit operations, in Xen's order (`set_pending`: the
//!    port's bit, then unless masked the selector bit, then
//!    `evtchn_upcall_pending`).
//! 5. **An upcall is delivered only when it is due**: on the way back to the
//!    guest, if `evtchn_upcall_pending` is set and `evtchn_upcall_mask` is
//!    clear, exactly like an exception bounce (`deliver_upcall`).
//! 6. **A destroyed domain leaves no dangling channel**: its ports are closed
//!    and the remote ends of its interdomain channels made unbound.
//!
//! # Files
//!
//! Pure rules, tested on the host: `ports.rs` (the port states, the two-level
//! bits, and their tests; read its opening comment first).
//!
//! Glue (built with the `kernel` feature): `operations.rs` (the
//! `event_channel_op` hypercall, `notify`, `send_virq`, `deliver_upcall`).
#![forbid(unsafe_code)]

#[cfg(feature = "kernel")]
pub mod operations;
pub mod ports;

#[cfg(feature = "kernel")]
pub use operations::*;
