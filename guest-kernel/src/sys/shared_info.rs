//! The shared info page: the one page the hypervisor and this guest both
//! write at any time (event bitmaps, per-vCPU flags, the time snapshots).
//!
//! The hypervisor changes it concurrently, so nothing here hands out a
//! `&mut` into it: fields the guest writes are written with volatile
//! stores, and the event words both sides update are used as atomics (the
//! hypervisor uses locked instructions on them too).

use crate::start::start_info;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use hypercall_abi::{SharedInfo, VcpuInfo};

static SHARED_INFO: AtomicPtr<SharedInfo> = AtomicPtr::new(core::ptr::null_mut());

/// Where the shared info page is mapped.
pub const SHARED_INFO_ADDRESS: u64 = 0xffff_bfff_ffff_f000;

/// Maps the shared info page, whose machine address start_info gives.
#[cfg(not(test))]
pub(super) fn map() {
    let mfn = start_info().shared_info / crate::paging::PAGE_SIZE;
    let flags = crate::paging::WRITABLE | crate::paging::USER | crate::paging::NO_EXECUTE;
    match crate::paging::map(SHARED_INFO_ADDRESS, mfn, flags) {
        Ok(()) => SHARED_INFO.store(SHARED_INFO_ADDRESS as *mut SharedInfo, Ordering::Relaxed),
        Err(error) => crate::println!("guest kernel: cannot map shared info: {error:?}"),
    }
}

/// The shared info page, once mapped, for reading. Fields the hypervisor
/// changes are read with [`read`] (a volatile read), not directly.
pub fn shared_info() -> Option<&'static SharedInfo> {
    let pointer = SHARED_INFO.load(Ordering::Relaxed);
    // SAFETY: when set, the pointer is SHARED_INFO_ADDRESS, where `map`
    // mapped the page for the domain's whole life; the guest never writes
    // it through a reference (only through the volatile and atomic
    // accessors below), so a shared reference stays valid.
    (!pointer.is_null()).then(|| unsafe { &*pointer })
}

/// The shared info page as a raw pointer (null until mapped), for tests
/// that hand its address to the hypervisor. Reading or writing through it
/// is `unsafe` for the caller.
pub fn shared_info_pointer() -> *mut SharedInfo {
    SHARED_INFO.load(Ordering::Relaxed)
}

/// A volatile read of `field`, a field of the shared info page that the
/// hypervisor may change at any time.
pub fn read<T: Copy>(field: &T) -> T {
    // SAFETY: `field` is a valid, aligned reference.
    unsafe { core::ptr::read_volatile(field) }
}

/// Where this vCPU's `vcpu_info` lives once [`register_vcpu_info`] moved
/// it out of the shared info page (null: still in its slot there).
static MOVED_VCPU_INFO: AtomicPtr<VcpuInfo> = AtomicPtr::new(core::ptr::null_mut());

fn vcpu_info() -> Option<*mut VcpuInfo> {
    let moved = MOVED_VCPU_INFO.load(Ordering::Acquire);
    if !moved.is_null() {
        return Some(moved);
    }
    let shared = shared_info_pointer();
    // SAFETY: when not null, the pointer is our mapped shared info page;
    // only a field address is computed.
    (!shared.is_null()).then(|| unsafe { core::ptr::addr_of_mut!((*shared).vcpu_info[0]) })
}

/// This vCPU's `vcpu_info`, wherever it is now, for reading (fields the
/// hypervisor changes are read with [`read`]).
pub fn vcpu_info_ref() -> Option<&'static VcpuInfo> {
    // SAFETY: the pointer is our slot of the mapped shared info page or the
    // place `register_vcpu_info`'s caller promised stays mapped for the
    // domain's life; the guest writes it only through volatile and atomic
    // accessors, as for `shared_info`.
    vcpu_info().map(|info| unsafe { &*info })
}

/// Moves this vCPU's `vcpu_info` to `address`, which is the byte `offset`
/// of machine frame `mfn` (`VCPUOP_register_vcpu_info`, as Linux's
/// `xen_vcpu_setup` does). Returns the hypercall's result; on success every
/// later access of this guest kernel goes to the new place, where the
/// hypervisor has copied the old contents.
///
/// # Safety
///
/// `address` must map `mfn` at `offset`, writable, for the rest of the
/// domain's life (until the caller masks events and stops using it for
/// good, as the attacking tests do at their very end).
pub unsafe fn register_vcpu_info(address: *mut VcpuInfo, mfn: u64, offset: u32) -> i64 {
    // Events stay masked across the move, as Linux moves it with
    // interrupts off: the hypervisor marks every event pending in the new
    // place, and an upcall taken before this kernel looks there would find
    // nothing in the old slot and come back for ever.
    let was_masked = vcpu_info_ref().is_none_or(|info| read(&info.evtchn_upcall_mask) != 0);
    set_upcall_mask(true);
    let request = hypercall_abi::vcpu::VcpuRegisterVcpuInfo {
        mfn,
        offset,
        rsvd: 0,
    };
    // SAFETY: the request lives for the call; the hypervisor only reads it.
    let result = unsafe {
        hypercall_abi::wrappers::hypercall3(
            hypercall_abi::Hypercall::VcpuOp,
            u64::from(hypercall_abi::vcpu::VcpuOp::RegisterVcpuInfo.raw()),
            0,
            &request as *const _ as u64,
        )
    };
    if result == 0 {
        MOVED_VCPU_INFO.store(address, Ordering::Release);
    }
    if !was_masked {
        // Unmasks where the vcpu_info is now, taking what arrived.
        crate::events::set_mask(false);
    }
    result
}

/// Sets this vCPU's `evtchn_upcall_mask` (`true`: events masked). Returns
/// whether `evtchn_upcall_pending` was set when it was read afterwards, or
/// `None` before the page is mapped.
pub fn set_upcall_mask(masked: bool) -> Option<bool> {
    let info = vcpu_info()?;
    // SAFETY: our own vcpu_info, in the mapped shared info page; the mask
    // is the guest's to write, the pending flag is read only.
    unsafe {
        core::ptr::addr_of_mut!((*info).evtchn_upcall_mask).write_volatile(u8::from(masked));
        Some(core::ptr::addr_of!((*info).evtchn_upcall_pending).read_volatile() != 0)
    }
}

/// Whether this vCPU's `evtchn_upcall_mask` is set (events masked, as
/// the hypervisor leaves them on entry to the upcall); `false` before the
/// page is mapped.
pub fn upcall_mask() -> bool {
    shared_info().is_some_and(|shared| read(&shared.vcpu_info[0].evtchn_upcall_mask) != 0)
}

/// Word `index` (0..64) of the `evtchn_mask` bitmap, as an atomic.
fn mask_word(shared: *mut SharedInfo, index: usize) -> &'static AtomicU64 {
    // SAFETY: `shared` is the mapped page; the index is checked by the
    // array indexing in `addr_of_mut!`; the word is 8-byte aligned, and the
    // hypervisor updates it with locked instructions only.
    unsafe { &*(core::ptr::addr_of_mut!((*shared).evtchn_mask[index]) as *const AtomicU64) }
}

/// Sets `port`'s bit in the `evtchn_mask` bitmap (masks it without a
/// hypercall, as Linux does).
pub fn mask_port(port: u32) {
    let shared = shared_info_pointer();
    let (word, bit) = ((port / 64) as usize, 1u64 << (port % 64));
    if !shared.is_null() && word < 64 {
        mask_word(shared, word).fetch_or(bit, Ordering::SeqCst);
    }
}

/// Takes the pending events: clears `evtchn_upcall_pending` and the
/// selector, and for each 64-port word the selector named, clears and
/// passes to `deliver(word, bits)` the pending bits that are not masked.
pub fn take_pending_events(mut deliver: impl FnMut(usize, u64)) {
    let shared = shared_info_pointer();
    let Some(info) = vcpu_info() else { return };
    // SAFETY: the flag, selector and bitmaps live in our mapped shared
    // info page; the hypervisor updates the selector and bitmaps with
    // atomic operations, and so do we, through AtomicU64 views of the same
    // 8-byte-aligned words (`word` < 64: it is a bit index of a u64).
    unsafe {
        core::ptr::addr_of_mut!((*info).evtchn_upcall_pending).write_volatile(0);
        let selector = &*(core::ptr::addr_of_mut!((*info).evtchn_pending_sel) as *const AtomicU64);
        let mut words = selector.swap(0, Ordering::SeqCst);
        while words != 0 {
            let word = words.trailing_zeros() as usize;
            words &= words - 1;
            let pending =
                &*(core::ptr::addr_of_mut!((*shared).evtchn_pending[word]) as *const AtomicU64);
            let mask = mask_word(shared, word).load(Ordering::SeqCst);
            let ready = pending.load(Ordering::SeqCst) & !mask;
            pending.fetch_and(!ready, Ordering::SeqCst);
            deliver(word, ready);
        }
    }
}
