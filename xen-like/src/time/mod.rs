//! Time: the TSC's frequency, measured at boot, and the hypervisor's tick.
//!
//! The TSC counts at a constant rate on every CPU this hypervisor targets
//! (and under QEMU at the host's rate). Its frequency is measured against
//! the PIT, whose rate is fixed by the PC's design; the local APIC timer is
//! calibrated in the same window and then drives a periodic tick.

use crate::arch::x86_64::{apic, pit};
use core::sync::atomic::{AtomicU64, Ordering};

/// The tick rate.
pub const TICKS_PER_SECOND: u64 = 100;
const CALIBRATION_MS: u64 = 20;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);

/// Measures the TSC and APIC timer and starts the periodic tick.
pub fn init() {
    apic::start_free_running_count();
    let mut counts = [0u32; 2];
    let mut sample = 0;
    let cycles = pit::measure_with_pit(CALIBRATION_MS, || {
        counts[sample.min(1)] = apic::current_count();
        sample += 1;
    });
    let tsc_hz = cycles * 1000 / CALIBRATION_MS;
    TSC_HZ.store(tsc_hz.max(1), Ordering::Relaxed);
    let apic_ticks = u64::from(counts[0].wrapping_sub(counts[1]));
    let per_tick = apic_ticks * 1000 / CALIBRATION_MS / TICKS_PER_SECOND;
    apic::start_periodic(per_tick.clamp(1, u64::from(u32::MAX)) as u32);
    log::info!(
        "TSC runs at {}.{:03} MHz; APIC timer {} counts per {} ms tick",
        tsc_hz / 1_000_000,
        tsc_hz / 1000 % 1000,
        per_tick,
        1000 / TICKS_PER_SECOND
    );
}

/// TSC cycles per second.
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Converts TSC cycles to nanoseconds.
pub fn cycles_to_ns(cycles: u64) -> u64 {
    (u128::from(cycles) * 1_000_000_000 / u128::from(tsc_hz())) as u64
}
