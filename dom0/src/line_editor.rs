//! Turning keystrokes from the serial console into command lines.
//!
//! The console delivers raw bytes: printable characters, Enter as `\r` (or
//! `\n`), Backspace as DEL (0x7f) or BS (0x08), and escape sequences for
//! the arrow keys. The editor keeps the line being typed and says what to
//! echo, so that the terminal shows what the shell will run.
//!
//! Text is UTF-8: the bytes of a character other than ASCII are collected
//! until it is whole, and Backspace erases whole characters. A line that is
//! too long or is not UTF-8 is refused with a sentence when Enter is
//! pressed, never cut short and run.

/// The longest line accepted, in bytes (a `cmdline=` override of the
/// longest command line fits with room to spare).
pub const MAX_LINE: usize = 1024;

/// What one keystroke produced.
// A finished line is handed over once per Enter; boxing it would need a heap
// in a module that is meant to run anywhere.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Nothing to do.
    None,
    /// Echo these bytes to the terminal.
    Echo(&'static [u8]),
    /// Echo this character.
    EchoChar(u8),
    /// A line is complete (already echoed as a line end).
    Line(heapless::String<MAX_LINE>),
    /// The user pressed Ctrl-C: drop the line and prompt again.
    Cancel,
    /// Enter ended a line that cannot be run; the sentence says why.
    Refused(&'static str),
}

/// Why a line was refused.
pub const TOO_LONG: &str =
    "dom0: the line is longer than 1024 bytes; nothing was run (a config file can hold long settings)";
/// Why a line was refused.
pub const NOT_UTF8: &str =
    "dom0: the line has bytes that are not UTF-8 text; nothing was run (check the terminal's encoding)";

/// The line editor.
#[derive(Debug, Default)]
pub struct LineEditor {
    line: heapless::String<MAX_LINE>,
    /// Bytes of an escape sequence still to skip (ESC [ X).
    escape: u8,
    /// The bytes of a character being typed, and how many it has.
    partial: heapless::Vec<u8, 4>,
    partial_length: usize,
    /// What makes the line unrunnable, once something did.
    refused: Option<&'static str>,
}

/// Erases one character on the terminal: back, blank, back.
const ERASE: &[u8] = b"\x08 \x08";

impl LineEditor {
    /// An empty editor.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one byte from the console.
    pub fn feed(&mut self, byte: u8) -> Event {
        if self.escape > 0 {
            // ESC [ then one final byte (A..D for the arrows, etc.).
            self.escape = if self.escape == 2 && byte == b'[' {
                1
            } else {
                0
            };
            return Event::None;
        }
        if byte >= 0x80 {
            return self.feed_multibyte(byte);
        }
        if !self.partial.is_empty() {
            // A character's bytes stopped before it was whole.
            self.partial.clear();
            self.refused.get_or_insert(NOT_UTF8);
        }
        match byte {
            b'\r' | b'\n' => {
                let line = core::mem::take(&mut self.line);
                match self.refused.take() {
                    Some(why) => Event::Refused(why),
                    None => Event::Line(line),
                }
            }
            0x7f | 0x08 => {
                if self.line.pop().is_some() {
                    Event::Echo(ERASE)
                } else {
                    Event::None
                }
            }
            0x03 => {
                self.line.clear();
                self.refused = None;
                Event::Cancel
            }
            0x15 => {
                // Ctrl-U: erase the whole line.
                let count = self.line.chars().count();
                self.line.clear();
                self.refused = None;
                if count == 0 {
                    Event::None
                } else {
                    Event::Echo(ERASE_LINE[..count.min(ERASE_LINE.len() / 3) * 3].as_ref())
                }
            }
            0x1b => {
                self.escape = 2;
                Event::None
            }
            0x20..=0x7e => self.push(char::from(byte), byte),
            _ => Event::None,
        }
    }

    /// Adds a whole character; a line that would be too long is refused at
    /// Enter (what is typed still echoes, so the terminal shows it all).
    fn push(&mut self, character: char, last_byte: u8) -> Event {
        if self.line.push(character).is_err() {
            self.refused = Some(TOO_LONG);
        }
        Event::EchoChar(last_byte)
    }

    /// A byte of a character other than ASCII (0x80 and up).
    fn feed_multibyte(&mut self, byte: u8) -> Event {
        if self.partial.is_empty() {
            self.partial_length = match byte {
                0xc2..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf4 => 4,
                _ => {
                    self.refused.get_or_insert(NOT_UTF8);
                    return Event::None;
                }
            };
        } else if byte & 0xc0 != 0x80 {
            // Not a continuation byte: the character before it was cut.
            self.partial.clear();
            self.refused.get_or_insert(NOT_UTF8);
            return self.feed_multibyte(byte);
        }
        let _ = self.partial.push(byte);
        if self.partial.len() < self.partial_length {
            return Event::EchoChar(byte);
        }
        let whole = core::str::from_utf8(&self.partial)
            .ok()
            .and_then(|text| text.chars().next());
        self.partial.clear();
        match whole {
            Some(character) => self.push(character, byte),
            None => {
                // Overlong forms and surrogates are not UTF-8.
                self.refused.get_or_insert(NOT_UTF8);
                Event::EchoChar(byte)
            }
        }
    }
}

/// Enough erase sequences for a whole line.
static ERASE_LINE: [u8; 3 * MAX_LINE] = {
    let mut bytes = [0u8; 3 * MAX_LINE];
    let mut index = 0;
    while index < MAX_LINE {
        bytes[3 * index] = 0x08;
        bytes[3 * index + 1] = b' ';
        bytes[3 * index + 2] = 0x08;
        index += 1;
    }
    bytes
};

#[cfg(test)]
mod tests {
    use super::*;

    fn type_in(editor: &mut LineEditor, bytes: &[u8]) -> Vec<Event> {
        bytes.iter().map(|&byte| editor.feed(byte)).collect()
    }

    fn line(text: &str) -> Event {
        Event::Line(heapless::String::try_from(text).unwrap())
    }

    #[test]
    fn collects_a_line_until_enter() {
        let mut editor = LineEditor::new();
        let events = type_in(&mut editor, b"xl list\r");
        assert_eq!(events[0], Event::EchoChar(b'x'));
        assert_eq!(events.last().unwrap(), &line("xl list"));
    }

    #[test]
    fn backspace_and_delete_erase_one_character() {
        let mut editor = LineEditor::new();
        let events = type_in(&mut editor, b"xl lisx\x7ft\r");
        assert_eq!(events[7], Event::Echo(b"\x08 \x08"));
        assert_eq!(events.last().unwrap(), &line("xl list"));
        let events = type_in(&mut editor, b"ab\x08\x08\x08c\n");
        assert_eq!(events[4], Event::None, "nothing left to erase");
        assert_eq!(events.last().unwrap(), &line("c"));
    }

    #[test]
    fn arrow_keys_are_ignored() {
        let mut editor = LineEditor::new();
        let events = type_in(&mut editor, b"a\x1b[Ab\r");
        assert_eq!(events.last().unwrap(), &line("ab"));
    }

    #[test]
    fn ctrl_c_cancels_and_ctrl_u_erases() {
        let mut editor = LineEditor::new();
        assert_eq!(
            type_in(&mut editor, b"abc\x03").last().unwrap(),
            &Event::Cancel
        );
        assert_eq!(type_in(&mut editor, b"\r").last().unwrap(), &line(""));
        let events = type_in(&mut editor, b"ab\x15c\r");
        assert_eq!(events[2], Event::Echo(b"\x08 \x08\x08 \x08"));
        assert_eq!(events.last().unwrap(), &line("c"));
    }

    #[test]
    fn overlong_lines_are_refused_never_cut() {
        let mut editor = LineEditor::new();
        for _ in 0..MAX_LINE + 10 {
            editor.feed(b'a');
        }
        assert_eq!(editor.feed(b'\r'), Event::Refused(TOO_LONG));
        // The next line starts afresh.
        assert_eq!(type_in(&mut editor, b"ls\r").last().unwrap(), &line("ls"));
        // A line of exactly MAX_LINE bytes is fine, and a 300-byte one too.
        let long = "x".repeat(300);
        let typed = format!("{long}\r");
        assert_eq!(
            type_in(&mut editor, typed.as_bytes()).last().unwrap(),
            &line(&long)
        );
        let full = "y".repeat(MAX_LINE);
        let typed = format!("{full}\r");
        assert_eq!(
            type_in(&mut editor, typed.as_bytes()).last().unwrap(),
            &line(&full)
        );
    }

    #[test]
    fn utf8_passes_through_and_backspace_erases_whole_characters() {
        let mut editor = LineEditor::new();
        let events = type_in(&mut editor, "héllo\r".as_bytes());
        assert_eq!(events[1], Event::EchoChar(0xc3));
        assert_eq!(events[2], Event::EchoChar(0xa9));
        assert_eq!(events.last().unwrap(), &line("héllo"));
        let events = type_in(&mut editor, "a€\x7fb\r".as_bytes());
        assert_eq!(events.last().unwrap(), &line("ab"));
    }

    #[test]
    fn bytes_that_are_not_utf8_refuse_the_line() {
        let mut editor = LineEditor::new();
        // Latin-1 'é' (0xe9) followed by ASCII: a cut character.
        assert_eq!(
            type_in(&mut editor, b"h\xe9llo\r").last().unwrap(),
            &Event::Refused(NOT_UTF8)
        );
        assert_eq!(
            type_in(&mut editor, b"\xff\r").last().unwrap(),
            &Event::Refused(NOT_UTF8)
        );
        // Overlong encoding of '/'.
        assert_eq!(
            type_in(&mut editor, b"\xe0\x80\xaf\r").last().unwrap(),
            &Event::Refused(NOT_UTF8)
        );
        // Ctrl-U forgets the bad bytes with the line.
        assert_eq!(
            type_in(&mut editor, b"\xff\x15ok\r").last().unwrap(),
            &line("ok")
        );
    }
}
