//! User mode's machinery: the entry stubs for system calls and software
//! interrupts from guest user mode, the kernel stack they land on, the
//! routine that enters a user program, and the programs' code (a few
//! instructions of assembly each, copied to the user code page by the
//! `user` workload, whose module comment says what each one does).
//!
//! The workload decides what the entries mean ([`set_entry_handler`]);
//! this module only moves registers between the hypervisor's frames and a
//! [`UserFrame`].

use core::ops::Range;

/// How the kernel was entered from user mode (pushed by the entry stubs).
pub const ENTRY_SYSCALL: u64 = 0;
/// Through `int $0x80`.
pub const ENTRY_INT_0X80: u64 = 1;
/// Through `int $0x82`.
pub const ENTRY_INT_0X82: u64 = 2;

#[cfg(not(test))]
core::arch::global_asm!(
    // The kernel stack that `stack_switch` names: the hypervisor puts the
    // frame of every entry from user mode at its top.
    ".pushsection .bss.user_entry_stack, \"aw\", @nobits",
    ".balign 16",
    ".global user_entry_stack_bottom",
    "user_entry_stack_bottom:",
    "    .skip 32768",
    ".global user_entry_stack_top",
    "user_entry_stack_top:",
    ".popsection",
    ".pushsection .text.user_entry, \"ax\"",
    // Entries from user mode. The hypervisor left RCX, R11, RIP, CS,
    // RFLAGS, RSP, SS on the stack (a `BounceFrame` without error code).
    // Each stub takes RCX and R11 back,
    // pushes the iret `flags` to return with and its own kind, and goes to
    // the common part, which saves the registers in a `UserFrame`.
    ".global user_syscall_entry",
    "user_syscall_entry:",
    "    pop %rcx",
    "    pop %r11",
    "    push ${in_syscall}", // return sysret-style: rcx, r11 clobbered
    "    push ${entry_syscall}",
    "    jmp user_entry_common",
    ".global user_int80_entry",
    "user_int80_entry:",
    "    pop %rcx",
    "    pop %r11",
    "    push $0", // a full iret: int $0x80 preserves rcx and r11
    "    push ${entry_int80}",
    "    jmp user_entry_common",
    ".global user_int82_entry",
    "user_int82_entry:",
    "    pop %rcx",
    "    pop %r11",
    "    push $0",
    "    push ${entry_int82}",
    "    jmp user_entry_common",
    "user_entry_common:",
    "    push %rax; push %rbx; push %rcx; push %rdx; push %rsi; push %rdi; push %rbp",
    "    push %r8; push %r9; push %r10; push %r11; push %r12; push %r13; push %r14; push %r15",
    "    cld",
    "    mov %rsp, %rdi",
    "    call user_entry",
    "    pop %r15; pop %r14; pop %r13; pop %r12; pop %r11; pop %r10; pop %r9; pop %r8",
    "    pop %rbp; pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rbx; pop %rax",
    "    add $8, %rsp",                 // the kind; `flags` and the frame remain
    "    jmp hypercall_page + 23 * 32", // HYPERVISOR_iret
    // enter_user(rip, rsp, argument0, argument1): start a program. Builds
    // an iret context with a user CS (RPL 3) and no kernel register values.
    ".global enter_user",
    "enter_user:",
    "    push ${user_ss}",
    "    push %rsi",
    "    push $0x202", // IF: events enabled in user mode
    "    push ${user_cs}",
    "    push %rdi",
    "    push $0", // flags: a full iret
    "    mov %rdx, %rdi",
    "    mov %rcx, %rsi",
    "    xor %eax, %eax; xor %ebx, %ebx; xor %ecx, %ecx; xor %edx, %edx; xor %ebp, %ebp",
    "    xor %r8d, %r8d; xor %r9d, %r9d; xor %r10d, %r10d; xor %r11d, %r11d",
    "    xor %r12d, %r12d; xor %r13d, %r13d; xor %r14d, %r14d; xor %r15d, %r15d",
    "    jmp hypercall_page + 23 * 32",
    // read_gs_word(): the first 8 bytes at the current GS base.
    ".global read_gs_word",
    "read_gs_word:",
    "    mov %gs:0, %rax",
    "    ret",
    ".popsection",
    // ---------------------------------------------------------------
    // The user programs: copied to USER_CODE, so position-independent
    // and self-contained (strings included).
    // ---------------------------------------------------------------
    ".pushsection .rodata.user_programs, \"a\"",
    ".balign 16",
    ".global user_programs_start",
    "user_programs_start:",
    // init: write, getpid, %gs:0, exit(0).
    ".global user_init",
    "user_init:",
    "    mov $1, %eax; mov $1, %edi; lea init_hello(%rip), %rsi",
    "    mov $init_hello_end - init_hello, %edx; syscall",
    "    mov $39, %eax; syscall",
    "    add $0x30, %eax; push %rax", // the pid as one digit
    "    mov $1, %eax; mov $1, %edi; lea init_pid(%rip), %rsi",
    "    mov $init_pid_end - init_pid, %edx; syscall",
    "    mov $1, %eax; mov $1, %edi; mov %rsp, %rsi; mov $1, %edx; syscall",
    "    pop %rax",
    "    mov $1, %eax; mov $1, %edi; lea init_gs(%rip), %rsi",
    "    mov $init_gs_end - init_gs, %edx; syscall",
    "    mov %gs:0, %rax; push %rax",
    "    mov $1, %eax; mov $1, %edi; mov %rsp, %rsi; mov $8, %edx; syscall",
    "    pop %rax",
    "    xor %edi, %edi; mov $60, %eax; syscall",
    "    ud2",
    "init_hello: .ascii \"init: hello from user mode\\n\"",
    "init_hello_end:",
    "init_pid: .ascii \"\\ninit: getpid says \"",
    "init_pid_end:",
    "init_gs: .ascii \"\\ninit: %gs:0 holds: \"",
    "init_gs_end:",
    // syscall-bench(count in rdi, buffer in rsi): time getpid round trips.
    ".global user_syscall_bench",
    "user_syscall_bench:",
    "    mov %rdi, %r12; mov %rsi, %r13",
    "1:  rdtsc; shl $32, %rdx; or %rax, %rdx; mov %rdx, %r14",
    "    mov $39, %eax; syscall",
    "    rdtsc; shl $32, %rdx; or %rdx, %rax; sub %r14, %rax",
    "    mov %rax, (%r13); add $8, %r13",
    "    dec %r12; jnz 1b",
    "    xor %edi, %edi; mov $60, %eax; syscall",
    "    ud2",
    // hypercall-by-syscall: xen_version as a user program would try it.
    ".global user_hypercall_by_syscall",
    "user_hypercall_by_syscall:",
    "    mov $17, %eax; xor %edi, %edi; xor %esi, %esi; syscall",
    "    mov %rax, %rdi; mov $60, %eax; syscall",
    "    ud2",
    // iret-from-user: an iret_context naming guest-kernel mode (CS RPL 0)
    // at the kernel's entry point, then what the iret stub would do.
    ".global user_iret_from_user",
    "user_iret_from_user:",
    "    push ${user_ss}; push %rsp; push $0x202; push ${kernel_cs_rpl0}",
    "    movabs ${virt_base}, %rax; push %rax",
    "    push $0; push $0; push $0; push $0", // flags, rcx, r11, rax
    "    mov $23, %eax; syscall",
    "    mov %rax, %rdi; mov $60, %eax; syscall",
    "    ud2",
    // int-0x80: getpid through the DPL-3 gate.
    ".global user_int_0x80",
    "user_int_0x80:",
    "    mov $39, %eax; int $0x80",
    "    mov %rax, %rdi; mov $60, %eax; syscall",
    "    ud2",
    // int-0x82: through a DPL-0 gate; must not return.
    ".global user_int_0x82",
    "user_int_0x82:",
    "    int $0x82",
    "    mov $0x82, %edi; mov $60, %eax; syscall",
    "    ud2",
    // kernel-read: the kernel's first page; must fault.
    ".global user_kernel_read",
    "user_kernel_read:",
    "    movabs ${virt_base}, %rax; mov (%rax), %rax",
    "    mov $0x77, %edi; mov $60, %eax; syscall",
    "    ud2",
    ".global user_programs_end",
    "user_programs_end:",
    ".popsection",
    in_syscall = const hypercall_abi::layout::VGCF_IN_SYSCALL,
    entry_syscall = const ENTRY_SYSCALL,
    entry_int80 = const ENTRY_INT_0X80,
    entry_int82 = const ENTRY_INT_0X82,
    user_ss = const hypercall_abi::layout::FLAT_USER_SS64 as u64,
    user_cs = const hypercall_abi::layout::FLAT_USER_CS64 as u64,
    kernel_cs_rpl0 = const (hypercall_abi::layout::FLAT_KERNEL_CS64 & !3) as u64,
    virt_base = const crate::start::VIRT_BASE,
    options(att_syntax),
);

#[cfg(not(test))]
extern "C" {
    static user_entry_stack_bottom: u8;
    static user_entry_stack_top: u8;
    fn user_syscall_entry();
    fn user_int80_entry();
    fn user_int82_entry();
    fn enter_user(rip: u64, rsp: u64, argument0: u64, argument1: u64) -> !;
    fn read_gs_word() -> u64;
    static user_programs_start: u8;
    static user_programs_end: u8;
    static user_init: u8;
    static user_syscall_bench: u8;
    static user_hypercall_by_syscall: u8;
    static user_iret_from_user: u8;
    static user_int_0x80: u8;
    static user_int_0x82: u8;
    static user_kernel_read: u8;
}

/// The registers of a program that entered the kernel, as the entry stub
/// saved them (lowest address first).
#[repr(C)]
pub struct UserFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// `ENTRY_*`: which stub.
    pub kind: u64,
    /// The iret `flags` the stub returns with.
    pub flags: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// What handles entries from user mode (set by the workload).
static ENTRY_HANDLER: spin::Once<fn(&mut UserFrame)> = spin::Once::new();

/// Sends every system call and software interrupt from user mode to
/// `handler` (the first call wins).
pub fn set_entry_handler(handler: fn(&mut UserFrame)) {
    ENTRY_HANDLER.call_once(|| handler);
}

/// Called by the entry stubs with the saved registers.
#[cfg(not(test))]
#[no_mangle]
extern "C" fn user_entry(frame: &mut UserFrame) {
    match ENTRY_HANDLER.get() {
        Some(handler) => handler(frame),
        None => frame.rax = hypercall_abi::XenError::ENOSYS.as_return() as u64,
    }
}

/// The entry stubs, as (syscall, `int $0x80`, `int $0x82`) addresses.
#[cfg(not(test))]
pub fn entries() -> [u64; 3] {
    [
        user_syscall_entry as *const () as u64,
        user_int80_entry as *const () as u64,
        user_int82_entry as *const () as u64,
    ]
}

/// The kernel stack the entries land on (for `stack_switch`), as an
/// address range.
#[cfg(not(test))]
pub fn entry_stack() -> Range<u64> {
    // Taking a label's address reads nothing.
    (&raw const user_entry_stack_bottom) as u64..(&raw const user_entry_stack_top) as u64
}

/// `stack_switch` to the top of [`entry_stack`]: the only stack this
/// kernel hands the hypervisor for entries from user mode.
#[cfg(not(test))]
pub fn switch_to_entry_stack() -> i64 {
    let selector = u64::from(hypercall_abi::layout::FLAT_KERNEL_SS);
    // SAFETY: the stack is mapped, writable, and used by nothing else.
    unsafe { hypercall_abi::wrappers::stack_switch(selector, entry_stack().end) }
}

/// The user programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserProgram {
    Init,
    SyscallBench,
    HypercallBySyscall,
    IretFromUser,
    Int0x80,
    Int0x82,
    KernelRead,
}

/// The programs' code as one block of bytes (to copy to the user code
/// page), and where `program` starts in it.
#[cfg(not(test))]
pub fn program_code() -> &'static [u8] {
    let (start, end) = (
        (&raw const user_programs_start) as u64,
        (&raw const user_programs_end) as u64,
    );
    // SAFETY: the labels bound the programs' bytes in our read-only data,
    // which nothing writes.
    unsafe { core::slice::from_raw_parts(start as *const u8, (end - start) as usize) }
}

/// Where `program` starts, as an offset into [`program_code`].
#[cfg(not(test))]
pub fn program_offset(program: UserProgram) -> u64 {
    let entry = match program {
        UserProgram::Init => &raw const user_init,
        UserProgram::SyscallBench => &raw const user_syscall_bench,
        UserProgram::HypercallBySyscall => &raw const user_hypercall_by_syscall,
        UserProgram::IretFromUser => &raw const user_iret_from_user,
        UserProgram::Int0x80 => &raw const user_int_0x80,
        UserProgram::Int0x82 => &raw const user_int_0x82,
        UserProgram::KernelRead => &raw const user_kernel_read,
    };
    entry as u64 - (&raw const user_programs_start) as u64
}

/// Enters user mode at `rip` with stack `rsp` and the two arguments in
/// RDI and RSI, through the `iret` hypercall with a user CS; every other
/// register is cleared. The program comes back only through the entry
/// stubs or an exception; the kernel's stack below this call is abandoned.
#[cfg(not(test))]
pub fn enter(rip: u64, rsp: u64, argument0: u64, argument1: u64) -> ! {
    // SAFETY: the hypervisor switches to the user root, which does not map
    // the kernel, so the program cannot touch the kernel's memory; if the
    // frame is bad the hypervisor crashes this domain.
    unsafe { enter_user(rip, rsp, argument0, argument1) }
}

/// The first 8 bytes at the current GS base.
#[cfg(not(test))]
pub fn gs_word() -> u64 {
    // SAFETY: a read only; the GS base is one this kernel set (its own
    // block or the user's page, both mapped in the kernel's root), and a
    // wrong base faults, which the trap handler reports.
    unsafe { read_gs_word() }
}
