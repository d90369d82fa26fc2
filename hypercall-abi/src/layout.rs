//! The x86_64 PV structures Xen and a guest share, and the address-space constants.
//!
//! Sources: `xen/include/public/xen.h` (start_info, shared_info, vcpu_info,
//! multicall), `arch-x86/xen.h` (trap_info, arch_shared_info) and
//! `arch-x86/xen-x86_64.h` (selectors, address ranges, iret_context,
//! arch_vcpu_info). Every structure is `#[repr(C)]`; where the C compiler
//! would insert padding, the padding is an explicit field (named `pad*`, to be
//! written as zero) so that a structure can be copied into guest memory
//! without leaking uninitialised bytes. Sizes and offsets are checked at
//! compile time below each definition.
//!
//! The shared pages ([`SharedInfo`], [`VcpuInfo`]) are written concurrently
//! by Xen and the guest. These types describe their layout; code that
//! touches a live shared page must use volatile or atomic accesses through a
//! pointer, never a plain `&mut`.

use bytemuck::{Pod, Zeroable};
use core::mem::{offset_of, size_of};

/// A domain identifier (`domid_t`).
pub type DomainId = u16;

/// Size of a page, and of the frames MFNs and PFNs count.
pub const PAGE_SIZE: usize = 4096;
/// Number of address bits inside a page.
pub const PAGE_SHIFT: u32 = 12;

/// Number of `vcpu_info` slots in the shared-info page
/// (`XEN_LEGACY_MAX_VCPUS`). vCPUs beyond this must register a `vcpu_info`
/// elsewhere with `VCPUOP_register_vcpu_info`.
pub const MAX_VIRT_CPUS: usize = 32;

// ---------------------------------------------------------------------------
// Domain identifiers with special meaning (xen.h).
// ---------------------------------------------------------------------------

/// First domain ID that does not name an ordinary domain.
pub const DOMID_FIRST_RESERVED: DomainId = 0x7FF0;
/// The calling domain.
pub const DOMID_SELF: DomainId = 0x7FF0;
/// The owner of I/O memory that belongs to no domain (used as a foreign
/// domain in `mmu_update` to map device memory).
pub const DOMID_IO: DomainId = 0x7FF1;
/// The hypervisor itself, owner of its own pages (such as the M2P table).
pub const DOMID_XEN: DomainId = 0x7FF2;
/// The owner of copy-on-write shared pages.
pub const DOMID_COW: DomainId = 0x7FF3;
/// No domain: an invalid or absent ID.
pub const DOMID_INVALID: DomainId = 0x7FF4;
/// Any domain (for example, the remote end of an unbound event channel).
pub const DOMID_ANY: DomainId = 0x7FF5;
/// The idle domain, which owns the idle vCPUs.
pub const DOMID_IDLE: DomainId = 0x7FFF;
/// Mask of the bits a valid domain ID may use.
pub const DOMID_MASK: DomainId = 0x7FFF;

// ---------------------------------------------------------------------------
// Segment selectors (arch-x86/xen-x86_64.h).
//
// Xen reserves the GDT page at byte 0xe000 for its own descriptors; these
// flat ring-3 selectors point into it. The guest kernel runs in ring 3 too,
// so its selectors are the same as user space's.
// ---------------------------------------------------------------------------

/// 32-bit flat code segment, ring 3 (GDT index 260).
pub const FLAT_RING3_CS32: u16 = 0xe023;
/// 64-bit flat code segment, ring 3 (GDT index 262).
pub const FLAT_RING3_CS64: u16 = 0xe033;
/// 32-bit flat data segment, ring 3 (GDT index 261).
pub const FLAT_RING3_DS32: u16 = 0xe02b;
/// 64-bit data segment: the null selector.
pub const FLAT_RING3_DS64: u16 = 0x0000;
/// 32-bit stack segment, ring 3 (GDT index 261).
pub const FLAT_RING3_SS32: u16 = 0xe02b;
/// 64-bit stack segment, ring 3 (GDT index 261).
pub const FLAT_RING3_SS64: u16 = 0xe02b;
/// Guest kernel 64-bit code segment.
pub const FLAT_KERNEL_CS64: u16 = FLAT_RING3_CS64;
/// Guest kernel 32-bit code segment.
pub const FLAT_KERNEL_CS32: u16 = FLAT_RING3_CS32;
/// Guest kernel code segment (64-bit).
pub const FLAT_KERNEL_CS: u16 = FLAT_KERNEL_CS64;
/// Guest kernel 64-bit data segment.
pub const FLAT_KERNEL_DS64: u16 = FLAT_RING3_DS64;
/// Guest kernel 32-bit data segment.
pub const FLAT_KERNEL_DS32: u16 = FLAT_RING3_DS32;
/// Guest kernel data segment (64-bit).
pub const FLAT_KERNEL_DS: u16 = FLAT_KERNEL_DS64;
/// Guest kernel 64-bit stack segment.
pub const FLAT_KERNEL_SS64: u16 = FLAT_RING3_SS64;
/// Guest kernel 32-bit stack segment.
pub const FLAT_KERNEL_SS32: u16 = FLAT_RING3_SS32;
/// Guest kernel stack segment (64-bit).
pub const FLAT_KERNEL_SS: u16 = FLAT_KERNEL_SS64;
/// Guest user 64-bit code segment.
pub const FLAT_USER_CS64: u16 = FLAT_RING3_CS64;
/// Guest user 32-bit code segment.
pub const FLAT_USER_CS32: u16 = FLAT_RING3_CS32;
/// Guest user code segment (64-bit).
pub const FLAT_USER_CS: u16 = FLAT_USER_CS64;
/// Guest user 64-bit data segment.
pub const FLAT_USER_DS64: u16 = FLAT_RING3_DS64;
/// Guest user 32-bit data segment.
pub const FLAT_USER_DS32: u16 = FLAT_RING3_DS32;
/// Guest user data segment (64-bit).
pub const FLAT_USER_DS: u16 = FLAT_USER_DS64;
/// Guest user 64-bit stack segment.
pub const FLAT_USER_SS64: u16 = FLAT_RING3_SS64;
/// Guest user 32-bit stack segment.
pub const FLAT_USER_SS32: u16 = FLAT_RING3_SS32;
/// Guest user stack segment (64-bit).
pub const FLAT_USER_SS: u16 = FLAT_USER_SS64;

/// First GDT frame reserved for Xen; the guest may use entries below it.
pub const FIRST_RESERVED_GDT_PAGE: usize = 14;
/// Byte offset of Xen's reserved GDT area.
pub const FIRST_RESERVED_GDT_BYTE: usize = FIRST_RESERVED_GDT_PAGE * PAGE_SIZE;
/// First GDT entry reserved for Xen.
pub const FIRST_RESERVED_GDT_ENTRY: usize = FIRST_RESERVED_GDT_BYTE / 8;

// ---------------------------------------------------------------------------
// Virtual address layout (arch-x86/xen-x86_64.h).
//
//   0x0000_0000_0000_0000 ..= 0x0000_7fff_ffff_ffff  guest (PML4 slots 0-255)
//   0xffff_8000_0000_0000 ..  0xffff_8800_0000_0000  Xen   (slots 256-271)
//     of which 0xffff_8000_0000_0000 .. 0xffff_8040_0000_0000 is the
//     read-only M2P table, readable by guests
//   0xffff_8800_0000_0000 ..= 0xffff_ffff_ffff_ffff  guest (slots 272-511)
// ---------------------------------------------------------------------------

/// Start of the virtual range Xen reserves in every PV address space.
pub const HYPERVISOR_VIRT_START: u64 = 0xffff_8000_0000_0000;
/// End (exclusive) of the virtual range Xen reserves.
pub const HYPERVISOR_VIRT_END: u64 = 0xffff_8800_0000_0000;
/// Start of the read-only machine-to-physical (M2P) table.
pub const MACH2PHYS_VIRT_START: u64 = 0xffff_8000_0000_0000;
/// End (exclusive) of the M2P table.
pub const MACH2PHYS_VIRT_END: u64 = 0xffff_8040_0000_0000;
/// Number of 8-byte M2P entries, one per machine frame.
pub const MACH2PHYS_NR_ENTRIES: u64 = (MACH2PHYS_VIRT_END - MACH2PHYS_VIRT_START) >> 3;

// ---------------------------------------------------------------------------
// set_segment_base (arch-x86/xen-x86_64.h).
// ---------------------------------------------------------------------------

/// `set_segment_base`: set the FS base.
pub const SEGBASE_FS: u64 = 0;
/// `set_segment_base`: set the GS base used in guest user mode.
pub const SEGBASE_GS_USER: u64 = 1;
/// `set_segment_base`: set the GS base used in guest kernel mode.
pub const SEGBASE_GS_KERNEL: u64 = 2;
/// `set_segment_base`: load the user GS selector given in `base[15:0]`.
pub const SEGBASE_GS_USER_SEL: u64 = 3;

// ---------------------------------------------------------------------------
// start_info (xen.h).
// ---------------------------------------------------------------------------

/// `start_info.flags`: the domain is privileged.
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// `start_info.flags`: this is the initial control domain (dom0).
pub const SIF_INITDOMAIN: u32 = 1 << 1;
/// `start_info.flags`: `mod_start` is a multiboot module.
pub const SIF_MULTIBOOT_MOD: u32 = 1 << 2;
/// `start_info.flags`: `mod_start` is a PFN, not a virtual address.
pub const SIF_MOD_START_PFN: u32 = 1 << 3;
/// `start_info.flags`: the tools understand a virtually mapped P2M list.
pub const SIF_VIRT_P2M_4TOOLS: u32 = 1 << 4;
/// `start_info.flags`: bits reserved for power-management options.
pub const SIF_PM_MASK: u32 = 0xFF << 8;

/// Size of `start_info.cmd_line`, including the terminating NUL.
pub const MAX_GUEST_CMDLINE: usize = 1024;

/// The console part of `start_info`: a C union of two layouts.
///
/// An ordinary domain (domU) gets the machine frame of its console ring page
/// and the event channel that signals it. The initial domain (dom0) instead
/// gets the offset and size of a `dom0_vga_console_info` placed in the
/// start-info page. The bytes are the same; the accessors pick the
/// interpretation (x86 is little-endian, so `info_off` is the low half of the
/// first word).
///
/// ```text
/// offset in start_info:   72               76               80       84
///                domU:    | mfn (u64)                       | evtchn | pad
///                dom0:    | info_off (u32) | info_size (u32)| unused
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct StartInfoConsole {
    words: [u64; 2],
}

impl StartInfoConsole {
    /// A domU console: ring page at machine frame `mfn`, signalled on `evtchn`.
    pub const fn domu(mfn: u64, evtchn: u32) -> Self {
        Self {
            words: [mfn, evtchn as u64],
        }
    }

    /// A dom0 console: a `dom0_vga_console_info` at byte `info_off` of the
    /// start-info page, `info_size` bytes long.
    pub const fn dom0(info_off: u32, info_size: u32) -> Self {
        Self {
            words: [info_off as u64 | (info_size as u64) << 32, 0],
        }
    }

    /// domU view: machine frame number of the console ring page.
    pub const fn domu_mfn(&self) -> u64 {
        self.words[0]
    }

    /// domU view: event channel port of the console.
    pub const fn domu_evtchn(&self) -> u32 {
        self.words[1] as u32
    }

    /// dom0 view: byte offset of the console information in the page.
    pub const fn dom0_info_off(&self) -> u32 {
        self.words[0] as u32
    }

    /// dom0 view: size in bytes of the console information.
    pub const fn dom0_info_size(&self) -> u32 {
        (self.words[0] >> 32) as u32
    }
}

/// The start-of-day page Xen hands a PV kernel (`start_info`), passed in
/// `rsi` at the kernel's entry point. All fields are filled by the domain
/// builder (OUT from the guest's point of view).
///
/// Fields from `magic` to `console` are also refilled on resume after
/// suspend; the rest are only valid at first boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct StartInfo {
    /// `"xen-<version>-<platform>"`, NUL-padded; see [`StartInfo::MAGIC_PREFIX`].
    pub magic: [u8; 32],
    /// Total pages allocated to this domain.
    pub nr_pages: u64,
    /// MACHINE address (not a frame number) of the shared-info page.
    pub shared_info: u64,
    /// `SIF_*` flags.
    pub flags: u32,
    /// Padding; zero.
    pub pad0: u32,
    /// MFN of the xenstore ring page.
    pub store_mfn: u64,
    /// Event channel for xenstore.
    pub store_evtchn: u32,
    /// Padding; zero.
    pub pad1: u32,
    /// Console ring (domU) or console information (dom0).
    pub console: StartInfoConsole,
    /// VIRTUAL address of the bootstrap top-level page table.
    pub pt_base: u64,
    /// Number of bootstrap page-table frames.
    pub nr_pt_frames: u64,
    /// VIRTUAL address of the P2M list (`nr_pages` MFNs, one per PFN).
    pub mfn_list: u64,
    /// VIRTUAL address of the pre-loaded module (the initrd), or its PFN if
    /// `SIF_MOD_START_PFN` is set.
    pub mod_start: u64,
    /// Size in bytes of the pre-loaded module.
    pub mod_len: u64,
    /// Kernel command line, NUL-terminated.
    pub cmd_line: [u8; MAX_GUEST_CMDLINE],
    /// First PFN of the initial P2M table (when placed by `XEN_ELFNOTE_INIT_P2M`).
    pub first_p2m_pfn: u64,
    /// Number of PFNs forming the initial P2M table.
    pub nr_p2m_frames: u64,
}

const _: () = assert!(size_of::<StartInfo>() == 1168);
const _: () = assert!(offset_of!(StartInfo, magic) == 0);
const _: () = assert!(offset_of!(StartInfo, nr_pages) == 32);
const _: () = assert!(offset_of!(StartInfo, shared_info) == 40);
const _: () = assert!(offset_of!(StartInfo, flags) == 48);
const _: () = assert!(offset_of!(StartInfo, store_mfn) == 56);
const _: () = assert!(offset_of!(StartInfo, store_evtchn) == 64);
const _: () = assert!(offset_of!(StartInfo, console) == 72);
const _: () = assert!(size_of::<StartInfoConsole>() == 16);
const _: () = assert!(offset_of!(StartInfo, pt_base) == 88);
const _: () = assert!(offset_of!(StartInfo, nr_pt_frames) == 96);
const _: () = assert!(offset_of!(StartInfo, mfn_list) == 104);
const _: () = assert!(offset_of!(StartInfo, mod_start) == 112);
const _: () = assert!(offset_of!(StartInfo, mod_len) == 120);
const _: () = assert!(offset_of!(StartInfo, cmd_line) == 128);
const _: () = assert!(offset_of!(StartInfo, first_p2m_pfn) == 1152);
const _: () = assert!(offset_of!(StartInfo, nr_p2m_frames) == 1160);
const _: () = assert!(size_of::<StartInfo>() <= PAGE_SIZE);

impl StartInfo {
    /// The magic Xen writes for a 64-bit x86 PV guest, without its NUL.
    pub const MAGIC_PREFIX: &'static [u8] = b"xen-3.0-x86_64";

    /// A start-info page with every field zero except `magic`, which holds
    /// [`StartInfo::MAGIC_PREFIX`].
    pub const fn new() -> Self {
        let mut magic = [0u8; 32];
        let mut index = 0;
        while index < Self::MAGIC_PREFIX.len() {
            magic[index] = Self::MAGIC_PREFIX[index];
            index += 1;
        }
        Self {
            magic,
            nr_pages: 0,
            shared_info: 0,
            flags: 0,
            pad0: 0,
            store_mfn: 0,
            store_evtchn: 0,
            pad1: 0,
            console: StartInfoConsole::domu(0, 0),
            pt_base: 0,
            nr_pt_frames: 0,
            mfn_list: 0,
            mod_start: 0,
            mod_len: 0,
            cmd_line: [0; MAX_GUEST_CMDLINE],
            first_p2m_pfn: 0,
            nr_p2m_frames: 0,
        }
    }

    /// Whether `magic` starts with `"xen-3.0-x86_64"` (what a 64-bit PV
    /// kernel checks to know it was started by a compatible builder).
    pub fn has_valid_magic(&self) -> bool {
        self.magic.starts_with(Self::MAGIC_PREFIX)
    }

    /// The command line up to (not including) its first NUL.
    pub fn cmd_line_bytes(&self) -> &[u8] {
        let end = self
            .cmd_line
            .iter()
            .position(|&byte| byte == 0)
            .unwrap_or(MAX_GUEST_CMDLINE);
        &self.cmd_line[..end]
    }

    /// Stores `line` as the command line, NUL-terminated.
    ///
    /// Fails with `E2BIG` if `line` plus its NUL does not fit in
    /// [`MAX_GUEST_CMDLINE`] bytes, rather than silently truncating it.
    pub fn set_cmd_line(&mut self, line: &[u8]) -> Result<(), crate::XenError> {
        if line.len() >= MAX_GUEST_CMDLINE {
            return Err(crate::XenError::E2BIG);
        }
        self.cmd_line = [0; MAX_GUEST_CMDLINE];
        self.cmd_line[..line.len()].copy_from_slice(line);
        Ok(())
    }

    /// Whether `flags` has `SIF_INITDOMAIN` (this is dom0).
    pub const fn is_initial_domain(&self) -> bool {
        self.flags & SIF_INITDOMAIN != 0
    }
}

impl Default for StartInfo {
    fn default() -> Self {
        Self::new()
    }
}

// ---------------------------------------------------------------------------
// vcpu_info and shared_info (xen.h, arch-x86/xen.h).
// ---------------------------------------------------------------------------

/// `vcpu_time_info.flags`: the TSC is stable across vCPUs.
pub const XEN_PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
/// `vcpu_time_info.flags`: the vCPU was stopped (paused by the toolstack).
pub const XEN_PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;

/// Per-vCPU system time (`vcpu_time_info`), written by Xen, read by the guest.
///
/// Xen increments `version` before and after each update, so an odd
/// `version` means an update is in progress; the guest retries until it
/// reads the same even `version` before and after the other fields (a
/// sequence lock). The current system time in nanoseconds is
///
/// ```text
/// system_time + ((((tsc - tsc_timestamp) << tsc_shift) * tsc_to_system_mul) >> 32)
/// ```
///
/// where a negative `tsc_shift` means shift right.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct VcpuTimeInfo {
    /// OUT: update counter, odd while an update is in progress.
    pub version: u32,
    /// Padding; zero.
    pub pad0: u32,
    /// OUT: TSC value at the last update.
    pub tsc_timestamp: u64,
    /// OUT: nanoseconds since boot at the last update.
    pub system_time: u64,
    /// OUT: 32.32 fixed-point multiplier from shifted TSC ticks to nanoseconds.
    pub tsc_to_system_mul: u32,
    /// OUT: power-of-two shift applied to the TSC delta first.
    pub tsc_shift: i8,
    /// OUT: `XEN_PVCLOCK_*` flags.
    pub flags: u8,
    /// Padding; zero.
    pub pad1: [u8; 2],
}

const _: () = assert!(size_of::<VcpuTimeInfo>() == 32);
const _: () = assert!(offset_of!(VcpuTimeInfo, version) == 0);
const _: () = assert!(offset_of!(VcpuTimeInfo, tsc_timestamp) == 8);
const _: () = assert!(offset_of!(VcpuTimeInfo, system_time) == 16);
const _: () = assert!(offset_of!(VcpuTimeInfo, tsc_to_system_mul) == 24);
const _: () = assert!(offset_of!(VcpuTimeInfo, tsc_shift) == 28);
const _: () = assert!(offset_of!(VcpuTimeInfo, flags) == 29);

/// The x86 part of `vcpu_info` (`arch_vcpu_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct ArchVcpuInfo {
    /// OUT: faulting address of the last page fault delivered to the guest
    /// (the guest cannot read the real CR2).
    pub cr2: u64,
    /// Padding that makes `vcpu_info` 64 bytes.
    pub pad: u64,
}

const _: () = assert!(size_of::<ArchVcpuInfo>() == 16);
const _: () = assert!(offset_of!(ArchVcpuInfo, cr2) == 0);
const _: () = assert!(offset_of!(ArchVcpuInfo, pad) == 8);

/// Per-vCPU event and time state (`vcpu_info`), 64 bytes.
///
/// Event delivery: when an unmasked event channel becomes pending, Xen sets
/// the channel's bit in `shared_info.evtchn_pending`, the bit for that word
/// in `evtchn_pending_sel`, and `evtchn_upcall_pending`, then calls the
/// guest's event callback unless `evtchn_upcall_mask` is set. The mask is
/// the PV guest's equivalent of the interrupt flag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct VcpuInfo {
    /// OUT (guest clears): non-zero when events are waiting for this vCPU.
    pub evtchn_upcall_pending: u8,
    /// IN: non-zero to hold off event upcalls (a virtual "interrupts off").
    pub evtchn_upcall_mask: u8,
    /// Padding; zero.
    pub pad0: [u8; 6],
    /// OUT (guest clears): one bit per 64-bit word of `evtchn_pending` that
    /// may hold pending events for this vCPU.
    pub evtchn_pending_sel: u64,
    /// x86-specific state.
    pub arch: ArchVcpuInfo,
    /// OUT: system time for this vCPU.
    pub time: VcpuTimeInfo,
}

const _: () = assert!(size_of::<VcpuInfo>() == 64);
const _: () = assert!(offset_of!(VcpuInfo, evtchn_upcall_pending) == 0);
const _: () = assert!(offset_of!(VcpuInfo, evtchn_upcall_mask) == 1);
const _: () = assert!(offset_of!(VcpuInfo, evtchn_pending_sel) == 8);
const _: () = assert!(offset_of!(VcpuInfo, arch) == 16);
const _: () = assert!(offset_of!(VcpuInfo, time) == 32);

impl VcpuInfo {
    /// A `vcpu_info` with every byte zero.
    pub const ZERO: Self = Self {
        evtchn_upcall_pending: 0,
        evtchn_upcall_mask: 0,
        pad0: [0; 6],
        evtchn_pending_sel: 0,
        arch: ArchVcpuInfo { cr2: 0, pad: 0 },
        time: VcpuTimeInfo {
            version: 0,
            pad0: 0,
            tsc_timestamp: 0,
            system_time: 0,
            tsc_to_system_mul: 0,
            tsc_shift: 0,
            flags: 0,
            pad1: [0; 2],
        },
    };
}

/// The x86 part of `shared_info` (`arch_shared_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct ArchSharedInfo {
    /// IN (guest writes): number of valid entries in the P2M table.
    pub max_pfn: u64,
    /// IN: MFN of the top of the three-level P2M frame list used by tools
    /// to save and migrate the guest; 0 = not set up, all ones = invalid
    /// (use `p2m_vaddr`).
    pub pfn_to_mfn_frame_list_list: u64,
    /// OUT: reason for the last NMI (platform-specific bits).
    pub nmi_reason: u64,
    /// IN: CR3 value of the address space where `p2m_vaddr` is valid; 0 if
    /// the next three fields are unused.
    pub p2m_cr3: u64,
    /// IN: virtual address of the linear P2M list.
    pub p2m_vaddr: u64,
    /// IN: incremented by the guest before and after each P2M mapping change.
    pub p2m_generation: u64,
}

const _: () = assert!(size_of::<ArchSharedInfo>() == 48);

/// Number of 64-bit words in each two-level event-channel bitmap.
pub const EVTCHN_WORDS: usize = 64;

/// The shared-info page (`shared_info`), 3136 bytes at the start of a page
/// whose machine address is in `start_info.shared_info`.
///
/// Directions are from the guest's point of view: OUT fields are written by
/// Xen, IN fields by the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct SharedInfo {
    /// Event and time state of vCPUs 0 to 31.
    pub vcpu_info: [VcpuInfo; MAX_VIRT_CPUS],
    /// OUT (guest clears): one bit per event channel, set when it fires.
    pub evtchn_pending: [u64; EVTCHN_WORDS],
    /// IN: one bit per event channel; set bits do not trigger upcalls.
    pub evtchn_mask: [u64; EVTCHN_WORDS],
    /// OUT: update counter for the wallclock fields, odd during an update.
    pub wc_version: u32,
    /// OUT: wallclock seconds since the Unix epoch at system time 0 (low 32 bits).
    pub wc_sec: u32,
    /// OUT: nanoseconds part of the wallclock base.
    pub wc_nsec: u32,
    /// OUT: high 32 bits of the wallclock seconds.
    pub wc_sec_hi: u32,
    /// x86-specific state.
    pub arch: ArchSharedInfo,
}

const _: () = assert!(size_of::<SharedInfo>() == 3136);
const _: () = assert!(offset_of!(SharedInfo, vcpu_info) == 0);
const _: () = assert!(offset_of!(SharedInfo, evtchn_pending) == 2048);
const _: () = assert!(offset_of!(SharedInfo, evtchn_mask) == 2560);
const _: () = assert!(offset_of!(SharedInfo, wc_version) == 3072);
const _: () = assert!(offset_of!(SharedInfo, wc_sec) == 3076);
const _: () = assert!(offset_of!(SharedInfo, wc_nsec) == 3080);
const _: () = assert!(offset_of!(SharedInfo, wc_sec_hi) == 3084);
const _: () = assert!(offset_of!(SharedInfo, arch) == 3088);
const _: () = assert!(offset_of!(SharedInfo, arch) + offset_of!(ArchSharedInfo, max_pfn) == 3088);
const _: () =
    assert!(offset_of!(SharedInfo, arch) + offset_of!(ArchSharedInfo, p2m_generation) == 3128);
const _: () = assert!(size_of::<SharedInfo>() <= PAGE_SIZE);

impl SharedInfo {
    /// A shared-info page with every byte zero (as Xen clears it at domain
    /// creation).
    pub const fn zeroed() -> Self {
        Self {
            vcpu_info: [VcpuInfo::ZERO; MAX_VIRT_CPUS],
            evtchn_pending: [0; EVTCHN_WORDS],
            evtchn_mask: [0; EVTCHN_WORDS],
            wc_version: 0,
            wc_sec: 0,
            wc_nsec: 0,
            wc_sec_hi: 0,
            arch: ArchSharedInfo {
                max_pfn: 0,
                pfn_to_mfn_frame_list_list: 0,
                nmi_reason: 0,
                p2m_cr3: 0,
                p2m_vaddr: 0,
                p2m_generation: 0,
            },
        }
    }

    /// The full 64-bit wallclock seconds, from `wc_sec` and `wc_sec_hi`.
    pub const fn wallclock_seconds(&self) -> u64 {
        (self.wc_sec_hi as u64) << 32 | self.wc_sec as u64
    }
}

impl Default for SharedInfo {
    fn default() -> Self {
        Self::zeroed()
    }
}

// ---------------------------------------------------------------------------
// trap_info (arch-x86/xen.h).
// ---------------------------------------------------------------------------

/// `trap_info.flags` bits 0-1: the lowest privilege level allowed to raise
/// this vector with a software `int n` (Xen's `TI_GET_DPL`).
///
/// On x86_64 rings 1 and 2 do not exist, so: 0 = nobody may, 1 or 2 = the
/// guest kernel may, 3 = everyone (guest user space too) may.
pub const TRAP_INFO_PRIVILEGE_MASK: u8 = 0b011;
/// `trap_info.flags` bit 2: set the vCPU's event mask on entry to the
/// handler, like an interrupt gate clears IF (Xen's `TI_GET_IF`).
pub const TRAP_INFO_MASK_EVENTS: u8 = 0b100;

/// One entry of the virtual IDT (`trap_info`), 16 bytes. All fields are IN.
///
/// `set_trap_table` takes an array of these ended by an entry whose
/// `address` is 0 ([`TrapInfo::END`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct TrapInfo {
    /// Exception or interrupt vector.
    pub vector: u8,
    /// Privilege level and event-mask bits (`TRAP_INFO_*`).
    pub flags: u8,
    /// Code selector of the handler (normally [`FLAT_KERNEL_CS`]).
    pub cs: u16,
    /// Padding; zero.
    pub pad: u32,
    /// Virtual address of the handler.
    pub address: u64,
}

const _: () = assert!(size_of::<TrapInfo>() == 16);
const _: () = assert!(offset_of!(TrapInfo, vector) == 0);
const _: () = assert!(offset_of!(TrapInfo, flags) == 1);
const _: () = assert!(offset_of!(TrapInfo, cs) == 2);
const _: () = assert!(offset_of!(TrapInfo, address) == 8);

impl TrapInfo {
    /// The terminating entry of a trap table.
    pub const END: Self = Self {
        vector: 0,
        flags: 0,
        cs: 0,
        pad: 0,
        address: 0,
    };

    /// A handler for `vector` in the kernel code segment.
    ///
    /// `privilege_level` (0-3) is who may raise it with `int n`;
    /// `mask_events` makes the handler start with events masked.
    pub const fn new(vector: u8, privilege_level: u8, mask_events: bool, address: u64) -> Self {
        let mut flags = privilege_level & TRAP_INFO_PRIVILEGE_MASK;
        if mask_events {
            flags |= TRAP_INFO_MASK_EVENTS;
        }
        Self {
            vector,
            flags,
            cs: FLAT_KERNEL_CS,
            pad: 0,
            address,
        }
    }

    /// The privilege level allowed to raise this vector with `int n`.
    pub const fn privilege_level(&self) -> u8 {
        self.flags & TRAP_INFO_PRIVILEGE_MASK
    }

    /// Whether events are masked on entry to the handler.
    pub const fn masks_events(&self) -> bool {
        self.flags & TRAP_INFO_MASK_EVENTS != 0
    }

    /// Whether this is the terminating entry (address 0).
    pub const fn is_end(&self) -> bool {
        self.address == 0
    }
}

// ---------------------------------------------------------------------------
// iret (arch-x86/xen-x86_64.h).
// ---------------------------------------------------------------------------

/// `iret_context.flags`: the guest entered through `syscall`, so return
/// sysret-style: restore RAX, RIP, RFLAGS and RSP only, and discard R11,
/// RCX, CS and SS (Xen's `VGCF_in_syscall`).
pub const VGCF_IN_SYSCALL: u64 = 1 << 8;

/// The frame `HYPERVISOR_iret` reads from the guest stack (`iret_context`),
/// 72 bytes, lowest address first. All fields are IN.
///
/// The guest pushes it (the hypercall-page stub pushes `rcx`, `r11` and
/// `rax` last) and `rsp` points at `rax` when the hypercall is made. The
/// saved CS says where to return: RPL 3 means guest user mode, anything
/// else guest kernel mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct IretContext {
    /// Value of `rax` after the return.
    pub rax: u64,
    /// Value of `r11` after the return.
    pub r11: u64,
    /// Value of `rcx` after the return.
    pub rcx: u64,
    /// `VGCF_IN_SYSCALL` or 0.
    pub flags: u64,
    /// Return instruction pointer.
    pub rip: u64,
    /// Return code selector.
    pub cs: u64,
    /// Return flags register.
    pub rflags: u64,
    /// Return stack pointer.
    pub rsp: u64,
    /// Return stack selector.
    pub ss: u64,
}

const _: () = assert!(size_of::<IretContext>() == 72);
const _: () = assert!(offset_of!(IretContext, rax) == 0);
const _: () = assert!(offset_of!(IretContext, r11) == 8);
const _: () = assert!(offset_of!(IretContext, rcx) == 16);
const _: () = assert!(offset_of!(IretContext, flags) == 24);
const _: () = assert!(offset_of!(IretContext, rip) == 32);
const _: () = assert!(offset_of!(IretContext, cs) == 40);
const _: () = assert!(offset_of!(IretContext, rflags) == 48);
const _: () = assert!(offset_of!(IretContext, rsp) == 56);
const _: () = assert!(offset_of!(IretContext, ss) == 64);

// ---------------------------------------------------------------------------
// The bounce frame (Xen's x86_64/entry.S, create_bounce_frame).
// ---------------------------------------------------------------------------

/// The frame the hypervisor writes on the guest kernel's stack when it
/// delivers an exception, an event upcall or a callback, 64 bytes, lowest
/// address first. All fields are OUT. Xen has no C structure for it (it is
/// written in assembly), so this is the one declaration both sides use: the
/// hypervisor builds it, the guest kernel's entry stubs read it.
///
/// ```text
///   rsp -> RCX, R11, [error code], RIP, CS, RFLAGS, RSP, SS
/// ```
///
/// - RCX and R11 come first because a return to the handler with `sysretq`
///   destroys them; a handler that pops them sees what a processor would
///   push for a native kernel.
/// - The error-code slot is on the stack only for vectors that have one
///   ([`crate::x86::has_error_code`]); without it the frame is 8 bytes
///   shorter and RIP follows R11 ([`BounceFrame::stack_words`]). A guest
///   stub that inserts a zero there, as native kernels' stubs do, then has
///   this whole structure on its stack.
/// - CS shows RPL 0 when the guest kernel was interrupted (RPL 3 for guest
///   user mode), and bits 32..39 of its slot hold the event mask saved at
///   delivery; RFLAGS.IF shows whether events were unmasked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct BounceFrame {
    /// The interrupted context's `rcx`.
    pub rcx: u64,
    /// The interrupted context's `r11`.
    pub r11: u64,
    /// The exception's error code; absent from the stack for vectors
    /// without one.
    pub error_code: u64,
    /// Where the guest was interrupted.
    pub rip: u64,
    /// The interrupted code selector (RPL as above) and the saved event
    /// mask in bits 32..39.
    pub cs: u64,
    /// The interrupted flags register.
    pub rflags: u64,
    /// The interrupted stack pointer.
    pub rsp: u64,
    /// The interrupted stack selector.
    pub ss: u64,
}

const _: () = assert!(size_of::<BounceFrame>() == 64);
const _: () = assert!(offset_of!(BounceFrame, rcx) == 0);
const _: () = assert!(offset_of!(BounceFrame, r11) == 8);
const _: () = assert!(offset_of!(BounceFrame, error_code) == 16);
const _: () = assert!(offset_of!(BounceFrame, rip) == 24);
const _: () = assert!(offset_of!(BounceFrame, cs) == 32);
const _: () = assert!(offset_of!(BounceFrame, rflags) == 40);
const _: () = assert!(offset_of!(BounceFrame, rsp) == 48);
const _: () = assert!(offset_of!(BounceFrame, ss) == 56);

impl BounceFrame {
    /// Words in the frame with its error code.
    pub const WORDS: usize = size_of::<Self>() / 8;
    /// Index of the error-code word.
    const ERROR_CODE_WORD: usize = offset_of!(Self, error_code) / 8;

    /// The words as they go on the guest's stack, lowest address first,
    /// and how many of them there are: all eight with the error code,
    /// seven without it (the error-code slot left out).
    pub fn stack_words(&self, with_error_code: bool) -> ([u64; Self::WORDS], usize) {
        let words: [u64; Self::WORDS] = bytemuck::cast(*self);
        if with_error_code {
            return (words, Self::WORDS);
        }
        let mut shorter = [0; Self::WORDS];
        shorter[..Self::ERROR_CODE_WORD].copy_from_slice(&words[..Self::ERROR_CODE_WORD]);
        shorter[Self::ERROR_CODE_WORD..Self::WORDS - 1]
            .copy_from_slice(&words[Self::ERROR_CODE_WORD + 1..]);
        (shorter, Self::WORDS - 1)
    }

    /// Words in the failsafe callback's frame.
    pub const FAILSAFE_WORDS: usize = Self::WORDS + 3;

    /// The words of the failsafe callback's frame, lowest address first:
    /// the frame without its error-code slot, with the data segment
    /// selectors the vCPU had saved (`[ds, es, fs, gs]`) between R11 and
    /// RIP, as Xen's `load_segments` writes it when it cannot reload them:
    ///
    /// ```text
    ///   rsp -> RCX, R11, DS, ES, FS, GS, RIP, CS, RFLAGS, RSP, SS
    /// ```
    ///
    /// The handler compares the saved selectors with the ones it now has
    /// (null for each that could not be loaded) to see which failed, pops
    /// RCX, R11 and the four selectors, and returns with the `iret`
    /// hypercall from the five words left.
    pub fn failsafe_stack_words(&self, data_selectors: [u16; 4]) -> [u64; Self::FAILSAFE_WORDS] {
        let [ds, es, fs, gs] = data_selectors.map(u64::from);
        [
            self.rcx,
            self.r11,
            ds,
            es,
            fs,
            gs,
            self.rip,
            self.cs,
            self.rflags,
            self.rsp,
            self.ss,
        ]
    }
}

// ---------------------------------------------------------------------------
// multicall (xen.h).
// ---------------------------------------------------------------------------

/// One call in a `multicall` batch (`multicall_entry`), 64 bytes.
///
/// Xen runs the entries in order and stores each hypercall's return value
/// in its `result`. Only the first five arguments are used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct MulticallEntry {
    /// IN: hypercall number.
    pub op: u64,
    /// OUT: the hypercall's return value (a negated errno on failure).
    pub result: u64,
    /// IN: arguments; the sixth is unused.
    pub args: [u64; 6],
}

const _: () = assert!(size_of::<MulticallEntry>() == 64);
const _: () = assert!(offset_of!(MulticallEntry, op) == 0);
const _: () = assert!(offset_of!(MulticallEntry, result) == 8);
const _: () = assert!(offset_of!(MulticallEntry, args) == 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_info_magic_and_command_line() {
        let mut info = StartInfo::new();
        assert!(info.has_valid_magic());
        assert_eq!(&info.magic[..14], b"xen-3.0-x86_64");
        assert_eq!(info.magic[14], 0);
        assert_eq!(info.cmd_line_bytes(), b"");
        info.set_cmd_line(b"console=hvc0").unwrap();
        assert_eq!(info.cmd_line_bytes(), b"console=hvc0");
        assert_eq!(
            info.set_cmd_line(&[b'x'; MAX_GUEST_CMDLINE]),
            Err(crate::XenError::E2BIG)
        );
        info.magic[0] = b'y';
        assert!(!info.has_valid_magic());
    }

    #[test]
    fn console_union_views() {
        let domu = StartInfoConsole::domu(0x1234, 7);
        assert_eq!(domu.domu_mfn(), 0x1234);
        assert_eq!(domu.domu_evtchn(), 7);
        let dom0 = StartInfoConsole::dom0(0x4b8, 0x30);
        assert_eq!(dom0.dom0_info_off(), 0x4b8);
        assert_eq!(dom0.dom0_info_size(), 0x30);
        // On little-endian x86, info_off occupies the bytes at offset 72.
        let mut info = StartInfo::new();
        info.console = dom0;
        let bytes = bytemuck::bytes_of(&info);
        assert_eq!(&bytes[72..76], &0x4b8u32.to_le_bytes());
        assert_eq!(&bytes[76..80], &0x30u32.to_le_bytes());
    }

    #[test]
    fn bounce_frame_leaves_out_a_missing_error_code() {
        let frame = BounceFrame {
            rcx: 1,
            r11: 2,
            error_code: 3,
            rip: 4,
            cs: 5,
            rflags: 6,
            rsp: 7,
            ss: 8,
        };
        assert_eq!(frame.stack_words(true), ([1, 2, 3, 4, 5, 6, 7, 8], 8));
        let (words, count) = frame.stack_words(false);
        assert_eq!(&words[..count], &[1, 2, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn failsafe_frame_puts_the_selectors_between_r11_and_rip() {
        let frame = BounceFrame {
            rcx: 1,
            r11: 2,
            error_code: 3,
            rip: 4,
            cs: 5,
            rflags: 6,
            rsp: 7,
            ss: 8,
        };
        assert_eq!(
            frame.failsafe_stack_words([0x2b, 0x33, 0x3b, 0x43]),
            [1, 2, 0x2b, 0x33, 0x3b, 0x43, 4, 5, 6, 7, 8]
        );
    }

    #[test]
    fn trap_info_flags() {
        let entry = TrapInfo::new(0x80, 3, true, 0xffff_ffff_8000_1000);
        assert_eq!(entry.privilege_level(), 3);
        assert!(entry.masks_events());
        assert_eq!(entry.flags, 0b111);
        assert_eq!(entry.cs, 0xe033);
        assert!(TrapInfo::END.is_end());
        assert!(!entry.is_end());
    }

    #[test]
    fn constants_match_xen() {
        assert_eq!(DOMID_SELF, 0x7FF0);
        assert_eq!(DOMID_INVALID, 0x7FF4);
        assert_eq!(FLAT_KERNEL_CS64, 0xe033);
        assert_eq!(FLAT_KERNEL_SS, 0xe02b);
        assert_eq!(FLAT_KERNEL_DS, 0);
        assert_eq!(
            MACH2PHYS_NR_ENTRIES, 0x8_0000_0000,
            "256 GiB of M2P, 8 bytes each"
        );
        assert_eq!(SharedInfo::zeroed().wallclock_seconds(), 0);
    }
}
