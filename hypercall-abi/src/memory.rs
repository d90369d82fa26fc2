//! `memory_op` sub-ops and argument structures (`memory.h`).
//!
//! `memory_op(cmd, arg)`: `cmd` in `rdi` is a [`MemoryOp`] (Xen reserves
//! the bits above [`MEMOP_CMD_MASK`] for a continuation start index), `arg`
//! in `rsi` points at the sub-op's structure. Reservation sub-ops return the
//! number of extents processed; a short count means failure part-way.
//!
//! An *extent* is `2^extent_order` contiguous pages.

use bytemuck::{Pod, Zeroable};
use core::mem::{offset_of, size_of};

use crate::layout::DomainId;

/// Bits of `memory_op`'s `cmd` that hold the sub-op; the rest carry the
/// extent index to resume from when Xen preempts a long call.
pub const MEMOP_CMD_MASK: u64 = (1 << 6) - 1;
/// Shift of the resume index in `memory_op`'s `cmd`.
pub const MEMOP_EXTENT_SHIFT: u32 = 6;
/// The `cmd` with which a preempted reservation sub-op `operation` goes on
/// at extent `start_extent` (Xen: `op | (nr_done << MEMOP_EXTENT_SHIFT)`).
pub const fn continuation_command(operation: u64, start_extent: u64) -> u64 {
    (operation & MEMOP_CMD_MASK) | (start_extent << MEMOP_EXTENT_SHIFT)
}

/// The extent a reservation sub-op starts at: 0 for a first call, where
/// the last part stopped for a continuation (Xen's `start_extent`).
pub const fn start_extent(command: u64) -> u64 {
    command >> MEMOP_EXTENT_SHIFT
}

abi_enum! {
    /// A `memory_op` sub-op (`XENMEM_*`).
    pub enum MemoryOp: u32 {
        /// Allocate machine memory to the domain; `arg` is a
        /// [`MemoryReservation`] whose array receives the new MFNs.
        IncreaseReservation = 0 => "XENMEM_increase_reservation",
        /// Give frames back to Xen; `arg` is a [`MemoryReservation`] listing
        /// the frames.
        DecreaseReservation = 1 => "XENMEM_decrease_reservation",
        /// Returns the largest machine frame number in the system.
        MaximumRamPage = 2 => "XENMEM_maximum_ram_page",
        /// Returns the domain's current page count; `arg` points at a domid.
        CurrentReservation = 3 => "XENMEM_current_reservation",
        /// Returns the domain's page limit; `arg` points at a domid.
        MaximumReservation = 4 => "XENMEM_maximum_reservation",
        /// Lists the MFNs that hold the M2P table.
        MachphysMfnList = 5 => "XENMEM_machphys_mfn_list",
        /// Allocate memory and place it at the given PFNs (also updates the
        /// M2P table); `arg` is a [`MemoryReservation`].
        PopulatePhysmap = 6 => "XENMEM_populate_physmap",
        /// Map a special page (shared info, grant table) into the physical
        /// map; `arg` is an [`AddToPhysmap`].
        AddToPhysmap = 7 => "XENMEM_add_to_physmap",
        /// Returns the domain's pseudo-physical memory map; `arg` is a
        /// [`MemoryMap`].
        MemoryMap = 9 => "XENMEM_memory_map",
        /// Returns the host's machine memory map (privileged); `arg` is a
        /// [`MemoryMap`].
        MachineMemoryMap = 10 => "XENMEM_machine_memory_map",
        /// Exchange frames for others with different properties.
        Exchange = 11 => "XENMEM_exchange",
        /// Returns where the M2P table is mapped; `arg` is a [`MachphysMapping`].
        MachphysMapping = 12 => "XENMEM_machphys_mapping",
        /// Set a domain's pseudo-physical memory map (toolstack).
        SetMemoryMap = 13 => "XENMEM_set_memory_map",
        /// Returns the largest PFN the domain has populated.
        MaximumGpfn = 14 => "XENMEM_maximum_gpfn",
        /// Remove a page from the physical map.
        RemoveFromPhysmap = 15 => "XENMEM_remove_from_physmap",
        /// Set a populate-on-demand target (HVM).
        SetPodTarget = 16 => "XENMEM_set_pod_target",
        /// Get the populate-on-demand target (HVM).
        GetPodTarget = 17 => "XENMEM_get_pod_target",
        /// Count of pages freed by sharing.
        GetSharingFreedPages = 18 => "XENMEM_get_sharing_freed_pages",
        /// Count of shared pages.
        GetSharingSharedPages = 19 => "XENMEM_get_sharing_shared_pages",
        /// Memory paging operations.
        PagingOp = 20 => "XENMEM_paging_op",
        /// Memory access permission operations.
        AccessOp = 21 => "XENMEM_access_op",
        /// Memory sharing operations.
        SharingOp = 22 => "XENMEM_sharing_op",
        /// Batched form of `add_to_physmap`.
        AddToPhysmapBatch = 23 => "XENMEM_add_to_physmap_batch",
        /// Claim pages for a domain about to be built.
        ClaimPages = 24 => "XENMEM_claim_pages",
        /// M2P frame list for 32-bit guests.
        MachphysCompatMfnList = 25 => "XENMEM_machphys_compat_mfn_list",
        /// Virtual NUMA information.
        GetVnumainfo = 26 => "XENMEM_get_vnumainfo",
        /// Reserved device memory regions.
        ReservedDeviceMemoryMap = 27 => "XENMEM_reserved_device_memory_map",
        /// Map a hypervisor resource (ioreq server, grant table) into a
        /// domain.
        AcquireResource = 28 => "XENMEM_acquire_resource",
    }
}

/// Argument of the reservation sub-ops (`xen_memory_reservation`), 32 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct MemoryReservation {
    /// IN/OUT: guest virtual address of an array of `nr_extents` frame
    /// numbers. increase_reservation: OUT, the MFNs allocated.
    /// decrease_reservation: IN, the frames to free. populate_physmap: IN,
    /// the PFNs to fill (and OUT, the frames placed there).
    pub extent_start: u64,
    /// IN: number of extents.
    pub nr_extents: u64,
    /// IN: log2 of the pages per extent.
    pub extent_order: u32,
    /// IN: `XENMEMF_*` flags (address width, NUMA node).
    pub mem_flags: u32,
    /// IN: the domain whose reservation changes; unprivileged callers must
    /// pass `DOMID_SELF`.
    pub domid: DomainId,
    /// Padding; zero.
    pub pad: [u8; 6],
}

const _: () = assert!(size_of::<MemoryReservation>() == 32);
const _: () = assert!(offset_of!(MemoryReservation, nr_extents) == 8);
const _: () = assert!(offset_of!(MemoryReservation, extent_order) == 16);
const _: () = assert!(offset_of!(MemoryReservation, mem_flags) == 20);
const _: () = assert!(offset_of!(MemoryReservation, domid) == 24);

/// Argument of `XENMEM_memory_map` and `XENMEM_machine_memory_map`
/// (`xen_memory_map`), 16 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct MemoryMap {
    /// IN: capacity of `buffer` in entries. OUT: entries written.
    pub nr_entries: u32,
    /// Padding; zero.
    pub pad: u32,
    /// IN: guest virtual address of an array of E820-format entries
    /// (20 bytes each: base u64, length u64, type u32).
    pub buffer: u64,
}

const _: () = assert!(size_of::<MemoryMap>() == 16);
const _: () = assert!(offset_of!(MemoryMap, buffer) == 8);

/// OUT buffer of `XENMEM_machphys_mapping` (`xen_machphys_mapping`), 24 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct MachphysMapping {
    /// OUT: start virtual address of the M2P table.
    pub v_start: u64,
    /// OUT: end virtual address of the M2P table.
    pub v_end: u64,
    /// OUT: largest MFN that can be looked up.
    pub max_mfn: u64,
}

const _: () = assert!(size_of::<MachphysMapping>() == 24);

/// [`AddToPhysmap::space`]: the shared-info page.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// [`AddToPhysmap::space`]: a grant-table frame.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// [`AddToPhysmap::space`]: a guest frame moved to a new PFN.
pub const XENMAPSPACE_GMFN: u32 = 2;
/// [`AddToPhysmap::space`]: a range of guest frames.
pub const XENMAPSPACE_GMFN_RANGE: u32 = 3;
/// [`AddToPhysmap::space`]: a frame of another domain.
pub const XENMAPSPACE_GMFN_FOREIGN: u32 = 4;
/// [`AddToPhysmap::space`]: device MMIO.
pub const XENMAPSPACE_DEV_MMIO: u32 = 5;

/// Argument of `XENMEM_add_to_physmap` (`xen_add_to_physmap`), 24 bytes.
/// All fields are IN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct AddToPhysmap {
    /// The domain whose physical map changes.
    pub domid: DomainId,
    /// Number of pages, for `XENMAPSPACE_GMFN_RANGE`.
    pub size: u16,
    /// Which kind of page (`XENMAPSPACE_*`).
    pub space: u32,
    /// Index into that space (such as the grant-table frame number).
    pub idx: u64,
    /// PFN at which the page should appear.
    pub gpfn: u64,
}

const _: () = assert!(size_of::<AddToPhysmap>() == 24);
const _: () = assert!(offset_of!(AddToPhysmap, space) == 4);
const _: () = assert!(offset_of!(AddToPhysmap, idx) == 8);
const _: () = assert!(offset_of!(AddToPhysmap, gpfn) == 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(MemoryOp::PopulatePhysmap.raw(), 6);
        assert_eq!(MemoryOp::MachphysMapping.raw(), 12);
        assert_eq!(MemoryOp::try_from(8), Err(crate::UnknownValue(8)));
        for &op in MemoryOp::ALL {
            assert_eq!(MemoryOp::from_register(u64::from(op.raw())), Some(op));
        }
    }
}
