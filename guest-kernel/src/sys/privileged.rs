//! Running privileged and sensitive instructions from the guest kernel,
//! catching the fault when the hypervisor reflects one.
//!
//! A PV kernel runs in ring 3. Some instructions it may still execute: the
//! hypervisor emulates them on the `#GP` they raise (`mov %cr3`, `rdmsr`
//! on a few MSRs, debug registers) or on Xen's forced-emulation prefix
//! (`ud2; .ascii "xen"; cpuid`). Others it refuses, and the guest gets the
//! fault back. And a few *sensitive* instructions do not fault at all in
//! ring 3 (`sgdt`, `sidt`, `sldt`, `str`, `smsw`, `popf`): they quietly
//! reveal or ignore privileged state. Each function here runs one such
//! instruction and says whether it completed or which exception came back,
//! so that tests and the `sensitive` workload can report it.
//!
//! How a fault is caught: every probe is an assembly routine that loads
//! its recovery address into r11 right before the instruction. While a
//! probe is armed, the trap handler (`traps::guest_trap`) turns a `#UD`,
//! `#GP` or `#PF` into a jump to r11 (the hypervisor's bounce frame gives
//! the handler the interrupted r11), records the fault, and the probe
//! returns 1 instead of 0.

use core::sync::atomic::{AtomicBool, Ordering};

/// An exception a probe caught.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caught {
    /// The vector: 6 (#UD), 13 (#GP) or 14 (#PF).
    pub vector: u8,
    /// Its error code (0 for #UD).
    pub error_code: u64,
    /// For a page fault, the address (from `vcpu_info.arch.cr2`).
    pub address: u64,
    /// Where it happened.
    pub rip: u64,
}

static ARMED: AtomicBool = AtomicBool::new(false);
static LAST: spin::Mutex<Option<Caught>> = spin::Mutex::new(None);

/// Called by the trap handler: if a probe is armed and this is a fault a
/// probe expects, record it and resume at the probe's recovery address.
pub(crate) fn recover(frame: &mut crate::traps::TrapFrame) -> bool {
    let vector = frame.vector as u8;
    if !matches!(vector, 6 | 13 | 14) || !ARMED.swap(false, Ordering::SeqCst) {
        return false;
    }
    let address = if vector == 14 {
        crate::traps::fault_address()
    } else {
        0
    };
    *LAST.lock() = Some(Caught {
        vector,
        error_code: frame.bounce.error_code,
        address,
        rip: frame.bounce.rip,
    });
    frame.bounce.rip = frame.bounce.r11;
    true
}

/// Runs `probe` armed: `Ok` with its result when the instruction
/// completed, `Err` with the exception otherwise.
fn armed<T>(probe: impl FnOnce() -> (u64, T)) -> Result<T, Caught> {
    *LAST.lock() = None;
    ARMED.store(true, Ordering::SeqCst);
    let (faulted, value) = probe();
    ARMED.store(false, Ordering::SeqCst);
    if faulted == 0 {
        return Ok(value);
    }
    Err(LAST.lock().take().unwrap_or(Caught {
        vector: 0,
        error_code: 0,
        address: 0,
        rip: 0,
    }))
}

core::arch::global_asm!(
    ".pushsection .text.privileged_probes, \"ax\"",
    // A probe that reads into rax and stores it at (%rdi).
    ".macro READ_PROBE name, instruction:vararg",
    ".global \\name",
    "\\name:",
    "    lea 1f(%rip), %r11",
    "    \\instruction",
    "    mov %rax, (%rdi)",
    "    xor %eax, %eax",
    "    ret",
    "1:  mov $1, %eax",
    "    ret",
    ".endm",
    // A probe that runs an instruction with its operand in rdi.
    ".macro WRITE_PROBE name, instruction:vararg",
    ".global \\name",
    "\\name:",
    "    lea 1f(%rip), %r11",
    "    \\instruction",
    "    xor %eax, %eax",
    "    ret",
    "1:  mov $1, %eax",
    "    ret",
    ".endm",
    "READ_PROBE probe_read_cr0, mov %cr0, %rax",
    "READ_PROBE probe_read_cr2, mov %cr2, %rax",
    "READ_PROBE probe_read_cr3, mov %cr3, %rax",
    "READ_PROBE probe_read_cr4, mov %cr4, %rax",
    "READ_PROBE probe_read_cr8, mov %cr8, %rax",
    "WRITE_PROBE probe_write_cr0, mov %rdi, %cr0",
    "WRITE_PROBE probe_write_cr3, mov %rdi, %cr3",
    "WRITE_PROBE probe_write_cr4, mov %rdi, %cr4",
    ".irp n, 0, 1, 2, 3, 4, 5, 6, 7",
    "READ_PROBE probe_read_dr\\n, mov %dr\\n, %rax",
    "WRITE_PROBE probe_write_dr\\n, mov %rdi, %dr\\n",
    ".endr",
    "WRITE_PROBE probe_wbinvd, wbinvd",
    "WRITE_PROBE probe_hlt, hlt",
    "WRITE_PROBE probe_cli, cli",
    "WRITE_PROBE probe_sti, sti",
    "WRITE_PROBE probe_clts, clts",
    // Port I/O: port in di, value in si.
    ".global probe_inb",
    "probe_inb:",
    "    mov %edi, %edx",
    "    xor %eax, %eax",
    "    lea 1f(%rip), %r11",
    "    inb %dx, %al",
    "    mov %al, (%rsi)",
    "    xor %eax, %eax",
    "    ret",
    "1:  mov $1, %eax",
    "    ret",
    ".global probe_outb",
    "probe_outb:",
    "    mov %edi, %edx",
    "    mov %esi, %eax",
    "    lea 1f(%rip), %r11",
    "    outb %al, %dx",
    "    xor %eax, %eax",
    "    ret",
    "1:  mov $1, %eax",
    "    ret",
    // rdmsr(msr = edi, out = rsi)
    ".global probe_rdmsr",
    "probe_rdmsr:",
    "    mov %edi, %ecx",
    "    lea 1f(%rip), %r11",
    "    rdmsr",
    "    shl $32, %rdx",
    "    mov %eax, %eax",
    "    or %rdx, %rax",
    "    mov %rax, (%rsi)",
    "    xor %eax, %eax",
    "    ret",
    "1:  mov $1, %eax",
    "    ret",
    // wrmsr(msr = edi, value = rsi)
    ".global probe_wrmsr",
    "probe_wrmsr:",
    "    mov %edi, %ecx",
    "    mov %rsi, %rax",
    "    mov %rsi, %rdx",
    "    shr $32, %rdx",
    "    lea 1f(%rip), %r11",
    "    wrmsr",
    "    xor %eax, %eax",
    "    ret",
    "1:  mov $1, %eax",
    "    ret",
    // rdtscp(out = rdi): the TSC; TSC_AUX is dropped.
    ".global probe_rdtscp",
    "probe_rdtscp:",
    "    lea 1f(%rip), %r11",
    "    rdtscp",
    "    shl $32, %rdx",
    "    mov %eax, %eax",
    "    or %rdx, %rax",
    "    mov %rax, (%rdi)",
    "    xor %eax, %eax",
    "    ret",
    "1:  mov $1, %eax",
    "    ret",
    // cpuid(leaf = edi, subleaf = esi, out = rdx), forced or plain.
    ".macro CPUID_PROBE name, forced",
    ".global \\name",
    "\\name:",
    "    push %rbx",
    "    mov %rdx, %r8",
    "    mov %edi, %eax",
    "    mov %esi, %ecx",
    "    lea 1f(%rip), %r11",
    "    .if \\forced",
    "    ud2",
    "    .ascii \"xen\"",
    "    .endif",
    "    cpuid",
    "    mov %eax, 0(%r8)",
    "    mov %ebx, 4(%r8)",
    "    mov %ecx, 8(%r8)",
    "    mov %edx, 12(%r8)",
    "    pop %rbx",
    "    xor %eax, %eax",
    "    ret",
    "1:  pop %rbx",
    "    mov $1, %eax",
    "    ret",
    ".endm",
    "CPUID_PROBE probe_forced_cpuid, 1",
    "CPUID_PROBE probe_plain_cpuid, 0",
    // The sensitive instructions that do not trap: store into (%rdi).
    "WRITE_PROBE probe_sgdt, sgdt (%rdi)",
    "WRITE_PROBE probe_sidt, sidt (%rdi)",
    "WRITE_PROBE probe_sldt, sldt (%rdi)",
    "WRITE_PROBE probe_str, str (%rdi)",
    "WRITE_PROBE probe_smsw, smsw (%rdi)",
    // popf with IF cleared; stores RFLAGS as it is afterwards.
    ".global probe_popf_clear_if",
    "probe_popf_clear_if:",
    "    lea 1f(%rip), %r11",
    "    pushfq",
    "    pop %rax",
    "    mov %rax, %rcx",
    "    and $~0x200, %rax",
    "    push %rax",
    "    popfq",
    "    pushfq",
    "    pop %rax",
    "    mov %rax, (%rdi)",
    "    push %rcx",
    "    popfq",
    "    xor %eax, %eax",
    "    ret",
    "1:  mov $1, %eax",
    "    ret",
    // Calls raw code at rdi (which must end in `ret` and not touch r11 or
    // the stack): for instructions placed at chosen addresses.
    ".global probe_call",
    "probe_call:",
    "    lea 1f(%rip), %r11",
    "    call *%rdi",
    "    xor %eax, %eax",
    "    ret",
    "1:  add $8, %rsp", // the return address the call pushed
    "    mov $1, %eax",
    "    ret",
    // The `iret` hypercall in guest-kernel mode (CS 0xe030 shows RPL 0,
    // SS 0xe02b), building the `iret_context` (rax, r11, rcx, flags, rip,
    // cs, rflags, rsp, ss, lowest first) as the hypercall page's stub
    // would. rbx keeps this probe's own stack.
    //
    // probe_iret_to(rip): to `rip` on this stack, with r11 the recovery
    // address: a fault at `rip` is caught.
    ".global probe_iret_to",
    "probe_iret_to:",
    "    push %rbx",
    "    mov %rsp, %rbx",
    "    lea 1f(%rip), %r11",
    "    push $0xe02b",
    "    push %rbx",
    "    pushfq",
    "    push $0xe030",
    "    push %rdi",
    "    push $0",
    "    push $0",
    "    push %r11",
    "    push $0",
    "    mov $23, %eax",
    "    syscall",
    "    ud2",
    "1:  mov %rbx, %rsp",
    "    pop %rbx",
    "    mov $1, %eax",
    "    ret",
    // probe_iret_with_stack(rsp, out): to the next instruction with stack
    // `rsp`, which it stores at (out) before taking its own stack back.
    ".global probe_iret_with_stack",
    "probe_iret_with_stack:",
    "    push %rbx",
    "    push %rsi",
    "    mov %rsp, %rbx",
    "    lea 1f(%rip), %r11",
    "    push $0xe02b",
    "    push %rdi",
    "    pushfq",
    "    push $0xe030",
    "    lea 2f(%rip), %rax",
    "    push %rax",
    "    push $0",
    "    push $0",
    "    push %r11",
    "    push $0",
    "    mov $23, %eax",
    "    syscall",
    "    ud2",
    "2:  mov %rsp, %rax",
    "    mov %rbx, %rsp",
    "    pop %rsi",
    "    mov %rax, (%rsi)",
    "    pop %rbx",
    "    xor %eax, %eax",
    "    ret",
    "1:  mov %rbx, %rsp",
    "    pop %rsi",
    "    pop %rbx",
    "    mov $1, %eax",
    "    ret",
    ".popsection",
    options(att_syntax),
);

extern "C" {
    fn probe_read_cr0(out: *mut u64) -> u64;
    fn probe_read_cr2(out: *mut u64) -> u64;
    fn probe_read_cr3(out: *mut u64) -> u64;
    fn probe_read_cr4(out: *mut u64) -> u64;
    fn probe_read_cr8(out: *mut u64) -> u64;
    fn probe_write_cr0(value: u64) -> u64;
    fn probe_write_cr3(value: u64) -> u64;
    fn probe_write_cr4(value: u64) -> u64;
    fn probe_read_dr0(out: *mut u64) -> u64;
    fn probe_read_dr1(out: *mut u64) -> u64;
    fn probe_read_dr2(out: *mut u64) -> u64;
    fn probe_read_dr3(out: *mut u64) -> u64;
    fn probe_read_dr4(out: *mut u64) -> u64;
    fn probe_read_dr5(out: *mut u64) -> u64;
    fn probe_read_dr6(out: *mut u64) -> u64;
    fn probe_read_dr7(out: *mut u64) -> u64;
    fn probe_write_dr0(value: u64) -> u64;
    fn probe_write_dr1(value: u64) -> u64;
    fn probe_write_dr2(value: u64) -> u64;
    fn probe_write_dr3(value: u64) -> u64;
    fn probe_write_dr4(value: u64) -> u64;
    fn probe_write_dr5(value: u64) -> u64;
    fn probe_write_dr6(value: u64) -> u64;
    fn probe_write_dr7(value: u64) -> u64;
    fn probe_wbinvd() -> u64;
    fn probe_hlt() -> u64;
    fn probe_cli() -> u64;
    fn probe_sti() -> u64;
    fn probe_clts() -> u64;
    fn probe_inb(port: u64, out: *mut u8) -> u64;
    fn probe_outb(port: u64, value: u64) -> u64;
    fn probe_rdmsr(msr: u64, out: *mut u64) -> u64;
    fn probe_wrmsr(msr: u64, value: u64) -> u64;
    fn probe_rdtscp(out: *mut u64) -> u64;
    fn probe_forced_cpuid(leaf: u64, subleaf: u64, out: *mut [u32; 4]) -> u64;
    fn probe_plain_cpuid(leaf: u64, subleaf: u64, out: *mut [u32; 4]) -> u64;
    fn probe_sgdt(out: *mut [u8; 10]) -> u64;
    fn probe_sidt(out: *mut [u8; 10]) -> u64;
    fn probe_sldt(out: *mut u16) -> u64;
    fn probe_str(out: *mut u16) -> u64;
    fn probe_smsw(out: *mut u16) -> u64;
    fn probe_popf_clear_if(out: *mut u64) -> u64;
    fn probe_call(code: u64) -> u64;
    fn probe_iret_to(rip: u64) -> u64;
    fn probe_iret_with_stack(rsp: u64, out: *mut u64) -> u64;
}

/// What `cpuid` returned: eax, ebx, ecx, edx.
pub type CpuidResult = [u32; 4];

/// Runs a probe that only reads into a u64.
fn read_u64(probe: unsafe extern "C" fn(*mut u64) -> u64) -> Result<u64, Caught> {
    armed(|| {
        let mut value = 0u64;
        // SAFETY: the probe stores 8 bytes at the pointer, a local, and
        // touches nothing else; a fault is caught and recovered from.
        let faulted = unsafe { probe(&mut value) };
        (faulted, value)
    })
}

/// Runs a probe that takes a value and returns nothing.
fn write_u64(probe: unsafe extern "C" fn(u64) -> u64, value: u64) -> Result<(), Caught> {
    armed(|| {
        // SAFETY: the probe runs one instruction with `value`; whether the
        // hypervisor emulates it or refuses it is what is being tested, and
        // a refusal is caught.
        (unsafe { probe(value) }, ())
    })
}

/// `mov %crN, %rax` for N in 0, 2, 3, 4, 8.
pub fn read_cr(number: u8) -> Result<u64, Caught> {
    let probe = match number {
        0 => probe_read_cr0,
        2 => probe_read_cr2,
        3 => probe_read_cr3,
        4 => probe_read_cr4,
        _ => probe_read_cr8,
    };
    read_u64(probe)
}

/// `mov %rdi, %crN` for N in 0, 3, 4.
///
/// # Safety
/// The hypervisor may accept the write: a new CR3 must map this kernel as
/// the current one does.
pub unsafe fn write_cr(number: u8, value: u64) -> Result<(), Caught> {
    let probe = match number {
        0 => probe_write_cr0,
        3 => probe_write_cr3,
        _ => probe_write_cr4,
    };
    write_u64(probe, value)
}

/// `mov %drN, %rax` for N in 0..=7.
pub fn read_dr(number: u8) -> Result<u64, Caught> {
    let probes = [
        probe_read_dr0,
        probe_read_dr1,
        probe_read_dr2,
        probe_read_dr3,
        probe_read_dr4,
        probe_read_dr5,
        probe_read_dr6,
        probe_read_dr7,
    ];
    read_u64(probes[usize::from(number & 7)])
}

/// `mov %rdi, %drN` for N in 0..=7.
pub fn write_dr(number: u8, value: u64) -> Result<(), Caught> {
    let probes = [
        probe_write_dr0,
        probe_write_dr1,
        probe_write_dr2,
        probe_write_dr3,
        probe_write_dr4,
        probe_write_dr5,
        probe_write_dr6,
        probe_write_dr7,
    ];
    write_u64(probes[usize::from(number & 7)], value)
}

/// A probe that takes no operand.
fn plain(probe: unsafe extern "C" fn() -> u64) -> Result<(), Caught> {
    // SAFETY: one instruction that the hypervisor emulates or refuses.
    armed(|| (unsafe { probe() }, ()))
}

/// `wbinvd`.
pub fn wbinvd() -> Result<(), Caught> {
    plain(probe_wbinvd)
}

/// `hlt`.
pub fn hlt() -> Result<(), Caught> {
    plain(probe_hlt)
}

/// `cli`.
pub fn cli() -> Result<(), Caught> {
    plain(probe_cli)
}

/// `sti`.
pub fn sti() -> Result<(), Caught> {
    plain(probe_sti)
}

/// `clts`.
pub fn clts() -> Result<(), Caught> {
    plain(probe_clts)
}

/// `inb %dx, %al`: the byte read.
pub fn inb(port: u16) -> Result<u8, Caught> {
    armed(|| {
        let mut value = 0u8;
        // SAFETY: reads a port, which the hypervisor emulates or refuses
        // (the test is which), and stores the byte into a local.
        let faulted = unsafe { probe_inb(u64::from(port), &mut value) };
        (faulted, value)
    })
}

/// `outb %al, %dx`.
pub fn outb(port: u16, value: u8) -> Result<(), Caught> {
    // SAFETY: writes a port, which the hypervisor emulates or refuses.
    armed(|| (unsafe { probe_outb(u64::from(port), u64::from(value)) }, ()))
}

/// `rdmsr`.
pub fn rdmsr(msr: u32) -> Result<u64, Caught> {
    armed(|| {
        let mut value = 0u64;
        // SAFETY: stores 8 bytes into a local.
        let faulted = unsafe { probe_rdmsr(u64::from(msr), &mut value) };
        (faulted, value)
    })
}

/// `wrmsr`.
///
/// # Safety
/// The hypervisor may accept the write (FS or GS base, the hypercall page
/// MSR): the caller must be ready for its effect.
pub unsafe fn wrmsr(msr: u32, value: u64) -> Result<(), Caught> {
    // SAFETY: the caller accepts the write's effect.
    armed(|| (unsafe { probe_wrmsr(u64::from(msr), value) }, ()))
}

/// `rdtscp` (the TSC it read).
pub fn rdtscp() -> Result<u64, Caught> {
    read_u64(probe_rdtscp)
}

/// `cpuid` with Xen's forced-emulation prefix: the hypervisor's policy.
pub fn forced_cpuid(leaf: u32, subleaf: u32) -> Result<CpuidResult, Caught> {
    armed(|| {
        let mut result = [0u32; 4];
        // SAFETY: stores 16 bytes into a local.
        let faulted =
            unsafe { probe_forced_cpuid(u64::from(leaf), u64::from(subleaf), &mut result) };
        (faulted, result)
    })
}

/// A plain `cpuid`: the hardware's answer (it does not trap here).
pub fn plain_cpuid(leaf: u32, subleaf: u32) -> Result<CpuidResult, Caught> {
    armed(|| {
        let mut result = [0u32; 4];
        // SAFETY: stores 16 bytes into a local.
        let faulted =
            unsafe { probe_plain_cpuid(u64::from(leaf), u64::from(subleaf), &mut result) };
        (faulted, result)
    })
}

/// A descriptor-table register as `sgdt`/`sidt` store it: limit, base.
fn table_register(probe: unsafe extern "C" fn(*mut [u8; 10]) -> u64) -> Result<(u16, u64), Caught> {
    armed(|| {
        let mut bytes = [0u8; 10];
        // SAFETY: stores 10 bytes into a local.
        let faulted = unsafe { probe(&mut bytes) };
        let limit = u16::from_le_bytes([bytes[0], bytes[1]]);
        let mut base = [0u8; 8];
        base.copy_from_slice(&bytes[2..10]);
        (faulted, (limit, u64::from_le_bytes(base)))
    })
}

/// `sgdt`: (limit, base) of the GDT the processor really uses.
pub fn sgdt() -> Result<(u16, u64), Caught> {
    table_register(probe_sgdt)
}

/// `sidt`: (limit, base) of the real IDT.
pub fn sidt() -> Result<(u16, u64), Caught> {
    table_register(probe_sidt)
}

/// A selector or word stored by `sldt`, `str`, `smsw`.
fn word(probe: unsafe extern "C" fn(*mut u16) -> u64) -> Result<u16, Caught> {
    armed(|| {
        let mut value = 0u16;
        // SAFETY: stores 2 bytes into a local.
        let faulted = unsafe { probe(&mut value) };
        (faulted, value)
    })
}

/// `sldt`: the real LDT selector.
pub fn sldt() -> Result<u16, Caught> {
    word(probe_sldt)
}

/// `str`: the real task register.
pub fn str() -> Result<u16, Caught> {
    word(probe_str)
}

/// `smsw`: the low 16 bits of the real CR0.
pub fn smsw() -> Result<u16, Caught> {
    word(probe_smsw)
}

/// `popf` with IF cleared: RFLAGS as it is right after (IF unchanged, in
/// ring 3 with IOPL 0, and no fault to say so).
pub fn popf_clear_interrupts() -> Result<u64, Caught> {
    read_u64(probe_popf_clear_if)
}

/// Calls raw instructions at `code`, which must end with `ret` and leave
/// r11 and the stack alone; a fault in them is caught.
///
/// # Safety
/// `code` must be mapped executable and hold such a sequence (or fault
/// before doing anything else).
pub unsafe fn call(code: u64) -> Result<(), Caught> {
    // SAFETY: the caller vouches for the code.
    armed(|| (unsafe { probe_call(code) }, ()))
}

/// The `iret` hypercall back into guest-kernel mode at `rip`, on the
/// current stack. It never returns normally: `Err` with the fault taken at
/// `rip` (for a non-canonical `rip`, the `#GP(0)` that Xen delivers in
/// place of its own `iretq`'s fault).
pub fn iret_to(rip: u64) -> Result<(), Caught> {
    // SAFETY: the probe builds a well-formed kernel-mode iret frame on its
    // own stack and recovers through r11 from whatever `rip` raises.
    armed(|| (unsafe { probe_iret_to(rip) }, ()))
}

/// The `iret` hypercall back into guest-kernel mode at the next
/// instruction, with `rsp` as the stack pointer: `Ok` with the stack
/// pointer the guest then had (the probe touches no memory through it).
pub fn iret_with_stack(rsp: u64) -> Result<u64, Caught> {
    armed(|| {
        let mut value = 0u64;
        // SAFETY: the probe only reads its RSP after the iret, takes its
        // own stack back from rbx, and stores 8 bytes at the local.
        let faulted = unsafe { probe_iret_with_stack(rsp, &mut value) };
        (faulted, value)
    })
}

/// The data segment selectors DS, ES, FS and GS as this vCPU has them.
pub fn data_selectors() -> [u16; 4] {
    let (ds, es, fs, gs): (u16, u16, u16, u16);
    // SAFETY: reading segment registers has no side effect, in any ring.
    unsafe {
        core::arch::asm!(
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

/// Loads ES with the flat ring-3 data selector of Xen's reserved GDT
/// entries (`FLAT_RING3_DS64`'s 32-bit twin, 0xe02b), which any PV guest
/// may load. ES is not used for addressing in 64-bit mode.
pub fn load_es_with_flat_data_selector() {
    // SAFETY: 0xe02b names a present DPL-3 data descriptor in every
    // guest's GDT (the hypervisor's reserved entries); loading it has no
    // effect on addressing in 64-bit mode.
    unsafe {
        core::arch::asm!(
            "mov es, {selector:x}",
            selector = in(reg) 0xe02bu16,
            options(nomem, nostack, preserves_flags),
        );
    }
}
