//! Isolation against a hostile guest: pointers that name the hypervisor,
//! and crafted frames.
//!
//! The `pointer-attacks` test guest (booted as the initial domain) hands
//! every hypercall that takes a guest buffer pointers into the hypervisor's
//! range, non-canonical, unmapped and read-only ones, wrapping and crossing
//! ones, and checks each gets `-EFAULT` and changes nothing.
//!
//! Crafted frames that must end with the guest crashed run as DomUs beside
//! Dom0 (a crash of the initial domain stops the machine): each attacker
//! must be crashed with the reason in the log, while another guest keeps
//! running and Dom0 keeps answering.

use regex::Regex;
use scenarios::{BootConfig, Machine};
use std::time::{Duration, Instant};

#[test]
fn guest_pointers_into_the_hypervisor_are_refused() {
    let machine = Machine::run_test_guest("pointer-attacks");
    let log = machine.log();
    let passed = log.lines().filter(|line| line.starts_with("ok: ")).count();
    machine.ensure(
        passed >= 150,
        &format!("at least 150 checks ran ({passed})"),
    );
}

/// How long an attacker may take to be created and crashed.
const CRASH_TIMEOUT: Duration = Duration::from_secs(20);

/// Each crafted-frame attack of `guest-kernel/src/attacks.rs`, with the
/// reason the hypervisor must give when it crashes the attacker.
const CRAFTED: [(&str, &str); 8] = [
    (
        "iret-hypervisor-cs",
        "iret to segments other than the flat 64-bit ones",
    ),
    (
        "iret-kernel-ss",
        "iret to segments other than the flat 64-bit ones",
    ),
    (
        "iret-null-ss",
        "iret to segments other than the flat 64-bit ones",
    ),
    (
        "iret-noncanonical-rip",
        "general protection fault (vector 13, error 0x0) at rip 0x800000000000",
    ),
    (
        "iret-frame-in-hypervisor",
        "iret frame is not readable on the guest stack",
    ),
    (
        "trap-handler-in-hypervisor",
        "invalid opcode (vector 6, error 0x0) at rip 0x",
    ),
    (
        "event-callback-in-hypervisor",
        "cannot deliver an event upcall: the handler 0xffff830000100000 is not a guest address",
    ),
    (
        "stack-in-hypervisor",
        "breakpoint (vector 3, error 0x0) at rip 0x",
    ),
];

/// What else the reason must say, after the common prefix above.
fn reason_detail(kind: &str) -> Option<&'static str> {
    match kind {
        "trap-handler-in-hypervisor" => {
            Some("the handler 0xffff830000100000 is not a guest address")
        }
        "iret-noncanonical-rip" | "stack-in-hypervisor" => {
            Some("cannot write the exception frame to the guest stack at 0xffff8300")
        }
        _ => None,
    }
}

/// Waits until the whole serial log matches `pattern`.
fn await_log(machine: &Machine, pattern: &str) -> String {
    let regex = Regex::new(pattern).expect("a valid pattern");
    let deadline = Instant::now() + CRASH_TIMEOUT;
    loop {
        if let Some(found) = regex.find(&machine.log()) {
            return found.as_str().to_string();
        }
        if Instant::now() > deadline {
            machine.fail(&format!("no /{pattern}/ within {CRASH_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Crafted `iret` frames and entry points in the hypervisor's range, each
/// from a DomU beside Dom0 and a guest that keeps counting: the hypervisor
/// crashes each attacker with the reason, and only the attacker.
#[test]
fn crafted_frames_crash_only_the_attacker() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    machine.command("xl create /etc/xen/counter.cfg");
    for (number, (kind, reason)) in CRAFTED.iter().enumerate() {
        let name = format!("attack{number}");
        let output = machine.command(&format!(
            "xl create /etc/xen/attack.cfg name={name} cmdline=workload=attack-{kind}"
        ));
        let id = machine.ensure_match(
            &output,
            &format!(r"Started domain {name} \(id=(\d+)\)"),
            "the attacker's ID",
        )[1]
        .clone();
        let line = await_log(
            &machine,
            &format!(
                r"Domain {id} crashed: [^\r\n]*{}[^\r\n]*",
                regex::escape(reason)
            ),
        );
        if let Some(detail) = reason_detail(kind) {
            machine.ensure(line.contains(detail), &format!("{kind}: {line}"));
        }
        await_log(
            &machine,
            &format!(r"domain '{name}' \(id {id}\) crashed: destroyed"),
        );
    }
    machine.ensure(
        !machine.log().contains("survived the crafted iret"),
        "no attacker survived its crafted frame",
    );
    let before = machine.cpu_tenths("counter");
    std::thread::sleep(Duration::from_secs(2));
    let after = machine.cpu_tenths("counter");
    machine.ensure(
        after >= before + 10,
        &format!("the counter guest keeps running ({before} -> {after})"),
    );
    let list = machine.command("xl list");
    machine.ensure(
        !list.contains("attack"),
        &format!("every attacker is gone:\n{list}"),
    );
    machine.poweroff();
}
