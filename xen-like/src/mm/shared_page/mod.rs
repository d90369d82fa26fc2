//! The shared info page as the hypervisor touches it: Xen's layout, made of atomics.
//!
//! A domain's shared info page (`hypercall_abi::SharedInfo`) is written by
//! two parties at once. The hypervisor sets event bits, the upcall flag,
//! `cr2` and the time; the guest clears pending bits and selectors, masks
//! and unmasks ports and its upcalls, all without asking. With several CPUs
//! the two really do run at the same moment, which is why Xen changes the
//! event words with locked instructions (`guest_test_and_set_bit`). A plain
//! `&mut SharedInfo` in the hypervisor would be a lie twice over: it claims
//! nobody else writes the page, and a read-modify-write through it
//! (`pending |= bit`) can lose a bit the guest cleared or set in between.
//!
//! [`SharedInfoPage`] lays atomics over exactly the same bytes
//! (compile-time checks below compare every offset with the ABI's struct),
//! and offers only the operations the hypervisor needs, each a single
//! atomic instruction or a sequence whose interleaving with the guest is
//! argued beside it. The hypervisor reaches a page only as
//! `&SharedInfoPage`, through `mm/shared_page/frame.rs`, which holds the frame
//! for the domain's life (frame-table invariant 6); the event-channel rules
//! and the time code take the same type, so host tests run them on a page
//! in ordinary memory.
//!
//! A vCPU's `vcpu_info` starts as a slot of this page, and the guest may
//! move it to a page of its own (`VCPUOP_register_vcpu_info`,
//! `vcpu_info_frame.rs`, held the same way). So the hypervisor never asks
//! the page for a vCPU's `vcpu_info`: it asks the domain
//! (`Domain::vcpu_info`), which knows where it is now.
//!
//! Orderings: the event words use `SeqCst` read-modify-writes, as Xen's
//! locked bit operations are full barriers; the time fields use Xen's
//! version protocol (odd while changing) with release stores.

#[cfg(feature = "kernel")]
mod frame;
#[cfg(feature = "kernel")]
pub use frame::*;
#[cfg(feature = "kernel")]
mod vcpu_info_frame;
#[cfg(feature = "kernel")]
pub use vcpu_info_frame::*;

// Atomics, not the `volatile` crate: a volatile access stops the compiler
// from caching or eliding it, but says nothing about ordering or about
// read-modify-write against a guest writing the same word on another CPU
// (Xen's `test_and_set_bit` on the pending bits). Atomics give both.
use core::sync::atomic::{AtomicI8, AtomicU32, AtomicU64, AtomicU8, Ordering};
use hypercall_abi::layout::{EVTCHN_WORDS, MAX_VIRT_CPUS};
use hypercall_abi::{SharedInfo, VcpuInfo, VcpuTimeInfo};

/// `vcpu_time_info`, as atomics.
#[repr(C)]
pub struct VcpuTimeCells {
    version: AtomicU32,
    pad0: AtomicU32,
    tsc_timestamp: AtomicU64,
    system_time: AtomicU64,
    tsc_to_system_mul: AtomicU32,
    tsc_shift: AtomicI8,
    flags: AtomicU8,
    pad1: [AtomicU8; 2],
}

/// `vcpu_info`, as atomics.
#[repr(C)]
pub struct VcpuInfoCells {
    upcall_pending: AtomicU8,
    upcall_mask: AtomicU8,
    pad0: [AtomicU8; 6],
    pending_sel: AtomicU64,
    cr2: AtomicU64,
    arch_pad: AtomicU64,
    time: VcpuTimeCells,
}

/// `arch_shared_info`, as atomics.
#[repr(C)]
struct ArchSharedCells {
    max_pfn: AtomicU64,
    pfn_to_mfn_frame_list_list: AtomicU64,
    nmi_reason: AtomicU64,
    p2m_cr3: AtomicU64,
    p2m_vaddr: AtomicU64,
    p2m_generation: AtomicU64,
}

/// The shared info page, as atomics over Xen's `shared_info` layout.
#[repr(C)]
pub struct SharedInfoPage {
    vcpu_info: [VcpuInfoCells; MAX_VIRT_CPUS],
    evtchn_pending: [AtomicU64; EVTCHN_WORDS],
    evtchn_mask: [AtomicU64; EVTCHN_WORDS],
    wc_version: AtomicU32,
    wc_sec: AtomicU32,
    wc_nsec: AtomicU32,
    wc_sec_hi: AtomicU32,
    arch: ArchSharedCells,
}

// The same bytes as the ABI's structs, field by field.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<VcpuTimeCells>() == size_of::<VcpuTimeInfo>());
    assert!(offset_of!(VcpuTimeCells, version) == offset_of!(VcpuTimeInfo, version));
    assert!(offset_of!(VcpuTimeCells, tsc_timestamp) == offset_of!(VcpuTimeInfo, tsc_timestamp));
    assert!(offset_of!(VcpuTimeCells, system_time) == offset_of!(VcpuTimeInfo, system_time));
    assert!(
        offset_of!(VcpuTimeCells, tsc_to_system_mul) == offset_of!(VcpuTimeInfo, tsc_to_system_mul)
    );
    assert!(offset_of!(VcpuTimeCells, tsc_shift) == offset_of!(VcpuTimeInfo, tsc_shift));
    assert!(offset_of!(VcpuTimeCells, flags) == offset_of!(VcpuTimeInfo, flags));
    assert!(size_of::<VcpuInfoCells>() == size_of::<VcpuInfo>());
    assert!(
        offset_of!(VcpuInfoCells, upcall_pending) == offset_of!(VcpuInfo, evtchn_upcall_pending)
    );
    assert!(offset_of!(VcpuInfoCells, upcall_mask) == offset_of!(VcpuInfo, evtchn_upcall_mask));
    assert!(offset_of!(VcpuInfoCells, pending_sel) == offset_of!(VcpuInfo, evtchn_pending_sel));
    assert!(offset_of!(VcpuInfoCells, cr2) == offset_of!(VcpuInfo, arch));
    assert!(offset_of!(VcpuInfoCells, time) == offset_of!(VcpuInfo, time));
    assert!(size_of::<SharedInfoPage>() == size_of::<SharedInfo>());
    assert!(offset_of!(SharedInfoPage, evtchn_pending) == offset_of!(SharedInfo, evtchn_pending));
    assert!(offset_of!(SharedInfoPage, evtchn_mask) == offset_of!(SharedInfo, evtchn_mask));
    assert!(offset_of!(SharedInfoPage, wc_version) == offset_of!(SharedInfo, wc_version));
    assert!(offset_of!(SharedInfoPage, wc_sec) == offset_of!(SharedInfo, wc_sec));
    assert!(offset_of!(SharedInfoPage, wc_nsec) == offset_of!(SharedInfo, wc_nsec));
    assert!(offset_of!(SharedInfoPage, wc_sec_hi) == offset_of!(SharedInfo, wc_sec_hi));
    assert!(offset_of!(SharedInfoPage, arch) == offset_of!(SharedInfo, arch));
    assert!(
        offset_of!(SharedInfoPage, arch) + offset_of!(ArchSharedCells, nmi_reason)
            == offset_of!(SharedInfo, arch) + 16
    );
    assert!(core::mem::align_of::<SharedInfoPage>() <= 4096);
};

/// One time reading to publish in a `vcpu_time_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeReading {
    /// The TSC at the moment of the reading.
    pub tsc_timestamp: u64,
    /// Nanoseconds since boot at that moment.
    pub system_time: u64,
    /// The 32.32 multiplier from shifted TSC ticks to nanoseconds.
    pub tsc_to_system_mul: u32,
    /// The shift applied to the TSC delta first.
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_*` flags.
    pub flags: u8,
}

/// Why `offset` cannot hold a `vcpu_info` in a page
/// (`VCPUOP_register_vcpu_info`), or `None` if it can.
///
/// Xen 4.17 asks only that the whole 64 bytes fit in the page; later Xen
/// also asks for the alignment of `vcpu_info_t` (8 bytes). Here the
/// alignment is not optional: the hypervisor reaches the fields as Rust
/// atomics ([`VcpuInfoCells`]), and an atomic at a misaligned address is
/// undefined behaviour (and on x86, a locked operation that straddles a
/// cache line is a bus lock every other CPU pays for).
pub fn vcpu_info_offset_refusal(offset: u64) -> Option<&'static str> {
    const PAGE_SIZE: u64 = 4096;
    let size = core::mem::size_of::<VcpuInfo>() as u64;
    if offset > PAGE_SIZE - size {
        Some("the vcpu_info (64 bytes) would run off the end of its page")
    } else if !offset.is_multiple_of(core::mem::align_of::<VcpuInfoCells>() as u64) {
        Some("the vcpu_info must be 8-byte aligned")
    } else {
        None
    }
}

impl VcpuInfoCells {
    /// A `vcpu_info` with every byte zero.
    const fn new() -> Self {
        Self {
            upcall_pending: AtomicU8::new(0),
            upcall_mask: AtomicU8::new(0),
            pad0: [const { AtomicU8::new(0) }; 6],
            pending_sel: AtomicU64::new(0),
            cr2: AtomicU64::new(0),
            arch_pad: AtomicU64::new(0),
            time: VcpuTimeCells {
                version: AtomicU32::new(0),
                pad0: AtomicU32::new(0),
                tsc_timestamp: AtomicU64::new(0),
                system_time: AtomicU64::new(0),
                tsc_to_system_mul: AtomicU32::new(0),
                tsc_shift: AtomicI8::new(0),
                flags: AtomicU8::new(0),
                pad1: [const { AtomicU8::new(0) }; 2],
            },
        }
    }

    /// Copies every field of `source` here, one atomic load and store per
    /// field: what `VCPUOP_register_vcpu_info` does to carry a vCPU's state
    /// from its old place to the new one. The guest may write either place
    /// meanwhile; Xen's `memcpy` gives no more than this either, and the
    /// hypervisor marks every event pending afterwards
    /// ([`VcpuInfoCells::mark_everything_pending`]) so nothing is lost.
    pub fn copy_from(&self, source: &VcpuInfoCells) {
        let copy_u8 = |to: &AtomicU8, from: &AtomicU8| {
            to.store(from.load(Ordering::SeqCst), Ordering::SeqCst)
        };
        let copy_u32 = |to: &AtomicU32, from: &AtomicU32| {
            to.store(from.load(Ordering::SeqCst), Ordering::SeqCst)
        };
        let copy_u64 = |to: &AtomicU64, from: &AtomicU64| {
            to.store(from.load(Ordering::SeqCst), Ordering::SeqCst)
        };
        copy_u8(&self.upcall_pending, &source.upcall_pending);
        copy_u8(&self.upcall_mask, &source.upcall_mask);
        for (to, from) in self.pad0.iter().zip(&source.pad0) {
            copy_u8(to, from);
        }
        copy_u64(&self.pending_sel, &source.pending_sel);
        copy_u64(&self.cr2, &source.cr2);
        copy_u64(&self.arch_pad, &source.arch_pad);
        copy_u32(&self.time.version, &source.time.version);
        copy_u32(&self.time.pad0, &source.time.pad0);
        copy_u64(&self.time.tsc_timestamp, &source.time.tsc_timestamp);
        copy_u64(&self.time.system_time, &source.time.system_time);
        copy_u32(&self.time.tsc_to_system_mul, &source.time.tsc_to_system_mul);
        self.time.tsc_shift.store(
            source.time.tsc_shift.load(Ordering::SeqCst),
            Ordering::SeqCst,
        );
        copy_u8(&self.time.flags, &source.time.flags);
        for (to, from) in self.time.pad1.iter().zip(&source.time.pad1) {
            copy_u8(to, from);
        }
    }

    /// Sets every selector bit and `evtchn_upcall_pending`: after moving a
    /// `vcpu_info`, Xen makes the guest scan every word once, so that an
    /// event raised in the old place while the copy was under way is not
    /// lost (a spurious scan costs the guest little).
    pub fn mark_everything_pending(&self) {
        self.pending_sel.store(u64::MAX, Ordering::SeqCst);
        self.upcall_pending.store(1, Ordering::SeqCst);
    }

    /// `evtchn_upcall_pending`.
    #[inline]
    pub fn upcall_pending(&self) -> u8 {
        self.upcall_pending.load(Ordering::SeqCst)
    }

    /// `evtchn_upcall_mask`: non-zero while the guest holds off upcalls.
    #[inline]
    pub fn upcall_mask(&self) -> u8 {
        self.upcall_mask.load(Ordering::SeqCst)
    }

    /// Sets `evtchn_upcall_mask` (the guest's virtual interrupt flag):
    /// on entry to a handler that masks events, on `iret`, at creation.
    pub fn set_upcall_mask(&self, mask: u8) {
        self.upcall_mask.store(mask, Ordering::SeqCst);
    }

    /// `evtchn_pending_sel`.
    pub fn pending_selector(&self) -> u64 {
        self.pending_sel.load(Ordering::SeqCst)
    }

    /// Records the address of the page fault being delivered (`arch.cr2`).
    pub fn set_cr2(&self, address: u64) {
        self.cr2.store(address, Ordering::SeqCst);
    }

    /// `arch.cr2`.
    pub fn cr2(&self) -> u64 {
        self.cr2.load(Ordering::SeqCst)
    }

    /// The upcall rule: events are waiting and the guest has not masked
    /// upcalls (Xen's `local_events_need_delivery`).
    #[inline]
    pub fn events_need_delivery(&self) -> bool {
        self.upcall_pending() != 0 && self.upcall_mask() == 0
    }

    /// Sets the selector bit of `word`, then `evtchn_upcall_pending` if the
    /// selector bit was clear. Returns whether `evtchn_upcall_pending` was
    /// newly set (Xen's `vcpu_mark_events_pending` kicks the vCPU only
    /// then). Both are single atomic swaps, so a guest clearing either at
    /// the same moment loses nothing: whichever order, the guest's next scan
    /// finds the word.
    pub fn mark_word_pending(&self, word: usize) -> bool {
        let selector = 1u64 << (word % 64);
        if self.pending_sel.fetch_or(selector, Ordering::SeqCst) & selector != 0 {
            return false;
        }
        self.upcall_pending.swap(1, Ordering::SeqCst) == 0
    }

    /// The `version` of `vcpu_time_info` (odd while an update is under way).
    pub fn time_version(&self) -> u32 {
        self.time.version.load(Ordering::SeqCst)
    }

    /// `system_time` of `vcpu_time_info`.
    pub fn system_time(&self) -> u64 {
        self.time.system_time.load(Ordering::SeqCst)
    }

    /// Publishes `reading` with Xen's version protocol: the version becomes
    /// odd, the fields change, the version becomes even and larger; a
    /// reader that sees an odd or changed version reads again.
    pub fn publish_time(&self, reading: &TimeReading) {
        let version = self.time.version.load(Ordering::Relaxed).wrapping_add(1) | 1;
        self.time.version.store(version, Ordering::SeqCst);
        self.time
            .tsc_timestamp
            .store(reading.tsc_timestamp, Ordering::Release);
        self.time
            .system_time
            .store(reading.system_time, Ordering::Release);
        self.time
            .tsc_to_system_mul
            .store(reading.tsc_to_system_mul, Ordering::Release);
        self.time
            .tsc_shift
            .store(reading.tsc_shift, Ordering::Release);
        self.time.flags.store(reading.flags, Ordering::Release);
        self.time
            .version
            .store(version.wrapping_add(1), Ordering::SeqCst);
    }
}

impl SharedInfoPage {
    /// A page with every byte zero, in ordinary memory (host tests; the
    /// hypervisor's pages are guest frames, reached through `mm/`).
    pub const fn new() -> Self {
        Self {
            vcpu_info: [const { VcpuInfoCells::new() }; MAX_VIRT_CPUS],
            evtchn_pending: [const { AtomicU64::new(0) }; EVTCHN_WORDS],
            evtchn_mask: [const { AtomicU64::new(0) }; EVTCHN_WORDS],
            wc_version: AtomicU32::new(0),
            wc_sec: AtomicU32::new(0),
            wc_nsec: AtomicU32::new(0),
            wc_sec_hi: AtomicU32::new(0),
            arch: ArchSharedCells {
                max_pfn: AtomicU64::new(0),
                pfn_to_mfn_frame_list_list: AtomicU64::new(0),
                nmi_reason: AtomicU64::new(0),
                p2m_cr3: AtomicU64::new(0),
                p2m_vaddr: AtomicU64::new(0),
                p2m_generation: AtomicU64::new(0),
            },
        }
    }

    /// The slot `vcpu_info[vcpu]` in this page (vCPU numbers wrap at 32,
    /// the ABI's maximum). Where a vCPU's `vcpu_info` *is* may be elsewhere
    /// (`VCPUOP_register_vcpu_info`): the hypervisor reaches it through
    /// `Domain::vcpu_info`, never through this slot, which only the domain's
    /// setup and host tests use.
    pub fn vcpu_slot(&self, vcpu: usize) -> &VcpuInfoCells {
        &self.vcpu_info[vcpu % MAX_VIRT_CPUS]
    }

    /// Word `word` of `evtchn_pending`.
    pub fn pending_word(&self, word: usize) -> u64 {
        self.evtchn_pending[word % EVTCHN_WORDS].load(Ordering::SeqCst)
    }

    /// Word `word` of `evtchn_mask`.
    pub fn mask_word(&self, word: usize) -> u64 {
        self.evtchn_mask[word % EVTCHN_WORDS].load(Ordering::SeqCst)
    }

    /// Sets `bit` in pending word `word`; returns whether it was already set
    /// (Xen's `guest_test_and_set_bit`).
    pub fn test_and_set_pending(&self, word: usize, bit: u64) -> bool {
        self.evtchn_pending[word % EVTCHN_WORDS].fetch_or(bit, Ordering::SeqCst) & bit != 0
    }

    /// Clears `bit` in pending word `word`.
    pub fn clear_pending(&self, word: usize, bit: u64) {
        self.evtchn_pending[word % EVTCHN_WORDS].fetch_and(!bit, Ordering::SeqCst);
    }

    /// Clears `bit` in mask word `word`; returns whether it was set (Xen's
    /// `guest_test_and_clear_bit`).
    pub fn test_and_clear_mask(&self, word: usize, bit: u64) -> bool {
        self.evtchn_mask[word % EVTCHN_WORDS].fetch_and(!bit, Ordering::SeqCst) & bit != 0
    }

    /// Sets `bit` in mask word `word` (the guest's job normally; tests and
    /// a fresh domain's setup use it).
    pub fn set_mask(&self, word: usize, bit: u64) {
        self.evtchn_mask[word % EVTCHN_WORDS].fetch_or(bit, Ordering::SeqCst);
    }

    /// `arch.nmi_reason`: Xen's reason for a virtual NMI. This hypervisor
    /// delivers none, so it stays 0 (shutdown requests travel through the
    /// config store's `control/shutdown`).
    pub fn nmi_reason(&self) -> u64 {
        self.arch.nmi_reason.load(Ordering::SeqCst)
    }

    /// Publishes the wall clock of system time 0 (`wc_*`), with the same
    /// version protocol as the vCPU time.
    pub fn publish_wallclock(&self, unix_seconds: u64, nanoseconds: u32) {
        let version = self.wc_version.load(Ordering::Relaxed).wrapping_add(1) | 1;
        self.wc_version.store(version, Ordering::SeqCst);
        self.wc_sec.store(unix_seconds as u32, Ordering::Release);
        self.wc_sec_hi
            .store((unix_seconds >> 32) as u32, Ordering::Release);
        self.wc_nsec.store(nanoseconds, Ordering::Release);
        self.wc_version
            .store(version.wrapping_add(1), Ordering::SeqCst);
    }

    /// The wall clock published: (version, seconds, nanoseconds).
    pub fn wallclock(&self) -> (u32, u64, u32) {
        let seconds = u64::from(self.wc_sec.load(Ordering::SeqCst))
            | u64::from(self.wc_sec_hi.load(Ordering::SeqCst)) << 32;
        (
            self.wc_version.load(Ordering::SeqCst),
            seconds,
            self.wc_nsec.load(Ordering::SeqCst),
        )
    }
}

/// What the guest does to its page, for host tests that play the guest.
#[cfg(test)]
impl SharedInfoPage {
    /// The guest writes word `word` of `evtchn_mask`.
    pub fn guest_write_mask_word(&self, word: usize, value: u64) {
        self.evtchn_mask[word].store(value, Ordering::SeqCst);
    }

    /// The guest writes word `word` of `evtchn_pending`.
    pub fn guest_write_pending_word(&self, word: usize, value: u64) {
        self.evtchn_pending[word].store(value, Ordering::SeqCst);
    }

    /// The guest writes vCPU `vcpu`'s upcall flag, selector and mask.
    pub fn guest_write_vcpu(&self, vcpu: usize, pending: u8, selector: u64, mask: u8) {
        let info = &self.vcpu_info[vcpu];
        info.upcall_pending.store(pending, Ordering::SeqCst);
        info.pending_sel.store(selector, Ordering::SeqCst);
        info.upcall_mask.store(mask, Ordering::SeqCst);
    }

    /// Every event word and vCPU 0's event fields, to compare before and
    /// after an operation that must change nothing.
    pub fn event_state(&self) -> ([u64; EVTCHN_WORDS], [u64; EVTCHN_WORDS], u8, u64, u8) {
        let vcpu = self.vcpu_slot(0);
        (
            core::array::from_fn(|word| self.pending_word(word)),
            core::array::from_fn(|word| self.mask_word(word)),
            vcpu.upcall_pending(),
            vcpu.pending_selector(),
            vcpu.upcall_mask(),
        )
    }
}

impl Default for SharedInfoPage {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marking_a_word_sets_the_selector_then_the_upcall_flag_once() {
        let page = Box::new(SharedInfoPage::new());
        let vcpu = page.vcpu_slot(0);
        assert!(vcpu.mark_word_pending(3));
        assert_eq!(vcpu.pending_selector(), 1 << 3);
        assert_eq!(vcpu.upcall_pending(), 1);
        // Another word: its selector bit, but the upcall was already due.
        assert!(!vcpu.mark_word_pending(5));
        assert_eq!(vcpu.pending_selector(), 1 << 3 | 1 << 5);
        // The same word again: nothing new.
        assert!(!vcpu.mark_word_pending(3));
    }

    #[test]
    fn a_vcpu_info_must_fit_in_its_page_and_be_aligned() {
        assert_eq!(vcpu_info_offset_refusal(0), None);
        assert_eq!(vcpu_info_offset_refusal(8), None);
        assert_eq!(vcpu_info_offset_refusal(4096 - 64), None);
        assert!(vcpu_info_offset_refusal(4096 - 56).is_some());
        assert!(vcpu_info_offset_refusal(4096).is_some());
        assert!(vcpu_info_offset_refusal(u64::from(u32::MAX)).is_some());
        assert!(vcpu_info_offset_refusal(4).is_some());
        assert!(vcpu_info_offset_refusal(1).is_some());
    }

    #[test]
    fn moving_a_vcpu_info_copies_every_field_then_asks_for_a_full_scan() {
        let old = Box::new(SharedInfoPage::new());
        let new = Box::new(SharedInfoPage::new());
        old.guest_write_vcpu(0, 0, 1 << 2, 1);
        old.vcpu_slot(0).set_cr2(0x1234_5000);
        old.vcpu_slot(0).publish_time(&TimeReading {
            tsc_timestamp: 77,
            system_time: 99,
            tsc_to_system_mul: 3,
            tsc_shift: -2,
            flags: 1,
        });
        let moved = new.vcpu_slot(5);
        moved.copy_from(old.vcpu_slot(0));
        assert_eq!(moved.upcall_mask(), 1);
        assert_eq!(moved.pending_selector(), 1 << 2);
        assert_eq!(moved.cr2(), 0x1234_5000);
        assert_eq!(moved.time_version(), 2);
        assert_eq!(moved.system_time(), 99);
        moved.mark_everything_pending();
        assert_eq!(moved.pending_selector(), u64::MAX);
        assert_eq!(moved.upcall_pending(), 1);
        // Still masked: the upcall waits until the guest unmasks.
        assert!(!moved.events_need_delivery());
        // The old place is left as it was.
        assert_eq!(old.vcpu_slot(0).upcall_pending(), 0);
    }

    #[test]
    fn event_words_are_changed_bit_by_bit() {
        let page = Box::new(SharedInfoPage::new());
        assert!(!page.test_and_set_pending(2, 1 << 7));
        assert!(page.test_and_set_pending(2, 1 << 7));
        // What the guest did meanwhile is kept: only our bit changes.
        assert!(!page.test_and_set_pending(2, 1 << 1));
        page.clear_pending(2, 1 << 7);
        assert_eq!(page.pending_word(2), 1 << 1);
        page.set_mask(4, 1 << 9 | 1);
        assert!(page.test_and_clear_mask(4, 1 << 9));
        assert!(!page.test_and_clear_mask(4, 1 << 9));
        assert_eq!(page.mask_word(4), 1);
    }

    #[test]
    fn time_is_published_with_an_even_larger_version() {
        let page = Box::new(SharedInfoPage::new());
        let vcpu = page.vcpu_slot(0);
        let reading = TimeReading {
            tsc_timestamp: 1000,
            system_time: 42,
            tsc_to_system_mul: 7,
            tsc_shift: -1,
            flags: 1,
        };
        vcpu.publish_time(&reading);
        assert_eq!(vcpu.time_version(), 2);
        assert_eq!(vcpu.system_time(), 42);
        vcpu.publish_time(&reading);
        assert_eq!(vcpu.time_version(), 4);
        page.publish_wallclock(0x1_2345_6789, 5);
        assert_eq!(page.wallclock(), (2, 0x1_2345_6789, 5));
    }

    #[test]
    fn the_cells_lie_over_the_abi_bytes() {
        // A guest that writes the ABI struct and a hypervisor that reads the
        // cells see the same values (the layout checks above, exercised).
        let mut plain = Box::new(SharedInfo::zeroed());
        plain.vcpu_info[0].evtchn_upcall_mask = 1;
        plain.vcpu_info[0].arch.cr2 = 0xdead_b000;
        plain.evtchn_pending[3] = 1 << 4;
        plain.evtchn_mask[63] = u64::MAX;
        plain.arch.nmi_reason = 9;
        let pointer = Box::into_raw(plain);
        // SAFETY: (a test) SharedInfoPage has SharedInfo's size, offsets
        // and an alignment it satisfies; the box is alive and not aliased.
        let cells = unsafe { &*(pointer as *const SharedInfoPage) };
        assert_eq!(cells.vcpu_slot(0).upcall_mask(), 1);
        assert_eq!(cells.vcpu_slot(0).cr2(), 0xdead_b000);
        assert_eq!(cells.pending_word(3), 1 << 4);
        assert_eq!(cells.mask_word(63), u64::MAX);
        assert_eq!(cells.nmi_reason(), 9);
        // SAFETY: (a test) the pointer came from Box::into_raw above.
        drop(unsafe { Box::from_raw(pointer) });
    }
}
