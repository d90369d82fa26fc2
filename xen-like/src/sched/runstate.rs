//! A vCPU's runstate (Xen's `vcpu_runstate_info`): which state it is in
//! since when, and how much system time it has spent in each state.
//!
//! Xen keeps four states: running (on a physical CPU), runnable (ready,
//! waiting for one), blocked (waiting for an event or a timer) and offline
//! (down, paused, not yet started, shut down). The scheduler tells the
//! record of every vCPU which state it is in at each of its decisions; the
//! time since the previous change is charged to the state being left, so
//! the four totals always add up to the time since the vCPU was created.
//! Guests read a snapshot with `VCPUOP_get_runstate_info`, or register an
//! area that the hypervisor refreshes when it switches the vCPU in.

use hypercall_abi::vcpu::{
    VcpuRunstateInfo, RUNSTATE_BLOCKED, RUNSTATE_OFFLINE, RUNSTATE_RUNNABLE, RUNSTATE_RUNNING,
};

/// A vCPU's runstate record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Runstate {
    /// The current `RUNSTATE_*`.
    state: i32,
    /// System time (ns) at which the current state was entered.
    entered: u64,
    /// Nanoseconds spent in each state before the current stint.
    totals: [u64; 4],
}

impl Runstate {
    /// A new vCPU: offline since `now`.
    pub const fn new(now: u64) -> Self {
        Self {
            state: RUNSTATE_OFFLINE,
            entered: now,
            totals: [0; 4],
        }
    }

    /// The state the scheduler sees: running on this CPU, else runnable,
    /// else blocked on an event, else offline.
    pub fn classify(running: bool, runnable: bool, blocked: bool) -> i32 {
        if running {
            RUNSTATE_RUNNING
        } else if runnable {
            RUNSTATE_RUNNABLE
        } else if blocked {
            RUNSTATE_BLOCKED
        } else {
            RUNSTATE_OFFLINE
        }
    }

    /// The vCPU is in `state` at `now`: charges the time since the last
    /// change to the state it leaves. Staying in the same state changes
    /// nothing (the entry time stays). A `now` before the entry time (which
    /// a monotonic clock does not produce) charges nothing.
    pub fn enter(&mut self, state: i32, now: u64) {
        if state == self.state {
            return;
        }
        let index = Self::index(self.state);
        self.totals[index] = self.totals[index].saturating_add(now.saturating_sub(self.entered));
        self.state = state;
        self.entered = now.max(self.entered);
    }

    /// What a guest reads at `now`: the current state with its entry time,
    /// and the totals including the current stint so far.
    pub fn snapshot(&self, now: u64) -> VcpuRunstateInfo {
        let mut time = self.totals;
        let index = Self::index(self.state);
        time[index] = time[index].saturating_add(now.saturating_sub(self.entered));
        VcpuRunstateInfo {
            state: self.state,
            pad: 0,
            state_entry_time: self.entered,
            time,
        }
    }

    /// The current state.
    pub fn state(&self) -> i32 {
        self.state
    }

    fn index(state: i32) -> usize {
        match state {
            RUNSTATE_RUNNING => 0,
            RUNSTATE_RUNNABLE => 1,
            RUNSTATE_BLOCKED => 2,
            _ => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_to_the_time_since_creation() {
        let mut runstate = Runstate::new(100);
        runstate.enter(RUNSTATE_RUNNABLE, 150);
        runstate.enter(RUNSTATE_RUNNING, 170);
        runstate.enter(RUNSTATE_RUNNING, 180); // no change
        runstate.enter(RUNSTATE_BLOCKED, 300);
        runstate.enter(RUNSTATE_RUNNING, 1300);
        let info = runstate.snapshot(1400);
        assert_eq!(info.state, RUNSTATE_RUNNING);
        assert_eq!(info.state_entry_time, 1300);
        assert_eq!(info.time, [130 + 100, 20, 1000, 50]);
        assert_eq!(info.time.iter().sum::<u64>(), 1400 - 100);
    }

    #[test]
    fn classification_prefers_running_then_runnable_then_blocked() {
        assert_eq!(Runstate::classify(true, true, false), RUNSTATE_RUNNING);
        assert_eq!(Runstate::classify(false, true, false), RUNSTATE_RUNNABLE);
        assert_eq!(Runstate::classify(false, false, true), RUNSTATE_BLOCKED);
        assert_eq!(Runstate::classify(false, false, false), RUNSTATE_OFFLINE);
    }

    #[test]
    fn a_clock_going_backwards_charges_nothing() {
        let mut runstate = Runstate::new(1000);
        runstate.enter(RUNSTATE_RUNNING, 900);
        assert_eq!(runstate.snapshot(800).time, [0; 4]);
        assert_eq!(runstate.state(), RUNSTATE_RUNNING);
    }
}
