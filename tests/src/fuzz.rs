//! Driving the hypercall fuzzer (`workload=fuzz`, `/etc/xen/fuzz.cfg`) on a booted machine and
//! judging what happened: shared by `cargo xtask fuzz` and the `fuzz` scenario.
//!
//! A run starts a `counter` guest (a bystander that must keep running), notes Dom0's free
//! memory, then creates one fuzz guest per seed, attached to its console (`xl create -c`), and
//! reads its lines until it powers off:
//!
//! ```text
//! fuzz: seed 7: 5000 calls, 1234 accepted, 3766 refused
//! fuzz: seed 7: 20000 calls done, 4936 accepted, 15064 refused (8123 ms)
//! ```
//!
//! Afterwards free memory must be back where it was, the counter must have had CPU time, no
//! fuzz guest may have been crashed by the hypervisor (`Domain N crashed: ...`: the fuzzer never
//! does anything that rightly ends it, so a crash is the hypervisor's doing), and the hypervisor
//! must not have stopped on a fatal error (QEMU status 33).

use std::time::{Duration, Instant};

use crate::{describe_exit, Machine, COMMAND_TIMEOUT, EXIT_HYPERVISOR_FATAL, PROMPT};

/// Most calls one fuzz guest makes when a budget is split over seeds.
pub const CALLS_PER_GUEST: u64 = 250_000;
/// How long a fuzz guest may print nothing (it prints every 5000 calls) before it counts as hung.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(120);

/// One fuzz guest to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Its generator's seed.
    pub seed: u64,
    /// How many calls it makes.
    pub calls: u64,
}

/// Splits `calls` into guests: over `seeds` when given (evenly), else over consecutive seeds
/// from `first_seed`, at most [`CALLS_PER_GUEST`] each.
pub fn plan(calls: u64, first_seed: u64, seeds: &[u64]) -> Vec<Run> {
    let seeds: Vec<u64> = if seeds.is_empty() {
        let guests = calls.div_ceil(CALLS_PER_GUEST).max(1);
        (0..guests).map(|index| first_seed + index).collect()
    } else {
        seeds.to_vec()
    };
    let count = seeds.len() as u64;
    seeds
        .iter()
        .enumerate()
        .map(|(index, &seed)| Run {
            seed,
            calls: calls / count + u64::from((index as u64) < calls % count),
        })
        .filter(|run| run.calls > 0)
        .collect()
}

/// What one fuzz guest did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestResult {
    /// Its seed.
    pub seed: u64,
    /// Calls it was asked to make.
    pub asked: u64,
    /// Calls it reported done (the last progress line if it did not finish).
    pub calls: u64,
    /// Of those, how many the hypervisor accepted (a result >= 0).
    pub accepted: u64,
    /// And how many it refused.
    pub refused: u64,
    /// The guest's own time for its calls (its system-time clock), when it finished.
    pub milliseconds: Option<u64>,
    /// Wall time from its first line to its last, when it finished.
    pub wall: Option<Duration>,
    /// It printed its final line.
    pub finished: bool,
    /// Why the hypervisor crashed it, if it did.
    pub crashed: Option<String>,
    /// It stopped printing for [`STALL_TIMEOUT`] (and was destroyed, if Dom0 still answered).
    pub hung: bool,
}

/// Everything a fuzz run found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One entry per guest that was started.
    pub guests: Vec<GuestResult>,
    /// QEMU's exit status, when the machine stopped during the run.
    pub machine_stopped: Option<i32>,
    /// Dom0's free memory (MiB) before the fuzz guests and after the last was destroyed.
    pub free_memory: Option<(u64, u64)>,
    /// The counter guest's CPU time (tenths of a second) before and after.
    pub counter_cpu: Option<(u64, u64)>,
    /// Wall time of the fuzzing.
    pub elapsed: Duration,
    /// Dom0 stopped answering the console while a fuzz guest ran.
    pub dom0_unresponsive: bool,
    /// Lines of the serial log saying the hypervisor crashed a domain.
    pub crash_lines: Vec<String>,
}

impl Report {
    /// Calls made, over all guests.
    pub fn calls(&self) -> u64 {
        self.guests.iter().map(|guest| guest.calls).sum()
    }

    /// Calls per second of wall time, from each guest's first line to its last (finished
    /// guests only; the counter guest and Dom0 share the CPU meanwhile).
    pub fn calls_per_second(&self) -> f64 {
        let (calls, seconds) = self
            .guests
            .iter()
            .filter_map(|guest| Some((guest.calls, guest.wall?.as_secs_f64())))
            .fold((0, 0.0), |(calls, total), (more, time)| {
                (calls + more, total + time)
            });
        if seconds == 0.0 {
            0.0
        } else {
            calls as f64 / seconds
        }
    }

    /// Hypervisor faults: 1 when the hypervisor stopped on a fatal error.
    pub fn hypervisor_faults(&self) -> u64 {
        u64::from(self.machine_stopped == Some(EXIT_HYPERVISOR_FATAL))
    }

    /// Whether the counter had at least a tenth of the wall time, and at least half a second.
    pub fn counter_kept_running(&self) -> Option<bool> {
        let (before, after) = self.counter_cpu?;
        let wall_tenths = self.elapsed.as_millis() as u64 / 100;
        Some(after >= before + (wall_tenths / 10).max(5))
    }

    /// What went wrong; empty when the run passed.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.dom0_unresponsive {
            problems.push(
                "Dom0 stopped answering its console (Ctrl-] and typed commands) while a fuzz \
                 guest ran"
                    .to_string(),
            );
        }
        if let Some(status) = self.machine_stopped {
            problems.push(format!(
                "the machine stopped during the run: QEMU exited with status {status} ({})",
                describe_exit(status)
            ));
        }
        for guest in &self.guests {
            if let Some(reason) = &guest.crashed {
                problems.push(format!(
                    "the hypervisor crashed fuzz guest seed {} after {}+ calls: {reason}",
                    guest.seed, guest.calls
                ));
            } else if guest.hung {
                problems.push(format!(
                    "fuzz guest seed {} stopped making progress after {}+ calls",
                    guest.seed, guest.calls
                ));
            } else if !guest.finished && self.machine_stopped.is_none() {
                problems.push(format!("fuzz guest seed {} did not finish", guest.seed));
            }
        }
        match self.free_memory {
            Some((before, after)) if before != after => problems.push(format!(
                "free memory did not come back: {before} MiB before, {after} MiB after"
            )),
            None if self.machine_stopped.is_none() && !self.dom0_unresponsive => {
                problems.push("free memory was not measured".to_string())
            }
            _ => {}
        }
        match self.counter_kept_running() {
            Some(false) => {
                let (before, after) = self.counter_cpu.unwrap_or_default();
                problems.push(format!(
                    "the counter guest stalled: CPU time {}.{} s -> {}.{} s in {:.1} s",
                    before / 10,
                    before % 10,
                    after / 10,
                    after % 10,
                    self.elapsed.as_secs_f64()
                ));
            }
            None if self.machine_stopped.is_none() && !self.dom0_unresponsive => {
                problems.push("the counter guest's CPU time was not measured".to_string())
            }
            _ => {}
        }
        problems
    }

    /// The report as text, one fact a line.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        for guest in &self.guests {
            let state = if let Some(reason) = &guest.crashed {
                format!("CRASHED: {reason}")
            } else if guest.hung {
                "HUNG".to_string()
            } else if guest.finished {
                "done".to_string()
            } else {
                "did not finish".to_string()
            };
            let time = guest.wall.map_or(String::new(), |wall| {
                format!(" in {:.1} s", wall.as_secs_f64())
            });
            text.push_str(&format!(
                "  seed {}: {} of {} calls{time}, {} accepted, {} refused: {state}\n",
                guest.seed, guest.calls, guest.asked, guest.accepted, guest.refused
            ));
        }
        text.push_str(&format!(
            "calls made: {} ({:.0} calls/s while fuzzing; {:.1} s of wall time in all)\n",
            self.calls(),
            self.calls_per_second(),
            self.elapsed.as_secs_f64()
        ));
        text.push_str(&format!(
            "hypervisor faults: {}\n",
            self.hypervisor_faults()
        ));
        text.push_str(&format!(
            "guests crashed by the hypervisor: {}\n",
            self.crash_lines.len()
        ));
        for line in &self.crash_lines {
            text.push_str(&format!("  {line}\n"));
        }
        match self.counter_cpu {
            Some((before, after)) => text.push_str(&format!(
                "counter guest: {} (CPU time {}.{} s -> {}.{} s)\n",
                if self.counter_kept_running() == Some(true) {
                    "kept running"
                } else {
                    "STALLED"
                },
                before / 10,
                before % 10,
                after / 10,
                after % 10
            )),
            None => text.push_str("counter guest: not measured\n"),
        }
        match self.free_memory {
            Some((before, after)) => text.push_str(&format!(
                "free memory: {before} MiB before, {after} MiB after the fuzz guests were destroyed{}\n",
                if before == after { "" } else { ": NOT RETURNED" }
            )),
            None => text.push_str("free memory: not measured\n"),
        }
        text
    }
}

/// Runs a shell command and returns its output, or `None` when the prompt does not come back.
fn command(machine: &mut Machine, line: &str) -> Option<String> {
    machine.send_line(line).ok()?;
    machine
        .expect_prompt(COMMAND_TIMEOUT)
        .ok()
        .map(|text| crate::command_output(&text, line))
}

fn free_memory(machine: &mut Machine) -> Option<u64> {
    let info = command(machine, "xl info")?;
    let regex = regex::Regex::new(r"(?m)^free_memory\s*: (\d+)").expect("a valid pattern");
    regex.captures(&info)?[1].parse().ok()
}

fn counter_cpu(machine: &mut Machine) -> Option<u64> {
    let list = command(machine, "xl list counter")?;
    let regex = regex::Regex::new(r"(?m)^counter\s+\d+\s+\d+\s+\d+\s+\S+\s+(\d+)\.(\d)\s*$")
        .expect("a valid pattern");
    let found = regex.captures(&list)?;
    Some(found[1].parse::<u64>().ok()? * 10 + found[2].parse::<u64>().ok()?)
}

/// A fuzzer's line: progress, or the final count.
fn parse_fuzz_line(line: &str, guest: &mut GuestResult) {
    let regex = regex::Regex::new(
        r"fuzz: seed \d+: (\d+) calls( done)?, (\d+) accepted, (\d+) refused(?: \((\d+) ms\))?",
    )
    .expect("a valid pattern");
    if let Some(found) = regex.captures(line) {
        let number = |index: usize| found.get(index).and_then(|text| text.as_str().parse().ok());
        guest.calls = number(1).unwrap_or(0);
        guest.accepted = number(3).unwrap_or(0);
        guest.refused = number(4).unwrap_or(0);
        if found.get(2).is_some() {
            guest.finished = true;
            guest.milliseconds = number(5);
        }
    }
}

/// Starts the counter, runs every fuzz guest of `runs` one after the other, and measures.
/// `progress` receives each line the fuzz guests print (for a live view).
pub fn run(
    machine: &mut Machine,
    runs: &[Run],
    extra: &str,
    mut progress: impl FnMut(&str),
) -> Report {
    let mut report = Report::default();
    let crash = regex::Regex::new(r"Domain (\d+) crashed: ([^\r\n]*)").expect("a valid pattern");
    let started_id =
        regex::Regex::new(r"Started domain \S+ \(id=(\d+)\)").expect("a valid pattern");
    if command(machine, "xl create /etc/xen/counter.cfg").is_none() {
        report.machine_stopped = machine.wait_exit(Duration::from_secs(5));
        return report;
    }
    let free_before = free_memory(machine);
    let counter_before = counter_cpu(machine);
    let start = Instant::now();
    'guests: for run in runs {
        let mut guest = GuestResult {
            seed: run.seed,
            asked: run.calls,
            ..GuestResult::default()
        };
        let line = format!(
            "xl create -c /etc/xen/fuzz.cfg cmdline=workload=fuzz,seed={},count={}{extra}",
            run.seed, run.calls
        );
        if machine.send_line(&line).is_err() {
            report.guests.push(guest);
            break;
        }
        let mut id = None;
        let mut first_line = None;
        loop {
            match machine.expect("\n", STALL_TIMEOUT) {
                Ok(text) => {
                    let text = text.trim_end();
                    if text.contains("fuzz: ") {
                        progress(text);
                        first_line.get_or_insert_with(Instant::now);
                    }
                    if let Some(found) = started_id.captures(text) {
                        id = found[1].parse::<u64>().ok();
                    }
                    if let Some(found) = crash.captures(text) {
                        report.crash_lines.push(found[0].to_string());
                        if found[1].parse::<u64>().ok() == id {
                            guest.crashed = Some(found[2].to_string());
                        }
                    }
                    parse_fuzz_line(text, &mut guest);
                    if guest.finished && guest.wall.is_none() {
                        guest.wall = first_line.map(|first| first.elapsed());
                    }
                    if text.contains("powered off: destroyed")
                        || text.contains("crashed: destroyed")
                        || text.contains("xl create: ")
                    {
                        break;
                    }
                }
                Err(_) => {
                    if let Some(status) = machine.wait_exit(Duration::from_secs(1)) {
                        report.machine_stopped = Some(status);
                        report.guests.push(guest);
                        break 'guests;
                    }
                    // Quiet for too long: detach and destroy it.
                    guest.hung = true;
                    let _ = machine.send(&[0x1d]);
                    let detached = machine.expect_prompt(COMMAND_TIMEOUT).is_ok();
                    if !detached || command(machine, "xl destroy fuzz").is_none() {
                        // Dom0 does not answer either: stop here, the log tells the rest.
                        report.dom0_unresponsive = true;
                        report.guests.push(guest);
                        break 'guests;
                    }
                    report.guests.push(guest);
                    continue 'guests;
                }
            }
        }
        if machine.expect(PROMPT, COMMAND_TIMEOUT).is_err() {
            report.machine_stopped = machine.wait_exit(Duration::from_secs(5));
            report.guests.push(guest);
            break;
        }
        report.guests.push(guest);
    }
    report.elapsed = start.elapsed();
    if report.machine_stopped.is_none() && !report.dom0_unresponsive {
        // Let the last destroy settle, then measure.
        let _ = machine.expect_prompt(Duration::from_millis(300));
        let counter_after = counter_cpu(machine);
        let free_after = free_memory(machine);
        report.counter_cpu = counter_before.zip(counter_after);
        report.free_memory = free_before.zip(free_after);
        command(machine, "xl destroy counter");
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_split_budgets() {
        assert_eq!(
            plan(20_000, 1, &[1, 2, 3, 4]),
            vec![
                Run {
                    seed: 1,
                    calls: 5000
                },
                Run {
                    seed: 2,
                    calls: 5000
                },
                Run {
                    seed: 3,
                    calls: 5000
                },
                Run {
                    seed: 4,
                    calls: 5000
                }
            ]
        );
        assert_eq!(plan(10, 7, &[]), vec![Run { seed: 7, calls: 10 }]);
        let million = plan(1_000_000, 5, &[]);
        assert_eq!(million.len(), 4);
        assert_eq!(
            million[3],
            Run {
                seed: 8,
                calls: 250_000
            }
        );
        assert_eq!(
            plan(5, 1, &[1, 2, 3])
                .iter()
                .map(|run| run.calls)
                .sum::<u64>(),
            5
        );
    }

    #[test]
    fn reads_progress_and_final_lines() {
        let mut guest = GuestResult::default();
        parse_fuzz_line(
            "fuzz: seed 7: 5000 calls, 1200 accepted, 3800 refused",
            &mut guest,
        );
        assert_eq!(
            (guest.calls, guest.accepted, guest.finished),
            (5000, 1200, false)
        );
        parse_fuzz_line(
            "(d1) fuzz: seed 7: 20000 calls done, 4936 accepted, 15064 refused (8123 ms)",
            &mut guest,
        );
        assert_eq!(guest.calls, 20_000);
        assert_eq!(guest.refused, 15_064);
        assert!(guest.finished);
        assert_eq!(guest.milliseconds, Some(8123));
    }

    #[test]
    fn problems_name_what_failed() {
        let mut report = Report {
            guests: vec![GuestResult {
                seed: 3,
                asked: 10,
                calls: 10,
                finished: true,
                milliseconds: Some(1000),
                wall: Some(Duration::from_secs(1)),
                ..GuestResult::default()
            }],
            free_memory: Some((400, 400)),
            counter_cpu: Some((10, 40)),
            elapsed: Duration::from_secs(5),
            ..Report::default()
        };
        assert!(report.problems().is_empty(), "{:?}", report.problems());
        assert_eq!(report.calls_per_second(), 10.0);
        report.free_memory = Some((400, 392));
        report.counter_cpu = Some((10, 11));
        report.machine_stopped = Some(EXIT_HYPERVISOR_FATAL);
        let problems = report.problems().join("\n");
        assert!(
            problems.contains("free memory did not come back"),
            "{problems}"
        );
        assert!(problems.contains("counter guest stalled"), "{problems}");
        assert!(problems.contains("hypervisor fatal error"), "{problems}");
        assert_eq!(report.hypervisor_faults(), 1);
    }
}
