//! Entry points: the Xen ELF notes, `_start`, the exception and upcall
//! stubs, and the store that may fault (`probe_write`).
//!
//! Everything here is assembly the hypervisor or the domain builder jumps
//! to, and the few Rust functions that assembly calls by name. The Rust
//! side of each (what to do with an exception, with an event) is safe code
//! in `traps.rs` and `events.rs`.

use super::shared_info;
use crate::start::{STACK_SIZE, VIRT_BASE};
use crate::traps::TrapFrame;
use crate::StartInfo;
use core::sync::atomic::{AtomicPtr, Ordering};

#[cfg(not(test))]
core::arch::global_asm!(
    ".pushsection .note.Xen, \"a\", @note",
    ".macro XEN_NOTE_NUMBER kind, value",
    "    .balign 4",
    "    .long 4, 8, \\kind",
    "    .asciz \"Xen\"",
    "    .quad \\value",
    ".endm",
    ".macro XEN_NOTE_STRING kind, text",
    "    .balign 4",
    "    .long 4, 2f - 1f, \\kind",
    "    .asciz \"Xen\"",
    "1:  .asciz \"\\text\"",
    "2:  .balign 4",
    ".endm",
    "XEN_NOTE_STRING 6, \"xen-like\"",                       // GUEST_OS
    "XEN_NOTE_STRING 7, \"0.1.0\"",                          // GUEST_VERSION
    "XEN_NOTE_STRING 5, \"xen-3.0\"",                        // XEN_VERSION
    "XEN_NOTE_STRING 8, \"generic\"",                        // LOADER
    "XEN_NOTE_NUMBER 3, {virt_base}",                        // VIRT_BASE
    "XEN_NOTE_NUMBER 1, _start",                             // ENTRY
    "XEN_NOTE_NUMBER 2, hypercall_page",                     // HYPERCALL_PAGE
    ".popsection",
    // The hypercall page: filled by the builder, so its bytes here are
    // only int3 (a stray call traps instead of running garbage).
    ".pushsection .hypercall_page, \"ax\"",
    ".balign 4096",
    ".global hypercall_page",
    "hypercall_page:",
    "    .fill 4096, 1, 0xcc",
    ".popsection",
    ".pushsection .text.start, \"ax\"",
    ".global _start",
    "_start:",
    "    lea rsp, [rip + guest_stack_top]",
    "    mov rdi, rsi",
    "    xor ebp, ebp",
    "    call guest_start",
    "    ud2",
    ".popsection",
    ".pushsection .bss.guest_stack, \"aw\", @nobits",
    ".balign 16",
    "guest_stack_bottom:",
    "    .skip {stack_size}",
    "guest_stack_top:",
    ".popsection",
    virt_base = const VIRT_BASE,
    stack_size = const STACK_SIZE,
);

/// The start_info page, as the builder passed it in `rsi`.
static START_INFO: AtomicPtr<StartInfo> = AtomicPtr::new(core::ptr::null_mut());

/// The start_info page the builder gave us.
pub fn start_info() -> &'static StartInfo {
    // SAFETY: guest_start stored the pointer the builder passed in rsi, a
    // page the builder filled and mapped for the domain's whole life,
    // before any other code ran; nothing writes the page afterwards.
    unsafe { &*START_INFO.load(Ordering::Relaxed) }
}

#[cfg(not(test))]
extern "Rust" {
    /// The guest's main function, defined by the binary (see
    /// [`guest_main!`](crate::guest_main)).
    fn guest_main(start_info: &'static StartInfo) -> !;
}

/// Declares `$main` as the binary's main function: the one the library
/// calls once the guest kernel is set up. It takes the start_info page and
/// never returns. (The link fails when a binary declares none, or two.)
#[macro_export]
macro_rules! guest_main {
    ($main:path) => {
        #[no_mangle]
        fn guest_main(start_info: &'static $crate::StartInfo) -> ! {
            $main(start_info)
        }
    };
}

/// Called by `_start` on our own stack.
#[cfg(not(test))]
#[no_mangle]
extern "C" fn guest_start(start_info: *mut StartInfo) -> ! {
    START_INFO.store(start_info, Ordering::Relaxed);
    crate::traps::install();
    crate::paging::init();
    shared_info::map();
    super::heap::init();
    crate::events::init();
    crate::console::init();
    // SAFETY: every binary built on this library defines guest_main with
    // exactly this signature (the link fails otherwise).
    unsafe { guest_main(self::start_info()) }
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

/// The vectors the stubs above handle, with each stub's address, in the
/// order of `crate::traps::HANDLED`.
#[cfg(not(test))]
pub fn exception_entries() -> [u64; 16] {
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
    stubs.map(|stub| stub as *const () as u64)
}

/// Address of the event-upcall entry, for `CALLBACKTYPE_event`.
#[cfg(not(test))]
pub fn upcall_entry() -> u64 {
    guest_trap_stub_256 as *const () as u64
}

/// Address of the NMI entry, for `CALLBACKTYPE_nmi`.
#[cfg(not(test))]
pub fn nmi_entry() -> u64 {
    guest_trap_stub_2 as *const () as u64
}

/// Whether `address` is one of the entry stubs of this module or of
/// [`super::user_mode`], each of which takes a bounce frame and returns with
/// the iret hypercall.
#[cfg(not(test))]
fn is_our_entry(address: u64) -> bool {
    exception_entries().contains(&address)
        || address == upcall_entry()
        || address == nmi_entry()
        || super::user_mode::entries().contains(&address)
}

/// `set_trap_table` with a table that names only our own stubs (refused
/// with `-EINVAL` otherwise: a handler elsewhere would be run by the
/// hypervisor with whatever is there).
#[cfg(not(test))]
pub fn set_trap_table(table: &[hypercall_abi::layout::TrapInfo]) -> i64 {
    if table
        .iter()
        .any(|entry| !entry.is_end() && !is_our_entry(entry.address))
    {
        return hypercall_abi::XenError::EINVAL.as_return();
    }
    // SAFETY: every non-terminating entry names one of our stubs (checked
    // just above); the wrapper checks the terminator.
    unsafe { hypercall_abi::wrappers::set_trap_table(table) }
}

/// Registers one of our entry stubs as a callback (`-EINVAL` for any
/// other address).
#[cfg(not(test))]
pub fn register_callback(kind: hypercall_abi::callback::CallbackType, entry: u64) -> i64 {
    if !is_our_entry(entry) {
        return hypercall_abi::XenError::EINVAL.as_return();
    }
    let registration = hypercall_abi::callback::CallbackRegister::new(
        kind,
        hypercall_abi::callback::CALLBACKF_MASK_EVENTS,
        entry,
    );
    // SAFETY: the entry is one of the stubs above, which take a bounce
    // frame and return with the iret hypercall.
    unsafe { hypercall_abi::wrappers::callback_register(&registration) }
}

/// Forgets every handler: the next exception has nowhere to go, and the
/// hypervisor crashes the domain.
pub fn clear_trap_table() -> i64 {
    // SAFETY: a null table clears the trap table; nothing is read.
    unsafe { hypercall_abi::wrappers::hypercall1(hypercall_abi::Hypercall::SetTrapTable, 0) }
}

/// Stores `value` at `address` with the one instruction the trap handler
/// knows how to resume from: 0 if the store completed, 1 if it faulted.
#[cfg(not(test))]
pub fn probe_store(address: u64, value: u64) -> u64 {
    // SAFETY: the store may fault, which is the point: the trap handler
    // resumes at the recovery label with the stack as it was. If it does
    // not fault it writes 8 bytes the caller chose to write: callers name
    // addresses that no Rust reference points into (a test's scratch page,
    // a read-only mapping), and the assembly touches nothing else.
    unsafe { probe_write(address, value) }
}

/// If `rip` is the probe's store, the address to resume at instead.
#[cfg(not(test))]
pub fn probe_recovery(rip: u64) -> Option<u64> {
    (rip == probe_write_store as *const () as u64)
        .then_some(probe_write_recovery as *const () as u64)
}

/// Called by the stubs with the saved registers.
#[no_mangle]
extern "C" fn guest_trap(frame: &mut TrapFrame) {
    crate::traps::handle(frame);
}
