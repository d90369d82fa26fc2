//! The ways into and out of the hypervisor.
//!
//! Three doors lead in, and all of them leave a [`GuestFrame`] at the top of
//! the CPU's hypervisor stack:
//!
//! - `syscall_entry`: a guest kernel's hypercall (`syscall` with the
//!   hypercall number in `rax`). The CPU switches only CS and RIP, so the
//!   code switches to the hypervisor's GS and stack by hand, then pushes a
//!   frame shaped like an interrupt frame. It leaves by `sysretq` when the
//!   handler allows (the fast path), by `iretq` otherwise.
//! - `interrupt_stubs`: 256 stubs, one per vector, 16 bytes apart. Each
//!   pushes a zero error code where the CPU pushed none, then its vector
//!   number, and jumps to `interrupt_common`. From ring 3 the CPU has already
//!   switched to the stack in the TSS (`RSP0`, the same stack top); from
//!   ring 0 (the hypervisor's idle loop, or a hypervisor bug) it stays on
//!   the current stack.
//! - `enter_guest`: the first entry into a guest jumps to the common exit
//!   with a frame the builder prepared.
//!
//! An exception in the hypervisor with the guest's GS (Xen's XSA-260 and
//! XSA-265). `mov %ss` (and `pop %ss`) holds back a `#DB` its own memory
//! access raised (a guest data breakpoint on the selector it loads) until
//! the *next* instruction has run. If that instruction is `syscall`, or
//! an `int3` that enters through the IDT, the `#DB` arrives in ring 0 at
//! the first instruction of the hypervisor's entry: before `swapgs`, and
//! for `syscall` still on the guest's stack pointer. So the `#DB` gate has
//! its own IST stack (the CPU never pushes a frame on a stack the guest
//! chose), and an exception from ring 0 checks the live GS base against
//! the hypervisor's (`rdmsr`, as Xen's "paranoid" entries do) and swaps GS
//! when it holds the guest's, marking the frame with `ENTRY_SWAPPED_GS`
//! so that the exit swaps back. The `#DB` itself is recorded in the
//! vCPU's DR6 and otherwise ignored (`traps::debug::hypervisor_context`).
//! QEMU's software emulation raises such a `#DB` at once instead of after
//! the next instruction, so it cannot replay this; real processors do.
//!
//! CR0.TS (the lazy-FPU flag a guest sets with `fpu_taskswitch`) is set
//! only while a guest that asked for it runs: the exit paths set it after
//! the last SSE instruction (`RESTORE_ALL`), and every entry clears it
//! before the first (`SAVE_ALL`), so the hypervisor's Rust code, which uses
//! SSE, never runs with it set. See `traps::fpu`.
//!
//! Interrupts stay disabled for the whole time the hypervisor runs
//! (`SFMASK` clears IF on `syscall`; every IDT gate is an interrupt gate),
//! except inside the idle loop's `sti; hlt`. So no interrupt ever lands in
//! the middle of Rust code, and the red zone that a few precompiled `core`
//! functions use is never overwritten.
//!
//! [`GuestFrame`]: super::frame::GuestFrame

use super::frame::{GuestFrame, GUEST_FRAME_SIZE};
use super::percpu::{PERCPU_GUEST_RSP, PERCPU_GUEST_TS, PERCPU_STACK_TOP};
use hypercall_abi::hypercall::Hypercall;
use hypercall_abi::layout::{FLAT_RING3_CS64, FLAT_RING3_SS64};

core::arch::global_asm!(
    ".pushsection .text.entry, \"ax\"",
    // Save the general-purpose registers and the SSE state below the
    // vector/error-code words, in GuestFrame's order, then give the
    // hypervisor a clean MXCSR (a guest may have unmasked SSE exceptions).
    ".macro SAVE_ALL",
    "    push %rax; push %rbx; push %rcx; push %rdx; push %rsi; push %rdi; push %rbp",
    "    push %r8; push %r9; push %r10; push %r11; push %r12; push %r13; push %r14; push %r15",
    "    sub $272, %rsp",
    "    movaps %xmm0, 0(%rsp);    movaps %xmm1, 16(%rsp);   movaps %xmm2, 32(%rsp);   movaps %xmm3, 48(%rsp)",
    "    movaps %xmm4, 64(%rsp);   movaps %xmm5, 80(%rsp);   movaps %xmm6, 96(%rsp);   movaps %xmm7, 112(%rsp)",
    "    movaps %xmm8, 128(%rsp);  movaps %xmm9, 144(%rsp);  movaps %xmm10, 160(%rsp); movaps %xmm11, 176(%rsp)",
    "    movaps %xmm12, 192(%rsp); movaps %xmm13, 208(%rsp); movaps %xmm14, 224(%rsp); movaps %xmm15, 240(%rsp)",
    "    stmxcsr 256(%rsp)",
    "    ldmxcsr hypervisor_mxcsr(%rip)",
    ".endm",
    ".macro RESTORE_ALL",
    "    ldmxcsr 256(%rsp)",
    "    movaps 0(%rsp), %xmm0;    movaps 16(%rsp), %xmm1;   movaps 32(%rsp), %xmm2;   movaps 48(%rsp), %xmm3",
    "    movaps 64(%rsp), %xmm4;   movaps 80(%rsp), %xmm5;   movaps 96(%rsp), %xmm6;   movaps 112(%rsp), %xmm7",
    "    movaps 128(%rsp), %xmm8;  movaps 144(%rsp), %xmm9;  movaps 160(%rsp), %xmm10; movaps 176(%rsp), %xmm11",
    "    movaps 192(%rsp), %xmm12; movaps 208(%rsp), %xmm13; movaps 224(%rsp), %xmm14; movaps 240(%rsp), %xmm15",
    "    add $272, %rsp",
    "    pop %r15; pop %r14; pop %r13; pop %r12; pop %r11; pop %r10; pop %r9; pop %r8",
    "    pop %rbp; pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rbx; pop %rax",
    ".endm",
    // -----------------------------------------------------------------
    // syscall: rcx = guest rip, r11 = guest rflags, rsp = guest stack.
    // -----------------------------------------------------------------
    ".align 16",
    ".global syscall_entry",
    "syscall_entry:",
    "    swapgs",
    "    mov %rsp, %gs:{guest_rsp}",
    "    mov %gs:{stack_top}, %rsp",
    "    push ${ss}",
    "    push %gs:{guest_rsp}",
    "    push %r11",
    "    push ${cs}",
    "    push %rcx",
    "    push $0",
    "    push $0x100", // ENTRY_SYSCALL
    // The guest ran with CR0.TS set (fpu_taskswitch): clear it before
    // SAVE_ALL's first SSE instruction (see traps::fpu).
    "    cmpb $0, %gs:{guest_ts}",
    "    je 3f",
    "    clts",
    "3:  SAVE_ALL",
    "    mov %rsp, %rdi",
    "    call handle_syscall",
    "    test %eax, %eax",
    "    jz exit_through_iret",
    // Fast path: the handler checked that RIP is canonical and RFLAGS
    // sane, and that the guest does not need rcx/r11 back.
    "    RESTORE_ALL",
    // The guest's virtual CR0.TS is set: set the real one now that no SSE
    // instruction remains before the guest (rcx is sysretq's anyway).
    "    cmpb $0, %gs:{guest_ts}",
    "    je 4f",
    "    mov %cr0, %rcx",
    "    or $8, %rcx",
    "    mov %rcx, %cr0",
    "4:  mov 16(%rsp), %rcx", // rip
    "    mov 32(%rsp), %r11", // rflags
    "    mov 40(%rsp), %rsp", // the guest's stack
    "    swapgs",
    "    sysretq",
    // -----------------------------------------------------------------
    // The benchmark's empty handler (sysctl bench_syscall_floor): it
    // returns at once, except that the sysctl hypercall goes through the
    // real entry so that the guest can switch the mode off again.
    // -----------------------------------------------------------------
    ".align 16",
    ".global syscall_floor_entry",
    "syscall_floor_entry:",
    "    cmp ${sysctl}, %eax",
    "    je syscall_entry",
    "    sysretq",
    // -----------------------------------------------------------------
    // Exceptions and interrupts.
    // -----------------------------------------------------------------
    ".align 16",
    ".global interrupt_stubs",
    "interrupt_stubs:",
    ".set vector, 0",
    ".rept 256",
    "    .align 16",
    "    .if vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30",
    "    .else",
    "    push $0",
    "    .endif",
    "    push $vector",
    "    jmp interrupt_common",
    "    .set vector, vector + 1",
    ".endr",
    "interrupt_common:",
    "    cld",
    "    testb $3, 24(%rsp)", // CS of the interrupted code
    "    jz 5f",
    "    swapgs",
    "    cmpb $0, %gs:{guest_ts}",
    "    je 1f",
    "    clts",
    "    jmp 1f",
    // From ring 0: GS may still (or already) hold the guest's base, if the
    // exception hit the first instruction of an entry or the last ones of
    // an exit (see "An exception in the hypervisor with the guest's GS"
    // above). Compare the live base with the hypervisor's and swap if they
    // differ, marking the frame (bit 32 of its vector word).
    "5:  push %rax; push %rcx; push %rdx",
    "    mov $0xc0000101, %ecx", // MSR_GS_BASE
    "    rdmsr",
    "    shl $32, %rdx",
    "    or %rax, %rdx",
    "    cmp HYPERVISOR_GS_BASE(%rip), %rdx",
    "    pop %rdx; pop %rcx; pop %rax",
    "    je 7f",
    "    swapgs",
    "    orl $1, 4(%rsp)", // ENTRY_SWAPPED_GS
    // From ring 0 CR0.TS is clear, except in the few instructions of the
    // exit path after it was set for the guest (a fault of iretq itself, an
    // NMI): clear it, so that SAVE_ALL and the handler can use SSE.
    "7:  clts",
    "1:  SAVE_ALL",
    "    mov %rsp, %rdi",
    "    call handle_trap",
    ".global exit_through_iret",
    "exit_through_iret:",
    "    RESTORE_ALL",
    "    testb $3, 24(%rsp)", // CS of the frame
    "    jnz 8f",
    // Back to ring 0: give GS back to the guest if the entry took it.
    "    testl $1, 4(%rsp)", // ENTRY_SWAPPED_GS
    "    jz 9f",
    "    swapgs",
    "9:  add $16, %rsp", // vector and error code
    "    iretq",
    "8:  add $16, %rsp", // vector and error code
    "    cmpb $0, %gs:{guest_ts}",
    "    je 6f",
    "    push %rax",
    "    mov %cr0, %rax",
    "    or $8, %rax",
    "    mov %rax, %cr0",
    "    pop %rax",
    "6:  swapgs",
    "    iretq",
    ".popsection",
    ".pushsection .rodata.hypervisor_mxcsr, \"a\"",
    ".align 4",
    "hypervisor_mxcsr: .long 0x1f80",
    ".popsection",
    guest_rsp = const PERCPU_GUEST_RSP,
    stack_top = const PERCPU_STACK_TOP,
    guest_ts = const PERCPU_GUEST_TS,
    ss = const FLAT_RING3_SS64 as u64,
    cs = const FLAT_RING3_CS64 as u64,
    sysctl = const Hypercall::Sysctl as u64,
    options(att_syntax),
);

extern "C" {
    fn syscall_entry();
    fn syscall_floor_entry();
    fn interrupt_stubs();
    fn exit_through_iret();
}

/// Distance between two interrupt stubs.
pub const INTERRUPT_STUB_SIZE: u64 = 16;

/// Address of the normal `syscall` entry (for `LSTAR`).
pub fn syscall_entry_address() -> u64 {
    syscall_entry as *const () as u64
}

/// Address of the benchmark's empty `syscall` handler.
pub fn syscall_floor_entry_address() -> u64 {
    syscall_floor_entry as *const () as u64
}

/// Address of the stub for `vector` (for the IDT).
pub fn interrupt_stub_address(vector: u8) -> u64 {
    interrupt_stubs as *const () as u64 + u64::from(vector) * INTERRUPT_STUB_SIZE
}

/// Leaves the hypervisor for the guest whose registers are `frame`, on
/// this CPU, never to come back to the caller (the next entry starts
/// afresh at the stack top): the safe way into a guest, for the scheduler's
/// idle loop and the start of day.
///
/// It makes sure of what [`enter_guest`] needs: the stack top is this
/// CPU's own (read from its per-CPU block, where the TSS's RSP0 came from),
/// and the frame returns to ring 3 (CS and SS with RPL 3; the exit path
/// restores the selectors, which the hypercalls that set them check). A
/// frame that would return to ring 0 is a hypervisor bug, and stops the
/// machine rather than running a guest's registers in ring 0.
///
/// The page tables loaded should be the guest's (`mm::paging::
/// load_guest_root`); every root the hypervisor ever loads maps the
/// hypervisor identically and without the user bit, so a wrong root could
/// only make the guest fault, never expose the hypervisor.
pub fn return_to_guest(frame: &GuestFrame) -> ! {
    assert!(
        frame.cs & 3 == 3 && frame.ss & 3 == 3,
        "entering a guest with a ring-0 frame (cs {:#x}, ss {:#x})",
        frame.cs,
        frame.ss
    );
    let stack_top = super::percpu::this_cpu()
        .stack_top
        .load(core::sync::atomic::Ordering::Relaxed);
    // SAFETY: `stack_top` is this CPU's hypervisor stack top, the frame
    // returns to ring 3 (checked above), and the loaded page tables map the
    // hypervisor as every root does (see above).
    unsafe { enter_guest(frame, stack_top) }
}

/// Leaves the hypervisor for a guest whose registers are `frame`, never to
/// come back to the caller: the next entry starts afresh at the stack top.
///
/// # Safety
/// `stack_top` must be this CPU's hypervisor stack top (the TSS's RSP0), the
/// current page tables must map the guest that `frame` describes, and the
/// frame's selectors must be the guest selectors of our GDT.
unsafe fn enter_guest(frame: &GuestFrame, stack_top: u64) -> ! {
    let slot = (stack_top - GUEST_FRAME_SIZE as u64) as *mut GuestFrame;
    // SAFETY:
    // 1. `slot` is the top GUEST_FRAME_SIZE bytes of this CPU's stack, which
    //    hold no live data once we abandon the current call chain here;
    //    `frame` may itself lie on this stack, even overlap the slot: the
    //    copy is a `memmove`, and `frame` is not used after it;
    // 2. the caller vouches for the frame's contents; the exit path then
    //    restores exactly those registers and `iretq`s to ring 3.
    unsafe {
        core::ptr::copy(frame as *const GuestFrame, slot, 1);
        core::arch::asm!(
            "mov rsp, {slot}",
            "jmp {exit}",
            slot = in(reg) slot,
            exit = sym exit_through_iret,
            options(noreturn),
        );
    }
}
