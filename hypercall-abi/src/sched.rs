//! `sched_op` sub-ops, shutdown reasons and argument structures (`sched.h`).
//!
//! `sched_op(cmd, arg)`: `cmd` in `rdi` is a [`SchedOp`], `arg` in `rsi`
//! points at the structure the sub-op names (or is 0).

use bytemuck::{Pod, Zeroable};
use core::mem::{offset_of, size_of};

use crate::layout::DomainId;

abi_enum! {
    /// A `sched_op` sub-op (`SCHEDOP_*`).
    pub enum SchedOp: u32 {
        /// Give up the CPU voluntarily; the vCPU stays runnable. `arg` is 0.
        Yield = 0 => "SCHEDOP_yield",
        /// Sleep until an event arrives. If events are masked, Xen unmasks
        /// them and checks for pending ones atomically before blocking, so a
        /// wakeup cannot be lost. `arg` is 0.
        Block = 1 => "SCHEDOP_block",
        /// Stop the whole domain and tell the toolstack why. `arg` points at a
        /// [`SchedShutdown`]. For `SHUTDOWN_suspend`, `rdx` holds the MFN of
        /// the start-info page.
        Shutdown = 2 => "SCHEDOP_shutdown",
        /// Block until one of a set of event channels is pending or a timeout
        /// passes. `arg` points at a [`SchedPoll`].
        Poll = 3 => "SCHEDOP_poll",
        /// Shut down another domain (privileged). `arg` points at a
        /// [`SchedRemoteShutdown`].
        RemoteShutdown = 4 => "SCHEDOP_remote_shutdown",
        /// Record a shutdown reason to report later, without shutting down.
        /// `arg` points at a [`SchedShutdown`].
        ShutdownCode = 5 => "SCHEDOP_shutdown_code",
        /// Set up, poke or destroy a domain watchdog.
        Watchdog = 6 => "SCHEDOP_watchdog",
        /// Pin the vCPU to one physical CPU temporarily (hardware domain only).
        PinOverride = 7 => "SCHEDOP_pin_override",
    }
}

abi_enum! {
    /// Why a domain shut down (`SHUTDOWN_*`), as reported to the toolstack.
    pub enum ShutdownReason: u32 {
        /// Exited normally: clean up and destroy the domain.
        Poweroff = 0 => "SHUTDOWN_poweroff",
        /// Clean up, destroy and start the domain again.
        Reboot = 1 => "SHUTDOWN_reboot",
        /// Clean up and save its state for a later resume.
        Suspend = 2 => "SHUTDOWN_suspend",
        /// The guest crashed.
        Crash = 3 => "SHUTDOWN_crash",
        /// The domain watchdog expired.
        Watchdog = 4 => "SHUTDOWN_watchdog",
        /// Reset Xen's state for the domain back to just after creation.
        SoftReset = 5 => "SHUTDOWN_soft_reset",
    }
}

/// Argument of `SCHEDOP_shutdown` and `SCHEDOP_shutdown_code` (`sched_shutdown`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SchedShutdown {
    /// IN: a [`ShutdownReason`] number.
    pub reason: u32,
}

const _: () = assert!(size_of::<SchedShutdown>() == 4);

/// Argument of `SCHEDOP_poll` (`sched_poll`), 24 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SchedPoll {
    /// IN: guest virtual address of an array of `u32` event-channel ports.
    pub ports: u64,
    /// IN: number of ports in the array.
    pub nr_ports: u32,
    /// Padding; zero.
    pub pad: u32,
    /// IN: absolute system time (ns) at which to give up; 0 = never.
    pub timeout: u64,
}

const _: () = assert!(size_of::<SchedPoll>() == 24);
const _: () = assert!(offset_of!(SchedPoll, nr_ports) == 8);
const _: () = assert!(offset_of!(SchedPoll, timeout) == 16);

/// Argument of `SCHEDOP_remote_shutdown` (`sched_remote_shutdown`), 8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SchedRemoteShutdown {
    /// IN: the domain to shut down.
    pub domain_id: DomainId,
    /// Padding; zero.
    pub pad: u16,
    /// IN: a [`ShutdownReason`] number.
    pub reason: u32,
}

const _: () = assert!(size_of::<SchedRemoteShutdown>() == 8);
const _: () = assert!(offset_of!(SchedRemoteShutdown, reason) == 4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
        assert_eq!(SchedOp::Shutdown.raw(), 2);
        assert_eq!(SchedOp::try_from(3), Ok(SchedOp::Poll));
        assert_eq!(SchedOp::from_register(1 << 40), None);
        assert_eq!(ShutdownReason::Crash.raw(), 3);
        assert_eq!(ShutdownReason::Poweroff.name(), "SHUTDOWN_poweroff");
        for &reason in ShutdownReason::ALL {
            assert_eq!(ShutdownReason::try_from(reason.raw()), Ok(reason));
        }
    }
}
