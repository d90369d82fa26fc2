//! The xenbus client: this kernel's side of the config store (XenStore).
//!
//! The store daemon in Dom0 serves every domain over one shared page and
//! one event channel, both named in start_info (`store_mfn`,
//! `store_evtchn`). The page holds two 1 KiB byte rings (`io/xs_wire.h`):
//! we write requests into `req` and read replies and watch events from
//! `rsp`. On each stream travel messages, a 16-byte header (type, request
//! ID, transaction ID, payload length) and at most 4,096 bytes of payload:
//!
//! ```text
//!   guest                                  Dom0's store daemon
//!   READ  req_id=7  "name\0"      ──req──>
//!                                 <──rsp── WATCH_EVENT "data/x\0tok\0"  (queued)
//!                                 <──rsp── READ req_id=7 "web"          (the reply)
//! ```
//!
//! The daemon may send a watch event at any time, also between a request
//! and its reply, so [`Client::call`] keeps the events it meets in a queue
//! ([`Client::next_watch_event`] hands them out) and returns the message
//! that carries its own request ID. An error travels as a reply of type
//! `XS_ERROR` whose payload is the errno's name ("EACCES").
//!
//! Watches the kernel keeps for itself ([`Client::watch_with_handler`],
//! Linux's `register_xenbus_watch`), such as the one on `control/shutdown`
//! (`crate::control`), never reach [`Client::next_watch_event`]: their
//! events wait in a queue of their own, and their handler runs at the next
//! point where no request is outstanding ([`Client::run_handlers`]), so a
//! handler may make requests of its own. In the kernel those points are the
//! workload's own waits for events and the event upcall, which serves the
//! kernel's connection whenever the workload is not using it ([`poll`]).
//!
//! Transactions: [`Client::transaction`] starts one, runs its body with
//! the transaction's ID, and commits; when the daemon answers `EAGAIN`
//! (someone changed a node the body read), it runs the body again, as
//! Linux's xenbus users do.
//!
//! Devices: each end of a split device keeps its [`XenbusState`] in its
//! own `state` node; [`switch_state`] moves our end, as Linux's
//! `xenbus_switch_state`.
//!
//! The ring itself is reached through [`Transport`]: in the kernel the
//! mapped page and the event channel ([`StoreChannel`], over
//! `sys::memory::StoreRing`); in the host tests a simulated ring with a
//! small scripted daemon behind it.
#![forbid(unsafe_code)]

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use hypercall_abi::xs_wire::{
    MessageHeader, MessageType, XenbusState, ERROR_NAMES, XENSTORE_PAYLOAD_MAX, XENSTORE_RING_SIZE,
};

/// Access to the ring page and the daemon's attention.
pub trait Transport {
    /// The request ring's (consumer, producer) indices.
    fn request_indices(&self) -> (u32, u32);
    /// Stores a request byte at free-running index `index`.
    fn set_request_byte(&mut self, index: u32, byte: u8);
    /// Publishes the requests written so far (moves `req_prod`).
    fn set_request_producer(&mut self, producer: u32);
    /// The response ring's (consumer, producer) indices.
    fn response_indices(&self) -> (u32, u32);
    /// The response byte at free-running index `index`.
    fn response_byte(&self, index: u32) -> u8;
    /// Frees the response ring up to `consumer` (moves `rsp_cons`).
    fn set_response_consumer(&mut self, consumer: u32);
    /// Signals the daemon (new requests, or room for replies).
    fn notify(&mut self);
    /// Sleeps until `ready` holds, woken by the daemon's signals.
    fn wait_until(&mut self, ready: &mut dyn FnMut(&Self) -> bool);
}

/// Why a store operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XenbusError {
    /// The daemon refused, with this errno name ("EACCES", "EQUOTA", ...).
    Store(&'static str),
    /// The request's payload is above 4,096 bytes; nothing was sent (Xen's
    /// clients answer `E2BIG` themselves).
    PayloadTooLarge,
    /// A reply broke the protocol (a length above 4,096, or an answer that
    /// does not parse): the connection cannot be trusted any more.
    BrokenReply,
}

impl XenbusError {
    /// The errno name a learner sees.
    pub fn name(self) -> &'static str {
        match self {
            XenbusError::Store(name) => name,
            XenbusError::PayloadTooLarge => "E2BIG",
            XenbusError::BrokenReply => "EIO",
        }
    }

    /// The error an `XS_ERROR` payload names. A name we do not know counts
    /// as `EINVAL`, as in Xen's clients.
    fn from_payload(payload: &[u8]) -> Self {
        let name = payload.split(|&byte| byte == 0).next().unwrap_or(&[]);
        let known = ERROR_NAMES
            .iter()
            .find(|(known, _)| known.as_bytes() == name)
            .map_or("EINVAL", |(known, _)| known);
        XenbusError::Store(known)
    }
}

impl fmt::Display for XenbusError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// A transaction's ID as the daemon gave it; [`Transaction::NONE`] for a
/// request outside any transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transaction(pub u32);

impl Transaction {
    /// Not in a transaction.
    pub const NONE: Transaction = Transaction(0);
}

/// One watch event: the path that changed (relative when the watch was
/// registered relative) and the watch's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// The node that changed.
    pub path: String,
    /// The token given to [`Client::watch`].
    pub token: String,
}

/// One whole message from the response ring.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Message {
    header: MessageHeader,
    payload: Vec<u8>,
}

/// How often [`Client::transaction`] runs its body before it gives up on a
/// store that keeps answering `EAGAIN`.
pub const TRANSACTION_ATTEMPTS: usize = 16;

/// What runs on an event of a watch the kernel keeps for itself.
pub type WatchHandler<T> = fn(&mut Client<T>, &WatchEvent);

/// A connection to the store daemon over one ring.
pub struct Client<T: Transport> {
    transport: T,
    next_request_id: u32,
    /// The message being received (header and payload bytes so far).
    partial: Vec<u8>,
    /// Watch events that arrived while a reply was awaited.
    events: VecDeque<WatchEvent>,
    /// The kernel's own watches: token and handler.
    handlers: Vec<(String, WatchHandler<T>)>,
    /// Events of those watches, not yet handled.
    handler_events: VecDeque<WatchEvent>,
}

impl<T: Transport> Client<T> {
    /// A client over `transport`.
    pub fn new(transport: T) -> Self {
        Self {
            transport,
            next_request_id: 1,
            partial: Vec::new(),
            events: VecDeque::new(),
            handlers: Vec::new(),
            handler_events: VecDeque::new(),
        }
    }

    /// The transport (for the host tests' daemon).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Free bytes in the request ring now.
    fn request_room(transport: &T) -> usize {
        let (consumer, producer) = transport.request_indices();
        XENSTORE_RING_SIZE.saturating_sub(producer.wrapping_sub(consumer) as usize)
    }

    /// The header and payload of a request, checked for size.
    fn frame(
        &mut self,
        kind: MessageType,
        transaction: Transaction,
        payload: &[u8],
    ) -> Result<(u32, Vec<u8>), XenbusError> {
        if payload.len() > XENSTORE_PAYLOAD_MAX {
            return Err(XenbusError::PayloadTooLarge);
        }
        let request_id = self.next_request_id;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        let header = MessageHeader {
            message_type: kind.raw(),
            req_id: request_id,
            tx_id: transaction.0,
            len: payload.len() as u32,
        };
        let mut bytes = Vec::with_capacity(MessageHeader::SIZE + payload.len());
        bytes.extend_from_slice(&header.to_bytes());
        bytes.extend_from_slice(payload);
        Ok((request_id, bytes))
    }

    /// Copies `bytes` into the request ring (it has room) and publishes them.
    fn put(&mut self, bytes: &[u8]) {
        let (_, producer) = self.transport.request_indices();
        for (offset, &byte) in bytes.iter().enumerate() {
            self.transport
                .set_request_byte(producer.wrapping_add(offset as u32), byte);
        }
        self.transport
            .set_request_producer(producer.wrapping_add(bytes.len() as u32));
    }

    /// Sends one request, waiting for room in the ring when it is full (a
    /// message longer than the ring goes in pieces). Returns its request
    /// ID; the reply is not awaited.
    pub fn post(
        &mut self,
        kind: MessageType,
        transaction: Transaction,
        payload: &[u8],
    ) -> Result<u32, XenbusError> {
        let (request_id, bytes) = self.frame(kind, transaction, payload)?;
        let mut sent = 0;
        while sent < bytes.len() {
            let room = Self::request_room(&self.transport);
            if room == 0 {
                self.transport.notify();
                self.transport
                    .wait_until(&mut |transport| Self::request_room(transport) > 0);
                continue;
            }
            let count = room.min(bytes.len() - sent);
            self.put(&bytes[sent..sent + count]);
            sent += count;
        }
        self.transport.notify();
        Ok(request_id)
    }

    /// Sends one request only if all of it fits in the ring now; `None`
    /// (nothing written) when it does not. For a client that will not wait
    /// (the store-flood attacker).
    pub fn try_post(
        &mut self,
        kind: MessageType,
        transaction: Transaction,
        payload: &[u8],
    ) -> Result<Option<u32>, XenbusError> {
        if MessageHeader::SIZE + payload.len() > Self::request_room(&self.transport) {
            return Ok(None);
        }
        let (request_id, bytes) = self.frame(kind, transaction, payload)?;
        self.put(&bytes);
        self.transport.notify();
        Ok(Some(request_id))
    }

    /// Takes the bytes waiting in the response ring, up to the end of one
    /// message; the message once it is whole.
    fn receive(&mut self) -> Result<Option<Message>, XenbusError> {
        let (mut consumer, producer) = self.transport.response_indices();
        let waiting = producer.wrapping_sub(consumer) as usize;
        if waiting > XENSTORE_RING_SIZE {
            return Err(XenbusError::BrokenReply);
        }
        let mut available = waiting;
        let mut message = None;
        while available > 0 {
            let wanted = if self.partial.len() < MessageHeader::SIZE {
                MessageHeader::SIZE - self.partial.len()
            } else {
                let length = self.header().len as usize;
                if length > XENSTORE_PAYLOAD_MAX {
                    return Err(XenbusError::BrokenReply);
                }
                MessageHeader::SIZE + length - self.partial.len()
            };
            let count = wanted.min(available);
            for _ in 0..count {
                self.partial.push(self.transport.response_byte(consumer));
                consumer = consumer.wrapping_add(1);
            }
            available -= count;
            if self.partial.len() >= MessageHeader::SIZE {
                let header = self.header();
                if header.len as usize > XENSTORE_PAYLOAD_MAX {
                    return Err(XenbusError::BrokenReply);
                }
                if self.partial.len() == MessageHeader::SIZE + header.len as usize {
                    let payload = self.partial.split_off(MessageHeader::SIZE);
                    self.partial.clear();
                    message = Some(Message { header, payload });
                    break;
                }
            }
        }
        if waiting > 0 {
            self.transport.set_response_consumer(consumer);
            // The daemon may have more waiting for the room we made.
            self.transport.notify();
        }
        Ok(message)
    }

    /// The header of the message being received (its 16 bytes are in).
    fn header(&self) -> MessageHeader {
        let mut bytes = [0u8; MessageHeader::SIZE];
        bytes.copy_from_slice(&self.partial[..MessageHeader::SIZE]);
        MessageHeader::from_bytes(&bytes)
    }

    /// Files a watch event for later; `false` if `message` is not one.
    fn keep_if_event(&mut self, message: &Message) -> Result<bool, XenbusError> {
        if message.header.message_type != MessageType::WatchEvent.raw() {
            return Ok(false);
        }
        let mut parts = message.payload.split(|&byte| byte == 0);
        let (Some(path), Some(token)) = (parts.next(), parts.next()) else {
            return Err(XenbusError::BrokenReply);
        };
        let event = WatchEvent {
            path: String::from_utf8_lossy(path).into_owned(),
            token: String::from_utf8_lossy(token).into_owned(),
        };
        if self.handler_for(&event.token).is_some() {
            self.handler_events.push_back(event);
        } else {
            self.events.push_back(event);
        }
        Ok(true)
    }

    /// Sends a request and waits for its reply, keeping the watch events
    /// that come first. Replies to requests nobody waits for (sent with
    /// [`Client::post`]) are dropped on the way.
    pub fn call(
        &mut self,
        kind: MessageType,
        transaction: Transaction,
        payload: &[u8],
    ) -> Result<Vec<u8>, XenbusError> {
        let request_id = self.post(kind, transaction, payload)?;
        loop {
            let Some(message) = self.receive()? else {
                self.transport.wait_until(&mut |transport| {
                    let (consumer, producer) = transport.response_indices();
                    consumer != producer
                });
                continue;
            };
            if self.keep_if_event(&message)? || message.header.req_id != request_id {
                continue;
            }
            if message.header.message_type == MessageType::ErrorReply.raw() {
                return Err(XenbusError::from_payload(&message.payload));
            }
            return Ok(message.payload);
        }
    }

    /// The value of `path` (relative paths are under our home,
    /// `/local/domain/<our id>`).
    pub fn read(&mut self, transaction: Transaction, path: &str) -> Result<Vec<u8>, XenbusError> {
        self.call(MessageType::Read, transaction, &with_nul(path))
    }

    /// The value of `path` as text (bytes that are not UTF-8 shown as �).
    pub fn read_text(
        &mut self,
        transaction: Transaction,
        path: &str,
    ) -> Result<String, XenbusError> {
        let value = self.read(transaction, path)?;
        Ok(String::from_utf8_lossy(&value).into_owned())
    }

    /// Sets `path` to `value`, creating it (and missing parents).
    pub fn write(
        &mut self,
        transaction: Transaction,
        path: &str,
        value: &[u8],
    ) -> Result<(), XenbusError> {
        let mut payload = with_nul(path);
        payload.extend_from_slice(value);
        self.call(MessageType::Write, transaction, &payload)
            .map(|_| ())
    }

    /// Creates `path` with an empty value (no error if it exists).
    pub fn mkdir(&mut self, transaction: Transaction, path: &str) -> Result<(), XenbusError> {
        self.call(MessageType::Mkdir, transaction, &with_nul(path))
            .map(|_| ())
    }

    /// Removes `path` and everything under it.
    pub fn remove(&mut self, transaction: Transaction, path: &str) -> Result<(), XenbusError> {
        self.call(MessageType::Rm, transaction, &with_nul(path))
            .map(|_| ())
    }

    /// The names of `path`'s children.
    pub fn directory(
        &mut self,
        transaction: Transaction,
        path: &str,
    ) -> Result<Vec<String>, XenbusError> {
        let listing = self.call(MessageType::Directory, transaction, &with_nul(path))?;
        Ok(listing
            .split(|&byte| byte == 0)
            .filter(|name| !name.is_empty())
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect())
    }

    /// Watches `path` and everything under it; events carry `token`. The
    /// daemon sends one event at once (so the caller can read the state,
    /// then follow changes).
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XenbusError> {
        let mut payload = with_nul(path);
        payload.extend_from_slice(&with_nul(token));
        self.call(MessageType::Watch, Transaction::NONE, &payload)
            .map(|_| ())
    }

    /// Stops the watch on `path` with `token`.
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XenbusError> {
        let mut payload = with_nul(path);
        payload.extend_from_slice(&with_nul(token));
        self.call(MessageType::Unwatch, Transaction::NONE, &payload)
            .map(|_| ())
    }

    /// Watches `path` for the kernel itself: its events (the first one at
    /// once, as for every watch) go to `handler` instead of
    /// [`Client::next_watch_event`], at the next [`Client::run_handlers`].
    pub fn watch_with_handler(
        &mut self,
        path: &str,
        token: &str,
        handler: WatchHandler<T>,
    ) -> Result<(), XenbusError> {
        // Known before the first event can arrive.
        self.handlers.push((String::from(token), handler));
        let watched = self.watch(path, token);
        if watched.is_err() {
            self.handlers.pop();
        }
        watched
    }

    /// The handler of the kernel's watch with `token`, if it is one.
    fn handler_for(&self, token: &str) -> Option<WatchHandler<T>> {
        self.handlers
            .iter()
            .find(|(known, _)| known == token)
            .map(|&(_, handler)| handler)
    }

    /// Whether the kernel keeps watches of its own on this connection.
    pub fn has_handlers(&self) -> bool {
        !self.handlers.is_empty()
    }

    /// Runs the handlers of the kernel's watch events received so far.
    /// Call only where no request of ours is outstanding: a handler makes
    /// requests, and would take the reply another caller waits for.
    pub fn run_handlers(&mut self) {
        while let Some(event) = self.handler_events.pop_front() {
            if let Some(handler) = self.handler_for(&event.token) {
                handler(self, &event);
            }
        }
    }

    /// Takes every whole message waiting in the response ring (filing the
    /// watch events; replies nobody waits for are dropped) and runs the
    /// kernel's handlers, without waiting for anything.
    pub fn poll(&mut self) -> Result<(), XenbusError> {
        while let Some(message) = self.receive()? {
            self.keep_if_event(&message)?;
        }
        self.run_handlers();
        Ok(())
    }

    /// The next watch event if one has arrived, without waiting. The
    /// kernel's own watch events met on the way are handled first.
    pub fn next_watch_event(&mut self) -> Result<Option<WatchEvent>, XenbusError> {
        while self.events.is_empty() {
            let Some(message) = self.receive()? else {
                break;
            };
            // A reply nobody waits for any more is dropped.
            self.keep_if_event(&message)?;
        }
        self.run_handlers();
        Ok(self.events.pop_front())
    }

    /// Waits for the next watch event.
    pub fn wait_for_watch_event(&mut self) -> Result<WatchEvent, XenbusError> {
        loop {
            if let Some(event) = self.next_watch_event()? {
                return Ok(event);
            }
            self.transport.wait_until(&mut |transport| {
                let (consumer, producer) = transport.response_indices();
                consumer != producer
            });
        }
    }

    /// Starts a transaction.
    pub fn transaction_start(&mut self) -> Result<Transaction, XenbusError> {
        let reply = self.call(MessageType::TransactionStart, Transaction::NONE, b"\0")?;
        let digits = reply.split(|&byte| byte == 0).next().unwrap_or(&[]);
        core::str::from_utf8(digits)
            .ok()
            .and_then(|text| text.parse().ok())
            .filter(|&id| id != 0)
            .map(Transaction)
            .ok_or(XenbusError::BrokenReply)
    }

    /// Ends `transaction`: commits its changes (`commit`) or drops them.
    /// `Err(Store("EAGAIN"))`: a node it read changed meanwhile, nothing
    /// was applied.
    pub fn transaction_end(
        &mut self,
        transaction: Transaction,
        commit: bool,
    ) -> Result<(), XenbusError> {
        let payload: &[u8] = if commit { b"T\0" } else { b"F\0" };
        self.call(MessageType::TransactionEnd, transaction, payload)
            .map(|_| ())
    }

    /// Runs `body` in a transaction and commits it, starting again (up to
    /// [`TRANSACTION_ATTEMPTS`] times) while the commit answers `EAGAIN`.
    /// When `body` fails, the transaction is dropped and its error returned.
    pub fn transaction<R>(
        &mut self,
        mut body: impl FnMut(&mut Self, Transaction) -> Result<R, XenbusError>,
    ) -> Result<R, XenbusError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let transaction = self.transaction_start()?;
            let result = match body(self, transaction) {
                Ok(result) => result,
                Err(error) => {
                    let _ = self.transaction_end(transaction, false);
                    return Err(error);
                }
            };
            match self.transaction_end(transaction, true) {
                Err(XenbusError::Store("EAGAIN")) if attempts < TRANSACTION_ATTEMPTS => continue,
                Err(error) => return Err(error),
                Ok(()) => return Ok(result),
            }
        }
    }
}

/// `text` with its terminating NUL, as the wire carries paths and tokens.
fn with_nul(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(0);
    bytes
}

/// The state of the device end at `device_path` (its `state` node);
/// [`XenbusState::Unknown`] when the node is missing or not a state.
pub fn read_state<T: Transport>(
    client: &mut Client<T>,
    device_path: &str,
) -> Result<XenbusState, XenbusError> {
    let path = alloc::format!("{device_path}/state");
    match client.read_text(Transaction::NONE, &path) {
        Ok(text) => Ok(text
            .trim_end_matches('\0')
            .parse()
            .ok()
            .and_then(XenbusState::from_raw)
            .unwrap_or(XenbusState::Unknown)),
        Err(XenbusError::Store("ENOENT")) => Ok(XenbusState::Unknown),
        Err(error) => Err(error),
    }
}

/// Moves our end of a device to `state` by writing `<device_path>/state`,
/// as Linux's `xenbus_switch_state`: nothing when it is already there;
/// otherwise, in a transaction, only if the `state` node still exists (a
/// device the toolstack removed is not brought back to life by a late
/// write).
pub fn switch_state<T: Transport>(
    client: &mut Client<T>,
    device_path: &str,
    current: XenbusState,
    state: XenbusState,
) -> Result<XenbusState, XenbusError> {
    if current == state {
        return Ok(state);
    }
    let path = alloc::format!("{device_path}/state");
    let value = alloc::format!("{}", state.raw());
    client.transaction(|client, transaction| {
        client.read(transaction, &path)?;
        client.write(transaction, &path, value.as_bytes())
    })?;
    Ok(state)
}

/// The kernel's transport: our store page, mapped, and the event channel
/// to the daemon.
#[cfg(not(test))]
pub struct StoreChannel {
    ring: crate::sys::memory::StoreRing,
    port: hypercall_abi::event_channel::EventChannelPort,
}

#[cfg(not(test))]
impl Transport for StoreChannel {
    fn request_indices(&self) -> (u32, u32) {
        self.ring.request_indices()
    }

    fn set_request_byte(&mut self, index: u32, byte: u8) {
        self.ring.set_request_byte(index, byte);
    }

    fn set_request_producer(&mut self, producer: u32) {
        self.ring.set_request_producer(producer);
    }

    fn response_indices(&self) -> (u32, u32) {
        self.ring.response_indices()
    }

    fn response_byte(&self, index: u32) -> u8 {
        self.ring.response_byte(index)
    }

    fn set_response_consumer(&mut self, consumer: u32) {
        self.ring.set_response_consumer(consumer);
    }

    fn notify(&mut self) {
        let _ = crate::events::send(self.port);
    }

    fn wait_until(&mut self, ready: &mut dyn FnMut(&Self) -> bool) {
        let this = &*self;
        if crate::events::masked() {
            // Inside the event upcall (a kernel watch's handler, see
            // `poll`): blocking would unmask events and nest upcalls on
            // this stack, so give the CPU away until Dom0 has answered.
            while !ready(this) {
                hypercall_abi::wrappers::sched_yield();
            }
            return;
        }
        crate::events::wait_until(|| {
            // The signal itself only wakes us; the ring says what changed.
            let _ = crate::events::take(this.port);
            ready(this)
        });
    }
}

/// Why [`connect`] found no store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// start_info names no store page or channel (Dom0, or a builder
    /// without a store).
    NoStore,
    /// The page could not be mapped.
    Unmappable,
}

/// Where the store page is mapped (below the console page).
pub const STORE_ADDRESS: u64 = 0xffff_bfff_fffd_0000;

/// Connects to the store that start_info names: maps the page and takes
/// the channel. Call once (the page is mapped at a fixed address): either
/// this, for a client of one's own, or [`start`], for the kernel's shared
/// connection.
#[cfg(not(test))]
pub fn connect() -> Result<Client<StoreChannel>, ConnectError> {
    let info = crate::start::start_info();
    if info.store_mfn == 0 || info.store_evtchn == 0 {
        return Err(ConnectError::NoStore);
    }
    let ring = crate::sys::memory::StoreRing::map(STORE_ADDRESS, info.store_mfn)
        .map_err(|_| ConnectError::Unmappable)?;
    Ok(Client::new(StoreChannel {
        ring,
        port: info.store_evtchn,
    }))
}

/// The kernel's connection to the store, shared by the kernel's own
/// watches and the workload ([`start`], [`with_store`]).
#[cfg(not(test))]
static STORE: spin::Mutex<Option<Client<StoreChannel>>> = spin::Mutex::new(None);

/// Connects the kernel's shared connection (see [`connect`]).
#[cfg(not(test))]
pub fn start() -> Result<(), ConnectError> {
    let client = connect()?;
    *STORE.lock() = Some(client);
    Ok(())
}

/// Runs `work` on the kernel's connection; `None` when there is none.
/// The kernel's watch handlers run before it returns, on any of their
/// events that `work` met (they could not run while it was waiting for a
/// reply).
#[cfg(not(test))]
pub fn with_store<R>(work: impl FnOnce(&mut Client<StoreChannel>) -> R) -> Option<R> {
    let mut store = STORE.lock();
    let client = store.as_mut()?;
    let result = work(client);
    client.run_handlers();
    Some(result)
}

/// Serves the kernel's own watches from the event upcall: when the
/// workload is not using the connection, takes what the daemon sent and
/// runs the handlers. (When it is, the workload's next wait or the end of
/// its [`with_store`] runs them.) Only a connection with kernel watches is
/// touched: a client that never reads its replies keeps them unread.
#[cfg(not(test))]
pub fn poll() {
    let Some(mut store) = STORE.try_lock() else {
        return;
    };
    let Some(client) = store.as_mut().filter(|client| client.has_handlers()) else {
        return;
    };
    let (consumer, producer) = client.transport().response_indices();
    if consumer != producer || !client.handler_events.is_empty() {
        if let Err(error) = client.poll() {
            crate::println!("xenbus: the store connection broke ({error})");
        }
    }
}

#[cfg(test)]
mod tests;
