//! Reading the time-stamp counter (allowed in ring 3).

/// Reads the TSC after all earlier instructions have completed.
#[inline(always)]
pub fn rdtsc() -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: lfence and rdtsc only order and read; CR4.TSD is clear, so
    // rdtsc is allowed in ring 3.
    unsafe {
        core::arch::asm!("lfence", "rdtsc", out("eax") low, out("edx") high, options(nostack, nomem, preserves_flags));
    }
    (u64::from(high) << 32) | u64::from(low)
}

/// Nanoseconds since the hypervisor booted, from our `vcpu_time_info`:
/// the hypervisor's last snapshot plus the TSC cycles since, scaled as it
/// says. Reads again if the hypervisor was updating the snapshot.
pub fn system_time_ns() -> u64 {
    let Some(shared) = crate::start::shared_info() else {
        return 0;
    };
    let info = &shared.vcpu_info[0].time;
    loop {
        // SAFETY: plain reads of our own shared info page; the version
        // protocol (odd = being written) detects a torn snapshot.
        let version = unsafe { core::ptr::read_volatile(&info.version) };
        core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
        // SAFETY: as above.
        let (stamp, system, mul, shift) = unsafe {
            (
                core::ptr::read_volatile(&info.tsc_timestamp),
                core::ptr::read_volatile(&info.system_time),
                core::ptr::read_volatile(&info.tsc_to_system_mul),
                core::ptr::read_volatile(&info.tsc_shift),
            )
        };
        let delta = rdtsc().saturating_sub(stamp);
        core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
        // SAFETY: as above.
        if version & 1 == 0 && unsafe { core::ptr::read_volatile(&info.version) } == version {
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
        // SAFETY: plain reads of our own shared info page, with the version
        // protocol as for vcpu_time_info.
        let version = unsafe { core::ptr::read_volatile(&shared.wc_version) };
        // SAFETY: as above.
        let (low, high, nanoseconds) = unsafe {
            (
                core::ptr::read_volatile(&shared.wc_sec),
                core::ptr::read_volatile(&shared.wc_sec_hi),
                core::ptr::read_volatile(&shared.wc_nsec),
            )
        };
        // SAFETY: as above.
        if version & 1 == 0 && unsafe { core::ptr::read_volatile(&shared.wc_version) } == version {
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
