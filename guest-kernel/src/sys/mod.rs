//! The guest kernel's raw operations, and the only module of the crate
//! allowed `unsafe`.
//!
//! A PV kernel touches few things Rust cannot check: the hypercall
//! instruction (through `hypercall_abi::wrappers`), pages the hypervisor or
//! another domain writes at the same time, tables the builder left in
//! memory, assembly entry points, and the allocator. Each is wrapped here
//! in a small safe function or type that checks what it can (bounds,
//! argument types, that an entry address is one of ours) and says in a
//! `// SAFETY:` comment why the rest holds. Every other module of the
//! crate says `#![forbid(unsafe_code)]`.
//!
//! - [`entry`]: `_start`, the Xen ELF notes, the exception and upcall
//!   stubs, the store that may fault;
//! - [`shared_info`]: the shared info page, read and updated with volatile
//!   and atomic accesses;
//! - [`memory`]: the P2M and M2P, page tables through the physmap, pages
//!   mapped at run time ([`memory::OwnedPages`]), console and store rings
//!   ([`memory::ConsoleRing`], [`memory::StoreRing`]);
//! - [`grant_table`]: `grant_table_op`, the grant table's frames (entries
//!   the hypervisor changes concurrently), pages shared by grant;
//! - [`hypercalls`]: typed, safe forms of the hypercalls that take pointers;
//! - [`heap`]: the global allocator;
//! - [`cpu`]: the time-stamp counter;
//! - [`privileged`]: privileged and sensitive instructions run from ring 3,
//!   with the fault caught;
//! - [`user_mode`]: entering and leaving guest user mode, and the user
//!   programs' code;
//! - [`raw`]: how an attacker pokes (the test workloads' odd operations).

pub mod cpu;
pub mod entry;
pub mod grant_table;
pub mod heap;
pub mod hypercalls;
pub mod memory;
#[cfg(not(test))]
pub mod privileged;
pub mod raw;
pub mod shared_info;
pub mod user_mode;
