//! The domain builder: turns a PV kernel image and a configuration into a
//! running domain, the way Xen's libxenguest does, entirely from Dom0.
//!
//! 1. Read the image and its Xen ELF notes (`hypercall_abi::pv_image`) and
//!    lay out the new domain's start of day (`hypercall_abi::pv_layout`),
//!    exactly as the hypervisor laid out Dom0.
//! 2. `domctl createdomain`: an empty, paused domain with a shared info page.
//! 3. `memory_op populate_physmap` for the new domain: its memory, one
//!    frame per PFN; the machine frame numbers come back (its P2M).
//! 4. Map the start-of-day frames into Dom0 with *foreign* mappings
//!    (`mmu_update` naming the new domain), and write into them: the
//!    kernel's segments, the P2M list, start_info, the hypercall page, and
//!    the page tables, as plain data. Then unmap them all: a frame about to
//!    become a page table must have no writable mapping anywhere.
//! 5. `domctl setvcpucontext`: the hypervisor validates and pins the page
//!    tables and records the entry point, stack and start_info address.
//! 6. `domctl unpausedomain` (unless asked to leave it paused).
//!
//! If a step fails, the half-built domain is destroyed.

use crate::control::{domctl, simple_domctl};
use alloc::vec::Vec;
use core::fmt;
use dom0::config::DomainConfig;
use guest_kernel::abi::domctl::{Domctl, DomctlOp, DomctlVcpuContext};
use guest_kernel::abi::event_channel::{EventChannelOp, EvtchnAllocUnbound};
use guest_kernel::abi::hypercall::Hypercall;
use guest_kernel::abi::layout::StartInfoConsole;
use guest_kernel::abi::memory::{MemoryOp, MemoryReservation};
use guest_kernel::abi::pv_image::PvImage;
use guest_kernel::abi::pv_layout::{self, Layout, LayoutError};
use guest_kernel::abi::{hypercall_page, wrappers};
use guest_kernel::paging::{self, PagingError, NO_EXECUTE, PAGE_SIZE, PRESENT, USER, WRITABLE};

/// Where Dom0 maps a new domain's start-of-day frames while writing them
/// (1 GiB of address space that nothing else uses).
const WINDOW: u64 = 0xffff_d800_0000_0000;
/// The largest start-of-day region the window holds.
const WINDOW_PAGES: u64 = (1 << 30) / PAGE_SIZE;
/// Pages between start_info and the page tables: the xenstore and console
/// rings, as Xen lays out a DomU.
const EXTRA_PAGES: u64 = 2;

/// Frames a guest-kernel guest takes, beyond its start-of-day region, as it
/// boots: its first heap (`guest_kernel::heap::INITIAL_PAGES`, 64), the page
/// tables that map it, and the shared info page's mapping and tables.
const GUEST_BOOT_PAGES: u64 = guest_kernel::heap::INITIAL_PAGES + 8;

/// Why a domain could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The kernel image is not a usable PV kernel.
    BadImage(&'static str),
    /// The memory asked for cannot hold the start-of-day region.
    TooSmall {
        /// MiB the region needs.
        needed_mib: u64,
    },
    /// The hypervisor refused a step.
    Hypervisor {
        /// The step, in words.
        step: &'static str,
        /// The negated errno.
        error: i64,
    },
    /// The hypervisor gave fewer frames than asked (memory ran out).
    OutOfMemory {
        /// Pages asked for.
        wanted: u64,
        /// Pages given.
        got: u64,
    },
    /// Dom0 could not map the new domain's frames.
    Paging(PagingError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadImage(why) => write!(f, "the kernel image {why}"),
            Self::TooSmall { needed_mib } => write!(
                f,
                "the domain needs at least {needed_mib} MiB for its kernel, its start-of-day data and what its kernel maps as it boots (heap, shared info): raise memory ="
            ),
            Self::Hypervisor { step, error } => {
                write!(f, "{step} failed: {} ({error})", crate::control::error_name(*error))
            }
            Self::OutOfMemory { wanted, got } => write!(
                f,
                "the hypervisor had only {} of the {} MiB asked for",
                (got * PAGE_SIZE) >> 20,
                (wanted * PAGE_SIZE) >> 20
            ),
            Self::Paging(error) => write!(f, "Dom0 could not map the new domain's memory: {error:?}"),
        }
    }
}

fn step(name: &'static str, result: Result<(), i64>) -> Result<(), BuildError> {
    result.map_err(|error| BuildError::Hypervisor { step: name, error })
}

/// A new domain's console, for the backend: the port in the domain that
/// Dom0 must connect to, and the machine frame of the ring page.
#[derive(Clone, Copy, Debug)]
pub struct ConsoleSetup {
    /// The event channel offered to Dom0 (in the new domain).
    pub port: u32,
    /// The console page.
    pub mfn: u64,
}

/// A new domain's connection to the config store: the port in the domain
/// that Dom0 must connect to (`start_info.store_evtchn`) and the machine
/// frame of the ring page (`start_info.store_mfn`).
#[derive(Clone, Copy, Debug)]
pub struct StoreSetup {
    /// The event channel offered to Dom0 (in the new domain).
    pub port: u32,
    /// The store's ring page.
    pub mfn: u64,
}

/// What `build` made.
#[derive(Clone, Copy, Debug)]
pub struct Built {
    /// The new domain's ID.
    pub id: u16,
    /// Its console, when one was asked for.
    pub console: Option<ConsoleSetup>,
    /// Its store connection, when a console was asked for (the toolstack's
    /// domains get both backends; the benchmarks' get neither).
    pub store: Option<StoreSetup>,
}

/// Builds and starts (or leaves paused) a domain running `image` as
/// `config` says, with a console ring and a store ring for Dom0's backends
/// when `console` (otherwise the guest prints through `console_io`,
/// straight to the serial line, and has no store).
pub fn build(
    config: &DomainConfig,
    file: &[u8],
    paused: bool,
    console: bool,
) -> Result<Built, BuildError> {
    let image = PvImage::parse(file).map_err(|error| BuildError::BadImage(error.description()))?;
    let nr_pages = config.memory_mib * (1 << 20) / PAGE_SIZE;
    let layout = pv_layout::compute(&pv_layout::Request {
        virt_base: image.virt_base,
        image_end: image.image_end,
        ramdisk_size: 0,
        nr_pages,
        extra_pages: EXTRA_PAGES,
    })
    .map_err(|error| match error {
        LayoutError::NotEnoughMemory { needed_pages } => BuildError::TooSmall {
            needed_mib: ((needed_pages + GUEST_BOOT_PAGES) * PAGE_SIZE).div_ceil(1 << 20),
        },
        LayoutError::AddressSpaceOverflow => {
            BuildError::BadImage("leaves no room for its start-of-day region")
        }
    })?;
    if layout.mapped_pages() > WINDOW_PAGES {
        return Err(BuildError::TooSmall { needed_mib: 0 });
    }
    // The start-of-day region fitting is not enough: the guest then maps
    // its heap and shared info from the frames after it (memory = 4 left
    // none, and the guest died with "cannot map shared info: OutOfFrames").
    let needed_pages = layout.mapped_pages() + GUEST_BOOT_PAGES;
    if nr_pages < needed_pages {
        return Err(BuildError::TooSmall {
            needed_mib: (needed_pages * PAGE_SIZE).div_ceil(1 << 20),
        });
    }

    let mut create = Domctl::new(DomctlOp::CreateDomain, 0);
    create.u.create.max_pages = nr_pages;
    step("creating the domain", domctl(&mut create))?;
    let id = create.domain;
    let result = offer_port(id, console, "offering a console event channel").and_then(|port| {
        let store_port = offer_port(id, console, "offering a store event channel")?;
        let (mfn, store_mfn) = fill(
            id, config, file, &image, &layout, nr_pages, port, store_port,
        )?;
        crate::toolstack::apply_scheduling(id, config).map_err(|error| BuildError::Hypervisor {
            step: "setting the weight and cap",
            error,
        })?;
        Ok((
            port.map(|port| ConsoleSetup { port, mfn }),
            store_port.map(|port| StoreSetup {
                port,
                mfn: store_mfn,
            }),
        ))
    });
    let (console, store) = match result {
        Ok(console) => console,
        Err(error) => {
            let _ = simple_domctl(DomctlOp::DestroyDomain, id);
            return Err(error);
        }
    };
    if !paused {
        if let Err(error) = simple_domctl(DomctlOp::UnpauseDomain, id) {
            let _ = simple_domctl(DomctlOp::DestroyDomain, id);
            return Err(BuildError::Hypervisor {
                step: "unpausing the domain",
                error,
            });
        }
    }
    Ok(Built { id, console, store })
}

/// Offers an event channel in domain `id` to Dom0 (for its console or
/// its store connection), when `wanted`.
fn offer_port(id: u16, wanted: bool, step: &'static str) -> Result<Option<u32>, BuildError> {
    if !wanted {
        return Ok(None);
    }
    let mut request = EvtchnAllocUnbound {
        dom: id,
        remote_dom: 0,
        port: 0,
    };
    // SAFETY: the request lives for the call.
    let result = unsafe {
        wrappers::event_channel_op(
            EventChannelOp::AllocUnbound,
            &mut request as *mut EvtchnAllocUnbound as *mut u8,
        )
    };
    if result < 0 {
        return Err(BuildError::Hypervisor {
            step,
            error: result,
        });
    }
    Ok(Some(request.port))
}

/// Steps 3 to 5 for domain `id`.
/// Returns the console page's and the store page's machine frames.
#[allow(clippy::too_many_arguments)] // one call site; the facts of one build
fn fill(
    id: u16,
    config: &DomainConfig,
    file: &[u8],
    image: &PvImage,
    layout: &Layout,
    nr_pages: u64,
    console_port: Option<u32>,
    store_port: Option<u32>,
) -> Result<(u64, u64), BuildError> {
    let p2m = populate(id, nr_pages)?;
    let mapped = layout.mapped_pages();
    map_window(id, &p2m[..mapped as usize])?;
    let written = write_start_of_day(
        id,
        config,
        file,
        image,
        layout,
        &p2m,
        console_port,
        store_port,
    );
    let unmapped = unmap_window(mapped);
    written?;
    unmapped?;
    let mut context = Domctl::new(DomctlOp::SetVcpuContext, id);
    context.u.context = DomctlVcpuContext {
        rip: image.entry,
        rsp: layout.stack_top,
        rsi: layout.start_info,
        kernel_root: p2m[layout.pfn_of(layout.page_tables_start) as usize],
    };
    step(
        "setting the vCPU context (validating the page tables)",
        domctl(&mut context),
    )?;
    let first_extra = layout.pfn_of(layout.extra_start) as usize;
    Ok((p2m[first_extra + 1], p2m[first_extra]))
}

/// Asks the hypervisor for `nr_pages` frames for domain `id`; returns the
/// machine frame of each PFN.
fn populate(id: u16, nr_pages: u64) -> Result<Vec<u64>, BuildError> {
    let mut frames: Vec<u64> = (0..nr_pages).collect();
    let request = MemoryReservation {
        extent_start: frames.as_mut_ptr() as u64,
        nr_extents: nr_pages,
        extent_order: 0,
        mem_flags: 0,
        domid: id,
        ..MemoryReservation::default()
    };
    // SAFETY: the request and the frame array (nr_pages entries) live for
    // the call; the hypervisor writes the new MFNs into the array.
    let got = unsafe {
        wrappers::hypercall2(
            Hypercall::MemoryOp,
            u64::from(MemoryOp::PopulatePhysmap.raw()),
            &request as *const MemoryReservation as u64,
        )
    };
    if got < 0 {
        return Err(BuildError::Hypervisor {
            step: "giving the domain its memory",
            error: got,
        });
    }
    if (got as u64) < nr_pages {
        return Err(BuildError::OutOfMemory {
            wanted: nr_pages,
            got: got as u64,
        });
    }
    Ok(frames)
}

/// Maps `frames` (the new domain's) at the window, writable.
fn map_window(id: u16, frames: &[u64]) -> Result<(), BuildError> {
    for (chunk_index, chunk) in frames.chunks(512).enumerate() {
        let first = WINDOW + chunk_index as u64 * 512 * PAGE_SIZE;
        let l1 = paging::ensure_l1(first).map_err(BuildError::Paging)?;
        let requests: Vec<(u64, u64)> = chunk
            .iter()
            .enumerate()
            .map(|(offset, &mfn)| {
                let address = first + offset as u64 * PAGE_SIZE;
                (
                    paging::l1_entry_address(l1, address),
                    (mfn * PAGE_SIZE) | PRESENT | WRITABLE | USER | NO_EXECUTE,
                )
            })
            .collect();
        paging::write_entries_foreign(&requests, id).map_err(BuildError::Paging)?;
    }
    Ok(())
}

/// Removes the window's mappings again.
fn unmap_window(pages: u64) -> Result<(), BuildError> {
    for chunk in 0..pages.div_ceil(512) {
        let first = WINDOW + chunk * 512 * PAGE_SIZE;
        let l1 = paging::l1_table(first).ok_or(BuildError::Paging(PagingError::Refused(-22)))?;
        let count = (pages - chunk * 512).min(512);
        let requests: Vec<(u64, u64)> = (0..count)
            .map(|page| (paging::l1_entry_address(l1, first + page * PAGE_SIZE), 0))
            .collect();
        paging::write_entries(&requests).map_err(BuildError::Paging)?;
    }
    Ok(())
}

/// Copies `data` to the new domain's virtual address `address`.
fn write(layout: &Layout, address: u64, data: &[u8]) {
    let target = (WINDOW + (address - layout.v_start)) as *mut u8;
    // SAFETY: `address` lies in the start-of-day region (the layout and the
    // image checks guarantee it), which is mapped writable at the window,
    // and nothing else uses those frames yet.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), target, data.len()) };
}

/// Step 4: the contents of the start-of-day region.
#[allow(clippy::too_many_arguments)] // one call site; the facts of one build
fn write_start_of_day(
    id: u16,
    config: &DomainConfig,
    file: &[u8],
    image: &PvImage,
    layout: &Layout,
    p2m: &[u64],
    console_port: Option<u32>,
    store_port: Option<u32>,
) -> Result<(), BuildError> {
    let mut info = Domctl::new(DomctlOp::GetDomainInfo, id);
    step("reading the domain's information", domctl(&mut info))?;
    let shared_info_frame = info.info().shared_info_frame;

    for segment in &image.segments {
        let start = segment.file_offset as usize;
        // PvImage::parse checked that every segment lies within the file.
        let bytes = &file[start..start + segment.file_size as usize];
        write(layout, segment.virtual_address, bytes);
        // The rest up to memory_size is zero: populated frames come zeroed.
    }
    for (pfn, mfn) in p2m.iter().enumerate() {
        write(
            layout,
            layout.p2m_start + pfn as u64 * 8,
            &mfn.to_le_bytes(),
        );
    }
    let (mut start_info, _) = pv_layout::start_info(
        layout,
        &pv_layout::StartInfoFacts {
            nr_pages: p2m.len() as u64,
            shared_info: shared_info_frame * PAGE_SIZE,
            flags: 0,
            ramdisk_size: 0,
            command_line: config.cmdline.as_bytes(),
        },
    );
    let first_extra = layout.pfn_of(layout.extra_start) as usize;
    // The store's ring page and channel (a zero channel: no store).
    start_info.store_mfn = p2m[first_extra];
    start_info.store_evtchn = store_port.unwrap_or(0);
    // The console page and channel; without a channel the guest keeps
    // using console_io.
    start_info.console = StartInfoConsole::domu(p2m[first_extra + 1], console_port.unwrap_or(0));
    write(layout, layout.start_info, bytemuck::bytes_of(&start_info));
    if let Some(page) = image.hypercall_page {
        let mut stubs = [0u8; 4096];
        hypercall_page::fill(&mut stubs);
        write(layout, page, &stubs);
    }
    pv_layout::build_page_tables(
        layout,
        |pfn| p2m[pfn as usize],
        |table, index, value| {
            write(
                layout,
                layout.v_start + table * PAGE_SIZE + index as u64 * 8,
                &value.to_le_bytes(),
            );
        },
    );
    Ok(())
}
