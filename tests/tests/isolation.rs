//! Isolation against a hostile guest: pointers that name the hypervisor,
//! and crafted frames.
//!
//! The `pointer-attacks` test guest (booted as the initial domain) hands
//! every hypercall that takes a guest buffer pointers into the hypervisor's
//! range, non-canonical, unmapped and read-only ones, wrapping and crossing
//! ones, and checks each gets `-EFAULT` and changes nothing.

use scenarios::Machine;

#[test]
fn guest_pointers_into_the_hypervisor_are_refused() {
    let machine = Machine::run_test_guest("pointer-attacks");
    let log = machine.log();
    let passed = log.lines().filter(|line| line.starts_with("ok: ")).count();
    machine.ensure(
        passed >= 150,
        &format!("at least 150 checks ran ({passed})"),
    );
}
