//! The local APIC: this CPU's interrupt controller and timer.
//!
//! Reached through its memory-mapped registers at the physical address in
//! `IA32_APIC_BASE` (normally 0xfee00000), which the direct map covers. The
//! timer runs in one-shot mode, programmed for the hypervisor's next
//! deadline (see `time::arm_timer_at`).

use super::instructions::{read_msr, write_msr};
use core::sync::atomic::{AtomicU64, Ordering};

const MSR_APIC_BASE: u32 = 0x1b;
const REGISTER_EOI: u64 = 0xb0;
const REGISTER_SPURIOUS: u64 = 0xf0;
const REGISTER_LVT_TIMER: u64 = 0x320;
const REGISTER_TIMER_INITIAL: u64 = 0x380;
const REGISTER_TIMER_CURRENT: u64 = 0x390;
const REGISTER_TIMER_DIVIDE: u64 = 0x3e0;

/// The timer's interrupt vector.
pub const TIMER_VECTOR: u8 = 0xf0;
/// The vector of spurious APIC interrupts (which need no EOI).
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// Virtual address of the register page (set by `init`).
static REGISTERS: AtomicU64 = AtomicU64::new(0);

fn register(offset: u64) -> *mut u32 {
    (REGISTERS.load(Ordering::Relaxed) + offset) as *mut u32
}

fn read(offset: u64) -> u32 {
    // SAFETY: `init` pointed REGISTERS at the APIC page through the direct
    // map; the offsets are architectural registers, read with 32-bit
    // volatile accesses as the APIC requires.
    unsafe { register(offset).read_volatile() }
}

fn write(offset: u64, value: u32) {
    // SAFETY: as in `read`; writes to these registers only affect this
    // CPU's interrupt delivery, which the hypervisor owns.
    unsafe { register(offset).write_volatile(value) }
}

/// Enables the local APIC. `physical_to_virtual` maps its register page.
pub fn init(physical_to_virtual: impl Fn(u64) -> u64) {
    let base = read_msr(MSR_APIC_BASE);
    // SAFETY: setting the global-enable bit (11) of the APIC base MSR keeps
    // the base address unchanged and turns the APIC on.
    unsafe { write_msr(MSR_APIC_BASE, base | (1 << 11)) };
    REGISTERS.store(physical_to_virtual(base & 0xf_ffff_f000), Ordering::Relaxed);
    write(REGISTER_SPURIOUS, 0x100 | u32::from(SPURIOUS_VECTOR));
}

/// Starts the timer counting down from its largest value (for calibration).
pub fn start_free_running_count() {
    write(REGISTER_TIMER_DIVIDE, 0b0011); // divide by 16
    write(REGISTER_LVT_TIMER, 1 << 16); // masked, one-shot
    write(REGISTER_TIMER_INITIAL, u32::MAX);
}

/// The timer's current count.
pub fn current_count() -> u32 {
    read(REGISTER_TIMER_CURRENT)
}

/// Interrupts once, after `count` timer counts (the bus clock divided by
/// 16); a new call restarts the countdown.
pub fn start_one_shot(count: u32) {
    write(REGISTER_TIMER_DIVIDE, 0b0011);
    write(REGISTER_LVT_TIMER, u32::from(TIMER_VECTOR)); // one-shot, unmasked
    write(REGISTER_TIMER_INITIAL, count.max(1));
}

/// Signals the end of an interrupt to the APIC.
pub fn end_of_interrupt() {
    write(REGISTER_EOI, 0);
}
