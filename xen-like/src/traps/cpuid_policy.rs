//! The PV CPUID policy: what a PV guest sees when it asks the hypervisor
//! for `cpuid` (with Xen's forced-emulation prefix).
//!
//! A plain `cpuid` does not trap on these processors: a PV kernel that
//! executes it sees the real hardware, including features it cannot use
//! (VMX, SVM, MONITOR/MWAIT, XSAVE state the hypervisor does not switch).
//! So PV kernels ask the hypervisor instead, with `ud2; .ascii "xen";
//! cpuid`, and get this filtered view, as Xen's PV policy filters:
//!
//! - **an allow-list, not a deny-list**: each feature word is masked with
//!   the bits a PV guest may use here. A feature bit a newer CPU adds stays
//!   hidden until someone decides it is safe, instead of leaking through;
//! - **hidden because a PV guest cannot have them**: VMX and SVM (no nested
//!   virtualization), SMX, MONITOR/MWAIT (a guest must block with
//!   `sched_op`, not sleep the physical CPU), the local APIC, x2APIC and the
//!   TSC deadline timer (PV guests get events and `set_timer_op`), PCID,
//!   the thermal, power and performance-monitoring leaves, debug store;
//! - **hidden because this hypervisor does not support them for guests**:
//!   XSAVE and everything that needs its state (AVX, AVX2, FMA, F16C,
//!   AVX-512), since the hypervisor switches guest FPU state with `fxsave`
//!   only; FSGSBASE (guests use `set_segment_base`); SYSENTER (a 64-bit PV
//!   guest enters with `syscall`); the speculation-control MSRs, which are
//!   not emulated;
//! - **added**: the HYPERVISOR bit (leaf 1, ECX bit 31) and Xen's
//!   hypervisor leaves at 0x40000000: the signature "XenVMMXenVMM", the
//!   version (4.17, as this hypervisor's ABI) and the hypercall page's
//!   location (one page, installed by writing MSR 0x40000000);
//! - **clamped**: the largest basic leaf to 0xD and the largest extended
//!   leaf to 0x80000008; leaves above them read as zeros.
//!
//! The policy is a pure function of the host's answers, so it is tested on
//! the host with made-up CPUs.

/// The four registers `cpuid` returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuidLeaf {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// The first of Xen's hypervisor leaves.
pub const HYPERVISOR_LEAF_BASE: u32 = 0x4000_0000;
/// The last hypervisor leaf offered: signature, version, hypercall page.
pub const HYPERVISOR_LEAF_LAST: u32 = HYPERVISOR_LEAF_BASE + 2;
/// Xen's signature in EBX, ECX, EDX of leaf 0x40000000: "XenVMMXenVMM".
pub const XEN_SIGNATURE: [u32; 3] = [0x566e_6558, 0x6558_4d4d, 0x4d4d_566e];
/// Xen's version in leaf 0x40000001: major in the high half, minor in the
/// low half (4.17).
pub const XEN_VERSION: u32 = (4 << 16) | 17;
/// The MSR a guest writes to have the hypercall page installed (leaf
/// 0x40000002 EBX).
pub const HYPERCALL_PAGE_MSR: u32 = 0x4000_0000;

/// The largest basic leaf a PV guest sees.
pub const MAX_BASIC_LEAF: u32 = 0xd;
/// The largest extended leaf a PV guest sees.
pub const MAX_EXTENDED_LEAF: u32 = 0x8000_0008;

/// Leaf 1 EDX: FPU, DE, TSC, MSR, PAE, CX8, CMOV, PAT, CLFLUSH, MMX, FXSR,
/// SSE, SSE2.
pub const LEAF1_EDX_ALLOWED: u32 = (1 << 0)
    | (1 << 2)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 8)
    | (1 << 15)
    | (1 << 16)
    | (1 << 19)
    | (1 << 23)
    | (1 << 24)
    | (1 << 25)
    | (1 << 26);
/// Leaf 1 ECX: SSE3, PCLMULQDQ, SSSE3, CX16, SSE4.1, SSE4.2, MOVBE,
/// POPCNT, AES, RDRAND.
pub const LEAF1_ECX_ALLOWED: u32 = (1 << 0)
    | (1 << 1)
    | (1 << 9)
    | (1 << 13)
    | (1 << 19)
    | (1 << 20)
    | (1 << 22)
    | (1 << 23)
    | (1 << 25)
    | (1 << 30);
/// Leaf 1 ECX bit 31: "running under a hypervisor".
pub const LEAF1_ECX_HYPERVISOR: u32 = 1 << 31;
/// Leaf 1 ECX bits named in the tests and the docs.
pub const LEAF1_ECX_MONITOR: u32 = 1 << 3;
pub const LEAF1_ECX_VMX: u32 = 1 << 5;
pub const LEAF1_ECX_XSAVE: u32 = 1 << 26;
/// Leaf 7 EBX: BMI1, BMI2, ERMS, RDSEED, ADX, CLFLUSHOPT, CLWB, SHA.
pub const LEAF7_EBX_ALLOWED: u32 =
    (1 << 3) | (1 << 8) | (1 << 9) | (1 << 18) | (1 << 19) | (1 << 23) | (1 << 24) | (1 << 29);
/// Leaf 0x80000001 EDX: the leaf-1 bits AMD mirrors (FPU, DE, TSC, MSR,
/// PAE, CX8, CMOV, PAT, MMX, FXSR), SYSCALL, NX, MMXEXT, RDTSCP, LM.
pub const EXTENDED1_EDX_ALLOWED: u32 = (1 << 0)
    | (1 << 2)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 8)
    | (1 << 15)
    | (1 << 16)
    | (1 << 23)
    | (1 << 24)
    | (1 << 11)
    | (1 << 20)
    | (1 << 22)
    | (1 << 27)
    | (1 << 29);
/// Leaf 0x80000001 ECX: LAHF/SAHF, ABM (LZCNT), SSE4A, misaligned SSE,
/// PREFETCHW. (SVM, bit 2, is not among them.)
pub const EXTENDED1_ECX_ALLOWED: u32 = (1 << 0) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8);
/// Leaf 0x80000001 ECX bit 2.
pub const EXTENDED1_ECX_SVM: u32 = 1 << 2;

/// What a PV guest sees for `cpuid` leaf `leaf`, sub-leaf `subleaf`, given
/// what the hardware answers (`host(leaf, subleaf)`).
pub fn pv_cpuid(host: impl Fn(u32, u32) -> CpuidLeaf, leaf: u32, subleaf: u32) -> CpuidLeaf {
    let zero = CpuidLeaf::default();
    match leaf {
        0 => {
            let real = host(0, 0);
            CpuidLeaf {
                eax: real.eax.min(MAX_BASIC_LEAF),
                ..real // the vendor string
            }
        }
        1..=MAX_BASIC_LEAF => {
            if leaf > host(0, 0).eax {
                return zero;
            }
            basic_leaf(&host, leaf, subleaf)
        }
        HYPERVISOR_LEAF_BASE..=HYPERVISOR_LEAF_LAST => hypervisor_leaf(leaf),
        0x8000_0000 => {
            let real = host(0x8000_0000, 0);
            CpuidLeaf {
                eax: real.eax.min(MAX_EXTENDED_LEAF),
                ..real
            }
        }
        0x8000_0001..=MAX_EXTENDED_LEAF => {
            if leaf > host(0x8000_0000, 0).eax {
                return zero;
            }
            extended_leaf(&host, leaf)
        }
        _ => zero,
    }
}

fn basic_leaf(host: &impl Fn(u32, u32) -> CpuidLeaf, leaf: u32, subleaf: u32) -> CpuidLeaf {
    match leaf {
        1 => {
            let real = host(1, 0);
            CpuidLeaf {
                // Family, model, stepping.
                eax: real.eax,
                // Keep the brand index and CLFLUSH line size; one logical
                // processor, APIC ID 0 (vCPU 0; there is no APIC anyway).
                ebx: real.ebx & 0xffff,
                ecx: (real.ecx & LEAF1_ECX_ALLOWED) | LEAF1_ECX_HYPERVISOR,
                edx: real.edx & LEAF1_EDX_ALLOWED,
            }
        }
        // Cache and TLB descriptors: harmless facts about the hardware.
        2 => host(2, 0),
        4 => {
            let real = host(4, subleaf);
            CpuidLeaf {
                // Bits 31..26 count cores per package: one vCPU.
                eax: real.eax & 0x03ff_ffff,
                ..real
            }
        }
        7 if subleaf == 0 => {
            let real = host(7, 0);
            CpuidLeaf {
                eax: 0, // no further sub-leaves
                ebx: real.ebx & LEAF7_EBX_ALLOWED,
                ecx: 0,
                edx: 0,
            }
        }
        // 3 (serial number), 5 (MONITOR), 6 (power), 8, 9 (DCA), 0xA
        // (performance monitoring), 0xB (topology), 0xC, 0xD (XSAVE, which
        // is hidden) and other sub-leaves of 7: nothing for a PV guest.
        _ => CpuidLeaf::default(),
    }
}

fn extended_leaf(host: &impl Fn(u32, u32) -> CpuidLeaf, leaf: u32) -> CpuidLeaf {
    match leaf {
        0x8000_0001 => {
            let real = host(leaf, 0);
            CpuidLeaf {
                eax: real.eax,
                ebx: 0,
                ecx: real.ecx & EXTENDED1_ECX_ALLOWED,
                edx: real.edx & EXTENDED1_EDX_ALLOWED,
            }
        }
        // The brand string and the L1/L2 cache descriptions.
        0x8000_0002..=0x8000_0006 => host(leaf, 0),
        0x8000_0008 => {
            let real = host(leaf, 0);
            CpuidLeaf {
                // Physical and virtual address sizes only.
                eax: real.eax & 0xffff,
                ..CpuidLeaf::default()
            }
        }
        // 0x80000007 (power management, invariant TSC): hidden.
        _ => CpuidLeaf::default(),
    }
}

fn hypervisor_leaf(leaf: u32) -> CpuidLeaf {
    match leaf - HYPERVISOR_LEAF_BASE {
        0 => CpuidLeaf {
            eax: HYPERVISOR_LEAF_LAST,
            ebx: XEN_SIGNATURE[0],
            ecx: XEN_SIGNATURE[1],
            edx: XEN_SIGNATURE[2],
        },
        1 => CpuidLeaf {
            eax: XEN_VERSION,
            ..CpuidLeaf::default()
        },
        _ => CpuidLeaf {
            eax: 1, // hypercall pages
            ebx: HYPERCALL_PAGE_MSR,
            ..CpuidLeaf::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CPU that claims every feature, with 0x16 basic and 0x80000021
    /// extended leaves, and answers every leaf with all ones elsewhere.
    fn generous(leaf: u32, _subleaf: u32) -> CpuidLeaf {
        match leaf {
            0 => CpuidLeaf {
                eax: 0x16,
                ebx: 0x756e_6547, // "Genu"
                ecx: 0x6c65_746e, // "ntel"
                edx: 0x4965_6e69, // "ineI"
            },
            0x8000_0000 => CpuidLeaf {
                eax: 0x8000_0021,
                ..CpuidLeaf::default()
            },
            _ => CpuidLeaf {
                eax: u32::MAX,
                ebx: u32::MAX,
                ecx: u32::MAX,
                edx: u32::MAX,
            },
        }
    }

    fn ask(leaf: u32) -> CpuidLeaf {
        pv_cpuid(generous, leaf, 0)
    }

    #[test]
    fn the_maximum_leaves_are_clamped() {
        assert_eq!(ask(0).eax, MAX_BASIC_LEAF);
        assert_eq!(ask(0).ebx, 0x756e_6547, "the vendor passes through");
        assert_eq!(ask(0x8000_0000).eax, MAX_EXTENDED_LEAF);
        assert_eq!(ask(0x10), CpuidLeaf::default());
        assert_eq!(ask(0x8000_0021), CpuidLeaf::default());
    }

    #[test]
    fn a_smaller_host_is_not_extended() {
        let small = |leaf: u32, subleaf: u32| match leaf {
            0 => CpuidLeaf {
                eax: 4,
                ..CpuidLeaf::default()
            },
            _ => generous(leaf, subleaf),
        };
        assert_eq!(pv_cpuid(small, 0, 0).eax, 4);
        assert_eq!(pv_cpuid(small, 7, 0), CpuidLeaf::default());
    }

    #[test]
    fn virtualization_and_monitor_are_hidden() {
        let leaf1 = ask(1);
        assert_eq!(leaf1.ecx & LEAF1_ECX_VMX, 0);
        assert_eq!(leaf1.ecx & LEAF1_ECX_MONITOR, 0);
        assert_eq!(leaf1.ecx & LEAF1_ECX_XSAVE, 0);
        assert_eq!(ask(0x8000_0001).ecx & EXTENDED1_ECX_SVM, 0);
        assert_eq!(ask(5), CpuidLeaf::default(), "the MONITOR leaf");
        assert_eq!(ask(0xd), CpuidLeaf::default(), "the XSAVE leaf");
        assert_eq!(ask(0xa), CpuidLeaf::default(), "performance monitoring");
    }

    #[test]
    fn only_allowed_bits_pass() {
        let leaf1 = ask(1);
        assert_eq!(leaf1.edx, LEAF1_EDX_ALLOWED);
        assert_eq!(leaf1.ecx, LEAF1_ECX_ALLOWED | LEAF1_ECX_HYPERVISOR);
        assert_eq!(leaf1.ebx, 0xffff, "no APIC ID or processor count");
        assert_eq!(ask(7).ebx, LEAF7_EBX_ALLOWED);
        assert_eq!(ask(7).ecx, 0);
        assert_eq!(ask(7).edx, 0);
        assert_eq!(pv_cpuid(generous, 7, 1), CpuidLeaf::default());
        let extended = ask(0x8000_0001);
        assert_eq!(extended.edx, EXTENDED1_EDX_ALLOWED);
        assert_eq!(extended.ecx, EXTENDED1_ECX_ALLOWED);
    }

    #[test]
    fn the_hypervisor_bit_is_set_even_on_a_bare_cpu() {
        let bare = |leaf: u32, _| match leaf {
            0 => CpuidLeaf {
                eax: 1,
                ..CpuidLeaf::default()
            },
            _ => CpuidLeaf::default(),
        };
        assert_eq!(pv_cpuid(bare, 1, 0).ecx, LEAF1_ECX_HYPERVISOR);
    }

    #[test]
    fn xen_hypervisor_leaves() {
        let signature = ask(HYPERVISOR_LEAF_BASE);
        assert_eq!(signature.eax, 0x4000_0002);
        let mut text = [0u8; 12];
        text[0..4].copy_from_slice(&signature.ebx.to_le_bytes());
        text[4..8].copy_from_slice(&signature.ecx.to_le_bytes());
        text[8..12].copy_from_slice(&signature.edx.to_le_bytes());
        assert_eq!(&text, b"XenVMMXenVMM");
        assert_eq!(ask(0x4000_0001).eax, 0x0004_0011);
        let page = ask(0x4000_0002);
        assert_eq!((page.eax, page.ebx), (1, 0x4000_0000));
        assert_eq!(ask(0x4000_0003), CpuidLeaf::default());
    }
}
