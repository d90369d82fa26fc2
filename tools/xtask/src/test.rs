//! `cargo xtask test`: host unit tests, then the kernels and the ISO, then the QEMU scenarios;
//! closes with one line `N passed, M failed` summed over both test runs.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::{build, cargo, iso, tools};

/// Passed and failed counts, summed over libtest's `test result:` lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

/// Reads libtest's closing line of one test binary:
/// `test result: ok. 14 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; ...`.
pub fn parse_test_result(line: &str) -> Option<Tally> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let (_verdict, counts) = rest.split_once(". ")?;
    let mut tally = Tally::default();
    let (mut saw_passed, mut saw_failed) = (false, false);
    for part in counts.split(';') {
        let mut words = part.split_whitespace();
        let (Some(number), Some(label)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(number) = number.parse::<u64>() else {
            continue;
        };
        match label {
            "passed" => (tally.passed, saw_passed) = (number, true),
            "failed" => (tally.failed, saw_failed) = (number, true),
            _ => {}
        }
    }
    (saw_passed && saw_failed).then_some(tally)
}

/// Runs a `cargo test` command, echoing its standard output and summing its results.
/// Returns the tally and whether cargo succeeded.
fn run_counting(mut command: Command) -> Result<(Tally, bool)> {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start cargo")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut tally = Tally::default();
    let mut terminal = std::io::stdout();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("could not read cargo's output")?;
        let _ = writeln!(terminal, "{line}");
        let _ = terminal.flush();
        if let Some(result) = parse_test_result(&line) {
            tally.add(result);
        }
    }
    let status = child.wait().context("could not wait for cargo")?;
    Ok((tally, status.success()))
}

/// Runs everything and returns whether all of it passed. The last line printed is always the
/// `N passed, M failed` summary (CI reads it), so failures are reported above it, not after.
pub fn test(filter: Option<&str>) -> Result<bool> {
    let mut total = Tally::default();
    let mut problems: Vec<String> = Vec::new();

    banner("host unit tests: cargo test --workspace --exclude scenarios");
    let mut unit = cargo();
    unit.args([
        "test",
        "--workspace",
        "--exclude",
        "scenarios",
        "--no-fail-fast",
    ]);
    let (tally, success) = run_counting(unit)?;
    total.add(tally);
    if !success {
        problems.push("host unit tests failed (or did not build)".to_string());
    }

    banner("kernels and ISO: cargo xtask build, cargo xtask iso");
    let images = tools::ensure(&[tools::QEMU, tools::GRUB_ISO])
        .and_then(|()| build::build())
        .and_then(|artifacts| Ok((iso::make_iso(&artifacts)?, artifacts)));
    match images {
        Err(error) => problems.push(format!(
            "the QEMU scenarios did not run, because building the images failed: {error:#}"
        )),
        Ok((iso, artifacts)) => {
            banner("QEMU scenarios: cargo test -p scenarios");
            let mut scenarios = cargo();
            scenarios
                .args(["test", "-p", "scenarios", "--no-fail-fast", "--"])
                .arg("--test-threads=2")
                .args(filter)
                .env(scenarios::ENV_KERNEL, &artifacts.kernel)
                .env(scenarios::ENV_DOM0, &artifacts.dom0)
                .env(scenarios::ENV_RAMDISK, &artifacts.ramdisk)
                .env(scenarios::ENV_ISO, &iso)
                .env(scenarios::ENV_TEST_GUESTS, &artifacts.test_guests);
            let (tally, success) = run_counting(scenarios)?;
            total.add(tally);
            if !success {
                problems.push("QEMU scenarios failed (or did not build)".to_string());
            }
        }
    }

    if total.failed > 0 {
        problems.push(format!(
            "{} test(s) failed; their messages are above (scenario failures include the \
             serial log)",
            total.failed
        ));
    }
    println!();
    for problem in &problems {
        println!("error: {problem}");
    }
    println!("{} passed, {} failed", total.passed, total.failed);
    Ok(problems.is_empty() && total.failed == 0)
}

/// Announces a step.
fn banner(step: &str) {
    println!("\n==> {step}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ok_and_failed_summaries() {
        assert_eq!(
            parse_test_result(
                "test result: ok. 14 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.31s"
            ),
            Some(Tally { passed: 14, failed: 0 })
        );
        assert_eq!(
            parse_test_result(
                "test result: FAILED. 3 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 9.02s"
            ),
            Some(Tally { passed: 3, failed: 2 })
        );
    }

    #[test]
    fn ignores_other_lines() {
        assert_eq!(parse_test_result("test foo ... ok"), None);
        assert_eq!(parse_test_result("running 3 tests"), None);
        assert_eq!(parse_test_result("test result: garbage"), None);
        assert_eq!(parse_test_result("12 passed, 0 failed"), None);
    }
}
