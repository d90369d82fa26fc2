//! The console backend: Dom0's side of every guest's console ring.
//!
//! For each domain it created with a console, Dom0 maps the guest's ring
//! page (a foreign mapping) and connects to the event channel the builder
//! offered. Whenever the guest signals, Dom0 copies the new output into the
//! domain's scrollback (kept from the first byte, up to a limit) and tells
//! the guest there is room again. `xl console NAME` prints the scrollback
//! and then forwards output and keystrokes live until Ctrl-] detaches.
//!
//! The ring page is the guest kernel's `ConsoleRing`, mapped at the
//! domain's page of `areas::CONSOLE_RINGS`: every access to it is a
//! volatile one, at a position reduced modulo the ring's size.
#![forbid(unsafe_code)]

use crate::areas::CONSOLE_RINGS;
use crate::builder::ConsoleSetup;
use alloc::vec::Vec;
use guest_kernel::abi::console::{CONSOLE_IN_RING_SIZE, CONSOLE_OUT_RING_SIZE};
use guest_kernel::console::ConsoleWriter;
use guest_kernel::sys::memory::ConsoleRing;
use guest_kernel::{events, println};
use spin::Mutex;

/// The scrollback kept per domain; beyond it (by a quarter) the oldest bytes go.
const SCROLLBACK_LIMIT: usize = 256 * 1024;
/// Ctrl-], which detaches from a console, as in Xen's xl.
pub const DETACH: u8 = 0x1d;

/// One guest's console, as the backend sees it.
struct Console {
    domain: u16,
    /// Dom0's end of the console's event channel.
    port: u32,
    /// The guest's ring page, mapped until `disconnect`.
    ring: ConsoleRing,
    scrollback: Vec<u8>,
}

static CONSOLES: Mutex<Vec<Console>> = Mutex::new(Vec::new());
/// The domain whose console is attached to the serial line, if any.
static ATTACHED: Mutex<Option<u16>> = Mutex::new(None);
/// How many times the console followed a restarted domain: a restart may
/// reuse the stopped domain's ID, so the ID alone cannot tell them apart.
static FOLLOWS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
/// Keys typed at the attached console that its domain will never read: it
/// stopped with them still in its input ring, or before they were sent.
/// `attach` hands them to the restarted domain it follows, or to the shell.
static UNREAD: Mutex<heapless::Vec<u8, CONSOLE_IN_RING_SIZE>> = Mutex::new(heapless::Vec::new());

/// Takes back the keys still unread in `console`'s input ring (its domain
/// stopped: nobody else will read them) into `UNREAD`.
fn reclaim_input(console: &Console) {
    let ring = &console.ring;
    // The domain stopped, so it no longer moves in_cons, and we own in_prod.
    let (producer, mut consumer) = ring.input_indices();
    let mut unread = UNREAD.lock();
    let count = producer
        .wrapping_sub(consumer)
        .min(CONSOLE_IN_RING_SIZE as u32);
    for _ in 0..count {
        let _ = unread.push(ring.input_byte(consumer));
        consumer = consumer.wrapping_add(1);
    }
    ring.set_input_producer(consumer);
}

/// Connects the backend to a new domain's console. Returns a sentence on
/// failure.
pub fn connect(domain: u16, setup: ConsoleSetup) -> Result<(), &'static str> {
    let port = events::bind_interdomain(domain, setup.port)
        .map_err(|_| "cannot connect to its console channel")?;
    let _ = events::take(port);
    let ring = CONSOLE_RINGS
        .page_for(domain)
        .and_then(|address| ConsoleRing::map(address, setup.mfn, Some(domain)).ok());
    let Some(ring) = ring else {
        let _ = events::close(port);
        return Err("cannot map its console page");
    };
    // The guest only reads `connection`.
    ring.set_connected(true);
    CONSOLES.lock().push(Console {
        domain,
        port,
        ring,
        scrollback: Vec::new(),
    });
    Ok(())
}

/// Disconnects from a domain's console (before it is destroyed: the
/// foreign mapping would keep its page alive).
pub fn disconnect(domain: u16) {
    let mut consoles = CONSOLES.lock();
    let Some(index) = consoles.iter().position(|console| console.domain == domain) else {
        return;
    };
    let console = consoles.remove(index);
    if *ATTACHED.lock() == Some(domain) {
        reclaim_input(&console);
    }
    console.ring.set_connected(false);
    let _ = events::close(console.port);
    console.ring.unmap();
    let mut attached = ATTACHED.lock();
    if *attached == Some(domain) {
        *attached = None;
    }
}

/// Whether one of the consoles signalled (takes the signals).
pub fn take_signals() -> bool {
    let mut any = false;
    for console in CONSOLES.lock().iter() {
        any |= events::take(console.port);
    }
    any
}

/// Copies new output from every ring into its scrollback, and shows the
/// attached domain's on the serial line.
pub fn service() {
    let attached = *ATTACHED.lock();
    let mut consoles = CONSOLES.lock();
    for console in consoles.iter_mut() {
        let ring = &console.ring;
        // The guest moves out_prod, we move out_cons.
        let (producer, mut consumer) = ring.output_indices();
        if producer == consumer {
            continue;
        }
        let start = console.scrollback.len();
        // A guest could claim any producer value: copy at most one ring's worth.
        let available = producer
            .wrapping_sub(consumer)
            .min(CONSOLE_OUT_RING_SIZE as u32);
        for _ in 0..available {
            console.scrollback.push(ring.output_byte(consumer));
            consumer = consumer.wrapping_add(1);
        }
        ring.set_output_consumer(producer);
        let _ = events::send(console.port);
        if attached == Some(console.domain) {
            ConsoleWriter::new().write_raw(&console.scrollback[start..]);
        }
        // Trim a quarter at a time: trimming to the limit on every pass
        // would move 256 KiB for each 2 KiB a flooding guest writes.
        if console.scrollback.len() > SCROLLBACK_LIMIT + SCROLLBACK_LIMIT / 4 {
            let excess = console.scrollback.len() - SCROLLBACK_LIMIT;
            console.scrollback.drain(..excess);
        }
    }
}

/// Puts typed bytes into `domain`'s input ring.
fn send_input(domain: u16, bytes: &[u8]) {
    let consoles = CONSOLES.lock();
    let Some(console) = consoles.iter().find(|console| console.domain == domain) else {
        return;
    };
    let ring = &console.ring;
    // Here we move in_prod, the guest in_cons.
    let (mut producer, consumer) = ring.input_indices();
    for &byte in bytes {
        if producer.wrapping_sub(consumer) as usize >= CONSOLE_IN_RING_SIZE {
            break;
        }
        ring.set_input_byte(producer, byte);
        producer = producer.wrapping_add(1);
    }
    core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
    ring.set_input_producer(producer);
    let _ = events::send(console.port);
}

/// Whether `domain` has a console here.
pub fn has_console(domain: u16) -> bool {
    CONSOLES
        .lock()
        .iter()
        .any(|console| console.domain == domain)
}

/// The domain whose console is attached now, if any.
pub fn attached() -> Option<u16> {
    *ATTACHED.lock()
}

/// Lets go of `domain`'s console if it is the attached one (it stopped);
/// `attach` then returns to the shell, saying why.
pub fn detach(domain: u16) {
    let consoles = CONSOLES.lock();
    let mut attached = ATTACHED.lock();
    if *attached == Some(domain) {
        if let Some(console) = consoles.iter().find(|console| console.domain == domain) {
            reclaim_input(console);
        }
        *attached = None;
    }
}

/// Shows `domain`'s console output live on the serial line, without
/// taking the keyboard (for `bench`, whose guests print their own
/// results); [`detach`] ends it.
pub fn show(domain: u16) {
    *ATTACHED.lock() = Some(domain);
}

/// Attaches the console to `domain`, a restart of the domain that was
/// attached (as Xen's `xl create -c` follows a rebooting guest).
pub fn follow(domain: u16) {
    *ATTACHED.lock() = Some(domain);
    FOLLOWS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    println!("[xl] the console follows the restarted domain (id {domain}); Ctrl-] detaches");
}

/// `xl console`: shows the scrollback, then the live console, forwarding
/// keystrokes, until Ctrl-] or until the domain stops (or follows it when
/// the toolstack restarts it). `wait` sleeps until input or a console
/// signal arrives and reports whether a domain changed state; `running`
/// says whether a domain may still take input.
///
/// Typing is never lost: what is typed once the domain has stopped (before
/// the toolstack acted on it) goes to the restarted domain, or back to the
/// shell.
pub fn attach(domain: u16, mut wait: impl FnMut() -> bool, running: impl Fn(u16) -> bool) {
    service();
    if let Some(console) = CONSOLES
        .lock()
        .iter()
        .find(|console| console.domain == domain)
    {
        ConsoleWriter::new().write_raw(&console.scrollback);
    }
    *ATTACHED.lock() = Some(domain);
    UNREAD.lock().clear();
    let why = loop {
        let Some(current) = attached() else {
            break "the domain stopped";
        };
        if !has_console(current) {
            *ATTACHED.lock() = None;
            break "the domain was destroyed";
        }
        if !running(current) {
            // Stopped (perhaps before we attached): show its last output,
            // then let the toolstack act on it, which detaches, or restarts
            // it and follows.
            service();
            let follows = FOLLOWS.load(core::sync::atomic::Ordering::Relaxed);
            crate::toolstack::watch();
            let followed = FOLLOWS.load(core::sync::atomic::Ordering::Relaxed) != follows;
            if !followed && attached() == Some(current) && !running(current) {
                *ATTACHED.lock() = None;
                break "the domain is not running (it stopped earlier)";
            }
            continue;
        }
        if !UNREAD.lock().is_empty() && running(current) {
            // The restarted domain we follow takes what its previous
            // incarnation left unread.
            let unread = core::mem::take(&mut *UNREAD.lock());
            send_input(current, &unread);
        }
        let mut typed = [0u8; 32];
        let count = guest_kernel::abi::wrappers::console_read(&mut typed).max(0) as usize;
        let typed = &typed[..count];
        let (for_guest, detach_key) = match typed.iter().position(|&byte| byte == DETACH) {
            Some(position) => (&typed[..position], Some(position)),
            None => (typed, None),
        };
        if !for_guest.is_empty() {
            if UNREAD.lock().is_empty() && running(current) {
                send_input(current, for_guest);
            } else {
                // Stopped: keep the keys until we know where they go.
                let mut unread = UNREAD.lock();
                for &byte in for_guest {
                    if unread.push(byte).is_err() {
                        break;
                    }
                }
                drop(unread);
                crate::toolstack::watch();
            }
        }
        if let Some(position) = detach_key {
            crate::keep_typed(&typed[position + 1..]);
            *ATTACHED.lock() = None;
            break "";
        }
        service();
        if count == 0 && wait() {
            crate::toolstack::watch();
        }
    };
    *ATTACHED.lock() = None;
    crate::keep_typed(&core::mem::take(&mut *UNREAD.lock()));
    println!();
    if !why.is_empty() {
        println!("[xl] console detached: {why}");
    }
}
