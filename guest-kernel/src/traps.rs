//! Exceptions in a PV guest: the virtual trap table and its handlers.
//!
//! A native kernel loads an IDT; a PV kernel hands the hypervisor a trap
//! table (`set_trap_table`) instead. When the guest faults, the hypervisor
//! *bounces* the exception to the handler named there, with a frame on the
//! guest's stack ([`BounceFrame`], declared in `hypercall_abi` for both
//! sides):
//!
//! ```text
//!   rsp -> RCX, R11, [error code], RIP, CS, RFLAGS, RSP, SS
//! ```
//!
//! Each handler stub (in `sys/entry.rs`) inserts a zero error code where
//! the CPU has none, so that the whole [`BounceFrame`] is on the stack,
//! pushes the vector number, saves the registers other than RCX and R11
//! (the frame holds the interrupted ones; the registers themselves were
//! clobbered by the hypervisor's return) and calls [`guest_trap`]. A
//! handler that returns goes back through the `iret` hypercall: the stub
//! takes RCX and R11 from the frame, pushes the `flags` word and jumps to
//! the hypercall page's `iret` entry, which pushes RAX, R11 and RCX to
//! complete the `iret_context` and enters the hypervisor.
//!
//! What this kernel does with each exception: a breakpoint (`int3`) is
//! reported and execution continues; every other exception is reported and
//! the domain crashes, as a kernel bug should.

#![forbid(unsafe_code)]

#[cfg(not(test))]
use crate::sys::entry;
use hypercall_abi::layout::BounceFrame;
#[cfg(not(test))]
use hypercall_abi::layout::TrapInfo;
use hypercall_abi::sched::ShutdownReason;
use hypercall_abi::x86::EXCEPTION_NAMES;

/// What a handler stub leaves on the stack, lowest address first: the
/// registers it saved, the vector, and the bounce frame.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    /// The frame the hypervisor wrote (with a zero error code inserted
    /// where the vector has none); RCX and R11 are restored from it.
    pub bounce: BounceFrame,
}

// The stubs (sys/entry.rs) push 13 registers and the vector above the
// bounce frame.
const _: () = assert!(core::mem::offset_of!(TrapFrame, bounce) == 14 * 8);

/// The vectors this kernel handles. NMI (2), double fault (8) and machine
/// check (18) are the hypervisor's business; 15 is reserved.
#[cfg(not(test))]
const HANDLED: [u8; 16] = [0, 1, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 16, 17, 19, 20];
const VECTOR_BREAKPOINT: u8 = 3;
/// Device not available (#NM): an FPU or SSE instruction while CR0.TS is
/// set (`fpu_taskswitch`).
const VECTOR_DEVICE_NOT_AVAILABLE: u8 = 7;

/// A handler for #NM, if any: a kernel that switches FPU state lazily
/// installs one; without it #NM is a crash like any fault.
static DEVICE_NOT_AVAILABLE_HANDLER: spin::Mutex<Option<fn()>> = spin::Mutex::new(None);

/// Installs `handler` for #NM (the hypervisor cleared CR0.TS before
/// bouncing it; when `handler` returns, the faulting instruction runs again).
pub fn set_device_not_available_handler(handler: fn()) {
    *DEVICE_NOT_AVAILABLE_HANDLER.lock() = Some(handler);
}

/// The `vector` the event-upcall stub pushes (beyond the 256 real ones).
const UPCALL: u64 = 256;

/// Address of the event-upcall entry, for `CALLBACKTYPE_event`.
#[cfg(not(test))]
pub fn upcall_entry() -> u64 {
    entry::upcall_entry()
}

/// Registers the handlers with the hypervisor.
#[cfg(not(test))]
pub fn install() {
    let stubs = entry::exception_entries();
    let mut table = [TrapInfo::END; HANDLED.len() + 1];
    for (slot, (&vector, stub)) in table.iter_mut().zip(HANDLED.iter().zip(stubs)) {
        // int3 and into may be raised from ring 3 (privilege level 3);
        // handlers run with events masked.
        let privilege = if vector == VECTOR_BREAKPOINT || vector == 4 {
            3
        } else {
            0
        };
        *slot = TrapInfo::new(vector, privilege, true, stub);
    }
    let result = entry::set_trap_table(&table);
    if result != 0 {
        crate::println!("guest kernel: set_trap_table failed ({result})");
        crate::shutdown(ShutdownReason::Crash);
    }
}

#[cfg(not(test))]
/// Forgets every handler: the next exception has nowhere to go, and the
/// hypervisor crashes the domain. Used to show what that looks like.
pub fn clear() -> i64 {
    entry::clear_trap_table()
}

/// A fault that `try_write` caught.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The exception vector (14 for a page fault).
    pub vector: u8,
    /// Its error code.
    pub error_code: u64,
    /// For a page fault, the address (from `vcpu_info.arch.cr2`).
    pub address: u64,
}

static LAST_PROBE_FAULT: spin::Mutex<Option<Fault>> = spin::Mutex::new(None);

/// What handles exceptions taken in guest user mode, if this kernel runs
/// user programs (see `set_user_mode_handler`).
static USER_MODE_HANDLER: spin::Mutex<Option<fn(&mut TrapFrame)>> = spin::Mutex::new(None);

/// Sends every exception taken in guest user mode (the frame's CS has RPL
/// 3) to `handler` instead of treating it as a kernel bug: a kernel that
/// runs user programs decides what a program's fault means.
pub fn set_user_mode_handler(handler: fn(&mut TrapFrame)) {
    *USER_MODE_HANDLER.lock() = Some(handler);
}

/// Stores `value` at `address`, catching a fault instead of crashing: for
/// tests that check a mapping is read-only or absent.
#[cfg(not(test))]
pub fn try_write(address: u64, value: u64) -> Result<(), Fault> {
    *LAST_PROBE_FAULT.lock() = None;
    match entry::probe_store(address, value) {
        0 => Ok(()),
        _ => Err(LAST_PROBE_FAULT.lock().take().unwrap_or(Fault {
            vector: 0,
            error_code: 0,
            address: 0,
        })),
    }
}

/// The faulting address of the last page fault, as the hypervisor recorded
/// it in our `vcpu_info` (the guest cannot read CR2 itself).
pub fn fault_address() -> u64 {
    crate::sys::shared_info::vcpu_info_ref()
        .map_or(0, |info| crate::sys::shared_info::read(&info.arch.cr2))
}

/// Handles an exception or upcall: called by the stubs (through
/// `sys::entry`) with the saved registers.
pub(crate) fn handle(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    let name = EXCEPTION_NAMES
        .get(usize::from(vector))
        .copied()
        .unwrap_or("exception");
    if frame.vector == UPCALL {
        crate::events::handle_upcall();
        return;
    }
    // The hypervisor shows guest-kernel mode as RPL 0 in the frame's CS,
    // guest-user mode as RPL 3.
    if frame.bounce.cs & 3 == 3 {
        let handler = *USER_MODE_HANDLER.lock();
        if let Some(handler) = handler {
            handler(frame);
            return;
        }
    }
    // A privileged-instruction probe expecting this fault (privileged.rs).
    #[cfg(not(test))]
    if crate::privileged::recover(frame) {
        return;
    }
    // Only a fault of the probe's own store is the probe's: an event may
    // arrive while the guest stands at that address.
    #[cfg(not(test))]
    if let Some(recovery) =
        entry::probe_recovery(frame.bounce.rip).filter(|_| vector == 13 || vector == 14)
    {
        let address = if vector == 14 { fault_address() } else { 0 };
        *LAST_PROBE_FAULT.lock() = Some(Fault {
            vector,
            error_code: frame.bounce.error_code,
            address,
        });
        frame.bounce.rip = recovery;
        return;
    }
    if vector == VECTOR_DEVICE_NOT_AVAILABLE {
        let handler = *DEVICE_NOT_AVAILABLE_HANDLER.lock();
        if let Some(handler) = handler {
            handler();
            return;
        }
    }
    if vector == VECTOR_BREAKPOINT {
        crate::println!("breakpoint at rip {:#x}: continuing", frame.bounce.rip);
        return;
    }
    crate::println!(
        "guest kernel: {name} (vector {vector}) at rip {:#x}, error code {:#x}, rsp {:#x}",
        frame.bounce.rip,
        frame.bounce.error_code,
        frame.bounce.rsp
    );
    if vector == 14 {
        crate::println!(
            "guest kernel: the faulting address was {:#x}",
            fault_address()
        );
    }
    crate::shutdown(ShutdownReason::Crash);
}
