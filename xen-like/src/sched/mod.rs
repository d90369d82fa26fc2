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
//!
//! # Invariants
//!
//! The credit rules (argued in `credit.rs`, tested on simulated time):
//!
//! 1. **Shares follow weights**: at each accounting period (30 ms) every
//!    active vCPU is granted credit in proportion to its weight; running
//!    spends credit one for one with the cycles run.
//! 2. **Every cycle is charged**, measured with the TSC at every switch and
//!    every tick, never sampled, so no guest can dodge the accounting by
//!    yielding just before a tick.
//! 3. **Balances are bounded** by one period's worth above (no saving up
//!    while asleep) and one period below (no starving later for time nobody
//!    wanted).
//! 4. **UNDER before OVER; a cap always holds**: the runnable vCPU with the
//!    most credit runs; a capped vCPU that spent its allowance is parked
//!    until the next period, boosted or not.
//! 5. **BOOST is bounded**: a vCPU that wakes goes first, but for at most a
//!    tenth of each period, paid for in credit like any run.
//! 6. **Only a runnable vCPU runs**: blocked, paused, shut-down, crashed and
//!    not-yet-set-up domains never do; with nothing runnable the CPU halts.
//! 7. **A switch happens only at the end of a hypercall or trap** (`on_exit`),
//!    when the guest's registers are the `GuestFrame` at the stack top, and
//!    it saves and loads all of a vCPU's state together (registers, FPU, FS
//!    and GS bases, CR3, GDT, virtual CR0.TS).
//!
//! # Files
//!
//! Pure rules, tested on the host: `credit.rs` (the policy; its opening
//! comment works an example through), `runstate.rs` (each vCPU's runstate
//! times), `continuation.rs` (the work budget and `Outcome` of a long
//! hypercall).
//!
//! Glue (built with the `kernel` feature): `schedule.rs` (the instance on
//! this CPU, charging time, the context switch, the tick's housekeeping, the
//! idle loop) and `sched_op.rs` (the `sched_op` hypercall: yield, block, poll,
//! shutdown).
#![forbid(unsafe_code)]

pub mod continuation;
pub mod credit;
pub mod runstate;
#[cfg(feature = "kernel")]
pub mod sched_op;
#[cfg(feature = "kernel")]
pub mod schedule;

#[cfg(feature = "kernel")]
pub use schedule::*;
