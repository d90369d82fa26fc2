//! Page-table hypercalls: `mmu_update`, `mmuext_op`, `update_va_mapping`, `vm_assist` (`xen.h`).
//!
//! A PV guest's page tables are read-only to it. It changes them by asking
//! Xen, which checks every entry (the frame must belong to the guest, and a
//! writable mapping may not point at a page-table page) before writing it.
//!
//! - `mmu_update(reqs, count, done, foreigndom)`: an array of [`MmuUpdate`];
//!   Xen writes the number completed to `*done` (if non-null).
//! - `mmuext_op(ops, count, done, foreigndom)`: an array of [`MmuextOp`].
//! - `update_va_mapping(va, pte, flags)`: replace the entry that maps one
//!   virtual address, then flush as `flags` (`UVMF_*`) says.
//!
//! `foreigndom` is `DOMID_SELF`, or a domain whose frames the caller (a
//! privileged domain) may map.

use bytemuck::{Pod, Zeroable};
use core::mem::{offset_of, size_of};

abi_enum! {
    /// What an [`MmuUpdate`] does, encoded in the low two bits of its `ptr`
    /// (`MMU_*`). The rest of `ptr` is an 8-byte-aligned machine address.
    pub enum MmuUpdateKind: u8 {
        /// Checked write of `val` to the page-table entry at machine address
        /// `ptr`.
        NormalPtUpdate = 0 => "MMU_NORMAL_PT_UPDATE",
        /// Set the M2P entry of machine frame `ptr >> PAGE_SHIFT` to the PFN
        /// `val`.
        MachphysUpdate = 1 => "MMU_MACHPHYS_UPDATE",
        /// Like a normal update, but keep the entry's Accessed and Dirty bits.
        PtUpdatePreserveAd = 2 => "MMU_PT_UPDATE_PRESERVE_AD",
        /// Like a normal update, with `val` never translated (HVM only).
        PtUpdateNoTranslate = 3 => "MMU_PT_UPDATE_NO_TRANSLATE",
    }
}

/// Mask of the low bits of [`MmuUpdate::ptr`] that hold the [`MmuUpdateKind`].
pub const MMU_UPDATE_KIND_MASK: u64 = 0b11;

/// Set in the count argument of a continued `mmu_update` or `mmuext_op`
/// (Xen's `MMU_UPDATE_PREEMPTED`, bit 31): the call is the hypervisor's
/// continuation of an earlier one, the count is what is left, and `*done`
/// already holds what the earlier part did. A guest never sets it itself.
pub const MMU_UPDATE_PREEMPTED: u64 = 1 << 31;

/// One request to `mmu_update` (`mmu_update`), 16 bytes. Both fields are IN.
///
/// ```text
///  63                                             3  2 1   0
/// +------------------------------------------------+---+-----+
/// | machine address of the entry (8-byte aligned)  | 0 | kind|
/// +------------------------------------------------+---+-----+
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct MmuUpdate {
    /// Machine address of the target, with the [`MmuUpdateKind`] in bits 0-1.
    pub ptr: u64,
    /// New contents of the entry (a PTE holding a machine address), or a PFN
    /// for `MMU_MACHPHYS_UPDATE`.
    pub val: u64,
}

const _: () = assert!(size_of::<MmuUpdate>() == 16);
const _: () = assert!(offset_of!(MmuUpdate, val) == 8);

impl MmuUpdate {
    /// A request of `kind` at `machine_address` (whose low bits are ignored).
    pub const fn new(kind: MmuUpdateKind, machine_address: u64, val: u64) -> Self {
        Self {
            ptr: (machine_address & !MMU_UPDATE_KIND_MASK) | kind as u64,
            val,
        }
    }

    /// The kind of request, from the low bits of `ptr`. Every two-bit value
    /// is defined, so this cannot fail.
    pub const fn kind(&self) -> MmuUpdateKind {
        match self.ptr & MMU_UPDATE_KIND_MASK {
            0 => MmuUpdateKind::NormalPtUpdate,
            1 => MmuUpdateKind::MachphysUpdate,
            2 => MmuUpdateKind::PtUpdatePreserveAd,
            _ => MmuUpdateKind::PtUpdateNoTranslate,
        }
    }

    /// The machine address in `ptr`, without the kind bits.
    pub const fn machine_address(&self) -> u64 {
        self.ptr & !MMU_UPDATE_KIND_MASK
    }
}

abi_enum! {
    /// An extended MMU command (`MMUEXT_*`), in [`MmuextOp::cmd`].
    pub enum MmuextCmd: u32 {
        /// Validate frame `arg1.mfn` as an L1 table and pin that type.
        PinL1Table = 0 => "MMUEXT_PIN_L1_TABLE",
        /// Validate and pin frame `arg1.mfn` as an L2 table.
        PinL2Table = 1 => "MMUEXT_PIN_L2_TABLE",
        /// Validate and pin frame `arg1.mfn` as an L3 table.
        PinL3Table = 2 => "MMUEXT_PIN_L3_TABLE",
        /// Validate and pin frame `arg1.mfn` as an L4 table.
        PinL4Table = 3 => "MMUEXT_PIN_L4_TABLE",
        /// Drop the pin on frame `arg1.mfn`.
        UnpinTable = 4 => "MMUEXT_UNPIN_TABLE",
        /// Switch the kernel-mode page-table base (CR3) to L4 frame `arg1.mfn`.
        NewBaseptr = 5 => "MMUEXT_NEW_BASEPTR",
        /// Flush this vCPU's TLB.
        TlbFlushLocal = 6 => "MMUEXT_TLB_FLUSH_LOCAL",
        /// Flush virtual address `arg1.linear_addr` from this vCPU's TLB.
        InvlpgLocal = 7 => "MMUEXT_INVLPG_LOCAL",
        /// Flush the TLBs of the vCPUs in the bitmap at `arg2.vcpumask`.
        TlbFlushMulti = 8 => "MMUEXT_TLB_FLUSH_MULTI",
        /// Flush `arg1.linear_addr` on the vCPUs in `arg2.vcpumask`.
        InvlpgMulti = 9 => "MMUEXT_INVLPG_MULTI",
        /// Flush every vCPU's TLB.
        TlbFlushAll = 10 => "MMUEXT_TLB_FLUSH_ALL",
        /// Flush `arg1.linear_addr` on every vCPU.
        InvlpgAll = 11 => "MMUEXT_INVLPG_ALL",
        /// Write back and invalidate this CPU's caches.
        FlushCache = 12 => "MMUEXT_FLUSH_CACHE",
        /// Install an LDT at `arg1.linear_addr` with `arg2.nr_ents` entries.
        SetLdt = 13 => "MMUEXT_SET_LDT",
        /// Set the user-mode page-table base to L4 frame `arg1.mfn` (x86_64
        /// PV: guest user space runs on its own L4).
        NewUserBaseptr = 15 => "MMUEXT_NEW_USER_BASEPTR",
        /// Zero frame `arg1.mfn`.
        ClearPage = 16 => "MMUEXT_CLEAR_PAGE",
        /// Copy frame `arg2.src_mfn` to frame `arg1.mfn`.
        CopyPage = 17 => "MMUEXT_COPY_PAGE",
        /// Write back and invalidate caches on all CPUs.
        FlushCacheGlobal = 18 => "MMUEXT_FLUSH_CACHE_GLOBAL",
        /// Mark frame `arg1.mfn` as the head of a superpage.
        MarkSuper = 19 => "MMUEXT_MARK_SUPER",
        /// Undo `MarkSuper`.
        UnmarkSuper = 20 => "MMUEXT_UNMARK_SUPER",
    }
}

/// One request to `mmuext_op` (`mmuext_op`), 24 bytes. All fields are IN.
///
/// `arg1` and `arg2` are C unions whose meaning depends on `cmd`:
///
/// | `cmd`                                          | `arg1`        | `arg2`      |
/// |------------------------------------------------|---------------|-------------|
/// | PIN_L*_TABLE, UNPIN_TABLE, NEW_BASEPTR, NEW_USER_BASEPTR, CLEAR_PAGE, MARK_SUPER, UNMARK_SUPER | `mfn` | -  |
/// | COPY_PAGE                                      | `mfn` (dest)  | `src_mfn`   |
/// | INVLPG_LOCAL, INVLPG_ALL                       | `linear_addr` | -           |
/// | SET_LDT                                        | `linear_addr` | `nr_ents` (u32) |
/// | TLB_FLUSH_MULTI                                | -             | `vcpumask` (guest VA of a bitmap) |
/// | INVLPG_MULTI                                   | `linear_addr` | `vcpumask`  |
/// | TLB_FLUSH_LOCAL, TLB_FLUSH_ALL, FLUSH_CACHE, FLUSH_CACHE_GLOBAL | -       | -           |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct MmuextOp {
    /// An [`MmuextCmd`] number.
    pub cmd: u32,
    /// Padding; zero.
    pub pad: u32,
    /// First argument: an MFN or a linear (virtual) address.
    pub arg1: u64,
    /// Second argument: an entry count, a vCPU bitmap address or a source MFN.
    pub arg2: u64,
}

const _: () = assert!(size_of::<MmuextOp>() == 24);
const _: () = assert!(offset_of!(MmuextOp, arg1) == 8);
const _: () = assert!(offset_of!(MmuextOp, arg2) == 16);

impl MmuextOp {
    /// A request with both arguments given.
    pub const fn new(cmd: MmuextCmd, arg1: u64, arg2: u64) -> Self {
        Self {
            cmd: cmd as u32,
            pad: 0,
            arg1,
            arg2,
        }
    }

    /// A request whose only argument is a machine frame number (pin, unpin,
    /// new base pointer, clear page, mark superpage).
    pub const fn with_mfn(cmd: MmuextCmd, mfn: u64) -> Self {
        Self::new(cmd, mfn, 0)
    }

    /// The command, if `cmd` holds a known one.
    pub const fn command(&self) -> Option<MmuextCmd> {
        MmuextCmd::from_raw(self.cmd)
    }
}

/// `update_va_mapping` flags: do not flush.
pub const UVMF_NONE: u64 = 0;
/// `update_va_mapping` flags: flush the whole TLB.
pub const UVMF_TLB_FLUSH: u64 = 1;
/// `update_va_mapping` flags: flush only the entry for this address.
pub const UVMF_INVLPG: u64 = 2;
/// Mask of the flush-type bits of `update_va_mapping` flags.
pub const UVMF_FLUSHTYPE_MASK: u64 = 3;
/// `update_va_mapping` flags: flush on the vCPUs in the bitmap whose address
/// is in the upper bits of the flags.
pub const UVMF_MULTI: u64 = 0;
/// `update_va_mapping` flags: flush on this vCPU only.
pub const UVMF_LOCAL: u64 = 0;
/// `update_va_mapping` flags: flush on every vCPU of the domain.
pub const UVMF_ALL: u64 = 1 << 2;

/// `vm_assist` command: turn an assist on.
pub const VMASST_CMD_ENABLE: u64 = 0;
/// `vm_assist` command: turn an assist off.
pub const VMASST_CMD_DISABLE: u64 = 1;
/// `vm_assist` type: emulate 4 GB segments (32-bit guests).
pub const VMASST_TYPE_4GB_SEGMENTS: u64 = 0;
/// `vm_assist` type: notify on 4 GB segment emulation.
pub const VMASST_TYPE_4GB_SEGMENTS_NOTIFY: u64 = 1;
/// `vm_assist` type: let the guest write page tables directly, with Xen
/// trapping and emulating the writes.
pub const VMASST_TYPE_WRITABLE_PAGETABLES: u64 = 2;
/// `vm_assist` type: PAE page directories above 4 GB (32-bit guests).
pub const VMASST_TYPE_PAE_EXTENDED_CR3: u64 = 3;
/// `vm_assist` type: architectural IOPL handling.
pub const VMASST_TYPE_ARCHITECTURAL_IOPL: u64 = 4;
/// `vm_assist` type: runstate update flag.
pub const VMASST_TYPE_RUNSTATE_UPDATE_FLAG: u64 = 5;
/// `vm_assist` type: kernel mappings of the M2P are hidden from user mode.
pub const VMASST_TYPE_M2P_STRICT: u64 = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmu_update_encoding() {
        let request = MmuUpdate::new(MmuUpdateKind::MachphysUpdate, 0x1234_5000, 7);
        assert_eq!(request.ptr, 0x1234_5001);
        assert_eq!(request.kind(), MmuUpdateKind::MachphysUpdate);
        assert_eq!(request.machine_address(), 0x1234_5000);
    }

    #[test]
    fn mmuext_numbers() {
        assert_eq!(MmuextCmd::NewBaseptr.raw(), 5);
        assert_eq!(MmuextCmd::NewUserBaseptr.raw(), 15);
        assert_eq!(MmuextCmd::MarkSuper.raw(), 19);
        assert_eq!(MmuextCmd::try_from(14), Err(crate::UnknownValue(14)));
        let op = MmuextOp::with_mfn(MmuextCmd::PinL4Table, 0x42);
        assert_eq!(op.command(), Some(MmuextCmd::PinL4Table));
        assert_eq!(op.arg1, 0x42);
        for &cmd in MmuextCmd::ALL {
            assert_eq!(MmuextCmd::try_from(cmd.raw()), Ok(cmd));
        }
    }
}
