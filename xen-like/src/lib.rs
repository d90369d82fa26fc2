//! xen-like: a thin ring-0 hypervisor exposing Xen's 64-bit PV interface.
//!
//! The whole hypervisor is this library, one folder per mechanism (see
//! `docs/architecture.md` for the drawing). Each folder holds both the
//! mechanism's pure rules, plain functions and state machines over plain
//! data with their unit tests, and its glue to the hardware and to the
//! hypercall ABI. The glue files are compiled only with the `kernel`
//! feature, which `cargo xtask build` turns on for the binary (`main.rs`);
//! a plain `cargo test` builds the rules alone and runs their tests on the
//! host.
//!
//! `unsafe` lives in `arch/` (every `asm!`, privileged instruction and
//! descriptor table), `mm/` (the direct map, guest access, the shared
//! page), `sync/` (the lock's forced unlock for the panic path), and the
//! boot and console hardware files. Every other module forbids it.
#![cfg_attr(not(test), no_std)]

// The pure modules use `Vec` too (the frame table's list of freed
// frames), on the host and in the kernel alike.
extern crate alloc;

#[cfg(feature = "kernel")]
pub mod arch;
pub mod boot;
pub mod console;
pub mod domain;
pub mod evtchn;
pub mod grant;
#[cfg(feature = "kernel")]
pub mod hypercall;
pub mod mm;
pub mod sched;
pub mod sync;
pub mod time;
pub mod traps;
