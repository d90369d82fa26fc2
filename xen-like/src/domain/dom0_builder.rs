//! Building Dom0 from the first boot module.
//!
//! The hypervisor builds only Dom0; every other domain is built by Dom0's
//! toolstack. Dom0's image is read like any Xen PV64 kernel (ELF + Xen
//! notes, see `hypercall_abi::pv_image`), laid out by Xen's start-of-day rules
//! (`hypercall_abi::pv_layout`), and started with:
//!
//! - its memory: `dom0_mem` worth of machine frames, listed in its P2M;
//! - the kernel's segments copied in, the ramdisk (second module) after it;
//! - a start_info page (address in `rsi`) saying where everything is;
//! - initial page tables, in its own frames, mapping the whole bootstrap
//!   region; the page-table frames themselves are mapped read-only;
//! - the hypercall page filled, if the image asked for one;
//! - a shared info page, owned by the hypervisor;
//! - a vCPU that enters at the image's entry point in ring 3.
//!
//! [`build`] runs these as phases, one function each, in this order:
//! [`read_image`], [`plan_layout`], [`allocate_memory`], [`load_image`],
//! [`write_start_info`], [`build_page_tables`], [`make_root`]. Every write
//! into Dom0's frames goes through `mm::new_domain_memory`, which checks it
//! lies inside Dom0's memory: this module holds no `unsafe`.

use super::{Domain, Vcpu};
use crate::arch::x86_64::frame::GuestFrame;
use crate::boot::Module;
use crate::mm::new_domain_memory::{NewDomainMemory, OutsideMemory};
use crate::mm::shared_page::SharedInfoFrame;
use crate::mm::{frame_table, frames, paging, PAGE_SIZE};
use alloc::boxed::Box;
use hypercall_abi::layout::{SIF_INITDOMAIN, SIF_PRIVILEGED};
use hypercall_abi::pv_image::PvImage;
use hypercall_abi::pv_layout::{self, Layout, LayoutError};

/// Dom0's domain ID.
const DOM0: u16 = 0;

/// Dom0's memory when `dom0_mem=` does not say.
pub const DEFAULT_DOM0_MEMORY: u64 = 64 << 20;

/// Why Dom0 could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The loader gave no first module.
    NoKernel,
    /// The image is not a usable PV kernel.
    BadImage(&'static str),
    /// The bootstrap region does not fit in Dom0's memory.
    Layout(LayoutError),
    /// Something the builder writes does not lie inside Dom0's memory (a
    /// builder bug, or an image the layout checks let through).
    Outside(&'static str, OutsideMemory),
    /// The frame table refused the initial page tables (a builder bug).
    Refused(&'static str),
    /// The machine has too few free frames.
    OutOfMemory {
        /// Pages asked for.
        wanted: u64,
        /// Pages free.
        free: u64,
    },
}

/// Builds Dom0 from its kernel (first boot module) and ramdisk (second),
/// with `memory` bytes of RAM, and returns it ready to run: its vCPU's
/// saved frame enters the kernel, its root is loaded by whoever starts it.
pub fn build(
    kernel: Option<&Module>,
    ramdisk: Option<&Module>,
    memory: u64,
) -> Result<Box<Domain>, BuildError> {
    let kernel = kernel.ok_or(BuildError::NoKernel)?;
    let (kernel_bytes, image) = read_image(kernel)?;
    let ramdisk_bytes = ramdisk.map(Module::bytes).unwrap_or(&[]);
    let nr_pages = memory / PAGE_SIZE;
    let layout = plan_layout(&image, ramdisk_bytes.len() as u64, nr_pages)?;
    let dom0_memory = allocate_memory(nr_pages)?;
    // The shared info page belongs to the domain (so that it may map it)
    // but is not part of its memory. The hypervisor writes it whenever it
    // likes, so it holds a general and a writable type reference for good
    // (frame-table invariant 6): the guest can never give it back nor make
    // it a page table.
    let shared_info = SharedInfoFrame::allocate(DOM0)
        .map_err(|_| BuildError::OutOfMemory { wanted: 1, free: 0 })?;
    load_image(&dom0_memory, &layout, &image, kernel_bytes, ramdisk_bytes)?;
    write_start_info(
        &dom0_memory,
        &layout,
        command_line(kernel),
        shared_info.mfn(),
        ramdisk_bytes.len() as u64,
    )?;
    // Events stay masked until the guest unmasks them, as in Xen.
    crate::domain::initialise_shared_info(shared_info.page());
    build_page_tables(&dom0_memory, &layout)?;
    let frames = dom0_memory.into_frames();
    let root_mfn = make_root(&layout, &frames)?;
    log::info!(
        "Dom0: {} MiB, kernel {:#x}..{:#x}, entry {:#x}, start_info {:#x}, {} page-table frames, ramdisk {} bytes",
        (nr_pages * PAGE_SIZE) >> 20,
        image.image_start,
        image.image_end,
        image.entry,
        layout.start_info,
        layout.nr_page_table_frames,
        ramdisk_bytes.len()
    );

    // As Xen's start of day: rsi points at start_info, rsp at the top of
    // the bootstrap stack.
    let mut saved = GuestFrame::new_guest(image.entry, layout.stack_top);
    saved.rsi = layout.start_info;
    let mut dom0 = Domain::new(DOM0, nr_pages, shared_info);
    dom0.privileged = true;
    dom0.pause_count = 0;
    dom0.frames = frames.into_iter().collect();
    dom0.vcpu = Vcpu::new(saved, true);
    dom0.kernel_root = root_mfn;
    Ok(Box::new(dom0))
}

/// Phase 1: the kernel module's bytes and what its ELF headers and Xen
/// notes say (entry point, segments, virtual base, hypercall page). An
/// image that is not a 64-bit PV kernel is [`BuildError::BadImage`].
fn read_image(kernel: &Module) -> Result<(&[u8], PvImage), BuildError> {
    let bytes = kernel.bytes();
    let image = PvImage::parse(bytes).map_err(|error| BuildError::BadImage(error.description()))?;
    Ok((bytes, image))
}

/// Phase 2: where everything goes in Dom0's virtual address space, by
/// Xen's start-of-day rules (`pv_layout::compute`): the image, then the
/// ramdisk, the P2M list, start_info, the page tables and the stack, all in
/// one region mapped from pseudo-physical frame 0 on. Fails when that
/// region does not fit in `nr_pages`.
fn plan_layout(image: &PvImage, ramdisk_size: u64, nr_pages: u64) -> Result<Layout, BuildError> {
    pv_layout::compute(&pv_layout::Request {
        virt_base: image.virt_base,
        image_end: image.image_end,
        ramdisk_size,
        nr_pages,
        extra_pages: 0,
    })
    .map_err(BuildError::Layout)
}

/// Phase 3: `nr_pages` machine frames for Dom0, zeroed, owned by Dom0 in
/// the frame table, with their M2P entries. Checks the free count first
/// (with one more frame for the shared info page) so that a `dom0_mem=`
/// too large for the machine gets a clear error.
fn allocate_memory(nr_pages: u64) -> Result<NewDomainMemory, BuildError> {
    let free = frames::free_count();
    if nr_pages + 1 > free {
        return Err(BuildError::OutOfMemory {
            wanted: nr_pages + 1,
            free,
        });
    }
    NewDomainMemory::allocate(DOM0, nr_pages).ok_or_else(|| BuildError::OutOfMemory {
        wanted: nr_pages,
        free: frames::free_count(),
    })
}

/// The pseudo-physical address of `address`, a virtual address inside the
/// bootstrap region (mapped linearly from pseudo-physical frame 0).
fn pseudo_physical(layout: &Layout, address: u64) -> u64 {
    layout.pfn_of(address) * PAGE_SIZE + address % PAGE_SIZE
}

/// Phase 4: copies into Dom0's memory what its kernel finds there at
/// start of day: the image's segments (the rest of each segment, up to its
/// memory size, is already zero: frames come zeroed), the ramdisk, the P2M
/// list (`mfn_list`: machine frame of each pseudo-physical frame, as 8-byte
/// entries) and, if the image asked for one, the hypercall page.
fn load_image(
    memory: &NewDomainMemory,
    layout: &Layout,
    image: &PvImage,
    kernel_bytes: &[u8],
    ramdisk_bytes: &[u8],
) -> Result<(), BuildError> {
    for segment in &image.segments {
        let start = segment.file_offset as usize;
        let contents = &kernel_bytes[start..start + segment.file_size as usize];
        memory
            .write(pseudo_physical(layout, segment.virtual_address), contents)
            .map_err(|outside| BuildError::Outside("kernel segment", outside))?;
    }
    memory
        .write(pseudo_physical(layout, layout.ramdisk_start), ramdisk_bytes)
        .map_err(|outside| BuildError::Outside("ramdisk", outside))?;
    let p2m_start = pseudo_physical(layout, layout.p2m_start);
    for (pfn, mfn) in memory.p2m().iter().enumerate() {
        memory
            .write(p2m_start + pfn as u64 * 8, &mfn.to_le_bytes())
            .map_err(|outside| BuildError::Outside("P2M list", outside))?;
    }
    if let Some(page) = image.hypercall_page {
        let mut stubs = [0u8; 4096];
        hypercall_abi::hypercall_page::fill(&mut stubs);
        memory
            .write(pseudo_physical(layout, page), &stubs)
            .map_err(|outside| BuildError::Outside("hypercall page", outside))?;
    }
    Ok(())
}

/// Dom0's command line: the kernel module's string is "name arguments...",
/// and the arguments are the command line, as with Xen's dom0 module.
fn command_line(kernel: &Module) -> &str {
    kernel
        .string
        .split_once(' ')
        .map_or("", |(_, rest)| rest.trim())
}

/// Phase 5: the start_info page (`pv_layout::start_info` fills it): Dom0's
/// page count, where its shared info page, page tables, P2M list and
/// ramdisk are, its flags (privileged, initial domain) and its command
/// line, cut (with a warning) if longer than start_info holds.
fn write_start_info(
    memory: &NewDomainMemory,
    layout: &Layout,
    arguments: &str,
    shared_info_mfn: u64,
    ramdisk_size: u64,
) -> Result<(), BuildError> {
    let (start_info, cut) = pv_layout::start_info(
        layout,
        &pv_layout::StartInfoFacts {
            nr_pages: memory.pages(),
            shared_info: shared_info_mfn * PAGE_SIZE,
            flags: SIF_PRIVILEGED | SIF_INITDOMAIN,
            ramdisk_size,
            command_line: arguments.as_bytes(),
        },
    );
    if cut {
        log::warn!("Dom0's command line is longer than start_info holds and was cut");
    }
    memory
        .write_start_info(pseudo_physical(layout, layout.start_info), &start_info)
        .map_err(|outside| BuildError::Outside("start_info", outside))
}

/// Phase 6: writes the start-of-day page tables (see
/// `pv_layout::build_page_tables`: the whole bootstrap region mapped, the
/// page-table frames themselves read-only) into Dom0's frames, with the
/// hypervisor's L4 slots in the root. They are plain data until
/// [`make_root`] validates them.
fn build_page_tables(memory: &NewDomainMemory, layout: &Layout) -> Result<(), BuildError> {
    let outside = |outside| BuildError::Outside("page tables", outside);
    let root = layout.pfn_of(layout.page_tables_start);
    for (offset, &slot) in paging::hypervisor_slots().iter().enumerate() {
        memory
            .write_entry(root, paging::HYPERVISOR_FIRST_SLOT + offset, slot)
            .map_err(outside)?;
    }
    let mut result = Ok(());
    pv_layout::build_page_tables(
        layout,
        |pfn| memory.p2m()[pfn as usize],
        |table, index, value| {
            if result.is_ok() {
                result = memory.write_entry(table, index, value);
            }
        },
    );
    result.map_err(outside)
}

/// Phase 7: validates the whole tree and makes its L4 Dom0's root, as
/// Xen's builder does (a pin, then a base pointer): from here on the
/// page-table frames are typed, and only hypercalls can change them.
/// Returns the root's machine frame.
fn make_root(layout: &Layout, frames: &[u64]) -> Result<u64, BuildError> {
    let root_mfn = frames[layout.pfn_of(layout.page_tables_start) as usize];
    frame_table::with(|table, memory| {
        table.pin(memory, root_mfn, 4, DOM0)?;
        table.switch_base(memory, root_mfn, None, DOM0)
    })
    .map_err(|refusal| BuildError::Refused(refusal.reason))?;
    Ok(root_mfn)
}
