//! The scheduler: which vCPU runs on this CPU, and switching between them.
//!
//! Decisions come from the credit scheduler (`crate::sched::credit`, with its
//! rules and simulated-time tests): every domain has a weight (default 256)
//! and an optional cap (percent of one CPU); runnable vCPUs share the CPU
//! in proportion to their weights, and a capped one never gets more than
//! its cap. CPU time is charged exactly, in TSC cycles, at every switch and
//! every tick, so a guest cannot dodge the accounting by yielding just
//! before a tick. Blocked, paused, shut-down and crashed domains, and
//! domains whose context is not set yet, are not runnable. When nothing
//! may run, the CPU halts until an interrupt.
//!
//! A context switch happens at the very end of a hypercall or a trap, when
//! the running guest's registers are in the `GuestFrame` at the top of the
//! hypervisor stack: they are copied into the old vCPU, and the next vCPU's
//! are copied in their place, so the exit path resumes the next guest.
//! With them go the x87/SSE state, the FS and GS bases, the page-table
//! root (CR3) of the mode the vCPU is in (guest kernel or guest user), the
//! GDT (`mm::descriptor_tables`) and the virtual CR0.TS (`traps::fpu`).

pub mod continuation;
pub mod credit;
pub mod runstate;
#[cfg(feature = "kernel")]
pub mod sched_op;
#[cfg(feature = "kernel")]
pub mod schedule;

#[cfg(feature = "kernel")]
pub use schedule::*;
