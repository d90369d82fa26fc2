//! The exception entry from the assembly stubs: bounce to the guest, emulate, or report a hypervisor fault.

use super::{bounce, debug, emulate, fpu, guest_mode, software_interrupt};
use crate::arch::x86_64::frame::GuestFrame;
use crate::arch::x86_64::instructions::{rdtsc, read_cr2};
use crate::arch::x86_64::{apic, percpu::this_cpu, pit, power};
use crate::domain;
use crate::mm::pagewalk::is_canonical;
use core::fmt::Write;
use core::sync::atomic::Ordering;
use hypercall_abi::x86::EXCEPTION_NAMES;

const VECTOR_NMI: u8 = 2;
const VECTOR_DOUBLE_FAULT: u8 = 8;
const VECTOR_GENERAL_PROTECTION: u8 = 13;
const VECTOR_PAGE_FAULT: u8 = 14;
const VECTOR_MACHINE_CHECK: u8 = 18;

/// Called by `interrupt_common` for every exception and interrupt.
// The assembly stubs (`arch/x86_64/entry.rs`) call this by name; an
// unmangled name is the only `unsafe_code` this folder allows.
#[allow(unsafe_code)]
#[no_mangle]
extern "C" fn handle_trap(frame: &mut GuestFrame) {
    let vector = frame.vector as u8;
    match vector {
        apic::TIMER_VECTOR => timer_tick(frame),
        apic::SPURIOUS_VECTOR => {}
        v if (pit::LEGACY_PIC_VECTOR_BASE..pit::LEGACY_PIC_VECTOR_BASE + 16).contains(&v) => {
            // A spurious interrupt from a masked legacy PIC: nothing to do.
        }
        VECTOR_NMI => log::warn!("NMI received (ignored)"),
        VECTOR_DOUBLE_FAULT | VECTOR_MACHINE_CHECK => hypervisor_fatal(frame),
        emulate::VECTOR_DEBUG if !frame.came_from_guest() => debug::hypervisor_context(frame),
        v if v < 32 && frame.came_from_guest() => guest_exception(frame),
        v if v < 32 => hypervisor_fatal(frame),
        v => log::warn!("unexpected interrupt on vector {v:#x} (ignored)"),
    }
    if frame.came_from_guest() {
        leave_to_guest(frame);
    }
}

/// The last policy step of every return to a guest, from an exception, an
/// interrupt or a hypercall: the scheduler's decisions and a due event
/// upcall (`sched::on_exit`), then the return address's check.
///
/// A guest may name a non-canonical RIP to return to: with the `iret`
/// hypercall, or by a `syscall` that ends exactly at the top of the lower
/// half (`0x00007fffffffffff`), whose return address is then
/// `0x0000800000000000`. The processor refuses that address in the
/// hypervisor's own `iretq` (or, on Intel, in `sysretq`: Xen's XSA-7,
/// CVE-2012-0217, where the fault is taken in ring 0 on the guest's
/// stack), and that fault belongs to the guest. Xen catches the fault of
/// its `iretq` and delivers it to the guest as if the guest had raised it
/// at that address: a `#GP(0)` with the frame's RIP and stack. Here the
/// hypervisor never executes that `iretq`: it delivers the same `#GP(0)`
/// before leaving, and a guest that cannot take it is crashed. (A
/// non-canonical stack pointer is not checked: `iretq` and `sysretq` load
/// RSP without looking at it, and the guest's next stack access faults in
/// the guest.)
///
/// Each round either moves RIP to the guest's `#GP` handler (canonical:
/// registration checks it) or crashes the guest, after which `on_exit`
/// switches to another domain's frame, checked in turn: the loop ends.
///
/// Every exit runs this, so the common case (one `on_exit`, a canonical
/// RIP) is inlined into the exit paths and the rest is a cold call: under
/// QEMU's emulation each call and return is an indirect jump it must look
/// up, and the null hypercall measured about 140 cycles dearer with this
/// and the guest-user test as calls (`docs/benchmarks.md`).
#[inline(always)]
pub fn leave_to_guest(frame: &mut GuestFrame) {
    crate::sched::on_exit(frame);
    if !is_canonical(frame.rip) {
        leave_to_guest_non_canonical(frame);
    }
}

/// The rest of [`leave_to_guest`]: RIP is not canonical.
#[cold]
#[inline(never)]
fn leave_to_guest_non_canonical(frame: &mut GuestFrame) {
    loop {
        let address = frame.rip;
        crate::console::caller_log!(
            Debug,
            "return to the non-canonical address {address:#x}: #GP(0) to the guest"
        );
        frame.vector = u64::from(VECTOR_GENERAL_PROTECTION);
        frame.error_code = 0;
        deliver_or_crash(frame, VECTOR_GENERAL_PROTECTION, 0);
        crate::sched::on_exit(frame);
        if is_canonical(frame.rip) {
            return;
        }
    }
}

fn timer_tick(frame: &GuestFrame) {
    this_cpu().ticks.fetch_add(1, Ordering::Relaxed);
    apic::end_of_interrupt();
    // A one-shot timer fires once: arm the housekeeping tick at once, so
    // that the CPU is never without a timer; the next decision may arm an
    // earlier deadline.
    crate::time::arm_timer_at(rdtsc() + crate::time::housekeeping_cycles());
    crate::sched::tick();
    // The timer fires at a deadline: a run ends, a guest timer expires.
    // Decide again. (In the idle loop, from ring 0, it just wakes the CPU
    // up to look for work.)
    if frame.came_from_guest() {
        crate::sched::request_reschedule();
    }
}

/// A guest raised an exception: bounce it to the guest's handler, or crash
/// the guest when it cannot take it.
fn guest_exception(frame: &mut GuestFrame) {
    let hardware_vector = frame.vector as u8;
    let mut vector = hardware_vector;
    let mut fault_address = if vector == VECTOR_PAGE_FAULT {
        read_cr2()
    } else {
        0
    };
    // A privileged instruction (#GP with error code 0) or Xen's forced-
    // emulation prefix (#UD) may be emulated instead (see emulate.rs).
    if vector == emulate::VECTOR_INVALID_OPCODE
        || (vector == emulate::VECTOR_GENERAL_PROTECTION && frame.error_code == 0)
    {
        match emulate::handle(frame) {
            emulate::Outcome::Emulated => return,
            emulate::Outcome::Raise(exception) => {
                vector = exception.vector;
                frame.vector = u64::from(vector);
                frame.error_code = exception.error_code;
                fault_address = exception.address;
            }
            emulate::Outcome::Reflect => {}
        }
    }
    if hardware_vector == emulate::VECTOR_DEBUG {
        domain::with_current(|domain| debug::record_debug_status(&mut domain.vcpu));
    }
    deliver_or_crash(frame, vector, fault_address);
}

/// Delivers exception `vector` (its error code in the frame) to the
/// current guest, or crashes the guest when it cannot take it.
fn deliver_or_crash(frame: &mut GuestFrame, vector: u8, fault_address: u64) {
    let outcome = domain::with_current(|domain| {
        if vector == VECTOR_GENERAL_PROTECTION {
            // It may be an `int $n` the trap table's DPL lets through.
            if let software_interrupt::Outcome::Delivered(result) =
                software_interrupt::handle(domain, frame)
            {
                return result;
            }
        }
        if vector == fpu::VECTOR_DEVICE_NOT_AVAILABLE {
            return fpu::device_not_available(domain, frame);
        }
        bounce::bounce_exception(domain, frame, vector, fault_address)
    });
    if let Some(Err(problem)) = outcome {
        let mut reason = heapless::String::<256>::new();
        let _ = write!(
            reason,
            "{} (vector {}, error {:#x}) at rip {:#x}",
            EXCEPTION_NAMES[usize::from(vector)],
            vector,
            frame.error_code,
            frame.rip
        );
        if vector == VECTOR_PAGE_FAULT {
            let _ = write!(reason, ", address {fault_address:#x}");
        }
        let _ = write!(reason, ": {problem}");
        domain::crash_current(&reason);
    }
}

/// A `syscall` from guest user mode (see `guest_mode::user_syscall`):
/// bounced to the guest kernel, which is crashed if it cannot take it.
pub fn user_syscall(frame: &mut GuestFrame) {
    let outcome = domain::with_current(|domain| guest_mode::user_syscall(domain, frame));
    if let Some(Err(problem)) = outcome {
        let mut reason = heapless::String::<192>::new();
        let _ = write!(
            reason,
            "cannot deliver a system call from user mode (rip {:#x}): {problem}",
            frame.rip
        );
        domain::crash_current(&reason);
    }
}

/// The hypervisor itself faulted: print everything and stop the machine.
pub fn hypervisor_fatal(frame: &GuestFrame) -> ! {
    let vector = usize::from(frame.vector as u8);
    let name = EXCEPTION_NAMES.get(vector).copied().unwrap_or("interrupt");
    let mut out = crate::console::fatal_writer();
    let _ = writeln!(out, "\n(XEN) ****************************************");
    let _ = writeln!(
        out,
        "(XEN) FATAL: {name} (vector {vector}) in the hypervisor"
    );
    let _ = writeln!(
        out,
        "(XEN) error code {:#x}, rip {:#x}, cs {:#x}, rflags {:#x}, cr2 {:#x}",
        frame.error_code,
        frame.rip,
        frame.cs,
        frame.rflags,
        read_cr2()
    );
    let _ = writeln!(
        out,
        "(XEN) rax {:016x} rbx {:016x} rcx {:016x} rdx {:016x}",
        frame.rax, frame.rbx, frame.rcx, frame.rdx
    );
    let _ = writeln!(
        out,
        "(XEN) rsi {:016x} rdi {:016x} rbp {:016x} rsp {:016x}",
        frame.rsi, frame.rdi, frame.rbp, frame.rsp
    );
    let _ = writeln!(
        out,
        "(XEN) r8  {:016x} r9  {:016x} r10 {:016x} r11 {:016x}",
        frame.r8, frame.r9, frame.r10, frame.r11
    );
    let _ = writeln!(
        out,
        "(XEN) r12 {:016x} r13 {:016x} r14 {:016x} r15 {:016x}",
        frame.r12, frame.r13, frame.r14, frame.r15
    );
    match this_cpu().current_domain() {
        Some(id) => {
            let _ = writeln!(out, "(XEN) current domain: d{id}");
        }
        None => {
            let _ = writeln!(out, "(XEN) current domain: none");
        }
    }
    let _ = writeln!(out, "(XEN) tsc {}: stopping the machine", rdtsc());
    power::fail(power::FailureCode::HypervisorFatal)
}
