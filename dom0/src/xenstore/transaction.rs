//! Transactions: a client's changes kept aside, applied all at once or not
//! at all.
//!
//! Between `TRANSACTION_START` and `TRANSACTION_END`, a client's requests
//! that name the transaction see the tree as it was, plus their own
//! changes, which nobody else sees. At the end ("T"), the store checks that
//! no node the transaction looked at changed meanwhile: each node's
//! generation (or its absence) is remembered the first time the
//! transaction touches it. If one changed, the answer is `EAGAIN` and the
//! client starts again, as Xen's clients do in a loop.
//!
//! ```text
//!   tree:         /a (gen 7)            /a (gen 9: someone wrote it)
//!   transaction:  read /a -> saw gen 7  ...  END "T": 9 != 7 -> EAGAIN
//! ```
//!
//! Only the nodes the transaction touched are compared, so a busy guest
//! writing its own keys does not make Dom0's transactions fail.
#![forbid(unsafe_code)]

use super::operations::{Changed, Nodes};
use super::tree::{Node, Tree};
use super::XsError;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

/// One open transaction.
#[derive(Clone, Debug)]
pub struct Transaction {
    /// The domain that started it (only it may use it).
    pub domain: u16,
    /// Each node touched: its generation then, or `None` if it was absent.
    seen: BTreeMap<String, Option<u64>>,
    /// The transaction's own changes: a new node, or `None` for removed.
    changes: BTreeMap<String, Option<Node>>,
    /// What changed, for the watches, fired when it commits.
    pub changed: Vec<Changed>,
}

impl Transaction {
    /// A transaction for `domain`.
    pub fn new(domain: u16) -> Self {
        Self {
            domain,
            seen: BTreeMap::new(),
            changes: BTreeMap::new(),
            changed: Vec::new(),
        }
    }

    /// How many more nodes `owner` owns if this transaction commits (may be
    /// negative).
    fn owner_delta(&self, tree: &Tree, owner: u16) -> isize {
        let mut delta = 0;
        for (path, change) in &self.changes {
            if tree
                .get(path)
                .is_some_and(|node| node.permissions.owner() == owner)
            {
                delta -= 1;
            }
            if change
                .as_ref()
                .is_some_and(|node| node.permissions.owner() == owner)
            {
                delta += 1;
            }
        }
        delta
    }

    /// Applies the transaction to `tree`, unless something it touched
    /// changed (`EAGAIN`) or it would leave its unprivileged domain over
    /// its node quota (`EQUOTA`). Returns what changed, for the watches.
    pub fn commit(
        self,
        tree: &mut Tree,
        privileged: bool,
        nodes_per_domain: usize,
    ) -> Result<Vec<Changed>, XsError> {
        let conflict = self
            .seen
            .iter()
            .any(|(path, seen)| tree.get(path).map(|node| node.generation) != *seen);
        if conflict {
            return Err(XsError::EAGAIN);
        }
        let owned = tree.owned_by(self.domain) as isize + self.owner_delta(tree, self.domain);
        if !privileged && owned > nodes_per_domain as isize {
            return Err(XsError::EQUOTA);
        }
        for (path, change) in self.changes {
            match change {
                Some(node) => tree.put(&path, node),
                None => tree.delete(&path),
            }
        }
        Ok(self.changed)
    }
}

/// The tree as one transaction sees it.
pub struct TransactionView<'a> {
    /// The store's tree (not changed until commit).
    pub tree: &'a Tree,
    /// The transaction.
    pub transaction: &'a mut Transaction,
}

impl TransactionView<'_> {
    fn remember(&mut self, path: &str) {
        if !self.transaction.seen.contains_key(path) {
            let generation = self.tree.get(path).map(|node| node.generation);
            self.transaction.seen.insert(String::from(path), generation);
        }
    }
}

impl Nodes for TransactionView<'_> {
    fn node(&mut self, path: &str) -> Option<Node> {
        self.remember(path);
        match self.transaction.changes.get(path) {
            Some(change) => change.clone(),
            None => self.tree.get(path).cloned(),
        }
    }

    fn put(&mut self, path: &str, node: Node) {
        self.remember(path);
        self.transaction
            .changes
            .insert(String::from(path), Some(node));
    }

    fn delete(&mut self, path: &str) {
        self.remember(path);
        self.transaction.changes.insert(String::from(path), None);
    }

    fn owned_by(&self, domain: u16) -> usize {
        let count =
            self.tree.owned_by(domain) as isize + self.transaction.owner_delta(self.tree, domain);
        count.max(0) as usize
    }
}
