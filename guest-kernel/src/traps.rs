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
//! Each handler stub below inserts a zero error code where the CPU has
//! none, so that the whole [`BounceFrame`] is on the stack, pushes the
//! vector number, saves the registers other than RCX and R11 (the frame
//! holds the interrupted ones; the registers themselves were clobbered by
//! the hypervisor's return) and calls [`guest_trap`]. A handler that
//! returns goes back through the `iret` hypercall: the stub takes RCX and
//! R11 from the frame, pushes the `flags` word and jumps to the hypercall
//! page's `iret` entry, which pushes RAX, R11 and RCX to complete the
//! `iret_context` and enters the hypervisor.
//!
//! What this kernel does with each exception: a breakpoint (`int3`) is
//! reported and execution continues; every other exception is reported and
//! the domain crashes, as a kernel bug should.

use core::sync::atomic::{AtomicUsize, Ordering};
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

// The stubs below push 13 registers and the vector above the bounce frame.
const _: () = assert!(core::mem::offset_of!(TrapFrame, bounce) == 14 * 8);

/// The vectors this kernel handles. NMI (2), double fault (8) and machine
/// check (18) are the hypervisor's business; 15 is reserved.
#[cfg(not(test))]
const HANDLED: [u8; 16] = [0, 1, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 16, 17, 19, 20];
const VECTOR_BREAKPOINT: u8 = 3;
const VECTOR_NMI: u8 = 2;
/// Device not available (#NM): an FPU or SSE instruction while CR0.TS is
/// set (`fpu_taskswitch`).
const VECTOR_DEVICE_NOT_AVAILABLE: u8 = 7;

/// A handler for #NM, as a `fn()` address, or 0: a kernel that switches
/// FPU state lazily installs one; without it #NM is a crash like any fault.
static DEVICE_NOT_AVAILABLE_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Installs `handler` for #NM (the hypervisor cleared CR0.TS before
/// bouncing it; when `handler` returns, the faulting instruction runs again).
pub fn set_device_not_available_handler(handler: fn()) {
    DEVICE_NOT_AVAILABLE_HANDLER.store(handler as usize, Ordering::Relaxed);
}

/// The `vector` the event-upcall stub pushes (beyond the 256 real ones).
const UPCALL: u64 = 256;

/// Address of the event-upcall entry, for `CALLBACKTYPE_event`.
#[cfg(not(test))]
pub fn upcall_entry() -> u64 {
    guest_trap_stub_256 as *const () as u64
}

#[cfg(not(test))]
core::arch::global_asm!(
    ".pushsection .text.traps, \"ax\"",
    ".macro TRAP_STUB vector, has_error",
    ".global guest_trap_stub_\\vector",
    "guest_trap_stub_\\vector:",
    "    .if \\has_error == 0",
    "    pop %rcx", // the interrupted rcx and r11 (BounceFrame's first words)
    "    pop %r11",
    "    push $0", // the error-code slot the hypervisor left out
    "    push %r11",
    "    push %rcx",
    "    .endif",
    "    push $\\vector",
    "    jmp guest_trap_common",
    ".endm",
    "TRAP_STUB 0, 0",
    "TRAP_STUB 1, 0",
    "TRAP_STUB 2, 0",
    "TRAP_STUB 256, 0", // not a vector: the event upcall (see events.rs)
    "TRAP_STUB 3, 0",
    "TRAP_STUB 4, 0",
    "TRAP_STUB 5, 0",
    "TRAP_STUB 6, 0",
    "TRAP_STUB 7, 0",
    "TRAP_STUB 10, 1",
    "TRAP_STUB 11, 1",
    "TRAP_STUB 12, 1",
    "TRAP_STUB 13, 1",
    "TRAP_STUB 14, 1",
    "TRAP_STUB 16, 0",
    "TRAP_STUB 17, 1",
    "TRAP_STUB 19, 0",
    "TRAP_STUB 20, 0",
    "guest_trap_common:",
    "    push %rax; push %rbx; push %rdx; push %rsi; push %rdi; push %rbp",
    "    push %r8; push %r9; push %r10; push %r12; push %r13; push %r14; push %r15",
    "    cld",
    "    mov %rsp, %rdi",
    "    call guest_trap",
    "    pop %r15; pop %r14; pop %r13; pop %r12; pop %r10; pop %r9; pop %r8",
    "    pop %rbp; pop %rdi; pop %rsi; pop %rdx; pop %rbx; pop %rax",
    "    add $8, %rsp",                 // the vector
    "    pop %rcx",                     // BounceFrame.rcx and .r11, as the
    "    pop %r11",                     // handler may have left them
    "    add $8, %rsp",                 // the error code
    "    push $0",                      // iret_context.flags: a plain iret
    "    jmp hypercall_page + 23 * 32", // HYPERVISOR_iret
    // probe_write(address, value) -> 0, or 1 if the store faulted.
    ".global probe_write",
    "probe_write:",
    ".global probe_write_store",
    "probe_write_store:",
    "    mov %rsi, (%rdi)",
    "    xor %eax, %eax",
    "    ret",
    ".global probe_write_recovery",
    "probe_write_recovery:",
    "    mov $1, %eax",
    "    ret",
    ".popsection",
    options(att_syntax),
);

#[cfg(not(test))]
extern "C" {
    fn probe_write(address: u64, value: u64) -> u64;
    fn probe_write_store();
    fn probe_write_recovery();
    fn guest_trap_stub_0();
    fn guest_trap_stub_1();
    fn guest_trap_stub_2();
    fn guest_trap_stub_256();
    fn guest_trap_stub_3();
    fn guest_trap_stub_4();
    fn guest_trap_stub_5();
    fn guest_trap_stub_6();
    fn guest_trap_stub_7();
    fn guest_trap_stub_10();
    fn guest_trap_stub_11();
    fn guest_trap_stub_12();
    fn guest_trap_stub_13();
    fn guest_trap_stub_14();
    fn guest_trap_stub_16();
    fn guest_trap_stub_17();
    fn guest_trap_stub_19();
    fn guest_trap_stub_20();
}

/// Registers the handlers with the hypervisor.
#[cfg(not(test))]
pub fn install() {
    let stubs: [unsafe extern "C" fn(); 16] = [
        guest_trap_stub_0,
        guest_trap_stub_1,
        guest_trap_stub_3,
        guest_trap_stub_4,
        guest_trap_stub_5,
        guest_trap_stub_6,
        guest_trap_stub_7,
        guest_trap_stub_10,
        guest_trap_stub_11,
        guest_trap_stub_12,
        guest_trap_stub_13,
        guest_trap_stub_14,
        guest_trap_stub_16,
        guest_trap_stub_17,
        guest_trap_stub_19,
        guest_trap_stub_20,
    ];
    let mut table = [TrapInfo::END; HANDLED.len() + 1];
    for (slot, (&vector, stub)) in table.iter_mut().zip(HANDLED.iter().zip(stubs)) {
        // int3 and into may be raised from ring 3 (privilege level 3);
        // handlers run with events masked.
        let privilege = if vector == VECTOR_BREAKPOINT || vector == 4 {
            3
        } else {
            0
        };
        *slot = TrapInfo::new(vector, privilege, true, stub as *const () as u64);
    }
    // SAFETY: the table ends with TrapInfo::END and every address is one of
    // the stubs above, which follow the bounce-frame convention.
    let result = unsafe { hypercall_abi::wrappers::set_trap_table(&table) };
    if result != 0 {
        crate::println!("guest kernel: set_trap_table failed ({result})");
        crate::shutdown(ShutdownReason::Crash);
    }
}

/// Registers the NMI callback: how the toolstack's shutdown requests
/// arrive until the config store exists (see `hypercall_abi::domctl`).
/// Called once the shared info page is mapped, because the handler reads
/// the request's reason there: a request kept for a guest that has not
/// registered yet is delivered at once when it does.
pub fn register_shutdown_callback() {
    let registration = hypercall_abi::callback::CallbackRegister::new(
        hypercall_abi::callback::CallbackType::Nmi,
        hypercall_abi::callback::CALLBACKF_MASK_EVENTS,
        guest_trap_stub_2 as *const () as u64,
    );
    // SAFETY: the entry point is the NMI stub above.
    let result = unsafe { hypercall_abi::wrappers::callback_register(&registration) };
    if result != 0 {
        crate::println!("guest kernel: cannot register the NMI callback ({result})");
    }
}

/// Forgets every handler: the next exception has nowhere to go, and the
/// hypervisor crashes the domain. Used to show what that looks like.
pub fn clear() -> i64 {
    // SAFETY: a null table clears the trap table; nothing is read.
    unsafe { hypercall_abi::wrappers::hypercall1(hypercall_abi::Hypercall::SetTrapTable, 0) }
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
    // SAFETY: the store may fault, which is the point: the trap handler
    // resumes at the recovery label with the stack as it was. If it does
    // not fault it writes 8 bytes the caller chose to write.
    match unsafe { probe_write(address, value) } {
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
    crate::start::shared_info().map_or(0, |shared| shared.vcpu_info[0].arch.cr2)
}

/// Called by the stubs with the saved registers.
#[no_mangle]
extern "C" fn guest_trap(frame: &mut TrapFrame) {
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
    if frame.bounce.cs & 3 == 3 && vector != VECTOR_NMI {
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
    // Only a fault of the probe's own store is the probe's: an event or a
    // shutdown request may arrive while the guest stands at that address.
    #[cfg(not(test))]
    if (vector == 13 || vector == 14) && frame.bounce.rip == probe_write_store as *const () as u64 {
        let address = if vector == 14 { fault_address() } else { 0 };
        *LAST_PROBE_FAULT.lock() = Some(Fault {
            vector,
            error_code: frame.bounce.error_code,
            address,
        });
        frame.bounce.rip = probe_write_recovery as *const () as u64;
        return;
    }
    if vector == VECTOR_NMI {
        let reason = crate::start::shared_info().map_or(0, |shared| shared.arch.nmi_reason);
        if reason & hypercall_abi::domctl::SHUTDOWN_REQUEST_FLAG != 0 {
            let reason =
                ShutdownReason::try_from(reason as u32 & 0xff).unwrap_or(ShutdownReason::Poweroff);
            crate::println!("shutdown requested ({}): stopping", reason.name());
            crate::shutdown(reason);
        }
        return;
    }
    if vector == VECTOR_DEVICE_NOT_AVAILABLE {
        let handler = DEVICE_NOT_AVAILABLE_HANDLER.load(Ordering::Relaxed);
        if handler != 0 {
            // SAFETY: only `set_device_not_available_handler` stores here,
            // and it stores a `fn()`.
            let handler: fn() = unsafe { core::mem::transmute::<usize, fn()>(handler) };
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
