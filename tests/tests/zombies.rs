//! Zombie domains (issue 19, section 2): a destroyed domain whose frame is
//! still mapped by another domain stays dying, holding that frame and its
//! ID, until the mapping goes; a new domain never inherits the frame.

use scenarios::{BootConfig, Machine};
use std::time::{Duration, Instant};

/// Waits until the serial log holds `text`, wherever it came.
fn await_log(machine: &Machine, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !machine.log().contains(text) {
        if Instant::now() > deadline {
            machine.fail(&format!("no \"{text}\" in the log"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `zombies` test guest (privileged, booted as the initial domain)
/// maps a domain's frame, writes a secret in it, destroys the domain and
/// tries to reach the frame through the next domain created.
#[test]
fn zombie_keeps_a_destroyed_domains_mapped_frame_from_the_next_domain() {
    let machine = Machine::run_test_guest("zombies");
    let log = machine.log();
    let passed = log.lines().filter(|line| line.starts_with("ok: ")).count();
    machine.ensure(passed >= 15, &format!("at least 15 checks ran ({passed})"));
}

/// The same story at Dom0's prompt: `xl destroy` of a domain whose frame
/// Dom0 still maps says it is dying and how much it waits for, `xl list`
/// shows it with `d`, a new domain may take its name but not its ID, and
/// unmapping the frame makes the zombie go.
#[test]
fn xl_shows_a_zombie_until_its_last_frame_is_released() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let created = machine.command("xl create -p /etc/xen/hello.cfg");
    machine.ensure(created.contains("Started domain hello (id=1)"), &created);
    let held = machine.command("debug hold-frame hello");
    machine.ensure(held.contains("is mapped in Dom0"), &held);

    let destroyed = machine.command("xl destroy hello");
    machine.ensure(
        destroyed.contains("domain hello (id=1) is dying: waiting for 1 frame(s)"),
        &destroyed,
    );
    let list = machine.command("xl list");
    machine.ensure_match(
        &list,
        r"(?m)^hello\s+1\s+0\s+1\s+\S*d\s",
        "the zombie is listed with 'd'",
    );
    let again = machine.command("xl destroy 1");
    machine.ensure(again.contains("is dying: waiting for 1 frame(s)"), &again);

    let successor = machine.command("xl create -p /etc/xen/hello.cfg");
    machine.ensure(
        successor.contains("Started domain hello (id=2)"),
        &format!("the name is free, the ID is not:\n{successor}"),
    );
    let list = machine.command("xl list");
    machine.ensure_match(&list, r"(?m)^hello\s+2\s", "the new hello is domain 2");
    machine.ensure_match(&list, r"(?m)^hello\s+1\s.*d\s", "the zombie is still there");

    let released = machine.command("debug release-frame 1");
    machine.ensure(
        released.contains("domain 1 is gone and its ID is free"),
        &released,
    );
    // Dom0 hears of it through VIRQ_DOM_EXC and forgets the zombie's name.
    await_log(&machine, "[xl] domain 'hello' (id 1) is gone");
    let list = machine.command("xl list");
    machine.ensure(
        !list
            .lines()
            .any(|line| line.split_whitespace().nth(1) == Some("1")),
        &format!(
            "no domain 1 any more:
{list}"
        ),
    );
    let destroyed = machine.command("xl destroy hello");
    machine.ensure(
        destroyed.contains("Destroyed domain hello (id=2)"),
        &destroyed,
    );
    let next = machine.command("xl create -p /etc/xen/hello.cfg");
    machine.ensure(
        next.contains("Started domain hello (id=1)"),
        &format!("ID 1 is free again:\n{next}"),
    );
    machine.poweroff();
}
