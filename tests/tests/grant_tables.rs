//! Grant tables (issue 12): the `grant-attacks` test guest, booted as the
//! initial domain, grants frames to itself and to domains that do not
//! exist and tries every misuse of `grant_table_op`; each must be refused
//! with Xen's `GNTST_*` status, the honest paths must work, and no frame
//! may leak.

use scenarios::{
    BootConfig, Machine, BOOT_TIMEOUT, COMMAND_TIMEOUT, DEFAULT_HYPERVISOR_CMDLINE, EXIT_POWEROFF,
};
use std::time::Duration;

/// How long a flooding guest may take to report.
const GUEST_TIMEOUT: Duration = Duration::from_secs(60);

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

/// Hostile guests flooding the grant interface fill the hypervisor's heap
/// only down to its reserve (`mm::heap_budget`): each grows its grant table
/// to the most frames and maps grants until refused, and yet another
/// domain can still be created, `xl list` and `xl info` answer, and
/// destroying the flooders gives the heap back. Before the reserve, 14 of
/// them left the heap without room for the next domain, and the
/// hypervisor aborted on an infallible allocation.
#[test]
fn grant_flooding_guests_cannot_exhaust_the_hypervisor_heap() {
    const FLOODERS: usize = 14;
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let heap_free = |machine: &mut Machine| -> (u64, u64) {
        let info = machine.command("xl info");
        let free = machine.ensure_match(&info, r"(?m)^xen_heap_free\s*: (\d+)", "xen_heap_free");
        let reserve = machine.ensure_match(
            &info,
            r"(?m)^xen_heap_reserve\s*: (\d+)",
            "xen_heap_reserve",
        );
        (free[1].parse().unwrap(), reserve[1].parse().unwrap())
    };
    let (free_before, reserve) = heap_free(&mut machine);
    let mut refused = 0;
    for index in 1..=FLOODERS {
        let name = format!("gf{index}");
        let created = machine.command(&format!("xl create /etc/xen/grantflood.cfg name={name}"));
        machine.ensure(
            created.contains(&format!("Started domain {name}")),
            &format!("flooder {name} starts:\n{created}"),
        );
        machine.send_line(&format!("xl console {name}")).unwrap();
        let shown = machine
            .expect("grant-flood: done", GUEST_TIMEOUT)
            .unwrap_or_else(|error| panic!("{name} reports: {error}"));
        machine.send(&[0x1d]).unwrap();
        machine.expect_prompt(COMMAND_TIMEOUT).unwrap();
        // Refused before its maptrack was full (4096 mappings by default):
        // the heap said no.
        if !shown.contains("holds 4096 grant mappings") {
            refused += 1;
        }
    }
    let (free_flooded, _) = heap_free(&mut machine);
    machine.ensure(
        refused > 0,
        &format!("the flood reached the heap's limit ({refused} flooders refused)"),
    );
    machine.ensure(
        free_flooded >= reserve,
        &format!("the heap kept its reserve: {free_flooded} KiB free, {reserve} KiB reserved"),
    );
    machine.ensure(
        machine
            .log()
            .contains("the hypervisor's heap is down to the reserve"),
        "the hypervisor says why it refused",
    );
    // The hypervisor still has room for its own structures: one more
    // domain runs, and the toolstack answers.
    let output = machine.command("xl create -c /etc/xen/hello.cfg");
    machine.ensure(
        output.contains("Hello from a PV guest"),
        &format!("a domain can still be created:\n{output}"),
    );
    let list = machine.command("xl list");
    machine.ensure(
        list.contains(&format!("gf{FLOODERS} ")),
        &format!("xl list answers:\n{list}"),
    );
    for index in 1..=FLOODERS {
        machine.command(&format!("xl destroy gf{index}"));
    }
    let (free_after, _) = heap_free(&mut machine);
    machine.ensure(
        free_after + 64 >= free_before,
        &format!("the heap came back: {free_before} KiB free before, {free_after} KiB after"),
    );
    machine.poweroff();
}
