//! `vcpu_op` and `vm_assist`: what a PV kernel asks of its vCPUs at boot.
//!
//! Every domain has one vCPU (vCPU 0) until SMP arrives, so `vcpu_op` on
//! any other vCPU is `-ENOENT`, Xen's answer for a vCPU the domain does not
//! have. For vCPU 0 the answers are Xen's for an initialised vCPU that is
//! up: `initialise` is `-EEXIST` (the domain builder set its context),
//! `up` succeeds with nothing to do, `is_up` is 1, and `down` of the last
//! vCPU that is up powers the domain off, as Xen does.
//!
//! Timers: the single-shot timer is the one `set_timer_op` arms (Xen's
//! `singleshot_timer` serves both). No periodic timer is ever started for
//! a vCPU here, so `stop_periodic_timer` has nothing to stop and succeeds;
//! `set_periodic_timer` is not offered (`-ENOSYS`).
//!
//! Runstate: `get_runstate_info` copies the scheduler's record out;
//! `register_runstate_memory_area` names a guest address the hypervisor
//! refreshes at each switch to the vCPU (`sched::write_runstate_area`),
//! through a checked walk at the moment of the write.
//!
//! `vcpu_info`: `register_vcpu_info` moves the vCPU's `vcpu_info` out of
//! the shared info page to a frame and offset of the guest's choosing (a
//! machine frame: this is a PV guest). From then on the hypervisor writes
//! that place whenever it likes (events, the upcall mask, `cr2`, the time),
//! so, as Xen's `map_vcpu_info`, it takes a general and a writable type
//! reference on the frame for the vCPU's life (frame-table invariant 6,
//! `mm::shared_page::VcpuInfoFrame`): the guest can no longer make it a page
//! table. Xen's refusals, all `-EINVAL`: a second registration, an offset
//! where the 64 bytes do not fit (or, here as in newer Xen, are not 8-byte
//! aligned), a frame that is not the caller's, and one that cannot be a
//! writable page. The hold ends when the domain is destroyed.

use crate::console::{caller_log, guest_log};
use crate::domain::on_current;
use crate::domain::{self, Domain};
use crate::mm::guest_access;
use crate::mm::shared_page::VcpuInfoFrame;
use hypercall_abi::mmu::{
    VMASST_CMD_DISABLE, VMASST_CMD_ENABLE, VMASST_TYPE_4GB_SEGMENTS,
    VMASST_TYPE_4GB_SEGMENTS_NOTIFY, VMASST_TYPE_ARCHITECTURAL_IOPL, VMASST_TYPE_M2P_STRICT,
    VMASST_TYPE_PAE_EXTENDED_CR3, VMASST_TYPE_RUNSTATE_UPDATE_FLAG,
    VMASST_TYPE_WRITABLE_PAGETABLES,
};
use hypercall_abi::sched::ShutdownReason;
use hypercall_abi::vcpu::{
    VcpuOp, VcpuRegisterVcpuInfo, VcpuRunstateInfo, VcpuSetSingleshotTimer, VCPU_SSHOTTMR_FUTURE,
};
use hypercall_abi::XenError;

/// `vcpu_op(cmd, vcpuid, arg)`.
pub fn vcpu_op(command: u64, vcpu: u64, argument: u64) -> Result<u64, XenError> {
    let Some(operation) = VcpuOp::from_register(command) else {
        caller_log!(Warn, "unknown vcpu_op {command}: -ENOSYS");
        return Err(XenError::ENOSYS);
    };
    if vcpu != 0 {
        caller_log!(
            Debug,
            "{} on vCPU {vcpu}: a domain has only vCPU 0 until SMP: -ENOENT",
            operation.name()
        );
        return Err(XenError::ENOENT);
    }
    match operation {
        VcpuOp::Initialise => {
            caller_log!(
                Debug,
                "VCPUOP_initialise on vCPU 0, which the domain builder initialised: -EEXIST"
            );
            Err(XenError::EEXIST)
        }
        // vCPU 0 is initialised and up: nothing to wake.
        VcpuOp::Up => Ok(0),
        VcpuOp::Down => {
            // The last vCPU going down: Xen powers the domain off.
            domain::shutdown_current(ShutdownReason::Poweroff);
            Ok(0)
        }
        VcpuOp::IsUp => Ok(1),
        VcpuOp::GetRunstateInfo => {
            let now = crate::time::system_time_ns();
            let info = domain::with_current(|domain| domain.vcpu.runstate.snapshot(now))
                .ok_or(XenError::ESRCH)?;
            guest_access::write_to_guest(argument, &info)?;
            Ok(0)
        }
        VcpuOp::RegisterRunstateMemoryArea => {
            // struct vcpu_register_runstate_memory_area: one guest address.
            let area: u64 = guest_access::read_from_guest(argument)?;
            if area != 0 {
                guest_access::check_range(area, core::mem::size_of::<VcpuRunstateInfo>() as u64)?;
            }
            on_current(|domain| {
                domain.vcpu.runstate_area = area;
                // As Xen, the area is filled at once; a page the guest has
                // not mapped writable is left alone, and the call succeeds.
                crate::sched::write_runstate_area(domain);
                Ok(0)
            })
        }
        VcpuOp::SetSingleshotTimer => {
            let request: VcpuSetSingleshotTimer = guest_access::read_from_guest(argument)?;
            let now = crate::time::system_time_ns();
            if request.flags & VCPU_SSHOTTMR_FUTURE != 0 && request.timeout_abs_ns < now {
                return Err(XenError::ETIME);
            }
            on_current(|domain| {
                // 0 means "not armed" here; a deadline of 0 is long past.
                domain.timer_deadline = request.timeout_abs_ns.max(1);
                crate::time::arm_timer_no_later_than(crate::time::tsc_at_system_time(
                    domain.timer_deadline,
                ));
                Ok(0)
            })
        }
        VcpuOp::StopSingleshotTimer => on_current(|domain| {
            domain.timer_deadline = 0;
            Ok(0)
        }),
        // No periodic timer runs for any vCPU here: nothing to stop.
        VcpuOp::StopPeriodicTimer => Ok(0),
        VcpuOp::RegisterVcpuInfo => {
            let request: VcpuRegisterVcpuInfo = guest_access::read_from_guest(argument)?;
            on_current(|domain| register_vcpu_info(domain, &request))
        }
        other => {
            caller_log!(Warn, "vcpu_op {} is not implemented: -ENOSYS", other.name());
            Err(XenError::ENOSYS)
        }
    }
}

/// `VCPUOP_register_vcpu_info` for vCPU 0 of `domain`, the caller: holds
/// the frame, moves the `vcpu_info` there, and publishes the time in the
/// new place at once (Xen's `force_update_vcpu_system_time`).
fn register_vcpu_info(
    domain: &mut Domain,
    request: &VcpuRegisterVcpuInfo,
) -> Result<u64, XenError> {
    if domain.vcpu.vcpu_info_frame.is_some() {
        guest_log!(
            domain,
            Debug,
            "VCPUOP_register_vcpu_info: vCPU 0 already moved its vcpu_info: -EINVAL"
        );
        return Err(XenError::EINVAL);
    }
    let registered = VcpuInfoFrame::register(
        domain.id,
        request.mfn,
        u64::from(request.offset),
        domain.vcpu_info(),
    )
    .map_err(|(error, reason)| {
        guest_log!(
            domain,
            Debug,
            "VCPUOP_register_vcpu_info: frame {:#x} offset {:#x}: {reason}: {}",
            request.mfn,
            request.offset,
            error.name()
        );
        error
    })?;
    domain::move_vcpu_info(domain, registered);
    crate::time::publish_vcpu_time(domain.vcpu_info());
    Ok(0)
}

/// Whether a `vm_assist` type may be turned on by a 64-bit PV guest here.
/// Xen 4.17 offers a 64-bit PV guest seven; of those, this hypervisor
/// accepts the ones it honours: the three that only change 32-bit code
/// (4 GB segments, its notification, PAE extended CR3: nothing to do for a
/// 64-bit guest, in Xen too), the runstate update flag, and architectural
/// IOPL (the guest kernel counts as CPL 0 for its virtual IOPL, which its
/// `iret` frames set and its bounce frames show: `traps::io_ports`). The
/// other two would be promises it cannot keep yet, so they are refused with
/// a reason.
fn vm_assist_refusal(kind: u64) -> Option<&'static str> {
    match kind {
        VMASST_TYPE_4GB_SEGMENTS
        | VMASST_TYPE_4GB_SEGMENTS_NOTIFY
        | VMASST_TYPE_PAE_EXTENDED_CR3
        | VMASST_TYPE_RUNSTATE_UPDATE_FLAG
        | VMASST_TYPE_ARCHITECTURAL_IOPL => None,
        VMASST_TYPE_WRITABLE_PAGETABLES => {
            Some("writable page tables need page-table writes emulated, which is not offered yet")
        }
        VMASST_TYPE_M2P_STRICT => {
            Some("a strict M2P (kept out of guest user page tables) is not offered yet")
        }
        _ => Some("Xen offers no such assist to a 64-bit PV guest"),
    }
}

/// `vm_assist(cmd, type)`.
pub fn vm_assist(domain: &mut Domain, command: u64, kind: u64) -> Result<u64, XenError> {
    if let Some(reason) = vm_assist_refusal(kind) {
        guest_log!(domain, Debug, "vm_assist type {kind}: {reason}: -EINVAL");
        return Err(XenError::EINVAL);
    }
    match command {
        VMASST_CMD_ENABLE => domain.vm_assist |= 1 << kind,
        VMASST_CMD_DISABLE => domain.vm_assist &= !(1 << kind),
        _ => {
            guest_log!(domain, Debug, "vm_assist command {command}: -ENOSYS");
            return Err(XenError::ENOSYS);
        }
    }
    Ok(0)
}
