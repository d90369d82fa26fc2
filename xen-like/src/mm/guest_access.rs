//! Copying to and from guest-virtual addresses, safely.
//!
//! Hypercall arguments are often pointers into the guest. The hypervisor
//! never dereferences them directly. Every access goes through this module,
//! in two steps:
//!
//! 1. **The range** (`pagewalk::check_guest_range`, Xen's
//!    `guest_handle_okay`): every byte of the buffer must be canonical,
//!    outside the hypervisor's reserved range
//!    (`0xffff800000000000..=0xffff87ffffffffff`, all of it, the read-only
//!    M2P window included) and must not wrap past 2^64. The hypervisor never
//!    touches its own memory on a guest's behalf.
//! 2. **The pages**: a software walk of the guest's current page tables with
//!    the guest's (ring 3) permissions refuses unmapped, supervisor-only and,
//!    for a write, read-only pages; the bytes are then copied through the
//!    direct map.
//!
//! A write that spans pages walks all of them before it writes the first
//! byte, so a bad page never leaves the guest half a buffer; requests that
//! the hypervisor reads, acts on and writes back (`read_for_update`) are
//! checked writable before the action. A bad pointer is then an `-EFAULT`
//! for the guest, never a fault in the hypervisor.
//!
//! Values are copied as bytes, so the typed functions take only
//! `bytemuck::Pod` types: plain data with no padding, for which any bytes
//! the guest wrote are a valid value. The ABI structures derive it in
//! `hypercall_abi`, where the derive checks there is no padding.

use super::{physical_pointer, DirectMap, PAGE_SIZE};
use crate::arch::x86_64::{instructions, percpu::this_cpu};
use crate::console::GUEST;
use crate::mm::pagewalk::{check_guest_range, translate, Access};
use bytemuck::Pod;
use hypercall_abi::XenError;

/// Checks that the guest may name `[address, address + length)` as a
/// buffer (step 1 above), without walking it: `-EFAULT` otherwise.
pub fn check_range(address: u64, length: u64) -> Result<(), XenError> {
    check_guest_range(address, length).map_err(|problem| {
        log::debug!(target: GUEST, "d{}: guest buffer {address:#x} (+{length:#x}) refused: {problem}: -EFAULT", current_domain());
        XenError::EFAULT
    })
}

/// Checks an array of `count` elements of `size` bytes at `address` (Xen's
/// `guest_handle_okay` on an array): a count whose byte length does not fit
/// in 64 bits is refused before anything is read, so an absurd count fails
/// at once instead of after a long loop.
pub fn check_array(address: u64, count: u64, size: u64) -> Result<(), XenError> {
    let length = count.checked_mul(size).ok_or_else(|| {
        log::debug!(target: GUEST, "d{}: guest array of {count:#x} entries of {size} bytes: -EFAULT", current_domain());
        XenError::EFAULT
    })?;
    check_range(address, length)
}

/// The calling domain's ID, for log lines.
fn current_domain() -> u16 {
    this_cpu().current_domain().unwrap_or(u16::MAX)
}

/// Walks `[address, address + length)` page by page, handing each piece's
/// direct-map pointer and length to `piece`; stops at the first page the
/// guest may not access as `access`.
fn walk_pieces(
    root: u64,
    address: u64,
    length: usize,
    access: Access,
    mut piece: impl FnMut(*mut u8, usize),
) -> Result<(), XenError> {
    let mut done = 0usize;
    while done < length {
        // No overflow: the range check refused buffers that wrap.
        let current = address + done as u64;
        let in_page = (PAGE_SIZE - current % PAGE_SIZE) as usize;
        let chunk = in_page.min(length - done);
        let physical = translate(&DirectMap, root, current, access).map_err(|problem| {
            log::debug!(target: GUEST, "d{}: guest address {current:#x}: {problem:?}: -EFAULT", current_domain());
            XenError::EFAULT
        })?;
        piece(physical_pointer::<u8>(physical), chunk);
        done += chunk;
    }
    Ok(())
}

/// Checks the range, then walks it (see the module's two steps). A write
/// that spans pages walks them all once before the pass that writes.
fn for_each_piece(
    address: u64,
    length: usize,
    access: Access,
    piece: impl FnMut(*mut u8, usize),
) -> Result<(), XenError> {
    check_range(address, length as u64)?;
    let root = instructions::read_cr3();
    let last = address + (length as u64).saturating_sub(1);
    if access == Access::Write && address / PAGE_SIZE != last / PAGE_SIZE {
        walk_pieces(root, address, length, access, |_, _| {})?;
    }
    walk_pieces(root, address, length, access, piece)
}

/// Checks that the guest could write `length` bytes at `address`, without
/// writing: for a hypercall that must not consume anything (console input,
/// say) when its answer cannot be delivered.
pub fn check_writable(address: u64, length: usize) -> Result<(), XenError> {
    for_each_piece(address, length, Access::Write, |_, _| {})
}

fn copy_in(address: u64, out: &mut [u8], access: Access) -> Result<(), XenError> {
    let mut offset = 0;
    for_each_piece(address, out.len(), access, |source, length| {
        // SAFETY: `source` points at `length` bytes of a RAM frame the guest
        // may read (checked by the walk), through the direct map; `out` has
        // room for them.
        unsafe { core::ptr::copy_nonoverlapping(source, out[offset..].as_mut_ptr(), length) };
        offset += length;
    })
}

/// Copies `out.len()` bytes from the guest at `address`.
pub fn copy_from_guest(address: u64, out: &mut [u8]) -> Result<(), XenError> {
    copy_in(address, out, Access::Read)
}

/// Copies `out.len()` bytes from the guest at `address`, which the guest
/// must also be able to write: for in/out requests whose answer is written
/// back after the hypervisor acted on them, so that an answer that could
/// not be delivered never follows an action already taken.
pub fn copy_from_guest_for_update(address: u64, out: &mut [u8]) -> Result<(), XenError> {
    copy_in(address, out, Access::Write)
}

/// Copies `data` into the guest at `address`: all of it, or (`-EFAULT`)
/// nothing.
pub fn copy_to_guest(address: u64, data: &[u8]) -> Result<(), XenError> {
    let mut offset = 0;
    for_each_piece(address, data.len(), Access::Write, |target, length| {
        // SAFETY: `target` points at `length` bytes of a RAM frame the guest
        // may write (checked by the walk), through the direct map.
        unsafe { core::ptr::copy_nonoverlapping(data[offset..].as_ptr(), target, length) };
        offset += length;
    })
}

fn read_value<T: Pod>(address: u64, access: Access) -> Result<T, XenError> {
    let mut value = T::zeroed();
    copy_in(address, bytemuck::bytes_of_mut(&mut value), access)?;
    Ok(value)
}

/// Reads an in/out request that will be written back: as
/// `read_from_guest`, but the guest must be able to write it too.
pub fn read_for_update<T: Pod>(address: u64) -> Result<T, XenError> {
    read_value(address, Access::Write)
}

/// Reads one value of a plain type from the guest.
pub fn read_from_guest<T: Pod>(address: u64) -> Result<T, XenError> {
    read_value(address, Access::Read)
}

/// Writes one value of a plain type into the guest.
pub fn write_to_guest<T: Pod>(address: u64, value: &T) -> Result<(), XenError> {
    copy_to_guest(address, bytemuck::bytes_of(value))
}
