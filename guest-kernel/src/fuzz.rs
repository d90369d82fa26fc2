//! `workload=fuzz seed=N count=M`: a hypercall fuzzer, run as an ordinary
//! unprivileged guest, that tries to make the hypervisor fall over.
//!
//! It makes `count` hypercalls, each drawn by a deterministic generator
//! (SplitMix64, seeded by `seed`): a hypercall number between 0 and 63,
//! weighted toward the ones the hypervisor implements, and arguments drawn
//! from values that tend to find bugs: 0, 1, -1, small and huge counts,
//! random words, addresses in its own memory, in the hypervisor's range
//! (`0xffff800000000000..0xffff880000000000`), non-canonical ones, buffers
//! that run into an unmapped page or wrap around the address space; machine
//! frames of its own page tables, of its own memory, of other domains and
//! beyond the end of RAM. Buffers are filled with random but well-formed
//! requests (mmu_update entries aimed at its page tables, multicall entries,
//! event-channel, memory_op, sched_op and callback structures), so that the
//! calls get past the first checks and reach the interesting ones.
//!
//! What must hold is the hypervisor's business: it never faults, never
//! crashes this guest for something the guest may do, and other domains
//! keep running (`cargo xtask fuzz` watches for all of that). The fuzzer's
//! own business is to survive its calls, so that a crash always means a
//! hypervisor bug. It keeps itself alive by construction:
//!
//! - **A playground.** At start it maps an *arena* (`ARENA_PAGES` pages,
//!   followed by an unmapped guard page) for every buffer it hands the
//!   hypervisor, builds a *scratch* tree of page tables (pinned L3, L2 and
//!   L1 at `SCRATCH`), and takes every free frame it has into a *pool*.
//!   Page-table writes aim at the scratch tables, at pool frames, at empty
//!   slots of its real L4 (and at the hypervisor's slots, which must be
//!   refused); its real tables are only ever rewritten with the value they
//!   hold. New entries never make its own memory writable a second time
//!   and never link its real tables under another address, so no address
//!   a call may write through reaches its code, stack or page tables.
//! - **Frames it needs are not offered.** `MMUEXT_CLEAR_PAGE` and
//!   `MMU_MACHPHYS_UPDATE` take only pool frames (or frames that are not
//!   its own); `MMUEXT_NEW_BASEPTR` never names a pool frame (one validated
//!   as an L4 would be an empty address space); the scratch tables are
//!   never unpinned (a pinned L1 cannot be revalidated as an L2 that would
//!   link real tables).
//! - **Nothing ends it.** `SCHEDOP_shutdown` carries only invalid reasons,
//!   a block always has its timer armed and `VIRQ_TIMER` bound (so a timer
//!   that fires just before the block still ends it), a poll always has a
//!   near timeout,
//!   `iret` gets a well-formed frame that lands back here; structures whose
//!   misreading could end it (shutdown, poll, port close, batches) are
//!   either written fresh or at addresses that cannot be read; batch counts
//!   larger than the entries written run into the guard page.
//! - **Handlers come back.** Events stay masked while it fuzzes; after any
//!   call that may have replaced its trap table or callbacks, it installs
//!   its own again. Ports it did not open itself are never closed.
//!
//! `trace=K` prints every call from index K on, decoded, before it is made:
//! the last line before a failure names the call to reduce a report to.
//! `blocking=0` draws no `SCHEDOP_block` or `SCHEDOP_poll`.
//! `progress=N` prints a progress line every N calls (default 5000).
//! `unimplemented=P` sets the percentage of calls drawn from the numbers
//! the hypervisor does not implement (default 10).
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::fmt::Write;
use guest_kernel::abi::event_channel::{EvtchnStatus, VIRQ_TIMER};
use guest_kernel::abi::hypercall::Hypercall;
use guest_kernel::abi::layout::{DOMID_SELF, HYPERVISOR_VIRT_START, MACH2PHYS_VIRT_START};
use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::abi::wrappers;
use guest_kernel::paging::{self, PAGE_SIZE, PRESENT, USER, WRITABLE};
use guest_kernel::sys::memory::OwnedPages;
use guest_kernel::sys::{hypercalls, raw};
use guest_kernel::{events, println, start, time, traps};
use hypercall_abi::splitmix::SplitMix64;

/// Where the arena starts (PML4 slot 448, unused by the guest kernel).
const ARENA: u64 = 0xffff_e000_0000_0000;
/// Pages in the arena; the page after it stays unmapped.
const ARENA_PAGES: u64 = 16;
const ARENA_SIZE: u64 = ARENA_PAGES * PAGE_SIZE;
/// The arena, once mapped: the fuzzer writes its buffers through it.
static ARENA_PAGES_MAPPED: spin::Once<OwnedPages> = spin::Once::new();
/// Where the scratch page tables map (PML4 slot 464).
const SCRATCH: u64 = 0xffff_e800_0000_0000;
/// The real L4 slots page-table writes may fill: empty at start, and
/// neither the lower half (so that low addresses stay unmapped and
/// unreadable) nor slots the guest kernel uses.
const FREE_SLOTS: core::ops::RangeInclusive<u64> = 300..=379;
/// The hypervisor's L4 slots: writes there must be refused.
const HYPERVISOR_SLOTS: core::ops::RangeInclusive<u64> = 256..=271;
/// A progress line every this many calls (unless `progress=` says otherwise).
const PROGRESS_EVERY: u64 = 5000;
/// The largest buffer placed against the guard page.
const AT_END_MAX: u64 = 2048;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Page-size bit: a superpage at L2 or L3.
const SUPERPAGE: u64 = 1 << 7;
const ACCESSED: u64 = 1 << 5;
const DIRTY: u64 = 1 << 6;
/// Reasons `SCHEDOP_shutdown` accepts (poweroff .. soft_reset) are below this.
const FIRST_INVALID_SHUTDOWN_REASON: u64 = 6;
/// Flags of the `iret` frame: return like `sysret` (rax, rip, rflags, rsp).
const VGCF_IN_SYSCALL: u64 = 1 << 8;
const RFLAGS_TRAP: u64 = 1 << 8;
const RFLAGS_ALIGNMENT_CHECK: u64 = 1 << 18;
const FLAT_RING3_CS64: u64 = 0xe033;

/// The hypercalls the hypervisor implements, with how often each is drawn.
const IMPLEMENTED: [(Hypercall, u64); 17] = [
    (Hypercall::MmuUpdate, 14),
    (Hypercall::MmuextOp, 12),
    (Hypercall::UpdateVaMapping, 10),
    (Hypercall::MemoryOp, 8),
    (Hypercall::Multicall, 6),
    (Hypercall::EventChannelOp, 10),
    (Hypercall::SchedOp, 5),
    (Hypercall::XenVersion, 4),
    (Hypercall::ConsoleIo, 2),
    (Hypercall::SetTrapTable, 2),
    (Hypercall::SetCallbacks, 2),
    (Hypercall::CallbackOp, 3),
    (Hypercall::StackSwitch, 1),
    (Hypercall::SetTimerOp, 3),
    (Hypercall::Iret, 1),
    (Hypercall::Sysctl, 2),
    (Hypercall::Domctl, 2),
];

/// Hypercalls outside the weighted list whose random arguments could end
/// the guest by its own doing (they are implemented, or will be):
/// fpu_taskswitch (TS set: the guest kernel's next SSE use is a `#NM` it
/// has no handler for), sched_op_compat (its shutdown), set_debugreg
/// (breakpoints on its own code, and no `#DB` handler), event_channel_op_compat
/// (its reset), vcpu_op (`VCPUOP_down`), set_segment_base (a random GS
/// base under the guest kernel's feet), nmi_op.
const UNSAFE_WHEN_IMPLEMENTED: [u64; 7] = [5, 6, 8, 16, 24, 25, 28];

/// The project's SplitMix64 (the same sequence for the same seed), with the
/// fuzzer's own ways of drawing arguments.
struct Random(SplitMix64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A number in `0..bound` (`bound` > 0).
    fn below(&mut self, bound: u64) -> u64 {
        self.0.below(bound)
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.0.chance(percent)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// A count: 0, 1, small, at a batch limit, or huge.
    fn count(&mut self) -> u64 {
        match self.below(10) {
            0 => 0,
            1 => 1,
            2..=5 => self.below(16),
            6 => self.pick(&[1023, 1024, 1025, 4095, 4096, 4097]),
            7 => self.pick(&[u32::MAX as u64, u64::MAX, 1 << 31, 1 << 63]),
            _ => self.below(256),
        }
    }

    /// A word from the usual suspects.
    fn word(&mut self) -> u64 {
        match self.below(8) {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            3 => self.below(64),
            4 => 1 << self.below(64),
            5 => u64::MAX - self.below(16),
            _ => self.next(),
        }
    }
}

/// What a machine frame is to the fuzzer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Taken for fuzzing: anything may happen to it.
    Pool,
    /// One of the page tables the guest runs on.
    RealTable,
    /// One of the pinned scratch tables.
    ScratchTable,
    /// Its own memory in use (code, data, stack, arena, shared pages).
    OwnData,
    /// Not its own (another domain's, the hypervisor's, free, or beyond RAM).
    Other,
}

/// What a frame is about to be used for: decides which kinds may be named.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// An entry of a known L1 (the scratch L1, `update_va_mapping`).
    L1Entry,
    /// An entry of a table whose level is not known.
    AnyEntry,
    Pin,
    Unpin,
    NewBaseptr,
    NewUserBaseptr,
    ClearPage,
    MachphysUpdate,
    Decrease,
}

/// How a call is made, when not as a plain hypercall.
#[derive(Clone, Copy)]
enum Special {
    None,
    /// Arm the timer this far ahead, then `SCHEDOP_block`.
    Block {
        nanoseconds: u64,
    },
    /// Through the hypercall page's iret entry (`fuzz_iret`).
    Iret {
        rflags: u64,
        flags: u64,
        cs_slot: u64,
    },
}

/// What to do with the result.
#[derive(Clone, Copy)]
enum After {
    Nothing,
    /// The trap table or callbacks may have been replaced.
    RestoreHandlers,
    /// `increase_reservation`/`populate_physmap`: new frames in `array`.
    /// `written`: how many slots of `array` the call filled.
    Increase {
        array: u64,
        written: u64,
    },
    /// `decrease_reservation`: the frames in `array` left.
    Decrease {
        array: u64,
        written: u64,
    },
    /// A port was opened; its number is the `u32` at `at`.
    NewPort {
        at: u64,
    },
    /// A port of ours was closed.
    ClosePort {
        port: u32,
    },
}

struct Call {
    number: u64,
    arguments: [u64; 5],
    /// What the generator meant, for traces.
    label: &'static str,
    /// The main buffer, for traces.
    buffer: Option<(u64, u64)>,
    special: Special,
    after: After,
}

impl Call {
    fn new(number: Hypercall, arguments: [u64; 5], label: &'static str) -> Call {
        Call {
            number: number as u64,
            arguments,
            label,
            buffer: None,
            special: Special::None,
            after: After::Nothing,
        }
    }

    fn with_buffer(mut self, address: u64, length: u64) -> Call {
        self.buffer = Some((address, length));
        self
    }

    fn then(mut self, after: After) -> Call {
        self.after = after;
        self
    }
}

/// The fuzzer's knowledge of its own domain.
struct Fuzzer {
    random: Random,
    nr_pages: u64,
    /// The largest machine frame the M2P covers.
    max_mfn: u64,
    root: u64,
    shared_info_mfn: u64,
    /// Kind of each of its pseudo-physical frames.
    kinds: Vec<Kind>,
    real_tables: Vec<u64>,
    scratch_tables: [u64; 3],
    /// Pool frames (may have been given back since).
    pool: Vec<u64>,
    /// Every frame that was ever in the pool, sorted: its kind must not
    /// depend on the M2P, which `MMU_MACHPHYS_UPDATE` rewrites for pool
    /// frames (a pool frame taken for another domain's would be offered to
    /// `MMUEXT_NEW_BASEPTR`, and one pinned as an empty L4 ends the guest).
    pool_set: Vec<u64>,
    own_data: Vec<u64>,
    /// Addresses of its own whose mapping may be rewritten unchanged.
    own_addresses: Vec<u64>,
    /// Ports open at start (console, timer...): never closed.
    protected_ports: Vec<u32>,
    own_ports: Vec<u32>,
    /// Next free byte of the arena for this call's buffers.
    arena_used: u64,
    /// Drawing the entries of a multicall.
    nested: bool,
    unimplemented_percent: u64,
    /// Whether `SCHEDOP_block` and `SCHEDOP_poll` are drawn (`blocking=0`
    /// turns them into yields).
    blocking: bool,
}

/// The value of `key=` on the command line (words separated by spaces or
/// commas, so that `xl create ... cmdline=workload=fuzz,seed=7` works).
fn argument(line: &str, key: &str) -> Option<u64> {
    line.split(|c: char| c.is_ascii_whitespace() || c == ',')
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
}

/// The workload: set up, fuzz, report, power off.
pub fn run(line: &str) -> ! {
    let seed = argument(line, "seed").unwrap_or(1);
    let count = argument(line, "count").unwrap_or(20_000);
    let trace_from = argument(line, "trace").unwrap_or(u64::MAX);
    let progress_every = argument(line, "progress").unwrap_or(PROGRESS_EVERY).max(1);
    let unimplemented_percent = argument(line, "unimplemented").unwrap_or(10).min(100);
    let blocking = argument(line, "blocking").unwrap_or(1) != 0;
    let mut fuzzer = match Fuzzer::new(seed, unimplemented_percent, blocking) {
        Ok(fuzzer) => fuzzer,
        Err(why) => {
            println!("fuzz: seed {seed}: cannot set up: {why}");
            guest_kernel::shutdown(ShutdownReason::Crash)
        }
    };
    println!(
        "fuzz: seed {seed}: {count} calls; {} pool frames, {} page tables, {} free L4 slots",
        fuzzer.pool.len(),
        fuzzer.real_tables.len() + 3,
        FREE_SLOTS.count()
    );
    let started = time::system_time_ns();
    let (mut accepted, mut refused) = (0u64, 0u64);
    events::set_mask(true);
    for index in 0..count {
        let call = fuzzer.generate(0);
        if index >= trace_from {
            trace(index, &call);
        }
        let result = fuzzer.execute(&call);
        if result >= 0 {
            accepted += 1;
        } else {
            refused += 1;
        }
        fuzzer.after(&call, result);
        if (index + 1) % progress_every == 0 && index + 1 < count {
            println!(
                "fuzz: seed {seed}: {} calls, {accepted} accepted, {refused} refused",
                index + 1
            );
            events::set_mask(true);
        }
    }
    let milliseconds = (time::system_time_ns() - started) / 1_000_000;
    events::set_mask(false);
    println!(
        "fuzz: seed {seed}: {count} calls done, {accepted} accepted, {refused} refused ({milliseconds} ms)"
    );
    // The toolstack destroys a powered-off guest at once: let the console
    // backend take the last line first.
    guest_kernel::console::drain(1_000_000_000);
    // (Dom0 prints what it took from the ring a moment later; a destroy in
    // between loses it.)
    time::sleep(100_000_000);
    guest_kernel::shutdown(ShutdownReason::Poweroff)
}

/// Prints a call, decoded, before it is made (prefixed `(dN)` by the
/// hypervisor).
fn trace(index: u64, call: &Call) {
    let name = Hypercall::from_register(call.number).map_or("unknown", |known| known.name());
    let [a0, a1, a2, a3, a4] = call.arguments;
    let mut line: heapless::String<512> = heapless::String::new();
    let _ = write!(
        line,
        "fuzz: call {index}: {name} ({}) [{}] ({a0:#x}, {a1:#x}, {a2:#x}, {a3:#x}, {a4:#x})",
        call.number, call.label
    );
    if let Some((address, length)) = call.buffer {
        let _ = write!(line, " buffer at {address:#x}:");
        for offset in (0..length.min(64)).step_by(8) {
            match Fuzzer::read_word(address.wrapping_add(offset)) {
                Some(word) => {
                    let _ = write!(line, " {word:#x}");
                }
                None => break,
            }
        }
    }
    // Straight to the hypervisor's console (`console_io`), not through the
    // console ring: the line must be out before the call is made.
    let _ = line.push('\n');
    wrappers::console_write(line.as_bytes());
}

/// Walks the tree under `table` (of `level`), collecting every table.
fn collect_tables(table: u64, level: u32, slots: core::ops::Range<u64>, into: &mut Vec<u64>) {
    into.push(table);
    if level == 1 {
        return;
    }
    for index in slots {
        if level == 4 && HYPERVISOR_SLOTS.contains(&index) {
            continue;
        }
        let entry = paging::read_entry(table, index);
        if entry & PRESENT != 0 && entry & SUPERPAGE == 0 {
            collect_tables((entry & ADDRESS_MASK) / PAGE_SIZE, level - 1, 0..512, into);
        }
    }
}

/// The machine frame mapped at `address`, from the guest's own tables.
fn frame_of(address: u64) -> Option<u64> {
    let l1 = paging::l1_table(address)?;
    let entry = paging::read_entry(l1, (address >> 12) & 511);
    (entry & PRESENT != 0).then_some((entry & ADDRESS_MASK) / PAGE_SIZE)
}

fn l4_slot(address: u64) -> u64 {
    (address >> 39) & 511
}

/// The address at the start of L4 slot `slot` (sign-extended).
fn slot_address(slot: u64) -> u64 {
    let address = slot << 39;
    if slot >= 256 {
        address | 0xffff_0000_0000_0000
    } else {
        address
    }
}

impl Fuzzer {
    fn new(seed: u64, unimplemented_percent: u64, blocking: bool) -> Result<Fuzzer, &'static str> {
        let info = start::start_info();
        let nr_pages = info.nr_pages;
        // The M2P's extent: frames beyond it cannot be looked up.
        let mapping =
            hypercalls::machphys_mapping().map_err(|_| "XENMEM_machphys_mapping failed")?;
        let max_mfn = mapping[2];
        let arena =
            OwnedPages::map_fresh(ARENA, ARENA_PAGES).map_err(|_| "cannot map the arena")?;
        ARENA_PAGES_MAPPED.call_once(|| arena);
        let scratch_l1 =
            paging::ensure_l1(SCRATCH).map_err(|_| "cannot build the scratch tables")?;
        let root = paging::current_root();
        let scratch_l3 = (paging::read_entry(root, l4_slot(SCRATCH)) & ADDRESS_MASK) / PAGE_SIZE;
        let scratch_l2 =
            (paging::read_entry(scratch_l3, (SCRATCH >> 30) & 511) & ADDRESS_MASK) / PAGE_SIZE;
        for (mfn, level) in [(scratch_l3, 3), (scratch_l2, 2), (scratch_l1, 1)] {
            paging::pin(mfn, level).map_err(|_| "cannot pin the scratch tables")?;
        }
        let mut tables = Vec::new();
        collect_tables(root, 4, 0..512, &mut tables);
        for slot in FREE_SLOTS {
            if paging::read_entry(root, slot) & PRESENT != 0 {
                return Err("an L4 slot meant for fuzzing is in use");
            }
        }
        let scratch_tables = [scratch_l3, scratch_l2, scratch_l1];
        let real_tables: Vec<u64> = tables
            .into_iter()
            .filter(|table| !scratch_tables.contains(table))
            .collect();
        let mut kinds = alloc::vec![Kind::OwnData; nr_pages as usize];
        for &table in real_tables.iter().chain(scratch_tables.iter()) {
            let pfn = paging::mfn_to_pfn(table);
            if pfn < nr_pages {
                kinds[pfn as usize] = if scratch_tables.contains(&table) {
                    Kind::ScratchTable
                } else {
                    Kind::RealTable
                };
            }
        }
        // Some of its own memory in use, for calls that must refuse it.
        let stack_marker = 0u64;
        let own_addresses: Vec<u64> = [
            run as *const () as u64,
            core::ptr::addr_of!(stack_marker) as u64,
            info as *const _ as u64,
            start::SHARED_INFO_ADDRESS,
            guest_kernel::console::CONSOLE_ADDRESS,
            guest_kernel::heap::HEAP_START,
            ARENA,
            ARENA + ARENA_SIZE - PAGE_SIZE,
        ]
        .into_iter()
        .filter(|&address| frame_of(address).is_some())
        .collect();
        let mut own_data: Vec<u64> = own_addresses.iter().filter_map(|&a| frame_of(a)).collect();
        own_data.push(info.shared_info / PAGE_SIZE);
        // Every free frame becomes the pool, so none it may need later can
        // be given away by accident.
        // (Room for the frames increase_reservation may add: the heap must
        // not grow while fuzzing, since every free frame is in the pool.)
        let mut pool = Vec::with_capacity((paging::free_frames() + nr_pages) as usize);
        while let Ok(pfn) = paging::allocate_frame() {
            kinds[pfn as usize] = Kind::Pool;
            pool.push(paging::pfn_to_mfn(pfn));
        }
        if pool.is_empty() {
            return Err("no free frames for the pool");
        }
        let mut pool_set = Vec::with_capacity(pool.capacity());
        pool_set.extend_from_slice(&pool);
        pool_set.sort_unstable();
        // VIRQ_TIMER bound (and so protected below): a block's timer that
        // fires before the block starts leaves an event pending, which ends
        // the block at once. Without it the timer would fire unheard and
        // the block would last forever (as in Xen: legitimate, and a hang
        // of the fuzzer's own making).
        if let Err(error) = events::bind_virq(VIRQ_TIMER) {
            println!("fuzz: cannot bind VIRQ_TIMER ({error}); a block may outlive its timer");
        }
        let mut protected_ports = Vec::new();
        for port in 1..64u32 {
            let mut status = EvtchnStatus {
                dom: DOMID_SELF,
                port,
                ..EvtchnStatus::default()
            };
            let result = hypercalls::event_channel_op(&mut status);
            if result == 0 && status.status != 0 {
                protected_ports.push(port);
            }
        }
        Ok(Fuzzer {
            random: Random(SplitMix64::new(seed)),
            nr_pages,
            max_mfn,
            root,
            shared_info_mfn: info.shared_info / PAGE_SIZE,
            kinds,
            real_tables,
            scratch_tables,
            pool_set,
            pool,
            own_data,
            own_addresses,
            protected_ports,
            own_ports: Vec::new(),
            arena_used: 0,
            nested: false,
            unimplemented_percent,
            blocking,
        })
    }

    // ----- frames -----

    /// What machine frame `mfn` is to the fuzzer.
    fn kind(&self, mfn: u64) -> Kind {
        if self.pool_set.binary_search(&mfn).is_ok() {
            return Kind::Pool;
        }
        if mfn == self.shared_info_mfn {
            // Not in the P2M, but written by the hypervisor and read by
            // the guest all the time.
            return Kind::OwnData;
        }
        if mfn > self.max_mfn {
            return Kind::Other;
        }
        let pfn = paging::mfn_to_pfn(mfn);
        if pfn < self.nr_pages && paging::pfn_to_mfn(pfn) == mfn {
            self.kinds[pfn as usize]
        } else {
            Kind::Other
        }
    }

    fn pool_frame(&mut self) -> u64 {
        let index = self.random.below(self.pool.len() as u64) as usize;
        self.pool[index]
    }

    /// Any interesting frame.
    fn any_frame(&mut self) -> u64 {
        let random = &mut self.random;
        match random.below(20) {
            0..=6 => self.pool_frame(),
            7 | 8 => self.random.pick(&self.real_tables),
            9 => self.random.pick(&self.scratch_tables),
            10 | 11 => self.random.pick(&self.own_data),
            12..=14 => self.random.below(self.max_mfn + 1),
            15 => self.random.below(0x800), // low memory: the hypervisor's image
            16 => self.max_mfn + 1 + self.random.below(16),
            17 => self
                .random
                .pick(&[1 << 40, (1 << 52) - 1, u64::MAX, 1 << 36]),
            18 => self.root,
            _ => self.random.next(),
        }
    }

    /// A frame for `purpose`: one whose kind the fuzzer survives there.
    fn frame(&mut self, purpose: Purpose) -> u64 {
        let mfn = self.any_frame();
        let allowed = match (purpose, self.kind(mfn & (ADDRESS_MASK >> 12))) {
            (Purpose::L1Entry | Purpose::Pin | Purpose::NewUserBaseptr | Purpose::Decrease, _) => {
                true
            }
            (Purpose::AnyEntry, kind) => kind != Kind::RealTable,
            (Purpose::Unpin, kind) => kind != Kind::ScratchTable,
            (Purpose::NewBaseptr, kind) => kind != Kind::Pool,
            (Purpose::ClearPage, kind) => kind != Kind::OwnData,
            (Purpose::MachphysUpdate, kind) => kind == Kind::Pool || kind == Kind::Other,
        };
        if allowed {
            mfn
        } else if purpose == Purpose::NewBaseptr {
            self.root
        } else {
            self.pool_frame()
        }
    }

    /// A page-table entry naming a frame suitable for `purpose`, with
    /// random flags; never a second writable mapping of its own memory.
    fn entry(&mut self, purpose: Purpose) -> u64 {
        let mfn = self.frame(purpose);
        let mut flags = match self.random.below(10) {
            0 => self.random.below(1 << 12),
            1 => 0,
            2 => PRESENT | WRITABLE | USER | SUPERPAGE,
            3 => PRESENT | USER,
            _ => PRESENT | WRITABLE | USER,
        };
        if self.random.chance(20) {
            flags |= ACCESSED | DIRTY;
        }
        if self.random.chance(15) {
            flags |= self
                .random
                .pick(&[1 << 63, 1 << 52, 0x7ff << 52, 1 << 51, 1 << 47]);
        }
        let value = ((mfn << 12) & ADDRESS_MASK) | flags;
        // The frame the entry really names, after truncation.
        let named = (value & ADDRESS_MASK) >> 12;
        if self.kind(named) == Kind::OwnData {
            value & !WRITABLE
        } else {
            value
        }
    }

    // ----- addresses -----

    /// Space for `length` bytes in the arena (8-byte aligned, sometimes
    /// not); restarts at the beginning when full.
    fn place(&mut self, length: u64) -> u64 {
        let misalign = if self.random.chance(5) {
            self.random.below(8)
        } else {
            0
        };
        if self.arena_used + length + 16 + AT_END_MAX > ARENA_SIZE {
            self.arena_used = 0;
        }
        let address = ARENA + self.arena_used + misalign;
        self.arena_used = (self.arena_used + length + misalign + 7) & !7;
        address
    }

    /// Space for `length` bytes that ends where the guard page begins (in
    /// the last `AT_END_MAX` bytes, which `place` leaves alone). Inside a
    /// multicall, whose entry array may sit there, an ordinary place.
    fn place_at_end(&mut self, length: u64) -> u64 {
        if self.nested {
            return self.place(length);
        }
        ARENA + ARENA_SIZE - length.min(AT_END_MAX)
    }

    /// An address no call can read or write: nothing is mapped there, it is
    /// the hypervisor's (not the M2P, which guests may read), or it is not
    /// an address at all.
    fn unreadable(&mut self) -> u64 {
        let random = &mut self.random;
        match random.below(10) {
            0 => 0,
            1 => random.below(0x1000),
            2 => 0xffff_8040_0000_0000 + (random.next() % 0x7c0_0000_0000),
            3 => 0x0000_8000_0000_0000 + (random.next() % (1 << 47)),
            4 => 0x7fff_ffff_f000 + random.below(0x1000), // end of the lower half
            5 => ARENA + ARENA_SIZE + random.below(PAGE_SIZE), // the guard page
            6 => u64::MAX - random.below(64),             // wraps around
            7 => random.below(1 << 47) & !0xfff,          // lower half: never mapped
            8 => 0xffff_87ff_ffff_ffff - random.below(64),
            _ => HYPERVISOR_VIRT_START + 0x40_0000_0000 + random.below(1 << 30),
        }
    }

    /// An address that may be readable, holding whatever is there: for
    /// calls whose misreading does no harm.
    fn readable(&mut self) -> u64 {
        match self.random.below(4) {
            0 => {
                let table = self.random.pick(&self.real_tables);
                paging::physmap_address(paging::mfn_to_pfn(table)) + self.random.below(4096)
            }
            1 => MACH2PHYS_VIRT_START + self.random.below(1 << 20) * 8,
            2 => SCRATCH + self.random.below(2 << 20),
            _ => {
                let slot = self.random.below(FREE_SLOTS.count() as u64) + FREE_SLOTS.start();
                slot_address(slot) + (self.random.next() % (1 << 39))
            }
        }
    }

    /// A pointer for a call whose structure is written at the returned
    /// address when it is in the arena (`junk_safe`: a misread does no harm).
    fn pointer(&mut self, length: u64, junk_safe: bool) -> u64 {
        match self.random.below(10) {
            0..=6 => self.place(length),
            7 => {
                let short = self.random.below(length.max(1));
                self.place_at_end(length - short)
            }
            8 if junk_safe => self.readable(),
            _ => self.unreadable(),
        }
    }

    fn in_arena(address: u64, length: u64) -> bool {
        address >= ARENA && address.saturating_add(length) <= ARENA + ARENA_SIZE
    }

    /// Writes `bytes` at `address` if all of it lies in the arena (and as
    /// much as fits otherwise).
    fn write_bytes(address: u64, bytes: &[u8]) {
        let Some(arena) = ARENA_PAGES_MAPPED.get() else {
            return;
        };
        for (offset, &byte) in bytes.iter().enumerate() {
            let at = address.wrapping_add(offset as u64);
            if Self::in_arena(at, 1) {
                arena.write(at, &[byte]);
            }
        }
    }

    fn write_words(address: u64, words: &[u64]) {
        for (index, word) in words.iter().enumerate() {
            Self::write_bytes(address.wrapping_add(index as u64 * 8), &word.to_le_bytes());
        }
    }

    fn read_word(address: u64) -> Option<u64> {
        ARENA_PAGES_MAPPED.get()?.read_u64(address)
    }

    // ----- ports -----

    fn port(&mut self, closing: bool) -> u32 {
        let port = match self.random.below(8) {
            0 | 1 if !self.own_ports.is_empty() => self.random.pick(&self.own_ports),
            2 if !self.protected_ports.is_empty() => self.random.pick(&self.protected_ports),
            3 => self.random.pick(&[0, 4095, 4096, u32::MAX, 1 << 31]),
            _ => self.random.below(128) as u32,
        };
        if closing && self.protected_ports.contains(&port) {
            4096
        } else {
            port
        }
    }

    fn domain_id(&mut self) -> u64 {
        self.random
            .pick(&[u64::from(DOMID_SELF), 0, 1, 2, 7, 0x7ff1, 0xffff, 0x7ff5])
    }

    // ----- calls -----

    /// Draws the next call. `depth` 1 is an entry of a multicall.
    fn generate(&mut self, depth: u32) -> Call {
        if depth == 0 && self.random.chance(self.unimplemented_percent) {
            let number = loop {
                let number = self.random.below(64);
                if !IMPLEMENTED.iter().any(|&(known, _)| known as u64 == number)
                    && !UNSAFE_WHEN_IMPLEMENTED.contains(&number)
                {
                    break number;
                }
            };
            let arguments = core::array::from_fn(|_| self.random.word());
            return Call {
                number,
                arguments,
                label: "not implemented",
                buffer: None,
                special: Special::None,
                after: After::Nothing,
            };
        }
        let total: u64 = IMPLEMENTED.iter().map(|&(_, weight)| weight).sum();
        let mut draw = self.random.below(total);
        let mut chosen = Hypercall::MmuUpdate;
        for &(call, weight) in &IMPLEMENTED {
            if draw < weight {
                chosen = call;
                break;
            }
            draw -= weight;
        }
        match chosen {
            Hypercall::MmuUpdate => self.mmu_update(),
            Hypercall::MmuextOp => self.mmuext_op(),
            Hypercall::UpdateVaMapping => self.update_va_mapping(),
            Hypercall::MemoryOp => self.memory_op(depth),
            Hypercall::Multicall if depth == 0 => self.multicall(),
            Hypercall::EventChannelOp => self.event_channel_op(depth),
            Hypercall::SchedOp => self.sched_op(depth),
            Hypercall::XenVersion => {
                let command = self.random.pick(&[0, 1, 2, 3, 4, 5, 6, 7, 99]);
                let buffer = self.pointer(1024, true);
                Call::new(chosen, [command, buffer, 0, 0, 0], "xen_version")
            }
            Hypercall::ConsoleIo => self.console_io(),
            Hypercall::SetTrapTable => self.set_trap_table(),
            Hypercall::SetCallbacks => {
                let arguments = [
                    self.code_address(),
                    self.code_address(),
                    self.code_address(),
                ];
                Call::new(
                    chosen,
                    [arguments[0], arguments[1], arguments[2], 0, 0],
                    "callbacks",
                )
                .then(After::RestoreHandlers)
            }
            Hypercall::CallbackOp => self.callback_op(),
            Hypercall::StackSwitch => {
                let (segment, stack) = (self.random.word(), self.code_address());
                Call::new(chosen, [segment, stack, 0, 0, 0], "stack")
            }
            Hypercall::SetTimerOp => {
                let now = time::system_time_ns();
                let deadline = match self.random.below(4) {
                    0 => 0,
                    1 => now + self.random.below(2_000_000),
                    2 => now.saturating_sub(self.random.below(1 << 30)),
                    _ => self.random.word(),
                };
                Call::new(chosen, [deadline, 0, 0, 0, 0], "timer")
            }
            Hypercall::Iret if depth == 0 => self.iret(),
            Hypercall::Sysctl | Hypercall::Domctl => {
                let buffer = self.pointer(256, true);
                let words: [u64; 32] = core::array::from_fn(|index| match index {
                    0 => self.random.below(64) | (self.random.word() << 32),
                    _ => self.random.word(),
                });
                Self::write_words(buffer, &words);
                Call::new(chosen, [buffer, 0, 0, 0, 0], "control").with_buffer(buffer, 256)
            }
            // Not inside a multicall: yield instead.
            _ => Call::new(Hypercall::SchedOp, [0, 0, 0, 0, 0], "yield"),
        }
    }

    /// An address a handler or stack pointer might be given.
    fn code_address(&mut self) -> u64 {
        match self.random.below(5) {
            0 => run as *const () as u64,
            1 => self.unreadable(),
            2 => HYPERVISOR_VIRT_START + self.random.below(1 << 40),
            _ => self.random.word(),
        }
    }

    /// A batch array: `written` entries of `size` bytes from `make`, and
    /// the count to pass (more than written only when the array ends at
    /// the guard page, so the excess cannot be read).
    fn batch(
        &mut self,
        size: u64,
        limit: u64,
        mut make: impl FnMut(&mut Self, u64),
    ) -> (u64, u64, u64) {
        let written = self.random.below(limit) + 1;
        let overrun = !self.nested && self.random.chance(8);
        let length = written * size;
        let address = if overrun {
            self.place_at_end(length)
        } else {
            match self.random.below(12) {
                0 => return (self.unreadable(), self.random.count(), 0),
                _ => self.place(length),
            }
        };
        for index in 0..written {
            make(self, address + index * size);
        }
        let count = if overrun {
            written + 1 + self.random.below(5000)
        } else if self.random.chance(5) {
            self.random.below(written + 1)
        } else {
            written
        };
        (address, count, length)
    }

    fn mmu_update(&mut self) -> Call {
        let (requests, count, length) = self.batch(16, 16, |fuzzer, at| {
            let (pointer, value) = fuzzer.mmu_request();
            Self::write_words(at, &[pointer, value]);
        });
        let done = self.done_pointer();
        let foreign = self.foreign_domain();
        Call::new(
            Hypercall::MmuUpdate,
            [requests, count, done, foreign, 0],
            "mmu_update",
        )
        .with_buffer(requests, length)
    }

    /// One `mmu_update` request: (ptr with its kind bits, val).
    fn mmu_request(&mut self) -> (u64, u64) {
        let kind = self.random.pick(&[0, 0, 0, 0, 2, 1, 3]);
        if kind == 1 {
            let mfn = self.frame(Purpose::MachphysUpdate);
            return ((mfn << 12) | 1, self.random.word());
        }
        let index = self.random.below(512);
        let (table, value) = match self.random.below(20) {
            0..=4 => (self.scratch_tables[2], self.entry(Purpose::L1Entry)),
            5 | 6 => (self.scratch_tables[1], self.entry(Purpose::AnyEntry)),
            7 => (self.scratch_tables[0], self.entry(Purpose::AnyEntry)),
            8..=10 => (self.pool_frame(), self.entry(Purpose::AnyEntry)),
            11 | 12 => {
                // An empty slot of the real L4, or one of the hypervisor's.
                let slot = if self.random.chance(50) {
                    self.random.below(FREE_SLOTS.count() as u64) + FREE_SLOTS.start()
                } else {
                    self.random.below(16) + HYPERVISOR_SLOTS.start()
                };
                let entry = self.entry(Purpose::AnyEntry);
                return (((self.root << 12) + slot * 8) | kind, entry);
            }
            13..=15 => {
                // A real entry, rewritten as it is (perhaps with A/D bits).
                let table = self.random.pick(&self.real_tables);
                let mut value = paging::read_entry(table, index);
                if self.random.chance(30) {
                    value ^= ACCESSED;
                }
                let at_free_or_hypervisor_slot = table == self.root
                    && (FREE_SLOTS.contains(&index) || HYPERVISOR_SLOTS.contains(&index));
                if at_free_or_hypervisor_slot {
                    return (((self.root << 12) + index * 8) | kind, 0);
                }
                return (((table << 12) + index * 8) | (kind & 2), value);
            }
            16 => (
                self.random.pick(&self.own_data),
                self.entry(Purpose::AnyEntry),
            ),
            _ => (self.any_frame_not_own(), self.entry(Purpose::AnyEntry)),
        };
        let misaligned = if self.random.chance(3) { 4 } else { 0 };
        (
            (((table << 12) & ADDRESS_MASK) + index * 8 + misaligned) | kind,
            value,
        )
    }

    /// A frame that is not the fuzzer's (or not one at all).
    fn any_frame_not_own(&mut self) -> u64 {
        let mfn = self.any_frame();
        match self.kind(mfn & (ADDRESS_MASK >> 12)) {
            Kind::Other => mfn,
            _ => self.max_mfn + 1,
        }
    }

    fn done_pointer(&mut self) -> u64 {
        match self.random.below(6) {
            0 => 0,
            1 => self.readable(),
            2 => self.unreadable(),
            _ => self.place(8),
        }
    }

    fn foreign_domain(&mut self) -> u64 {
        if self.random.chance(85) {
            u64::from(DOMID_SELF)
        } else {
            self.domain_id()
        }
    }

    fn mmuext_op(&mut self) -> Call {
        let (operations, count, length) = self.batch(24, 8, |fuzzer, at| {
            let (command, first, second) = fuzzer.mmuext_request();
            // (A random bit in the padding after cmd.)
            let command = command | (fuzzer.random.below(2) << 40);
            Self::write_words(at, &[command, first, second]);
        });
        let done = self.done_pointer();
        let foreign = self.foreign_domain();
        Call::new(
            Hypercall::MmuextOp,
            [operations, count, done, foreign, 0],
            "mmuext_op",
        )
        .with_buffer(operations, length)
    }

    /// One `mmuext_op`: (cmd, arg1, arg2).
    fn mmuext_request(&mut self) -> (u64, u64, u64) {
        let command = self.random.pick(&[
            0, 1, 2, 3, 0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 15, 16, 16, 17, 19,
            20, 21, 99,
        ]);
        let first = match command {
            0..=3 => self.frame(Purpose::Pin),
            4 => self.frame(Purpose::Unpin),
            5 => self.frame(Purpose::NewBaseptr),
            15 if self.random.chance(20) => 0,
            15 => self.frame(Purpose::NewUserBaseptr),
            16 => self.frame(Purpose::ClearPage),
            7 | 9 | 11 => match self.random.below(3) {
                0 => self.unreadable(),
                1 => self.random.pick(&self.own_addresses),
                _ => self.random.word(),
            },
            // SET_LDT takes a linear address; COPY_PAGE would write a frame.
            17 => self.frame(Purpose::ClearPage),
            _ => self.random.word(),
        };
        let second = match command {
            8 | 9 => self.pointer(8, true),
            17 => self.frame(Purpose::Decrease),
            13 => self.random.count(),
            _ => self.random.word(),
        };
        (command, first, second)
    }

    fn update_va_mapping(&mut self) -> Call {
        let flags = self.random.pick(&[0, 1, 2, 4, 5, 6, 3, 7]) | (self.random.below(2) << 3);
        let (address, value, label) = match self.random.below(10) {
            0..=3 => (
                SCRATCH + self.random.below(512) * PAGE_SIZE,
                self.entry(Purpose::L1Entry),
                "scratch",
            ),
            4 => {
                let slot = self.random.below(FREE_SLOTS.count() as u64) + FREE_SLOTS.start();
                let address = slot_address(slot) + (self.random.next() % (1 << 39));
                (address, self.entry(Purpose::L1Entry), "free slot")
            }
            5 | 6 => {
                // Its own mapping, rewritten as it is.
                let address = self.random.pick(&self.own_addresses);
                let value = paging::l1_table(address)
                    .map_or(0, |l1| paging::read_entry(l1, (address >> 12) & 511));
                if value == 0 {
                    (self.unreadable(), 0, "unmapped")
                } else {
                    (address, value, "own, unchanged")
                }
            }
            7 => (
                HYPERVISOR_VIRT_START + self.random.below(1 << 43),
                self.entry(Purpose::L1Entry),
                "hypervisor",
            ),
            8 => (
                SCRATCH + self.random.below(1 << 30),
                self.entry(Purpose::L1Entry),
                "scratch L2",
            ),
            _ => {
                // Not the guard page, whose L1 (the arena's) exists: a
                // mapping there would make "unreadable" pointers readable.
                let mut address = self.unreadable();
                while (ARENA + ARENA_SIZE..ARENA + ARENA_SIZE + PAGE_SIZE).contains(&address) {
                    address = self.unreadable();
                }
                (address, self.entry(Purpose::L1Entry), "elsewhere")
            }
        };
        Call::new(
            Hypercall::UpdateVaMapping,
            [address, value, flags, 0, 0],
            label,
        )
    }

    fn memory_op(&mut self, depth: u32) -> Call {
        let command = self
            .random
            .pick(&[0, 1, 1, 6, 0, 3, 4, 9, 12, 2, 7, 11, 99]);
        let command = if depth > 0 && matches!(command, 0 | 6) {
            1
        } else {
            command
        };
        match command {
            0 | 1 | 6 => {
                // A reservation: extents in the arena (or not), domid mostly self.
                let asked = self.random.pick(&[0, 1, 2, 4, 8, 16, 64]);
                let extents = if command == 1 || self.random.chance(90) {
                    self.place(asked * 8 + 8)
                } else {
                    self.unreadable()
                };
                for index in 0..asked {
                    let value = match command {
                        1 => self.frame(Purpose::Decrease),
                        6 => self.nr_pages + self.random.below(1 << 20),
                        _ => self.random.word(),
                    };
                    Self::write_words(extents + index * 8, &[value]);
                }
                let domid = if self.random.chance(90) {
                    u64::from(DOMID_SELF)
                } else {
                    self.domain_id()
                };
                let order = if self.random.chance(90) {
                    0
                } else {
                    self.random.below(20)
                };
                let count = if self.random.chance(90) {
                    asked
                } else {
                    self.random.count()
                };
                let (reservation, count) = if count > asked && command != 1 {
                    // Never more frames than it can record.
                    (self.place(32), asked)
                } else {
                    (self.place(32), count)
                };
                Self::write_words(reservation, &[extents, count, order, domid]);
                let after = match command {
                    1 => After::Decrease {
                        array: extents,
                        written: asked,
                    },
                    _ => After::Increase {
                        array: extents,
                        written: asked,
                    },
                };
                let label = match command {
                    0 => "increase_reservation",
                    1 => "decrease_reservation",
                    _ => "populate_physmap",
                };
                Call::new(
                    Hypercall::MemoryOp,
                    [command | (order << 8), reservation, 0, 0, 0],
                    label,
                )
                .with_buffer(reservation, 32)
                .then(after)
            }
            3 | 4 => {
                let argument = self.pointer(8, true);
                let domid = self.domain_id();
                Self::write_words(argument, &[domid]);
                Call::new(
                    Hypercall::MemoryOp,
                    [command, argument, 0, 0, 0],
                    "reservation",
                )
            }
            9 => {
                let argument = self.pointer(16, true);
                let entries = self.random.count();
                let buffer = self.pointer(20, true);
                Self::write_words(argument, &[entries, buffer]);
                Call::new(Hypercall::MemoryOp, [9, argument, 0, 0, 0], "memory_map")
            }
            _ => {
                let argument = self.pointer(64, true);
                Call::new(
                    Hypercall::MemoryOp,
                    [command, argument, 0, 0, 0],
                    "memory_op",
                )
            }
        }
    }

    fn multicall(&mut self) -> Call {
        let written = self.random.below(12) + 1;
        let overrun = self.random.chance(8);
        let length = written * 64;
        let entries = if overrun {
            self.place_at_end(length)
        } else {
            self.place(length)
        };
        let mut restore = false;
        self.nested = true;
        for index in 0..written {
            // Entries are drawn before the array is written: each may
            // place its own buffers in the arena.
            let mut call = self.generate(1);
            restore |= matches!(call.after, After::RestoreHandlers);
            if let After::ClosePort { .. } | After::NewPort { .. } = call.after {
                // Their bookkeeping is skipped inside a batch: close only
                // ports nobody relies on.
                if call.number == Hypercall::EventChannelOp as u64 && call.arguments[0] == 3 {
                    call.arguments[1] = self.unreadable();
                }
            }
            let [a0, a1, a2, a3, a4] = call.arguments;
            let words = [
                call.number,
                self.random.word(),
                a0,
                a1,
                a2,
                a3,
                a4,
                self.random.word(),
            ];
            Self::write_words(entries + index * 64, &words);
        }
        self.nested = false;
        let count = if overrun {
            written + 1 + self.random.below(2000)
        } else {
            written
        };
        let after = if restore {
            After::RestoreHandlers
        } else {
            After::Nothing
        };
        Call::new(Hypercall::Multicall, [entries, count, 0, 0, 0], "multicall")
            .with_buffer(entries, length)
            .then(after)
    }

    fn event_channel_op(&mut self, depth: u32) -> Call {
        // Not EVTCHNOP_reset (10), which would close every port, the
        // console's too, once implemented.
        let command = self
            .random
            .pick(&[0, 1, 3, 4, 4, 5, 6, 6, 7, 8, 9, 3, 2, 11, 12, 13, 99]);
        let argument = self.pointer(24, command != 3);
        let mut after = After::Nothing;
        let words: [u64; 3] = match command {
            // alloc_unbound { dom, remote_dom: u16; port: u32 }
            6 => {
                let (dom, remote) = (self.domain_id(), self.domain_id());
                after = After::NewPort { at: argument + 4 };
                [dom | (remote << 16), 0, 0]
            }
            // bind_interdomain { remote_dom: u16, pad; remote_port, local_port: u32 }
            0 => {
                let remote = self.domain_id();
                let port = u64::from(self.port(false));
                after = After::NewPort { at: argument + 8 };
                [remote | (port << 32), 0, 0]
            }
            // bind_virq { virq, vcpu, port: u32 }
            1 => {
                let virq = self.random.pick(&[0, 1, 2, 3, 4, 8, 11, 16, 23, 24, 1000]);
                let vcpu = self.random.pick(&[0, 0, 0, 1, 31, 0xffff_ffff]);
                after = After::NewPort { at: argument + 8 };
                [virq | (vcpu << 32), 0, 0]
            }
            // bind_ipi { vcpu, port: u32 }
            7 => {
                let vcpu = self.random.pick(&[0, 0, 1, 0xffff_ffff]);
                after = After::NewPort { at: argument + 4 };
                [vcpu, 0, 0]
            }
            // close, send, unmask { port: u32 }
            3 | 4 | 9 => {
                let port = self.port(command == 3);
                if command == 3 {
                    after = After::ClosePort { port };
                }
                [u64::from(port) | (self.random.word() << 32), 0, 0]
            }
            // status { dom: u16, pad; port, status, vcpu: u32; detail }
            5 => [self.domain_id() | (u64::from(self.port(false)) << 32), 0, 0],
            // bind_vcpu { port, vcpu: u32 }
            8 => [
                u64::from(self.port(false)) | (self.random.pick(&[0, 1, 0xffff_ffff]) << 32),
                0,
                0,
            ],
            _ => [self.random.word(), self.random.word(), self.random.word()],
        };
        if depth > 0 {
            after = match after {
                After::ClosePort { .. } => after,
                _ => After::Nothing,
            };
        }
        if command == 3 && !Self::in_arena(argument, 4) {
            // An unreadable argument closes nothing.
            after = After::Nothing;
        }
        if !Self::in_arena(argument, 24) {
            if let After::NewPort { .. } = after {
                after = After::Nothing;
            }
        }
        Self::write_words(argument, &words);
        Call::new(
            Hypercall::EventChannelOp,
            [command, argument, 0, 0, 0],
            "event_channel_op",
        )
        .with_buffer(argument, 24)
        .then(after)
    }

    fn sched_op(&mut self, depth: u32) -> Call {
        // Not SCHEDOP_watchdog (6): a watchdog nobody feeds ends the domain.
        let command = self.random.pick(&[0, 0, 0, 1, 2, 2, 3, 3, 4, 5, 7, 99]);
        let command = if !self.blocking && matches!(command, 1 | 3) {
            0
        } else {
            command
        };
        match command {
            // Block: a timer ends it (never inside a multicall, where the
            // timer could not be armed just before).
            1 if depth == 0 => {
                let mut call = Call::new(Hypercall::SchedOp, [1, 0, 0, 0, 0], "block");
                call.special = Special::Block {
                    nanoseconds: self.random.below(1_000_000),
                };
                call
            }
            // Shutdown: only reasons it must refuse, or nothing to read.
            // Inside a multicall only the latter: a later entry may place
            // its own buffer over the reason (0 is a poweroff).
            2 => {
                let argument = if depth == 0 && self.random.chance(70) {
                    let argument = self.place(8);
                    let reason = match self.random.below(3) {
                        0 => FIRST_INVALID_SHUTDOWN_REASON + self.random.below(10),
                        1 => u64::from(u32::MAX),
                        _ => FIRST_INVALID_SHUTDOWN_REASON + self.random.below(1 << 31),
                    };
                    Self::write_words(argument, &[reason]);
                    argument
                } else {
                    self.unreadable()
                };
                Call::new(
                    Hypercall::SchedOp,
                    [2, argument, 0, 0, 0],
                    "shutdown (invalid)",
                )
            }
            // Poll: always with a deadline close ahead, or nothing to read;
            // never inside a multicall, where a later entry may place its
            // own buffer over the request and leave a poll of no port with
            // no timeout, which sleeps until the domain is destroyed.
            3 if depth == 0 => {
                let argument = if self.random.chance(70) {
                    let argument = self.place(24);
                    let nr_ports = self.random.pick(&[0, 1, 2, 16, 17, 1000]);
                    let ports = if self.random.chance(70) {
                        let ports = self.place(nr_ports.min(32) * 4 + 4);
                        for index in 0..nr_ports.min(32) {
                            let port = u64::from(self.port(false));
                            Self::write_bytes(ports + index * 4, &(port as u32).to_le_bytes());
                        }
                        ports
                    } else {
                        self.unreadable()
                    };
                    let deadline = time::system_time_ns() + self.random.below(1_000_000) + 1;
                    Self::write_words(argument, &[ports, nr_ports, deadline]);
                    argument
                } else {
                    self.unreadable()
                };
                Call::new(Hypercall::SchedOp, [3, argument, 0, 0, 0], "poll")
            }
            1 | 3 => Call::new(Hypercall::SchedOp, [0, 0, 0, 0, 0], "yield"),
            _ => {
                let argument = self.pointer(16, false);
                Self::write_words(
                    argument,
                    &[
                        self.random.word() | FIRST_INVALID_SHUTDOWN_REASON << 32,
                        self.random.word(),
                    ],
                );
                Call::new(Hypercall::SchedOp, [command, argument, 0, 0, 0], "sched_op")
            }
        }
    }

    fn console_io(&mut self) -> Call {
        if self.random.chance(20) {
            // Reading is for the control domain.
            let buffer = self.pointer(64, true);
            return Call::new(
                Hypercall::ConsoleIo,
                [1, self.random.count(), buffer, 0, 0],
                "read",
            );
        }
        if self.random.chance(40) {
            let count = self.random.count();
            let buffer = self.unreadable();
            return Call::new(
                Hypercall::ConsoleIo,
                [0, count, buffer, 0, 0],
                "write nowhere",
            );
        }
        // A short line of letters (never text the test harness looks for).
        let length = self.random.below(24) + 2;
        let at_end = !self.nested && self.random.chance(20);
        let buffer = if at_end {
            self.place_at_end(length)
        } else {
            self.place(length)
        };
        let mut text = [0u8; 26];
        for byte in text.iter_mut().take(length as usize - 1) {
            *byte = b'a' + self.random.below(26) as u8;
        }
        text[length as usize - 1] = b'\n';
        Self::write_bytes(buffer, &text[..length as usize]);
        // Past the end of the text only into the guard page: a chunk that
        // cannot be read in full is not printed at all.
        let count = if at_end && self.random.chance(50) {
            length + self.random.below(300)
        } else {
            length
        };
        Call::new(Hypercall::ConsoleIo, [0, count, buffer, 0, 0], "write")
            .with_buffer(buffer, count)
    }

    fn set_trap_table(&mut self) -> Call {
        if self.random.chance(15) {
            let table = if self.random.chance(50) {
                0
            } else {
                self.readable()
            };
            return Call::new(Hypercall::SetTrapTable, [table, 0, 0, 0, 0], "trap table")
                .then(After::RestoreHandlers);
        }
        let (table, _, length) = self.batch(16, 20, |fuzzer, at| {
            let vector = fuzzer.random.below(256);
            let flags = fuzzer.random.below(256);
            let selector = fuzzer.random.pick(&[0xe033, 0xe030, 0, 0x10, 0xffff]);
            let address = fuzzer.code_address();
            Self::write_words(at, &[vector | (flags << 8) | (selector << 16), address]);
        });
        if self.random.chance(60) && Self::in_arena(table + length, 16) {
            // Terminated.
            Self::write_words(table + length, &[0, 0]);
        }
        Call::new(Hypercall::SetTrapTable, [table, 0, 0, 0, 0], "trap table")
            .with_buffer(table, length)
            .then(After::RestoreHandlers)
    }

    fn callback_op(&mut self) -> Call {
        let command = self.random.pick(&[0, 0, 1, 2, 99]);
        let argument = self.pointer(16, true);
        let kind = self.random.pick(&[0, 1, 2, 3, 4, 5, 7, 8, 0xffff]);
        let flags = self.random.pick(&[0, 1, 2, 0xffff]);
        let address = self.code_address();
        Self::write_words(argument, &[kind | (flags << 16), address]);
        Call::new(
            Hypercall::CallbackOp,
            [command, argument, 0, 0, 0],
            "callback_op",
        )
        .with_buffer(argument, 16)
        .then(After::RestoreHandlers)
    }

    fn iret(&mut self) -> Call {
        // Neither single-stepping nor alignment checks in the guest's own
        // code afterwards: those would crash it, rightly.
        let rflags = self.random.next() & !(RFLAGS_TRAP | RFLAGS_ALIGNMENT_CHECK);
        let junk = self.random.next() & !VGCF_IN_SYSCALL;
        let flags = self.random.pick(&[0, VGCF_IN_SYSCALL, junk]);
        // Kernel mode: RPL 0 (RPL 3 means guest user mode, which this
        // guest has not set up: that iret would crash it, rightly).
        let cs_slot = (FLAT_RING3_CS64 & !3) | (self.random.next() << 16);
        let mut call = Call::new(Hypercall::Iret, [rflags, flags, cs_slot, 0, 0], "iret");
        call.special = Special::Iret {
            rflags,
            flags,
            cs_slot,
        };
        call
    }

    // ----- making the calls -----

    fn execute(&mut self, call: &Call) -> i64 {
        match call.special {
            Special::None => {
                // The generator drew this call so that nothing it
                // may do reaches memory, tables or handlers the guest
                // relies on (see the module comment); what it may break is
                // the fuzzer's playground, or, if the hypervisor is wrong,
                // the guest, which is what the fuzzer is looking for.
                raw::hypercall(call.number, call.arguments)
            }
            Special::Block { nanoseconds } => {
                wrappers::set_timer_op(time::system_time_ns() + nanoseconds + 1);
                let result = wrappers::sched_block();
                events::set_mask(true);
                result
            }
            Special::Iret {
                rflags,
                flags,
                cs_slot,
            } => {
                let rax = self.random.next() >> 1;
                // The frame lands in the stub itself, on the same stack,
                // with the trap flag clear.
                let returned = raw::iret_to_self(rflags, flags, rax, cs_slot);
                events::set_mask(true);
                if returned == rax {
                    0
                } else {
                    -1
                }
            }
        }
    }

    fn after(&mut self, call: &Call, result: i64) {
        match call.after {
            After::Nothing => {}
            After::RestoreHandlers => restore_handlers(),
            After::Increase { array, written } if result > 0 => {
                // The bits of `cmd` above the sub-op are a continuation's
                // start extent (Xen's MEMOP_EXTENT_SHIFT): a forged one
                // beyond the count comes back as the result. Only the
                // slots this call wrote can hold frames.
                for index in 0..(result as u64).min(written) {
                    if let Some(mfn) = Self::read_word(array + index * 8) {
                        if let Err(position) = self.pool_set.binary_search(&mfn) {
                            self.pool_set.insert(position, mfn);
                        }
                        self.pool.push(mfn);
                    }
                }
            }
            After::Decrease { array, written } if result > 0 => {
                // As for Increase: never beyond the slots written.
                for index in 0..(result as u64).min(written) {
                    if let Some(mfn) = Self::read_word(array + index * 8) {
                        // A frame given back leaves the list to draw from
                        // (unless that would empty it); it stays in
                        // `pool_set`, so it is never taken for a frame
                        // that could be a root.
                        if self.pool.len() > 1 {
                            if let Some(position) = self.pool.iter().position(|&frame| frame == mfn)
                            {
                                self.pool.swap_remove(position);
                            }
                        }
                    }
                }
            }
            After::NewPort { at } if result == 0 => {
                if let Some(word) = Self::read_word(at) {
                    let port = word as u32;
                    if self.own_ports.len() < 64 && !self.protected_ports.contains(&port) {
                        self.own_ports.push(port);
                    }
                }
            }
            After::ClosePort { port } if result == 0 => {
                self.own_ports.retain(|&own| own != port);
            }
            _ => {}
        }
        if self.own_ports.len() >= 48 {
            // Keep room in the port table: close one of ours.
            let port = self.own_ports.swap_remove(0);
            let _ = events::close(port);
        }
    }
}

/// Installs the guest's own trap table and callbacks again.
fn restore_handlers() {
    traps::clear();
    traps::install();
    // The event callback is the guest kernel's upcall entry; the failsafe
    // and syscall callbacks are unused (0 clears them).
    raw::set_callbacks(traps::upcall_entry(), 0, 0);
}
