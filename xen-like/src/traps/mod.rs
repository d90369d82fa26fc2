//! Exceptions and interrupts: the hypervisor's own, and the guests'.
//!
//! An exception raised by a guest is the guest's business: it is *bounced*
//! to the handler the guest registered in its virtual trap table
//! (`set_trap_table`), with a frame on the guest's kernel stack, exactly as
//! Xen does. A guest with no handler for it has crashed. An exception raised
//! by the hypervisor itself is a bug: it is reported in full and the machine
//! stops.

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
#[cfg(feature = "kernel")]
pub mod software_interrupt;
pub mod software_interrupts;
pub mod x86_decode;

#[cfg(feature = "kernel")]
pub use exceptions::*;
