//! Dom0: the privileged domain's kernel and its shell.
//!
//! Dom0 is a PV guest kernel like any other (it is built on the
//! guest-kernel library) with the privileges of the control domain: it may
//! read the physical console, and call the control hypercalls (`sysctl`,
//! later `domctl`). Here it runs the `dom0# ` shell on the serial console.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt::Write;
use dom0::line_editor::{Event, LineEditor};
use dom0::shell::{self, Command, Debug, ParseError};
use dom0::xl;
use guest_kernel::abi::layout::HYPERVISOR_VIRT_START;
use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::abi::sysctl::{DomainInfo, Sysctl, SysctlGetdomaininfolist, SysctlReadconsole};
use guest_kernel::abi::version::{
    XenVersionOp, XEN_CAPABILITIES_INFO_LEN, XEN_CHANGESET_INFO_LEN, XEN_EXTRAVERSION_LEN,
};
use guest_kernel::abi::{wrappers, XenError};
use guest_kernel::console::ConsoleWriter;
use guest_kernel::{print, println, start, time, StartInfo};

const PROMPT: &str = "dom0# ";

/// Dom0's main function, called by the guest-kernel library.
#[no_mangle]
fn guest_main(start_info: &'static StartInfo) -> ! {
    println!(
        "Dom0: {} MiB, {} files in the ramdisk. Type 'help' for the commands.",
        (start_info.nr_pages * 4096) >> 20,
        ramdisk_files().count()
    );
    let mut editor = LineEditor::new();
    let mut input = Input::default();
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
            }
        };
        run(&line);
    }
}

/// Bytes from the serial console, read through `console_io` in batches.
#[derive(Default)]
struct Input {
    buffer: [u8; 32],
    filled: usize,
    next: usize,
}

impl Input {
    fn next_byte(&mut self) -> u8 {
        while self.next == self.filled {
            let count = wrappers::console_read(&mut self.buffer);
            if count > 0 {
                self.filled = count as usize;
                self.next = 0;
            } else {
                // Nothing typed yet. Without event channels there is no
                // interrupt to wait for, so give the CPU away and poll again.
                wrappers::sched_yield();
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
        Ok(Command::XlList(filter)) => xl_list(filter),
        Ok(Command::XlInfo) => xl_info(),
        Ok(Command::XlDmesg) => xl_dmesg(),
        Ok(Command::Ls(prefix)) => ls(prefix),
        Ok(Command::Cat(file)) => cat(file),
        Ok(Command::Bench) => bench(),
        Ok(Command::Poweroff) => {
            println!("Powering off.");
            guest_kernel::shutdown(ShutdownReason::Poweroff)
        }
        Ok(Command::Reboot) => {
            println!("Rebooting.");
            guest_kernel::shutdown(ShutdownReason::Reboot)
        }
        Ok(Command::Debug(command)) => debug(command),
        Err(ParseError::Unknown(word)) => {
            println!("dom0: unknown command '{word}' (type 'help' for the list)")
        }
        Err(ParseError::Usage(usage)) => println!("{usage}"),
    }
}

/// Says what a failed hypercall means, in words.
fn explain(what: &str, result: i64) {
    match XenError::from_return(result) {
        Some(error) => println!("{what} failed: {} ({})", error.description(), error.name()),
        None => println!("{what} failed with {result}"),
    }
}

/// Makes a sysctl; `Err` holds the raw (negative) result.
fn sysctl(request: &mut Sysctl) -> Result<(), i64> {
    // SAFETY: the request and any buffer it names are Dom0's own memory,
    // valid for the whole call.
    match unsafe { wrappers::sysctl(request) } {
        0 => Ok(()),
        error => Err(error),
    }
}

fn domain_infos() -> Result<Vec<DomainInfo>, i64> {
    let mut infos = alloc::vec![DomainInfo::default(); 64];
    let mut request = Sysctl::getdomaininfolist(SysctlGetdomaininfolist {
        first_domain: 0,
        max_domains: infos.len() as u32,
        buffer: infos.as_mut_ptr() as u64,
        ..Default::default()
    });
    sysctl(&mut request)?;
    infos.truncate(request.getdomaininfolist_payload().num_domains as usize);
    Ok(infos)
}

fn xl_list(filter: Option<&str>) {
    let infos = match domain_infos() {
        Ok(infos) => infos,
        Err(error) => return explain("xl list: reading the domain list", error),
    };
    let matches = |info: &DomainInfo| {
        let Some(wanted) = filter else { return true };
        let mut name = heapless::String::<40>::new();
        let _ = xl::domain_name(info.domid, &mut name);
        name == wanted || wanted.parse::<u16>() == Ok(info.domid)
    };
    let selected: Vec<&DomainInfo> = infos.iter().filter(|info| matches(info)).collect();
    if selected.is_empty() {
        println!(
            "xl list: no domain is called '{}' (xl list shows them all)",
            filter.unwrap_or("")
        );
        return;
    }
    let mut out = ConsoleWriter::new();
    let _ = xl::write_list_header(&mut out);
    for info in selected {
        let _ = xl::write_list_row(&mut out, info);
    }
}

/// Reads a NUL-padded string from `xen_version`.
fn version_text<const N: usize>(operation: XenVersionOp, buffer: &mut [u8; N]) -> &str {
    // SAFETY: the buffer has the size the operation writes.
    let result = unsafe { wrappers::xen_version(operation, buffer.as_mut_ptr()) };
    if result < 0 {
        return "(unavailable)";
    }
    let length = buffer.iter().position(|&byte| byte == 0).unwrap_or(N);
    core::str::from_utf8(&buffer[..length]).unwrap_or("(not text)")
}

fn xl_info() {
    let mut request = Sysctl::physinfo();
    if let Err(error) = sysctl(&mut request) {
        return explain("xl info: reading the host's facts", error);
    }
    let version = wrappers::xen_version_number();
    let mut extra = [0u8; XEN_EXTRAVERSION_LEN];
    let mut caps = [0u8; XEN_CAPABILITIES_INFO_LEN];
    let mut changeset = [0u8; XEN_CHANGESET_INFO_LEN];
    // SAFETY: XENVER_pagesize takes no buffer.
    let pagesize = unsafe { wrappers::xen_version(XenVersionOp::Pagesize, core::ptr::null_mut()) };
    let info = xl::HostInfo {
        physinfo: *request.physinfo_payload(),
        xen_major: (version >> 16) as u32,
        xen_minor: (version & 0xffff) as u32,
        xen_extra: version_text(XenVersionOp::Extraversion, &mut extra),
        xen_caps: version_text(XenVersionOp::Capabilities, &mut caps),
        xen_changeset: version_text(XenVersionOp::Changeset, &mut changeset),
        virt_start: HYPERVISOR_VIRT_START,
        pagesize: pagesize as u64,
    };
    let _ = xl::write_info(&mut ConsoleWriter::new(), &info);
}

fn xl_dmesg() {
    let mut buffer = [0u8; 1024];
    let mut index = 0u32;
    loop {
        let mut request = Sysctl::readconsole(SysctlReadconsole {
            incremental: 1,
            index,
            buffer: buffer.as_mut_ptr() as u64,
            count: buffer.len() as u32,
            ..Default::default()
        });
        if let Err(error) = sysctl(&mut request) {
            return explain("xl dmesg: reading the hypervisor's log", error);
        }
        let payload = request.readconsole_payload();
        if payload.count == 0 {
            break;
        }
        let text = core::str::from_utf8(&buffer[..payload.count as usize])
            .unwrap_or("(log is not text)\n");
        let _ = ConsoleWriter::new().write_str(text);
        index = payload.index;
    }
}

/// Dom0's ramdisk, where the builder put it.
fn ramdisk() -> &'static [u8] {
    let info = start::start_info();
    if info.mod_start == 0 || info.mod_len == 0 {
        return &[];
    }
    // SAFETY: the builder mapped the ramdisk at mod_start (a virtual
    // address, since SIF_MOD_START_PFN is clear) for mod_len bytes, inside
    // the start-of-day region that stays mapped.
    unsafe { core::slice::from_raw_parts(info.mod_start as *const u8, info.mod_len as usize) }
}

/// The regular files of the ramdisk (a ustar archive).
fn ramdisk_files() -> impl Iterator<Item = (heapless::String<100>, &'static [u8])> {
    let archive = tar_no_std::TarArchiveRef::new(ramdisk()).ok();
    archive.into_iter().flat_map(|archive| {
        archive.entries().filter_map(|entry| {
            let name = entry.filename();
            let name = name.as_str().ok()?;
            Some((heapless::String::try_from(name).ok()?, entry.data()))
        })
    })
}

fn ls(prefix: Option<&str>) {
    let mut shown = 0;
    for (name, data) in ramdisk_files() {
        if prefix.is_none_or(|prefix| name.starts_with(prefix.trim_start_matches('/'))) {
            println!("{:>9}  /{}", data.len(), name);
            shown += 1;
        }
    }
    if shown == 0 {
        println!(
            "ls: no files{}",
            if prefix.is_some() {
                " under that prefix"
            } else {
                " in the ramdisk"
            }
        );
    }
}

fn cat(file: &str) {
    let wanted = file.trim_start_matches('/');
    match ramdisk_files().find(|(name, _)| name == wanted) {
        Some((_, data)) => match core::str::from_utf8(data) {
            Ok(text) => print!("{text}"),
            Err(_) => println!("cat: /{wanted} is not text ({} bytes)", data.len()),
        },
        None => println!("cat: no file /{wanted} in the ramdisk ('ls' lists them)"),
    }
}

/// Iterations per benchmark.
const BENCH_ITERATIONS: usize = 20_000;

/// Times `operation` once per iteration; returns (median, minimum) cycles.
fn measure(mut operation: impl FnMut()) -> (u64, u64) {
    let mut samples = alloc::vec![0u64; BENCH_ITERATIONS];
    for _ in 0..100 {
        operation(); // warm up
    }
    for sample in samples.iter_mut() {
        let start = time::rdtsc();
        operation();
        *sample = time::rdtsc() - start;
    }
    samples.sort_unstable();
    (samples[samples.len() / 2], samples[0])
}

fn report(name: &str, (median, minimum): (u64, u64)) {
    println!("bench: {name} median={median} min={minimum} iterations={BENCH_ITERATIONS}");
}

fn bench() {
    // The floor: a bare syscall/sysretq round trip into an empty handler.
    if let Err(error) = sysctl(&mut Sysctl::bench_syscall_floor(true)) {
        return explain("bench: switching to the empty syscall handler", error);
    }
    let floor = measure(|| {
        // SAFETY: in floor mode every syscall except sysctl returns at once
        // without touching anything; rax 0 is not sysctl.
        unsafe { wrappers::hypercall0_raw(0) };
    });
    if let Err(error) = sysctl(&mut Sysctl::bench_syscall_floor(false)) {
        return explain("bench: switching back to the real syscall handler", error);
    }
    report("syscall_floor", floor);
    report(
        "null_hypercall",
        measure(|| {
            wrappers::xen_version_number();
        }),
    );
    println!("bench: done");
}

fn debug(command: Debug) {
    match command {
        Debug::PageFault => {
            println!("Reading the unmapped address 0xdead0000...");
            // SAFETY: none: this is the point. The read faults, the
            // hypervisor bounces the page fault to our handler, which
            // reports it and crashes the domain.
            let value = unsafe { core::ptr::read_volatile(0xdead_0000 as *const u64) };
            println!("unexpectedly read {value:#x}");
        }
        Debug::NoHandler => {
            let result = guest_kernel::traps::clear();
            println!("Trap table cleared ({result}); reading the unmapped address 0xdead0000...");
            // SAFETY: none, as above; with no handler the hypervisor
            // crashes the domain itself.
            let value = unsafe { core::ptr::read_volatile(0xdead_0000 as *const u64) };
            println!("unexpectedly read {value:#x}");
        }
        Debug::Privileged => {
            println!("Executing hlt in ring 3...");
            // SAFETY: hlt is privileged: in ring 3 it raises #GP, which is
            // the point; it touches no memory.
            unsafe { core::arch::asm!("hlt", options(nomem, nostack)) };
            println!("unexpectedly survived hlt");
        }
        Debug::Breakpoint => {
            // SAFETY: int3 raises #BP, which our trap table handles and
            // returns from with the iret hypercall; no state is changed.
            unsafe { core::arch::asm!("int3", options(nomem, nostack)) };
            println!("back from the breakpoint handler");
        }
        Debug::Hypercall(number) => {
            // SAFETY: the hypercall gets no arguments; a hypercall that
            // needs a pointer will see 0 and fail with -EFAULT.
            let result = unsafe { wrappers::hypercall0_raw(number) };
            match XenError::from_return(result) {
                Some(error) => println!(
                    "hypercall {number} returned {result} ({}: {})",
                    error.name(),
                    error.description()
                ),
                None => println!("hypercall {number} returned {result}"),
            }
        }
        Debug::CommandLine => println!("{}", start::command_line()),
    }
}
