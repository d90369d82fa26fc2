//! The hypervisor's console: the serial line, the `log` backend, and the
//! log ring that `xl dmesg` reads.
//!
//! Every hypervisor message goes out as one line `(XEN) message` (Xen's
//! prefix) on COM1 and into the log ring. Messages about what a guest did
//! use the log target [`GUEST`], so that `guest_loglvl=` filters them apart
//! from the hypervisor's own (`loglvl=`), as in Xen.

use crate::arch::x86_64::ordered_lock::OrderedMutex;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use uart_16550::SerialPort;
use xen_like::cmdline::LogLevel;
use xen_like::lock_order::LockLevel;
use xen_like::log_ring::{LogRing, Read};

/// Log target for messages caused by guests (`log::warn!(target: GUEST, ..)`).
pub const GUEST: &str = "guest";

/// Size of the log ring.
pub const LOG_RING_SIZE: usize = 64 * 1024;

const COM1: u16 = 0x3f8;

/// The serial port; `None` until `init`, or when `console=none`.
static SERIAL: OrderedMutex<Option<SerialPort>> = OrderedMutex::new(LockLevel::Serial, None);
static RING: OrderedMutex<LogRing<LOG_RING_SIZE>> =
    OrderedMutex::new(LockLevel::LogRing, LogRing::new());
static HYPERVISOR_LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);
static GUEST_LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);
static SERIAL_WANTED: AtomicBool = AtomicBool::new(true);

struct Logger;
static LOGGER: Logger = Logger;

/// Brings up COM1 and installs the logger (everything at `info` and above
/// until `set_levels` applies the command line).
pub fn init() {
    // SAFETY: COM1 at 0x3f8 is the PC's first serial port; the hypervisor
    // owns it and is the only code that drives it.
    let mut port = unsafe { SerialPort::new(COM1) };
    port.init();
    set_baud_115200();
    *SERIAL.lock() = Some(port);
    // set_logger fails only if a logger exists already: then keep it.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Trace);
}

/// `uart_16550` programs 38400 baud; GRUB and most terminals use 115200,
/// so the divisor is set again: 115200 / 115200 = 1.
fn set_baud_115200() {
    use crate::arch::x86_64::instructions::outb;
    const LINE_CONTROL: u16 = COM1 + 3;
    // SAFETY: COM1 belongs to the hypervisor. Setting DLAB (bit 7 of the
    // line control register) exposes the divisor latch at COM1+0/+1; the
    // last write restores 8 data bits, no parity, one stop bit.
    unsafe {
        outb(LINE_CONTROL, 0x80);
        outb(COM1, 1);
        outb(COM1 + 1, 0);
        outb(LINE_CONTROL, 0x03);
    }
}

/// Applies `loglvl=`, `guest_loglvl=` and `console=` from the command line.
pub fn configure(hypervisor: LogLevel, guest: LogLevel, serial: bool) {
    HYPERVISOR_LEVEL.store(hypervisor as u8, Ordering::Relaxed);
    GUEST_LEVEL.store(guest as u8, Ordering::Relaxed);
    SERIAL_WANTED.store(serial, Ordering::Relaxed);
}

fn level_allows(threshold: u8, level: log::Level) -> bool {
    let needed = match level {
        log::Level::Error => LogLevel::Error,
        log::Level::Warn => LogLevel::Warning,
        log::Level::Info => LogLevel::Info,
        log::Level::Debug => LogLevel::Debug,
        log::Level::Trace => LogLevel::All,
    };
    needed as u8 <= threshold
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        let threshold = if metadata.target() == GUEST {
            &GUEST_LEVEL
        } else {
            &HYPERVISOR_LEVEL
        };
        level_allows(threshold.load(Ordering::Relaxed), metadata.level())
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut serial = SERIAL.lock();
        let mut ring = RING.lock();
        let mut sink = Sink {
            serial: if SERIAL_WANTED.load(Ordering::Relaxed) {
                serial.as_mut()
            } else {
                None
            },
            ring: Some(&mut ring),
        };
        let _ = writeln!(sink, "(XEN) {}", record.args());
    }

    fn flush(&self) {}
}

/// Writes to the serial line and/or the ring, turning `\n` into `\r\n` on
/// the wire.
struct Sink<'a> {
    serial: Option<&'a mut SerialPort>,
    ring: Option<&'a mut LogRing<LOG_RING_SIZE>>,
}

impl Write for Sink<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if let Some(serial) = self.serial.as_deref_mut() {
            for byte in text.bytes() {
                if byte == b'\n' {
                    serial.send_raw(b'\r');
                }
                serial.send_raw(byte);
            }
        }
        if let Some(ring) = self.ring.as_deref_mut() {
            ring.push(text.as_bytes());
        }
        Ok(())
    }
}

/// Writes a guest's console output (the `console_io` hypercall) to the
/// serial line. Dom0's goes out byte for byte (it owns the console); other
/// domains' lines are prefixed with `(dN) `, as Xen prints them, so they
/// can be told apart. `at_line_start` carries the line state between calls.
pub fn write_guest_output(domain: u16, bytes: &[u8], at_line_start: &mut bool) {
    if !SERIAL_WANTED.load(Ordering::Relaxed) {
        return;
    }
    let mut serial = SERIAL.lock();
    let Some(serial) = serial.as_mut() else {
        return;
    };
    for &byte in bytes {
        if domain != 0 && *at_line_start && byte != b'\r' {
            let mut prefix = heapless::String::<16>::new();
            let _ = write!(prefix, "(d{domain}) ");
            for &prefix_byte in prefix.as_bytes() {
                serial.send_raw(prefix_byte);
            }
            *at_line_start = false;
        }
        serial.send_raw(byte);
        if byte == b'\n' {
            *at_line_start = true;
        }
    }
}

/// Whether a byte is waiting on the serial line (line status register,
/// bit 0), without taking it.
pub fn input_ready() -> bool {
    use crate::arch::x86_64::instructions::inb;
    if SERIAL.lock().is_none() {
        return false;
    }
    // SAFETY: reading COM1's line status register has no side effect.
    unsafe { inb(COM1 + 5) & 1 != 0 }
}

/// Reads whatever input has arrived on the serial line, without waiting.
pub fn read_input(buffer: &mut [u8]) -> usize {
    let mut serial = SERIAL.lock();
    let Some(serial) = serial.as_mut() else {
        return 0;
    };
    let mut count = 0;
    while count < buffer.len() {
        match serial.try_receive() {
            Ok(byte) => {
                buffer[count] = byte;
                count += 1;
            }
            Err(_) => break,
        }
    }
    count
}

/// Copies log-ring bytes from counter `from` into `out`.
pub fn read_log(from: u64, out: &mut [u8]) -> Read {
    RING.lock().read(from, out)
}

/// Forgets the log-ring bytes before counter `end` (`xl dmesg -c`: what
/// the reader was given, not what was logged since).
pub fn clear_log_before(end: u64) {
    RING.lock().clear_before(end);
}

/// The counter of the oldest byte the ring still holds.
pub fn log_oldest() -> u64 {
    RING.lock().oldest()
}

/// Writes straight to the serial line, taking the lock by force if someone
/// holds it: for the fatal-error path only, when the holder will never run
/// again.
pub fn fatal_writer() -> impl Write {
    struct Fatal;
    impl Write for Fatal {
        fn write_str(&mut self, text: &str) -> fmt::Result {
            if SERIAL.is_locked() {
                // SAFETY: this runs only on the fatal path, with interrupts
                // off, after which nothing else runs on this CPU; the holder
                // of the lock can never resume, so taking it cannot race.
                unsafe { SERIAL.force_unlock() };
            }
            if RING.is_locked() {
                // SAFETY: as above.
                unsafe { RING.force_unlock() };
            }
            // Unchecked: a lock-order panic may come from under any lock.
            let mut serial = SERIAL.lock_on_fatal_path();
            let mut ring = RING.lock_on_fatal_path();
            let mut sink = Sink {
                serial: serial.as_mut(),
                ring: Some(&mut ring),
            };
            sink.write_str(text)
        }
    }
    Fatal
}
