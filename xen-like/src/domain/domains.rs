//! The table of domains, their vCPUs, and the one place a `Domain` is looked up.

use crate::arch::x86_64::frame::GuestFrame;
use crate::arch::x86_64::instructions::{rdtsc, FpuState};
use crate::arch::x86_64::percpu::{this_cpu, NO_DOMAIN};
use crate::console::rate_limit::{GuestOutput, RateLimit};
use crate::evtchn::ports::PortTable;
use crate::mm::frame_table::{Owner, Relinquished};
use crate::mm::shared_page::SharedInfoFrame;
use crate::mm::shared_page::{SharedInfoPage, VcpuInfoCells, VcpuInfoFrame};
use crate::mm::{frame_table, m2p, tlb};
use crate::sched::runstate::Runstate;
use crate::sync::lock_order::LockLevel;
use crate::sync::ordered_lock::OrderedMutex;
use crate::traps::debug_registers::DebugRegisters;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::{boxed::Box, vec::Vec};
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
    /// Called when the hypervisor cannot reload the vCPU's saved data
    /// segment selectors (see `traps::bounce::bounce_to_failsafe`).
    pub failsafe: u64,
    /// Whether entering the failsafe callback masks events (it was
    /// registered with `CALLBACKF_mask_events`: Xen's
    /// `VGCF_failsafe_disables_events`).
    pub failsafe_masks_events: bool,
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
    /// Where its `vcpu_info` lives if the guest moved it out of the shared
    /// info page (`VCPUOP_register_vcpu_info`, at most once): a frame the
    /// hypervisor holds until the domain is destroyed (frame-table
    /// invariant 6). Reach the `vcpu_info` through [`Domain::vcpu_info`].
    pub vcpu_info_frame: Option<VcpuInfoFrame>,
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
    /// Its virtual IOPL, 0..=3 (`PHYSDEVOP_set_iopl`, or an `iret` under
    /// `VMASST_TYPE_architectural_iopl`): what its port I/O, `cli` and
    /// `sti` are checked against (`traps::io_ports`). The processor's own
    /// IOPL stays 0.
    pub iopl: u8,
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
            vcpu_info_frame: None,
            debug: DebugRegisters::default(),
            guest_cr4: 0,
            deferred_devalidation: None,
            iopl: 0,
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
    /// order: the guest keeps its own P2M). A set, because
    /// `decrease_reservation` looks frames up by number: a search through
    /// a list of 10,000 frames cost some 30,000 cycles per frame given back.
    pub frames: BTreeSet<u64>,
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
    /// The CMOS/RTC register it last selected through port 0x70 (Xen's
    /// `cmos_idx`): kept here, never written to the hardware as it is,
    /// because bit 7 of that port disables NMIs (`traps::io_ports`).
    pub cmos_index: u8,
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
            frames: BTreeSet::new(),
            max_pages,
            shared_info,
            vcpu: Vcpu::new(GuestFrame::new_guest(0, 0), false),
            kernel_root: 0,
            user_root: None,
            output: GuestOutput::new(RateLimit::GUEST),
            ports: PortTable::new(),
            blocked: false,
            polling: None,
            timer_deadline: 0,
            vm_assist: 0,
            grants: crate::grant::GrantState::new(),
            cmos_index: 0,
        }
    }

    /// Heap bytes of guest-sized state it holds (its account for
    /// `mm::heap::admit_guest_allocation`): its grant state and its vCPU's
    /// GDT copy.
    pub fn guest_sized_heap_bytes(&self) -> usize {
        let gdt = self
            .vcpu
            .gdt
            .as_ref()
            .map_or(0, crate::mm::descriptor_tables::GuestGdt::heap_bytes);
        self.grants.heap_bytes() + gdt
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

    /// Its vCPU's `vcpu_info`, wherever it is now: the place the guest
    /// registered (`VCPUOP_register_vcpu_info`) or else its slot in the
    /// shared info page. The one way the hypervisor reaches the upcall flag
    /// and mask (the vCPU's virtual interrupt flag), the pending selector,
    /// `cr2` and the vCPU's time: once the guest has moved them, the old slot
    /// is the guest's to use as it likes and must never be written again.
    pub fn vcpu_info(&self) -> &VcpuInfoCells {
        match &self.vcpu.vcpu_info_frame {
            Some(registered) => registered.cells(),
            None => self.shared_info().vcpu_slot(0),
        }
    }

    /// The direct-map address of [`Domain::vcpu_info`], which the exit
    /// path reads without the domain lock (`domain::set_current`).
    fn vcpu_info_address(&self) -> u64 {
        match &self.vcpu.vcpu_info_frame {
            Some(registered) => registered.address(),
            None => self.shared_info.vcpu0_address(),
        }
    }
}

/// The most domain records, live or dying, that may exist at once: one per
/// vCPU the scheduler can hold (every domain has one vCPU), Dom0 included.
/// Each record's fixed heap cost is part of the heap's reserve
/// ([`heap_reserve`]), so this is also what bounds the hypervisor's own
/// use of its heap.
pub const MAX_DOMAINS: usize = crate::sched::credit::MAX_VCPUS;

/// Heap bytes a domain's frames may cost the hypervisor, per frame: its
/// entry in the domain's `BTreeSet` of frames (8 bytes in a node at least
/// half full, plus the internal nodes: at most 32), and its entry in the
/// list that destruction collects them into (8 bytes, up to twice that in
/// capacity).
pub const HEAP_BYTES_PER_FRAME: usize = 32 + 16;

/// Heap bytes the hypervisor's own structures may need at most on a machine
/// of `machine_frames` frames, beyond what boot allocated: what guest-sized
/// allocations must leave free (`mm::heap_budget`). Per domain record: the
/// `Domain` itself, its teardown record, the list of remote ends that
/// closing its event channels builds, its zombie record, and its share of
/// the domain table's B-tree nodes. (Its GDT copy is guest-sized:
/// `mm::descriptor_tables`.) For all domains together: their frames, at
/// [`HEAP_BYTES_PER_FRAME`] each. Plus a margin for short-lived lists
/// (`getdomaininfolist`, the frame table's list of freed frames) and for
/// the allocator's rounding and fragmentation.
pub fn heap_reserve(machine_frames: u64) -> usize {
    const BTREE_SHARE: usize = 512;
    const MARGIN: usize = 128 * 1024;
    let per_domain = size_of::<Domain>()
        + size_of::<Teardown>()
        + crate::evtchn::ports::PORTS_PER_DOMAIN * size_of::<crate::evtchn::ports::RemoteEnd>()
        + size_of::<Zombie>()
        + BTREE_SHARE;
    let frames = machine_frames as usize * HEAP_BYTES_PER_FRAME;
    MAX_DOMAINS * per_domain + frames + MARGIN
}

/// Every live domain, by ID.
static DOMAINS: OrderedMutex<BTreeMap<DomainId, Box<Domain>>> =
    OrderedMutex::new(LockLevel::Domains, BTreeMap::new());

/// A destroyed domain: its record while destruction tears it down (in
/// parts, see [`destroy`]) and, after that, while another domain still
/// references some of its frames (a zombie, Xen's dying domain). The record
/// keeps its ID taken until it owns no frame.
#[derive(Debug)]
pub struct Zombie {
    /// Its ID, not given to any other domain while this record exists.
    pub id: DomainId,
    /// How many of its frames others still reference: each was
    /// relinquished (`FrameTable::relinquish`) and is freed by the put of
    /// its last reference, which counts it off here ([`dying_frames_freed`]).
    pub held: u64,
    /// Destruction under way: what is left to tear down. `None` once it is
    /// done (`torn_down`), and for a moment while a CPU works on it.
    teardown: Option<Box<Teardown>>,
    /// Whether destruction has finished tearing it down (until then it
    /// must not be taken for gone, even when it holds nothing yet).
    pub torn_down: bool,
    /// What it was allowed to own, for `getdomaininfo`.
    pub max_pages: u64,
    /// The CPU time it used, for `xl list`.
    pub cpu_cycles: u64,
}

impl Zombie {
    /// The frames it still owns: those others hold, and those destruction
    /// has not given back yet.
    pub fn pages(&self) -> u64 {
        self.held
            + self
                .teardown
                .as_ref()
                .map_or(0, |teardown| teardown.frames_left())
    }
}

/// Where destruction of a domain stands (Xen's `domain_relinquish_resources`,
/// which also goes in steps and answers `-ERESTART` in between).
#[derive(Debug)]
struct Teardown {
    id: DomainId,
    /// Every frame the domain owned, its shared info page included.
    frames: Vec<u64>,
    /// The base pointers (kernel and user roots) not dropped yet.
    roots: heapless::Vec<u64, 2>,
    /// A devalidation that ran out of budget (the domain's own, left by its
    /// last page-table hypercall, or one of destruction's).
    deferred: Option<u64>,
    stage: TeardownStage,
    /// How many frames this part relinquished (still referenced elsewhere).
    relinquished: u64,
    /// The parts so far, the cycles they took and the longest of them.
    parts: u32,
    cycles: u64,
    longest_part: u64,
}

/// The steps of a teardown, in order; each may stop in the middle when the
/// budget runs out and goes on from there in the next part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TeardownStage {
    /// Drop the base pointers.
    Roots,
    /// Unpin every pinned table, from frame `next` on.
    Unpin { next: usize },
    /// End validations and devalidations left halfway
    /// (`FrameTable::abandon_partial_preemptible`'s position).
    Partial { position: usize },
    /// Give back frames from `next` on: freed, or relinquished if others
    /// still reference them.
    Release { next: usize },
    /// Nothing left.
    Done,
}

/// Budget units one frame given back costs (its M2P entry, the frame
/// table, the allocator): measured with `cargo xtask bench`'s destruction
/// row, a frame costs about as much as a few page-table entries.
const UNITS_PER_RELEASED_FRAME: u64 = 4;

impl Teardown {
    fn frames_left(&self) -> u64 {
        match self.stage {
            TeardownStage::Release { next } => (self.frames.len() - next) as u64,
            TeardownStage::Done => 0,
            _ => self.frames.len() as u64,
        }
    }

    /// Goes on until done (`Ok`) or until the frame table's budget runs out
    /// (`-ERESTART`, the progress kept here and in the frames).
    fn run(
        &mut self,
        table: &mut frame_table::FrameTable<'static>,
        memory: &mut frame_table::DirectMapTables,
    ) -> Result<(), frame_table::Refusal> {
        let owner = Owner::Domain(self.id);
        loop {
            // Any flush is the one before the frames are given back.
            let _flushed_later = table.finish_deferred(memory, &mut self.deferred)?;
            match self.stage {
                TeardownStage::Roots => match self.roots.pop() {
                    // The domain runs nowhere: no TLB holds its mappings.
                    Some(root) => {
                        let _ =
                            table.put_page_and_type_preemptible(memory, root, &mut self.deferred);
                    }
                    None => self.stage = TeardownStage::Unpin { next: 0 },
                },
                TeardownStage::Unpin { next } => {
                    let Some(&mfn) = self.frames.get(next) else {
                        self.stage = TeardownStage::Partial { position: 0 };
                        continue;
                    };
                    table.spend(1)?;
                    if table.info(mfn).is_some_and(|info| info.pinned) {
                        match table.unpin_preemptible(memory, mfn, self.id, &mut self.deferred) {
                            Err(refusal) if refusal == frame_table::PREEMPTED => {
                                return Err(refusal)
                            }
                            _ => {}
                        }
                    }
                    self.stage = TeardownStage::Unpin { next: next + 1 };
                }
                TeardownStage::Partial { mut position } => {
                    let ended =
                        table.abandon_partial_preemptible(memory, &self.frames, &mut position);
                    self.stage = TeardownStage::Partial { position };
                    ended?;
                    // Mappings of these frames were removed: none may
                    // survive in a TLB once they are free (mm::tlb).
                    tlb::flush_all();
                    self.stage = TeardownStage::Release { next: 0 };
                }
                TeardownStage::Release { next } => {
                    let Some(&mfn) = self.frames.get(next) else {
                        self.stage = TeardownStage::Done;
                        continue;
                    };
                    table.spend(UNITS_PER_RELEASED_FRAME)?;
                    m2p::set(mfn, m2p::INVALID_ENTRY);
                    match table.relinquish(mfn, owner) {
                        Ok(Relinquished::Now) => crate::mm::frames::free(mfn),
                        Ok(Relinquished::Later) => self.relinquished += 1,
                        Err(refusal) => log::error!(
                            "dying domain {}: frame {mfn:#x} cannot be given up ({}): a hypervisor bug; forgetting it",
                            self.id,
                            refusal.reason
                        ),
                    }
                    self.stage = TeardownStage::Release { next: next + 1 };
                }
                TeardownStage::Done => return Ok(()),
            }
        }
    }
}

/// The dying half of the domain table, by ID. Lock order: `DOMAINS`
/// first, when both are needed.
static ZOMBIES: OrderedMutex<BTreeMap<DomainId, Zombie>> =
    OrderedMutex::new(LockLevel::Zombies, BTreeMap::new());

/// Zombies that went (their last frame was freed) since Dom0 was last told
/// (see [`announce_gone_zombies`]).
static ZOMBIES_GONE: AtomicU32 = AtomicU32::new(0);

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

/// Moves the `vcpu_info` of `domain`, the domain running on this CPU, to
/// `registered` (`VCPUOP_register_vcpu_info`): from now on every access
/// goes there, the exit path's included, whose per-CPU address changes
/// before the hypercall returns to the guest.
pub fn move_vcpu_info(domain: &mut Domain, registered: VcpuInfoFrame) {
    domain.vcpu.vcpu_info_frame = Some(registered);
    let cpu = this_cpu();
    if cpu.current_domain() == Some(domain.id) {
        cpu.vcpu_info
            .store(domain.vcpu_info_address(), Ordering::Relaxed);
    }
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
                (domain.vcpu_info_address(), !domain.vcpu.kernel_mode)
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
        // Every record costs the heap a fixed amount that the reserve
        // (`heap_reserve`) was sized for: their number is the bound.
        if domains.len() + zombies.len() >= MAX_DOMAINS {
            log::warn!(
                "cannot create a domain: {} domains exist, live or dying, the most there can be: -ENOSPC",
                domains.len() + zombies.len()
            );
            return Err(XenError::ENOSPC);
        }
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
    // Fallible: a heap that guests cannot fill below its reserve has room
    // for every domain there can be, but a refusal here must stay a
    // refusal (-ENOMEM), never an abort.
    let domain = match crate::mm::heap::try_box(Domain::new(id, max_pages, shared_info)) {
        Ok(domain) => domain,
        Err(domain) => {
            let mfn =
                frame_table::with(|table, memory| domain.shared_info.release_hold(table, memory));
            if let Err(refusal) = frame_table::release(mfn, Owner::Domain(id)) {
                log::error!(
                    "d{id}: cannot release its unused shared info frame {mfn:#x}: {}",
                    refusal.reason
                );
            }
            log::warn!(
                "cannot create domain {id}: the hypervisor's heap has no room for it ({} KiB free): -ENOMEM",
                crate::mm::heap::free_bytes() >> 10
            );
            return Err(XenError::ENOMEM);
        }
    };
    insert(domain);
    if let Err(error) = crate::sched::add_domain(id) {
        // A domain the scheduler cannot take would exist but never run.
        log::warn!("cannot create domain {id}: {}", error.description());
        let mut unlimited = frame_table::UNLIMITED_WORK;
        let _ = destroy(id, &mut unlimited);
        return Err(error.errno());
    }
    log::info!("created domain {id} (up to {} MiB)", max_pages >> 8);
    Ok(id)
}

/// A new domain's shared info page before it first runs: events masked, as
/// in Xen, and the clocks published.
pub fn initialise_shared_info(page: &SharedInfoPage) {
    page.vcpu_slot(0).set_upcall_mask(1);
    crate::time::publish_wallclock(page);
    crate::time::publish_vcpu_time(page.vcpu_slot(0));
}

/// Destroys domain `id` (never Dom0) and gives back its memory, within
/// `budget` (see `sched::continuation`): `-ERESTART` when the budget ran
/// out, and the same call made again goes on where this one stopped (the
/// `destroydomain` domctl becomes a continuation, as Xen's does).
///
/// The first call takes the domain out of the table of live domains: from
/// then on nothing can run it, send it an event or give it memory, and its
/// record in the dying half of the table keeps its ID taken (`getdomaininfo`
/// shows it dying, `d`). The calls then tear it down in parts: base
/// pointers, pins, tables left halfway, and finally its frames. Frames that
/// another domain still references (a foreign mapping not undone) are
/// relinquished: the domain stays a zombie until the last of them is freed
/// by the put of its last reference ([`dying_frames_freed`]). Destroying a
/// zombie again is not an error.
pub fn destroy(id: DomainId, budget: &mut u64) -> Result<(), XenError> {
    if id == 0 {
        return Err(XenError::EINVAL);
    }
    let Some(mut teardown) = take_teardown(id)? else {
        // Torn down already: a zombie waiting for its last frames.
        return Ok(());
    };
    let started = rdtsc();
    let progress = frame_table::with_budget(budget, |table, memory| teardown.run(table, memory));
    let took = rdtsc().saturating_sub(started);
    teardown.parts += 1;
    teardown.cycles += took;
    teardown.longest_part = teardown.longest_part.max(took);
    let relinquished = core::mem::take(&mut teardown.relinquished);
    let mut zombies = ZOMBIES.lock();
    let Some(zombie) = zombies.get_mut(&id) else {
        log::error!("domain {id}'s record went while it was being torn down: a hypervisor bug");
        return Err(XenError::ESRCH);
    };
    zombie.held += relinquished;
    if progress.is_err() {
        zombie.teardown = Some(teardown);
        return Err(XenError::ERESTART);
    }
    zombie.torn_down = true;
    let held = zombie.held;
    let freed = teardown.frames.len() as u64 - held;
    if held == 0 {
        zombies.remove(&id);
    }
    drop(zombies);
    log::info!(
        "domain {id} destroyed; {} KiB freed in {} cycles, in {} part(s), the longest {} cycles",
        freed * 4,
        teardown.cycles,
        teardown.parts,
        teardown.longest_part
    );
    if held == 0 {
        crate::evtchn::send_virq(0, VIRQ_DOM_EXC);
    } else {
        log::warn!(
            "domain {id} is dying: {held} of its frames are still referenced by another domain \
             (a mapping not undone); it keeps its ID until they are released"
        );
    }
    Ok(())
}

/// Destruction's state for `id`: begun now if the domain is live (it
/// leaves the live table for the dying one, and what destruction takes at
/// once is taken), taken from its record if it is under way, `None` if it
/// is torn down already.
fn take_teardown(id: DomainId) -> Result<Option<Box<Teardown>>, XenError> {
    let domain = {
        let mut domains = DOMAINS.lock();
        let mut zombies = ZOMBIES.lock();
        match domains.remove(&id) {
            Some(domain) => {
                zombies.insert(
                    id,
                    Zombie {
                        id,
                        held: 0,
                        teardown: None,
                        torn_down: false,
                        max_pages: domain.max_pages,
                        cpu_cycles: cpu_cycles(&domain),
                    },
                );
                domain
            }
            None => {
                let zombie = zombies.get_mut(&id).ok_or(XenError::ESRCH)?;
                if zombie.torn_down {
                    return Ok(None);
                }
                // Under way on another CPU if the record holds nothing: let
                // the caller come back.
                return zombie.teardown.take().map(Some).ok_or(XenError::ERESTART);
            }
        }
    };
    Ok(Some(Box::new(begin_teardown(domain))))
}

/// What destruction takes from a domain at once, a bounded amount of work:
/// its place in the scheduler, its event channels, its GDT frames and the
/// hypervisor's holds on its shared info page and on the frame of its
/// registered `vcpu_info`. The rest is left to [`Teardown::run`].
fn begin_teardown(mut domain: Box<Domain>) -> Teardown {
    let id = domain.id;
    crate::console::last_word(&mut domain);
    crate::sched::remove_domain(id);
    let remote_ends = crate::evtchn::close_all(&mut domain);
    crate::evtchn::release_remote_ends(id, &remote_ends);
    // Its grant mappings of others' frames go, and the hypervisor stops
    // writing its grant-table frames.
    let grant_frames = crate::grant::grant_table_op::tear_down(&mut domain);
    // A stale translation must not outlive the frames it reaches (mm::tlb).
    tlb::flush_if_stale();
    let Domain {
        frames,
        kernel_root,
        user_root,
        shared_info,
        mut vcpu,
        ..
    } = *domain;
    let shared_info_mfn = frame_table::with(|table, memory| {
        crate::mm::descriptor_tables::release(table, memory, &mut vcpu);
        // The registered vcpu_info frame is one of `frames`: only the hold
        // ends here, and the frame goes back with the rest.
        if let Some(registered) = vcpu.vcpu_info_frame.take() {
            registered.release_hold(table, memory);
        }
        shared_info.release_hold(table, memory)
    });
    let mut frames: Vec<u64> = frames.into_iter().collect();
    frames.push(shared_info_mfn);
    frames.extend(grant_frames);
    let roots = [Some(kernel_root).filter(|&root| root != 0), user_root]
        .into_iter()
        .flatten()
        .collect();
    Teardown {
        id,
        frames,
        roots,
        deferred: vcpu.deferred_devalidation,
        stage: TeardownStage::Roots,
        relinquished: 0,
        parts: 0,
        cycles: 0,
        longest_part: 0,
    }
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

/// The frame table freed these relinquished frames of dying domains: the
/// put of their last reference just happened (`mm::frame_table::with` calls
/// this once it has let go of the table). Each goes back to the allocator
/// and off its zombie's count; a torn-down zombie left with no frame goes,
/// and its ID is free from this moment. Dom0 hears of it at the end of the
/// hypercall ([`announce_gone_zombies`]): the caller may hold the domain
/// table, which sending an event takes. Work: one step per frame freed,
/// which the put that freed it paid for.
pub fn dying_frames_freed(freed: Vec<(DomainId, u64)>) {
    // The mapping just removed may live on in a TLB: no frame may be freed
    // while a stale translation still reaches it (mm::tlb).
    tlb::flush_all();
    let mut zombies = ZOMBIES.lock();
    for (id, mfn) in freed {
        crate::mm::frames::free(mfn);
        let Some(zombie) = zombies.get_mut(&id) else {
            log::error!("frame {mfn:#x} of domain {id} was freed, but the domain has no record: a hypervisor bug");
            continue;
        };
        zombie.held = zombie.held.saturating_sub(1);
        if zombie.torn_down && zombie.held == 0 {
            zombies.remove(&id);
            ZOMBIES_GONE.fetch_add(1, Ordering::Relaxed);
            log::info!(
                "domain {id} (dying) is gone: its last frames were released and ID {id} is free"
            );
        }
    }
}

/// Tells Dom0 (`VIRQ_DOM_EXC`, as in Xen) that zombies went since it was
/// last told. Called at the end of the hypercalls that can drop the last
/// reference to a frame, holding no lock; one atomic load when none went.
pub fn announce_gone_zombies() {
    if ZOMBIES_GONE.swap(0, Ordering::Relaxed) > 0 {
        crate::evtchn::send_virq(0, VIRQ_DOM_EXC);
    }
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
