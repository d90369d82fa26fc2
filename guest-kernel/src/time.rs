//! Time: the TSC (allowed in ring 3), system time and the wall clock from
//! the shared info page, and sleeping on the one-shot timer.
#![forbid(unsafe_code)]

pub use crate::sys::cpu::rdtsc;
use crate::sys::shared_info::read;

/// Nanoseconds since the hypervisor booted, from our `vcpu_time_info`:
/// the hypervisor's last snapshot plus the TSC cycles since, scaled as it
/// says. Reads again if the hypervisor was updating the snapshot.
pub fn system_time_ns() -> u64 {
    let Some(vcpu) = crate::sys::shared_info::vcpu_info_ref() else {
        return 0;
    };
    let info = &vcpu.time;
    loop {
        // The version protocol (odd = being written) detects a torn
        // snapshot: read again.
        let version = read(&info.version);
        core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
        let (stamp, system, mul, shift) = (
            read(&info.tsc_timestamp),
            read(&info.system_time),
            read(&info.tsc_to_system_mul),
            read(&info.tsc_shift),
        );
        let delta = rdtsc().saturating_sub(stamp);
        core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
        if version & 1 == 0 && read(&info.version) == version {
            let shifted = if shift >= 0 {
                delta << shift
            } else {
                delta >> -shift
            };
            return system + ((u128::from(shifted) * u128::from(mul)) >> 32) as u64;
        }
    }
}

/// The time of day: nanoseconds since 1970-01-01 UTC (the wall clock of
/// boot from shared_info, plus system time).
pub fn wallclock_ns() -> u64 {
    let Some(shared) = crate::start::shared_info() else {
        return 0;
    };
    let (seconds, nanoseconds) = loop {
        let version = read(&shared.wc_version);
        let (low, high, nanoseconds) = (
            read(&shared.wc_sec),
            read(&shared.wc_sec_hi),
            read(&shared.wc_nsec),
        );
        if version & 1 == 0 && read(&shared.wc_version) == version {
            break (
                (u64::from(high) << 32) | u64::from(low),
                u64::from(nanoseconds),
            );
        }
    };
    seconds * 1_000_000_000 + nanoseconds + system_time_ns()
}

/// Sleeps until system time `deadline` (ns): arms the one-shot timer
/// (`set_timer_op`) and blocks until it fires, using no CPU meanwhile.
pub fn sleep_until(deadline: u64) {
    hypercall_abi::wrappers::set_timer_op(deadline);
    crate::events::wait_until(|| system_time_ns() >= deadline);
}

/// Sleeps for `nanoseconds`.
pub fn sleep(nanoseconds: u64) {
    sleep_until(system_time_ns() + nanoseconds);
}
