//! Per-CPU state, reached through the GS base.
//!
//! While the hypervisor runs, `GS.base` points at this CPU's [`PerCpu`]; while
//! a guest runs, the guest's own GS base is loaded and ours waits in
//! `KERNEL_GS_BASE`. Every entry from a guest starts with `swapgs` and every
//! exit to a guest ends with one. There is no global "current domain"
//! variable: the current vCPU is per CPU, so adding CPUs adds `PerCpu`
//! blocks, not locks.
//!
//! The entry code reads the first fields by fixed offset; the assertions
//! below keep the struct and the assembly in agreement.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// "No domain is running on this CPU."
pub const NO_DOMAIN: u32 = u32::MAX;

/// One CPU's private state.
#[repr(C)]
pub struct PerCpu {
    /// Address of this structure, so that `gs:[0]` yields a pointer.
    pub self_address: AtomicU64,
    /// Top of this CPU's hypervisor stack: where the entry code puts the
    /// guest's [`GuestFrame`](super::frame::GuestFrame).
    pub stack_top: AtomicU64,
    /// Scratch slot where the `syscall` entry parks the guest's stack pointer.
    pub guest_rsp: AtomicU64,
    /// This CPU's number.
    pub cpu_id: AtomicU32,
    /// Domain whose vCPU runs here, or [`NO_DOMAIN`].
    pub current_domain: AtomicU32,
    /// TSC when the current vCPU last started running (for CPU time).
    pub running_since: AtomicU64,
    /// Timer interrupts taken on this CPU.
    pub ticks: AtomicU64,
    /// Whether `LSTAR` points at the empty benchmark handler.
    pub syscall_floor_mode: AtomicBool,
    /// Whether this CPU's TLB may hold translations with more rights than
    /// the page tables now give (see `mm::tlb`).
    pub tlb_stale: AtomicBool,
    /// Whether the running vCPU should give the CPU up at the next exit.
    pub reschedule: AtomicBool,
    /// Direct-map address of the running domain's shared info (its vCPU 0
    /// info is at the start), so that the exit path can check for a due
    /// upcall without taking the domain lock; 0 when idle.
    pub vcpu_info: AtomicU64,
    /// The lock levels this CPU holds, one bit each, in builds that check
    /// the lock order (see `ordered_lock`).
    pub locks_held: AtomicU32,
    /// Whether the running vCPU is in guest-user mode: the `syscall` entry
    /// tests it to tell a guest kernel's hypercall from a user program's
    /// system call (Xen's `TF_kernel_mode` test in `lstar_enter`) without
    /// taking the domain lock. A mirror of `Vcpu::kernel_mode`, kept by
    /// `domain::set_current` and `traps::guest_mode::toggle_guest_mode`.
    pub guest_user_mode: AtomicBool,
    /// Whether the running vCPU's virtual CR0.TS is set (`fpu_taskswitch`):
    /// the exit path then sets the real CR0.TS just before it leaves for
    /// the guest, and the entry path clears it before any SSE instruction
    /// runs (see `traps::fpu`).
    pub guest_ts: AtomicBool,
    /// The longest a hypercall has run on this CPU since boot, in TSC
    /// cycles: the longest the CPU had interrupts off for a guest's request
    /// (read by `sysctl` `longest_hypercall`, reported by the benchmarks).
    pub longest_hypercall: AtomicU64,
    /// The number of that hypercall.
    pub longest_hypercall_number: AtomicU64,
}

/// Offset of `stack_top`, used by the entry code.
pub const PERCPU_STACK_TOP: usize = 8;
/// Offset of `guest_rsp`, used by the entry code.
pub const PERCPU_GUEST_RSP: usize = 16;
const _: () = assert!(core::mem::offset_of!(PerCpu, stack_top) == PERCPU_STACK_TOP);
const _: () = assert!(core::mem::offset_of!(PerCpu, guest_rsp) == PERCPU_GUEST_RSP);
/// Offset of `guest_ts` (one byte), used by the entry and exit code.
pub const PERCPU_GUEST_TS: usize = core::mem::offset_of!(PerCpu, guest_ts);

impl PerCpu {
    const fn new() -> Self {
        Self {
            self_address: AtomicU64::new(0),
            stack_top: AtomicU64::new(0),
            guest_rsp: AtomicU64::new(0),
            cpu_id: AtomicU32::new(0),
            current_domain: AtomicU32::new(NO_DOMAIN),
            running_since: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            syscall_floor_mode: AtomicBool::new(false),
            tlb_stale: AtomicBool::new(false),
            reschedule: AtomicBool::new(false),
            vcpu_info: AtomicU64::new(0),
            locks_held: AtomicU32::new(0),
            guest_user_mode: AtomicBool::new(false),
            guest_ts: AtomicBool::new(false),
            longest_hypercall: AtomicU64::new(0),
            longest_hypercall_number: AtomicU64::new(0),
        }
    }

    /// The domain running on this CPU, if any.
    pub fn current_domain(&self) -> Option<u16> {
        match self.current_domain.load(Ordering::Relaxed) {
            NO_DOMAIN => None,
            id => Some(id as u16),
        }
    }
}

/// The boot CPU's block (further CPUs will get theirs from the heap).
static BOOT_CPU: PerCpu = PerCpu::new();

/// The boot CPU's block's address, which its GS base holds whenever the
/// hypervisor runs its own code. The entry path compares the live GS base
/// with it when an exception interrupts ring 0, to tell whether GS still
/// holds the guest's base (see `entry.rs`). With several CPUs this becomes
/// a check against the block at the top of the CPU's IST stack.
#[no_mangle]
static HYPERVISOR_GS_BASE: AtomicU64 = AtomicU64::new(0);

/// Whether GS points at a per-CPU block yet (set once by the boot CPU; a
/// CPU started later sets its GS base before it takes any lock).
static GS_READY: AtomicBool = AtomicBool::new(false);

/// Points GS at the boot CPU's block and records its stack.
pub fn init_boot_cpu(stack_top: u64) {
    let block = &BOOT_CPU;
    let address = block as *const PerCpu as u64;
    block.self_address.store(address, Ordering::Relaxed);
    block.stack_top.store(stack_top, Ordering::Relaxed);
    HYPERVISOR_GS_BASE.store(address, Ordering::Relaxed);
    super::instructions::write_gs_base(address);
    // The guest's GS base, swapped in on the way to the guest, starts at 0.
    super::instructions::write_kernel_gs_base(0);
    GS_READY.store(true, Ordering::Release);
}

/// This CPU's block, or `None` this early in boot, before GS points at
/// one (the lock-order check runs from the first console lock on).
pub fn this_cpu_if_ready() -> Option<&'static PerCpu> {
    GS_READY.load(Ordering::Acquire).then(this_cpu)
}

/// This CPU's block.
pub fn this_cpu() -> &'static PerCpu {
    let address: u64;
    // SAFETY: in the hypervisor GS.base always points at a live, 'static
    // PerCpu whose first field holds its own address (init_boot_cpu); the
    // load has no side effects.
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) address, options(nostack, readonly, preserves_flags));
    }
    // SAFETY: the address is that of a 'static PerCpu (see above), whose
    // fields are atomics and so may be shared.
    unsafe { &*(address as *const PerCpu) }
}
