//! Domain configuration files in the syntax of Xen's `xl.cfg(5)`: the subset
//! this project supports, parsed into a [`DomainConfig`] without an allocator.
//!
//! # The syntax
//!
//! A configuration file is a list of settings, one per line:
//!
//! ```text
//! # A comment runs from '#' to the end of the line (outside strings).
//! name    = "web"                  # a string, in double or single quotes
//! memory  = 64                     # a decimal number
//! disk    = [ "phy:/dev/vg/web,xvda,w" ]   # a list of strings, maybe empty
//! ```
//!
//! As in Xen's own parser (`tools/libs/util/libxlu_cfg_y.y`), a `;` may
//! end a setting instead of a new line (`name = "web"; memory = 64`), a list
//! may span lines (with comments at their ends), and a string may hold the
//! escapes `\"`, `\'`, `\\`, `\n` and `\t`; the quote that opened a string
//! closes it, so `'say "hi"'` holds the double quotes. Xen accepts more
//! (hexadecimal numbers, other escapes, values of other types); we refuse
//! those with a sentence that names the line.
//!
//! # The keys
//!
//! | key           | value                        | default     |
//! |---------------|------------------------------|-------------|
//! | `name`        | 1 to 32 of `A-Za-z0-9_.-`, not all digits, not `Domain-0` | required |
//! | `memory`      | MiB, 1 to 65536              | required    |
//! | `vcpus`       | only 1 so far                | 1           |
//! | `kernel`      | path of the kernel image     | required    |
//! | `cmdline`     | the kernel's command line    | empty       |
//! | `extra`       | Xen's older name for cmdline | empty       |
//! | `on_poweroff` | destroy, restart, preserve   | destroy     |
//! | `on_reboot`   | destroy, restart, preserve   | restart     |
//! | `on_crash`    | destroy, restart, preserve   | destroy     |
//! | `weight`      | credit scheduler weight      | 256         |
//! | `cap`         | percent of the one CPU, 0..=100 (0: no cap) | 0 |
//! | `disk`, `vif` | lists of up to 4 strings     | empty       |
//!
//! `disk` and `vif` are only stored, so that configurations written for
//! devices still parse; nothing uses them yet.
//!
//! # Errors
//!
//! Parsing stops at the first problem and returns a [`ConfigError`]: the line
//! number and one sentence that names the key, says what is wrong and what is
//! allowed. Learners write these files by hand, so the message should be
//! enough to fix the line without opening this source. [`describe`] adds the
//! file name the way compilers do (`/etc/xen/web.cfg:3: ...`).

// A ConfigError carries its message inline (about 200 bytes) because Dom0's
// library has no allocator to box it in; it is returned once per parse, so
// the copying costs nothing that matters.
#![allow(clippy::result_large_err)]

use core::fmt::{self, Write};
use heapless::{String, Vec};

/// The longest domain name, in characters (all ASCII).
pub const MAX_NAME: usize = 32;
/// The name `xl` shows for domain 0, as in Xen; no other domain may take it.
pub const CONTROL_DOMAIN_NAME: &str = "Domain-0";
/// The longest kernel path and the longest `disk` or `vif` entry, in bytes.
pub const MAX_PATH: usize = 128;
/// The longest kernel command line, in bytes.
pub const MAX_CMDLINE: usize = 256;
/// The most entries a `disk` or `vif` list may hold.
pub const MAX_DEVICES: usize = 4;
/// The most memory a domain may ask for, in MiB.
pub const MAX_MEMORY_MIB: u64 = 65536;
/// The credit scheduler's default weight, as in Xen.
pub const DEFAULT_WEIGHT: u32 = 256;
/// The largest weight, as in Xen.
pub const MAX_WEIGHT: u32 = 65535;
/// The largest cap: all of the one physical CPU that we schedule on.
pub const MAX_CAP: u32 = 100;
/// The largest `max_grant_frames` the parser accepts (Xen's
/// `gnttab_max_frames` default); the hypervisor refuses more than its own
/// limit when the domain is created.
pub const MAX_GRANT_FRAMES: u32 = 64;
/// Room for one error message; longer messages end in "...".
pub const MAX_MESSAGE: usize = 192;

/// What the toolstack does when a domain stops, as `on_poweroff`,
/// `on_reboot` and `on_crash` choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Tear the domain down and give its memory back.
    Destroy,
    /// Destroy it, then build it again from the same configuration.
    Restart,
    /// Leave it in place, stopped, for inspection (`xl destroy` ends it).
    Preserve,
}

impl Action {
    const ALL: [Action; 3] = [Action::Destroy, Action::Restart, Action::Preserve];

    /// The word a configuration file uses for this action.
    pub fn name(self) -> &'static str {
        match self {
            Action::Destroy => "destroy",
            Action::Restart => "restart",
            Action::Preserve => "preserve",
        }
    }

    fn from_name(word: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|action| action.name() == word)
    }
}

/// A parsed configuration: everything `xl create` needs to build a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    pub name: String<MAX_NAME>,
    pub memory_mib: u64,
    pub vcpus: u32,
    /// The kernel image's path in Dom0's ramdisk.
    pub kernel: String<MAX_PATH>,
    /// From `cmdline` or its older name `extra`; empty when neither is set.
    pub cmdline: String<MAX_CMDLINE>,
    pub on_poweroff: Action,
    pub on_reboot: Action,
    pub on_crash: Action,
    pub weight: u32,
    /// Percent of the CPU; 0 means no cap.
    pub cap: u32,
    pub disks: Vec<String<MAX_PATH>, MAX_DEVICES>,
    pub vifs: Vec<String<MAX_PATH>, MAX_DEVICES>,
    /// `max_grant_frames`: the most grant-table frames the domain may
    /// have; 0 (not set) leaves the hypervisor's `gnttab_max_frames`.
    pub max_grant_frames: u32,
}

/// Why a configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The line (counting from 1) at fault, or 0 when the problem is not on
    /// one line, such as a missing key.
    pub line: usize,
    pub message: String<MAX_MESSAGE>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

/// Writes the error with the file name in front, as the shell prints it:
/// `/etc/xen/web.cfg:3: unknown key 'memroy'; known keys are: ...`.
pub fn describe(error: &ConfigError, file: &str, out: &mut impl Write) -> fmt::Result {
    if error.line == 0 {
        write!(out, "{file}: {}", error.message)
    } else {
        write!(out, "{file}:{}: {}", error.line, error.message)
    }
}

/// The key of a command-line `KEY=VALUE` setting (blanks around it dropped).
pub fn setting_key(setting: &str) -> &str {
    setting.split('=').next().unwrap_or("").trim()
}

/// The first two command-line settings that set the same key, if any:
/// `xl create` refuses them before it builds the configuration text, where
/// the second would be reported at a line the file does not have.
pub fn repeated_setting<'a>(settings: &[&'a str]) -> Option<(&'a str, &'a str)> {
    settings.iter().enumerate().find_map(|(index, first)| {
        settings[index + 1..]
            .iter()
            .find(|second| setting_key(second) == setting_key(first))
            .map(|second| (*first, *second))
    })
}

/// Parses a configuration file's text, stopping at the first error.
pub fn parse(text: &str) -> Result<DomainConfig, ConfigError> {
    let mut config = DomainConfig {
        name: String::new(),
        memory_mib: 0,
        vcpus: 1,
        kernel: String::new(),
        cmdline: String::new(),
        on_poweroff: Action::Destroy,
        on_reboot: Action::Restart,
        on_crash: Action::Destroy,
        weight: DEFAULT_WEIGHT,
        cap: 0,
        disks: Vec::new(),
        vifs: Vec::new(),
        max_grant_frames: 0,
    };
    // The line each key was set on, 0 while it is not set.
    let mut set_on = [0usize; Key::ALL.len()];
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, text)| (index + 1, text));
    while let Some((mut line, mut rest)) = lines.next() {
        // One line may hold several settings separated by ';', as in Xen.
        loop {
            let Some((key_text, after_equals)) = split_setting(line, rest)? else {
                break;
            };
            let Some(key) = Key::from_name(key_text) else {
                return Err(unknown_key(line, key_text));
            };
            if set_on[key as usize] != 0 {
                return Err(error(
                    line,
                    format_args!(
                        "{} is set twice (first on line {})",
                        key.name(),
                        set_on[key as usize]
                    ),
                ));
            }
            // A list may go on over the following lines.
            let (value, after, last_line) = read_value(line, key, after_equals, &mut lines)?;
            apply(&mut config, &set_on, line, key, value)?;
            set_on[key as usize] = line;
            line = last_line;
            let after = after.trim_start();
            if let Some(next) = after.strip_prefix(';') {
                rest = next;
                continue;
            }
            if !after.is_empty() && !after.starts_with('#') {
                return Err(error(
                    line,
                    format_args!(
                        "{}: unexpected '{}' after the value; end a setting with a new line \
                         or ';', and start comments with '#'",
                        key.name(),
                        Excerpt(after)
                    ),
                ));
            }
            break;
        }
    }
    for key in [Key::Name, Key::Memory, Key::Kernel] {
        if set_on[key as usize] == 0 {
            return Err(error(
                0,
                format_args!(
                    "the file has no '{}' (every domain needs name, memory and kernel)",
                    key.name()
                ),
            ));
        }
    }
    Ok(config)
}

/// The keys we know, in the order error messages list them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Name,
    Memory,
    Vcpus,
    Kernel,
    Cmdline,
    Extra,
    OnPoweroff,
    OnReboot,
    OnCrash,
    Weight,
    Cap,
    Disk,
    Vif,
    MaxGrantFrames,
}

impl Key {
    /// Every key, indexed by `key as usize`.
    const ALL: [Key; 14] = [
        Key::Name,
        Key::Memory,
        Key::Vcpus,
        Key::Kernel,
        Key::Cmdline,
        Key::Extra,
        Key::OnPoweroff,
        Key::OnReboot,
        Key::OnCrash,
        Key::Weight,
        Key::Cap,
        Key::Disk,
        Key::Vif,
        Key::MaxGrantFrames,
    ];

    fn name(self) -> &'static str {
        match self {
            Key::Name => "name",
            Key::Memory => "memory",
            Key::Vcpus => "vcpus",
            Key::Kernel => "kernel",
            Key::Cmdline => "cmdline",
            Key::Extra => "extra",
            Key::OnPoweroff => "on_poweroff",
            Key::OnReboot => "on_reboot",
            Key::OnCrash => "on_crash",
            Key::Weight => "weight",
            Key::Cap => "cap",
            Key::Disk => "disk",
            Key::Vif => "vif",
            Key::MaxGrantFrames => "max_grant_frames",
        }
    }

    /// What the value must be, completing "KEY must be ...".
    fn expected(self) -> &'static str {
        match self {
            Key::Name => "a string in quotes, like name = \"web\"",
            Key::Memory => "a number of MiB, like memory = 64",
            Key::Vcpus => "a number, like vcpus = 1",
            Key::Kernel => "a path in quotes, like kernel = \"/boot/domu\"",
            Key::Cmdline => "a string in quotes, like cmdline = \"workload=hello\"",
            Key::Extra => "a string in quotes, like extra = \"workload=hello\"",
            Key::OnPoweroff => "a string in quotes, like on_poweroff = \"destroy\"",
            Key::OnReboot => "a string in quotes, like on_reboot = \"restart\"",
            Key::OnCrash => "a string in quotes, like on_crash = \"destroy\"",
            Key::Weight => "a number, like weight = 256",
            Key::Cap => "a number of percent, like cap = 50",
            Key::Disk => "a list of strings, like disk = [ \"phy:/dev/vg/web,xvda,w\" ]",
            Key::Vif => "a list of strings, like vif = [ \"bridge=xenbr0\" ]",
            Key::MaxGrantFrames => "a number of frames, like max_grant_frames = 4",
        }
    }

    fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|key| key.name() == name)
    }
}

/// A value as written, before we know whether it suits its key.
#[derive(Debug)]
enum Value<'a> {
    /// Nothing after the `=`.
    Nothing,
    /// The text between the quotes.
    Text(&'a str),
    /// Decimal digits, not yet converted: a number too large for `u64` is
    /// still a number, just out of range.
    Number(&'a str),
    /// Anything else without quotes, such as `web` or `64M`.
    Word(&'a str),
    /// The first `MAX_DEVICES` strings, and how many there were.
    List {
        items: Vec<&'a str, MAX_DEVICES>,
        count: usize,
    },
}

/// Says what was found instead, completing "KEY must be ...".
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nothing => f.write_str(" (found nothing after '=')"),
            Value::Text(text) => write!(f, " (found the string \"{}\")", Excerpt(text)),
            Value::Number(digits) => write!(f, " (found the number {})", Excerpt(digits)),
            Value::Word(word) if word.starts_with(|c: char| c.is_ascii_digit() || c == '-') => {
                write!(f, " (found {}, which is not a whole number)", Excerpt(word))
            }
            Value::Word(word) => write!(f, " (found {} without quotes)", Excerpt(word)),
            Value::List { .. } => f.write_str(" (found a list)"),
        }
    }
}

/// Splits a line into its key and what follows the `=`; `None` for a line
/// that holds only blanks or a comment.
fn split_setting(line: usize, text: &str) -> Result<Option<(&str, &str)>, ConfigError> {
    // A key has no quotes, so the first '=' or '#' decides what the line is.
    let split = text.find(['=', '#']);
    let Some(equals) = split.filter(|&at| text[at..].starts_with('=')) else {
        let content = text[..split.unwrap_or(text.len())].trim();
        if content.is_empty() {
            return Ok(None);
        }
        return Err(error(
            line,
            format_args!(
                "expected KEY = VALUE, like memory = 64, but this line has no '=' (found '{}')",
                Excerpt(content)
            ),
        ));
    };
    let key = text[..equals].trim();
    if key.is_empty() {
        return Err(error(
            line,
            format_args!("expected KEY = VALUE, but there is no key before '='"),
        ));
    }
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(error(
            line,
            format_args!(
                "expected KEY = VALUE, but '{}' is not a key (a key has only letters, digits and '_')",
                Excerpt(key)
            ),
        ));
    }
    Ok(Some((key, &text[equals + 1..])))
}

/// Reads the value at the start of `text` (blanks allowed before it) on
/// line `line`; returns it, the rest of the line it ended on, and that
/// line's number. Only a list takes further lines, from `more`.
fn read_value<'a>(
    line: usize,
    key: Key,
    text: &'a str,
    more: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Result<(Value<'a>, &'a str, usize), ConfigError> {
    let text = text.trim_start();
    match text.chars().next() {
        None | Some('#') => Ok((Value::Nothing, text, line)),
        Some('"' | '\'') => {
            let (string, rest) = read_string(line, key, text)?;
            Ok((Value::Text(string), rest, line))
        }
        Some('[') => read_list(line, key, &text[1..], more),
        Some(_) => {
            let end = text
                .find(|c: char| c.is_whitespace() || c == '#' || c == ';')
                .unwrap_or(text.len());
            let (word, rest) = text.split_at(end);
            if word.bytes().all(|byte| byte.is_ascii_digit()) {
                Ok((Value::Number(word), rest, line))
            } else {
                Ok((Value::Word(word), rest, line))
            }
        }
    }
}

/// Reads a string that starts at `text[0]`, a `"` or a `'`; returns its
/// contents as written (escapes still in, see [`unescape`]) and the rest
/// of the line. A backslash hides the character after it from the search
/// for the closing quote, so `"say \"hi\""` is one string.
fn read_string(line: usize, key: Key, text: &str) -> Result<(&str, &str), ConfigError> {
    let quote = if text.starts_with('\'') { b'\'' } else { b'"' };
    let body = &text[1..];
    let mut bytes = body.bytes().enumerate();
    while let Some((at, byte)) = bytes.next() {
        if byte == b'\\' {
            bytes.next();
        } else if byte == quote {
            return Ok((&body[..at], &body[at + 1..]));
        }
    }
    Err(error(
        line,
        format_args!(
            "{}: the string is not closed; end it with {} on the same line \
             (a string cannot span lines)",
            key.name(),
            char::from(quote)
        ),
    ))
}

/// Reads a list whose `[` came just before `text`; returns it, the rest of
/// the line where it closed, and that line's number. A list may span
/// lines (comments may end each of them), and a comma may follow the last
/// item, as in Xen.
fn read_list<'a>(
    first_line: usize,
    key: Key,
    text: &'a str,
    more: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Result<(Value<'a>, &'a str, usize), ConfigError> {
    let not_closed = || {
        error(
            first_line,
            format_args!(
                "{}: the list is not closed; end it with ']' (the file ends first)",
                key.name()
            ),
        )
    };
    let mut items = Vec::new();
    let mut count = 0;
    let mut line = first_line;
    let mut rest = text.trim_start();
    // Moves on to the next line when this one holds nothing more.
    let mut next_line = |rest: &mut &'a str, line: &mut usize| -> Result<(), ConfigError> {
        while rest.is_empty() || rest.starts_with('#') {
            let (number, text) = more.next().ok_or_else(not_closed)?;
            *line = number;
            *rest = text.trim_start();
        }
        Ok(())
    };
    loop {
        next_line(&mut rest, &mut line)?;
        match rest.chars().next() {
            Some(']') => return Ok((Value::List { items, count }, &rest[1..], line)),
            Some('"' | '\'') => {}
            _ => {
                return Err(error(
                    line,
                    format_args!(
                        "{}: a list holds only strings in quotes, like [ \"a\", \"b\" ] \
                         (found '{}')",
                        key.name(),
                        Excerpt(rest)
                    ),
                ))
            }
        }
        let (item, after) = read_string(line, key, rest)?;
        // Past MAX_DEVICES we only count, so that apply() can say how many.
        let _ = items.push(item);
        count += 1;
        rest = after.trim_start();
        next_line(&mut rest, &mut line)?;
        match rest.chars().next() {
            Some(',') => rest = rest[1..].trim_start(),
            Some(']') => {}
            _ => {
                return Err(error(
                    line,
                    format_args!(
                        "{}: list items are separated by ',', like [ \"a\", \"b\" ] \
                         (found '{}')",
                        key.name(),
                        Excerpt(rest)
                    ),
                ))
            }
        }
    }
}

/// The most bytes a string value may hold once its escapes are undone
/// (the longest field, `cmdline`).
const MAX_TEXT: usize = MAX_CMDLINE;

/// Why a string's escapes could not be undone.
#[derive(Debug, PartialEq, Eq)]
enum UnescapeError {
    /// The text is this many bytes long once unescaped: too long for the field.
    TooLong(usize),
    /// A backslash before this character, which is not an escape we know.
    Unknown(char),
}

/// Undoes the escapes of a string as written: `\"`, `\'` and `\\` stand
/// for the character after the backslash, `\n` and `\t` for a new line and
/// a tab (Xen's parser knows these and more; we refuse the rest).
fn unescape<const N: usize>(raw: &str) -> Result<String<N>, UnescapeError> {
    let mut out = String::new();
    let mut length = 0;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        let c = if c == '\\' {
            match chars.next() {
                Some(quoted @ ('"' | '\'' | '\\')) => quoted,
                Some('n') => '\n',
                Some('t') => '\t',
                Some(other) => return Err(UnescapeError::Unknown(other)),
                None => return Err(UnescapeError::Unknown(' ')),
            }
        } else {
            c
        };
        length += c.len_utf8();
        let _ = out.push(c);
    }
    if length > N {
        return Err(UnescapeError::TooLong(length));
    }
    Ok(out)
}

/// Checks `value` against what `key` allows and stores it in `config`.
/// `set_on` says where each key was set so far, for keys that conflict.
fn apply(
    config: &mut DomainConfig,
    set_on: &[usize],
    line: usize,
    key: Key,
    value: Value<'_>,
) -> Result<(), ConfigError> {
    match key {
        Key::Name => {
            config.name = check_name(line, &text::<MAX_TEXT>(line, key, &value, &key.name())?)?
        }
        Key::Memory => {
            let (memory, digits) = number(line, key, &value)?;
            config.memory_mib = memory
                .filter(|memory| (1..=MAX_MEMORY_MIB).contains(memory))
                .ok_or_else(|| {
                    error(
                        line,
                        format_args!(
                            "memory = {} is out of range: a domain has 1 to {MAX_MEMORY_MIB} MiB",
                            Excerpt(digits)
                        ),
                    )
                })?;
        }
        Key::Vcpus => {
            let (vcpus, digits) = number(line, key, &value)?;
            if vcpus != Some(1) {
                return Err(error(
                    line,
                    format_args!(
                        "vcpus = {}: only 1 vCPU per domain is supported so far",
                        Excerpt(digits)
                    ),
                ));
            }
            config.vcpus = 1;
        }
        Key::Kernel => {
            let path = text::<MAX_PATH>(line, key, &value, &key.name())?;
            if path.is_empty() {
                return Err(error(
                    line,
                    format_args!(
                        "kernel is empty; give the path of the kernel image, like kernel = \"/boot/domu\""
                    ),
                ));
            }
            config.kernel = path;
        }
        Key::Cmdline | Key::Extra => {
            let other = if key == Key::Cmdline {
                Key::Extra
            } else {
                Key::Cmdline
            };
            let command_line = text::<MAX_CMDLINE>(line, key, &value, &key.name())?;
            if set_on[other as usize] != 0 {
                return Err(error(
                    line,
                    format_args!(
                        "{} and {} are both set ({} on line {}); extra is Xen's older name \
                         for cmdline, so keep only one",
                        key.name(),
                        other.name(),
                        other.name(),
                        set_on[other as usize]
                    ),
                ));
            }
            config.cmdline = command_line;
        }
        Key::OnPoweroff | Key::OnReboot | Key::OnCrash => {
            let word = text::<MAX_TEXT>(line, key, &value, &key.name())?;
            let action = Action::from_name(&word).ok_or_else(|| {
                error(
                    line,
                    format_args!(
                        "{} = \"{}\" is not an action; allowed are \"destroy\", \"restart\" \
                         and \"preserve\"",
                        key.name(),
                        Excerpt(&word)
                    ),
                )
            })?;
            match key {
                Key::OnPoweroff => config.on_poweroff = action,
                Key::OnReboot => config.on_reboot = action,
                _ => config.on_crash = action,
            }
        }
        Key::Weight => {
            let (weight, digits) = number(line, key, &value)?;
            config.weight = weight
                .and_then(|weight| u32::try_from(weight).ok())
                .filter(|weight| (1..=MAX_WEIGHT).contains(weight))
                .ok_or_else(|| {
                    error(
                        line,
                        format_args!(
                            "weight = {} is out of range: a weight is 1 to {MAX_WEIGHT} \
                             (the default is {DEFAULT_WEIGHT})",
                            Excerpt(digits)
                        ),
                    )
                })?;
        }
        Key::Cap => {
            let (cap, digits) = number(line, key, &value)?;
            config.cap = cap
                .and_then(|cap| u32::try_from(cap).ok())
                .filter(|cap| *cap <= MAX_CAP)
                .ok_or_else(|| {
                    error(
                        line,
                        format_args!(
                            "cap = {} is out of range: a cap is 0 (no cap) to {MAX_CAP} percent \
                             of the one CPU",
                            Excerpt(digits)
                        ),
                    )
                })?;
        }
        Key::MaxGrantFrames => {
            let (frames, digits) = number(line, key, &value)?;
            config.max_grant_frames = frames
                .and_then(|frames| u32::try_from(frames).ok())
                .filter(|frames| (1..=MAX_GRANT_FRAMES).contains(frames))
                .ok_or_else(|| {
                    error(
                        line,
                        format_args!(
                            "max_grant_frames = {} is out of range: 1 to {MAX_GRANT_FRAMES} \
                             frames of 512 grant entries (the hypervisor may allow fewer: \
                             its gnttab_max_frames)",
                            Excerpt(digits)
                        ),
                    )
                })?;
        }
        Key::Disk => config.disks = devices(line, key, &value)?,
        Key::Vif => config.vifs = devices(line, key, &value)?,
    }
    Ok(())
}

/// The value as a string of at most `N` bytes with its escapes undone, or
/// the error that says `key` needs one (`what` names it in messages).
fn text<const N: usize>(
    line: usize,
    key: Key,
    value: &Value<'_>,
    what: &dyn fmt::Display,
) -> Result<String<N>, ConfigError> {
    match *value {
        Value::Text(raw) => unescaped(line, what, raw),
        _ => Err(wrong_type(line, key, value)),
    }
}

/// `raw` with its escapes undone, in a field of `N` bytes.
fn unescaped<const N: usize>(
    line: usize,
    what: &dyn fmt::Display,
    raw: &str,
) -> Result<String<N>, ConfigError> {
    unescape(raw).map_err(|why| match why {
        UnescapeError::TooLong(length) => error(
            line,
            format_args!("{what} is {length} bytes long; the limit is {N} bytes"),
        ),
        UnescapeError::Unknown(c) => error(
            line,
            format_args!(
                "{what}: '\\{c}' is not an escape; inside a string write \\\" for \", \\' for ', \
                 \\\\ for \\, \\n for a new line and \\t for a tab"
            ),
        ),
    })
}

/// The value as a number (`None` when it does not fit in a `u64`) and its
/// digits for messages, or the error that says `key` needs a number.
fn number<'a>(
    line: usize,
    key: Key,
    value: &Value<'a>,
) -> Result<(Option<u64>, &'a str), ConfigError> {
    match *value {
        Value::Number(digits) => Ok((digits.parse().ok(), digits)),
        _ => Err(wrong_type(line, key, value)),
    }
}

/// The value as a `disk` or `vif` list.
fn devices(
    line: usize,
    key: Key,
    value: &Value<'_>,
) -> Result<Vec<String<MAX_PATH>, MAX_DEVICES>, ConfigError> {
    let Value::List { items, count } = value else {
        return Err(wrong_type(line, key, value));
    };
    if *count > MAX_DEVICES {
        return Err(error(
            line,
            format_args!(
                "{} has {count} entries; at most {MAX_DEVICES} are supported",
                key.name()
            ),
        ));
    }
    let mut devices = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let label = EntryLabel(key.name(), index + 1);
        // Cannot fail: `items` holds at most MAX_DEVICES.
        let _ = devices.push(unescaped(line, &label, item)?);
    }
    Ok(devices)
}

/// Checks a domain name: what `xl` shows and what `xl destroy NAME` takes.
/// As with Xen's xl, an all-digit argument names a domain ID and
/// `Domain-0` names Dom0, so neither can be a new domain's name.
fn check_name(line: usize, name: &str) -> Result<String<MAX_NAME>, ConfigError> {
    const ALLOWED: &str = "letters, digits, '_', '.' and '-'";
    if name.is_empty() {
        return Err(error(
            line,
            format_args!("name is empty; a name has 1 to {MAX_NAME} characters: {ALLOWED}"),
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if let Some((position, bad)) = name.chars().enumerate().find(|&(_, c)| !allowed(c)) {
        return Err(error(
            line,
            format_args!(
                "name \"{}\" has {bad:?} at character {}; a name may use only {ALLOWED}",
                Excerpt(name),
                position + 1
            ),
        ));
    }
    if name.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(error(
            line,
            format_args!(
                "name \"{}\" is all digits, and xl reads an all-digit argument as a domain ID; \
                 put a letter in it, like \"web{}\"",
                Excerpt(name),
                Excerpt(name)
            ),
        ));
    }
    if name == CONTROL_DOMAIN_NAME {
        return Err(error(
            line,
            format_args!("name \"{CONTROL_DOMAIN_NAME}\" is the control domain's; choose another"),
        ));
    }
    // All ASCII by now, so bytes are characters.
    String::try_from(name).map_err(|()| {
        error(
            line,
            format_args!(
                "name \"{}\" is {} characters long; the limit is {MAX_NAME}",
                Excerpt(name),
                name.len()
            ),
        )
    })
}

/// "disk entry 2", for messages about one item of a list.
struct EntryLabel(&'static str, usize);

impl fmt::Display for EntryLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} entry {}", self.0, self.1)
    }
}

fn wrong_type(line: usize, key: Key, found: &Value<'_>) -> ConfigError {
    error(
        line,
        format_args!("{} must be {}{found}", key.name(), key.expected()),
    )
}

fn unknown_key(line: usize, key: &str) -> ConfigError {
    let mut message = Message(String::new());
    let _ = write!(message, "unknown key '{}'; known keys are: ", Excerpt(key));
    for (index, known) in Key::ALL.into_iter().enumerate() {
        let separator = if index == 0 { "" } else { ", " };
        let _ = write!(message, "{separator}{}", known.name());
    }
    ConfigError {
        line,
        message: message.0,
    }
}

fn error(line: usize, message: fmt::Arguments<'_>) -> ConfigError {
    let mut text = Message(String::new());
    // An overlong message is cut short with "..." rather than lost.
    let _ = text.write_fmt(message);
    ConfigError {
        line,
        message: text.0,
    }
}

/// A message being written; when it overflows it ends in "..." and takes
/// no more.
struct Message(String<MAX_MESSAGE>);

impl Write for Message {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if self.0.push_str(text).is_ok() {
            return Ok(());
        }
        for c in text.chars() {
            if self.0.push(c).is_err() {
                while self.0.len() + "...".len() > MAX_MESSAGE {
                    self.0.pop();
                }
                let _ = self.0.push_str("...");
                return Err(fmt::Error);
            }
        }
        Ok(())
    }
}

/// Text from the file quoted in a message: at most 40 characters, so that a
/// runaway line cannot crowd out the explanation.
struct Excerpt<'a>(&'a str);

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LIMIT: usize = 40;
        match self.0.char_indices().nth(LIMIT) {
            None => f.write_str(self.0),
            Some(_) => {
                let (cut, _) = self.0.char_indices().nth(LIMIT - 3).unwrap_or((0, ' '));
                write!(f, "{}...", &self.0[..cut])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String as StdString;

    /// The three keys every file needs.
    const REQUIRED: &str = "name = \"web\"\nmemory = 64\nkernel = \"/boot/domu\"\n";

    /// The error for `REQUIRED` followed by `extra_lines` (starting on line 4).
    fn error_with(extra_lines: &str) -> ConfigError {
        parse(&format!("{REQUIRED}{extra_lines}")).unwrap_err()
    }

    fn shown(error: &ConfigError) -> StdString {
        format!("{error}")
    }

    #[test]
    fn full_file_with_comments_and_every_key() {
        let text = "\
# /etc/xen/web.cfg: a web server
name = \"web-1.test_a\"   # trailing comment
memory=64
  vcpus   =   1

kernel = '/boot/domu'
cmdline = \"workload=hello # not a comment\"
on_poweroff = \"preserve\"
on_reboot = 'destroy'
on_crash = \"restart\"\t
weight = 512
cap = 50
disk = [ \"phy:/dev/vg/web,xvda,w\", 'file:/a.img,xvdb,r', ]
vif = []   # none yet
";
        let config = parse(text).unwrap();
        assert_eq!(config.name, "web-1.test_a");
        assert_eq!(config.memory_mib, 64);
        assert_eq!(config.vcpus, 1);
        assert_eq!(config.kernel, "/boot/domu");
        assert_eq!(config.cmdline, "workload=hello # not a comment");
        assert_eq!(config.on_poweroff, Action::Preserve);
        assert_eq!(config.on_reboot, Action::Destroy);
        assert_eq!(config.on_crash, Action::Restart);
        assert_eq!(config.weight, 512);
        assert_eq!(config.cap, 50);
        assert_eq!(config.disks.len(), 2);
        assert_eq!(config.disks[0], "phy:/dev/vg/web,xvda,w");
        assert_eq!(config.disks[1], "file:/a.img,xvdb,r");
        assert!(config.vifs.is_empty());
    }

    #[test]
    fn defaults() {
        let config = parse(REQUIRED).unwrap();
        assert_eq!(config.vcpus, 1);
        assert_eq!(config.cmdline, "");
        assert_eq!(config.on_poweroff, Action::Destroy);
        assert_eq!(config.on_reboot, Action::Restart);
        assert_eq!(config.on_crash, Action::Destroy);
        assert_eq!(config.weight, 256);
        assert_eq!(config.cap, 0);
        assert!(config.disks.is_empty());
        assert!(config.vifs.is_empty());
    }

    #[test]
    fn extra_is_the_older_name_for_cmdline() {
        let config = parse(&format!("{REQUIRED}extra = \"console=hvc0\"\n")).unwrap();
        assert_eq!(config.cmdline, "console=hvc0");
    }

    #[test]
    fn strings_keep_the_other_quote_and_windows_line_ends_parse() {
        let text = "name = \"a\"\r\nmemory = 8\r\nkernel = \"/k\"\r\ncmdline = 'say \"hi\"'\r\n";
        assert_eq!(parse(text).unwrap().cmdline, "say \"hi\"");
    }

    #[test]
    fn action_names() {
        assert_eq!(Action::Destroy.name(), "destroy");
        assert_eq!(Action::Restart.name(), "restart");
        assert_eq!(Action::Preserve.name(), "preserve");
    }

    #[test]
    fn unknown_key_lists_the_known_keys() {
        let error = error_with("memroy = 64\n");
        assert_eq!(error.line, 4);
        assert_eq!(
            error.message,
            "unknown key 'memroy'; known keys are: name, memory, vcpus, kernel, cmdline, \
             extra, on_poweroff, on_reboot, on_crash, weight, cap, disk, vif, max_grant_frames"
        );
    }

    #[test]
    fn a_very_long_unknown_key_is_cut_short_but_the_list_fits() {
        let key = "k".repeat(100);
        let error = error_with(&format!("{key} = 1\n"));
        assert!(error.message.starts_with("unknown key 'kkk"));
        assert!(error.message.contains("kkk...'"));
        assert!(error.message.ends_with("disk, vif, max_grant_frames"));
    }

    #[test]
    fn duplicate_key_names_the_first_line() {
        let error = error_with("# comment\nmemory = 32\n");
        assert_eq!(error.line, 5);
        assert_eq!(error.message, "memory is set twice (first on line 2)");
    }

    #[test]
    fn wrong_types() {
        let cases = [
            (
                "name = web",
                "name must be a string in quotes, like name = \"web\" (found web without quotes)",
            ),
            (
                "memory = \"64\"",
                "memory must be a number of MiB, like memory = 64 (found the string \"64\")",
            ),
            (
                "memory = 64M",
                "memory must be a number of MiB, like memory = 64 (found 64M, which is not a whole number)",
            ),
            (
                "vcpus = [ \"1\" ]",
                "vcpus must be a number, like vcpus = 1 (found a list)",
            ),
            (
                "kernel = 5",
                "kernel must be a path in quotes, like kernel = \"/boot/domu\" (found the number 5)",
            ),
            (
                "cmdline =",
                "cmdline must be a string in quotes, like cmdline = \"workload=hello\" \
                 (found nothing after '=')",
            ),
            (
                "on_crash = destroy",
                "on_crash must be a string in quotes, like on_crash = \"destroy\" \
                 (found destroy without quotes)",
            ),
            (
                "weight = -1",
                "weight must be a number, like weight = 256 (found -1, which is not a whole number)",
            ),
            (
                "cap = '50'",
                "cap must be a number of percent, like cap = 50 (found the string \"50\")",
            ),
            (
                "disk = \"phy:/dev/vg/web,xvda,w\"",
                "disk must be a list of strings, like disk = [ \"phy:/dev/vg/web,xvda,w\" ] \
                 (found the string \"phy:/dev/vg/web,xvda,w\")",
            ),
            (
                "vif = 1",
                "vif must be a list of strings, like vif = [ \"bridge=xenbr0\" ] (found the number 1)",
            ),
        ];
        for (line, message) in cases {
            // Replace the required key of the same name rather than repeat it.
            let key = line.split('=').next().unwrap().trim();
            let text: StdString = REQUIRED
                .lines()
                .filter(|required| !required.starts_with(key))
                .map(|required| format!("{required}\n"))
                .chain([format!("{line}\n")])
                .collect();
            let error = parse(&text).unwrap_err();
            assert_eq!(error.message, message, "for {line}");
        }
    }

    #[test]
    fn name_characters_are_explained() {
        let error = parse("name = \"my web\"\n").unwrap_err();
        assert_eq!(error.line, 1);
        assert_eq!(
            error.message,
            "name \"my web\" has ' ' at character 3; a name may use only letters, digits, \
             '_', '.' and '-'"
        );
        let error = parse("name = \"\"\n").unwrap_err();
        assert_eq!(
            error.message,
            "name is empty; a name has 1 to 32 characters: letters, digits, '_', '.' and '-'"
        );
    }

    #[test]
    fn names_that_would_shadow_an_id_or_dom0_are_refused() {
        let error = parse("name = \"3\"\n").unwrap_err();
        assert_eq!(
            error.message,
            "name \"3\" is all digits, and xl reads an all-digit argument as a domain ID; \
             put a letter in it, like \"web3\""
        );
        let error = parse("name = \"Domain-0\"\n").unwrap_err();
        assert_eq!(
            error.message,
            "name \"Domain-0\" is the control domain's; choose another"
        );
        let text = "name = \"3d\"\nmemory = 1\nkernel = \"k\"\n";
        assert_eq!(parse(text).unwrap().name, "3d");
    }

    #[test]
    fn name_too_long_says_the_limit() {
        let name = "a".repeat(33);
        let error = parse(&format!("name = \"{name}\"\n")).unwrap_err();
        assert_eq!(
            error.message,
            "name \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" is 33 characters long; the limit is 32"
        );
        let name = "a".repeat(32);
        let text = format!("name = \"{name}\"\nmemory = 1\nkernel = \"k\"\n");
        assert_eq!(parse(&text).unwrap().name.len(), 32);
    }

    #[test]
    fn memory_range() {
        let text = "name = \"a\"\nkernel = \"k\"\nmemory = 0\n";
        let error = parse(text).unwrap_err();
        assert_eq!(error.line, 3);
        assert_eq!(
            error.message,
            "memory = 0 is out of range: a domain has 1 to 65536 MiB"
        );
        let error = parse("memory = 65537\n").unwrap_err();
        assert_eq!(
            error.message,
            "memory = 65537 is out of range: a domain has 1 to 65536 MiB"
        );
        let error = parse("memory = 99999999999999999999999\n").unwrap_err();
        assert_eq!(
            error.message,
            "memory = 99999999999999999999999 is out of range: a domain has 1 to 65536 MiB"
        );
        let text = "name = \"a\"\nkernel = \"k\"\nmemory = 65536\n";
        assert_eq!(parse(text).unwrap().memory_mib, 65536);
    }

    #[test]
    fn only_one_vcpu() {
        let error = error_with("vcpus = 2\n");
        assert_eq!(error.line, 4);
        assert_eq!(
            error.message,
            "vcpus = 2: only 1 vCPU per domain is supported so far"
        );
    }

    #[test]
    fn weight_and_cap_ranges() {
        assert_eq!(
            error_with("weight = 0\n").message,
            "weight = 0 is out of range: a weight is 1 to 65535 (the default is 256)"
        );
        assert_eq!(
            error_with("weight = 65536\n").message,
            "weight = 65536 is out of range: a weight is 1 to 65535 (the default is 256)"
        );
        assert_eq!(
            error_with("cap = 101\n").message,
            "cap = 101 is out of range: a cap is 0 (no cap) to 100 percent of the one CPU"
        );
        let config = parse(&format!("{REQUIRED}weight = 65535\ncap = 100\n")).unwrap();
        assert_eq!((config.weight, config.cap), (65535, 100));
    }

    #[test]
    fn max_grant_frames_is_a_count_of_frames() {
        assert_eq!(parse(REQUIRED).unwrap().max_grant_frames, 0);
        let config = parse(&format!("{REQUIRED}max_grant_frames = 4\n")).unwrap();
        assert_eq!(config.max_grant_frames, 4);
        for bad in ["0", "65"] {
            assert_eq!(
                error_with(&format!("max_grant_frames = {bad}\n"))
                    .message
                    .as_str(),
                format!(
                    "max_grant_frames = {bad} is out of range: 1 to 64 frames of 512 grant \
                     entries (the hypervisor may allow fewer: its gnttab_max_frames)"
                )
            );
        }
    }

    #[test]
    fn bad_action_lists_the_allowed_ones() {
        let error = error_with("on_reboot = \"reboot\"\n");
        assert_eq!(
            error.message,
            "on_reboot = \"reboot\" is not an action; allowed are \"destroy\", \"restart\" \
             and \"preserve\""
        );
    }

    #[test]
    fn cmdline_and_extra_together() {
        let error = error_with("cmdline = \"a\"\nextra = \"b\"\n");
        assert_eq!(error.line, 5);
        assert_eq!(
            error.message,
            "extra and cmdline are both set (cmdline on line 4); extra is Xen's older name \
             for cmdline, so keep only one"
        );
        let error = error_with("extra = \"b\"\ncmdline = \"a\"\n");
        assert!(error
            .message
            .starts_with("cmdline and extra are both set (extra on line 4)"));
    }

    #[test]
    fn strings_too_long_say_the_limit() {
        let error = error_with(&format!("cmdline = \"{}\"\n", "x".repeat(257)));
        assert_eq!(
            error.message,
            "cmdline is 257 bytes long; the limit is 256 bytes"
        );
        let error = parse(&format!("kernel = \"{}\"\n", "k".repeat(129))).unwrap_err();
        assert_eq!(
            error.message,
            "kernel is 129 bytes long; the limit is 128 bytes"
        );
        let error = error_with(&format!("disk = [ \"a\", \"{}\" ]\n", "d".repeat(129)));
        assert_eq!(
            error.message,
            "disk entry 2 is 129 bytes long; the limit is 128 bytes"
        );
    }

    #[test]
    fn empty_kernel() {
        let error = parse("kernel = \"\"\n").unwrap_err();
        assert_eq!(
            error.message,
            "kernel is empty; give the path of the kernel image, like kernel = \"/boot/domu\""
        );
    }

    #[test]
    fn lists_hold_at_most_four_strings() {
        let error = error_with("vif = [ 'a', 'b', 'c', 'd', 'e' ]\n");
        assert_eq!(error.message, "vif has 5 entries; at most 4 are supported");
        let error = error_with("disk = [ \"a\", b ]\n");
        assert_eq!(
            error.message,
            "disk: a list holds only strings in quotes, like [ \"a\", \"b\" ] (found 'b ]')"
        );
        let error = error_with("disk = [ \"a\" \"b\" ]\n");
        assert_eq!(
            error.message,
            "disk: list items are separated by ',', like [ \"a\", \"b\" ] (found '\"b\" ]')"
        );
    }

    #[test]
    fn unterminated_string() {
        let error = parse("name = \"web\nmemory = 64\n").unwrap_err();
        assert_eq!(error.line, 1);
        assert_eq!(
            error.message,
            "name: the string is not closed; end it with \" on the same line \
             (a string cannot span lines)"
        );
        let error = error_with("disk = [ 'a ]\n");
        assert_eq!(
            error.message,
            "disk: the string is not closed; end it with ' on the same line \
             (a string cannot span lines)"
        );
    }

    #[test]
    fn unterminated_list() {
        let error = error_with("disk = [ \"a\",\n  \"b\"\n");
        assert_eq!(error.line, 4);
        assert_eq!(
            error.message,
            "disk: the list is not closed; end it with ']' (the file ends first)"
        );
        let error = error_with("vif = [ # none\n");
        assert!(error.message.starts_with("vif: the list is not closed"));
    }

    #[test]
    fn lists_may_span_lines_with_comments() {
        let config = parse(&format!(
            "{REQUIRED}disk = [ \"a\",   # the root disk\n\n    'b',\n]\nweight = 5\n"
        ))
        .unwrap();
        assert_eq!(config.disks.as_slice(), ["a", "b"]);
        assert_eq!(config.weight, 5);
        // An error inside the list names the line it is on.
        let error = error_with("vif = [\n  \"a\"\n  \"b\" ]\n");
        assert_eq!(error.line, 6);
        // A key set after a list is reported at its own line.
        let error = error_with("vif = [\n 'a' ]\nvif = []\n");
        assert_eq!(
            (error.line, error.message.as_str()),
            (6, "vif is set twice (first on line 4)")
        );
    }

    #[test]
    fn semicolons_separate_settings_on_one_line() {
        let config = parse("name = \"a\"; memory = 8;kernel=\"/k\" ; cap = 5;  # four\n").unwrap();
        assert_eq!((config.memory_mib, config.cap), (8, 5));
        assert_eq!(config.kernel, "/k");
        // A ';' inside a string is part of it.
        assert_eq!(
            parse(&format!("{REQUIRED}cmdline = \"a;b\"\n"))
                .unwrap()
                .cmdline,
            "a;b"
        );
        let error = error_with("weight = 5; cap\n");
        assert_eq!(
            error.message,
            "expected KEY = VALUE, like memory = 64, but this line has no '=' (found 'cap')"
        );
        assert_eq!(error.line, 4);
    }

    #[test]
    fn strings_take_escapes() {
        let config = parse(&format!(
            "{REQUIRED}cmdline = \"say \\\"hi\\\" \\\\ it's\\tok\"\n"
        ))
        .unwrap();
        assert_eq!(config.cmdline, "say \"hi\" \\ it's\tok");
        let config = parse(&format!("{REQUIRED}cmdline = 'it\\'s'\n")).unwrap();
        assert_eq!(config.cmdline, "it's");
        let error = error_with("cmdline = \"a\\qb\"\n");
        assert_eq!(
            error.message,
            "cmdline: '\\q' is not an escape; inside a string write \\\" for \", \\' for ', \
             \\\\ for \\, \\n for a new line and \\t for a tab"
        );
        // The limit counts the bytes once the escapes are undone.
        let escaped = "\\\"".repeat(256);
        let config = parse(&format!("{REQUIRED}cmdline = \"{escaped}\"\n")).unwrap();
        assert_eq!(config.cmdline.len(), 256);
        let error = error_with(&format!("disk = [ \"{}\" ]\n", "\\n".repeat(129)));
        assert_eq!(
            error.message,
            "disk entry 1 is 129 bytes long; the limit is 128 bytes"
        );
    }

    #[test]
    fn missing_required_keys() {
        let cases = [
            ("memory = 64\nkernel = \"k\"\n", "name"),
            ("name = \"a\"\nkernel = \"k\"\n", "memory"),
            ("name = \"a\"\nmemory = 64\n", "kernel"),
        ];
        for (text, key) in cases {
            let error = parse(text).unwrap_err();
            assert_eq!(error.line, 0);
            assert_eq!(
                error.message.as_str(),
                format!("the file has no '{key}' (every domain needs name, memory and kernel)")
            );
        }
        assert_eq!(
            parse("").unwrap_err().message,
            "the file has no 'name' (every domain needs name, memory and kernel)"
        );
    }

    #[test]
    fn lines_that_are_not_settings() {
        let error = error_with("\n  memory 64  # no equals\n");
        assert_eq!(error.line, 5);
        assert_eq!(
            error.message,
            "expected KEY = VALUE, like memory = 64, but this line has no '=' (found 'memory 64')"
        );
        assert_eq!(
            error_with("= 5\n").message,
            "expected KEY = VALUE, but there is no key before '='"
        );
        assert_eq!(
            error_with("on crash = \"destroy\"\n").message,
            "expected KEY = VALUE, but 'on crash' is not a key (a key has only letters, \
             digits and '_')"
        );
        // A '#' before the '=' makes the rest a comment.
        assert_eq!(
            error_with("memory # = 5\n").message,
            "expected KEY = VALUE, like memory = 64, but this line has no '=' (found 'memory')"
        );
    }

    #[test]
    fn text_after_the_value() {
        let error = error_with("weight = 256 512\n");
        assert_eq!(
            error.message,
            "weight: unexpected '512' after the value; end a setting with a new line or ';', \
             and start comments with '#'"
        );
    }

    #[test]
    fn display_and_describe() {
        let error = error_with("memroy = 64\n");
        assert!(shown(&error).starts_with("line 4: unknown key 'memroy'; known keys are: name,"));
        let mut out = StdString::new();
        describe(&error, "/etc/xen/web.cfg", &mut out).unwrap();
        assert_eq!(
            out,
            "/etc/xen/web.cfg:4: unknown key 'memroy'; known keys are: name, memory, vcpus, \
             kernel, cmdline, extra, on_poweroff, on_reboot, on_crash, weight, cap, disk, vif, \
             max_grant_frames"
        );

        let missing = parse("memory = 64\n").unwrap_err();
        assert_eq!(
            shown(&missing),
            "the file has no 'name' (every domain needs name, memory and kernel)"
        );
        let mut out = StdString::new();
        describe(&missing, "/etc/xen/web.cfg", &mut out).unwrap();
        assert_eq!(
            out,
            "/etc/xen/web.cfg: the file has no 'name' (every domain needs name, memory and kernel)"
        );
    }

    #[test]
    fn overlong_messages_end_in_an_ellipsis() {
        let mut message = Message(String::new());
        assert!(write!(message, "{}", "x".repeat(300)).is_err());
        assert_eq!(message.0.len(), MAX_MESSAGE);
        assert!(message.0.ends_with("xx..."));
    }

    #[test]
    fn a_key_repeated_on_the_command_line_is_found() {
        assert_eq!(
            repeated_setting(&["memory=4", "name=a", " memory = 8"]),
            Some(("memory=4", " memory = 8"))
        );
        assert_eq!(repeated_setting(&["memory=4", "name=a"]), None);
        assert_eq!(setting_key(" kernel = \"/k\""), "kernel");
    }

    #[test]
    fn keys_are_indexed_by_their_discriminant() {
        for (index, key) in Key::ALL.into_iter().enumerate() {
            assert_eq!(key as usize, index);
        }
    }
}
