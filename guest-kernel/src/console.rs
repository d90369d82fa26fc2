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

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use hypercall_abi::console::{
    ring_position, ConsoleInterface, CONSOLE_IN_RING_SIZE, CONSOLE_OUT_RING_SIZE,
};
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

/// The console ring, once mapped (null before, and always in Dom0).
static RING: AtomicPtr<ConsoleInterface> = AtomicPtr::new(core::ptr::null_mut());
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
    let flags = crate::paging::WRITABLE | crate::paging::USER | crate::paging::NO_EXECUTE;
    if crate::paging::map(CONSOLE_ADDRESS, mfn, flags).is_ok() {
        PORT.store(port, Ordering::Relaxed);
        RING.store(CONSOLE_ADDRESS as *mut ConsoleInterface, Ordering::Release);
    }
}

/// Writes bytes to the ring (sleeping while it is full) or, without one,
/// through `console_io`.
fn write_bytes(bytes: &[u8]) {
    let ring = RING.load(Ordering::Acquire);
    if ring.is_null() {
        wrappers::console_write(bytes);
        return;
    }
    let port = PORT.load(Ordering::Relaxed);
    let mut done = 0;
    while done < bytes.len() {
        // SAFETY: the ring is our console page, mapped for our whole life;
        // the backend only moves out_cons, we only move out_prod.
        let (producer, consumer) = unsafe {
            (
                core::ptr::addr_of!((*ring).out_prod).read_volatile(),
                core::ptr::addr_of!((*ring).out_cons).read_volatile(),
            )
        };
        let space = CONSOLE_OUT_RING_SIZE - producer.wrapping_sub(consumer) as usize;
        if space == 0 {
            let _ = crate::events::send(port);
            crate::events::wait_until(|| {
                // SAFETY: as above.
                let consumer = unsafe { core::ptr::addr_of!((*ring).out_cons).read_volatile() };
                consumer != producer.wrapping_sub(CONSOLE_OUT_RING_SIZE as u32)
            });
            continue;
        }
        let count = space.min(bytes.len() - done);
        for (offset, &byte) in bytes[done..done + count].iter().enumerate() {
            let position =
                ring_position(producer.wrapping_add(offset as u32), CONSOLE_OUT_RING_SIZE);
            // SAFETY: as above; position < CONSOLE_OUT_RING_SIZE.
            unsafe { core::ptr::addr_of_mut!((*ring).output[position]).write_volatile(byte) };
        }
        // The bytes must be in the ring before the index says so.
        core::sync::atomic::fence(Ordering::Release);
        // SAFETY: as above.
        unsafe {
            core::ptr::addr_of_mut!((*ring).out_prod)
                .write_volatile(producer.wrapping_add(count as u32))
        };
        done += count;
    }
    let _ = crate::events::send(port);
}

/// Waits (up to `timeout_ns` of system time) until the backend has taken
/// everything written to the ring: a guest about to power off calls this
/// so that its last lines are not lost with it.
pub fn drain(timeout_ns: u64) {
    let ring = RING.load(Ordering::Acquire);
    if ring.is_null() {
        return;
    }
    let deadline = crate::time::system_time_ns() + timeout_ns;
    loop {
        // SAFETY: as in write_bytes.
        let (producer, consumer) = unsafe {
            (
                core::ptr::addr_of!((*ring).out_prod).read_volatile(),
                core::ptr::addr_of!((*ring).out_cons).read_volatile(),
            )
        };
        if producer == consumer || crate::time::system_time_ns() >= deadline {
            return;
        }
        let _ = crate::events::send(PORT.load(Ordering::Relaxed));
        crate::time::sleep(1_000_000);
    }
}

/// Reads what the backend put in the input ring (typed at `xl console`).
pub fn read_input(out: &mut [u8]) -> usize {
    let ring = RING.load(Ordering::Acquire);
    if ring.is_null() {
        return 0;
    }
    // SAFETY: as in write_bytes; here we only move in_cons.
    unsafe {
        let producer = core::ptr::addr_of!((*ring).in_prod).read_volatile();
        let mut consumer = core::ptr::addr_of!((*ring).in_cons).read_volatile();
        let mut count = 0;
        while consumer != producer && count < out.len() {
            out[count] =
                core::ptr::addr_of!((*ring).input[ring_position(consumer, CONSOLE_IN_RING_SIZE)])
                    .read_volatile();
            consumer = consumer.wrapping_add(1);
            count += 1;
        }
        core::ptr::addr_of_mut!((*ring).in_cons).write_volatile(consumer);
        count
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
