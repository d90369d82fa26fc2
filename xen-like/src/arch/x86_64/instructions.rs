//! Thin wrappers around single privileged instructions and MSRs.
//!
//! Where the `x86_64` crate has the instruction (MSRs, control registers,
//! port I/O, `invlpg`, `hlt`, interrupt flag), the wrapper calls it; the
//! rest is hand-written `asm!`, each for a reason given beside it: the
//! debug registers are loaded six at once, the segment-selector loads must
//! keep the per-CPU GS base, and `fxsave64`/`fxrstor64` take a buffer the
//! crate does not model. The wrappers keep the hypervisor's own names and
//! raw `u64` values, so that the callers (which handle guest-supplied
//! numbers) never meet the crate's panicking constructors.

use crate::traps::debug_registers::{DebugRegisters, DR6_ALWAYS_ONE, DR7_ALWAYS_ONE};
use crate::traps::io_ports::{port_access, PortAccess};
use core::arch::asm;
use x86_64::instructions::{interrupts, port::Port, tlb};
use x86_64::registers::control::{Cr0, Cr2, Cr3, Cr4};
use x86_64::registers::model_specific::Msr;
use x86_64::structures::paging::PhysFrame;
use x86_64::{PhysAddr, VirtAddr};

/// IA32_EFER.
pub const MSR_EFER: u32 = 0xC000_0080;
/// Target selectors of `syscall`/`sysret`.
pub const MSR_STAR: u32 = 0xC000_0081;
/// `syscall` entry point from 64-bit mode.
pub const MSR_LSTAR: u32 = 0xC000_0082;
/// `syscall` entry point from compatibility mode.
pub const MSR_CSTAR: u32 = 0xC000_0083;
/// RFLAGS bits that `syscall` clears.
pub const MSR_SFMASK: u32 = 0xC000_0084;
/// GS base.
pub const MSR_GS_BASE: u32 = 0xC000_0101;
/// The GS base `swapgs` exchanges with.
pub const MSR_KERNEL_GS_BASE: u32 = 0xC000_0102;

/// Reads a model-specific register.
pub fn read_msr(msr: u32) -> u64 {
    // SAFETY: the MSRs this module names exist on every x86_64 CPU; reading
    // one has no side effect on memory.
    unsafe { Msr::new(msr).read() }
}

/// Writes a model-specific register.
///
/// # Safety
/// The caller chooses an MSR and value that keep the CPU in a state the
/// hypervisor expects (entry points, selectors, bases).
pub unsafe fn write_msr(msr: u32, value: u64) {
    // SAFETY: the caller upholds the contract above.
    unsafe { Msr::new(msr).write(value) }
}

/// Sets the hypervisor's GS base.
pub fn write_gs_base(value: u64) {
    // SAFETY: only the per-CPU code calls this, with the address of a PerCpu.
    unsafe { write_msr(MSR_GS_BASE, value) }
}

/// Sets the GS base that the next `swapgs` brings in (the guest's).
pub fn write_kernel_gs_base(value: u64) {
    // SAFETY: the inactive GS base does not affect the hypervisor until the
    // exit path swaps it in, and then it is the guest's to use.
    unsafe { write_msr(MSR_KERNEL_GS_BASE, value) }
}

/// Reads the time-stamp counter.
#[inline(always)]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads the counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Reads CR2, the address of the last page fault.
pub fn read_cr2() -> u64 {
    Cr2::read_raw()
}

/// Reads CR3, the current page-table root.
pub fn read_cr3() -> u64 {
    let (frame, flags) = Cr3::read_raw();
    frame.start_address().as_u64() | u64::from(flags)
}

/// Loads a new page-table root (which also flushes non-global TLB entries).
///
/// # Safety
/// `root` must be the physical address of a PML4 that maps the hypervisor
/// (its code, stack and data) exactly as the current one does.
pub unsafe fn write_cr3(root: u64) {
    // The root is one of the hypervisor's own frames, so its address fits
    // in 52 bits and PhysAddr cannot refuse it.
    let frame = PhysFrame::containing_address(PhysAddr::new(root));
    // SAFETY: the caller upholds the contract above.
    unsafe { Cr3::write_raw(frame, (root & 0xfff) as u16) };
}

/// Stops this CPU for good.
pub fn halt_forever() -> ! {
    interrupts::disable();
    loop {
        // With interrupts off, hlt only wakes for an NMI; we loop back.
        x86_64::instructions::hlt();
    }
}

/// The CPUID leaf `leaf`, sub-leaf 0: (eax, ebx, ecx, edx).
pub fn cpuid(leaf: u32) -> (u32, u32, u32, u32) {
    let result = core::arch::x86_64::__cpuid_count(leaf, 0);
    (result.eax, result.ebx, result.ecx, result.edx)
}

/// Writes a byte to an I/O port.
///
/// # Safety
/// The port and value must be ones the hypervisor's own drivers own.
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller upholds the contract above.
    unsafe { Port::<u8>::new(port).write(value) };
}

/// Writes a 16-bit word to an I/O port.
///
/// # Safety
/// The port and value must be ones the hypervisor's own drivers own.
pub unsafe fn outw(port: u16, value: u16) {
    // SAFETY: the caller upholds the contract above.
    unsafe { Port::<u16>::new(port).write(value) };
}

/// Writes a 32-bit word to an I/O port.
///
/// # Safety
/// The port and value must be ones the hypervisor's own drivers own.
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: the caller upholds the contract above.
    unsafe { Port::<u32>::new(port).write(value) };
}

/// Reads a byte from an I/O port.
///
/// # Safety
/// The port must be one the hypervisor's own drivers own (reads can have
/// side effects on devices).
pub unsafe fn inb(port: u16) -> u8 {
    // SAFETY: the caller upholds the contract above.
    unsafe { Port::<u8>::new(port).read() }
}

/// Reads `size` bytes (1, 2 or 4) from `port` for a guest, if the I/O
/// policy (`traps::io_ports::port_access`) sends a control domain's access
/// there; `None` otherwise. The policy is asked again here, at the unsafe
/// boundary, so that no caller can reach a port the hypervisor owns.
pub fn guest_port_read(port: u16, size: u8) -> Option<u32> {
    if port_access(true, port, size) != PortAccess::Direct {
        return None;
    }
    // SAFETY: the port is one the hypervisor does not drive itself (the
    // check above), so reading it disturbs none of its devices; what it
    // does to a device is the control domain's business, as in Xen.
    Some(unsafe {
        match size {
            1 => u32::from(Port::<u8>::new(port).read()),
            2 => u32::from(Port::<u16>::new(port).read()),
            _ => Port::<u32>::new(port).read(),
        }
    })
}

/// Writes the low `size` bytes of `value` to `port` for a guest, under the
/// same check as [`guest_port_read`]; returns whether it was written.
pub fn guest_port_write(port: u16, size: u8, value: u32) -> bool {
    if port_access(true, port, size) != PortAccess::Direct {
        return false;
    }
    // SAFETY: as in `guest_port_read`.
    unsafe {
        match size {
            1 => Port::<u8>::new(port).write(value as u8),
            2 => Port::<u16>::new(port).write(value as u16),
            _ => Port::<u32>::new(port).write(value),
        }
    }
    true
}

/// Invalidates the TLB entry of one virtual address.
/// A non-canonical address can have no TLB entry: there is nothing to drop.
pub fn invlpg(address: u64) {
    if let Ok(address) = VirtAddr::try_new(address) {
        tlb::flush(address);
    }
}

/// FS base.
pub const MSR_FS_BASE: u32 = 0xC000_0100;

/// Reads the FS base.
pub fn read_fs_base() -> u64 {
    read_msr(MSR_FS_BASE)
}

/// Reads the GS base that `swapgs` will bring back (the guest's, while the
/// hypervisor runs).
pub fn read_kernel_gs_base() -> u64 {
    read_msr(MSR_KERNEL_GS_BASE)
}

/// Sets the FS base (a guest's, on a context switch).
pub fn write_fs_base(value: u64) {
    // SAFETY: the hypervisor does not use FS; the base is the guest's.
    unsafe { write_msr(MSR_FS_BASE, value) }
}

/// The x87/SSE state as `fxsave` stores it: 512 bytes, 16-byte aligned.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct FpuState(pub [u8; 512]);

impl FpuState {
    /// The state after reset (`fninit`, MXCSR 0x1f80): all exceptions
    /// masked, empty register stack.
    pub fn initial() -> Self {
        let mut state = [0u8; 512];
        state[0..2].copy_from_slice(&0x037fu16.to_le_bytes()); // FCW
        state[24..28].copy_from_slice(&0x1f80u32.to_le_bytes()); // MXCSR
        Self(state)
    }
}

/// Saves the x87/SSE state.
pub fn fxsave(state: &mut FpuState) {
    // SAFETY: the area is 512 bytes and 16-byte aligned, as fxsave needs.
    unsafe {
        asm!("fxsave64 [{}]", in(reg) state.0.as_mut_ptr(), options(nostack, preserves_flags))
    };
}

/// Loads the x87/SSE state.
pub fn fxrstor(state: &FpuState) {
    // SAFETY: the area holds an image produced by fxsave or by
    // FpuState::initial (valid MXCSR, reserved bits clear), so fxrstor
    // cannot fault.
    unsafe { asm!("fxrstor64 [{}]", in(reg) state.0.as_ptr(), options(nostack, preserves_flags)) };
}

/// Stops the CPU until the next interrupt, with interrupts enabled just for
/// the wait (the hypervisor otherwise runs with interrupts off).
pub fn wait_for_interrupt() {
    // `sti; hlt` cannot miss a wake-up: the interrupt shadow of sti covers
    // the hlt. The handler runs on this stack and returns here; `cli`
    // restores the hypervisor's interrupts-off state.
    interrupts::enable_and_hlt();
    interrupts::disable();
}

/// The CPUID leaf `leaf`, sub-leaf `subleaf`: (eax, ebx, ecx, edx).
pub fn cpuid_count(leaf: u32, subleaf: u32) -> (u32, u32, u32, u32) {
    let result = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    (result.eax, result.ebx, result.ecx, result.edx)
}

/// Reads CR0.
pub fn read_cr0() -> u64 {
    Cr0::read_raw()
}

/// Reads CR4.
pub fn read_cr4() -> u64 {
    Cr4::read_raw()
}

/// IA32_TSC_AUX, which `rdtscp` returns in ecx.
pub const MSR_TSC_AUX: u32 = 0xC000_0103;

/// Whether the CPU has `rdtscp` (CPUID 0x80000001 EDX bit 27).
pub fn has_rdtscp() -> bool {
    let (max_extended, _, _, _) = cpuid(0x8000_0000);
    max_extended >= 0x8000_0001 && cpuid(0x8000_0001).3 & (1 << 27) != 0
}

/// Loads a vCPU's debug registers into the processor.
pub fn load_debug_registers(registers: &DebugRegisters) {
    let [dr0, dr1, dr2, dr3] = registers.addresses();
    // SAFETY: every value went through `DebugRegisters::set` (its fields
    // are private): DR0..DR3 are guest addresses, outside the hypervisor's
    // range, so no breakpoint can fire on the hypervisor's own code or
    // data; DR6 and DR7 have their reserved bits at their fixed values and
    // DR7.GD clear, so later accesses to the registers do not fault.
    unsafe {
        asm!(
            "mov dr0, {0}",
            "mov dr1, {1}",
            "mov dr2, {2}",
            "mov dr3, {3}",
            "mov dr6, {4}",
            "mov dr7, {5}",
            in(reg) dr0, in(reg) dr1, in(reg) dr2, in(reg) dr3,
            in(reg) registers.status(), in(reg) registers.control(),
            options(nostack, nomem, preserves_flags),
        )
    };
}

/// Turns every hardware breakpoint off (DR7 at its reset value).
pub fn disable_breakpoints() {
    // SAFETY: DR7 with no breakpoint enabled and its reserved bits at
    // their fixed values stops all breakpoints and nothing else.
    unsafe {
        asm!("mov dr7, {}", in(reg) DR7_ALWAYS_ONE, options(nostack, nomem, preserves_flags))
    };
}

/// Reads DR6 after a `#DB` and puts it back to its reset value (its status
/// bits are sticky: the processor never clears them itself).
pub fn take_debug_status() -> u64 {
    let status: u64;
    // SAFETY: reading DR6 has no side effect; writing its reset value
    // (reserved bits at their fixed values) only clears the status bits.
    unsafe {
        asm!("mov {}, dr6", out(reg) status, options(nostack, nomem, preserves_flags));
        asm!("mov dr6, {}", in(reg) DR6_ALWAYS_ONE, options(nostack, nomem, preserves_flags));
    }
    status
}

/// Loads `selector` into GS for the guest (`SEGBASE_GS_USER_SEL`) and puts
/// the hypervisor's per-CPU GS base back at once: in 64-bit mode loading GS
/// also loads the descriptor's base into the GS base, where the hypervisor
/// keeps its per-CPU pointer. Nothing between the two instructions reads GS.
///
/// # Safety
/// Interrupts must be off, and `selector` must be null or name, in the
/// loaded GDT, a descriptor that ring 0 can load with it without a fault
/// (present, data or readable code, DPL 3 with an RPL-3 selector): a fault
/// here would be the hypervisor's, with a guest's GS base loaded.
pub unsafe fn load_gs_selector_keeping_base(selector: u16) {
    let base = read_msr(MSR_GS_BASE);
    // SAFETY: the caller vouches for the selector; the wrmsr restores the
    // per-CPU base before any code that uses GS runs.
    unsafe {
        asm!(
            "mov gs, {selector:x}",
            "wrmsr",
            selector = in(reg) selector,
            in("ecx") MSR_GS_BASE,
            in("eax") base as u32,
            in("edx") (base >> 32) as u32,
            options(nostack, preserves_flags),
        );
    }
}

/// The data segment selectors DS, ES, FS and GS, in that order.
pub fn read_data_selectors() -> [u16; 4] {
    let (ds, es, fs, gs): (u16, u16, u16, u16);
    // SAFETY: reading segment registers has no side effect.
    unsafe {
        asm!(
            "mov {ds:x}, ds",
            "mov {es:x}, es",
            "mov {fs:x}, fs",
            "mov {gs:x}, gs",
            ds = out(reg) ds,
            es = out(reg) es,
            fs = out(reg) fs,
            gs = out(reg) gs,
            options(nomem, nostack, preserves_flags),
        );
    }
    [ds, es, fs, gs]
}

/// Loads DS, ES and FS with a guest's selectors. Loading FS also loads
/// the descriptor's base into the FS base: the caller writes the guest's
/// FS base afterwards.
///
/// # Safety
/// Interrupts must be off, and each selector must be null or name, in the
/// loaded GDT, a descriptor ring 0 can load with it without a fault
/// (present, data or readable code, DPL 3 with an RPL-3 selector).
pub unsafe fn load_data_selectors(ds: u16, es: u16, fs: u16) {
    // SAFETY: the caller vouches for the selectors; DS and ES are not used
    // for addressing in 64-bit mode, and nothing reads FS in the hypervisor.
    unsafe {
        asm!(
            "mov ds, {ds:x}",
            "mov es, {es:x}",
            "mov fs, {fs:x}",
            ds = in(reg) ds,
            es = in(reg) es,
            fs = in(reg) fs,
            options(nostack, preserves_flags),
        );
    }
}
