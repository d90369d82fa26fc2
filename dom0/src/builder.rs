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
//!    (`mmu_update` naming the new domain; a `sys::foreign::ForeignPages`
//!    at `areas::BUILDER_WINDOW`), and write into them, each write checked
//!    against the window: the kernel's segments, the P2M list, start_info,
//!    the hypercall page, and the page tables, as plain data. Then unmap
//!    them all: a frame about to become a page table must have no writable
//!    mapping anywhere.
//! 5. `domctl setvcpucontext`: the hypervisor validates and pins the page
//!    tables and records the entry point, stack and start_info address.
//! 6. `domctl unpausedomain` (unless asked to leave it paused).
//!
//! If a step fails, the half-built domain is destroyed.
#![forbid(unsafe_code)]

use crate::areas::BUILDER_WINDOW;
use crate::control::{domctl, simple_domctl};
use crate::sys::foreign::ForeignPages;
use alloc::vec::Vec;
use core::fmt;
use dom0::config::DomainConfig;
use guest_kernel::abi::domctl::{Domctl, DomctlOp, DomctlVcpuContext};
use guest_kernel::abi::event_channel::EvtchnAllocUnbound;
use guest_kernel::abi::hypercall_page;
use guest_kernel::abi::layout::StartInfoConsole;
use guest_kernel::abi::pv_image::PvImage;
use guest_kernel::abi::pv_layout::{self, Layout, LayoutError};
use guest_kernel::paging::{PagingError, PAGE_SIZE};
use guest_kernel::sys::hypercalls::event_channel_op;

/// The largest start-of-day region the builder's window holds.
const WINDOW_PAGES: u64 = BUILDER_WINDOW.length / PAGE_SIZE;
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
    create.u.create.max_grant_frames = config.max_grant_frames;
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
    let result = event_channel_op(&mut request);
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
    let mapped = layout.mapped_pages() as usize;
    let window = ForeignPages::map(BUILDER_WINDOW.start, id, &p2m[..mapped], true)
        .map_err(BuildError::Paging)?;
    let written = write_start_of_day(
        id,
        config,
        file,
        image,
        layout,
        &window,
        &p2m,
        console_port,
        store_port,
    );
    let unmapped = window.unmap().map_err(BuildError::Paging);
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
    let got = crate::sys::control::populate_physmap(id, &mut frames).map_err(|error| {
        BuildError::Hypervisor {
            step: "giving the domain its memory",
            error,
        }
    })?;
    if got < nr_pages {
        return Err(BuildError::OutOfMemory {
            wanted: nr_pages,
            got,
        });
    }
    Ok(frames)
}

/// Copies `data` to the new domain's virtual address `address`, through
/// the window; refuses a range outside the start-of-day region.
fn write(
    window: &ForeignPages,
    layout: &Layout,
    address: u64,
    data: &[u8],
) -> Result<(), BuildError> {
    let inside = address
        .checked_sub(layout.v_start)
        .is_some_and(|offset| window.write(offset, data));
    if inside {
        Ok(())
    } else {
        Err(BuildError::BadImage(
            "puts data outside its start-of-day region",
        ))
    }
}

/// Step 4: the contents of the start-of-day region.
#[allow(clippy::too_many_arguments)] // one call site; the facts of one build
fn write_start_of_day(
    id: u16,
    config: &DomainConfig,
    file: &[u8],
    image: &PvImage,
    layout: &Layout,
    window: &ForeignPages,
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
        write(window, layout, segment.virtual_address, bytes)?;
        // The rest up to memory_size is zero: populated frames come zeroed.
    }
    for (pfn, mfn) in p2m.iter().enumerate() {
        write(
            window,
            layout,
            layout.p2m_start + pfn as u64 * 8,
            &mfn.to_le_bytes(),
        )?;
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
    write(
        window,
        layout,
        layout.start_info,
        bytemuck::bytes_of(&start_info),
    )?;
    if let Some(page) = image.hypercall_page {
        let mut stubs = [0u8; 4096];
        hypercall_page::fill(&mut stubs);
        write(window, layout, page, &stubs)?;
    }
    let mut tables_written = Ok(());
    pv_layout::build_page_tables(
        layout,
        |pfn| p2m[pfn as usize],
        |table, index, value| {
            if tables_written.is_ok() {
                tables_written = write(
                    window,
                    layout,
                    layout.v_start + table * PAGE_SIZE + index as u64 * 8,
                    &value.to_le_bytes(),
                );
            }
        },
    );
    tables_written
}
