//! Time: the TSC's frequency, measured at boot, and the hypervisor's tick.
//!
//! The TSC counts at a constant rate on every CPU this hypervisor targets
//! (and under QEMU at the host's rate). Its frequency is measured against
//! the PIT, whose rate is fixed by the PC's design; the local APIC timer is
//! calibrated in the same window. It then runs one-shot, armed for the
//! hypervisor's next deadline: the end of a vCPU's run as the scheduler
//! chose it, a guest's timer or poll timeout, or at the latest one
//! housekeeping tick (10 ms) later ([`arm_timer_at`]).
//!
//! # Invariants
//!
//! 1. **System time only goes forward**: it is nanoseconds since boot, one
//!    TSC reading scaled by the frequency measured once at boot, and the TSC
//!    counts at a constant rate.
//! 2. **A guest never reads a half-written time record**: `vcpu_time_info`
//!    and the wall clock are published with Xen's version protocol (the
//!    version is odd while the fields change), so a guest that sees an odd or
//!    changed version reads again.
//! 3. **The timer is always armed**: one-shot, for the earliest deadline (the
//!    running vCPU's end of turn, a guest's timer, a poll timeout), and never
//!    more than one housekeeping tick (10 ms) away.
//!
//! # Files
//!
//! Pure rules, tested on the host: `timekeeping.rs` (the TSC-to-nanoseconds
//! scale, calendar dates to Unix time, the next timer deadline).
//!
//! Glue (built with the `kernel` feature): `clock.rs` (calibration against
//! the PIT, system time, arming the APIC timer, publishing time into a
//! domain's shared info page).
#![forbid(unsafe_code)]

#[cfg(feature = "kernel")]
pub mod clock;
pub mod timekeeping;

#[cfg(feature = "kernel")]
pub use clock::*;
