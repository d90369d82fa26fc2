//! Issue 19: no hypercall may hold the CPU. A guest pins and unpins a
//! page-table tree of 511 L1 tables thousands of times in one `mmuext_op`
//! call, in a loop; hypercall continuations cut that call into pieces of
//! bounded work, so Dom0's prompt keeps answering, and the guest's batches
//! still end with the right result. Before continuations, one such call
//! held the CPU with interrupts off for tens of seconds, and `xl list` did
//! not answer until it ended.

use scenarios::{scaled, BootConfig, Machine, COMMAND_TIMEOUT};
use std::time::{Duration, Instant};

/// How long `xl list` may take while the attack runs (the harness's own
/// typing and reading included; it takes about 100 ms without the attack).
const PROMPT_LIMIT: Duration = Duration::from_millis(600);

/// Attaches to pinstorm's console, waits until it shows `needle` (at most
/// `limit`, scaled), detaches with Ctrl-] and returns what it showed.
fn console_until(machine: &mut Machine, needle: &str, limit: Duration) -> String {
    machine.send_line("xl console pinstorm").unwrap();
    let shown = match machine.expect(needle, scaled(limit)) {
        Ok(shown) => shown,
        Err(error) => machine.fail(&format!(
            "pinstorm's console did not show {needle:?}: {error}"
        )),
    };
    machine.send(&[0x1d]).unwrap();
    if let Err(error) = machine.expect_prompt(COMMAND_TIMEOUT) {
        machine.fail(&format!("no prompt after leaving the console: {error}"));
    }
    shown
}

#[test]
fn the_prompt_answers_while_a_guest_pins_and_unpins_a_huge_tree() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    machine.command("xl create /etc/xen/pinstorm.cfg");
    console_until(&mut machine, "pinstorm: attacking", Duration::from_secs(60));
    // Let it get well into its first huge call.
    std::thread::sleep(Duration::from_millis(500));
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let list = machine.command("xl list");
        slowest = slowest.max(started.elapsed());
        machine.ensure_match(
            &list,
            r"(?m)^pinstorm\s+1\s+8\s+1\s+",
            "pinstorm in xl list",
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    machine.ensure(
        slowest <= scaled(PROMPT_LIMIT),
        &format!(
            "xl list took {slowest:?} while the guest attacked (at most {:?} wanted)",
            scaled(PROMPT_LIMIT)
        ),
    );
    // The attack's batches end, and end right (the guest checks the result,
    // the done count and that the tree can still be pinned, and says WRONG
    // otherwise).
    let shown = console_until(&mut machine, "pinstorm: round 1 ", Duration::from_secs(240));
    machine.ensure(!shown.contains("WRONG"), "the first batch ended right");
    console_until(&mut machine, "operations in", Duration::from_secs(10));
    machine.command("xl destroy pinstorm");
    let list = machine.command("xl list");
    machine.ensure(
        !list.contains("pinstorm"),
        "pinstorm is gone after xl destroy",
    );
    machine.poweroff();
}

/// Issue 19, section 1: the `reservations` test guest (privileged, booted
/// as the initial domain) grows and shrinks a domain by 10,000 extents in
/// one `memory_op` each. The hypervisor cuts each call into continuations
/// (the resume extent in `cmd`'s high bits); the guest checks the counts
/// and frames are those of an uncut call, and that the longest single
/// hypercall took well under the whole call.
#[test]
fn reservation_of_many_extents_is_preempted_and_resumed() {
    let machine = Machine::run_test_guest("reservations");
    let log = machine.log();
    let passed = log.lines().filter(|line| line.starts_with("ok: ")).count();
    machine.ensure(passed >= 14, &format!("at least 14 checks ran ({passed})"));
}
