//! `bench`: the microbenchmarks that `cargo xtask bench` types at the
//! prompt. Each operation is timed with the TSC, one at a time, many times;
//! the median and the minimum are printed as `bench: NAME median=.. min=..
//! iterations=..` lines, with `native=ROW` naming the ring-0 operation an
//! operation replaces, for the ratio column.
//!
//! Every timed operation reports whether it succeeded, and one failure, in
//! the warm-up or in the timed loop, withdraws the number: a hypercall that
//! fails measures its error path, not the operation, and a number that
//! looks fine would hide that. Such a benchmark prints
//! `bench: NAME failed: ERROR; no number is reported for it` instead.
//!
//! The raw operations timed here (the null multicall batch, the emulated
//! instructions) are `sys::timing`'s.
#![forbid(unsafe_code)]

use crate::areas::BENCH_PAGES;
use crate::control::{explain, sysctl};
use crate::sys::timing::{self, NullMulticalls, NULL_BATCH};
use alloc::vec::Vec;
use guest_kernel::abi::sysctl::Sysctl;
use guest_kernel::abi::wrappers;
use guest_kernel::{paging, println, time};

/// Iterations per benchmark.
const BENCH_ITERATIONS: usize = 20_000;

/// Times `operation` once per iteration; returns (median, minimum) cycles,
/// or `None` once it failed, after saying so. The result is looked at
/// after the second TSC read, so checking it costs the timing nothing.
fn measure<E: core::fmt::Debug>(
    name: &str,
    mut operation: impl FnMut() -> Result<(), E>,
) -> Option<(u64, u64)> {
    let mut samples = alloc::vec![0u64; BENCH_ITERATIONS];
    for _ in 0..100 {
        // Warm up, and learn early if the operation fails at all.
        if let Err(error) = operation() {
            return failed(name, error);
        }
    }
    for sample in samples.iter_mut() {
        let start = time::rdtsc();
        let outcome = operation();
        *sample = time::rdtsc() - start;
        if let Err(error) = outcome {
            return failed(name, error);
        }
    }
    samples.sort_unstable();
    Some((samples[samples.len() / 2], samples[0]))
}

/// Says that benchmark `name` failed, and why; returns no timing.
fn failed(name: &str, error: impl core::fmt::Debug) -> Option<(u64, u64)> {
    println!("bench: {name} failed: {error:?}; no number is reported for it");
    None
}

/// Prints a result line, if the benchmark has a number (a failure was
/// reported where it happened).
fn report(name: &str, timing: Option<(u64, u64)>, extra: &str) {
    if let Some((median, minimum)) = timing {
        println!(
            "bench: {name} median={median} min={minimum} iterations={BENCH_ITERATIONS}{extra}"
        );
    }
}

/// Reports a per-item cost derived from a batch's timing.
fn report_per(name: &str, timing: Option<(u64, u64)>, items: u64, extra: &str) {
    report(
        name,
        timing.map(|(median, minimum)| (median / items, minimum / items)),
        extra,
    );
}

/// A raw hypercall result as a `Result`: 0 is success, anything else (a
/// negated errno) the error.
fn succeeded(result: i64) -> Result<(), i64> {
    match result {
        0 => Ok(()),
        error => Err(error),
    }
}

pub fn bench() {
    // The floor: a bare syscall/sysretq round trip into an empty handler.
    if let Err(error) = sysctl(&mut Sysctl::bench_syscall_floor(true)) {
        return explain("bench: switching to the empty syscall handler", error);
    }
    let floor = measure("syscall_floor", || {
        // In floor mode every syscall except sysctl returns at once.
        timing::null_syscall();
        // The empty handler returns no result: there is nothing to check.
        Ok::<(), ()>(())
    });
    if let Err(error) = sysctl(&mut Sysctl::bench_syscall_floor(false)) {
        return explain("bench: switching back to the real syscall handler", error);
    }
    report("syscall_floor", floor, "");
    report(
        "null_hypercall",
        measure("null_hypercall", || {
            // xen_version(XENVER_version) returns the version, never below 0.
            match wrappers::xen_version_number() {
                error if error < 0 => Err(error),
                _ => Ok(()),
            }
        }),
        "",
    );
    bench_emulation();
    let mut calls = NullMulticalls::new();
    let batch = measure("multicall_32_null", || succeeded(calls.call()));
    // Each entry's own result: a version, not an error (checked once, after
    // the last call, outside the timing).
    let batch = match calls.results().find(|&result| result < 0) {
        Some(result) => failed("multicall_32_null", result),
        None => batch,
    };
    report("multicall_32_null", batch, "");
    report_per("multicall_per_entry", batch, NULL_BATCH as u64, "");
    if let Err(error) = bench_paging() {
        println!("bench: paging benchmarks skipped: {error:?}");
    }
    bench_events();
    bench_domains();
    bench_longest_hypercall();
    println!("bench: done");
}

/// Trap and emulate, beside the null hypercall of the same run: Xen's
/// forced-emulation CPUID (`ud2; .ascii "xen"; cpuid`, a #UD the hypervisor
/// decodes and answers from the PV CPUID policy) and an emulated
/// `mov %cr3, %rax` (a #GP). Each is a full exception entry, fetch of the
/// instruction through the guest's page tables, decode, and exit.
fn bench_emulation() {
    report(
        "forced_emulation_cpuid",
        measure("forced_emulation_cpuid", || {
            let (maximum, signature) = timing::forced_emulation_cpuid(0x4000_0000);
            // Leaf 0x40000000: the last hypervisor leaf, and "XenVMMXenVMM"
            // ending in EDX with "nVMM".
            match (maximum, signature) {
                (0x4000_0002, 0x4d4d_566e) => Ok(()),
                other => Err(other),
            }
        }),
        "",
    );
    report(
        "emulated_mov_from_cr3",
        measure("emulated_mov_from_cr3", || {
            let root = timing::emulated_read_cr3();
            // The machine address of Dom0's L4: page-aligned, never 0.
            if root != 0 && root.is_multiple_of(4096) {
                Ok(())
            } else {
                Err(root)
            }
        }),
        "",
    );
}

/// Where the paging benchmarks map their pages.
const BENCH_AREA: u64 = BENCH_PAGES.start;

fn bench_paging() -> Result<(), paging::PagingError> {
    let mut native = Sysctl::bench_native(BENCH_ITERATIONS as u32);
    sysctl(&mut native).map_err(paging::PagingError::Refused)?;
    let native = *native.bench_native_payload();
    let pte_native = (native.pte_write_cycles, native.pte_write_min);
    let cr3_native = (native.cr3_write_cycles, native.cr3_write_min);
    report("native_pte_write_invlpg", Some(pte_native), "");
    report("native_cr3_write", Some(cr3_native), "");

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
        measure("update_va_mapping", || {
            turn += 1;
            paging::set_pte(BENCH_AREA, frames[turn & 1] | flags)
        }),
        " native=native_pte_write_invlpg",
    );
    let entry = |page: usize| l1 * paging::PAGE_SIZE + page as u64 * 8;
    report(
        "mmu_update_1",
        measure("mmu_update_1", || {
            turn += 1;
            paging::write_entries(&[(entry(0), frames[turn & 1] | flags)])
        }),
        " native=native_pte_write_invlpg",
    );
    let mut batch = [(0u64, 0u64); 64];
    let timing = measure("mmu_update_64", || {
        turn += 1;
        for (page, request) in batch.iter_mut().enumerate() {
            *request = (entry(page), frames[(page + turn) % 64] | flags);
        }
        paging::write_entries(&batch)
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
    let pin = measure("pin_l1", || {
        paging::pin(table, 1)?;
        let start = time::rdtsc();
        let unpinned = paging::unpin(table);
        unpin_samples.push(time::rdtsc() - start);
        unpinned
    });
    report("pin_l1", pin, "");
    unpin_samples.sort_unstable();
    // A failed pin or unpin has already been reported, and withdraws both.
    report(
        "unpin_l1",
        pin.map(|_| (unpin_samples[unpin_samples.len() / 2], unpin_samples[0])),
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
        measure("new_baseptr", || {
            turn += 1;
            paging::switch_root(roots[turn & 1])
        }),
        " native=native_cr3_write",
    );
    paging::switch_root(root)?;
    Ok(())
}

/// A small guest's configuration running `workload`.
fn small_guest(name: &str, cmdline: &str) -> Option<dom0::config::DomainConfig> {
    let text = alloc::format!(
        "name = \"{name}\"\nmemory = 8\nkernel = \"/boot/domu\"\ncmdline = \"{cmdline}\"\n"
    );
    dom0::config::parse(&text).ok()
}

/// Whether domain `id` has shut down (or is gone).
fn stopped(id: u16) -> bool {
    crate::control::domain_infos().is_ok_and(|infos| {
        infos
            .iter()
            .find(|info| info.domid == id)
            .is_none_or(|info| info.flags & guest_kernel::abi::sysctl::DOMINF_SHUTDOWN != 0)
    })
}

/// Domain creation: the time from `xl create` to the guest's first console
/// line (the guest reports it, as a `bench:` line of its own), creating and
/// destroying small domains, and how many 8 MiB guests run at once.
fn bench_domains() {
    use crate::builder::build;
    use crate::control::simple_domctl;
    use guest_kernel::abi::domctl::DomctlOp;
    let Some(kernel) = crate::files::find("/boot/domu") else {
        println!("bench: domain benchmarks skipped: no /boot/domu in the ramdisk");
        return;
    };
    for round in 0..10 {
        let cmdline = alloc::format!("workload=first-line start_tsc={}", time::rdtsc());
        let Some(config) = small_guest(&alloc::format!("first{round}"), &cmdline) else {
            return;
        };
        let Ok(id) = build(&config, kernel, false, false).map(|built| built.id) else {
            println!("bench: creating a guest failed; domain benchmarks stopped");
            return;
        };
        let deadline = time::rdtsc() + 30_000_000_000;
        while !stopped(id) && time::rdtsc() < deadline {
            wrappers::sched_yield();
        }
        let _ = simple_domctl(DomctlOp::DestroyDomain, id);
    }

    let Some(config) = small_guest("cycle", "workload=hello") else {
        return;
    };
    let mut samples = Vec::with_capacity(100);
    let start = time::rdtsc();
    for _ in 0..100 {
        let begin = time::rdtsc();
        let Ok(id) = build(&config, kernel, true, false).map(|built| built.id) else {
            break;
        };
        let destroyed = simple_domctl(DomctlOp::DestroyDomain, id);
        samples.push(time::rdtsc() - begin);
        if let Err(error) = destroyed {
            // A destroy that fails is quick and leaves the domain behind.
            let _ = failed("create_destroy_8mib", error);
            samples.clear();
            break;
        }
    }
    let total = time::rdtsc() - start;
    if !samples.is_empty() {
        samples.sort_unstable();
        println!(
            "bench: create_destroy_8mib median={} min={} iterations={}",
            samples[samples.len() / 2],
            samples[0],
            samples.len()
        );
        println!(
            "bench: {} creates and destroys of an 8 MiB domain took {total} cycles in all",
            samples.len()
        );
    }

    // A domain switch: with one other domain that yields at once, a yield
    // here is two switches (there and back) and two hypercalls.
    if let Some(config) = small_guest("switch", "workload=spin") {
        if let Ok(id) = build(&config, kernel, false, false).map(|built| built.id) {
            let timing = measure("domain_switch", || succeeded(wrappers::sched_yield()));
            report_per("domain_switch", timing, 2, "");
            let _ = simple_domctl(DomctlOp::DestroyDomain, id);
        }
    }

    // Event-channel ping-pong between two guests (they print their own
    // result line); without consoles their ports start at 1.
    if let Some(pong) = small_guest("pong", "workload=pong peer=0") {
        if let Ok(pong_id) = build(&pong, kernel, false, false).map(|built| built.id) {
            // The partner gets the next free ID.
            let cmdline = alloc::format!("workload=ping peer={pong_id} port=1 rounds=2000");
            let pong = small_guest(
                "pong",
                &alloc::format!("workload=pong peer={}", pong_id + 1),
            );
            let _ = simple_domctl(DomctlOp::DestroyDomain, pong_id);
            if let (Some(pong), Some(ping)) = (pong, small_guest("ping", &cmdline)) {
                if let Ok(pong_id) = build(&pong, kernel, false, false).map(|built| built.id) {
                    if let Ok(ping_id) = build(&ping, kernel, false, false).map(|built| built.id) {
                        let deadline = time::rdtsc() + 60_000_000_000;
                        while !stopped(ping_id) && time::rdtsc() < deadline {
                            wrappers::sched_yield();
                        }
                        let _ = simple_domctl(DomctlOp::DestroyDomain, ping_id);
                    }
                    let _ = simple_domctl(DomctlOp::DestroyDomain, pong_id);
                }
            }
        }
    }

    // Guest user mode: a guest's user program times `syscall` into its
    // kernel and back (the guest prints its own
    // `bench: user_syscall_round_trip` line).
    if let Some(config) = small_guest("user", "workload=user rounds=20000") {
        if let Ok(id) = build(&config, kernel, false, false).map(|built| built.id) {
            let deadline = time::rdtsc() + 60_000_000_000;
            while !stopped(id) && time::rdtsc() < deadline {
                wrappers::sched_yield();
            }
            let _ = simple_domctl(DomctlOp::DestroyDomain, id);
        }
    }

    // Grant tables: a guest grants a page to itself and times map + unmap
    // and a 4 KiB grant copy, with baselines (its own `bench:` lines). It
    // must name itself in the entry: IDs are handed out lowest first, so
    // it gets the ID of a probe domain just created and destroyed.
    if let Some(probe) = small_guest("grantprobe", "workload=hello") {
        if let Ok(probe_id) = build(&probe, kernel, true, false).map(|built| built.id) {
            let _ = simple_domctl(DomctlOp::DestroyDomain, probe_id);
            let cmdline = alloc::format!("workload=grant-bench self={probe_id} rounds=2000");
            if let Some(config) = small_guest("grantbench", &cmdline) {
                if let Ok(id) = build(&config, kernel, false, false).map(|built| built.id) {
                    let deadline = time::rdtsc() + 60_000_000_000;
                    while !stopped(id) && time::rdtsc() < deadline {
                        wrappers::sched_yield();
                    }
                    let _ = simple_domctl(DomctlOp::DestroyDomain, id);
                }
            }
        }
    }

    // The config store: a guest times a read of its own name, a write,
    // and a write of a node it watches until the event arrives, beside the
    // null hypercall (its own `bench:` lines). It is started as `xl create`
    // starts one (console, store ring, its keys), and Dom0 serves its
    // store as the shell does, sleeping until a ring signals, so the round
    // trip includes waking Dom0. Its console is shown live on the serial
    // line, where the `bench:` lines are read.
    if let Some(config) = small_guest("storebench", "workload=store-bench rounds=2000") {
        match crate::toolstack::start(&config, kernel, true, "bench") {
            Ok(id) => {
                crate::consoles::show(id);
                if simple_domctl(DomctlOp::UnpauseDomain, id).is_ok() {
                    let deadline = time::rdtsc() + 60_000_000_000;
                    while !stopped(id) && time::rdtsc() < deadline {
                        crate::wait_for_activity();
                    }
                }
                crate::consoles::service();
                crate::consoles::detach(id);
                crate::consoles::disconnect(id);
                let _ = crate::toolstack::destroy_domain(id);
            }
            Err(error) => println!("bench: store benchmarks skipped: {error}"),
        }
    }

    let mut running = Vec::new();
    let mut first = 0;
    let mut last = 0;
    loop {
        let Some(config) = small_guest(&alloc::format!("spin{}", running.len()), "workload=spin")
        else {
            break;
        };
        let begin = time::rdtsc();
        match build(&config, kernel, false, false).map(|built| built.id) {
            Ok(id) => {
                last = time::rdtsc() - begin;
                if running.is_empty() {
                    first = last;
                }
                running.push(id);
            }
            Err(_) => break,
        }
    }
    println!(
        "bench: {} guests of 8 MiB ran at once before memory ran out; creating the first took {first} cycles, the last {last}",
        running.len()
    );
    for id in running {
        let _ = simple_domctl(DomctlOp::DestroyDomain, id);
    }
}

/// Event channels and exceptions: a send to a masked port (no upcall), a
/// send whose upcall runs before the hypercall returns (send + upcall +
/// iret), and an exception bounced to Dom0's handler and back.
fn bench_events() {
    use guest_kernel::events;
    let Ok(listening) = events::alloc_unbound(0) else {
        println!("bench: event benchmarks skipped: cannot allocate a port");
        return;
    };
    let Ok(connected) = events::bind_interdomain(0, listening) else {
        println!("bench: event benchmarks skipped: cannot connect a loopback channel");
        return;
    };
    guest_kernel::sys::shared_info::mask_port(listening);
    report(
        "evtchn_send_masked",
        measure("evtchn_send_masked", || events::send(connected)),
        "",
    );
    // Unmask with the hypercall, as a guest must: the event left pending
    // by the masked sends is delivered now, and later sends upcall again.
    let unmasked = events::unmask(listening);
    let _ = events::take(listening);
    let before = events::upcalls();
    let timing = match unmasked {
        Ok(()) => measure("evtchn_send_upcall_iret", || {
            let sent = events::send(connected);
            // Whether the event is still pending depends on whether the
            // upcall took it first: either is right.
            let _ = events::take(listening);
            sent
        }),
        Err(error) => failed("evtchn_send_upcall_iret", error),
    };
    let upcalls = events::upcalls() - before;
    println!("bench: ({upcalls} upcalls were delivered during evtchn_send_upcall_iret)");
    // Without upcalls the loop timed masked sends, not what its name says.
    let timing = match timing {
        Some(_) if upcalls == 0 => failed("evtchn_send_upcall_iret", "no upcall was delivered"),
        timing => timing,
    };
    report("evtchn_send_upcall_iret", timing, "");
    let _ = events::close(connected);
    let _ = events::close(listening);

    // A write to a read-only page (our own L4, which the hypervisor keeps
    // read-only): #PF, bounced to our handler, which resumes after the
    // store with iret.
    let read_only = paging::physmap_address(paging::mfn_to_pfn(paging::current_root()));
    if guest_kernel::traps::try_write(read_only, 0).is_err() {
        report(
            "exception_bounce_iret",
            measure("exception_bounce_iret", || {
                // Success here is the fault: the write must be bounced.
                match guest_kernel::traps::try_write(read_only, 0) {
                    Err(_fault) => Ok(()),
                    Ok(()) => Err("the write to a read-only page did not fault"),
                }
            }),
            "",
        );
    }
}

/// The longest hypercall (in TSC cycles) since the last reset, which this
/// read makes again; `None` (said) if the sysctl failed.
fn longest_hypercall_since_reset() -> Option<u64> {
    let mut request = Sysctl::longest_hypercall(true);
    match sysctl(&mut request) {
        Ok(()) => Some(request.longest_hypercall_payload().cycles),
        Err(error) => {
            explain("bench: reading the longest hypercall", error);
            None
        }
    }
}

/// The median and the least of `samples` (which it sorts), as `measure`
/// reports them; `None` for none.
fn median_and_minimum(samples: &mut [u64]) -> Option<(u64, u64)> {
    samples.sort_unstable();
    Some((*samples.get(samples.len() / 2)?, *samples.first()?))
}

/// Prints a row of a few samples (not `BENCH_ITERATIONS` of them).
fn report_samples(name: &str, samples: &mut [u64]) {
    if let Some((median, minimum)) = median_and_minimum(samples) {
        println!(
            "bench: {name} median={median} min={minimum} iterations={}",
            samples.len()
        );
    }
}

/// How long the hostile guest of issue 19 can keep the CPU with interrupts
/// off, and how long the operations an attacker can make big hold it
/// (`docs/continuations.md` states the bound from these rows):
/// - `longest_hypercall_pinstorm`: a `pinstorm` guest pins and unpins a
///   511-L1 tree in huge `mmuext_op` batches for a few seconds while Dom0
///   sleeps; the hypervisor's record of its longest hypercall (entry to
///   exit, a continuation ending one) is read before and after;
/// - `longest_hypercall_destroy`: Dom0 destroys a 64 MiB `pinstorm` guest in
///   the middle of its attack (its tree validated or half validated), three
///   times; `destroy_pinstorm_64mib` is the whole `destroydomain` call;
/// - the reservation rows ([`bench_reservations`]).
fn bench_longest_hypercall() {
    use crate::builder::build;
    use crate::control::simple_domctl;
    use guest_kernel::abi::domctl::DomctlOp;
    let Some(kernel) = crate::files::find("/boot/domu") else {
        return;
    };
    let Some(config) = small_guest("pinstorm", "workload=pinstorm operations=512") else {
        return;
    };
    let Ok(id) = build(&config, kernel, false, false).map(|built| built.id) else {
        println!("bench: creating the pinstorm guest failed; longest hypercall not measured");
        return;
    };
    // Building its tree takes it about a second; then it attacks.
    let _ = longest_hypercall_since_reset();
    time::sleep(6_000_000_000);
    let measured = longest_hypercall_since_reset();
    let _ = simple_domctl(DomctlOp::DestroyDomain, id);
    if let Some(cycles) = measured {
        println!("bench: longest_hypercall_pinstorm median={cycles} min={cycles} iterations=1");
    }

    let text = "name = \"pinstorm\"\nmemory = 64\nkernel = \"/boot/domu\"\ncmdline = \"workload=pinstorm operations=512\"\n";
    let Ok(big) = dom0::config::parse(text) else {
        return;
    };
    let mut longest = Vec::new();
    let mut whole = Vec::new();
    for _ in 0..3 {
        let Ok(id) = build(&big, kernel, false, false).map(|built| built.id) else {
            println!("bench: creating a 64 MiB pinstorm guest failed; destruction not measured");
            break;
        };
        time::sleep(3_000_000_000);
        let _ = longest_hypercall_since_reset();
        let started = time::rdtsc();
        let destroyed = simple_domctl(DomctlOp::DestroyDomain, id);
        let took = time::rdtsc() - started;
        if let Err(error) = destroyed {
            explain("bench: destroying the pinstorm guest", error);
            break;
        }
        let Some(cycles) = longest_hypercall_since_reset() else {
            break;
        };
        longest.push(cycles);
        whole.push(took);
    }
    report_samples("longest_hypercall_destroy", &mut longest);
    report_samples("destroy_pinstorm_64mib", &mut whole);
    bench_reservations();
}

/// Extents of the reservation rows' big calls.
const RESERVATION_EXTENTS: usize = 10_000;
/// Extents of the baseline's small calls: under one hypercall's budget
/// (ten units an extent), so none is cut.
const SMALL_CALL_EXTENTS: usize = 100;

/// `memory_op(operation)` on the extents of `list` for domain `id`; the
/// result and the cycles the call took.
fn reservation_call(
    operation: guest_kernel::abi::memory::MemoryOp,
    id: u16,
    list: &mut [u64],
) -> (i64, u64) {
    let started = time::rdtsc();
    let result = crate::sys::control::reservation(operation, id, list);
    (result, time::rdtsc() - started)
}

/// The reservation sub-ops of `memory_op` on a domain Dom0 creates for the
/// purpose, five rounds of: `increase_reservation` of 10,000 frames in one
/// call, `decrease_reservation` of them in one call, `populate_physmap` of
/// 10,000 in one call, then the same decrease and increase as 100 calls of
/// 100 extents (no call cut: the in-run baseline for what cutting costs).
/// Rows: the longest hypercall of each big call, and the cycles per extent
/// of each big and each cut-free way.
fn bench_reservations() {
    use crate::control::{domctl, simple_domctl};
    use guest_kernel::abi::domctl::{Domctl, DomctlOp};
    use guest_kernel::abi::memory::MemoryOp;
    let mut create = Domctl::new(DomctlOp::CreateDomain, 0);
    create.u.create.max_pages = (RESERVATION_EXTENTS + 16) as u64;
    if let Err(created) = domctl(&mut create) {
        println!("bench: creating a domain for the reservation rows failed ({created})");
        return;
    }
    let id = create.domain;
    let mut list = alloc::vec![0u64; RESERVATION_EXTENTS];
    let names = [
        "increase_reservation",
        "decrease_reservation",
        "populate_physmap",
    ];
    let mut longest: [Vec<u64>; 3] = Default::default();
    let mut per_extent_cut: [Vec<u64>; 3] = Default::default();
    let mut per_extent_uncut: [Vec<u64>; 2] = Default::default();
    'rounds: for _ in 0..5 {
        for (row, operation) in [
            MemoryOp::IncreaseReservation,
            MemoryOp::DecreaseReservation,
            MemoryOp::PopulatePhysmap,
        ]
        .into_iter()
        .enumerate()
        {
            if operation == MemoryOp::PopulatePhysmap {
                for (pfn, slot) in list.iter_mut().enumerate() {
                    *slot = pfn as u64;
                }
            }
            let _ = longest_hypercall_since_reset();
            let (result, took) = reservation_call(operation, id, &mut list);
            if result != RESERVATION_EXTENTS as i64 {
                println!(
                    "bench: {} of {RESERVATION_EXTENTS} did {result}",
                    names[row]
                );
                break 'rounds;
            }
            let Some(cycles) = longest_hypercall_since_reset() else {
                break 'rounds;
            };
            longest[row].push(cycles);
            per_extent_cut[row].push(took / RESERVATION_EXTENTS as u64);
        }
        // The same frames back and again, in small calls.
        for (row, operation) in [MemoryOp::DecreaseReservation, MemoryOp::IncreaseReservation]
            .into_iter()
            .enumerate()
        {
            let mut took = 0;
            for chunk in list.chunks_mut(SMALL_CALL_EXTENTS) {
                let (result, cycles) = reservation_call(operation, id, chunk);
                if result != chunk.len() as i64 {
                    println!("bench: a small {operation:?} call did {result}");
                    break 'rounds;
                }
                took += cycles;
            }
            per_extent_uncut[row].push(took / RESERVATION_EXTENTS as u64);
        }
        let (result, _) = reservation_call(MemoryOp::DecreaseReservation, id, &mut list);
        if result != RESERVATION_EXTENTS as i64 {
            println!("bench: the last decrease of a round did {result}");
            break;
        }
    }
    let _ = simple_domctl(DomctlOp::DestroyDomain, id);
    for (row, name) in names.iter().enumerate() {
        report_samples(
            &alloc::format!("longest_hypercall_{name}"),
            &mut longest[row],
        );
        report_samples(
            &alloc::format!("{name}_10000_per_extent"),
            &mut per_extent_cut[row],
        );
    }
    report_samples(
        "decrease_reservation_100x100_per_extent",
        &mut per_extent_uncut[0],
    );
    report_samples(
        "increase_reservation_100x100_per_extent",
        &mut per_extent_uncut[1],
    );
}
