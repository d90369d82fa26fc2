//! Trap and emulate: what the hypervisor does with a privileged instruction
//! that a PV kernel executes in ring 3.
//!
//! The `emulation-attacks` test guest (booted as the initial domain) runs
//! the instructions Xen emulates for a PV kernel and checks the results
//! (the forced-emulation CPUID and its PV policy, control and debug
//! registers, the allowed MSRs), and the ones it must refuse with the
//! fault a native kernel would see (CR3 naming a frame that is not one of
//! its validated L4s, breakpoints on the hypervisor, MSRs outside the
//! allow-list, port I/O, instructions running into an unmapped page, the
//! forced-emulation prefix cut by a page end or followed by garbage).

use scenarios::{BootConfig, Machine};

#[test]
fn privileged_instructions_are_emulated_or_refused() {
    let machine = Machine::run_test_guest("emulation-attacks");
    let log = machine.log();
    let passed = log.lines().filter(|line| line.starts_with("ok: ")).count();
    machine.ensure(passed >= 60, &format!("at least 60 checks ran ({passed})"));
}

/// The `sensitive` workload: the instructions that break Popek and
/// Goldberg's condition run in ring 3 without trapping and reveal the
/// hypervisor's state; the privileged ones trap and are emulated or
/// reflected.
#[test]
fn sensitive_instructions_are_shown_trapping_or_not() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let output = machine.command("xl create -c /etc/xen/sensitive.cfg");
    for pattern in [
        r"sensitive: sgdt: did not trap, saw the real GDT at 0xffff82d0[0-9a-f]+",
        r"sensitive: sidt: did not trap, saw the real IDT at 0xffff82d0[0-9a-f]+",
        r"sensitive: str: did not trap, saw the hypervisor's TSS selector 0xe040",
        r"sensitive: smsw: did not trap, saw CR0's low bits 0x[0-9a-f]+ \(PE=1\)",
        r"sensitive: popf clearing IF: did not trap, saw RFLAGS 0x[0-9a-f]+: IF still 1",
        r"sensitive: cpuid \(plain\): did not trap, saw the hardware's leaf 1: ecx 0x[0-9a-f]+ \(hypervisor bit [01]\)",
        r"sensitive: cpuid \(forced emulation\): did not trap, saw the PV policy's leaf 1: ecx 0x[0-9a-f]+ \(hypervisor bit 1\)",
        r"sensitive: mov %cr3, %rax: did not trap, saw 0x[0-9a-f]+000 \(emulated",
        r"sensitive: rdmsr EFER: did not trap, saw 0x[0-9a-f]+ \(emulated\)",
        r"sensitive: rdmsr LSTAR: trapped \(#GP\)",
        r"sensitive: hlt: trapped \(#GP\)",
        r"sensitive: inb \$0x60: trapped \(#GP\)",
        r"sensitive: done",
    ] {
        machine.ensure_match(&output, pattern, pattern);
    }
    // The first run left ES loaded; the hypervisor saves and restores each
    // vCPU's data selectors (Xen's load_segments), so the second run, a new
    // domain, starts with null ones, not the first one's.
    machine.ensure_match(&output, r"sensitive: leaves es=0xe02b loaded", "ES loaded");
    let output = machine.command("xl create -c /etc/xen/sensitive.cfg");
    machine.ensure_match(
        &output,
        r"sensitive: data selectors at start: ds=0x0 es=0x0 fs=0x0 gs=0x0",
        "a new domain finds no selector another guest left",
    );
    machine.poweroff();
}

/// The `iopl` workload: a DomU may set its virtual IOPL (as in Xen), which
/// lets its port I/O run instead of faulting, but no access reaches a
/// port: the CMOS and COM1 read all ones, and a write to QEMU's debug-exit
/// port, which would stop the machine, goes nowhere.
#[test]
fn a_domu_reaches_no_port_whatever_its_iopl() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let output = machine.command("xl create -c /etc/xen/iopl.cfg");
    for pattern in [
        r"iopl: inb \$0x71 with IOPL 0: Err\(Caught \{ vector: d, error_code: 0",
        r"iopl: set_iopl 3: 0",
        r"iopl: CMOS register 0x0b: select Ok\(\(\)\), read Ok\(ff\)",
        r"iopl: outb \$0x80: Ok\(\(\)\)",
        r"iopl: inb \$0x3fd \(COM1 line status\): Ok\(ff\)",
        r"iopl: outb \$0xf4 \(debug exit\): Ok\(\(\)\), still running",
    ] {
        machine.ensure_match(&output, pattern, pattern);
    }
    machine.poweroff();
}
