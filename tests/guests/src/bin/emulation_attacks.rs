//! emulation-attacks: a guest that executes privileged instructions in
//! ring 3 and checks that the hypervisor's trap-and-emulate path does what
//! Xen's does, booted as the initial domain by the
//! `privileged_instructions_are_emulated_or_refused` scenario.
//!
//! It checks what must be emulated (the forced-emulation CPUID with the PV
//! policy, `%cr0`/`%cr3`/`%cr4` reads, the same CR3 written back, debug
//! registers within the rules, the allowed MSRs, `wbinvd`, the hypercall
//! page MSR) and what must be refused with the fault a native kernel would
//! see: CR3 naming a frame that is not a validated L4 of this domain, debug
//! registers aimed at the hypervisor, MSRs outside the allow-list, port I/O
//! without I/O privilege; with it (`PHYSDEVOP_set_iopl`), a free port and
//! the mediated CMOS reached but the hypervisor's own ports (COM1, PIC,
//! PIT, ELCR, PCI configuration, debug exit) never, instructions running
//! into an unmapped page (a
//! page fault at the first missing byte), the forced-emulation prefix at a
//! page end or followed by anything but `cpuid` (#UD).
#![no_std]
#![no_main]

use guest_kernel::abi::hypercall::Hypercall;
use guest_kernel::abi::{wrappers, StartInfo};
use guest_kernel::paging::{self, PAGE_SIZE, USER, WRITABLE};
use guest_kernel::println;
use guest_kernel::privileged::{self, Caught};
use test_guests::{check, expect_result, finish};

const EPERM: i64 = -1;
const ENODEV: i64 = -19;

const INVALID_OPCODE: u8 = 6;
const GENERAL_PROTECTION: u8 = 13;
const PAGE_FAULT: u8 = 14;

/// The hypervisor image (Xen's XEN_VIRT_START) and the direct map.
const HYPERVISOR_IMAGE: u64 = 0xffff_82d0_4000_0000;
const DIRECT_MAP: u64 = 0xffff_8300_0010_0000;

/// An executable, writable page for instruction bytes, followed by a page
/// that is never mapped.
const CODE_PAGE: u64 = 0xffff_d200_0000_0000;
const HOLE: u64 = CODE_PAGE + PAGE_SIZE;
/// A writable data page.
const DATA_PAGE: u64 = 0xffff_d200_0002_0000;
/// A page for the hypercall-page MSR.
const STUB_PAGE: u64 = 0xffff_d200_0001_0000;

fn faulted_with<T: core::fmt::Debug>(result: &Result<T, Caught>, vector: u8) -> bool {
    matches!(result, Err(caught) if caught.vector == vector)
}

/// Checks that `result` is the exception `vector` (error code 0).
fn expect_fault<T: core::fmt::Debug>(name: &str, result: Result<T, Caught>, vector: u8) {
    check(
        name,
        faulted_with(&result, vector) && result.as_ref().err().is_some_and(|c| c.error_code == 0),
        format_args!("{result:x?}"),
    );
}

fn cpuid_policy() {
    let signature = privileged::forced_cpuid(0x4000_0000, 0);
    let text = signature.map(|[_, b, c, d]| {
        let mut text = [0u8; 12];
        text[0..4].copy_from_slice(&b.to_le_bytes());
        text[4..8].copy_from_slice(&c.to_le_bytes());
        text[8..12].copy_from_slice(&d.to_le_bytes());
        text
    });
    check(
        "forced cpuid 0x40000000: Xen's signature, leaves up to 0x40000002",
        text == Ok(*b"XenVMMXenVMM") && signature.map(|leaf| leaf[0]) == Ok(0x4000_0002),
        format_args!("{signature:x?}"),
    );
    let version = privileged::forced_cpuid(0x4000_0001, 0);
    check(
        "forced cpuid 0x40000001: version 4.17",
        version.map(|leaf| leaf[0]) == Ok(0x0004_0011),
        format_args!("{version:x?}"),
    );
    let page = privileged::forced_cpuid(0x4000_0002, 0);
    check(
        "forced cpuid 0x40000002: one hypercall page, MSR 0x40000000",
        page.map(|leaf| (leaf[0], leaf[1])) == Ok((1, 0x4000_0000)),
        format_args!("{page:x?}"),
    );
    let basic = privileged::forced_cpuid(0, 0);
    check(
        "forced cpuid 0: the maximum basic leaf is clamped to 0xd",
        basic.is_ok_and(|leaf| leaf[0] <= 0xd),
        format_args!("{basic:x?}"),
    );
    let features = privileged::forced_cpuid(1, 0);
    check(
        "forced cpuid 1: no VMX, no MONITOR, no XSAVE; the hypervisor bit set",
        features.is_ok_and(|leaf| {
            leaf[2] & (1 << 5) == 0
                && leaf[2] & (1 << 3) == 0
                && leaf[2] & (1 << 26) == 0
                && leaf[2] & (1 << 31) != 0
        }),
        format_args!("{features:x?}"),
    );
    let extended = privileged::forced_cpuid(0x8000_0001, 0);
    check(
        "forced cpuid 0x80000001: no SVM; long mode and syscall shown",
        extended.is_ok_and(|leaf| {
            leaf[2] & (1 << 2) == 0 && leaf[3] & (1 << 29) != 0 && leaf[3] & (1 << 11) != 0
        }),
        format_args!("{extended:x?}"),
    );
    let monitor = privileged::forced_cpuid(5, 0);
    check(
        "forced cpuid 5 (MONITOR leaf) is empty",
        monitor == Ok([0; 4]),
        format_args!("{monitor:x?}"),
    );
    // A plain cpuid does not trap on this CPU: it shows the hardware.
    let plain = privileged::plain_cpuid(1, 0);
    check(
        "plain cpuid runs without trapping",
        plain.is_ok(),
        format_args!("{plain:x?}"),
    );
}

fn control_registers() {
    let root = paging::current_root();
    let cr3 = privileged::read_cr(3);
    check(
        "mov %cr3 reads the current base pointer's machine address",
        cr3 == Ok(root * PAGE_SIZE),
        format_args!("{cr3:x?}, root mfn {root:#x}"),
    );
    let cr0 = privileged::read_cr(0);
    check(
        "mov %cr0: paging and protection on, TS clear",
        cr0.is_ok_and(|value| value & 0x8000_0001 == 0x8000_0001 && value & 8 == 0),
        format_args!("{cr0:x?}"),
    );
    let cr4 = privileged::read_cr(4);
    check(
        "mov %cr4: PAE visible, VMXE and PGE not",
        cr4.is_ok_and(|value| {
            value & (1 << 5) != 0 && value & (1 << 13) == 0 && value & (1 << 7) == 0
        }),
        format_args!("{cr4:x?}"),
    );
    expect_fault(
        "mov %cr8 is refused",
        privileged::read_cr(8),
        GENERAL_PROTECTION,
    );
    let cr0 = cr0.unwrap_or(0);
    expect_fault(
        "mov to %cr0 clearing PG is refused",
        // SAFETY: the hypervisor must refuse it.
        unsafe { privileged::write_cr(0, cr0 & !0x8000_0000) },
        GENERAL_PROTECTION,
    );
    check(
        "mov to %cr0 of its own value is accepted",
        // SAFETY: no change.
        unsafe { privileged::write_cr(0, cr0) }.is_ok(),
        format_args!(""),
    );
    check(
        "clts is accepted (TS is clear)",
        privileged::clts().is_ok(),
        format_args!(""),
    );
    let cr4 = cr4.unwrap_or(0);
    // SAFETY: a guest may write CR4; bits it does not control are ignored.
    let written = unsafe { privileged::write_cr(4, cr4 | (1 << 13) | (1 << 7)) };
    let after = privileged::read_cr(4);
    check(
        "mov to %cr4 setting VMXE and PGE is ignored, as in Xen",
        written.is_ok() && after == Ok(cr4),
        format_args!("{written:x?}, then {after:x?}"),
    );

    // CR3 writes go through NEW_BASEPTR's validation.
    check(
        "mov to %cr3 of the current root is accepted",
        // SAFETY: the same root.
        unsafe { privileged::write_cr(3, root * PAGE_SIZE) }.is_ok(),
        format_args!(""),
    );
    // A data frame mapped writable cannot be validated as a page table
    // (an all-zero frame with no writable mapping could: it is a valid,
    // empty L4, as in Xen).
    let data = paging::pfn_to_mfn(paging::allocate_frame().expect("a frame"));
    let data_mapped = paging::map(DATA_PAGE, data, WRITABLE | USER);
    let l1 = paging::pfn_to_mfn(paging::allocate_frame().expect("a frame"));
    let pinned = paging::clear_frame(l1).and_then(|_| paging::pin(l1, 1));
    let bad_roots: [(&str, u64); 5] = [
        ("a data frame mapped writable", data),
        ("a pinned L1", l1),
        ("a frame of the hypervisor (machine frame 0x100)", 0x100),
        ("a frame beyond memory", 0x7ff_ffff),
        ("the no-flush bit with the current root", (1 << 51) | root),
    ];
    for (what, mfn) in bad_roots {
        let mut name = heapless::String::<96>::new();
        let _ = core::fmt::write(&mut name, format_args!("mov to %cr3 naming {what}"));
        // SAFETY: the hypervisor must refuse it.
        expect_fault(
            &name,
            unsafe { privileged::write_cr(3, mfn * PAGE_SIZE) },
            GENERAL_PROTECTION,
        );
    }
    let cr3 = privileged::read_cr(3);
    check(
        "after the refusals the base pointer is unchanged",
        cr3 == Ok(root * PAGE_SIZE) && pinned.is_ok() && data_mapped.is_ok(),
        format_args!("{cr3:x?}, pin {pinned:?}, data page {data_mapped:?}"),
    );
    let _ = paging::unpin(l1);
}

fn debug_registers() {
    for (what, address) in [
        ("the hypervisor image", HYPERVISOR_IMAGE),
        ("the direct map", DIRECT_MAP),
        ("a non-canonical address", 0x0000_8000_0000_0000),
    ] {
        let mut name = heapless::String::<96>::new();
        let _ = core::fmt::write(&mut name, format_args!("mov to %dr0 aiming at {what}"));
        expect_fault(&name, privileged::write_dr(0, address), GENERAL_PROTECTION);
        name.clear();
        let _ = core::fmt::write(&mut name, format_args!("set_debugreg(1) aiming at {what}"));
        // SAFETY: the hypervisor must refuse it.
        let result = unsafe { wrappers::hypercall2(Hypercall::SetDebugreg, 1, address) };
        expect_result(&name, result, EPERM);
    }
    let guest_address = CODE_PAGE + 0x800;
    let written = privileged::write_dr(2, guest_address);
    let read = privileged::read_dr(2);
    // SAFETY: reads a debug register.
    let by_hypercall = unsafe { wrappers::hypercall1(Hypercall::GetDebugreg, 2) };
    check(
        "mov to %dr2 of a guest address, read back by mov and get_debugreg",
        written.is_ok() && read == Ok(guest_address) && by_hypercall == guest_address as i64,
        format_args!("{written:?}, {read:x?}, {by_hypercall:#x}"),
    );
    expect_fault(
        "mov to %dr7 with general detect is refused",
        privileged::write_dr(7, 1 << 13),
        GENERAL_PROTECTION,
    );
    expect_fault(
        "mov to %dr7 with upper bits is refused",
        privileged::write_dr(7, 1 << 40),
        GENERAL_PROTECTION,
    );
    expect_fault(
        "an I/O breakpoint without CR4.DE is refused",
        privileged::write_dr(7, (1 << 2) | (0b10 << 20)),
        GENERAL_PROTECTION,
    );
    // An instruction breakpoint (L2) on the guest address in DR2, which
    // nothing executes: it is loaded into the hardware, then turned off.
    let armed = privileged::write_dr(7, 1 << 4);
    let dr7 = privileged::read_dr(7);
    let disarmed = privileged::write_dr(7, 0);
    check(
        "a breakpoint on a guest address is accepted and read back, then cleared",
        armed.is_ok() && dr7 == Ok(0x410) && disarmed.is_ok(),
        format_args!("{armed:?}, {dr7:x?}, {disarmed:?}"),
    );
    let dr6 = privileged::read_dr(6);
    let dr4 = privileged::read_dr(4);
    check(
        "%dr6 reads its fixed bits; %dr4 is its alias without CR4.DE",
        dr6 == Ok(0xffff_0ff0) && dr4 == dr6,
        format_args!("{dr6:x?}, {dr4:x?}"),
    );
    // SAFETY: reads a debug register that does not exist.
    let dr8 = unsafe { wrappers::hypercall1(Hypercall::GetDebugreg, 8) };
    expect_result("get_debugreg(8) does not exist", dr8, ENODEV);
}

fn model_specific_registers() {
    const FS_BASE: u32 = 0xc000_0100;
    const EFER: u32 = 0xc000_0080;
    const LSTAR: u32 = 0xc000_0082;
    const STAR: u32 = 0xc000_0081;
    const SYSENTER_CS: u32 = 0x174;
    const SYSENTER_EIP: u32 = 0x176;
    const TSC: u32 = 0x10;
    let old = privileged::rdmsr(FS_BASE).unwrap_or(0);
    // SAFETY: nothing here uses FS.
    let written = unsafe { privileged::wrmsr(FS_BASE, 0x1234_5000) };
    let read = privileged::rdmsr(FS_BASE);
    // SAFETY: as above.
    let _ = unsafe { privileged::wrmsr(FS_BASE, old) };
    check(
        "wrmsr/rdmsr of the FS base",
        written.is_ok() && read == Ok(0x1234_5000),
        format_args!("{written:?}, {read:x?}"),
    );
    // SAFETY: the hypervisor must refuse it.
    let bad = unsafe { privileged::wrmsr(FS_BASE, 0x0000_8000_0000_0000) };
    expect_fault("wrmsr of a non-canonical FS base", bad, GENERAL_PROTECTION);
    let efer = privileged::rdmsr(EFER);
    check(
        "rdmsr EFER: long mode active",
        efer.is_ok_and(|value| value & (1 << 10) != 0),
        format_args!("{efer:x?}"),
    );
    let tsc = privileged::rdmsr(TSC);
    check(
        "rdmsr of the TSC",
        tsc.is_ok_and(|value| value > 0),
        format_args!("{tsc:x?}"),
    );
    for (name, msr) in [
        ("wrmsr EFER (clearing SCE and NXE)", EFER),
        ("wrmsr LSTAR (the hypervisor's syscall entry)", LSTAR),
        ("wrmsr STAR", STAR),
        ("wrmsr SYSENTER_CS", SYSENTER_CS),
        ("wrmsr SYSENTER_EIP", SYSENTER_EIP),
    ] {
        // SAFETY: the hypervisor must refuse every one.
        expect_fault(
            name,
            unsafe { privileged::wrmsr(msr, 0x500) },
            GENERAL_PROTECTION,
        );
    }
    expect_fault("rdmsr LSTAR", privileged::rdmsr(LSTAR), GENERAL_PROTECTION);
    expect_fault(
        "rdmsr SYSENTER_EIP",
        privileged::rdmsr(SYSENTER_EIP),
        GENERAL_PROTECTION,
    );

    // The hypercall page, installed through the MSR CPUID advertises.
    let stubs = paging::pfn_to_mfn(paging::allocate_frame().expect("a frame"));
    let mapped = paging::map(STUB_PAGE, stubs, WRITABLE | USER);
    // SAFETY: the page is ours and mapped writable.
    unsafe { core::ptr::write_bytes(STUB_PAGE as *mut u8, 0, PAGE_SIZE as usize) };
    // SAFETY: the hypervisor writes stubs into our own page.
    let written = unsafe { privileged::wrmsr(0x4000_0000, stubs * PAGE_SIZE) };
    // Stub 17 (xen_version): push %rcx; push %r11; mov $17, %eax.
    let mut stub = [0u8; 8];
    // SAFETY: reads our own mapped page.
    unsafe {
        core::ptr::copy_nonoverlapping((STUB_PAGE + 17 * 32) as *const u8, stub.as_mut_ptr(), 8)
    };
    check(
        "wrmsr 0x40000000 writes the hypercall page into our frame",
        mapped.is_ok() && written.is_ok() && stub == [0x51, 0x41, 0x53, 0xb8, 17, 0, 0, 0],
        format_args!("{written:?}, {stub:x?}"),
    );
    let root = paging::current_root();
    expect_fault(
        "wrmsr 0x40000000 naming our L4 page table",
        // SAFETY: the hypervisor must refuse to write into a page table.
        unsafe { privileged::wrmsr(0x4000_0000, root * PAGE_SIZE) },
        GENERAL_PROTECTION,
    );
    expect_fault(
        "wrmsr 0x40000000 naming a hypervisor frame",
        // SAFETY: as above.
        unsafe { privileged::wrmsr(0x4000_0000, 0x100 * PAGE_SIZE) },
        GENERAL_PROTECTION,
    );
}

fn other_instructions() {
    check(
        "wbinvd is ignored",
        privileged::wbinvd().is_ok(),
        format_args!(""),
    );
    expect_fault("hlt", privileged::hlt(), GENERAL_PROTECTION);
    expect_fault(
        "cli without I/O privilege",
        privileged::cli(),
        GENERAL_PROTECTION,
    );
    expect_fault(
        "inb $0x60 without I/O privilege",
        privileged::inb(0x60),
        GENERAL_PROTECTION,
    );
    expect_fault(
        "outb $0x80 without I/O privilege",
        privileged::outb(0x80, 0),
        GENERAL_PROTECTION,
    );
    let rdtscp = privileged::rdtscp();
    check(
        "rdtscp runs, or is #UD on a CPU without it",
        rdtscp.is_ok() || faulted_with(&rdtscp, INVALID_OPCODE),
        format_args!("{rdtscp:x?}"),
    );
}

/// I/O privilege (`PHYSDEVOP_set_iopl`, `traps::io_ports`): this guest is
/// the control domain, so with a virtual IOPL of 1 its kernel reaches free
/// ports, and the CMOS through the hypervisor's mediation, but never the
/// ports the hypervisor drives (they read all ones, writes are dropped),
/// whatever IOPL it asks for.
fn io_privilege() {
    const EINVAL: i64 = -22;
    expect_result(
        "set_iopl 4 is -EINVAL",
        wrappers::physdev_set_iopl(4),
        EINVAL,
    );
    expect_result("set_iopl 1", wrappers::physdev_set_iopl(1), 0);
    check(
        "outb $0x80 (POST diagnostics) with IOPL 1",
        privileged::outb(0x80, 0x42).is_ok(),
        format_args!(""),
    );
    check(
        "cli and sti with IOPL 1 run (as no-ops, as in Xen)",
        privileged::cli().is_ok() && privileged::sti().is_ok(),
        format_args!(""),
    );
    // CMOS status register B: QEMU's RTC says 24-hour mode there, never
    // all ones.
    let selected = privileged::outb(0x70, 0x0b);
    let status_b = privileged::inb(0x71);
    check(
        "CMOS register 0x0b through 0x70/0x71 (mediated) reads the RTC",
        selected.is_ok() && matches!(status_b, Ok(value) if value != 0xff),
        format_args!("{status_b:x?}"),
    );
    // The hypervisor's ports, even with IOPL 3: a line status of 0x60 from
    // COM1, an interrupt request register from a PIC, or the PIT gate's
    // refresh bits would mean the read reached the hardware.
    expect_result("set_iopl 3", wrappers::physdev_set_iopl(3), 0);
    for (port, owner) in [
        (0x3fd, "COM1 line status"),
        (0x3f8, "COM1 data"),
        (0x20, "master PIC"),
        (0xa0, "slave PIC"),
        (0x4d0, "ELCR"),
        (0x61, "PIT channel 2 gate"),
        (0x40, "PIT channel 0"),
        (0xcfc, "PCI configuration data"),
    ] {
        let read = privileged::inb(port);
        let mut name = heapless::String::<96>::new();
        let _ = core::fmt::write(
            &mut name,
            format_args!("inb {port:#x} ({owner}) with IOPL 3 reaches nothing: all ones"),
        );
        check(&name, read == Ok(0xff), format_args!("{read:x?}"));
    }
    // Had this reached QEMU's debug-exit device, the machine would have
    // stopped here with status 0x21 << 1 | 1, and the test failed.
    check(
        "outb $0xf4 (debug exit) with IOPL 3 is dropped",
        privileged::outb(0xf4, 0x21).is_ok(),
        format_args!(""),
    );
    // The PIC's mask register: unmasking every line would flood the
    // hypervisor with interrupts it does not expect.
    check(
        "outb $0x21 (PIC mask) with IOPL 3 is dropped",
        privileged::outb(0x21, 0x00).is_ok(),
        format_args!(""),
    );
    expect_result("set_iopl 0", wrappers::physdev_set_iopl(0), 0);
    expect_fault(
        "inb $0x71 with IOPL 0 again",
        privileged::inb(0x71),
        GENERAL_PROTECTION,
    );
}

/// Writes `bytes` so that they end `from_end` bytes before the page's end
/// (0: the last byte is the page's last) and returns their address.
fn place(bytes: &[u8], from_end: u64) -> u64 {
    let address = CODE_PAGE + PAGE_SIZE - from_end - bytes.len() as u64;
    // SAFETY: the code page is ours and mapped writable.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), address as *mut u8, bytes.len()) };
    address
}

fn run(address: u64) -> Result<(), Caught> {
    // SAFETY: the code page is mapped executable; each sequence placed
    // there ends with `ret` or faults before doing anything.
    unsafe { privileged::call(address) }
}

fn expect_page_fault_at(name: &str, result: Result<(), Caught>, address: u64) {
    check(
        name,
        matches!(result, Err(caught) if caught.vector == PAGE_FAULT && caught.address == address),
        format_args!("{result:x?}, expected a page fault at {address:#x}"),
    );
}

fn instructions_at_a_page_end() {
    let frame = paging::pfn_to_mfn(paging::allocate_frame().expect("a frame"));
    let mapped = paging::map(CODE_PAGE, frame, WRITABLE | USER);
    check(
        "setup: an executable page with an unmapped page after it",
        mapped.is_ok(),
        format_args!("{mapped:?}"),
    );
    // 0f 20 d8 c3: mov %cr3, %rax; ret, ending with the page.
    let whole = place(&[0x0f, 0x20, 0xd8, 0xc3], 0);
    check(
        "mov %cr3 whose fetch stops at the page end is emulated",
        run(whole).is_ok(),
        format_args!(""),
    );
    // 0f 20 with its ModRM byte on the unmapped page.
    place(&[0x0f, 0x20], 0);
    expect_page_fault_at(
        "mov %cr3 straddling into an unmapped page",
        run(HOLE - 2),
        HOLE,
    );
    // The forced-emulation prefix cut by the page end.
    place(&[0x0f, 0x0b, b'x'], 0);
    expect_page_fault_at(
        "the forced-emulation prefix cut by the page end",
        run(HOLE - 3),
        HOLE,
    );
    place(&[0x0f, 0x0b, b'x', b'e', b'n'], 0);
    expect_page_fault_at(
        "the forced-emulation prefix with its cpuid on the unmapped page",
        run(HOLE - 5),
        HOLE,
    );
    place(&[0x0f, 0x0b, b'x', b'e', b'n', 0x0f], 0);
    expect_page_fault_at(
        "forced cpuid cut in half by the page end",
        run(HOLE - 6),
        HOLE,
    );
    // The prefix followed by garbage, and by a privileged instruction.
    let garbage = place(&[0x0f, 0x0b, b'x', b'e', b'n', 0xff, 0xff, 0xc3], 64);
    let result = run(garbage);
    check(
        "the forced-emulation prefix followed by garbage is #UD at the prefix",
        matches!(result, Err(caught) if caught.vector == INVALID_OPCODE && caught.rip == garbage),
        format_args!("{result:x?}"),
    );
    let other = place(&[0x0f, 0x0b, b'x', b'e', b'n', 0x0f, 0x20, 0xd8, 0xc3], 64);
    expect_fault(
        "the forced-emulation prefix before mov %cr3 is #UD (only cpuid is forced)",
        run(other),
        INVALID_OPCODE,
    );
    // Sixteen bytes of prefixes before rdmsr: longer than an instruction
    // may be, #GP.
    let mut long = [0x66u8; 19];
    long[16] = 0x0f;
    long[17] = 0x32;
    long[18] = 0xc3;
    let long = place(&long, 128);
    let result = run(long);
    check(
        "an instruction longer than 15 bytes is #GP",
        faulted_with(&result, GENERAL_PROTECTION),
        format_args!("{result:x?}"),
    );
    // A plain ud2 is the guest's own #UD.
    let ud2 = place(&[0x0f, 0x0b, 0x90, 0x90, 0x90, 0x90, 0x90, 0xc3], 256);
    let result = run(ud2);
    check(
        "a plain ud2 is #UD",
        matches!(result, Err(caught) if caught.vector == INVALID_OPCODE && caught.rip == ud2),
        format_args!("{result:x?}"),
    );
}

#[no_mangle]
fn guest_main(_start_info: &'static StartInfo) -> ! {
    println!("emulation-attacks: privileged instructions from ring 3");
    cpuid_policy();
    control_registers();
    debug_registers();
    model_specific_registers();
    other_instructions();
    io_privilege();
    instructions_at_a_page_end();
    println!("emulation-attacks: the hypervisor is still here");
    finish()
}
