//! Domain control (hypercall 36): project-defined operations on domains,
//! for the control domain's toolstack.
//!
//! Xen's own `domctl` payloads (`xen/include/public/domctl.h`) are an
//! internal interface between Xen and its toolstack that changes with every
//! release, so this project defines its own, in the same style as
//! [`crate::sysctl`]: a command number (Xen's where Xen has the operation),
//! an interface version, the target domain, and a fixed-size union of
//! payloads. A call whose `interface_version` is not
//! [`DOMCTL_INTERFACE_VERSION`] fails with `-EACCES`, as in Xen; a caller
//! without privilege gets `-EPERM`.
//!
//! | op                    | number | payload                       | what it does                                   |
//! |-----------------------|-------:|-------------------------------|------------------------------------------------|
//! | `CreateDomain`        | 1      | [`DomctlCreateDomain`]        | an empty, paused domain; OUT its ID in `domain` |
//! | `DestroyDomain`       | 2      | -                             | free a domain and all its memory               |
//! | `PauseDomain`         | 3      | -                             | stop scheduling its vCPU (counted)             |
//! | `UnpauseDomain`       | 4      | -                             | undo one pause                                 |
//! | `GetDomainInfo`       | 5      | [`crate::sysctl::DomainInfo`] | OUT: one domain's record                       |
//! | `MaxMem`              | 11     | [`DomctlMaxMem`]              | set its memory limit                           |
//! | `SetVcpuContext`      | 12     | [`DomctlVcpuContext`]         | initial registers and page-table root          |
//! | `SchedulerOp`         | 16     | [`DomctlSchedulerOp`]         | read or set its credit weight and cap          |
//!
//! Asking a guest to shut down is not a domctl: as in Xen, the toolstack
//! writes the request in the guest's `control/shutdown` node of the config
//! store, which the guest watches (`docs/xenstore.md`). Version 2 had a
//! project-only `RequestShutdown` (0x8001) that stood in for it through the
//! guest's NMI callback; version 4 removed it.

use bytemuck::{Pod, Zeroable};
use core::mem::{align_of, offset_of, size_of};

use crate::layout::DomainId;
use crate::sysctl::DomainInfo;
use crate::XenError;

/// Version of the project's domctl interface; see the module documentation.
/// Raised whenever an operation or a payload changes: 1 was the first
/// seven operations, 2 added `SchedulerOp`, 3 added
/// [`DomctlCreateDomain::max_grant_frames`], 4 removed `RequestShutdown`
/// (0x8001; shutdown requests travel through the config store now).
pub const DOMCTL_INTERFACE_VERSION: u32 = 4;

/// Size of [`DomctlPayload`].
pub const DOMCTL_PAYLOAD_SIZE: usize = 128;

abi_enum! {
    /// A domctl command, in [`Domctl::cmd`].
    pub enum DomctlOp: u32 {
        /// Create an empty, paused domain. Xen's number.
        CreateDomain = 1 => "XEN_DOMCTL_createdomain",
        /// Destroy a domain and free its memory. Xen's number.
        DestroyDomain = 2 => "XEN_DOMCTL_destroydomain",
        /// Pause a domain. Xen's number.
        PauseDomain = 3 => "XEN_DOMCTL_pausedomain",
        /// Unpause a domain. Xen's number.
        UnpauseDomain = 4 => "XEN_DOMCTL_unpausedomain",
        /// Describe one domain. Xen's number.
        GetDomainInfo = 5 => "XEN_DOMCTL_getdomaininfo",
        /// Set a domain's memory limit. Xen's number.
        MaxMem = 11 => "XEN_DOMCTL_max_mem",
        /// Set a vCPU's initial context. Xen's number.
        SetVcpuContext = 12 => "XEN_DOMCTL_setvcpucontext",
        /// Read or set the domain's scheduling parameters. Xen's number.
        SchedulerOp = 16 => "XEN_DOMCTL_scheduler_op",
    }
}

/// Payload of `CreateDomain`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct DomctlCreateDomain {
    /// IN: the most pages the domain may own.
    pub max_pages: u64,
    /// IN: the most grant-table frames the domain may have (xl.cfg's
    /// `max_grant_frames`, Xen's field of the same name); 0 takes the
    /// hypervisor's `gnttab_max_frames`, more than that is `-EINVAL`.
    pub max_grant_frames: u32,
    /// Padding.
    pub pad: u32,
}

/// Payload of `MaxMem`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct DomctlMaxMem {
    /// IN: the limit in KiB, as in Xen.
    pub max_memkb: u64,
}

/// Payload of `SetVcpuContext`: what a PV kernel needs at its entry point
/// (Xen's `vcpu_guest_context` trimmed to what a 64-bit PV guest's start
/// of day uses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct DomctlVcpuContext {
    /// IN: the entry point.
    pub rip: u64,
    /// IN: the initial stack pointer.
    pub rsp: u64,
    /// IN: `rsi` at entry: the guest-virtual address of start_info.
    pub rsi: u64,
    /// IN: the MFN of the L4 page table; the hypervisor validates the whole
    /// tree, pins it, and makes it the kernel's base.
    pub kernel_root: u64,
}

/// `DomctlSchedulerOp::command`: read the parameters.
pub const SCHEDULER_GET: u32 = 0;
/// `DomctlSchedulerOp::command`: set the parameters.
pub const SCHEDULER_PUT: u32 = 1;

/// Payload of `SchedulerOp`: the credit scheduler's parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct DomctlSchedulerOp {
    /// IN: [`SCHEDULER_GET`] or [`SCHEDULER_PUT`].
    pub command: u32,
    /// IN (put) / OUT (get): weight, 1..=65535 (default 256).
    pub weight: u32,
    /// IN (put) / OUT (get): cap in percent of one CPU, 0 = none, up to 100.
    pub cap: u32,
    /// Padding; zero.
    pub pad: u32,
}

const _: () = assert!(size_of::<DomctlCreateDomain>() == 16);
const _: () = assert!(size_of::<DomctlMaxMem>() == 8);
const _: () = assert!(size_of::<DomctlVcpuContext>() == 32);
const _: () = assert!(size_of::<DomctlSchedulerOp>() == 16);
const _: () = assert!(size_of::<DomainInfo>() <= DOMCTL_PAYLOAD_SIZE);

/// The operation-specific part of a [`Domctl`]: a C union of plain-integer
/// structures, 128 bytes, so any bit pattern is valid for every member.
#[derive(Clone, Copy)]
#[repr(C)]
pub union DomctlPayload {
    /// `CreateDomain`.
    pub create: DomctlCreateDomain,
    /// `GetDomainInfo`.
    pub info: DomainInfo,
    /// `MaxMem`.
    pub max_mem: DomctlMaxMem,
    /// `SetVcpuContext`.
    pub context: DomctlVcpuContext,
    /// `SchedulerOp`.
    pub scheduler: DomctlSchedulerOp,
    /// The payload as bytes; fixes the union's size.
    pub raw: [u8; DOMCTL_PAYLOAD_SIZE],
}

const _: () = assert!(size_of::<DomctlPayload>() == DOMCTL_PAYLOAD_SIZE);

// bytemuck derives `Pod` for structs only: for a union it cannot see that
// every member is plain data and that one member (`raw`) covers every byte,
// which is what makes any bit pattern valid for every member. Both are
// checked here, at compile time: each member must be `Pod` (the function
// below does not compile otherwise) and `raw` is the union's whole size
// (the assertion above).
const _: () = {
    const fn pod<T: Pod>() {}
    pod::<DomctlCreateDomain>();
    pod::<DomainInfo>();
    pod::<DomctlMaxMem>();
    pod::<DomctlVcpuContext>();
    pod::<DomctlSchedulerOp>();
};
// The only `unsafe` of this module: bytemuck cannot derive these for a
// union (see above), and every member is read through them, safely.
// SAFETY: the zero bit pattern is valid for every member (all are Pod).
#[allow(unsafe_code)]
unsafe impl Zeroable for DomctlPayload {}
// SAFETY: repr(C), Copy, every member is Pod and `raw` covers all bytes
// (checked just above), so the union has no padding and any bit pattern
// is a valid value of every member.
#[allow(unsafe_code)]
unsafe impl Pod for DomctlPayload {}

impl DomctlPayload {
    /// The payload viewed as member `T`: a plain reinterpretation of its
    /// bytes, sound without `unsafe` because the payload and every member
    /// are `Pod`. Whether `T` fits, in size and alignment, is checked at
    /// compile time for each member used.
    fn member<T: Pod>(&self) -> &T {
        const {
            assert!(
                size_of::<T>() <= DOMCTL_PAYLOAD_SIZE
                    && align_of::<T>() <= align_of::<DomctlPayload>()
            )
        };
        bytemuck::from_bytes(&bytemuck::bytes_of(self)[..size_of::<T>()])
    }
}

impl core::fmt::Debug for DomctlPayload {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let raw = bytemuck::bytes_of(self);
        formatter
            .debug_struct("DomctlPayload")
            .field("raw", &raw)
            .finish()
    }
}

/// A domctl request, 144 bytes, passed by guest-virtual address in `rdi`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct Domctl {
    /// IN: a [`DomctlOp`] number.
    pub cmd: u32,
    /// IN: must be [`DOMCTL_INTERFACE_VERSION`].
    pub interface_version: u32,
    /// IN: the target domain (OUT for `CreateDomain`: the new ID).
    pub domain: DomainId,
    /// Padding; zero.
    pub pad: [u16; 3],
    /// IN/OUT: the operation's payload.
    pub u: DomctlPayload,
}

const _: () = assert!(size_of::<Domctl>() == 144);
const _: () = assert!(offset_of!(Domctl, domain) == 8);
const _: () = assert!(offset_of!(Domctl, u) == 16);

impl Domctl {
    /// A request for `op` on `domain` with a zero payload.
    pub const fn new(op: DomctlOp, domain: DomainId) -> Self {
        Self {
            cmd: op as u32,
            interface_version: DOMCTL_INTERFACE_VERSION,
            domain,
            pad: [0; 3],
            u: DomctlPayload {
                raw: [0; DOMCTL_PAYLOAD_SIZE],
            },
        }
    }

    /// Checks the version and the command.
    pub fn validate(&self) -> Result<DomctlOp, XenError> {
        if self.interface_version != DOMCTL_INTERFACE_VERSION {
            return Err(XenError::EACCES);
        }
        DomctlOp::try_from(self.cmd).map_err(|_| XenError::ENOSYS)
    }

    /// The `CreateDomain` payload.
    pub fn create(&self) -> DomctlCreateDomain {
        *self.u.member()
    }

    /// The `MaxMem` payload.
    pub fn max_mem(&self) -> DomctlMaxMem {
        *self.u.member()
    }

    /// The `SetVcpuContext` payload.
    pub fn context(&self) -> DomctlVcpuContext {
        *self.u.member()
    }

    /// The `SchedulerOp` payload.
    pub fn scheduler(&self) -> DomctlSchedulerOp {
        *self.u.member()
    }

    /// The `GetDomainInfo` payload.
    pub fn info(&self) -> DomainInfo {
        *self.u.member()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_xen_where_xen_has_them() {
        assert_eq!(DomctlOp::CreateDomain.raw(), 1);
        assert_eq!(DomctlOp::SetVcpuContext.raw(), 12);
        // The stand-in for shutdown requests (version 2) is gone.
        assert!(DomctlOp::try_from(0x8001).is_err());
    }

    #[test]
    fn validation_checks_version_then_command() {
        let mut request = Domctl::new(DomctlOp::PauseDomain, 3);
        assert_eq!(request.validate(), Ok(DomctlOp::PauseDomain));
        request.cmd = 77;
        assert_eq!(request.validate(), Err(XenError::ENOSYS));
        request.interface_version = 0;
        assert_eq!(request.validate(), Err(XenError::EACCES));
    }

    #[test]
    fn payloads_round_trip() {
        let mut request = Domctl::new(DomctlOp::SetVcpuContext, 1);
        request.u.context = DomctlVcpuContext {
            rip: 1,
            rsp: 2,
            rsi: 3,
            kernel_root: 4,
        };
        assert_eq!(request.context().kernel_root, 4);
    }
}
