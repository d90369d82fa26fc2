//! The config store: a XenStore-compatible tree of keys that Dom0 serves to
//! every domain, with Xen's wire protocol.
//!
//! This folder is pure logic, tested on the host; `src/xenstored.rs` (in the
//! binary) connects it to each domain's ring page and event channel. The
//! pieces:
//!
//! - [`tree`]: the nodes and paths, in Xen's layout;
//! - [`permissions`]: who may read and write a node;
//! - [`operations`]: what each request does, checked;
//! - [`transaction`]: changes kept aside and committed at once, `EAGAIN` on
//!   conflict;
//! - [`watch`]: events when a part of the tree changes;
//! - [`quota`]: the limits that keep a hostile guest from exhausting Dom0;
//! - [`wire`]: reading requests (hostile bytes) and writing replies;
//! - [`ring`]: moving bytes between a ring page and the store.
//!
//! ```text
//!  guest ──req ring──> MessageReader ──> decode ──> Store::dispatch ──> Tree
//!    ^                                                   |      (or Transaction)
//!    └───rsp ring──── outgoing queue <── encode <── reply + watch events
//! ```
//!
//! Dom0 itself calls [`Store::call`]: the same dispatch, without the bytes.
#![forbid(unsafe_code)]

pub mod operations;
pub mod permissions;
pub mod quota;
pub mod ring;
pub mod transaction;
pub mod tree;
pub mod watch;
pub mod wire;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use hypercall_abi::xs_wire::{MessageType, XENSTORE_PAYLOAD_MAX};
use operations::{Caller, Changed};
use permissions::{Access, Permissions};
use quota::Quotas;
use transaction::{Transaction, TransactionView};
use tree::Tree;
use watch::{Watch, Watches};
use wire::{Message, MessageReader, Operation};

/// The errors a store answers with, by Xen's names.
#[allow(clippy::upper_case_acronyms)] // Xen's errno names, as clients see them on the wire
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsError {
    /// No such node.
    ENOENT,
    /// Not permitted.
    EACCES,
    /// Already exists (a watch registered twice).
    EEXIST,
    /// A malformed request.
    EINVAL,
    /// The transaction conflicted: start again.
    EAGAIN,
    /// A value or node too large.
    E2BIG,
    /// Not enough memory (a reply too large to send).
    ENOSPC,
    /// A domain's quota is used up.
    EQUOTA,
    /// A request type this store does not implement.
    ENOSYS,
}

impl XsError {
    /// The name sent on the wire.
    pub fn name(self) -> &'static str {
        match self {
            XsError::ENOENT => "ENOENT",
            XsError::EACCES => "EACCES",
            XsError::EEXIST => "EEXIST",
            XsError::EINVAL => "EINVAL",
            XsError::EAGAIN => "EAGAIN",
            XsError::E2BIG => "E2BIG",
            XsError::ENOSPC => "ENOSPC",
            XsError::EQUOTA => "EQUOTA",
            XsError::ENOSYS => "ENOSYS",
        }
    }

    /// The error a name stands for (a client reading a reply).
    pub fn from_name(name: &[u8]) -> Option<Self> {
        [
            XsError::ENOENT,
            XsError::EACCES,
            XsError::EEXIST,
            XsError::EINVAL,
            XsError::EAGAIN,
            XsError::E2BIG,
            XsError::ENOSPC,
            XsError::EQUOTA,
            XsError::ENOSYS,
        ]
        .into_iter()
        .find(|error| error.name().as_bytes() == name)
    }
}

/// One domain the store serves: its half-read request, and its replies and
/// events not yet taken.
#[derive(Debug, Default)]
struct Connection {
    reader: MessageReader,
    /// Whole messages waiting to go out; `sent` bytes of the first are out.
    outgoing: VecDeque<Vec<u8>>,
    sent: usize,
    /// Replies among `outgoing` (the outstanding-requests quota).
    replies_queued: usize,
    /// The connection broke the protocol; it is no longer read.
    broken: bool,
    /// Watch events dropped because the domain did not read them.
    dropped_events: u64,
}

/// The whole store.
#[derive(Debug)]
pub struct Store {
    tree: Tree,
    watches: Watches,
    transactions: BTreeMap<u32, Transaction>,
    last_transaction: u32,
    connections: BTreeMap<u16, Connection>,
    quotas: Quotas,
    /// Messages to queue after the reply being made.
    deferred: Vec<(u16, Vec<u8>)>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new(Quotas::default())
    }
}

impl Store {
    /// A store with the initial tree, serving Dom0.
    pub fn new(quotas: Quotas) -> Self {
        let mut connections = BTreeMap::new();
        connections.insert(0, Connection::default());
        Self {
            tree: Tree::new(),
            watches: Watches::default(),
            transactions: BTreeMap::new(),
            last_transaction: 0,
            connections,
            quotas,
            deferred: Vec::new(),
        }
    }

    /// The tree (for `xenstore-ls` and checks).
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    fn caller(domain: u16) -> Caller {
        Caller {
            domain,
            privileged: domain == 0,
        }
    }

    /// Starts serving `domain` and fires `@introduceDomain`.
    pub fn introduce(&mut self, domain: u16) {
        self.connections.entry(domain).or_default();
        self.fire(&special("@introduceDomain"));
    }

    /// Whether `domain` is served.
    pub fn is_introduced(&self, domain: u16) -> bool {
        self.connections.contains_key(&domain)
    }

    /// Stops serving `domain` (it is gone): forgets its watches,
    /// transactions and queued messages, and fires `@releaseDomain`. Its
    /// nodes stay until the toolstack removes them, as in Xen.
    pub fn release(&mut self, domain: u16) {
        if domain == 0 {
            return;
        }
        self.connections.remove(&domain);
        self.watches.remove_domain(domain);
        self.transactions
            .retain(|_, transaction| transaction.domain != domain);
        self.fire(&special("@releaseDomain"));
    }

    /// Whether the store takes more requests from `domain` now: it is
    /// served, not broken, and has fewer replies waiting than its quota.
    pub fn accepts_requests(&self, domain: u16) -> bool {
        self.connections.get(&domain).is_some_and(|connection| {
            !connection.broken
                && (domain == 0 || connection.replies_queued < self.quotas.outstanding_requests)
        })
    }

    /// Whether `domain`'s connection broke the protocol.
    pub fn is_broken(&self, domain: u16) -> bool {
        self.connections
            .get(&domain)
            .is_some_and(|connection| connection.broken)
    }

    /// Stops reading `domain`'s ring (the glue found its indices nonsense).
    pub fn mark_broken(&mut self, domain: u16) {
        if let Some(connection) = self.connections.get_mut(&domain) {
            connection.broken = true;
        }
    }

    /// Watch events dropped for `domain` because it did not read them.
    pub fn dropped_events(&self, domain: u16) -> u64 {
        self.connections
            .get(&domain)
            .map_or(0, |connection| connection.dropped_events)
    }

    /// Takes request bytes from `domain`'s ring, answering each whole
    /// request; stops when the domain has too many replies waiting. Returns
    /// how many bytes it took (the rest stay in the ring for later).
    pub fn receive(&mut self, domain: u16, bytes: &[u8]) -> usize {
        let mut used = 0;
        while used < bytes.len() && self.accepts_requests(domain) {
            let Some(connection) = self.connections.get_mut(&domain) else {
                break;
            };
            let (taken, result) = connection.reader.take(&bytes[used..]);
            used += taken;
            match result {
                Ok(Some(message)) => self.handle(domain, &message),
                Ok(None) => {}
                Err(_) => {
                    connection.broken = true;
                    return bytes.len();
                }
            }
        }
        used
    }

    /// Answers one whole request from `domain` (its reply goes into the
    /// domain's outgoing queue).
    pub fn handle(&mut self, domain: u16, message: &Message) {
        let header = message.header;
        let reply = wire::decode(message).and_then(|operation| {
            let kind =
                MessageType::from_raw(header.message_type).unwrap_or(MessageType::ErrorReply);
            self.dispatch(domain, header.tx_id, operation)
                .map(|payload| (kind, payload))
        });
        let bytes = match reply {
            Ok((kind, payload)) => wire::encode(kind, header.req_id, header.tx_id, &payload),
            Err(error) => {
                let mut name = Vec::from(error.name().as_bytes());
                name.push(0);
                wire::encode(MessageType::ErrorReply, header.req_id, header.tx_id, &name)
            }
        };
        if let Some(connection) = self.connections.get_mut(&domain) {
            connection.outgoing.push_back(bytes);
            connection.replies_queued += 1;
        }
        self.flush_deferred();
    }

    /// Dom0's local call path: the same dispatch as a request from the
    /// ring, without the bytes. Returns the reply's payload.
    pub fn call(
        &mut self,
        domain: u16,
        tx_id: u32,
        operation: Operation<'_>,
    ) -> Result<Vec<u8>, XsError> {
        let result = self.dispatch(domain, tx_id, operation);
        self.flush_deferred();
        result
    }

    /// The next bytes to send `domain` (at most `room`), taken from its
    /// queue. Empty when there is nothing to send.
    pub fn take_output(&mut self, domain: u16, room: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let Some(connection) = self.connections.get_mut(&domain) else {
            return out;
        };
        while out.len() < room {
            let Some(front) = connection.outgoing.front() else {
                break;
            };
            let count = (front.len() - connection.sent).min(room - out.len());
            out.extend_from_slice(&front[connection.sent..connection.sent + count]);
            connection.sent += count;
            if connection.sent == front.len() {
                let is_event = front.get(..4) == Some(&MessageType::WatchEvent.raw().to_le_bytes());
                connection.outgoing.pop_front();
                connection.sent = 0;
                if !is_event {
                    connection.replies_queued = connection.replies_queued.saturating_sub(1);
                }
            }
        }
        out
    }

    /// Takes `domain`'s next whole queued message (Dom0's shell reads its
    /// watch events this way).
    pub fn take_message(&mut self, domain: u16) -> Option<Vec<u8>> {
        let connection = self.connections.get_mut(&domain)?;
        if connection.sent != 0 {
            return None;
        }
        let message = connection.outgoing.pop_front()?;
        if message.get(..4) != Some(&MessageType::WatchEvent.raw().to_le_bytes()) {
            connection.replies_queued = connection.replies_queued.saturating_sub(1);
        }
        Some(message)
    }

    /// Queues watch events for a change.
    fn fire(&mut self, changed: &Changed) {
        let limit = self.quotas.queued_events;
        for (domain, payload) in self.watches.events(changed) {
            let Some(connection) = self.connections.get_mut(&domain) else {
                continue;
            };
            let events = connection.outgoing.len() - connection.replies_queued;
            if domain != 0 && events >= limit {
                connection.dropped_events += 1;
                continue;
            }
            connection
                .outgoing
                .push_back(wire::encode(MessageType::WatchEvent, 0, 0, &payload));
        }
    }

    /// Runs one operation for `domain`, inside transaction `tx_id` when it
    /// is not 0.
    fn dispatch(
        &mut self,
        domain: u16,
        tx_id: u32,
        operation: Operation<'_>,
    ) -> Result<Vec<u8>, XsError> {
        let caller = Self::caller(domain);
        let path = |raw: &[u8]| tree::canonical(domain, raw, false);
        match operation {
            Operation::Read(raw) => {
                let path = path(raw)?;
                self.with_nodes(domain, tx_id, |nodes| {
                    operations::read(nodes, caller, &path)
                })
            }
            Operation::Directory(raw) => {
                let path = path(raw)?;
                let names = self.with_nodes(domain, tx_id, |nodes| {
                    operations::directory(nodes, caller, &path)
                })?;
                let mut payload = Vec::new();
                for name in names {
                    payload.extend_from_slice(name.as_bytes());
                    payload.push(0);
                }
                if payload.len() > XENSTORE_PAYLOAD_MAX {
                    return Err(XsError::E2BIG);
                }
                Ok(payload)
            }
            Operation::GetPerms(raw) => {
                let path = path(raw)?;
                self.with_nodes(domain, tx_id, |nodes| {
                    operations::get_permissions(nodes, caller, &path)
                })
                .map(|permissions| permissions.to_wire())
            }
            Operation::Write(raw, value) => {
                let path = path(raw)?;
                let quotas = self.quotas;
                self.change(domain, tx_id, |nodes| {
                    operations::write(nodes, caller, &quotas, &path, value).map(Some)
                })
            }
            Operation::Mkdir(raw) => {
                let path = path(raw)?;
                let quotas = self.quotas;
                self.change(domain, tx_id, |nodes| {
                    operations::mkdir(nodes, caller, &quotas, &path)
                })
            }
            Operation::Rm(raw) => {
                let path = path(raw)?;
                self.change(domain, tx_id, |nodes| {
                    operations::remove(nodes, caller, &path).map(Some)
                })
            }
            Operation::SetPerms(raw, strings) => {
                let path = path(raw)?;
                let permissions = Permissions::parse(strings.into_iter())?;
                let quotas = self.quotas;
                self.change(domain, tx_id, |nodes| {
                    operations::set_permissions(nodes, caller, &quotas, &path, permissions)
                        .map(Some)
                })
            }
            Operation::Watch(raw, token) => {
                let watched = tree::canonical(domain, raw, true)?;
                if self.watches.contains(domain, &watched, token) {
                    return Err(XsError::EEXIST);
                }
                if !caller.privileged
                    && self.watches.count(domain) >= self.quotas.watches_per_domain
                {
                    return Err(XsError::EQUOTA);
                }
                let watch = Watch {
                    domain,
                    path: watched,
                    token: Vec::from(token),
                    relative: !raw.starts_with(b"/") && !raw.starts_with(b"@"),
                };
                // Xen sends one event at once, so a client can read the
                // state and then only follow changes.
                let first = wire::encode(MessageType::WatchEvent, 0, 0, &watch.event(&watch.path));
                self.watches.add(watch);
                self.queue_after_reply(domain, first);
                Ok(ok())
            }
            Operation::Unwatch(raw, token) => {
                let watched = tree::canonical(domain, raw, true)?;
                if self.watches.remove(domain, &watched, token) {
                    Ok(ok())
                } else {
                    Err(XsError::ENOENT)
                }
            }
            Operation::ResetWatches => {
                self.watches.remove_domain(domain);
                Ok(ok())
            }
            Operation::TransactionStart => {
                let open = self
                    .transactions
                    .values()
                    .filter(|transaction| transaction.domain == domain)
                    .count();
                if !caller.privileged && open >= self.quotas.transactions_per_domain {
                    return Err(XsError::EQUOTA);
                }
                let mut id = self.last_transaction;
                loop {
                    id = id.wrapping_add(1);
                    if id != 0 && !self.transactions.contains_key(&id) {
                        break;
                    }
                }
                self.last_transaction = id;
                self.transactions.insert(id, Transaction::new(domain));
                let mut payload = Vec::from(format!("{id}").as_bytes());
                payload.push(0);
                Ok(payload)
            }
            Operation::TransactionEnd(commit) => {
                match self.transactions.get(&tx_id) {
                    Some(transaction) if transaction.domain == domain => {}
                    _ => return Err(XsError::ENOENT),
                }
                let transaction = self.transactions.remove(&tx_id).ok_or(XsError::ENOENT)?;
                if commit {
                    let changes = transaction.commit(
                        &mut self.tree,
                        caller.privileged,
                        self.quotas.nodes_per_domain,
                    )?;
                    for changed in &changes {
                        self.fire(changed);
                    }
                }
                Ok(ok())
            }
            Operation::Introduce(introduced, _, _) => {
                // The ring page and channel are the glue's business; over
                // the wire only Dom0 may ask, and Dom0 introduces domains
                // through its local call path.
                if !caller.privileged {
                    return Err(XsError::EACCES);
                }
                self.introduce(introduced);
                Ok(ok())
            }
            Operation::Release(released) => {
                if !caller.privileged {
                    return Err(XsError::EACCES);
                }
                self.release(released);
                Ok(ok())
            }
            Operation::GetDomainPath(of) => {
                let mut payload = Vec::from(tree::domain_path(of).as_bytes());
                payload.push(0);
                Ok(payload)
            }
            Operation::IsDomainIntroduced(of) => Ok(Vec::from(if self.is_introduced(of) {
                &b"T\0"[..]
            } else {
                b"F\0"
            })),
            Operation::Unsupported(_) => Err(XsError::ENOSYS),
        }
    }

    /// Runs `work` on the tree, or on transaction `tx_id`'s view of it
    /// (`ENOENT` if `domain` has no such transaction).
    fn with_nodes<T>(
        &mut self,
        domain: u16,
        tx_id: u32,
        work: impl FnOnce(&mut dyn operations::Nodes) -> Result<T, XsError>,
    ) -> Result<T, XsError> {
        if tx_id == 0 {
            return work(&mut self.tree);
        }
        let transaction = self
            .transactions
            .get_mut(&tx_id)
            .filter(|transaction| transaction.domain == domain)
            .ok_or(XsError::ENOENT)?;
        let mut view = TransactionView {
            tree: &self.tree,
            transaction,
        };
        work(&mut view)
    }

    /// Runs a changing operation; fires the watches now, or when the
    /// transaction commits.
    fn change(
        &mut self,
        domain: u16,
        tx_id: u32,
        work: impl FnOnce(&mut dyn operations::Nodes) -> Result<Option<Changed>, XsError>,
    ) -> Result<Vec<u8>, XsError> {
        if tx_id == 0 {
            if let Some(changed) = work(&mut self.tree)? {
                self.fire(&changed);
            }
            return Ok(ok());
        }
        let transaction = self
            .transactions
            .get_mut(&tx_id)
            .filter(|transaction| transaction.domain == domain)
            .ok_or(XsError::ENOENT)?;
        let mut view = TransactionView {
            tree: &self.tree,
            transaction,
        };
        if let Some(changed) = work(&mut view)? {
            view.transaction.changed.push(changed);
        }
        Ok(ok())
    }

    /// Queues a message for `domain` right after the reply being made (the
    /// first event of a new watch comes after its "OK").
    fn queue_after_reply(&mut self, domain: u16, message: Vec<u8>) {
        // The reply is queued by `handle` after dispatch returns (Dom0's
        // local calls have no reply message): keep the event until then.
        self.deferred.push((domain, message));
    }

    /// Queues the messages `queue_after_reply` kept.
    fn flush_deferred(&mut self) {
        for (domain, message) in core::mem::take(&mut self.deferred) {
            if let Some(connection) = self.connections.get_mut(&domain) {
                connection.outgoing.push_back(message);
            }
        }
    }
}

/// The "OK" reply.
fn ok() -> Vec<u8> {
    Vec::from(&b"OK\0"[..])
}

/// A change of a special watch name, which only Dom0 may hear about.
fn special(name: &str) -> Changed {
    Changed {
        path: String::from(name),
        permissions: Permissions::owned_by(0, Access::None),
        recursive: false,
    }
}

#[cfg(test)]
mod tests;
