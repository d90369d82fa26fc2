//! Event channels: two guests ping-pong over an interdomain channel, and a
//! guest that abuses event channels gets Xen's error codes while the
//! hypervisor stays up.

use scenarios::{BootConfig, Machine, BOOT_TIMEOUT, EXIT_POWEROFF};
use std::time::{Duration, Instant};

fn await_log(machine: &Machine, text: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !machine.log().contains(text) {
        if Instant::now() > deadline {
            machine.fail(&format!("no \"{text}\" within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_guests_ping_pong_over_an_interdomain_channel() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    machine.command("xl create /etc/xen/pong.cfg");
    await_log(
        &machine,
        "(d1) pong: port 1 offered to domain 2",
        Duration::from_secs(30),
    );
    machine.command("xl create /etc/xen/ping.cfg");
    await_log(
        &machine,
        "(d2) ping: 1000 round trips with domain 1 done",
        Duration::from_secs(120),
    );
    let list = machine.command("xl list pong");
    machine.ensure_match(
        &list,
        r"(?m)^pong\s+1\s+8\s+1\s+-b----",
        "pong sleeps, blocked, between events",
    );
    machine.poweroff();
}

#[test]
fn event_channel_abuse_is_refused() {
    let mut machine = Machine::boot(BootConfig::test_guest("evtchn-attacks")).expect("QEMU starts");
    if let Err(error) = machine.expect("Test result: ", BOOT_TIMEOUT) {
        panic!("no verdict from evtchn-attacks: {error}");
    }
    machine.expect_exit(EXIT_POWEROFF, BOOT_TIMEOUT);
    let log = machine.log();
    machine.ensure(!log.contains("FAIL: "), "every check passed");
    machine.ensure(
        log.contains("Test result: SUCCESS"),
        "the guest reports success",
    );
}
