//! The Dom0 shell's rough edges (issue 9), replayed as a user meets them at
//! the prompt: names that would shadow an ID, messages that say what was
//! wrong, long and non-ASCII lines, `debug` commands, a console that lets go
//! of a stopped domain (or follows its restart), restart loops, and Ctrl-C.

use scenarios::{BootConfig, Machine, COMMAND_TIMEOUT};
use std::time::Duration;

/// How long a guest may take to print something.
const GUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `line` and checks that its output contains every one of `expected`.
fn check(machine: &mut Machine, line: &str, expected: &[&str]) -> String {
    let output = machine.command(line);
    for text in expected {
        machine.ensure(
            output.contains(text),
            &format!("`{line}` says {text:?}; it printed:\n{output}"),
        );
    }
    output
}

/// Waits for `needle` in what follows the last match.
fn expect(machine: &mut Machine, needle: &str, timeout: Duration) -> String {
    machine
        .expect(needle, timeout)
        .unwrap_or_else(|error| panic!("{error}"))
}

/// Items 2, 6, 7, 8, 9 and the messages: each refusal says what was wrong.
#[test]
fn rough_edges_names_messages_lines_and_debug_commands() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());

    // Names that would shadow an ID or Dom0 are refused at create.
    check(
        &mut machine,
        "xl create /etc/xen/hello.cfg name=\"3\"",
        &["name \"3\" is all digits"],
    );
    check(
        &mut machine,
        "xl create /etc/xen/hello.cfg name=Domain-0",
        &["name \"Domain-0\" is the control domain's"],
    );
    // A quoted value with a blank stays one setting and gets the file's sentence.
    check(
        &mut machine,
        "xl create /etc/xen/hello.cfg name=\"my guest\"",
        &["name \"my guest\" has ' ' at character 3"],
    );
    check(
        &mut machine,
        "xl create /etc/xen/hello.cfg kernel=/boot/missing",
        &["(kernel= on the command line)"],
    );
    check(
        &mut machine,
        "xl create /etc/xen/hello.cfg memory=16 memory=8",
        &["'memory' is set twice on the command line (memory=16 and memory=8)"],
    );
    check(
        &mut machine,
        "xl frob",
        &[
            "'frob' is not a xl subcommand\nusage: xl list",
            "create [-p] [-c] FILE",
        ],
    );
    check(
        &mut machine,
        "xl destroy",
        &["missing the domain (a NAME or an ID)\nusage: xl destroy NAME|ID"],
    );
    check(
        &mut machine,
        "xl list a b",
        &["unexpected 'b'\nusage: xl list [NAME|ID]"],
    );
    check(
        &mut machine,
        "cat /etc/xen",
        &["cat: /etc/xen is a directory; 'ls /etc/xen' lists its files"],
    );
    check(
        &mut machine,
        "debug cycles 1 /boot/domu",
        &["debug cycles: /boot/domu: the file has no 'name'"],
    );

    // Lines longer than the old 256-byte limit are read whole, never cut.
    let long = format!("cat /etc/xen/hello.cfg{}extra", " ".repeat(300));
    check(
        &mut machine,
        &long,
        &["unexpected 'extra'\nusage: cat FILE"],
    );
    let too_long = format!("cat {}", "x".repeat(1100));
    check(
        &mut machine,
        &too_long,
        &["the line is longer than 1024 bytes; nothing was run"],
    );
    // UTF-8 passes through; other bytes refuse the line.
    check(
        &mut machine,
        "cat héllo",
        &["cat: no file /héllo in the ramdisk"],
    );
    machine.send(b"cat h\xe9llo\r").unwrap();
    let output = machine.expect_prompt(COMMAND_TIMEOUT).unwrap();
    machine.ensure(
        output.contains("bytes that are not UTF-8 text; nothing was run"),
        &output,
    );

    // debug hypercall: arguments are 0 unless given. xen_version(0, 0)
    // answers 4.17 as (4 << 16) | 17.
    check(
        &mut machine,
        "debug hypercall 17",
        &["hypercall 17 returned 262161"],
    );
    check(
        &mut machine,
        "debug hypercall 17 0 0",
        &["hypercall 17 returned 262161"],
    );
    check(
        &mut machine,
        "help",
        &["(!) make hypercall N", "(!) touch an unmapped address"],
    );

    // A failed heap growth gives back what it took: the free frames the
    // refusal reports stay the same.
    let frames = |machine: &mut Machine| -> u64 {
        let output = machine.command("debug heap 100000");
        let found = machine.ensure_match(
            &output,
            r"could not allocate 100000 MiB: (\d+) free frames",
            "the refusal counts the free frames",
        );
        found[1].parse().unwrap()
    };
    let first = frames(&mut machine);
    let second = frames(&mut machine);
    machine.ensure(
        first > 256 && first == second,
        &format!("a failed debug heap keeps nothing: {first} then {second} free frames"),
    );

    // memory=4 left the guest no frame after its start-of-day region.
    check(
        &mut machine,
        "xl create /etc/xen/hello.cfg memory=4",
        &["needs at least 5 MiB"],
    );
    check(
        &mut machine,
        "xl create -c /etc/xen/hello.cfg memory=5",
        &["Hello from a PV guest: 5 MiB", "powered off: destroyed"],
    );
    machine.poweroff();
}

/// Items 4, 12 and 13: the console lets go of a stopped domain with a line
/// saying why, typing is not swallowed, a restarted domain is followed, and
/// a domain that restarts too quickly is destroyed.
#[test]
fn rough_edges_console_lets_go_of_a_stopped_domain_and_restart_loops_end() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());

    machine
        .send_line("xl create -c /etc/xen/hello.cfg on_poweroff=preserve")
        .unwrap();
    expect(&mut machine, "Hello from a PV guest", GUEST_TIMEOUT);
    // Typed as soon as the guest has spoken (and stopped): none of it lost.
    machine.send_line("help me").unwrap();
    let output = machine.expect_prompt(COMMAND_TIMEOUT).unwrap();
    machine.ensure(
        output.contains("kept (on_poweroff = \"preserve\")"),
        &output,
    );
    machine.ensure(
        output.contains("[xl] console detached: the domain stopped"),
        &output,
    );
    let output = if output.contains("unexpected 'me'") {
        output
    } else {
        machine.expect_prompt(COMMAND_TIMEOUT).unwrap()
    };
    machine.ensure(
        output.contains("unexpected 'me'\nusage: help")
            || output.contains("unexpected 'me'\r\nusage: help"),
        &format!("`help me`, typed after the guest stopped, reaches the shell whole:\n{output}"),
    );
    check(&mut machine, "xl list", &["hello"]);
    check(
        &mut machine,
        "xl destroy hello",
        &["Destroyed domain hello"],
    );

    // on_poweroff=restart: the console follows the restarted domain, and
    // the second quick stop ends the loop.
    machine
        .send_line("xl create -c /etc/xen/hello.cfg on_poweroff=restart")
        .unwrap();
    expect(&mut machine, "restarted as id", GUEST_TIMEOUT);
    expect(
        &mut machine,
        "the console follows the restarted domain",
        GUEST_TIMEOUT,
    );
    expect(&mut machine, "Hello from a PV guest", GUEST_TIMEOUT);
    expect(&mut machine, "destroyed, not restarted", GUEST_TIMEOUT);
    expect(&mut machine, "[xl] console detached", GUEST_TIMEOUT);
    machine.expect_prompt(COMMAND_TIMEOUT).unwrap();

    // A crash loop is bounded the same way, and the shell answers after it.
    let before = machine.log().matches("restarted as id").count();
    machine
        .send_line("xl create /etc/xen/crash.cfg on_crash=restart")
        .unwrap();
    // (The [xl] lines come after the prompt, which is not printed again.)
    expect(&mut machine, "destroyed, not restarted", GUEST_TIMEOUT);
    let restarts = machine.log().matches("restarted as id").count() - before;
    machine.ensure(
        restarts == 1,
        &format!("crash restarted once, not {restarts} times"),
    );
    let list = machine.command("xl list");
    machine.ensure(
        !list.lines().any(|row| row.starts_with("crash ")),
        &format!("crash is gone:\n{list}"),
    );
    machine.poweroff();
}

/// Item 11: Ctrl-C stops `debug cycles` and `xl top`, each with a summary.
#[test]
fn rough_edges_ctrl_c_stops_long_commands_with_a_summary() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    machine
        .send_line("debug cycles 1000000 /etc/xen/hello.cfg")
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    machine.send(&[0x03]).unwrap();
    let line = machine
        .expect_regex(
            r"debug cycles: (\d+) creates and destroys of 'hello' \(stopped by Ctrl-C after \d+ of 1000000\).*: no leak",
            COMMAND_TIMEOUT,
        )
        .unwrap_or_else(|error| panic!("{error}"));
    machine.ensure(line.group(1) != "1000000", &line.text);
    machine.expect_prompt(COMMAND_TIMEOUT).unwrap();

    machine.send_line("xl top").unwrap();
    expect(&mut machine, "CPU(%)", Duration::from_secs(10));
    machine.send(&[0x03]).unwrap();
    machine
        .expect_regex(
            r"xl top: stopped after \d+ tables in \d+ s",
            COMMAND_TIMEOUT,
        )
        .unwrap_or_else(|error| panic!("{error}"));
    machine.expect_prompt(COMMAND_TIMEOUT).unwrap();
    check(&mut machine, "xl list", &["Domain-0"]);
    machine.poweroff();
}
