//! `workload=user`: the guest kernel runs user programs in guest user mode.
//!
//! A PV kernel and its programs both run in ring 3; what separates them is
//! the hypervisor's guest-kernel/guest-user mode and the two page-table
//! roots it switches between (see the hypervisor's `traps/guest_mode.rs`).
//! This module is the kernel's side, the way a small Unix would do it:
//!
//! 1. map the programs' code (read-only), data and stack in the low half
//!    of the address space, PML4 slot 0;
//! 2. build a *user root*: a new L4 whose only guest entry is that slot 0
//!    (the same L3 the kernel's root uses there, so both see the same user
//!    pages), and hand it over with `MMUEXT_NEW_USER_BASEPTR`. The kernel's
//!    own memory (slots 383..511) is simply not in it;
//! 3. say where system calls and exceptions from user mode land: the
//!    syscall callback (`CALLBACKTYPE_syscall`), the kernel stack for them
//!    (`stack_switch`), and two trap-table entries for `int $0x80` (DPL 3:
//!    user programs may use it) and `int $0x82` (DPL 0: they may not);
//! 4. enter the program with the `iret` hypercall and a frame whose CS has
//!    RPL 3.
//!
//! The programs are a few instructions of assembly each (they are copied
//! to the user code page, so they must not refer to the kernel's memory).
//! Their system calls use Linux's numbers: `write(fd, buffer, length)` (1),
//! `getpid()` (39), `exit(status)` (60). When a program exits or faults,
//! the kernel checks what happened against what should have, prints the
//! verdict, and starts the next one; after the last it powers off.
//!
//! | program | what it does | what must happen |
//! |---|---|---|
//! | `init` | prints through `write`, asks `getpid`, reads `%gs:0` | it prints; exit 0 |
//! | `syscall-bench` | times `getpid` round trips with the TSC | exit 0; a `bench:` line |
//! | `hypercall-by-syscall` | `syscall` with `rax` = 17 (`xen_version`) | the *guest kernel* gets system call 17 and answers `-ENOSYS` |
//! | `iret-from-user` | `syscall` with `rax` = 23 (`iret`) and a frame naming kernel mode | the guest kernel gets system call 23 |
//! | `int-0x80` | `getpid` through `int $0x80` (DPL 3) | delivered; exit with the pid |
//! | `int-0x82` | `int $0x82` (DPL 0) | `#GP` with error code 0x412, to the kernel |
//! | `kernel-read` | reads the kernel's first page | `#PF`: not mapped in the user root |
//!
//! As `workload=user-noncanonical-iret` the kernel instead asks the hypervisor to enter user mode at a non-canonical RIP, which
//! must crash this domain ("iret to a non-canonical address") and nothing
//! else.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use guest_kernel::abi::callback::{CallbackRegister, CallbackType, CALLBACKF_MASK_EVENTS};
use guest_kernel::abi::hypercall::Hypercall;
use guest_kernel::abi::layout::{FLAT_KERNEL_SS, SEGBASE_GS_KERNEL, SEGBASE_GS_USER};
use guest_kernel::abi::mmu::{MmuextCmd, MmuextOp};
use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::abi::{wrappers, TrapInfo};
use guest_kernel::paging::{self, PAGE_SIZE, USER, WRITABLE};
use guest_kernel::start::VIRT_BASE;
use guest_kernel::traps::{self, TrapFrame};
use guest_kernel::{print, println, shutdown};

/// Where the programs' code is mapped (read-only, executable).
const USER_CODE: u64 = 0x40_0000;
/// The user data page that the user GS base points at.
const USER_GS_PAGE: u64 = 0x60_0000;
/// Where `syscall-bench` stores its samples (one u64 each).
const USER_SAMPLES: u64 = USER_GS_PAGE + PAGE_SIZE;
/// Room for this many samples.
const MAX_SAMPLES: u64 = 20_000;
/// Top of the user stack.
const USER_STACK_TOP: u64 = 0x80_0000;
const USER_STACK_PAGES: u64 = 4;
/// The end of everything user programs may name (their pointers are
/// checked against `USER_CODE..USER_END`).
const USER_END: u64 = USER_STACK_TOP;
/// What the user GS base page and the kernel GS base block start with.
const USER_GS_MAGIC: &[u8; 8] = b"user GS\n";
const KERNEL_GS_MAGIC: u64 = u64::from_le_bytes(*b"kernelGS");

const SYS_WRITE: u64 = 1;
const SYS_GETPID: u64 = 39;
const SYS_EXIT: u64 = 60;
const ENOSYS: u64 = (-38i64) as u64;
const EFAULT: u64 = (-14i64) as u64;
const EBADF: u64 = (-9i64) as u64;

/// Error code of the `#GP` for `int $0x82` through a DPL-0 gate: the
/// vector times 8, plus 2 (the fault names an IDT entry).
const INT_0X82_ERROR_CODE: u64 = 0x82 * 8 + 2;
/// Page-fault error code: not present, read, from user mode.
const PAGE_FAULT_USER_READ_NOT_PRESENT: u64 = 1 << 2;

/// How the kernel was entered from user mode (pushed by the entry stubs).
const ENTRY_SYSCALL: u64 = 0;
const ENTRY_INT_0X80: u64 = 1;
const ENTRY_INT_0X82: u64 = 2;

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
    // RFLAGS, RSP, SS on the stack (a `BounceFrame` without error code). Each stub takes RCX and R11 back,
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
    in_syscall = const guest_kernel::abi::layout::VGCF_IN_SYSCALL,
    entry_syscall = const ENTRY_SYSCALL,
    entry_int80 = const ENTRY_INT_0X80,
    entry_int82 = const ENTRY_INT_0X82,
    user_ss = const guest_kernel::abi::layout::FLAT_USER_SS64 as u64,
    user_cs = const guest_kernel::abi::layout::FLAT_USER_CS64 as u64,
    kernel_cs_rpl0 = const (guest_kernel::abi::layout::FLAT_KERNEL_CS64 & !3) as u64,
    virt_base = const VIRT_BASE,
    options(att_syntax),
);

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
struct UserFrame {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    r11: u64,
    r10: u64,
    r9: u64,
    r8: u64,
    rbp: u64,
    rdi: u64,
    rsi: u64,
    rdx: u64,
    rcx: u64,
    rbx: u64,
    rax: u64,
    /// `ENTRY_*`: which stub.
    kind: u64,
    /// The iret `flags` the stub returns with.
    flags: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

/// How a program ended.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// It called `exit(status)`.
    Exit(u64),
    /// It took an exception the kernel does not resolve.
    Fault {
        vector: u64,
        error_code: u64,
        address: u64,
    },
}

/// One user program and what must happen when it runs.
struct Program {
    name: &'static str,
    /// Its entry point in the kernel image (copied to `USER_CODE`).
    entry: fn() -> u64,
    /// Checks the ending; `Err` says what went wrong.
    check: fn(&Ending) -> Result<(), &'static str>,
}

/// The address of a label of the assembly above (taking a raw address
/// reads nothing, so it needs no `unsafe`).
macro_rules! address_of {
    ($label:ident) => {
        (&raw const $label) as u64
    };
}

const PROGRAMS: [Program; 7] = [
    Program {
        name: "init",
        entry: || address_of!(user_init),
        check: |ending| match ending {
            Ending::Exit(0) => Ok(()),
            _ => Err("init did not exit with status 0"),
        },
    },
    Program {
        name: "syscall-bench",
        entry: || address_of!(user_syscall_bench),
        check: |ending| match ending {
            Ending::Exit(0) => Ok(()),
            _ => Err("the benchmark did not exit with status 0"),
        },
    },
    Program {
        name: "hypercall-by-syscall",
        entry: || address_of!(user_hypercall_by_syscall),
        check: |ending| match ending {
            Ending::Exit(ENOSYS) if LAST_UNKNOWN_CALL.load(Ordering::Relaxed) == 17 => Ok(()),
            _ => Err("xen_version from user mode did not reach the guest kernel as system call 17"),
        },
    },
    Program {
        name: "iret-from-user",
        entry: || address_of!(user_iret_from_user),
        check: |ending| match ending {
            Ending::Exit(ENOSYS) if LAST_UNKNOWN_CALL.load(Ordering::Relaxed) == 23 => Ok(()),
            _ => Err("iret from user mode did not reach the guest kernel as system call 23"),
        },
    },
    Program {
        name: "int-0x80",
        entry: || address_of!(user_int_0x80),
        check: |ending| match ending {
            Ending::Exit(status)
                if *status == PROCESS_ID.load(Ordering::Relaxed)
                    && INT_0X80_CALLS.load(Ordering::Relaxed) == 1 =>
            {
                Ok(())
            }
            _ => Err("int $0x80 (DPL 3) was not delivered to its handler"),
        },
    },
    Program {
        name: "int-0x82",
        entry: || address_of!(user_int_0x82),
        check: |ending| match ending {
            Ending::Fault {
                vector: 13,
                error_code: INT_0X82_ERROR_CODE,
                ..
            } if INT_0X82_CALLS.load(Ordering::Relaxed) == 0 => Ok(()),
            _ => Err("int $0x82 (DPL 0) from user mode was not a #GP with error code 0x412"),
        },
    },
    Program {
        name: "kernel-read",
        entry: || address_of!(user_kernel_read),
        check: |ending| match ending {
            Ending::Fault {
                vector: 14,
                error_code: PAGE_FAULT_USER_READ_NOT_PRESENT,
                address: VIRT_BASE,
            } => Ok(()),
            _ => Err("user mode reached the kernel's memory, or faulted otherwise"),
        },
    },
];

/// The program running now (index into `PROGRAMS`).
static CURRENT: AtomicUsize = AtomicUsize::new(0);
/// Its process ID (`getpid`): init is 1, each program the next.
static PROCESS_ID: AtomicU64 = AtomicU64::new(0);
/// The last system call number the kernel did not know.
static LAST_UNKNOWN_CALL: AtomicU64 = AtomicU64::new(0);
/// `int $0x80` and `int $0x82` entries seen.
static INT_0X80_CALLS: AtomicU64 = AtomicU64::new(0);
static INT_0X82_CALLS: AtomicU64 = AtomicU64::new(0);
/// Checks that failed.
static FAILURES: AtomicU64 = AtomicU64::new(0);
/// How many round trips `syscall-bench` times.
static BENCH_ROUNDS: AtomicU64 = AtomicU64::new(2_000);
/// What the kernel GS base points at.
static KERNEL_GS_BLOCK: u64 = KERNEL_GS_MAGIC;

/// Sets up user mode and runs the programs; never returns.
pub fn run(workload: &str, line: &str) -> ! {
    if let Some(rounds) = line
        .split_ascii_whitespace()
        .find_map(|word| word.strip_prefix("rounds="))
        .and_then(|value| value.parse::<u64>().ok())
    {
        BENCH_ROUNDS.store(rounds.clamp(1, MAX_SAMPLES), Ordering::Relaxed);
    }
    if let Err(problem) = set_up() {
        println!("user: cannot set up user mode: {problem}");
        shutdown(ShutdownReason::Crash)
    }
    if workload == "user-noncanonical-iret" {
        println!("user: entering user mode at a non-canonical address (must crash this domain)");
        // SAFETY: none needed for the kernel: the hypervisor must refuse the
        // frame and crash this domain; if it does not, nothing runs there.
        unsafe { enter_user(0x0000_8000_0000_0000, USER_STACK_TOP, 0, 0) }
    }
    if workload != "user" {
        println!("user: unknown workload '{workload}': stopping");
        shutdown(ShutdownReason::Crash)
    }
    start(0)
}

/// Steps 1 to 3 of the module comment.
fn set_up() -> Result<(), &'static str> {
    // 1. The programs' code, read-only; the GS page, the samples and the
    //    stack, writable and not executable.
    let (start, end) = (
        address_of!(user_programs_start),
        address_of!(user_programs_end),
    );
    let code_pages = (end - start).div_ceil(PAGE_SIZE);
    for page in 0..code_pages {
        let pfn = paging::allocate_frame().map_err(|_| "out of frames")?;
        let address = USER_CODE + page * PAGE_SIZE;
        paging::map(address, paging::pfn_to_mfn(pfn), WRITABLE | USER)
            .map_err(|_| "cannot map the code page")?;
    }
    // SAFETY: the destination pages were just mapped writable for us, and
    // the source is the programs' bytes in our rodata.
    unsafe {
        core::ptr::copy_nonoverlapping(
            start as *const u8,
            USER_CODE as *mut u8,
            (end - start) as usize,
        )
    };
    for page in 0..code_pages {
        paging::protect(USER_CODE + page * PAGE_SIZE, false)
            .map_err(|_| "cannot make the code read-only")?;
    }
    let data_pages = 1 + (MAX_SAMPLES * 8).div_ceil(PAGE_SIZE);
    paging::map_fresh_pages(USER_GS_PAGE, data_pages).map_err(|_| "cannot map user data")?;
    paging::map_fresh_pages(
        USER_STACK_TOP - USER_STACK_PAGES * PAGE_SIZE,
        USER_STACK_PAGES,
    )
    .map_err(|_| "cannot map the user stack")?;
    // SAFETY: the GS page was just mapped writable.
    unsafe { (USER_GS_PAGE as *mut [u8; 8]).write_volatile(*USER_GS_MAGIC) };

    // 2. The user root: a fresh L4 sharing only slot 0 with the kernel's.
    let kernel_root = paging::current_root();
    let user_root = paging::pfn_to_mfn(paging::allocate_frame().map_err(|_| "out of frames")?);
    paging::clear_frame(user_root).map_err(|_| "cannot clear the user root")?;
    paging::pin(user_root, 4).map_err(|_| "the hypervisor refused the user root as an L4")?;
    let slot0 = paging::read_entry(kernel_root, 0);
    paging::write_entries(&[(user_root * PAGE_SIZE, slot0)])
        .map_err(|_| "cannot link the user pages into the user root")?;
    let mut done = 0u32;
    // SAFETY: one operation on our own pinned L4, which the hypervisor checks.
    let result = unsafe {
        wrappers::mmuext_op(
            &[MmuextOp::with_mfn(MmuextCmd::NewUserBaseptr, user_root)],
            &mut done,
            guest_kernel::abi::layout::DOMID_SELF,
        )
    };
    if result != 0 {
        return Err("MMUEXT_NEW_USER_BASEPTR refused");
    }

    // The two GS bases: the user's points at the GS page, the kernel's at
    // a word of its own; the hypervisor swaps them on every switch.
    let set_gs_base = |which: u64, base: u64| {
        // SAFETY: set_segment_base only changes this vCPU's own GS bases,
        // which nothing in this kernel relies on but this module.
        unsafe { wrappers::hypercall2(Hypercall::SetSegmentBase, which, base) }
    };
    let user_gs = set_gs_base(SEGBASE_GS_USER, USER_GS_PAGE);
    let kernel_gs = set_gs_base(SEGBASE_GS_KERNEL, &KERNEL_GS_BLOCK as *const u64 as u64);
    if user_gs != 0 || kernel_gs != 0 {
        return Err("set_segment_base refused a GS base");
    }

    // 3. Where entries from user mode land.
    let stack_top = address_of!(user_entry_stack_top);
    // SAFETY: a mapped, writable stack that nothing else uses.
    if unsafe { wrappers::stack_switch(u64::from(FLAT_KERNEL_SS), stack_top) } != 0 {
        return Err("stack_switch refused");
    }
    let registration = CallbackRegister::new(
        CallbackType::Syscall,
        CALLBACKF_MASK_EVENTS,
        user_syscall_entry as *const () as u64,
    );
    // SAFETY: the entry point is the syscall stub above.
    if unsafe { wrappers::callback_register(&registration) } != 0 {
        return Err("the syscall callback was refused");
    }
    let table = [
        TrapInfo::new(0x80, 3, true, user_int80_entry as *const () as u64),
        TrapInfo::new(0x82, 0, true, user_int82_entry as *const () as u64),
        TrapInfo::END,
    ];
    // SAFETY: both stubs follow the bounce-frame convention.
    if unsafe { wrappers::set_trap_table(&table) } != 0 {
        return Err("set_trap_table refused the int $0x80 and $0x82 entries");
    }
    traps::set_user_mode_handler(user_fault);
    println!(
        "user: user root {user_root:#x} maps only slot 0 ({code_pages} code page(s) at {USER_CODE:#x}); kernel stack for entries at {stack_top:#x}"
    );
    Ok(())
}

/// Starts program `index`, or finishes when there is none; never returns.
fn start(index: usize) -> ! {
    let Some(program) = PROGRAMS.get(index) else {
        let failures = FAILURES.load(Ordering::Relaxed);
        if failures == 0 {
            println!("user: all {} programs behaved", PROGRAMS.len());
        } else {
            println!("user: {failures} of {} programs misbehaved", PROGRAMS.len());
        }
        shutdown(ShutdownReason::Poweroff)
    };
    CURRENT.store(index, Ordering::Relaxed);
    PROCESS_ID.store(index as u64 + 1, Ordering::Relaxed);
    let offset = (program.entry)() - address_of!(user_programs_start);
    let (argument0, argument1) = if program.name == "syscall-bench" {
        (BENCH_ROUNDS.load(Ordering::Relaxed), USER_SAMPLES)
    } else {
        (0, 0)
    };
    // SAFETY: the entry is a program copied to the user code page, and the
    // stack is the mapped user stack; the hypervisor switches to the user
    // root.
    unsafe { enter_user(USER_CODE + offset, USER_STACK_TOP, argument0, argument1) }
}

/// The current program ended: check it, say so, run the next.
fn finish(ending: Ending) -> ! {
    let index = CURRENT.load(Ordering::Relaxed);
    let program = &PROGRAMS[index];
    match (program.check)(&ending) {
        Ok(()) => println!("user: {}: ok ({ending:?})", program.name),
        Err(problem) => {
            FAILURES.fetch_add(1, Ordering::Relaxed);
            println!("user: {}: FAILED: {problem} ({ending:?})", program.name);
        }
    }
    if program.name == "syscall-bench" {
        report_bench();
    }
    start(index + 1)
}

/// Prints `syscall-bench`'s samples as a `bench:` line.
fn report_bench() {
    let rounds = BENCH_ROUNDS.load(Ordering::Relaxed) as usize;
    // SAFETY: the program wrote `rounds` u64 samples at USER_SAMPLES, in
    // pages the kernel's root maps too (they share slot 0).
    let samples = unsafe { core::slice::from_raw_parts_mut(USER_SAMPLES as *mut u64, rounds) };
    samples.sort_unstable();
    println!(
        "bench: user_syscall_round_trip median={} min={} iterations={rounds}",
        samples[rounds / 2],
        samples[0]
    );
}

/// Whether `[address, address + length)` lies in the user pages.
fn user_range(address: u64, length: u64) -> bool {
    address >= USER_CODE
        && address
            .checked_add(length)
            .is_some_and(|end| end <= USER_END)
}

/// Whether the entry frame lies on the stack the kernel named with
/// `stack_switch`, as the hypervisor must put it.
fn on_entry_stack(frame_address: u64) -> bool {
    let (bottom, top) = (
        address_of!(user_entry_stack_bottom),
        address_of!(user_entry_stack_top),
    );
    (bottom..top).contains(&frame_address)
}

/// A system call or software interrupt from user mode (called by the
/// entry stubs).
#[no_mangle]
extern "C" fn user_entry(frame: &mut UserFrame) {
    if !on_entry_stack(frame as *const UserFrame as u64) || frame.cs & 3 != 3 {
        println!(
            "user: FAILED: an entry from user mode did not arrive on the stack_switch stack with a user CS (cs {:#x})",
            frame.cs
        );
        FAILURES.fetch_add(1, Ordering::Relaxed);
    }
    match frame.kind {
        ENTRY_INT_0X80 => {
            INT_0X80_CALLS.fetch_add(1, Ordering::Relaxed);
        }
        ENTRY_INT_0X82 => {
            INT_0X82_CALLS.fetch_add(1, Ordering::Relaxed);
            println!("user: int $0x82 reached its DPL-0 handler from user mode");
            frame.rax = ENOSYS;
            return;
        }
        _ => {}
    }
    frame.rax = match frame.rax {
        SYS_WRITE => write(frame.rdi, frame.rsi, frame.rdx),
        SYS_GETPID => PROCESS_ID.load(Ordering::Relaxed),
        SYS_EXIT => {
            // Back in guest-kernel mode, the kernel's GS base is loaded.
            // SAFETY: the GS base is KERNEL_GS_BLOCK's address, or the
            // check below fails loudly (it is our own readable memory or
            // the user's, both mapped in the kernel's root).
            if unsafe { read_gs_word() } != KERNEL_GS_MAGIC {
                println!("user: FAILED: the kernel's GS base was not restored on entry");
                FAILURES.fetch_add(1, Ordering::Relaxed);
            }
            finish(Ending::Exit(frame.rdi))
        }
        number => {
            LAST_UNKNOWN_CALL.store(number, Ordering::Relaxed);
            println!("user: unknown system call {number}: -ENOSYS");
            ENOSYS
        }
    };
}

/// `write(fd, buffer, length)`: only the console (1), only user memory.
fn write(fd: u64, buffer: u64, length: u64) -> u64 {
    if fd != 1 {
        return EBADF;
    }
    if !user_range(buffer, length) {
        return EFAULT;
    }
    // SAFETY: the range is inside the user pages, which the kernel's root
    // maps too; a program can only make its own output garbage.
    let bytes = unsafe { core::slice::from_raw_parts(buffer as *const u8, length as usize) };
    print!("{}", core::str::from_utf8(bytes).unwrap_or("(not UTF-8)"));
    length
}

/// An exception taken in user mode: the program ends with it.
fn user_fault(frame: &mut TrapFrame) {
    if !on_entry_stack(frame as *const TrapFrame as u64) {
        println!(
            "user: FAILED: an exception from user mode was not delivered on the stack_switch stack"
        );
        FAILURES.fetch_add(1, Ordering::Relaxed);
    }
    let address = if frame.vector == 14 {
        traps::fault_address()
    } else {
        0
    };
    finish(Ending::Fault {
        vector: frame.vector,
        error_code: frame.bounce.error_code,
        address,
    })
}
