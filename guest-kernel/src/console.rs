//! Console output through the `console_io` hypercall.
//!
//! Text is gathered in a small buffer and written with one hypercall per
//! buffer-full or per `print!`. Line ends become `\r\n` on the way out: a
//! serial terminal needs both.

use core::fmt::{self, Write};
use hypercall_abi::wrappers;

/// Gathers bytes and writes them with `console_io` when full or dropped.
pub struct ConsoleWriter {
    buffer: [u8; 256],
    used: usize,
}

impl ConsoleWriter {
    /// An empty writer.
    pub const fn new() -> Self {
        Self {
            buffer: [0; 256],
            used: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        if self.used == self.buffer.len() {
            self.flush();
        }
        self.buffer[self.used] = byte;
        self.used += 1;
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) {
        if self.used > 0 {
            wrappers::console_write(&self.buffer[..self.used]);
            self.used = 0;
        }
    }

    /// Writes raw bytes (no line-end translation).
    pub fn write_raw(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.push(byte);
        }
    }
}

impl Default for ConsoleWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for ConsoleWriter {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for byte in text.bytes() {
            if byte == b'\n' {
                self.push(b'\r');
            }
            self.push(byte);
        }
        Ok(())
    }
}

impl Drop for ConsoleWriter {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Used by the `print!` macro.
pub fn print(arguments: fmt::Arguments) {
    let mut writer = ConsoleWriter::new();
    let _ = writer.write_fmt(arguments);
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::print(format_args!($($arg)*)));
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::console::print(format_args!("{}\n", format_args!($($arg)*))));
}
