//! The guest's console.
//!
//! A DomU's console is a pair of rings in a shared page (Xen's
//! `io/console.h`: 1 KiB of input, 2 KiB of output, producer and consumer
//! indices) plus an event channel, both named in start_info. The guest
//! writes output into the ring and signals the channel; Dom0's console
//! backend copies it out, keeps it as scrollback, and shows it when someone
//! is attached with `xl console`. When the ring is full the guest sleeps
//! until the backend makes room.
//!
//! Dom0 (which owns the serial line), and any guest before its console
//! page is mapped, writes with the `console_io` hypercall instead; the
//! hypervisor prints that straight to the serial line, prefixed `(dN)` for
//! a DomU.
//!
//! Text is gathered in a small buffer and written per buffer-full or per
//! `print!`. Line ends become `\r\n`: a serial terminal needs both.

#![forbid(unsafe_code)]

use crate::sys::memory::ConsoleRing;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};
use hypercall_abi::console::CONSOLE_OUT_RING_SIZE;
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
            write_bytes(&self.buffer[..self.used]);
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

/// The console ring, once mapped (never in Dom0).
static RING: spin::Once<ConsoleRing> = spin::Once::new();
/// The console's event channel.
static PORT: AtomicU32 = AtomicU32::new(0);
/// Where the console page is mapped.
pub const CONSOLE_ADDRESS: u64 = 0xffff_bfff_fffe_0000;

/// Maps the console page start_info names (a DomU's) and switches output
/// to the ring. Called once at start, after events are set up.
#[cfg(not(test))]
pub fn init() {
    let info = crate::start::start_info();
    if info.flags & hypercall_abi::layout::SIF_INITDOMAIN != 0 {
        return; // Dom0 owns the serial line
    }
    let (mfn, port) = (info.console.domu_mfn(), info.console.domu_evtchn());
    if mfn == 0 || port == 0 {
        return; // no console backend: keep using console_io
    }
    if let Ok(ring) = ConsoleRing::map(CONSOLE_ADDRESS, mfn, None) {
        PORT.store(port, Ordering::Relaxed);
        RING.call_once(|| ring);
    }
}

/// Writes bytes to the ring (sleeping while it is full) or, without one,
/// through `console_io`. The backend only moves out_cons, we only move
/// out_prod.
fn write_bytes(bytes: &[u8]) {
    let Some(ring) = RING.get() else {
        wrappers::console_write(bytes);
        return;
    };
    let port = PORT.load(Ordering::Relaxed);
    let mut done = 0;
    while done < bytes.len() {
        let (producer, consumer) = ring.output_indices();
        let space = CONSOLE_OUT_RING_SIZE - producer.wrapping_sub(consumer) as usize;
        if space == 0 {
            let _ = crate::events::send(port);
            crate::events::wait_until(|| {
                let (_, consumer) = ring.output_indices();
                consumer != producer.wrapping_sub(CONSOLE_OUT_RING_SIZE as u32)
            });
            continue;
        }
        let count = space.min(bytes.len() - done);
        for (offset, &byte) in bytes[done..done + count].iter().enumerate() {
            ring.set_output_byte(producer.wrapping_add(offset as u32), byte);
        }
        // The bytes must be in the ring before the index says so.
        core::sync::atomic::fence(Ordering::Release);
        ring.set_output_producer(producer.wrapping_add(count as u32));
        done += count;
    }
    let _ = crate::events::send(port);
}

/// Waits (up to `timeout_ns` of system time) until the backend has taken
/// everything written to the ring: a guest about to power off calls this
/// so that its last lines are not lost with it.
pub fn drain(timeout_ns: u64) {
    let Some(ring) = RING.get() else { return };
    let deadline = crate::time::system_time_ns() + timeout_ns;
    loop {
        let (producer, consumer) = ring.output_indices();
        if producer == consumer || crate::time::system_time_ns() >= deadline {
            return;
        }
        let _ = crate::events::send(PORT.load(Ordering::Relaxed));
        crate::time::sleep(1_000_000);
    }
}

/// Reads what the backend put in the input ring (typed at `xl console`);
/// here we only move in_cons.
pub fn read_input(out: &mut [u8]) -> usize {
    let Some(ring) = RING.get() else { return 0 };
    let (producer, mut consumer) = ring.input_indices();
    let mut count = 0;
    while consumer != producer && count < out.len() {
        out[count] = ring.input_byte(consumer);
        consumer = consumer.wrapping_add(1);
        count += 1;
    }
    ring.set_input_consumer(consumer);
    count
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
