//! A PV vCPU's debug registers and the rules for setting them (Xen's
//! `set_debugreg`), shared by the `set_debugreg`/`get_debugreg` hypercalls
//! and the emulation of `mov` to and from `%dr0`..`%dr7`.
//!
//! The debug registers are loaded into the hardware while the vCPU runs,
//! so a guest breakpoint really fires (a `#DB` the hypervisor bounces to
//! the guest). The hardware compares breakpoint addresses in every ring,
//! ring 0 included, so the rules keep the guest from aiming at the
//! hypervisor:
//!
//! - DR0..DR3 (addresses) must be guest addresses: canonical and outside
//!   the hypervisor's range (`-EPERM` otherwise);
//! - DR6 and DR7 are 32-bit registers: upper bits set are `-EINVAL`; their
//!   reserved bits are forced to their fixed values (DR6 bits 4..11 and
//!   16..31 read as one, bit 12 as zero; DR7 bit 10 as one, bits 11, 12,
//!   14, 15 as zero: no RTM here);
//! - DR7's general-detect bit (GD, 13) is `-EPERM`: it would make the
//!   hypervisor's own debug-register accesses fault;
//! - an I/O breakpoint (R/W = 10) needs the guest's CR4.DE, else `-EPERM`;
//!   it is never loaded into the hardware (the real CR4.DE is clear and the
//!   hypervisor grants no ports), but kept so that the guest reads back
//!   what it wrote;
//! - DR4 and DR5 are the old names of DR6 and DR7, unless CR4.DE is set,
//!   when they are `-ENODEV` (the emulator's `#UD`); DR8 and above too.
//!
//! Error meanings, as in Xen: `-ENODEV` is a `#UD` for the emulator,
//! `-EINVAL` and `-EPERM` a `#GP`.

use crate::mm::pagewalk::check_guest_range;
use hypercall_abi::XenError;

/// DR6 bits that always read as one (no RTM).
pub const DR6_ALWAYS_ONE: u64 = 0xffff_0ff0;
/// DR6 bit 12 reads as zero.
const DR6_ALWAYS_ZERO: u64 = 1 << 12;
/// DR6.BS: the #DB was a single step.
pub const DR6_SINGLE_STEP: u64 = 1 << 14;
/// DR7 bit 10 reads as one.
pub const DR7_ALWAYS_ONE: u64 = 1 << 10;
/// DR7 bits 11, 12, 14, 15 read as zero.
const DR7_ALWAYS_ZERO: u64 = (1 << 11) | (1 << 12) | (1 << 14) | (1 << 15);
/// DR7.GD: general detect.
pub const DR7_GENERAL_DETECT: u64 = 1 << 13;
/// DR7's local and global enable bits of the four breakpoints.
pub const DR7_ENABLE_MASK: u64 = 0xff;
/// DR7's R/W value meaning "I/O breakpoint".
const DR7_IO: u64 = 0b10;

/// A vCPU's debug registers as the guest set them. The fields are
/// private so that every value went through [`DebugRegisters::set`]: the
/// hypervisor loads them into the processor on that guarantee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugRegisters {
    /// DR0..DR3: breakpoint addresses.
    address: [u64; 4],
    /// DR6: status.
    status: u64,
    /// DR7: control, as loaded into the hardware (no I/O breakpoints).
    control: u64,
    /// The enable bits of I/O breakpoints, which are kept here instead of
    /// in the hardware's DR7 (Xen's `dr7_emul`).
    io_enables: u64,
}

impl Default for DebugRegisters {
    fn default() -> Self {
        Self {
            address: [0; 4],
            status: DR6_ALWAYS_ONE,
            control: DR7_ALWAYS_ONE,
            io_enables: 0,
        }
    }
}

impl DebugRegisters {
    /// Whether any breakpoint is enabled, so that the hardware registers
    /// must be loaded when the vCPU runs.
    pub fn active(&self) -> bool {
        self.control & DR7_ENABLE_MASK != 0
    }

    /// DR0..DR3, as loaded into the processor.
    pub fn addresses(&self) -> [u64; 4] {
        self.address
    }

    /// DR6, as loaded into the processor.
    pub fn status(&self) -> u64 {
        self.status
    }

    /// DR7 without the I/O breakpoints, as loaded into the processor.
    pub fn control(&self) -> u64 {
        self.control
    }

    /// Adds the status bits of a `#DB` the processor reported (its DR6) to
    /// the guest's DR6.
    pub fn record_status(&mut self, hardware_status: u64) {
        self.status |= hardware_status & 0xffff_ffff & !DR6_ALWAYS_ONE & !DR6_ALWAYS_ZERO;
    }

    /// Sets debug register `register` to `value` under the rules above.
    /// `debugging_extensions` is the guest's CR4.DE.
    pub fn set(
        &mut self,
        register: u64,
        value: u64,
        debugging_extensions: bool,
    ) -> Result<(), XenError> {
        match register {
            0..=3 => {
                if check_guest_range(value, 1).is_err() {
                    return Err(XenError::EPERM);
                }
                self.address[register as usize] = value;
            }
            4 | 6 => {
                if register == 4 && debugging_extensions {
                    return Err(XenError::ENODEV);
                }
                if value >> 32 != 0 {
                    return Err(XenError::EINVAL);
                }
                self.status = (value | DR6_ALWAYS_ONE) & !DR6_ALWAYS_ZERO;
            }
            5 | 7 => {
                if register == 5 && debugging_extensions {
                    return Err(XenError::ENODEV);
                }
                if value >> 32 != 0 {
                    return Err(XenError::EINVAL);
                }
                let value = (value | DR7_ALWAYS_ONE) & !DR7_ALWAYS_ZERO;
                if value & DR7_GENERAL_DETECT != 0 {
                    return Err(XenError::EPERM);
                }
                let mut io_enables = 0;
                if value & DR7_ENABLE_MASK != 0 {
                    for breakpoint in 0..4 {
                        let kind = (value >> (16 + 4 * breakpoint)) & 3;
                        if kind == DR7_IO {
                            if !debugging_extensions {
                                return Err(XenError::EPERM);
                            }
                            io_enables |= value & (3 << (2 * breakpoint));
                        }
                    }
                }
                self.io_enables = io_enables;
                self.control = value & !io_enables;
            }
            _ => return Err(XenError::ENODEV),
        }
        Ok(())
    }

    /// Reads debug register `register` (`-ENODEV` for one that does not
    /// exist, or DR4/DR5 with CR4.DE set).
    pub fn get(&self, register: u64, debugging_extensions: bool) -> Result<u64, XenError> {
        match register {
            0..=3 => Ok(self.address[register as usize]),
            4 if debugging_extensions => Err(XenError::ENODEV),
            4 | 6 => Ok(self.status),
            5 if debugging_extensions => Err(XenError::ENODEV),
            5 | 7 => Ok(self.control | self.io_enables),
            _ => Err(XenError::ENODEV),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakpoint_addresses_must_be_the_guests() {
        let mut registers = DebugRegisters::default();
        assert_eq!(registers.set(0, 0x40_1000, false), Ok(()));
        assert_eq!(registers.set(3, 0xffff_ffff_8000_0000, false), Ok(()));
        for hypervisor in [
            0xffff_8000_0000_0000u64,
            0xffff_82d0_4000_0000,
            0xffff_87ff_ffff_fff8,
        ] {
            assert_eq!(registers.set(1, hypervisor, false), Err(XenError::EPERM));
        }
        assert_eq!(
            registers.set(2, 0x0000_8000_0000_0000, false),
            Err(XenError::EPERM),
            "non-canonical"
        );
        assert_eq!(registers.get(0, false), Ok(0x40_1000));
        assert_eq!(
            registers.get(1, false),
            Ok(0),
            "a refused write changes nothing"
        );
    }

    #[test]
    fn reserved_bits_take_their_fixed_values() {
        let mut registers = DebugRegisters::default();
        registers.set(6, 0, false).unwrap();
        assert_eq!(registers.get(6, false), Ok(0xffff_0ff0));
        registers.set(6, 0x1000 | 0x1, false).unwrap();
        assert_eq!(registers.get(6, false), Ok(0xffff_0ff1));
        registers.set(7, 0, false).unwrap();
        assert_eq!(registers.get(7, false), Ok(0x400));
        registers.set(7, 0xd801, false).unwrap(); // bits 11, 12, 14, 15 and L0
        assert_eq!(registers.get(7, false), Ok(0x401));
        assert!(registers.active());
    }

    #[test]
    fn a_debug_exception_adds_its_status() {
        let mut registers = DebugRegisters::default();
        registers.record_status(DR6_ALWAYS_ONE | DR6_SINGLE_STEP | 1 | (1 << 40));
        assert_eq!(registers.status(), DR6_ALWAYS_ONE | DR6_SINGLE_STEP | 1);
    }

    #[test]
    fn upper_halves_and_general_detect_are_refused() {
        let mut registers = DebugRegisters::default();
        assert_eq!(registers.set(6, 1 << 32, false), Err(XenError::EINVAL));
        assert_eq!(registers.set(7, 1 << 40, false), Err(XenError::EINVAL));
        assert_eq!(
            registers.set(7, DR7_GENERAL_DETECT, false),
            Err(XenError::EPERM)
        );
    }

    #[test]
    fn io_breakpoints_need_debugging_extensions() {
        let mut registers = DebugRegisters::default();
        // Breakpoint 1 enabled locally (bit 2), R/W1 = 10 (I/O).
        let io = (1 << 2) | (0b10 << 20);
        assert_eq!(registers.set(7, io, false), Err(XenError::EPERM));
        assert_eq!(registers.set(7, io, true), Ok(()));
        assert!(
            !registers.active(),
            "I/O breakpoints stay out of the hardware"
        );
        assert_eq!(registers.get(7, true), Ok(io | 0x400));
    }

    #[test]
    fn dr4_and_dr5_alias_unless_debugging_extensions() {
        let mut registers = DebugRegisters::default();
        registers.set(5, 0x1, false).unwrap();
        assert_eq!(registers.get(7, false), Ok(0x401));
        assert_eq!(registers.get(4, false), Ok(0xffff_0ff0));
        assert_eq!(registers.get(4, true), Err(XenError::ENODEV));
        assert_eq!(registers.set(5, 0, true), Err(XenError::ENODEV));
        assert_eq!(registers.get(8, false), Err(XenError::ENODEV));
        assert_eq!(registers.set(8, 0, false), Err(XenError::ENODEV));
    }
}
