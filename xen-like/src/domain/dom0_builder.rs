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

use super::{Domain, DomainState, Vcpu};
use crate::arch::x86_64::frame::GuestFrame;
use crate::boot::Module;
use crate::console::rate_limit::{GuestOutput, RateLimit};
use crate::mm::frame_table::Owner;
use crate::mm::shared_page::SharedInfoFrame;
use crate::mm::{self, frame_table, frames, m2p, paging, PAGE_SIZE};
use alloc::{boxed::Box, vec::Vec};
use hypercall_abi::layout::{SIF_INITDOMAIN, SIF_PRIVILEGED};
use hypercall_abi::pv_image::PvImage;
use hypercall_abi::pv_layout::{self, Layout, LayoutError};
use hypercall_abi::StartInfo;

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

/// A byte slice of a boot module's memory.
fn module_bytes(module: &Module) -> &'static [u8] {
    // SAFETY: the module's frames are reserved in the frame allocator until
    // the build is over, and the direct map covers them.
    unsafe {
        core::slice::from_raw_parts(
            mm::physical_pointer::<u8>(module.start),
            (module.end - module.start) as usize,
        )
    }
}

/// Builds Dom0 and returns it with the frame its vCPU starts from.
pub fn build(
    kernel: Option<&Module>,
    ramdisk: Option<&Module>,
    memory: u64,
) -> Result<Box<Domain>, BuildError> {
    let kernel = kernel.ok_or(BuildError::NoKernel)?;
    let kernel_bytes = module_bytes(kernel);
    let image =
        PvImage::parse(kernel_bytes).map_err(|error| BuildError::BadImage(error.description()))?;
    let ramdisk_bytes = ramdisk.map(module_bytes).unwrap_or(&[]);
    let nr_pages = memory / PAGE_SIZE;
    let layout = pv_layout::compute(&pv_layout::Request {
        virt_base: image.virt_base,
        image_end: image.image_end,
        ramdisk_size: ramdisk_bytes.len() as u64,
        nr_pages,
        extra_pages: 0,
    })
    .map_err(BuildError::Layout)?;

    let free = frames::free_count();
    if nr_pages + 1 > free {
        return Err(BuildError::OutOfMemory {
            wanted: nr_pages + 1,
            free,
        });
    }
    let mut p2m = Vec::with_capacity(nr_pages as usize);
    for pfn in 0..nr_pages {
        // Cannot fail: we checked the free count with interrupts off and a
        // single CPU.
        let Some(mfn) = frame_table::allocate_for(Owner::Domain(DOM0)) else {
            return Err(BuildError::OutOfMemory {
                wanted: nr_pages,
                free: frames::free_count(),
            });
        };
        m2p::set(mfn, pfn);
        p2m.push(mfn);
    }
    // The shared info page belongs to the domain (so that it may map it)
    // but is not part of its memory. The hypervisor writes it whenever it
    // likes, so it holds a general and a writable type reference for good
    // (frame-table invariant 6): the guest can never give it back nor make
    // it a page table.
    let shared_info = SharedInfoFrame::allocate(DOM0)
        .map_err(|_| BuildError::OutOfMemory { wanted: 1, free: 0 })?;
    let shared_info_mfn = shared_info.mfn();

    let memory = GuestMemory {
        layout: &layout,
        p2m: &p2m,
    };
    for segment in &image.segments {
        let start = segment.file_offset as usize;
        memory.write(
            segment.virtual_address,
            &kernel_bytes[start..start + segment.file_size as usize],
        );
        // The rest up to memory_size is already zero: frames come zeroed.
    }
    memory.write(layout.ramdisk_start, ramdisk_bytes);
    for (pfn, mfn) in p2m.iter().enumerate() {
        memory.write(layout.p2m_start + pfn as u64 * 8, &mfn.to_le_bytes());
    }
    if let Some(page) = image.hypercall_page {
        let mut stubs = [0u8; 4096];
        hypercall_abi::hypercall_page::fill(&mut stubs);
        memory.write(page, &stubs);
    }

    // The module string is "name arguments...": Dom0's command line is the
    // arguments, as with Xen's dom0 module.
    let arguments = kernel
        .string
        .split_once(' ')
        .map_or("", |(_, rest)| rest.trim());
    let (start_info, cut) = pv_layout::start_info(
        &layout,
        &pv_layout::StartInfoFacts {
            nr_pages,
            shared_info: shared_info_mfn * PAGE_SIZE,
            flags: SIF_PRIVILEGED | SIF_INITDOMAIN,
            ramdisk_size: ramdisk_bytes.len() as u64,
            command_line: arguments.as_bytes(),
        },
    );
    if cut {
        log::warn!("Dom0's command line is longer than start_info holds and was cut");
    }
    // SAFETY: StartInfo is a repr(C) struct of integers; viewing it as bytes
    // is sound.
    let start_info_bytes = unsafe {
        core::slice::from_raw_parts(
            &start_info as *const StartInfo as *const u8,
            core::mem::size_of::<StartInfo>(),
        )
    };
    memory.write(layout.start_info, start_info_bytes);

    // Events stay masked until the guest unmasks them, as in Xen.
    crate::domain::initialise_shared_info(shared_info.page());

    build_page_tables(&layout, &p2m);
    // Validate the whole tree and make the L4 the root, as Xen's builder
    // does: from here on the page-table frames are typed, and only
    // hypercalls can change them.
    let root_mfn = p2m[layout.pfn_of(layout.page_tables_start) as usize];
    frame_table::with(|table, memory| {
        table.pin(memory, root_mfn, 4, DOM0)?;
        table.switch_base(memory, root_mfn, None, DOM0)
    })
    .map_err(|refusal| BuildError::Refused(refusal.reason))?;
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

    let mut saved = GuestFrame::new_guest(image.entry, layout.stack_top);
    saved.rsi = layout.start_info;
    Ok(Box::new(Domain {
        id: 0,
        privileged: true,
        state: DomainState::Running,
        pause_count: 0,
        pending_shutdown: None,
        output: GuestOutput::new(RateLimit::GUEST),
        ports: crate::evtchn::ports::PortTable::new(),
        blocked: false,
        polling: None,
        timer_deadline: 0,
        vm_assist: 0,
        frames: p2m.into_iter().collect(),
        max_pages: nr_pages,
        shared_info,
        vcpu: Vcpu::new(saved, true),
        kernel_root: root_mfn,
        user_root: None,
    }))
}

/// The new domain's memory, addressed by guest-virtual address within its
/// bootstrap region.
struct GuestMemory<'a> {
    layout: &'a Layout,
    p2m: &'a [u64],
}

impl GuestMemory<'_> {
    fn machine_address(&self, address: u64) -> u64 {
        let pfn = self.layout.pfn_of(address);
        self.p2m[pfn as usize] * PAGE_SIZE + address % PAGE_SIZE
    }

    /// Copies `data` to `address`, page by page.
    fn write(&self, address: u64, data: &[u8]) {
        let mut done = 0;
        while done < data.len() {
            let current = address + done as u64;
            let chunk = ((PAGE_SIZE - current % PAGE_SIZE) as usize).min(data.len() - done);
            // SAFETY: the address lies in the bootstrap region (the layout
            // and image checks guarantee it), so its frame is one of the new
            // domain's, which nobody else uses yet; the direct map covers it.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    data[done..].as_ptr(),
                    mm::physical_pointer::<u8>(self.machine_address(current)),
                    chunk,
                );
            }
            done += chunk;
        }
    }
}

/// Writes the start-of-day page tables (see `pv_layout::build_page_tables`)
/// into the new domain's frames, with the hypervisor's L4 slots.
fn build_page_tables(layout: &Layout, p2m: &[u64]) {
    let root = p2m[layout.pfn_of(layout.page_tables_start) as usize];
    let slots = paging::hypervisor_slots();
    for (offset, &slot) in slots.iter().enumerate() {
        write_entry(root, paging::HYPERVISOR_FIRST_SLOT + offset, slot);
    }
    pv_layout::build_page_tables(
        layout,
        |pfn| p2m[pfn as usize],
        |table, index, value| {
            write_entry(p2m[table as usize], index, value);
        },
    );
}

/// Stores one entry of a page table that is still plain data.
fn write_entry(table_mfn: u64, index: usize, value: u64) {
    // SAFETY: the table is a frame of the new domain (zeroed, not yet in
    // use by anyone), reached through the direct map; index < 512.
    unsafe {
        mm::physical_pointer::<u64>(table_mfn * PAGE_SIZE + index as u64 * 8).write_volatile(value)
    };
}
