//! Spin locks that know their place in the lock order, and in checking
//! builds panic with both lock names instead of hanging.
//!
//! Every global lock of the hypervisor is an [`OrderedMutex`] with a
//! [`LockLevel`] (the order and its reasons are in `crate::sync::lock_order`
//! and at the top of `domain/mod.rs`). In a checking build (debug builds,
//! and kernels built with the `lock-order-check` feature, which
//! `cargo xtask test`, `run`, `build` and `iso` turn on) each CPU keeps the
//! levels it holds in a bit mask in its
//! [`PerCpu`](crate::arch::x86_64::percpu::PerCpu) block, and every
//! acquisition is checked against it first: taking a lock the CPU already
//! holds, or one that must come before a lock it holds, panics with a
//! message naming both, rather than spinning forever (today) or
//! deadlocking with another CPU (once there are several). In other builds
//! (`cargo xtask bench`) the check compiles away and a lock costs what a
//! `spin::Mutex` costs.
//!
//! Locks taken before the boot CPU's per-CPU block exists (the console's,
//! at the very start) are not checked: there is no mask to record them in
//! yet, and only one CPU runs then.

use crate::arch::x86_64::percpu::{this_cpu_if_ready, PerCpu};
use crate::sync::lock_order::{HeldLocks, LockLevel};
use core::ops::{Deref, DerefMut};
use core::sync::atomic::Ordering;

/// Whether this build checks the lock order.
const CHECKING: bool = cfg!(any(debug_assertions, feature = "lock-order-check"));

/// A spin lock at a fixed level of the lock order.
pub struct OrderedMutex<T> {
    level: LockLevel,
    inner: spin::Mutex<T>,
}

/// Access to the data of a locked [`OrderedMutex`]; unlocks when dropped.
pub struct OrderedGuard<'a, T> {
    inner: spin::MutexGuard<'a, T>,
    /// The CPU block where this acquisition was recorded (None: unchecked).
    recorded_in: Option<&'static PerCpu>,
    level: LockLevel,
}

/// Adds `level` to this CPU's held locks, or panics naming the locks if the
/// order forbids taking it now. Returns the block it was recorded in.
fn record_acquisition(level: LockLevel) -> Option<&'static PerCpu> {
    let cpu = this_cpu_if_ready()?;
    let held = HeldLocks::from_bits(cpu.locks_held.load(Ordering::Relaxed));
    match held.acquire(level) {
        Ok(now) => cpu.locks_held.store(now.bits(), Ordering::Relaxed),
        Err(violation) => panic!("{violation}"),
    }
    Some(cpu)
}

/// Removes `level` from the held locks of `cpu`.
fn record_release(cpu: &PerCpu, level: LockLevel) {
    let held = HeldLocks::from_bits(cpu.locks_held.load(Ordering::Relaxed));
    cpu.locks_held
        .store(held.release(level).bits(), Ordering::Relaxed);
}

impl<T> OrderedMutex<T> {
    /// A lock at `level` around `value`.
    pub const fn new(level: LockLevel, value: T) -> Self {
        Self {
            level,
            inner: spin::Mutex::new(value),
        }
    }

    /// Takes the lock, spinning until it is free. Checking builds panic
    /// first if this CPU holds it already or holds a lock that comes after
    /// it in the order.
    pub fn lock(&self) -> OrderedGuard<'_, T> {
        let recorded_in = if CHECKING {
            record_acquisition(self.level)
        } else {
            None
        };
        OrderedGuard {
            inner: self.inner.lock(),
            recorded_in,
            level: self.level,
        }
    }

    /// Takes the lock without checking or recording the order: for the
    /// fatal-error path only, which may run while any lock is held (even
    /// this one, force-unlocked first, or one that comes after it).
    pub fn lock_on_fatal_path(&self) -> OrderedGuard<'_, T> {
        OrderedGuard {
            inner: self.inner.lock(),
            recorded_in: None,
            level: self.level,
        }
    }

    /// Whether someone holds the lock now.
    pub fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }

    /// Frees the lock whoever holds it, and forgets that this CPU holds it.
    ///
    /// # Safety
    /// The holder must never touch the data again: only the fatal-error
    /// path may call this, with interrupts off, after which nothing but
    /// the final message runs on this CPU.
    pub unsafe fn force_unlock(&self) {
        if let Some(cpu) = this_cpu_if_ready() {
            record_release(cpu, self.level);
        }
        // SAFETY: the caller guarantees the holder is gone for good.
        unsafe { self.inner.force_unlock() };
    }
}

impl<T> Deref for OrderedGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for OrderedGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T> Drop for OrderedGuard<'_, T> {
    fn drop(&mut self) {
        // The record goes first: the spin lock itself is released right
        // after, when `inner` is dropped.
        if let Some(cpu) = self.recorded_in {
            record_release(cpu, self.level);
        }
    }
}
