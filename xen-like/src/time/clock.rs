//! The TSC calibration, system time and the one-shot APIC timer of this CPU.

use crate::arch::x86_64::{apic, instructions::rdtsc, pit, rtc};
use crate::mm::shared_page::{SharedInfoPage, TimeReading, VcpuInfoCells};
use crate::time::timekeeping;
use core::sync::atomic::{AtomicU64, Ordering};

/// The tick rate.
pub const TICKS_PER_SECOND: u64 = 100;
const CALIBRATION_MS: u64 = 20;
/// How many calibration windows are measured; the median one counts.
const CALIBRATION_WINDOWS: usize = 5;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// TSC at system time 0.
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
/// Unix time (seconds) at system time 0, from the RTC.
static BOOT_WALLCLOCK: AtomicU64 = AtomicU64::new(0);
/// The guests' scale: tsc_to_system_mul and, in the top byte, tsc_shift.
static SCALE: AtomicU64 = AtomicU64::new(0);
/// The local APIC timer's counts per second (after its divide-by-16).
static APIC_HZ: AtomicU64 = AtomicU64::new(0);
/// The TSC value the timer is armed for (`u64::MAX`: not armed).
static ARMED_AT: AtomicU64 = AtomicU64::new(u64::MAX);

/// Measures the TSC and APIC timer and starts the periodic tick.
pub fn init() {
    let (year, month, day, hour, minute, second) = rtc::read_date_time();
    BOOT_TSC.store(rdtsc(), Ordering::Relaxed);
    BOOT_WALLCLOCK.store(
        timekeeping::unix_seconds(year, month, day, hour, minute, second),
        Ordering::Relaxed,
    );
    log::info!("wall clock at boot: {year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC (from the RTC)");
    apic::start_free_running_count();
    // A stall of the machine inside a window (a host that deschedules its
    // emulator, an SMI on real hardware) stretches or shrinks that window's
    // TSC count: one window gave 5 to 30 GHz for a 2.6 GHz TSC on a loaded
    // host. Measure several and keep the median one.
    let mut windows = [(0u64, 0u64); CALIBRATION_WINDOWS];
    for window in windows.iter_mut() {
        let mut counts = [0u32; 2];
        let mut sample = 0;
        let cycles = pit::measure_with_pit(CALIBRATION_MS, || {
            counts[sample.min(1)] = apic::current_count();
            sample += 1;
        });
        *window = (cycles, u64::from(counts[0].wrapping_sub(counts[1])));
    }
    windows.sort_unstable();
    let (cycles, apic_ticks) = windows[CALIBRATION_WINDOWS / 2];
    let tsc_hz = cycles * 1000 / CALIBRATION_MS;
    TSC_HZ.store(tsc_hz.max(1), Ordering::Relaxed);
    let (mul, shift) = timekeeping::scale_for(tsc_hz);
    SCALE.store(
        u64::from(mul) | (u64::from(shift as u8) << 56),
        Ordering::Relaxed,
    );
    let per_tick = apic_ticks * 1000 / CALIBRATION_MS / TICKS_PER_SECOND;
    APIC_HZ.store((per_tick * TICKS_PER_SECOND).max(1), Ordering::Relaxed);
    arm_timer_at(rdtsc() + housekeeping_cycles());
    log::info!(
        "TSC runs at {}.{:03} MHz; APIC timer {} counts per {} ms tick",
        tsc_hz / 1_000_000,
        tsc_hz / 1000 % 1000,
        per_tick,
        1000 / TICKS_PER_SECOND
    );
}

/// The longest the hypervisor goes without a timer interrupt: one tick.
pub fn housekeeping_cycles() -> u64 {
    tsc_hz() / TICKS_PER_SECOND
}

/// Arms the one-shot timer to interrupt at TSC value `deadline` (at once if
/// it has passed), replacing whatever it was armed for.
pub fn arm_timer_at(deadline: u64) {
    let now = rdtsc();
    let count = timekeeping::apic_count_for(
        deadline.saturating_sub(now),
        tsc_hz(),
        APIC_HZ.load(Ordering::Relaxed),
    );
    ARMED_AT.store(deadline, Ordering::Relaxed);
    apic::start_one_shot(count);
}

/// Arms the timer for `deadline` only if that is earlier than what it is
/// armed for (a guest just set a timer while running).
pub fn arm_timer_no_later_than(deadline: u64) {
    if deadline < ARMED_AT.load(Ordering::Relaxed) {
        arm_timer_at(deadline);
    }
}

/// The TSC value at system time `ns`.
pub fn tsc_at_system_time(ns: u64) -> u64 {
    timekeeping::tsc_at(ns, BOOT_TSC.load(Ordering::Relaxed), tsc_hz())
}

/// TSC cycles per second.
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Converts TSC cycles to nanoseconds.
pub fn cycles_to_ns(cycles: u64) -> u64 {
    (u128::from(cycles) * 1_000_000_000 / u128::from(tsc_hz())) as u64
}

/// Nanoseconds since boot (system time, as guests see it).
pub fn system_time_ns() -> u64 {
    cycles_to_ns(rdtsc().saturating_sub(BOOT_TSC.load(Ordering::Relaxed)))
}

/// Publishes the current time in the `vcpu_time_info` of `vcpu` (a vCPU's
/// `vcpu_info`, wherever the guest keeps it: `Domain::vcpu_info`), with
/// Xen's version protocol: odd while the fields change, so a guest that
/// reads an odd or changed version reads again.
pub fn publish_vcpu_time(vcpu: &VcpuInfoCells) {
    let scale = SCALE.load(Ordering::Relaxed);
    let now = rdtsc();
    vcpu.publish_time(&TimeReading {
        tsc_timestamp: now,
        system_time: cycles_to_ns(now.saturating_sub(BOOT_TSC.load(Ordering::Relaxed))),
        tsc_to_system_mul: scale as u32,
        tsc_shift: (scale >> 56) as u8 as i8,
        flags: hypercall_abi::layout::XEN_PVCLOCK_TSC_STABLE_BIT,
    });
}

/// Writes the wall clock of boot into `shared` (Xen's `wc_*` fields, with
/// the same version protocol): time of day = wall clock + system time.
pub fn publish_wallclock(shared: &SharedInfoPage) {
    shared.publish_wallclock(BOOT_WALLCLOCK.load(Ordering::Relaxed), 0);
}
