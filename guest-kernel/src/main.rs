//! The DomU kernel: a small PV guest built on the guest-kernel library.
//!
//! What it does is chosen by `workload=` on its command line (the `cmdline`
//! of its domain configuration):
//!
//! - `hello` (the default): greets, says what the builder gave it, powers off;
//! - `counter`: CPU-bound, prints a numbered tick about every half second
//!   (by its TSC) until it is shut down or destroyed;
//! - `crash`: drops its trap table and touches address 0, so the hypervisor
//!   finds no handler and crashes it (what a kernel bug looks like);
//! - `probe`: tries the control domain's hypercalls, which an unprivileged
//!   guest must be refused (`-EPERM`), reports, keeps running briefly, and
//!   powers off;
//! - `sensitive`: runs x86's sensitive instructions in ring 3 and prints
//!   which trapped and what each saw (`sensitive.rs`);
//! - `iopl`: asks for I/O privilege (`PHYSDEVOP_set_iopl` 3), which a DomU
//!   is given for its own kernel's sake but which reaches no port: prints
//!   what its port reads saw (all ones) and that its writes went nowhere;
//! - `clock`: prints the time of day (Unix seconds) about every second;
//! - `sleeper`: sleeps (blocked) and wakes once a second, doing nothing;
//! - `burn`: CPU-bound and silent (for weights and caps);
//! - `echo`: reads lines typed at its console (`xl console echo`) and
//!   answers each;
//! - `pong peer=D` and `ping peer=D port=P rounds=N`: two guests bounce an
//!   event back and forth over an interdomain event channel (pong offers
//!   the port, ping connects to it) and ping reports the round-trip time;
//! - `grant-share role=granter peer=M ref=R` and `grant-share role=mapper
//!   peer=G ref=R [hold=1]`: two guests share a page by grant, see each
//!   other's writes, and check that a mapped grant cannot be revoked
//!   (`grant_share.rs`); `grant-bench self=D`: times grant map + unmap and
//!   grant copy against baselines (D: its own domain ID);
//! - `flood`: floods the hypervisor's log with refused hypercalls and
//!   `console_io` lines, to check the rate limits (`flood.rs`);
//! - `pinstorm operations=N`: builds a 511-L1 page-table tree and pins and
//!   unpins it N times (4,096 unless said) in one `mmuext_op` call, in a
//!   loop (the attack of issue 19, which hypercall continuations keep from
//!   holding the CPU; `pinstorm.rs`);
//! - `first-line` and `spin`: for `bench` (time to the first line; a guest
//!   that runs without doing anything);
//! - `user`: runs tiny programs in guest user mode that make system calls
//!   into this kernel, and checks what user mode may not do;
//!   `user-noncanonical-iret` enters user mode at a non-canonical address
//!   and must get the `#GP` from user mode there (`user.rs`);
//! - `attack-KIND`: hands the hypervisor a crafted frame or entry point and
//!   must be crashed by it (the kinds are listed in `attacks.rs`);
//! - `xenstore other=D`: reads its own name from the config store, is
//!   refused domain D's, writes `data/greeting`, counts in a transaction and
//!   prints the events of a watch on `data/message` (`store_client.rs`);
//! - `store-bench rounds=N`: times a store read of its own name, a write,
//!   and a write of a watched node until its watch event arrives, beside
//!   the null hypercall, for `bench` (`store_bench.rs`);
//! - `store-flood`: floods the config store until its quotas refuse, then
//!   holds what it got (`store_flood.rs`);
//! - `fuzz seed=N count=M`: makes M random hypercalls, tries to make the
//!   hypervisor fall over, reports and powers off (see `fuzz.rs`);
//! - `grant-flood`: makes the hypervisor spend all the heap that the grant
//!   interface lets one domain spend (active entries, maptrack), then holds
//!   it (see `grant_flood.rs`).
//!
//! Every workload but `store-flood` watches `control/shutdown` in the
//! config store from its first step (`guest_kernel::control`), so that `xl
//! shutdown` and `xl reboot` reach it.
//!
//! Words are separated by spaces or commas (an `xl create` override cannot
//! hold spaces: `cmdline=workload=fuzz,seed=7`).
#![no_std]
#![no_main]
// Every raw operation of this binary goes through `guest_kernel::sys`
// (its attacks through `guest_kernel::sys::raw`).
#![forbid(unsafe_code)]

extern crate alloc;

mod attacks;
mod flood;
mod fuzz;
mod grant_flood;
mod grant_share;
mod pinstorm;
mod sensitive;
mod store_bench;
mod store_client;
mod store_flood;
mod user;

use guest_kernel::abi::domctl::{Domctl, DomctlOp};
use guest_kernel::abi::mmu::{MmuUpdate, MmuUpdateKind};
use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::abi::sysctl::Sysctl;
use guest_kernel::abi::{wrappers, XenError};
use guest_kernel::sys::{hypercalls, raw};
use guest_kernel::{events, paging, println, start, time, traps, StartInfo};

guest_kernel::guest_main!(domu_main);

/// The guest's main function, called by the library once it is set up.
fn domu_main(start_info: &'static StartInfo) -> ! {
    let line = start::command_line();
    let workload = line
        .split(|c: char| c.is_ascii_whitespace() || c == ',')
        .find_map(|word| word.strip_prefix("workload="))
        .unwrap_or("hello");
    // As a Xen PV kernel does from start of day: watch control/shutdown,
    // so that `xl shutdown` and `xl reboot` reach us whatever the workload
    // does. The store flooder is the exception: an attacker that ignores
    // the toolstack (it never announces control/feature-poweroff, so `xl
    // shutdown` says to use `xl destroy`), and whose watch quota must be
    // all its own.
    if workload != "store-flood" {
        if let Err(error) = guest_kernel::control::start() {
            println!("control: no control/shutdown watch ({error}): only 'xl destroy' can stop this guest");
        }
    }
    match workload {
        "hello" => {
            println!(
                "Hello from a PV guest: {} MiB, command line \"{line}\"",
                (start_info.nr_pages * 4096) >> 20
            );
            guest_kernel::shutdown(ShutdownReason::Poweroff)
        }
        "counter" => counter(),
        "pinstorm" => pinstorm::run(line),
        "crash" => crash(),
        "flood" => flood::flood(line),
        "grant-flood" => grant_flood::run(),
        "probe" => probe(),
        "sensitive" => sensitive::sensitive(),
        "iopl" => iopl(),
        "fuzz" => fuzz::run(line),
        "xenstore" => store_client::run(line),
        "store-flood" => store_flood::run(),
        "store-bench" => store_bench::run(line),
        "grant-share" => grant_share::run(line),
        "grant-bench" => grant_share::bench(line),
        "first-line" => {
            // For the benchmark: Dom0 put the TSC at `xl create` time on our
            // command line; the difference is create-to-first-line.
            let start: u64 = line
                .split_ascii_whitespace()
                .find_map(|word| word.strip_prefix("start_tsc="))
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            let cycles = time::rdtsc().saturating_sub(start);
            println!("bench: create_to_first_line median={cycles} min={cycles} iterations=1");
            guest_kernel::shutdown(ShutdownReason::Poweroff)
        }
        "clock" => loop {
            // Prints the time of day about every second, sleeping between.
            println!("clock: unix time {}", time::wallclock_ns() / 1_000_000_000);
            time::sleep(1_000_000_000);
        },
        "echo" => echo(),
        "burn" => loop {
            // CPU-bound and silent: for watching the scheduler share the CPU.
            core::hint::black_box(time::rdtsc());
        },
        "pong" => pong(line),
        "ping" => ping(line),
        "sleeper" => loop {
            // Blocked nearly all the time: wakes once a second, does nothing.
            time::sleep(1_000_000_000);
        },
        "spin" => loop {
            // Runs, silently, giving the CPU away at once (for counting
            // how many guests fit).
            wrappers::sched_yield();
        },
        user if user == "user" || user.starts_with("user-") => user::run(user, line),
        attack if attack.starts_with("attack-") => attacks::run(&attack["attack-".len()..]),
        other => {
            println!(
                "unknown workload '{other}' (see guest-kernel/src/main.rs for the list): stopping"
            );
            guest_kernel::shutdown(ShutdownReason::Crash)
        }
    }
}

/// Busy work with a progress line every ~0.5 s of TSC time.
fn counter() -> ! {
    const CYCLES_PER_TICK: u64 = 1_300_000_000;
    let mut tick = 0u64;
    let mut next = time::rdtsc() + CYCLES_PER_TICK;
    let mut work = 0u64;
    loop {
        work = work.wrapping_mul(6364136223846793005).wrapping_add(1);
        if time::rdtsc() >= next {
            tick += 1;
            println!("counter: tick {tick}");
            next += CYCLES_PER_TICK;
        }
        core::hint::black_box(work);
    }
}

fn crash() -> ! {
    println!("crash: dropping the trap table and touching address 0");
    traps::clear();
    // The fault is the point: with no handler, the hypervisor crashes this
    // domain.
    let value = raw::read_u64(0);
    println!("crash: unexpectedly survived ({value})");
    guest_kernel::shutdown(ShutdownReason::Crash)
}

fn describe(result: i64) -> &'static str {
    XenError::from_return(result).map_or("succeeded", XenError::name)
}

/// Tries what only the control domain may do.
fn probe() -> ! {
    let mut create = Domctl::new(DomctlOp::CreateDomain, 0);
    let result = raw::domctl(&mut create);
    println!(
        "probe: domctl createdomain returned {result} ({})",
        describe(result)
    );
    let mut destroy = Domctl::new(DomctlOp::DestroyDomain, 0);
    let result = raw::domctl(&mut destroy);
    println!(
        "probe: domctl destroydomain of Domain-0 returned {result} ({})",
        describe(result)
    );
    let mut info = Sysctl::physinfo();
    let result = raw::sysctl(&mut info);
    println!(
        "probe: sysctl physinfo returned {result} ({})",
        describe(result)
    );
    // Map a frame of Domain-0 (a foreign mapping) into our own L1.
    let scratch = 0xffff_d000_0000_0000;
    let own = paging::pfn_to_mfn(paging::allocate_frame().unwrap_or(0));
    let result = match paging::map(scratch, own, paging::WRITABLE | paging::USER) {
        Ok(()) => {
            let l1 = paging::l1_table(scratch).unwrap_or(0);
            let request = MmuUpdate::new(
                MmuUpdateKind::NormalPtUpdate,
                paging::l1_entry_address(l1, scratch),
                (own << 12) | paging::PRESENT | paging::USER,
            );
            // The request names our own L1; the hypervisor checks it.
            hypercalls::mmu_update(&[request], 0).0
        }
        Err(_) => -12,
    };
    println!(
        "probe: mmu_update with Domain-0 as the foreign domain returned {result} ({})",
        describe(result)
    );
    let result = wrappers::console_read(&mut [0u8; 8]);
    println!(
        "probe: console_io read returned {result} ({})",
        describe(result)
    );
    println!("probe: still running");
    guest_kernel::shutdown(ShutdownReason::Poweroff)
}

/// The value of `key=` on the command line.
fn argument(line: &str, key: &str) -> Option<u64> {
    line.split_ascii_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
}

/// Offers a port to domain `peer` and answers every event with one.
fn pong(line: &str) -> ! {
    let peer = argument(line, "peer").unwrap_or(0) as u16;
    let port = match events::alloc_unbound(peer) {
        Ok(port) => port,
        Err(error) => {
            println!("pong: cannot offer a port to domain {peer}: {error}");
            guest_kernel::shutdown(ShutdownReason::Crash)
        }
    };
    println!("pong: port {port} offered to domain {peer}");
    let mut answered = 0u64;
    loop {
        events::wait_until(|| events::take(port));
        if events::send(port).is_err() {
            println!("pong: the channel is gone after {answered} answers");
            guest_kernel::shutdown(ShutdownReason::Poweroff)
        }
        answered += 1;
    }
}

/// Connects to `peer`'s port and times `rounds` round trips.
fn ping(line: &str) -> ! {
    let peer = argument(line, "peer").unwrap_or(0) as u16;
    let remote_port = argument(line, "port").unwrap_or(1) as u32;
    let rounds = argument(line, "rounds").unwrap_or(1000);
    // The partner may not have offered its port yet: try for a while.
    let mut port = None;
    for _ in 0..500 {
        if let Ok(local) = events::bind_interdomain(peer, remote_port) {
            port = Some(local);
            break;
        }
        time::sleep(10_000_000);
    }
    let Some(port) = port else {
        println!("ping: domain {peer} never offered port {remote_port}");
        guest_kernel::shutdown(ShutdownReason::Crash)
    };
    // Binding marks the new port pending (as Xen does): consume that first.
    let _ = events::take(port);
    let mut samples = alloc::vec::Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        let start = time::rdtsc();
        let _ = events::send(port);
        events::wait_until(|| events::take(port));
        samples.push(time::rdtsc() - start);
    }
    samples.sort_unstable();
    let median = samples.get(samples.len() / 2).copied().unwrap_or(0);
    let minimum = samples.first().copied().unwrap_or(0);
    println!("ping: {rounds} round trips with domain {peer} done");
    println!(
        "bench: evtchn_ping_pong_round_trip median={median} min={minimum} iterations={rounds}"
    );
    // Each round trip is two one-way trips (send, switch to the blocked
    // partner, its upcall runs); half is an estimate of one of them.
    println!(
        "bench: evtchn_one_way_upcall_estimate median={} min={} iterations={rounds}",
        median / 2,
        minimum / 2
    );
    let _ = events::close(port);
    guest_kernel::shutdown(ShutdownReason::Poweroff)
}

/// Answers every line typed at the console, until it reads "bye".
fn echo() -> ! {
    use guest_kernel::console;
    println!("echo: type a line (bye to stop)");
    let mut line: heapless::String<128> = heapless::String::new();
    loop {
        let mut bytes = [0u8; 32];
        let mut count = 0;
        events::wait_until(|| {
            count = console::read_input(&mut bytes);
            count > 0
        });
        for &byte in &bytes[..count] {
            match byte {
                b'\r' | b'\n' => {
                    println!();
                    if line == "bye" {
                        println!("echo: bye");
                        guest_kernel::shutdown(ShutdownReason::Poweroff)
                    }
                    println!("echo: {line}");
                    line.clear();
                }
                0x20..=0x7e if line.push(char::from(byte)).is_ok() => {
                    guest_kernel::print!("{}", char::from(byte));
                }
                _ => {}
            }
        }
    }
}

/// `workload=iopl`: port I/O from a DomU, before and after `set_iopl`.
/// Each line is `iopl: WHAT: RESULT`; the scenario checks them.
fn iopl() -> ! {
    use guest_kernel::privileged;
    let before = privileged::inb(0x71);
    println!("iopl: inb $0x71 with IOPL 0: {before:x?}");
    println!("iopl: set_iopl 3: {}", wrappers::physdev_set_iopl(3));
    let selected = privileged::outb(0x70, 0x0b);
    let cmos = privileged::inb(0x71);
    println!("iopl: CMOS register 0x0b: select {selected:x?}, read {cmos:x?}");
    let post = privileged::outb(0x80, 0x42);
    println!("iopl: outb $0x80: {post:x?}");
    let line_status = privileged::inb(0x3fd);
    println!("iopl: inb $0x3fd (COM1 line status): {line_status:x?}");
    // Had this reached QEMU's debug-exit device, the machine would stop.
    let exit = privileged::outb(0xf4, 0x21);
    println!("iopl: outb $0xf4 (debug exit): {exit:x?}, still running");
    guest_kernel::shutdown(ShutdownReason::Poweroff)
}
