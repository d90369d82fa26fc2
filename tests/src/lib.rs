//! QEMU scenario harness: boots xen-like in QEMU, types at its serial console and waits for text.
//!
//! A scenario is a small program against this API:
//!
//! ```text
//! let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
//! let listing = machine.command("xl list");
//! machine.ensure(listing.contains("Domain-0"), "xl list shows Domain-0");
//! machine.send_line("poweroff").unwrap();
//! machine.expect_exit(EXIT_POWEROFF, COMMAND_TIMEOUT);
//! ```
//!
//! QEMU runs with its serial line on piped stdin/stdout. A reader thread keeps the raw serial
//! log (every byte, escapes and all); `expect` and `expect_regex` wait until the output that
//! arrived since the previous match contains what they look for. The system under test ends
//! QEMU through the `isa-debug-exit` device, so its exit status is the verdict (see
//! [`EXIT_POWEROFF`] and friends); QEMU ending for any other reason, or not ending in time, is a
//! failure. Every failure message carries the whole serial log, because that is the only
//! evidence of what the kernels did.
//!
//! Where the kernels are comes from environment variables that `cargo xtask test` sets
//! ([`ENV_KERNEL`], [`ENV_DOM0`], [`ENV_RAMDISK`], [`ENV_ISO`]); without them the scenarios fail
//! and say to run `cargo xtask test`.

pub mod bench;
pub mod fuzz;

use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// The prompt Dom0's shell prints when it waits for a command.
pub const PROMPT: &str = "dom0# ";

/// QEMU's exit status when Dom0 powered the machine off cleanly (through ACPI: the
/// `isa-debug-exit` device cannot produce an even status).
///
/// Beware: with `-no-reboot`, a guest reset (a triple fault, for instance) also ends QEMU with
/// status 0, and so does quitting from QEMU's monitor (the harness never opens one). So a
/// scenario checks for the text it expects before it trusts a 0.
pub const EXIT_POWEROFF: i32 = 0;

/// QEMU's exit status when the hypervisor stopped on a fatal error (it wrote 16 to the
/// `isa-debug-exit` port, which QEMU turns into `16 << 1 | 1`).
pub const EXIT_HYPERVISOR_FATAL: i32 = 33;

/// QEMU's exit status when Dom0 crashed and the hypervisor stopped the machine (it wrote 17 to
/// the `isa-debug-exit` port).
pub const EXIT_DOM0_CRASHED: i32 = 35;

/// Environment variable: path of the hypervisor image (`xen-like`, a Multiboot ELF).
pub const ENV_KERNEL: &str = "XENLIKE_KERNEL";
/// Environment variable: path of Dom0's kernel image.
pub const ENV_DOM0: &str = "XENLIKE_DOM0";
/// Environment variable: path of Dom0's ramdisk (a ustar archive).
pub const ENV_RAMDISK: &str = "XENLIKE_RAMDISK";
/// Environment variable: path of the GRUB ISO made by `cargo xtask iso`.
pub const ENV_ISO: &str = "XENLIKE_ISO";
/// Environment variable naming the directory of the test guests (tests/guests).
pub const ENV_TEST_GUESTS: &str = "XENLIKE_TEST_GUESTS";
/// Environment variable (optional): the QEMU program to run instead of `qemu-system-x86_64`.
pub const ENV_QEMU: &str = "XENLIKE_QEMU";
/// Environment variable (optional): a factor, such as `2` or `0.5`, that multiplies every
/// scenario time limit, for machines slower or faster than the 2-core machines of this project.
pub const ENV_TIMEOUT_SCALE: &str = "XENLIKE_TIMEOUT_SCALE";

/// Time limit for a boot to reach Dom0's prompt (direct boots take about a second, GRUB a few).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the output must stay quiet after a prompt for [`Machine::expect_prompt`] to take
/// it as the end of a command's output.
pub const PROMPT_QUIET: Duration = Duration::from_millis(100);
/// Time limit for one shell command, including QEMU exiting after `poweroff` or a crash.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// How long, once QEMU has exited, the harness waits for the reader threads to copy the rest
/// of its output (normally a few milliseconds).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The memory size QEMU gives the machine unless a scenario asks for another.
pub const DEFAULT_MEMORY: &str = "512M";
/// The hypervisor command line unless a scenario asks for another (Xen's option names).
pub const DEFAULT_HYPERVISOR_CMDLINE: &str = "loglvl=all";

/// Multiplies a time limit by [`ENV_TIMEOUT_SCALE`] when that is set to a positive number.
pub fn scaled(limit: Duration) -> Duration {
    match std::env::var(ENV_TIMEOUT_SCALE)
        .ok()
        .and_then(|text| text.trim().parse::<f64>().ok())
    {
        Some(factor) if factor.is_finite() && factor > 0.0 => limit.mul_f64(factor),
        _ => limit,
    }
}

/// What QEMU boots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootMedium {
    /// QEMU's own Multiboot loader (`-kernel`, `-append`, `-initrd`): the fast path.
    Direct {
        /// The hypervisor image.
        kernel: PathBuf,
        /// Dom0's kernel image, passed as the first module.
        dom0: PathBuf,
        /// Dom0's ramdisk, passed as the second module.
        ramdisk: PathBuf,
    },
    /// A GRUB ISO (`-cdrom`), booted the way bare metal boots: Multiboot2 through GRUB. The
    /// command lines are baked into the ISO's `grub.cfg` by `cargo xtask iso`.
    Iso(PathBuf),
}

/// How QEMU's serial line is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    /// Serial line on QEMU's stdin/stdout, no monitor: for the harness, which pipes both.
    Piped,
    /// Serial line multiplexed with QEMU's monitor on the terminal (`Ctrl-A X` quits,
    /// `Ctrl-A C` switches to the monitor): for a person at `cargo xtask run`.
    Interactive,
}

/// Everything that decides how QEMU is started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootConfig {
    /// What to boot.
    pub medium: BootMedium,
    /// QEMU's `-m` argument, such as `512M`.
    pub memory: String,
    /// The hypervisor's command line (direct boot only).
    pub hypervisor_cmdline: String,
    /// Dom0's command line (direct boot only); empty for none.
    pub dom0_cmdline: String,
    /// Further QEMU arguments, appended last.
    pub extra_qemu_args: Vec<OsString>,
    /// The QEMU program.
    pub qemu: PathBuf,
}

impl BootConfig {
    /// A direct (`-kernel`) boot of the given images with the default memory and command lines.
    pub fn direct(kernel: PathBuf, dom0: PathBuf, ramdisk: PathBuf) -> BootConfig {
        BootConfig::with_medium(BootMedium::Direct {
            kernel,
            dom0,
            ramdisk,
        })
    }

    /// A GRUB ISO (`-cdrom`) boot with the default memory.
    pub fn iso(iso: PathBuf) -> BootConfig {
        BootConfig::with_medium(BootMedium::Iso(iso))
    }

    fn with_medium(medium: BootMedium) -> BootConfig {
        let qemu = std::env::var_os(ENV_QEMU)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64"));
        BootConfig {
            medium,
            memory: DEFAULT_MEMORY.to_string(),
            hypervisor_cmdline: DEFAULT_HYPERVISOR_CMDLINE.to_string(),
            dom0_cmdline: String::new(),
            extra_qemu_args: Vec::new(),
            qemu,
        }
    }

    /// A direct boot of the images named by [`ENV_KERNEL`], [`ENV_DOM0`] and [`ENV_RAMDISK`].
    ///
    /// # Panics
    /// When one of them is unset or names no file: the message says to run `cargo xtask test`.
    pub fn direct_from_env() -> BootConfig {
        BootConfig::direct(
            artifact_from_env(ENV_KERNEL),
            artifact_from_env(ENV_DOM0),
            artifact_from_env(ENV_RAMDISK),
        )
    }

    /// A direct boot with test guest `name` (a binary of tests/guests) as the
    /// initial domain in Dom0's place, as the Xen Test Framework boots its
    /// tests.
    ///
    /// # Panics
    /// When the artifacts are not named by the environment, or the guest does
    /// not exist.
    pub fn test_guest(name: &str) -> BootConfig {
        let Some(directory) = std::env::var_os(ENV_TEST_GUESTS).filter(|value| !value.is_empty())
        else {
            panic!("{ENV_TEST_GUESTS} is not set: run the scenarios with `cargo xtask test`");
        };
        let guest = PathBuf::from(directory).join(name);
        assert!(
            guest.is_file(),
            "no test guest {} (is it a [[bin]] of tests/guests?)",
            guest.display()
        );
        BootConfig::direct(
            artifact_from_env(ENV_KERNEL),
            guest,
            artifact_from_env(ENV_RAMDISK),
        )
    }

    /// A GRUB boot of the ISO named by [`ENV_ISO`].
    ///
    /// # Panics
    /// When it is unset or names no file: the message says to run `cargo xtask test`.
    pub fn iso_from_env() -> BootConfig {
        BootConfig::iso(artifact_from_env(ENV_ISO))
    }

    /// Sets QEMU's memory size (`-m`), such as `256M`.
    pub fn memory(mut self, memory: &str) -> BootConfig {
        self.memory = memory.to_string();
        self
    }

    /// Sets the hypervisor's command line (direct boot only).
    pub fn hypervisor_cmdline(mut self, cmdline: &str) -> BootConfig {
        self.hypervisor_cmdline = cmdline.to_string();
        self
    }

    /// Sets Dom0's command line (direct boot only).
    pub fn dom0_cmdline(mut self, cmdline: &str) -> BootConfig {
        self.dom0_cmdline = cmdline.to_string();
        self
    }

    /// Appends one argument to QEMU's command line.
    pub fn qemu_arg(mut self, argument: impl Into<OsString>) -> BootConfig {
        self.extra_qemu_args.push(argument.into());
        self
    }

    /// The arguments to start QEMU with (without the program itself).
    ///
    /// Fails when a path or command line contains a comma: QEMU's Multiboot loader splits
    /// `-initrd` at commas, with no way to escape one.
    pub fn qemu_args(&self, console: Console) -> Result<Vec<OsString>, HarnessError> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
        push(&["-machine", "pc", "-m", &self.memory, "-display", "none"]);
        match console {
            Console::Piped => push(&["-serial", "stdio", "-monitor", "none"]),
            Console::Interactive => push(&["-serial", "mon:stdio"]),
        }
        push(&[
            "-no-reboot",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ]);
        match &self.medium {
            BootMedium::Direct {
                kernel,
                dom0,
                ramdisk,
            } => {
                let kernel = path_without_comma(kernel, "hypervisor image")?;
                let dom0 = path_without_comma(dom0, "Dom0 image")?;
                let ramdisk = path_without_comma(ramdisk, "Dom0 ramdisk")?;
                if self.dom0_cmdline.contains(',') {
                    return Err(HarnessError::Config(format!(
                        "Dom0's command line {:?} contains a comma, which QEMU's -initrd cannot \
                         carry (it separates modules there)",
                        self.dom0_cmdline
                    )));
                }
                let dom0_module = if self.dom0_cmdline.is_empty() {
                    dom0
                } else {
                    format!("{dom0} {}", self.dom0_cmdline)
                };
                push(&[
                    "-kernel",
                    &kernel,
                    "-append",
                    &self.hypervisor_cmdline,
                    "-initrd",
                    &format!("{dom0_module},{ramdisk}"),
                ]);
            }
            BootMedium::Iso(iso) => {
                let iso = path_without_comma(iso, "ISO")?;
                push(&["-cdrom", &iso]);
            }
        }
        args.extend(self.extra_qemu_args.iter().cloned());
        Ok(args)
    }

    /// The full QEMU command line as a shell would show it, for messages.
    pub fn describe(&self, console: Console) -> String {
        match self.qemu_args(console) {
            Ok(args) => {
                let mut text = self.qemu.display().to_string();
                for arg in args {
                    let arg = arg.to_string_lossy();
                    if arg.is_empty() || arg.contains([' ', '"', '\'', '$', '\\']) {
                        text.push_str(&format!(" '{}'", arg.replace('\'', r"'\''")));
                    } else {
                        text.push(' ');
                        text.push_str(&arg);
                    }
                }
                text
            }
            Err(error) => format!("(invalid configuration: {error})"),
        }
    }
}

/// Reads an artifact path from the environment, or panics saying how to get one.
fn artifact_from_env(variable: &str) -> PathBuf {
    let Some(value) = std::env::var_os(variable).filter(|value| !value.is_empty()) else {
        panic!(
            "{variable} is not set. The QEMU scenarios need the kernels built first: run them \
             with `cargo xtask test` (optionally `cargo xtask test <filter>`), which builds \
             the images and sets {ENV_KERNEL}, {ENV_DOM0}, {ENV_RAMDISK} and {ENV_ISO}."
        );
    };
    let path = PathBuf::from(value);
    assert!(
        path.is_file(),
        "{variable}={} names no file: run `cargo xtask test`, which builds it.",
        path.display()
    );
    path
}

/// A path as UTF-8 text without commas, for QEMU's comma-separated options.
fn path_without_comma(path: &Path, what: &str) -> Result<String, HarnessError> {
    let Some(text) = path.to_str() else {
        return Err(HarnessError::Config(format!(
            "the {what} path {} is not UTF-8",
            path.display()
        )));
    };
    if text.contains(',') {
        return Err(HarnessError::Config(format!(
            "the {what} path {text:?} contains a comma, which QEMU cannot take in this option; \
             move the workspace to a path without commas"
        )));
    }
    Ok(text.to_string())
}

/// What went wrong while driving QEMU. The `Display` (and `Debug`, so that `unwrap` shows it)
/// includes the serial log where there is one.
pub enum HarnessError {
    /// The configuration cannot be expressed on QEMU's command line.
    Config(String),
    /// QEMU could not be started or talked to.
    Io {
        /// What the harness was doing.
        action: String,
        /// Why it failed.
        error: std::io::Error,
    },
    /// The expected text did not appear in time, or QEMU exited first.
    Expectation {
        /// What the harness waited for.
        what: String,
        /// Why it stopped waiting: a timeout or QEMU's exit.
        reason: String,
        /// The serial log so far, and QEMU's stderr when it said anything.
        log: String,
    },
}

impl fmt::Display for HarnessError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::Config(message) => write!(formatter, "{message}"),
            HarnessError::Io { action, error } => write!(formatter, "{action}: {error}"),
            HarnessError::Expectation { what, reason, log } => {
                write!(formatter, "waited for {what}, but {reason}\n{log}")
            }
        }
    }
}

impl fmt::Debug for HarnessError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, formatter)
    }
}

impl std::error::Error for HarnessError {}

/// What QEMU has written so far, shared between the reader threads and the [`Machine`].
#[derive(Default)]
struct Output {
    /// Raw serial bytes, from QEMU's stdout.
    serial: Vec<u8>,
    /// QEMU's own messages, from its stderr.
    stderr: Vec<u8>,
    /// QEMU closed its stdout (it exited, or is about to).
    serial_closed: bool,
    /// QEMU closed its stderr: everything it wrote there is in `stderr`.
    stderr_closed: bool,
}

/// The shared output with its wake-up signal.
type SharedOutput = Arc<(Mutex<Output>, Condvar)>;

/// A text match found by [`Machine::expect_regex`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegexMatch {
    /// The output since the previous match, up to and including this match.
    pub text: String,
    /// The capture groups; index 0 is the whole match, `None` for a group that did not take part.
    pub groups: Vec<Option<String>>,
}

impl RegexMatch {
    /// Capture group `index`, or the empty string when it did not take part.
    pub fn group(&self, index: usize) -> &str {
        self.groups
            .get(index)
            .and_then(|group| group.as_deref())
            .unwrap_or("")
    }
}

/// A running QEMU with its serial console. Dropping it kills QEMU.
pub struct Machine {
    child: Child,
    stdin: Option<ChildStdin>,
    output: SharedOutput,
    /// Byte offset in the serial log up to which earlier matches consumed it.
    consumed: usize,
    /// QEMU's exit status once it has been collected.
    exit: Option<ExitStatus>,
    /// The reader threads of QEMU's stdout and stderr, until they are
    /// drained (see [`Machine::drain_readers`]).
    readers: Vec<thread::JoinHandle<()>>,
    /// The QEMU command line, for failure messages.
    command_line: String,
}

impl fmt::Debug for Machine {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Machine")
            .field("pid", &self.child.id())
            .field("command_line", &self.command_line)
            .finish_non_exhaustive()
    }
}

impl Machine {
    /// Starts QEMU with the serial line piped to this harness.
    pub fn boot(config: BootConfig) -> Result<Machine, HarnessError> {
        let args = config.qemu_args(Console::Piped)?;
        let mut command = Command::new(&config.qemu);
        command.args(&args);
        Machine::spawn(command, config.describe(Console::Piped)).map_err(|error| HarnessError::Io {
            action: format!(
                "could not start {} (install QEMU with `apt-get install qemu-system-x86`, \
                     or run `cargo xtask test`, which does)",
                config.qemu.display()
            ),
            error,
        })
    }

    /// Starts `command` with piped stdio and the reader threads.
    fn spawn(mut command: Command, command_line: String) -> std::io::Result<Machine> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let output: SharedOutput = Arc::default();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let readers = vec![
            spawn_reader(stdout, Arc::clone(&output), Stream::Serial),
            spawn_reader(stderr, Arc::clone(&output), Stream::Stderr),
        ];
        Ok(Machine {
            stdin: child.stdin.take(),
            child,
            output,
            consumed: 0,
            exit: None,
            readers,
            command_line,
        })
    }

    /// Starts QEMU and waits (up to [`BOOT_TIMEOUT`]) for Dom0's first prompt.
    ///
    /// # Panics
    /// When QEMU cannot start or the prompt does not come; the message holds the serial log.
    pub fn boot_to_prompt(config: BootConfig) -> Machine {
        let mut machine = Machine::boot(config).unwrap_or_else(|error| panic!("{error}"));
        if let Err(error) = machine.expect(PROMPT, BOOT_TIMEOUT) {
            panic!("boot did not reach Dom0's prompt: {error}");
        }
        machine
    }

    /// Waits until the output since the previous match contains `needle`; returns that output
    /// up to and including the needle, and consumes it.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> Result<String, HarnessError> {
        let needle_bytes = needle.as_bytes();
        let consumed = self.consumed;
        let end = self.wait_for(&format!("{needle:?}"), timeout, |serial| {
            find_bytes(&serial[consumed..], needle_bytes)
                .map(|start| consumed + start + needle_bytes.len())
        })?;
        Ok(self.consume_to(end))
    }

    /// Waits until the output since the previous match matches `pattern` (a `regex` crate
    /// pattern, multi-line mode on: `^` and `$` match at line boundaries); returns the output
    /// up to and including the match with its capture groups, and consumes it.
    ///
    /// # Panics
    /// When the pattern is not a valid regular expression (a bug in the scenario).
    pub fn expect_regex(
        &mut self,
        pattern: &str,
        timeout: Duration,
    ) -> Result<RegexMatch, HarnessError> {
        let regex = regex::bytes::RegexBuilder::new(pattern)
            .multi_line(true)
            .build()
            .unwrap_or_else(|error| panic!("bad pattern {pattern:?}: {error}"));
        let consumed = self.consumed;
        let mut groups = Vec::new();
        let end = self.wait_for(&format!("/{pattern}/"), timeout, |serial| {
            let captures = regex.captures(&serial[consumed..])?;
            groups = captures
                .iter()
                .map(|group| group.map(|group| lossy(group.as_bytes())))
                .collect();
            captures.get(0).map(|whole| consumed + whole.end())
        })?;
        Ok(RegexMatch {
            text: self.consume_to(end),
            groups,
        })
    }

    /// Writes raw bytes to the serial line.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), HarnessError> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(HarnessError::Config(
                "the serial input was already closed".to_string(),
            ));
        };
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .map_err(|error| HarnessError::Io {
                action: format!(
                    "could not type {:?} (QEMU has probably exited)\n{}",
                    lossy(bytes),
                    self.log_report()
                ),
                error,
            })
    }

    /// Types a line and presses Enter (a carriage return, as a terminal sends).
    pub fn send_line(&mut self, line: &str) -> Result<(), HarnessError> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\r');
        self.send(&bytes)
    }

    /// Waits for Dom0's prompt at the end of the output: some output then [`PROMPT`], then
    /// [`PROMPT_QUIET`] with nothing more. Returns the output up to and including the last
    /// prompt seen, and consumes it.
    ///
    /// Unlike `expect(PROMPT, ...)`, this is not fooled by a command whose output contains the
    /// prompt's text (such as `xl dmesg` echoing a console ring that holds Dom0's output). If
    /// the output never settles, the last prompt seen when the time limit ends is taken.
    pub fn expect_prompt(&mut self, timeout: Duration) -> Result<String, HarnessError> {
        let deadline = Instant::now() + scaled(timeout);
        let consumed = self.consumed;
        let last_prompt = |serial: &[u8]| {
            rfind_bytes(&serial[consumed..], PROMPT.as_bytes())
                .map(|start| consumed + start + PROMPT.len())
        };
        let mut seen_length = 0;
        let mut last_change = Instant::now();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            self.wait_for(&format!("the prompt {PROMPT:?}"), remaining, last_prompt)?;
            let now = Instant::now();
            let end = {
                let output = self.lock();
                if output.serial.len() != seen_length {
                    seen_length = output.serial.len();
                    last_change = now;
                }
                last_prompt(&output.serial)
            };
            if let Some(end) =
                end.filter(|_| now.duration_since(last_change) >= PROMPT_QUIET || now >= deadline)
            {
                return Ok(self.consume_to(end));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs a shell command: types it, waits (up to [`COMMAND_TIMEOUT`]) for the next prompt,
    /// and returns what came in between, with line endings turned into `\n`, the echo of the
    /// command line itself and the prompt left out.
    ///
    /// # Panics
    /// When typing fails or the prompt does not come back; the message holds the serial log.
    pub fn command(&mut self, line: &str) -> String {
        if let Err(error) = self.send_line(line) {
            panic!("could not run `{line}`: {error}");
        }
        match self.expect_prompt(COMMAND_TIMEOUT) {
            Ok(text) => command_output(&text, line),
            Err(error) => panic!("`{line}` did not return to the prompt: {error}"),
        }
    }

    /// Types `poweroff` and checks that QEMU exits with [`EXIT_POWEROFF`] within
    /// [`COMMAND_TIMEOUT`].
    ///
    /// # Panics
    /// When it does not; the message holds the serial log.
    pub fn poweroff(&mut self) {
        if let Err(error) = self.send_line("poweroff") {
            panic!("could not type `poweroff`: {error}");
        }
        self.expect_exit(EXIT_POWEROFF, COMMAND_TIMEOUT);
    }

    /// Waits up to `timeout` for QEMU to exit and returns its exit status; on timeout kills QEMU
    /// and returns `None`. A QEMU killed by a signal reports `128 + signal`, as a shell does.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + scaled(timeout);
        loop {
            if let Some(status) = self.poll_exit() {
                return Some(exit_code(status));
            }
            if Instant::now() >= deadline {
                self.kill();
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for QEMU to exit with `expected` (one of the `EXIT_` constants).
    ///
    /// # Panics
    /// When QEMU exits with another status or not in time; the message holds the serial log.
    pub fn expect_exit(&mut self, expected: i32, timeout: Duration) {
        match self.wait_exit(timeout) {
            Some(status) if status == expected => {}
            Some(status) => self.fail(&format!(
                "QEMU exited with status {status} ({}), expected {expected} ({})",
                describe_exit(status),
                describe_exit(expected)
            )),
            None => self.fail(&format!(
                "QEMU did not exit within {:?} (killed it); expected status {expected} ({})",
                scaled(timeout),
                describe_exit(expected)
            )),
        }
    }

    /// Boots test guest `name` (a [[bin]] of `tests/guests`) as the initial
    /// domain, waits for its verdict and for QEMU to power off, and checks
    /// that no check failed and the guest reported success. Returns the
    /// machine, so the caller can look further into its log.
    ///
    /// # Panics
    /// When QEMU does not start, the guest gives no verdict, QEMU does not
    /// power off, or a check failed; the message holds the serial log.
    pub fn run_test_guest(name: &str) -> Machine {
        let mut machine = Machine::boot(BootConfig::test_guest(name)).expect("QEMU starts");
        if let Err(error) = machine.expect("Test result: ", BOOT_TIMEOUT) {
            panic!("no verdict from {name}: {error}");
        }
        machine.expect_exit(EXIT_POWEROFF, BOOT_TIMEOUT);
        let log = machine.log();
        machine.ensure(!log.contains("FAIL: "), "every check passed");
        machine.ensure(
            log.contains("Test result: SUCCESS"),
            "the guest reports success",
        );
        machine
    }

    /// Domain `name`'s CPU time from `xl list`'s Time(s) column, in tenths
    /// of a second.
    ///
    /// # Panics
    /// When `name` has no row; the message holds the listing and the serial log.
    pub fn cpu_tenths(&mut self, name: &str) -> u64 {
        let list = self.command("xl list");
        let pattern = format!(r"^{name}\s+\d+\s+\d+\s+\d+\s+\S+\s+(\d+)\.(\d)\s*$");
        let time = self.ensure_match(&list, &pattern, &format!("{name} is in xl list"));
        let whole: u64 = time[1].parse().expect("the pattern matched digits");
        let tenth: u64 = time[2].parse().expect("the pattern matched a digit");
        whole * 10 + tenth
    }

    /// CPU time, in tenths of a second, that each domain of `names` used
    /// over `seconds` of wall time ([`Machine::cpu_tenths`] before and after).
    ///
    /// # Panics
    /// As [`Machine::cpu_tenths`].
    pub fn cpu_usage(&mut self, names: &[&str], seconds: u64) -> Vec<u64> {
        let before: Vec<u64> = names.iter().map(|name| self.cpu_tenths(name)).collect();
        thread::sleep(Duration::from_secs(seconds));
        names
            .iter()
            .zip(before)
            .map(|(name, start)| self.cpu_tenths(name) - start)
            .collect()
    }

    /// The whole raw serial log so far, as text (invalid UTF-8 replaced).
    pub fn log(&self) -> String {
        lossy(&self.lock().serial)
    }

    /// Panics with `message` and the whole serial log.
    pub fn fail(&self, message: &str) -> ! {
        panic!("{message}\n{}", self.log_report())
    }

    /// Panics with `message` and the whole serial log unless `condition` holds.
    pub fn ensure(&self, condition: bool, message: &str) {
        if !condition {
            self.fail(&format!("check failed: {message}"));
        }
    }

    /// Checks that `text` (usually a command's output) matches `pattern` (multi-line mode) and
    /// returns the capture groups, index 0 being the whole match.
    ///
    /// # Panics
    /// When it does not match; the message holds the text, the pattern and the serial log.
    pub fn ensure_match(&self, text: &str, pattern: &str, what: &str) -> Vec<String> {
        let regex = regex::RegexBuilder::new(pattern)
            .multi_line(true)
            .build()
            .unwrap_or_else(|error| panic!("bad pattern {pattern:?}: {error}"));
        match regex.captures(text) {
            Some(captures) => captures
                .iter()
                .map(|group| group.map_or(String::new(), |group| group.as_str().to_string()))
                .collect(),
            None => self.fail(&format!(
                "check failed: {what}: no match for /{pattern}/ in:\n{text}"
            )),
        }
    }

    /// The serial log (and QEMU's stderr, if it said anything) framed for a failure message.
    pub fn log_report(&self) -> String {
        let output = self.lock();
        log_report(&self.command_line, &output)
    }

    /// Waits for the serial log to satisfy `found`, which returns the end offset of a match.
    fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut found: impl FnMut(&[u8]) -> Option<usize>,
    ) -> Result<usize, HarnessError> {
        let timeout = scaled(timeout);
        let deadline = Instant::now() + timeout;
        let (_, signal) = &*self.output;
        let mut output = self
            .output
            .0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        loop {
            if let Some(end) = found(&output.serial) {
                return Ok(end);
            }
            let now = Instant::now();
            let reason = if output.serial_closed {
                // Collect the exit status without holding the lock against the readers.
                drop(output);
                let status = self.wait_exit(Duration::from_secs(5));
                output = self
                    .output
                    .0
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner());
                if let Some(end) = found(&output.serial) {
                    return Ok(end);
                }
                match status {
                    Some(code) => format!(
                        "QEMU exited with status {code} ({}) first",
                        describe_exit(code)
                    ),
                    None => "QEMU closed its output first".to_string(),
                }
            } else if now >= deadline {
                format!("it did not come within {timeout:?}")
            } else {
                output = signal
                    .wait_timeout(output, deadline - now)
                    .unwrap_or_else(|poison| poison.into_inner())
                    .0;
                continue;
            };
            return Err(HarnessError::Expectation {
                what: what.to_string(),
                reason,
                log: log_report(&self.command_line, &output),
            });
        }
    }

    /// Marks the serial log consumed up to `end` and returns the newly consumed part.
    fn consume_to(&mut self, end: usize) -> String {
        let text = lossy(&self.lock().serial[self.consumed..end]);
        self.consumed = end;
        text
    }

    fn lock(&self) -> MutexGuard<'_, Output> {
        self.output
            .0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Collects QEMU's exit status if it has exited; then waits for the
    /// reader threads to copy what QEMU wrote before it exited.
    fn poll_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
            if self.exit.is_some() {
                self.drain_readers();
            }
        }
        self.exit
    }

    /// Kills QEMU (if it still runs) and collects its status.
    fn kill(&mut self) {
        if self.poll_exit().is_none() {
            let _ = self.child.kill();
            self.exit = self.child.wait().ok();
            self.drain_readers();
        }
    }

    /// Once QEMU has exited: waits (up to [`DRAIN_TIMEOUT`]) until both
    /// reader threads have reached the end of their pipe, and joins them.
    /// QEMU's last words on stderr (an abort message, say) may still be in
    /// the pipe when its exit is collected; without this, a report built
    /// right after the exit could miss them.
    fn drain_readers(&mut self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let (state, signal) = &*self.output;
        let mut output = state.lock().unwrap_or_else(|poison| poison.into_inner());
        while !(output.serial_closed && output.stderr_closed) {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                // Something else holds the pipes open: keep what arrived.
                return;
            }
            output = signal
                .wait_timeout(output, remaining)
                .unwrap_or_else(|poison| poison.into_inner())
                .0;
        }
        drop(output);
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.stdin = None;
        self.kill();
    }
}

/// Which of QEMU's outputs a reader thread copies.
#[derive(Clone, Copy)]
enum Stream {
    /// stdout: the serial line.
    Serial,
    /// stderr: QEMU's own messages.
    Stderr,
}

/// Starts a thread that copies `source` into the shared output until its end.
fn spawn_reader(
    mut source: impl Read + Send + 'static,
    output: SharedOutput,
    stream: Stream,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        loop {
            let count = source.read(&mut buffer).unwrap_or(0);
            let (state, signal) = &*output;
            let mut state = state.lock().unwrap_or_else(|poison| poison.into_inner());
            match (stream, count) {
                (Stream::Serial, 0) => state.serial_closed = true,
                (Stream::Stderr, 0) => state.stderr_closed = true,
                (Stream::Serial, _) => state.serial.extend_from_slice(&buffer[..count]),
                (Stream::Stderr, _) => state.stderr.extend_from_slice(&buffer[..count]),
            }
            signal.notify_all();
            if count == 0 {
                return;
            }
        }
    })
}

/// Frames the serial log (and QEMU's stderr, if any) for a failure message.
fn log_report(command_line: &str, output: &Output) -> String {
    let mut report = format!(
        "----- QEMU command line -----\n{command_line}\n----- serial log ({} bytes) -----\n{}",
        output.serial.len(),
        lossy(&output.serial)
    );
    if !report.ends_with('\n') {
        report.push('\n');
    }
    if !output.stderr.is_empty() {
        report.push_str("----- QEMU stderr -----\n");
        report.push_str(&lossy(&output.stderr));
        if !report.ends_with('\n') {
            report.push('\n');
        }
    }
    report.push_str("----- end of log -----");
    report
}

/// Bytes as text, invalid UTF-8 replaced.
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The first position of `needle` in `haystack`.
fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The last position of `needle` in `haystack`.
fn rfind_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > haystack.len() {
        return None;
    }
    haystack
        .windows(needle.len())
        .rposition(|window| window == needle)
}

/// A process exit status as a number: the exit code, or `128 + signal` when killed.
fn exit_code(status: ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    -1
}

/// What a QEMU exit status means for this project.
pub fn describe_exit(status: i32) -> &'static str {
    match status {
        EXIT_POWEROFF => "powered off",
        EXIT_HYPERVISOR_FATAL => "hypervisor fatal error",
        EXIT_DOM0_CRASHED => "Dom0 crashed",
        1 => "QEMU failed",
        _ => "QEMU failed or was killed",
    }
}

/// Turns what [`Machine::expect`] returned for a command into the command's output: `\r\n`
/// becomes `\n`, the prompt at the end goes, and so does the first line when it is the echo of
/// the command.
pub fn command_output(raw: &str, line: &str) -> String {
    let text = raw.strip_suffix(PROMPT).unwrap_or(raw);
    let text = text.replace("\r\n", "\n");
    match text.split_once('\n') {
        Some((first, rest)) if first.trim_end_matches('\r').trim() == line.trim() => {
            rest.to_string()
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct() -> BootConfig {
        let mut config = BootConfig::direct(
            PathBuf::from("/k/xen-like"),
            PathBuf::from("/k/dom0"),
            PathBuf::from("/k/ramdisk.tar"),
        );
        config.qemu = PathBuf::from("qemu-system-x86_64");
        config
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter()
            .map(|arg| arg.into_string().unwrap())
            .collect()
    }

    #[test]
    fn direct_boot_passes_modules_and_command_lines() {
        let args = strings(
            direct()
                .dom0_cmdline("hello=world")
                .qemu_args(Console::Piped)
                .unwrap(),
        );
        let joined = args.join(" ");
        assert!(joined.starts_with("-machine pc -m 512M -display none -serial stdio -monitor none -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04"));
        let at = |flag: &str| &args[args.iter().position(|arg| arg == flag).unwrap() + 1];
        assert_eq!(at("-kernel"), "/k/xen-like");
        assert_eq!(at("-append"), "loglvl=all");
        assert_eq!(at("-initrd"), "/k/dom0 hello=world,/k/ramdisk.tar");
    }

    #[test]
    fn empty_dom0_cmdline_leaves_only_the_path() {
        let args = strings(direct().qemu_args(Console::Interactive).unwrap());
        assert!(args.contains(&"/k/dom0,/k/ramdisk.tar".to_string()));
        assert!(args.contains(&"mon:stdio".to_string()));
        assert!(!args.contains(&"-monitor".to_string()));
    }

    #[test]
    fn commas_are_refused() {
        let mut config = direct();
        config.medium = BootMedium::Direct {
            kernel: PathBuf::from("/k/xen-like"),
            dom0: PathBuf::from("/a,b/dom0"),
            ramdisk: PathBuf::from("/k/r"),
        };
        let error = config.qemu_args(Console::Piped).unwrap_err().to_string();
        assert!(error.contains("comma"), "{error}");
        let error = direct()
            .dom0_cmdline("a=1,2")
            .qemu_args(Console::Piped)
            .unwrap_err()
            .to_string();
        assert!(error.contains("comma"), "{error}");
    }

    #[test]
    fn iso_boot_uses_cdrom_and_extra_args_go_last() {
        let args = strings(
            BootConfig::iso(PathBuf::from("/k/x.iso"))
                .memory("256M")
                .qemu_arg("-s")
                .qemu_args(Console::Piped)
                .unwrap(),
        );
        assert!(args.windows(2).any(|pair| pair == ["-cdrom", "/k/x.iso"]));
        assert!(args.windows(2).any(|pair| pair == ["-m", "256M"]));
        assert_eq!(args.last().unwrap(), "-s");
        assert!(!args.contains(&"-kernel".to_string()));
    }

    #[test]
    fn describe_quotes_arguments_with_spaces() {
        let text = direct().dom0_cmdline("a=b").describe(Console::Piped);
        assert!(text.starts_with("qemu-system-x86_64 -machine pc"));
        assert!(text.contains("'/k/dom0 a=b,/k/ramdisk.tar'"), "{text}");
    }

    #[test]
    fn command_output_drops_echo_and_prompt() {
        let raw = "xl list\r\nName ID\r\nDomain-0 0\r\ndom0# ";
        assert_eq!(command_output(raw, "xl list"), "Name ID\nDomain-0 0\n");
        // No echo: nothing is dropped.
        assert_eq!(command_output("\r\nout\r\ndom0# ", "x"), "\nout\n");
        assert_eq!(command_output("dom0# ", "x"), "");
    }

    #[test]
    fn find_bytes_finds_first_occurrence() {
        assert_eq!(find_bytes(b"abcabc", b"ca"), Some(2));
        assert_eq!(find_bytes(b"abc", b"abcd"), None);
        assert_eq!(find_bytes(b"abc", b""), Some(0));
        assert_eq!(rfind_bytes(b"abcabc", b"bc"), Some(4));
        assert_eq!(rfind_bytes(b"ab", b"abc"), None);
    }

    #[test]
    fn exit_statuses_have_meanings() {
        assert_eq!(describe_exit(0), "powered off");
        assert_eq!(describe_exit(33), "hypervisor fatal error");
        assert_eq!(describe_exit(35), "Dom0 crashed");
        assert_eq!(describe_exit(1), "QEMU failed");
    }

    /// A stand-in for QEMU: `bash -c script`, to test the waiting and matching machinery.
    #[cfg(unix)]
    fn fake_machine(script: &str) -> Machine {
        let mut command = Command::new("bash");
        command.arg("-c").arg(script);
        Machine::spawn(command, "bash -c ...".to_string()).unwrap()
    }

    #[cfg(unix)]
    #[test]
    fn expect_command_and_exit_against_a_fake_console() {
        let script = r#"printf '(XEN) xen-like 0.1.0\r\ndom0# '
            while IFS= read -r -d "$(printf '\r')" line; do
              case "$line" in
                "xl list") printf '%s\r\nName ID\r\ndom0# ' "$line" ;;
                "xl dmesg") printf '%s\r\n(d0) dom0# ' "$line"; sleep 0.02; printf 'xl\r\n(XEN) end\r\ndom0# ' ;;
                poweroff) exit 0 ;;
                crash) echo boom >&2; exit 35 ;;
              esac
            done"#;
        let mut machine = fake_machine(script);
        let banner = machine.expect(PROMPT, Duration::from_secs(10)).unwrap();
        assert!(banner.contains("xen-like 0.1.0"));
        assert_eq!(machine.command("xl list"), "Name ID\n");
        assert_eq!(machine.command("xl dmesg"), "(d0) dom0# xl\n(XEN) end\n");
        machine.send_line("crash").unwrap();
        let error = machine
            .expect("never", Duration::from_secs(10))
            .unwrap_err()
            .to_string();
        assert!(error.contains("status 35 (Dom0 crashed)"), "{error}");
        assert!(error.contains("(XEN) xen-like 0.1.0"), "{error}");
        assert!(error.contains("boom"), "{error}");
    }

    /// What QEMU writes to stderr just before it exits reaches the report, even when the
    /// reader thread copies it after the exit status was collected. Here a child of the
    /// stand-in says it 0.3 s after the stand-in exited; without the drain the report built
    /// right after the exit misses it.
    #[cfg(unix)]
    #[test]
    fn the_report_holds_stderr_written_as_qemu_exits() {
        let mut machine = fake_machine("(sleep 0.3; echo 'last words' >&2) & exit 33");
        assert_eq!(machine.wait_exit(Duration::from_secs(10)), Some(33));
        let report = machine.log_report();
        assert!(report.contains("last words"), "{report}");
    }

    #[cfg(unix)]
    #[test]
    fn expect_regex_captures_and_timeouts_report_the_log() {
        let mut machine =
            fake_machine("printf 'total_memory : 511\\nfree_memory : 400\\n'; exec sleep 30");
        let found = machine
            .expect_regex(r"^free_memory\s*: (\d+)$", Duration::from_secs(10))
            .unwrap();
        assert_eq!(found.group(1), "400");
        assert!(found.text.starts_with("total_memory"));
        let error = machine
            .expect("absent", Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(error.contains("did not come within"), "{error}");
        assert!(error.contains("total_memory : 511"), "{error}");
        assert_eq!(machine.wait_exit(Duration::from_millis(100)), None);
    }
}
