//! How an attacker pokes: the raw operations of the test workloads that
//! attack the hypervisor (`attacks.rs`, `fuzz.rs`, `flood.rs`, `user.rs`,
//! the `probe` and `crash` workloads) and of Dom0's `debug` commands.
//!
//! Each function here does one deliberately odd thing: a hypercall with
//! arguments nobody checked, an `iret` frame the hypervisor must refuse, a
//! read of an address that is not mapped. They are safe to *call* in the
//! sense that matters for these workloads: what they can damage is this
//! domain alone, which is the experiment (the hypervisor must stay
//! standing, and the scenario checks that it does). They are not safe in
//! the sense of Rust's guarantees, which is why they live here, in one
//! place a reader can audit, and why the guest kernel's own code never
//! calls them. The attack logic that decides *what* to poke is safe code
//! in the workload modules.

use hypercall_abi::callback::{CallbackRegister, CallbackType, CALLBACKF_MASK_EVENTS};
use hypercall_abi::layout::TrapInfo;
use hypercall_abi::wrappers;
use hypercall_abi::Hypercall;

#[cfg(not(test))]
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

#[cfg(not(test))]
core::arch::global_asm!(
    ".pushsection .text.fuzz_iret, \"ax\"",
    // fuzz_iret(rflags, flags, rax, cs_slot) -> rax: enters the hypervisor
    // through the hypercall page's iret entry with a frame that returns
    // to the landing below, on the same stack, and gives back rax.
    ".global fuzz_iret",
    "fuzz_iret:",
    "    pushfq",        // the real flags, for the landing
    "    mov %rsp, %r9", // the stack pointer to land with
    "    pushq $0xe02b", // ss
    "    push %r9",      // rsp
    "    push %rdi",     // rflags
    "    push %rcx",     // cs, with junk above bit 15
    "    lea fuzz_iret_landing(%rip), %rax",
    "    push %rax",                    // rip
    "    push %rsi",                    // flags
    "    mov %rdx, %rax",               // the stub pushes rax, r11, rcx
    "    jmp hypercall_page + 23 * 32", // HYPERVISOR_iret
    "fuzz_iret_landing:",
    "    popfq",
    "    ret",
    ".popsection",
    options(att_syntax),
);

#[cfg(not(test))]
extern "C" {
    fn attack_iret(rip: u64, cs: u64, rflags: u64, rsp: u64, ss: u64) -> !;
    fn attack_iret_at(rsp: u64) -> !;
    fn attack_trap_on_stack(rsp: u64) -> !;
    fn fuzz_iret(rflags: u64, flags: u64, rax: u64, cs_slot: u64) -> u64;
}

/// The `iret` hypercall with the frame (`rip`, `cs`, `rflags`, `rsp`,
/// `ss`), as the hypercall page's iret stub completes it. If the
/// hypervisor honours a frame it should refuse, execution goes on at `rip`.
#[cfg(not(test))]
pub fn iret_with_frame(rip: u64, cs: u64, rflags: u64, rsp: u64, ss: u64) -> ! {
    // SAFETY: see the module comment: the frame is the experiment; the
    // stub pushes it on our own stack and never returns.
    unsafe { attack_iret(rip, cs, rflags, rsp, ss) }
}

/// The `iret` hypercall with the stack pointer (and so the frame) at `rsp`.
#[cfg(not(test))]
pub fn iret_with_frame_at(rsp: u64) -> ! {
    // SAFETY: see the module comment.
    unsafe { attack_iret_at(rsp) }
}

/// `int3` with the stack pointer at `rsp`: the hypervisor must not write
/// the exception frame there.
#[cfg(not(test))]
pub fn breakpoint_with_stack_at(rsp: u64) -> ! {
    // SAFETY: see the module comment.
    unsafe { attack_trap_on_stack(rsp) }
}

/// Enters the hypervisor through the iret entry with a frame that returns
/// to the stub itself on the same stack, with RFLAGS `rflags`, iret flags
/// `flags`, RAX `rax` and `cs_slot` (junk above bit 15 included) as CS;
/// gives back RAX as the guest saw it on return.
#[cfg(not(test))]
pub fn iret_to_self(rflags: u64, flags: u64, rax: u64, cs_slot: u64) -> u64 {
    // SAFETY: the frame lands in the stub, on the same stack, which it
    // restores; the caller clears the trap flag from `rflags`.
    unsafe { fuzz_iret(rflags, flags, rax, cs_slot) }
}

/// Hypercall `number` with `arguments`, unchecked: pointers among them
/// may name any memory of this domain, which the hypervisor may then write.
pub fn hypercall(number: u64, arguments: [u64; 5]) -> i64 {
    // SAFETY: see the module comment: the arguments are the experiment.
    unsafe { wrappers::hypercall_raw(number, arguments) }
}

/// Hypercall `number` with no arguments.
pub fn hypercall0(number: u64) -> i64 {
    // SAFETY: no arguments, so no pointer; any effect is on this domain.
    unsafe { wrappers::hypercall0_raw(number) }
}

/// `set_trap_table` with any handler addresses.
pub fn set_trap_table(table: &[TrapInfo]) -> i64 {
    // SAFETY: see the module comment: the hypervisor must refuse, or
    // jump to, whatever the table names.
    unsafe { wrappers::set_trap_table(table) }
}

/// Registers `address` as the callback of `kind`, whatever is there.
pub fn register_callback(kind: CallbackType, address: u64) -> i64 {
    let registration = CallbackRegister::new(kind, CALLBACKF_MASK_EVENTS, address);
    // SAFETY: see the module comment.
    unsafe { wrappers::callback_register(&registration) }
}

/// The old `set_callbacks` hypercall with these entry addresses.
pub fn set_callbacks(event: u64, failsafe: u64, syscall: u64) -> i64 {
    // SAFETY: see the module comment.
    unsafe { wrappers::hypercall3(Hypercall::SetCallbacks, event, failsafe, syscall) }
}

/// `sysctl` with `request` as is (a buffer it names must be valid: this
/// is for requests without one, or for showing a refusal).
pub fn sysctl(request: &mut hypercall_abi::sysctl::Sysctl) -> i64 {
    // SAFETY: see the module comment.
    unsafe { wrappers::sysctl(request) }
}

/// `domctl` with `request` as is.
pub fn domctl(request: &mut hypercall_abi::domctl::Domctl) -> i64 {
    // SAFETY: see the module comment; a domctl payload holds no pointers.
    unsafe { wrappers::hypercall1(Hypercall::Domctl, request as *mut _ as u64) }
}

/// Reads the u64 at `address`: for showing what a page fault on an
/// unmapped address does (the read is not expected to return).
pub fn read_u64(address: u64) -> u64 {
    // SAFETY: see the module comment: the fault is the experiment.
    unsafe { core::ptr::read_volatile(address as *const u64) }
}

/// `ud2`: raises #UD.
pub fn invalid_opcode() {
    // SAFETY: raises #UD, handled by whatever the trap table says.
    unsafe { core::arch::asm!("ud2") };
}

/// `hlt` in ring 3: raises #GP.
pub fn halt() {
    // SAFETY: hlt is privileged: in ring 3 it raises #GP; it touches no
    // memory.
    unsafe { core::arch::asm!("hlt", options(nomem, nostack)) };
}

/// `int3`: raises #BP, which the guest kernel reports and returns from.
pub fn breakpoint() {
    // SAFETY: int3 raises #BP, which our trap table handles and returns
    // from with the iret hypercall; no state is changed.
    unsafe { core::arch::asm!("int3", options(nomem, nostack)) };
}
