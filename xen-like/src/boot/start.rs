//! Bringing the machine up: from the boot loader's hand-over to Dom0.
//!
//! The boot code (`arch::x86_64::boot`) enters `hypervisor_start` (in
//! `main.rs`) in the high half with the multiboot magic and information,
//! which calls [`start`]. From there, in order: the console, the boot
//! information and command line, memory (frame allocator, direct map,
//! heap), the CPU's tables and entry points, time, and finally Dom0, built
//! from the first boot module and entered in ring 3. The hypervisor then
//! only runs when a guest enters it (hypercall, exception, interrupt).

use crate::arch::x86_64::{apic, boot as early, cpu, entry, percpu, pit, power};
use crate::boot::cmdline;
use crate::{boot, console, domain, hypercall, mm, sched, time};
use alloc::boxed::Box;
use core::fmt::Write;

/// The hypervisor's name and version, as the banner and `xl info` show it.
pub const BANNER: &str = "xen-like 0.1.0";

extern "C" {
    static __image_start_phys: u8;
    static __image_end_phys: u8;
}

/// The hypervisor's Rust entry point (`hypervisor_start` in `main.rs` calls
/// it), with the multiboot magic and the physical address of the boot
/// information. Runs the start of day as phases, one function each, in an
/// order where each needs only what the ones before set up.
pub fn start(magic: u32, info: u32) -> ! {
    console::init();
    mm::paging::adopt_boot_tables();
    log::info!("{BANNER}: Xen 4.17 PV64 interface, x86_64");
    let boot = read_boot_information(magic, info);
    let line = read_command_line(&boot);
    set_up_memory(&boot);
    set_up_cpu();
    set_up_time_and_scheduler();
    let dom0 = build_dom0(&boot, &line);
    release_boot_memory(&boot);
    start_dom0(dom0)
}

/// Phase 1: what the boot loader handed over (multiboot1 or 2): the
/// memory map, the modules, the command line. Read through the boot
/// code's direct map of the first 4 GiB, where loaders put it. Without it
/// nothing can go on: a hypervisor panic.
fn read_boot_information(magic: u32, info: u32) -> boot::BootInfo {
    match boot::read(magic, u64::from(info), |address| {
        mm::physical_pointer::<u8>(address)
    }) {
        Ok(boot) => boot,
        Err(error) => panic!("cannot read the boot information: {error:?}"),
    }
}

/// Phase 2: the hypervisor's command line, parsed; the console takes its
/// log levels from it at once, and every option it did not understand is
/// reported (and ignored), as Xen does.
fn read_command_line(boot: &boot::BootInfo) -> cmdline::CommandLine<'_> {
    // Both multiboot loaders put the image's own name first, as Xen's
    // cmdline_cook() expects: the options are what follows it.
    let options = boot
        .command_line
        .split_once(' ')
        .map_or("", |(_, rest)| rest);
    let line = cmdline::parse(options);
    hypercall::set_command_line(options);
    console::configure(line.loglvl, line.guest_loglvl, line.serial_console);
    crate::grant::configure(line.gnttab_max_frames, line.gnttab_max_maptrack_frames);
    log::info!("booted by {}, command line: \"{options}\"", boot.protocol);
    for problem in &line.problems {
        log::warn!(
            "command line: '{}' {}: ignored",
            problem.option,
            problem.reason
        );
    }
    if line.dropped_problems > 0 {
        log::warn!(
            "command line: {} more unknown options ignored",
            line.dropped_problems
        );
    }
    if boot.dropped > 0 {
        log::warn!(
            "boot information: {} memory regions or modules did not fit and were ignored",
            boot.dropped
        );
    }
    line
}

/// Phase 3: memory. The frame allocator gets every RAM frame but the
/// hypervisor's image, the boot information and the modules; the direct
/// map grows to cover all RAM; the heap takes its frames; the frame table
/// and the M2P table cover every machine frame, and the frame table learns
/// the hypervisor's L4 slots (which every guest L4 must copy).
fn set_up_memory(boot: &boot::BootInfo) {
    // The linker script defines these symbols; only their addresses
    // (absolute values: physical addresses) are used.
    let image = (
        core::ptr::addr_of!(__image_start_phys) as u64,
        core::ptr::addr_of!(__image_end_phys) as u64,
    );
    let ram_end = mm::frames::init(boot, image);
    mm::paging::map_all_ram(ram_end);
    // The heap grows with the machine: the domains' lists of their frames
    // live there (`domain::HEAP_BYTES_PER_FRAME`).
    let heap_size = mm::heap::size_for(
        mm::frames::total_count(),
        domain::HEAP_BYTES_PER_FRAME as u64,
    );
    let Some(heap) = mm::frames::allocate_contiguous(heap_size / mm::PAGE_SIZE) else {
        panic!("no room for the {} KiB heap", heap_size >> 10);
    };
    // SAFETY: the frames were just taken from the allocator and are never
    // returned; this is the only call.
    unsafe { mm::heap::init(mm::physical_to_virtual(heap * mm::PAGE_SIZE), heap_size) };
    let frame_count = mm::frames::frame_count();
    mm::frame_table::init(frame_count);
    mm::m2p::init(frame_count);
    // What guests' grant tables and maptracks must leave free of the heap.
    mm::heap::set_reserve(domain::heap_reserve(mm::frames::total_count()));
    mm::frame_table::with(|table, _| table.set_hypervisor_slots(mm::paging::hypervisor_slots()));
    log::info!(
        "memory: {} MiB usable, {} MiB free after the hypervisor's own use",
        mm::frames::total_count() >> 8,
        mm::frames::free_count() >> 8
    );
}

/// Phase 4: this CPU. Its per-CPU block, its GDT, TSS and IDT and its
/// entry points (`syscall`), all on the boot stack, which from now on is
/// its hypervisor stack; then the boot code's identity map goes (nothing
/// runs from low addresses any more), the legacy PICs are silenced and the
/// local APIC takes over interrupts.
fn set_up_cpu() {
    let stack_top = early::boot_stack_top_address();
    percpu::init_boot_cpu(stack_top);
    cpu::init_boot_cpu(stack_top);
    mm::paging::drop_identity_map();
    pit::silence_legacy_pics();
    apic::init(mm::physical_to_virtual);
}

/// Phase 5: time (the TSC's rate, the one-shot timer) and then the credit
/// scheduler, whose periods are measured in TSC cycles.
fn set_up_time_and_scheduler() {
    time::init();
    sched::init();
    log::info!(
        "scheduler: credit (weights and caps), 30 ms periods, one-shot timer (at least every {} ms)",
        1000 / time::TICKS_PER_SECOND
    );
}

/// Phase 6: Dom0, built from the first boot module (its kernel) and the
/// second (its ramdisk) with `dom0_mem` of memory. A machine without a
/// Dom0 has nothing to do: a build failure stops it with a sentence that
/// says what to change.
fn build_dom0(boot: &boot::BootInfo, line: &cmdline::CommandLine) -> Box<domain::Domain> {
    let memory = line
        .dom0_mem
        .unwrap_or(domain::dom0_builder::DEFAULT_DOM0_MEMORY);
    match domain::dom0_builder::build(boot.modules.first(), boot.modules.get(1), memory) {
        Ok(dom0) => dom0,
        Err(error) => {
            log::error!("cannot build Dom0: {}", describe_build_error(&error));
            power::fail(power::FailureCode::HypervisorFatal);
        }
    }
}

/// Phase 7: the modules were copied into Dom0, and the boot information
/// was read: their frames go back to the allocator.
fn release_boot_memory(boot: &boot::BootInfo) {
    for module in &boot.modules {
        mm::frame_table::release_boot_range(module.start, module.end);
    }
    let (start, end) = boot.info_range;
    mm::frame_table::release_boot_range(start, end);
}

/// Phase 8: Dom0 joins the domain table and the scheduler, becomes this
/// CPU's current domain, its root is loaded, and the CPU enters it in
/// ring 3. The hypervisor's boot is over: from here on it runs only when a
/// guest enters it.
fn start_dom0(dom0: Box<domain::Domain>) -> ! {
    // On the heap, not on this stack, whose top the guest's frame takes.
    let first_frame = Box::new(dom0.vcpu.saved);
    domain::insert(dom0);
    if let Err(error) = sched::add_domain(0) {
        // The scheduler is empty at boot: this is a hypervisor bug.
        panic!("Dom0 cannot be scheduled: {}", error.description());
    }
    domain::set_current(Some(0));
    log::info!("starting Dom0; {} MiB free", mm::frames::free_count() >> 8);
    // Dom0's page tables map the hypervisor's slots like the idle table
    // (the builder copied them), so switching keeps this code mapped.
    domain::with(0, |dom0| mm::paging::load_guest_root(dom0));
    entry::return_to_guest(&first_frame)
}

fn describe_build_error(error: &domain::dom0_builder::BuildError) -> heapless::String<256> {
    use domain::dom0_builder::BuildError;
    use hypercall_abi::pv_layout::LayoutError;
    let mut text = heapless::String::new();
    let _ = match error {
        BuildError::NoKernel => write!(
            text,
            "no boot module: give Dom0's kernel as the first module"
        ),
        BuildError::BadImage(why) => write!(text, "the first module {why}"),
        BuildError::Layout(LayoutError::NotEnoughMemory { needed_pages }) => write!(
            text,
            "Dom0's start-of-day region needs {} MiB; raise dom0_mem=",
            (needed_pages * mm::PAGE_SIZE).div_ceil(1 << 20)
        ),
        BuildError::Layout(LayoutError::AddressSpaceOverflow) => {
            write!(
                text,
                "the image's addresses leave no room for the start-of-day region"
            )
        }
        BuildError::Outside(what, outside) => write!(
            text,
            "Dom0's {what} ({} bytes at pseudo-physical {:#x}) does not fit in its memory",
            outside.length, outside.address
        ),
        BuildError::Refused(reason) => {
            write!(text, "the frame table refused Dom0's page tables: {reason}")
        }
        BuildError::OutOfMemory { wanted, free } => write!(
            text,
            "dom0_mem asks for {} MiB but only {} MiB are free",
            wanted >> 8,
            free >> 8
        ),
    };
    text
}
