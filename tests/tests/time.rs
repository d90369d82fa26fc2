//! PV time: a guest's time of day comes from the hypervisor's published
//! `vcpu_time_info` and boot wall clock, so it stays right across a pause.

use scenarios::{BootConfig, Machine, COMMAND_TIMEOUT};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const GUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Attaches to the clock guest's console, waits for a fresh line, detaches,
/// and returns the newest Unix time it printed.
fn read_clock(machine: &mut Machine) -> u64 {
    machine.send_line("xl console clock").unwrap();
    machine
        .expect("Ctrl-] detaches", GUEST_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    // The scrollback comes first; wait for one more line after it.
    std::thread::sleep(Duration::from_millis(1500));
    machine.send(&[0x1d]).unwrap();
    let shown = machine.expect_prompt(COMMAND_TIMEOUT).unwrap();
    shown
        .lines()
        .rev()
        .find_map(|line| line.split("clock: unix time ").nth(1))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| machine.fail(&format!("no clock line on the console:\n{shown}")))
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
    let guest_now = read_clock(&mut machine);
    let host_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    machine.ensure(
        guest_now.abs_diff(host_now) <= 5,
        &format!("the guest's clock ({guest_now}) agrees with the host's ({host_now}) within 5 s"),
    );
    machine.command("xl pause clock");
    let before = read_clock(&mut machine);
    let paused_at = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    machine.command("xl unpause clock");
    let after = read_clock(&mut machine);
    let elapsed = paused_at.elapsed().as_secs();
    machine.ensure(
        after >= before + 10 && after <= before + elapsed + 4,
        &format!("after a {elapsed} s pause the clock moved from {before} to {after}"),
    );
    machine.poweroff();
}
