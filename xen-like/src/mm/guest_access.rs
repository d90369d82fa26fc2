//! Copying to and from guest-virtual addresses, safely.
//!
//! Hypercall arguments are often pointers into the guest. The hypervisor
//! never dereferences them directly: it translates each page with a software
//! walk of the guest's current page tables, with the guest's (ring 3)
//! permissions, and copies through the direct map. A bad pointer is then an
//! `-EFAULT` for the guest, never a fault in the hypervisor.

use super::{physical_pointer, DirectMap, PAGE_SIZE};
use crate::arch::x86_64::instructions;
use hypercall_abi::XenError;
use xen_like::pagewalk::{translate, Access};

/// Types that are plain bytes: any bit pattern is a valid value and they
/// hold no pointers the hypervisor would follow.
///
/// # Safety
/// Implement only for `#[repr(C)]` types made of integers (and arrays of
/// them), with no padding that matters and no invariants.
pub unsafe trait Plain: Copy {}

// SAFETY: integers and the ABI's repr(C) integer structs are plain data.
unsafe impl Plain for u64 {}
// SAFETY: as above.
unsafe impl Plain for u32 {}
// SAFETY: as above.
unsafe impl Plain for hypercall_abi::TrapInfo {}
// SAFETY: as above.
unsafe impl Plain for hypercall_abi::IretContext {}
// SAFETY: as above.
unsafe impl Plain for hypercall_abi::SchedShutdown {}
// SAFETY: as above.
unsafe impl Plain for hypercall_abi::callback::CallbackRegister {}
// SAFETY: as above (the payload union's members are all integer structs).
unsafe impl Plain for hypercall_abi::sysctl::Sysctl {}
// SAFETY: as above.
unsafe impl Plain for hypercall_abi::sysctl::DomainInfo {}

/// Walks `[address, address + length)` page by page, handing each piece's
/// direct-map pointer and length to `piece`.
fn for_each_piece(
    address: u64,
    length: usize,
    access: Access,
    mut piece: impl FnMut(*mut u8, usize),
) -> Result<(), XenError> {
    let root = instructions::read_cr3();
    let mut done = 0usize;
    while done < length {
        let current = address.checked_add(done as u64).ok_or(XenError::EFAULT)?;
        let in_page = (PAGE_SIZE - current % PAGE_SIZE) as usize;
        let chunk = in_page.min(length - done);
        let physical =
            translate(&DirectMap, root, current, access).map_err(|_| XenError::EFAULT)?;
        piece(physical_pointer::<u8>(physical), chunk);
        done += chunk;
    }
    Ok(())
}

/// Copies `out.len()` bytes from the guest at `address`.
pub fn copy_from_guest(address: u64, out: &mut [u8]) -> Result<(), XenError> {
    let mut offset = 0;
    for_each_piece(address, out.len(), Access::Read, |source, length| {
        // SAFETY: `source` points at `length` bytes of a RAM frame the guest
        // may read (checked by the walk), through the direct map; `out` has
        // room for them.
        unsafe { core::ptr::copy_nonoverlapping(source, out[offset..].as_mut_ptr(), length) };
        offset += length;
    })
}

/// Copies `data` into the guest at `address`.
pub fn copy_to_guest(address: u64, data: &[u8]) -> Result<(), XenError> {
    let mut offset = 0;
    for_each_piece(address, data.len(), Access::Write, |target, length| {
        // SAFETY: `target` points at `length` bytes of a RAM frame the guest
        // may write (checked by the walk), through the direct map.
        unsafe { core::ptr::copy_nonoverlapping(data[offset..].as_ptr(), target, length) };
        offset += length;
    })
}

/// Reads one value of a plain type from the guest.
pub fn read_from_guest<T: Plain>(address: u64) -> Result<T, XenError> {
    let mut value = core::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: the buffer is the value's own storage, size_of::<T>() bytes.
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(value.as_mut_ptr() as *mut u8, core::mem::size_of::<T>())
    };
    copy_from_guest(address, bytes)?;
    // SAFETY: every byte was written and T is Plain: any bytes are a valid T.
    Ok(unsafe { value.assume_init() })
}

/// Writes one value of a plain type into the guest.
pub fn write_to_guest<T: Plain>(address: u64, value: &T) -> Result<(), XenError> {
    // SAFETY: a Plain value may be viewed as its bytes.
    let bytes = unsafe {
        core::slice::from_raw_parts(value as *const T as *const u8, core::mem::size_of::<T>())
    };
    copy_to_guest(address, bytes)
}
