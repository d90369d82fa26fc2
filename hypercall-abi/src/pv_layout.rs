//! Where everything goes in a new PV domain's address space at start of day.
//!
//! Xen's ABI fixes the order (`xen/include/public/xen.h`, "start of day"):
//! from `VIRT_BASE` up, the kernel image, the initial ramdisk, the P2M list
//! (`mfn_list`), the start_info page, (for a DomU) the xenstore and console
//! pages, the bootstrap page tables, and a stack page; the mapped region
//! ends on a 4 MiB boundary with at least 512 KiB to spare. Pseudo-physical
//! frame `n` is mapped at `VIRT_BASE + n * 4096`, so every address here is
//! also a PFN.
//!
//! ```text
//!  virt_base                                                           v_end
//!  |kernel......|ramdisk...|p2m list|start_info|extra|page tables|stack|slack|
//! ```
//!
//! This is pure arithmetic, shared in spirit with Dom0's domain builder, and
//! tested here on the host.

use crate::StartInfo;

const PAGE_SIZE: u64 = 4096;
/// The mapped region ends on this boundary.
const END_ALIGN: u64 = 4 << 20;
/// At least this much is left unused at the end of the mapped region.
const END_SLACK: u64 = 512 << 10;

/// What the builder knows before laying out a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The image's `VIRT_BASE` (virtual address of PFN 0).
    pub virt_base: u64,
    /// End of the kernel image (page-aligned virtual address).
    pub image_end: u64,
    /// Size in bytes of the initial ramdisk (0 for none).
    pub ramdisk_size: u64,
    /// The domain's memory, in pages.
    pub nr_pages: u64,
    /// Pages between start_info and the page tables (a DomU's xenstore and
    /// console rings; none for Dom0).
    pub extra_pages: u64,
}

/// The resulting layout; all addresses are guest-virtual, page-aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Start of the mapped region (= `virt_base`).
    pub v_start: u64,
    /// Start of the ramdisk (equal to its end when there is none).
    pub ramdisk_start: u64,
    /// Start of the P2M list, `nr_pages` 8-byte MFNs.
    pub p2m_start: u64,
    /// The start_info page.
    pub start_info: u64,
    /// First of the `extra_pages`.
    pub extra_start: u64,
    /// First page-table page; the L4 comes first.
    pub page_tables_start: u64,
    /// How many page-table pages map `v_start..v_end`.
    pub nr_page_table_frames: u64,
    /// The bootstrap stack page; `stack_top` is its end.
    pub stack_start: u64,
    /// Initial stack pointer (top of the stack page).
    pub stack_top: u64,
    /// End of the mapped region.
    pub v_end: u64,
}

/// Why a domain cannot be laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The bootstrap region needs more pages than the domain has.
    NotEnoughMemory {
        /// Pages the bootstrap region needs.
        needed_pages: u64,
    },
    /// The region would run past the end of the address space or into the
    /// hypervisor's hole.
    AddressSpaceOverflow,
}

impl Layout {
    /// The PFN of a virtual address inside the region.
    pub fn pfn_of(&self, address: u64) -> u64 {
        (address - self.v_start) / PAGE_SIZE
    }

    /// Number of pages from `v_start` to `v_end`.
    pub fn mapped_pages(&self) -> u64 {
        (self.v_end - self.v_start) / PAGE_SIZE
    }
}

/// Number of page-table pages (L4 + L3s + L2s + L1s) needed to map
/// `start..end` with 4 KiB pages.
pub fn page_tables_needed(start: u64, end: u64) -> u64 {
    let last = end - 1;
    let tables_at = |shift: u32| (last >> shift) - (start >> shift) + 1;
    1 + tables_at(39) + tables_at(30) + tables_at(21)
}

/// Lays out a domain's bootstrap region.
pub fn compute(request: &Request) -> Result<Layout, LayoutError> {
    let overflow = LayoutError::AddressSpaceOverflow;
    let add = |a: u64, b: u64| a.checked_add(b).ok_or(overflow);
    let page_round = |a: u64| a.checked_next_multiple_of(PAGE_SIZE).ok_or(overflow);

    let v_start = request.virt_base;
    let ramdisk_start = request.image_end;
    let p2m_start = page_round(add(ramdisk_start, request.ramdisk_size)?)?;
    let start_info = page_round(add(p2m_start, request.nr_pages.saturating_mul(8))?)?;
    let extra_start = add(start_info, PAGE_SIZE)?;
    let page_tables_start = add(extra_start, request.extra_pages.saturating_mul(PAGE_SIZE))?;

    // The page tables must map themselves, so their number depends on where
    // the region ends, which depends on their number: iterate to a fixed
    // point (it takes one or two rounds).
    let mut nr_page_table_frames = 1;
    let (stack_start, v_end) = loop {
        let stack_start = add(page_tables_start, nr_page_table_frames * PAGE_SIZE)?;
        let v_end = add(add(stack_start, PAGE_SIZE)?, END_SLACK)?
            .checked_next_multiple_of(END_ALIGN)
            .ok_or(overflow)?;
        let needed = page_tables_needed(v_start, v_end);
        if needed <= nr_page_table_frames {
            break (stack_start, v_end);
        }
        nr_page_table_frames = needed;
    };

    // The region must stay in one canonical half and out of Xen's hole.
    let low_half_end = 0x0000_8000_0000_0000;
    let hole_end = 0xffff_8800_0000_0000;
    let fits = if v_start < low_half_end {
        v_end <= low_half_end
    } else {
        v_start >= hole_end
    };
    if !fits || v_end == 0 {
        return Err(overflow);
    }
    let layout = Layout {
        v_start,
        ramdisk_start,
        p2m_start,
        start_info,
        extra_start,
        page_tables_start,
        nr_page_table_frames,
        stack_start,
        stack_top: stack_start + PAGE_SIZE,
        v_end,
    };
    if layout.mapped_pages() > request.nr_pages {
        return Err(LayoutError::NotEnoughMemory {
            needed_pages: layout.mapped_pages(),
        });
    }
    Ok(layout)
}

/// What start_info says besides the layout.
#[derive(Clone, Copy, Debug)]
pub struct StartInfoFacts<'a> {
    /// The domain's memory in pages.
    pub nr_pages: u64,
    /// Machine address of its shared info page.
    pub shared_info: u64,
    /// `SIF_*` flags (privileged, initial domain).
    pub flags: u32,
    /// Size of the ramdisk placed at `ramdisk_start` (0 for none).
    pub ramdisk_size: u64,
    /// The domain's command line.
    pub command_line: &'a [u8],
}

/// Fills a start_info page for a domain laid out as `layout`. Returns it and
/// whether the command line had to be cut to fit its 1024 bytes.
pub fn start_info(layout: &Layout, facts: &StartInfoFacts) -> (StartInfo, bool) {
    let mut info = StartInfo::new();
    info.nr_pages = facts.nr_pages;
    info.shared_info = facts.shared_info;
    info.flags = facts.flags;
    info.pt_base = layout.page_tables_start;
    info.nr_pt_frames = layout.nr_page_table_frames;
    info.mfn_list = layout.p2m_start;
    // Without SIF_MOD_START_PFN, mod_start is a virtual address.
    if facts.ramdisk_size > 0 {
        info.mod_start = layout.ramdisk_start;
        info.mod_len = facts.ramdisk_size;
    }
    // Keep room for the terminating NUL.
    let room = info.cmd_line.len() - 1;
    let cut = facts.command_line.len() > room;
    let line = &facts.command_line[..facts.command_line.len().min(room)];
    info.cmd_line[..line.len()].copy_from_slice(line);
    (info, cut)
}

/// Present, writable, user (guest kernels run in ring 3).
const TABLE_FLAGS: u64 = 0b111;
/// Present and user: how page-table frames map themselves.
const READ_ONLY_FLAGS: u64 = 0b101;
/// The writable bit.
const WRITABLE: u64 = 0b010;

/// Writes the start-of-day page tables of a domain laid out as `layout`:
/// `v_start..v_end` mapped with 4 KiB pages to the domain's first frames,
/// every page writable except the page-table frames themselves, which are
/// mapped read-only (the hypervisor validates the tree and would refuse a
/// writable mapping of a table). The L4 is the first page-table frame; the
/// hypervisor's L4 slots are left empty (validation fills them).
///
/// `mfn_of(pfn)` gives the machine frame of a pseudo-physical frame;
/// `write(table_pfn, index, value)` stores one entry. Returns how many
/// page-table frames were used (at most `layout.nr_page_table_frames`).
pub fn build_page_tables(
    layout: &Layout,
    mfn_of: impl Fn(u64) -> u64,
    mut write: impl FnMut(u64, usize, u64),
) -> u64 {
    let first = layout.pfn_of(layout.page_tables_start);
    let tables = first..first + layout.nr_page_table_frames;
    let mut used = 1; // the L4
                      // What each level's entry for the current address points at, so that a
                      // table is created once: (level 3, 2, 1) -> (index in parent, table pfn).
    let mut current: [Option<(u64, u64)>; 3] = [None; 3];
    for pfn in 0..layout.mapped_pages() {
        let address = layout.v_start + pfn * PAGE_SIZE;
        let mut parent = first;
        for (slot, level) in [4u32, 3, 2].into_iter().enumerate() {
            let span = address >> (12 + 9 * (level - 1));
            let index = (address >> (12 + 9 * (level - 1))) & 511;
            let table = match current[slot] {
                Some((known, table)) if known == span => table,
                _ => {
                    let table = first + used;
                    used += 1;
                    write(
                        parent,
                        index as usize,
                        (mfn_of(table) * PAGE_SIZE) | TABLE_FLAGS,
                    );
                    current[slot] = Some((span, table));
                    // A new table below invalidates what we knew further down.
                    for lower in current.iter_mut().skip(slot + 1) {
                        *lower = None;
                    }
                    table
                }
            };
            parent = table;
        }
        let flags = if tables.contains(&pfn) {
            READ_ONLY_FLAGS
        } else {
            READ_ONLY_FLAGS | WRITABLE
        };
        write(
            parent,
            ((address >> 12) & 511) as usize,
            (mfn_of(pfn) * PAGE_SIZE) | flags,
        );
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0xffff_ffff_8000_0000;

    fn request(nr_pages: u64) -> Request {
        Request {
            virt_base: BASE,
            image_end: BASE + 0x20_0000,
            ramdisk_size: 0x1_0001,
            nr_pages,
            extra_pages: 0,
        }
    }

    #[test]
    fn follows_xens_start_of_day_order() {
        let layout = compute(&request(16384)).unwrap();
        assert_eq!(layout.v_start, BASE);
        assert_eq!(layout.ramdisk_start, BASE + 0x20_0000);
        assert_eq!(
            layout.p2m_start,
            BASE + 0x21_1000,
            "ramdisk rounded up to a page"
        );
        assert_eq!(layout.start_info, layout.p2m_start + 16384 * 8);
        assert_eq!(layout.page_tables_start, layout.start_info + PAGE_SIZE);
        assert_eq!(
            layout.stack_start,
            layout.page_tables_start + layout.nr_page_table_frames * PAGE_SIZE
        );
        assert_eq!(layout.stack_top, layout.stack_start + PAGE_SIZE);
        assert_eq!(layout.v_end % (4 << 20), 0);
        assert!(layout.v_end - layout.stack_top >= 512 << 10);
    }

    #[test]
    fn page_tables_map_the_whole_region_including_themselves() {
        for pages in [1024u64, 16384, 65536, 262144] {
            let mut r = request(pages);
            r.ramdisk_size = pages * 1024; // make the region grow with memory
            let layout = compute(&r).unwrap();
            assert!(
                layout.nr_page_table_frames >= page_tables_needed(layout.v_start, layout.v_end),
                "{pages} pages"
            );
        }
    }

    #[test]
    fn counts_tables_per_level() {
        // 4 MiB at a 1 GiB boundary: L4, one L3, one L2, two L1s.
        assert_eq!(page_tables_needed(1 << 30, (1 << 30) + (4 << 20)), 5);
        // Crossing a 1 GiB boundary needs a second L2.
        assert_eq!(
            page_tables_needed((1 << 30) - (2 << 20), (1 << 30) + (2 << 20)),
            6
        );
    }

    #[test]
    fn extra_pages_come_before_the_page_tables() {
        let mut r = request(16384);
        r.extra_pages = 2;
        let layout = compute(&r).unwrap();
        assert_eq!(layout.extra_start, layout.start_info + PAGE_SIZE);
        assert_eq!(layout.page_tables_start, layout.extra_start + 2 * PAGE_SIZE);
    }

    #[test]
    fn too_little_memory_says_how_much_is_needed() {
        match compute(&request(256)) {
            Err(LayoutError::NotEnoughMemory { needed_pages }) => assert!(needed_pages > 256),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_to_run_off_the_address_space() {
        let mut r = request(16384);
        r.virt_base = 0xffff_ffff_ffe0_0000;
        r.image_end = 0xffff_ffff_fff0_0000;
        assert_eq!(compute(&r), Err(LayoutError::AddressSpaceOverflow));
        let mut low = request(16384);
        low.virt_base = 0x0000_7fff_fff0_0000;
        low.image_end = 0x0000_7fff_fff8_0000;
        assert_eq!(compute(&low), Err(LayoutError::AddressSpaceOverflow));
        let mut hole = request(16384);
        hole.virt_base = 0xffff_8000_0000_0000;
        hole.image_end = 0xffff_8000_0010_0000;
        assert_eq!(compute(&hole), Err(LayoutError::AddressSpaceOverflow));
    }

    #[test]
    fn start_info_describes_the_layout() {
        let layout = compute(&request(16384)).unwrap();
        let facts = StartInfoFacts {
            nr_pages: 16384,
            shared_info: 0x1234_5000,
            flags: 3,
            ramdisk_size: 0x1_0001,
            command_line: b"console=hvc0 hello=world",
        };
        let (info, cut) = start_info(&layout, &facts);
        assert!(!cut);
        assert_eq!(&info.magic[..14], b"xen-3.0-x86_64");
        assert_eq!(info.nr_pages, 16384);
        assert_eq!(info.shared_info, 0x1234_5000);
        assert_eq!(info.flags, 3);
        assert_eq!(info.pt_base, layout.page_tables_start);
        assert_eq!(info.nr_pt_frames, layout.nr_page_table_frames);
        assert_eq!(info.mfn_list, layout.p2m_start);
        assert_eq!(
            (info.mod_start, info.mod_len),
            (layout.ramdisk_start, 0x1_0001)
        );
        assert_eq!(&info.cmd_line[..24], b"console=hvc0 hello=world");
        assert_eq!(info.cmd_line[24], 0);
    }

    #[test]
    fn start_info_without_ramdisk_or_with_a_long_command_line() {
        let layout = compute(&request(16384)).unwrap();
        let long = [b'x'; 2000];
        let facts = StartInfoFacts {
            nr_pages: 16384,
            shared_info: 0,
            flags: 0,
            ramdisk_size: 0,
            command_line: &long,
        };
        let (info, cut) = start_info(&layout, &facts);
        assert!(cut);
        assert_eq!((info.mod_start, info.mod_len), (0, 0));
        assert_eq!(info.cmd_line[1022], b'x');
        assert_eq!(info.cmd_line[1023], 0, "always NUL-terminated");
    }

    #[test]
    fn initial_page_tables_map_everything_and_protect_themselves() {
        use std::collections::HashMap;
        let layout = compute(&request(16384)).unwrap();
        let mut entries: HashMap<(u64, usize), u64> = HashMap::new();
        // Machine frames are PFN + 1000, to tell the two apart.
        let used = build_page_tables(
            &layout,
            |pfn| pfn + 1000,
            |table, index, value| {
                assert!(
                    entries.insert((table, index), value).is_none(),
                    "entry written twice"
                );
            },
        );
        assert!(used <= layout.nr_page_table_frames);
        assert_eq!(used, page_tables_needed(layout.v_start, layout.v_end));
        // Walk every mapped page through the tables, as the MMU would.
        let first = layout.pfn_of(layout.page_tables_start);
        for pfn in 0..layout.mapped_pages() {
            let address = layout.v_start + pfn * PAGE_SIZE;
            let mut table = first;
            for level in [4u32, 3, 2] {
                let index = ((address >> (12 + 9 * (level - 1))) & 511) as usize;
                let entry = entries[&(table, index)];
                assert_eq!(entry & 0b111, 0b111);
                table = (entry >> 12) - 1000;
            }
            let leaf = entries[&(table, ((address >> 12) & 511) as usize)];
            assert_eq!(leaf >> 12, pfn + 1000);
            let is_table = (first..first + used).contains(&pfn);
            assert_eq!(leaf & WRITABLE == 0, is_table, "pfn {pfn}");
        }
        // Nothing in the hypervisor's L4 slots.
        assert!(entries
            .keys()
            .all(|&(table, index)| table != first || !(256..272).contains(&index)));
    }

    #[test]
    fn pfns_count_from_virt_base() {
        let layout = compute(&request(16384)).unwrap();
        assert_eq!(layout.pfn_of(BASE), 0);
        assert_eq!(
            layout.pfn_of(layout.start_info),
            (layout.start_info - BASE) / PAGE_SIZE
        );
    }
}
