//! The serial line, the `log` backend and the global log ring: the hypervisor's own output.

use crate::boot::cmdline::{LogLevel, LogLevels};
use crate::console::log_ring::{LogRing, Read};
use crate::console::rate_limit::{Piece, RateLimit, Verdict};
use crate::domain::Domain;
use crate::sync::lock_order::LockLevel;
use crate::sync::ordered_lock::OrderedMutex;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use uart_16550::SerialPort;

/// Log target for messages caused by guests (`log::warn!(target: GUEST, ..)`).
pub const GUEST: &str = "guest";

/// Logs a message about what domain `$domain` (a `&mut Domain`) did, at
/// `log::Level::$level`, within the domain's rate limit unless it is
/// privileged: `guest_log!(domain, Warn, "unknown memory_op {command}")`
/// prints `(XEN) d3: unknown memory_op 99`.
macro_rules! guest_log {
    ($domain:expr, $level:ident, $($message:tt)+) => {
        $crate::console::guest_message($domain, log::Level::$level, format_args!($($message)+))
    };
}
pub(crate) use guest_log;

/// [`guest_log!`] about the domain running on this CPU (the caller of the
/// hypercall being handled). It takes the domain table's lock, so it must
/// not be used inside `domain::with`: there, use `guest_log!` with the
/// domain in hand.
macro_rules! caller_log {
    ($level:ident, $($message:tt)+) => {
        $crate::domain::with_current(|domain| {
            $crate::console::guest_message(domain, log::Level::$level, format_args!($($message)+))
        })
    };
}
pub(crate) use caller_log;

/// The longest line the logger prints; longer ones are cut, marked `[...]`.
const MAX_LINE: usize = 512;

/// Size of the log ring.
pub const LOG_RING_SIZE: usize = 64 * 1024;

const COM1: u16 = 0x3f8;

/// The serial port; `None` until `init`, or when `console=none`.
static SERIAL: OrderedMutex<Option<SerialPort>> = OrderedMutex::new(LockLevel::Serial, None);
static RING: OrderedMutex<LogRing<LOG_RING_SIZE>> =
    OrderedMutex::new(LockLevel::LogRing, LogRing::new());
/// The hypervisor's own messages up to this level are printed (never
/// rate-limited).
static HYPERVISOR_LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);
/// Guest-caused messages up to this level are printed whatever the rate.
static GUEST_ALWAYS: AtomicU8 = AtomicU8::new(LogLevel::None as u8);
/// Guest-caused messages up to this level are printed within the rate limit.
static GUEST_LIMITED: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);
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
/// The hypervisor's own lines are not rate-limited: `loglvl=A/B` prints
/// them up to `B`.
pub fn configure(hypervisor: LogLevels, guest: LogLevels, serial: bool) {
    HYPERVISOR_LEVEL.store(hypervisor.rate_limited as u8, Ordering::Relaxed);
    GUEST_ALWAYS.store(guest.always as u8, Ordering::Relaxed);
    GUEST_LIMITED.store(guest.rate_limited as u8, Ordering::Relaxed);
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
            &GUEST_LIMITED
        } else {
            &HYPERVISOR_LEVEL
        };
        level_allows(threshold.load(Ordering::Relaxed), metadata.level())
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // The whole line first: the ring decides about a guest line by its
        // length.
        let mut line = LineBuffer::default();
        let _ = writeln!(line, "(XEN) {}", record.args());
        let line = line.finish();
        let mut serial = SERIAL.lock();
        if SERIAL_WANTED.load(Ordering::Relaxed) {
            if let Some(serial) = serial.as_mut() {
                send(serial, line);
            }
        }
        let mut ring = RING.lock();
        if record.target() == GUEST {
            // Left out when the guests' share of the ring is used up.
            ring.push_guest(line);
        } else {
            ring.push(line);
        }
    }

    fn flush(&self) {}
}

/// One log line being formatted; what does not fit in [`MAX_LINE`] is cut.
struct LineBuffer {
    bytes: [u8; MAX_LINE],
    length: usize,
    cut: bool,
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self {
            bytes: [0; MAX_LINE],
            length: 0,
            cut: false,
        }
    }
}

impl Write for LineBuffer {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = MAX_LINE - self.length;
        let taken = text.len().min(room);
        self.bytes[self.length..self.length + taken].copy_from_slice(&text.as_bytes()[..taken]);
        self.length += taken;
        self.cut |= taken < text.len();
        Ok(())
    }
}

impl LineBuffer {
    /// The line, ending in a newline even when it was cut.
    fn finish(&mut self) -> &[u8] {
        if self.cut {
            const MARK: &[u8] = b" [...]\n";
            let start = MAX_LINE - MARK.len();
            self.bytes[start..].copy_from_slice(MARK);
            self.length = MAX_LINE;
        }
        &self.bytes[..self.length]
    }
}

/// Sends bytes to the serial line, with `\r\n` for each `\n`.
fn send(serial: &mut SerialPort, bytes: &[u8]) {
    for &byte in bytes {
        if byte == b'\n' {
            serial.send_raw(b'\r');
        }
        serial.send_raw(byte);
    }
}

/// Logs a message about what `domain` did (see [`guest_log!`]): Dom0's
/// always (it is trusted, as is its console); an unprivileged domain's
/// always if `level` is within the first `guest_loglvl=` threshold,
/// within its rate limit if within the second, otherwise not at all. When
/// a message gets through after others were dropped, a line says how many.
pub fn guest_message(domain: &mut Domain, level: log::Level, message: fmt::Arguments) {
    if !level_allows(GUEST_LIMITED.load(Ordering::Relaxed), level) {
        return; // filtered out: it costs no budget
    }
    let id = domain.id;
    if !domain.privileged && !level_allows(GUEST_ALWAYS.load(Ordering::Relaxed), level) {
        match domain
            .output
            .check(RateLimit::GUEST, crate::time::system_time_ns())
        {
            Verdict::Print { suppressed_before } if suppressed_before > 0 => {
                report_suppressed(id, suppressed_before)
            }
            Verdict::Print { .. } => {}
            Verdict::Suppress => return,
        }
    }
    log::log!(target: GUEST, level, "d{id}: {message}");
}

/// The line that says how many of a domain's messages were dropped.
fn report_suppressed(id: u16, count: u64) {
    log::warn!(target: GUEST, "d{id}: {count} messages suppressed");
}

/// The last word about a domain that is being destroyed: how many of its
/// messages were dropped since the last one printed (once in its life, so
/// not rate-limited).
pub fn last_word(domain: &mut Domain) {
    let count = domain.output.take_suppressed();
    if count > 0 {
        report_suppressed(domain.id, count);
    }
}

/// Writes to the serial line and/or the ring, turning `\n` into `\r\n` on
/// the wire (for the fatal path, which cannot format a line first).
struct Sink<'a> {
    serial: Option<&'a mut SerialPort>,
    ring: Option<&'a mut LogRing<LOG_RING_SIZE>>,
}

impl Write for Sink<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if let Some(serial) = self.serial.as_deref_mut() {
            send(serial, text.as_bytes());
        }
        if let Some(ring) = self.ring.as_deref_mut() {
            ring.push(text.as_bytes());
        }
        Ok(())
    }
}

/// Writes a guest's console output (the `console_io` hypercall) to the
/// serial line (not to the log ring: `xl dmesg` shows the hypervisor's
/// lines). Privileged domains' output goes out byte for byte (Dom0 owns the
/// console). An unprivileged domain's goes out line by line within its rate
/// limit (shared with its warnings), each line prefixed with `(dN) ` as Xen
/// prints them; its console output counts as `info` for `guest_loglvl=`.
pub fn write_guest_output(domain: &mut Domain, bytes: &[u8]) {
    if !SERIAL_WANTED.load(Ordering::Relaxed) {
        return;
    }
    let id = domain.id;
    if domain.privileged {
        if let Some(serial) = SERIAL.lock().as_mut() {
            send_raw(serial, bytes);
        }
        return;
    }
    if !level_allows(GUEST_LIMITED.load(Ordering::Relaxed), log::Level::Info) {
        return;
    }
    // With `guest_loglvl=info` or more as the first threshold, no limit.
    let limit = if level_allows(GUEST_ALWAYS.load(Ordering::Relaxed), log::Level::Info) {
        RateLimit::UNLIMITED
    } else {
        RateLimit::GUEST
    };
    let now = crate::time::system_time_ns();
    domain
        .output
        .filter(limit, now, bytes, |piece| match piece {
            Piece::Suppressed(count) => report_suppressed(id, count),
            Piece::LineStart => {
                let mut prefix = heapless::String::<16>::new();
                let _ = write!(prefix, "(d{id}) ");
                if let Some(serial) = SERIAL.lock().as_mut() {
                    send_raw(serial, prefix.as_bytes());
                }
            }
            Piece::Bytes(bytes) => {
                if let Some(serial) = SERIAL.lock().as_mut() {
                    send_raw(serial, bytes);
                }
            }
            Piece::CutLine => {
                if let Some(serial) = SERIAL.lock().as_mut() {
                    send_raw(serial, b"\r\n");
                }
            }
        });
}

/// Sends bytes to the serial line as they are (a guest's own line ends).
fn send_raw(serial: &mut SerialPort, bytes: &[u8]) {
    for &byte in bytes {
        serial.send_raw(byte);
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
