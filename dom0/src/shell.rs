//! The commands of Dom0's shell, parsed from a typed line.

/// A command the shell understands.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// An empty line.
    Nothing,
    /// `help`.
    Help,
    /// `xl list [NAME|ID]`.
    XlList(Option<&'a str>),
    /// `xl info`.
    XlInfo,
    /// `xl dmesg [-c]`: the hypervisor's log (`-c`: then clear it).
    XlDmesg(bool),
    /// `xl create [-p] FILE [KEY=VALUE...]`: build and start a domain from a
    /// configuration file (`-p`: leave it paused); KEY=VALUE lines override
    /// or add to the file, as with Xen's xl.
    XlCreate {
        /// The configuration file.
        file: &'a str,
        /// Leave the new domain paused.
        paused: bool,
        /// Attach to its console (`-c`).
        attach: bool,
        /// Extra `KEY=VALUE` settings.
        overrides: heapless::Vec<&'a str, 8>,
    },
    /// `xl destroy NAME|ID`.
    XlDestroy(&'a str),
    /// `xl pause NAME|ID`.
    XlPause(&'a str),
    /// `xl unpause NAME|ID`.
    XlUnpause(&'a str),
    /// `xl shutdown NAME|ID`: ask the guest to power off.
    XlShutdown(&'a str),
    /// `xl reboot NAME|ID` (also `xl shutdown -r NAME|ID`): ask the guest
    /// to reboot.
    XlReboot(&'a str),
    /// `xl sched-credit [-d NAME|ID [-w WEIGHT] [-c CAP]]`: show or set
    /// the credit scheduler's weights and caps.
    XlSchedCredit {
        /// The domain to show or change (all when absent).
        domain: Option<&'a str>,
        /// A new weight.
        weight: Option<u32>,
        /// A new cap.
        cap: Option<u32>,
    },
    /// `xl vcpu-list`.
    XlVcpuList,
    /// `xl console NAME|ID`: attach to a domain's console (Ctrl-] detaches).
    XlConsole(&'a str),
    /// `xl top`: CPU and memory per domain, refreshed every second.
    XlTop,
    /// `ls [PREFIX]`: the files in Dom0's ramdisk.
    Ls(Option<&'a str>),
    /// `cat FILE`: print a file from the ramdisk.
    Cat(&'a str),
    /// `poweroff`.
    Poweroff,
    /// `reboot`.
    Reboot,
    /// `bench`: the microbenchmarks (`cargo xtask bench` types this).
    Bench,
    /// `date`: the time of day from the PV clock.
    Date,
    /// `debug ...`: commands that make Dom0 misbehave on purpose, for
    /// tests and labs.
    Debug(Debug),
    /// `xenstore-ls [PATH]`: the config store's tree (from `/`).
    XenstoreLs(Option<&'a str>),
    /// `xenstore-read PATH`.
    XenstoreRead(&'a str),
    /// `xenstore-write PATH VALUE`.
    XenstoreWrite(&'a str, &'a str),
    /// `xenstore-rm PATH`: the node and everything under it.
    XenstoreRm(&'a str),
    /// `xenstore-list PATH`: the names of a node's children.
    XenstoreList(&'a str),
    /// `xenstore-watch PATH`: print changes under PATH until a key is pressed.
    XenstoreWatch(&'a str),
}

/// The `debug` subcommands.
#[derive(Debug, PartialEq, Eq)]
pub enum Debug {
    /// Touch an unmapped address (Dom0's own handler reports it; Dom0 crashes).
    PageFault,
    /// Clear the trap table, then touch an unmapped address.
    NoHandler,
    /// Execute a privileged instruction (`hlt`) in ring 3.
    Privileged,
    /// `int3`: the handler reports it and execution continues.
    Breakpoint,
    /// Make hypercall N with the arguments given (zero for those not
    /// given) and print the result.
    Hypercall(u64, [u64; 5]),
    /// Print Dom0's command line from start_info.
    CommandLine,
    /// Allocate and fill N MiB on the heap, which grows by mapping frames.
    Heap(u64),
    /// Create (paused) and destroy the domain of FILE N times, and compare
    /// free memory before and after.
    Cycles(u64, heapless::String<100>),
    /// Map a domain's shared info frame into Dom0 (a foreign mapping) and
    /// keep it mapped, as a backend that forgot to unmap would: destroying
    /// the domain then leaves a zombie.
    HoldFrame(heapless::String<40>),
    /// Remove the mapping `HoldFrame` made of domain ID's frame.
    ReleaseFrame(u16),
}

/// Why a line is not a command.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError<'a> {
    /// The first word is not a command.
    Unknown(&'a str),
    /// A sentence that says what is wrong and how to do it.
    Usage(&'static str),
    /// The command is known but used wrongly: what was wrong, then the
    /// usage of that (sub)command.
    Wrong {
        /// What was wrong.
        problem: Problem<'a>,
        /// How to use the command.
        usage: &'static str,
    },
}

/// What was wrong with a known command.
#[derive(Debug, PartialEq, Eq)]
pub enum Problem<'a> {
    /// `xl` or `debug` followed by a word that is not one of its subcommands.
    UnknownSubcommand(&'static str, &'a str),
    /// `xl` or `debug` alone.
    NoSubcommand(&'static str),
    /// An argument is missing; the text says which.
    Missing(&'static str),
    /// A word more than the command takes.
    Extra(&'a str),
    /// A word where a number was expected.
    NotANumber(&'a str),
    /// A number too large for a domain ID.
    NotAnId(u64),
    /// A quote opened on the line is not closed.
    UnclosedQuote,
}

impl core::fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ParseError::Unknown(word) => {
                write!(
                    f,
                    "dom0: unknown command '{word}' (type 'help' for the list)"
                )
            }
            ParseError::Usage(sentence) => f.write_str(sentence),
            ParseError::Wrong { problem, usage } => write!(f, "{problem}\n{usage}"),
        }
    }
}

impl core::fmt::Display for Problem<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Problem::UnknownSubcommand(command, word) => {
                write!(f, "{command}: '{word}' is not a {command} subcommand")
            }
            Problem::NoSubcommand(command) => write!(f, "{command}: say what to do"),
            Problem::Missing(what) => write!(f, "missing {what}"),
            Problem::Extra(word) => write!(f, "unexpected '{word}'"),
            Problem::NotANumber(word) => write!(f, "'{word}' is not a number"),
            Problem::NotAnId(number) => write!(f, "{number} is not a domain ID (0 to 65535)"),
            Problem::UnclosedQuote => f.write_str("a quote on this line is not closed"),
        }
    }
}

/// The text `help` prints.
pub const HELP: &str = "\
Commands:
  help                 this list
  xl list [NAME|ID]    list domains (Name ID Mem VCPUs State Time(s))
  xl info              facts about the host and the hypervisor
  xl dmesg [-c]        the hypervisor's log (-c: and clear it)
  xl create [-p] [-c] FILE [KEY=VALUE...]
                       start a domain from a config file (-p: paused,
                       -c: attach to its console)
  xl console NAME|ID   attach to a domain's console (Ctrl-] comes back here)
  xl destroy NAME|ID   stop a domain at once and free its memory
  xl shutdown [-r] NAME|ID
                       ask a domain to power off (-r: to reboot), through
                       its control/shutdown key in the store
  xl reboot NAME|ID    ask a domain to reboot (its on_reboot applies)
  xl pause NAME|ID     stop running a domain, keeping it
  xl unpause NAME|ID   let a paused domain run again
  xl sched-credit [-d NAME|ID [-w WEIGHT] [-c CAP]]
                       show or set scheduling weights and caps
  xl vcpu-list         each domain's vCPU: state and CPU time
  xl top               CPU and memory per domain, every second (Ctrl-C stops it)
  ls [PREFIX]          files in Dom0's ramdisk (guest images, configs)
  cat FILE             print a file from the ramdisk
  bench                run the microbenchmarks
  date                 the time of day (from the hypervisor's PV clock)
  xenstore-ls [PATH]   the config store's tree, from PATH (default /)
  xenstore-read PATH   a key's value
  xenstore-write PATH VALUE
                       set a key (created with its parents if missing)
  xenstore-rm PATH     remove a key and everything under it
  xenstore-list PATH   the names under a key
  xenstore-watch PATH  print each change under PATH until a key is pressed
  poweroff             shut down Dom0 and the machine
  reboot               restart the machine
Debug commands, for tests and labs. Those marked (!) crash Dom0 on purpose,
and with it the machine:
  debug pagefault      (!) touch an unmapped address
  debug nohandler      (!) drop Dom0's trap table, then fault
  debug privileged     (!) run a privileged instruction
  debug breakpoint     int3: bounced to Dom0's handler, which returns
  debug hypercall N [ARG...]
                       (!) make hypercall N with up to 5 arguments (0 when not
                       given) and print what it returns; it can crash Dom0
                       (4, set_callbacks, and 23, iret, do)
  debug cmdline        print Dom0's command line
  debug heap N         allocate N MiB (the heap grows through the page tables)
  debug cycles N FILE  create and destroy FILE's domain N times; check for
                       leaks (Ctrl-C stops it)
  debug hold-frame NAME|ID
                       keep one of the domain's frames mapped in Dom0 (a
                       destroy then leaves a zombie, 'd' in xl list)
  debug release-frame ID
                       unmap the frame hold-frame mapped (the zombie goes)
";

/// Every `xl` subcommand with its usage, its fewest and most arguments.
const XL_COMMANDS: [(&str, &str, usize, usize); 13] = [
    ("list", "usage: xl list [NAME|ID]", 0, 1),
    ("info", "usage: xl info", 0, 0),
    ("dmesg", "usage: xl dmesg [-c]", 0, 1),
    ("create", CREATE_USAGE, 1, usize::MAX),
    ("destroy", "usage: xl destroy NAME|ID", 1, 1),
    ("shutdown", "usage: xl shutdown [-r] NAME|ID", 1, 2),
    ("reboot", "usage: xl reboot NAME|ID", 1, 1),
    ("pause", "usage: xl pause NAME|ID", 1, 1),
    ("unpause", "usage: xl unpause NAME|ID", 1, 1),
    ("sched-credit", SCHED_USAGE, 0, 6),
    ("vcpu-list", "usage: xl vcpu-list", 0, 0),
    ("top", "usage: xl top", 0, 0),
    ("console", "usage: xl console NAME|ID", 1, 1),
];
const XL_USAGE: &str = "usage: xl list [NAME|ID] | info | dmesg [-c] \
                        | create [-p] [-c] FILE [KEY=VALUE...] \
                        | destroy NAME|ID | shutdown [-r] NAME|ID | reboot NAME|ID | pause NAME|ID | unpause NAME|ID \
                        | sched-credit [-d NAME|ID [-w WEIGHT] [-c CAP]] | vcpu-list | top \
                        | console NAME|ID";
const DEBUG_USAGE: &str = "usage: debug pagefault | nohandler | privileged | breakpoint \
     | hypercall N [ARG...] | cmdline | heap N | cycles N FILE | hold-frame NAME|ID \
     | release-frame ID";
/// The most words on one line.
const MAX_WORDS: usize = 24;

/// Splits a line into words at blanks, except inside quotes: the words of
/// `xl create F name="my guest"` are `xl`, `create`, `F` and
/// `name="my guest"` (quotes kept, for the configuration parser).
fn words(line: &str) -> Result<heapless::Vec<&str, MAX_WORDS>, ParseError<'_>> {
    let mut words = heapless::Vec::new();
    let mut start = None;
    let mut quote = None;
    for (at, c) in line.char_indices() {
        match quote {
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None if c.is_ascii_whitespace() => {
                if let Some(begin) = start.take() {
                    words
                        .push(&line[begin..at])
                        .map_err(|_| ParseError::Usage(TOO_MANY_WORDS))?;
                }
            }
            None => {
                start.get_or_insert(at);
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if quote.is_some() {
        return Err(ParseError::Wrong {
            problem: Problem::UnclosedQuote,
            usage: "put a value with blanks in quotes, like name=\"web\" or cmdline='a b'",
        });
    }
    if let Some(begin) = start {
        words
            .push(&line[begin..])
            .map_err(|_| ParseError::Usage(TOO_MANY_WORDS))?;
    }
    Ok(words)
}

const TOO_MANY_WORDS: &str = "dom0: too many words on one line (24 at most)";

/// What is wrong with `xl SUBCOMMAND ARGUMENTS` when no rule of `parse`
/// matched: an unknown subcommand, an argument missing or one too many.
fn xl_mistake<'a>(arguments: &[&'a str]) -> ParseError<'a> {
    let Some((&subcommand, rest)) = arguments.split_first() else {
        return ParseError::Wrong {
            problem: Problem::NoSubcommand("xl"),
            usage: XL_USAGE,
        };
    };
    let Some(&(_, usage, fewest, most)) = XL_COMMANDS.iter().find(|(name, ..)| *name == subcommand)
    else {
        return ParseError::Wrong {
            problem: Problem::UnknownSubcommand("xl", subcommand),
            usage: XL_USAGE,
        };
    };
    let problem = if rest.len() < fewest {
        Problem::Missing(if subcommand == "create" {
            "the configuration FILE"
        } else {
            "the domain (a NAME or an ID)"
        })
    } else {
        // Too many, or a word the subcommand does not take.
        match rest.get(most.min(rest.len().saturating_sub(1))) {
            Some(extra) => Problem::Extra(extra),
            None => Problem::Missing("an argument"),
        }
    };
    ParseError::Wrong { problem, usage }
}

/// Parses one line.
pub fn parse(line: &str) -> Result<Command<'_>, ParseError<'_>> {
    let all = words(line)?;
    let Some((&first, rest)) = all.split_first() else {
        return Ok(Command::Nothing);
    };
    let no_more = |command: Command<'static>, usage: &'static str| match rest.first() {
        None => Ok(command),
        Some(extra) => Err(ParseError::Wrong {
            problem: Problem::Extra(extra),
            usage,
        }),
    };
    match first {
        "help" | "?" => no_more(Command::Help, "usage: help"),
        "poweroff" => no_more(Command::Poweroff, "usage: poweroff"),
        "reboot" => no_more(Command::Reboot, "usage: reboot"),
        "bench" => no_more(Command::Bench, "usage: bench"),
        "date" => no_more(Command::Date, "usage: date"),
        "ls" => match rest {
            [] => Ok(Command::Ls(None)),
            [prefix] => Ok(Command::Ls(Some(prefix))),
            [_, extra, ..] => Err(ParseError::Wrong {
                problem: Problem::Extra(extra),
                usage: "usage: ls [PREFIX]",
            }),
        },
        "cat" => match rest {
            [file] => Ok(Command::Cat(file)),
            [] => Err(ParseError::Wrong {
                problem: Problem::Missing("the FILE to print"),
                usage: "usage: cat FILE",
            }),
            [_, extra, ..] => Err(ParseError::Wrong {
                problem: Problem::Extra(extra),
                usage: "usage: cat FILE",
            }),
        },
        "xl" => match rest {
            ["list"] => Ok(Command::XlList(None)),
            ["list", domain] => Ok(Command::XlList(Some(domain))),
            ["info"] => Ok(Command::XlInfo),
            ["dmesg"] => Ok(Command::XlDmesg(false)),
            ["dmesg", "-c"] => Ok(Command::XlDmesg(true)),
            ["destroy", domain] => Ok(Command::XlDestroy(domain)),
            ["pause", domain] => Ok(Command::XlPause(domain)),
            ["unpause", domain] => Ok(Command::XlUnpause(domain)),
            ["shutdown", "-r", domain] => Ok(Command::XlReboot(domain)),
            ["shutdown", domain] if !domain.starts_with('-') => Ok(Command::XlShutdown(domain)),
            ["reboot", domain] => Ok(Command::XlReboot(domain)),
            ["create", arguments @ ..] => parse_create(arguments),
            ["sched-credit", arguments @ ..] => parse_sched_credit(arguments),
            ["vcpu-list"] => Ok(Command::XlVcpuList),
            ["console", domain] => Ok(Command::XlConsole(domain)),
            ["top"] => Ok(Command::XlTop),
            _ => Err(xl_mistake(rest)),
        },
        "debug" => parse_debug(rest).map(Command::Debug),
        "xenstore-ls" => match rest {
            [] => Ok(Command::XenstoreLs(None)),
            [path] => Ok(Command::XenstoreLs(Some(path))),
            [_, extra, ..] => Err(extra_word(extra, "usage: xenstore-ls [PATH]")),
        },
        "xenstore-write" => match rest {
            [path, value] => Ok(Command::XenstoreWrite(path, unquote(value))),
            [_, _, extra, ..] => Err(extra_word(extra, "usage: xenstore-write PATH VALUE")),
            _ => Err(ParseError::Wrong {
                problem: Problem::Missing("the PATH and the VALUE"),
                usage: "usage: xenstore-write PATH VALUE",
            }),
        },
        "xenstore-read" | "xenstore-rm" | "xenstore-list" | "xenstore-watch" => {
            let usage = match first {
                "xenstore-read" => "usage: xenstore-read PATH",
                "xenstore-rm" => "usage: xenstore-rm PATH",
                "xenstore-list" => "usage: xenstore-list PATH",
                _ => "usage: xenstore-watch PATH",
            };
            match rest {
                [path] => Ok(match first {
                    "xenstore-read" => Command::XenstoreRead(path),
                    "xenstore-rm" => Command::XenstoreRm(path),
                    "xenstore-list" => Command::XenstoreList(path),
                    _ => Command::XenstoreWatch(path),
                }),
                [] => Err(ParseError::Wrong {
                    problem: Problem::Missing("the PATH"),
                    usage,
                }),
                [_, extra, ..] => Err(extra_word(extra, usage)),
            }
        }
        other => Err(ParseError::Unknown(other)),
    }
}

fn extra_word<'a>(word: &'a str, usage: &'static str) -> ParseError<'a> {
    ParseError::Wrong {
        problem: Problem::Extra(word),
        usage,
    }
}

/// A value without the quotes that kept its blanks together.
fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// Parses what follows `debug`.
fn parse_debug<'a>(arguments: &[&'a str]) -> Result<Debug, ParseError<'a>> {
    let wrong = |problem| ParseError::Wrong {
        problem,
        usage: DEBUG_USAGE,
    };
    let number = |word: &'a str| parse_number(word).ok_or(wrong(Problem::NotANumber(word)));
    let (&subcommand, rest) = arguments
        .split_first()
        .ok_or(wrong(Problem::NoSubcommand("debug")))?;
    let command = match (subcommand, rest) {
        ("pagefault", []) => Debug::PageFault,
        ("nohandler", []) => Debug::NoHandler,
        ("privileged", []) => Debug::Privileged,
        ("breakpoint", []) => Debug::Breakpoint,
        ("cmdline", []) => Debug::CommandLine,
        ("cycles", [count, file]) => Debug::Cycles(
            number(count)?,
            heapless::String::try_from(*file)
                .map_err(|_| ParseError::Usage("debug cycles: the file name is too long"))?,
        ),
        ("heap", [size]) => Debug::Heap(number(size)?),
        ("hold-frame", [domain]) => Debug::HoldFrame(
            heapless::String::try_from(*domain)
                .map_err(|_| ParseError::Usage("debug hold-frame: the name is too long"))?,
        ),
        ("release-frame", [id]) => Debug::ReleaseFrame(
            number(id).and_then(|id| u16::try_from(id).map_err(|_| wrong(Problem::NotAnId(id))))?,
        ),
        ("hypercall", [hypercall, given @ ..]) if given.len() <= 5 => {
            let mut values = [0u64; 5];
            for (value, word) in values.iter_mut().zip(given) {
                *value = number(word)?;
            }
            Debug::Hypercall(number(hypercall)?, values)
        }
        (
            "pagefault" | "nohandler" | "privileged" | "breakpoint" | "cmdline" | "cycles" | "heap"
            | "hypercall" | "hold-frame" | "release-frame",
            _,
        ) => {
            let needed = match subcommand {
                "cycles" => 2,
                "heap" | "hypercall" | "hold-frame" | "release-frame" => 1,
                _ => 0,
            };
            let most = if subcommand == "hypercall" { 6 } else { needed };
            return Err(wrong(if rest.len() < needed {
                Problem::Missing(match subcommand {
                    "cycles" => "the count N and the FILE",
                    "hold-frame" => "the domain (a NAME or an ID)",
                    "release-frame" => "the domain ID",
                    _ => "the number N",
                })
            } else {
                Problem::Extra(rest[most])
            }));
        }
        (other, _) => return Err(wrong(Problem::UnknownSubcommand("debug", other))),
    };
    Ok(command)
}

const CREATE_USAGE: &str = "usage: xl create [-p] [-c] FILE [KEY=VALUE...]";
const SCHED_USAGE: &str = "usage: xl sched-credit [-d NAME|ID [-w WEIGHT] [-c CAP]]";

fn parse_sched_credit<'a>(arguments: &[&'a str]) -> Result<Command<'a>, ParseError<'a>> {
    let (mut domain, mut weight, mut cap) = (None, None, None);
    let mut words = arguments.iter();
    while let Some(&flag) = words.next() {
        let value = words.next().copied().ok_or(ParseError::Wrong {
            problem: Problem::Missing("a value after the flag"),
            usage: SCHED_USAGE,
        })?;
        match flag {
            "-d" => domain = Some(value),
            "-w" => {
                weight = Some(value.parse().map_err(|_| {
                    ParseError::Usage(
                        "xl sched-credit: the weight is a number from 1 to 65535, like -w 512",
                    )
                })?)
            }
            "-c" => {
                cap = Some(value.parse().map_err(|_| {
                    ParseError::Usage(
                        "xl sched-credit: the cap is a percentage from 0 (none) to 100, like -c 25",
                    )
                })?)
            }
            _ => {
                return Err(ParseError::Wrong {
                    problem: Problem::Extra(flag),
                    usage: SCHED_USAGE,
                })
            }
        }
    }
    if domain.is_none() && (weight.is_some() || cap.is_some()) {
        return Err(ParseError::Usage(
            "xl sched-credit: say which domain to change with -d NAME",
        ));
    }
    Ok(Command::XlSchedCredit {
        domain,
        weight,
        cap,
    })
}

fn parse_create<'a>(arguments: &[&'a str]) -> Result<Command<'a>, ParseError<'a>> {
    let mut paused = false;
    let mut attach = false;
    let mut file = None;
    let mut overrides = heapless::Vec::new();
    for &argument in arguments {
        match argument {
            "-p" => paused = true,
            "-c" => attach = true,
            _ if argument.contains('=') => {
                overrides.push(argument).map_err(|_| {
                    ParseError::Usage("xl create: at most 8 KEY=VALUE settings on the command line")
                })?;
            }
            _ if argument.starts_with('-') => {
                return Err(ParseError::Wrong {
                    problem: Problem::Extra(argument),
                    usage: CREATE_USAGE,
                })
            }
            _ if file.is_none() => file = Some(argument),
            _ => {
                return Err(ParseError::Wrong {
                    problem: Problem::Extra(argument),
                    usage: CREATE_USAGE,
                })
            }
        }
    }
    let file = file.ok_or(ParseError::Wrong {
        problem: Problem::Missing("the configuration FILE"),
        usage: CREATE_USAGE,
    })?;
    Ok(Command::XlCreate {
        file,
        paused,
        attach,
        overrides,
    })
}

/// A decimal or `0x` hexadecimal number.
fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_commands() {
        assert_eq!(parse(""), Ok(Command::Nothing));
        assert_eq!(parse("   "), Ok(Command::Nothing));
        assert_eq!(parse("help"), Ok(Command::Help));
        assert_eq!(parse(" xl   list "), Ok(Command::XlList(None)));
        assert_eq!(
            parse("xl list Domain-0"),
            Ok(Command::XlList(Some("Domain-0")))
        );
        assert_eq!(parse("xl info"), Ok(Command::XlInfo));
        assert_eq!(parse("xl dmesg"), Ok(Command::XlDmesg(false)));
        assert_eq!(parse("xl dmesg -c"), Ok(Command::XlDmesg(true)));
        assert_eq!(parse("ls etc/xen"), Ok(Command::Ls(Some("etc/xen"))));
        assert_eq!(
            parse("cat etc/xen/hello.cfg"),
            Ok(Command::Cat("etc/xen/hello.cfg"))
        );
        assert_eq!(
            parse("debug hypercall 34"),
            Ok(Command::Debug(Debug::Hypercall(34, [0; 5])))
        );
        assert_eq!(
            parse("debug hypercall 0x22"),
            Ok(Command::Debug(Debug::Hypercall(34, [0; 5])))
        );
        assert_eq!(
            parse("debug hold-frame web"),
            Ok(Command::Debug(Debug::HoldFrame("web".try_into().unwrap())))
        );
        assert_eq!(
            parse("debug release-frame 1"),
            Ok(Command::Debug(Debug::ReleaseFrame(1)))
        );
        assert_eq!(
            parse("debug release-frame 70000"),
            Err(ParseError::Wrong {
                problem: Problem::NotAnId(70000),
                usage: DEBUG_USAGE
            })
        );
        assert_eq!(parse("poweroff"), Ok(Command::Poweroff));
    }

    #[test]
    fn xl_create_takes_flags_and_overrides() {
        match parse("xl create -p /etc/xen/counter.cfg name=two memory=16") {
            Ok(Command::XlCreate {
                file,
                paused,
                attach,
                overrides,
            }) => {
                assert_eq!(file, "/etc/xen/counter.cfg");
                assert!(paused && !attach);
                assert_eq!(overrides.as_slice(), ["name=two", "memory=16"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse("xl create"),
            Err(ParseError::Wrong {
                problem: Problem::Missing("the configuration FILE"),
                usage: CREATE_USAGE
            })
        );
        assert_eq!(
            parse("xl create a.cfg b.cfg"),
            Err(ParseError::Wrong {
                problem: Problem::Extra("b.cfg"),
                usage: CREATE_USAGE
            })
        );
        assert!(matches!(
            parse("xl create -c a.cfg"),
            Ok(Command::XlCreate { attach: true, .. })
        ));
        assert_eq!(parse("xl console web"), Ok(Command::XlConsole("web")));
        assert_eq!(parse("xl destroy web"), Ok(Command::XlDestroy("web")));
        assert_eq!(parse("xl shutdown 3"), Ok(Command::XlShutdown("3")));
        assert_eq!(parse("xl shutdown -r web"), Ok(Command::XlReboot("web")));
        assert_eq!(parse("xl reboot web"), Ok(Command::XlReboot("web")));
        assert!(parse("xl shutdown -x").is_err());
        assert!(matches!(
            parse("xl a b c d e f g h i j k l m n o p q r s t u v w x y"),
            Err(ParseError::Usage(_))
        ));
    }

    #[test]
    fn sched_credit_takes_a_domain_weight_and_cap() {
        assert_eq!(
            parse("xl sched-credit -d web -w 512 -c 25"),
            Ok(Command::XlSchedCredit {
                domain: Some("web"),
                weight: Some(512),
                cap: Some(25)
            })
        );
        assert_eq!(
            parse("xl sched-credit"),
            Ok(Command::XlSchedCredit {
                domain: None,
                weight: None,
                cap: None
            })
        );
        assert!(matches!(
            parse("xl sched-credit -w 5"),
            Err(ParseError::Usage(_))
        ));
        assert!(matches!(
            parse("xl sched-credit -d web -w lots"),
            Err(ParseError::Usage(_))
        ));
        assert_eq!(
            parse("xl sched-credit -d"),
            Err(ParseError::Wrong {
                problem: Problem::Missing("a value after the flag"),
                usage: SCHED_USAGE
            })
        );
    }

    #[test]
    fn mistakes_get_the_usage_or_the_unknown_word() {
        assert_eq!(
            parse("frobnicate now"),
            Err(ParseError::Unknown("frobnicate"))
        );
        let shown = |line: &str| format!("{}", parse(line).unwrap_err());
        assert_eq!(shown("xl"), format!("xl: say what to do\n{XL_USAGE}"));
        assert_eq!(
            shown("xl frob"),
            format!("xl: 'frob' is not a xl subcommand\n{XL_USAGE}")
        );
        assert_eq!(
            shown("xl destroy"),
            "missing the domain (a NAME or an ID)\nusage: xl destroy NAME|ID"
        );
        assert_eq!(
            shown("xl list a b"),
            "unexpected 'b'\nusage: xl list [NAME|ID]"
        );
        assert_eq!(
            shown("xl dmesg -x"),
            "unexpected '-x'\nusage: xl dmesg [-c]"
        );
        assert_eq!(shown("poweroff now"), "unexpected 'now'\nusage: poweroff");
        assert_eq!(
            shown("debug hypercall lots"),
            format!("'lots' is not a number\n{DEBUG_USAGE}")
        );
        assert_eq!(shown("cat"), "missing the FILE to print\nusage: cat FILE");
        assert!(XL_USAGE.contains("create [-p] [-c] FILE"));
    }

    #[test]
    fn debug_hypercall_takes_up_to_five_arguments_zero_when_not_given() {
        assert_eq!(
            parse("debug hypercall 17 0 0x10"),
            Ok(Command::Debug(Debug::Hypercall(17, [0, 16, 0, 0, 0])))
        );
        assert_eq!(
            parse("debug hypercall 1 1 2 3 4 5"),
            Ok(Command::Debug(Debug::Hypercall(1, [1, 2, 3, 4, 5])))
        );
        assert_eq!(
            format!("{}", parse("debug hypercall 1 1 2 3 4 5 6").unwrap_err()),
            format!("unexpected '6'\n{DEBUG_USAGE}")
        );
        assert_eq!(
            format!("{}", parse("debug hypercall").unwrap_err()),
            format!("missing the number N\n{DEBUG_USAGE}")
        );
        assert!(
            HELP.contains("(!) make hypercall N"),
            "help says it can crash Dom0"
        );
    }

    #[test]
    fn quoted_values_keep_their_blanks() {
        match parse("xl create /etc/xen/hello.cfg name=\"my guest\" cmdline='a  b'") {
            Ok(Command::XlCreate {
                file, overrides, ..
            }) => {
                assert_eq!(file, "/etc/xen/hello.cfg");
                assert_eq!(
                    overrides.as_slice(),
                    ["name=\"my guest\"", "cmdline='a  b'"]
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            format!("{}", parse("xl create f name=\"my").unwrap_err()),
            "a quote on this line is not closed\nput a value with blanks in quotes, like \
             name=\"web\" or cmdline='a b'"
        );
        let many = "w ".repeat(25);
        assert_eq!(
            parse(&many),
            Err(ParseError::Usage(
                "dom0: too many words on one line (24 at most)"
            ))
        );
    }

    #[test]
    fn help_lists_every_command() {
        for command in [
            "help",
            "xl list",
            "xl info",
            "xl dmesg",
            "poweroff",
            "ls",
            "cat",
            "bench",
            "debug",
            "xenstore-ls",
            "xenstore-read",
            "xenstore-write",
            "xenstore-rm",
            "xenstore-list",
            "xenstore-watch",
        ] {
            assert!(HELP.contains(command), "{command}");
        }
    }

    #[test]
    fn xenstore_commands_take_xens_arguments() {
        assert_eq!(parse("xenstore-ls"), Ok(Command::XenstoreLs(None)));
        assert_eq!(
            parse("xenstore-ls /vm"),
            Ok(Command::XenstoreLs(Some("/vm")))
        );
        assert_eq!(
            parse("xenstore-write /a \"two words\""),
            Ok(Command::XenstoreWrite("/a", "two words"))
        );
        assert_eq!(parse("xenstore-read /a"), Ok(Command::XenstoreRead("/a")));
        assert_eq!(parse("xenstore-watch /a"), Ok(Command::XenstoreWatch("/a")));
        assert!(matches!(
            parse("xenstore-read"),
            Err(ParseError::Wrong {
                problem: Problem::Missing(_),
                ..
            })
        ));
        assert!(matches!(
            parse("xenstore-rm /a /b"),
            Err(ParseError::Wrong {
                problem: Problem::Extra("/b"),
                ..
            })
        ));
    }
}
