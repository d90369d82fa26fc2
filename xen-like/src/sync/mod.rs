//! Locks: the global locks' order, and the lock type that checks it.
//!
//! Every global lock of the hypervisor has a rank, and a CPU may only take
//! locks in increasing rank. `lock_order` holds the rule (host-tested);
//! `ordered_lock` is the lock that applies it in the kernel build.
//!
//! # Invariants
//!
//! 1. **Locks are taken in increasing rank only**: a CPU holding a global
//!    lock may take only a lock of higher rank, and never one it holds. The
//!    ranks and their reasons: `lock_order.rs` and "The lock order" in
//!    `domain/mod.rs`.
//! 2. **A breach is loud, not a hang**: in a checking build (debug builds and
//!    kernels built with `lock-order-check`, as `cargo xtask test` does) it
//!    panics with both lock names.
//!
//! # Files
//!
//! Pure rules, tested on the host: `lock_order.rs`.
//!
//! Glue (built with the `kernel` feature): `ordered_lock.rs` (`OrderedMutex`,
//! which applies the rule; its forced unlock for the panic path is the one
//! `unsafe` here).
#![deny(unsafe_code)]

pub mod lock_order;
#[cfg(feature = "kernel")]
// Forcing a lock open, for the panic path only.
#[allow(unsafe_code)]
pub mod ordered_lock;
