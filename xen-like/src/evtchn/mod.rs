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

#[cfg(feature = "kernel")]
pub mod operations;
pub mod ports;

#[cfg(feature = "kernel")]
pub use operations::*;
