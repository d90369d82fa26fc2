//! `cargo xtask xtf DIR [FILTER]`: runs the Xen Test Framework's pv64 tests on this hypervisor.
//!
//! XTF (<https://xenbits.xen.org/gitweb/?p=xtf.git>, mirrored at
//! <https://github.com/andyhhp/xtf>) is Xen's own suite of tiny PV and HVM guests, one test each.
//! A user builds it outside this repository (`make` in its tree) and points this task at the
//! build: every `test-pv64-<name>` image found under DIR boots, as Xen would boot it as the
//! initial domain, in Dom0's place; XTF's pv64 kernels are PV ELF images with Xen notes, which
//! the hypervisor's Dom0 builder reads, and as the initial domain they write through
//! `console_io`, which the hypervisor shows on the serial line. A test variant (XTF's
//! `VARY-CFG`, a `test-pv64-<name>~<variant>.cfg` beside the image) boots once per variant with
//! that config's `cmdline` as the domain's command line.
//!
//! Each test has a time limit. Its verdict is XTF's last `Test result: ...` line; no verdict is
//! `CRASH` (the domain died, or the machine stopped) or `TIMEOUT` (it ran out of time). The table
//! shows, for anything but SUCCESS, the last lines the hypervisor and the test printed: usually
//! the reason. XTF is not in the repository, nor in CI, so this is not part of `cargo xtask test`;
//! the parsing below has host unit tests there.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use scenarios::{BootConfig, Machine};

use crate::{build, tools, workspace_root};

/// How long one test may take before it is a TIMEOUT (scaled by `XENLIKE_TIMEOUT_SCALE`).
const TEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How many of the last log lines the table shows under a test that did not succeed.
const TAIL_LINES: usize = 4;
/// The prefix of XTF's verdict line (`common/report.c`, `xtf_report_status`).
const VERDICT_PREFIX: &str = "Test result: ";

/// How one test ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// XTF: the test passed.
    Success,
    /// XTF: the test did not apply here (a missing feature), which is not a failure.
    Skip,
    /// XTF: something unexpected stopped the test (its environment misbehaved).
    Error,
    /// XTF: the test found the bug it looks for.
    Failure,
    /// No verdict, and the machine stopped: the domain crashed, or the hypervisor did.
    Crash,
    /// No verdict within the time limit.
    Timeout,
}

impl Verdict {
    /// The word XTF prints (or the runner's own, for CRASH and TIMEOUT).
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Success => "SUCCESS",
            Verdict::Skip => "SKIP",
            Verdict::Error => "ERROR",
            Verdict::Failure => "FAILURE",
            Verdict::Crash => "CRASH",
            Verdict::Timeout => "TIMEOUT",
        }
    }

    /// Reads XTF's word.
    fn from_xtf(word: &str) -> Option<Verdict> {
        match word {
            "SUCCESS" => Some(Verdict::Success),
            "SKIP" => Some(Verdict::Skip),
            "ERROR" => Some(Verdict::Error),
            "FAILURE" => Some(Verdict::Failure),
            _ => None,
        }
    }

    const ALL: [Verdict; 6] = [
        Verdict::Success,
        Verdict::Skip,
        Verdict::Error,
        Verdict::Failure,
        Verdict::Crash,
        Verdict::Timeout,
    ];
}

/// One test to boot: an image, and the command line of one variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XtfTest {
    /// XTF's name for it: `test-pv64-example`, `test-pv64-pv-iopl~vmassist`.
    pub name: String,
    /// The image.
    pub image: PathBuf,
    /// The domain's command line (a variant's `cmdline`), empty for none.
    pub cmdline: String,
}

/// Whether a file name is a pv64 test image's: `test-pv64-<name>`, not one of the build's
/// companions (`.cfg`, `.o`, `.d`, `info.json`).
pub fn is_pv64_image_name(file_name: &str) -> bool {
    file_name
        .strip_prefix("test-pv64-")
        .is_some_and(|test| !test.is_empty() && !test.contains(['.', '~']))
}

/// The `cmdline="..."` of an XTF config file (xl.cfg syntax), if it has one.
pub fn cfg_cmdline(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("").trim();
        let (key, value) = line.split_once('=')?;
        if key.trim() != "cmdline" {
            return None;
        }
        let value = value.trim();
        let unquoted = value
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .or_else(|| {
                value
                    .strip_prefix('\'')
                    .and_then(|rest| rest.strip_suffix('\''))
            })
            .unwrap_or(value);
        Some(unquoted.to_string())
    })
}

/// The variant of `image_name` that a config file of this name describes:
/// `test-pv64-pv-iopl~vmassist.cfg` → `vmassist` for `test-pv64-pv-iopl`.
pub fn variant_of(image_name: &str, cfg_file_name: &str) -> Option<String> {
    let variant = cfg_file_name
        .strip_prefix(image_name)?
        .strip_prefix('~')?
        .strip_suffix(".cfg")?;
    (!variant.is_empty()).then(|| variant.to_string())
}

/// The verdict XTF printed last in `log`, if any.
pub fn parse_verdict(log: &str) -> Option<Verdict> {
    log.lines().rev().find_map(|line| {
        let at = line.find(VERDICT_PREFIX)?;
        let word = line[at + VERDICT_PREFIX.len()..]
            .split_whitespace()
            .next()?;
        Verdict::from_xtf(word)
    })
}

/// A test's verdict from its log and whether the machine stopped in time: XTF's own, or CRASH
/// when the machine stopped without one, or TIMEOUT when it ran out of time.
pub fn classify(log: &str, stopped_in_time: bool) -> Verdict {
    match parse_verdict(log) {
        Some(verdict) => verdict,
        None if stopped_in_time => Verdict::Crash,
        None => Verdict::Timeout,
    }
}

/// The serial log as plain lines: escape sequences (GRUB's, a terminal's) and carriage returns
/// removed, blank lines dropped.
pub fn clean_lines(log: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for raw in log.split('\n') {
        let mut line = String::new();
        let mut characters = raw.chars().peekable();
        while let Some(character) = characters.next() {
            match character {
                '\u{1b}' => {
                    // CSI: ESC [ parameters final-byte; other escapes: ESC and one character.
                    if characters.next_if_eq(&'[').is_some() {
                        for inner in characters.by_ref() {
                            if ('@'..='~').contains(&inner) {
                                break;
                            }
                        }
                    } else {
                        characters.next();
                    }
                }
                '\r' => {}
                other if other.is_control() && other != '\t' => {}
                other => line.push(other),
            }
        }
        if !line.trim().is_empty() {
            lines.push(line.trim_end().to_string());
        }
    }
    lines
}

/// The last `count` lines of the log, for the table.
pub fn tail(log: &str, count: usize) -> Vec<String> {
    let lines = clean_lines(log);
    let start = lines.len().saturating_sub(count);
    lines[start..].to_vec()
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The test's name.
    pub name: String,
    /// How it ended.
    pub verdict: Verdict,
    /// How long it ran.
    pub seconds: f64,
    /// The last lines of its log (shown for anything but SUCCESS).
    pub tail: Vec<String>,
}

/// The table for a terminal: one line per test, the log's tail indented under each failure, and
/// the counts per verdict.
pub fn text_table(outcomes: &[Outcome]) -> String {
    let width = outcomes
        .iter()
        .map(|outcome| outcome.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut text = format!("{:<width$}  {:<8}  {:>7}\n", "test", "verdict", "time");
    for outcome in outcomes {
        let _ = writeln!(
            text,
            "{:<width$}  {:<8}  {:>6.1}s",
            outcome.name,
            outcome.verdict.name(),
            outcome.seconds
        );
        if outcome.verdict != Verdict::Success {
            for line in &outcome.tail {
                let _ = writeln!(text, "    | {line}");
            }
        }
    }
    text.push_str(&summary(outcomes));
    text.push('\n');
    text
}

/// The same as Markdown (for `docs/xtf.md`): test, verdict, and the last line for anything but
/// SUCCESS.
pub fn markdown_table(outcomes: &[Outcome]) -> String {
    let mut text = String::from("| test | verdict | last line |\n|---|---|---|\n");
    for outcome in outcomes {
        let last = if outcome.verdict == Verdict::Success {
            String::new()
        } else {
            reason_line(&outcome.tail)
                .map(|line| format!("`{}`", line.replace('|', "\\|").replace('`', "'")))
                .unwrap_or_default()
        };
        let _ = writeln!(
            text,
            "| {} | {} | {last} |",
            outcome.name,
            outcome.verdict.name()
        );
    }
    text.push('\n');
    text.push_str(&summary(outcomes));
    text.push('\n');
    text
}

/// The line of a log tail that says best why a test did not succeed: the
/// last that reports a crash or one of XTF's failure lines, else the last.
pub fn reason_line(tail: &[String]) -> Option<&String> {
    tail.iter()
        .rev()
        .find(|line| {
            ["crashed", "Test result", "Error", "Failure", "FAIL"]
                .iter()
                .any(|word| line.contains(word))
        })
        .or(tail.last())
}

/// `N tests: 3 SUCCESS, 1 SKIP, ...` (verdicts that occurred, in order of severity).
pub fn summary(outcomes: &[Outcome]) -> String {
    let counts: Vec<String> = Verdict::ALL
        .iter()
        .filter_map(|&verdict| {
            let count = outcomes
                .iter()
                .filter(|outcome| outcome.verdict == verdict)
                .count();
            (count > 0).then(|| format!("{count} {}", verdict.name()))
        })
        .collect();
    format!("{} tests: {}", outcomes.len(), counts.join(", "))
}

/// Every pv64 test (with its variants) under `directory`, sorted by name, whose name contains
/// `filter`.
fn find_tests(directory: &Path, filter: Option<&str>) -> Result<Vec<XtfTest>> {
    let mut images = Vec::new();
    collect_images(directory, &mut images)?;
    let mut tests = Vec::new();
    for image in images {
        let image_name = file_name(&image);
        let folder = image.parent().unwrap_or(directory);
        let mut variants = Vec::new();
        for entry in std::fs::read_dir(folder)
            .with_context(|| format!("could not list {}", folder.display()))?
        {
            let path = entry?.path();
            if let Some(variant) = variant_of(&image_name, &file_name(&path)) {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("could not read {}", path.display()))?;
                variants.push((variant, cfg_cmdline(&text).unwrap_or_default()));
            }
        }
        if variants.is_empty() {
            tests.push(XtfTest {
                name: image_name.clone(),
                image: image.clone(),
                cmdline: String::new(),
            });
        }
        for (variant, cmdline) in variants {
            tests.push(XtfTest {
                name: format!("{image_name}~{variant}"),
                image: image.clone(),
                cmdline,
            });
        }
    }
    tests.retain(|test| filter.is_none_or(|filter| test.name.contains(filter)));
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tests)
}

/// A path's last component as text.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Collects the pv64 images (ELF files of the right name) below `directory`.
fn collect_images(directory: &Path, images: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(directory)
        .with_context(|| format!("could not list {}", directory.display()))?
    {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_images(&path, images)?;
        } else if kind.is_file() && is_pv64_image_name(&file_name(&path)) && is_elf(&path) {
            images.push(path);
        }
    }
    Ok(())
}

/// Whether the file starts with ELF's magic number.
fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// Boots one test and waits for its verdict and the machine's stop.
fn run_one(artifacts: &build::Artifacts, test: &XtfTest) -> Result<Outcome> {
    let config = BootConfig::direct(
        artifacts.kernel.clone(),
        test.image.clone(),
        artifacts.ramdisk.clone(),
    )
    .dom0_cmdline(&test.cmdline);
    let started = Instant::now();
    let mut machine = Machine::boot(config)?;
    // The verdict comes just before XTF shuts the domain down, which stops the machine: wait
    // for the machine, then read the verdict from the whole log.
    let stopped_in_time = machine.wait_exit(TEST_TIMEOUT).is_some();
    let log = machine.log();
    let verdict = classify(&log, stopped_in_time);
    Ok(Outcome {
        name: test.name.clone(),
        verdict,
        seconds: started.elapsed().as_secs_f64(),
        tail: tail(&log, TAIL_LINES),
    })
}

/// `cargo xtask xtf DIR [FILTER]`.
pub fn xtf(directory: &Path, filter: Option<&str>) -> Result<()> {
    let tests = find_tests(directory, filter)?;
    if tests.is_empty() {
        bail!(
            "no test-pv64-* images under {}{}: build XTF first (git clone \
             https://github.com/andyhhp/xtf; make -C xtf), then pass its directory",
            directory.display(),
            filter.map_or(String::new(), |filter| format!(" matching {filter:?}"))
        );
    }
    tools::ensure(&[tools::QEMU])?;
    let artifacts = build::build()?;
    println!(
        "running {} XTF pv64 test(s) from {} as the initial domain, {:?} each",
        tests.len(),
        directory.display(),
        scenarios::scaled(TEST_TIMEOUT)
    );
    let mut outcomes = Vec::new();
    for test in &tests {
        let outcome = run_one(&artifacts, test)?;
        println!(
            "  {:<40} {:<8} {:>5.1}s",
            outcome.name,
            outcome.verdict.name(),
            outcome.seconds
        );
        outcomes.push(outcome);
    }
    println!();
    print!("{}", text_table(&outcomes));
    let report = workspace_root().join("target").join("xtf.md");
    std::fs::write(&report, markdown_table(&outcomes))
        .with_context(|| format!("could not write {}", report.display()))?;
    println!("\nwritten to {}", report.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_exclude_the_build_companions() {
        assert!(is_pv64_image_name("test-pv64-example"));
        assert!(is_pv64_image_name("test-pv64-xsa-472-1"));
        assert!(!is_pv64_image_name("test-pv64-example.cfg"));
        assert!(!is_pv64_image_name("test-pv64-pv-iopl~vmassist.cfg"));
        assert!(!is_pv64_image_name("test-pv32pae-example"));
        assert!(!is_pv64_image_name("test-hvm64-example"));
        assert!(!is_pv64_image_name("test-pv64-"));
        assert!(!is_pv64_image_name("main-pv64.o"));
    }

    #[test]
    fn variants_come_from_their_config_files() {
        assert_eq!(
            variant_of("test-pv64-pv-iopl", "test-pv64-pv-iopl~vmassist.cfg"),
            Some("vmassist".to_string())
        );
        assert_eq!(
            variant_of("test-pv64-pv-iopl", "test-pv64-pv-iopl.cfg"),
            None
        );
        assert_eq!(
            variant_of("test-pv64-xsa-1", "test-pv64-xsa-12~a.cfg"),
            None
        );
        assert_eq!(variant_of("test-pv64-a", "test-pv64-a~.cfg"), None);
        let cfg = "name=\"test-pv64-pv-iopl~vmassist\"\n\nvcpus=1\n\
                   loader=\"generic\" # Legacy\n# Test Variation Configuration:\n\
                   cmdline=\"vmassist\"\n";
        assert_eq!(cfg_cmdline(cfg), Some("vmassist".to_string()));
        assert_eq!(
            cfg_cmdline("cmdline = 'a b'  # note"),
            Some("a b".to_string())
        );
        assert_eq!(cfg_cmdline("name=\"x\"\n#cmdline=\"no\"\n"), None);
    }

    #[test]
    fn the_last_verdict_counts() {
        let log = "(XEN) xen-like\r\n(d0) --- Xen Test Framework ---\r\n\
                   (d0) Test result: SKIP\r\n(d0) Test result: FAILURE\r\n";
        assert_eq!(parse_verdict(log), Some(Verdict::Failure));
        assert_eq!(
            parse_verdict("Test result: SUCCESS with warnings\n"),
            Some(Verdict::Success)
        );
        assert_eq!(parse_verdict("Test result: RUNNING\n"), None);
        assert_eq!(parse_verdict("Test result:\n"), None);
        assert_eq!(parse_verdict("no verdict here\n"), None);
    }

    #[test]
    fn no_verdict_is_a_crash_or_a_timeout() {
        let crashed = "(XEN) Domain 0 crashed: invalid opcode\n";
        assert_eq!(classify(crashed, true), Verdict::Crash);
        assert_eq!(classify(crashed, false), Verdict::Timeout);
        assert_eq!(classify("Test result: ERROR\n", false), Verdict::Error);
        assert_eq!(classify("Test result: SUCCESS\n", true), Verdict::Success);
    }

    #[test]
    fn lines_lose_escapes_and_carriage_returns() {
        let log = "\u{1b}[2J\u{1b}[01;01H(XEN) one\r\n\r\n\u{1b}c(d0) two\r\nthree";
        assert_eq!(clean_lines(log), ["(XEN) one", "(d0) two", "three"]);
        assert_eq!(tail(log, 2), ["(d0) two", "three"]);
        assert_eq!(tail(log, 10).len(), 3);
    }

    #[test]
    fn tables_show_the_tail_of_failures_only() {
        let outcomes = [
            Outcome {
                name: "test-pv64-example".to_string(),
                verdict: Verdict::Success,
                seconds: 0.4,
                tail: vec!["Test result: SUCCESS".to_string()],
            },
            Outcome {
                name: "test-pv64-xsa-7".to_string(),
                verdict: Verdict::Crash,
                seconds: 1.0,
                tail: vec![
                    "(XEN) Domain 0 crashed: a | b".to_string(),
                    "(XEN) Dom0 has stopped".to_string(),
                ],
            },
        ];
        let text = text_table(&outcomes);
        assert!(text.contains("test-pv64-example  SUCCESS"), "{text}");
        assert!(!text.contains("| Test result"), "{text}");
        assert!(text.contains("    | (XEN) Domain 0 crashed"), "{text}");
        assert!(text.ends_with("2 tests: 1 SUCCESS, 1 CRASH\n"), "{text}");
        let markdown = markdown_table(&outcomes);
        assert!(
            markdown.contains("| test-pv64-example | SUCCESS |  |"),
            "{markdown}"
        );
        assert!(
            markdown.contains("| test-pv64-xsa-7 | CRASH | `(XEN) Domain 0 crashed: a \\| b` |"),
            "{markdown}"
        );
    }
}
