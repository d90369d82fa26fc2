//! `cargo xtask bench`: boots the system, runs Dom0's in-guest microbenchmarks (TSC-timed,
//! median of many iterations) and writes the table to target/bench.md.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use scenarios::bench::{markdown_table, parse_bench_line, text_table, BenchLine, BenchResult};
use scenarios::{Machine, BOOT_TIMEOUT, COMMAND_TIMEOUT, EXIT_POWEROFF, PROMPT};

use crate::{build, qemu, tools, workspace_root};

/// How long all benchmarks together may take.
const BENCH_TIMEOUT: Duration = Duration::from_secs(300);

/// Builds, boots, runs `bench` at Dom0's prompt, and reports.
pub fn bench() -> Result<()> {
    tools::ensure(&[tools::QEMU])?;
    // Benchmarks measure the hypervisor as it ships: without the lock-order check.
    let artifacts = build::build_with(build::LockOrderCheck::Off)?;
    let mut machine = Machine::boot(qemu::direct_config(&artifacts))?;
    machine
        .expect(PROMPT, BOOT_TIMEOUT)
        .map_err(|error| anyhow!("the boot did not reach Dom0's prompt: {error}"))?;
    machine.send_line("bench")?;
    println!("running Dom0's benchmarks (cycles are TSC cycles per operation)...");

    let deadline = Instant::now() + BENCH_TIMEOUT;
    let mut results: Vec<BenchResult> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let line = machine
            .expect("\n", remaining)
            .map_err(|error| anyhow!("no `bench: done` within {BENCH_TIMEOUT:?}: {error}"))?;
        match parse_bench_line(&line) {
            Some(BenchLine::Result(result)) => {
                println!(
                    "  {:<28} median={:>10} min={:>10} iterations={}",
                    result.name, result.median, result.min, result.iterations
                );
                results.push(result);
            }
            Some(BenchLine::Other(text)) => {
                println!("  (bench: {text})");
                notes.push(text);
            }
            Some(BenchLine::Done) => break,
            None => {}
        }
    }
    machine.send_line("poweroff")?;
    let exit = machine.wait_exit(COMMAND_TIMEOUT);

    if results.is_empty() {
        bail!(
            "Dom0 reported no benchmark results\n{}",
            machine.log_report()
        );
    }
    let results = scenarios::bench::merge_samples(results);
    println!();
    print!("{}", text_table(&results));
    for note in &notes {
        println!("{note}");
    }
    let report = workspace_root().join("target").join("bench.md");
    let markdown = format!(
        "# xen-like benchmarks\n\n\
         TSC cycles per operation measured inside the guest under QEMU (software emulation); \
         the last column divides each median by the `{}` median of the same boot.\n\n{}",
        scenarios::bench::BASELINE,
        markdown_table(&results)
    ) + &notes
        .iter()
        .map(|note| format!("\n- {note}"))
        .collect::<String>();
    std::fs::write(&report, markdown)
        .with_context(|| format!("could not write {}", report.display()))?;
    println!("\nwritten to {}", report.display());
    if exit != Some(EXIT_POWEROFF) {
        bail!(
            "`poweroff` after the benchmarks did not end QEMU cleanly (exit {exit:?})\n{}",
            machine.log_report()
        );
    }
    Ok(())
}
