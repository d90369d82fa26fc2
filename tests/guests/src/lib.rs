//! What every test guest shares: a way to check an expectation and print
//! the verdict in the Xen Test Framework's manner (`Test result: SUCCESS`),
//! which the scenario harness looks for; and the control hypercalls
//! several of them make as the initial domain.
#![cfg_attr(not(test), no_std)]

use core::sync::atomic::{AtomicU32, Ordering};
use hypercall_abi::XenError;

static FAILURES: AtomicU32 = AtomicU32::new(0);
static CHECKS: AtomicU32 = AtomicU32::new(0);

/// Says what a hypercall result means: "0", or "-22 (EINVAL)".
pub fn describe(result: i64, out: &mut impl core::fmt::Write) -> core::fmt::Result {
    match XenError::from_return(result) {
        Some(error) => write!(out, "{result} ({})", error.name()),
        None => write!(out, "{result}"),
    }
}

/// Records one check: prints `ok: NAME: DETAIL` or `FAIL: NAME: DETAIL`.
pub fn check(name: &str, passed: bool, detail: core::fmt::Arguments) {
    CHECKS.fetch_add(1, Ordering::Relaxed);
    if !passed {
        FAILURES.fetch_add(1, Ordering::Relaxed);
    }
    guest_kernel::println!("{}: {name}: {detail}", if passed { "ok" } else { "FAIL" });
}

/// Checks that a hypercall returned exactly `expected` (0 or a negated errno).
pub fn expect_result(name: &str, result: i64, expected: i64) {
    let mut got = heapless::String::<32>::new();
    let mut wanted = heapless::String::<32>::new();
    let _ = describe(result, &mut got);
    let _ = describe(expected, &mut wanted);
    check(
        name,
        result == expected,
        format_args!("returned {got}, expected {wanted}"),
    );
}

/// Prints the verdict and powers the domain off.
pub fn finish() -> ! {
    report();
    guest_kernel::shutdown(hypercall_abi::sched::ShutdownReason::Poweroff)
}

/// Prints the verdict (`Test result: ...`), for a guest that ends itself
/// some other way than [`finish`].
pub fn report() {
    let failures = FAILURES.load(Ordering::Relaxed);
    let checks = CHECKS.load(Ordering::Relaxed);
    if failures == 0 {
        guest_kernel::println!("{checks} checks passed");
        guest_kernel::println!("Test result: SUCCESS");
    } else {
        guest_kernel::println!("{failures} of {checks} checks failed");
        guest_kernel::println!("Test result: FAILURE");
    }
}

/// `domctl` with `request` as it is (a domctl payload holds no pointers).
pub fn domctl(request: &mut hypercall_abi::domctl::Domctl) -> i64 {
    guest_kernel::sys::raw::domctl(request)
}

/// Gives domain `id` one frame with `populate_physmap`; its MFN, or the
/// error (`-ENOMEM` when the hypervisor populated nothing).
pub fn populate_one(id: u16) -> Result<u64, i64> {
    use hypercall_abi::hypercall::Hypercall;
    use hypercall_abi::memory::{MemoryOp, MemoryReservation};
    let mut frame = 0u64;
    let request = MemoryReservation {
        extent_start: &mut frame as *mut u64 as u64,
        nr_extents: 1,
        extent_order: 0,
        mem_flags: 0,
        domid: id,
        ..MemoryReservation::default()
    };
    // SAFETY: the request and its one-entry array live for the call.
    let result = unsafe {
        hypercall_abi::wrappers::hypercall2(
            Hypercall::MemoryOp,
            u64::from(MemoryOp::PopulatePhysmap.raw()),
            &request as *const MemoryReservation as u64,
        )
    };
    match result {
        1 => Ok(frame),
        0 => Err(-12),
        error => Err(error),
    }
}
