//! Grant tables (issue 12): the `grant-attacks` test guest, booted as the
//! initial domain, grants frames to itself and to domains that do not
//! exist and tries every misuse of `grant_table_op`; each must be refused
//! with Xen's `GNTST_*` status, the honest paths must work, and no frame
//! may leak.

use scenarios::{BootConfig, Machine, BOOT_TIMEOUT, DEFAULT_HYPERVISOR_CMDLINE, EXIT_POWEROFF};

#[test]
fn grant_table_attacks_are_all_refused() {
    // One maptrack frame (256 mappings), so that the guest can fill it.
    let cmdline = format!("{DEFAULT_HYPERVISOR_CMDLINE} gnttab_max_maptrack_frames=1");
    let config = BootConfig::test_guest("grant-attacks").hypervisor_cmdline(&cmdline);
    let mut machine = Machine::boot(config).expect("QEMU starts");
    if let Err(error) = machine.expect("Test result: ", BOOT_TIMEOUT) {
        panic!("no verdict from grant-attacks: {error}");
    }
    machine.expect_exit(EXIT_POWEROFF, BOOT_TIMEOUT);
    let log = machine.log();
    machine.ensure(!log.contains("FAIL: "), "every check passed");
    machine.ensure(
        log.contains("Test result: SUCCESS"),
        "the guest reports success",
    );
    let passed = log.lines().filter(|line| line.starts_with("ok: ")).count();
    machine.ensure(passed >= 50, &format!("at least 50 checks ran ({passed})"));
}
