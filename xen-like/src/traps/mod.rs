//! Exceptions and interrupts: the hypervisor's own, and the guests'.
//!
//! An exception raised by a guest is the guest's business: it is *bounced*
//! to the handler the guest registered in its virtual trap table
//! (`set_trap_table`), with a frame on the guest's kernel stack, exactly as
//! Xen does. A guest with no handler for it has crashed. An exception raised
//! by the hypervisor itself is a bug: it is reported in full and the machine
//! stops.
//!
//! # Invariants
//!
//! 1. **A guest's exception is the guest's**: it is bounced to the handler of
//!    its trap table, on its kernel stack written through `mm::guest_access`;
//!    if that is impossible (no handler, a bad stack), the guest is crashed,
//!    never the hypervisor.
//! 2. **An exception in the hypervisor is a bug**: it is reported in full and
//!    the machine stops.
//! 3. **A guest gets only what Xen's PV policy allows**: trap-and-emulate
//!    emulates an allow-listed set of privileged instructions with Xen's
//!    semantics (`emulate.rs`), CPUID shows an allow-list of features
//!    (`cpuid_policy.rs`), debug registers may never point into the
//!    hypervisor (`debug_registers.rs`), a guest may raise only the
//!    software interrupts its DPL rules allow (`software_interrupts.rs`),
//!    and port I/O reaches hardware only for the control domain, never on a
//!    port the hypervisor drives itself (`io_ports.rs`).
//!
//! # Files
//!
//! Pure rules, tested on the host: `x86_decode.rs` (the instruction decoder),
//! `cpuid_policy.rs`, `debug_registers.rs`, `software_interrupts.rs`,
//! `io_ports.rs` (I/O privilege: the virtual IOPL and which ports a domain
//! reaches).
//!
//! Glue (built with the `kernel` feature): `exceptions.rs` (the Rust side of
//! every vector: guest exceptions, the timer interrupt, the hypervisor's own
//! faults), `bounce.rs`, `hypercalls.rs` (the trap-related hypercalls),
//! `emulate.rs`, `debug.rs`, `fpu.rs`, `guest_mode.rs`,
//! `software_interrupt.rs`, `physdev_op.rs` (`PHYSDEVOP_set_iopl`).
#![deny(unsafe_code)]

#[cfg(feature = "kernel")]
pub mod bounce;
pub mod cpuid_policy;
#[cfg(feature = "kernel")]
pub mod debug;
pub mod debug_registers;
#[cfg(feature = "kernel")]
pub mod emulate;
#[cfg(feature = "kernel")]
pub mod exceptions;
#[cfg(feature = "kernel")]
pub mod fpu;
#[cfg(feature = "kernel")]
pub mod guest_mode;
#[cfg(feature = "kernel")]
pub mod hypercalls;
pub mod io_ports;
#[cfg(feature = "kernel")]
pub mod physdev_op;
#[cfg(feature = "kernel")]
pub mod software_interrupt;
pub mod software_interrupts;
pub mod x86_decode;

#[cfg(feature = "kernel")]
pub use exceptions::*;
