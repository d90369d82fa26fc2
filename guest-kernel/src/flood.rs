//! `workload=flood`: everything an unprivileged guest can make the
//! hypervisor print, as fast as it can, to check the rate limits.
//!
//! Each of its `rounds=` (default 1) makes `calls=` (default 10,000)
//! unimplemented hypercalls, each of which the hypervisor answers with
//! `-ENOSYS` and a warning about this domain, then writes `lines=` (default
//! 10,000) lines with `console_io`, which the hypervisor prints on the
//! serial line as `(dN) ...`. Without rate limits that is one serial line
//! (and one log-ring line, for the warnings) per call. Then it waits 1.5 s,
//! longer than the limit's
//! interval, and writes one last `console_io` line: the hypervisor lets it
//! through and says first how many of this domain's messages it dropped.
//! Its own report goes to its console ring (`xl console`), as usual.
#![forbid(unsafe_code)]

use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::abi::{wrappers, XenError};
use guest_kernel::sys::raw;
use guest_kernel::{println, time};

/// A hypercall number the hypervisor does not implement (`hvm_op`: a PV
/// hypervisor has no HVM guests).
const UNIMPLEMENTED: u64 = 34;

/// The value of `key=` on the command line, or `default`.
fn argument(line: &str, key: &str, default: u64) -> u64 {
    line.split_ascii_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Runs the flood and powers off.
pub fn flood(line: &str) -> ! {
    let rounds = argument(line, "rounds", 1);
    let calls = argument(line, "calls", 10_000);
    let lines = argument(line, "lines", 10_000);
    let start = time::system_time_ns();
    let mut refused = 0u64;
    let mut text = heapless::String::<48>::new();
    for _ in 0..rounds {
        for _ in 0..calls {
            // A hypercall without arguments that the hypervisor refuses.
            let result = raw::hypercall0(UNIMPLEMENTED);
            if result == XenError::ENOSYS.as_return() {
                refused += 1;
            }
        }
        for number in 0..lines {
            text.clear();
            let _ = core::fmt::write(&mut text, format_args!("flood: line {number}\r\n"));
            wrappers::console_write(text.as_bytes());
        }
    }
    println!(
        "flood: {refused} of {} hypercalls refused with -ENOSYS and {} console_io lines written in {} ms",
        rounds * calls,
        rounds * lines,
        (time::system_time_ns() - start) / 1_000_000
    );
    time::sleep(1_500_000_000);
    wrappers::console_write(b"flood: the last line, after a pause\r\n");
    guest_kernel::shutdown(ShutdownReason::Poweroff)
}
