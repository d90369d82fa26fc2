//! Validated paging under attack: the `mm-attacks` test guest (booted as
//! the initial domain) tries every page-table change that would break one
//! of the hypervisor's memory invariants, and checks each is refused and
//! the invariant still holds afterwards.

use scenarios::Machine;

#[test]
fn paging_attacks_are_all_refused() {
    let machine = Machine::run_test_guest("mm-attacks");
    let log = machine.log();
    let passed = log.lines().filter(|line| line.starts_with("ok: ")).count();
    machine.ensure(passed >= 35, &format!("at least 35 checks ran ({passed})"));
}
