//! The hypervisor's log ring: the last few KiB of everything it printed.
//!
//! `xl dmesg` reads it through the `readconsole` sysctl, as Xen's `xl dmesg`
//! reads Xen's console ring. Bytes are addressed by a running counter that
//! never wraps in practice (a `u64` of bytes), so a reader can say "give me
//! what came after byte N" and learn whether it missed anything because the
//! ring overwrote it.

/// A ring of `N` bytes.
#[derive(Debug)]
pub struct LogRing<const N: usize> {
    bytes: [u8; N],
    /// How many bytes were ever written; the newest byte is `written - 1`.
    written: u64,
    /// The counter at the last `clear_before`: older bytes are gone.
    cleared_at: u64,
}

/// What one read returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read {
    /// How many bytes were copied into the caller's buffer.
    pub copied: usize,
    /// The counter to ask for next time to continue where this read stopped.
    pub next: u64,
    /// How many bytes the reader asked for that the ring had already
    /// overwritten.
    pub lost: u64,
}

impl<const N: usize> LogRing<N> {
    /// An empty ring.
    pub const fn new() -> Self {
        Self {
            bytes: [0; N],
            written: 0,
            cleared_at: 0,
        }
    }

    /// Appends bytes, overwriting the oldest ones when full.
    pub fn push(&mut self, data: &[u8]) {
        for &byte in data {
            self.bytes[(self.written % N as u64) as usize] = byte;
            self.written += 1;
        }
    }

    /// Forgets the bytes before counter `end`: what a reader has seen,
    /// never what was logged after it looked. The counter keeps running, so
    /// readers' indices stay meaningful.
    pub fn clear_before(&mut self, end: u64) {
        self.cleared_at = self.cleared_at.max(end.min(self.written));
    }

    /// The counter of the oldest byte still held.
    pub fn oldest(&self) -> u64 {
        self.written.saturating_sub(N as u64).max(self.cleared_at)
    }

    /// The counter one past the newest byte.
    pub fn end(&self) -> u64 {
        self.written
    }

    /// Copies bytes from counter `from` onwards into `out`.
    pub fn read(&self, from: u64, out: &mut [u8]) -> Read {
        let start = from.max(self.oldest()).min(self.written);
        let lost = start - from.min(start);
        let available = (self.written - start) as usize;
        let copied = available.min(out.len());
        for (i, slot) in out.iter_mut().take(copied).enumerate() {
            *slot = self.bytes[((start + i as u64) % N as u64) as usize];
        }
        Read {
            copied,
            next: start + copied as u64,
            lost,
        }
    }
}

impl<const N: usize> Default for LogRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_was_written() {
        let mut ring = LogRing::<16>::new();
        ring.push(b"hello");
        let mut out = [0u8; 16];
        let read = ring.read(0, &mut out);
        assert_eq!(&out[..read.copied], b"hello");
        assert_eq!(
            read,
            Read {
                copied: 5,
                next: 5,
                lost: 0
            }
        );
    }

    #[test]
    fn incremental_reads_continue_where_they_stopped() {
        let mut ring = LogRing::<16>::new();
        ring.push(b"abcdef");
        let mut out = [0u8; 4];
        let first = ring.read(0, &mut out);
        assert_eq!(&out[..first.copied], b"abcd");
        let second = ring.read(first.next, &mut out);
        assert_eq!(&out[..second.copied], b"ef");
        let third = ring.read(second.next, &mut out);
        assert_eq!(third.copied, 0);
        assert_eq!(third.next, 6);
    }

    #[test]
    fn overwritten_bytes_are_reported_as_lost() {
        let mut ring = LogRing::<8>::new();
        ring.push(b"0123456789AB");
        assert_eq!(ring.oldest(), 4);
        let mut out = [0u8; 16];
        let read = ring.read(0, &mut out);
        assert_eq!(&out[..read.copied], b"456789AB");
        assert_eq!(read.lost, 4);
        assert_eq!(read.next, 12);
    }

    #[test]
    fn reading_past_the_end_returns_nothing() {
        let mut ring = LogRing::<8>::new();
        ring.push(b"abc");
        let mut out = [0u8; 8];
        let read = ring.read(100, &mut out);
        assert_eq!(
            read,
            Read {
                copied: 0,
                next: 3,
                lost: 0
            }
        );
    }

    #[test]
    fn clearing_forgets_what_was_there() {
        let mut ring = LogRing::<16>::new();
        ring.push(b"old");
        ring.clear_before(ring.end());
        ring.push(b"new");
        let mut out = [0u8; 16];
        let read = ring.read(0, &mut out);
        assert_eq!(&out[..read.copied], b"new");
        assert_eq!(read.lost, 3);
    }

    #[test]
    fn clearing_what_was_read_keeps_what_came_after() {
        let mut ring = LogRing::<16>::new();
        ring.push(b"seen");
        let mut out = [0u8; 16];
        let seen = ring.read(0, &mut out);
        ring.push(b"late");
        ring.clear_before(seen.next);
        let read = ring.read(ring.oldest(), &mut out);
        assert_eq!(&out[..read.copied], b"late");
        // A counter from the future clears no more than was written.
        ring.clear_before(1000);
        assert_eq!(ring.oldest(), ring.end());
        // And the oldest byte never moves backwards.
        ring.clear_before(0);
        assert_eq!(ring.oldest(), 8);
    }

    #[test]
    fn wraps_many_times() {
        let mut ring = LogRing::<5>::new();
        for i in 0..1000u32 {
            ring.push(&[(i % 251) as u8]);
        }
        let mut out = [0u8; 5];
        let read = ring.read(ring.oldest(), &mut out);
        let expected: std::vec::Vec<u8> = (995..1000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(&out[..], &expected[..]);
        assert_eq!(read.next, 1000);
    }
}
