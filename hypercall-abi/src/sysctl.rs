//! System control (hypercall 35): PROJECT-DEFINED operations for the control domain.
//!
//! Xen's own `sysctl` payloads (`xen/include/public/sysctl.h`) are an
//! internal interface between Xen and its toolstack that changes with every
//! release. This module defines this project's own, under the same
//! hypercall number and in the same shape: the caller passes (in `rdi`) the
//! guest virtual address of a [`Sysctl`], which holds a command, an
//! interface version and a 128-byte union of payloads. Where Xen has an
//! operation of the same purpose, its command number is kept; the payload
//! layouts are ours.
//!
//! A [`Sysctl`] whose `interface_version` is not
//! [`SYSCTL_INTERFACE_VERSION`] is refused with `-EACCES`, as Xen does, so
//! tools built against another version fail loudly instead of misreading
//! memory. Only a privileged domain (`SIF_PRIVILEGED`) may make sysctls;
//! others get `-EPERM`.

use bytemuck::{Pod, Zeroable};
use core::mem::{align_of, offset_of, size_of};

use crate::layout::DomainId;
use crate::XenError;

/// Version of this project's sysctl interface (2: `Physinfo` reports the
/// hypervisor's heap).
pub const SYSCTL_INTERFACE_VERSION: u32 = 2;

/// Size of [`SysctlPayload`]: every operation's structure fits in it.
pub const SYSCTL_PAYLOAD_SIZE: usize = 128;

abi_enum! {
    /// A sysctl command, in [`Sysctl::cmd`].
    pub enum SysctlOp: u32 {
        /// Copy bytes of the hypervisor's log ring into a guest buffer;
        /// [`SysctlReadconsole`]. Xen's number.
        Readconsole = 1 => "XEN_SYSCTL_readconsole",
        /// Describe the physical machine; [`SysctlPhysinfo`]. Xen's number.
        Physinfo = 3 => "XEN_SYSCTL_physinfo",
        /// List domains; [`SysctlGetdomaininfolist`]. Xen's number.
        Getdomaininfolist = 6 => "XEN_SYSCTL_getdomaininfolist",
        /// Project-only. Point `LSTAR` at an empty syscall handler until the
        /// next sysctl, so the guest can time a bare `syscall`/`sysretq`
        /// round trip; privileged only. [`SysctlBenchSyscallFloor`].
        BenchSyscallFloor = 0x8001 => "SYSCTL_bench_syscall_floor",
        /// Project-only: the hypervisor times, in ring 0, the native
        /// operations that PV page-table hypercalls replace (a PTE write plus
        /// `invlpg`; a CR3 write), for the benchmark's ratios; privileged
        /// only. [`SysctlBenchNative`].
        BenchNative = 0x8002 => "SYSCTL_bench_native",
        /// Project-only: the longest a hypercall has run (interrupts off) on
        /// this CPU, in TSC cycles, and optionally start measuring afresh;
        /// privileged only. [`SysctlLongestHypercall`].
        LongestHypercall = 0x8003 => "SYSCTL_longest_hypercall",
    }
}

/// Payload of `Readconsole`, 24 bytes.
///
/// Copies up to `count` bytes of the hypervisor's log ring into `buffer`.
/// The log is addressed by a running byte counter that starts at 0 at boot
/// and never wraps in practice; the ring holds the most recent bytes.
/// - Not incremental: copy from the oldest byte the ring still holds.
/// - Incremental: copy from byte `index` on (or from the oldest byte still
///   in the ring, if `index` has been overwritten), and set `index` to the
///   counter value where the next read should start.
///
/// On return `count` is the number of bytes copied. If `clear` is set, the
/// bytes up to the returned `index` are then forgotten: what this call
/// copied and anything older. (Xen empties the whole ring, losing what was
/// logged after the copy; here a reader that clears as it reads loses
/// nothing.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SysctlReadconsole {
    /// IN: non-zero to clear the ring after reading.
    pub clear: u8,
    /// IN: non-zero to read from `index` on (see above).
    pub incremental: u8,
    /// Padding; zero.
    pub pad0: u16,
    /// IN/OUT: running byte counter to start from; OUT: where to start next.
    pub index: u32,
    /// IN: guest virtual address of the destination buffer.
    pub buffer: u64,
    /// IN: size of the buffer. OUT: bytes copied.
    pub count: u32,
    /// Padding; zero.
    pub pad1: u32,
}

const _: () = assert!(size_of::<SysctlReadconsole>() == 24);
const _: () = assert!(offset_of!(SysctlReadconsole, incremental) == 1);
const _: () = assert!(offset_of!(SysctlReadconsole, index) == 4);
const _: () = assert!(offset_of!(SysctlReadconsole, buffer) == 8);
const _: () = assert!(offset_of!(SysctlReadconsole, count) == 16);

/// Payload of `Physinfo`, 56 bytes. All fields are OUT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SysctlPhysinfo {
    /// Number of physical CPUs the hypervisor runs on.
    pub nr_cpus: u32,
    /// CPU (TSC) frequency in kHz.
    pub cpu_khz: u32,
    /// Pages of RAM the hypervisor manages.
    pub total_pages: u64,
    /// Pages not allocated to any domain or to the hypervisor.
    pub free_pages: u64,
    /// Most domains that can exist at once.
    pub max_domains: u32,
    /// Domains that exist now (including dying ones).
    pub nr_domains: u32,
    /// Size of the hypervisor's heap in bytes (project-defined: Xen's
    /// xenheap is not a fixed pool on x86_64).
    pub heap_bytes: u64,
    /// Heap bytes not allocated now.
    pub heap_free_bytes: u64,
    /// Heap bytes that guest-sized allocations (grant tables, maptracks)
    /// must leave free for the hypervisor's own structures.
    pub heap_reserve_bytes: u64,
}

const _: () = assert!(size_of::<SysctlPhysinfo>() == 56);
const _: () = assert!(offset_of!(SysctlPhysinfo, cpu_khz) == 4);
const _: () = assert!(offset_of!(SysctlPhysinfo, total_pages) == 8);
const _: () = assert!(offset_of!(SysctlPhysinfo, free_pages) == 16);
const _: () = assert!(offset_of!(SysctlPhysinfo, max_domains) == 24);
const _: () = assert!(offset_of!(SysctlPhysinfo, nr_domains) == 28);
const _: () = assert!(offset_of!(SysctlPhysinfo, heap_bytes) == 32);
const _: () = assert!(offset_of!(SysctlPhysinfo, heap_free_bytes) == 40);
const _: () = assert!(offset_of!(SysctlPhysinfo, heap_reserve_bytes) == 48);

/// Payload of `Getdomaininfolist`, 24 bytes.
///
/// Fills `buffer` with up to `max_domains` [`DomainInfo`] records for
/// domains whose ID is at least `first_domain`, in ascending ID order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SysctlGetdomaininfolist {
    /// IN: lowest domain ID to report.
    pub first_domain: DomainId,
    /// Padding; zero.
    pub pad0: u16,
    /// IN: capacity of `buffer` in records.
    pub max_domains: u32,
    /// IN: guest virtual address of an array of [`DomainInfo`].
    pub buffer: u64,
    /// OUT: records written.
    pub num_domains: u32,
    /// Padding; zero.
    pub pad1: u32,
}

const _: () = assert!(size_of::<SysctlGetdomaininfolist>() == 24);
const _: () = assert!(offset_of!(SysctlGetdomaininfolist, max_domains) == 4);
const _: () = assert!(offset_of!(SysctlGetdomaininfolist, buffer) == 8);
const _: () = assert!(offset_of!(SysctlGetdomaininfolist, num_domains) == 16);

/// Payload of `BenchSyscallFloor` (project-only), 8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SysctlBenchSyscallFloor {
    /// IN: non-zero to install the empty handler, zero to restore the real one.
    pub enable: u32,
    /// Padding; zero.
    pub pad: u32,
}

const _: () = assert!(size_of::<SysctlBenchSyscallFloor>() == 8);

/// Payload of `BenchNative` (project-only), 40 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SysctlBenchNative {
    /// IN: iterations of each measurement (at most 100,000).
    pub iterations: u32,
    /// Padding; zero.
    pub pad: u32,
    /// OUT: median TSC cycles of one PTE write plus `invlpg` in ring 0.
    pub pte_write_cycles: u64,
    /// OUT: median TSC cycles of one CR3 write (same root) in ring 0.
    pub cr3_write_cycles: u64,
    /// OUT: the fastest PTE write plus `invlpg`.
    pub pte_write_min: u64,
    /// OUT: the fastest CR3 write.
    pub cr3_write_min: u64,
}

const _: () = assert!(size_of::<SysctlBenchNative>() == 40);
const _: () = assert!(offset_of!(SysctlBenchNative, pte_write_cycles) == 8);

/// Payload of `LongestHypercall` (project-only), 16 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SysctlLongestHypercall {
    /// IN: non-zero to start measuring afresh after this read.
    pub reset: u32,
    /// OUT: the number of the hypercall that ran longest.
    pub hypercall: u32,
    /// OUT: the most TSC cycles one hypercall ran, from its entry to its
    /// exit (a continuation ends one run), since boot or the last reset.
    pub cycles: u64,
}

const _: () = assert!(size_of::<SysctlLongestHypercall>() == 16);

/// The operation-specific part of a [`Sysctl`]: a C union, 128 bytes.
///
/// Every member is made of plain integers with explicit padding, and `raw`
/// covers all 128 bytes, so any bit pattern is a valid value of every member.
/// That is why the accessors on [`Sysctl`] can read members safely.
#[derive(Clone, Copy)]
#[repr(C)]
pub union SysctlPayload {
    /// Payload of `Readconsole`.
    pub readconsole: SysctlReadconsole,
    /// Payload of `Physinfo`.
    pub physinfo: SysctlPhysinfo,
    /// Payload of `Getdomaininfolist`.
    pub getdomaininfolist: SysctlGetdomaininfolist,
    /// Payload of `BenchSyscallFloor`.
    pub bench_syscall_floor: SysctlBenchSyscallFloor,
    /// Payload of `BenchNative`.
    pub bench_native: SysctlBenchNative,
    /// Payload of `LongestHypercall`.
    pub longest_hypercall: SysctlLongestHypercall,
    /// The payload as bytes; fixes the union's size.
    pub raw: [u8; SYSCTL_PAYLOAD_SIZE],
}

const _: () = assert!(size_of::<SysctlPayload>() == SYSCTL_PAYLOAD_SIZE);

// bytemuck derives `Pod` for structs only: for a union it cannot see that
// every member is plain data and that one member (`raw`) covers every byte,
// which is what makes any bit pattern valid for every member. Both are
// checked here, at compile time: each member must be `Pod` (the function
// below does not compile otherwise) and `raw` is the union's whole size
// (the assertion above).
const _: () = {
    const fn pod<T: Pod>() {}
    pod::<SysctlReadconsole>();
    pod::<SysctlPhysinfo>();
    pod::<SysctlGetdomaininfolist>();
    pod::<SysctlBenchSyscallFloor>();
    pod::<SysctlBenchNative>();
    pod::<SysctlLongestHypercall>();
};
// The only `unsafe` of this module: bytemuck cannot derive these for a
// union (see above), and every member is read through them, safely.
// SAFETY: the zero bit pattern is valid for every member (all are Pod).
#[allow(unsafe_code)]
unsafe impl Zeroable for SysctlPayload {}
// SAFETY: repr(C), Copy, every member is Pod and `raw` covers all bytes
// (checked just above), so the union has no padding and any bit pattern
// is a valid value of every member.
#[allow(unsafe_code)]
unsafe impl Pod for SysctlPayload {}

impl SysctlPayload {
    /// The payload viewed as member `T`: a plain reinterpretation of its
    /// bytes, sound without `unsafe` because the payload and every member
    /// are `Pod`. Whether `T` fits, in size and alignment, is checked at
    /// compile time for each member used.
    fn member<T: Pod>(&self) -> &T {
        const {
            assert!(
                size_of::<T>() <= SYSCTL_PAYLOAD_SIZE
                    && align_of::<T>() <= align_of::<SysctlPayload>()
            )
        };
        bytemuck::from_bytes(&bytemuck::bytes_of(self)[..size_of::<T>()])
    }

    /// As [`Self::member`], mutably; any value written is also a valid
    /// bit pattern for every other member.
    fn member_mut<T: Pod>(&mut self) -> &mut T {
        const {
            assert!(
                size_of::<T>() <= SYSCTL_PAYLOAD_SIZE
                    && align_of::<T>() <= align_of::<SysctlPayload>()
            )
        };
        bytemuck::from_bytes_mut(&mut bytemuck::bytes_of_mut(self)[..size_of::<T>()])
    }
}

impl core::fmt::Debug for SysctlPayload {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let raw = bytemuck::bytes_of(self);
        formatter
            .debug_struct("SysctlPayload")
            .field("raw", &raw)
            .finish()
    }
}

/// A sysctl request, 136 bytes, passed by guest virtual address in `rdi`.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct Sysctl {
    /// IN: a [`SysctlOp`] number.
    pub cmd: u32,
    /// IN: must be [`SYSCTL_INTERFACE_VERSION`], or the call fails with `-EACCES`.
    pub interface_version: u32,
    /// IN/OUT: the operation's payload.
    pub u: SysctlPayload,
}

const _: () = assert!(size_of::<Sysctl>() == 136);
const _: () = assert!(offset_of!(Sysctl, interface_version) == 4);
const _: () = assert!(offset_of!(Sysctl, u) == 8);

impl Sysctl {
    /// A request for `op` with the current interface version and a zero payload.
    pub const fn new(op: SysctlOp) -> Self {
        Self {
            cmd: op as u32,
            interface_version: SYSCTL_INTERFACE_VERSION,
            u: SysctlPayload {
                raw: [0; SYSCTL_PAYLOAD_SIZE],
            },
        }
    }

    /// A `Readconsole` request.
    pub const fn readconsole(payload: SysctlReadconsole) -> Self {
        let mut request = Self::new(SysctlOp::Readconsole);
        request.u.readconsole = payload;
        request
    }

    /// A `Physinfo` request.
    pub const fn physinfo() -> Self {
        Self::new(SysctlOp::Physinfo)
    }

    /// A `Getdomaininfolist` request.
    pub const fn getdomaininfolist(payload: SysctlGetdomaininfolist) -> Self {
        let mut request = Self::new(SysctlOp::Getdomaininfolist);
        request.u.getdomaininfolist = payload;
        request
    }

    /// A `BenchNative` request for `iterations` of each measurement.
    pub const fn bench_native(iterations: u32) -> Self {
        let mut request = Self::new(SysctlOp::BenchNative);
        request.u.bench_native = SysctlBenchNative {
            iterations,
            pad: 0,
            pte_write_cycles: 0,
            cr3_write_cycles: 0,
            pte_write_min: 0,
            cr3_write_min: 0,
        };
        request
    }

    /// The `BenchNative` payload.
    pub fn bench_native_payload(&self) -> &SysctlBenchNative {
        self.u.member()
    }

    /// The `BenchNative` payload, for the hypervisor to fill in.
    pub fn bench_native_payload_mut(&mut self) -> &mut SysctlBenchNative {
        self.u.member_mut()
    }

    /// A `BenchSyscallFloor` request.
    pub const fn bench_syscall_floor(enable: bool) -> Self {
        let mut request = Self::new(SysctlOp::BenchSyscallFloor);
        request.u.bench_syscall_floor = SysctlBenchSyscallFloor {
            enable: enable as u32,
            pad: 0,
        };
        request
    }

    /// A `LongestHypercall` request (`reset`: measure afresh after it).
    pub const fn longest_hypercall(reset: bool) -> Self {
        let mut request = Self::new(SysctlOp::LongestHypercall);
        request.u.longest_hypercall = SysctlLongestHypercall {
            reset: reset as u32,
            hypercall: 0,
            cycles: 0,
        };
        request
    }

    /// The payload as a `LongestHypercall` payload.
    pub fn longest_hypercall_payload(&self) -> &SysctlLongestHypercall {
        self.u.member()
    }

    /// The payload as a mutable `LongestHypercall` payload.
    pub fn longest_hypercall_payload_mut(&mut self) -> &mut SysctlLongestHypercall {
        self.u.member_mut()
    }

    /// The hypervisor's first checks: a known command and the right
    /// interface version. A wrong version is `EACCES` (as in Xen), an unknown
    /// command `ENOSYS`.
    pub fn validate(&self) -> Result<SysctlOp, XenError> {
        if self.interface_version != SYSCTL_INTERFACE_VERSION {
            return Err(XenError::EACCES);
        }
        Ok(SysctlOp::try_from(self.cmd)?)
    }

    /// The payload as a `Readconsole` payload.
    pub fn readconsole_payload(&self) -> &SysctlReadconsole {
        self.u.member()
    }

    /// The payload as a mutable `Readconsole` payload.
    pub fn readconsole_payload_mut(&mut self) -> &mut SysctlReadconsole {
        self.u.member_mut()
    }

    /// The payload as a `Physinfo` payload.
    pub fn physinfo_payload(&self) -> &SysctlPhysinfo {
        self.u.member()
    }

    /// The payload as a mutable `Physinfo` payload.
    pub fn physinfo_payload_mut(&mut self) -> &mut SysctlPhysinfo {
        self.u.member_mut()
    }

    /// The payload as a `Getdomaininfolist` payload.
    pub fn getdomaininfolist_payload(&self) -> &SysctlGetdomaininfolist {
        self.u.member()
    }

    /// The payload as a mutable `Getdomaininfolist` payload.
    pub fn getdomaininfolist_payload_mut(&mut self) -> &mut SysctlGetdomaininfolist {
        self.u.member_mut()
    }

    /// The payload as a `BenchSyscallFloor` payload.
    pub fn bench_syscall_floor_payload(&self) -> &SysctlBenchSyscallFloor {
        self.u.member()
    }
}

// ---------------------------------------------------------------------------
// DomainInfo: one record of Getdomaininfolist (and later domctl getdomaininfo).
// ---------------------------------------------------------------------------

/// [`DomainInfo::flags`]: the domain is being destroyed (`XEN_DOMINF_dying`).
pub const DOMINF_DYING: u32 = 1 << 0;
/// [`DomainInfo::flags`]: hardware-virtualised guest; never set here, where
/// every guest is PV (`XEN_DOMINF_hvm_guest`).
pub const DOMINF_HVM_GUEST: u32 = 1 << 1;
/// [`DomainInfo::flags`]: the domain has shut down; the reason is in
/// bits 16-23 (`XEN_DOMINF_shutdown`).
pub const DOMINF_SHUTDOWN: u32 = 1 << 2;
/// [`DomainInfo::flags`]: paused by the control domain (`XEN_DOMINF_paused`).
pub const DOMINF_PAUSED: u32 = 1 << 3;
/// [`DomainInfo::flags`]: every vCPU is blocked (`XEN_DOMINF_blocked`).
pub const DOMINF_BLOCKED: u32 = 1 << 4;
/// [`DomainInfo::flags`]: some vCPU is running now (`XEN_DOMINF_running`).
pub const DOMINF_RUNNING: u32 = 1 << 5;
/// [`DomainInfo::flags`]: being debugged (`XEN_DOMINF_debugged`).
pub const DOMINF_DEBUGGED: u32 = 1 << 6;
/// [`DomainInfo::flags`]: runs the xenstore service (`XEN_DOMINF_xs_domain`).
pub const DOMINF_XS_DOMAIN: u32 = 1 << 7;
/// [`DomainInfo::flags`]: uses hardware-assisted paging (`XEN_DOMINF_hap`).
pub const DOMINF_HAP: u32 = 1 << 8;
/// Shift of the shutdown reason in [`DomainInfo::flags`]
/// (`XEN_DOMINF_shutdownshift`).
pub const DOMINF_SHUTDOWN_SHIFT: u32 = 16;
/// Mask of the shutdown reason after shifting (`XEN_DOMINF_shutdownmask`).
pub const DOMINF_SHUTDOWN_MASK: u32 = 0xff;
/// [`DomainInfo::flags`], project-defined: the domain is privileged
/// (`SIF_PRIVILEGED`). Bit 31 keeps clear of bits Xen may assign later.
pub const DOMINF_PRIVILEGED: u32 = 1 << 31;

/// One domain's state, as reported by `Getdomaininfolist`, 72 bytes.
/// Project-defined (modelled on Xen's `xen_domctl_getdomaininfo`); all
/// fields are OUT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct DomainInfo {
    /// The domain's ID.
    pub domid: DomainId,
    /// Padding; zero.
    pub pad0: u16,
    /// `DOMINF_*` bits, with the shutdown reason in bits 16-23.
    pub flags: u32,
    /// Pages currently allocated to the domain.
    pub tot_pages: u64,
    /// Most pages the domain may have.
    pub max_pages: u64,
    /// MFN of the domain's shared-info page.
    pub shared_info_frame: u64,
    /// CPU time used by all its vCPUs, in nanoseconds.
    pub cpu_time: u64,
    /// Number of vCPUs that are up.
    pub nr_online_vcpus: u32,
    /// Highest vCPU ID the domain has.
    pub max_vcpu_id: u32,
    /// Security label (always 0: no security module).
    pub ssidref: u32,
    /// Padding; zero.
    pub pad1: u32,
    /// The domain's 16-byte handle (its UUID), set by the toolstack.
    pub handle: [u8; 16],
}

const _: () = assert!(size_of::<DomainInfo>() == 72);
const _: () = assert!(offset_of!(DomainInfo, flags) == 4);
const _: () = assert!(offset_of!(DomainInfo, tot_pages) == 8);
const _: () = assert!(offset_of!(DomainInfo, max_pages) == 16);
const _: () = assert!(offset_of!(DomainInfo, shared_info_frame) == 24);
const _: () = assert!(offset_of!(DomainInfo, cpu_time) == 32);
const _: () = assert!(offset_of!(DomainInfo, nr_online_vcpus) == 40);
const _: () = assert!(offset_of!(DomainInfo, max_vcpu_id) == 44);
const _: () = assert!(offset_of!(DomainInfo, ssidref) == 48);
const _: () = assert!(offset_of!(DomainInfo, handle) == 56);

impl DomainInfo {
    /// The shutdown reason in bits 16-23 (a `SHUTDOWN_*` number), if the
    /// domain has shut down.
    pub const fn shutdown_reason(&self) -> Option<u32> {
        if self.flags & DOMINF_SHUTDOWN != 0 {
            Some((self.flags >> DOMINF_SHUTDOWN_SHIFT) & DOMINF_SHUTDOWN_MASK)
        } else {
            None
        }
    }

    /// Marks the domain as shut down for `reason` (a `SHUTDOWN_*` number).
    pub const fn set_shutdown(&mut self, reason: u32) {
        self.flags &= !(DOMINF_SHUTDOWN_MASK << DOMINF_SHUTDOWN_SHIFT);
        self.flags |= DOMINF_SHUTDOWN | ((reason & DOMINF_SHUTDOWN_MASK) << DOMINF_SHUTDOWN_SHIFT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_checks_and_payload_views() {
        let mut request = Sysctl::readconsole(SysctlReadconsole {
            incremental: 1,
            buffer: 0x1000,
            count: 256,
            ..Default::default()
        });
        assert_eq!(request.validate(), Ok(SysctlOp::Readconsole));
        assert_eq!(request.readconsole_payload().count, 256);
        request.readconsole_payload_mut().index = 99;
        assert_eq!(request.readconsole_payload().index, 99);
        request.interface_version = SYSCTL_INTERFACE_VERSION + 1;
        assert_eq!(request.validate(), Err(XenError::EACCES));
        let mut unknown = Sysctl::physinfo();
        unknown.cmd = 2;
        assert_eq!(unknown.validate(), Err(XenError::ENOSYS));
        assert_eq!(SysctlOp::BenchSyscallFloor.raw(), 0x8001);
        assert_eq!(
            Sysctl::bench_syscall_floor(true)
                .bench_syscall_floor_payload()
                .enable,
            1
        );
    }

    #[test]
    fn shutdown_reason_bits() {
        let mut info = DomainInfo::default();
        assert_eq!(info.shutdown_reason(), None);
        info.set_shutdown(3);
        assert_eq!(info.flags, DOMINF_SHUTDOWN | 3 << 16);
        assert_eq!(info.shutdown_reason(), Some(3));
    }
}
