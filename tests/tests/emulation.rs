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

use scenarios::Machine;

#[test]
fn privileged_instructions_are_emulated_or_refused() {
    let machine = Machine::run_test_guest("emulation-attacks");
    let log = machine.log();
    let passed = log.lines().filter(|line| line.starts_with("ok: ")).count();
    machine.ensure(passed >= 60, &format!("at least 60 checks ran ({passed})"));
}
