//! Which machine frames are free: a bitmap over all of RAM.
//!
//! One bit per machine frame (MFN), set when the frame is free. The boot
//! code marks the usable RAM of the memory map free, then takes back what is
//! already in use (the low 1 MiB, the hypervisor image, the boot modules,
//! the bitmap itself). Allocation scans from a moving hint, so that the
//! common case is a few word tests.
//!
//! The bitmap only answers "free or not". Who owns a frame, and what it is
//! used for, is the business of the domain code (and, with validated paging,
//! of the frame table).
#![forbid(unsafe_code)]

/// Why a frame could not be freed or reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The frame number is beyond the end of the bitmap.
    OutOfRange,
    /// The frame was already free: freeing it twice is a bug in the caller.
    AlreadyFree,
}

/// A bitmap allocator over frames `0..frame_count`.
#[derive(Debug)]
pub struct FrameBitmap<'a> {
    words: &'a mut [u64],
    frame_count: u64,
    free_count: u64,
    hint: usize,
}

impl<'a> FrameBitmap<'a> {
    /// Wraps `words` (every frame initially in use) for `frame_count` frames.
    ///
    /// # Panics
    /// If `words` is too small to hold `frame_count` bits (a boot-time bug).
    pub fn new(words: &'a mut [u64], frame_count: u64) -> Self {
        assert!(words.len() as u64 * 64 >= frame_count, "bitmap too small");
        words.fill(0);
        Self {
            words,
            frame_count,
            free_count: 0,
            hint: 0,
        }
    }

    /// How many words a bitmap for `frame_count` frames needs.
    pub const fn words_needed(frame_count: u64) -> usize {
        frame_count.div_ceil(64) as usize
    }

    /// Number of frames the bitmap covers.
    pub fn frame_count(&self) -> u64 {
        self.frame_count
    }

    /// Number of free frames.
    pub fn free_count(&self) -> u64 {
        self.free_count
    }

    /// Whether `frame` is free.
    pub fn is_free(&self, frame: u64) -> bool {
        frame < self.frame_count && self.words[(frame / 64) as usize] & (1 << (frame % 64)) != 0
    }

    /// Marks frames `start..end` free (used at boot for usable RAM). Frames
    /// beyond the bitmap are ignored; frames already free stay free.
    pub fn add_free_range(&mut self, start: u64, end: u64) {
        for frame in start..end.min(self.frame_count) {
            if !self.is_free(frame) {
                self.words[(frame / 64) as usize] |= 1 << (frame % 64);
                self.free_count += 1;
            }
        }
    }

    /// Marks frames `start..end` in use (used at boot for what is taken).
    pub fn reserve_range(&mut self, start: u64, end: u64) {
        for frame in start..end.min(self.frame_count) {
            if self.is_free(frame) {
                self.words[(frame / 64) as usize] &= !(1 << (frame % 64));
                self.free_count -= 1;
            }
        }
    }

    /// Takes one free frame, or `None` when memory is exhausted.
    pub fn allocate(&mut self) -> Option<u64> {
        let count = self.words.len();
        for step in 0..count {
            let index = (self.hint + step) % count;
            let word = self.words[index];
            if word != 0 {
                let bit = word.trailing_zeros() as u64;
                let frame = index as u64 * 64 + bit;
                if frame >= self.frame_count {
                    continue;
                }
                self.words[index] &= !(1 << bit);
                self.free_count -= 1;
                self.hint = index;
                return Some(frame);
            }
        }
        None
    }

    /// Takes `count` physically contiguous free frames whose first frame is
    /// a multiple of `align` frames; returns the first frame.
    pub fn allocate_contiguous(&mut self, count: u64, align: u64) -> Option<u64> {
        if count == 0 || align == 0 {
            return None;
        }
        let mut start = 0;
        while start + count <= self.frame_count {
            match (start..start + count).find(|&frame| !self.is_free(frame)) {
                Some(used) => start = (used + 1).next_multiple_of(align),
                None => {
                    self.reserve_range(start, start + count);
                    return Some(start);
                }
            }
        }
        None
    }

    /// Gives a frame back.
    pub fn free(&mut self, frame: u64) -> Result<(), FrameError> {
        if frame >= self.frame_count {
            return Err(FrameError::OutOfRange);
        }
        if self.is_free(frame) {
            return Err(FrameError::AlreadyFree);
        }
        self.words[(frame / 64) as usize] |= 1 << (frame % 64);
        self.free_count += 1;
        Ok(())
    }
}

/// Finds `size` bytes (a multiple of the page size) of RAM, page-aligned,
/// inside one of the `ram` ranges and clear of every `reserved` range. Used
/// at boot to place the bitmap itself, before any allocator exists. Ranges
/// are `(start, end)` physical, end exclusive.
pub fn find_free_range(ram: &[(u64, u64)], reserved: &[(u64, u64)], size: u64) -> Option<u64> {
    const PAGE: u64 = 4096;
    for &(ram_start, ram_end) in ram {
        let mut start = ram_start.next_multiple_of(PAGE);
        'candidate: while start.checked_add(size)? <= ram_end {
            for &(taken_start, taken_end) in reserved {
                if start < taken_end && taken_start < start + size {
                    start = taken_end.next_multiple_of(PAGE);
                    continue 'candidate;
                }
            }
            return Some(start);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_with_nothing_free() {
        let mut words = [u64::MAX; 2];
        let bitmap = FrameBitmap::new(&mut words, 100);
        assert_eq!(bitmap.free_count(), 0);
        assert!(!bitmap.is_free(5));
    }

    #[test]
    fn allocates_only_free_frames_and_counts_them() {
        let mut words = [0; 2];
        let mut bitmap = FrameBitmap::new(&mut words, 100);
        bitmap.add_free_range(10, 13);
        assert_eq!(bitmap.free_count(), 3);
        let mut got = [0; 3];
        for slot in &mut got {
            *slot = bitmap.allocate().expect("a free frame");
        }
        got.sort_unstable();
        assert_eq!(got, [10, 11, 12]);
        assert_eq!(bitmap.allocate(), None);
        assert_eq!(bitmap.free_count(), 0);
    }

    #[test]
    fn reserve_takes_back_frames() {
        let mut words = [0; 2];
        let mut bitmap = FrameBitmap::new(&mut words, 128);
        bitmap.add_free_range(0, 128);
        bitmap.reserve_range(0, 64);
        assert_eq!(bitmap.free_count(), 64);
        assert!(!bitmap.is_free(63));
        assert!(bitmap.is_free(64));
        assert!(bitmap.allocate().unwrap() >= 64);
    }

    #[test]
    fn frames_past_the_end_are_never_handed_out() {
        let mut words = [0; 1];
        let mut bitmap = FrameBitmap::new(&mut words, 3);
        bitmap.add_free_range(0, 64);
        assert_eq!(bitmap.free_count(), 3);
        for _ in 0..3 {
            assert!(bitmap.allocate().unwrap() < 3);
        }
        assert_eq!(bitmap.allocate(), None);
    }

    #[test]
    fn double_free_and_out_of_range_are_errors() {
        let mut words = [0; 1];
        let mut bitmap = FrameBitmap::new(&mut words, 64);
        bitmap.add_free_range(0, 1);
        let frame = bitmap.allocate().unwrap();
        assert_eq!(bitmap.free(frame), Ok(()));
        assert_eq!(bitmap.free(frame), Err(FrameError::AlreadyFree));
        assert_eq!(bitmap.free(64), Err(FrameError::OutOfRange));
        assert_eq!(bitmap.free_count(), 1);
    }

    #[test]
    fn free_ranges_avoid_reserved_memory() {
        let ram = [(0x1000, 0x9f000), (0x10_0000, 0x800_0000)];
        let reserved = [
            (0, 0x10_0000),
            (0x10_0000, 0x20_0000),
            (0x20_0000, 0x20_1000),
        ];
        assert_eq!(find_free_range(&ram, &reserved, 0x4000), Some(0x20_1000));
        // Too big for the low region, and the high one is used up to 0x201000.
        assert_eq!(find_free_range(&ram, &reserved, 0x800_0000), None);
        assert_eq!(
            find_free_range(&[(0x1234, 0x3000)], &[], 0x1000),
            Some(0x2000)
        );
    }

    #[test]
    fn contiguous_runs_respect_holes_and_alignment() {
        let mut words = [0; 4];
        let mut bitmap = FrameBitmap::new(&mut words, 256);
        bitmap.add_free_range(1, 256);
        bitmap.reserve_range(20, 21);
        let start = bitmap.allocate_contiguous(16, 16).unwrap();
        assert_eq!(start, 32, "0 is used, 16..32 has a hole at 20");
        assert!((32..48).all(|frame| !bitmap.is_free(frame)));
        assert_eq!(bitmap.free_count(), 255 - 1 - 16);
        assert_eq!(bitmap.allocate_contiguous(1000, 1), None);
        assert_eq!(bitmap.allocate_contiguous(0, 1), None);
    }
}
