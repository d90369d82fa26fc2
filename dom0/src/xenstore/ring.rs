//! Moving bytes between a domain's ring page and the store, trusting
//! nothing the guest wrote in the page.
//!
//! The guest owns `req_prod` and `rsp_cons`, so either may hold any value.
//! If `req_prod - req_cons` or `rsp_prod - rsp_cons` is more than a ring,
//! the indices are nonsense: the connection is marked broken
//! (`XENSTORE_ERROR_RINGIDX`) and no longer served, and Dom0 goes on.
//! The page itself is reached through [`RingPage`], which the binary
//! implements with volatile accesses to the mapped page, and the tests with
//! plain memory.
#![forbid(unsafe_code)]

use super::Store;
use alloc::vec::Vec;
use hypercall_abi::xs_wire::{ring_position, XENSTORE_RING_SIZE};

/// The four indices of a ring page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    /// The daemon's consumer index into the request ring.
    RequestConsumer,
    /// The guest's producer index into the request ring.
    RequestProducer,
    /// The guest's consumer index into the response ring.
    ResponseConsumer,
    /// The daemon's producer index into the response ring.
    ResponseProducer,
}

/// Access to one mapped ring page.
pub trait RingPage {
    /// Reads an index (with acquire ordering: the bytes it covers are
    /// visible after it).
    fn load(&self, index: Index) -> u32;
    /// Writes an index (with release ordering: the bytes written before are
    /// visible first).
    fn store(&mut self, index: Index, value: u32);
    /// Reads one byte of the request ring (`position` < 1024).
    fn request_byte(&self, position: usize) -> u8;
    /// Writes one byte of the response ring (`position` < 1024).
    fn write_response_byte(&mut self, position: usize, byte: u8);
}

/// What one pass over a ring did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Request bytes taken.
    pub taken: usize,
    /// Response bytes written (the guest should be signalled).
    pub written: usize,
    /// The guest's indices were nonsense: stop serving it.
    pub bad_indices: bool,
}

/// Serves `domain` through `page`: takes requests and writes replies and
/// events until neither moves.
pub fn service(store: &mut Store, domain: u16, page: &mut impl RingPage) -> Progress {
    let mut progress = Progress::default();
    loop {
        let mut moved = false;
        // Requests.
        let (consumer, producer) = (
            page.load(Index::RequestConsumer),
            page.load(Index::RequestProducer),
        );
        let waiting = producer.wrapping_sub(consumer) as usize;
        if waiting > XENSTORE_RING_SIZE {
            progress.bad_indices = true;
            return progress;
        }
        if waiting > 0 && store.accepts_requests(domain) {
            let bytes: Vec<u8> = (0..waiting as u32)
                .map(|offset| page.request_byte(ring_position(consumer.wrapping_add(offset))))
                .collect();
            let taken = store.receive(domain, &bytes);
            if taken > 0 {
                page.store(Index::RequestConsumer, consumer.wrapping_add(taken as u32));
                progress.taken += taken;
                moved = true;
            }
        }
        // Replies and events.
        let (consumer, producer) = (
            page.load(Index::ResponseConsumer),
            page.load(Index::ResponseProducer),
        );
        let unread = producer.wrapping_sub(consumer) as usize;
        if unread > XENSTORE_RING_SIZE {
            progress.bad_indices = true;
            return progress;
        }
        let out = store.take_output(domain, XENSTORE_RING_SIZE - unread);
        if !out.is_empty() {
            for (offset, &byte) in out.iter().enumerate() {
                page.write_response_byte(ring_position(producer.wrapping_add(offset as u32)), byte);
            }
            page.store(
                Index::ResponseProducer,
                producer.wrapping_add(out.len() as u32),
            );
            progress.written += out.len();
            moved = true;
        }
        if !moved || store.is_broken(domain) {
            return progress;
        }
    }
}
