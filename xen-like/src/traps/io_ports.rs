//! I/O privilege: which `in`/`out` a PV guest may execute, and which ports they reach.
//!
//! A PV guest runs in ring 3 with the processor's IOPL at 0, always: with a
//! real IOPL of 3 it could execute `cli` and switch off the machine's
//! interrupts behind the hypervisor's back. So every `in`, `out`, `cli` and
//! `sti` it executes faults (`#GP`), and the hypervisor decides, as Xen's
//! `arch/x86/pv/emul-priv-op.c` does, in two separate steps:
//!
//! 1. **Does the guest's own kernel allow it?** ([`iopl_allows`]) The
//!    guest kernel sets a *virtual* IOPL per vCPU (`PHYSDEVOP_set_iopl`),
//!    and the instruction is checked against it as the processor would
//!    check its IOPL, with a virtual CPL: 1 for the guest kernel (Xen's
//!    historical choice, since a 64-bit PV kernel is "ring 1" in spirit),
//!    0 if the guest opted into `VMASST_TYPE_architectural_iopl`, and 3 for
//!    guest user mode. If not, the guest gets its `#GP`, as natively.
//! 2. **Does the hypervisor allow it?** ([`port_access`]) Only the control
//!    domain (Dom0) is given ports, and never those the hypervisor drives
//!    itself ([`HYPERVISOR_PORTS`]). An access the guest's IOPL allowed but
//!    the hypervisor does not reaches nothing: a read gives all ones, a
//!    write is dropped, exactly what a port with no device behind it gives,
//!    and exactly what Xen's `guest_io_read`/`guest_io_write` give for a
//!    port outside the domain's `ioports` range. So a DomU that asked for
//!    IOPL 3 does not fault (as on Xen, where an XTF test runs as a DomU),
//!    but touches no hardware.
//!
//! The CMOS/RTC pair 0x70/0x71 is mediated, as in Xen: the hypervisor
//! reads the RTC itself (the wall clock), and bit 7 of the index port
//! disables NMIs, so Dom0's index write is kept per domain (Xen's
//! `cmos_idx`) and each data access selects it with bit 7 clear.
//!
//! Port 0xcf8..0xcff (PCI configuration space) is refused for now: Xen
//! mediates it (it must own some configuration bits), which is the next
//! step of I/O for Dom0.

/// A range of ports the hypervisor drives itself, never given to a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnedPorts {
    pub first: u16,
    pub last: u16,
    /// What the hypervisor uses them for (for the log line).
    pub owner: &'static str,
}

/// The ports the hypervisor keeps (Xen's `dom0_setup_permissions` denies
/// Dom0 the same: the interrupt controllers, the PIT and its gate, the
/// console's UART, and PCI configuration space, which it mediates).
pub const HYPERVISOR_PORTS: [OwnedPorts; 8] = [
    OwnedPorts {
        first: 0x20,
        last: 0x21,
        owner: "the master PIC",
    },
    OwnedPorts {
        first: 0x40,
        last: 0x43,
        owner: "the PIT (TSC calibration)",
    },
    OwnedPorts {
        first: 0x61,
        last: 0x61,
        owner: "the PIT channel 2 gate (port 0x61)",
    },
    OwnedPorts {
        first: 0xa0,
        last: 0xa1,
        owner: "the slave PIC",
    },
    OwnedPorts {
        first: 0xf4,
        last: 0xf7,
        owner: "the debug-exit port (QEMU's isa-debug-exit)",
    },
    OwnedPorts {
        first: 0x3f8,
        last: 0x3ff,
        owner: "the hypervisor's serial console (COM1)",
    },
    OwnedPorts {
        first: 0x4d0,
        last: 0x4d1,
        owner: "the PIC's edge/level control registers (ELCR)",
    },
    OwnedPorts {
        first: 0xcf8,
        last: 0xcff,
        owner: "PCI configuration space (not mediated yet)",
    },
];

/// The CMOS/RTC index port (bit 7: NMI disable).
pub const CMOS_INDEX: u16 = 0x70;
/// The CMOS/RTC data port.
pub const CMOS_DATA: u16 = 0x71;
/// The part of a CMOS index that selects a register (bit 7 is NMI disable,
/// which a guest never controls).
pub const CMOS_REGISTER_MASK: u8 = 0x7f;

/// Where a guest's `in` or `out` goes, once its IOPL allowed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortAccess {
    /// To the hardware, as the guest wrote it.
    Direct,
    /// The CMOS index port: the value is kept per domain, never written to
    /// the hardware (it holds the NMI-disable bit).
    CmosIndex,
    /// The CMOS data port: the hypervisor selects the domain's index (bit 7
    /// clear), then reads or writes port 0x71.
    CmosData,
    /// Nowhere: a read gives all ones, a write is dropped. The reason is
    /// for the log.
    Nothing(&'static str),
}

/// Whether a vCPU whose virtual IOPL is `virtual_iopl` may execute `in`,
/// `out`, `cli` or `sti` (Xen's `iopl_ok`): in guest user mode its virtual
/// CPL is 3; in guest kernel mode it is 1, or 0 with
/// `VMASST_TYPE_architectural_iopl`.
pub fn iopl_allows(virtual_iopl: u8, kernel_mode: bool, architectural_iopl: bool) -> bool {
    let virtual_cpl = match (kernel_mode, architectural_iopl) {
        (false, _) => 3,
        (true, true) => 0,
        (true, false) => 1,
    };
    virtual_cpl <= virtual_iopl
}

/// Where an access of `size` bytes (1, 2 or 4) at `port` goes for a domain
/// that is (`privileged`) or is not the control domain (Xen's
/// `admin_io_okay`, with this hypervisor's ports).
pub fn port_access(privileged: bool, port: u16, size: u8) -> PortAccess {
    if !privileged {
        return PortAccess::Nothing("only the control domain is given I/O ports");
    }
    let first = u32::from(port);
    let last = first + u32::from(size.max(1)) - 1;
    if last > 0xffff {
        return PortAccess::Nothing("the access runs past port 0xffff");
    }
    let overlaps = |from: u16, to: u16| first <= u32::from(to) && u32::from(from) <= last;
    if overlaps(CMOS_INDEX, CMOS_DATA) {
        return match (port, size) {
            (CMOS_INDEX, 1) => PortAccess::CmosIndex,
            (CMOS_DATA, 1) => PortAccess::CmosData,
            _ => PortAccess::Nothing("the CMOS/RTC ports take byte accesses only"),
        };
    }
    match HYPERVISOR_PORTS
        .iter()
        .find(|owned| overlaps(owned.first, owned.last))
    {
        Some(owned) => PortAccess::Nothing(owned.owner),
        None => PortAccess::Direct,
    }
}

/// The value an `in` of `size` bytes reads from a port with nothing
/// behind it: all ones, as an undriven ISA bus reads.
pub fn nothing_read(size: u8) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_iopl_is_checked_against_xens_virtual_cpl() {
        // PHYSDEVOP_set_iopl ABI: the kernel is CPL 1, user mode CPL 3
        // (what XTF's pv-iopl~hypercall expects).
        for (iopl, kernel, user) in [
            (0, false, false),
            (1, true, false),
            (2, true, false),
            (3, true, true),
        ] {
            assert_eq!(
                iopl_allows(iopl, true, false),
                kernel,
                "kernel at IOPL {iopl}"
            );
            assert_eq!(iopl_allows(iopl, false, false), user, "user at IOPL {iopl}");
        }
        // VMASST_TYPE_architectural_iopl: the kernel is CPL 0.
        for iopl in 0..=3 {
            assert!(iopl_allows(iopl, true, true));
            assert_eq!(iopl_allows(iopl, false, true), iopl == 3);
        }
    }

    #[test]
    fn an_unprivileged_domain_reaches_no_port() {
        for port in [0x80, 0x70, 0x71, 0x3f8, 0x1f0, 0xc000, 0xffff] {
            assert!(matches!(
                port_access(false, port, 1),
                PortAccess::Nothing(_)
            ));
        }
    }

    #[test]
    fn the_control_domain_reaches_free_ports() {
        assert_eq!(port_access(true, 0x80, 1), PortAccess::Direct);
        assert_eq!(port_access(true, 0x1f0, 2), PortAccess::Direct);
        assert_eq!(port_access(true, 0xc000, 4), PortAccess::Direct);
        assert_eq!(port_access(true, 0x3f0, 4), PortAccess::Direct);
        assert_eq!(port_access(true, 0x2f8, 1), PortAccess::Direct);
    }

    #[test]
    fn the_hypervisors_ports_are_never_reached() {
        let owned = [
            0x20, 0x21, 0x40, 0x41, 0x42, 0x43, 0x61, 0xa0, 0xa1, 0xf4, 0xf7, 0x3f8, 0x3fd, 0x3ff,
            0x4d0, 0x4d1, 0xcf8, 0xcfc, 0xcff,
        ];
        for port in owned {
            for size in [1, 2, 4] {
                assert!(
                    matches!(port_access(true, port, size), PortAccess::Nothing(_)),
                    "port {port:#x} size {size}"
                );
            }
        }
    }

    #[test]
    fn a_wide_access_that_ends_in_an_owned_range_is_refused() {
        // 0x3f6..0x3f9 ends in COM1; 0x1e..0x21 ends in the PIC.
        assert!(matches!(
            port_access(true, 0x3f6, 4),
            PortAccess::Nothing(_)
        ));
        assert!(matches!(
            port_access(true, 0x3f7, 2),
            PortAccess::Nothing(_)
        ));
        assert!(matches!(port_access(true, 0x1e, 4), PortAccess::Nothing(_)));
        // 0x5d..0x60 stops short of port 0x61; 0x5e..0x61 does not.
        assert_eq!(port_access(true, 0x5d, 4), PortAccess::Direct);
        assert!(matches!(port_access(true, 0x5e, 4), PortAccess::Nothing(_)));
    }

    #[test]
    fn an_access_past_the_last_port_is_refused() {
        assert!(matches!(
            port_access(true, 0xfffe, 4),
            PortAccess::Nothing(_)
        ));
        assert_eq!(port_access(true, 0xfffc, 4), PortAccess::Direct);
    }

    #[test]
    fn the_cmos_pair_is_mediated_byte_by_byte() {
        assert_eq!(port_access(true, CMOS_INDEX, 1), PortAccess::CmosIndex);
        assert_eq!(port_access(true, CMOS_DATA, 1), PortAccess::CmosData);
        assert!(matches!(
            port_access(true, CMOS_INDEX, 2),
            PortAccess::Nothing(_)
        ));
        assert!(matches!(port_access(true, 0x6e, 4), PortAccess::Nothing(_)));
    }

    #[test]
    fn nothing_reads_as_all_ones() {
        assert_eq!(nothing_read(1), 0xff);
        assert_eq!(nothing_read(2), 0xffff);
        assert_eq!(nothing_read(4), 0xffff_ffff);
    }
}
