//! `physdev_op` sub-ops and argument structures (`physdev.h`).
//!
//! `physdev_op(cmd, arg)`: `cmd` in `rdi` is a [`PhysdevOp`], `arg` in `rsi`
//! points at the sub-op's structure. These are the operations a domain that
//! drives physical devices needs from the hypervisor: I/O privilege first
//! ([`PhysdevSetIopl`], [`PhysdevSetIobitmap`]), then physical interrupts
//! (PIRQs) and PCI devices (not offered yet: `-ENOSYS`).

use bytemuck::{Pod, Zeroable};
use core::mem::{offset_of, size_of};

abi_enum! {
    /// A `physdev_op` sub-op (`PHYSDEVOP_*`). Only those this project's
    /// hypervisor knows by name are listed; Xen has more (PIRQ and PCI
    /// management), which are refused by number.
    pub enum PhysdevOp: u32 {
        /// Tell the hypervisor an interrupt was handled (`physdev_eoi`).
        Eoi = 12 => "PHYSDEVOP_eoi",
        /// Ask about a PIRQ (`physdev_irq_status_query`).
        IrqStatusQuery = 5 => "PHYSDEVOP_irq_status_query",
        /// Set the calling vCPU's virtual IOPL; `arg` points at a
        /// [`PhysdevSetIopl`].
        SetIopl = 6 => "PHYSDEVOP_set_iopl",
        /// Name an I/O permission bitmap in guest memory; `arg` points at a
        /// [`PhysdevSetIobitmap`].
        SetIobitmap = 7 => "PHYSDEVOP_set_iobitmap",
        /// Map a GSI or MSI to a PIRQ (`physdev_map_pirq`).
        MapPirq = 13 => "PHYSDEVOP_map_pirq",
        /// Undo [`PhysdevOp::MapPirq`] (`physdev_unmap_pirq`).
        UnmapPirq = 14 => "PHYSDEVOP_unmap_pirq",
    }
}

/// Argument of `PHYSDEVOP_set_iopl` (`physdev_set_iopl`), 4 bytes.
///
/// The IOPL a PV guest asks for is *virtual*: the processor always runs a
/// PV guest with IOPL 0 (or it could turn real interrupts off behind the
/// hypervisor's back), and the hypervisor consults this value when the
/// guest's port I/O, `cli` or `sti` faults. A guest may set it but not read
/// it back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct PhysdevSetIopl {
    /// IN: the IOPL, 0..=3 (anything larger is `-EINVAL`).
    pub iopl: u32,
}

const _: () = assert!(size_of::<PhysdevSetIopl>() == 4);

/// Argument of `PHYSDEVOP_set_iobitmap` (`physdev_set_iobitmap`), 16 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct PhysdevSetIobitmap {
    /// IN: guest-virtual address of the bitmap (one bit per port, a set
    /// bit refusing the port, as in a TSS I/O bitmap).
    pub bitmap: u64,
    /// IN: how many ports the bitmap covers.
    pub nr_ports: u32,
    /// Padding (implicit in Xen's header); zero.
    pub pad: u32,
}

const _: () = assert!(size_of::<PhysdevSetIobitmap>() == 16);
const _: () = assert!(offset_of!(PhysdevSetIobitmap, nr_ports) == 8);

/// The largest IOPL (`physdev_set_iopl.iopl`).
pub const MAX_IOPL: u32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_xens() {
        assert_eq!(PhysdevOp::SetIopl.raw(), 6);
        assert_eq!(PhysdevOp::SetIobitmap.raw(), 7);
        assert_eq!(PhysdevOp::MapPirq.raw(), 13);
        assert_eq!(PhysdevOp::try_from(8), Err(crate::UnknownValue(8)));
        assert_eq!(PhysdevOp::SetIopl.name(), "PHYSDEVOP_set_iopl");
    }
}
