//! The grant-table client: granting our frames to another domain,
//! revoking grants, and mapping or copying into other domains' grants, with
//! Xen's version 1 protocol (see `docs/grant-tables.md`).
//!
//! Granting is three writes to an entry of our table, in an order that
//! matters: the grantee's domain ID and the frame first, then (after a write
//! barrier) the flags that make the entry valid, so that the hypervisor
//! never sees a valid entry naming the previous grantee or frame. Revoking
//! is a compare-and-exchange of the flags to 0 that expects `GTF_reading`
//! and `GTF_writing` clear: while the grantee has the frame mapped (or a
//! copy is in progress) the hypervisor keeps them set, the exchange fails,
//! and we must not reuse the frame yet.
//!
//! The raw accesses (the table's frames, the hypercalls, the mapped pages)
//! are in `sys::grant_table`.

#![forbid(unsafe_code)]

use core::fmt;

use hypercall_abi::grant_table::{GrantFlags, GrantRef, GrantStatus, GNTTAB_NR_RESERVED_ENTRIES};
use hypercall_abi::layout::DomainId;
use hypercall_abi::XenError;

pub use crate::sys::grant_table::SharedPage;
use crate::sys::grant_table::{self as raw, Failure, GrantTableFrames};

/// Where this kernel maps its grant table's frames (up to 16).
pub const GRANT_TABLE_ADDRESS: u64 = 0xffff_dd00_0000_0000;
/// The most grant-table frames this client maps.
pub const MAX_FRAMES: usize = 16;
/// Where pages of ours that we grant, and pages we map by grant, go: one
/// page each from here on (callers choose the slot).
pub const SHARED_PAGES_ADDRESS: u64 = 0xffff_dd00_0020_0000;
/// The first grant reference a guest may use for itself: the ones before
/// are reserved for the toolstack (console and XenStore rings).
pub const FIRST_FREE_REFERENCE: GrantRef = GNTTAB_NR_RESERVED_ENTRIES;

/// Why a grant operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// The hypercall itself failed (a negated errno).
    Hypercall(i64),
    /// The hypervisor refused this request (its `GNTST_*` status).
    Status(i16),
    /// The reference is beyond our table.
    NoSuchReference,
    /// The entry is still in use by the grantee: `GTF_reading` or
    /// `GTF_writing` set (the flags found).
    InUse(u16),
    /// The entry already grants something.
    AlreadyGranted(u16),
    /// Mapping our table or a page failed.
    Paging,
}

impl From<Failure> for GrantError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Hypercall(error) => Self::Hypercall(error),
            Failure::Status(status) => Self::Status(status),
        }
    }
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Hypercall(error) => write!(
                f,
                "grant_table_op returned {error} ({})",
                XenError::from_return(error).map_or("?", XenError::name)
            ),
            Self::Status(status) => write!(
                f,
                "status {status} ({})",
                GrantStatus::from_raw(status).map_or("unknown", GrantStatus::message)
            ),
            Self::NoSuchReference => f.write_str("no such grant reference in our table"),
            Self::InUse(flags) => write!(f, "still in use (flags {flags:#x})"),
            Self::AlreadyGranted(flags) => write!(f, "already granted (flags {flags:#x})"),
            Self::Paging => f.write_str("cannot map the page"),
        }
    }
}

/// Our grant table, set up and mapped.
#[derive(Debug)]
pub struct GrantTable {
    frames: GrantTableFrames,
}

impl GrantTable {
    /// Asks for a table of `frame_count` frames (`GNTTABOP_setup_table`)
    /// and maps them at [`GRANT_TABLE_ADDRESS`].
    pub fn setup(frame_count: usize) -> Result<Self, GrantError> {
        if frame_count == 0 || frame_count > MAX_FRAMES {
            return Err(GrantError::Hypercall(XenError::EINVAL.as_return()));
        }
        let mut mfns = [0u64; MAX_FRAMES];
        raw::setup_table(&mut mfns[..frame_count])?;
        let frames = GrantTableFrames::map(GRANT_TABLE_ADDRESS, &mfns[..frame_count])
            .map_err(|_| GrantError::Paging)?;
        Ok(Self { frames })
    }

    /// How many entries the table has.
    pub fn entries(&self) -> u32 {
        self.frames.entries()
    }

    /// Grants `grantee` access to our machine frame `frame` through entry
    /// `reference` (Xen's `gnttab_grant_foreign_access_ref`): grantee and
    /// frame, then the flags with a barrier. Refused when the entry already
    /// grants something (revoke it first).
    pub fn grant_access(
        &self,
        reference: GrantRef,
        grantee: DomainId,
        frame: u64,
        readonly: bool,
    ) -> Result<(), GrantError> {
        let flags = self
            .frames
            .load_flags(reference)
            .ok_or(GrantError::NoSuchReference)?;
        if flags != 0 {
            return Err(GrantError::AlreadyGranted(flags));
        }
        let frame = u32::try_from(frame).map_err(|_| GrantError::Paging)?;
        self.frames.write_target(reference, grantee, frame);
        let mut flags = GrantFlags::PERMIT_ACCESS;
        if readonly {
            flags |= GrantFlags::READONLY;
        }
        // Release: domid and frame are visible before the entry is valid.
        self.frames.store_flags(reference, flags.bits());
        Ok(())
    }

    /// Whether the grantee is using entry `reference` now (`GTF_reading`
    /// or `GTF_writing` set by the hypervisor).
    pub fn in_use(&self, reference: GrantRef) -> bool {
        self.frames
            .load_flags(reference)
            .is_some_and(|flags| flags & (GrantFlags::READING | GrantFlags::WRITING).bits() != 0)
    }

    /// Ends the grant of entry `reference` (Xen's
    /// `gnttab_end_foreign_access_ref`): clears its flags with one
    /// compare-and-exchange that expects neither `GTF_reading` nor
    /// `GTF_writing`, so that a mapping made between our look and our
    /// change makes the exchange fail instead of being missed. Refused
    /// (`InUse`) while the grantee uses it: the frame may not be reused.
    pub fn end_access(&self, reference: GrantRef) -> Result<(), GrantError> {
        let busy = (GrantFlags::READING | GrantFlags::WRITING).bits();
        let mut flags = self
            .frames
            .load_flags(reference)
            .ok_or(GrantError::NoSuchReference)?;
        loop {
            if flags & busy != 0 {
                return Err(GrantError::InUse(flags));
            }
            match self.frames.compare_exchange_flags(reference, flags, 0) {
                Some(Ok(_)) => return Ok(()),
                Some(Err(found)) => flags = found,
                None => return Err(GrantError::NoSuchReference),
            }
        }
    }
}

/// Maps `(granter, reference)` at `address` (`GNTTABOP_map_grant_ref`
/// with `GNTMAP_host_map`): the page, and the handle that unmaps it.
pub fn map_grant_ref(
    address: u64,
    granter: DomainId,
    reference: GrantRef,
    readonly: bool,
) -> Result<GrantMapping, GrantError> {
    raw::map_grant_ref(address, granter, reference, readonly)
        .map(|(page, handle)| GrantMapping { page, handle })
        .map_err(GrantError::from)
}

/// A mapping of another domain's grant, until [`GrantMapping::unmap`].
#[derive(Debug)]
pub struct GrantMapping {
    page: SharedPage,
    handle: u32,
}

impl GrantMapping {
    /// The mapped page.
    pub fn page(&self) -> &SharedPage {
        &self.page
    }

    /// The maptrack handle the hypervisor gave.
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// Unmaps it (`GNTTABOP_unmap_grant_ref`); on refusal the mapping is
    /// handed back, still mapped.
    pub fn unmap(self) -> Result<(), (Self, GrantError)> {
        let handle = self.handle;
        raw::unmap_grant_ref(self.page, handle)
            .map_err(|(page, error)| (Self { page, handle }, GrantError::from(error)))
    }
}

/// Copies the first `length` bytes of our `page` into `(granter,
/// reference)` at `offset` (`GNTTABOP_copy`): the hypervisor does the
/// copy, nothing is mapped.
pub fn copy_to_grant(
    page: &SharedPage,
    granter: DomainId,
    reference: GrantRef,
    offset: u16,
    length: u16,
) -> Result<(), GrantError> {
    Ok(raw::copy_to_grant(
        page, granter, reference, offset, length,
    )?)
}
