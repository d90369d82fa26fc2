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

/// Attaches to `name`'s console (`xl console`), waits until it shows
/// `needle`, detaches with Ctrl-] and returns what the console showed.
fn console_until(machine: &mut Machine, name: &str, needle: &str) -> String {
    machine.send_line(&format!("xl console {name}")).unwrap();
    let shown = machine
        .expect(needle, GUEST_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    machine.send(&[0x1d]).unwrap();
    machine.expect_prompt(COMMAND_TIMEOUT).unwrap();
    shown
}

#[test]
fn a_guest_is_created_prints_and_is_destroyed_on_poweroff() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let before = free_memory(&mut machine);
    let output = machine.command("xl create -c /etc/xen/hello.cfg");
    machine.ensure_match(
        &output,
        r"Started domain hello \(id=(\d+)\)",
        "the new domain's ID",
    );
    // Attached with -c: the guest's own console shows its greeting, and
    // the prompt comes back once it powered off and was destroyed.
    machine.ensure(output.contains("Hello from a PV guest: 8 MiB"), &output);
    machine.ensure(
        output.contains("domain 'hello' (id 1) powered off: destroyed"),
        &output,
    );
    machine.ensure(
        !machine.log().contains("(d1) Hello"),
        "guest output goes to its console, not the hypervisor's",
    );
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
    console_until(&mut machine, "counter", "counter: tick 3");
    console_until(&mut machine, "counter2", "counter: tick 3");
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
    let (paused_before, other_before) = (
        machine.cpu_tenths("counter"),
        machine.cpu_tenths("counter2"),
    );
    std::thread::sleep(Duration::from_secs(3));
    let (paused_after, other_after) = (
        machine.cpu_tenths("counter"),
        machine.cpu_tenths("counter2"),
    );
    machine.ensure(
        paused_after == paused_before,
        &format!("a paused domain gets no CPU ({paused_before} -> {paused_after})"),
    );
    machine.ensure(
        other_after >= other_before + 10,
        &format!("the other one runs ({other_before} -> {other_after})"),
    );
    machine.command("xl unpause counter");
    std::thread::sleep(Duration::from_secs(2));
    let resumed = machine.cpu_tenths("counter");
    machine.ensure(
        resumed > paused_after,
        &format!("unpaused, it runs again ({paused_after} -> {resumed})"),
    );
    let shown = console_until(&mut machine, "counter", "counter: tick 20");
    machine.ensure(
        shown.contains("counter: tick 1\r\n"),
        "the console keeps its scrollback from the first line",
    );

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
    let before = machine.cpu_tenths("counter");
    std::thread::sleep(Duration::from_secs(2));
    let after = machine.cpu_tenths("counter");
    machine.ensure(
        after >= before + 10,
        &format!("counter keeps running ({before} -> {after})"),
    );
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
    let output = machine.command("xl create -c /etc/xen/probe.cfg");
    for line in [
        "probe: domctl createdomain returned -1 (EPERM)",
        "probe: domctl destroydomain of Domain-0 returned -1 (EPERM)",
        "probe: sysctl physinfo returned -1 (EPERM)",
        "probe: mmu_update with Domain-0 as the foreign domain returned -1 (EPERM)",
        "probe: console_io read returned -1 (EPERM)",
        "probe: still running",
    ] {
        machine.ensure(output.contains(line), line);
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

/// Typing at `xl console` reaches the guest's input ring, and its answers
/// come back; Ctrl-] returns to Dom0's prompt.
#[test]
fn console_input_reaches_the_guest() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    machine.command("xl create /etc/xen/echo.cfg");
    machine.send_line("xl console echo").unwrap();
    machine
        .expect("echo: type a line", GUEST_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    machine.send_line("hello there").unwrap();
    machine
        .expect("echo: hello there", GUEST_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    machine.send(&[0x1d]).unwrap();
    machine.expect_prompt(COMMAND_TIMEOUT).unwrap();
    let list = machine.command("xl list echo");
    machine.ensure_match(
        &list,
        r"(?m)^echo\s+1\s+8\s+1\s+-b----",
        "detached, the guest waits for input",
    );
    machine.send_line("xl console echo").unwrap();
    machine
        .expect("echo: hello there", GUEST_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    machine.send_line("bye").unwrap();
    machine
        .expect("domain 'echo' (id 1) powered off: destroyed", GUEST_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    machine.expect_prompt(COMMAND_TIMEOUT).unwrap();
    machine.poweroff();
}

/// A shutdown request (control/shutdown in the store) reaches a guest that
/// sleeps (blocked, waiting for an event) and one that has not run yet
/// (created paused), and pauses nest
/// as in Xen: as many unpauses as pauses, no unpause of a running domain.
#[test]
fn shutdown_reaches_sleeping_and_paused_guests_and_pauses_nest() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    // A guest blocked in sched_op(block), waiting for console input.
    machine.command("xl create /etc/xen/echo.cfg");
    let blocked = Regex::new(r"(?m)^echo\s+1\s+8\s+1\s+-b----").unwrap();
    let deadline = std::time::Instant::now() + GUEST_TIMEOUT;
    while !blocked.is_match(&machine.command("xl list echo")) {
        machine.ensure(
            std::time::Instant::now() < deadline,
            "echo blocks, waiting for input",
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = machine.command("xl shutdown echo");
    machine.ensure(
        output.contains("Shutting down domain 1"),
        &format!("xl shutdown answers:\n{output}"),
    );
    await_log(&machine, "domain 'echo' (id 1) powered off: destroyed");

    // Created paused: it has not run, so it has not started watching
    // control/shutdown yet; the request waits in the node, and the guest's
    // first watch event at unpause finds it.
    machine.command("xl create -p /etc/xen/counter.cfg");
    let output = machine.command("xl shutdown counter");
    machine.ensure(
        output.contains("it is paused, so it reads the request when it is unpaused"),
        &format!("xl shutdown of a paused guest says when it takes effect:\n{output}"),
    );
    let list = machine.command("xl list counter");
    machine.ensure_match(
        &list,
        r"(?m)^counter\s+\d+\s+8\s+1\s+--p---",
        "still there, paused",
    );
    machine.command("xl unpause counter");
    await_log(&machine, "domain 'counter' (id 1) powered off: destroyed");

    // Pauses nest; unpausing a running domain is refused with a sentence.
    machine.command("xl create /etc/xen/counter.cfg");
    machine.command("xl pause counter");
    machine.command("xl pause counter");
    machine.command("xl unpause counter");
    let list = machine.command("xl list counter");
    machine.ensure_match(
        &list,
        r"(?m)^counter\s+\d+\s+8\s+1\s+--p---",
        "paused twice, unpaused once",
    );
    let output = machine.command("xl unpause counter");
    machine.ensure(
        output.trim().is_empty(),
        &format!("the second unpause is silent:\n{output}"),
    );
    let output = machine.command("xl unpause counter");
    machine.ensure(
        output.contains("is not paused"),
        &format!("unpause of a running domain:\n{output}"),
    );
    let output = machine.command("xl unpause 0");
    machine.ensure(
        output.contains("Domain-0 is never paused"),
        &format!("unpause of Domain-0:\n{output}"),
    );
    machine.poweroff();
}

#[test]
fn domain_creation_beyond_the_scheduler_limit_is_refused() {
    // The guest creates empty domains until createdomain fails: -ENOSPC at
    // the scheduler's 64 vCPUs, twice over, with every domain destroyed.
    Machine::run_test_guest("domain-limits");
}
