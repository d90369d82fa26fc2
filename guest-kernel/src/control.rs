//! The toolstack's requests to this guest: `control/shutdown`, read and
//! acknowledged as Xen's PV guests do (Linux's `drivers/xen/manage.c`).
//!
//! `xl shutdown` and `xl reboot` do not stop a guest: they ask it, by
//! writing a word in the guest's `control/shutdown` node of the config
//! store. The guest watches that node from start of day ([`start`]), and
//! says which words it understands by writing `control/feature-poweroff`
//! and `control/feature-reboot` (a toolstack refuses to ask a guest that
//! never announced them: it would not hear the request).
//!
//! ```text
//!   Dom0: xl shutdown web          /local/domain/5/control/shutdown = "poweroff"
//!   store daemon                   watch event "control/shutdown" -> domain 5
//!   domain 5 (event upcall):       read control/shutdown     -> "poweroff"
//!                                  write control/shutdown ""  (the acknowledgement)
//!                                  sched_op(shutdown, SHUTDOWN_poweroff)
//! ```
//!
//! The words: `poweroff` and `halt` power off (Linux treats `halt` as a
//! power-off too), `reboot` reboots (the toolstack then applies the
//! domain's `on_reboot`). `suspend` is refused: this kernel cannot suspend
//! yet, so, as Linux does with a request it is not prepared for, it leaves
//! the word unacknowledged and goes on. An empty node (the watch's first
//! event, or our own acknowledgement) is no request.
#![forbid(unsafe_code)]

use crate::println;
use crate::xenbus::{Client, Transaction, Transport, WatchEvent, XenbusError};
use alloc::string::String;
use hypercall_abi::sched::ShutdownReason;

/// The node, relative to our home `/local/domain/<id>`.
pub const SHUTDOWN_NODE: &str = "control/shutdown";

/// What a word in `control/shutdown` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Nothing (an empty node).
    None,
    /// Stop with this `SCHEDOP_shutdown` reason.
    Shutdown(ShutdownReason),
    /// Suspend, which this kernel cannot do yet.
    Suspend,
    /// A word this kernel does not know.
    Unknown,
}

/// Reads a word of `control/shutdown`.
pub fn request_from(word: &str) -> Request {
    match word.trim_end_matches('\0') {
        "" => Request::None,
        "poweroff" | "halt" => Request::Shutdown(ShutdownReason::Poweroff),
        "reboot" => Request::Shutdown(ShutdownReason::Reboot),
        "suspend" => Request::Suspend,
        _ => Request::Unknown,
    }
}

/// Connects the kernel's store connection, watches `control/shutdown` and
/// announces the requests this kernel understands. `Ok(false)` without a
/// store (the initial domain, or a domain Dom0 built without one, such as
/// the benchmark's): there is nothing to watch.
#[cfg(not(test))]
pub fn start() -> Result<bool, XenbusError> {
    match crate::xenbus::start() {
        Ok(()) => {}
        Err(crate::xenbus::ConnectError::NoStore) => return Ok(false),
        Err(crate::xenbus::ConnectError::Unmappable) => return Err(XenbusError::Store("EFAULT")),
    }
    crate::xenbus::with_store(|client| {
        client.watch_with_handler(SHUTDOWN_NODE, SHUTDOWN_NODE, on_shutdown_request)?;
        for feature in ["control/feature-poweroff", "control/feature-reboot"] {
            client.write(Transaction::NONE, feature, b"1")?;
        }
        Ok(true)
    })
    .unwrap_or(Ok(false))
}

/// Reads `control/shutdown` and, for a word it understands, clears it in
/// the same transaction (so that two quick requests are not both taken
/// for one); returns what was asked.
fn take_request<T: Transport>(client: &mut Client<T>) -> Result<(String, Request), XenbusError> {
    client.transaction(|client, transaction| {
        let word = match client.read_text(transaction, SHUTDOWN_NODE) {
            Ok(word) => word,
            // Removed (the domain is being destroyed): nothing to do.
            Err(XenbusError::Store("ENOENT")) => String::new(),
            Err(error) => return Err(error),
        };
        let request = request_from(&word);
        if let Request::Shutdown(_) = request {
            client.write(transaction, SHUTDOWN_NODE, b"")?;
        }
        Ok((word, request))
    })
}

/// The handler of the watch on `control/shutdown`.
pub(crate) fn on_shutdown_request<T: Transport>(client: &mut Client<T>, _event: &WatchEvent) {
    let (word, request) = match take_request(client) {
        Ok(taken) => taken,
        Err(error) => {
            println!("control: reading {SHUTDOWN_NODE} failed: {error}");
            return;
        }
    };
    match request {
        Request::None => {}
        Request::Shutdown(reason) => {
            println!(
                "control: {SHUTDOWN_NODE} = \"{word}\": shutting down ({})",
                reason.name()
            );
            stop(reason);
        }
        Request::Suspend => {
            println!("control: {SHUTDOWN_NODE} = \"suspend\": refused, this kernel cannot suspend yet; going on");
        }
        Request::Unknown => {
            println!(
                "control: {SHUTDOWN_NODE} = \"{word}\": not a request this kernel knows; ignored"
            );
        }
    }
}

/// Stops the domain (its last lines reach the console first).
#[cfg(not(test))]
fn stop(reason: ShutdownReason) -> ! {
    crate::console::drain(1_000_000_000);
    crate::shutdown(reason)
}

#[cfg(test)]
std::thread_local! {
    /// What the host tests' `stop` was asked for.
    pub(crate) static STOPPED: core::cell::Cell<Option<ShutdownReason>> = const { core::cell::Cell::new(None) };
}

/// The host tests' stand-in for stopping: records the reason.
#[cfg(test)]
fn stop(reason: ShutdownReason) {
    STOPPED.with(|stopped| stopped.set(Some(reason)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_of_control_shutdown() {
        assert_eq!(request_from(""), Request::None);
        assert_eq!(
            request_from("poweroff"),
            Request::Shutdown(ShutdownReason::Poweroff)
        );
        assert_eq!(
            request_from("halt"),
            Request::Shutdown(ShutdownReason::Poweroff)
        );
        assert_eq!(
            request_from("reboot\0"),
            Request::Shutdown(ShutdownReason::Reboot)
        );
        assert_eq!(request_from("suspend"), Request::Suspend);
        assert_eq!(request_from("explode"), Request::Unknown);
    }
}
