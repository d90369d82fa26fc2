//! The extent loop of `memory_op`'s reservation sub-ops, cut by a work budget.
//!
//! `XENMEM_increase_reservation`, `decrease_reservation` and
//! `populate_physmap` handle a guest-chosen number of extents, one by one.
//! Like every long hypercall (see `docs/continuations.md`) they stop when
//! their work budget runs out and become a continuation: the guest makes
//! the same `memory_op` again with the extent to resume at in the high bits
//! of `cmd` (`hypercall_abi::memory::continuation_command`). The loop
//! itself decides nothing about frames; the hypervisor passes it a step that
//! does one extent, so that where it stops and resumes is tested here.
#![forbid(unsafe_code)]

/// How the loop over a request's extents ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtentProgress {
    /// Every extent was tried, or one failed: the number done, counting the
    /// earlier parts of a continued call (Xen's `nr_done`). This is the
    /// hypercall's result.
    Finished(u64),
    /// The budget ran out: the call goes on at this extent.
    Preempted(u64),
}

/// Runs `step` for extents `start..count`, charging `units_per_extent`
/// (the pages of one extent, `1 << extent_order`) for each. `step(index)`
/// answers `Ok(true)` when the extent is done, `Ok(false)` when it could
/// not be (the call ends with the extents before it), or an error, which
/// ends the call with it. Before each extent the budget is checked: when
/// it is spent, the loop stops, with every extent before `index` done and
/// nothing of `index` begun.
pub fn run_extents<E>(
    start: u64,
    count: u64,
    units_per_extent: u64,
    budget: &mut u64,
    mut step: impl FnMut(u64) -> Result<bool, E>,
) -> Result<ExtentProgress, E> {
    for index in start..count {
        if *budget == 0 {
            return Ok(ExtentProgress::Preempted(index));
        }
        *budget = budget.saturating_sub(units_per_extent);
        if !step(index)? {
            return Ok(ExtentProgress::Finished(index));
        }
    }
    Ok(ExtentProgress::Finished(count.max(start)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypercall_abi::memory::{continuation_command, start_extent, MEMOP_CMD_MASK};

    /// Runs a request of `count` extents as the guest would see it, each
    /// call with `budget`, re-executing while it is preempted; returns the
    /// indexes stepped, in order, the final result and the number of calls.
    fn run_as_guest(
        operation: u64,
        count: u64,
        budget: u64,
        fails_at: Option<u64>,
    ) -> (Vec<u64>, u64, u64) {
        let mut stepped = Vec::new();
        let mut command = operation;
        let mut calls = 0;
        loop {
            calls += 1;
            assert_eq!(command & MEMOP_CMD_MASK, operation, "the sub-op survives");
            let mut left = budget;
            let progress = run_extents(start_extent(command), count, 1, &mut left, |index| {
                if Some(index) == fails_at {
                    return Ok::<bool, ()>(false);
                }
                stepped.push(index);
                Ok(true)
            })
            .expect("no error");
            match progress {
                ExtentProgress::Finished(done) => return (stepped, done, calls),
                ExtentProgress::Preempted(at) => command = continuation_command(operation, at),
            }
        }
    }

    #[test]
    fn the_command_carries_the_sub_op_and_the_resume_extent() {
        for operation in [0, 1, 6, MEMOP_CMD_MASK] {
            for extent in [0, 1, 2047, 2048, 1 << 20, u64::MAX >> 6] {
                let command = continuation_command(operation, extent);
                assert_eq!(command & MEMOP_CMD_MASK, operation);
                assert_eq!(start_extent(command), extent);
            }
        }
        // Xen's own encoding: `op | (nr_done << MEMOP_EXTENT_SHIFT)`.
        assert_eq!(continuation_command(6, 2048), 6 | (2048 << 6));
    }

    #[test]
    fn a_preempted_request_steps_each_extent_once_and_counts_them_all() {
        let (unpreempted, total, calls) = run_as_guest(0, 5000, u64::MAX, None);
        assert_eq!((total, calls), (5000, 1));
        for budget in [1, 2, 97, 2048] {
            let (stepped, total, calls) = run_as_guest(0, 5000, budget, None);
            assert_eq!(stepped, unpreempted, "budget {budget}");
            assert_eq!(total, 5000, "budget {budget}");
            assert_eq!(calls, 5000u64.div_ceil(budget), "budget {budget}");
        }
    }

    #[test]
    fn a_failure_after_a_continuation_reports_the_extents_done_in_all_parts() {
        let (stepped, total, calls) = run_as_guest(1, 5000, 2048, Some(4500));
        assert_eq!(total, 4500);
        assert_eq!(stepped, (0..4500).collect::<Vec<_>>());
        assert_eq!(calls, 3);
    }

    #[test]
    fn an_error_ends_the_call_and_a_start_beyond_the_count_does_nothing() {
        let mut budget = 10;
        let result = run_extents(0, 5, 1, &mut budget, |index| {
            if index == 3 {
                Err("fault")
            } else {
                Ok(true)
            }
        });
        assert_eq!(result, Err("fault"));
        let mut budget = 10;
        let mut stepped = 0;
        let result = run_extents::<()>(9, 5, 1, &mut budget, |_| {
            stepped += 1;
            Ok(true)
        });
        assert_eq!((result, stepped), (Ok(ExtentProgress::Finished(9)), 0));
    }

    #[test]
    fn an_extent_of_many_pages_costs_a_unit_per_page() {
        let mut budget = 2048;
        let result = run_extents::<()>(0, 100, 512, &mut budget, |_| Ok(true));
        assert_eq!(result, Ok(ExtentProgress::Preempted(4)));
    }
}
