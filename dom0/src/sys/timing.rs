//! The benchmarks' raw operations (`bench`): the syscall floor's null
//! hypercall, a batch of null multicalls, and two instructions the
//! hypervisor traps and emulates.

use guest_kernel::abi::hypercall::Hypercall;
use guest_kernel::abi::{wrappers, MulticallEntry};

/// Entries in a null multicall batch.
pub const NULL_BATCH: usize = 32;

/// A `multicall` batch of [`NULL_BATCH`] `xen_version(XENVER_version)`
/// calls, which take no pointer. The entries are private, so no caller can
/// put a call with a pointer in them.
#[derive(Debug)]
pub struct NullMulticalls {
    entries: [MulticallEntry; NULL_BATCH],
}

impl NullMulticalls {
    /// The batch.
    pub fn new() -> Self {
        Self {
            entries: [MulticallEntry {
                op: Hypercall::XenVersion as u64,
                ..MulticallEntry::default()
            }; NULL_BATCH],
        }
    }

    /// Issues the batch: 0 or a negated errno.
    pub fn call(&mut self) -> i64 {
        // SAFETY: the entries are ours for the call, the hypervisor writes
        // only their `result` fields, and every entry is xen_version(0,
        // 0), which takes no pointer.
        unsafe {
            wrappers::hypercall2(
                Hypercall::Multicall,
                self.entries.as_mut_ptr() as u64,
                NULL_BATCH as u64,
            )
        }
    }

    /// Each entry's own result from the last call.
    pub fn results(&self) -> impl Iterator<Item = i64> + '_ {
        self.entries.iter().map(|entry| entry.result as i64)
    }
}

/// Xen's forced-emulation CPUID (`ud2; .ascii "xen"; cpuid`) of `leaf`,
/// subleaf 0: a #UD the hypervisor decodes and answers from the PV CPUID
/// policy. Returns (EAX, EDX).
pub fn forced_emulation_cpuid(leaf: u32) -> (u32, u32) {
    let (eax, edx): (u32, u32);
    // SAFETY: the hypervisor emulates the sequence and advances RIP past
    // it (were it not to, the #UD reaches our trap handler, which reports
    // it); cpuid writes eax..edx, declared as outputs (rbx is saved by
    // hand, as LLVM reserves it); no memory is touched.
    unsafe {
        core::arch::asm!(
            "xchg {scratch:r}, rbx",
            "ud2",
            ".ascii \"xen\"",
            "cpuid",
            "xchg {scratch:r}, rbx",
            scratch = inout(reg) 0u64 => _,
            inout("eax") leaf => eax,
            inout("ecx") 0u32 => _,
            out("edx") edx,
        )
    };
    (eax, edx)
}

/// `mov %cr3, reg` from ring 3: a #GP the hypervisor emulates, giving the
/// machine address of the current L4.
pub fn emulated_read_cr3() -> u64 {
    let root: u64;
    // SAFETY: the hypervisor emulates the read (the #GP it raises in ring
    // 3) and puts the base pointer in the register; no memory is touched.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) root, options(nostack)) };
    root
}

/// The cheapest hypercall to time the syscall floor with: in the
/// hypervisor's floor mode (`SYSCTL_bench_syscall_floor`) every syscall but
/// sysctl returns at once. `xen_version(XENVER_version)` takes no pointer,
/// so it is harmless even outside that mode. Inlined, so that the timing
/// holds the `syscall` and two register loads, not a call.
#[inline(always)]
pub fn null_syscall() -> i64 {
    // SAFETY: XENVER_version takes no buffer; the hypervisor touches no
    // memory of ours.
    unsafe { wrappers::hypercall2(Hypercall::XenVersion, 0, 0) }
}
