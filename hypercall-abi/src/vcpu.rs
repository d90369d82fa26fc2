//! `vcpu_op` sub-ops and argument structures (`vcpu.h`).
//!
//! `vcpu_op(cmd, vcpuid, arg)`: `cmd` in `rdi` is a [`VcpuOp`], `vcpuid` in
//! `rsi` the target vCPU of the calling domain, `arg` in `rdx` points at the
//! structure named below (or is 0).

use bytemuck::{Pod, Zeroable};
use core::mem::{offset_of, size_of};

abi_enum! {
    /// A `vcpu_op` sub-op (`VCPUOP_*`).
    pub enum VcpuOp: u32 {
        /// Set the initial register state of a down vCPU; `arg` is a
        /// `vcpu_guest_context`.
        Initialise = 0 => "VCPUOP_initialise",
        /// Start an initialised vCPU.
        Up = 1 => "VCPUOP_up",
        /// Stop a vCPU.
        Down = 2 => "VCPUOP_down",
        /// Returns 1 if the vCPU is up, 0 if down.
        IsUp = 3 => "VCPUOP_is_up",
        /// Fill a [`VcpuRunstateInfo`] for the vCPU.
        GetRunstateInfo = 4 => "VCPUOP_get_runstate_info",
        /// Register a guest address Xen keeps updated with the vCPU's
        /// [`VcpuRunstateInfo`].
        RegisterRunstateMemoryArea = 5 => "VCPUOP_register_runstate_memory_area",
        /// Start a periodic timer; [`VcpuSetPeriodicTimer`].
        SetPeriodicTimer = 6 => "VCPUOP_set_periodic_timer",
        /// Stop the periodic timer.
        StopPeriodicTimer = 7 => "VCPUOP_stop_periodic_timer",
        /// Arm the single-shot timer; [`VcpuSetSingleshotTimer`].
        SetSingleshotTimer = 8 => "VCPUOP_set_singleshot_timer",
        /// Disarm the single-shot timer.
        StopSingleshotTimer = 9 => "VCPUOP_stop_singleshot_timer",
        /// Move the vCPU's `vcpu_info` out of the shared-info page;
        /// [`VcpuRegisterVcpuInfo`].
        RegisterVcpuInfo = 10 => "VCPUOP_register_vcpu_info",
        /// Send an NMI to the vCPU.
        SendNmi = 11 => "VCPUOP_send_nmi",
        /// Get the physical CPU ID the vCPU runs on (hardware domain).
        GetPhysid = 12 => "VCPUOP_get_physid",
        /// Register a guest address for a second copy of the time info.
        RegisterVcpuTimeMemoryArea = 13 => "VCPUOP_register_vcpu_time_memory_area",
        /// Physical-address form of `register_runstate_memory_area`.
        RegisterRunstatePhysArea = 14 => "VCPUOP_register_runstate_phys_area",
        /// Physical-address form of `register_vcpu_time_memory_area`.
        RegisterVcpuTimePhysArea = 15 => "VCPUOP_register_vcpu_time_phys_area",
    }
}

/// [`VcpuRunstateInfo::state`]: running on a physical CPU.
pub const RUNSTATE_RUNNING: i32 = 0;
/// [`VcpuRunstateInfo::state`]: ready to run, waiting for a physical CPU.
pub const RUNSTATE_RUNNABLE: i32 = 1;
/// [`VcpuRunstateInfo::state`]: blocked, waiting for an event.
pub const RUNSTATE_BLOCKED: i32 = 2;
/// [`VcpuRunstateInfo::state`]: down or paused.
pub const RUNSTATE_OFFLINE: i32 = 3;
/// Bit set in `state_entry_time` while Xen updates the structure.
pub const XEN_RUNSTATE_UPDATE: u64 = 1 << 63;

/// Where a vCPU's time went (`vcpu_runstate_info`), 48 bytes. All fields OUT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct VcpuRunstateInfo {
    /// Current state (`RUNSTATE_*`).
    pub state: i32,
    /// Padding; zero.
    pub pad: u32,
    /// System time (ns) when the current state was entered.
    pub state_entry_time: u64,
    /// Nanoseconds spent in each `RUNSTATE_*`, indexed by state.
    pub time: [u64; 4],
}

const _: () = assert!(size_of::<VcpuRunstateInfo>() == 48);
const _: () = assert!(offset_of!(VcpuRunstateInfo, state_entry_time) == 8);
const _: () = assert!(offset_of!(VcpuRunstateInfo, time) == 16);

/// `VCPUOP_set_periodic_timer` (`vcpu_set_periodic_timer`), 8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct VcpuSetPeriodicTimer {
    /// IN: period in nanoseconds (at least about a millisecond).
    pub period_ns: u64,
}

const _: () = assert!(size_of::<VcpuSetPeriodicTimer>() == 8);

/// [`VcpuSetSingleshotTimer::flags`]: fail with `-ETIME` if the timeout is
/// already in the past (Xen may ignore this).
pub const VCPU_SSHOTTMR_FUTURE: u32 = 1 << 0;

/// `VCPUOP_set_singleshot_timer` (`vcpu_set_singleshot_timer`), 16 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct VcpuSetSingleshotTimer {
    /// IN: absolute system time (ns) at which `VIRQ_TIMER` fires.
    pub timeout_abs_ns: u64,
    /// IN: `VCPU_SSHOTTMR_*` flags.
    pub flags: u32,
    /// Padding; zero.
    pub pad: u32,
}

const _: () = assert!(size_of::<VcpuSetSingleshotTimer>() == 16);
const _: () = assert!(offset_of!(VcpuSetSingleshotTimer, flags) == 8);

/// `VCPUOP_register_vcpu_info` (`vcpu_register_vcpu_info`), 16 bytes.
///
/// The `vcpu_info` must not cross a page boundary; this may be done once
/// per vCPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct VcpuRegisterVcpuInfo {
    /// IN: frame of the page that will hold the `vcpu_info`.
    pub mfn: u64,
    /// IN: byte offset of the `vcpu_info` in that page.
    pub offset: u32,
    /// Reserved; zero.
    pub rsvd: u32,
}

const _: () = assert!(size_of::<VcpuRegisterVcpuInfo>() == 16);
const _: () = assert!(offset_of!(VcpuRegisterVcpuInfo, offset) == 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(VcpuOp::RegisterRunstateMemoryArea.raw(), 5);
        assert_eq!(VcpuOp::StopPeriodicTimer.raw(), 7);
        assert_eq!(VcpuOp::SetSingleshotTimer.raw(), 8);
        assert_eq!(VcpuOp::RegisterVcpuInfo.raw(), 10);
        for &op in VcpuOp::ALL {
            assert_eq!(VcpuOp::try_from(op.raw()), Ok(op));
        }
    }
}
