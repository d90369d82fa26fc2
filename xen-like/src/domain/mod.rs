//! Domains and their virtual CPUs.
//!
//! A domain is a guest: its memory (the list of machine frames it owns,
//! indexed by pseudo-physical frame number, which is its P2M), its shared
//! info page, and its vCPU. The vCPU holds what the guest told the
//! hypervisor about itself: its trap table, its kernel stack for
//! exceptions, its callbacks, and its saved registers while it is not on a
//! CPU.
//!
//! All domains live in one table behind a lock, keyed by domain ID. The
//! current domain of a CPU is recorded per CPU (`PerCpu::current_domain`).

pub mod dom0_builder;

use crate::arch::x86_64::{frame::GuestFrame, instructions::rdtsc, percpu::this_cpu};
use alloc::{boxed::Box, collections::BTreeMap, vec::Vec};
use core::sync::atomic::Ordering;
use hypercall_abi::sched::ShutdownReason;
use spin::Mutex;

/// A domain's identifier (Dom0 is 0).
pub type DomainId = u16;

/// Where a domain is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainState {
    /// Runnable (or running).
    Running,
    /// The guest asked to stop, for this reason.
    Shutdown(ShutdownReason),
    /// The hypervisor stopped it after a fatal error in the guest.
    Crashed,
}

/// One entry of a vCPU's virtual trap table (`set_trap_table`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapHandler {
    /// Guest-virtual address of the handler; 0 means none.
    pub address: u64,
    /// Whether entering the handler masks event delivery.
    pub mask_events: bool,
}

/// Addresses registered with `callback_op` / `set_callbacks`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Callbacks {
    /// Event upcall.
    pub event: u64,
    /// Called when the hypervisor cannot return to the guest normally.
    pub failsafe: u64,
    /// Entry for `syscall` from guest user mode.
    pub syscall: u64,
    /// NMI handler.
    pub nmi: u64,
}

/// A virtual CPU.
pub struct Vcpu {
    /// The guest's registers while it is not running.
    pub saved: GuestFrame,
    /// The virtual IDT.
    pub trap_table: [TrapHandler; 256],
    /// Kernel stack segment and pointer for exceptions (`stack_switch`).
    pub kernel_ss: u64,
    /// See `kernel_ss`.
    pub kernel_sp: u64,
    /// Registered callbacks.
    pub callbacks: Callbacks,
    /// TSC cycles this vCPU has spent on a CPU, not counting the current run.
    pub cpu_cycles: u64,
}

/// A guest.
pub struct Domain {
    /// Its ID.
    pub id: DomainId,
    /// Whether it may use the control hypercalls (Dom0).
    pub privileged: bool,
    /// Its state.
    pub state: DomainState,
    /// P2M: machine frame of each pseudo-physical frame it owns.
    pub frames: Vec<u64>,
    /// The most pages it may own.
    pub max_pages: u64,
    /// The machine frame of its shared info page (owned by the hypervisor).
    pub shared_info_mfn: u64,
    /// Its only vCPU (for now).
    pub vcpu: Vcpu,
    /// MFN of its kernel-mode page-table root (its L4), which holds a type
    /// reference in the frame table while it is the root.
    pub kernel_root: u64,
    /// MFN of its user-mode root (`MMUEXT_NEW_USER_BASEPTR`), if any.
    pub user_root: Option<u64>,
}

impl Domain {
    /// Pages it owns.
    pub fn total_pages(&self) -> u64 {
        self.frames.len() as u64
    }
}

/// Every domain, by ID.
static DOMAINS: Mutex<BTreeMap<DomainId, Box<Domain>>> = Mutex::new(BTreeMap::new());

/// Adds a newly built domain.
pub fn insert(domain: Box<Domain>) {
    DOMAINS.lock().insert(domain.id, domain);
}

/// Runs `action` on the domain running on this CPU. Returns `None` when
/// the CPU runs no domain (which a hypercall can never see).
pub fn with_current<R>(action: impl FnOnce(&mut Domain) -> R) -> Option<R> {
    let id = this_cpu().current_domain()?;
    let mut domains = DOMAINS.lock();
    domains.get_mut(&id).map(|domain| action(domain))
}

/// Runs `action` on every domain, in ID order.
pub fn for_each(mut action: impl FnMut(&Domain)) {
    for domain in DOMAINS.lock().values() {
        action(domain);
    }
}

/// CPU time of a domain's vCPU in TSC cycles, including the run in progress
/// if it is on this CPU now.
pub fn cpu_cycles(domain: &Domain) -> u64 {
    let cpu = this_cpu();
    let running_now = cpu.current_domain() == Some(domain.id);
    let current_run = if running_now {
        rdtsc().saturating_sub(cpu.running_since.load(Ordering::Relaxed))
    } else {
        0
    };
    domain.vcpu.cpu_cycles + current_run
}

/// Marks `id` as running on this CPU from now on.
pub fn set_current(id: DomainId) {
    let cpu = this_cpu();
    cpu.running_since.store(rdtsc(), Ordering::Relaxed);
    cpu.current_domain.store(u32::from(id), Ordering::Relaxed);
}

/// The current domain did something fatal: mark it crashed and say why.
/// Dom0's crash leaves the machine without a control domain, so it stops
/// the machine with the "Dom0 crashed" failure code.
pub fn crash_current(reason: &str) {
    let Some(id) = this_cpu().current_domain() else {
        return;
    };
    with_current(|domain| domain.state = DomainState::Crashed);
    log::error!(target: crate::console::GUEST, "Domain {id} crashed: {reason}");
    stop_if_dom0(id);
}

/// The current domain asked to shut down with `reason`.
pub fn shutdown_current(reason: ShutdownReason) {
    let Some(id) = this_cpu().current_domain() else {
        return;
    };
    with_current(|domain| domain.state = DomainState::Shutdown(reason));
    log::info!(target: crate::console::GUEST, "Domain {id} shut down: {}", reason.name());
    if id != 0 {
        return;
    }
    use crate::arch::x86_64::power;
    match reason {
        ShutdownReason::Poweroff => {
            log::info!("Dom0 powered off: powering the machine off");
            power::power_off()
        }
        ShutdownReason::Reboot => {
            log::info!("Dom0 rebooted: resetting the machine");
            power::reboot()
        }
        ShutdownReason::Crash | ShutdownReason::Watchdog => {
            log::error!("Domain 0 crashed (it reported {})", reason.name());
            stop_if_dom0(id)
        }
        _ => stop_if_dom0(id),
    }
}

fn stop_if_dom0(id: DomainId) {
    if id == 0 {
        log::error!("Dom0 has stopped: nothing can control the machine any more; stopping it");
        crate::arch::x86_64::power::fail(crate::arch::x86_64::power::FailureCode::Dom0Crashed);
    }
}
