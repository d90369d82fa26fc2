//! `grant_table_op` sub-ops, the v1 grant entry and its flags (`grant_table.h`).
//!
//! A domain *grants* another domain access to one of its frames by writing
//! an entry in its grant table: a packed array of [`GrantEntryV1`] in frames
//! it shares with the hypervisor. The entry's index is the *grant
//! reference* that the other domain then names, with the granter's ID, to
//! map the frame (`GNTTABOP_map_grant_ref`) or copy to or from it
//! (`GNTTABOP_copy`). While a mapping exists the hypervisor keeps
//! [`GrantFlags::READING`] (and [`GrantFlags::WRITING`] for a writable one)
//! set in the granter's entry, so that the granter can see that it may not
//! reuse the frame yet.
//!
//! `grant_table_op(cmd, uop, count)`: `cmd` in `rdi` is a [`GnttabOp`],
//! `uop` in `rsi` points at an array of `count` (in `rdx`) structures of the
//! sub-op's type. The overall result is 0 or a negated errno; each entry's
//! own outcome is its `status` field, a [`GrantStatus`]. Directions (IN/OUT)
//! are from the caller's point of view.

use core::mem::{offset_of, size_of};

use bytemuck::{Pod, Zeroable};

use crate::layout::DomainId;

/// A grant reference: an index into the granter's grant table
/// (`grant_ref_t`).
pub type GrantRef = u32;

/// A mapping handle: an index into the mapper's maptrack, returned by
/// `map_grant_ref` and presented again to `unmap_grant_ref`
/// (`grant_handle_t`).
pub type GrantHandle = u32;

/// Grant entries reserved for the toolstack at the start of every table
/// (`GNTTAB_NR_RESERVED_ENTRIES`): 0 for the console ring, 1 for the
/// XenStore ring.
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
/// The reserved entry through which a guest grants its console ring
/// (`GNTTAB_RESERVED_CONSOLE`).
pub const GNTTAB_RESERVED_CONSOLE: GrantRef = 0;
/// The reserved entry through which a guest grants its XenStore ring
/// (`GNTTAB_RESERVED_XENSTORE`).
pub const GNTTAB_RESERVED_XENSTORE: GrantRef = 1;

abi_enum! {
    /// A `grant_table_op` sub-op (`GNTTABOP_*`).
    pub enum GnttabOp: u32 {
        /// Map a granted frame; [`GnttabMapGrantRef`].
        MapGrantRef = 0 => "GNTTABOP_map_grant_ref",
        /// Remove a mapping made by `map_grant_ref`; [`GnttabUnmapGrantRef`].
        UnmapGrantRef = 1 => "GNTTABOP_unmap_grant_ref",
        /// Size the caller's table and learn its frames; [`GnttabSetupTable`].
        SetupTable = 2 => "GNTTABOP_setup_table",
        /// Print a table on the hypervisor's console (debugging).
        DumpTable = 3 => "GNTTABOP_dump_table",
        /// Give a frame to another domain.
        Transfer = 4 => "GNTTABOP_transfer",
        /// Copy bytes between granted and local frames; [`GnttabCopy`].
        Copy = 5 => "GNTTABOP_copy",
        /// Current and largest table size; [`GnttabQuerySize`].
        QuerySize = 6 => "GNTTABOP_query_size",
        /// Unmap, putting another PTE in place; [`GnttabUnmapAndReplace`].
        UnmapAndReplace = 7 => "GNTTABOP_unmap_and_replace",
        /// Choose the table format; [`GnttabSetVersion`].
        SetVersion = 8 => "GNTTABOP_set_version",
        /// The v2 status frames.
        GetStatusFrames = 9 => "GNTTABOP_get_status_frames",
        /// The table format in use; [`GnttabGetVersion`].
        GetVersion = 10 => "GNTTABOP_get_version",
        /// Swap two entries (v2).
        SwapGrantRef = 11 => "GNTTABOP_swap_grant_ref",
        /// Flush caches for granted frames (ARM).
        CacheFlush = 12 => "GNTTABOP_cache_flush",
    }
}

/// The outcome of one grant operation, in its `status` field (`GNTST_*`).
/// All errors are negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum GrantStatus {
    /// Done (`GNTST_okay`).
    Okay = 0,
    /// Refused for a reason no other code names (`GNTST_general_error`).
    GeneralError = -1,
    /// No such domain (`GNTST_bad_domain`).
    BadDomain = -2,
    /// The grant reference is out of range or unusable (`GNTST_bad_gntref`).
    BadGntref = -3,
    /// The mapping handle is out of range or unused (`GNTST_bad_handle`).
    BadHandle = -4,
    /// The address to map at is unusable (`GNTST_bad_virt_addr`).
    BadVirtAddr = -5,
    /// The device address does not match (`GNTST_bad_dev_addr`).
    BadDevAddr = -6,
    /// No room left: in the I/O MMU, or in the maptrack
    /// (`GNTST_no_device_space`).
    NoDeviceSpace = -7,
    /// Not allowed (`GNTST_permission_denied`).
    PermissionDenied = -8,
    /// The frame cannot be used for this operation (`GNTST_bad_page`).
    BadPage = -9,
    /// A copy's offset and length cross the end of a page
    /// (`GNTST_bad_copy_arg`).
    BadCopyArg = -10,
    /// A transferred frame's address is too large (`GNTST_address_too_big`).
    AddressTooBig = -11,
    /// Not done; try again (`GNTST_eagain`).
    Eagain = -12,
}

impl GrantStatus {
    /// The value stored in a `status` field.
    pub const fn raw(self) -> i16 {
        self as i16
    }

    /// Decodes a `status` field.
    pub const fn from_raw(raw: i16) -> Option<Self> {
        Some(match raw {
            0 => Self::Okay,
            -1 => Self::GeneralError,
            -2 => Self::BadDomain,
            -3 => Self::BadGntref,
            -4 => Self::BadHandle,
            -5 => Self::BadVirtAddr,
            -6 => Self::BadDevAddr,
            -7 => Self::NoDeviceSpace,
            -8 => Self::PermissionDenied,
            -9 => Self::BadPage,
            -10 => Self::BadCopyArg,
            -11 => Self::AddressTooBig,
            -12 => Self::Eagain,
            _ => return None,
        })
    }

    /// Xen's message for the status (`GNTTABOP_error_msgs`).
    pub const fn message(self) -> &'static str {
        match self {
            Self::Okay => "okay",
            Self::GeneralError => "undefined error",
            Self::BadDomain => "unrecognised domain id",
            Self::BadGntref => "invalid grant reference",
            Self::BadHandle => "invalid mapping handle",
            Self::BadVirtAddr => "invalid virtual address",
            Self::BadDevAddr => "invalid device address",
            Self::NoDeviceSpace => "no spare translation slot in the I/O MMU",
            Self::PermissionDenied => "permission denied",
            Self::BadPage => "bad page",
            Self::BadCopyArg => "copy arguments cross page boundary",
            Self::AddressTooBig => "page address size too large",
            Self::Eagain => "operation not done; try again",
        }
    }
}

bitflags::bitflags! {
    /// `grant_entry_v1.flags` (`GTF_*`). The low two bits are the entry's
    /// type ([`GrantFlags::TYPE_MASK`]); the others are sub-flags. `[GST]`
    /// bits are written by the granting guest, `[XEN]` bits by the
    /// hypervisor.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct GrantFlags: u16 {
        /// Type: `domid` may map and access `frame` (`GTF_permit_access`).
        const PERMIT_ACCESS = 1;
        /// Type: `domid` may transfer a frame to the granter
        /// (`GTF_accept_transfer`).
        const ACCEPT_TRANSFER = 2;
        /// Type: `domid` may use a grant of a third domain (v2 only,
        /// `GTF_transitive`).
        const TRANSITIVE = 3;
        /// The bits that hold the type (`GTF_type_mask`); 0 is
        /// `GTF_invalid`, which grants nothing.
        const TYPE_MASK = 3;
        /// [GST] `domid` may only read (`GTF_readonly`).
        const READONLY = 1 << 2;
        /// [XEN] mapped or being copied from, by `domid` (`GTF_reading`).
        const READING = 1 << 3;
        /// [XEN] mapped writable or being copied to (`GTF_writing`).
        const WRITING = 1 << 4;
        /// [GST] x86 cache attribute: write-through (`GTF_PWT`).
        const PWT = 1 << 5;
        /// [GST] x86 cache attribute: cache disabled (`GTF_PCD`).
        const PCD = 1 << 6;
        /// [GST] x86 cache attribute: PAT (`GTF_PAT`).
        const PAT = 1 << 7;
        /// [GST] only a part of the page is granted, for copies (v2,
        /// `GTF_sub_page`).
        const SUB_PAGE = 1 << 8;
    }
}

/// [`GrantFlags`] for `GTF_accept_transfer` entries: [XEN] committed to
/// transfer a frame (`GTF_transfer_committed`, same bit as `GTF_readonly`).
pub const GTF_TRANSFER_COMMITTED: u16 = 1 << 2;
/// [XEN] the transferred frame's number is written (`GTF_transfer_completed`).
pub const GTF_TRANSFER_COMPLETED: u16 = 1 << 3;

/// One entry of a version 1 grant table (`grant_entry_v1`), 8 bytes; a
/// 4 KiB frame holds 512. Written by the granter in the order `domid`,
/// `frame`, barrier, `flags`; the hypervisor changes `flags` and `domid`
/// together with one 32-bit compare-and-exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GrantEntryV1 {
    /// [XEN,GST] `GTF_*` type and flags ([`GrantFlags`]).
    pub flags: u16,
    /// [GST] the domain being granted access.
    pub domid: DomainId,
    /// [GST] the frame it may map (for a PV granter, a machine frame).
    pub frame: u32,
}

const _: () = assert!(size_of::<GrantEntryV1>() == 8);
const _: () = assert!(offset_of!(GrantEntryV1, domid) == 2);
const _: () = assert!(offset_of!(GrantEntryV1, frame) == 4);

/// v1 grant entries in one 4 KiB grant-table frame.
pub const GRANT_ENTRIES_PER_FRAME: u32 = 4096 / size_of::<GrantEntryV1>() as u32;

bitflags::bitflags! {
    /// `gnttab_map_grant_ref.flags` (`GNTMAP_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct GntmapFlags: u32 {
        /// For access by I/O devices (`GNTMAP_device_map`).
        const DEVICE_MAP = 1 << 0;
        /// For access by host CPUs (`GNTMAP_host_map`).
        const HOST_MAP = 1 << 1;
        /// Read-only (`GNTMAP_readonly`).
        const READONLY = 1 << 2;
        /// Usable by guest applications too (`GNTMAP_application_map`).
        const APPLICATION_MAP = 1 << 3;
        /// `host_addr` is the machine address of the PTE to write, not a
        /// virtual address (`GNTMAP_contains_pte`).
        const CONTAINS_PTE = 1 << 4;
        /// The mapping may fail when the frame is paged out
        /// (`GNTMAP_can_fail`).
        const CAN_FAIL = 1 << 5;
    }
}

/// `GNTTABOP_map_grant_ref` (`gnttab_map_grant_ref`), 32 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GnttabMapGrantRef {
    /// IN: where to map: a virtual address in the current address space,
    /// or with `GNTMAP_contains_pte` the machine address of an L1 entry.
    pub host_addr: u64,
    /// IN: `GNTMAP_*` ([`GntmapFlags`]).
    pub flags: u32,
    /// IN: the grant reference in `dom`'s table.
    pub r#ref: GrantRef,
    /// IN: the granting domain.
    pub dom: DomainId,
    /// OUT: a [`GrantStatus`].
    pub status: i16,
    /// OUT: the handle that unmaps the mapping.
    pub handle: GrantHandle,
    /// OUT: the frame's bus address (its machine address, without an
    /// I/O MMU).
    pub dev_bus_addr: u64,
}

const _: () = assert!(size_of::<GnttabMapGrantRef>() == 32);
const _: () = assert!(offset_of!(GnttabMapGrantRef, flags) == 8);
const _: () = assert!(offset_of!(GnttabMapGrantRef, r#ref) == 12);
const _: () = assert!(offset_of!(GnttabMapGrantRef, dom) == 16);
const _: () = assert!(offset_of!(GnttabMapGrantRef, status) == 18);
const _: () = assert!(offset_of!(GnttabMapGrantRef, handle) == 20);
const _: () = assert!(offset_of!(GnttabMapGrantRef, dev_bus_addr) == 24);

/// `GNTTABOP_unmap_grant_ref` (`gnttab_unmap_grant_ref`), 24 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GnttabUnmapGrantRef {
    /// IN: the address (or PTE address) given to `map_grant_ref`; 0
    /// ignores it.
    pub host_addr: u64,
    /// IN: the bus address `map_grant_ref` returned; 0 ignores it.
    pub dev_bus_addr: u64,
    /// IN: the handle `map_grant_ref` returned.
    pub handle: GrantHandle,
    /// OUT: a [`GrantStatus`].
    pub status: i16,
    /// Padding.
    pub pad: u16,
}

const _: () = assert!(size_of::<GnttabUnmapGrantRef>() == 24);
const _: () = assert!(offset_of!(GnttabUnmapGrantRef, dev_bus_addr) == 8);
const _: () = assert!(offset_of!(GnttabUnmapGrantRef, handle) == 16);
const _: () = assert!(offset_of!(GnttabUnmapGrantRef, status) == 20);

/// `GNTTABOP_unmap_and_replace` (`gnttab_unmap_and_replace`), 24 bytes:
/// unmaps the host mapping of `handle` at `host_addr` and puts there the
/// entry that maps `new_addr`, which is cleared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GnttabUnmapAndReplace {
    /// IN: the address (or PTE address) given to `map_grant_ref`.
    pub host_addr: u64,
    /// IN: the virtual address whose entry moves to `host_addr`.
    pub new_addr: u64,
    /// IN: the handle `map_grant_ref` returned.
    pub handle: GrantHandle,
    /// OUT: a [`GrantStatus`].
    pub status: i16,
    /// Padding.
    pub pad: u16,
}

const _: () = assert!(size_of::<GnttabUnmapAndReplace>() == 24);
const _: () = assert!(offset_of!(GnttabUnmapAndReplace, new_addr) == 8);
const _: () = assert!(offset_of!(GnttabUnmapAndReplace, handle) == 16);
const _: () = assert!(offset_of!(GnttabUnmapAndReplace, status) == 20);

/// `GNTTABOP_setup_table` (`gnttab_setup_table`), 24 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GnttabSetupTable {
    /// IN: whose table (`DOMID_SELF`; another domain needs privilege).
    pub dom: DomainId,
    /// Padding.
    pub pad0: u16,
    /// IN: how many frames the table should have at least.
    pub nr_frames: u32,
    /// OUT: a [`GrantStatus`].
    pub status: i16,
    /// Padding.
    pub pad1: [u8; 6],
    /// IN: guest address of an array of `nr_frames` `u64`s; OUT there:
    /// the table's frames (machine frame numbers for a PV guest).
    pub frame_list: u64,
}

const _: () = assert!(size_of::<GnttabSetupTable>() == 24);
const _: () = assert!(offset_of!(GnttabSetupTable, nr_frames) == 4);
const _: () = assert!(offset_of!(GnttabSetupTable, status) == 8);
const _: () = assert!(offset_of!(GnttabSetupTable, frame_list) == 16);

/// [`GnttabCopy::flags`]: the source is a grant reference of
/// `source.domid`, not a frame (`GNTCOPY_source_gref`).
pub const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
/// [`GnttabCopy::flags`]: the destination is a grant reference
/// (`GNTCOPY_dest_gref`).
pub const GNTCOPY_DEST_GREF: u16 = 1 << 1;
/// [`GnttabCopy::flags`]: the copy may fail when a frame is paged out
/// (`GNTCOPY_can_fail`).
pub const GNTCOPY_CAN_FAIL: u16 = 1 << 2;

/// One side of a [`GnttabCopy`], 16 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GnttabCopyPtr {
    /// IN: Xen's union `u`: a grant reference (the low 32 bits, with the
    /// side's `GNTCOPY_*_gref` flag) or a frame of the caller's
    /// (`gmfn`: a machine frame for a PV caller).
    pub u: u64,
    /// IN: the domain whose grant reference or frame it is.
    pub domid: DomainId,
    /// IN: the first byte within the frame.
    pub offset: u16,
    /// Padding.
    pub pad: u32,
}

impl GnttabCopyPtr {
    /// `u.ref`: the grant reference this side names.
    pub const fn grant_ref(&self) -> GrantRef {
        self.u as GrantRef
    }
}

const _: () = assert!(size_of::<GnttabCopyPtr>() == 16);
const _: () = assert!(offset_of!(GnttabCopyPtr, domid) == 8);
const _: () = assert!(offset_of!(GnttabCopyPtr, offset) == 10);

/// `GNTTABOP_copy` (`gnttab_copy`), 40 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GnttabCopy {
    /// IN: where to copy from.
    pub source: GnttabCopyPtr,
    /// IN: where to copy to.
    pub dest: GnttabCopyPtr,
    /// IN: how many bytes; neither side may cross the end of its page.
    pub len: u16,
    /// IN: `GNTCOPY_*`.
    pub flags: u16,
    /// OUT: a [`GrantStatus`].
    pub status: i16,
    /// Padding.
    pub pad: u16,
}

const _: () = assert!(size_of::<GnttabCopy>() == 40);
const _: () = assert!(offset_of!(GnttabCopy, dest) == 16);
const _: () = assert!(offset_of!(GnttabCopy, len) == 32);
const _: () = assert!(offset_of!(GnttabCopy, flags) == 34);
const _: () = assert!(offset_of!(GnttabCopy, status) == 36);

/// `GNTTABOP_query_size` (`gnttab_query_size`), 16 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GnttabQuerySize {
    /// IN: whose table (`DOMID_SELF`; another domain needs privilege).
    pub dom: DomainId,
    /// Padding.
    pub pad0: u16,
    /// OUT: frames the table has now.
    pub nr_frames: u32,
    /// OUT: frames it may grow to.
    pub max_nr_frames: u32,
    /// OUT: a [`GrantStatus`].
    pub status: i16,
    /// Padding.
    pub pad1: u16,
}

const _: () = assert!(size_of::<GnttabQuerySize>() == 16);
const _: () = assert!(offset_of!(GnttabQuerySize, nr_frames) == 4);
const _: () = assert!(offset_of!(GnttabQuerySize, max_nr_frames) == 8);
const _: () = assert!(offset_of!(GnttabQuerySize, status) == 12);

/// `GNTTABOP_set_version` (`gnttab_set_version`), 4 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GnttabSetVersion {
    /// IN: the version wanted (1 or 2); OUT: the version in effect.
    pub version: u32,
}

const _: () = assert!(size_of::<GnttabSetVersion>() == 4);

/// `GNTTABOP_get_version` (`gnttab_get_version`), 8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GnttabGetVersion {
    /// IN: whose table (`DOMID_SELF`; another domain needs privilege).
    pub dom: DomainId,
    /// Padding; zero.
    pub pad: u16,
    /// OUT: the version in effect.
    pub version: u32,
}

const _: () = assert!(size_of::<GnttabGetVersion>() == 8);
const _: () = assert!(offset_of!(GnttabGetVersion, version) == 4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_with_xen_values() {
        for raw in -12..=0 {
            let status = GrantStatus::from_raw(raw).expect("every GNTST_ value decodes");
            assert_eq!(status.raw(), raw);
        }
        assert_eq!(GrantStatus::from_raw(1), None);
        assert_eq!(GrantStatus::from_raw(-13), None);
        assert_eq!(GrantStatus::NoDeviceSpace.raw(), -7);
    }

    #[test]
    fn flag_bits_are_xens() {
        assert_eq!(GrantFlags::READONLY.bits(), 4);
        assert_eq!(GrantFlags::READING.bits(), 8);
        assert_eq!(GrantFlags::WRITING.bits(), 16);
        assert_eq!(GrantFlags::SUB_PAGE.bits(), 256);
        assert_eq!(GntmapFlags::CONTAINS_PTE.bits(), 16);
        assert_eq!(GRANT_ENTRIES_PER_FRAME, 512);
    }

    #[test]
    fn copy_reference_is_the_low_half_of_the_union() {
        let side = GnttabCopyPtr {
            u: 0xdead_0000_0007,
            ..GnttabCopyPtr::default()
        };
        assert_eq!(side.grant_ref(), 7);
    }
}
