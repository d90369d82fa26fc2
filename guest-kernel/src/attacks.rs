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
//! | `iret-noncanonical-rip` | `iret` to `0x0000800000000000` with the stack in the direct map | the `#GP` that takes the place of the hypervisor's faulting `iretq` (XSA-7) cannot be written there |
//! | `iret-frame-in-hypervisor` | `iret` with the frame in the M2P window | frame not readable |
//! | `trap-handler-in-hypervisor` | `#UD` handler in the direct map, then `ud2` | handler not a guest address |
//! | `event-callback-in-hypervisor` | event callback in the direct map, then an event | cannot deliver an event upcall |
//! | `stack-in-hypervisor` | stack pointer in the direct map, then `int3` | cannot write the exception frame |
#![forbid(unsafe_code)]

use guest_kernel::abi::callback::CallbackType;
use guest_kernel::abi::layout::{DOMID_SELF, FLAT_RING3_CS64, FLAT_RING3_SS64};
use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::abi::{wrappers, TrapInfo};
use guest_kernel::sys::raw;
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

/// Where a crafted `iret` that the hypervisor wrongly honoured lands.
extern "C" fn survived() -> ! {
    println!("attack: survived the crafted iret");
    shutdown(ShutdownReason::Crash)
}

/// A stack for `survived`, should it ever run (only its address is
/// taken here; the hypervisor would write the frame there).
static LANDING_STACK: [core::sync::atomic::AtomicU64; 512] =
    [const { core::sync::atomic::AtomicU64::new(0) }; 512];

fn landing_stack() -> u64 {
    // One past the end, 16-byte aligned less the return-address slot.
    LANDING_STACK.as_ptr() as u64 + 512 * 8 - 8
}

/// A crafted `iret` to `survived` with the given selectors and stack.
fn iret(cs: u64, rsp: u64, ss: u64) -> ! {
    // The hypervisor must refuse the frame and crash this domain; if it
    // does not, `survived` reports it.
    raw::iret_with_frame(survived as *const () as u64, cs, RFLAGS_IF, rsp, ss)
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
            // The hypervisor must not execute an `iretq` to that address
            // (it would fault in ring 0); it delivers the #GP to the
            // guest instead, whose stack is the hypervisor's: crashed.
            raw::iret_with_frame(NON_CANONICAL, kernel_cs, RFLAGS_IF, DIRECT_MAP, ss)
        }
        // The hypervisor must refuse to read a frame there.
        "iret-frame-in-hypervisor" => raw::iret_with_frame_at(M2P_WINDOW + 4096),
        "trap-handler-in-hypervisor" => {
            let table = [TrapInfo::new(6, 0, true, DIRECT_MAP), TrapInfo::END];
            // Replaces only the #UD handler, with an address the hypervisor
            // must never enter.
            let result = raw::set_trap_table(&table);
            println!("attack {kind}: set_trap_table returned {result}");
            // Raises #UD, which the hypervisor must not bounce there.
            raw::invalid_opcode();
            survived()
        }
        "event-callback-in-hypervisor" => {
            // The hypervisor must never enter that callback.
            let result = raw::register_callback(CallbackType::Event, DIRECT_MAP);
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
        // The hypervisor must refuse to write a frame there.
        "stack-in-hypervisor" => raw::breakpoint_with_stack_at(DIRECT_MAP + 4096),
        other => {
            println!("attack: unknown kind '{other}' (see guest-kernel/src/attacks.rs)");
            shutdown(ShutdownReason::Crash)
        }
    }
}
