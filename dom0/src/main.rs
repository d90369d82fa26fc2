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
use guest_kernel::abi::hypercall::Hypercall;
use guest_kernel::abi::layout::HYPERVISOR_VIRT_START;
use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::abi::sysctl::{DomainInfo, Sysctl, SysctlGetdomaininfolist, SysctlReadconsole};
use guest_kernel::abi::version::{
    XenVersionOp, XEN_CAPABILITIES_INFO_LEN, XEN_CHANGESET_INFO_LEN, XEN_EXTRAVERSION_LEN,
};
use guest_kernel::abi::{wrappers, MulticallEntry, XenError};
use guest_kernel::console::ConsoleWriter;
use guest_kernel::{paging, print, println, start, time, StartInfo};

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

fn report(name: &str, (median, minimum): (u64, u64), extra: &str) {
    println!("bench: {name} median={median} min={minimum} iterations={BENCH_ITERATIONS}{extra}");
}

/// Reports a per-item cost derived from a batch's timing.
fn report_per(name: &str, (median, minimum): (u64, u64), items: u64, extra: &str) {
    report(name, (median / items, minimum / items), extra);
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
    report("syscall_floor", floor, "");
    report(
        "null_hypercall",
        measure(|| {
            wrappers::xen_version_number();
        }),
        "",
    );
    let mut calls = [MulticallEntry {
        op: Hypercall::XenVersion as u64,
        ..MulticallEntry::default()
    }; 32];
    let batch = measure(|| {
        // SAFETY: 32 xen_version entries that take no pointers.
        unsafe { wrappers::hypercall2(Hypercall::Multicall, calls.as_mut_ptr() as u64, 32) };
    });
    report("multicall_32_null", batch, "");
    report_per("multicall_per_entry", batch, 32, "");
    if let Err(error) = bench_paging() {
        println!("bench: paging benchmarks skipped: {error:?}");
    }
    println!("bench: done");
}

/// Where the paging benchmarks map their pages.
const BENCH_AREA: u64 = 0xffff_d100_0000_0000;

fn bench_paging() -> Result<(), paging::PagingError> {
    let mut native = Sysctl::bench_native(BENCH_ITERATIONS as u32);
    sysctl(&mut native).map_err(paging::PagingError::Refused)?;
    let native = *native.bench_native_payload();
    let pte_native = (native.pte_write_cycles, native.pte_write_min);
    let cr3_native = (native.cr3_write_cycles, native.cr3_write_min);
    report("native_pte_write_invlpg", pte_native, "");
    report("native_cr3_write", cr3_native, "");

    // 64 pages to remap back and forth; their L1 takes the batches.
    paging::map_fresh_pages(BENCH_AREA, 64)?;
    let l1 = paging::l1_table(BENCH_AREA).ok_or(paging::PagingError::Refused(-22))?;
    let frames: Vec<u64> = (0..64)
        .map(|page| paging::read_entry(l1, page) & !0xfff & 0x000f_ffff_ffff_ffff)
        .collect();
    let flags = paging::PRESENT | paging::WRITABLE | paging::USER | paging::NO_EXECUTE;
    let mut turn = 0usize;
    report(
        "update_va_mapping",
        measure(|| {
            turn += 1;
            let _ = paging::set_pte(BENCH_AREA, frames[turn & 1] | flags);
        }),
        " native=native_pte_write_invlpg",
    );
    let entry = |page: usize| l1 * paging::PAGE_SIZE + page as u64 * 8;
    report(
        "mmu_update_1",
        measure(|| {
            turn += 1;
            let _ = paging::write_entries(&[(entry(0), frames[turn & 1] | flags)]);
        }),
        " native=native_pte_write_invlpg",
    );
    let mut batch = [(0u64, 0u64); 64];
    let timing = measure(|| {
        turn += 1;
        for (page, request) in batch.iter_mut().enumerate() {
            *request = (entry(page), frames[(page + turn) % 64] | flags);
        }
        let _ = paging::write_entries(&batch);
    });
    report("mmu_update_64", timing, "");
    report_per(
        "mmu_update_64_per_pte",
        timing,
        64,
        " native=native_pte_write_invlpg",
    );

    // Pin and unpin of an empty L1 (a fresh frame no one maps).
    let table = paging::pfn_to_mfn(paging::allocate_frame()?);
    paging::clear_frame(table)?;
    let mut unpin_samples = Vec::with_capacity(BENCH_ITERATIONS);
    let pin = measure(|| {
        let _ = paging::pin(table, 1);
        let start = time::rdtsc();
        let _ = paging::unpin(table);
        unpin_samples.push(time::rdtsc() - start);
    });
    report("pin_l1", pin, "");
    unpin_samples.sort_unstable();
    report(
        "unpin_l1",
        (unpin_samples[unpin_samples.len() / 2], unpin_samples[0]),
        "",
    );

    // NEW_BASEPTR between the current root and a copy of it.
    let root = paging::current_root();
    let copy = paging::pfn_to_mfn(paging::allocate_frame()?);
    paging::clear_frame(copy)?;
    paging::pin(copy, 4)?;
    let mut requests = Vec::new();
    for slot in (0..256).chain(272..512) {
        let value = paging::read_entry(root, slot);
        if value & paging::PRESENT != 0 {
            requests.push((copy * paging::PAGE_SIZE + slot * 8, value));
        }
    }
    paging::write_entries(&requests)?;
    let roots = [copy, root];
    report(
        "new_baseptr",
        measure(|| {
            turn += 1;
            let _ = paging::switch_root(roots[turn & 1]);
        }),
        " native=native_cr3_write",
    );
    paging::switch_root(root)?;
    Ok(())
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
        Debug::Heap(mebibytes) => {
            let before = guest_kernel::heap::size();
            let bytes = (mebibytes << 20) as usize;
            let mut block: Vec<u8> = Vec::new();
            if block.try_reserve_exact(bytes).is_err() {
                println!(
                    "could not allocate {mebibytes} MiB: {} free frames ({} MiB) are left",
                    paging::free_frames(),
                    paging::free_frames() >> 8
                );
                return;
            }
            block.resize(bytes, 0xa5);
            let intact = block.iter().all(|&byte| byte == 0xa5);
            println!(
                "heap grew from {} KiB to {} KiB; {mebibytes} MiB allocated, written and read back {}",
                before >> 10,
                guest_kernel::heap::size() >> 10,
                if intact { "intact" } else { "CORRUPTED" }
            );
        }
    }
}
