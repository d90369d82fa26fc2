//! `console_io`: the hypervisor's own console, for early output and for
//! Dom0's shell until split consoles exist.

use crate::console::{self, caller_log};
use crate::domain;
use crate::domain::require_privileged;
use crate::mm::guest_access;
use hypercall_abi::console::ConsoleIoOp;
use hypercall_abi::XenError;

/// Bytes moved per step.
const CHUNK: usize = 256;
/// The most bytes one call may write (Xen preempts long writes instead).
const MAX_WRITE: u64 = 64 * 1024;

/// `console_io(cmd, count, buffer)`.
pub fn console_io(command: u64, count: u64, buffer: u64) -> Result<u64, XenError> {
    let Some(operation) = ConsoleIoOp::from_register(command) else {
        caller_log!(Warn, "unknown console_io command {command}: -ENOSYS");
        return Err(XenError::ENOSYS);
    };
    match operation {
        ConsoleIoOp::Write => {
            guest_access::check_range(buffer, count)?;
            if count > MAX_WRITE {
                return Err(XenError::E2BIG);
            }
            let id = crate::domain::caller();
            let mut bytes = [0u8; CHUNK];
            let mut done = 0;
            while done < count {
                let length = (count - done).min(CHUNK as u64) as usize;
                guest_access::copy_from_guest(buffer + done, &mut bytes[..length])?;
                // Within the domain's rate limit (see `console`).
                domain::with(id, |domain| {
                    console::write_guest_output(domain, &bytes[..length])
                });
                done += length as u64;
            }
            Ok(0)
        }
        ConsoleIoOp::Read => {
            // The physical console's input belongs to the control domain.
            require_privileged()?;
            guest_access::check_range(buffer, count)?;
            let mut bytes = [0u8; CHUNK];
            let wanted = (count as usize).min(CHUNK);
            // Input taken from the ring is gone: make sure it can be
            // delivered before taking it.
            guest_access::check_writable(buffer, wanted)?;
            let got = console::read_input(&mut bytes[..wanted]);
            guest_access::copy_to_guest(buffer, &bytes[..got])?;
            Ok(got as u64)
        }
    }
}
