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

#[cfg(feature = "kernel")]
pub mod console_io;
pub mod log_ring;
pub mod rate_limit;
#[cfg(feature = "kernel")]
pub mod serial_log;

#[cfg(feature = "kernel")]
mod panic;
#[cfg(feature = "kernel")]
pub use panic::panic;
#[cfg(feature = "kernel")]
pub use serial_log::*;
