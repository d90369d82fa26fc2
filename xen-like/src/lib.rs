//! The hypervisor's pure logic, tested on the host with `cargo test`.
//!
//! The hypervisor binary (`src/main.rs` and the modules it declares) drives
//! the hardware; whatever can be decided without touching hardware lives
//! here as plain functions and state machines over plain data, so that it
//! has unit tests: the command line, the log ring, the frame bitmap, the
//! frame table with its page-type rules, guest page-table walks, the
//! shared info page's atomic accessors, the DPL rules for a guest's
//! `int $n`, the rate limits on what guests make the hypervisor print, vCPU
//! runstate accounting, where a reservation's extent loop stops and
//! resumes, and the sanity check on a domain's maximum memory.
//! (Reading PV kernel images and laying out new domains is shared with
//! Dom0's domain builder, so it lives in `hypercall_abi`.)
#![cfg_attr(not(test), no_std)]

pub mod cmdline;
pub mod cpuid_policy;
pub mod credit;
pub mod debug_registers;
pub mod descriptor;
pub mod event_channel;
pub mod frame_allocator;
pub mod frame_table;
pub mod lock_order;
pub mod log_ring;
pub mod max_memory;
pub mod pagewalk;
pub mod rate_limit;
pub mod reservation;
pub mod runstate;
pub mod shared_page;
pub mod software_interrupts;
pub mod timekeeping;
pub mod x86_decode;
