//! BOOST, watched the way a user would: Dom0's prompt answers at once
//! beside three CPU-bound guests of the largest weight. In a file of its
//! own so that its three busy guests never share the machine with the
//! weight and cap measurements of `scheduling.rs` (scenarios of one file
//! run in parallel).

use scenarios::{BootConfig, Machine};
use std::time::Duration;

/// Dom0's shell beside three CPU-bound guests of the largest weight: Dom0's
/// fair share is 256/196861 of the CPU, but a vCPU that wakes from blocking
/// is boosted (`xen_like::sched::credit`, BOOST), so each command answers at once.
/// Before BOOST, `xl list` took up to 4 s here and creating the third guest
/// 17 s.
#[test]
fn the_prompt_answers_at_once_beside_heavy_guests() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    for name in ["heavy1", "heavy2", "heavy3"] {
        machine.command(&format!(
            "xl create /etc/xen/burn.cfg name={name} weight=65535"
        ));
    }
    std::thread::sleep(Duration::from_secs(1));
    // The harness waits for 100 ms of quiet after the prompt, included here.
    let limit = scenarios::scaled(Duration::from_millis(1500));
    let mut slowest = Duration::ZERO;
    for line in ["date", "xl list", "date", "xl sched-credit", "date"] {
        let started = std::time::Instant::now();
        machine.command(line);
        let took = started.elapsed();
        slowest = slowest.max(took);
        machine.ensure(
            took <= limit,
            &format!(
                "`{line}` took {took:?} beside three guests of weight 65535 (limit {limit:?})"
            ),
        );
    }
    eprintln!("slowest command beside three heavy guests: {slowest:?}");
    let used = machine.cpu_usage(&["heavy1", "heavy2", "heavy3"], 6);
    let (least, most) = (used.iter().min().unwrap(), used.iter().max().unwrap());
    machine.ensure(
        *least * 10 >= *most * 8,
        &format!("the heavy guests still share the CPU equally: {used:?} tenths"),
    );
    machine.poweroff();
}
