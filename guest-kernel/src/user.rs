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
//! As `workload=user-noncanonical-iret` the kernel instead asks the
//! hypervisor to enter user mode at a non-canonical RIP. The processor
//! would refuse it in the hypervisor's own `iretq`; as from Xen (XSA-7),
//! the guest kernel gets that `#GP(0)` instead, from user mode at that
//! address, says so and powers off.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use guest_kernel::abi::callback::CallbackType;
use guest_kernel::abi::layout::{SEGBASE_GS_KERNEL, SEGBASE_GS_USER};
use guest_kernel::abi::mmu::{MmuextCmd, MmuextOp};
use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::abi::TrapInfo;
use guest_kernel::paging::{self, PAGE_SIZE, USER, WRITABLE};
use guest_kernel::start::VIRT_BASE;
use guest_kernel::sys::entry;
use guest_kernel::sys::hypercalls;
use guest_kernel::sys::memory::OwnedPages;
use guest_kernel::sys::user_mode::{self, UserFrame, UserProgram, ENTRY_INT_0X80, ENTRY_INT_0X82};
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
    /// Which of the programs' code (copied to `USER_CODE`) it runs.
    entry: UserProgram,
    /// Checks the ending; `Err` says what went wrong.
    check: fn(&Ending) -> Result<(), &'static str>,
}

const PROGRAMS: [Program; 7] = [
    Program {
        name: "init",
        entry: UserProgram::Init,
        check: |ending| match ending {
            Ending::Exit(0) => Ok(()),
            _ => Err("init did not exit with status 0"),
        },
    },
    Program {
        name: "syscall-bench",
        entry: UserProgram::SyscallBench,
        check: |ending| match ending {
            Ending::Exit(0) => Ok(()),
            _ => Err("the benchmark did not exit with status 0"),
        },
    },
    Program {
        name: "hypercall-by-syscall",
        entry: UserProgram::HypercallBySyscall,
        check: |ending| match ending {
            Ending::Exit(ENOSYS) if LAST_UNKNOWN_CALL.load(Ordering::Relaxed) == 17 => Ok(()),
            _ => Err("xen_version from user mode did not reach the guest kernel as system call 17"),
        },
    },
    Program {
        name: "iret-from-user",
        entry: UserProgram::IretFromUser,
        check: |ending| match ending {
            Ending::Exit(ENOSYS) if LAST_UNKNOWN_CALL.load(Ordering::Relaxed) == 23 => Ok(()),
            _ => Err("iret from user mode did not reach the guest kernel as system call 23"),
        },
    },
    Program {
        name: "int-0x80",
        entry: UserProgram::Int0x80,
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
        entry: UserProgram::Int0x82,
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
        entry: UserProgram::KernelRead,
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
/// The user pages: code, data (the GS page and the samples), stack.
static USER_PAGES: spin::Once<[OwnedPages; 3]> = spin::Once::new();
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
        println!("user: entering user mode at a non-canonical address");
        traps::set_user_mode_handler(non_canonical_entry_fault);
        // Nothing can run there: the entry itself faults, and the handler
        // powers off.
        user_mode::enter(0x0000_8000_0000_0000, USER_STACK_TOP, 0, 0)
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
    let code = user_mode::program_code();
    let code_pages = (code.len() as u64).div_ceil(PAGE_SIZE);
    let code_mapping = OwnedPages::map_each(USER_CODE, code_pages, WRITABLE | USER)
        .map_err(|_| "cannot map the code pages")?;
    code_mapping.write(USER_CODE, code);
    for page in 0..code_pages {
        paging::protect(USER_CODE + page * PAGE_SIZE, false)
            .map_err(|_| "cannot make the code read-only")?;
    }
    let data_pages = 1 + (MAX_SAMPLES * 8).div_ceil(PAGE_SIZE);
    let data =
        OwnedPages::map_fresh(USER_GS_PAGE, data_pages).map_err(|_| "cannot map user data")?;
    let stack = OwnedPages::map_fresh(
        USER_STACK_TOP - USER_STACK_PAGES * PAGE_SIZE,
        USER_STACK_PAGES,
    )
    .map_err(|_| "cannot map the user stack")?;
    USER_PAGES.call_once(|| [code_mapping, data, stack]);
    data.write(USER_GS_PAGE, USER_GS_MAGIC);

    // 2. The user root: a fresh L4 sharing only slot 0 with the kernel's.
    let kernel_root = paging::current_root();
    let user_root = paging::pfn_to_mfn(paging::allocate_frame().map_err(|_| "out of frames")?);
    paging::clear_frame(user_root).map_err(|_| "cannot clear the user root")?;
    paging::pin(user_root, 4).map_err(|_| "the hypervisor refused the user root as an L4")?;
    let slot0 = paging::read_entry(kernel_root, 0);
    paging::write_entries(&[(user_root * PAGE_SIZE, slot0)])
        .map_err(|_| "cannot link the user pages into the user root")?;
    // One operation on our own pinned L4, which the hypervisor checks.
    let (result, _) = hypercalls::mmuext_op(
        &[MmuextOp::with_mfn(MmuextCmd::NewUserBaseptr, user_root)],
        guest_kernel::abi::layout::DOMID_SELF,
    );
    if result != 0 {
        return Err("MMUEXT_NEW_USER_BASEPTR refused");
    }

    // The two GS bases: the user's points at the GS page, the kernel's at
    // a word of its own; the hypervisor swaps them on every switch.
    let user_gs = hypercalls::set_segment_base(SEGBASE_GS_USER, USER_GS_PAGE);
    let kernel_gs =
        hypercalls::set_segment_base(SEGBASE_GS_KERNEL, &KERNEL_GS_BLOCK as *const u64 as u64);
    if user_gs != 0 || kernel_gs != 0 {
        return Err("set_segment_base refused a GS base");
    }

    // 3. Where entries from user mode land.
    let stack_top = user_mode::entry_stack().end;
    if user_mode::switch_to_entry_stack() != 0 {
        return Err("stack_switch refused");
    }
    let [syscall_entry, int80_entry, int82_entry] = user_mode::entries();
    user_mode::set_entry_handler(user_entry);
    if entry::register_callback(CallbackType::Syscall, syscall_entry) != 0 {
        return Err("the syscall callback was refused");
    }
    let table = [
        TrapInfo::new(0x80, 3, true, int80_entry),
        TrapInfo::new(0x82, 0, true, int82_entry),
        TrapInfo::END,
    ];
    if entry::set_trap_table(&table) != 0 {
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
    let offset = user_mode::program_offset(program.entry);
    let (argument0, argument1) = if program.name == "syscall-bench" {
        (BENCH_ROUNDS.load(Ordering::Relaxed), USER_SAMPLES)
    } else {
        (0, 0)
    };
    // The entry is a program copied to the user code page, and the stack is
    // the mapped user stack; the hypervisor switches to the user root.
    user_mode::enter(USER_CODE + offset, USER_STACK_TOP, argument0, argument1)
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
    // The program wrote `rounds` u64 samples at USER_SAMPLES, in pages the
    // kernel's root maps too (they share slot 0).
    let data = USER_PAGES.get().map(|[_, data, _]| *data);
    let mut samples: alloc::vec::Vec<u64> = (0..rounds as u64)
        .map(|index| {
            data.and_then(|data| data.read_u64(USER_SAMPLES + index * 8))
                .unwrap_or(0)
        })
        .collect();
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
    user_mode::entry_stack().contains(&frame_address)
}

/// A system call or software interrupt from user mode (called by the
/// entry stubs).
fn user_entry(frame: &mut UserFrame) {
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
            if user_mode::gs_word() != KERNEL_GS_MAGIC {
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
    // The range is inside the user pages, which the kernel's root maps too;
    // a program can only make its own output garbage.
    let mut bytes = alloc::vec![0u8; length as usize];
    let pages = USER_PAGES.get().into_iter().flatten();
    if !pages
        .into_iter()
        .any(|pages| pages.read(buffer, &mut bytes))
    {
        return EFAULT;
    }
    print!("{}", core::str::from_utf8(&bytes).unwrap_or("(not UTF-8)"));
    length
}

/// An exception taken in user mode: the program ends with it.
/// `workload=user-noncanonical-iret`: the fault that entering user mode at
/// a non-canonical address gave.
fn non_canonical_entry_fault(frame: &mut TrapFrame) {
    println!(
        "user: non-canonical entry: vector {} error {:#x} at rip {:#x}, cs {:#x}",
        frame.vector, frame.bounce.error_code, frame.bounce.rip, frame.bounce.cs
    );
    shutdown(ShutdownReason::Poweroff)
}

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
