//! The sanity check on a domain's maximum memory that `domctl` applies.
//!
//! Only the control domain may create domains or set their limits, and the
//! hypervisor trusts it; but a limit of zero pages, or of more pages than
//! the machine has, is a mistake in the toolstack (a unit confused, a number
//! overflowed), and accepting it would only move the failure somewhere
//! harder to read. So it is refused with `-EINVAL` and a log line naming
//! the value, as Xen's `XEN_DOMCTL_max_mem` refuses values it cannot
//! represent.

/// Why a maximum was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxPagesRefusal {
    /// Zero pages: nothing could ever run.
    Zero,
    /// More pages than the machine has usable.
    MoreThanTheMachine,
}

impl MaxPagesRefusal {
    /// A sentence fragment for the log line.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Zero => "a domain needs at least one page",
            Self::MoreThanTheMachine => "it is more than the machine's memory",
        }
    }
}

/// Checks a maximum of `pages` 4 KiB pages against a machine with
/// `machine_pages` usable pages.
pub fn check_max_pages(pages: u64, machine_pages: u64) -> Result<(), MaxPagesRefusal> {
    if pages == 0 {
        Err(MaxPagesRefusal::Zero)
    } else if pages > machine_pages {
        Err(MaxPagesRefusal::MoreThanTheMachine)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MACHINE: u64 = 128 << 8; // 128 MiB

    #[test]
    fn sensible_limits_pass() {
        assert_eq!(check_max_pages(1, MACHINE), Ok(()));
        assert_eq!(check_max_pages(8 << 8, MACHINE), Ok(()));
        assert_eq!(check_max_pages(MACHINE, MACHINE), Ok(()));
    }

    #[test]
    fn nonsense_is_refused() {
        assert_eq!(check_max_pages(0, MACHINE), Err(MaxPagesRefusal::Zero));
        assert_eq!(
            check_max_pages(MACHINE + 1, MACHINE),
            Err(MaxPagesRefusal::MoreThanTheMachine)
        );
        // "up to 2^56 MiB", as the fuzzer found accepted.
        assert_eq!(
            check_max_pages(u64::MAX, MACHINE),
            Err(MaxPagesRefusal::MoreThanTheMachine)
        );
    }
}
