//! `workload=store-bench rounds=N`: times the config store from a DomU.
//!
//! Three numbers, in TSC cycles, medians over `rounds` tries, each printed
//! as a `bench:` line beside a baseline measured in the same run:
//!
//! - `store_baseline_xen_version`: the cheapest hypercall, what any trip
//!   out of the guest costs at least;
//! - `store_read_round_trip`: a xenbus `read` of our own `name`, from
//!   putting the request in the ring to having the reply (Dom0's daemon
//!   must be woken by the event, scheduled, answer, and signal back);
//! - `store_write_round_trip`: a `write` of `data/bench`, the same trip
//!   with a change to the store (and a watch to fire);
//! - `store_watch_event_latency`: a `write` of `data/bench`, which we
//!   watch, until the watch event has arrived (the write's round trip plus
//!   the event's delivery).
//!
//! Every step must succeed: one failure withdraws the number (a failed
//! call measures an error path) and crashes the guest, which the
//! benchmark's reader sees as a missing row.
#![forbid(unsafe_code)]

use crate::store_client::argument;
use alloc::vec::Vec;
use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::xenbus::{self, Client, StoreChannel, Transaction, XenbusError};
use guest_kernel::{console, println, time};

/// The node the write and watch benchmarks change.
const BENCH_NODE: &str = "data/bench";
/// The token of our watch on it.
const BENCH_TOKEN: &str = "store-bench";

/// Stops the guest after a failed step: no number for it.
fn give_up(what: &str, error: XenbusError) -> ! {
    println!("bench: store benchmark failed at {what}: {error}; no number is reported for it");
    console::drain(1_000_000_000);
    guest_kernel::shutdown(ShutdownReason::Crash)
}

/// Median and minimum of `samples` (sorted here).
fn median_and_minimum(samples: &mut [u64]) -> (u64, u64) {
    samples.sort_unstable();
    (
        samples.get(samples.len() / 2).copied().unwrap_or(0),
        samples.first().copied().unwrap_or(0),
    )
}

/// Runs the workload on the kernel's store connection.
pub fn run(line: &str) -> ! {
    let rounds = argument(line, "rounds").unwrap_or(1000).max(1) as usize;
    xenbus::with_store(|client| run_on(client, rounds));
    println!("bench: store benchmarks skipped: no store to talk to");
    guest_kernel::shutdown(ShutdownReason::Crash)
}

fn run_on(client: &mut Client<StoreChannel>, rounds: usize) -> ! {
    let none = Transaction::NONE;
    let mut samples = Vec::with_capacity(rounds);
    let mut report = |name: &str, run: &mut dyn FnMut() -> Result<(), XenbusError>| {
        samples.clear();
        // A few untimed tries first: warm caches, and an early failure.
        for _ in 0..10 {
            run().unwrap_or_else(|error| give_up(name, error));
        }
        for _ in 0..rounds {
            let start = time::rdtsc();
            let outcome = run();
            samples.push(time::rdtsc() - start);
            outcome.unwrap_or_else(|error| give_up(name, error));
        }
        let (median, minimum) = median_and_minimum(&mut samples);
        println!("bench: {name} median={median} min={minimum} iterations={rounds}");
    };

    report("store_baseline_xen_version", &mut || {
        if guest_kernel::abi::wrappers::xen_version_number() >= 0 {
            Ok(())
        } else {
            Err(XenbusError::Store("xen_version"))
        }
    });
    report("store_read_round_trip", &mut || {
        client.read(none, "name").map(|_| ())
    });

    // The write benchmark leaves data/bench in place for the watch; the
    // watch's first event (sent at once, as for every watch) and the
    // events of these writes are taken before timing the watch.
    client
        .write(none, BENCH_NODE, b"0")
        .unwrap_or_else(|error| give_up("creating data/bench", error));
    report("store_write_round_trip", &mut || {
        client.write(none, BENCH_NODE, b"1")
    });
    client
        .watch(BENCH_NODE, BENCH_TOKEN)
        .unwrap_or_else(|error| give_up("watching data/bench", error));
    while client
        .next_watch_event()
        .unwrap_or_else(|error| give_up("taking the first watch event", error))
        .is_some()
    {}
    report("store_watch_event_latency", &mut || {
        client.write(none, BENCH_NODE, b"2")?;
        // Only our own watch's event counts (the kernel's own watches go
        // to their handlers, not here).
        loop {
            let event = client.wait_for_watch_event()?;
            if event.token == BENCH_TOKEN {
                return Ok(());
            }
        }
    });
    let _ = client.unwatch(BENCH_NODE, BENCH_TOKEN);
    println!("store-bench: done");
    console::drain(1_000_000_000);
    guest_kernel::shutdown(ShutdownReason::Poweroff)
}
