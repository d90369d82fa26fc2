//! Turning keystrokes from the serial console into command lines.
//!
//! The console delivers raw bytes: printable characters, Enter as `\r` (or
//! `\n`), Backspace as DEL (0x7f) or BS (0x08), and escape sequences for
//! the arrow keys. The editor keeps the line being typed and says what to
//! echo, so that the terminal shows what the shell will run.

/// The longest line accepted.
pub const MAX_LINE: usize = 256;

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
}

/// The line editor.
#[derive(Debug, Default)]
pub struct LineEditor {
    line: heapless::String<MAX_LINE>,
    /// Bytes of an escape sequence still to skip (ESC [ X).
    escape: u8,
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
        match byte {
            b'\r' | b'\n' => Event::Line(core::mem::take(&mut self.line)),
            0x7f | 0x08 => {
                if self.line.pop().is_some() {
                    Event::Echo(ERASE)
                } else {
                    Event::None
                }
            }
            0x03 => {
                self.line.clear();
                Event::Cancel
            }
            0x15 => {
                // Ctrl-U: erase the whole line.
                let count = self.line.len();
                self.line.clear();
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
            0x20..=0x7e => {
                if self.line.push(char::from(byte)).is_ok() {
                    Event::EchoChar(byte)
                } else {
                    Event::None // line full: ignore further characters
                }
            }
            _ => Event::None,
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
    fn overlong_lines_are_cut() {
        let mut editor = LineEditor::new();
        for _ in 0..MAX_LINE + 10 {
            editor.feed(b'a');
        }
        match editor.feed(b'\r') {
            Event::Line(text) => assert_eq!(text.len(), MAX_LINE),
            other => panic!("{other:?}"),
        }
    }
}
