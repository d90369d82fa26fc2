//! Who may read and write a node: XenStore's permission lists.
//!
//! Every node carries a list of (domain, access) pairs, written on the wire
//! as strings like `"n5"` or `"r0"`:
//!
//! ```text
//!   [ b5 ,  r0 ,  w7 ]
//!     |     |     '-- domain 7 may write (not read)
//!     |     '-------- domain 0 may read (Dom0 may do anything anyway)
//!     '-------------- the OWNER is domain 5 (may do anything), and "b" is
//!                     what every domain not listed after it gets
//! ```
//!
//! The rule, as Xen's xenstored applies it: the privileged domain (Dom0) may
//! do anything; the owner (first entry) may do anything; a domain listed
//! later gets that entry's access; everyone else gets the first entry's
//! access. A new node inherits its parent's list, except that a node an
//! unprivileged domain creates is owned by that domain (so it counts in
//! its quota and it may remove it again).
#![forbid(unsafe_code)]

use super::XsError;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// One access letter of Xen's: none, read, write, both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `n`
    None,
    /// `r`
    Read,
    /// `w`
    Write,
    /// `b`
    Both,
}

impl Access {
    fn letter(self) -> char {
        match self {
            Access::None => 'n',
            Access::Read => 'r',
            Access::Write => 'w',
            Access::Both => 'b',
        }
    }

    fn from_letter(letter: u8) -> Option<Self> {
        match letter {
            b'n' => Some(Access::None),
            b'r' => Some(Access::Read),
            b'w' => Some(Access::Write),
            b'b' => Some(Access::Both),
            _ => None,
        }
    }

    /// Whether this access allows reading.
    pub fn reads(self) -> bool {
        matches!(self, Access::Read | Access::Both)
    }

    /// Whether this access allows writing.
    pub fn writes(self) -> bool {
        matches!(self, Access::Write | Access::Both)
    }
}

/// One entry of a permission list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    /// The domain the entry is about.
    pub domain: u16,
    /// What it may do.
    pub access: Access,
}

/// A node's permission list; never empty (the first entry is the owner).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permissions(Vec<Permission>);

/// What a request wants to do to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Read its value, children or permissions.
    Read,
    /// Change its value, create children under it, remove it.
    Write,
}

impl Permissions {
    /// Owned by `owner`, and `others` for everyone else.
    pub fn owned_by(owner: u16, others: Access) -> Self {
        Self(alloc::vec![Permission {
            domain: owner,
            access: others,
        }])
    }

    /// The owner: the first entry's domain.
    pub fn owner(&self) -> u16 {
        self.0[0].domain
    }

    /// The entries, owner first.
    pub fn entries(&self) -> &[Permission] {
        &self.0
    }

    /// Gives `domain` the access `access` (replacing an entry for it).
    pub fn grant(&mut self, domain: u16, access: Access) {
        match self.0[1..].iter_mut().find(|entry| entry.domain == domain) {
            Some(entry) => entry.access = access,
            None => self.0.push(Permission { domain, access }),
        }
    }

    /// Whether `domain` (privileged or not) may do `want`.
    pub fn allows(&self, domain: u16, privileged: bool, want: Want) -> bool {
        if privileged || domain == self.owner() {
            return true;
        }
        let access = self.0[1..]
            .iter()
            .find(|entry| entry.domain == domain)
            .map_or(self.0[0].access, |entry| entry.access);
        match want {
            Want::Read => access.reads(),
            Want::Write => access.writes(),
        }
    }

    /// The list a child created by `creator` gets: the parent's, owned by
    /// the creator unless the creator is privileged.
    pub fn inherited(&self, creator: u16, privileged: bool) -> Self {
        let mut child = self.clone();
        if !privileged {
            child.0[0].domain = creator;
        }
        child
    }

    /// Parses the strings of an `XS_SET_PERMS` request (each a letter and a
    /// decimal domain ID). Refuses an empty list, an unknown letter, and a
    /// domain ID that is not a number below 65536 (`EINVAL`).
    pub fn parse<'a>(strings: impl Iterator<Item = &'a [u8]>) -> Result<Self, XsError> {
        let mut entries = Vec::new();
        for text in strings {
            let (&letter, digits) = text.split_first().ok_or(XsError::EINVAL)?;
            let access = Access::from_letter(letter).ok_or(XsError::EINVAL)?;
            let domain = parse_domain_id(digits).ok_or(XsError::EINVAL)?;
            entries.push(Permission { domain, access });
        }
        if entries.is_empty() {
            return Err(XsError::EINVAL);
        }
        Ok(Self(entries))
    }

    /// The wire form of `XS_GET_PERMS`: each entry followed by a NUL.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut text = String::new();
        for entry in &self.0 {
            let _ = write!(text, "{}{}\0", entry.access.letter(), entry.domain);
        }
        text.into_bytes()
    }

    /// How many bytes the list takes on the wire (for the entry-size quota).
    pub fn wire_size(&self) -> usize {
        self.0.len() * 7
    }
}

/// A decimal domain ID: digits only, at most five, below 65536.
pub fn parse_domain_id(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits
        .iter()
        .fold(0u32, |value, digit| value * 10 + u32::from(digit - b'0'));
    u16::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(strings: &[&str]) -> Result<Permissions, XsError> {
        Permissions::parse(strings.iter().map(|text| text.as_bytes()))
    }

    #[test]
    fn the_owner_and_dom0_may_do_anything() {
        let permissions = parse(&["n5"]).unwrap();
        for want in [Want::Read, Want::Write] {
            assert!(permissions.allows(5, false, want));
            assert!(permissions.allows(0, true, want));
            assert!(!permissions.allows(6, false, want));
        }
    }

    #[test]
    fn listed_domains_get_their_entry_and_others_the_first() {
        let permissions = parse(&["r5", "w7", "n8"]).unwrap();
        assert!(permissions.allows(6, false, Want::Read));
        assert!(!permissions.allows(6, false, Want::Write));
        assert!(permissions.allows(7, false, Want::Write));
        assert!(!permissions.allows(7, false, Want::Read));
        assert!(!permissions.allows(8, false, Want::Read));
    }

    #[test]
    fn unprivileged_creators_own_what_they_create() {
        let parent = parse(&["b0", "r3"]).unwrap();
        assert_eq!(parent.inherited(5, false).to_wire(), b"b5\0r3\0");
        assert_eq!(parent.inherited(0, true).to_wire(), b"b0\0r3\0");
    }

    #[test]
    fn malformed_lists_are_refused() {
        for bad in [
            &[][..],
            &["x1"],
            &["r"],
            &["r65536"],
            &["r-1"],
            &["r1a"],
            &[""],
        ] {
            assert_eq!(parse(bad), Err(XsError::EINVAL), "{bad:?}");
        }
        assert_eq!(parse_domain_id(b"65535"), Some(65535));
        assert_eq!(parse_domain_id(b"000001"), None);
    }

    #[test]
    fn grant_replaces_an_existing_entry() {
        let mut permissions = Permissions::owned_by(4, Access::None);
        permissions.grant(0, Access::Read);
        permissions.grant(0, Access::Both);
        assert_eq!(permissions.to_wire(), b"n4\0b0\0");
    }
}
