//! Start of day: where the image lives, the start_info page and the
//! command line.
//!
//! The domain builder (the hypervisor for Dom0, Dom0's toolstack for the
//! others) reads the Xen ELF notes (in `sys/entry.rs`) to learn where to map
//! the image (`VIRT_BASE`), where to start it (`ENTRY`) and which page to
//! fill with hypercall stubs (`HYPERCALL_PAGE`). It enters `_start` in ring
//! 3 with `rsi` pointing at the start_info page, on a small bootstrap
//! stack; `_start` moves to our own stack and calls into Rust, which sets
//! the kernel up in this order: trap table, page tables, shared info, heap,
//! events, console, and then the binary's main function (a DomU's first
//! step there is to connect to the config store and watch
//! `control/shutdown`, `crate::xenbus::start`).
#![forbid(unsafe_code)]

/// Where the image expects pseudo-physical address 0 to be mapped.
pub const VIRT_BASE: u64 = 0xffff_ffff_8000_0000;
/// Size of the kernel stack.
pub const STACK_SIZE: usize = 64 * 1024;

pub use crate::sys::entry::start_info;
pub use crate::sys::shared_info::{shared_info, shared_info_pointer, SHARED_INFO_ADDRESS};

/// The domain's command line from start_info, up to its first NUL.
pub fn command_line() -> &'static str {
    let bytes = &start_info().cmd_line;
    let length = bytes
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..length]).unwrap_or("")
}
