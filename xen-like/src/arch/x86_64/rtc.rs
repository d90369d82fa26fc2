//! The CMOS real-time clock: the date and time at boot.
//!
//! Read once, to give guests their wall clock (`wc_sec` in shared_info);
//! after that, time advances by the TSC.

use super::instructions::{inb, outb};

const INDEX: u16 = 0x70;
const DATA: u16 = 0x71;

/// Reads CMOS register `register` (its bit 7 ignored: NMIs stay enabled).
pub fn read(register: u8) -> u8 {
    // SAFETY: the CMOS index/data ports belong to the hypervisor; bit 7 of
    // the index (NMI disable) is left clear.
    unsafe {
        outb(INDEX, register & 0x7f);
        inb(DATA)
    }
}

/// Writes CMOS register `register` (its bit 7 ignored, as in [`read`]):
/// the control domain's writes through port 0x71 (`traps::io_ports`).
pub fn write(register: u8, value: u8) {
    // SAFETY: as in `read`; the RTC's registers are the control domain's
    // to set, as in Xen (the hypervisor reads them only at boot).
    unsafe {
        outb(INDEX, register & 0x7f);
        outb(DATA, value);
    }
}

/// (year, month, day, hour, minute, second) in UTC, as the RTC holds it
/// (PCs keep the RTC in UTC under Linux and QEMU by default).
pub fn read_date_time() -> (u32, u32, u32, u32, u32, u32) {
    let snapshot = || {
        // Wait while an update is in progress (register A, bit 7).
        while read(0x0a) & 0x80 != 0 {
            core::hint::spin_loop();
        }
        [
            read(0x00),
            read(0x02),
            read(0x04),
            read(0x07),
            read(0x08),
            read(0x09),
            read(0x32),
        ]
    };
    // Read until two snapshots agree, so no update fell in the middle.
    let mut values = snapshot();
    loop {
        let again = snapshot();
        if again == values {
            break;
        }
        values = again;
    }
    let status_b = read(0x0b);
    let binary = status_b & 0x04 != 0;
    let decode = |value: u8| {
        if binary {
            u32::from(value)
        } else {
            u32::from(value & 0x0f) + u32::from(value >> 4) * 10
        }
    };
    let [second, minute, hour, day, month, year, century] = values;
    let mut hour_value = decode(hour & 0x7f);
    if status_b & 0x02 == 0 {
        // 12-hour clock: 12 AM is 0, 12 PM is 12, bit 7 marks PM.
        hour_value = hour_value % 12 + if hour & 0x80 != 0 { 12 } else { 0 };
    }
    let century = match decode(century) {
        19..=21 => decode(century),
        _ => 20,
    };
    (
        century * 100 + decode(year),
        decode(month),
        decode(day),
        hour_value,
        decode(minute),
        decode(second),
    )
}
