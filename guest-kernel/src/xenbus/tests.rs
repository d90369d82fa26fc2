//! Host tests of the xenbus client's framing over a simulated ring page,
//! with a small scripted daemon behind it that answers in pieces.

use super::*;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::ToString;
use alloc::vec;

/// Our home in the simulated store.
const HOME: &str = "/local/domain/5";

/// A daemon good enough to answer the client: values, a forbidden
/// subtree, watches, transactions (with conflicts on demand).
#[derive(Default)]
struct ScriptedDaemon {
    nodes: BTreeMap<String, Vec<u8>>,
    watches: Vec<(String, String)>,
    transactions: BTreeMap<u32, Vec<(String, Vec<u8>)>>,
    next_transaction: u32,
    /// Commits that answer `EAGAIN` before one succeeds.
    conflicts_left: usize,
    /// Request bytes taken, not yet a whole message.
    incoming: Vec<u8>,
    /// Reply and event bytes not yet in the ring.
    outgoing: VecDeque<u8>,
    /// Every request seen, for the tests to check.
    requests: Vec<(MessageHeader, Vec<u8>)>,
}

impl ScriptedDaemon {
    fn absolute(path: &str) -> String {
        if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{HOME}/{path}")
        }
    }

    fn queue(&mut self, kind: MessageType, request_id: u32, transaction: u32, payload: &[u8]) {
        let header = MessageHeader {
            message_type: kind.raw(),
            req_id: request_id,
            tx_id: transaction,
            len: payload.len() as u32,
        };
        self.outgoing.extend(header.to_bytes());
        self.outgoing.extend(payload.iter().copied());
    }

    fn fire(&mut self, changed: &str) {
        for (path, token) in self.watches.clone() {
            if changed.starts_with(&Self::absolute(&path)) {
                let mut payload = with_nul(changed);
                payload.extend(with_nul(&token));
                self.queue(MessageType::WatchEvent, 0, 0, &payload);
            }
        }
    }

    /// The answer to one request: `Ok(payload)` or an error name.
    fn answer(&mut self, header: MessageHeader, payload: &[u8]) -> Result<Vec<u8>, &'static str> {
        let mut strings = payload.split(|&byte| byte == 0);
        let first = core::str::from_utf8(strings.next().unwrap_or(&[])).unwrap();
        let path = Self::absolute(first);
        if path.starts_with("/local/domain/0") {
            return Err("EACCES");
        }
        if path == "/odd" {
            return Err("EWHATEVER");
        }
        let ok = b"OK\0".to_vec();
        match MessageType::from_raw(header.message_type).unwrap() {
            MessageType::Read => {
                let pending = self
                    .transactions
                    .get(&header.tx_id)
                    .and_then(|writes| writes.iter().rev().find(|(at, _)| *at == path))
                    .map(|(_, value)| value.clone());
                pending
                    .or_else(|| self.nodes.get(&path).cloned())
                    .ok_or("ENOENT")
            }
            MessageType::Write => {
                let value = payload[first.len() + 1..].to_vec();
                if header.tx_id != 0 {
                    self.transactions
                        .get_mut(&header.tx_id)
                        .ok_or("ENOENT")?
                        .push((path, value));
                } else {
                    self.nodes.insert(path.clone(), value);
                    self.fire(&path);
                }
                Ok(ok)
            }
            MessageType::Directory => {
                let prefix = format!("{path}/");
                let mut listing = Vec::new();
                for name in self
                    .nodes
                    .keys()
                    .filter_map(|key| key.strip_prefix(&prefix))
                {
                    listing.extend(with_nul(name));
                }
                Ok(listing)
            }
            MessageType::Watch => {
                let token = core::str::from_utf8(strings.next().unwrap()).unwrap();
                self.watches.push((first.to_string(), token.to_string()));
                Ok(ok)
            }
            MessageType::TransactionStart => {
                self.next_transaction += 1;
                self.transactions.insert(self.next_transaction, Vec::new());
                Ok(with_nul(&self.next_transaction.to_string()))
            }
            MessageType::TransactionEnd => {
                let writes = self.transactions.remove(&header.tx_id).ok_or("ENOENT")?;
                if payload == b"T\0" {
                    if self.conflicts_left > 0 {
                        self.conflicts_left -= 1;
                        return Err("EAGAIN");
                    }
                    for (path, value) in writes {
                        self.nodes.insert(path.clone(), value);
                        self.fire(&path);
                    }
                }
                Ok(ok)
            }
            _ => Err("ENOSYS"),
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        self.incoming.extend_from_slice(bytes);
        while self.incoming.len() >= MessageHeader::SIZE {
            let mut raw = [0u8; MessageHeader::SIZE];
            raw.copy_from_slice(&self.incoming[..MessageHeader::SIZE]);
            let header = MessageHeader::from_bytes(&raw);
            let end = MessageHeader::SIZE + header.len as usize;
            if self.incoming.len() < end {
                return;
            }
            let payload = self.incoming[MessageHeader::SIZE..end].to_vec();
            self.incoming.drain(..end);
            self.requests.push((header, payload.clone()));
            let kind = MessageType::from_raw(header.message_type).unwrap();
            match self.answer(header, &payload) {
                Ok(reply) => {
                    self.queue(kind, header.req_id, header.tx_id, &reply);
                    if kind == MessageType::Watch {
                        // Xen's first event comes right after the "OK".
                        let (path, token) = self.watches.last().unwrap().clone();
                        let mut event = with_nul(&path);
                        event.extend(with_nul(&token));
                        self.queue(MessageType::WatchEvent, 0, 0, &event);
                    }
                }
                Err(name) => self.queue(
                    MessageType::ErrorReply,
                    header.req_id,
                    header.tx_id,
                    &with_nul(name),
                ),
            }
        }
    }
}

/// A ring page in plain memory, and the daemon behind it. The daemon moves
/// only when the client waits, and then at most `chunk` reply bytes at a
/// time, so messages arrive split and the rings wrap often.
struct SimulatedRing {
    request: [u8; XENSTORE_RING_SIZE],
    request_consumer: u32,
    request_producer: u32,
    response: [u8; XENSTORE_RING_SIZE],
    response_consumer: u32,
    response_producer: u32,
    chunk: usize,
    daemon: ScriptedDaemon,
    notifications: usize,
}

impl SimulatedRing {
    fn new(chunk: usize) -> Self {
        // Start near the u32 wrap, as free-running indices eventually are.
        let start = u32::MAX - 100;
        Self {
            request: [0; XENSTORE_RING_SIZE],
            request_consumer: start,
            request_producer: start,
            response: [0; XENSTORE_RING_SIZE],
            response_consumer: start,
            response_producer: start,
            chunk,
            daemon: ScriptedDaemon::default(),
            notifications: 0,
        }
    }

    /// The daemon's turn: all waiting requests in, up to `chunk` bytes out.
    fn step(&mut self) {
        let waiting = self.request_producer.wrapping_sub(self.request_consumer);
        let bytes: Vec<u8> = (0..waiting)
            .map(|offset| {
                self.request[hypercall_abi::xs_wire::ring_position(
                    self.request_consumer.wrapping_add(offset),
                )]
            })
            .collect();
        self.request_consumer = self.request_producer;
        self.daemon.take(&bytes);
        let unread = self.response_producer.wrapping_sub(self.response_consumer) as usize;
        let count = self
            .chunk
            .min(XENSTORE_RING_SIZE - unread)
            .min(self.daemon.outgoing.len());
        for _ in 0..count {
            let byte = self.daemon.outgoing.pop_front().unwrap();
            self.response[hypercall_abi::xs_wire::ring_position(self.response_producer)] = byte;
            self.response_producer = self.response_producer.wrapping_add(1);
        }
    }
}

impl Transport for SimulatedRing {
    fn request_indices(&self) -> (u32, u32) {
        (self.request_consumer, self.request_producer)
    }

    fn set_request_byte(&mut self, index: u32, byte: u8) {
        self.request[hypercall_abi::xs_wire::ring_position(index)] = byte;
    }

    fn set_request_producer(&mut self, producer: u32) {
        self.request_producer = producer;
    }

    fn response_indices(&self) -> (u32, u32) {
        (self.response_consumer, self.response_producer)
    }

    fn response_byte(&self, index: u32) -> u8 {
        self.response[hypercall_abi::xs_wire::ring_position(index)]
    }

    fn set_response_consumer(&mut self, consumer: u32) {
        self.response_consumer = consumer;
    }

    fn notify(&mut self) {
        self.notifications += 1;
    }

    fn wait_until(&mut self, ready: &mut dyn FnMut(&Self) -> bool) {
        for _ in 0..100_000 {
            if ready(self) {
                return;
            }
            self.step();
        }
        panic!("the client waits for something the daemon will never do");
    }
}

fn client(chunk: usize) -> Client<SimulatedRing> {
    Client::new(SimulatedRing::new(chunk))
}

#[test]
fn reads_writes_and_listings_cross_the_rings_in_pieces() {
    let mut client = client(7);
    // ~100 requests of ~60 bytes each: both rings wrap several times, and
    // each reply arrives 7 bytes at a time.
    for index in 0..100 {
        let value = format!("value number {index} ..........................");
        client
            .write(
                Transaction::NONE,
                &format!("data/key{index:03}"),
                value.as_bytes(),
            )
            .unwrap();
        assert_eq!(
            client
                .read_text(Transaction::NONE, &format!("{HOME}/data/key{index:03}"))
                .unwrap(),
            value
        );
    }
    let names = client.directory(Transaction::NONE, "data").unwrap();
    assert_eq!(names.len(), 100);
    assert_eq!(names[42], "key042");
    // Every request carried its own ID, no transaction, and a length that
    // matches its payload.
    let requests = &client.transport().daemon.requests;
    assert_eq!(requests.len(), 201);
    for (position, (header, payload)) in requests.iter().enumerate() {
        assert_eq!(header.req_id, position as u32 + 1);
        assert_eq!(header.tx_id, 0);
        assert_eq!(header.len as usize, payload.len());
    }
    assert_eq!(
        requests[0].1,
        b"data/key000\0value number 0 .........................."
    );
}

#[test]
fn refusals_come_back_as_errno_names() {
    let mut client = client(5);
    assert_eq!(
        client.read(Transaction::NONE, "/local/domain/0/name"),
        Err(XenbusError::Store("EACCES"))
    );
    assert_eq!(
        client.read(Transaction::NONE, "missing"),
        Err(XenbusError::Store("ENOENT"))
    );
    // A name Xen's list does not have counts as EINVAL, as in Xen's clients.
    assert_eq!(
        client.read(Transaction::NONE, "/odd"),
        Err(XenbusError::Store("EINVAL"))
    );
    // The connection is still good afterwards.
    client.write(Transaction::NONE, "name", b"web").unwrap();
    assert_eq!(client.read(Transaction::NONE, "name").unwrap(), b"web");
}

#[test]
fn watch_events_that_arrive_before_a_reply_are_kept_in_order() {
    let mut client = client(3);
    client.watch("data", "mine").unwrap();
    // The daemon's first event, right after the reply.
    let first = client.wait_for_watch_event().unwrap();
    assert_eq!(first.path, "data");
    assert_eq!(first.token, "mine");
    assert_eq!(client.next_watch_event().unwrap(), None);
    // Writing under the watch makes the daemon send the event before the
    // write's reply; `write` still returns its own reply.
    client.write(Transaction::NONE, "data/a", b"1").unwrap();
    client.write(Transaction::NONE, "data/b", b"2").unwrap();
    assert_eq!(client.read(Transaction::NONE, "data/a").unwrap(), b"1");
    let events: Vec<String> = core::iter::from_fn(|| client.next_watch_event().unwrap())
        .map(|event| event.path)
        .collect();
    assert_eq!(events, [format!("{HOME}/data/a"), format!("{HOME}/data/b")]);
    // And a waiting client gets the next one when it comes.
    client.write(Transaction::NONE, "data/c", b"3").unwrap();
    let waited = client.wait_for_watch_event().unwrap();
    assert_eq!(waited.path, format!("{HOME}/data/c"));
}

#[test]
fn a_transaction_runs_again_on_eagain_and_gives_up_in_the_end() {
    let mut client = client(11);
    client.transport.daemon.conflicts_left = 2;
    let mut runs = 0;
    client
        .transaction(|client, transaction| {
            runs += 1;
            assert_ne!(transaction, Transaction::NONE);
            client.write(transaction, "counter", b"1")?;
            // Inside, the transaction sees its own write.
            assert_eq!(client.read(transaction, "counter").unwrap(), b"1");
            Ok(())
        })
        .unwrap();
    assert_eq!(runs, 3);
    assert_eq!(client.read(Transaction::NONE, "counter").unwrap(), b"1");
    // Each write and read carried its transaction's ID.
    let in_transaction = client
        .transport()
        .daemon
        .requests
        .iter()
        .filter(|(header, _)| header.message_type == MessageType::Write.raw())
        .all(|(header, _)| header.tx_id != 0);
    assert!(in_transaction);

    client.transport.daemon.conflicts_left = usize::MAX;
    let result = client.transaction(|client, transaction| client.write(transaction, "x", b"y"));
    assert_eq!(result, Err(XenbusError::Store("EAGAIN")));
    let starts = client
        .transport()
        .daemon
        .requests
        .iter()
        .filter(|(header, _)| header.message_type == MessageType::TransactionStart.raw())
        .count();
    assert_eq!(starts, 3 + TRANSACTION_ATTEMPTS);
}

#[test]
fn a_failing_body_drops_its_transaction() {
    let mut client = client(64);
    let result = client.transaction(|client, transaction| {
        client.write(transaction, "half", b"done")?;
        client.read(transaction, "/local/domain/0/secret")
    });
    assert_eq!(result, Err(XenbusError::Store("EACCES")));
    let (last, payload) = client.transport().daemon.requests.last().unwrap().clone();
    assert_eq!(last.message_type, MessageType::TransactionEnd.raw());
    assert_eq!(payload, b"F\0");
    assert_eq!(
        client.read(Transaction::NONE, "half"),
        Err(XenbusError::Store("ENOENT"))
    );
}

#[test]
fn payloads_beyond_the_limit_are_refused_and_long_ones_go_in_pieces() {
    let mut client = client(1024);
    let too_big = vec![b'x'; XENSTORE_PAYLOAD_MAX];
    assert_eq!(
        client.write(Transaction::NONE, "big", &too_big),
        Err(XenbusError::PayloadTooLarge)
    );
    let (consumer, producer) = client.transport().request_indices();
    assert_eq!(consumer, producer, "nothing of it was sent");
    // 3,000 bytes do not fit the 1 KiB ring at once: `post` waits for room.
    let long = vec![b'y'; 3000];
    client.write(Transaction::NONE, "long", &long).unwrap();
    assert_eq!(client.read(Transaction::NONE, "long").unwrap(), long);
}

#[test]
fn a_reply_longer_than_the_protocol_allows_is_a_broken_connection() {
    let mut client = client(64);
    client.transport.daemon.queue(MessageType::Read, 1, 0, &[]);
    // Patch the queued header's length to 5,000.
    let bytes: Vec<u8> = client.transport.daemon.outgoing.drain(..).collect();
    let mut header = [0u8; MessageHeader::SIZE];
    header.copy_from_slice(&bytes);
    let mut lying = MessageHeader::from_bytes(&header);
    lying.len = 5000;
    client.transport.daemon.outgoing.extend(lying.to_bytes());
    assert_eq!(
        client.read(Transaction::NONE, "name"),
        Err(XenbusError::BrokenReply)
    );
}

#[test]
fn try_post_writes_whole_messages_only() {
    let mut client = client(64);
    let payload = b"data/some-key\0";
    let size = MessageHeader::SIZE + payload.len();
    let mut posted = 0;
    while client
        .try_post(MessageType::Read, Transaction::NONE, payload)
        .unwrap()
        .is_some()
    {
        posted += 1;
    }
    // The daemon never ran: the ring holds as many whole messages as fit.
    assert_eq!(posted, XENSTORE_RING_SIZE / size);
    let (consumer, producer) = client.transport().request_indices();
    assert_eq!(producer.wrapping_sub(consumer) as usize, posted * size);
    // Once the daemon has read them, the client skips their replies and
    // gets the answer to its next call.
    client
        .transport
        .daemon
        .nodes
        .insert(format!("{HOME}/name"), b"web".to_vec());
    assert_eq!(client.read(Transaction::NONE, "name").unwrap(), b"web");
}

#[test]
fn switch_state_writes_the_state_node_only_while_it_exists() {
    let mut client = client(9);
    let device = "device/vif/0";
    assert_eq!(read_state(&mut client, device), Ok(XenbusState::Unknown));
    client
        .write(Transaction::NONE, &format!("{device}/state"), b"1")
        .unwrap();
    let state = read_state(&mut client, device).unwrap();
    assert_eq!(state, XenbusState::Initialising);
    let state = switch_state(&mut client, device, state, XenbusState::Initialised).unwrap();
    assert_eq!(
        read_state(&mut client, device),
        Ok(XenbusState::Initialised)
    );
    // Already there: nothing is sent.
    let before = client.transport().daemon.requests.len();
    switch_state(&mut client, device, state, XenbusState::Initialised).unwrap();
    assert_eq!(client.transport().daemon.requests.len(), before);
    // A device whose node is gone is not brought back.
    assert_eq!(
        switch_state(
            &mut client,
            "device/vif/9",
            XenbusState::Initialising,
            XenbusState::Connected
        ),
        Err(XenbusError::Store("ENOENT"))
    );
    assert_eq!(
        read_state(&mut client, "device/vif/9"),
        Ok(XenbusState::Unknown)
    );
}

std::thread_local! {
    /// The paths the test handler below saw, with the value it read.
    static HANDLED: core::cell::RefCell<Vec<(String, String)>> = const { core::cell::RefCell::new(Vec::new()) };
}

/// A kernel watch's handler that makes a request of its own.
fn record(client: &mut Client<SimulatedRing>, event: &WatchEvent) {
    let value = client
        .read_text(Transaction::NONE, &event.path)
        .unwrap_or_default();
    HANDLED.with(|handled| handled.borrow_mut().push((event.path.clone(), value)));
}

#[test]
fn a_kernel_watch_is_handled_apart_from_the_workloads_events() {
    let mut client = client(5);
    client.watch("data", "mine").unwrap();
    client
        .watch_with_handler("control", "kernel", record)
        .unwrap();
    // The first events of both watches: the workload sees only its own;
    // the kernel's handler ran on the other, reading the node meanwhile.
    client
        .write(Transaction::NONE, "control/shutdown", b"poweroff")
        .unwrap();
    client.write(Transaction::NONE, "data/a", b"1").unwrap();
    let seen: Vec<String> = core::iter::from_fn(|| client.next_watch_event().unwrap())
        .map(|event| event.token)
        .collect();
    assert_eq!(seen, ["mine", "mine"]);
    let handled = HANDLED.with(|handled| handled.take());
    assert_eq!(handled.len(), 2, "{handled:?}");
    assert_eq!(
        handled[1],
        (format!("{HOME}/control/shutdown"), "poweroff".to_string())
    );
    // `poll` runs the handler without any event of the workload's.
    client
        .write(Transaction::NONE, "control/shutdown", b"")
        .unwrap();
    client.poll().unwrap();
    let handled = HANDLED.with(|handled| handled.take());
    assert_eq!(
        handled,
        [(format!("{HOME}/control/shutdown"), String::new())]
    );
}

#[test]
fn control_shutdown_is_read_acknowledged_and_obeyed() {
    use crate::control::{on_shutdown_request, STOPPED};
    use hypercall_abi::sched::ShutdownReason;
    let event = WatchEvent {
        path: "control/shutdown".to_string(),
        token: "control/shutdown".to_string(),
    };
    let mut client = client(9);
    for (word, stopped, left) in [
        ("", None, ""),
        ("poweroff", Some(ShutdownReason::Poweroff), ""),
        ("halt", Some(ShutdownReason::Poweroff), ""),
        ("reboot", Some(ShutdownReason::Reboot), ""),
        // Refused, so not acknowledged.
        ("suspend", None, "suspend"),
        ("explode", None, "explode"),
    ] {
        STOPPED.with(|cell| cell.set(None));
        client
            .write(Transaction::NONE, "control/shutdown", word.as_bytes())
            .unwrap();
        on_shutdown_request(&mut client, &event);
        assert_eq!(STOPPED.with(|cell| cell.get()), stopped, "{word}");
        assert_eq!(
            client
                .read_text(Transaction::NONE, "control/shutdown")
                .unwrap(),
            left,
            "{word}"
        );
    }
}
