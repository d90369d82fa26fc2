//! Validated paging under attack: the `mm-attacks` test guest (booted as
//! the initial domain) tries every page-table change that would break one
//! of the hypervisor's memory invariants, and checks each is refused and
//! the invariant still holds afterwards.

use scenarios::{BootConfig, Machine, BOOT_TIMEOUT, EXIT_POWEROFF};

#[test]
fn paging_attacks_are_all_refused() {
    let mut machine = Machine::boot(BootConfig::test_guest("mm-attacks")).expect("QEMU starts");
    if let Err(error) = machine.expect("Test result: ", BOOT_TIMEOUT) {
        panic!("no verdict from mm-attacks: {error}");
    }
    machine.expect_exit(EXIT_POWEROFF, BOOT_TIMEOUT);
    let log = machine.log();
    machine.ensure(!log.contains("FAIL: "), "every check passed");
    machine.ensure(
        log.contains("Test result: SUCCESS"),
        "the guest reports success",
    );
    let passed = log.lines().filter(|line| line.starts_with("ok: ")).count();
    machine.ensure(passed >= 35, &format!("at least 35 checks ran ({passed})"));
}
