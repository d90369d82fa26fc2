//! What the boot loader tells us: memory map, modules and command line.
//!
//! Two loaders reach `hypervisor_start`: GRUB through multiboot2 (the ISO,
//! and bare metal) and QEMU's `-kernel` through multiboot1 (the fast path).
//! Both are read into one [`BootInfo`] here, copied out of the loader's
//! structures so that their memory can be reused.

#[cfg(feature = "kernel")]
pub mod boot_info;
pub mod cmdline;
#[cfg(feature = "kernel")]
pub mod start;

#[cfg(feature = "kernel")]
pub use boot_info::*;
