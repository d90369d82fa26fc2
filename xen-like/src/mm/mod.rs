//! Machine memory: the direct map, the frame allocator, the heap, and safe
//! access to guest memory.
//!
//! The hypervisor sees all of machine memory through the *direct map*: the
//! machine address `a` is at virtual address `DIRECTMAP_START + a`, inside
//! Xen's reserved region (as in Xen, at 0xffff830000000000). Guests cannot
//! reach it: its page-table entries lack the user bit, and guests run in
//! ring 3.

pub mod descriptor;
#[cfg(feature = "kernel")]
pub mod descriptor_tables;
#[cfg(feature = "kernel")]
pub mod direct_map;
pub mod frame_allocator;
pub mod frame_table;
#[cfg(feature = "kernel")]
pub mod frames;
#[cfg(feature = "kernel")]
pub mod guest_access;
#[cfg(feature = "kernel")]
pub mod heap;
#[cfg(feature = "kernel")]
pub mod m2p;
#[cfg(feature = "kernel")]
pub mod memory_op;
#[cfg(feature = "kernel")]
pub mod mmu_op;
#[cfg(feature = "kernel")]
pub mod native_bench;
#[cfg(feature = "kernel")]
pub mod new_domain_memory;
pub mod pagewalk;
#[cfg(feature = "kernel")]
pub mod paging;
pub mod reservation;
pub mod shared_page;
#[cfg(feature = "kernel")]
pub mod tlb;

#[cfg(feature = "kernel")]
pub use direct_map::*;
