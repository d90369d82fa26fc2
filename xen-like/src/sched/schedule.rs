//! The scheduler's glue: the global credit state, picking and switching vCPUs on this CPU.

use crate::arch::x86_64::entry;
use crate::arch::x86_64::frame::GuestFrame;
use crate::arch::x86_64::instructions::{self, rdtsc};
use crate::arch::x86_64::percpu::this_cpu;
use crate::domain::{self, Domain, DomainId};
use crate::mm::{guest_access, paging};
use crate::sched::credit::{Credit, CreditError, Decision, Params};
use crate::sched::runstate::Runstate;
use crate::sync::lock_order::LockLevel;
use crate::sync::ordered_lock::OrderedMutex;
use core::sync::atomic::Ordering;
use hypercall_abi::mmu::VMASST_TYPE_RUNSTATE_UPDATE_FLAG;
use hypercall_abi::vcpu::XEN_RUNSTATE_UPDATE;

/// The credit scheduler's state for this (the only) CPU.
static CREDIT: OrderedMutex<Option<Credit>> = OrderedMutex::new(LockLevel::Scheduler, None);

/// Sets the scheduler up once the TSC's rate is known: 30 ms accounting
/// periods, 10 ms slices (Xen's credit scheduler's defaults).
pub fn init() {
    let hz = crate::time::tsc_hz();
    *CREDIT.lock() = Some(Credit::new(hz * 30 / 1000, hz * 10 / 1000));
}

/// Runs `action` on the credit scheduler.
fn with_credit<R>(action: impl FnOnce(&mut Credit) -> R) -> R {
    action(CREDIT.lock().as_mut().expect("sched::init runs at boot"))
}

/// A new domain takes part with the default weight and no cap. Refused
/// when this CPU's scheduler is full: the domain would never run.
pub fn add_domain(id: DomainId) -> Result<(), CreditError> {
    with_credit(|credit| credit.add(u32::from(id), Params::DEFAULT))
}

/// A destroyed domain leaves.
pub fn remove_domain(id: DomainId) {
    with_credit(|credit| credit.remove(u32::from(id)));
}

/// A domain's weight and cap.
pub fn params(id: DomainId) -> Option<Params> {
    with_credit(|credit| credit.params(u32::from(id)))
}

/// Sets a domain's weight and cap.
pub fn set_params(id: DomainId, params: Params) -> Result<(), CreditError> {
    with_credit(|credit| credit.set_params(u32::from(id), params))
}

/// `sched_op yield`: let someone else run if anyone can.
pub fn yield_current() {
    if let Some(id) = this_cpu().current_domain() {
        with_credit(|credit| credit.yield_cpu(u32::from(id)));
    }
    request_reschedule();
}

/// Charges the running vCPU for the time since it was last charged, and
/// returns the scheduler's decision for now.
fn decide() -> Decision {
    let cpu = this_cpu();
    let now = rdtsc();
    let mut credit = CREDIT.lock();
    let credit = credit.as_mut().expect("sched::init runs at boot");
    if let Some(id) = cpu.current_domain() {
        let since = cpu.running_since.swap(now, Ordering::Relaxed);
        let ran = now.saturating_sub(since);
        credit.charge(u32::from(id), ran, now);
        domain::with(id, |domain| domain.vcpu.cpu_cycles += ran);
    }
    let mut earliest_guest_timer: Option<u64> = None;
    domain::for_each(|domain| {
        credit.set_runnable(u32::from(domain.id), domain.runnable());
        let poll_deadline = domain.polling.as_ref().map_or(0, |poll| poll.deadline);
        for deadline in [domain.timer_deadline, poll_deadline] {
            if deadline != 0 {
                earliest_guest_timer =
                    Some(earliest_guest_timer.map_or(deadline, |earliest| earliest.min(deadline)));
            }
        }
    });
    let decision = credit.pick(now);
    // The timer interrupts at the next deadline that matters: the end of
    // this run as the scheduler sized it (slice, credit, cap, boost), a
    // capped vCPU's refill, a guest timer, or the housekeeping tick.
    let scheduler_deadline = match decision {
        Decision::Run { cycles, .. } => Some(now.saturating_add(cycles)),
        Decision::Idle { until } => until,
    };
    crate::time::arm_timer_at(crate::time::timekeeping::next_timer_deadline(
        now,
        scheduler_deadline,
        earliest_guest_timer.map(crate::time::tsc_at_system_time),
        crate::time::housekeeping_cycles(),
    ));
    let chosen = match decision {
        Decision::Run { vcpu, .. } => Some(vcpu as DomainId),
        Decision::Idle { .. } => None,
    };
    update_runstates(chosen);
    decision
}

/// Tells every vCPU's runstate record which state it is in from now on:
/// `chosen` runs, the others wait, block or are offline. Every change of
/// state asks for a decision, so this is where the changes are seen.
fn update_runstates(chosen: Option<DomainId>) {
    let now = crate::time::system_time_ns();
    domain::for_each_mut(|domain| {
        let state =
            Runstate::classify(Some(domain.id) == chosen, domain.runnable(), domain.blocked);
        domain.vcpu.runstate.enter(state, now);
    });
}

/// Refreshes the runstate area the guest registered, if any, while its
/// page tables are loaded: through a checked walk of them at this moment,
/// as Xen's `copy_to_guest` at a context switch (a page that is no longer
/// mapped writable is simply not written). With `VMASST_TYPE_runstate_update_flag`
/// the guest sees `XEN_RUNSTATE_UPDATE` in `state_entry_time` while the
/// record changes.
pub fn write_runstate_area(domain: &Domain) {
    let area = domain.vcpu.runstate_area;
    if area == 0 {
        return;
    }
    let mut info = domain.vcpu.runstate.snapshot(crate::time::system_time_ns());
    let flagged = domain.vm_assist & (1 << VMASST_TYPE_RUNSTATE_UPDATE_FLAG) != 0;
    let entry_time = info.state_entry_time;
    if flagged {
        info.state_entry_time = entry_time | XEN_RUNSTATE_UPDATE;
    }
    if guest_access::write_to_guest(area, &info).is_ok() && flagged {
        let _ = guest_access::write_to_guest(area + 8, &entry_time);
    }
}

/// Asks for a scheduling decision on this CPU before it returns to a guest.
pub fn request_reschedule() {
    this_cpu().reschedule.store(true, Ordering::Relaxed);
}

/// Called on every exit to a guest: switches if a decision was requested.
/// Everything that can stop the running domain (a shutdown, a crash, a
/// yield, the end of its time slice) requests one, so the hypercall fast
/// path pays one flag test here.
///
/// Inlined into every exit path, with the two tests inline and the work
/// they may find in calls (see `traps::leave_to_guest` for why).
#[inline(always)]
pub fn on_exit(frame: &mut GuestFrame) {
    let cpu = this_cpu();
    if cpu.reschedule.swap(false, Ordering::Relaxed) {
        schedule(frame);
    }
    // An event upcall due? Two bytes of the running vCPU's info tell,
    // without the domain lock (the rest only when one is due).
    if crate::mm::shared_page::running_vcpu_needs_upcall() {
        deliver_upcall_on_exit(frame);
    }
}

/// The upcall half of [`on_exit`], out of the exit path's line.
#[inline(never)]
fn deliver_upcall_on_exit(frame: &mut GuestFrame) {
    crate::evtchn::deliver_upcall(frame);
    // A guest that cannot take its upcall was crashed: leave it now.
    if this_cpu().reschedule.swap(false, Ordering::Relaxed) {
        schedule(frame);
    }
}

/// The timer tick's housekeeping, from guest or idle context: fire
/// one-shot timers (`VIRQ_TIMER`), end polls that timed out, and tell Dom0
/// about console input (`VIRQ_CONSOLE`; the serial line is looked at once
/// a tick rather than by interrupt).
pub fn tick() {
    let now = crate::time::system_time_ns();
    let mut fired: heapless::Vec<DomainId, 64> = heapless::Vec::new();
    domain::for_each_mut(|domain| {
        if domain.timer_deadline != 0 && now >= domain.timer_deadline {
            domain.timer_deadline = 0;
            let _ = fired.push(domain.id);
        }
        if let Some(poll) = &domain.polling {
            if poll.deadline != 0 && now >= poll.deadline {
                domain.polling = None;
                domain.blocked = false;
            }
        }
    });
    for id in fired {
        crate::evtchn::send_virq(id, hypercall_abi::event_channel::VIRQ_TIMER);
        // A domain blocked with its timer armed but no VIRQ bound still
        // wakes up, as in Xen (the timer ends the block).
        domain::with(id, |domain| {
            domain.blocked = false;
            domain.polling = None;
        });
    }
    if crate::console::input_ready() {
        crate::evtchn::send_virq(0, hypercall_abi::event_channel::VIRQ_CONSOLE);
    }
}

/// Picks the next vCPU and switches to it, or idles if none may run.
#[inline(never)]
fn schedule(frame: &mut GuestFrame) {
    let current = this_cpu().current_domain();
    let next = match decide() {
        Decision::Run { vcpu, .. } => Some(vcpu as DomainId),
        Decision::Idle { .. } => None,
    };
    if next.is_some() && next == current {
        return;
    }
    if let Some(id) = current {
        domain::with(id, |domain| save(domain, frame));
    }
    match next {
        Some(id) => switch_to(id, frame),
        None => idle(),
    }
}

/// Saves the running vCPU's state (its time was charged by `decide`).
fn save(domain: &mut Domain, frame: &GuestFrame) {
    let vcpu = &mut domain.vcpu;
    vcpu.saved = *frame;
    instructions::fxsave(&mut vcpu.fpu);
    vcpu.fs_base = instructions::read_fs_base();
    vcpu.gs_base = instructions::read_kernel_gs_base();
    crate::mm::descriptor_tables::save_selectors(vcpu);
    crate::traps::debug::unload(vcpu);
}

/// Loads domain `id`'s vCPU into `frame` and the CPU.
fn switch_to(id: DomainId, frame: &mut GuestFrame) {
    let selectors_reloaded = domain::with(id, |domain| {
        let vcpu = &domain.vcpu;
        *frame = vcpu.saved;
        instructions::fxrstor(&vcpu.fpu);
        // Its GDT, then its selectors (loading FS clobbers the FS base),
        // then its bases: nothing of the previous guest's stays loaded.
        crate::mm::descriptor_tables::load(vcpu);
        let selectors_reloaded = crate::mm::descriptor_tables::load_selectors(vcpu);
        instructions::write_fs_base(vcpu.fs_base);
        instructions::write_kernel_gs_base(vcpu.gs_base);
        crate::traps::debug::load(vcpu);
        // The root of the mode it was in: the user's, if it was
        // descheduled while running a user program.
        paging::load_guest_root(domain);
        crate::traps::fpu::switch_to(domain);
        crate::time::publish_vcpu_time(domain.vcpu_info());
        write_runstate_area(domain);
        selectors_reloaded
    });
    domain::set_current(Some(id));
    if selectors_reloaded == Some(false) {
        bounce_to_failsafe(frame);
    }
}

/// Some saved data segment selector of the vCPU just loaded no longer
/// loads (its GDT changed while it was descheduled; null was loaded in
/// its place): as Xen's `load_segments`, tell the guest through its
/// failsafe callback, with the selectors it had saved on the frame. A
/// guest that cannot take the frame is crashed, as in Xen. A guest with
/// no failsafe callback keeps the null selectors (Xen would send it to
/// address 0, where it takes a page fault it cannot explain).
fn bounce_to_failsafe(frame: &mut GuestFrame) {
    let failure = domain::with_current(|domain| {
        let saved = domain.vcpu.data_selectors;
        if domain.vcpu.callbacks.failsafe == 0 {
            crate::console::guest_log!(
                domain,
                Debug,
                "data selectors {saved:#x?} no longer all load and no failsafe callback is registered: null loaded in their place"
            );
            return None;
        }
        crate::traps::bounce::bounce_to_failsafe(domain, frame, saved).err()
    });
    // Crash outside the domain lock, which crashing takes.
    if let Some(Some(problem)) = failure {
        let mut reason = heapless::String::<160>::new();
        let _ = core::fmt::Write::write_fmt(
            &mut reason,
            format_args!("cannot deliver the failsafe callback: {problem}"),
        );
        domain::crash_current(&reason);
    }
}

/// Nothing may run: halt until an interrupt makes something runnable, then
/// enter it. Runs on the idle page table, so no domain's tables are in use.
fn idle() -> ! {
    domain::set_current(None);
    crate::mm::descriptor_tables::load_idle();
    crate::traps::fpu::switch_to_idle();
    paging::load_idle_root();
    loop {
        instructions::wait_for_interrupt();
        if let Decision::Run { vcpu, .. } = decide() {
            let id = vcpu as DomainId;
            let mut frame = GuestFrame::new_guest(0, 0);
            switch_to(id, &mut frame);
            // What woke it may have left an upcall due: deliver it now, as
            // the normal exit path would.
            crate::evtchn::deliver_upcall(&mut frame);
            // `switch_to` loaded the domain's root.
            entry::return_to_guest(&frame)
        }
    }
}
