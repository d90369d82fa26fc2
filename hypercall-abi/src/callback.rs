//! `callback_op` sub-ops, callback types and argument structures (`callback.h`).
//!
//! `callback_op(cmd, arg)`: `cmd` in `rdi` is a [`CallbackOp`], `arg` in
//! `rsi` points at a [`CallbackRegister`] or [`CallbackUnregister`]. A
//! callback is a guest kernel entry point that Xen jumps to, as the CPU would
//! jump through an IDT or `LSTAR` on bare metal.

use bytemuck::{Pod, Zeroable};
use core::mem::{offset_of, size_of};

abi_enum! {
    /// Which entry point a callback is (`CALLBACKTYPE_*`).
    pub enum CallbackType: u16 {
        /// Event upcall: entered when events are pending and unmasked.
        Event = 0 => "CALLBACKTYPE_event",
        /// Failsafe: entered when Xen cannot restore the guest's segment
        /// state on return (for example a bad selector).
        Failsafe = 1 => "CALLBACKTYPE_failsafe",
        /// `syscall` made by 64-bit guest user space.
        Syscall = 2 => "CALLBACKTYPE_syscall",
        /// Old `sysenter` (32-bit hypervisor only); do not use.
        SysenterDeprecated = 3 => "CALLBACKTYPE_sysenter_deprecated",
        /// NMI delivery.
        Nmi = 4 => "CALLBACKTYPE_nmi",
        /// `sysenter` made by guest user space (Intel CPUs).
        Sysenter = 5 => "CALLBACKTYPE_sysenter",
        /// `syscall` made by 32-bit guest user space (AMD CPUs).
        Syscall32 = 7 => "CALLBACKTYPE_syscall32",
    }
}

abi_enum! {
    /// A `callback_op` sub-op (`CALLBACKOP_*`).
    pub enum CallbackOp: u32 {
        /// Register a callback; `arg` points at a [`CallbackRegister`].
        Register = 0 => "CALLBACKOP_register",
        /// Unregister a callback; `arg` points at a [`CallbackUnregister`].
        /// Not every type can be unregistered (`-EINVAL`).
        Unregister = 1 => "CALLBACKOP_unregister",
    }
}

/// [`CallbackRegister::flags`]: mask events on entry to the callback. Ignored
/// for event and NMI callbacks, which always mask events.
pub const CALLBACKF_MASK_EVENTS: u16 = 1 << 0;

/// Argument of `CALLBACKOP_register` (`callback_register`), 16 bytes. All
/// fields are IN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct CallbackRegister {
    /// A [`CallbackType`] number (Xen's field is named `type`).
    pub callback_type: u16,
    /// `CALLBACKF_*` flags.
    pub flags: u16,
    /// Padding; zero.
    pub pad: u32,
    /// Virtual address of the entry point.
    pub address: u64,
}

const _: () = assert!(size_of::<CallbackRegister>() == 16);
const _: () = assert!(offset_of!(CallbackRegister, flags) == 2);
const _: () = assert!(offset_of!(CallbackRegister, address) == 8);

impl CallbackRegister {
    /// Registration of `callback_type` at `address` with `flags`.
    pub const fn new(callback_type: CallbackType, flags: u16, address: u64) -> Self {
        Self {
            callback_type: callback_type as u16,
            flags,
            pad: 0,
            address,
        }
    }
}

/// Argument of `CALLBACKOP_unregister` (`callback_unregister`), 4 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct CallbackUnregister {
    /// IN: a [`CallbackType`] number.
    pub callback_type: u16,
    /// Unused; zero.
    pub unused: u16,
}

const _: () = assert!(size_of::<CallbackUnregister>() == 4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(CallbackType::Syscall.raw(), 2);
        assert_eq!(CallbackType::Syscall32.raw(), 7);
        assert_eq!(CallbackType::try_from(6), Err(crate::UnknownValue(6)));
        let registration = CallbackRegister::new(CallbackType::Event, 0, 0x1000);
        assert_eq!(registration.callback_type, 0);
        assert_eq!(registration.address, 0x1000);
    }
}
