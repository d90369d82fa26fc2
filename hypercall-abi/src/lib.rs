//! Xen's 64-bit PV hypercall ABI, shared by the hypervisor and its guests.
//!
//! This crate is the one place where both sides of the guest/hypervisor
//! boundary agree on numbers and memory layouts: hypercall numbers, sub-op
//! numbers, error codes, the `start_info` and `shared_info` pages, and the
//! argument structures that guests pass by pointer.
//!
//! # Where the facts come from
//!
//! Everything here except [`sysctl`] and [`domctl`] mirrors Xen's public
//! headers (`xen/include/public/`: `xen.h`, `errno.h`, `sched.h`,
//! `event_channel.h`, `memory.h`, `callback.h`, `vcpu.h`, `version.h`,
//! `elfnote.h`, `physdev.h`, `io/console.h`, `io/xs_wire.h`, `arch-x86/xen.h`, `arch-x86/xen-x86_64.h`).
//! The Rust is our own; names follow Xen's, spelled in Rust style, and every
//! `#[repr(C)]` structure has compile-time size and offset checks so that a
//! mistake fails the build instead of corrupting a guest. The sysctl and
//! domctl payloads are project-defined (Xen's own are internal to its
//! toolstack and change every release); see those modules.
//!
//! Every structure that is copied to or from a guest derives
//! `bytemuck::Pod`: the derive refuses a structure with padding or with a
//! field for which some bit patterns are invalid (a `bool`, an enum), so the
//! hypervisor can copy guest bytes into it, and its bytes out to a guest,
//! without `unsafe`. Padding is therefore always an explicit `pad` field,
//! as in Xen's headers.
//!
//! # Map
//!
//! - [`hypercall`]: the hypercall numbers ([`Hypercall`]).
//! - [`error`]: Xen's errno values ([`XenError`]) and the return convention.
//! - [`layout`]: the x86_64 PV structures (`start_info`, `shared_info`,
//!   `vcpu_info`, `trap_info`, `iret_context`, the bounce frame, multicall
//!   entries) and the address-space constants.
//! - One module per hypercall family for its sub-ops and argument structures:
//!   [`sched`], [`console`], [`version`], [`callback`], [`memory`], [`mmu`],
//!   [`event_channel`], [`grant_table`], [`vcpu`], [`physdev`], [`sysctl`],
//!   [`domctl`].
//! - [`elfnote`]: the ELF notes a PV kernel image carries for its loader.
//! - [`pv_image`], [`pv_layout`], [`hypercall_page`]: what a domain builder
//!   needs to start any Xen PV64 kernel: reading the image and its notes,
//!   Xen's start-of-day layout, and the hypercall page's stubs. Shared by
//!   the hypervisor's Dom0 builder and Dom0's own domain builder.
//! - [`wrappers`] (x86_64 only): guest-side functions that make hypercalls.
//! - [`x86`]: exception vector names, which trap tables are indexed by.
//! - [`xs_wire`]: XenStore's messages and its ring page (`io/xs_wire.h`).
#![cfg_attr(not(test), no_std)]
// `unsafe` is denied here and allowed in two places: the hypercall
// instruction itself (`wrappers`), and the `Pod` impls of the two payload
// unions in `sysctl` and `domctl` (each with its reason beside it).
#![deny(unsafe_code)]

#[macro_use]
mod abi_enum;

pub mod callback;
pub mod console;
pub mod domctl;
pub mod elfnote;
pub mod error;
pub mod event_channel;
pub mod grant_table;
pub mod hypercall;
pub mod hypercall_page;
pub mod layout;
pub mod memory;
pub mod mmu;
pub mod physdev;
pub mod pv_image;
pub mod pv_layout;
pub mod sched;
pub mod splitmix;
pub mod sysctl;
pub mod vcpu;
pub mod version;
// The `syscall` sequences: a hypercall may write any memory its arguments
// name, so the raw forms are `unsafe fn`s, and the safe forms say why.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub mod wrappers;
pub mod x86;
pub mod xs_wire;

pub use error::{result_from_raw, HypercallResult, UnknownValue, XenError};
pub use hypercall::{Hypercall, HYPERCALL_PAGE_ENTRY_SIZE, NR_HYPERCALLS};
pub use layout::{
    BounceFrame, DomainId, IretContext, MulticallEntry, SharedInfo, StartInfo, TrapInfo, VcpuInfo,
    VcpuTimeInfo, PAGE_SIZE,
};
pub use sched::SchedShutdown;

/// Version of this crate's ABI, bumped whenever a number or layout here
/// changes in a way that needs the hypervisor and guests rebuilt together.
///
/// Xen's own ABI is versioned by `__XEN_INTERFACE_VERSION__`; the parts of
/// this crate that mirror Xen follow interface version 0x00040e00 (Xen 4.14
/// and later) and never change on their own. This number covers the
/// project-defined parts ([`sysctl`], [`domctl`]) and any mistake we fix in
/// the mirrored parts. It is encoded as major << 16 | minor, like
/// `XENVER_version`.
pub const ABI_VERSION: u32 = 1 << 16;
