//! Dom0's raw operations, and the only module of the binary allowed
//! `unsafe`.
//!
//! Dom0 is a guest kernel (the guest-kernel library's `sys` module wraps
//! what every guest needs) with a few more raw needs of its own, each
//! wrapped here in a small safe function or type that checks what it can
//! and says in a `// SAFETY:` comment why the rest holds:
//!
//! - [`control`]: the control hypercalls (`sysctl`, `domctl`) and the
//!   builder's `memory_op`, in forms that own or borrow every buffer the
//!   hypervisor writes, so no pointer is ever handed over unchecked;
//! - [`foreign`]: another domain's frames mapped into Dom0 ([`foreign::ForeignPages`]),
//!   read and written through bounds-checked, volatile accessors, and
//!   unmapped when the owner drops them;
//! - [`timing`]: the benchmarks' odd operations (the empty syscall, a
//!   batch of null multicalls, instructions the hypervisor emulates);
//! - [`ramdisk`]: the ramdisk the hypervisor's builder left in memory.
//!
//! Every other module of Dom0 says `#![forbid(unsafe_code)]`. What the
//! `debug` commands do on purpose (a read of an unmapped address, `hlt`,
//! a hypercall with the user's arguments) is the guest kernel's
//! `sys::raw`, shared with the attacking test workloads.

pub mod control;
pub mod foreign;
pub mod timing;

/// Dom0's ramdisk, where the hypervisor's builder put it (empty when it
/// has none).
pub fn ramdisk() -> &'static [u8] {
    let info = guest_kernel::start::start_info();
    let is_frame_number = info.flags & guest_kernel::abi::layout::SIF_MOD_START_PFN != 0;
    if info.mod_start == 0 || info.mod_len == 0 || is_frame_number {
        return &[];
    }
    // SAFETY: the builder mapped the ramdisk at mod_start (a virtual
    // address: SIF_MOD_START_PFN is clear, checked above) for mod_len
    // bytes, inside the start-of-day region, which stays mapped for Dom0's
    // life; nothing writes it after boot, so a shared `'static` slice of
    // it is sound.
    unsafe { core::slice::from_raw_parts(info.mod_start as *const u8, info.mod_len as usize) }
}
