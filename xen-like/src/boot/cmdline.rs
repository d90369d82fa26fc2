//! The hypervisor's command line, with Xen's option names.
//!
//! Xen documents its options in `docs/misc/xen-command-line.pandoc`; where we
//! have the same option we use the same name and syntax, so that Xen's
//! documentation applies. An option we do not know, or a value we cannot
//! read, is kept as a [`Problem`] and reported on the console at boot: never
//! silently ignored.

use heapless::Vec;

use crate::grant::table::{DEFAULT_MAX_GRANT_FRAMES, DEFAULT_MAX_MAPTRACK_FRAMES};

/// How much the hypervisor prints (Xen's `loglvl=` / `guest_loglvl=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing at all.
    None,
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warning,
    /// Also informational messages (the default).
    Info,
    /// Also debugging messages.
    Debug,
    /// Everything.
    All,
}

impl LogLevel {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "none" => Self::None,
            "error" => Self::Error,
            "warning" => Self::Warning,
            "info" => Self::Info,
            "debug" => Self::Debug,
            "all" => Self::All,
            _ => return None,
        })
    }
}

/// Xen's two thresholds for one kind of message, written
/// `LEVEL[/RATE_LIMITED_LEVEL]` (`loglvl=`, `guest_loglvl=`): messages at
/// `always` or more severe are always printed; those below it down to
/// `rate_limited` are printed within the domain's rate limit
/// (`crate::console::rate_limit`); the rest are dropped. One level alone sets
/// both, as in Xen, so `guest_loglvl=all` turns guests' rate limits off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLevels {
    /// Printed whatever the rate.
    pub always: LogLevel,
    /// Printed within the rate limit (never less than `always`).
    pub rate_limited: LogLevel,
}

impl LogLevels {
    /// Both thresholds at `level`: no rate limiting.
    pub const fn at(level: LogLevel) -> Self {
        Self {
            always: level,
            rate_limited: level,
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let (always, rate_limited) = match text.split_once('/') {
            Some((always, limited)) => (LogLevel::parse(always)?, LogLevel::parse(limited)?),
            None => (LogLevel::parse(text)?, LogLevel::parse(text)?),
        };
        // Xen raises the second threshold to the first: what is always
        // printed is printed under a rate limit too.
        Some(Self {
            always,
            rate_limited: rate_limited.max(always),
        })
    }
}

/// A command-line option that was not understood, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Problem<'a> {
    /// The whole `name=value` word as written.
    pub option: &'a str,
    /// What is wrong with it, as a sentence fragment.
    pub reason: &'static str,
}

/// Most problems we keep; further ones are counted in `dropped_problems`.
pub const MAX_PROBLEMS: usize = 16;

/// The parsed command line. Fields hold Xen's defaults unless the line says
/// otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandLine<'a> {
    /// `dom0_mem=SIZE`: Dom0's memory in bytes (`None`: the built-in default).
    pub dom0_mem: Option<u64>,
    /// `loglvl=LEVEL[/LEVEL]`: the hypervisor's own messages. They are
    /// never rate-limited: everything up to `rate_limited` is printed.
    pub loglvl: LogLevels,
    /// `guest_loglvl=LEVEL[/LEVEL]`: messages caused by guests.
    pub guest_loglvl: LogLevels,
    /// `console=com1`: serial output on (the only console today).
    pub serial_console: bool,
    /// `sched=NAME`: the scheduler (only `credit` exists).
    pub sched: &'a str,
    /// `maxcpus=N`: the most CPUs to start.
    pub maxcpus: Option<u32>,
    /// `gnttab_max_frames=N`: the most grant-table frames a domain may
    /// have (Xen's default 64).
    pub gnttab_max_frames: u32,
    /// `gnttab_max_maptrack_frames=N`: the most maptrack frames (of 256
    /// mappings each) a domain may have (16 here, 1024 in Xen: see
    /// `grant::table::DEFAULT_MAX_MAPTRACK_FRAMES`).
    pub gnttab_max_maptrack_frames: u32,
    /// Options that were not understood.
    pub problems: Vec<Problem<'a>, MAX_PROBLEMS>,
    /// How many problems did not fit in `problems`.
    pub dropped_problems: usize,
}

impl Default for CommandLine<'_> {
    fn default() -> Self {
        Self {
            dom0_mem: None,
            loglvl: LogLevels::at(LogLevel::Info),
            // Xen's release default is `none/warning`: nothing a guest
            // causes is printed without a rate limit. We print up to info
            // (a domain's shutdown, once in its life) under the limit.
            guest_loglvl: LogLevels {
                always: LogLevel::None,
                rate_limited: LogLevel::Info,
            },
            serial_console: true,
            sched: "credit",
            maxcpus: None,
            gnttab_max_frames: DEFAULT_MAX_GRANT_FRAMES,
            gnttab_max_maptrack_frames: DEFAULT_MAX_MAPTRACK_FRAMES,
            problems: Vec::new(),
            dropped_problems: 0,
        }
    }
}

/// Parses a size as Xen writes them: a number with an optional suffix
/// `B`, `K`, `M`, `G` or `T` (binary units; no suffix means KiB, as in Xen's
/// `parse_size_and_unit` default for memory options). Returns bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let (digits, multiplier) = match text.as_bytes().last()? {
        b'B' | b'b' => (&text[..text.len() - 1], 1),
        b'K' | b'k' => (&text[..text.len() - 1], 1 << 10),
        b'M' | b'm' => (&text[..text.len() - 1], 1 << 20),
        b'G' | b'g' => (&text[..text.len() - 1], 1 << 30),
        b'T' | b't' => (&text[..text.len() - 1], 1 << 40),
        _ => (text, 1 << 10),
    };
    let value: u64 = digits.parse().ok()?;
    value.checked_mul(multiplier)
}

/// Parses a whole command line. Never fails: what it cannot use it reports.
pub fn parse(line: &str) -> CommandLine<'_> {
    let mut result = CommandLine::default();
    for word in line.split_ascii_whitespace() {
        let (name, value) = match word.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (word, None),
        };
        if let Err(reason) = apply(&mut result, name, value) {
            let problem = Problem {
                option: word,
                reason,
            };
            if result.problems.push(problem).is_err() {
                result.dropped_problems += 1;
            }
        }
    }
    result
}

fn apply<'a>(
    line: &mut CommandLine<'a>,
    name: &str,
    value: Option<&'a str>,
) -> Result<(), &'static str> {
    let need = |value: Option<&'a str>| value.ok_or("needs a value (name=value)");
    match name {
        "dom0_mem" => {
            let value = need(value)?;
            // Xen also accepts `min:`/`max:` forms; we accept a plain size.
            if value.contains(':') || value.contains(',') {
                return Err("only a plain size is supported (e.g. dom0_mem=64M)");
            }
            let bytes = parse_size(value).ok_or("is not a size (e.g. 64M, 1G)")?;
            if bytes < (4 << 20) {
                return Err("is smaller than the 4 MiB Dom0 needs at least");
            }
            line.dom0_mem = Some(bytes);
        }
        "loglvl" | "guest_loglvl" => {
            let value = need(value)?;
            let level = LogLevels::parse(value).ok_or(
                "is not LEVEL or LEVEL/LEVEL with levels none, error, warning, info, debug, all",
            )?;
            if name == "loglvl" {
                line.loglvl = level;
            } else {
                line.guest_loglvl = level;
            }
        }
        "console" => {
            let value = need(value)?;
            let mut serial = false;
            for console in value.split(',') {
                match console {
                    "com1" => serial = true,
                    "none" => {}
                    "vga" => return Err("vga is not supported: use console=com1"),
                    _ => return Err("names an unknown console (com1 and none exist)"),
                }
            }
            line.serial_console = serial;
        }
        "sched" => {
            let value = need(value)?;
            if value != "credit" {
                return Err("names an unknown scheduler (only credit exists)");
            }
            line.sched = value;
        }
        "maxcpus" => {
            let count: u32 = need(value)?.parse().map_err(|_| "is not a number")?;
            if count == 0 {
                return Err("must be at least 1");
            }
            line.maxcpus = Some(count);
        }
        "gnttab_max_frames" | "gnttab_max_maptrack_frames" => {
            let count: u32 = need(value)?.parse().map_err(|_| "is not a number")?;
            if count == 0 {
                return Err("must be at least 1");
            }
            if name == "gnttab_max_frames" {
                line.gnttab_max_frames = count;
            } else {
                line.gnttab_max_maptrack_frames = count;
            }
        }
        _ => return Err("is not a known option"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_line_gives_defaults() {
        let line = parse("");
        assert_eq!(line, CommandLine::default());
        assert_eq!(line.loglvl, LogLevels::at(LogLevel::Info));
        assert_eq!(line.guest_loglvl.always, LogLevel::None);
        assert_eq!(line.guest_loglvl.rate_limited, LogLevel::Info);
    }

    #[test]
    fn grant_table_limits_take_xens_option_names() {
        let line = parse("");
        assert_eq!(
            (line.gnttab_max_frames, line.gnttab_max_maptrack_frames),
            (64, 16)
        );
        let line = parse("gnttab_max_frames=4 gnttab_max_maptrack_frames=1");
        assert_eq!(
            (line.gnttab_max_frames, line.gnttab_max_maptrack_frames),
            (4, 1)
        );
        assert!(line.problems.is_empty());
        let line = parse("gnttab_max_frames=0 gnttab_max_maptrack_frames=many");
        assert_eq!(line.problems.len(), 2);
        assert_eq!(line.gnttab_max_frames, 64);
    }

    #[test]
    fn xen_options_are_understood() {
        let line = parse("dom0_mem=128M loglvl=all guest_loglvl=debug/warning console=com1 sched=credit maxcpus=2");
        assert_eq!(line.dom0_mem, Some(128 << 20));
        assert_eq!(line.loglvl, LogLevels::at(LogLevel::All));
        assert_eq!(
            line.guest_loglvl,
            LogLevels {
                always: LogLevel::Debug,
                rate_limited: LogLevel::Debug
            },
            "the rate-limited level is raised to the first"
        );
        assert!(line.serial_console);
        assert_eq!(line.maxcpus, Some(2));
        assert!(line.problems.is_empty());
    }

    #[test]
    fn sizes_use_binary_units_and_default_to_kib() {
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("4096"), Some(4096 << 10));
        assert_eq!(parse_size("12B"), Some(12));
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999T"), None, "overflow is refused");
    }

    #[test]
    fn unknown_options_are_reported_not_ignored() {
        let line = parse("frobnicate=yes loglvl=debug quiet");
        assert_eq!(line.loglvl, LogLevels::at(LogLevel::Debug));
        let options: std::vec::Vec<_> = line.problems.iter().map(|p| p.option).collect();
        assert_eq!(options, ["frobnicate=yes", "quiet"]);
        assert_eq!(line.problems[0].reason, "is not a known option");
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let cases = [
            ("dom0_mem=lots", "is not a size (e.g. 64M, 1G)"),
            (
                "dom0_mem=1M",
                "is smaller than the 4 MiB Dom0 needs at least",
            ),
            (
                "dom0_mem=min:1G",
                "only a plain size is supported (e.g. dom0_mem=64M)",
            ),
            ("dom0_mem", "needs a value (name=value)"),
            (
                "loglvl=loud",
                "is not LEVEL or LEVEL/LEVEL with levels none, error, warning, info, debug, all",
            ),
            (
                "guest_loglvl=error/",
                "is not LEVEL or LEVEL/LEVEL with levels none, error, warning, info, debug, all",
            ),
            ("console=vga", "vga is not supported: use console=com1"),
            (
                "console=ttyS9",
                "names an unknown console (com1 and none exist)",
            ),
            (
                "sched=rtds",
                "names an unknown scheduler (only credit exists)",
            ),
            ("maxcpus=zero", "is not a number"),
            ("maxcpus=0", "must be at least 1"),
        ];
        for (option, reason) in cases {
            let line = parse(option);
            assert_eq!(line.problems.len(), 1, "{option}");
            assert_eq!(line.problems[0].reason, reason, "{option}");
        }
        // A bad value leaves the default in place.
        assert_eq!(parse("loglvl=loud").loglvl, LogLevels::at(LogLevel::Info));
    }

    #[test]
    fn two_levels_say_what_is_always_printed_and_what_is_rate_limited() {
        let line = parse("guest_loglvl=error/debug loglvl=warning/all");
        assert_eq!(
            line.guest_loglvl,
            LogLevels {
                always: LogLevel::Error,
                rate_limited: LogLevel::Debug
            }
        );
        assert_eq!(line.loglvl.always, LogLevel::Warning);
        assert_eq!(line.loglvl.rate_limited, LogLevel::All);
        assert_eq!(
            parse("guest_loglvl=all").guest_loglvl,
            LogLevels::at(LogLevel::All)
        );
    }

    #[test]
    fn too_many_problems_are_counted() {
        let mut text = std::string::String::new();
        for i in 0..MAX_PROBLEMS + 3 {
            text.push_str(&std::format!("bogus{i} "));
        }
        let line = parse(&text);
        assert_eq!(line.problems.len(), MAX_PROBLEMS);
        assert_eq!(line.dropped_problems, 3);
    }

    #[test]
    fn console_none_turns_serial_off() {
        assert!(!parse("console=none").serial_console);
    }
}
