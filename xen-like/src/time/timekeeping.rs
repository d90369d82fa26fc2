//! Time arithmetic: the scale a guest uses to turn TSC cycles into
//! nanoseconds, and calendar dates into seconds since the Unix epoch.
//!
//! A PV guest keeps time without asking the hypervisor every time. Each
//! vCPU's `vcpu_time_info` says: "at TSC value `tsc_timestamp`, system time
//! (nanoseconds since boot) was `system_time`; since then, nanoseconds =
//! ((TSC - tsc_timestamp) shifted by `tsc_shift`) * `tsc_to_system_mul` /
//! 2^32". The multiplication is a 32-bit fraction, so it is cheap and exact
//! enough; the shift keeps the multiplier in range for any TSC frequency.
//! Adding the wall clock of boot (`wc_sec`, `wc_nsec` in shared_info) gives
//! the time of day, which stays right however long the guest was not
//! running, because the TSC kept counting.

/// The `(tsc_to_system_mul, tsc_shift)` pair for a TSC running at `tsc_hz`:
/// `ns = ((cycles << shift) or (cycles >> -shift)) * mul >> 32`, with `mul`
/// in `[2^31, 2^32)` for the best precision.
pub fn scale_for(tsc_hz: u64) -> (u32, i8) {
    let tsc_hz = tsc_hz.max(1);
    // We want mul / 2^32 * 2^shift = 1e9 / tsc_hz.
    let mut shift: i8 = 0;
    let mut numerator: u128 = 1_000_000_000u128 << 32;
    let mut denominator: u128 = u128::from(tsc_hz);
    // Make the quotient fall in [2^31, 2^32).
    while numerator / denominator >= 1u128 << 32 {
        denominator <<= 1;
        shift += 1;
    }
    while numerator / denominator < 1u128 << 31 {
        numerator <<= 1;
        shift -= 1;
    }
    ((numerator / denominator) as u32, shift)
}

/// Nanoseconds for `cycles` with the given scale (what the guest computes).
pub fn scale_delta(cycles: u64, mul: u32, shift: i8) -> u64 {
    let shifted = if shift >= 0 {
        cycles << shift
    } else {
        cycles >> -shift
    };
    ((u128::from(shifted) * u128::from(mul)) >> 32) as u64
}

/// Seconds since 1970-01-01 00:00:00 UTC for a date and time (proleptic
/// Gregorian calendar). `month` is 1..=12, `day` 1..=31.
pub fn unix_seconds(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> u64 {
    // Days from the epoch, counting years from March so that leap days
    // come last (Howard Hinnant's days_from_civil).
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    (days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)).max(0)
        as u64
}

/// When the one-shot timer must next interrupt, as a TSC value: the
/// earliest of the scheduler's deadline (the end of the chosen vCPU's run,
/// or when a parked vCPU's allowance refills), the earliest guest timer
/// (`set_timer_op`, a single-shot `vcpu_op` timer, a `poll` timeout, as TSC
/// values), and `now + housekeeping`, the longest the hypervisor goes
/// without looking at its timers and the serial line. Never before `now`:
/// a deadline already past fires at once.
pub fn next_timer_deadline(
    now: u64,
    scheduler: Option<u64>,
    guest_timers: Option<u64>,
    housekeeping: u64,
) -> u64 {
    [scheduler, guest_timers]
        .into_iter()
        .flatten()
        .fold(now.saturating_add(housekeeping), u64::min)
        .max(now)
}

/// The local APIC timer's initial count for a one-shot `cycles` TSC cycles
/// long, the timer counting at `apic_hz` and the TSC at `tsc_hz`: at least
/// 1 (0 would stop the timer), at most what the 32-bit register holds.
/// Rounded up, so the interrupt never comes before the deadline (the
/// handler would find nothing due and ask again).
pub fn apic_count_for(cycles: u64, tsc_hz: u64, apic_hz: u64) -> u32 {
    let count = (u128::from(cycles) * u128::from(apic_hz)).div_ceil(u128::from(tsc_hz.max(1)));
    count.clamp(1, u128::from(u32::MAX)) as u32
}

/// The TSC value at system time `ns` (nanoseconds since boot), given the
/// TSC at system time 0 and the TSC's rate; rounded up, so that at that
/// TSC value the system time has reached `ns`.
pub fn tsc_at(ns: u64, boot_tsc: u64, tsc_hz: u64) -> u64 {
    let cycles = (u128::from(ns) * u128::from(tsc_hz)).div_ceil(1_000_000_000);
    boot_tsc.saturating_add(u64::try_from(cycles).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_convert_cycles_to_nanoseconds() {
        for hz in [
            1_000_000_000u64,
            2_614_212_000,
            3_000_000,
            100_000_000_000,
            1,
        ] {
            let (mul, shift) = scale_for(hz);
            assert!(mul >= 1 << 31, "{hz}: mul {mul:#x}");
            let one_second = scale_delta(hz, mul, shift);
            assert!(
                (999_999_000..=1_000_000_000).contains(&one_second),
                "{hz}: {one_second}"
            );
        }
        // A 1 GHz TSC: one cycle is one nanosecond.
        let (mul, shift) = scale_for(1_000_000_000);
        assert_eq!(scale_delta(123_456_789, mul, shift), 123_456_789);
    }

    #[test]
    fn calendar_dates_become_unix_time() {
        assert_eq!(unix_seconds(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(unix_seconds(2000, 3, 1, 0, 0, 0), 951_868_800);
        assert_eq!(unix_seconds(2026, 11, 22, 6, 4, 2), 1_795_327_442);
        assert_eq!(unix_seconds(2024, 2, 29, 12, 0, 0), 1_709_208_000);
    }

    #[test]
    fn the_timer_fires_at_the_earliest_deadline_and_never_before_now() {
        let tick = 10_000;
        assert_eq!(next_timer_deadline(1000, None, None, tick), 11_000);
        assert_eq!(next_timer_deadline(1000, Some(5000), None, tick), 5000);
        assert_eq!(
            next_timer_deadline(1000, Some(5000), Some(3000), tick),
            3000
        );
        assert_eq!(
            next_timer_deadline(1000, Some(50_000), Some(30_000), tick),
            11_000
        );
        // A deadline already past fires at once.
        assert_eq!(next_timer_deadline(1000, None, Some(10), tick), 1000);
        assert_eq!(
            next_timer_deadline(u64::MAX - 5, None, None, tick),
            u64::MAX
        );
    }

    #[test]
    fn apic_counts_scale_and_stay_in_the_register() {
        // A 2.6 GHz TSC and an APIC timer at 62.5 MHz (1 GHz / 16).
        assert_eq!(apic_count_for(2_600_000, 2_600_000_000, 62_500_000), 62_500);
        assert_eq!(apic_count_for(0, 2_600_000_000, 62_500_000), 1);
        assert_eq!(apic_count_for(u64::MAX, 1, 62_500_000), u32::MAX);
    }

    #[test]
    fn system_time_converts_to_the_tsc() {
        assert_eq!(tsc_at(1_000_000_000, 500, 2_000_000_000), 2_000_000_500);
        assert_eq!(tsc_at(0, 500, 2_000_000_000), 500);
        assert_eq!(tsc_at(u64::MAX, u64::MAX - 1, 2_000_000_000), u64::MAX);
    }
}
