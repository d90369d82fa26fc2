//! PV time: a guest's time of day comes from the hypervisor's published
//! `vcpu_time_info` and boot wall clock, so it stays right across a pause.

use scenarios::{BootConfig, Machine};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const GUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The last `(d1) clock: unix time N` value in the log.
fn last_clock(machine: &Machine) -> u64 {
    machine
        .log()
        .lines()
        .rev()
        .find_map(|line| line.split("(d1) clock: unix time ").nth(1))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| machine.fail("no clock line yet"))
}

#[test]
fn a_paused_guest_reads_the_right_time_when_unpaused() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let output = machine.command("date");
    machine.ensure_match(
        &output,
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC",
        "date prints the time of day",
    );
    machine.command("xl create /etc/xen/clock.cfg");
    machine
        .expect("(d1) clock: unix time", GUEST_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    let host_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let guest_now = last_clock(&machine);
    machine.ensure(
        guest_now.abs_diff(host_now) <= 5,
        &format!("the guest's clock ({guest_now}) agrees with the host's ({host_now}) within 5 s"),
    );
    machine.command("xl pause clock");
    let before = last_clock(&machine);
    let paused_at = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    machine.ensure(last_clock(&machine) == before, "no clock line while paused");
    machine.command("xl unpause clock");
    let pattern = regex::escape("(d1) clock: unix time ");
    machine
        .expect_regex(&format!("{pattern}\\d+"), GUEST_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    let after = last_clock(&machine);
    let elapsed = paused_at.elapsed().as_secs();
    machine.ensure(
        after >= before + 10 && after <= before + elapsed + 3,
        &format!("after a {elapsed} s pause the clock moved from {before} to {after}"),
    );
    machine.poweroff();
}
