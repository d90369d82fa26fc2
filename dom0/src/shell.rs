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
    /// `xl dmesg`.
    XlDmesg,
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
  xl dmesg             the hypervisor's log
  ls [PREFIX]          files in Dom0's ramdisk (guest images, configs)
  cat FILE             print a file from the ramdisk
  bench                run the microbenchmarks
  poweroff             shut down Dom0 and the machine
  reboot               restart the machine
  debug pagefault      touch an unmapped address (Dom0 crashes)
  debug nohandler      drop Dom0's trap table, then fault (Dom0 crashes)
  debug privileged     run a privileged instruction (Dom0 crashes)
  debug breakpoint     int3: bounced to Dom0's handler, which returns
  debug hypercall N    make hypercall number N and print what it returns
  debug cmdline        print Dom0's command line
  debug heap N         allocate N MiB (the heap grows through the page tables)
";

const XL_USAGE: &str = "usage: xl list [NAME|ID] | xl info | xl dmesg";
const DEBUG_USAGE: &str =
    "usage: debug pagefault | nohandler | privileged | breakpoint | hypercall N | cmdline | heap N";

/// Parses one line.
pub fn parse(line: &str) -> Result<Command<'_>, ParseError<'_>> {
    let mut words = line.split_ascii_whitespace();
    let Some(first) = words.next() else {
        return Ok(Command::Nothing);
    };
    let rest: heapless::Vec<&str, 8> = words.by_ref().take(8).collect();
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
            ["dmesg"] => Ok(Command::XlDmesg),
            _ => Err(ParseError::Usage(XL_USAGE)),
        },
        "debug" => {
            let command = match rest.as_slice() {
                ["pagefault"] => Debug::PageFault,
                ["nohandler"] => Debug::NoHandler,
                ["privileged"] => Debug::Privileged,
                ["breakpoint"] => Debug::Breakpoint,
                ["cmdline"] => Debug::CommandLine,
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
        assert_eq!(parse("xl dmesg"), Ok(Command::XlDmesg));
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
        assert_eq!(parse("poweroff"), Ok(Command::Poweroff));
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
