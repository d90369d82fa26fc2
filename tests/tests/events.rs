//! Event channels: two guests ping-pong over an interdomain channel, and a
//! guest that abuses event channels gets Xen's error codes while the
//! hypervisor stays up.

use scenarios::{BootConfig, Machine};
use std::time::Duration;

#[test]
fn two_guests_ping_pong_over_an_interdomain_channel() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    machine.command("xl create /etc/xen/pong.cfg");
    machine.send_line("xl console pong").unwrap();
    // Ports 1 and 2 are pong's console and store channels.
    machine
        .expect("pong: port 3 offered to domain 2", Duration::from_secs(30))
        .unwrap_or_else(|error| panic!("{error}"));
    machine.send(&[0x1d]).unwrap();
    machine.expect_prompt(Duration::from_secs(20)).unwrap();
    let output = machine.command("xl create -c /etc/xen/ping.cfg");
    machine.ensure(
        output.contains("ping: 1000 round trips with domain 1 done"),
        &output,
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
    Machine::run_test_guest("evtchn-attacks");
}
