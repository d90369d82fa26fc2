//! The credit scheduler, watched the way a user would: CPU-bound guests
//! with different weights share the CPU in proportion, a capped guest stays
//! under its cap, and a blocked guest uses almost nothing. CPU time comes
//! from `xl list`'s Time(s) column, sampled some seconds apart.

use scenarios::{BootConfig, Machine};
use std::time::Duration;

#[test]
fn weights_share_the_cpu_and_caps_and_blocking_limit_it() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    machine.command("xl create /etc/xen/burn.cfg");
    machine.command("xl create /etc/xen/burn.cfg name=heavy weight=512");
    let table = machine.command("xl sched-credit");
    machine.ensure_match(
        &table,
        r"(?m)^heavy\s+2\s+512\s+0\s*$",
        "heavy's weight in xl sched-credit",
    );
    std::thread::sleep(Duration::from_secs(1));
    let used = machine.cpu_usage(&["burn", "heavy"], 8);
    let ratio = used[1] as f64 / used[0].max(1) as f64;
    machine.ensure(
        (1.8..=2.2).contains(&ratio),
        &format!(
            "weights 256:512 got {}:{} tenths of a second, ratio {ratio:.2} (want 2 within 10%)",
            used[0], used[1]
        ),
    );
    machine.command("xl destroy heavy");

    let output = machine.command("xl sched-credit -d burn -c 25");
    machine.ensure_match(
        &output,
        r"(?m)^burn\s+1\s+256\s+25\s*$",
        "the new cap in xl sched-credit",
    );
    std::thread::sleep(Duration::from_secs(1));
    let used = machine.cpu_usage(&["burn"], 8);
    machine.ensure(
        used[0] <= 24,
        &format!(
            "capped at 25% it used {} tenths of 8 s (at most 30% allowed)",
            used[0]
        ),
    );
    machine.ensure(
        used[0] >= 12,
        &format!("capped at 25% it still ran: {} tenths of 8 s", used[0]),
    );
    machine.command("xl destroy burn");

    machine.command("xl create /etc/xen/sleeper.cfg");
    std::thread::sleep(Duration::from_secs(1));
    let used = machine.cpu_usage(&["sleeper"], 8);
    machine.ensure(
        used[0] == 0,
        &format!(
            "a sleeping guest used {} tenths of 8 s (under 1% wanted)",
            used[0]
        ),
    );
    let list = machine.command("xl list sleeper");
    machine.ensure_match(
        &list,
        r"(?m)^sleeper\s+\d+\s+8\s+1\s+-b----",
        "the blocked state letter",
    );

    let output = machine.command("xl sched-credit -d sleeper -w 0");
    machine.ensure(
        output.contains("the weight must be from 1 to 65535 (got 0)"),
        &output,
    );
    let output = machine.command("xl sched-credit -d sleeper -c 150");
    machine.ensure(output.contains("from 0 (no cap) to 100 (got 150)"), &output);
    let output = machine.command("xl vcpu-list");
    machine.ensure_match(
        &output,
        r"(?m)^sleeper\s+\d+\s+0\s+-\s+-b-\s+\d+\.\d",
        "vcpu-list shows the blocked vCPU",
    );
    machine.poweroff();
}
