//! Rate limits on what a guest can make the hypervisor print: a token bucket per domain.
//!
//! A guest that repeats a refused or unimplemented call, or writes to the
//! hypervisor's console in a loop, would otherwise put one line per call on
//! the serial line and into the log ring: thousands a second, drowning the
//! hypervisor's own lines and keeping the CPU busy with a 115200-baud UART.
//! Xen's answer is `printk_ratelimit`: a burst of messages is allowed, then
//! one per interval, and the next message that gets through is preceded by
//! "N messages suppressed". This module is that rule as plain data, with the
//! time passed in (nanoseconds of system time), so that it runs in host tests.
//!
//! The bucket holds *credit* in nanoseconds: it grows with the time that
//! passes, up to `burst × interval`, and each message spends `interval`.
//! So a domain that was quiet for a while may print `burst` lines at once,
//! and a domain that prints without pause gets one line per `interval`.
//!
//! [`GuestOutput`] applies the same bucket to a guest's `console_io`
//! writes, one token per line (a long line without a newline is cut every
//! [`MAX_GUEST_LINE`] bytes and each piece counts as a line).

/// How many messages a domain may print at once, and how often after that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Messages allowed back to back after a quiet spell.
    pub burst: u32,
    /// Time one message costs, in ns: the steady rate is one per interval.
    pub interval_ns: u64,
}

impl RateLimit {
    /// The limit on every unprivileged domain: 20 lines at once, then one a
    /// second. (Xen's default is 10 at once, then one every 5 s; a learner
    /// watching a test guest should see a little more.)
    pub const GUEST: RateLimit = RateLimit {
        burst: 20,
        interval_ns: 1_000_000_000,
    };

    /// No limit: a message costs nothing (`guest_loglvl=` with the level
    /// in its first threshold says so).
    pub const UNLIMITED: RateLimit = RateLimit {
        burst: 1,
        interval_ns: 0,
    };

    /// The most credit a bucket can hold.
    fn capacity_ns(&self) -> u64 {
        u64::from(self.burst).saturating_mul(self.interval_ns)
    }
}

/// What the bucket says about one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Print it; first say that `suppressed_before` messages were dropped
    /// since the last one printed (0: nothing to say).
    Print {
        /// Messages dropped since the last one printed.
        suppressed_before: u64,
    },
    /// Drop it (it is counted, and reported with the next one printed).
    Suppress,
}

/// One domain's token bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Credit in ns; a message costs `RateLimit::interval_ns`.
    credit_ns: u64,
    /// System time of the last refill.
    last_ns: u64,
    /// Messages dropped since the last one printed.
    suppressed: u64,
}

impl TokenBucket {
    /// A full bucket: a new domain may use its whole burst at once.
    pub const fn full(limit: RateLimit) -> Self {
        Self {
            credit_ns: limit.burst as u64 * limit.interval_ns,
            last_ns: 0,
            suppressed: 0,
        }
    }

    /// Decides about one message at system time `now_ns`.
    pub fn check(&mut self, limit: RateLimit, now_ns: u64) -> Verdict {
        let elapsed = now_ns.saturating_sub(self.last_ns);
        self.last_ns = self.last_ns.max(now_ns);
        self.credit_ns = self
            .credit_ns
            .saturating_add(elapsed)
            .min(limit.capacity_ns());
        if self.credit_ns >= limit.interval_ns {
            self.credit_ns -= limit.interval_ns;
            Verdict::Print {
                suppressed_before: core::mem::take(&mut self.suppressed),
            }
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            Verdict::Suppress
        }
    }

    /// Takes the count of messages dropped and not yet reported (for the
    /// last word about a domain that is going away).
    pub fn take_suppressed(&mut self) -> u64 {
        core::mem::take(&mut self.suppressed)
    }
}

/// The longest piece of a guest's console output printed as one line.
pub const MAX_GUEST_LINE: usize = 256;

/// What [`GuestOutput::filter`] hands on to the serial line, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A line of the guest's own is about to start: print its `(dN) ` prefix.
    LineStart,
    /// Bytes of an admitted line, as the guest wrote them.
    Bytes(&'a [u8]),
    /// A line was cut at [`MAX_GUEST_LINE`] bytes: end it here.
    CutLine,
    /// Before the next line: this many lines were dropped.
    Suppressed(u64),
}

/// What one domain may make the hypervisor print: its bucket, shared by
/// its warnings and its `console_io` lines, and the console line in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestOutput {
    /// The domain's bucket, shared with its warnings ([`GuestOutput::check`]).
    bucket: TokenBucket,
    /// Whether the next byte starts a line.
    at_line_start: bool,
    /// Whether the line in progress was admitted (its bytes are printed).
    line_admitted: bool,
    /// Bytes of the line in progress so far.
    line_length: usize,
}

impl GuestOutput {
    /// A new domain's: a full bucket, at the start of a line.
    pub const fn new(limit: RateLimit) -> Self {
        Self {
            bucket: TokenBucket::full(limit),
            at_line_start: true,
            line_admitted: false,
            line_length: 0,
        }
    }

    /// Decides about one message (a warning about the domain's own call).
    pub fn check(&mut self, limit: RateLimit, now_ns: u64) -> Verdict {
        self.bucket.check(limit, now_ns)
    }

    /// Messages dropped and not yet reported (see [`TokenBucket::take_suppressed`]).
    pub fn take_suppressed(&mut self) -> u64 {
        self.bucket.take_suppressed()
    }

    /// Runs `bytes` of console output through the limit: each line takes a
    /// token when it starts; the bytes of a dropped line are dropped with it.
    /// `emit` gets what may be printed, in order.
    pub fn filter<'a>(
        &mut self,
        limit: RateLimit,
        now_ns: u64,
        bytes: &'a [u8],
        mut emit: impl FnMut(Piece<'a>),
    ) {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.at_line_start {
                self.at_line_start = false;
                self.line_length = 0;
                self.line_admitted = match self.bucket.check(limit, now_ns) {
                    Verdict::Print { suppressed_before } => {
                        if suppressed_before > 0 {
                            emit(Piece::Suppressed(suppressed_before));
                        }
                        emit(Piece::LineStart);
                        true
                    }
                    Verdict::Suppress => false,
                };
            }
            // The line goes on up to its newline or its length limit.
            let room = MAX_GUEST_LINE - self.line_length;
            let newline = rest.iter().take(room).position(|&byte| byte == b'\n');
            let (taken, ends_line, cut) = match newline {
                Some(index) => (index + 1, true, false),
                None if rest.len() >= room => (room, true, true),
                None => (rest.len(), false, false),
            };
            if self.line_admitted {
                emit(Piece::Bytes(&rest[..taken]));
                if cut {
                    emit(Piece::CutLine);
                }
            }
            self.line_length += taken;
            self.at_line_start = ends_line;
            rest = &rest[taken..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        burst: 3,
        interval_ns: 1000,
    };

    fn printed(verdict: Verdict) -> bool {
        matches!(verdict, Verdict::Print { .. })
    }

    #[test]
    fn a_burst_passes_then_the_rest_is_suppressed() {
        let mut bucket = TokenBucket::full(LIMIT);
        let verdicts: Vec<bool> = (0..10).map(|_| printed(bucket.check(LIMIT, 5))).collect();
        assert_eq!(
            verdicts,
            [true, true, true, false, false, false, false, false, false, false]
        );
    }

    #[test]
    fn the_next_printed_message_reports_how_many_were_dropped() {
        let mut bucket = TokenBucket::full(LIMIT);
        for _ in 0..3 + 9990 {
            bucket.check(LIMIT, 0);
        }
        assert_eq!(bucket.check(LIMIT, 999), Verdict::Suppress);
        assert_eq!(
            bucket.check(LIMIT, 1000),
            Verdict::Print {
                suppressed_before: 9991
            }
        );
        // Reported once, not again.
        assert_eq!(
            bucket.check(LIMIT, 2000),
            Verdict::Print {
                suppressed_before: 0
            }
        );
    }

    #[test]
    fn steady_rate_is_one_per_interval() {
        let mut bucket = TokenBucket::full(LIMIT);
        // One attempt every 10 ns for 100 intervals: the burst plus one per interval.
        let passed = (0..10_000u64)
            .filter(|step| printed(bucket.check(LIMIT, step * 10)))
            .count();
        assert_eq!(passed, 3 + 99);
    }

    #[test]
    fn quiet_time_refills_no_more_than_the_burst() {
        let mut bucket = TokenBucket::full(LIMIT);
        for _ in 0..3 {
            bucket.check(LIMIT, 0);
        }
        let now = 1_000_000_000;
        let passed = (0..10)
            .filter(|_| printed(bucket.check(LIMIT, now)))
            .count();
        assert_eq!(passed, 3);
    }

    #[test]
    fn time_going_backwards_gives_no_credit() {
        let mut bucket = TokenBucket::full(LIMIT);
        for _ in 0..3 {
            bucket.check(LIMIT, 5000);
        }
        assert_eq!(bucket.check(LIMIT, 0), Verdict::Suppress);
        assert_eq!(bucket.check(LIMIT, 5999), Verdict::Suppress);
        assert!(printed(bucket.check(LIMIT, 6000)));
    }

    #[test]
    fn unlimited_lets_everything_through() {
        let mut bucket = TokenBucket::full(LIMIT);
        let passed = (0..10_000)
            .filter(|_| printed(bucket.check(RateLimit::UNLIMITED, 7)))
            .count();
        assert_eq!(passed, 10_000);
    }

    #[test]
    fn suppressed_count_can_be_taken_at_the_end() {
        let mut bucket = TokenBucket::full(LIMIT);
        for _ in 0..10 {
            bucket.check(LIMIT, 0);
        }
        assert_eq!(bucket.take_suppressed(), 7);
        assert_eq!(bucket.take_suppressed(), 0);
    }

    /// Runs `writes` through a console and renders what would be printed.
    fn render(console: &mut GuestOutput, now_ns: u64, writes: &[&[u8]]) -> String {
        let mut out = String::new();
        for bytes in writes {
            console.filter(LIMIT, now_ns, bytes, |piece| match piece {
                Piece::LineStart => out.push_str("(d1) "),
                Piece::Bytes(bytes) => out.push_str(std::str::from_utf8(bytes).unwrap()),
                Piece::CutLine => out.push('\n'),
                Piece::Suppressed(count) => out.push_str(&format!("[{count} suppressed]\n")),
            });
        }
        out
    }

    #[test]
    fn console_lines_take_one_token_each_and_whole_lines_are_dropped() {
        let mut console = GuestOutput::new(LIMIT);
        let out = render(&mut console, 0, &[b"one\ntw", b"o\nthree\nfour\nfive\n"]);
        assert_eq!(out, "(d1) one\n(d1) two\n(d1) three\n");
        let out = render(&mut console, 1000, &[b"six\n"]);
        assert_eq!(out, "[2 suppressed]\n(d1) six\n");
    }

    #[test]
    fn a_line_without_end_is_cut_and_each_piece_counts() {
        let mut console = GuestOutput::new(LIMIT);
        let long = [b'x'; MAX_GUEST_LINE * 5];
        let out = render(&mut console, 0, &[&long]);
        let line = "x".repeat(MAX_GUEST_LINE);
        assert_eq!(out, format!("(d1) {line}\n(d1) {line}\n(d1) {line}\n"));
    }

    #[test]
    fn a_line_split_across_writes_is_one_line() {
        let mut console = GuestOutput::new(LIMIT);
        let out = render(&mut console, 0, &[b"a", b"b", b"c\n", b"d\n"]);
        assert_eq!(out, "(d1) abc\n(d1) d\n");
    }

    #[test]
    fn warnings_and_console_lines_share_the_bucket() {
        let mut console = GuestOutput::new(LIMIT);
        assert!(printed(console.check(LIMIT, 0)));
        assert!(printed(console.check(LIMIT, 0)));
        let out = render(&mut console, 0, &[b"one\ntwo\n"]);
        assert_eq!(out, "(d1) one\n");
        assert_eq!(console.check(LIMIT, 0), Verdict::Suppress);
        assert_eq!(console.take_suppressed(), 2);
    }
}
