//! Hypercall dispatch: from a guest's `syscall` to the handler that owns
//! the operation.
//!
//! The entry code saved the guest's registers in a `GuestFrame`; the
//! hypercall number is in `rax` and the arguments in `rdi, rsi, rdx, r10,
//! r8` (Xen's 64-bit PV convention). Each handler returns `Ok(value)` or a
//! Xen error, which goes back to the guest in `rax` as a negated errno.
//! Every hypercall that is not implemented returns `-ENOSYS` and says so in
//! the log, naming the hypercall and the domain.
//!
//! # Continuations
//!
//! The hypervisor runs with interrupts off, so a hypercall that works for
//! long holds the whole machine: no tick, no other domain, no Dom0 prompt.
//! Each hypercall therefore gets a work budget ([`WORK_PER_HYPERCALL`],
//! in `sched::continuation`
//! entries of page tables checked or released, or batch entries run). A
//! handler that runs out of it stops where it is, with its progress kept
//! (in the frame table, and in the updated arguments), and answers
//! [`Outcome::Continue`] with the arguments that describe what is left.
//! The guest's registers then get those arguments, `rax` gets the
//! hypercall number again, and RIP goes back 2 bytes to the `syscall`
//! instruction: the guest leaves the hypervisor, an interrupt that became
//! due is taken at once (and may switch to another domain), and when the
//! guest runs again it executes the same `syscall`, which goes on where the
//! last one stopped. The guest sees one hypercall. This is Xen's
//! `hypercall_create_continuation`.
//!
//! # Invariants
//!
//! 1. **This folder only decodes and dispatches**: it holds no policy. Each
//!    operation goes to the folder that owns it (`mm::mmu_op`,
//!    `mm::memory_op`, `evtchn`, `sched::sched_op`, `domain::domctl`,
//!    `domain::vcpu_op`, `console::console_io`, `traps::hypercalls`,
//!    `traps::physdev_op`), and
//!    nothing calls up into this folder: it is entered only from the
//!    `syscall` stub.
//! 2. **Every hypercall answers**: a value, or a negated Xen errno; one that
//!    is not implemented returns `-ENOSYS` with a log line naming it and the
//!    caller. What a guest passes never panics the hypervisor.
//! 3. **No hypercall holds the machine for long**: work is counted against
//!    the budget and continued (above).
//!
//! # Files
//!
//! All glue (built with the `kernel` feature): `mod.rs` (`handle_syscall`,
//! `dispatch`, `set_timer_op`), `multicall.rs` (a batch of hypercalls),
//! `version.rs` (`xen_version`), `sysctl.rs` (the toolstack's machine-wide
//! operations). The rules the handlers apply are in their mechanisms'
//! folders, where the host tests are.
#![deny(unsafe_code)]

mod multicall;
mod sysctl;
mod version;

pub use version::set_command_line;

use crate::arch::x86_64::frame::{GuestFrame, ENTRY_SYSCALL};
use crate::arch::x86_64::instructions::rdtsc;
use crate::arch::x86_64::percpu::this_cpu;
use crate::console::caller_log;
use crate::console::console_io;
use crate::domain;
use crate::domain::on_current;
use crate::domain::{domctl, vcpu_op as vcpu};
use crate::mm::descriptor_tables;
use crate::mm::pagewalk::is_canonical;
use crate::mm::{memory_op as memory, mmu_op as mmu};
use crate::sched::continuation::{Outcome, WORK_PER_HYPERCALL};
use crate::sched::sched_op as sched;
use crate::traps::hypercalls as trap_calls;
use core::sync::atomic::Ordering;
use hypercall_abi::error::result_to_raw;
use hypercall_abi::hypercall::Hypercall;
use hypercall_abi::layout::{FLAT_RING3_CS64, FLAT_RING3_SS64};
use hypercall_abi::XenError;

/// Length of the `syscall` instruction (`0f 05`): how far RIP goes back so
/// that the guest makes a continued hypercall again.
const SYSCALL_INSTRUCTION_LENGTH: u64 = 2;

/// Called by `syscall_entry` for every `syscall`: a hypercall from
/// guest-kernel mode, a system call (bounced to the guest kernel) from
/// guest-user mode. Returns 1 when the exit may use `sysretq` (see
/// `may_sysret`), 0 for `iretq`.
// `syscall_entry` (`arch/x86_64/entry.rs`) calls this by name; an
// unmangled name is the only `unsafe_code` this folder allows.
#[allow(unsafe_code)]
#[no_mangle]
extern "C" fn handle_syscall(frame: &mut GuestFrame) -> u64 {
    if this_cpu().guest_user_mode.load(Ordering::Relaxed) {
        return user_syscall(frame);
    }
    let entered = rdtsc();
    let number = frame.rax;
    let arguments = [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8];
    let call = Hypercall::from_register(number);
    let mut budget = WORK_PER_HYPERCALL;
    let outcome = match call {
        Some(Hypercall::Iret) => {
            return match domain::with_current(|domain| trap_calls::iret(domain, frame)) {
                Some(Ok(rax)) => {
                    frame.rax = rax;
                    crate::traps::leave_to_guest(frame);
                    may_sysret(frame)
                }
                Some(Err(reason)) => {
                    trap_calls::iret_failed(reason);
                    crate::traps::leave_to_guest(frame);
                    0
                }
                None => 0,
            };
        }
        Some(Hypercall::Multicall) => {
            multicall::multicall(arguments[0], arguments[1], &mut budget, frame)
        }
        _ => dispatch(call, number, &arguments, &mut budget),
    };
    match outcome {
        Outcome::Done(result) => frame.rax = result_to_raw(result) as u64,
        Outcome::Continue(updated) => continue_later(frame, number, &updated),
    }
    let took = rdtsc().saturating_sub(entered);
    if took > this_cpu().longest_hypercall.load(Ordering::Relaxed) {
        record_longest_hypercall(took, number);
    }
    crate::traps::leave_to_guest(frame);
    may_sysret(frame)
}

/// A user program's system call (the guest kernel's business), out of the
/// hypercall path's line: see `traps::leave_to_guest` for why.
#[cold]
#[inline(never)]
fn user_syscall(frame: &mut GuestFrame) -> u64 {
    crate::traps::user_syscall(frame);
    crate::traps::leave_to_guest(frame);
    may_sysret(frame)
}

/// A new longest hypercall on this CPU: `took` cycles, hypercall `number`.
#[cold]
#[inline(never)]
fn record_longest_hypercall(took: u64, number: u64) {
    let cpu = this_cpu();
    cpu.longest_hypercall.store(took, Ordering::Relaxed);
    cpu.longest_hypercall_number
        .store(number, Ordering::Relaxed);
}

/// Makes the guest repeat hypercall `number` with `arguments` when it runs
/// next: the registers it passes them in (those it takes; see
/// [`Outcome::Continue`]), `rax`, and RIP rewound to its
/// `syscall`. Whether it calls through the hypercall page or has the
/// `syscall` inline, the instruction is the same two bytes, and `rcx` and
/// `r11` (which `syscall` overwrites) need no restoring.
fn continue_later(frame: &mut GuestFrame, number: u64, arguments: &[u64]) {
    let registers = [
        &mut frame.rdi,
        &mut frame.rsi,
        &mut frame.rdx,
        &mut frame.r10,
        &mut frame.r8,
    ];
    for (register, &argument) in registers.into_iter().zip(arguments) {
        *register = argument;
    }
    frame.rax = number;
    frame.rip = frame.rip.wrapping_sub(SYSCALL_INSTRUCTION_LENGTH);
}

/// Runs one hypercall that needs nothing but its arguments (everything
/// except `iret`, which rewrites the frame, and `multicall`, which calls
/// this for each of its entries). `budget` is the work left to this
/// hypercall (see "Continuations").
fn dispatch(
    call: Option<Hypercall>,
    number: u64,
    arguments: &[u64; 5],
    budget: &mut u64,
) -> Outcome {
    let [a0, a1, a2, a3, _] = *arguments;
    match call {
        Some(Hypercall::MmuUpdate) => return mmu::mmu_update(a0, a1, a2, a3, budget),
        Some(Hypercall::MmuextOp) => return mmu::mmuext_op(a0, a1, a2, a3, budget),
        Some(Hypercall::MemoryOp) => return memory::memory_op(a0, a1, budget),
        Some(Hypercall::GrantTableOp) => return crate::grant::grant_table_op(a0, a1, a2, budget),
        Some(Hypercall::Domctl) => return domctl::domctl(a0, budget),
        _ => {}
    }
    let result = match call {
        Some(Hypercall::XenVersion) => version::xen_version(a0, a1),
        Some(Hypercall::ConsoleIo) => console_io::console_io(a0, a1, a2),
        Some(Hypercall::SchedOp) => sched::sched_op(a0, a1),
        Some(Hypercall::SetTrapTable) => {
            on_current(|domain| trap_calls::set_trap_table(domain, a0))
        }
        Some(Hypercall::StackSwitch) => {
            on_current(|domain| trap_calls::stack_switch(domain, a0, a1))
        }
        Some(Hypercall::SetCallbacks) => {
            on_current(|domain| trap_calls::set_callbacks(domain, a0, a1, a2))
        }
        Some(Hypercall::SetSegmentBase) => {
            on_current(|domain| trap_calls::set_segment_base(domain, a0, a1))
        }
        Some(Hypercall::CallbackOp) => on_current(|domain| trap_calls::callback_op(domain, a0, a1)),
        Some(Hypercall::SetDebugreg) => {
            on_current(|domain| crate::traps::debug::set_debugreg(domain, a0, a1))
        }
        Some(Hypercall::GetDebugreg) => {
            on_current(|domain| crate::traps::debug::get_debugreg(domain, a0))
        }
        Some(Hypercall::Sysctl) => sysctl::sysctl(a0),
        Some(Hypercall::UpdateVaMapping) => mmu::update_va_mapping(a0, a1, a2),
        Some(Hypercall::EventChannelOp) => crate::evtchn::event_channel_op(a0, a1),
        Some(Hypercall::VcpuOp) => vcpu::vcpu_op(a0, a1, a2),
        Some(Hypercall::PhysdevOp) => {
            on_current(|domain| crate::traps::physdev_op::physdev_op(domain, a0, a1))
        }
        Some(Hypercall::VmAssist) => on_current(|domain| vcpu::vm_assist(domain, a0, a1)),
        Some(Hypercall::SetGdt) => on_current(|domain| descriptor_tables::set_gdt(domain, a0, a1)),
        Some(Hypercall::UpdateDescriptor) => {
            on_current(|domain| descriptor_tables::update_descriptor(domain, a0, a1))
        }
        Some(Hypercall::FpuTaskswitch) => {
            on_current(|domain| crate::traps::fpu::fpu_taskswitch(domain, a0))
        }
        Some(Hypercall::SetTimerOp) => on_current(|domain| {
            // Absolute system time in ns; 0 cancels. A deadline in the past
            // fires at once (the timer interrupts as soon as it is armed).
            domain.timer_deadline = a0;
            if a0 != 0 {
                crate::time::arm_timer_no_later_than(crate::time::tsc_at_system_time(a0));
            }
            Ok(0)
        }),
        Some(other) => unimplemented(other.name(), number),
        None => unimplemented("unknown", number),
    };
    Outcome::Done(result)
}

/// Whether the exit may use `sysretq`, which loads RIP from rcx and RFLAGS
/// from r11 and so destroys the guest's rcx and r11. That is allowed when
/// the frame is still a plain hypercall frame (the guest's stub saved rcx
/// and r11 itself), with the flat 64-bit selectors, and with a canonical
/// RIP: `sysretq` to a non-canonical address faults *in ring 0* on Intel
/// CPUs, with the guest's stack (the bug behind CVE-2012-0217).
fn may_sysret(frame: &GuestFrame) -> u64 {
    u64::from(
        frame.vector == ENTRY_SYSCALL
            && is_canonical(frame.rip)
            && frame.cs == u64::from(FLAT_RING3_CS64)
            && frame.ss == u64::from(FLAT_RING3_SS64),
    )
}

fn unimplemented(name: &str, number: u64) -> Result<u64, XenError> {
    caller_log!(Warn, "unimplemented hypercall {name} ({number}): -ENOSYS");
    Err(XenError::ENOSYS)
}
