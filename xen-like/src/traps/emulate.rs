//! Trap and emulate: what the hypervisor does when a PV guest kernel
//! executes a privileged instruction (`#GP`) or Xen's forced-emulation
//! prefix (`#UD`).
//!
//! A PV kernel runs in ring 3, so the processor refuses it every privileged
//! instruction with a `#GP`. Most of what such an instruction would do has
//! a hypercall instead (`mmuext_op` for page tables, `set_trap_table` for
//! the IDT, ...), but some instructions are cheaper to let the guest keep,
//! and Xen emulates them for a PV kernel. This file does the same, in the
//! same order as Xen's `pv_emulate_privileged_op`:
//!
//! 1. **fetch** at most 15 bytes at the faulting RIP through the guest's
//!    page tables, checked as any guest access (`mm::guest_access`): an
//!    instruction that runs into an unmapped page gets the guest the page
//!    fault the processor would have raised, at the first missing byte;
//! 2. **decode** them (`crate::traps::x86_decode`);
//! 3. **emulate** with Xen's semantics and policy:
//!    - `mov` from CR0 (the real value with the guest's TS), CR2 (the last
//!      page fault's address), CR3 (the current base pointer's machine
//!      address, Xen's `xen_pfn_to_cr3`), CR4 (the PV view: the real PAE,
//!      MCE, OSFXSR, OSXMMEXCPT bits and the guest's own DE);
//!    - `mov` to CR0 (only TS may change, as `fpu_taskswitch`), CR2, CR3
//!      (through `MMUEXT_NEW_BASEPTR`'s validation), CR4 (bits the guest
//!      does not control are ignored, as in Xen); `clts`;
//!    - `mov` to and from DR0..DR7 through `set_debugreg`'s checks;
//!    - `rdmsr`/`wrmsr` on an allow-list: FS base, GS base, the shadow GS
//!      base, EFER (read), the TSC (read), the hypercall-page MSR
//!      0x40000000 (write); every other MSR is a `#GP`, as in Xen 4.17;
//!    - `wbinvd`: ignored, as Xen ignores it for a domain without
//!      cache-flush rights (no domain here has physical devices);
//!    - `rdtsc`, `rdtscp` (a `#UD` if the CPU lacks `rdtscp`), `cpuid`;
//!    - `in`, `out`, `cli`, `sti`: only if the vCPU's virtual IOPL allows
//!      them (`PHYSDEVOP_set_iopl`; `crate::traps::io_ports`), otherwise
//!      they get their `#GP`. An allowed `in`/`out` reaches the port only
//!      for the control domain and never a port the hypervisor drives; any
//!      other reads all ones and writes nothing, as in Xen. An allowed
//!      `cli`/`sti` does nothing at all, as in Xen, which deliberately does
//!      not turn them into event-mask changes: a kernel that masks with
//!      `cli` and unmasks with `popf` (which cannot be trapped: in ring 3 it
//!      silently keeps IF) would stay masked forever. `ins`/`outs` are not
//!      emulated (`#GP`);
//!    - the forced-emulation prefix `ud2; .ascii "xen"` then `cpuid`: the
//!      PV CPUID policy (`crate::traps::cpuid_policy`); nothing else is
//!      emulated after the prefix, as in Xen;
//! 4. **retire**: RIP moves past the instruction, the guest's registers in
//!    the saved frame take the results, and a guest single-stepping with
//!    TF gets its `#DB` after the instruction, as the processor would give
//!    it.
//!
//! Anything else is reflected to the guest as the fault it was, with its
//! error code and at its RIP, so the guest's handler sees exactly what a
//! native kernel would have.
//!
//! Only a vCPU in guest kernel mode has its privileged instructions
//! emulated: in guest user mode (the guest's ring 3) they get their `#GP`
//! untouched, as in Xen, except port I/O, `cli` and `sti`, which a virtual
//! IOPL of 3 allows user mode too, and the forced-emulation `cpuid`, which
//! serves both.

use super::debug;
use crate::arch::x86_64::frame::GuestFrame;
use crate::arch::x86_64::instructions::{
    self, has_rdtscp, rdtsc, read_cr0, read_cr4, read_fs_base, read_kernel_gs_base, read_msr,
    write_fs_base, write_kernel_gs_base, MSR_EFER, MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE,
    MSR_TSC_AUX,
};
use crate::arch::x86_64::rtc;
use crate::console::guest_log;
use crate::domain::{self, Domain};
use crate::mm::pagewalk::is_canonical;
use crate::mm::{frame_table, guest_access, PAGE_SIZE};
use crate::traps::cpuid_policy::{pv_cpuid, CpuidLeaf, HYPERCALL_PAGE_MSR};
use crate::traps::debug_registers::DR6_SINGLE_STEP;
use crate::traps::io_ports::{
    iopl_allows, nothing_read, port_access, PortAccess, CMOS_REGISTER_MASK,
};
use crate::traps::x86_decode::{
    decode, forced_emulation, DecodeError, ForcedEmulation, Instruction, Operation, Port,
    MAX_INSTRUCTION_LENGTH,
};
use hypercall_abi::mmu::VMASST_TYPE_ARCHITECTURAL_IOPL;
use hypercall_abi::XenError;

/// Exception vectors this file raises or handles.
pub const VECTOR_DEBUG: u8 = 1;
pub const VECTOR_INVALID_OPCODE: u8 = 6;
pub const VECTOR_GENERAL_PROTECTION: u8 = 13;
pub const VECTOR_PAGE_FAULT: u8 = 14;

/// CR0.TS: task switched (the lazy-FPU trap bit).
const CR0_TS: u64 = 1 << 3;
/// The real CR4 bits a PV guest sees (Xen's `PV_CR4_GUEST_VISIBLE_MASK`):
/// PAE, MCE, OSFXSR, OSXMMEXCPT.
const CR4_VISIBLE: u64 = (1 << 5) | (1 << 6) | (1 << 9) | (1 << 10);
/// The CR4 bits a PV guest controls here: DE only (Xen also lets it have
/// TSD, FSGSBASE and OSXSAVE, which need hardware support this hypervisor
/// does not switch per guest, and which its CPUID policy hides).
const CR4_GUEST_CONTROLLED: u64 = debug::CR4_DE;
/// RFLAGS.TF and RFLAGS.RF.
const RFLAGS_TF: u64 = 1 << 8;
const RFLAGS_RF: u64 = 1 << 16;

/// An exception for the guest instead of the one it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    pub vector: u8,
    pub error_code: u64,
    /// For a page fault, the address (the guest's CR2).
    pub address: u64,
}

/// What became of a guest's `#GP` or `#UD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The instruction was emulated; the frame holds the result.
    Emulated,
    /// The guest gets this exception instead.
    Raise(Exception),
    /// The guest gets the fault it took, unchanged.
    Reflect,
}

fn general_protection() -> Outcome {
    Outcome::Raise(Exception {
        vector: VECTOR_GENERAL_PROTECTION,
        error_code: 0,
        address: 0,
    })
}

fn invalid_opcode() -> Outcome {
    Outcome::Raise(Exception {
        vector: VECTOR_INVALID_OPCODE,
        error_code: 0,
        address: 0,
    })
}

/// The page fault a fetch took at `address`. Xen reports it with error
/// code 0 to a guest in kernel mode (not present, read, and the user bit
/// clear because the guest kernel is "supervisor" in its own view).
fn fetch_fault(address: u64) -> Outcome {
    Outcome::Raise(Exception {
        vector: VECTOR_PAGE_FAULT,
        error_code: 0,
        address,
    })
}

/// Bytes fetched at the faulting RIP: up to 15, fewer when a page the
/// guest may not read comes first.
struct Fetched {
    bytes: [u8; MAX_INSTRUCTION_LENGTH],
    count: usize,
}

impl Fetched {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.count]
    }
}

/// Fetches the instruction bytes at `rip`, one page at a time, each piece
/// checked and read as any guest buffer (the hypervisor's range and
/// unmapped or supervisor pages refused).
fn fetch(rip: u64) -> Fetched {
    let mut fetched = Fetched {
        bytes: [0; MAX_INSTRUCTION_LENGTH],
        count: 0,
    };
    let in_first_page = (PAGE_SIZE - rip % PAGE_SIZE) as usize;
    let first = in_first_page.min(MAX_INSTRUCTION_LENGTH);
    if guest_access::copy_from_guest(rip, &mut fetched.bytes[..first]).is_err() {
        return fetched;
    }
    fetched.count = first;
    if first < MAX_INSTRUCTION_LENGTH {
        let next_page = rip.wrapping_add(first as u64);
        if guest_access::copy_from_guest(next_page, &mut fetched.bytes[first..]).is_ok() {
            fetched.count = MAX_INSTRUCTION_LENGTH;
        }
    }
    fetched
}

/// Handles a `#GP` (with error code 0) or `#UD` that the running guest
/// took: emulates the instruction, or says which exception the guest gets.
pub fn handle(frame: &mut GuestFrame) -> Outcome {
    let vector = frame.vector as u8;
    let fetched = fetch(frame.rip);
    let mut released_a_base = false;
    let outcome = domain::with_current(|domain| match vector {
        VECTOR_INVALID_OPCODE => forced(domain, frame, &fetched),
        // Guest user mode is the guest's ring 3: its privileged
        // instructions are the guest kernel's business, as in Xen (only
        // the forced-emulation `cpuid` above and the I/O instructions,
        // under the virtual IOPL, serve both modes).
        _ if !domain.vcpu.kernel_mode => user_mode(domain, frame, &fetched),
        _ => {
            let outcome = privileged(domain, frame, &fetched);
            released_a_base = matches!(
                decode(fetched.as_slice()),
                Ok(Instruction {
                    operation: Operation::WriteControlRegister { control: 3, .. },
                    ..
                })
            ) && outcome == Outcome::Emulated;
            outcome
        }
    })
    .unwrap_or(Outcome::Reflect);
    if released_a_base {
        // The old root may have been the last table mapping a dying
        // domain's frame (as after `MMUEXT_NEW_BASEPTR`), which freed it.
        domain::announce_gone_zombies();
    }
    outcome
}

/// `#UD`: Xen's forced-emulation prefix and `cpuid`, or the guest's own
/// invalid opcode.
fn forced(domain: &mut Domain, frame: &mut GuestFrame, fetched: &Fetched) -> Outcome {
    match forced_emulation(fetched.as_slice()) {
        ForcedEmulation::Cpuid { length } => {
            emulate_cpuid(frame);
            retire(domain, frame, length)
        }
        ForcedEmulation::Truncated { missing_at } => {
            fetch_fault(frame.rip.wrapping_add(missing_at as u64))
        }
        ForcedEmulation::OtherInstruction => {
            guest_log!(
                domain,
                Debug,
                "forced-emulation prefix at {:#x} not followed by cpuid: #UD",
                frame.rip
            );
            Outcome::Reflect
        }
        ForcedEmulation::NotForced => Outcome::Reflect,
    }
}

/// The PV CPUID policy, asked with the guest's eax (leaf) and ecx
/// (sub-leaf).
fn emulate_cpuid(frame: &mut GuestFrame) {
    let host = |leaf, subleaf| {
        let (eax, ebx, ecx, edx) = instructions::cpuid_count(leaf, subleaf);
        CpuidLeaf { eax, ebx, ecx, edx }
    };
    let leaf = pv_cpuid(host, frame.rax as u32, frame.rcx as u32);
    frame.rax = u64::from(leaf.eax);
    frame.rbx = u64::from(leaf.ebx);
    frame.rcx = u64::from(leaf.ecx);
    frame.rdx = u64::from(leaf.edx);
}

/// Moves RIP past an emulated instruction, as the processor retires one:
/// RF is cleared, and a guest single-stepping (TF) gets its `#DB` now.
fn retire(domain: &mut Domain, frame: &mut GuestFrame, length: usize) -> Outcome {
    frame.rip = frame.rip.wrapping_add(length as u64);
    frame.rflags &= !RFLAGS_RF;
    if frame.rflags & RFLAGS_TF != 0 {
        domain.vcpu.debug.record_status(DR6_SINGLE_STEP);
        return Outcome::Raise(Exception {
            vector: VECTOR_DEBUG,
            error_code: 0,
            address: 0,
        });
    }
    Outcome::Emulated
}

/// `#GP` with error code 0: a privileged instruction, perhaps.
fn privileged(domain: &mut Domain, frame: &mut GuestFrame, fetched: &Fetched) -> Outcome {
    let instruction = match decode(fetched.as_slice()) {
        Ok(instruction) => instruction,
        Err(DecodeError::Truncated { missing_at }) if fetched.count < MAX_INSTRUCTION_LENGTH => {
            return fetch_fault(frame.rip.wrapping_add(missing_at as u64));
        }
        Err(DecodeError::Undefined) => return invalid_opcode(),
        Err(_) => return Outcome::Reflect,
    };
    let outcome = execute(domain, frame, &instruction);
    match outcome {
        Ok(()) => retire(domain, frame, instruction.length),
        Err(outcome) => outcome,
    }
}

/// `#GP` in guest user mode: only the I/O instructions may be emulated
/// (when the virtual IOPL is 3); anything else is the guest's own `#GP`.
fn user_mode(domain: &mut Domain, frame: &mut GuestFrame, fetched: &Fetched) -> Outcome {
    let Ok(instruction) = decode(fetched.as_slice()) else {
        return Outcome::Reflect;
    };
    match instruction.operation {
        Operation::In { .. } | Operation::Out { .. } | Operation::Cli | Operation::Sti => {
            match input_output(domain, frame, &instruction.operation) {
                Ok(()) => retire(domain, frame, instruction.length),
                Err(outcome) => outcome,
            }
        }
        _ => Outcome::Reflect,
    }
}

/// `in`, `out`, `cli`, `sti` (Xen's `iopl_ok`, `guest_io_okay`,
/// `admin_io_okay`): `Err` when the virtual IOPL does not allow them.
fn input_output(
    domain: &mut Domain,
    frame: &mut GuestFrame,
    operation: &Operation,
) -> Result<(), Outcome> {
    let architectural_iopl = domain.vm_assist & (1 << VMASST_TYPE_ARCHITECTURAL_IOPL) != 0;
    if !iopl_allows(
        domain.vcpu.iopl,
        domain.vcpu.kernel_mode,
        architectural_iopl,
    ) {
        let (iopl, mode) = (
            domain.vcpu.iopl,
            if domain.vcpu.kernel_mode {
                "kernel"
            } else {
                "user"
            },
        );
        guest_log!(
            domain,
            Debug,
            "{operation:?} at {:#x} with virtual IOPL {iopl} in {mode} mode: #GP",
            frame.rip
        );
        return Err(Outcome::Reflect);
    }
    match *operation {
        Operation::In { size, port } => {
            let port = port_number(frame, port);
            let value = port_read(domain, port, size);
            match size {
                1 => frame.rax = (frame.rax & !0xff) | u64::from(value & 0xff),
                2 => frame.rax = (frame.rax & !0xffff) | u64::from(value & 0xffff),
                // A 32-bit register write clears the upper half.
                _ => frame.rax = u64::from(value),
            }
        }
        Operation::Out { size, port } => {
            let port = port_number(frame, port);
            port_write(domain, port, size, frame.rax as u32);
        }
        // Allowed, and deliberately without effect (see the file comment).
        _ => {}
    }
    Ok(())
}

/// The port an `in`/`out` names.
fn port_number(frame: &GuestFrame, port: Port) -> u16 {
    match port {
        Port::Immediate(number) => u16::from(number),
        Port::Dx => frame.rdx as u16,
    }
}

/// An allowed `in`: from the port, from the mediated RTC, or all ones.
fn port_read(domain: &mut Domain, port: u16, size: u8) -> u32 {
    match port_access(domain.privileged, port, size) {
        PortAccess::Direct => {
            instructions::guest_port_read(port, size).unwrap_or(nothing_read(size))
        }
        PortAccess::CmosIndex => u32::from(domain.cmos_index),
        PortAccess::CmosData => u32::from(rtc::read(domain.cmos_index & CMOS_REGISTER_MASK)),
        PortAccess::Nothing(reason) => {
            guest_log!(
                domain,
                Debug,
                "in from port {port:#x} reaches nothing ({reason}): all ones"
            );
            nothing_read(size)
        }
    }
}

/// An allowed `out`: to the port, to the mediated RTC, or dropped.
fn port_write(domain: &mut Domain, port: u16, size: u8, value: u32) {
    match port_access(domain.privileged, port, size) {
        PortAccess::Direct => {
            instructions::guest_port_write(port, size, value);
        }
        PortAccess::CmosIndex => domain.cmos_index = value as u8,
        PortAccess::CmosData => rtc::write(domain.cmos_index & CMOS_REGISTER_MASK, value as u8),
        PortAccess::Nothing(reason) => {
            guest_log!(
                domain,
                Debug,
                "out to port {port:#x} reaches nothing ({reason}): dropped"
            );
        }
    }
}

/// Reads general-purpose register `number` (ModRM numbering) of the frame.
fn register(frame: &GuestFrame, number: u8) -> u64 {
    match number {
        0 => frame.rax,
        1 => frame.rcx,
        2 => frame.rdx,
        3 => frame.rbx,
        4 => frame.rsp,
        5 => frame.rbp,
        6 => frame.rsi,
        7 => frame.rdi,
        8 => frame.r8,
        9 => frame.r9,
        10 => frame.r10,
        11 => frame.r11,
        12 => frame.r12,
        13 => frame.r13,
        14 => frame.r14,
        _ => frame.r15,
    }
}

/// Writes general-purpose register `number` of the frame.
fn set_register(frame: &mut GuestFrame, number: u8, value: u64) {
    let slot = match number {
        0 => &mut frame.rax,
        1 => &mut frame.rcx,
        2 => &mut frame.rdx,
        3 => &mut frame.rbx,
        4 => &mut frame.rsp,
        5 => &mut frame.rbp,
        6 => &mut frame.rsi,
        7 => &mut frame.rdi,
        8 => &mut frame.r8,
        9 => &mut frame.r9,
        10 => &mut frame.r10,
        11 => &mut frame.r11,
        12 => &mut frame.r12,
        13 => &mut frame.r13,
        14 => &mut frame.r14,
        _ => &mut frame.r15,
    };
    *slot = value;
}

/// Emulates one decoded instruction; `Err` carries what the guest gets
/// instead.
fn execute(
    domain: &mut Domain,
    frame: &mut GuestFrame,
    instruction: &Instruction,
) -> Result<(), Outcome> {
    match instruction.operation {
        Operation::ReadControlRegister { control, register } => {
            let value = read_control_register(domain, control).ok_or(Outcome::Reflect)?;
            set_register(frame, register, value);
        }
        Operation::WriteControlRegister { control, register } => {
            write_control_register(domain, control, self::register(frame, register))?;
        }
        Operation::Clts => write_control_register(domain, 0, read_cr0_view(domain) & !CR0_TS)?,
        Operation::ReadDebugRegister { debug, register } => {
            let value = debug::get(&domain.vcpu, u64::from(debug)).map_err(|_| invalid_opcode())?;
            set_register(frame, register, value);
        }
        Operation::WriteDebugRegister { debug, register } => {
            let value = self::register(frame, register);
            debug::set(&mut domain.vcpu, u64::from(debug), value).map_err(|error| {
                guest_log!(
                    domain,
                    Debug,
                    "mov to %dr{debug} of {value:#x} refused: -{}",
                    error.name()
                );
                if error == XenError::ENODEV {
                    invalid_opcode()
                } else {
                    general_protection()
                }
            })?;
        }
        Operation::Rdmsr => {
            let msr = frame.rcx as u32;
            let value = read_msr_allowed(domain, msr).ok_or_else(|| {
                guest_log!(domain, Debug, "rdmsr {msr:#x}: not allowed: #GP");
                general_protection()
            })?;
            frame.rax = value & 0xffff_ffff;
            frame.rdx = value >> 32;
        }
        Operation::Wrmsr => {
            let msr = frame.rcx as u32;
            let value = (frame.rdx << 32) | (frame.rax & 0xffff_ffff);
            write_msr_allowed(domain, msr, value).inspect_err(|_| {
                guest_log!(
                    domain,
                    Debug,
                    "wrmsr {msr:#x} = {value:#x}: not allowed: #GP"
                );
            })?;
        }
        Operation::Rdtsc => {
            let now = rdtsc();
            frame.rax = now & 0xffff_ffff;
            frame.rdx = now >> 32;
        }
        Operation::Rdtscp => {
            if !has_rdtscp() {
                return Err(invalid_opcode());
            }
            let now = rdtsc();
            frame.rax = now & 0xffff_ffff;
            frame.rdx = now >> 32;
            frame.rcx = read_msr(MSR_TSC_AUX) & 0xffff_ffff;
        }
        Operation::Cpuid => emulate_cpuid(frame),
        // No domain has cache-flush rights (physical devices): ignored, as
        // Xen ignores it ("newer Linux uses this in start-of-day timing").
        Operation::Wbinvd => {}
        Operation::In { .. } | Operation::Out { .. } | Operation::Cli | Operation::Sti => {
            input_output(domain, frame, &instruction.operation)?;
        }
        other => {
            // hlt, invd, rdpmc, xsetbv, swapgs, ins/outs and the
            // descriptor-table instructions: never for a PV guest here.
            guest_log!(
                domain,
                Debug,
                "{other:?} at {:#x} is not emulated for this domain: #GP",
                frame.rip
            );
            return Err(Outcome::Reflect);
        }
    }
    Ok(())
}

/// CR0 as the guest sees it: the real value with the guest's virtual TS
/// (`fpu_taskswitch`; see `traps::fpu`).
fn read_cr0_view(domain: &Domain) -> u64 {
    let ts = if domain.vcpu.fpu_ts { CR0_TS } else { 0 };
    (read_cr0() & !CR0_TS) | ts
}

/// CR4 as the guest sees it (Xen's `pv_make_cr4` view).
fn read_cr4_view(domain: &Domain) -> u64 {
    (read_cr4() & CR4_VISIBLE) | (domain.vcpu.guest_cr4 & CR4_GUEST_CONTROLLED)
}

fn read_control_register(domain: &Domain, control: u8) -> Option<u64> {
    match control {
        0 => Some(read_cr0_view(domain)),
        2 => Some(domain.vcpu_info().cr2()),
        // Xen's xen_pfn_to_cr3: the frame number shifted into place (for a
        // PV guest, the machine frame of its current kernel L4).
        3 => Some(domain.kernel_root * PAGE_SIZE),
        4 => Some(read_cr4_view(domain)),
        _ => None,
    }
}

fn write_control_register(domain: &mut Domain, control: u8, value: u64) -> Result<(), Outcome> {
    match control {
        0 => {
            let current = read_cr0_view(domain);
            if (value ^ current) & !CR0_TS != 0 {
                guest_log!(
                    domain,
                    Debug,
                    "attempt to change unmodifiable CR0 flags ({current:#x} to {value:#x}): #GP"
                );
                return Err(Outcome::Reflect);
            }
            // Only TS may change: `fpu_taskswitch(1)` or `(0)` (`clts`).
            if value & CR0_TS != 0 {
                super::fpu::set_ts_for_guest(domain);
            } else {
                super::fpu::clear_ts_for_guest(domain);
            }
            Ok(())
        }
        2 => {
            domain.vcpu_info().set_cr2(value);
            Ok(())
        }
        3 => {
            // Xen's xen_cr3_to_pfn: everything above bit 12 is the frame
            // (so the no-flush bit 63 names no frame and is refused).
            let mfn = value / PAGE_SIZE;
            // An instruction cannot be continued: no work budget.
            let mut unlimited = crate::mm::frame_table::UNLIMITED_WORK;
            crate::mm::mmu_op::new_baseptr(domain, mfn, &mut unlimited)
                .map_err(|_| Outcome::Reflect)
        }
        4 => {
            domain.vcpu.guest_cr4 = value & CR4_GUEST_CONTROLLED;
            Ok(())
        }
        _ => Err(Outcome::Reflect),
    }
}

/// The MSRs a PV guest may read, and what it reads.
fn read_msr_allowed(domain: &Domain, msr: u32) -> Option<u64> {
    match msr {
        MSR_FS_BASE => Some(read_fs_base()),
        // While the hypervisor runs the guest's GS base waits in the
        // processor's shadow register, for `swapgs` on the way out.
        MSR_GS_BASE => Some(read_kernel_gs_base()),
        MSR_KERNEL_GS_BASE => Some(domain.vcpu.shadow_gs_base),
        MSR_TSC => Some(rdtsc()),
        MSR_EFER => Some(read_msr(MSR_EFER)),
        // Xen's hypervisor MSR reads as zero.
        HYPERCALL_PAGE_MSR => Some(0),
        _ => None,
    }
}

/// IA32_TIME_STAMP_COUNTER.
const MSR_TSC: u32 = 0x10;

/// The MSRs a PV guest may write.
fn write_msr_allowed(domain: &mut Domain, msr: u32, value: u64) -> Result<(), Outcome> {
    match msr {
        MSR_FS_BASE | MSR_GS_BASE | MSR_KERNEL_GS_BASE if !is_canonical(value) => {
            Err(general_protection())
        }
        MSR_FS_BASE => {
            write_fs_base(value);
            Ok(())
        }
        MSR_GS_BASE => {
            write_kernel_gs_base(value);
            Ok(())
        }
        MSR_KERNEL_GS_BASE => {
            domain.vcpu.shadow_gs_base = value;
            Ok(())
        }
        HYPERCALL_PAGE_MSR => {
            // Bits 63..12 name the frame, bits 11..0 the page index: one
            // page, index 0.
            if !value.is_multiple_of(PAGE_SIZE) {
                return Err(general_protection());
            }
            frame_table::fill_hypercall_page(value / PAGE_SIZE, domain.id).map_err(|refusal| {
                guest_log!(
                    domain,
                    Debug,
                    "hypercall page at frame {:#x} refused: {}",
                    value / PAGE_SIZE,
                    refusal.reason
                );
                general_protection()
            })
        }
        _ => Err(general_protection()),
    }
}
