//! Floods: an unprivileged guest makes 10 rounds of 10,000 unimplemented
//! hypercalls and 10,000 `console_io` lines (`workload=flood`,
//! `/etc/xen/flood.cfg`); the hypervisor
//! prints a bounded number of them, says how many it suppressed, keeps its
//! own boot lines in `xl dmesg`, and Dom0's prompt keeps answering.

use regex::Regex;
use scenarios::{scaled, BootConfig, Machine};
use std::time::{Duration, Instant};

/// How long the flood guest may take from `xl create` to powering off.
const FLOOD_TIMEOUT: Duration = Duration::from_secs(60);

/// The messages the flood guest causes: one warning per hypercall, one
/// line per `console_io` write, and its last line after the pause.
const FLOOD_MESSAGES: u64 = 10 * (10_000 + 10_000) + 1;

/// The most lines the rate limit lets through: a burst of 20, then one a
/// second for as long as the guest lived (rounded up).
fn most_printed(flood: Duration) -> u64 {
    20 + flood.as_secs() + 1
}

fn await_log(machine: &Machine, text: &str) {
    let deadline = Instant::now() + scaled(FLOOD_TIMEOUT);
    while !machine.log().contains(text) {
        if Instant::now() > deadline {
            machine.fail(&format!("no \"{text}\" within {FLOOD_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sums the counts of every "dN: COUNT messages suppressed" line in `text`.
fn suppressed(text: &str, id: &str) -> u64 {
    Regex::new(&format!(r"\(XEN\) d{id}: (\d+) messages suppressed"))
        .unwrap()
        .captures_iter(text)
        .map(|found| found[1].parse::<u64>().unwrap())
        .sum()
}

#[test]
fn a_flooding_guest_is_rate_limited_and_the_boot_log_survives() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    // The guest's bucket refills only while it exists: from here on.
    let flood_start = Instant::now();
    let output = machine.command("xl create /etc/xen/flood.cfg");
    let id = machine.ensure_match(
        &output,
        r"Started domain flood \(id=(\d+)\)",
        "the flood domain's ID",
    )[1]
    .clone();

    // Dom0's prompt answers while the guest floods.
    let started = Instant::now();
    let list = machine.command("xl list");
    let took = started.elapsed();
    machine.ensure(list.contains("flood"), &list);
    machine.ensure(
        took < scaled(Duration::from_secs(2)),
        &format!("`xl list` answered in {took:?} during the flood"),
    );

    await_log(
        &machine,
        &format!("domain 'flood' (id {id}) powered off: destroyed"),
    );
    let flood_time = flood_start.elapsed();
    let log = machine.log();
    let warnings = log
        .lines()
        .filter(|line| line.contains(&format!("(XEN) d{id}: unimplemented hypercall")))
        .count() as u64;
    let console_lines = log
        .lines()
        .filter(|line| line.starts_with(&format!("(d{id}) flood: ")))
        .count() as u64;
    let dropped = suppressed(&log, &id);
    let report = format!(
        "{warnings} warnings and {console_lines} console lines printed, {dropped} suppressed"
    );
    let most = most_printed(flood_time);
    machine.ensure(
        warnings + console_lines <= most,
        &format!(
            "at most {most} of the guest's lines on the serial line in {flood_time:?}: {report}"
        ),
    );
    machine.ensure(warnings > 0 && console_lines > 0, &report);
    machine.ensure(
        log.contains(&format!("(d{id}) flood: the last line, after a pause")),
        &format!("the line after the pause gets through: {report}"),
    );
    machine.ensure(
        warnings + console_lines + dropped == FLOOD_MESSAGES,
        &format!("every one of the {FLOOD_MESSAGES} messages is printed or counted: {report}"),
    );

    // The log ring: the boot lines are still there, the guest's lines few.
    let dmesg = machine.command("xl dmesg");
    for boot_line in ["xen-like 0.1.0", "memory: ", "starting Dom0"] {
        machine.ensure(
            dmesg.contains(boot_line),
            &format!("`xl dmesg` still shows the boot line \"{boot_line}\""),
        );
    }
    let ring_warnings = dmesg
        .lines()
        .filter(|line| line.contains(&format!("d{id}: unimplemented hypercall")))
        .count() as u64;
    machine.ensure(
        ring_warnings <= most && suppressed(&dmesg, &id) > 0,
        &format!("`xl dmesg` shows {ring_warnings} of the warnings and the suppressed count"),
    );
    machine.poweroff();
}

/// Dom0-only `domctl` refuses a maximum memory of zero or beyond the
/// machine (`createdomain` accepted 2^56 MiB and 0 MiB), naming the value.
#[test]
fn domctl_refuses_nonsense_memory_limits() {
    let machine = Machine::run_test_guest("domctl-limits");
    let log = machine.log();
    machine.ensure(
        log.contains("domctl createdomain with a maximum of 18446744073709551615 pages"),
        "the log line names the refused value",
    );
    machine.ensure(
        log.contains("domctl createdomain with a maximum of 0 pages"),
        "the log line names the refused zero",
    );
}
