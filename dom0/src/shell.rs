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
    /// Make hypercall N with no arguments and print the result.
    Hypercall(u64),
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
    /// The command is known but used wrongly; the text says how to use it.
    Usage(&'static str),
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
  xl shutdown NAME|ID  ask a domain to power off
  xl pause NAME|ID     stop running a domain, keeping it
  xl unpause NAME|ID   let a paused domain run again
  xl sched-credit [-d NAME|ID [-w WEIGHT] [-c CAP]]
                       show or set scheduling weights and caps
  xl vcpu-list         each domain's vCPU: state and CPU time
  xl top               CPU and memory per domain, every second (a key stops it)
  ls [PREFIX]          files in Dom0's ramdisk (guest images, configs)
  cat FILE             print a file from the ramdisk
  bench                run the microbenchmarks
  date                 the time of day (from the hypervisor's PV clock)
  poweroff             shut down Dom0 and the machine
  reboot               restart the machine
  debug pagefault      touch an unmapped address (Dom0 crashes)
  debug nohandler      drop Dom0's trap table, then fault (Dom0 crashes)
  debug privileged     run a privileged instruction (Dom0 crashes)
  debug breakpoint     int3: bounced to Dom0's handler, which returns
  debug hypercall N    make hypercall number N and print what it returns
  debug cmdline        print Dom0's command line
  debug heap N         allocate N MiB (the heap grows through the page tables)
  debug cycles N FILE  create and destroy FILE's domain N times; check for leaks
  debug hold-frame NAME|ID
                       keep one of the domain's frames mapped in Dom0 (a
                       destroy then leaves a zombie, 'd' in xl list)
  debug release-frame ID
                       unmap the frame hold-frame mapped (the zombie goes)
";

const XL_USAGE: &str =
    "usage: xl list [NAME|ID] | info | dmesg [-c] | create [-p] FILE [KEY=VALUE...] \
                        | destroy NAME|ID | shutdown NAME|ID | pause NAME|ID | unpause NAME|ID \
                        | sched-credit [-d NAME|ID [-w WEIGHT] [-c CAP]] | vcpu-list | top \
                        | console NAME|ID";
const DEBUG_USAGE: &str =
    "usage: debug pagefault | nohandler | privileged | breakpoint | hypercall N | cmdline | heap N \
     | cycles N FILE | hold-frame NAME|ID | release-frame ID";

/// Parses one line.
pub fn parse(line: &str) -> Result<Command<'_>, ParseError<'_>> {
    let mut words = line.split_ascii_whitespace();
    let Some(first) = words.next() else {
        return Ok(Command::Nothing);
    };
    let mut rest: heapless::Vec<&str, 12> = heapless::Vec::new();
    for word in words {
        if rest.push(word).is_err() {
            return Err(ParseError::Usage("too many words on one line (12 at most)"));
        }
    }
    let no_more = |command: Command<'static>, usage: &'static str| {
        if rest.is_empty() {
            Ok(command)
        } else {
            Err(ParseError::Usage(usage))
        }
    };
    match first {
        "help" | "?" => no_more(Command::Help, "usage: help"),
        "poweroff" => no_more(Command::Poweroff, "usage: poweroff"),
        "reboot" => no_more(Command::Reboot, "usage: reboot"),
        "bench" => no_more(Command::Bench, "usage: bench"),
        "date" => no_more(Command::Date, "usage: date"),
        "ls" => match rest.as_slice() {
            [] => Ok(Command::Ls(None)),
            [prefix] => Ok(Command::Ls(Some(prefix))),
            _ => Err(ParseError::Usage("usage: ls [PREFIX]")),
        },
        "cat" => match rest.as_slice() {
            [file] => Ok(Command::Cat(file)),
            _ => Err(ParseError::Usage("usage: cat FILE")),
        },
        "xl" => match rest.as_slice() {
            ["list"] => Ok(Command::XlList(None)),
            ["list", domain] => Ok(Command::XlList(Some(domain))),
            ["info"] => Ok(Command::XlInfo),
            ["dmesg"] => Ok(Command::XlDmesg(false)),
            ["dmesg", "-c"] => Ok(Command::XlDmesg(true)),
            ["destroy", domain] => Ok(Command::XlDestroy(domain)),
            ["pause", domain] => Ok(Command::XlPause(domain)),
            ["unpause", domain] => Ok(Command::XlUnpause(domain)),
            ["shutdown", domain] => Ok(Command::XlShutdown(domain)),
            ["create", arguments @ ..] => parse_create(arguments),
            ["sched-credit", arguments @ ..] => parse_sched_credit(arguments),
            ["vcpu-list"] => Ok(Command::XlVcpuList),
            ["console", domain] => Ok(Command::XlConsole(domain)),
            ["top"] => Ok(Command::XlTop),
            _ => Err(ParseError::Usage(XL_USAGE)),
        },
        "debug" => {
            let command = match rest.as_slice() {
                ["pagefault"] => Debug::PageFault,
                ["nohandler"] => Debug::NoHandler,
                ["privileged"] => Debug::Privileged,
                ["breakpoint"] => Debug::Breakpoint,
                ["cmdline"] => Debug::CommandLine,
                ["cycles", count, file] => Debug::Cycles(
                    parse_number(count).ok_or(ParseError::Usage(DEBUG_USAGE))?,
                    heapless::String::try_from(*file)
                        .map_err(|_| ParseError::Usage(DEBUG_USAGE))?,
                ),
                ["hold-frame", domain] => Debug::HoldFrame(
                    heapless::String::try_from(*domain)
                        .map_err(|_| ParseError::Usage(DEBUG_USAGE))?,
                ),
                ["release-frame", id] => Debug::ReleaseFrame(
                    parse_number(id)
                        .and_then(|id| u16::try_from(id).ok())
                        .ok_or(ParseError::Usage(DEBUG_USAGE))?,
                ),
                ["heap", size] => {
                    Debug::Heap(parse_number(size).ok_or(ParseError::Usage(DEBUG_USAGE))?)
                }
                ["hypercall", number] => {
                    Debug::Hypercall(parse_number(number).ok_or(ParseError::Usage(DEBUG_USAGE))?)
                }
                _ => return Err(ParseError::Usage(DEBUG_USAGE)),
            };
            Ok(Command::Debug(command))
        }
        other => Err(ParseError::Unknown(other)),
    }
}

const CREATE_USAGE: &str = "usage: xl create [-p] [-c] FILE [KEY=VALUE...]";
const SCHED_USAGE: &str = "usage: xl sched-credit [-d NAME|ID [-w WEIGHT] [-c CAP]]";

fn parse_sched_credit<'a>(arguments: &[&'a str]) -> Result<Command<'a>, ParseError<'a>> {
    let (mut domain, mut weight, mut cap) = (None, None, None);
    let mut words = arguments.iter();
    while let Some(&flag) = words.next() {
        let value = words
            .next()
            .copied()
            .ok_or(ParseError::Usage(SCHED_USAGE))?;
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
            _ => return Err(ParseError::Usage(SCHED_USAGE)),
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
                overrides
                    .push(argument)
                    .map_err(|_| ParseError::Usage(CREATE_USAGE))?;
            }
            _ if file.is_none() => file = Some(argument),
            _ => return Err(ParseError::Usage(CREATE_USAGE)),
        }
    }
    let file = file.ok_or(ParseError::Usage(CREATE_USAGE))?;
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
            Ok(Command::Debug(Debug::Hypercall(34)))
        );
        assert_eq!(
            parse("debug hypercall 0x22"),
            Ok(Command::Debug(Debug::Hypercall(34)))
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
            Err(ParseError::Usage(DEBUG_USAGE))
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
        assert_eq!(parse("xl create"), Err(ParseError::Usage(CREATE_USAGE)));
        assert_eq!(
            parse("xl create a.cfg b.cfg"),
            Err(ParseError::Usage(CREATE_USAGE))
        );
        assert!(matches!(
            parse("xl create -c a.cfg"),
            Ok(Command::XlCreate { attach: true, .. })
        ));
        assert_eq!(parse("xl console web"), Ok(Command::XlConsole("web")));
        assert_eq!(parse("xl destroy web"), Ok(Command::XlDestroy("web")));
        assert_eq!(parse("xl shutdown 3"), Ok(Command::XlShutdown("3")));
        assert!(matches!(
            parse("xl a b c d e f g h i j k l m"),
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
        assert!(matches!(
            parse("xl sched-credit -d"),
            Err(ParseError::Usage(_))
        ));
    }

    #[test]
    fn mistakes_get_the_usage_or_the_unknown_word() {
        assert_eq!(
            parse("frobnicate now"),
            Err(ParseError::Unknown("frobnicate"))
        );
        assert_eq!(parse("xl"), Err(ParseError::Usage(XL_USAGE)));
        assert_eq!(parse("xl frob"), Err(ParseError::Usage(XL_USAGE)));
        assert_eq!(
            parse("poweroff now"),
            Err(ParseError::Usage("usage: poweroff"))
        );
        assert_eq!(
            parse("debug hypercall lots"),
            Err(ParseError::Usage(DEBUG_USAGE))
        );
        assert_eq!(parse("cat"), Err(ParseError::Usage("usage: cat FILE")));
    }

    #[test]
    fn help_lists_every_command() {
        for command in [
            "help", "xl list", "xl info", "xl dmesg", "poweroff", "ls", "cat", "bench", "debug",
        ] {
            assert!(HELP.contains(command), "{command}");
        }
    }
}
