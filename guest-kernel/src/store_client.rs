//! `workload=xenstore`: a guest that uses the config store as a driver
//! would, through the kernel's xenbus client, and says what it saw.
//!
//! It reads its own name (the relative path `name`, under its home
//! `/local/domain/<id>`), tries to read domain `other=`'s name (default 0)
//! and must be refused with `EACCES`, writes `data/greeting` for Dom0 to
//! read, counts in `data/count` inside a transaction, then watches
//! `data/message` and prints every event with the value it finds, until
//! the value is `bye`.
#![forbid(unsafe_code)]

use alloc::format;
use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::xenbus::{self, Client, StoreChannel, Transaction, XenbusError};
use guest_kernel::{console, println};

/// The value of `key=` on the command line (words split at spaces or
/// commas, as an `xl create` override writes them).
pub fn argument(line: &str, key: &str) -> Option<u64> {
    line.split(|c: char| c.is_ascii_whitespace() || c == ',')
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
}

/// Stops the guest after a store failure it cannot go on from.
fn give_up(what: &str, error: XenbusError) -> ! {
    println!("xenstore: {what} failed: {error}");
    console::drain(1_000_000_000);
    guest_kernel::shutdown(ShutdownReason::Crash)
}

/// Runs the workload, on the kernel's store connection (which also
/// carries the kernel's watch on `control/shutdown`).
pub fn run(line: &str) -> ! {
    xenbus::with_store(|client| run_on(client, line));
    println!("xenstore: no store to talk to");
    guest_kernel::shutdown(ShutdownReason::Crash)
}

fn run_on(client: &mut Client<StoreChannel>, line: &str) -> ! {
    let none = Transaction::NONE;
    let name = client
        .read_text(none, "name")
        .unwrap_or_else(|error| give_up("reading name", error));
    let id = client
        .read_text(none, "domid")
        .unwrap_or_else(|error| give_up("reading domid", error));
    println!("xenstore: my name is {name} (domain {id})");

    let other = argument(line, "other").unwrap_or(0);
    let path = format!("/local/domain/{other}/name");
    match client.read_text(none, &path) {
        Ok(value) => println!("xenstore: read {path} = \"{value}\" (it should be refused)"),
        Err(error) => println!("xenstore: reading {path} refused: {error}"),
    }

    let greeting = format!("hello from {name}");
    client
        .write(none, "data/greeting", greeting.as_bytes())
        .unwrap_or_else(|error| give_up("writing data/greeting", error));
    println!("xenstore: wrote data/greeting");

    let count = client
        .transaction(|client, transaction| {
            let count = match client.read_text(transaction, "data/count") {
                Ok(text) => text.parse::<u64>().unwrap_or(0),
                Err(XenbusError::Store("ENOENT")) => 0,
                Err(error) => return Err(error),
            };
            client.write(
                transaction,
                "data/count",
                format!("{}", count + 1).as_bytes(),
            )?;
            Ok(count + 1)
        })
        .unwrap_or_else(|error| give_up("the transaction", error));
    println!("xenstore: data/count is {count} after a transaction");

    client
        .watch("data/message", "message")
        .unwrap_or_else(|error| give_up("watching data/message", error));
    // The store sends one event at once; the ones after it are changes.
    client
        .wait_for_watch_event()
        .unwrap_or_else(|error| give_up("the first watch event", error));
    println!("xenstore: watching data/message");
    loop {
        let event = client
            .wait_for_watch_event()
            .unwrap_or_else(|error| give_up("waiting for a watch event", error));
        let value = match client.read_text(none, &event.path) {
            Ok(value) => value,
            Err(error) => format!("({error})"),
        };
        println!(
            "xenstore: watch event {} (token {}): \"{value}\"",
            event.path, event.token
        );
        if value == "bye" {
            println!("xenstore: bye");
            console::drain(1_000_000_000);
            guest_kernel::shutdown(ShutdownReason::Poweroff)
        }
    }
}
