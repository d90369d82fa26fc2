//! Guest user mode: a guest kernel runs programs in guest user mode, they
//! make system calls into it, and what user mode may not do fails.

use regex::Regex;
use scenarios::{BootConfig, Machine};
use std::time::Duration;

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

    // Entering user mode at a non-canonical address: the guest kernel gets
    // the #GP(0) from user mode at that address (Xen's XSA-7 handling),
    // not the hypervisor's own iretq.
    let output = machine.command(
        "xl create -c /etc/xen/user.cfg name=noncanonical cmdline=workload=user-noncanonical-iret",
    );
    machine.ensure(
        output.contains(
            "user: non-canonical entry: vector 13 error 0x0 at rip 0x800000000000, cs 0xe033",
        ),
        &format!("the #GP from user mode at the non-canonical address in:\n{output}"),
    );
    machine.ensure(
        Regex::new(r"domain 'noncanonical' \(id \d+\) powered off: destroyed")
            .unwrap()
            .is_match(&output),
        &output,
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
