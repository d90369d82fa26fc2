//! The table of domains, their vCPUs, and the one place a `Domain` is looked up.

use crate::arch::x86_64::frame::GuestFrame;
use crate::arch::x86_64::instructions::{rdtsc, FpuState};
use crate::arch::x86_64::percpu::{this_cpu, NO_DOMAIN};
use crate::console::rate_limit::{GuestOutput, RateLimit};
use crate::evtchn::ports::PortTable;
use crate::mm::frame_table::{Flush, Owner};
use crate::mm::shared_page::SharedInfoFrame;
use crate::mm::shared_page::SharedInfoPage;
use crate::mm::{frame_table, m2p, tlb};
use crate::sched::runstate::Runstate;
use crate::sync::lock_order::LockLevel;
use crate::sync::ordered_lock::OrderedMutex;
use crate::traps::debug_registers::DebugRegisters;
use alloc::{boxed::Box, collections::BTreeMap, vec::Vec};
use core::sync::atomic::{AtomicU32, Ordering};
use hypercall_abi::event_channel::VIRQ_DOM_EXC;
use hypercall_abi::layout::DOMID_FIRST_RESERVED;
use hypercall_abi::sched::ShutdownReason;
use hypercall_abi::XenError;

/// A domain's identifier (Dom0 is 0).
pub type DomainId = u16;

/// Where a domain is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainState {
    /// Alive (it runs unless paused or not yet given a context).
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
    /// The least privileged ring whose `int $vector` may reach the
    /// handler (the entry's DPL): 3 lets guest user mode call it, 1 or 2
    /// only the guest kernel, 0 nobody (see `traps::software_interrupt`).
    pub privilege: u8,
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
    /// Whether entering the syscall callback masks events (it was
    /// registered with `CALLBACKF_mask_events`: Xen's
    /// `VGCF_syscall_disables_events`).
    pub syscall_masks_events: bool,
    /// NMI handler (also how shutdown requests arrive, see `domctl`).
    pub nmi: u64,
    /// Entry for `syscall` from 32-bit guest user code (recorded as Xen
    /// records it for a 64-bit guest; used once compatibility-mode user
    /// code can run).
    pub syscall32: u64,
    /// Entry for `sysenter` from guest user code (recorded, as above).
    pub sysenter: u64,
}

/// A virtual CPU.
pub struct Vcpu {
    /// The guest's registers while it is not running.
    pub saved: GuestFrame,
    /// Its x87/SSE state while it is not running.
    pub fpu: FpuState,
    /// Its FS base while it is not running.
    pub fs_base: u64,
    /// Its GS base while it is not running: the base of the mode it is
    /// in (the kernel's in guest-kernel mode, the user's in guest-user mode).
    pub gs_base: u64,
    /// The GS base of the *other* mode: the user's while in guest-kernel
    /// mode, the kernel's while in guest-user mode. On hardware that is the
    /// CPU's shadow GS base, which `swapgs` exchanges; Xen's PV kernels get
    /// the same effect from the hypervisor, which swaps the two on every
    /// kernel↔user switch (`traps::guest_mode`). This hypervisor needs the
    /// shadow register for its own `swapgs`, so the value lives here.
    pub shadow_gs_base: u64,
    /// Its DS, ES, FS and GS selectors while it is not running (null at
    /// first, as Xen starts a 64-bit PV guest with `FLAT_KERNEL_DS64`).
    pub data_selectors: [u16; 4],
    /// Whether the vCPU is in guest-kernel mode (Xen's `TF_kernel_mode`)
    /// rather than guest-user mode. Both run in ring 3; the mode decides
    /// which page-table root is loaded (`kernel_root` or `user_root`), what
    /// a `syscall` means (a hypercall, or a system call for the guest
    /// kernel), and where an exception's frame goes.
    pub kernel_mode: bool,
    /// Its virtual CR0.TS (`fpu_taskswitch`): while set, its next FPU or
    /// SSE instruction raises #NM in the guest (see `traps::fpu`).
    pub fpu_ts: bool,
    /// Its GDT, if it set one (`set_gdt`; see `mm::descriptor_tables`).
    pub gdt: Option<crate::mm::descriptor_tables::GuestGdt>,
    /// Whether its initial context was set (it may run).
    pub initialised: bool,
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
    /// Where its time went, by Xen's runstates (kept by the scheduler).
    pub runstate: Runstate,
    /// Guest-virtual address of the `vcpu_runstate_info` the guest asked
    /// the hypervisor to refresh (`VCPUOP_register_runstate_memory_area`),
    /// 0 for none. Written only through a checked walk of the guest's page
    /// tables at the moment of each write, as Xen's `copy_to_guest` does, so
    /// the hypervisor holds no frame for it (frame-table invariant 6).
    pub runstate_area: u64,
    /// Its debug registers (`set_debugreg`, an emulated `mov %drN`),
    /// loaded into the hardware while it runs when a breakpoint is on.
    pub debug: DebugRegisters,
    /// The CR4 bits the guest controls itself (only DE here; see
    /// `traps::emulate`).
    pub guest_cr4: u64,
    /// A page table whose devalidation an earlier page-table hypercall
    /// started and ran out of budget for (Xen's `old_guest_table`); the
    /// next one finishes it first (`crate::mm::frame_table`, "Preemption").
    pub deferred_devalidation: Option<u64>,
}

impl Vcpu {
    /// A vCPU that has not run: no context, empty trap table.
    pub fn new(saved: GuestFrame, initialised: bool) -> Self {
        Self {
            saved,
            fpu: FpuState::initial(),
            fs_base: 0,
            gs_base: 0,
            shadow_gs_base: 0,
            data_selectors: [0; 4],
            kernel_mode: true,
            fpu_ts: false,
            gdt: None,
            initialised,
            trap_table: [TrapHandler::default(); 256],
            kernel_ss: 0,
            kernel_sp: 0,
            callbacks: Callbacks::default(),
            cpu_cycles: 0,
            runstate: Runstate::new(crate::time::system_time_ns()),
            runstate_area: 0,
            debug: DebugRegisters::default(),
            guest_cr4: 0,
            deferred_devalidation: None,
        }
    }
}

/// A guest.
pub struct Domain {
    /// Its ID.
    pub id: DomainId,
    /// Whether it may use the control hypercalls (Dom0).
    pub privileged: bool,
    /// Its state.
    pub state: DomainState,
    /// How many times it was paused and not unpaused (it runs only at 0).
    pub pause_count: u32,
    /// The machine frames of its memory (for a PV guest, in no particular
    /// order: the guest keeps its own P2M).
    pub frames: Vec<u64>,
    /// The most pages it may own.
    pub max_pages: u64,
    /// Its shared info page, which it owns but which is not part of its
    /// memory (the hypervisor holds a general and a writable type reference
    /// on it: frame-table invariant 6).
    pub shared_info: SharedInfoFrame,
    /// Its only vCPU (for now).
    pub vcpu: Vcpu,
    /// MFN of its kernel-mode page-table root (its L4), which holds a type
    /// reference in the frame table while it is the root; 0 before its
    /// context is set.
    pub kernel_root: u64,
    /// MFN of its user-mode root (`MMUEXT_NEW_USER_BASEPTR`), if any.
    pub user_root: Option<u64>,
    /// A shutdown Dom0 asked for, not yet delivered.
    pub pending_shutdown: Option<ShutdownReason>,
    /// What it may make the hypervisor print (its `console_io` lines and
    /// the warnings about its calls), within its rate limit.
    pub output: GuestOutput,
    /// Its event-channel ports.
    pub ports: PortTable,
    /// Whether its vCPU is blocked waiting for an event (`sched_op block`).
    pub blocked: bool,
    /// What it is polling for, if it blocked in `sched_op poll`.
    pub polling: Option<Poll>,
    /// System time (ns) at which its one-shot timer fires; 0 = not armed.
    pub timer_deadline: u64,
    /// The `vm_assist` types it enabled, one bit each (`VMASST_TYPE_*`).
    pub vm_assist: u64,
    /// Its grant table and its maptrack (`crate::grant`).
    pub grants: crate::grant::GrantState,
}

/// A `sched_op poll` in progress: wake when one of `ports` is pending or at
/// `deadline` (system time in ns; 0 = no timeout).
#[derive(Clone, Debug)]
pub struct Poll {
    /// The ports polled.
    pub ports: heapless::Vec<u32, 16>,
    /// When to give up.
    pub deadline: u64,
}

impl Domain {
    /// The one way a `Domain` comes to be: domain `id`, unprivileged,
    /// paused once, owning no memory yet (up to `max_pages` pages), with
    /// its shared info page, no page-table root, an empty port table, and a
    /// vCPU that has no context (it may not run until one is set).
    ///
    /// `domctl createdomain` uses it as it is; the Dom0 builder then gives
    /// Dom0 what the toolstack gives another domain later (its memory, its
    /// root, its first context) and its privilege.
    pub fn new(id: DomainId, max_pages: u64, shared_info: SharedInfoFrame) -> Self {
        Self {
            id,
            privileged: false,
            state: DomainState::Running,
            pause_count: 1,
            frames: Vec::new(),
            max_pages,
            shared_info,
            vcpu: Vcpu::new(GuestFrame::new_guest(0, 0), false),
            kernel_root: 0,
            user_root: None,
            pending_shutdown: None,
            output: GuestOutput::new(RateLimit::GUEST),
            ports: PortTable::new(),
            blocked: false,
            polling: None,
            timer_deadline: 0,
            vm_assist: 0,
            grants: crate::grant::GrantState::new(),
        }
    }

    /// Pages it owns.
    pub fn total_pages(&self) -> u64 {
        self.frames.len() as u64
    }

    /// Whether the scheduler may run it.
    pub fn runnable(&self) -> bool {
        self.state == DomainState::Running
            && self.pause_count == 0
            && self.vcpu.initialised
            && !self.blocked
    }

    /// Its shared info page (atomics; see `mm::shared_page`).
    pub fn shared_info(&self) -> &SharedInfoPage {
        self.shared_info.page()
    }
}

/// Every live domain, by ID.
static DOMAINS: OrderedMutex<BTreeMap<DomainId, Box<Domain>>> =
    OrderedMutex::new(LockLevel::Domains, BTreeMap::new());

/// What is left of a destroyed domain while another domain still
/// references some of its frames: a zombie (Xen's dying domain). Its
/// record keeps its ID taken until it owns no frame.
#[derive(Debug)]
pub struct Zombie {
    /// Its ID, not given to any other domain while this record exists.
    pub id: DomainId,
    /// Every frame it still owns (its shared info page included); empty
    /// until destruction has torn the domain down.
    pub frames: Vec<u64>,
    /// Whether destruction has finished tearing it down (until then its
    /// frames are not listed yet, and it must not be taken for gone).
    pub torn_down: bool,
    /// What it was allowed to own, for `getdomaininfo`.
    pub max_pages: u64,
    /// The CPU time it used, for `xl list`.
    pub cpu_cycles: u64,
}

/// The dying half of the domain table, by ID. Lock order: `DOMAINS`
/// first, when both are needed.
static ZOMBIES: OrderedMutex<BTreeMap<DomainId, Zombie>> =
    OrderedMutex::new(LockLevel::Zombies, BTreeMap::new());

/// How many zombies exist: lets [`release_dying_frames`] return at once in
/// the common case, on the page-table hypercalls' fast path.
static ZOMBIE_COUNT: AtomicU32 = AtomicU32::new(0);

/// Adds a newly built domain.
pub fn insert(domain: Box<Domain>) {
    DOMAINS.lock().insert(domain.id, domain);
}

/// Runs `action` on domain `id`, if it exists.
pub fn with<R>(id: DomainId, action: impl FnOnce(&mut Domain) -> R) -> Option<R> {
    DOMAINS.lock().get_mut(&id).map(|domain| action(domain))
}

/// Runs `action` on two different domains at once (an interdomain event
/// channel joins two port tables).
pub fn with_two<R>(
    first: DomainId,
    second: DomainId,
    action: impl FnOnce(&mut Domain, &mut Domain) -> R,
) -> Option<R> {
    if first == second {
        return None;
    }
    let mut domains = DOMAINS.lock();
    let mut found = domains
        .iter_mut()
        .filter(|(id, _)| **id == first || **id == second);
    let (a, b) = (found.next()?.1, found.next()?.1);
    Some(if a.id == first {
        action(a, b)
    } else {
        action(b, a)
    })
}

/// Runs `action` on every domain, mutably (the timer tick's sweep).
pub fn for_each_mut(mut action: impl FnMut(&mut Domain)) {
    for domain in DOMAINS.lock().values_mut() {
        action(domain);
    }
}

/// Runs `action` on the domain running on this CPU. Returns `None` when
/// the CPU runs no domain (which a hypercall can never see).
pub fn with_current<R>(action: impl FnOnce(&mut Domain) -> R) -> Option<R> {
    with(this_cpu().current_domain()?, action)
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

/// Marks `id` as running on this CPU from now on (`None`: idle).
pub fn set_current(id: Option<DomainId>) {
    let cpu = this_cpu();
    cpu.running_since.store(rdtsc(), Ordering::Relaxed);
    cpu.current_domain
        .store(id.map_or(NO_DOMAIN, u32::from), Ordering::Relaxed);
    let (vcpu_info, user_mode) = id
        .and_then(|id| {
            with(id, |domain| {
                (domain.shared_info.vcpu0_address(), !domain.vcpu.kernel_mode)
            })
        })
        .unwrap_or((0, false));
    cpu.vcpu_info.store(vcpu_info, Ordering::Relaxed);
    cpu.guest_user_mode.store(user_mode, Ordering::Relaxed);
}

/// Creates an empty, paused domain that may own up to `max_pages` pages,
/// with a shared info page; returns its ID.
pub fn create(max_pages: u64) -> Result<DomainId, XenError> {
    // The lowest ID no record has, live or dying: a zombie keeps its ID
    // taken, so frames it still owns can never pass to the new domain.
    let id = {
        let domains = DOMAINS.lock();
        let zombies = ZOMBIES.lock();
        (1..DOMID_FIRST_RESERVED)
            .find(|id| !domains.contains_key(id) && !zombies.contains_key(id))
            .ok_or(XenError::ENOSPC)?
    };
    // The hypervisor writes this page whenever it likes: it holds a
    // general and a writable type reference for the domain's whole life
    // (frame-table invariant 6), so the guest can neither give it back nor
    // turn it into a page table.
    let shared_info = SharedInfoFrame::allocate(id)?;
    initialise_shared_info(shared_info.page());
    let domain = Box::new(Domain::new(id, max_pages, shared_info));
    insert(domain);
    if let Err(error) = crate::sched::add_domain(id) {
        // A domain the scheduler cannot take would exist but never run.
        log::warn!("cannot create domain {id}: {}", error.description());
        let _ = destroy(id);
        return Err(error.errno());
    }
    log::info!("created domain {id} (up to {} MiB)", max_pages >> 8);
    Ok(id)
}

/// A new domain's shared info page before it first runs: events masked, as
/// in Xen, and the clocks published.
pub fn initialise_shared_info(page: &SharedInfoPage) {
    page.vcpu(0).set_upcall_mask(1);
    crate::time::publish_wallclock(page);
    crate::time::publish_vcpu_time(page);
}

/// Destroys domain `id` (never Dom0) and gives back its memory. Frames that
/// another domain still references (a foreign mapping that was not undone)
/// cannot be freed yet: the domain then stays a zombie until they are (see
/// the module comment). Destroying a zombie again is not an error: it looks
/// once more for frames that can go.
pub fn destroy(id: DomainId) -> Result<(), XenError> {
    if id == 0 {
        return Err(XenError::EINVAL);
    }
    // From this moment no lookup finds the domain, and its zombie record
    // keeps its ID taken until its last frame is released.
    let domain = {
        let mut domains = DOMAINS.lock();
        let mut zombies = ZOMBIES.lock();
        match domains.remove(&id) {
            Some(domain) => {
                zombies.insert(
                    id,
                    Zombie {
                        id,
                        frames: Vec::new(),
                        torn_down: false,
                        max_pages: domain.max_pages,
                        cpu_cycles: cpu_cycles(&domain),
                    },
                );
                ZOMBIE_COUNT.fetch_add(1, Ordering::Relaxed);
                Some(domain)
            }
            None if zombies.contains_key(&id) => None,
            None => return Err(XenError::ESRCH),
        }
    };
    let first_time = domain.is_some();
    // How long destruction holds the CPU (not preemptible yet; see
    // docs/continuations.md): said in the log line.
    let started = rdtsc();
    if let Some(domain) = domain {
        let frames = tear_down(*domain);
        if let Some(zombie) = ZOMBIES.lock().get_mut(&id) {
            zombie.frames = frames;
            zombie.torn_down = true;
        }
    }
    let owned = with_zombie(id, |zombie| zombie.frames.len() as u64).unwrap_or(0);
    for gone in release_frames_of_zombies() {
        if gone == id && first_time {
            log::info!(
                "domain {id} destroyed; {} KiB freed in {} cycles",
                owned * 4,
                rdtsc().saturating_sub(started)
            );
        } else {
            log_zombie_gone(gone);
        }
    }
    if let Some(held) = with_zombie(id, |zombie| zombie.frames.len()) {
        log::warn!(
            "domain {id} is dying: {held} of its frames are still referenced by another domain \
             (a mapping not undone); it keeps its ID until they are released"
        );
    }
    Ok(())
}

/// What destruction takes from a domain at once: its place in the
/// scheduler, its event channels, its page tables, the hypervisor's hold on
/// its shared info page, its M2P entries. Returns every frame it still
/// owns, for [`release_dying_frames`].
fn tear_down(mut domain: Domain) -> Vec<u64> {
    let id = domain.id;
    crate::console::last_word(&mut domain);
    crate::sched::remove_domain(id);
    let remote_ends = crate::evtchn::close_all(&mut domain);
    crate::evtchn::release_remote_ends(id, &remote_ends);
    // Its grant mappings of others' frames go, and the hypervisor stops
    // writing its grant-table frames.
    let grant_frames = crate::grant::grant_table_op::tear_down(&mut domain);
    let shared_info = domain.shared_info;
    // A stale translation must not outlive the frames it reaches (mm::tlb).
    tlb::flush_if_stale();
    let shared_info_mfn = frame_table::with(|table, memory| {
        // Drop the base pointers and every pin: page tables then lose their
        // type counts, and devalidation drops the references they held.
        for root in [
            Some(domain.kernel_root).filter(|&root| root != 0),
            domain.user_root,
        ]
        .into_iter()
        .flatten()
        {
            let _: Flush = table.put_page_type(memory, root);
            table.put_page(root);
        }
        for &mfn in &domain.frames {
            if table.info(mfn).is_some_and(|info| info.pinned) {
                let _ = table.unpin(memory, mfn, id);
            }
        }
        crate::mm::descriptor_tables::release(table, memory, &mut domain.vcpu);
        // Validations and devalidations that preemption left halfway.
        table.abandon_partial(memory, &domain.frames);
        shared_info.release_hold(table, memory)
    });
    for &mfn in &domain.frames {
        m2p::set(mfn, m2p::INVALID_ENTRY);
    }
    let mut frames = domain.frames;
    frames.push(shared_info_mfn);
    frames.extend(grant_frames);
    frames
}

/// Looks at zombie `id`, if there is one: for the toolstack's questions.
pub fn with_zombie<R>(id: DomainId, action: impl FnOnce(&Zombie) -> R) -> Option<R> {
    ZOMBIES.lock().get(&id).map(action)
}

/// Looks at every zombie, in ID order.
pub fn for_each_zombie(mut action: impl FnMut(&Zombie)) {
    for zombie in ZOMBIES.lock().values() {
        action(zombie);
    }
}

/// Frees every frame of a zombie that nothing references any more, and
/// removes each zombie left with no frame (its ID is free from then on).
/// Called wherever a reference to another domain's frame may have gone:
/// after the page-table hypercalls (and on every destroy). Costs one
/// atomic load while there is no zombie.
pub fn release_dying_frames() {
    for id in release_frames_of_zombies() {
        log_zombie_gone(id);
    }
}

fn log_zombie_gone(id: DomainId) {
    log::info!("domain {id} (dying) is gone: its last frames were released and ID {id} is free");
}

/// The work of [`release_dying_frames`]; returns the zombies that went.
/// Dom0 hears of each through `VIRQ_DOM_EXC`, as in Xen.
fn release_frames_of_zombies() -> Vec<DomainId> {
    if ZOMBIE_COUNT.load(Ordering::Relaxed) == 0 {
        return Vec::new();
    }
    // The mapping just removed may live on in the TLB: no frame may be
    // freed while a stale translation still reaches it (mm::tlb).
    tlb::flush_if_stale();
    let mut gone: Vec<DomainId> = Vec::new();
    {
        let mut zombies = ZOMBIES.lock();
        for zombie in zombies.values_mut().filter(|zombie| zombie.torn_down) {
            let id = zombie.id;
            let owner = Owner::Domain(id);
            frame_table::with(|table, _| {
                zombie.frames.retain(|&mfn| match table.release(mfn, owner) {
                    Ok(()) => {
                        crate::mm::frames::free(mfn);
                        false
                    }
                    // Still mapped or referenced: the zombie keeps it.
                    Err(refusal) if refusal.error == XenError::EBUSY => true,
                    Err(refusal) => {
                        log::error!(
                            "dying domain {id}: frame {mfn:#x} cannot be released ({}): a hypervisor bug; forgetting it",
                            refusal.reason
                        );
                        false
                    }
                })
            });
            if zombie.frames.is_empty() {
                gone.push(id);
            }
        }
        for id in &gone {
            zombies.remove(id);
        }
    }
    for _ in &gone {
        ZOMBIE_COUNT.fetch_sub(1, Ordering::Relaxed);
        crate::evtchn::send_virq(0, VIRQ_DOM_EXC);
    }
    gone
}

/// The current domain did something fatal: mark it crashed and say why.
/// Dom0's crash leaves the machine without a control domain, so it stops
/// the machine with the "Dom0 crashed" failure code; another domain is
/// descheduled and waits for Dom0 to act on it.
pub fn crash_current(reason: &str) {
    let Some(id) = this_cpu().current_domain() else {
        return;
    };
    with(id, |domain| domain.state = DomainState::Crashed);
    log::error!(target: crate::console::GUEST, "Domain {id} crashed: {reason}");
    stop_if_dom0(id);
    crate::evtchn::send_virq(0, VIRQ_DOM_EXC);
    crate::sched::request_reschedule();
}

/// The current domain asked to shut down with `reason`.
pub fn shutdown_current(reason: ShutdownReason) {
    let Some(id) = this_cpu().current_domain() else {
        return;
    };
    with(id, |domain| domain.state = DomainState::Shutdown(reason));
    log::info!(target: crate::console::GUEST, "Domain {id} shut down: {}", reason.name());
    if id != 0 {
        crate::evtchn::send_virq(0, VIRQ_DOM_EXC);
        crate::sched::request_reschedule();
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

/// Runs a handler on the current domain.
pub fn on_current(
    action: impl FnOnce(&mut Domain) -> Result<u64, XenError>,
) -> Result<u64, XenError> {
    with_current(action).unwrap_or(Err(XenError::ESRCH))
}

/// The ID of the calling domain (for log lines).
pub fn caller() -> u16 {
    crate::arch::x86_64::percpu::this_cpu()
        .current_domain()
        .unwrap_or(u16::MAX)
}

/// Fails with `-EPERM` unless the caller is privileged.
pub fn require_privileged() -> Result<(), XenError> {
    match with_current(|domain| domain.privileged) {
        Some(true) => Ok(()),
        _ => Err(XenError::EPERM),
    }
}

/// The domain a hypercall's `domid` argument names, by Xen's rules (see
/// `domain::target`): `DOMID_SELF` or the caller's own ID is the caller;
/// another domain only for a privileged caller (`-EPERM`), and only if it
/// is alive (`-ESRCH`). Call it outside `domain::with`: it may take the
/// domain lock, and it logs a refusal against the caller.
pub fn resolve_target(named: DomainId) -> Result<DomainId, XenError> {
    let me = caller();
    super::target::resolve(
        me,
        named,
        || with_current(|domain| domain.privileged) == Some(true),
        |id| with(id, |_| ()).is_some(),
    )
    .inspect_err(|error| {
        if *error == XenError::EPERM {
            crate::console::caller_log!(
                Debug,
                "naming domain {named} refused: the caller is not privileged: -EPERM"
            );
        } else {
            crate::console::caller_log!(Debug, "domain {named} does not exist: -ESRCH");
        }
    })
}

/// The domain at the other end of an event channel, as the caller names
/// it: `DOMID_SELF` is the caller; any other ID is taken as it is.
pub fn resolve_peer(named: DomainId) -> DomainId {
    super::target::peer(caller(), named)
}
