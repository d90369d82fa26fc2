//! Xen's error codes and the convention hypercalls use to return them.
//!
//! A hypercall returns a signed 64-bit value in `rax`: zero or a positive
//! result on success, or a negated errno from `xen/include/public/errno.h`
//! on failure (`-38` is `-ENOSYS`). Xen's errno numbers match Linux's on
//! x86, but they are Xen's ABI, not the guest's libc's.

use core::fmt;

/// An error code from Xen's `errno.h`, stored as the positive number.
///
/// Hypercalls return it negated; see [`XenError::as_return`] and
/// [`XenError::from_return`]. The variant names are spelled exactly as in
/// Xen (`ENOSYS`) so that they can be searched for in Xen's sources.
#[allow(
    clippy::upper_case_acronyms,
    reason = "errno names are spelled as in Xen's errno.h so they can be searched for"
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i64)]
pub enum XenError {
    /// Operation not permitted (the caller lacks the privilege).
    EPERM = 1,
    /// No such file or directory (no such object).
    ENOENT = 2,
    /// No such process (no such domain or vCPU).
    ESRCH = 3,
    /// Interrupted system call.
    EINTR = 4,
    /// I/O error.
    EIO = 5,
    /// No such device or address.
    ENXIO = 6,
    /// Argument list too long.
    E2BIG = 7,
    /// Exec format error (a bad kernel image).
    ENOEXEC = 8,
    /// Bad file number (bad handle or port).
    EBADF = 9,
    /// No child processes.
    ECHILD = 10,
    /// Try again (also Xen's `EWOULDBLOCK`).
    EAGAIN = 11,
    /// Out of memory.
    ENOMEM = 12,
    /// Permission denied (also: interface version mismatch).
    EACCES = 13,
    /// Bad address (a guest pointer could not be read or written).
    EFAULT = 14,
    /// Device or resource busy.
    EBUSY = 16,
    /// File exists (the object already exists).
    EEXIST = 17,
    /// Cross-device link.
    EXDEV = 18,
    /// No such device.
    ENODEV = 19,
    /// Not a directory.
    ENOTDIR = 20,
    /// Is a directory.
    EISDIR = 21,
    /// Invalid argument.
    EINVAL = 22,
    /// File table overflow.
    ENFILE = 23,
    /// Too many open files.
    EMFILE = 24,
    /// No space left on device.
    ENOSPC = 28,
    /// Read-only file system.
    EROFS = 30,
    /// Too many links.
    EMLINK = 31,
    /// Math argument out of domain of function.
    EDOM = 33,
    /// Math result not representable (a value out of range).
    ERANGE = 34,
    /// Resource deadlock would occur (also Xen's `EDEADLOCK`).
    EDEADLK = 35,
    /// File name too long.
    ENAMETOOLONG = 36,
    /// No record locks available.
    ENOLCK = 37,
    /// Function not implemented (unknown hypercall or sub-op).
    ENOSYS = 38,
    /// Directory not empty.
    ENOTEMPTY = 39,
    /// No data available.
    ENODATA = 61,
    /// Timer expired (a requested timeout is already in the past).
    ETIME = 62,
    /// Not a data message.
    EBADMSG = 74,
    /// Value too large for defined data type.
    EOVERFLOW = 75,
    /// Illegal byte sequence.
    EILSEQ = 84,
    /// Interrupted call should be restarted (internal to Xen: preemption).
    ERESTART = 85,
    /// Socket operation on non-socket.
    ENOTSOCK = 88,
    /// Message too large.
    EMSGSIZE = 90,
    /// Operation not supported.
    EOPNOTSUPP = 95,
    /// Address already in use.
    EADDRINUSE = 98,
    /// Cannot assign requested address.
    EADDRNOTAVAIL = 99,
    /// No buffer space available.
    ENOBUFS = 105,
    /// Transport endpoint is already connected.
    EISCONN = 106,
    /// Transport endpoint is not connected.
    ENOTCONN = 107,
    /// Connection timed out.
    ETIMEDOUT = 110,
    /// Connection refused.
    ECONNREFUSED = 111,
}

/// The result of a hypercall: the non-negative return value, or the error.
pub type HypercallResult = Result<u64, XenError>;

/// Splits a raw hypercall return value into success or error.
///
/// Non-negative values are successes. Negative values that name a known
/// errno become that error; any other negative value (which Xen never
/// returns) is reported as [`XenError::EINVAL`] rather than silently
/// accepted.
pub const fn result_from_raw(raw: i64) -> HypercallResult {
    if raw >= 0 {
        Ok(raw as u64)
    } else {
        match XenError::from_return(raw) {
            Some(error) => Err(error),
            None => Err(XenError::EINVAL),
        }
    }
}

/// Turns a hypercall result back into the value placed in `rax`.
pub const fn result_to_raw(result: HypercallResult) -> i64 {
    match result {
        Ok(value) => value as i64,
        Err(error) => error.as_return(),
    }
}

impl XenError {
    /// Xen's alias for [`XenError::EAGAIN`].
    pub const EWOULDBLOCK: Self = Self::EAGAIN;
    /// Xen's alias for [`XenError::EDEADLK`].
    pub const EDEADLOCK: Self = Self::EDEADLK;

    /// Every error code, in ascending numeric order.
    pub const ALL: &'static [Self] = &[
        Self::EPERM,
        Self::ENOENT,
        Self::ESRCH,
        Self::EINTR,
        Self::EIO,
        Self::ENXIO,
        Self::E2BIG,
        Self::ENOEXEC,
        Self::EBADF,
        Self::ECHILD,
        Self::EAGAIN,
        Self::ENOMEM,
        Self::EACCES,
        Self::EFAULT,
        Self::EBUSY,
        Self::EEXIST,
        Self::EXDEV,
        Self::ENODEV,
        Self::ENOTDIR,
        Self::EISDIR,
        Self::EINVAL,
        Self::ENFILE,
        Self::EMFILE,
        Self::ENOSPC,
        Self::EROFS,
        Self::EMLINK,
        Self::EDOM,
        Self::ERANGE,
        Self::EDEADLK,
        Self::ENAMETOOLONG,
        Self::ENOLCK,
        Self::ENOSYS,
        Self::ENOTEMPTY,
        Self::ENODATA,
        Self::ETIME,
        Self::EBADMSG,
        Self::EOVERFLOW,
        Self::EILSEQ,
        Self::ERESTART,
        Self::ENOTSOCK,
        Self::EMSGSIZE,
        Self::EOPNOTSUPP,
        Self::EADDRINUSE,
        Self::EADDRNOTAVAIL,
        Self::ENOBUFS,
        Self::EISCONN,
        Self::ENOTCONN,
        Self::ETIMEDOUT,
        Self::ECONNREFUSED,
    ];

    /// The positive errno number.
    pub const fn errno(self) -> i64 {
        self as i64
    }

    /// The value a hypercall returns in `rax` for this error: `-errno`.
    pub const fn as_return(self) -> i64 {
        -(self as i64)
    }

    /// Decodes a positive errno number.
    pub const fn from_errno(errno: i64) -> Option<Self> {
        let mut index = 0;
        while index < Self::ALL.len() {
            if Self::ALL[index] as i64 == errno {
                return Some(Self::ALL[index]);
            }
            index += 1;
        }
        None
    }

    /// Decodes a hypercall return value: `Some` only for a negated, known
    /// errno.
    pub const fn from_return(raw: i64) -> Option<Self> {
        if raw >= 0 {
            return None;
        }
        // `raw` is negative, so `-raw` only overflows for i64::MIN, which is
        // not an errno anyway.
        match raw.checked_neg() {
            Some(errno) => Self::from_errno(errno),
            None => None,
        }
    }

    /// Xen's name for the error, such as `"ENOSYS"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::EPERM => "EPERM",
            Self::ENOENT => "ENOENT",
            Self::ESRCH => "ESRCH",
            Self::EINTR => "EINTR",
            Self::EIO => "EIO",
            Self::ENXIO => "ENXIO",
            Self::E2BIG => "E2BIG",
            Self::ENOEXEC => "ENOEXEC",
            Self::EBADF => "EBADF",
            Self::ECHILD => "ECHILD",
            Self::EAGAIN => "EAGAIN",
            Self::ENOMEM => "ENOMEM",
            Self::EACCES => "EACCES",
            Self::EFAULT => "EFAULT",
            Self::EBUSY => "EBUSY",
            Self::EEXIST => "EEXIST",
            Self::EXDEV => "EXDEV",
            Self::ENODEV => "ENODEV",
            Self::ENOTDIR => "ENOTDIR",
            Self::EISDIR => "EISDIR",
            Self::EINVAL => "EINVAL",
            Self::ENFILE => "ENFILE",
            Self::EMFILE => "EMFILE",
            Self::ENOSPC => "ENOSPC",
            Self::EROFS => "EROFS",
            Self::EMLINK => "EMLINK",
            Self::EDOM => "EDOM",
            Self::ERANGE => "ERANGE",
            Self::EDEADLK => "EDEADLK",
            Self::ENAMETOOLONG => "ENAMETOOLONG",
            Self::ENOLCK => "ENOLCK",
            Self::ENOSYS => "ENOSYS",
            Self::ENOTEMPTY => "ENOTEMPTY",
            Self::ENODATA => "ENODATA",
            Self::ETIME => "ETIME",
            Self::EBADMSG => "EBADMSG",
            Self::EOVERFLOW => "EOVERFLOW",
            Self::EILSEQ => "EILSEQ",
            Self::ERESTART => "ERESTART",
            Self::ENOTSOCK => "ENOTSOCK",
            Self::EMSGSIZE => "EMSGSIZE",
            Self::EOPNOTSUPP => "EOPNOTSUPP",
            Self::EADDRINUSE => "EADDRINUSE",
            Self::EADDRNOTAVAIL => "EADDRNOTAVAIL",
            Self::ENOBUFS => "ENOBUFS",
            Self::EISCONN => "EISCONN",
            Self::ENOTCONN => "ENOTCONN",
            Self::ETIMEDOUT => "ETIMEDOUT",
            Self::ECONNREFUSED => "ECONNREFUSED",
        }
    }

    /// A short description in words, such as `"function not implemented"`.
    pub const fn description(self) -> &'static str {
        match self {
            Self::EPERM => "operation not permitted",
            Self::ENOENT => "no such file or directory",
            Self::ESRCH => "no such process",
            Self::EINTR => "interrupted system call",
            Self::EIO => "input/output error",
            Self::ENXIO => "no such device or address",
            Self::E2BIG => "argument list too long",
            Self::ENOEXEC => "exec format error",
            Self::EBADF => "bad file number",
            Self::ECHILD => "no child processes",
            Self::EAGAIN => "try again",
            Self::ENOMEM => "out of memory",
            Self::EACCES => "permission denied",
            Self::EFAULT => "bad address",
            Self::EBUSY => "device or resource busy",
            Self::EEXIST => "file exists",
            Self::EXDEV => "cross-device link",
            Self::ENODEV => "no such device",
            Self::ENOTDIR => "not a directory",
            Self::EISDIR => "is a directory",
            Self::EINVAL => "invalid argument",
            Self::ENFILE => "file table overflow",
            Self::EMFILE => "too many open files",
            Self::ENOSPC => "no space left on device",
            Self::EROFS => "read-only file system",
            Self::EMLINK => "too many links",
            Self::EDOM => "math argument out of domain of function",
            Self::ERANGE => "math result not representable",
            Self::EDEADLK => "resource deadlock would occur",
            Self::ENAMETOOLONG => "file name too long",
            Self::ENOLCK => "no record locks available",
            Self::ENOSYS => "function not implemented",
            Self::ENOTEMPTY => "directory not empty",
            Self::ENODATA => "no data available",
            Self::ETIME => "timer expired",
            Self::EBADMSG => "not a data message",
            Self::EOVERFLOW => "value too large for defined data type",
            Self::EILSEQ => "illegal byte sequence",
            Self::ERESTART => "interrupted system call should be restarted",
            Self::ENOTSOCK => "socket operation on non-socket",
            Self::EMSGSIZE => "message too large",
            Self::EOPNOTSUPP => "operation not supported",
            Self::EADDRINUSE => "address already in use",
            Self::EADDRNOTAVAIL => "cannot assign requested address",
            Self::ENOBUFS => "no buffer space available",
            Self::EISCONN => "transport endpoint is already connected",
            Self::ENOTCONN => "transport endpoint is not connected",
            Self::ETIMEDOUT => "connection timed out",
            Self::ECONNREFUSED => "connection refused",
        }
    }
}

impl fmt::Display for XenError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} ({})", self.name(), self.description())
    }
}

impl core::error::Error for XenError {}

/// A number that an ABI enum (hypercall, sub-op, reason...) does not define.
///
/// It carries the raw value, widened to 64 bits, so that the log line can
/// say what the guest asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnknownValue(pub u64);

impl fmt::Display for UnknownValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "unknown ABI value {:#x}", self.0)
    }
}

impl core::error::Error for UnknownValue {}

impl From<UnknownValue> for XenError {
    /// Xen answers an unknown hypercall or sub-op with `-ENOSYS`.
    fn from(_: UnknownValue) -> Self {
        Self::ENOSYS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_values_match_xen() {
        assert_eq!(XenError::EPERM.errno(), 1);
        assert_eq!(XenError::EAGAIN.errno(), 11);
        assert_eq!(XenError::EACCES.errno(), 13);
        assert_eq!(XenError::EFAULT.errno(), 14);
        assert_eq!(XenError::EINVAL.errno(), 22);
        assert_eq!(XenError::ENOSYS.errno(), 38);
        assert_eq!(XenError::ERESTART.errno(), 85);
        assert_eq!(XenError::ECONNREFUSED.errno(), 111);
        assert_eq!(XenError::EWOULDBLOCK, XenError::EAGAIN);
    }

    #[test]
    fn every_error_round_trips() {
        for window in XenError::ALL.windows(2) {
            assert!(window[0] < window[1], "ALL must be sorted and unique");
        }
        for &error in XenError::ALL {
            assert_eq!(XenError::from_return(error.as_return()), Some(error));
            assert_eq!(XenError::from_errno(error.errno()), Some(error));
            assert!(error.name().starts_with('E'));
            assert!(!error.description().is_empty());
            assert_eq!(result_from_raw(error.as_return()), Err(error));
        }
        assert_eq!(XenError::ENOSYS.name(), "ENOSYS");
        assert_eq!(XenError::ENOSYS.description(), "function not implemented");
        assert_eq!(XenError::ENOSYS.as_return(), -38);
    }

    #[test]
    fn raw_results() {
        assert_eq!(result_from_raw(0), Ok(0));
        assert_eq!(result_from_raw(42), Ok(42));
        assert_eq!(result_from_raw(-38), Err(XenError::ENOSYS));
        assert_eq!(
            result_from_raw(-15),
            Err(XenError::EINVAL),
            "15 is not a Xen errno"
        );
        assert_eq!(result_from_raw(i64::MIN), Err(XenError::EINVAL));
        assert_eq!(XenError::from_return(5), None);
        assert_eq!(result_to_raw(Err(XenError::EPERM)), -1);
        assert_eq!(result_to_raw(Ok(7)), 7);
        assert_eq!(XenError::from(UnknownValue(99)), XenError::ENOSYS);
    }
}
