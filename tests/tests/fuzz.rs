//! The hypercall fuzzer runs on every test run: a short budget over a fixed list of seeds (the
//! same calls every time), beside a counter guest. The hypervisor must not fault, no fuzz guest
//! may be crashed by it, the counter must keep running, and free memory must come back.
//! `cargo xtask fuzz --calls 1000000` runs the long version.

use scenarios::fuzz::{plan, run};
use scenarios::{BootConfig, Machine};

/// The seeds, and the calls shared among them (about 20,000).
const SEEDS: [u64; 4] = [11, 12, 13, 14];
const CALLS: u64 = 20_000;

#[test]
fn the_fuzzer_cannot_hurt_the_hypervisor_or_other_guests() {
    // Warnings about the calls the hypervisor refuses (one line each) would
    // double the time; crashes are errors and still show.
    let config = BootConfig::direct_from_env().hypervisor_cmdline("loglvl=all guest_loglvl=error");
    let mut machine = Machine::boot_to_prompt(config);
    let report = run(&mut machine, &plan(CALLS, SEEDS[0], &SEEDS), "", |_| {});
    let problems = report.problems();
    machine.ensure(
        problems.is_empty(),
        &format!(
            "the fuzz run found problems:\n  {}\n{}",
            problems.join("\n  "),
            report.summary()
        ),
    );
    machine.ensure(report.calls() == CALLS, &report.summary());
    println!("{}", report.summary());
    machine.poweroff();
}
