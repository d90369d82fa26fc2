//! The store's behaviour, request by request, as a guest on its ring sees
//! it; and a fuzz-style test that feeds it hostile bytes.

use super::ring::{self, Index, RingPage};
use super::*;
use hypercall_abi::xs_wire::{MessageHeader, XenstoreDomainInterface};

/// A ring page in plain memory.
struct FakePage(XenstoreDomainInterface);

impl FakePage {
    fn new() -> Self {
        Self(XenstoreDomainInterface {
            req: [0; 1024],
            rsp: [0; 1024],
            req_cons: 0,
            req_prod: 0,
            rsp_cons: 0,
            rsp_prod: 0,
            server_features: 0,
            connection: 0,
            error: 0,
        })
    }

    /// The guest's side: puts bytes in the request ring (as many as fit).
    fn send(&mut self, bytes: &[u8]) -> usize {
        let free = 1024 - self.0.req_prod.wrapping_sub(self.0.req_cons) as usize;
        let count = free.min(bytes.len());
        for &byte in &bytes[..count] {
            self.0.req[(self.0.req_prod & 1023) as usize] = byte;
            self.0.req_prod = self.0.req_prod.wrapping_add(1);
        }
        count
    }

    /// The guest's side: takes everything in the response ring.
    fn receive(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.0.rsp_prod.wrapping_sub(self.0.rsp_cons) > 1024 {
            // The fuzz test scribbled on the index: resynchronise.
            self.0.rsp_cons = self.0.rsp_prod;
        }
        while self.0.rsp_cons != self.0.rsp_prod {
            out.push(self.0.rsp[(self.0.rsp_cons & 1023) as usize]);
            self.0.rsp_cons = self.0.rsp_cons.wrapping_add(1);
        }
        out
    }
}

impl RingPage for FakePage {
    fn load(&self, index: Index) -> u32 {
        match index {
            Index::RequestConsumer => self.0.req_cons,
            Index::RequestProducer => self.0.req_prod,
            Index::ResponseConsumer => self.0.rsp_cons,
            Index::ResponseProducer => self.0.rsp_prod,
        }
    }
    fn store(&mut self, index: Index, value: u32) {
        match index {
            Index::RequestConsumer => self.0.req_cons = value,
            Index::RequestProducer => self.0.req_prod = value,
            Index::ResponseConsumer => self.0.rsp_cons = value,
            Index::ResponseProducer => self.0.rsp_prod = value,
        }
    }
    fn request_byte(&self, position: usize) -> u8 {
        self.0.req[position]
    }
    fn write_response_byte(&mut self, position: usize, byte: u8) {
        self.0.rsp[position] = byte;
    }
}

/// Splits a stream of replies into (header, payload) pairs.
fn messages(mut bytes: &[u8]) -> Vec<(MessageHeader, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 16 {
        let header = MessageHeader::from_bytes(bytes[..16].try_into().unwrap());
        let end = 16 + header.len as usize;
        out.push((header, bytes[16..end].to_vec()));
        bytes = &bytes[end..];
    }
    out
}

/// A guest on a ring, talking to the store.
struct Guest {
    domain: u16,
    page: FakePage,
    next_id: u32,
    events: Vec<Vec<u8>>,
}

impl Guest {
    fn new(store: &mut Store, domain: u16) -> Self {
        store.introduce(domain);
        Self {
            domain,
            page: FakePage::new(),
            next_id: 1,
            events: Vec::new(),
        }
    }

    /// Sends one request and returns its reply: Ok(payload) or the error name.
    fn request(
        &mut self,
        store: &mut Store,
        kind: MessageType,
        tx_id: u32,
        payload: &[u8],
    ) -> Result<Vec<u8>, String> {
        let id = self.next_id;
        self.next_id += 1;
        let bytes = wire::encode(kind, id, tx_id, payload);
        // A request longer than the ring goes in pieces, as the daemon
        // makes room.
        let mut sent = 0;
        let mut received = Vec::new();
        while sent < bytes.len() {
            sent += self.page.send(&bytes[sent..]);
            ring::service(store, self.domain, &mut self.page);
            received.extend(self.page.receive());
        }
        let mut reply = None;
        for (header, payload) in messages(&received) {
            if header.message_type == MessageType::WatchEvent.raw() {
                self.events.push(payload);
            } else {
                assert_eq!(header.req_id, id);
                reply = Some((header, payload));
            }
        }
        let (header, payload) = reply.expect("a reply");
        if header.message_type == MessageType::ErrorReply.raw() {
            Err(String::from_utf8(payload[..payload.len() - 1].to_vec()).unwrap())
        } else {
            assert_eq!(header.message_type, kind.raw());
            Ok(payload)
        }
    }

    fn read(&mut self, store: &mut Store, path: &str) -> Result<Vec<u8>, String> {
        self.request(store, MessageType::Read, 0, &nul(path))
    }

    fn write(&mut self, store: &mut Store, path: &str, value: &str) -> Result<Vec<u8>, String> {
        let mut payload = nul(path);
        payload.extend_from_slice(value.as_bytes());
        self.request(store, MessageType::Write, 0, &payload)
    }
}

fn nul(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

fn dom0_write(store: &mut Store, path: &str, value: &str) {
    store
        .call(0, 0, Operation::Write(path.as_bytes(), value.as_bytes()))
        .unwrap();
}

/// What `xl create` does for domain `domain`: its home, owned by it, with
/// its name.
fn toolstack_creates(store: &mut Store, domain: u16, name: &str) {
    let home = tree::domain_path(domain);
    store.call(0, 0, Operation::Mkdir(home.as_bytes())).unwrap();
    let owner = format!("n{domain}");
    store
        .call(
            0,
            0,
            Operation::SetPerms(home.as_bytes(), alloc::vec![owner.as_bytes()]),
        )
        .unwrap();
    dom0_write(store, &format!("{home}/name"), name);
}

#[test]
fn a_guest_reads_its_own_keys_and_is_refused_others() {
    let mut store = Store::default();
    toolstack_creates(&mut store, 1, "alice");
    toolstack_creates(&mut store, 2, "bob");
    let mut alice = Guest::new(&mut store, 1);
    assert_eq!(alice.read(&mut store, "name").unwrap(), b"alice");
    assert_eq!(
        alice.read(&mut store, "/local/domain/1/name").unwrap(),
        b"alice"
    );
    assert_eq!(
        alice.read(&mut store, "/local/domain/2/name").unwrap_err(),
        "EACCES"
    );
    // Not even whether a key exists leaks out.
    assert_eq!(
        alice.read(&mut store, "/local/domain/2/none").unwrap_err(),
        "EACCES"
    );
    assert_eq!(alice.read(&mut store, "nothing").unwrap_err(), "ENOENT");
    assert_eq!(
        alice
            .write(&mut store, "/local/domain/2/name", "x")
            .unwrap_err(),
        "EACCES"
    );
    assert_eq!(alice.write(&mut store, "/vm/x", "x").unwrap_err(), "EACCES");
    assert_eq!(alice.write(&mut store, "data/x", "1").unwrap(), b"OK\0");
    let listing = alice
        .request(&mut store, MessageType::Directory, 0, b"\0")
        .unwrap_err();
    assert_eq!(listing, "EINVAL");
    let listing = alice
        .request(
            &mut store,
            MessageType::Directory,
            0,
            &nul("/local/domain/1"),
        )
        .unwrap();
    assert_eq!(listing, b"data\0name\0");
    // What the guest created is its own (it counts in its quota).
    let permissions = alice
        .request(&mut store, MessageType::GetPerms, 0, &nul("data/x"))
        .unwrap();
    assert_eq!(permissions, b"n1\0");
    let path = alice
        .request(&mut store, MessageType::GetDomainPath, 0, b"1\0")
        .unwrap();
    assert_eq!(path, b"/local/domain/1\0");
    store.tree().check().unwrap();
}

#[test]
fn permissions_can_open_a_key_to_another_domain() {
    let mut store = Store::default();
    toolstack_creates(&mut store, 1, "alice");
    toolstack_creates(&mut store, 2, "bob");
    let mut alice = Guest::new(&mut store, 1);
    let mut bob = Guest::new(&mut store, 2);
    alice.write(&mut store, "shared", "hello").unwrap();
    assert_eq!(
        bob.read(&mut store, "/local/domain/1/shared").unwrap_err(),
        "EACCES"
    );
    alice
        .request(&mut store, MessageType::SetPerms, 0, b"shared\0n1\0r2\0")
        .unwrap();
    assert_eq!(
        bob.read(&mut store, "/local/domain/1/shared").unwrap(),
        b"hello"
    );
    assert_eq!(
        bob.write(&mut store, "/local/domain/1/shared", "no")
            .unwrap_err(),
        "EACCES"
    );
    // Alice may not give the node away, nor may Bob change it.
    let give_away = alice.request(&mut store, MessageType::SetPerms, 0, b"shared\0n2\0");
    assert_eq!(give_away.unwrap_err(), "EACCES");
    let take = bob.request(
        &mut store,
        MessageType::SetPerms,
        0,
        b"/local/domain/1/shared\0b2\0",
    );
    assert_eq!(take.unwrap_err(), "EACCES");
}

#[test]
fn watches_report_changes_under_their_path() {
    let mut store = Store::default();
    toolstack_creates(&mut store, 1, "alice");
    let mut alice = Guest::new(&mut store, 1);
    alice
        .request(&mut store, MessageType::Watch, 0, b"name\0mine\0")
        .unwrap();
    // The first event comes at once, after the reply.
    alice.read(&mut store, "name").unwrap();
    assert_eq!(alice.events, [b"name\0mine\0".to_vec()]);
    dom0_write(&mut store, "/local/domain/1/name", "alice2");
    alice.read(&mut store, "name").unwrap();
    assert_eq!(alice.events.len(), 2);
    // Registering twice is EEXIST; unwatching stops the events.
    let again = alice.request(&mut store, MessageType::Watch, 0, b"name\0mine\0");
    assert_eq!(again.unwrap_err(), "EEXIST");
    alice
        .request(&mut store, MessageType::Unwatch, 0, b"name\0mine\0")
        .unwrap();
    dom0_write(&mut store, "/local/domain/1/name", "alice3");
    alice.read(&mut store, "name").unwrap();
    assert_eq!(alice.events.len(), 2);
}

#[test]
fn dom0_hears_about_domains_coming_and_going() {
    let mut store = Store::default();
    store
        .call(0, 0, Operation::Watch(b"@releaseDomain", b"r"))
        .unwrap();
    store
        .call(0, 0, Operation::Watch(b"@introduceDomain", b"i"))
        .unwrap();
    while store.take_message(0).is_some() {}
    let mut guest = Guest::new(&mut store, 3);
    let event = store.take_message(0).unwrap();
    assert_eq!(&event[16..], b"@introduceDomain\0i\0");
    // A guest cannot watch them into hearing about other domains.
    guest
        .request(&mut store, MessageType::Watch, 0, b"@releaseDomain\0g\0")
        .unwrap();
    guest.events.clear();
    store.release(3);
    let event = store.take_message(0).unwrap();
    assert_eq!(&event[16..], b"@releaseDomain\0r\0");
    assert!(!store.is_introduced(3));
    // A guest may not introduce or release anyone.
    let mut other = Guest::new(&mut store, 4);
    let refused = other.request(&mut store, MessageType::Release, 0, b"0\0");
    assert_eq!(refused.unwrap_err(), "EACCES");
}

#[test]
fn transactions_commit_or_fail_with_eagain() {
    let mut store = Store::default();
    toolstack_creates(&mut store, 1, "alice");
    let mut alice = Guest::new(&mut store, 1);
    alice.write(&mut store, "counter", "1").unwrap();
    let start = |guest: &mut Guest, store: &mut Store| -> u32 {
        let id = guest
            .request(store, MessageType::TransactionStart, 0, b"\0")
            .unwrap();
        core::str::from_utf8(&id[..id.len() - 1])
            .unwrap()
            .parse()
            .unwrap()
    };
    // A transaction sees its own writes; others see them only after commit.
    let tx = start(&mut alice, &mut store);
    alice
        .request(&mut store, MessageType::Write, tx, b"counter\x002")
        .unwrap();
    let inside = alice.request(&mut store, MessageType::Read, tx, b"counter\0");
    assert_eq!(inside.unwrap(), b"2");
    assert_eq!(alice.read(&mut store, "counter").unwrap(), b"1");
    alice
        .request(&mut store, MessageType::TransactionEnd, tx, b"T\0")
        .unwrap();
    assert_eq!(alice.read(&mut store, "counter").unwrap(), b"2");

    // A node read in the transaction changes meanwhile: EAGAIN, nothing applied.
    let tx = start(&mut alice, &mut store);
    alice
        .request(&mut store, MessageType::Read, tx, b"counter\0")
        .unwrap();
    alice
        .request(&mut store, MessageType::Write, tx, b"other\x00x")
        .unwrap();
    dom0_write(&mut store, "/local/domain/1/counter", "9");
    let end = alice.request(&mut store, MessageType::TransactionEnd, tx, b"T\0");
    assert_eq!(end.unwrap_err(), "EAGAIN");
    assert_eq!(alice.read(&mut store, "other").unwrap_err(), "ENOENT");

    // A change elsewhere does not get in the way.
    let tx = start(&mut alice, &mut store);
    alice
        .request(&mut store, MessageType::Read, tx, b"counter\0")
        .unwrap();
    dom0_write(&mut store, "/vm/elsewhere", "x");
    alice
        .request(&mut store, MessageType::TransactionEnd, tx, b"T\0")
        .unwrap();

    // An aborted transaction changes nothing; an unknown one is ENOENT.
    let tx = start(&mut alice, &mut store);
    alice
        .request(&mut store, MessageType::Rm, tx, b"counter\0")
        .unwrap();
    alice
        .request(&mut store, MessageType::TransactionEnd, tx, b"F\0")
        .unwrap();
    assert_eq!(alice.read(&mut store, "counter").unwrap(), b"9");
    let unknown = alice.request(&mut store, MessageType::Read, 999, b"counter\0");
    assert_eq!(unknown.unwrap_err(), "ENOENT");
    store.tree().check().unwrap();
}

#[test]
fn another_domains_transaction_is_not_yours() {
    let mut store = Store::default();
    toolstack_creates(&mut store, 1, "alice");
    toolstack_creates(&mut store, 2, "bob");
    let mut alice = Guest::new(&mut store, 1);
    let mut bob = Guest::new(&mut store, 2);
    let id = alice
        .request(&mut store, MessageType::TransactionStart, 0, b"\0")
        .unwrap();
    let tx: u32 = core::str::from_utf8(&id[..id.len() - 1])
        .unwrap()
        .parse()
        .unwrap();
    let used = bob.request(&mut store, MessageType::Write, tx, b"x\0y");
    assert_eq!(used.unwrap_err(), "ENOENT");
    let ended = bob.request(&mut store, MessageType::TransactionEnd, tx, b"T\0");
    assert_eq!(ended.unwrap_err(), "ENOENT");
}

#[test]
fn rm_removes_a_subtree_and_fires_watches_below() {
    let mut store = Store::default();
    toolstack_creates(&mut store, 1, "alice");
    let mut alice = Guest::new(&mut store, 1);
    alice.write(&mut store, "a/b/c", "1").unwrap();
    alice
        .request(&mut store, MessageType::Watch, 0, b"a/b/c\0w\0")
        .unwrap();
    alice.events.clear();
    alice
        .request(&mut store, MessageType::Rm, 0, b"a\0")
        .unwrap();
    assert_eq!(alice.events, [b"a/b/c\0w\0".to_vec()]);
    assert_eq!(alice.read(&mut store, "a/b").unwrap_err(), "ENOENT");
    assert_eq!(store.tree().owned_by(1), 2); // home and name
    store.tree().check().unwrap();
    let root = store.call(0, 0, Operation::Rm(b"/"));
    assert_eq!(root, Err(XsError::EINVAL));
}

#[test]
fn a_flooding_guest_gets_equota_and_e2big_and_others_keep_working() {
    let quotas = Quotas {
        nodes_per_domain: 20,
        watches_per_domain: 4,
        transactions_per_domain: 2,
        ..Quotas::default()
    };
    let mut store = Store::new(quotas);
    toolstack_creates(&mut store, 1, "attacker");
    toolstack_creates(&mut store, 2, "victim");
    let mut attacker = Guest::new(&mut store, 1);
    let mut victim = Guest::new(&mut store, 2);
    let mut refused = 0;
    for index in 0..100 {
        match attacker.write(&mut store, &format!("flood/{index}"), "x") {
            Ok(_) => {}
            Err(error) => {
                assert_eq!(error, "EQUOTA");
                refused += 1;
            }
        }
    }
    assert!(refused >= 80, "{refused}");
    assert!(store.tree().owned_by(1) <= 20);
    // A deep path that would create many nodes at once is refused whole.
    let deep = "d/".repeat(30) + "x";
    assert_eq!(
        attacker.write(&mut store, &deep, "x").unwrap_err(),
        "EQUOTA"
    );
    let big = "x".repeat(quotas.entry_size + 1);
    assert_eq!(
        attacker.write(&mut store, "name", &big).unwrap_err(),
        "E2BIG"
    );
    for index in 0..4 {
        attacker
            .request(
                &mut store,
                MessageType::Watch,
                0,
                &nul(&format!("w\0{index}"))[..],
            )
            .unwrap();
    }
    let fifth = attacker.request(&mut store, MessageType::Watch, 0, b"w\0x\0");
    assert_eq!(fifth.unwrap_err(), "EQUOTA");
    for _ in 0..2 {
        attacker
            .request(&mut store, MessageType::TransactionStart, 0, b"\0")
            .unwrap();
    }
    let third = attacker.request(&mut store, MessageType::TransactionStart, 0, b"\0");
    assert_eq!(third.unwrap_err(), "EQUOTA");
    // Everyone else is fine.
    assert_eq!(victim.write(&mut store, "data", "ok").unwrap(), b"OK\0");
    assert_eq!(victim.read(&mut store, "name").unwrap(), b"victim");
    dom0_write(
        &mut store,
        "/local/domain/1/flood/more",
        "Dom0 has no quota",
    );
    store.tree().check().unwrap();
}

#[test]
fn transactions_cannot_add_up_past_the_node_quota() {
    let quotas = Quotas {
        nodes_per_domain: 10,
        ..Quotas::default()
    };
    let mut store = Store::new(quotas);
    toolstack_creates(&mut store, 1, "attacker");
    let mut attacker = Guest::new(&mut store, 1);
    let mut transactions = Vec::new();
    for _ in 0..3 {
        let id = attacker
            .request(&mut store, MessageType::TransactionStart, 0, b"\0")
            .unwrap();
        let tx: u32 = core::str::from_utf8(&id[..id.len() - 1])
            .unwrap()
            .parse()
            .unwrap();
        for index in 0..8 {
            let payload = format!("t{tx}/{index}\0x");
            let _ = attacker.request(&mut store, MessageType::Write, tx, payload.as_bytes());
        }
        transactions.push(tx);
    }
    for tx in transactions {
        let _ = attacker.request(&mut store, MessageType::TransactionEnd, tx, b"T\0");
    }
    assert!(
        store.tree().owned_by(1) <= 10,
        "{}",
        store.tree().owned_by(1)
    );
    store.tree().check().unwrap();
}

#[test]
fn a_guest_that_never_reads_replies_stops_being_read() {
    let mut store = Store::default();
    toolstack_creates(&mut store, 1, "lazy");
    let mut lazy = Guest::new(&mut store, 1);
    let request = wire::encode(MessageType::Read, 1, 0, b"name\0");
    // Fill the request ring again and again without reading a reply.
    let mut sent = 0;
    for _ in 0..200 {
        sent += lazy.page.send(&request) / request.len();
        ring::service(&mut store, 1, &mut lazy.page);
    }
    let queued = store.connections[&1].replies_queued;
    assert!(queued <= Quotas::default().outstanding_requests, "{queued}");
    assert!(sent < 200);
    // Reading the replies lets it go on.
    lazy.page.receive();
    ring::service(&mut store, 1, &mut lazy.page);
    assert!(store.connections[&1].replies_queued > 0);
}

#[test]
fn nonsense_ring_indices_stop_only_that_guest() {
    let mut store = Store::default();
    toolstack_creates(&mut store, 1, "liar");
    let mut liar = Guest::new(&mut store, 1);
    liar.page.0.req_prod = 5000;
    assert!(ring::service(&mut store, 1, &mut liar.page).bad_indices);
    let mut page = FakePage::new();
    page.0.rsp_cons = 3000;
    let progress = ring::service(&mut store, 1, &mut page);
    assert!(progress.bad_indices);
}

/// A small deterministic random generator (xorshift), for the fuzz test.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, limit: u64) -> u64 {
        self.next() % limit
    }
}

/// A random message: usually well-formed-looking, often truncated or with
/// a lying length, sometimes pure noise.
fn random_message(random: &mut Random) -> Vec<u8> {
    const WORDS: [&[u8]; 10] = [
        b"name",
        b"/local/domain/2/name",
        b"data/x",
        b"/",
        b"@releaseDomain",
        b"a//b",
        b"\xff",
        b"T",
        b"b1",
        b"n2",
    ];
    let mut payload = Vec::new();
    for _ in 0..random.below(4) {
        payload.extend_from_slice(WORDS[random.below(WORDS.len() as u64) as usize]);
        if random.below(5) != 0 {
            payload.push(0);
        }
    }
    let kind = match random.below(10) {
        0 => random.next() as u32,
        _ => random.below(27) as u32,
    };
    let mut bytes = wire::encode(MessageType::Read, 0, 0, &payload);
    bytes[0..4].copy_from_slice(&kind.to_le_bytes());
    bytes[8..12].copy_from_slice(&(random.below(4) as u32).to_le_bytes());
    match random.below(8) {
        0 => bytes.truncate(random.below(bytes.len() as u64) as usize),
        1 => {
            let length = random.below(5000) as u32;
            bytes[12..16].copy_from_slice(&length.to_le_bytes());
        }
        2 => {
            bytes = (0..random.below(64)).map(|_| random.next() as u8).collect();
        }
        _ => {}
    }
    bytes
}

#[test]
fn hostile_bytes_never_break_the_store() {
    for seed in 1..=40u64 {
        let mut random = Random(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut store = Store::new(Quotas {
            nodes_per_domain: 30,
            ..Quotas::default()
        });
        toolstack_creates(&mut store, 1, "fuzzer");
        toolstack_creates(&mut store, 2, "victim");
        let mut fuzzer = Guest::new(&mut store, 1);
        let mut victim = Guest::new(&mut store, 2);
        for _ in 0..300 {
            let bytes = random_message(&mut random);
            fuzzer.page.send(&bytes);
            ring::service(&mut store, 1, &mut fuzzer.page);
            fuzzer.page.receive();
            if random.below(50) == 0 {
                // Scribble on the indices as a hostile guest may.
                fuzzer.page.0.rsp_cons = random.next() as u32;
            }
            store.tree().check().unwrap();
        }
        assert!(store.tree().owned_by(1) <= 30);
        // The victim and Dom0 are unaffected.
        assert_eq!(victim.read(&mut store, "name").unwrap(), b"victim");
        dom0_write(&mut store, "/local/domain/2/after", "fine");
        assert_eq!(
            store.call(0, 0, Operation::Read(b"/local/domain/2/name")),
            Ok(b"victim".to_vec())
        );
    }
}
