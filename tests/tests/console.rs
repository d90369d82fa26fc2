//! Dom0 shell scenarios: `help`, line editing, unknown commands, and the read-only `xl`
//! commands. Each test boots once and runs several commands, to keep the suite fast.

use scenarios::{BootConfig, Machine, COMMAND_TIMEOUT};

/// `xl list`'s header line.
const XL_LIST_HEADER: &str = r"(?m)^Name\s+ID\s+Mem\s+VCPUs\s+State\s+Time\(s\)\s*$";
/// `xl list`'s row for Dom0; group 1 is its memory in MiB.
const XL_LIST_DOM0_ROW: &str = r"(?m)^Domain-0\s+0\s+(\d+)\s+1\s+r-----\s+\d+\.\d\s*$";

/// Types `typed` (which ends in `\r`) as raw bytes and returns the output up to the next prompt.
fn type_raw(machine: &mut Machine, typed: &[u8]) -> String {
    machine
        .send(typed)
        .unwrap_or_else(|error| panic!("could not type {typed:?}: {error}"));
    machine
        .expect_prompt(COMMAND_TIMEOUT)
        .unwrap_or_else(|error| panic!("no prompt after typing {typed:?}: {error}"))
}

/// Contracts 3, 7 and 8: `help` lists the commands, an unknown command is reported and the
/// shell goes on, and both backspace codes (DEL 0x7f and BS 0x08) erase a typed character.
#[test]
fn help_unknown_command_and_backspace() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());

    let help = machine.command("help");
    for command in ["help", "xl list", "xl info", "xl dmesg", "poweroff"] {
        machine.ensure(
            help.contains(command),
            &format!("`help` lists {command:?}; it printed:\n{help}"),
        );
    }

    let unknown = machine.command("frobnicate");
    machine.ensure(
        unknown.contains("unknown command 'frobnicate'"),
        &format!("an unknown command is reported; `frobnicate` printed:\n{unknown}"),
    );
    let listing = machine.command("xl list");
    machine.ensure_match(
        &listing,
        XL_LIST_HEADER,
        "`xl list` works after an unknown command",
    );

    for backspace in [0x7f_u8, 0x08] {
        let mut typed = b"xl lisx".to_vec();
        typed.push(backspace);
        typed.extend_from_slice(b"t\r");
        let output = type_raw(&mut machine, &typed);
        machine.ensure_match(
            &output,
            XL_LIST_HEADER,
            &format!("byte {backspace:#04x} erases the mistyped 'x' of \"xl lisx\""),
        );
    }

    machine.poweroff();
}

/// Contracts 4, 5 and 6: `xl list`, `xl info` and `xl dmesg` report Dom0 and the machine
/// (and `xl dmesg -c` clears what it showed).
#[test]
fn xl_list_info_and_dmesg() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env().memory("512M"));

    let listing = machine.command("xl list");
    machine.ensure_match(&listing, XL_LIST_HEADER, "`xl list` prints its header");
    let row = machine.ensure_match(&listing, XL_LIST_DOM0_ROW, "`xl list` has Domain-0's row");
    let dom0_memory: u64 = row[1].parse().expect("the pattern matched digits");
    machine.ensure(dom0_memory > 0, "Domain-0's memory is more than 0 MiB");

    let info = machine.command("xl info");
    machine.ensure_match(
        &info,
        r"^xen_version\s*: 4\.17",
        "`xl info` has xen_version 4.17",
    );
    machine.ensure_match(&info, r"^nr_cpus\s*: 1\s*$", "`xl info` has nr_cpus 1");
    let number = |key: &str| -> u64 {
        let pattern = format!(r"^{key}\s*: (\d+)");
        let groups = machine.ensure_match(&info, &pattern, &format!("`xl info` has {key}"));
        groups[1].parse().expect("the pattern matched digits")
    };
    let total = number("total_memory");
    let free = number("free_memory");
    machine.ensure(
        0 < free && free < total,
        &format!("0 < free_memory ({free}) < total_memory ({total})"),
    );
    machine.ensure(
        (400..=512).contains(&total),
        &format!("total_memory ({total} MiB) is about QEMU's -m 512M"),
    );

    let dmesg = machine.command("xl dmesg");
    machine.ensure(
        dmesg.contains("(XEN)") && dmesg.contains("xen-like 0.1.0"),
        &format!("`xl dmesg` shows the hypervisor's (XEN) boot log; it printed:\n{dmesg}"),
    );

    // `-c` prints the log once more and then forgets what it printed.
    let cleared = machine.command("xl dmesg -c");
    machine.ensure(
        cleared.contains("xen-like 0.1.0"),
        &format!("`xl dmesg -c` still prints the boot log; it printed:\n{cleared}"),
    );
    let after = machine.command("xl dmesg");
    machine.ensure(
        !after.contains("xen-like 0.1.0"),
        &format!("after `xl dmesg -c` the boot log is gone; `xl dmesg` printed:\n{after}"),
    );

    machine.poweroff();
}
