//! Reading requests off the wire, and writing replies: every length and
//! string a guest sends is treated as hostile.
//!
//! Bytes arrive from a ring in pieces of any size. [`MessageReader`]
//! gathers a 16-byte header, checks its `len` against
//! `XENSTORE_PAYLOAD_MAX` *before* keeping any payload (a larger `len`
//! breaks the connection: Xen's protocol cannot resynchronise after it),
//! then gathers the payload. [`decode`] turns a whole message into an
//! [`Operation`], checking that strings are NUL-terminated where the
//! protocol says and numbers are numbers; anything else is `EINVAL`.
#![forbid(unsafe_code)]

use super::permissions::parse_domain_id;
use super::XsError;
use alloc::vec::Vec;
use hypercall_abi::xs_wire::{MessageHeader, MessageType, XENSTORE_PAYLOAD_MAX};

/// A whole message: its header and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The header, as sent.
    pub header: MessageHeader,
    /// `header.len` bytes.
    pub payload: Vec<u8>,
}

/// Why a connection can no longer be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// A header announced more than `XENSTORE_PAYLOAD_MAX` bytes.
    PayloadTooLong(u32),
}

/// Gathers messages from a byte stream.
#[derive(Clone, Debug, Default)]
pub struct MessageReader {
    header: [u8; MessageHeader::SIZE],
    header_bytes: usize,
    payload: Vec<u8>,
}

impl MessageReader {
    /// Takes bytes from `input` until one message is complete (or the
    /// input ends). Returns how many bytes it took, and the message if one
    /// completed.
    pub fn take(&mut self, input: &[u8]) -> (usize, Result<Option<Message>, ProtocolError>) {
        let mut used = 0;
        if self.header_bytes < MessageHeader::SIZE {
            let wanted = (MessageHeader::SIZE - self.header_bytes).min(input.len());
            self.header[self.header_bytes..self.header_bytes + wanted]
                .copy_from_slice(&input[..wanted]);
            self.header_bytes += wanted;
            used = wanted;
            if self.header_bytes < MessageHeader::SIZE {
                return (used, Ok(None));
            }
        }
        let header = MessageHeader::from_bytes(&self.header);
        let length = header.len as usize;
        if length > XENSTORE_PAYLOAD_MAX {
            return (used, Err(ProtocolError::PayloadTooLong(header.len)));
        }
        let wanted = (length - self.payload.len()).min(input.len() - used);
        self.payload.extend_from_slice(&input[used..used + wanted]);
        used += wanted;
        if self.payload.len() < length {
            return (used, Ok(None));
        }
        self.header_bytes = 0;
        let payload = core::mem::take(&mut self.payload);
        (used, Ok(Some(Message { header, payload })))
    }
}

/// A decoded request. Paths and tokens are still raw bytes: the store
/// checks and canonicalises paths itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation<'a> {
    /// `XS_READ path`.
    Read(&'a [u8]),
    /// `XS_DIRECTORY path`.
    Directory(&'a [u8]),
    /// `XS_GET_PERMS path`.
    GetPerms(&'a [u8]),
    /// `XS_WRITE path value`.
    Write(&'a [u8], &'a [u8]),
    /// `XS_MKDIR path`.
    Mkdir(&'a [u8]),
    /// `XS_RM path`.
    Rm(&'a [u8]),
    /// `XS_SET_PERMS path permission...`.
    SetPerms(&'a [u8], Vec<&'a [u8]>),
    /// `XS_WATCH path token`.
    Watch(&'a [u8], &'a [u8]),
    /// `XS_UNWATCH path token`.
    Unwatch(&'a [u8], &'a [u8]),
    /// `XS_TRANSACTION_START`.
    TransactionStart,
    /// `XS_TRANSACTION_END T|F` (`true`: commit).
    TransactionEnd(bool),
    /// `XS_INTRODUCE domid mfn port`.
    Introduce(u16, u64, u32),
    /// `XS_RELEASE domid`.
    Release(u16),
    /// `XS_GET_DOMAIN_PATH domid`.
    GetDomainPath(u16),
    /// `XS_IS_DOMAIN_INTRODUCED domid`.
    IsDomainIntroduced(u16),
    /// `XS_RESET_WATCHES`.
    ResetWatches,
    /// A type this store does not implement (`ENOSYS`), or a reply type a
    /// client may not send (`EINVAL`).
    Unsupported(u32),
}

/// Splits a payload of NUL-terminated strings; `None` unless it is exactly
/// `count` strings, each ending in a NUL.
fn strings(payload: &[u8], count: usize) -> Option<Vec<&[u8]>> {
    let (last, _) = payload.split_last()?;
    if *last != 0 {
        return None;
    }
    let parts: Vec<&[u8]> = payload[..payload.len() - 1]
        .split(|&byte| byte == 0)
        .collect();
    (parts.len() == count).then_some(parts)
}

fn one_string(payload: &[u8]) -> Result<&[u8], XsError> {
    strings(payload, 1)
        .map(|parts| parts[0])
        .ok_or(XsError::EINVAL)
}

fn number(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        text.iter()
            .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0')),
    )
}

fn domain_argument(payload: &[u8]) -> Result<u16, XsError> {
    parse_domain_id(one_string(payload)?).ok_or(XsError::EINVAL)
}

/// Decodes a request. Never panics, whatever the bytes.
pub fn decode(message: &Message) -> Result<Operation<'_>, XsError> {
    let payload = message.payload.as_slice();
    let Some(kind) = MessageType::from_raw(message.header.message_type) else {
        return Ok(Operation::Unsupported(message.header.message_type));
    };
    Ok(match kind {
        MessageType::Read => Operation::Read(one_string(payload)?),
        MessageType::Directory => Operation::Directory(one_string(payload)?),
        MessageType::GetPerms => Operation::GetPerms(one_string(payload)?),
        MessageType::Mkdir => Operation::Mkdir(one_string(payload)?),
        MessageType::Rm => Operation::Rm(one_string(payload)?),
        MessageType::Write => {
            let at = payload
                .iter()
                .position(|&byte| byte == 0)
                .ok_or(XsError::EINVAL)?;
            Operation::Write(&payload[..at], &payload[at + 1..])
        }
        MessageType::SetPerms => {
            let (last, _) = payload.split_last().ok_or(XsError::EINVAL)?;
            if *last != 0 {
                return Err(XsError::EINVAL);
            }
            let mut parts = payload[..payload.len() - 1].split(|&byte| byte == 0);
            let path = parts.next().ok_or(XsError::EINVAL)?;
            Operation::SetPerms(path, parts.collect())
        }
        MessageType::Watch | MessageType::Unwatch => {
            let parts = strings(payload, 2).ok_or(XsError::EINVAL)?;
            if kind == MessageType::Watch {
                Operation::Watch(parts[0], parts[1])
            } else {
                Operation::Unwatch(parts[0], parts[1])
            }
        }
        MessageType::TransactionStart => {
            if payload != b"\0" && !payload.is_empty() {
                return Err(XsError::EINVAL);
            }
            Operation::TransactionStart
        }
        MessageType::TransactionEnd => match payload {
            b"T\0" => Operation::TransactionEnd(true),
            b"F\0" => Operation::TransactionEnd(false),
            _ => return Err(XsError::EINVAL),
        },
        MessageType::Introduce => {
            let parts = strings(payload, 3).ok_or(XsError::EINVAL)?;
            let domain = parse_domain_id(parts[0]).ok_or(XsError::EINVAL)?;
            let mfn = number(parts[1]).ok_or(XsError::EINVAL)?;
            let port = number(parts[2])
                .and_then(|port| u32::try_from(port).ok())
                .ok_or(XsError::EINVAL)?;
            Operation::Introduce(domain, mfn, port)
        }
        MessageType::Release => Operation::Release(domain_argument(payload)?),
        MessageType::GetDomainPath => Operation::GetDomainPath(domain_argument(payload)?),
        MessageType::IsDomainIntroduced => Operation::IsDomainIntroduced(domain_argument(payload)?),
        MessageType::ResetWatches => Operation::ResetWatches,
        MessageType::WatchEvent | MessageType::ErrorReply | MessageType::Invalid => {
            return Err(XsError::EINVAL)
        }
        other => Operation::Unsupported(other.raw()),
    })
}

/// A reply (or event) as bytes: header then payload.
pub fn encode(message_type: MessageType, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let header = MessageHeader {
        message_type: message_type.raw(),
        req_id,
        tx_id,
        len: payload.len() as u32,
    };
    let mut bytes = Vec::with_capacity(MessageHeader::SIZE + payload.len());
    bytes.extend_from_slice(&header.to_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(message_type: MessageType, payload: &[u8]) -> Message {
        Message {
            header: MessageHeader {
                message_type: message_type.raw(),
                req_id: 1,
                tx_id: 0,
                len: payload.len() as u32,
            },
            payload: Vec::from(payload),
        }
    }

    #[test]
    fn requests_decode_as_xen_writes_them() {
        let read = message(MessageType::Read, b"name\0");
        assert_eq!(decode(&read), Ok(Operation::Read(b"name")));
        let write = message(MessageType::Write, b"a/b\0va\0lue");
        assert_eq!(decode(&write), Ok(Operation::Write(b"a/b", b"va\0lue")));
        let watch = message(MessageType::Watch, b"/x\0tok\0");
        assert_eq!(decode(&watch), Ok(Operation::Watch(b"/x", b"tok")));
        let perms = message(MessageType::SetPerms, b"/x\0b5\0r0\0");
        assert_eq!(
            decode(&perms),
            Ok(Operation::SetPerms(b"/x", alloc::vec![&b"b5"[..], b"r0"]))
        );
        let introduce = message(MessageType::Introduce, b"5\x00123\x007\x00");
        assert_eq!(decode(&introduce), Ok(Operation::Introduce(5, 123, 7)));
    }

    #[test]
    fn malformed_requests_are_einval() {
        for (kind, payload) in [
            (MessageType::Read, &b"name"[..]),
            (MessageType::Read, b""),
            (MessageType::Read, b"a\0b\0"),
            (MessageType::Write, b"no nul"),
            (MessageType::Watch, b"/x\0"),
            (MessageType::TransactionEnd, b"X\0"),
            (MessageType::Introduce, b"5\x00x\x007\x00"),
            (MessageType::Release, b"70000\0"),
            (MessageType::WatchEvent, b"/x\0t\0"),
            (MessageType::SetPerms, b""),
        ] {
            assert_eq!(
                decode(&message(kind, payload)),
                Err(XsError::EINVAL),
                "{kind:?} {payload:?}"
            );
        }
        let mut unknown = message(MessageType::Read, b"x\0");
        unknown.header.message_type = 1000;
        assert_eq!(decode(&unknown), Ok(Operation::Unsupported(1000)));
    }

    #[test]
    fn the_reader_gathers_messages_from_pieces() {
        let bytes = encode(MessageType::Read, 7, 0, b"name\0");
        let mut reader = MessageReader::default();
        let mut got = None;
        for byte in &bytes {
            let (used, result) = reader.take(core::slice::from_ref(byte));
            assert_eq!(used, 1);
            if let Some(message) = result.unwrap() {
                got = Some(message);
            }
        }
        let message = got.unwrap();
        assert_eq!(message.header.req_id, 7);
        assert_eq!(message.payload, b"name\0");
        // Two messages in one piece: the reader stops after the first.
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        let (used, result) = reader.take(&two);
        assert_eq!(used, bytes.len());
        assert!(result.unwrap().is_some());
    }

    #[test]
    fn an_oversized_length_breaks_the_connection() {
        let mut header = MessageHeader {
            message_type: 2,
            len: XENSTORE_PAYLOAD_MAX as u32 + 1,
            ..Default::default()
        }
        .to_bytes()
        .to_vec();
        header.extend_from_slice(&[0; 100]);
        let (_, result) = MessageReader::default().take(&header);
        assert_eq!(
            result,
            Err(ProtocolError::PayloadTooLong(
                XENSTORE_PAYLOAD_MAX as u32 + 1
            ))
        );
    }
}
