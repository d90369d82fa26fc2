//! `cargo xtask fuzz`: boots the system and runs the hypercall fuzzer (`workload=fuzz`) under
//! Dom0 beside a `counter` guest, then reports calls made, calls per second, hypervisor faults,
//! guests the hypervisor crashed, whether the counter kept running and whether free memory came
//! back. Fails on any of those going wrong. The driving and judging live in the scenario
//! harness (`scenarios::fuzz`), which the `fuzz` scenario of `cargo xtask test` shares.

use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use scenarios::{Machine, BOOT_TIMEOUT, PROMPT};

use crate::{build, qemu, tools};

/// What to fuzz with.
pub struct Options {
    /// Calls in total.
    pub calls: u64,
    /// The first seed (consecutive seeds follow when the budget is split).
    pub seed: u64,
    /// Explicit seeds to split the budget over.
    pub seeds: Vec<u64>,
    /// Percentage of calls to unimplemented hypercall numbers (the guest's default when unset).
    pub unimplemented_percent: Option<u64>,
    /// Trace every call from this index on.
    pub trace_from: Option<u64>,
}

/// Builds, boots, fuzzes, reports.
pub fn fuzz(options: &Options) -> Result<()> {
    tools::ensure(&[tools::QEMU])?;
    let artifacts = build::build()?;
    let runs = scenarios::fuzz::plan(options.calls, options.seed, &options.seeds);
    if runs.is_empty() {
        bail!("nothing to do: --calls is 0");
    }
    let mut machine = Machine::boot(qemu::direct_config(&artifacts))?;
    machine
        .expect(PROMPT, BOOT_TIMEOUT)
        .map_err(|error| anyhow!("the boot did not reach Dom0's prompt: {error}"))?;
    let seeds: Vec<String> = runs.iter().map(|run| run.seed.to_string()).collect();
    println!(
        "fuzzing: {} calls over {} guest(s), seeds {}",
        options.calls,
        runs.len(),
        seeds.join(",")
    );
    let mut extra = String::new();
    if let Some(percent) = options.unimplemented_percent {
        extra.push_str(&format!(",unimplemented={percent}"));
    }
    if let Some(index) = options.trace_from {
        extra.push_str(&format!(",trace={index}"));
    }
    if let Ok(more) = std::env::var("XENLIKE_FUZZ_EXTRA") {
        // Further `key=value` words for the guest's command line (see guest-kernel/src/fuzz.rs).
        extra.push_str(&format!(",{more}"));
    }
    let report = scenarios::fuzz::run(&mut machine, &runs, &extra, |line| {
        let line = line.trim_start_matches(['\r', '\n']);
        println!("  {line}");
        let _ = std::io::stdout().flush();
    });
    println!();
    print!("{}", report.summary());
    let log_path = crate::workspace_root()
        .join("target")
        .join("fuzz-serial.log");
    if std::fs::write(&log_path, machine.log()).is_ok() {
        println!("serial log: {}", log_path.display());
    }
    let problems = report.problems();
    if report.machine_stopped.is_none() && !report.dom0_unresponsive {
        let _ = machine.send_line("poweroff");
        let _ = machine.wait_exit(Duration::from_secs(20));
    }
    if !problems.is_empty() {
        // The hypervisor's report, or the guest's last words, are at the end of the log.
        let log = machine.log();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        println!("\nthe end of the serial log:");
        for line in tail.into_iter().rev() {
            println!("  {line}");
        }
    }
    if !problems.is_empty() {
        bail!("the fuzz run failed:\n  {}", problems.join("\n  "));
    }
    Ok(())
}
