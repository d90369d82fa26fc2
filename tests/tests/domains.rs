//! Domains: Dom0 builds and runs PV guests, and `xl` creates, lists,
//! pauses, shuts down and destroys them, typed at the console as a user
//! would.

use regex::Regex;
use scenarios::{BootConfig, Machine, COMMAND_TIMEOUT};
use std::time::Duration;

/// How long a guest may take to print something.
const GUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn free_memory(machine: &mut Machine) -> u64 {
    let info = machine.command("xl info");
    let found = machine.ensure_match(
        &info,
        r"(?m)^free_memory\s*: (\d+)",
        "free_memory in xl info",
    );
    found[1].parse().expect("a number")
}

/// Waits until the whole serial log (not just what came after the last
/// prompt: a guest may print before Dom0's prompt returns) contains `text`.
fn await_log(machine: &Machine, text: &str) {
    let deadline = std::time::Instant::now() + GUEST_TIMEOUT;
    while !machine.log().contains(text) {
        if std::time::Instant::now() > deadline {
            machine.fail(&format!("no \"{text}\" within {GUEST_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Counts the lines matching `pattern` in the whole log.
fn count_lines(machine: &Machine, pattern: &str) -> usize {
    let regex = Regex::new(pattern).expect("pattern");
    machine
        .log()
        .lines()
        .filter(|line| regex.is_match(line))
        .count()
}

#[test]
fn a_guest_is_created_prints_and_is_destroyed_on_poweroff() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let before = free_memory(&mut machine);
    let output = machine.command("xl create /etc/xen/hello.cfg");
    machine.ensure_match(
        &output,
        r"Started domain hello \(id=(\d+)\)",
        "the new domain's ID",
    );
    await_log(&machine, r"(d1) Hello from a PV guest: 8 MiB");
    await_log(&machine, "domain 'hello' (id 1) powered off: destroyed");
    let list = machine.command("xl list");
    machine.ensure(
        !Regex::new(r"(?m)^hello\s+\d").unwrap().is_match(&list),
        &format!("hello is gone from xl list:\n{list}"),
    );
    let after = free_memory(&mut machine);
    machine.ensure(
        after == before,
        &format!("free memory back to {before} MiB (now {after})"),
    );
    machine.poweroff();
}

#[test]
fn two_guests_run_at_once_and_pause_stops_one() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    machine.command("xl create /etc/xen/counter.cfg");
    machine.command("xl create /etc/xen/counter.cfg name=counter2");
    await_log(&machine, "(d1) counter: tick 3");
    await_log(&machine, "(d2) counter: tick 3");
    let list = machine.command("xl list");
    machine.ensure_match(&list, r"(?m)^counter\s+1\s+8\s+1\s", "counter in xl list");
    machine.ensure_match(&list, r"(?m)^counter2\s+2\s+8\s+1\s", "counter2 in xl list");

    machine.command("xl pause counter");
    let list = machine.command("xl list counter");
    machine.ensure_match(
        &list,
        r"(?m)^counter\s+1\s+8\s+1\s+--p---",
        "the paused state letter",
    );
    let paused_at = count_lines(&machine, r"\(d1\) counter: tick");
    await_log(&machine, "(d2) counter: tick 6");
    let still = count_lines(&machine, r"\(d1\) counter: tick");
    machine.ensure(
        still == paused_at,
        &format!("counter printed nothing while paused ({paused_at} then {still} ticks)"),
    );
    machine.command("xl unpause counter");
    await_log(&machine, &format!("(d1) counter: tick {}", paused_at + 2));

    machine.command("xl shutdown counter");
    await_log(&machine, "domain 'counter' (id 1) powered off: destroyed");
    let before = free_memory(&mut machine);
    let output = machine.command("xl destroy counter2");
    machine.ensure(
        output.contains("Destroyed domain counter2 (id=2)"),
        &format!("destroy says so:\n{output}"),
    );
    let after = free_memory(&mut machine);
    machine.ensure(
        after >= before + 8,
        &format!("destroy freed its 8 MiB ({before} -> {after})"),
    );
    machine.poweroff();
}

#[test]
fn a_crashing_guest_is_reported_and_another_keeps_running() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    machine.command("xl create /etc/xen/counter.cfg");
    machine.command("xl create /etc/xen/crash.cfg");
    await_log(&machine, "Domain 2 crashed: page fault (vector 14");
    await_log(&machine, "no handler in the trap table");
    await_log(&machine, "domain 'crash' (id 2) crashed: destroyed");
    let ticks = count_lines(&machine, r"\(d1\) counter: tick");
    await_log(&machine, &format!("(d1) counter: tick {}", ticks + 2));
    machine.poweroff();
}

#[test]
fn mistakes_get_sentences() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let output = machine.command("xl create /etc/xen/nope.cfg");
    machine.ensure(
        output.contains("there is no file /etc/xen/nope.cfg"),
        &output,
    );
    let output = machine.command("xl create /etc/xen/hello.cfg memroy=8");
    machine.ensure(
        output.contains("command-line setting 'memroy=8': unknown key 'memroy'"),
        &output,
    );
    let output = machine.command("xl create /etc/xen/hello.cfg memory=0");
    machine.ensure(output.contains("out of range"), &output);
    let output = machine.command("xl create /etc/xen/hello.cfg kernel=/boot/missing");
    machine.ensure(output.contains("the kernel image '/boot/missing'"), &output);
    let output = machine.command("xl create /etc/xen/hello.cfg memory=60000");
    machine.ensure(
        output.contains("not enough memory") && output.contains("MiB are free"),
        &output,
    );
    let output = machine.command("xl create /etc/xen/hello.cfg kernel=/etc/xen/hello.cfg");
    machine.ensure(output.contains("is not an ELF file"), &output);
    let output = machine.command("xl destroy Domain-0");
    machine.ensure(output.contains("Domain-0 cannot be destroyed"), &output);
    let output = machine.command("xl pause ghost");
    machine.ensure(
        output.contains("there is no domain called 'ghost'"),
        &output,
    );
    machine.poweroff();
}

#[test]
fn an_unprivileged_guest_is_refused_control_and_keeps_running() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    machine.command("xl create /etc/xen/probe.cfg");
    await_log(&machine, "(d1) probe: still running");
    let log = machine.log();
    for line in [
        "(d1) probe: domctl createdomain returned -1 (EPERM)",
        "(d1) probe: domctl destroydomain of Domain-0 returned -1 (EPERM)",
        "(d1) probe: sysctl physinfo returned -1 (EPERM)",
        "(d1) probe: mmu_update with Domain-0 as the foreign domain returned -1 (EPERM)",
        "(d1) probe: console_io read returned -1 (EPERM)",
    ] {
        machine.ensure(log.contains(line), line);
    }
    machine.poweroff();
}

#[test]
fn a_hundred_creates_and_destroys_leak_nothing() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    machine
        .send_line("debug cycles 100 /etc/xen/hello.cfg")
        .unwrap();
    let line = machine
        .expect_regex(
            r"debug cycles: 100 creates and destroys.*: (no leak|LEAKED \d+ pages)",
            Duration::from_secs(240),
        )
        .unwrap_or_else(|error| panic!("{error}"));
    machine.ensure(line.group(1) == "no leak", &line.text);
    machine.expect_prompt(COMMAND_TIMEOUT).unwrap();
    machine.poweroff();
}
