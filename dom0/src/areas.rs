//! Dom0's virtual-address areas: every range of Dom0's address space that
//! some part of it maps pages into, in one table, checked at compile time
//! not to overlap.
//!
//! Dom0 maps pages at run time for several jobs (the builder's window onto
//! a new domain, each domain's console and store rings, the benchmarks'
//! pages, `debug hold-frame`), and the guest-kernel library it is built on
//! has its own (the start-of-day region, the heap, the console and shared
//! info pages). Two jobs sharing an area unmap each other's pages: the
//! store rings once shared `debug hold-frame`'s area, so disconnecting a
//! store unmapped a held frame. Hence one table, and a `const` assertion
//! that fails the build when two areas overlap.
//!
//! The areas live in the top half of the address space, below the
//! start-of-day region at `VIRT_BASE` and above the hypervisor's reserved
//! range; each per-domain area has one page per possible domain ID.
#![forbid(unsafe_code)]

use guest_kernel::abi::layout::{DOMID_FIRST_RESERVED, HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};
use guest_kernel::paging::PAGE_SIZE;

/// A range of Dom0's virtual addresses, reserved for one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    /// What maps pages here, for the overlap message and for readers.
    pub name: &'static str,
    /// The first address (page-aligned).
    pub start: u64,
    /// Length in bytes.
    pub length: u64,
}

impl Area {
    /// The first address after the area.
    pub const fn end(&self) -> u64 {
        self.start + self.length
    }

    /// Whether the two areas share an address.
    pub const fn overlaps(&self, other: &Area) -> bool {
        self.start < other.end() && other.start < self.end()
    }

    /// The page of a per-domain area that belongs to `domain`; `None` for
    /// an ID beyond the area (a reserved ID such as `DOMID_SELF`).
    pub fn page_for(&self, domain: u16) -> Option<u64> {
        let offset = u64::from(domain) * PAGE_SIZE;
        (offset < self.length).then_some(self.start + offset)
    }
}

/// One page per ordinary domain ID.
const PER_DOMAIN: u64 = DOMID_FIRST_RESERVED as u64 * PAGE_SIZE;

/// The benchmarks' 64 pages, remapped back and forth (`bench`).
pub const BENCH_PAGES: Area = Area {
    name: "bench: the paging benchmarks' pages",
    start: 0xffff_d100_0000_0000,
    length: 64 * PAGE_SIZE,
};

/// The builder's window onto a new domain's start-of-day frames (1 GiB).
pub const BUILDER_WINDOW: Area = Area {
    name: "builder: the window onto a new domain's start of day",
    start: 0xffff_d800_0000_0000,
    length: 1 << 30,
};

/// Each domain's console ring (the console backend, `consoles`).
pub const CONSOLE_RINGS: Area = Area {
    name: "consoles: each domain's console ring",
    start: 0xffff_d900_0000_0000,
    length: PER_DOMAIN,
};

/// The frame `debug hold-frame` keeps mapped, per domain.
pub const HELD_FRAMES: Area = Area {
    name: "debug hold-frame: each domain's held frame",
    start: 0xffff_da00_0000_0000,
    length: PER_DOMAIN,
};

/// Each domain's store ring (the store daemon, `xenstored`).
pub const STORE_RINGS: Area = Area {
    name: "xenstored: each domain's store ring",
    start: 0xffff_db00_0000_0000,
    length: PER_DOMAIN,
};

/// Dom0's own areas: where it maps pages at run time, which never hold a
/// Rust object.
pub const MAPPED_AT_RUN_TIME: [Area; 5] = [
    BENCH_PAGES,
    BUILDER_WINDOW,
    CONSOLE_RINGS,
    HELD_FRAMES,
    STORE_RINGS,
];

/// Every area in Dom0's address space: Dom0's own above, and the ones the
/// hypervisor and the guest-kernel library use, so that Dom0's are checked
/// against them too.
pub const ALL: [Area; 10] = [
    Area {
        name: "the hypervisor's reserved range",
        start: HYPERVISOR_VIRT_START,
        length: HYPERVISOR_VIRT_END - HYPERVISOR_VIRT_START,
    },
    Area {
        name: "guest kernel: the console page",
        start: guest_kernel::console::CONSOLE_ADDRESS,
        length: PAGE_SIZE,
    },
    Area {
        name: "guest kernel: the shared info page",
        start: guest_kernel::sys::shared_info::SHARED_INFO_ADDRESS,
        length: PAGE_SIZE,
    },
    Area {
        name: "guest kernel: the heap",
        start: guest_kernel::heap::HEAP_START,
        length: guest_kernel::heap::HEAP_RESERVED,
    },
    Area {
        name: "guest kernel: the start-of-day region and the physmap",
        start: guest_kernel::start::VIRT_BASE,
        // Up to the top of the address space, less the last page (whose
        // end, 2^64, is not a u64; nothing maps there).
        length: 0u64.wrapping_sub(guest_kernel::start::VIRT_BASE) - PAGE_SIZE,
    },
    BENCH_PAGES,
    BUILDER_WINDOW,
    CONSOLE_RINGS,
    HELD_FRAMES,
    STORE_RINGS,
];

/// Whether no two of `areas` overlap (and none wraps around the top of
/// the address space).
const fn disjoint(areas: &[Area]) -> bool {
    let mut first = 0;
    while first < areas.len() {
        if areas[first]
            .start
            .checked_add(areas[first].length)
            .is_none()
        {
            return false;
        }
        let mut second = first + 1;
        while second < areas.len() {
            if areas[first].overlaps(&areas[second]) {
                return false;
            }
            second += 1;
        }
        first += 1;
    }
    true
}

const _: () = assert!(
    disjoint(&ALL),
    "two of Dom0's virtual-address areas overlap (see areas::ALL)"
);
