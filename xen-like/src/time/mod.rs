//! Time: the TSC's frequency, measured at boot, and the hypervisor's tick.
//!
//! The TSC counts at a constant rate on every CPU this hypervisor targets
//! (and under QEMU at the host's rate). Its frequency is measured against
//! the PIT, whose rate is fixed by the PC's design; the local APIC timer is
//! calibrated in the same window. It then runs one-shot, armed for the
//! hypervisor's next deadline: the end of a vCPU's run as the scheduler
//! chose it, a guest's timer or poll timeout, or at the latest one
//! housekeeping tick (10 ms) later ([`arm_timer_at`]).
#![forbid(unsafe_code)]

#[cfg(feature = "kernel")]
pub mod clock;
pub mod timekeeping;

#[cfg(feature = "kernel")]
pub use clock::*;
