//! `workload=store-flood`: a guest that tries to exhaust Dom0's store
//! daemon, and reports what the store answered.
//!
//! In turn it creates nodes until the store refuses, writes a value larger
//! than an entry may be, registers watches and opens transactions until
//! refused, and finally sends requests without ever reading a reply. Each
//! must hit one of the daemon's per-domain quotas (`dom0/src/xenstore/
//! quota.rs`): `EQUOTA` for a count, `E2BIG` for a size, and for the
//! unread replies, a daemon that stops taking this guest's requests (its
//! request ring stays full). Then it keeps everything it got and idles,
//! while the scenario checks that Dom0 and other guests are still served.
//! Each phase has a bound well above the quota, so that a store without
//! the quota shows as "no refusal" rather than as a guest that never ends.
#![forbid(unsafe_code)]

use alloc::format;
use alloc::vec;
use guest_kernel::abi::xs_wire::MessageType;
use guest_kernel::xenbus::{self, Transaction, XenbusError};
use guest_kernel::{abi::sched::ShutdownReason, println, time};

/// Attempts per phase: several times each quota of Xen's defaults.
const NODE_ATTEMPTS: usize = 5000;
const WATCH_ATTEMPTS: usize = 1000;
const TRANSACTION_ATTEMPTS: usize = 100;
const UNREAD_ATTEMPTS: usize = 20_000;

/// "then EQUOTA" or "and no refusal".
fn ending(refusal: Option<XenbusError>) -> alloc::string::String {
    match refusal {
        Some(error) => format!("then {error}"),
        None => alloc::string::String::from("and no refusal"),
    }
}

/// Runs the workload.
pub fn run() -> ! {
    let mut client = match xenbus::connect() {
        Ok(client) => client,
        Err(error) => {
            println!("store-flood: no store to talk to ({error:?})");
            guest_kernel::shutdown(ShutdownReason::Crash)
        }
    };
    let none = Transaction::NONE;

    // Nodes until the node quota, a hundred per directory: one directory
    // with them all would first reach the entry-size quota (a node's entry
    // holds the names of its children).
    let mut created = 0;
    let mut refusal = None;
    for index in 0..NODE_ATTEMPTS {
        let path = format!("flood/d{}/n{}", index / 100, index % 100);
        match client.write(none, &path, b"x") {
            Ok(()) => created += 1,
            Err(error) => {
                refusal = Some(error);
                break;
            }
        }
    }
    println!("store-flood: nodes: {created} written, {}", ending(refusal));

    // An entry above the size quota, on a node that exists (so that no
    // new node is involved).
    let oversized = vec![b'x'; 3000];
    match client.write(none, "flood/d0/n0", &oversized) {
        Ok(()) => println!("store-flood: oversized value: accepted"),
        Err(error) => println!("store-flood: oversized value: {error}"),
    }

    // Watches until the watch quota.
    let mut registered = 0;
    let mut refusal = None;
    for index in 0..WATCH_ATTEMPTS {
        match client.watch("flood", &format!("w{index}")) {
            Ok(()) => registered += 1,
            Err(error) => {
                refusal = Some(error);
                break;
            }
        }
        // Read the watch's first event, so that the event queue is not
        // what stops us.
        while let Ok(Some(_)) = client.next_watch_event() {}
    }
    println!(
        "store-flood: watches: {registered} registered, {}",
        ending(refusal)
    );

    // Transactions until the transaction quota (left open).
    let mut opened = 0;
    let mut refusal = None;
    for _ in 0..TRANSACTION_ATTEMPTS {
        match client.transaction_start() {
            Ok(_) => opened += 1,
            Err(error) => {
                refusal = Some(error);
                break;
            }
        }
    }
    println!(
        "store-flood: transactions: {opened} open, {}",
        ending(refusal)
    );

    // Requests whose replies are never read: post while the request ring
    // has room; when it stays full for half a second, the daemon stopped
    // taking them.
    let mut posted = 0;
    let mut full_for = 0;
    while posted < UNREAD_ATTEMPTS && full_for < 50 {
        match client.try_post(MessageType::Read, none, b"flood/d0/n1\0") {
            Ok(Some(_)) => {
                posted += 1;
                full_for = 0;
            }
            Ok(None) => {
                full_for += 1;
                time::sleep(10_000_000);
            }
            Err(error) => {
                println!("store-flood: posting failed: {error}");
                break;
            }
        }
    }
    if full_for >= 50 {
        println!("store-flood: unread replies: Dom0 stopped taking requests after {posted}");
    } else {
        println!("store-flood: unread replies: Dom0 took all {posted} requests");
    }
    println!("store-flood: holding everything");
    loop {
        time::sleep(1_000_000_000);
    }
}
