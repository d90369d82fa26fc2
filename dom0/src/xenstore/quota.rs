//! The limits that keep one hostile domain from exhausting the store.
//!
//! Dom0 serves every domain from its own memory and time, so each
//! unprivileged domain gets a budget, with Xen's xenstored defaults. Past a
//! count the answer is `EQUOTA` (as Xen's oxenstored answers), past a size
//! `E2BIG`; the domain's other requests, and every other domain's, go on
//! working. Dom0 itself has no quota, as in Xen.
#![forbid(unsafe_code)]

/// The per-domain limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// Nodes a domain may own (`-E`, `quota-nb-entry-per-domain`).
    pub nodes_per_domain: usize,
    /// Bytes one node's record may take: value, permissions and the list
    /// of children (`-S`, `quota-max-entry-size`).
    pub entry_size: usize,
    /// Watches a domain may have (`-W`, `quota-nb-watch-per-domain`).
    pub watches_per_domain: usize,
    /// Transactions a domain may have open (`-t`, `quota-max-transaction`).
    pub transactions_per_domain: usize,
    /// Entries in one node's permission list (`quota-nb-perms-per-node`).
    pub permissions_per_node: usize,
    /// Replies waiting for the domain to read them before Dom0 stops taking
    /// its requests (`quota-req-outstanding`): a guest that never reads
    /// its ring cannot make Dom0 queue without end.
    pub outstanding_requests: usize,
    /// Watch events waiting for the domain to read them; beyond this they
    /// are dropped (counted, and said in the log).
    pub queued_events: usize,
}

impl Quotas {
    /// Xen's xenstored defaults.
    pub const XEN_DEFAULTS: Quotas = Quotas {
        nodes_per_domain: 1000,
        entry_size: 2048,
        watches_per_domain: 128,
        transactions_per_domain: 10,
        permissions_per_node: 5,
        outstanding_requests: 20,
        queued_events: 64,
    };
}

impl Default for Quotas {
    fn default() -> Self {
        Self::XEN_DEFAULTS
    }
}
