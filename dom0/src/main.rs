//! Dom0: the privileged domain's kernel and its shell.
//!
//! Dom0 is a PV guest kernel like any other (it is built on the
//! guest-kernel library) with the privileges of the control domain: it may
//! read the physical console, and call the control hypercalls (`sysctl`
//! and `domctl`). Here it runs the `dom0# ` shell on the serial console.
//!
//! Dom0's raw operations live in [`sys`], the one module allowed `unsafe`;
//! every other module says `#![forbid(unsafe_code)]`.
#![no_std]
#![no_main]
// `unsafe` is denied here and allowed only in `sys` (see its comment).
#![deny(unsafe_code)]

extern crate alloc;

mod areas;
mod bench;
mod builder;
mod consoles;
mod control;
mod debug;
mod files;
// The one module of raw operations, allowed `unsafe` so that no other
// module needs it (each of them forbids it).
#[allow(unsafe_code)]
mod sys;
mod toolstack;
mod xenstored;

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};
use dom0::line_editor::{Event, LineEditor};
use dom0::shell::{self, Command};
use dom0::xl;
use guest_kernel::abi::event_channel::{VIRQ_CONSOLE, VIRQ_DOM_EXC};
use guest_kernel::abi::layout::HYPERVISOR_VIRT_START;
use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::abi::sysctl::Sysctl;
use guest_kernel::abi::version::{
    XenVersionOp, XEN_CAPABILITIES_INFO_LEN, XEN_CHANGESET_INFO_LEN, XEN_EXTRAVERSION_LEN,
};
use guest_kernel::abi::wrappers;
use guest_kernel::console::ConsoleWriter;
use guest_kernel::sys::hypercalls::xen_version_into;
use guest_kernel::{events, print, println, StartInfo};

const PROMPT: &str = "dom0# ";

guest_kernel::guest_main!(dom0_main);

/// Dom0's main function, called by the guest-kernel library.
fn dom0_main(start_info: &'static StartInfo) -> ! {
    println!(
        "Dom0: {} MiB, {} files in the ramdisk. Type 'help' for the commands.",
        (start_info.nr_pages * 4096) >> 20,
        files::ramdisk_files().count()
    );
    let mut editor = LineEditor::new();
    let mut input = Input::new();
    loop {
        print!("{PROMPT}");
        let line = loop {
            let byte = input.next_byte();
            let mut out = ConsoleWriter::new();
            match editor.feed(byte) {
                Event::None => {}
                Event::Echo(bytes) => out.write_raw(bytes),
                Event::EchoChar(byte) => out.write_raw(&[byte]),
                Event::Cancel => {
                    out.write_raw(b"^C\r\n");
                    out.write_raw(PROMPT.as_bytes());
                }
                Event::Line(line) => {
                    out.write_raw(b"\r\n");
                    break line;
                }
                Event::Refused(why) => {
                    out.write_raw(b"\r\n");
                    out.write_raw(why.as_bytes());
                    out.write_raw(b"\r\n");
                    out.write_raw(PROMPT.as_bytes());
                }
            }
        };
        run(&line);
    }
}

/// Dom0's ends of `VIRQ_CONSOLE` (input is waiting on the serial line)
/// and `VIRQ_DOM_EXC` (a domain shut down or crashed); 0 when not bound.
static CONSOLE_VIRQ: AtomicU32 = AtomicU32::new(0);
static DOMAIN_VIRQ: AtomicU32 = AtomicU32::new(0);

/// Sleeps until something needs Dom0: typed input, a guest console's
/// output, or a domain that stopped. Services the guest consoles, and
/// returns whether a domain changed state. Without events it just yields.
pub fn wait_for_activity() -> bool {
    let (console, domains) = (
        CONSOLE_VIRQ.load(Ordering::Relaxed),
        DOMAIN_VIRQ.load(Ordering::Relaxed),
    );
    if console == 0 || domains == 0 {
        wrappers::sched_yield();
        consoles::service();
        xenstored::service();
        return true;
    }
    let mut domain_event = false;
    events::wait_until(|| {
        let typed = events::take(console);
        domain_event |= events::take(domains);
        let output = consoles::take_signals();
        let store = xenstored::take_signals();
        typed || domain_event || output || store
    });
    consoles::service();
    xenstored::service();
    domain_event
}

/// Keys typed while a command ran (or after Ctrl-] in `xl console`), kept
/// for the shell's next line instead of being lost.
static TYPED_AHEAD: spin::Mutex<heapless::Deque<u8, 256>> =
    spin::Mutex::new(heapless::Deque::new());

/// Keeps `bytes` for the shell to read next (beyond 256 the rest are
/// dropped: nobody types that much ahead).
pub fn keep_typed(bytes: &[u8]) {
    let mut ahead = TYPED_AHEAD.lock();
    for &byte in bytes {
        if ahead.push_back(byte).is_err() {
            break;
        }
    }
}

fn take_typed() -> Option<u8> {
    TYPED_AHEAD.lock().pop_front()
}

/// Whether Ctrl-C was typed, for long commands that stop on it (`debug
/// cycles`, `xl top`). Other keys typed meanwhile are kept for the shell.
pub fn interrupted() -> bool {
    let mut typed = [0u8; 32];
    let count = wrappers::console_read(&mut typed).max(0) as usize;
    match typed[..count].iter().position(|&byte| byte == 0x03) {
        Some(position) => {
            keep_typed(&typed[position + 1..count]);
            true
        }
        None => {
            keep_typed(&typed[..count]);
            false
        }
    }
}

/// Bytes from the serial console, read through `console_io` in batches.
/// While nothing is typed, Dom0 sleeps in `wait_for_activity`, acting on
/// stopped domains and guest console output as they come.
struct Input {
    buffer: [u8; 32],
    filled: usize,
    next: usize,
}

impl Input {
    fn new() -> Self {
        if let (Ok(console), Ok(domains)) = (
            events::bind_virq(VIRQ_CONSOLE),
            events::bind_virq(VIRQ_DOM_EXC),
        ) {
            CONSOLE_VIRQ.store(console, Ordering::Relaxed);
            DOMAIN_VIRQ.store(domains, Ordering::Relaxed);
        }
        Self {
            buffer: [0; 32],
            filled: 0,
            next: 0,
        }
    }

    fn next_byte(&mut self) -> u8 {
        if let Some(byte) = take_typed() {
            return byte;
        }
        while self.next == self.filled {
            let count = wrappers::console_read(&mut self.buffer);
            if count > 0 {
                self.filled = count as usize;
                self.next = 0;
                break;
            }
            if wait_for_activity() {
                toolstack::watch();
            }
        }
        self.next += 1;
        self.buffer[self.next - 1]
    }
}

fn run(line: &str) {
    match shell::parse(line) {
        Ok(Command::Nothing) => {}
        Ok(Command::Help) => print!("{}", shell::HELP),
        Ok(Command::XlList(filter)) => toolstack::list(filter),
        Ok(Command::XlCreate {
            file,
            paused,
            attach,
            overrides,
        }) => toolstack::create(file, paused, attach, &overrides),
        Ok(Command::XlConsole(domain)) => toolstack::console(domain),
        Ok(Command::XlDestroy(domain)) => toolstack::destroy(domain),
        Ok(Command::XlPause(domain)) => toolstack::pause(domain, true),
        Ok(Command::XlUnpause(domain)) => toolstack::pause(domain, false),
        Ok(Command::XlShutdown(domain)) => toolstack::shutdown(domain, false),
        Ok(Command::XlReboot(domain)) => toolstack::shutdown(domain, true),
        Ok(Command::XlSchedCredit {
            domain,
            weight,
            cap,
        }) => toolstack::sched_credit(domain, weight, cap),
        Ok(Command::XlVcpuList) => toolstack::vcpu_list(),
        Ok(Command::XlTop) => toolstack::top(),
        Ok(Command::XlInfo) => xl_info(),
        Ok(Command::XlDmesg(clear)) => xl_dmesg(clear),
        Ok(Command::Ls(prefix)) => files::ls(prefix),
        Ok(Command::Cat(file)) => files::cat(file),
        Ok(Command::Bench) => bench::bench(),
        Ok(Command::Date) => {
            let now = guest_kernel::time::wallclock_ns();
            let (year, month, day, hour, minute, second) =
                dom0::calendar::civil_from_unix(now / 1_000_000_000);
            println!(
                "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC (system time {}.{:03} s)",
                guest_kernel::time::system_time_ns() / 1_000_000_000,
                guest_kernel::time::system_time_ns() / 1_000_000 % 1000
            );
        }
        Ok(Command::Poweroff) => {
            println!("Powering off.");
            guest_kernel::shutdown(ShutdownReason::Poweroff)
        }
        Ok(Command::Reboot) => {
            println!("Rebooting.");
            guest_kernel::shutdown(ShutdownReason::Reboot)
        }
        Ok(Command::Debug(command)) => debug::debug(command),
        Ok(Command::XenstoreLs(path)) => xenstored::ls(path),
        Ok(Command::XenstoreRead(path)) => xenstored::read(path),
        Ok(Command::XenstoreWrite(path, value)) => xenstored::write(path, value),
        Ok(Command::XenstoreRm(path)) => xenstored::remove(path),
        Ok(Command::XenstoreList(path)) => xenstored::list(path),
        Ok(Command::XenstoreWatch(path)) => xenstored::watch(path),
        Err(error) => println!("{error}"),
    }
}

/// Reads a NUL-padded string from `xen_version`.
fn version_text<const N: usize>(operation: XenVersionOp, buffer: &mut [u8; N]) -> &str {
    if xen_version_into(operation, buffer) < 0 {
        return "(unavailable)";
    }
    let length = buffer.iter().position(|&byte| byte == 0).unwrap_or(N);
    core::str::from_utf8(&buffer[..length]).unwrap_or("(not text)")
}

fn xl_info() {
    let mut request = Sysctl::physinfo();
    if let Err(error) = control::sysctl(&mut request) {
        return control::explain("xl info: reading the host's facts", error);
    }
    let version = wrappers::xen_version_number();
    let mut extra = [0u8; XEN_EXTRAVERSION_LEN];
    let mut caps = [0u8; XEN_CAPABILITIES_INFO_LEN];
    let mut changeset = [0u8; XEN_CHANGESET_INFO_LEN];
    let pagesize = xen_version_into(XenVersionOp::Pagesize, &mut []);
    let info = xl::HostInfo {
        physinfo: *request.physinfo_payload(),
        xen_major: (version >> 16) as u32,
        xen_minor: (version & 0xffff) as u32,
        xen_extra: version_text(XenVersionOp::Extraversion, &mut extra),
        xen_caps: version_text(XenVersionOp::Capabilities, &mut caps),
        xen_changeset: version_text(XenVersionOp::Changeset, &mut changeset),
        virt_start: HYPERVISOR_VIRT_START,
        pagesize: pagesize as u64,
        scheduler: "credit",
    };
    let _ = xl::write_info(&mut ConsoleWriter::new(), &info);
}

fn xl_dmesg(clear: bool) {
    let mut buffer = [0u8; 1024];
    let mut index = 0u32;
    loop {
        // With `-c` every read also forgets what it returned, so a line
        // logged while we print stays in the ring for the next `xl dmesg`.
        let (count, next) = match sys::control::readconsole(&mut buffer, clear, index) {
            Ok(read) => read,
            Err(error) => return control::explain("xl dmesg: reading the hypervisor's log", error),
        };
        if count == 0 {
            break;
        }
        let text = core::str::from_utf8(&buffer[..count]).unwrap_or("(log is not text)\n");
        let _ = ConsoleWriter::new().write_str(text);
        index = next;
    }
}
