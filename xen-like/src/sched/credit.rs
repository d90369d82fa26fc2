//! Proportional-share CPU scheduling with weights and caps: which vCPU runs
//! next on one CPU, in the manner of Xen's credit scheduler.
//!
//! # Weights: shares of a busy CPU
//!
//! Every vCPU has a *weight*, 1 to 65535, 256 by default. When several
//! vCPUs want the CPU at once, each gets CPU time in proportion to its
//! weight: weights 256 and 512 split a busy CPU one third to two thirds.
//! Weights are relative: 256 against 512 is the same as 1 against 2. A
//! weight says nothing about an idle CPU: a vCPU alone gets all of it,
//! whatever its weight (the scheduler is *work conserving*).
//!
//! # Caps: a ceiling even on an idle CPU
//!
//! A *cap* is a percentage of one CPU that a vCPU may never exceed, even
//! when nothing else wants the CPU: cap 25 means at most a quarter of every
//! accounting period, and the CPU halts for the rest. Cap 0 means no cap.
//! (Xen's caps are per domain and may exceed 100 for a domain with several
//! vCPUs; here a cap belongs to one vCPU on one CPU, so it is 1 to 100.)
//! Caps are what a provider sells ("half a CPU, guaranteed not more"), and
//! they make a guest's speed predictable whatever else the machine runs.
//!
//! # Credits and accounting periods
//!
//! Time is cut into *accounting periods* (Xen: 30 ms). At the start of each
//! period every *active* vCPU is granted credit, measured in CPU cycles:
//! its weight divided by the sum of the weights of all active vCPUs, times
//! the length of the period (with one refinement, below). Running spends
//! credit one for one with the cycles run. Over a busy period the grants
//! add up to exactly the period, and so does the spending: credit is
//! conserved, balances stay small, and each vCPU's spending must track its
//! grants, that is, its weight.
//!
//! A vCPU is active when it is runnable, or ran during the period that just
//! ended. A vCPU blocked for the whole period earns nothing: it cannot save
//! up CPU time while it sleeps. A vCPU that wakes now and then, works a
//! little and blocks again is active and earns more than it spends; left
//! alone it would pile up credit for a later monopoly, and its unspent
//! grants would be missing from the busy vCPUs' budgets. So, as in Xen, a
//! balance may not exceed one period's worth (the *ceiling*), and a grant
//! is never more than a vCPU can use: more than would lift it above the
//! ceiling, or, if it is capped, more than its cap lets it run in a period.
//! What one vCPU cannot take is shared among the others, again by weight
//! (Xen hands out a capped domain's surplus the same way; at the ceiling it
//! stops the vCPU's accounting instead, to the same effect). After any
//! wake-up a vCPU can therefore run ahead of the others for at most about
//! one period. Debt is bounded the same way, at minus one period: a vCPU
//! that ran alone on an otherwise idle CPU used time nobody wanted, and
//! must not be starved for it later.
//!
//! # UNDER and OVER
//!
//! A vCPU with credit left (zero or more) is UNDER its fair share; one in
//! debt is OVER. The scheduler runs the runnable vCPU with the most credit,
//! so every UNDER vCPU goes before every OVER one, and an OVER vCPU runs
//! only when no UNDER vCPU wants the CPU; that is how an idle CPU is shared
//! out regardless of weights. Among equal balances, the vCPU picked least
//! recently goes first (round robin). A vCPU that yielded (`sched_op`
//! yield) is passed over for one decision if anyone else may run.
//!
//! A capped vCPU also has an *allowance*: cap% of the period, refilled at
//! each period start (refilled, not added up: an unused allowance is not
//! saved). Once the allowance is spent the vCPU is *parked* until the next
//! period, UNDER or not. A run that overshoots the allowance (a late timer)
//! is repaid from the next period's, so the cap holds on average too.
//!
//! # BOOST: a vCPU that wakes goes first, a little
//!
//! Weights and credits decide how a busy CPU is shared over periods; they
//! say nothing about how soon a vCPU that was asleep gets the CPU when it
//! wakes. Without more, a light vCPU (a shell waiting for keys, a backend
//! waiting for requests) of small weight beside heavy CPU-bound ones would
//! wait for whole periods: each keystroke's few microseconds of work put it
//! OVER, and an OVER vCPU runs only when every UNDER one is done. Xen's
//! answer is the BOOST priority: a vCPU that wakes from blocking goes
//! before every UNDER and OVER vCPU, until its run is next accounted.
//!
//! Xen boosts only a vCPU that is UNDER, and its sampled accounting rarely
//! charges a run that blocks before the next tick, so a light vCPU stays
//! UNDER there. Here every cycle is charged, so that rule would boost a
//! light vCPU once and then never again. Instead each vCPU has a *boost
//! budget*: a tenth of a period ([`BOOST_BUDGET_DIVISOR`]), refilled (not
//! saved up) at each period start, like a cap's allowance. A vCPU that
//! wakes (from blocking, or from a pause) starts a *boost episode*: it is
//! boosted while it has budget left, and at each of the next
//! [`BOOST_EPISODE_PERIODS`] period starts it is boosted again with a full
//! budget if it is still busy. Boosted running spends the budget as well as
//! the credit; the time slice of a boosted vCPU that others wait for ends
//! with its budget; the episode ends when the vCPU blocks, or after those
//! period starts. Boosted vCPUs take turns (round robin), whatever their
//! credit, so one that just woke waits for at most one boosted run of each
//! other.
//!
//! So a shell or a backend answers at once, whatever its weight, and a
//! command that needs more than a budget (`xl create` builds a domain for
//! tens of milliseconds) still gets a tenth of every period until it is
//! done, rather than waiting for credit its weight earns at a trickle. A
//! CPU-bound vCPU is boosted only in the first periods after it is created
//! or unpaused, never again; whatever a vCPU gains by boosting is bounded
//! by a tenth of each period and paid for in credit like any other run;
//! and a cap still holds: a parked vCPU does not run, boosted or not.
//!
//! # Exact accounting, and why sampling at ticks is unfair
//!
//! The simple way to account time is to sample: at each timer tick (Xen:
//! every 10 ms), charge a whole tick to whichever vCPU is running. Sampling
//! is right on average only if a vCPU's runs are independent of the tick.
//! A guest can arrange otherwise: run for 9.9 ms just after a tick, yield
//! just before the next one, and let someone else be caught by the tick.
//! It is then charged nothing, stays UNDER forever, and gets nearly the
//! whole CPU at any weight (Tsafrir, Etsion and Feitelson, "Secretly
//! monopolizing the CPU without superuser privileges", 2007). The first
//! versions of Xen's credit scheduler debited credit per tick; later ones
//! measure the time actually run (`burn_credits`).
//!
//! Here the caller measures every run with the TSC and calls
//! [`Credit::charge`] at each switch away from a vCPU, and at ticks for the
//! one still running. Nothing is sampled, so a run is paid for however it
//! lines up with the ticks. [`Credit::pick`] also says how long the chosen
//! vCPU may run: until its slice ends, its allowance runs out, the period
//! ends, or (if another UNDER vCPU waits) its credit runs out. The caller
//! programs a one-shot timer for that, so the decisions that matter happen
//! on time and not at the next tick.
//!
//! # A worked example
//!
//! Period 30 ms, slice 10 ms. A (weight 256), B (weight 512) and C
//! (weight 256, cap 25) are all CPU-bound, and start the period at zero.
//!
//! * The weights sum to 1024: A is granted 30 × 256/1024 = 7.5 ms of
//!   credit, B 15 ms, C 7.5 ms. C's allowance is 25% of 30 ms = 7.5 ms.
//! * B has the most credit and runs a 10 ms slice: B 5, A 7.5, C 7.5.
//! * A and C tie, and neither has run yet, so A (added first) goes. It
//!   runs 7.5 ms, until its credit runs out, because B and C are still
//!   UNDER and waiting.
//! * C runs 7.5 ms; its credit and its allowance run out together, and C
//!   is parked until the next period.
//! * B runs its last 5 ms as the period ends. A 7.5, B 15, C 7.5 ms: the
//!   weights' 1 : 2 : 1, and C exactly at its cap.
//!
//! Now let C's cap be 10, that is 3 ms a period. C's fair 7.5 ms is more
//! than it may use, so it is granted 3 ms, and the other 27 ms go to A and
//! B by weight: 9 and 18 ms. The CPU splits 30 : 60 : 10 percent. Had C
//! been granted its 7.5 ms anyway, A and B would have had 22.5 ms of credit
//! for 27 ms of running, would both have gone OVER, and would have shared
//! the difference by balance instead of by weight.
//!
//! Take away A and B, and C runs 3 ms of every 30; the CPU halts for the
//! other 27 ([`Decision::Idle`]), although C still wants to run.

/// Who a vCPU is, as the caller names it (for example a domain ID with the
/// vCPU number); the scheduler only compares IDs.
pub type VcpuId = u32;

/// The weight a vCPU gets unless told otherwise (Xen's default).
pub const DEFAULT_WEIGHT: u32 = 256;
/// The largest weight (Xen's limit; the smallest is 1).
pub const MAX_WEIGHT: u32 = 65535;
/// The largest cap, in percent of one CPU (0 means uncapped).
pub const MAX_CAP: u32 = 100;
/// How many vCPUs one CPU's scheduler holds.
pub const MAX_VCPUS: usize = 64;

/// When [`Credit::pick`] cuts a run short at the end of the vCPU's credit to
/// let another UNDER vCPU in, it never cuts it below `slice` divided by
/// this: a decision costs a timer interrupt and a switch, and a run of a
/// few cycles buys nothing (Xen's rate limit, 1 ms against a 30 ms slice,
/// has the same purpose). Caps and period boundaries are always honoured to
/// the cycle.
const SHORTEST_CREDIT_CUT_DIVISOR: u64 = 10;

/// A vCPU may run boosted for at most the period divided by this in each
/// period (see the module documentation on BOOST).
pub const BOOST_BUDGET_DIVISOR: u64 = 10;

/// How many period starts a boost episode (from a wake to the next block)
/// lasts: a vCPU still busy after it has its boost budget back at each of
/// them, and none after (see the module documentation on BOOST).
pub const BOOST_EPISODE_PERIODS: u32 = 20;

/// A vCPU's scheduling parameters, as `xl sched-credit` shows and sets
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Relative share of a busy CPU, `1..=MAX_WEIGHT`.
    pub weight: u32,
    /// Ceiling in percent of one CPU, `1..=MAX_CAP`; 0 means none.
    pub cap: u32,
}

impl Params {
    /// Weight 256, no cap.
    pub const DEFAULT: Params = Params {
        weight: DEFAULT_WEIGHT,
        cap: 0,
    };

    /// Whether the parameters are in range.
    pub fn validate(self) -> Result<(), CreditError> {
        if !(1..=MAX_WEIGHT).contains(&self.weight) {
            return Err(CreditError::WeightOutOfRange);
        }
        if self.cap > MAX_CAP {
            return Err(CreditError::CapOutOfRange);
        }
        Ok(())
    }
}

impl Default for Params {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why the scheduler refused a request. One type for every fallible call,
/// so the hypercall layer has one mapping to Xen's error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreditError {
    /// The weight is 0 or above [`MAX_WEIGHT`].
    WeightOutOfRange,
    /// The cap is above [`MAX_CAP`].
    CapOutOfRange,
    /// No vCPU with this ID is in the run set.
    UnknownVcpu,
    /// A vCPU with this ID is already in the run set.
    AlreadyAdded,
    /// The run set already holds [`MAX_VCPUS`] vCPUs.
    Full,
}

impl CreditError {
    /// A sentence for a person reading a log or `xl` output.
    pub fn description(self) -> &'static str {
        match self {
            Self::WeightOutOfRange => "The weight must be between 1 and 65535.",
            Self::CapOutOfRange => "The cap must be between 0 (no cap) and 100 percent of one CPU.",
            Self::UnknownVcpu => "The scheduler has no vCPU with that ID on this CPU.",
            Self::AlreadyAdded => "That vCPU is already in the scheduler's run set.",
            Self::Full => "This CPU's scheduler already holds 64 vCPUs, its limit.",
        }
    }

    /// The error a hypercall returns for it.
    pub fn errno(self) -> hypercall_abi::XenError {
        use hypercall_abi::XenError;
        match self {
            Self::WeightOutOfRange | Self::CapOutOfRange => XenError::EINVAL,
            Self::UnknownVcpu => XenError::ESRCH,
            Self::AlreadyAdded => XenError::EEXIST,
            Self::Full => XenError::ENOSPC,
        }
    }
}

/// What [`Credit::pick`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run `vcpu`, and ask again after at most `cycles` TSC cycles (program
    /// the one-shot timer for it). Asking earlier is always allowed.
    Run {
        /// Who runs.
        vcpu: VcpuId,
        /// Cycles it may run before the next decision; at least 1.
        cycles: u64,
    },
    /// Nothing may run: halt. If `until` is set, a capped vCPU is waiting
    /// for its allowance, which refills at that TSC value: wake up then.
    /// Otherwise sleep until an interrupt makes someone runnable.
    Idle {
        /// TSC value at which to ask again, if any.
        until: Option<u64>,
    },
}

/// One vCPU's scheduling state.
#[derive(Clone, Copy, Debug)]
struct Vcpu {
    id: VcpuId,
    params: Params,
    /// Cycles it may still run at its fair share; negative = OVER.
    credit: i64,
    /// Cycles it may still run this period under its cap (capped only).
    allowance: i64,
    /// Whether it ran at all during the current period (keeps it active).
    ran_this_period: bool,
    runnable: bool,
    /// Asked to be passed over once (`sched_op` yield).
    yielded: bool,
    /// Woke from blocking with boost budget left: goes before the others.
    boosted: bool,
    /// Cycles it may still run boosted this period.
    boost_budget: i64,
    /// Period starts left in its boost episode (since its last wake).
    boost_episode: u32,
    /// Sequence number of the last `pick` that chose it, for round robin.
    last_picked: u64,
    /// Every cycle ever charged to it.
    used: u64,
}

impl Vcpu {
    fn is_parked(&self) -> bool {
        self.params.cap != 0 && self.allowance <= 0
    }

    fn may_run(&self) -> bool {
        self.runnable && !self.is_parked()
    }

    /// Whether it should go before `other`: boosted first, in round robin
    /// among the boosted (so that a shell that just woke waits for no more
    /// than one boosted run of each other boosted vCPU, whatever their
    /// credit); among the others, more credit, then the one picked longer
    /// ago.
    fn goes_before(&self, other: &Vcpu) -> bool {
        match (self.boosted, other.boosted) {
            (true, true) => self.last_picked < other.last_picked,
            (true, false) => true,
            (false, true) => false,
            (false, false) => (self.credit, other.last_picked) > (other.credit, self.last_picked),
        }
    }
}

/// The credit scheduler of one CPU.
#[derive(Debug)]
pub struct Credit {
    /// Length of an accounting period, in cycles.
    period: u64,
    /// Longest run between two decisions, in cycles.
    slice: u64,
    /// End of the current period; `None` until the first call with a time.
    period_end: Option<u64>,
    /// How many decisions chose someone (round robin sequence numbers).
    picks: u64,
    vcpus: [Option<Vcpu>; MAX_VCPUS],
}

impl Credit {
    /// A scheduler with accounting periods of `period_cycles` and time
    /// slices of `slice_cycles` (Xen: 30 ms and 30 ms; 30 ms and 10 ms
    /// give smoother sharing).
    ///
    /// # Panics
    /// If either is 0, or the period does not fit an `i64` (a boot bug).
    pub const fn new(period_cycles: u64, slice_cycles: u64) -> Self {
        assert!(
            period_cycles > 0 && slice_cycles > 0,
            "empty period or slice"
        );
        assert!(period_cycles <= i64::MAX as u64, "period too long");
        Self {
            period: period_cycles,
            slice: slice_cycles,
            period_end: None,
            picks: 0,
            vcpus: [None; MAX_VCPUS],
        }
    }

    /// Adds a vCPU, not runnable, with no credit (it earns from the next
    /// period on) and a full allowance.
    pub fn add(&mut self, id: VcpuId, params: Params) -> Result<(), CreditError> {
        params.validate()?;
        if self.find(id).is_some() {
            return Err(CreditError::AlreadyAdded);
        }
        let allowance = self.cap_allowance(params.cap);
        let boost_budget = self.boost_budget();
        let slot = self
            .vcpus
            .iter_mut()
            .find(|slot| slot.is_none())
            .ok_or(CreditError::Full)?;
        *slot = Some(Vcpu {
            id,
            params,
            credit: 0,
            allowance,
            ran_this_period: false,
            runnable: false,
            yielded: false,
            boosted: false,
            boost_budget,
            boost_episode: 0,
            last_picked: 0,
            used: 0,
        });
        Ok(())
    }

    /// Removes a vCPU (its domain is being destroyed). Unknown IDs are
    /// ignored: removing twice is harmless.
    pub fn remove(&mut self, id: VcpuId) {
        if let Some(index) = self.find(id) {
            self.vcpus[index] = None;
        }
    }

    /// Changes a vCPU's weight and cap; the new weight counts from the next
    /// period, the new cap at once.
    pub fn set_params(&mut self, id: VcpuId, params: Params) -> Result<(), CreditError> {
        params.validate()?;
        let new_allowance = self.cap_allowance(params.cap);
        let vcpu = self.vcpu_mut(id).ok_or(CreditError::UnknownVcpu)?;
        // A tighter cap takes effect now; a first cap starts full.
        vcpu.allowance = if vcpu.params.cap == 0 {
            new_allowance
        } else {
            vcpu.allowance.min(new_allowance)
        };
        vcpu.params = params;
        Ok(())
    }

    /// A vCPU's weight and cap, if it is in the run set.
    pub fn params(&self, id: VcpuId) -> Option<Params> {
        self.vcpu(id).map(|vcpu| vcpu.params)
    }

    /// Marks a vCPU runnable (woken) or not (blocked, paused). A vCPU that
    /// wakes with boost budget left is boosted. After a wake, the caller may
    /// charge the running vCPU and call [`Credit::pick`] to let the boosted
    /// vCPU, or an UNDER one, preempt. Unknown IDs are ignored.
    pub fn set_runnable(&mut self, id: VcpuId, runnable: bool) {
        if let Some(vcpu) = self.vcpu_mut(id) {
            let wakes = runnable && !vcpu.runnable;
            vcpu.runnable = runnable;
            vcpu.yielded &= runnable;
            if wakes {
                vcpu.boosted = vcpu.boost_budget > 0;
                vcpu.boost_episode = BOOST_EPISODE_PERIODS;
            } else if !runnable {
                vcpu.boosted = false;
                vcpu.boost_episode = 0;
            }
        }
    }

    /// Whether `id` is boosted now (woke from blocking and has budget left).
    pub fn is_boosted(&self, id: VcpuId) -> bool {
        self.vcpu(id).is_some_and(|vcpu| vcpu.boosted)
    }

    /// Passes `id` over at the next decision if anyone else may run
    /// (`sched_op` yield). Unknown IDs are ignored.
    pub fn yield_cpu(&mut self, id: VcpuId) {
        if let Some(vcpu) = self.vcpu_mut(id) {
            vcpu.yielded = true;
        }
    }

    /// Charges `cycles` of CPU, ending at TSC value `now`, to `id`: called
    /// at every switch away from a vCPU, and at ticks for the one running.
    /// A run that spans a period boundary is split at it, so each period
    /// pays for its own cycles. Unknown IDs (a vCPU removed while it ran)
    /// are not charged.
    pub fn charge(&mut self, id: VcpuId, cycles: u64, now: u64) {
        let mut from = now.saturating_sub(cycles);
        self.advance_to(from);
        while from < now {
            let until = now.min(self.period_end.unwrap_or(now));
            if let Some(vcpu) = self.vcpu_mut(id) {
                burn(vcpu, until - from);
            }
            from = until;
            self.advance_to(from);
        }
    }

    /// Chooses who runs at TSC value `now`: the runnable, unparked vCPU
    /// with the most credit (UNDER before OVER), least recently picked on a
    /// tie, passing over one that yielded if anyone else may run.
    pub fn pick(&mut self, now: u64) -> Decision {
        self.advance_to(now);
        let anyone_unyielded = self.iter().any(|vcpu| vcpu.may_run() && !vcpu.yielded);
        let mut best: Option<usize> = None;
        for (index, vcpu) in self.vcpus.iter().enumerate() {
            let Some(vcpu) = vcpu else { continue };
            if !vcpu.may_run() || (vcpu.yielded && anyone_unyielded) {
                continue;
            }
            if best.is_none_or(|best| vcpu.goes_before(self.slot(best))) {
                best = Some(index);
            }
        }
        for vcpu in self.vcpus.iter_mut().flatten() {
            vcpu.yielded = false;
        }
        let period_end = self.period_end.unwrap_or(now + self.period);
        let Some(best) = best else {
            let someone_parked = self.iter().any(|vcpu| vcpu.runnable && vcpu.is_parked());
            return Decision::Idle {
                until: someone_parked.then_some(period_end),
            };
        };
        let others_under = self.vcpus.iter().enumerate().any(|(index, vcpu)| {
            index != best && vcpu.is_some_and(|vcpu| vcpu.may_run() && vcpu.credit >= 0)
        });
        let others_wait = self
            .vcpus
            .iter()
            .enumerate()
            .any(|(index, vcpu)| index != best && vcpu.is_some_and(|vcpu| vcpu.may_run()));
        self.picks += 1;
        let picks = self.picks;
        let cycles = self.time_slice(self.slot(best), period_end - now, others_under, others_wait);
        let vcpu = self.vcpus[best].as_mut().expect("chosen slot is occupied");
        vcpu.last_picked = picks;
        Decision::Run {
            vcpu: vcpu.id,
            cycles,
        }
    }

    /// Every cycle ever charged to `id`, for statistics.
    pub fn used(&self, id: VcpuId) -> Option<u64> {
        self.vcpu(id).map(|vcpu| vcpu.used)
    }

    /// `id`'s credit balance in cycles (negative = OVER), for statistics.
    pub fn credit(&self, id: VcpuId) -> Option<i64> {
        self.vcpu(id).map(|vcpu| vcpu.credit)
    }

    /// How long the chosen vCPU may run: a slice, cut short at the end of
    /// the period (when credits and allowances change), at the end of its
    /// allowance (the cap is a hard limit), and, if another UNDER vCPU is
    /// waiting, when it would go OVER (but not below a tenth of a slice);
    /// a boosted vCPU that others wait for, when its boost budget ends.
    fn time_slice(
        &self,
        vcpu: &Vcpu,
        until_period_end: u64,
        others_under: bool,
        others_wait: bool,
    ) -> u64 {
        let mut cycles = self.slice.min(until_period_end);
        if vcpu.boosted && others_wait {
            // Positive while boosted: the boost ends with the budget.
            cycles = cycles.min(vcpu.boost_budget.max(1) as u64);
        } else if others_under && vcpu.credit > 0 {
            let shortest = (self.slice / SHORTEST_CREDIT_CUT_DIVISOR).max(1);
            cycles = cycles.min((vcpu.credit as u64).max(shortest));
        }
        if vcpu.params.cap != 0 {
            // Positive, or the vCPU would be parked.
            cycles = cycles.min(vcpu.allowance as u64);
        }
        cycles.max(1)
    }

    /// Runs the accounting for every period boundary up to `now`.
    fn advance_to(&mut self, now: u64) {
        let Some(mut end) = self.period_end else {
            self.period_end = Some(now + self.period);
            self.account(1);
            return;
        };
        if now < end {
            return;
        }
        self.account(1);
        end += self.period;
        // After a long idle stretch, the remaining periods in one step:
        // nothing ran in them, so they are all alike.
        if now >= end {
            let more = (now - end) / self.period + 1;
            self.account(more);
            end += more * self.period;
        }
        self.period_end = Some(end);
    }

    /// Starts `periods` new accounting periods: shares them out as credit
    /// among the active vCPUs by weight (see [`share_out`]), bounds the
    /// balances, and refills the allowances.
    fn account(&mut self, periods: u64) {
        let ceiling = self.period as i64;
        let period = self.period;
        let mut limits = [None; MAX_VCPUS];
        for (limit, vcpu) in limits.iter_mut().zip(self.vcpus.iter()) {
            let Some(vcpu) = vcpu else { continue };
            if !(vcpu.runnable || vcpu.ran_this_period) {
                continue; // Blocked all period: earns nothing.
            }
            let room = ceiling.saturating_sub(vcpu.credit).max(0) as u128;
            let most = if vcpu.params.cap == 0 {
                room
            } else {
                room.min(cap_allowance(period, vcpu.params.cap) as u128 * u128::from(periods))
            };
            *limit = Some((vcpu.params.weight, most));
        }
        let grants = share_out(u128::from(period) * u128::from(periods), &limits);
        for (grant, vcpu) in grants.iter().zip(self.vcpus.iter_mut()) {
            let Some(vcpu) = vcpu else { continue };
            let grant = i64::try_from(*grant).unwrap_or(i64::MAX);
            vcpu.credit = vcpu.credit.saturating_add(grant).clamp(-ceiling, ceiling);
            if vcpu.params.cap != 0 {
                let full = cap_allowance(period, vcpu.params.cap);
                let refill = full.saturating_mul(i64::try_from(periods).unwrap_or(i64::MAX));
                vcpu.allowance = vcpu.allowance.saturating_add(refill).min(full);
            }
            vcpu.boost_budget = boost_budget(period);
            if vcpu.runnable {
                let left = u64::from(vcpu.boost_episode).saturating_sub(periods);
                vcpu.boost_episode = u32::try_from(left).unwrap_or(0);
                vcpu.boosted = vcpu.boost_episode > 0;
            }
            vcpu.ran_this_period = false;
        }
    }

    fn cap_allowance(&self, cap: u32) -> i64 {
        cap_allowance(self.period, cap)
    }

    fn boost_budget(&self) -> i64 {
        boost_budget(self.period)
    }

    fn iter(&self) -> impl Iterator<Item = &Vcpu> {
        self.vcpus.iter().flatten()
    }

    fn find(&self, id: VcpuId) -> Option<usize> {
        self.vcpus
            .iter()
            .position(|slot| slot.is_some_and(|vcpu| vcpu.id == id))
    }

    fn slot(&self, index: usize) -> &Vcpu {
        self.vcpus[index].as_ref().expect("slot is occupied")
    }

    fn vcpu(&self, id: VcpuId) -> Option<&Vcpu> {
        self.iter().find(|vcpu| vcpu.id == id)
    }

    fn vcpu_mut(&mut self, id: VcpuId) -> Option<&mut Vcpu> {
        self.vcpus.iter_mut().flatten().find(|vcpu| vcpu.id == id)
    }
}

/// Spends `cycles` of a vCPU's credit and allowance: the one place where
/// running costs something.
fn burn(vcpu: &mut Vcpu, cycles: u64) {
    let cost = i64::try_from(cycles).unwrap_or(i64::MAX);
    vcpu.credit = vcpu.credit.saturating_sub(cost);
    if vcpu.params.cap != 0 {
        vcpu.allowance = vcpu.allowance.saturating_sub(cost);
    }
    if vcpu.boosted {
        vcpu.boost_budget = vcpu.boost_budget.saturating_sub(cost);
        vcpu.boosted = vcpu.boost_budget > 0;
    }
    vcpu.ran_this_period = true;
    vcpu.used = vcpu.used.saturating_add(cycles);
}

/// The cycles a vCPU may run boosted in one period.
fn boost_budget(period: u64) -> i64 {
    i64::try_from(period / BOOST_BUDGET_DIVISOR).unwrap_or(i64::MAX)
}

/// Shares `total` cycles of credit out among vCPUs in proportion to their
/// weights, giving none more than it can use; what one cannot use goes to
/// the others, again by weight ("water filling"). `limits[i]` is
/// `Some((weight, most))` for a vCPU that earns, `None` otherwise; the
/// result is each one's grant.
///
/// A vCPU whose fair share `weight * left / weight_left` reaches its limit
/// gets its limit and leaves; that can only raise the fair share of the
/// rest (it took no more than its share), so one pass that settles vCPUs as
/// it finds them, repeated until none settles, ends with everyone either
/// at its limit or at a share proportional to its weight.
fn share_out(total: u128, limits: &[Option<(u32, u128)>; MAX_VCPUS]) -> [u128; MAX_VCPUS] {
    let mut grants = [0u128; MAX_VCPUS];
    let mut settled = [false; MAX_VCPUS];
    let mut left = total;
    let mut weight_left: u128 = limits
        .iter()
        .flatten()
        .map(|(weight, _)| u128::from(*weight))
        .sum();
    let mut settled_any = true;
    while settled_any && weight_left > 0 {
        settled_any = false;
        for (index, limit) in limits.iter().enumerate() {
            let Some((weight, most)) = *limit else {
                continue;
            };
            let weight = u128::from(weight);
            if settled[index] || weight * left / weight_left < most {
                continue;
            }
            grants[index] = most;
            settled[index] = true;
            settled_any = true;
            left -= most;
            weight_left -= weight;
            if weight_left == 0 {
                break;
            }
        }
    }
    for (index, limit) in limits.iter().enumerate() {
        if let (Some((weight, _)), false) = (limit, settled[index]) {
            grants[index] = u128::from(*weight) * left / weight_left;
        }
    }
    grants
}

/// Cycles per period that `cap` percent of one CPU allows.
fn cap_allowance(period: u64, cap: u32) -> i64 {
    (u128::from(period) * u128::from(cap) / 100) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    // Simulated time: a 1 GHz TSC, so a cycle is a nanosecond.
    const MS: u64 = 1_000_000;
    const SECOND: u64 = 1000 * MS;
    const PERIOD: u64 = 30 * MS;
    const SLICE: u64 = 10 * MS;
    /// The periodic timer tick, at which the running vCPU is charged.
    const TICK: u64 = 10 * MS;

    #[derive(Clone, Copy, Debug)]
    enum Behaviour {
        /// Always wants the CPU.
        CpuBound,
        /// Works `work` cycles, blocks for `sleep`, over and over; wants the
        /// CPU all the time from `greedy_from` on.
        Interactive {
            work: u64,
            sleep: u64,
            greedy_from: u64,
        },
        /// CPU-bound, but yields `margin` cycles before every tick, so that
        /// the tick never finds it running.
        TickDodger { margin: u64 },
        /// Blocked until `wake_at`, CPU-bound after.
        Sleeper { wake_at: u64 },
    }

    struct Task {
        id: VcpuId,
        behaviour: Behaviour,
        /// Cycles left of the current burst (interactive).
        work_left: u64,
        /// When a blocked task wakes up; `None` while runnable.
        wake_at: Option<u64>,
        /// Cycles it ran, as the simulated CPU measured them.
        ran: u64,
        /// Ticks that found it running: what tick sampling would charge.
        ticks_caught: u64,
        /// Largest credit balance seen at any decision.
        max_credit: i64,
        /// When it last woke, until it next runs.
        woke_at: Option<u64>,
        /// Longest time from a wake to its first run after it.
        worst_wait: u64,
        /// When its current burst of work began (its last wake).
        burst_began: u64,
        /// Longest time from a wake to the end of that burst of work.
        worst_turnaround: u64,
    }

    /// One run: who, from when, how long.
    #[derive(Clone, Copy, Debug)]
    struct Run {
        vcpu: VcpuId,
        start: u64,
        cycles: u64,
    }

    /// A CPU running tasks under the scheduler: pick, run until the slice
    /// ends, the tick comes or the task blocks or yields, charge, repeat.
    struct Sim {
        scheduler: Credit,
        now: u64,
        tasks: Vec<Task>,
        runs: Vec<Run>,
        idle: u64,
        idle_decisions: u64,
    }

    impl Sim {
        fn new(tasks: &[(VcpuId, Params, Behaviour)]) -> Self {
            let mut scheduler = Credit::new(PERIOD, SLICE);
            let tasks = tasks
                .iter()
                .map(|&(id, params, behaviour)| {
                    scheduler.add(id, params).unwrap();
                    let wake_at = match behaviour {
                        Behaviour::Sleeper { wake_at } => Some(wake_at),
                        _ => None,
                    };
                    scheduler.set_runnable(id, wake_at.is_none());
                    let work_left = match behaviour {
                        Behaviour::Interactive { work, .. } => work,
                        _ => 0,
                    };
                    Task {
                        id,
                        behaviour,
                        work_left,
                        wake_at,
                        ran: 0,
                        ticks_caught: 0,
                        max_credit: 0,
                        woke_at: None,
                        worst_wait: 0,
                        burst_began: 0,
                        worst_turnaround: 0,
                    }
                })
                .collect();
            Self {
                scheduler,
                now: 0,
                tasks,
                runs: Vec::new(),
                idle: 0,
                idle_decisions: 0,
            }
        }

        fn run_until(&mut self, end: u64) {
            while self.now < end {
                self.step(end);
            }
        }

        fn step(&mut self, end: u64) {
            let now = self.now;
            for task in &mut self.tasks {
                if task.wake_at.is_some_and(|at| at <= now) {
                    task.wake_at = None;
                    task.woke_at = Some(now);
                    task.burst_began = now;
                    if let Behaviour::Interactive { work, .. } = task.behaviour {
                        task.work_left = work;
                    }
                    self.scheduler.set_runnable(task.id, true);
                }
            }
            for task in &mut self.tasks {
                let credit = self.scheduler.credit(task.id).unwrap();
                task.max_credit = task.max_credit.max(credit);
            }
            let next_tick = (now / TICK + 1) * TICK;
            let (vcpu, budget) = match self.scheduler.pick(now) {
                Decision::Run { vcpu, cycles } => (vcpu, cycles),
                Decision::Idle { until } => {
                    let next_wake = self.tasks.iter().filter_map(|task| task.wake_at).min();
                    let wake = [until, next_wake, Some(end)]
                        .into_iter()
                        .flatten()
                        .min()
                        .unwrap();
                    assert!(wake > now, "idle until the past");
                    self.idle += wake - now;
                    self.idle_decisions += 1;
                    self.now = wake;
                    return;
                }
            };
            assert!(budget > 0);
            let task = self.tasks.iter_mut().find(|task| task.id == vcpu).unwrap();
            assert!(task.wake_at.is_none(), "picked a blocked vCPU");
            if let Some(woke) = task.woke_at.take() {
                task.worst_wait = task.worst_wait.max(now - woke);
            }
            let mut cycles = budget.min(next_tick - now).min(end - now);
            let mut blocks = false;
            let mut yields = false;
            match task.behaviour {
                Behaviour::Interactive { greedy_from, .. } if now < greedy_from => {
                    if task.work_left <= cycles {
                        cycles = task.work_left;
                        blocks = true;
                    }
                    task.work_left -= cycles;
                }
                Behaviour::TickDodger { margin } => {
                    let stop = next_tick - margin;
                    if now < stop && stop - now <= cycles {
                        cycles = stop - now;
                        yields = true;
                    }
                }
                _ => {}
            }
            if now + cycles == next_tick {
                task.ticks_caught += 1;
            }
            self.now += cycles;
            task.ran += cycles;
            self.runs.push(Run {
                vcpu,
                start: now,
                cycles,
            });
            self.scheduler.charge(vcpu, cycles, self.now);
            if blocks {
                task.worst_turnaround = task.worst_turnaround.max(self.now - task.burst_began);
                self.scheduler.set_runnable(vcpu, false);
                if let Behaviour::Interactive { sleep, .. } = task.behaviour {
                    task.wake_at = Some(self.now + sleep);
                }
            }
            if yields {
                self.scheduler.yield_cpu(vcpu);
            }
        }

        fn task(&self, id: VcpuId) -> &Task {
            self.tasks.iter().find(|task| task.id == id).unwrap()
        }

        /// `id`'s share of the CPU since time 0, checking on the way that
        /// the scheduler charged exactly what the CPU measured.
        fn share(&self, id: VcpuId) -> f64 {
            let task = self.task(id);
            assert_eq!(self.scheduler.used(id), Some(task.ran), "inexact charge");
            task.ran as f64 / self.now as f64
        }

        /// `id`'s share of the CPU in `[from, to)`.
        fn share_between(&self, id: VcpuId, from: u64, to: u64) -> f64 {
            let ran: u64 = self
                .runs
                .iter()
                .filter(|run| run.vcpu == id && run.start >= from && run.start < to)
                .map(|run| run.cycles)
                .sum();
            ran as f64 / (to - from) as f64
        }

        /// The longest time `id` held the CPU without anyone else running,
        /// counting only stretches that start at or after `from`.
        fn longest_stretch(&self, id: VcpuId, from: u64) -> u64 {
            let mut longest = 0;
            let mut stretch: Option<(u64, u64)> = None; // (start, end)
            for run in &self.runs {
                if run.vcpu != id || run.start < from {
                    stretch = None;
                    continue;
                }
                stretch = match stretch {
                    Some((start, end)) if end == run.start => Some((start, run.start + run.cycles)),
                    _ => Some((run.start, run.start + run.cycles)),
                };
                let (start, end) = stretch.unwrap();
                longest = longest.max(end - start);
            }
            longest
        }
    }

    fn weight(weight: u32) -> Params {
        Params { weight, cap: 0 }
    }

    fn capped(cap: u32) -> Params {
        Params {
            weight: DEFAULT_WEIGHT,
            cap,
        }
    }

    fn percent(share: f64) -> String {
        format!("{:.2}%", share * 100.0)
    }

    #[test]
    fn weights_256_and_512_share_a_busy_cpu_one_to_two() {
        let mut sim = Sim::new(&[
            (1, weight(256), Behaviour::CpuBound),
            (2, weight(512), Behaviour::CpuBound),
        ]);
        sim.run_until(10 * SECOND);
        let (a, b) = (sim.share(1), sim.share(2));
        eprintln!(
            "weights 256:512 -> {} : {}, ratio {:.4}",
            percent(a),
            percent(b),
            b / a
        );
        assert!((b / a - 2.0).abs() < 0.04, "ratio {}", b / a);
        assert_eq!(sim.idle, 0, "a busy CPU never idles");
    }

    #[test]
    fn weights_one_one_two_share_a_quarter_a_quarter_and_a_half() {
        let mut sim = Sim::new(&[
            (1, weight(100), Behaviour::CpuBound),
            (2, weight(100), Behaviour::CpuBound),
            (3, weight(200), Behaviour::CpuBound),
        ]);
        sim.run_until(10 * SECOND);
        let shares = [sim.share(1), sim.share(2), sim.share(3)];
        eprintln!("weights 1:1:2 -> {:?}", shares.map(percent));
        for (share, expected) in shares.iter().zip([0.25, 0.25, 0.5]) {
            assert!((share - expected).abs() < 0.01, "{shares:?}");
        }
    }

    #[test]
    fn a_cap_holds_even_when_the_cpu_is_otherwise_idle() {
        let mut sim = Sim::new(&[
            (1, capped(25), Behaviour::CpuBound),
            (2, weight(256), Behaviour::Sleeper { wake_at: u64::MAX }),
        ]);
        sim.run_until(10 * SECOND);
        let capped = sim.share(1);
        let idle = sim.idle as f64 / sim.now as f64;
        eprintln!(
            "cap 25 alone -> {}, idle {}",
            percent(capped),
            percent(idle)
        );
        assert!((0.24..=0.26).contains(&capped), "{capped}");
        assert!(idle >= 0.74, "{idle}");
        assert!(sim.idle_decisions > 0, "the scheduler let the CPU halt");
        assert_eq!(sim.share(2), 0.0);
    }

    #[test]
    fn a_capped_vcpu_stays_under_its_cap_against_a_busy_one() {
        let mut sim = Sim::new(&[
            (1, capped(25), Behaviour::CpuBound),
            (2, weight(256), Behaviour::CpuBound),
        ]);
        sim.run_until(10 * SECOND);
        let (capped, other) = (sim.share(1), sim.share(2));
        eprintln!(
            "cap 25 against uncapped -> {} : {}",
            percent(capped),
            percent(other)
        );
        assert!((0.24..=0.26).contains(&capped), "{capped}");
        assert!(other >= 0.74, "{other}");
        assert_eq!(sim.idle, 0);
    }

    #[test]
    fn what_a_capped_vcpu_cannot_use_goes_to_the_others_by_weight() {
        // The module documentation's worked example.
        let mut sim = Sim::new(&[
            (1, weight(256), Behaviour::CpuBound),
            (2, weight(512), Behaviour::CpuBound),
            (3, capped(10), Behaviour::CpuBound),
        ]);
        sim.run_until(10 * SECOND);
        let shares = [sim.share(1), sim.share(2), sim.share(3)];
        eprintln!("256, 512, 256 capped at 10 -> {:?}", shares.map(percent));
        for (share, expected) in shares.iter().zip([0.3, 0.6, 0.1]) {
            assert!((share - expected).abs() < 0.01, "{shares:?}");
        }
    }

    #[test]
    fn an_interactive_vcpu_gets_what_it_asks_and_hoards_nothing() {
        // Asks for 1 ms every 50 ms (2%) for 5 s, then turns CPU-bound.
        let greedy_from = 5 * SECOND;
        let mut sim = Sim::new(&[
            (
                1,
                weight(256),
                Behaviour::Interactive {
                    work: MS,
                    sleep: 49 * MS,
                    greedy_from,
                },
            ),
            (2, weight(256), Behaviour::CpuBound),
        ]);
        sim.run_until(greedy_from);
        let (interactive, busy) = (sim.share(1), sim.share(2));
        eprintln!(
            "interactive 2% ask -> {} : {}",
            percent(interactive),
            percent(busy)
        );
        assert!((0.019..=0.021).contains(&interactive), "{interactive}");
        assert!(busy >= 0.979, "{busy}");
        // It earned ~50% and spent 2%; without the ceiling it would hold
        // about 2.4 s of credit now.
        assert!(sim.task(1).max_credit <= PERIOD as i64);

        sim.run_until(10 * SECOND);
        let burst = sim.longest_stretch(1, greedy_from);
        let after = sim.share_between(1, greedy_from, 10 * SECOND);
        eprintln!(
            "after turning CPU-bound: longest burst {} ms, share {}",
            burst / MS,
            percent(after)
        );
        // At most a ceiling of credit and a slice, plus one boost budget
        // (it was still in the boost episode of its last wake).
        assert!(
            burst <= PERIOD + SLICE + PERIOD / BOOST_BUDGET_DIVISOR,
            "monopolised the CPU for {burst} cycles"
        );
        assert!((0.49..=0.51).contains(&after), "{after}");
        assert!(sim.share_between(1, greedy_from, greedy_from + SECOND / 2) <= 0.5 + 0.07);
    }

    #[test]
    fn a_light_vcpu_of_tiny_weight_is_boosted_past_heavy_ones() {
        // Dom0's shell beside three CPU-bound guests of the largest weight:
        // 200 us of work per keystroke, ten keystrokes a second. Its fair
        // share is 1/196606 of the CPU, far below what it asks; BOOST gives
        // it the CPU at the first decision after each wake.
        let mut sim = Sim::new(&[
            (
                1,
                weight(1),
                Behaviour::Interactive {
                    work: MS / 5,
                    sleep: 100 * MS,
                    greedy_from: u64::MAX,
                },
            ),
            (2, weight(MAX_WEIGHT), Behaviour::CpuBound),
            (3, weight(MAX_WEIGHT), Behaviour::CpuBound),
            (4, weight(MAX_WEIGHT), Behaviour::CpuBound),
        ]);
        sim.run_until(5 * SECOND);
        let waited = sim.task(1).worst_wait;
        let light = sim.share(1);
        eprintln!(
            "light vCPU: worst wait {} us, share {}",
            waited / (MS / 1000),
            percent(light)
        );
        // The simulated CPU decides at ticks, so a wake waits for the next.
        assert!(waited <= TICK, "waited {waited} cycles");
        // It got what it asked for: 200 us per wake (wakes are seen at ticks).
        assert!((0.0017..=0.0021).contains(&light), "{light}");
        // The heavy ones still share the rest equally.
        for id in 2..=4 {
            let share = sim.share(id);
            assert!((0.32..=0.34).contains(&share), "vCPU {id}: {share}");
        }
    }

    #[test]
    fn a_long_command_of_a_light_vcpu_finishes_within_its_boost_episode() {
        // `xl create` in Dom0 (weight 256): 40 ms of work after a keystroke,
        // beside three CPU-bound guests of weight 65535. Its fair share
        // would take 30 s; a boost budget per period takes 14 periods.
        let mut sim = Sim::new(&[
            (
                1,
                weight(256),
                Behaviour::Interactive {
                    work: 40 * MS,
                    sleep: 3 * SECOND,
                    greedy_from: u64::MAX,
                },
            ),
            (2, weight(MAX_WEIGHT), Behaviour::CpuBound),
            (3, weight(MAX_WEIGHT), Behaviour::CpuBound),
            (4, weight(MAX_WEIGHT), Behaviour::CpuBound),
        ]);
        sim.run_until(10 * SECOND);
        let took = sim.task(1).worst_turnaround;
        eprintln!("40 ms command beside heavy guests took {} ms", took / MS);
        assert!(took <= 20 * PERIOD, "took {took} cycles");
        // The CPU-bound ones were boosted only early on: long after, none is.
        for id in 2..=4 {
            assert!(!sim.scheduler.is_boosted(id), "vCPU {id} still boosted");
            let share = sim.share(id);
            assert!((0.32..=0.34).contains(&share), "vCPU {id}: {share}");
        }
    }

    #[test]
    fn boosting_gains_at_most_a_tenth_of_each_period() {
        // A vCPU of weight 1 that blocks for an instant after every 1 ms of
        // work, to be woken and boosted again and again, beside a CPU-bound
        // one of the largest weight. Its fair share is nothing; boosting
        // gets it its budget, a tenth of each period, and no more.
        let mut sim = Sim::new(&[
            (
                1,
                weight(1),
                Behaviour::Interactive {
                    work: MS,
                    sleep: 1,
                    greedy_from: u64::MAX,
                },
            ),
            (2, weight(MAX_WEIGHT), Behaviour::CpuBound),
        ]);
        sim.run_until(10 * SECOND);
        let gamer = sim.share(1);
        eprintln!("boost gamer at weight 1: {}", percent(gamer));
        let fair = 1.0 / f64::from(MAX_WEIGHT + 1);
        let budget = 1.0 / BOOST_BUDGET_DIVISOR as f64;
        assert!(gamer <= fair + budget + 0.005, "{gamer}");
        assert!(gamer >= budget * 0.8, "the budget is really used: {gamer}");
    }

    #[test]
    fn a_blocked_vcpu_earns_nothing() {
        let wake_at = 5 * SECOND;
        let mut sim = Sim::new(&[
            (1, weight(256), Behaviour::Sleeper { wake_at }),
            (2, weight(256), Behaviour::CpuBound),
        ]);
        sim.run_until(wake_at);
        assert_eq!(sim.task(1).max_credit, 0, "earned while blocked");
        assert_eq!(sim.scheduler.credit(1), Some(0), "earned while blocked");
        sim.run_until(10 * SECOND);
        let burst = sim.longest_stretch(1, wake_at);
        let after = sim.share_between(1, wake_at, 10 * SECOND);
        eprintln!(
            "after 5 s blocked: longest burst {} ms, share {}",
            burst / MS,
            percent(after)
        );
        assert!(burst <= PERIOD + SLICE);
        assert!((0.49..=0.51).contains(&after), "{after}");
    }

    #[test]
    fn a_tick_dodger_is_charged_exactly_and_gets_only_its_share() {
        let mut sim = Sim::new(&[
            (1, weight(256), Behaviour::TickDodger { margin: MS / 10 }),
            (2, weight(256), Behaviour::CpuBound),
        ]);
        sim.run_until(10 * SECOND);
        let (dodger, honest) = (sim.share(1), sim.share(2));
        let (dodger_ticks, honest_ticks) = (sim.task(1).ticks_caught, sim.task(2).ticks_caught);
        eprintln!(
            "tick dodger -> {} : {}; ticks that caught them {dodger_ticks} : {honest_ticks}",
            percent(dodger),
            percent(honest)
        );
        assert!(dodger <= 0.51, "{dodger}");
        assert!(honest >= 0.49, "{honest}");
        // Tick sampling would have charged the dodger (almost) nothing
        // for its half of the CPU, and the honest vCPU for all of it.
        let ticks = (10 * SECOND / TICK) as f64;
        assert!((dodger_ticks as f64) < 0.05 * ticks, "{dodger_ticks}");
        assert!((honest_ticks as f64) > 0.95 * ticks, "{honest_ticks}");
    }

    #[test]
    fn parameters_out_of_range_are_refused_with_a_reason() {
        let mut scheduler = Credit::new(PERIOD, SLICE);
        for (params, error) in [
            (weight(0), CreditError::WeightOutOfRange),
            (weight(70_000), CreditError::WeightOutOfRange),
            (capped(101), CreditError::CapOutOfRange),
        ] {
            assert_eq!(params.validate(), Err(error));
            assert_eq!(scheduler.add(1, params), Err(error));
            let sentence = error.description();
            assert!(sentence.ends_with('.') && sentence.len() > 20, "{sentence}");
            assert_eq!(error.errno(), hypercall_abi::XenError::EINVAL);
        }
        assert_eq!(scheduler.params(1), None, "nothing was added");
        for params in [
            weight(1),
            weight(MAX_WEIGHT),
            capped(100),
            capped(0),
            Params::default(),
        ] {
            assert_eq!(params.validate(), Ok(()));
        }

        scheduler.add(1, Params::default()).unwrap();
        assert_eq!(scheduler.add(1, weight(5)), Err(CreditError::AlreadyAdded));
        assert_eq!(
            scheduler.set_params(1, weight(0)),
            Err(CreditError::WeightOutOfRange)
        );
        assert_eq!(
            scheduler.set_params(1, capped(101)),
            Err(CreditError::CapOutOfRange)
        );
        assert_eq!(
            scheduler.params(1),
            Some(Params::default()),
            "unchanged by refusals"
        );
        assert_eq!(
            scheduler.set_params(2, weight(5)),
            Err(CreditError::UnknownVcpu)
        );
        assert_eq!(
            CreditError::UnknownVcpu.errno(),
            hypercall_abi::XenError::ESRCH
        );
        scheduler
            .set_params(
                1,
                Params {
                    weight: 512,
                    cap: 50,
                },
            )
            .unwrap();
        assert_eq!(
            scheduler.params(1),
            Some(Params {
                weight: 512,
                cap: 50
            })
        );

        for id in 2..=MAX_VCPUS as VcpuId {
            scheduler.add(id, Params::default()).unwrap();
        }
        assert_eq!(
            scheduler.add(1000, Params::default()),
            Err(CreditError::Full)
        );
        assert!(CreditError::Full.description().ends_with('.'));
    }

    #[test]
    fn vcpus_come_and_go_and_an_empty_cpu_idles() {
        let mut scheduler = Credit::new(PERIOD, SLICE);
        assert_eq!(scheduler.pick(0), Decision::Idle { until: None });
        scheduler.add(7, Params::default()).unwrap();
        assert_eq!(
            scheduler.pick(0),
            Decision::Idle { until: None },
            "added, not yet woken"
        );

        scheduler.set_runnable(7, true);
        assert_eq!(
            scheduler.pick(0),
            Decision::Run {
                vcpu: 7,
                cycles: SLICE
            }
        );
        scheduler.charge(7, SLICE, SLICE);
        assert_eq!(scheduler.used(7), Some(SLICE));

        // A second vCPU takes turns with the first.
        scheduler.add(8, Params::default()).unwrap();
        scheduler.set_runnable(8, true);
        assert!(matches!(
            scheduler.pick(SLICE),
            Decision::Run { vcpu: 8, .. }
        ));
        scheduler.charge(8, MS, SLICE + MS);

        // Blocked: not picked. Woken: picked again.
        scheduler.set_runnable(8, false);
        assert!(matches!(
            scheduler.pick(SLICE + MS),
            Decision::Run { vcpu: 7, .. }
        ));
        scheduler.set_runnable(8, true);

        // Removed while running: its last run is not charged to anyone.
        scheduler.remove(7);
        scheduler.charge(7, MS, SLICE + 2 * MS);
        assert_eq!(scheduler.used(7), None);
        assert_eq!(scheduler.params(7), None);
        assert!(matches!(
            scheduler.pick(SLICE + 2 * MS),
            Decision::Run { vcpu: 8, .. }
        ));
        scheduler.remove(7); // Twice is harmless.

        scheduler.set_runnable(8, false);
        assert_eq!(
            scheduler.pick(SLICE + 2 * MS),
            Decision::Idle { until: None }
        );
        scheduler.remove(8);
        assert_eq!(
            scheduler.pick(SLICE + 2 * MS),
            Decision::Idle { until: None }
        );

        // The IDs can be used again.
        scheduler.add(7, Params::default()).unwrap();
        assert_eq!(scheduler.used(7), Some(0));
    }

    #[test]
    fn a_yield_lets_someone_else_run_once() {
        let mut scheduler = Credit::new(PERIOD, SLICE);
        for id in [1, 2] {
            scheduler.add(id, Params::default()).unwrap();
            scheduler.set_runnable(id, true);
        }
        // Alone, a yielding vCPU runs on.
        scheduler.set_runnable(2, false);
        scheduler.yield_cpu(1);
        assert!(matches!(scheduler.pick(0), Decision::Run { vcpu: 1, .. }));
        // 1 has more credit than 2, but yields to it, for one decision.
        scheduler.set_runnable(2, true);
        scheduler.charge(2, MS, MS);
        scheduler.yield_cpu(1);
        assert!(matches!(scheduler.pick(MS), Decision::Run { vcpu: 2, .. }));
        assert!(matches!(scheduler.pick(MS), Decision::Run { vcpu: 1, .. }));
    }

    #[test]
    fn an_overrun_cap_is_repaid_and_runs_are_split_at_period_boundaries() {
        let mut scheduler = Credit::new(PERIOD, SLICE);
        scheduler.add(1, capped(25)).unwrap();
        scheduler.set_runnable(1, true);
        // The first period is [0, 30 ms); the cap allows 7.5 ms of it.
        let allowance = PERIOD / 4;
        assert_eq!(
            scheduler.pick(0),
            Decision::Run {
                vcpu: 1,
                cycles: allowance
            }
        );
        // A late timer: it ran 12 ms, 4.5 ms too many.
        scheduler.charge(1, 12 * MS, 12 * MS);
        assert_eq!(
            scheduler.pick(12 * MS),
            Decision::Idle {
                until: Some(PERIOD)
            }
        );
        // The next period's allowance pays back the 4.5 ms.
        let repaid = allowance - (12 * MS - allowance);
        assert_eq!(
            scheduler.pick(PERIOD),
            Decision::Run {
                vcpu: 1,
                cycles: repaid
            }
        );
        // A run over the boundary at 60 ms: 2 ms to the second period
        // (spending 2 of its 3 ms) and 2 ms to the third (a full 7.5 ms
        // allowance, not 8.5: unused allowance is not saved).
        scheduler.charge(1, 4 * MS, 2 * PERIOD + 2 * MS);
        assert_eq!(
            scheduler.pick(2 * PERIOD + 2 * MS),
            Decision::Run {
                vcpu: 1,
                cycles: allowance - 2 * MS
            }
        );
    }

    #[test]
    fn sharing_out_respects_limits_and_weights() {
        let mut limits = [None; MAX_VCPUS];
        limits[0] = Some((1, 1000));
        limits[1] = Some((2, 1000));
        limits[2] = Some((1, 50)); // Could take 250, may use 50.
        limits[4] = Some((4, 0)); // At the ceiling.
        let grants = share_out(1000, &limits);
        assert_eq!(&grants[..5], &[316, 633, 50, 0, 0]);
        // Nobody can use anything: nothing is granted.
        let grants = share_out(1000, &[Some((1, 0)); MAX_VCPUS]);
        assert!(grants.iter().all(|&grant| grant == 0));
    }
}
