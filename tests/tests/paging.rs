//! Validated paging under attack: the `mm-attacks` test guest (booted as
//! the initial domain) tries every page-table change that would break one
//! of the hypervisor's memory invariants, and checks each is refused and
//! the invariant still holds afterwards.

use scenarios::Machine;

/// How many checks the `mm-attacks` guest makes: one per `check` or
/// `expect_result` it reaches in `tests/guests/src/bin/mm_attacks.rs`, the
/// pin loop over four levels counting four. A guest that stops early, or a
/// check added without updating this number, fails the scenario.
const CHECKS: usize = 78;

#[test]
fn paging_attacks_are_all_refused() {
    let machine = Machine::run_test_guest("mm-attacks");
    let log = machine.log();
    let passed = log.lines().filter(|line| line.starts_with("ok: ")).count();
    machine.ensure(
        passed == CHECKS,
        &format!("all {CHECKS} checks ran and passed ({passed})"),
    );
    machine.ensure(
        log.contains(&format!("\n{CHECKS} checks passed")),
        &format!("the guest counted {CHECKS} checks"),
    );
}
