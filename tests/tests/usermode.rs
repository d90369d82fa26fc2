//! Guest user mode: a guest kernel runs programs in guest user mode, they
//! make system calls into it, and what user mode may not do fails.

use regex::Regex;
use scenarios::{BootConfig, Machine};
use std::time::Duration;

/// How long a guest may take to print something.
const GUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits until the whole serial log matches `pattern`; returns the match.
fn await_log(machine: &Machine, pattern: &str) -> String {
    let regex = Regex::new(pattern).expect("a valid pattern");
    let deadline = std::time::Instant::now() + GUEST_TIMEOUT;
    loop {
        if let Some(found) = regex.find(&machine.log()) {
            return found.as_str().to_string();
        }
        if std::time::Instant::now() > deadline {
            machine.fail(&format!("no /{pattern}/ within {GUEST_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn user_programs_make_system_calls_and_cannot_reach_the_kernel() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    machine.command("xl create /etc/xen/counter.cfg");
    let output = machine.command("xl create -c /etc/xen/user.cfg");
    // init printed through write(), got its pid, and saw the user GS base.
    for line in [
        "init: hello from user mode",
        "init: getpid says 1",
        "init: %gs:0 holds: user GS",
    ] {
        machine.ensure(output.contains(line), &format!("{line:?} in:\n{output}"));
    }
    // Every program, the attacking ones included, ended as it must.
    for program in [
        "init",
        "syscall-bench",
        "hypercall-by-syscall",
        "iret-from-user",
        "int-0x80",
        "int-0x82",
        "kernel-read",
    ] {
        machine.ensure(
            output.contains(&format!("user: {program}: ok")),
            &format!("{program} ok in:\n{output}"),
        );
    }
    machine.ensure(
        output.contains("user: unknown system call 17: -ENOSYS")
            && output.contains("user: unknown system call 23: -ENOSYS"),
        &format!("hypercall numbers from user mode reach the guest kernel:\n{output}"),
    );
    machine.ensure(
        output.contains("user: all 7 programs behaved") && !output.contains("FAILED"),
        &output,
    );
    machine.ensure(
        Regex::new(r"domain 'user' \(id \d+\) powered off: destroyed")
            .unwrap()
            .is_match(&output),
        &output,
    );

    // Entering user mode at a non-canonical address crashes only that guest.
    let output = machine.command(
        "xl create /etc/xen/user.cfg name=noncanonical cmdline=workload=user-noncanonical-iret",
    );
    let id = machine.ensure_match(
        &output,
        r"Started domain noncanonical \(id=(\d+)\)",
        "the attacker's ID",
    )[1]
    .clone();
    await_log(
        &machine,
        &format!(r"Domain {id} crashed: iret to a non-canonical address"),
    );
    await_log(
        &machine,
        &format!(r"domain 'noncanonical' \(id {id}\) crashed: destroyed"),
    );
    let before = machine.cpu_tenths("counter");
    std::thread::sleep(Duration::from_secs(2));
    let after = machine.cpu_tenths("counter");
    machine.ensure(
        after >= before + 10,
        &format!("the counter guest keeps running ({before} -> {after})"),
    );
    machine.poweroff();
}
