//! Dom0 fault scenarios: a faulting Dom0 is reported and crashes the machine with
//! `EXIT_DOM0_CRASHED`, rather than taking the hypervisor down.

use scenarios::{BootConfig, Machine, COMMAND_TIMEOUT, EXIT_DOM0_CRASHED, PROMPT};

/// Boots, types `command`, waits for `pattern` (a regex) in the serial log, then for QEMU to
/// exit with `EXIT_DOM0_CRASHED`. A prompt coming back first means Dom0 did not crash: that
/// fails at once rather than after the time limit.
fn crash_dom0(command: &str, pattern: &str) {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    machine
        .send_line(command)
        .unwrap_or_else(|error| panic!("could not type `{command}`: {error}"));
    let either = format!("(?P<expected>{pattern})|{}", regex::escape(PROMPT));
    match machine.expect_regex(&either, COMMAND_TIMEOUT) {
        Ok(found) if found.group(1).is_empty() => machine.fail(&format!(
            "after `{command}` the shell returned to its prompt; expected /{pattern}/ and a crash"
        )),
        Ok(_) => {}
        Err(error) => panic!("after `{command}`: {error}"),
    }
    machine.expect_exit(EXIT_DOM0_CRASHED, COMMAND_TIMEOUT);
}

/// Contract 10: Dom0 touches an unmapped address; its own trap handler reports the fault and
/// Dom0 crashes.
#[test]
fn dom0_page_fault_crashes_dom0() {
    crash_dom0(
        "debug pagefault",
        "page fault .*\\n.*the faulting address was 0xdead0000",
    );
}

/// Contract 11: Dom0 page-faults with no handler registered in its trap table.
#[test]
fn dom0_fault_without_handler_crashes_dom0() {
    crash_dom0("debug nohandler", "no handler");
}

/// Contract 12: Dom0 executes a privileged instruction in ring 3.
#[test]
fn dom0_privileged_instruction_crashes_dom0() {
    crash_dom0("debug privileged", "(?i)general protection");
}
