//! What the boot loader tells us: memory map, modules and command line.
//!
//! Two loaders reach `hypervisor_start`: GRUB through multiboot2 (the ISO,
//! and bare metal) and QEMU's `-kernel` through multiboot1 (the fast path).
//! Both are read into one [`BootInfo`] here, copied out of the loader's
//! structures so that their memory can be reused.
//!
//! # Invariants
//!
//! 1. **Nothing of the loader's is trusted after it is copied**: the memory
//!    map, modules and command line are copied into one `BootInfo` before any
//!    of the loader's memory is reused.
//! 2. **No option is silently ignored**: an option or value the command line
//!    parser does not understand is reported on the console at boot.
//! 3. **The boot goes in one order** (`start.rs`): console, boot information,
//!    memory, CPU tables, time, then Dom0; the boot modules' frames go back to
//!    the allocator only after Dom0 holds its copies.
//!
//! # Files
//!
//! Pure rules, tested on the host: `cmdline.rs`.
//!
//! Glue (built with the `kernel` feature): `start.rs` (the boot in order,
//! called by `hypervisor_start` in `main.rs`) and `boot_info.rs` (reading the
//! multiboot1 or multiboot2 information); both may use `unsafe` for the
//! loader's structures and the first entry into Dom0.
#![deny(unsafe_code)]

// Reading the loader's structures in physical memory.
#[cfg(feature = "kernel")]
#[allow(unsafe_code)]
pub mod boot_info;
pub mod cmdline;
// Handing the heap its memory, once.
#[cfg(feature = "kernel")]
#[allow(unsafe_code)]
pub mod start;

#[cfg(feature = "kernel")]
pub use boot_info::*;
