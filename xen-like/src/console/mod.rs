//! The hypervisor's console: the serial line, the `log` backend, and the
//! log ring that `xl dmesg` reads.
//!
//! Every hypervisor message goes out as one line `(XEN) message` (Xen's
//! prefix) on COM1 and into the log ring. Messages about what a guest did
//! use the log target [`GUEST`], so that `guest_loglvl=` filters them apart
//! from the hypervisor's own (`loglvl=`), as in Xen.
//!
//! Whatever an unprivileged guest can make the hypervisor print, it prints
//! within the domain's rate limit (`crate::console::rate_limit`): the warnings
//! about its own calls go through [`guest_log!`], its `console_io` output
//! through [`write_guest_output`]. A direct `log::...!(target: GUEST, ..)`
//! is for what happens a bounded number of times in a domain's life (its
//! crash, its shutdown). In the log ring, guest lines may take at most a
//! quarter (`LogRing::push_guest`), so they cannot push the hypervisor's
//! own lines out of `xl dmesg`.
//!
//! # Invariants
//!
//! 1. **A guest cannot flood the console**: whatever an unprivileged guest
//!    makes the hypervisor print goes through its domain's token bucket
//!    (`rate_limit.rs`); what goes over the limit is dropped and counted
//!    ("N messages suppressed"), as in Xen.
//! 2. **Guests cannot push the hypervisor's lines out of `xl dmesg`**: guest
//!    lines take at most a quarter of the log ring (`LogRing::push_guest`).
//! 3. **Every line says whose it is**: the hypervisor's start with `(XEN)`,
//!    a guest's `console_io` output with `(dN)` (as in Xen).
//! 4. **A panic is always reported**: the panic path writes to the serial
//!    line without waiting for any lock.
//!
//! # Files
//!
//! Pure rules, tested on the host: `log_ring.rs`, `rate_limit.rs`.
//!
//! Glue (built with the `kernel` feature): `serial_log.rs` (COM1, the `log`
//! backend, the `guest_log!` and `caller_log!` macros), `console_io.rs` (the
//! `console_io` hypercall) and `panic.rs`.
#![deny(unsafe_code)]

#[cfg(feature = "kernel")]
pub mod console_io;
pub mod log_ring;
pub mod rate_limit;
#[cfg(feature = "kernel")]
// The one exception: the UART's ports, and forcing the console locks open on the panic path.
#[allow(unsafe_code)]
pub mod serial_log;

#[cfg(feature = "kernel")]
mod panic;
#[cfg(feature = "kernel")]
pub use panic::panic;
#[cfg(feature = "kernel")]
pub use serial_log::*;
