//! The machine-frame allocator: the boot-time setup of
//! [`FrameBitmap`](crate::mm::frame_allocator::FrameBitmap) over the memory map.

use super::{physical_pointer, zero_frame, PAGE_SIZE};
use crate::boot::BootInfo;
use crate::mm::frame_allocator::{find_free_range, FrameBitmap};
use crate::sync::lock_order::LockLevel;
use crate::sync::ordered_lock::OrderedMutex;
use core::sync::atomic::{AtomicU64, Ordering};

static FRAMES: OrderedMutex<Option<FrameBitmap<'static>>> =
    OrderedMutex::new(LockLevel::FrameAllocator, None);
/// Frames of usable RAM the machine has (for `xl info`'s total_memory).
static TOTAL_FRAMES: AtomicU64 = AtomicU64::new(0);

/// Sets up the allocator over the usable RAM in `boot`, keeping out of it
/// the low 1 MiB, the hypervisor image, the boot modules and the loader's
/// information, and returns one past the highest RAM address.
pub fn init(boot: &BootInfo, image: (u64, u64)) -> u64 {
    let mut ram: heapless::Vec<(u64, u64), 64> = heapless::Vec::new();
    for region in &boot.ram {
        let _ = ram.push((region.start, region.end));
    }
    let mut reserved: heapless::Vec<(u64, u64), 16> = heapless::Vec::new();
    let _ = reserved.push((0, 0x10_0000));
    let _ = reserved.push(image);
    let _ = reserved.push(boot.info_range);
    for module in &boot.modules {
        let _ = reserved.push((module.start, module.end));
    }
    let ram_end = ram.iter().map(|&(_, end)| end).max().unwrap_or(0);
    let frame_count = ram_end / PAGE_SIZE;
    let words = FrameBitmap::words_needed(frame_count);
    let bitmap_bytes = (words as u64 * 8).next_multiple_of(PAGE_SIZE);
    let Some(bitmap_start) = find_free_range(&ram, &reserved, bitmap_bytes) else {
        panic!("no room for the frame bitmap ({bitmap_bytes} bytes) in the memory map");
    };
    // SAFETY: find_free_range returned RAM that no reserved range overlaps,
    // the direct map covers it, and from here on the bitmap (reserved
    // below) is its only user.
    let storage =
        unsafe { core::slice::from_raw_parts_mut(physical_pointer::<u64>(bitmap_start), words) };
    let mut bitmap = FrameBitmap::new(storage, frame_count);
    for &(start, end) in &ram {
        bitmap.add_free_range(start.div_ceil(PAGE_SIZE), end / PAGE_SIZE);
    }
    TOTAL_FRAMES.store(bitmap.free_count(), Ordering::Relaxed);
    for &(start, end) in reserved
        .iter()
        .chain([(bitmap_start, bitmap_start + bitmap_bytes)].iter())
    {
        bitmap.reserve_range(start / PAGE_SIZE, end.div_ceil(PAGE_SIZE));
    }
    *FRAMES.lock() = Some(bitmap);
    ram_end
}

/// Takes a free frame and zeroes it; `None` when memory is exhausted.
pub fn allocate() -> Option<u64> {
    let mfn = FRAMES.lock().as_mut()?.allocate()?;
    // SAFETY: the frame was free until this moment: nobody else uses it.
    unsafe { zero_frame(mfn) };
    Some(mfn)
}

/// Gives a frame back to the allocator (the frame table decided it may).
pub fn free(mfn: u64) {
    if let Some(bitmap) = FRAMES.lock().as_mut() {
        if let Err(error) = bitmap.free(mfn) {
            log::error!(
                "freeing frame {mfn:#x}: {error:?} (a hypervisor bug; the frame is leaked)"
            );
        }
    }
}

/// Whether `mfn` is free in the allocator.
pub fn is_free(mfn: u64) -> bool {
    FRAMES
        .lock()
        .as_ref()
        .is_some_and(|bitmap| bitmap.is_free(mfn))
}

/// Number of machine frames the allocator covers (free or not).
pub fn frame_count() -> u64 {
    FRAMES.lock().as_ref().map_or(0, FrameBitmap::frame_count)
}

/// Takes `count` contiguous frames (not zeroed); returns the first.
pub fn allocate_contiguous(count: u64) -> Option<u64> {
    FRAMES.lock().as_mut()?.allocate_contiguous(count, 1)
}

/// Free frames now.
pub fn free_count() -> u64 {
    FRAMES.lock().as_ref().map_or(0, FrameBitmap::free_count)
}

/// Usable RAM frames in the machine.
pub fn total_count() -> u64 {
    TOTAL_FRAMES.load(Ordering::Relaxed)
}
