//! The hypercall numbers of `xen/include/public/xen.h`.
//!
//! A 64-bit PV guest kernel makes a hypercall with the `syscall`
//! instruction: the number goes in `rax`, up to five arguments in `rdi`,
//! `rsi`, `rdx`, `r10` and `r8`, and the result comes back in `rax` (see
//! [`crate::error`]). `rcx` and `r11` are destroyed by `syscall` itself.
//! Xen tells a `syscall` made from guest kernel mode (a hypercall) apart from
//! one made from guest user mode, which it bounces to the guest kernel's
//! registered syscall callback.
//!
//! Older guests call into a hypercall page instead: a page that Xen fills
//! with one [`HYPERCALL_PAGE_ENTRY_SIZE`]-byte stub per number, each doing
//! `push %rcx; push %r11; mov $nr, %eax; syscall; pop %r11; pop %rcx; ret`
//! (the `iret` stub also pushes `rax` and never returns).

/// Size in bytes of one stub in the hypercall page: stub `n` starts at byte
/// `n * 32`.
pub const HYPERCALL_PAGE_ENTRY_SIZE: usize = 32;

/// Number of slots in Xen's hypercall table. Hypercall numbers are below
/// this; anything at or above it is answered with `-ENOSYS`.
pub const NR_HYPERCALLS: usize = 64;

abi_enum! {
    /// A hypercall number, as placed in `rax` (`__HYPERVISOR_*` in `xen.h`).
    ///
    /// [`Hypercall::name`] gives Xen's name without the `__HYPERVISOR_`
    /// prefix, such as `"sched_op"`. Numbers 11, 43 to 47 and 56 to 63 are
    /// unused; 6, 16 and 19 are the pre-3.0 forms of `sched_op`,
    /// `event_channel_op` and `physdev_op`, kept for old guests.
    pub enum Hypercall: u64 {
        /// Install the virtual IDT: an array of `trap_info` ended by an entry
        /// whose address is 0.
        SetTrapTable = 0 => "set_trap_table",
        /// Apply a batch of checked page-table writes (`mmu_update`).
        MmuUpdate = 1 => "mmu_update",
        /// Install a new GDT made of guest frames.
        SetGdt = 2 => "set_gdt",
        /// Set the stack segment and pointer Xen switches to on entry to the
        /// guest kernel.
        StackSwitch = 3 => "stack_switch",
        /// Register the event and failsafe callbacks (superseded by
        /// `callback_op`).
        SetCallbacks = 4 => "set_callbacks",
        /// Set or clear CR0.TS lazily for the guest's FPU switching.
        FpuTaskswitch = 5 => "fpu_taskswitch",
        /// Old form of `sched_op` (arguments passed by value).
        SchedOpCompat = 6 => "sched_op_compat",
        /// Platform-wide operations for the control domain (formerly
        /// `dom0_op`).
        PlatformOp = 7 => "platform_op",
        /// Write a debug register.
        SetDebugreg = 8 => "set_debugreg",
        /// Read a debug register.
        GetDebugreg = 9 => "get_debugreg",
        /// Write one GDT or LDT descriptor, checked by Xen.
        UpdateDescriptor = 10 => "update_descriptor",
        /// Memory reservation and physical-map operations (`XENMEM_*`).
        MemoryOp = 12 => "memory_op",
        /// Run a batch of hypercalls described by multicall entries.
        Multicall = 13 => "multicall",
        /// Change the page-table entry that maps one virtual address.
        UpdateVaMapping = 14 => "update_va_mapping",
        /// Set the vCPU's one-shot timer to an absolute system time.
        SetTimerOp = 15 => "set_timer_op",
        /// Old form of `event_channel_op` (one structure with the command inside).
        EventChannelOpCompat = 16 => "event_channel_op_compat",
        /// Query the hypervisor's version and features (`XENVER_*`).
        XenVersion = 17 => "xen_version",
        /// Read or write the hypervisor's console (`CONSOLEIO_*`).
        ConsoleIo = 18 => "console_io",
        /// Old form of `physdev_op`.
        PhysdevOpCompat = 19 => "physdev_op_compat",
        /// Grant-table operations (`GNTTABOP_*`).
        GrantTableOp = 20 => "grant_table_op",
        /// Enable or disable a virtual-machine assist (`VMASST_*`).
        VmAssist = 21 => "vm_assist",
        /// `update_va_mapping` with a foreign domain's frame.
        UpdateVaMappingOtherdomain = 22 => "update_va_mapping_otherdomain",
        /// Return from a guest exception or event handler, reading an
        /// `iret_context` from the guest stack. Does not return on success.
        Iret = 23 => "iret",
        /// Per-vCPU operations (`VCPUOP_*`).
        VcpuOp = 24 => "vcpu_op",
        /// Set the FS or GS base (`SEGBASE_*`).
        SetSegmentBase = 25 => "set_segment_base",
        /// Extended MMU operations: pinning, base pointers, TLB flushes
        /// (`MMUEXT_*`).
        MmuextOp = 26 => "mmuext_op",
        /// Security-module (XSM/FLASK) operations.
        XsmOp = 27 => "xsm_op",
        /// Register an NMI callback (superseded by `callback_op`).
        NmiOp = 28 => "nmi_op",
        /// Scheduler operations: yield, block, shutdown (`SCHEDOP_*`).
        SchedOp = 29 => "sched_op",
        /// Register or unregister callbacks (`CALLBACKOP_*`).
        CallbackOp = 30 => "callback_op",
        /// Profiling (dropped in Xen 4.22).
        XenoprofOp = 31 => "xenoprof_op",
        /// Event-channel operations (`EVTCHNOP_*`).
        EventChannelOp = 32 => "event_channel_op",
        /// Physical-device operations.
        PhysdevOp = 33 => "physdev_op",
        /// Hardware-virtual-machine operations.
        HvmOp = 34 => "hvm_op",
        /// System control for the control domain; project-defined payloads,
        /// see [`crate::sysctl`].
        Sysctl = 35 => "sysctl",
        /// Domain control for the control domain; project-defined payloads,
        /// see [`crate::domctl`].
        Domctl = 36 => "domctl",
        /// Load and run a crash kernel.
        KexecOp = 37 => "kexec_op",
        /// Transcendent memory (removed from Xen).
        TmemOp = 38 => "tmem_op",
        /// Argo inter-domain messaging.
        ArgoOp = 39 => "argo_op",
        /// Performance-monitoring unit.
        XenpmuOp = 40 => "xenpmu_op",
        /// Device-model operations.
        DmOp = 41 => "dm_op",
        /// Hypervisor file system.
        HypfsOp = 42 => "hypfs_op",
        /// Architecture-specific hypercall 0 (x86: machine-check handling).
        Arch0 = 48 => "arch_0",
        /// Architecture-specific hypercall 1.
        Arch1 = 49 => "arch_1",
        /// Architecture-specific hypercall 2.
        Arch2 = 50 => "arch_2",
        /// Architecture-specific hypercall 3.
        Arch3 = 51 => "arch_3",
        /// Architecture-specific hypercall 4.
        Arch4 = 52 => "arch_4",
        /// Architecture-specific hypercall 5.
        Arch5 = 53 => "arch_5",
        /// Architecture-specific hypercall 6.
        Arch6 = 54 => "arch_6",
        /// Architecture-specific hypercall 7.
        Arch7 = 55 => "arch_7",
    }
}

impl Hypercall {
    /// Byte offset of this hypercall's stub within the hypercall page.
    pub const fn page_offset(self) -> usize {
        self as usize * HYPERCALL_PAGE_ENTRY_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_xen() {
        assert_eq!(Hypercall::SetTrapTable as u64, 0);
        assert_eq!(Hypercall::MemoryOp as u64, 12);
        assert_eq!(Hypercall::XenVersion as u64, 17);
        assert_eq!(Hypercall::ConsoleIo as u64, 18);
        assert_eq!(Hypercall::Iret as u64, 23);
        assert_eq!(Hypercall::MmuextOp as u64, 26);
        assert_eq!(Hypercall::SchedOp as u64, 29);
        assert_eq!(Hypercall::EventChannelOp as u64, 32);
        assert_eq!(Hypercall::Sysctl as u64, 35);
        assert_eq!(Hypercall::Domctl as u64, 36);
        assert_eq!(Hypercall::Arch7 as u64, 55);
        assert_eq!(Hypercall::Iret.page_offset(), 23 * 32);
    }

    #[test]
    fn every_hypercall_round_trips() {
        for &call in Hypercall::ALL {
            assert!((call as usize) < NR_HYPERCALLS);
            assert_eq!(Hypercall::try_from(call as u64), Ok(call));
            assert_eq!(Hypercall::from_register(call.raw()), Some(call));
            assert!(!call.name().is_empty());
        }
        let names: std::collections::HashSet<_> =
            Hypercall::ALL.iter().map(|call| call.name()).collect();
        assert_eq!(names.len(), Hypercall::ALL.len(), "names are unique");
        assert_eq!(Hypercall::SchedOp.name(), "sched_op");
        assert_eq!(Hypercall::SchedOp.to_string(), "sched_op");
    }

    #[test]
    fn unknown_numbers_are_rejected() {
        for number in [11, 43, 47, 56, 63, 64, u64::MAX] {
            assert_eq!(
                Hypercall::try_from(number),
                Err(crate::UnknownValue(number))
            );
        }
    }
}
