//! Grant tables between two DomUs (issue 12), typed at Dom0's prompt: a
//! granter grants a page to a mapper, each sees the other's writes, a
//! mapped grant cannot be revoked, and nothing is left behind; a granter
//! destroyed while its page is mapped stays a zombie until the unmap.

use scenarios::{scaled, BootConfig, Machine, COMMAND_TIMEOUT};
use std::time::{Duration, Instant};

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

/// Attaches to `name`'s console, waits until it shows `needle`, detaches
/// with Ctrl-] and returns what the console showed (from its scrollback).
fn console_until(machine: &mut Machine, name: &str, needle: &str) -> String {
    machine.send_line(&format!("xl console {name}")).unwrap();
    let shown = machine
        .expect(needle, GUEST_TIMEOUT)
        .unwrap_or_else(|error| machine.fail(&format!("{name}: {error}")));
    machine.send(&[0x1d]).unwrap();
    machine.expect_prompt(COMMAND_TIMEOUT).unwrap();
    shown
}

/// Waits until the serial log holds `text`.
fn await_log(machine: &Machine, text: &str) {
    let deadline = Instant::now() + scaled(GUEST_TIMEOUT);
    while !machine.log().contains(text) {
        if Instant::now() > deadline {
            machine.fail(&format!("no \"{text}\" in the log"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `xl list` has a row for domain `id`.
fn listed(list: &str, id: u16) -> bool {
    list.lines()
        .any(|line| line.split_whitespace().nth(1) == Some(&id.to_string()))
}

#[test]
fn two_domus_share_a_page_by_grant_and_leave_nothing_behind() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let before = free_memory(&mut machine);
    let granter = machine.command("xl create /etc/xen/granter.cfg");
    machine.ensure(granter.contains("Started domain granter (id=1)"), &granter);
    let mapper = machine.command("xl create /etc/xen/mapper.cfg");
    machine.ensure(mapper.contains("Started domain mapper (id=2)"), &mapper);

    let shown = console_until(
        &mut machine,
        "granter",
        "granter: revoked ref 8 after the unmap",
    );
    machine.ensure(
        shown.contains("granter: ref 8 grants frame"),
        &format!("the granter granted:\n{shown}"),
    );
    machine.ensure(
        shown.contains("granter: sees the mapper's write 0x6d61707065723131"),
        &format!("the granter sees the mapper's write:\n{shown}"),
    );
    // GTF_permit_access | GTF_reading | GTF_writing: the hypervisor's bits
    // refuse the revocation while the page is mapped writable.
    machine.ensure(
        shown.contains("granter: revoke while mapped refused: still in use (flags 0x19)"),
        &format!("revoking a mapped grant is refused:\n{shown}"),
    );
    let shown = console_until(&mut machine, "mapper", "grant-share: mapper: unmapped");
    machine.ensure(
        shown.contains("mapper: mapped domain 1's ref 8 (handle 0), reads 0x6772616e74657231"),
        &format!("the mapper sees the granter's first write:\n{shown}"),
    );
    machine.ensure(
        shown.contains("mapper: sees the granter's write 0x6772616e74657232"),
        &format!("the mapper sees the granter's answer:\n{shown}"),
    );
    machine.ensure(!shown.contains("FAILED"), &shown);

    for name in ["granter", "mapper"] {
        let destroyed = machine.command(&format!("xl destroy {name}"));
        machine.ensure(!destroyed.contains("is dying"), &destroyed);
    }
    let list = machine.command("xl list");
    machine.ensure(
        !listed(&list, 1) && !listed(&list, 2),
        &format!("both domains are gone:\n{list}"),
    );
    let after = free_memory(&mut machine);
    machine.ensure(
        after == before,
        &format!("free memory is back where it was ({before} MiB), not {after} MiB"),
    );
}

#[test]
fn a_granter_destroyed_while_mapped_stays_dying_until_the_unmap() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let granter = machine.command("xl create /etc/xen/granter.cfg");
    machine.ensure(granter.contains("Started domain granter (id=1)"), &granter);
    let mapper = machine.command(
        "xl create /etc/xen/mapper.cfg cmdline=workload=grant-share,role=mapper,peer=1,ref=8,hold=1",
    );
    machine.ensure(mapper.contains("Started domain mapper (id=2)"), &mapper);
    console_until(
        &mut machine,
        "mapper",
        "mapper: holding the mapping; type unmap at this console",
    );

    let destroyed = machine.command("xl destroy granter");
    machine.ensure(
        destroyed.contains("domain granter (id=1) is dying: waiting for"),
        &destroyed,
    );
    let list = machine.command("xl list");
    machine.ensure_match(
        &list,
        r"(?m)^granter\s+1\s+\S+\s+1\s+\S*d\s",
        "the granter is listed with 'd' while its page is mapped",
    );

    machine.send_line("xl console mapper").unwrap();
    machine
        .expect("type unmap at this console", GUEST_TIMEOUT)
        .unwrap();
    machine.send_line("unmap").unwrap();
    machine
        .expect("grant-share: mapper: unmapped", GUEST_TIMEOUT)
        .unwrap_or_else(|error| machine.fail(&format!("the mapper unmaps: {error}")));
    machine.send(&[0x1d]).unwrap();
    machine.expect_prompt(COMMAND_TIMEOUT).unwrap();
    machine.ensure(
        machine
            .log()
            .contains("mapper: still mapped, reads 0x6772616e74657231"),
        "the mapper still reads the dead granter's page",
    );
    await_log(&machine, "[xl] domain 'granter' (id 1) is gone");
    let list = machine.command("xl list");
    machine.ensure(!listed(&list, 1), &format!("the zombie is gone:\n{list}"));
    machine.command("xl destroy mapper");
}
