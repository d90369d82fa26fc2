//! Locks: the global locks' order, and the lock type that checks it.
//!
//! Every global lock of the hypervisor has a rank, and a CPU may only take
//! locks in increasing rank. `lock_order` holds the rule (host-tested);
//! `ordered_lock` is the lock that applies it in the kernel build.

pub mod lock_order;
#[cfg(feature = "kernel")]
pub mod ordered_lock;
