//! Guest-side hypercall functions for a 64-bit PV guest kernel.
//!
//! Everything here must run in a PV guest's kernel mode: there, `syscall`
//! enters Xen, which reads the hypercall number from `rax` and the arguments
//! from `rdi`, `rsi`, `rdx`, `r10` and `r8`, and returns the result in `rax`.
//! Outside a PV guest kernel the same instruction goes somewhere else
//! entirely, so only guest kernels should call these functions.
//!
//! The `syscall` sequence is emitted inline, as Linux has done since the
//! XSA-466 fixes, instead of calling into a hypercall page. `syscall` itself
//! overwrites `rcx` and `r11`. Xen's debug builds also deliberately scramble
//! the argument registers on return, to catch guests that rely on them, so
//! every argument register is treated as clobbered.
//!
//! The raw `hypercallN` functions are `unsafe`: a hypercall can write any
//! guest memory its arguments point to, change page tables, or never return.
//! The typed wrappers below them are safe where the only memory Xen touches
//! is borrowed from the caller for the duration of the call.

use core::arch::asm;

use crate::callback::{CallbackOp, CallbackRegister};
use crate::console::ConsoleIoOp;
use crate::event_channel::{EventChannelOp, EventChannelPort, EvtchnSend};
use crate::hypercall::Hypercall;
use crate::layout::TrapInfo;
use crate::mmu::{MmuUpdate, MmuextOp};
use crate::physdev::{PhysdevOp, PhysdevSetIopl};
use crate::sched::{SchedOp, SchedShutdown, ShutdownReason};
use crate::sysctl::Sysctl;
use crate::version::XenVersionOp;
use crate::XenError;

/// Makes hypercall `nr` with no arguments and returns `rax`.
///
/// # Safety
///
/// The caller must be a 64-bit PV guest kernel, and the hypercall must be
/// valid to make with no arguments: whatever it does to the guest's state
/// (memory, page tables, control flow) must be something the caller is
/// prepared for.
#[inline]
pub unsafe fn hypercall0(nr: Hypercall) -> i64 {
    let result: i64;
    // SAFETY: the caller upholds this function's contract. The asm block
    // declares every register the sequence changes (rax result, rcx and
    // r11 by `syscall`) and may read or write memory, so the compiler makes
    // no assumptions across it.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as u64 => result,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    result
}

/// Makes hypercall number `nr`, which need not be one this crate knows,
/// with no arguments. For tests and tools that probe the hypervisor (an
/// unknown number must come back as `-ENOSYS`).
///
/// # Safety
///
/// As for [`hypercall0`].
#[inline]
pub unsafe fn hypercall0_raw(nr: u64) -> i64 {
    let result: i64;
    // SAFETY: as in hypercall0.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr => result,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    result
}

/// Makes hypercall number `nr`, which need not be one this crate knows,
/// with all five argument registers set (`rdi`, `rsi`, `rdx`, `r10`, `r8`),
/// so that nothing left in them by earlier code reaches the hypervisor.
/// For tools that probe the hypervisor (Dom0's `debug hypercall`, the
/// fuzzer, which draws numbers and arguments at random).
///
/// # Safety
///
/// As for [`hypercall0`]; in addition, any pointer among the arguments must
/// be valid for whatever the hypercall reads or writes through it.
#[inline]
pub unsafe fn hypercall_raw(nr: u64, arguments: [u64; 5]) -> i64 {
    let result: i64;
    // SAFETY: the caller upholds this function's contract; the asm block
    // declares every register the sequence may change, and memory is
    // treated as read and written.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr => result,
            inlateout("rdi") arguments[0] => _,
            inlateout("rsi") arguments[1] => _,
            inlateout("rdx") arguments[2] => _,
            inlateout("r10") arguments[3] => _,
            inlateout("r8") arguments[4] => _,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    result
}

/// Makes hypercall `nr` with one argument (in `rdi`) and returns `rax`.
///
/// # Safety
///
/// As for [`hypercall0`]; in addition, any pointer among the arguments must
/// be valid for whatever the hypercall reads or writes through it.
#[inline]
pub unsafe fn hypercall1(nr: Hypercall, arg1: u64) -> i64 {
    let result: i64;
    // SAFETY: the caller upholds this function's contract; the asm block
    // declares every register the sequence may change, and memory is
    // treated as read and written.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as u64 => result,
            inlateout("rdi") arg1 => _,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    result
}

/// Makes hypercall `nr` with two arguments (`rdi`, `rsi`) and returns `rax`.
///
/// # Safety
///
/// As for [`hypercall1`].
#[inline]
pub unsafe fn hypercall2(nr: Hypercall, arg1: u64, arg2: u64) -> i64 {
    let result: i64;
    // SAFETY: the caller upholds this function's contract; the asm block
    // declares every register the sequence may change, and memory is
    // treated as read and written.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as u64 => result,
            inlateout("rdi") arg1 => _,
            inlateout("rsi") arg2 => _,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    result
}

/// Makes hypercall `nr` with three arguments (`rdi`, `rsi`, `rdx`) and
/// returns `rax`.
///
/// # Safety
///
/// As for [`hypercall1`].
#[inline]
pub unsafe fn hypercall3(nr: Hypercall, arg1: u64, arg2: u64, arg3: u64) -> i64 {
    let result: i64;
    // SAFETY: the caller upholds this function's contract; the asm block
    // declares every register the sequence may change, and memory is
    // treated as read and written.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as u64 => result,
            inlateout("rdi") arg1 => _,
            inlateout("rsi") arg2 => _,
            inlateout("rdx") arg3 => _,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    result
}

/// Makes hypercall `nr` with four arguments (`rdi`, `rsi`, `rdx`, `r10`)
/// and returns `rax`.
///
/// # Safety
///
/// As for [`hypercall1`].
#[inline]
pub unsafe fn hypercall4(nr: Hypercall, arg1: u64, arg2: u64, arg3: u64, arg4: u64) -> i64 {
    let result: i64;
    // SAFETY: the caller upholds this function's contract; the asm block
    // declares every register the sequence may change, and memory is
    // treated as read and written.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as u64 => result,
            inlateout("rdi") arg1 => _,
            inlateout("rsi") arg2 => _,
            inlateout("rdx") arg3 => _,
            inlateout("r10") arg4 => _,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    result
}

/// Makes hypercall `nr` with five arguments (`rdi`, `rsi`, `rdx`, `r10`,
/// `r8`) and returns `rax`.
///
/// # Safety
///
/// As for [`hypercall1`].
#[inline]
pub unsafe fn hypercall5(
    nr: Hypercall,
    arg1: u64,
    arg2: u64,
    arg3: u64,
    arg4: u64,
    arg5: u64,
) -> i64 {
    let result: i64;
    // SAFETY: the caller upholds this function's contract; the asm block
    // declares every register the sequence may change, and memory is
    // treated as read and written.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as u64 => result,
            inlateout("rdi") arg1 => _,
            inlateout("rsi") arg2 => _,
            inlateout("rdx") arg3 => _,
            inlateout("r10") arg4 => _,
            inlateout("r8") arg5 => _,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    result
}

/// The address of a borrowed value, as a hypercall argument.
fn address_of<T: ?Sized>(value: &T) -> u64 {
    (value as *const T).cast::<u8>() as u64
}

/// Writes `bytes` to the hypervisor console (`CONSOLEIO_write`).
///
/// Returns 0, or a negated errno. Slices longer than `i32::MAX` bytes are
/// refused with `-EINVAL`, since Xen's count is an `int`.
pub fn console_write(bytes: &[u8]) -> i64 {
    if bytes.len() > i32::MAX as usize {
        return XenError::EINVAL.as_return();
    }
    // SAFETY: Xen only reads `bytes.len()` bytes from the borrowed slice.
    unsafe {
        hypercall3(
            Hypercall::ConsoleIo,
            u64::from(ConsoleIoOp::Write.raw()),
            bytes.len() as u64,
            address_of(bytes),
        )
    }
}

/// Reads hypervisor console input into `buffer` (`CONSOLEIO_read`).
///
/// Returns the number of bytes read, or a negated errno.
pub fn console_read(buffer: &mut [u8]) -> i64 {
    if buffer.len() > i32::MAX as usize {
        return XenError::EINVAL.as_return();
    }
    // SAFETY: Xen writes at most `buffer.len()` bytes into the exclusively
    // borrowed slice, and any byte value is a valid u8.
    unsafe {
        hypercall3(
            Hypercall::ConsoleIo,
            u64::from(ConsoleIoOp::Read.raw()),
            buffer.len() as u64,
            buffer.as_mut_ptr() as u64,
        )
    }
}

/// Makes `xen_version(cmd, arg)`.
///
/// Returns the sub-op's result (`major << 16 | minor` for `Version`) or a
/// negated errno.
///
/// # Safety
///
/// `arg` must be null for `Version` and `Pagesize`, and otherwise point to
/// writable memory of the size the sub-op fills (see [`crate::version`]).
pub unsafe fn xen_version(cmd: XenVersionOp, arg: *mut u8) -> i64 {
    // SAFETY: the caller guarantees `arg` suits `cmd`.
    unsafe { hypercall2(Hypercall::XenVersion, u64::from(cmd.raw()), arg as u64) }
}

/// Returns the hypervisor's version as `major << 16 | minor` (`XENVER_version`).
pub fn xen_version_number() -> i64 {
    // SAFETY: XENVER_version takes no buffer, so Xen touches no memory.
    unsafe { xen_version(XenVersionOp::Version, core::ptr::null_mut()) }
}

/// Sets this vCPU's virtual IOPL (`PHYSDEVOP_set_iopl`): 0..=3.
pub fn physdev_set_iopl(iopl: u32) -> i64 {
    let request = PhysdevSetIopl { iopl };
    // SAFETY: the hypervisor reads 4 bytes from `request`, a local that
    // outlives the call, and writes nothing.
    unsafe {
        hypercall2(
            Hypercall::PhysdevOp,
            u64::from(PhysdevOp::SetIopl.raw()),
            &request as *const PhysdevSetIopl as u64,
        )
    }
}

/// Gives up the CPU; the vCPU stays runnable (`SCHEDOP_yield`).
pub fn sched_yield() -> i64 {
    // SAFETY: SCHEDOP_yield takes no pointer and returns to the caller.
    unsafe { hypercall2(Hypercall::SchedOp, u64::from(SchedOp::Yield.raw()), 0) }
}

/// Sleeps until an event is pending for this vCPU (`SCHEDOP_block`).
///
/// Xen clears the vCPU's event mask as part of blocking, so the event
/// upcall may run before this returns.
pub fn sched_block() -> i64 {
    // SAFETY: SCHEDOP_block takes no pointer; it returns to the caller once
    // an event arrives (after the upcall, which the guest registered).
    unsafe { hypercall2(Hypercall::SchedOp, u64::from(SchedOp::Block.raw()), 0) }
}

/// Shuts the domain down for `reason` (`SCHEDOP_shutdown`).
///
/// Does not return for poweroff, reboot or crash; returns a negated errno if
/// Xen refuses. (A suspend also needs the start-info MFN in `rdx`; use
/// [`hypercall3`] for that.)
pub fn sched_shutdown(reason: ShutdownReason) -> i64 {
    let request = SchedShutdown {
        reason: reason.raw(),
    };
    // SAFETY: Xen only reads the borrowed `request`. Stopping the domain is
    // not a memory-safety hazard for the caller.
    unsafe {
        hypercall2(
            Hypercall::SchedOp,
            u64::from(SchedOp::Shutdown.raw()),
            address_of(&request),
        )
    }
}

/// Installs the virtual IDT (`set_trap_table`).
///
/// The table must end with an entry whose `address` is 0
/// ([`TrapInfo::END`]); Xen reads entries until it finds one. A table that is
/// not terminated within the slice is refused with `-EINVAL` without calling
/// Xen, so Xen never reads past the slice.
///
/// # Safety
///
/// Every non-terminating entry's `address` must be the entry point of a
/// handler that correctly handles its vector in the guest kernel; Xen will
/// jump there on the next such exception.
pub unsafe fn set_trap_table(table: &[TrapInfo]) -> i64 {
    if !table.iter().any(TrapInfo::is_end) {
        return XenError::EINVAL.as_return();
    }
    // SAFETY: Xen reads entries up to the terminator, which lies inside the
    // borrowed slice; the caller vouches for the handler addresses.
    unsafe { hypercall1(Hypercall::SetTrapTable, address_of(table)) }
}

/// Sets the stack Xen switches to when entering the guest kernel from guest
/// user mode (`stack_switch`), like `TSS.RSP0` on bare metal.
///
/// # Safety
///
/// `ss` must be the kernel stack selector (normally
/// [`crate::layout::FLAT_KERNEL_SS`]) and `rsp` the top of a mapped,
/// writable stack reserved for kernel entry.
pub unsafe fn stack_switch(ss: u64, rsp: u64) -> i64 {
    // SAFETY: the caller vouches for the stack; the call touches no other
    // memory.
    unsafe { hypercall2(Hypercall::StackSwitch, ss, rsp) }
}

/// Registers a callback entry point (`CALLBACKOP_register`).
///
/// # Safety
///
/// `registration.address` must be an entry point that correctly handles the
/// callback type; Xen will jump there.
pub unsafe fn callback_register(registration: &CallbackRegister) -> i64 {
    // SAFETY: Xen only reads the borrowed structure; the caller vouches for
    // the entry point.
    unsafe {
        hypercall2(
            Hypercall::CallbackOp,
            u64::from(CallbackOp::Register.raw()),
            address_of(registration),
        )
    }
}

/// Signals the other end of event channel `port` (`EVTCHNOP_send`).
pub fn event_channel_send(port: EventChannelPort) -> i64 {
    let request = EvtchnSend { port };
    // SAFETY: Xen only reads the borrowed `request`.
    unsafe {
        hypercall2(
            Hypercall::EventChannelOp,
            u64::from(EventChannelOp::Send.raw()),
            address_of(&request),
        )
    }
}

/// Makes `event_channel_op(op, arg)`.
///
/// # Safety
///
/// `arg` must point to the structure `op` expects (see
/// [`crate::event_channel`]), valid for reads and writes.
pub unsafe fn event_channel_op(op: EventChannelOp, arg: *mut u8) -> i64 {
    // SAFETY: the caller guarantees `arg` suits `op`.
    unsafe { hypercall2(Hypercall::EventChannelOp, u64::from(op.raw()), arg as u64) }
}

/// Applies a batch of page-table updates (`mmu_update`) on behalf of
/// `foreign_domain` (`DOMID_SELF` for the caller's own frames).
///
/// Returns 0 or a negated errno; `done` receives the number of requests
/// completed either way.
///
/// # Safety
///
/// The new mappings change what memory the guest's addresses refer to. The
/// caller must ensure no live Rust reference is invalidated by them.
pub unsafe fn mmu_update(requests: &[MmuUpdate], done: &mut u32, foreign_domain: u16) -> i64 {
    // SAFETY: Xen reads `requests.len()` entries from the borrowed slice and
    // writes one u32 to `done`; the caller vouches for the mappings.
    unsafe {
        hypercall4(
            Hypercall::MmuUpdate,
            address_of(requests),
            requests.len() as u64,
            done as *mut u32 as u64,
            u64::from(foreign_domain),
        )
    }
}

/// Runs a batch of extended MMU operations (`mmuext_op`).
///
/// Returns 0 or a negated errno; `done` receives the number of operations
/// completed.
///
/// # Safety
///
/// Operations such as `NEW_BASEPTR` switch address spaces; the caller must
/// keep every live Rust reference valid across them, and any `vcpumask` or
/// `linear_addr` argument must be valid for the operation.
pub unsafe fn mmuext_op(operations: &[MmuextOp], done: &mut u32, foreign_domain: u16) -> i64 {
    // SAFETY: Xen reads `operations.len()` entries from the borrowed slice
    // and writes one u32 to `done`; the caller vouches for the operations.
    unsafe {
        hypercall4(
            Hypercall::MmuextOp,
            address_of(operations),
            operations.len() as u64,
            done as *mut u32 as u64,
            u64::from(foreign_domain),
        )
    }
}

/// Replaces the page-table entry mapping `virtual_address` with `pte` and
/// flushes as `flags` (`UVMF_*`) says (`update_va_mapping`).
///
/// # Safety
///
/// As for [`mmu_update`]: the caller must ensure no live Rust reference
/// depends on the old mapping.
pub unsafe fn update_va_mapping(virtual_address: u64, pte: u64, flags: u64) -> i64 {
    // SAFETY: the caller vouches for the new mapping.
    unsafe { hypercall3(Hypercall::UpdateVaMapping, virtual_address, pte, flags) }
}

/// Arms the vCPU's one-shot timer for absolute system time `deadline_ns`
/// (`set_timer_op`); 0 cancels it. `VIRQ_TIMER` fires at the deadline.
pub fn set_timer_op(deadline_ns: u64) -> i64 {
    // SAFETY: the call takes no pointer and only affects the timer.
    unsafe { hypercall1(Hypercall::SetTimerOp, deadline_ns) }
}

/// Makes a sysctl (hypercall 35) with `request`, which Xen reads and updates
/// in place.
///
/// # Safety
///
/// Any guest address inside the payload (the `buffer` of `Readconsole` or
/// `Getdomaininfolist`) must point to memory valid for the writes the
/// operation makes, for its stated size.
pub unsafe fn sysctl(request: &mut Sysctl) -> i64 {
    // SAFETY: Xen reads and writes the exclusively borrowed `request`; the
    // caller vouches for the addresses inside it.
    unsafe { hypercall1(Hypercall::Sysctl, request as *mut Sysctl as u64) }
}
