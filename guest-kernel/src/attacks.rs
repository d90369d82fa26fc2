//! `workload=attack-KIND`: a guest that hands the hypervisor a frame or an
//! entry point it must not honour, and so must be crashed by it.
//!
//! Each attack ends, if the hypervisor does its job, with the log line
//! `Domain N crashed: <reason>` and this domain gone; the hypervisor and the
//! other domains keep running. If the guest is still alive afterwards it
//! says `attack KIND: survived` and crashes itself, which the
//! `crafted_frames_crash_only_the_attacker` scenario counts as a failure.
//!
//! | kind | what it does | the hypervisor's reason |
//! |---|---|---|
//! | `iret-hypervisor-cs` | `iret` with the hypervisor's own ring-0 code selector | segments other than the flat 64-bit ones |
//! | `iret-kernel-ss` | `iret` with a ring-0 data selector as SS | as above |
//! | `iret-null-ss` | `iret` with a null SS | as above |
//! | `iret-noncanonical-rip` | `iret` to `0x0000800000000000` | a non-canonical address |
//! | `iret-noncanonical-rsp` | `iret` with that as the stack | a non-canonical stack pointer |
//! | `iret-frame-in-hypervisor` | `iret` with the frame in the M2P window | frame not readable |
//! | `trap-handler-in-hypervisor` | `#UD` handler in the direct map, then `ud2` | handler not a guest address |
//! | `event-callback-in-hypervisor` | event callback in the direct map, then an event | cannot deliver an event upcall |
//! | `stack-in-hypervisor` | stack pointer in the direct map, then `int3` | cannot write the exception frame |

use guest_kernel::abi::callback::{CallbackRegister, CallbackType, CALLBACKF_MASK_EVENTS};
use guest_kernel::abi::layout::{DOMID_SELF, FLAT_RING3_CS64, FLAT_RING3_SS64};
use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::abi::{wrappers, TrapInfo};
use guest_kernel::{events, println, shutdown};

/// Machine address 1 MiB (the hypervisor image) in the hypervisor's direct map.
const DIRECT_MAP: u64 = 0xffff_8300_0010_0000;
/// The read-only M2P window, which a guest may read but never name.
const M2P_WINDOW: u64 = 0xffff_8000_0000_0000;
/// The first non-canonical address above the low half.
const NON_CANONICAL: u64 = 0x0000_8000_0000_0000;
/// The selectors of the hypervisor's own GDT (ring 0).
const HYPERVISOR_CS: u64 = 0xe008;
const HYPERVISOR_DS: u64 = 0xe010;
const RFLAGS_IF: u64 = 1 << 9;

core::arch::global_asm!(
    ".pushsection .text.attacks, \"ax\"",
    // attack_iret(rip, cs, rflags, rsp, ss): an iret_context with these
    // values, as the hypercall page's iret stub completes it.
    ".global attack_iret",
    "attack_iret:",
    "    push %r8",
    "    push %rcx",
    "    push %rdx",
    "    push %rsi",
    "    push %rdi",
    "    push $0",
    "    jmp hypercall_page + 23 * 32",
    // attack_iret_at(rsp): the iret hypercall with the frame at `rsp`.
    ".global attack_iret_at",
    "attack_iret_at:",
    "    mov %rdi, %rsp",
    "    mov $23, %eax",
    "    syscall",
    "    ud2",
    // attack_trap_on_stack(rsp): int3 with the stack at `rsp`.
    ".global attack_trap_on_stack",
    "attack_trap_on_stack:",
    "    mov %rdi, %rsp",
    "    int3",
    "    ud2",
    ".popsection",
    options(att_syntax),
);

extern "C" {
    fn attack_iret(rip: u64, cs: u64, rflags: u64, rsp: u64, ss: u64) -> !;
    fn attack_iret_at(rsp: u64) -> !;
    fn attack_trap_on_stack(rsp: u64) -> !;
}

/// Where a crafted `iret` that the hypervisor wrongly honoured lands.
extern "C" fn survived() -> ! {
    println!("attack: survived the crafted iret");
    shutdown(ShutdownReason::Crash)
}

/// A stack for `survived`, should it ever run.
static mut LANDING_STACK: [u64; 512] = [0; 512];

fn landing_stack() -> u64 {
    // One past the end, 16-byte aligned less the return-address slot.
    core::ptr::addr_of!(LANDING_STACK) as u64 + 512 * 8 - 8
}

/// A crafted `iret` to `survived` with the given selectors and stack.
fn iret(cs: u64, rsp: u64, ss: u64) -> ! {
    // SAFETY: none needed by us: the hypervisor must refuse the frame and
    // crash this domain; if it does not, `survived` reports it.
    unsafe { attack_iret(survived as *const () as u64, cs, RFLAGS_IF, rsp, ss) }
}

/// Runs attack `kind`.
pub fn run(kind: &str) -> ! {
    println!("attack {kind}: starting");
    let kernel_cs = u64::from(FLAT_RING3_CS64) & !3;
    let ss = u64::from(FLAT_RING3_SS64);
    match kind {
        "iret-hypervisor-cs" => iret(HYPERVISOR_CS, landing_stack(), ss),
        "iret-kernel-ss" => iret(kernel_cs, landing_stack(), HYPERVISOR_DS),
        "iret-null-ss" => iret(kernel_cs, landing_stack(), 0),
        "iret-noncanonical-rip" => {
            // SAFETY: as in `iret`.
            unsafe { attack_iret(NON_CANONICAL, kernel_cs, RFLAGS_IF, landing_stack(), ss) }
        }
        "iret-noncanonical-rsp" => iret(kernel_cs, NON_CANONICAL, ss),
        // SAFETY: the hypervisor must refuse to read a frame there.
        "iret-frame-in-hypervisor" => unsafe { attack_iret_at(M2P_WINDOW + 4096) },
        "trap-handler-in-hypervisor" => {
            let table = [TrapInfo::new(6, 0, true, DIRECT_MAP), TrapInfo::END];
            // SAFETY: replaces only the #UD handler, with an address the
            // hypervisor must never enter.
            let result = unsafe { wrappers::set_trap_table(&table) };
            println!("attack {kind}: set_trap_table returned {result}");
            // SAFETY: raises #UD, which the hypervisor must not bounce there.
            unsafe { core::arch::asm!("ud2") };
            survived()
        }
        "event-callback-in-hypervisor" => {
            let registration =
                CallbackRegister::new(CallbackType::Event, CALLBACKF_MASK_EVENTS, DIRECT_MAP);
            // SAFETY: the hypervisor must never enter that callback.
            let result = unsafe { wrappers::callback_register(&registration) };
            println!("attack {kind}: callback_op returned {result}");
            // A loopback channel: binding makes the new port pending at once.
            let offered = events::alloc_unbound(DOMID_SELF);
            let bound = offered.and_then(|port| events::bind_interdomain(DOMID_SELF, port));
            println!("attack {kind}: loopback channel {bound:?}");
            events::set_mask(false);
            for _ in 0..100 {
                wrappers::sched_yield();
            }
            survived()
        }
        // SAFETY: the hypervisor must refuse to write a frame there.
        "stack-in-hypervisor" => unsafe { attack_trap_on_stack(DIRECT_MAP + 4096) },
        other => {
            println!("attack: unknown kind '{other}' (see guest-kernel/src/attacks.rs)");
            shutdown(ShutdownReason::Crash)
        }
    }
}
