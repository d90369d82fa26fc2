//! The legacy 8254 timer (PIT) and 8259 interrupt controllers (PIC).
//!
//! The PIT ticks at a fixed, known 1.193182 MHz on every PC, which makes it
//! the yardstick for measuring the TSC and the local APIC timer at boot.
//! The PICs are only silenced: interrupts come through the local APIC.

use super::instructions::{inb, outb, rdtsc};

const PIT_FREQUENCY_HZ: u64 = 1_193_182;
const PIT_CHANNEL2_DATA: u16 = 0x42;
const PIT_COMMAND: u16 = 0x43;
/// Port 0x61 (NMI status and control): bit 0 gates channel 2, bit 1 drives
/// the speaker, bit 5 reads channel 2's output.
const SYSTEM_CONTROL: u16 = 0x61;

/// Vector base of the (masked) legacy PICs: 0x20..0x2f. A spurious
/// interrupt from them lands there and is ignored.
pub const LEGACY_PIC_VECTOR_BASE: u8 = 0x20;

/// Remaps both PICs away from the exception vectors and masks every line.
pub fn silence_legacy_pics() {
    // SAFETY: the 8259 ports belong to the hypervisor; the standard
    // initialisation sequence (ICW1..ICW4) followed by a full mask leaves
    // the PICs inert.
    unsafe {
        outb(0x20, 0x11);
        outb(0xa0, 0x11);
        outb(0x21, LEGACY_PIC_VECTOR_BASE);
        outb(0xa1, LEGACY_PIC_VECTOR_BASE + 8);
        outb(0x21, 4);
        outb(0xa1, 2);
        outb(0x21, 1);
        outb(0xa1, 1);
        outb(0x21, 0xff);
        outb(0xa1, 0xff);
    }
}

/// Busy-waits for `milliseconds` (at most 50) measured by PIT channel 2,
/// calling `sample` just before and right after, and returns the TSC cycles
/// that elapsed. Used to calibrate the TSC and the APIC timer together.
pub fn measure_with_pit(milliseconds: u64, mut sample: impl FnMut()) -> u64 {
    let count = (PIT_FREQUENCY_HZ * milliseconds.min(50) / 1000) as u16;
    // SAFETY: PIT channel 2 and port 0x61 belong to the hypervisor; we
    // gate the speaker off and use channel 2 in mode 0 (one-shot), whose
    // output rises when the count reaches zero.
    unsafe {
        let control = inb(SYSTEM_CONTROL);
        outb(SYSTEM_CONTROL, (control & !0x02) | 0x01);
        outb(PIT_COMMAND, 0b1011_0000); // channel 2, low then high byte, mode 0
        outb(PIT_CHANNEL2_DATA, count as u8);
        outb(PIT_CHANNEL2_DATA, (count >> 8) as u8);
        sample();
        let start = rdtsc();
        while inb(SYSTEM_CONTROL) & 0x20 == 0 {
            core::hint::spin_loop();
        }
        let end = rdtsc();
        sample();
        outb(SYSTEM_CONTROL, control);
        end - start
    }
}
