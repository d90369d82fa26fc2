//! The hypervisor's log ring: the last few KiB of everything it printed.
//!
//! `xl dmesg` reads it through the `readconsole` sysctl, as Xen's `xl dmesg`
//! reads Xen's console ring. Bytes are addressed by a running counter that
//! never wraps in practice (a `u64` of bytes), so a reader can say "give me
//! what came after byte N" and learn whether it missed anything because the
//! ring overwrote it.
//!
//! **The hypervisor's own lines come first.** Lines a guest caused (its
//! warnings, pushed with [`LogRing::push_guest`]) may fill at most a quarter
//! of the ring; a guest line that would take more is left out of the ring
//! (it still goes to the serial line, within the guest's rate limit). So
//! however many lines guests cause, three quarters of the ring hold the
//! hypervisor's own: guests can push its boot lines and errors out of
//! `xl dmesg` by at most a quarter of the ring, and only the hypervisor's
//! own newer lines push them out further. Why a share and not two rings:
//! the readers' byte counters stay one simple sequence, and the share
//! frees itself as the guest lines age out of the ring.

use heapless::Deque;

/// How many guest lines the ring tracks at once (beyond that, guest lines
/// are left out as if the share were used up).
pub const MAX_GUEST_LINES: usize = 512;

/// A ring of `N` bytes.
#[derive(Debug)]
pub struct LogRing<const N: usize> {
    bytes: [u8; N],
    /// How many bytes were ever written; the newest byte is `written - 1`.
    written: u64,
    /// The counter at the last `clear_before`: older bytes are gone.
    cleared_at: u64,
    /// Guest lines that may still be in the ring, oldest first: the counter
    /// of each one's first byte and its length.
    guest_lines: Deque<(u64, u64), MAX_GUEST_LINES>,
    /// The total length of `guest_lines`.
    guest_bytes: u64,
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
            guest_lines: Deque::new(),
            guest_bytes: 0,
        }
    }

    /// The most bytes guest lines may hold in the ring.
    pub const GUEST_SHARE: u64 = N as u64 / 4;

    /// Appends bytes, overwriting the oldest ones when full.
    pub fn push(&mut self, data: &[u8]) {
        for &byte in data {
            self.bytes[(self.written % N as u64) as usize] = byte;
            self.written += 1;
        }
    }

    /// Appends a line a guest caused, if the guests' share of the ring has
    /// room for it. Returns whether it was kept.
    pub fn push_guest(&mut self, line: &[u8]) -> bool {
        let length = line.len() as u64;
        // Lines that this one would push out of the ring no longer count.
        let first_kept = (self.written + length).saturating_sub(N as u64);
        while let Some(&(start, old_length)) = self.guest_lines.front() {
            if start + old_length > first_kept {
                break;
            }
            self.guest_lines.pop_front();
            self.guest_bytes -= old_length;
        }
        if self.guest_bytes + length > Self::GUEST_SHARE || self.guest_lines.is_full() {
            return false;
        }
        // Cannot fail: fullness was checked just above.
        let _ = self.guest_lines.push_back((self.written, length));
        self.guest_bytes += length;
        self.push(line);
        true
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

    /// Fills a 1 KiB ring with boot lines, then floods it with guest lines.
    fn flooded() -> LogRing<1024> {
        let mut ring = LogRing::<1024>::new();
        for line in 0..10 {
            ring.push(format!("(XEN) boot line {line}\n").as_bytes());
        }
        for call in 0..10_000 {
            ring.push_guest(format!("(XEN) d1: unimplemented hypercall {call}\n").as_bytes());
        }
        ring
    }

    fn text<const N: usize>(ring: &LogRing<N>) -> String {
        let mut out = vec![0u8; N];
        let read = ring.read(ring.oldest(), &mut out);
        String::from_utf8(out[..read.copied].to_vec()).unwrap()
    }

    #[test]
    fn guest_lines_cannot_push_the_boot_lines_out() {
        let ring = flooded();
        let text = text(&ring);
        assert!(text.starts_with("(XEN) boot line 0\n"), "{text}");
        assert!(text.contains("(XEN) boot line 9\n"), "{text}");
        let guest_bytes: usize = text
            .lines()
            .filter(|line| line.contains("d1:"))
            .map(|line| line.len() + 1)
            .sum();
        assert!(
            guest_bytes as u64 <= LogRing::<1024>::GUEST_SHARE,
            "{guest_bytes}"
        );
        assert!(guest_bytes > 0, "guest lines are kept within their share");
    }

    #[test]
    fn the_share_frees_as_guest_lines_age_out() {
        let mut ring = flooded();
        assert!(
            !ring.push_guest(b"(XEN) d1: refused\n"),
            "the share is full"
        );
        // The hypervisor's own lines push the old guest lines out ...
        for line in 0..100 {
            ring.push(format!("(XEN) hypervisor line {line}\n").as_bytes());
        }
        // ... and then guest lines are kept again.
        assert!(ring.push_guest(b"(XEN) d1: later\n"));
        assert!(text(&ring).ends_with("(XEN) d1: later\n"));
    }

    #[test]
    fn a_guest_line_larger_than_the_share_is_never_kept() {
        let mut ring = LogRing::<64>::new();
        assert!(!ring.push_guest(&[b'x'; 17]));
        assert!(ring.push_guest(&[b'x'; 16]));
        assert_eq!(ring.end(), 16);
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
