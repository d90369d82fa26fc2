//! The config store: `xl create` writes a domain's keys into the
//! XenStore-compatible tree, Dom0's `xenstore-*` commands read and change
//! it, and `xl destroy` removes the keys again; a guest reads, writes and
//! watches its keys through its xenbus client and is refused others'; a
//! guest that floods the store hits its quotas while Dom0 and another
//! guest keep being served.

use scenarios::{BootConfig, Machine, COMMAND_TIMEOUT};
use std::time::Duration;

/// How long a guest may take to print something.
const GUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Creates a domain from `command` (an `xl create` line) and returns its ID.
fn create(machine: &mut Machine, command: &str, name: &str) -> u16 {
    let output = machine.command(command);
    let found = machine.ensure_match(
        &output,
        &format!(r"Started domain {name} \(id=(\d+)\)"),
        "the new domain's ID",
    );
    found[1].parse().expect("a domain ID")
}

/// Waits until the whole serial log (not just what came after the last
/// prompt: Dom0 may report a domain's end after its prompt) contains `text`.
fn await_log(machine: &Machine, text: &str) {
    let limit = scenarios::scaled(GUEST_TIMEOUT);
    let deadline = std::time::Instant::now() + limit;
    while !machine.log().contains(text) {
        if std::time::Instant::now() > deadline {
            machine.fail(&format!("no \"{text}\" within {limit:?}"));
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
        .unwrap_or_else(|error| machine.fail(&format!("{error}")));
    machine.send(&[0x1d]).unwrap();
    machine.expect_prompt(COMMAND_TIMEOUT).unwrap();
    shown
}

#[test]
fn xl_create_writes_the_domains_keys_and_xl_destroy_removes_them() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let output = machine.command("xl create /etc/xen/sleeper.cfg");
    let found = machine.ensure_match(
        &output,
        r"Started domain sleeper \(id=(\d+)\)",
        "the new domain's ID",
    );
    let id: u16 = found[1].parse().expect("a domain ID");

    let tree = machine.command("xenstore-ls");
    for line in [
        "local = \"\"",
        &format!("  {id} = \"\""),
        "   name = \"sleeper\"",
        &format!("   domid = \"{id}\""),
        "vm = \"\"",
    ] {
        machine.ensure(
            tree.contains(line),
            &format!("xenstore-ls shows {line:?}:\n{tree}"),
        );
    }
    let name = machine.command(&format!("xenstore-read /local/domain/{id}/name"));
    machine.ensure(name.trim() == "sleeper", &name);
    let vm = machine.command(&format!("xenstore-read /local/domain/{id}/vm"));
    let vm_name = machine.command(&format!("xenstore-read {}/name", vm.trim()));
    machine.ensure(vm_name.trim() == "sleeper", &vm_name);

    // Dom0 writes, lists and removes keys of its own.
    machine.command("xenstore-write /tool/test/greeting \"hello there\"");
    let listing = machine.command("xenstore-list /tool/test");
    machine.ensure(listing.trim() == "greeting", &listing);
    let value = machine.command("xenstore-read /tool/test/greeting");
    machine.ensure(value.trim() == "hello there", &value);
    machine.command("xenstore-rm /tool");
    let gone = machine.command("xenstore-read /tool/test/greeting");
    machine.ensure(gone.contains("ENOENT"), &gone);
    let invalid = machine.command("xenstore-read /a//b");
    machine.ensure(invalid.contains("EINVAL"), &invalid);

    let output = machine.command("xl destroy sleeper");
    machine.ensure(output.contains("Destroyed domain sleeper"), &output);
    let gone = machine.command(&format!("xenstore-read /local/domain/{id}/name"));
    machine.ensure(gone.contains("ENOENT"), &gone);
    let tree = machine.command("xenstore-ls /vm");
    machine.ensure(!tree.contains("sleeper"), &tree);
    machine.poweroff();
}

#[test]
fn a_guest_reads_writes_and_watches_its_own_xenstore_keys_and_is_refused_others() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let sleeper = create(&mut machine, "xl create /etc/xen/sleeper.cfg", "sleeper");
    let guest = create(
        &mut machine,
        &format!("xl create /etc/xen/xenstore.cfg cmdline=workload=xenstore,other={sleeper}"),
        "xenstore",
    );
    let shown = console_until(&mut machine, "xenstore", "xenstore: watching data/message");
    for line in [
        format!("xenstore: my name is xenstore (domain {guest})"),
        format!("xenstore: reading /local/domain/{sleeper}/name refused: EACCES"),
        "xenstore: wrote data/greeting".to_string(),
        "xenstore: data/count is 1 after a transaction".to_string(),
    ] {
        machine.ensure(
            shown.contains(&line),
            &format!("the guest says {line:?}:\n{shown}"),
        );
    }

    // What the guest wrote, Dom0 reads.
    let greeting = machine.command(&format!(
        "xenstore-read /local/domain/{guest}/data/greeting"
    ));
    machine.ensure(greeting.trim() == "hello from xenstore", &greeting);
    let count = machine.command(&format!("xenstore-read /local/domain/{guest}/data/count"));
    machine.ensure(count.trim() == "1", &count);

    // What Dom0 writes, the guest's watch reports.
    machine.command(&format!(
        "xenstore-write /local/domain/{guest}/data/message \"hi there\""
    ));
    let shown = console_until(
        &mut machine,
        "xenstore",
        "xenstore: watch event data/message (token message): \"hi there\"",
    );
    machine.ensure(!shown.contains("failed"), &shown);
    // "bye" makes it power off (it only does so on that value).
    machine.command(&format!(
        "xenstore-write /local/domain/{guest}/data/message bye"
    ));
    await_log(
        &machine,
        &format!("domain 'xenstore' (id {guest}) powered off"),
    );

    machine.command("xl destroy sleeper");
    machine.poweroff();
}

#[test]
fn a_guest_flooding_xenstore_hits_its_quotas_and_everyone_else_is_served() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let flood = create(
        &mut machine,
        "xl create /etc/xen/store-flood.cfg",
        "store-flood",
    );
    let shown = console_until(
        &mut machine,
        "store-flood",
        "store-flood: holding everything",
    );
    // Xen's default quotas (dom0/src/xenstore/quota.rs): 1,000 nodes, 2,048
    // bytes per entry, 128 watches, 10 transactions, 20 unread replies. Of
    // the 1,000 nodes the flooder owns its home, the home's name, domid and
    // vm, control/ and control/shutdown (xl create's, for shutdown
    // requests), flood/ and flood/d0..d9, so 983 leaves fit (d0..d8 with
    // 100 each, d9 with 83).
    for line in [
        "store-flood: nodes: 983 written, then EQUOTA",
        "store-flood: oversized value: E2BIG",
        "store-flood: watches: 128 registered, then EQUOTA",
        "store-flood: transactions: 10 open, then EQUOTA",
        "store-flood: unread replies: Dom0 stopped taking requests after",
    ] {
        machine.ensure(
            shown.contains(line),
            &format!("the flooder says {line:?}:\n{shown}"),
        );
    }

    // Dom0 keeps answering, about the flooder too.
    let tree = machine.command("xenstore-ls /vm");
    machine.ensure(tree.contains("name = \"store-flood\""), &tree);
    let last = machine.command(&format!("xenstore-read /local/domain/{flood}/flood/d9/n82"));
    machine.ensure(last.trim() == "x", &last);
    machine.command("xenstore-write /tool/after-flood yes");
    let value = machine.command("xenstore-read /tool/after-flood");
    machine.ensure(value.trim() == "yes", &value);

    // And another guest is served while the flooder holds everything.
    let guest = create(
        &mut machine,
        &format!("xl create /etc/xen/xenstore.cfg cmdline=workload=xenstore,other={flood}"),
        "xenstore",
    );
    let shown = console_until(&mut machine, "xenstore", "xenstore: watching data/message");
    machine.ensure(
        shown.contains(&format!("xenstore: my name is xenstore (domain {guest})")),
        &shown,
    );
    machine.ensure(
        shown.contains(&format!(
            "reading /local/domain/{flood}/name refused: EACCES"
        )),
        &shown,
    );
    let greeting = machine.command(&format!(
        "xenstore-read /local/domain/{guest}/data/greeting"
    ));
    machine.ensure(greeting.trim() == "hello from xenstore", &greeting);

    let output = machine.command("xl destroy store-flood");
    machine.ensure(output.contains("Destroyed domain store-flood"), &output);
    let gone = machine.command(&format!("xenstore-read /local/domain/{flood}/name"));
    machine.ensure(gone.contains("ENOENT"), &gone);
    machine.command("xl destroy xenstore");
    machine.poweroff();
}

/// The last line of a command's output, trimmed.
fn last_line(output: &str) -> &str {
    output.trim_end().lines().last().unwrap_or("").trim()
}

/// Reads `path` at Dom0's prompt until it holds `value`.
fn await_value(machine: &mut Machine, path: &str, value: &str) {
    let limit = scenarios::scaled(GUEST_TIMEOUT);
    let deadline = std::time::Instant::now() + limit;
    loop {
        let read = machine.command(&format!("xenstore-read {path}"));
        if read.trim() == value {
            return;
        }
        if std::time::Instant::now() > deadline {
            machine.fail(&format!(
                "{path} is not \"{value}\" within {limit:?}: {read}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `xl shutdown` and `xl reboot` travel through the store as in Xen: the
/// toolstack writes the word in the guest's control/shutdown, the guest
/// (watching it from start of day, whatever its workload does) reads it,
/// clears it and stops with the matching reason. A guest that never
/// announced control/feature-poweroff is not asked: `xl shutdown` says to
/// use `xl destroy`, which still works.
#[test]
fn xl_shutdown_and_reboot_travel_through_control_shutdown() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    // A CPU-bound guest: it hears the request in its event upcall.
    let counter = create(
        &mut machine,
        "xl create /etc/xen/counter.cfg on_poweroff=preserve",
        "counter",
    );
    let home = format!("/local/domain/{counter}");
    await_value(
        &mut machine,
        &format!("{home}/control/feature-poweroff"),
        "1",
    );
    await_value(&mut machine, &format!("{home}/control/feature-reboot"), "1");
    let control = machine.command(&format!("xenstore-ls {home}/control"));
    machine.ensure(control.contains("shutdown = \"\""), &control);

    // Paused, it cannot read the request: the node shows it meanwhile.
    machine.command("xl pause counter");
    let output = machine.command("xl shutdown counter");
    machine.ensure(
        output.contains(&format!(
            "Shutting down domain {counter}: it is paused, so it reads the request when it is unpaused"
        )),
        &output,
    );
    let pending = machine.command(&format!("xenstore-read {home}/control/shutdown"));
    machine.ensure(pending.trim() == "poweroff", &pending);
    machine.command("xl unpause counter");
    await_log(
        &machine,
        &format!("domain 'counter' (id {counter}) powered off: kept"),
    );
    // (The toolstack's line came after the prompt: take it with a command.)
    machine.command("xl list");
    let cleared = machine.command(&format!("xenstore-read {home}/control/shutdown"));
    machine.ensure(
        cleared.trim().is_empty(),
        &format!("the guest cleared it: {cleared}"),
    );
    let shown = machine.command("xl console counter");
    machine.ensure(
        shown.contains(
            "control: control/shutdown = \"poweroff\": shutting down (SHUTDOWN_poweroff)",
        ),
        &format!("the guest says what it read:\n{shown}"),
    );
    let list = machine.command("xl list counter");
    machine.ensure_match(
        &list,
        r"(?m)^counter\s+\d+\s+8\s+1\s+---s--",
        "kept, shut down",
    );
    machine.command("xl destroy counter");

    // xl reboot: the guest reboots, and on_reboot ("restart", the default)
    // builds it again under a new ID, with its name in the store.
    let clock = create(&mut machine, "xl create /etc/xen/clock.cfg", "clock");
    await_value(
        &mut machine,
        &format!("/local/domain/{clock}/control/feature-reboot"),
        "1",
    );
    let output = machine.command("xl reboot clock");
    machine.ensure(
        output.contains(&format!("Rebooting domain {clock}")),
        &output,
    );
    await_log(
        &machine,
        &format!("domain 'clock' (id {clock}) rebooted: restarted as id "),
    );
    let restarted = regex::Regex::new(&format!(
        r"domain 'clock' \(id {clock}\) rebooted: restarted as id (\d+)"
    ))
    .unwrap();
    let log = machine.log();
    let new_id: u16 = restarted.captures(&log).expect("the new ID")[1]
        .parse()
        .expect("an ID");
    let name = machine.command(&format!("xenstore-read /local/domain/{new_id}/name"));
    machine.ensure(last_line(&name) == "clock", &name);
    let list = machine.command("xl list clock");
    machine.ensure_match(&list, &format!(r"(?m)^clock\s+{new_id}\s"), "the new clock");
    machine.command("xl destroy clock");

    // A guest that never watches control/shutdown (the store flooder
    // ignores the toolstack) is not asked; xl destroy stops it.
    let flood = create(
        &mut machine,
        "xl create /etc/xen/store-flood.cfg",
        "store-flood",
    );
    console_until(&mut machine, "store-flood", "store-flood: nodes:");
    let output = machine.command("xl shutdown store-flood");
    machine.ensure(
        output.contains(&format!(
            "xl shutdown: PV control interface not available: domain store-flood (id {flood}) never announced control/feature-poweroff"
        )) && output.contains("'xl destroy store-flood' stops it at once"),
        &output,
    );
    let untouched = machine.command(&format!(
        "xenstore-read /local/domain/{flood}/control/shutdown"
    ));
    machine.ensure(untouched.trim().is_empty(), &untouched);
    let output = machine.command("xl destroy store-flood");
    machine.ensure(output.contains("Destroyed domain store-flood"), &output);
    machine.poweroff();
}
