//! The store daemon: Dom0's side of every domain's XenStore ring, around
//! the pure store of `dom0::xenstore`.
//!
//! For each domain the toolstack creates, Dom0 maps the ring page that
//! `start_info.store_mfn` names (a foreign mapping, as for the console)
//! and connects to the event channel of `start_info.store_evtchn`. When the
//! guest signals, `service` moves its requests into the store and the
//! replies and watch events back (`dom0::xenstore::ring::service`). Dom0
//! itself uses the store through a local call (`call`), the same dispatch
//! without a ring. The shell's `xenstore-*` commands are here too.
//!
//! The ring page is a `sys::foreign::ForeignPages` at the domain's page of
//! `areas::STORE_RINGS`, mapped for the connection's life (dropping the
//! connection unmaps it); every access to it is a bounds-checked volatile
//! one, at the field offsets of `XenstoreDomainInterface`.
#![forbid(unsafe_code)]

use crate::areas::STORE_RINGS;
use crate::builder::StoreSetup;
use crate::sys::foreign::ForeignPages;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::mem::offset_of;
use dom0::xenstore::ring::{self, Index, RingPage};
use dom0::xenstore::wire::Operation;
use dom0::xenstore::{Store, XsError};
use guest_kernel::abi::xs_wire::XenstoreDomainInterface;
use guest_kernel::{events, println};
use spin::Mutex;

/// The store (created at the first use).
static STORE: Mutex<Option<Store>> = Mutex::new(None);

/// One domain's ring, as the daemon sees it.
struct Connection {
    domain: u16,
    /// Dom0's end of the event channel.
    port: u32,
    /// The guest's ring page, mapped while the connection lives.
    page: ForeignPages,
}

/// Where an index lives in the page.
fn index_offset(index: Index) -> usize {
    match index {
        Index::RequestConsumer => offset_of!(XenstoreDomainInterface, req_cons),
        Index::RequestProducer => offset_of!(XenstoreDomainInterface, req_prod),
        Index::ResponseConsumer => offset_of!(XenstoreDomainInterface, rsp_cons),
        Index::ResponseProducer => offset_of!(XenstoreDomainInterface, rsp_prod),
    }
}

/// Where the byte at `position` of a ring starting at `ring` lives, if it
/// is inside that ring.
fn ring_offset(ring: usize, position: usize) -> Option<u64> {
    (position < guest_kernel::abi::xs_wire::XENSTORE_RING_SIZE).then_some((ring + position) as u64)
}

impl RingPage for ForeignPages {
    fn load(&self, index: Index) -> u32 {
        // Volatile, since the guest writes the indices concurrently; the
        // offsets are the structure's own, so the read always fits.
        let value = self.read_u32(index_offset(index) as u64).unwrap_or(0);
        // The bytes the index covers are read after it.
        core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
        value
    }

    fn store(&mut self, index: Index, value: u32) {
        // The bytes written before are visible before the index moves.
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
        self.write_u32(index_offset(index) as u64, value);
    }

    fn request_byte(&self, position: usize) -> u8 {
        // `ring::service` passes positions below the ring size; checked again.
        ring_offset(offset_of!(XenstoreDomainInterface, req), position)
            .and_then(|offset| self.read_byte(offset))
            .unwrap_or(0)
    }

    fn write_response_byte(&mut self, position: usize, byte: u8) {
        if let Some(offset) = ring_offset(offset_of!(XenstoreDomainInterface, rsp), position) {
            self.write(offset, &[byte]);
        }
    }
}

static CONNECTIONS: Mutex<Vec<Connection>> = Mutex::new(Vec::new());

/// Runs `work` on the store.
fn with_store<T>(work: impl FnOnce(&mut Store) -> T) -> T {
    let mut store = STORE.lock();
    work(store.get_or_insert_with(Store::default))
}

/// Dom0's local call path into the store.
pub fn call(operation: Operation<'_>) -> Result<Vec<u8>, XsError> {
    with_store(|store| store.call(0, 0, operation))
}

/// Connects the daemon to a new domain's store ring and introduces it.
pub fn connect(domain: u16, setup: StoreSetup) -> Result<(), &'static str> {
    let port = events::bind_interdomain(domain, setup.port)
        .map_err(|_| "cannot connect to its store channel")?;
    let _ = events::take(port);
    let page = STORE_RINGS
        .page_for(domain)
        .and_then(|address| ForeignPages::map(address, domain, &[setup.mfn], true).ok());
    let Some(page) = page else {
        let _ = events::close(port);
        return Err("cannot map its store page");
    };
    CONNECTIONS.lock().push(Connection { domain, port, page });
    with_store(|store| store.introduce(domain));
    Ok(())
}

/// Disconnects from a domain's ring (before it is destroyed) and releases
/// it in the store (`@releaseDomain`).
pub fn disconnect(domain: u16) {
    with_store(|store| store.release(domain));
    let mut connections = CONNECTIONS.lock();
    let Some(index) = connections.iter().position(|c| c.domain == domain) else {
        return;
    };
    let connection = connections.remove(index);
    let _ = events::close(connection.port);
    let _ = connection.page.unmap();
}

/// Whether one of the rings signalled (takes the signals).
pub fn take_signals() -> bool {
    let mut any = false;
    for connection in CONNECTIONS.lock().iter() {
        any |= events::take(connection.port);
    }
    any
}

/// Serves every ring: requests in, replies and events out. A guest whose
/// indices are nonsense or that broke the protocol is no longer served
/// (and told so in its page's `error` field), and Dom0 goes on.
pub fn service() {
    let mut connections = CONNECTIONS.lock();
    let mut store = STORE.lock();
    let store = store.get_or_insert_with(Store::default);
    for connection in connections.iter_mut() {
        if store.is_broken(connection.domain) {
            continue;
        }
        let progress = ring::service(store, connection.domain, &mut connection.page);
        if progress.bad_indices || store.is_broken(connection.domain) {
            println!(
                "[xenstored] domain {} broke the ring protocol; no longer serving it",
                connection.domain
            );
            store.mark_broken(connection.domain);
            connection.page.write_u32(
                offset_of!(XenstoreDomainInterface, error) as u64,
                guest_kernel::abi::xs_wire::XENSTORE_ERROR_PROTO,
            );
        }
        if progress.written > 0 || progress.taken > 0 {
            let _ = events::send(connection.port);
        }
    }
}

/// `xl create`'s nodes for domain `id`: its home (owned by it, so it may
/// write there within its quota; Dom0 may read everything anyway), its
/// name and ID, and the VM record under `/vm`.
pub fn write_domain_nodes(id: u16, name: &str) -> Result<(), XsError> {
    let home = format!("/local/domain/{id}");
    let vm = format!("/vm/{}", uuid_for(id));
    call(Operation::Mkdir(home.as_bytes()))?;
    let owner = format!("n{id}");
    call(Operation::SetPerms(
        home.as_bytes(),
        alloc::vec![owner.as_bytes()],
    ))?;
    for (key, value) in [("name", name), ("domid", &format!("{id}")), ("vm", &vm)] {
        call(Operation::Write(
            format!("{home}/{key}").as_bytes(),
            value.as_bytes(),
        ))?;
    }
    // The toolstack's requests (`xl shutdown`, `xl reboot`) go in
    // control/shutdown, which the guest must be able to clear (its
    // acknowledgement) and to watch: owned by the guest, as libxl makes it.
    // The guest adds control/feature-poweroff and feature-reboot when it
    // starts watching.
    let shutdown = format!("{home}/{SHUTDOWN_NODE}");
    call(Operation::Write(shutdown.as_bytes(), b""))?;
    call(Operation::SetPerms(
        shutdown.as_bytes(),
        alloc::vec![owner.as_bytes()],
    ))?;
    call(Operation::Write(
        format!("{vm}/name").as_bytes(),
        name.as_bytes(),
    ))?;
    call(Operation::Write(
        format!("{vm}/uuid").as_bytes(),
        uuid_for(id).as_bytes(),
    ))?;
    Ok(())
}

/// Where the toolstack asks a guest to shut down, under its home.
pub const SHUTDOWN_NODE: &str = "control/shutdown";

/// A node's value as text.
pub fn read_text(path: &str) -> Result<String, XsError> {
    call(Operation::Read(path.as_bytes())).map(|value| String::from_utf8_lossy(&value).into_owned())
}

/// Domain `id`'s name, from its `/local/domain/<id>/name`.
pub fn domain_name(id: u16) -> Option<String> {
    read_text(&format!("/local/domain/{id}/name")).ok()
}

/// Whether domain `id` announced `control/<feature>` (wrote "1" there).
pub fn has_control_feature(id: u16, feature: &str) -> bool {
    read_text(&format!("/local/domain/{id}/control/{feature}")).is_ok_and(|value| value == "1")
}

/// Writes `word` ("poweroff", "reboot") in domain `id`'s
/// `control/shutdown`, and sends the watch event at once.
pub fn request_shutdown(id: u16, word: &str) -> Result<(), XsError> {
    call(Operation::Write(
        format!("/local/domain/{id}/{SHUTDOWN_NODE}").as_bytes(),
        word.as_bytes(),
    ))?;
    service();
    Ok(())
}

/// `xl destroy`'s removal of domain `id`'s nodes.
pub fn remove_domain_nodes(id: u16) {
    let home = format!("/local/domain/{id}");
    let vm = call(Operation::Read(format!("{home}/vm").as_bytes()));
    if let Ok(vm) = vm {
        let _ = call(Operation::Rm(&vm));
    }
    let _ = call(Operation::Rm(home.as_bytes()));
}

/// The VM's UUID. This toolstack has no UUIDs of its own yet: it makes one
/// from the domain ID, unique among the running domains (Xen takes it from
/// the configuration's `uuid` or makes a random one).
fn uuid_for(id: u16) -> String {
    format!("00000000-0000-0000-0000-{:012x}", id)
}

fn explain(command: &str, path: &str, error: XsError) {
    let why = match error {
        XsError::ENOENT => "there is no such node",
        XsError::EACCES => "permission denied",
        XsError::EINVAL => "not a valid path (letters, digits, - _ @ and / only)",
        XsError::E2BIG => "the value is too large",
        _ => "the store refused",
    };
    println!("{command}: {path}: {why} ({})", error.name());
}

/// `xenstore-read PATH`.
pub fn read(path: &str) {
    match call(Operation::Read(path.as_bytes())) {
        Ok(value) => println!("{}", String::from_utf8_lossy(&value)),
        Err(error) => explain("xenstore-read", path, error),
    }
}

/// `xenstore-write PATH VALUE`.
pub fn write(path: &str, value: &str) {
    if let Err(error) = call(Operation::Write(path.as_bytes(), value.as_bytes())) {
        explain("xenstore-write", path, error);
    }
    // The watch events it fired go out now, not when a guest next signals.
    service();
}

/// `xenstore-rm PATH`.
pub fn remove(path: &str) {
    if let Err(error) = call(Operation::Rm(path.as_bytes())) {
        explain("xenstore-rm", path, error);
    }
    service();
}

/// The names of `path`'s children.
fn children(path: &str) -> Result<Vec<String>, XsError> {
    let listing = call(Operation::Directory(path.as_bytes()))?;
    Ok(listing
        .split(|&byte| byte == 0)
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect())
}

/// `xenstore-list PATH`.
pub fn list(path: &str) {
    match children(path) {
        Ok(names) => names.iter().for_each(|name| println!("{name}")),
        Err(error) => explain("xenstore-list", path, error),
    }
}

/// `xenstore-ls [PATH]`: the subtree, one node per line, indented by depth,
/// as Xen's tool prints it (`name = "value"`).
pub fn ls(path: Option<&str>) {
    let root = path.unwrap_or("/");
    if let Err(error) = children(root) {
        return explain("xenstore-ls", root, error);
    }
    // Depth-first with an explicit stack, children in order.
    let mut stack: Vec<(String, usize)> = Vec::new();
    let push_children = |stack: &mut Vec<(String, usize)>, path: &str, depth: usize| {
        if let Ok(names) = children(path) {
            for name in names.iter().rev() {
                let child = if path == "/" {
                    format!("/{name}")
                } else {
                    format!("{path}/{name}")
                };
                stack.push((child, depth));
            }
        }
    };
    push_children(&mut stack, root, 0);
    while let Some((path, depth)) = stack.pop() {
        let value = call(Operation::Read(path.as_bytes())).unwrap_or_default();
        let name = path.rsplit('/').next().unwrap_or("");
        println!(
            "{:depth$}{name} = \"{}\"",
            "",
            String::from_utf8_lossy(&value).escape_debug()
        );
        push_children(&mut stack, &path, depth + 1);
    }
}

/// `xenstore-watch PATH`: prints each event until a key is pressed.
pub fn watch(path: &str) {
    const TOKEN: &[u8] = b"xenstore-watch";
    if let Err(error) = call(Operation::Watch(path.as_bytes(), TOKEN)) {
        return explain("xenstore-watch", path, error);
    }
    loop {
        while let Some(message) = with_store(|store| store.take_message(0)) {
            let payload = message.get(16..).unwrap_or(&[]);
            if let Some(changed) = payload.split(|&byte| byte == 0).next() {
                println!("{}", String::from_utf8_lossy(changed));
            }
        }
        let mut typed = [0u8; 16];
        let count = guest_kernel::abi::wrappers::console_read(&mut typed);
        if count > 0 {
            break;
        }
        if crate::wait_for_activity() {
            crate::toolstack::watch();
        }
    }
    let _ = call(Operation::Unwatch(path.as_bytes(), TOKEN));
    // Drop events that came after the last print.
    while with_store(|store| store.take_message(0)).is_some() {}
}
