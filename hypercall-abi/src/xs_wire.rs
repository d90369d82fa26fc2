//! XenStore's wire protocol and ring page (`io/xs_wire.h`).
//!
//! XenStore is a tree of small text values served by a daemon in Dom0.
//! A client speaks to it in messages: a 16-byte [`MessageHeader`] followed
//! by `len` bytes of payload, usually NUL-terminated strings. The daemon
//! answers every request with a message of the same `req_id` and
//! `tx_id`, and sends [`MessageType::WatchEvent`] messages on its own when
//! a watched node changes.
//!
//! A DomU reaches the daemon through one shared page,
//! [`XenstoreDomainInterface`] (its machine frame is `start_info.store_mfn`),
//! and one event channel (`start_info.store_evtchn`): requests flow through
//! `req`, replies and watch events through `rsp`, each a 1 KiB byte ring
//! with free-running `u32` indices, exactly like the console ring.
//!
//! ```text
//!  offset 0      1024     2048  2052  2056  2060  2064     2068       2072
//!  +-------------+-------------+-----+-----+-----+-----+--------+----------+-----+
//!  | req ring    | rsp ring    | req | req | rsp | rsp | server | connect- |error|
//!  | guest->Dom0 | Dom0->guest | cons| prod| cons| prod|features| ion      |     |
//!  +-------------+-------------+-----+-----+-----+-----+--------+----------+-----+
//!   producer writes at prod % 1024, then advances prod (after a write barrier);
//!   consumer reads at cons % 1024, then advances cons; prod - cons = unread bytes
//! ```
//!
//! Errors travel as text: a reply of type [`MessageType::ErrorReply`] whose
//! payload is the errno's name ("ENOENT\0"), see [`ERROR_NAMES`].
//!
//! Split devices keep their handshake in the store too: each end writes
//! its [`XenbusState`] (`io/xenbus.h`) in its own `state` node.

use core::mem::{offset_of, size_of};

abi_enum! {
    /// The type of a message (`enum xsd_sockmsg_type`).
    pub enum MessageType: u32 {
        /// Daemon-specific control (Xen's `XS_CONTROL`, once `XS_DEBUG`).
        Control = 0 => "XS_CONTROL",
        /// IN: a path. OUT: the names of its children, each NUL-terminated.
        Directory = 1 => "XS_DIRECTORY",
        /// IN: a path. OUT: its value (not NUL-terminated).
        Read = 2 => "XS_READ",
        /// IN: a path. OUT: its permissions, each a NUL-terminated string
        /// such as "b0" or "r5" (the first names the owner).
        GetPerms = 3 => "XS_GET_PERMS",
        /// IN: a path and a token. OUT: "OK"; then a watch event at once and
        /// whenever the path or anything under it changes.
        Watch = 4 => "XS_WATCH",
        /// IN: a path and a token. OUT: "OK".
        Unwatch = 5 => "XS_UNWATCH",
        /// IN: an empty string. OUT: the new transaction's ID, in decimal.
        TransactionStart = 6 => "XS_TRANSACTION_START",
        /// IN: "T" (commit) or "F" (abort), in the header's transaction.
        /// OUT: "OK", or `EAGAIN` when another change got in the way.
        TransactionEnd = 7 => "XS_TRANSACTION_END",
        /// IN (privileged): domid, mfn, event channel. OUT: "OK".
        Introduce = 8 => "XS_INTRODUCE",
        /// IN (privileged): domid. OUT: "OK".
        Release = 9 => "XS_RELEASE",
        /// IN: domid. OUT: "/local/domain/<domid>".
        GetDomainPath = 10 => "XS_GET_DOMAIN_PATH",
        /// IN: a path, then the value (the rest of the payload). OUT: "OK".
        Write = 11 => "XS_WRITE",
        /// IN: a path. OUT: "OK" (also when it already existed).
        Mkdir = 12 => "XS_MKDIR",
        /// IN: a path. OUT: "OK"; the node and everything under it are gone.
        Rm = 13 => "XS_RM",
        /// IN: a path and permission strings. OUT: "OK".
        SetPerms = 14 => "XS_SET_PERMS",
        /// OUT only: the path that changed and the watch's token.
        WatchEvent = 15 => "XS_WATCH_EVENT",
        /// OUT only: an errno name ("EACCES").
        ErrorReply = 16 => "XS_ERROR",
        /// IN: domid. OUT: "T" or "F".
        IsDomainIntroduced = 17 => "XS_IS_DOMAIN_INTRODUCED",
        /// IN (privileged): domid.
        Resume = 18 => "XS_RESUME",
        /// IN (privileged): domid, target domid.
        SetTarget = 19 => "XS_SET_TARGET",
        /// Obsolete (was `XS_RESTRICT`).
        Restrict = 20 => "XS_RESTRICT",
        /// Removes every watch of the connection.
        ResetWatches = 21 => "XS_RESET_WATCHES",
        /// IN: a path and an offset. OUT: part of a long directory listing.
        DirectoryPart = 22 => "XS_DIRECTORY_PART",
        /// Optional, newer Xen: per-domain features.
        GetFeature = 23 => "XS_GET_FEATURE",
        /// Optional, newer Xen: per-domain features.
        SetFeature = 24 => "XS_SET_FEATURE",
        /// Optional, newer Xen: quotas over the wire.
        GetQuota = 25 => "XS_GET_QUOTA",
        /// Optional, newer Xen: quotas over the wire.
        SetQuota = 26 => "XS_SET_QUOTA",
        /// Guaranteed never to be a valid type.
        Invalid = 0xffff => "XS_INVALID",
    }
}

/// The header of every message (`struct xsd_sockmsg`); the payload of
/// `len` bytes follows it in the ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct MessageHeader {
    /// A [`MessageType`] (kept raw: a guest may send anything).
    pub message_type: u32,
    /// Chosen by the client, echoed in the reply.
    pub req_id: u32,
    /// The transaction the request belongs to, 0 for none.
    pub tx_id: u32,
    /// Payload bytes that follow; at most [`XENSTORE_PAYLOAD_MAX`].
    pub len: u32,
}

const _: () = assert!(size_of::<MessageHeader>() == 16);
const _: () = assert!(offset_of!(MessageHeader, req_id) == 4);
const _: () = assert!(offset_of!(MessageHeader, tx_id) == 8);
const _: () = assert!(offset_of!(MessageHeader, len) == 12);

impl MessageHeader {
    /// Size of the header on the wire.
    pub const SIZE: usize = 16;

    /// Reads a header from its 16 wire bytes (little-endian, as on x86).
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Self {
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        Self {
            message_type: word(0),
            req_id: word(4),
            tx_id: word(8),
            len: word(12),
        }
    }

    /// The header's 16 wire bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut bytes = [0u8; Self::SIZE];
        bytes[0..4].copy_from_slice(&self.message_type.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.req_id.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.tx_id.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.len.to_le_bytes());
        bytes
    }
}

/// `XS_WRITE` flag strings of the old protocol (`XS_WRITE_NONE` ...).
pub const XS_WRITE_NONE: &str = "NONE";
/// See [`XS_WRITE_NONE`].
pub const XS_WRITE_CREATE: &str = "CREATE";
/// See [`XS_WRITE_NONE`].
pub const XS_WRITE_CREATE_EXCL: &str = "CREATE|EXCL";

/// The error names a daemon may answer with (`xsd_errors`), with the errno
/// each stands for. `EQUOTA` is not an errno: Xen's OCaml daemon
/// (oxenstored) answers it when a domain reaches one of its quotas, and
/// clients treat an unknown name as `EINVAL`, so we use it too.
pub const ERROR_NAMES: &[(&str, i32)] = &[
    ("EINVAL", 22),
    ("EACCES", 13),
    ("EEXIST", 17),
    ("EISDIR", 21),
    ("ENOENT", 2),
    ("ENOMEM", 12),
    ("ENOSPC", 28),
    ("EIO", 5),
    ("ENOTEMPTY", 39),
    ("ENOSYS", 38),
    ("EROFS", 30),
    ("EBUSY", 16),
    ("EAGAIN", 11),
    ("EISCONN", 106),
    ("E2BIG", 7),
    ("EPERM", 1),
    ("EQUOTA", 122),
];

/// Size of each ring in [`XenstoreDomainInterface`].
pub const XENSTORE_RING_SIZE: usize = 1024;

/// Position in a ring for a free-running index (`MASK_XENSTORE_IDX`).
pub const fn ring_position(index: u32) -> usize {
    index as usize & (XENSTORE_RING_SIZE - 1)
}

/// The largest payload of one message. "Violating this is very bad": a
/// client or daemon that sees a longer `len` cannot resynchronise.
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// The longest absolute path ("violating this just gets you an error").
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// The longest relative path.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;

/// [`XenstoreDomainInterface::server_features`]: the daemon can reconnect
/// a ring.
pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
/// [`XenstoreDomainInterface::server_features`]: the daemon reports
/// protocol errors in `error`.
pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;
/// [`XenstoreDomainInterface::connection`]: the steady state.
pub const XENSTORE_CONNECTED: u32 = 0;
/// [`XenstoreDomainInterface::connection`]: the guest asked to reconnect.
pub const XENSTORE_RECONNECT: u32 = 1;
/// [`XenstoreDomainInterface::error`]: no error.
pub const XENSTORE_ERROR_NONE: u32 = 0;
/// [`XenstoreDomainInterface::error`]: a communication problem.
pub const XENSTORE_ERROR_COMM: u32 = 1;
/// [`XenstoreDomainInterface::error`]: an index went beyond the ring.
pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
/// [`XenstoreDomainInterface::error`]: a message broke the protocol (for
/// example a `len` above [`XENSTORE_PAYLOAD_MAX`]); the daemon stopped
/// reading this ring.
pub const XENSTORE_ERROR_PROTO: u32 = 3;

/// The page a domain shares with the store daemon
/// (`struct xenstore_domain_interface`).
///
/// The guest produces into `req` (moves `req_prod`) and consumes from
/// `rsp` (moves `rsp_cons`); the daemon does the reverse. After producing,
/// either side signals the event channel.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct XenstoreDomainInterface {
    /// Requests to the daemon.
    pub req: [u8; XENSTORE_RING_SIZE],
    /// Replies and watch events from the daemon.
    pub rsp: [u8; XENSTORE_RING_SIZE],
    /// The daemon's consumer index into `req`.
    pub req_cons: u32,
    /// The guest's producer index into `req`.
    pub req_prod: u32,
    /// The guest's consumer index into `rsp`.
    pub rsp_cons: u32,
    /// The daemon's producer index into `rsp`.
    pub rsp_prod: u32,
    /// Written by the daemon: `XENSTORE_SERVER_FEATURE_*` bits.
    pub server_features: u32,
    /// `XENSTORE_CONNECTED` or `XENSTORE_RECONNECT`.
    pub connection: u32,
    /// Written by the daemon: `XENSTORE_ERROR_*`.
    pub error: u32,
}

const _: () = assert!(offset_of!(XenstoreDomainInterface, rsp) == 1024);
const _: () = assert!(offset_of!(XenstoreDomainInterface, req_cons) == 2048);
const _: () = assert!(offset_of!(XenstoreDomainInterface, req_prod) == 2052);
const _: () = assert!(offset_of!(XenstoreDomainInterface, rsp_cons) == 2056);
const _: () = assert!(offset_of!(XenstoreDomainInterface, rsp_prod) == 2060);
const _: () = assert!(offset_of!(XenstoreDomainInterface, server_features) == 2064);
const _: () = assert!(offset_of!(XenstoreDomainInterface, connection) == 2068);
const _: () = assert!(offset_of!(XenstoreDomainInterface, error) == 2072);
const _: () = assert!(size_of::<XenstoreDomainInterface>() == 2076);
const _: () = assert!(size_of::<XenstoreDomainInterface>() <= crate::PAGE_SIZE);

abi_enum! {
    /// The state of one end of a split device (`enum xenbus_state`, from
    /// `io/xenbus.h`), kept as a decimal number in the store node
    /// `<device path>/state` that only that end writes; each end watches
    /// the other's.
    ///
    /// ```text
    ///  frontend: Initialising -> Initialised -> Connected -> Closing -> Closed
    ///  backend:  Initialising -> InitWait ----> Connected -> Closing -> Closed
    ///            (InitWait: the backend published its details and waits for
    ///             the frontend's; Connected: both sides' details are read)
    /// ```
    pub enum XenbusState: u32 {
        /// The node is missing or unreadable.
        Unknown = 0 => "Unknown",
        /// Setting up (the first state of both ends).
        Initialising = 1 => "Initialising",
        /// The backend is waiting for the frontend's details (ring
        /// reference, event channel).
        InitWait = 2 => "InitWait",
        /// The frontend has published its details.
        Initialised = 3 => "Initialised",
        /// Both ends are connected: I/O may flow.
        Connected = 4 => "Connected",
        /// This end is going away.
        Closing = 5 => "Closing",
        /// This end is gone.
        Closed = 6 => "Closed",
        /// Changing the device's configuration.
        Reconfiguring = 7 => "Reconfiguring",
        /// The configuration change is done.
        Reconfigured = 8 => "Reconfigured",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_types_have_xen_numbers() {
        assert_eq!(MessageType::Read.raw(), 2);
        assert_eq!(MessageType::Write.raw(), 11);
        assert_eq!(MessageType::WatchEvent.raw(), 15);
        assert_eq!(MessageType::ErrorReply.raw(), 16);
        assert_eq!(MessageType::DirectoryPart.raw(), 22);
        assert_eq!(MessageType::try_from(0xffff), Ok(MessageType::Invalid));
        assert!(MessageType::try_from(27).is_err());
    }

    #[test]
    fn headers_round_trip_through_bytes() {
        let header = MessageHeader {
            message_type: 2,
            req_id: 0x1234_5678,
            tx_id: 9,
            len: 4096,
        };
        assert_eq!(MessageHeader::from_bytes(&header.to_bytes()), header);
        assert_eq!(header.to_bytes()[12..], [0, 0x10, 0, 0]);
    }

    #[test]
    fn error_names_are_unique() {
        for (index, (name, _)) in ERROR_NAMES.iter().enumerate() {
            assert!(ERROR_NAMES[index + 1..]
                .iter()
                .all(|(other, _)| other != name));
        }
        assert_eq!(ring_position(1025), 1);
    }

    #[test]
    fn xenbus_states_have_xen_numbers() {
        assert_eq!(XenbusState::Initialising.raw(), 1);
        assert_eq!(XenbusState::Connected.raw(), 4);
        assert_eq!(XenbusState::Reconfigured.raw(), 8);
        assert_eq!(XenbusState::from_raw(6), Some(XenbusState::Closed));
        assert_eq!(XenbusState::from_raw(9), None);
    }
}
