//! Dom0 `debug` scenarios that leave the system running: an unimplemented hypercall, and the
//! command line the boot loader gave Dom0.

use scenarios::{BootConfig, Machine};

/// Contract 13: an unimplemented hypercall returns -ENOSYS to Dom0, the hypervisor logs it
/// with the calling domain, and the shell goes on.
#[test]
fn unimplemented_hypercall_returns_enosys() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let output = machine.command("debug hypercall 34");
    machine.ensure(
        output.contains("returned -38 (ENOSYS"),
        &format!("Dom0 reports -38 (ENOSYS); `debug hypercall 34` printed:\n{output}"),
    );
    machine.ensure(
        machine
            .log()
            .lines()
            .any(|line| line.contains("unimplemented hypercall") && line.contains("d0")),
        "the hypervisor logs a line with \"unimplemented hypercall\" naming the caller \"d0\"",
    );
    machine.poweroff();
}

/// Contract 14: Dom0 sees the command line given to its module.
#[test]
fn dom0_command_line_is_passed_through() {
    let mut machine =
        Machine::boot_to_prompt(BootConfig::direct_from_env().dom0_cmdline("hello=world"));
    let output = machine.command("debug cmdline");
    machine.ensure(
        output.contains("hello=world"),
        &format!("`debug cmdline` shows \"hello=world\"; it printed:\n{output}"),
    );
    machine.poweroff();
}

/// Dom0's heap grows through the validated page-table hypercalls: 8 MiB is
/// far more than the initial 256 KiB, and comes back intact. The breakpoint
/// round trip (bounce + iret) works on the way.
#[test]
fn dom0_heap_grows_and_breakpoints_return() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let output = machine.command("debug heap 8");
    let sizes = machine.ensure_match(
        &output,
        r"heap grew from (\d+) KiB to (\d+) KiB; 8 MiB allocated, written and read back intact",
        "the heap report",
    );
    let (before, after): (u64, u64) = (sizes[1].parse().unwrap(), sizes[2].parse().unwrap());
    machine.ensure(
        before < 8192 && after >= 8192,
        &format!("grew from {before} to {after} KiB"),
    );
    let output = machine.command("debug heap 100000");
    machine.ensure(
        output.contains("could not allocate 100000 MiB"),
        "too much is refused in words",
    );
    let output = machine.command("debug breakpoint");
    machine.ensure(
        output.contains("breakpoint at rip") && output.contains("back from the breakpoint handler"),
        &format!("int3 is bounced and returns; it printed:\n{output}"),
    );
    machine.poweroff();
}
