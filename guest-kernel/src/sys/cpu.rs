//! Unprivileged instructions that Rust has no safe form for.

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
