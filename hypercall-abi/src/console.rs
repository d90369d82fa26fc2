//! `console_io` sub-ops and the domU console ring page (`xen.h`, `io/console.h`).
//!
//! `console_io(cmd, count, buffer)`: `cmd` in `rdi` is a [`ConsoleIoOp`],
//! `count` in `rsi` is a byte count and `buffer` in `rdx` a guest virtual
//! address. This is Xen's emergency console, written straight to the
//! hypervisor's log; ordinary guests use the shared ring page described by
//! [`ConsoleInterface`] instead.

use core::mem::{offset_of, size_of};

abi_enum! {
    /// A `console_io` sub-op (`CONSOLEIO_*`).
    pub enum ConsoleIoOp: u32 {
        /// Write `count` bytes from `buffer` to the hypervisor console. The
        /// hardware domain's bytes are printed as they are; other domains'
        /// non-printable bytes are dropped and lines may be buffered until a
        /// newline. Returns 0.
        Write = 0 => "CONSOLEIO_write",
        /// Read up to `count` bytes of console input into `buffer`. Returns
        /// the number of bytes read.
        Read = 1 => "CONSOLEIO_read",
    }
}

/// Size of the input ring (backend to guest) in [`ConsoleInterface`].
pub const CONSOLE_IN_RING_SIZE: usize = 1024;
/// Size of the output ring (guest to backend) in [`ConsoleInterface`].
pub const CONSOLE_OUT_RING_SIZE: usize = 2048;
/// [`ConsoleInterface::connection`]: the backend is servicing the ring.
/// Also what a freshly cleared page says, as in Xen.
pub const XENCONSOLE_CONNECTED: u8 = 0;
/// [`ConsoleInterface::connection`]: the backend has let go of the ring
/// (Dom0 writes it when it disconnects, before the domain is destroyed).
pub const XENCONSOLE_DISCONNECTED: u8 = 1;

/// The console ring page shared by a guest and its console backend
/// (`xencons_interface`).
///
/// Both rings use free-running `u32` indices: the producer writes at
/// `prod % size` then advances `prod`; the consumer reads at `cons % size`
/// then advances `cons`; `prod - cons` (wrapping) is the number of unread
/// bytes. The guest produces into `out` and consumes from `in`, and
/// signals the backend through the event channel in `start_info`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct ConsoleInterface {
    /// Input ring (Xen's `in`): bytes from the backend to the guest.
    pub input: [u8; CONSOLE_IN_RING_SIZE],
    /// Output ring (Xen's `out`): bytes from the guest to the backend.
    pub output: [u8; CONSOLE_OUT_RING_SIZE],
    /// Guest's consumer index into `input`.
    pub in_cons: u32,
    /// Backend's producer index into `input`.
    pub in_prod: u32,
    /// Backend's consumer index into `output`.
    pub out_cons: u32,
    /// Guest's producer index into `output`.
    pub out_prod: u32,
    /// Written by the backend: [`XENCONSOLE_CONNECTED`] or
    /// [`XENCONSOLE_DISCONNECTED`].
    pub connection: u8,
    /// Padding; zero.
    pub pad: [u8; 3],
}

const _: () = assert!(offset_of!(ConsoleInterface, output) == 1024);
const _: () = assert!(offset_of!(ConsoleInterface, in_cons) == 3072);
const _: () = assert!(offset_of!(ConsoleInterface, in_prod) == 3076);
const _: () = assert!(offset_of!(ConsoleInterface, out_cons) == 3080);
const _: () = assert!(offset_of!(ConsoleInterface, out_prod) == 3084);
const _: () = assert!(offset_of!(ConsoleInterface, connection) == 3088);
const _: () = assert!(size_of::<ConsoleInterface>() == 3092);

/// Position inside a ring of `ring_size` bytes (a power of two) for a
/// free-running index (`MASK_XENCONS_IDX`).
pub const fn ring_position(index: u32, ring_size: usize) -> usize {
    index as usize & (ring_size - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_positions_wrap() {
        assert_eq!(ring_position(2049, CONSOLE_OUT_RING_SIZE), 1);
        assert_eq!(ring_position(u32::MAX, CONSOLE_IN_RING_SIZE), 1023);
        assert_eq!(ConsoleIoOp::try_from(1), Ok(ConsoleIoOp::Read));
        assert!(ConsoleIoOp::try_from(2).is_err());
    }
}
