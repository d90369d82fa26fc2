//! The raw side of grant tables: `grant_table_op`, the table's frames
//! (whose entries the hypervisor changes while we read them), and pages
//! shared with another domain by grant.
//!
//! None of these pages is ever a Rust object: the hypervisor and another
//! domain write them concurrently, and a mapping of another domain's frame
//! goes away when it is unmapped. So, as in [`super::memory`], every
//! access is a volatile or atomic one, of a range checked against what was
//! mapped. The logic (the protocol on an entry, when a revocation is
//! allowed) is in the safe module `crate::grant_table`.

use core::sync::atomic::{AtomicU16, Ordering};

use hypercall_abi::grant_table::{
    GnttabCopy, GnttabMapGrantRef, GnttabOp, GnttabSetupTable, GnttabUnmapGrantRef, GrantRef,
    GRANT_ENTRIES_PER_FRAME,
};
use hypercall_abi::layout::{DomainId, DOMID_SELF};
use hypercall_abi::{wrappers, Hypercall, XenError};

use crate::paging::{self, PagingError, PAGE_SIZE};

/// Why a grant hypercall failed: the call itself (a negated errno), or
/// the one request (its `GNTST_*` status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// `grant_table_op` returned this negated errno.
    Hypercall(i64),
    /// The request's `status`.
    Status(i16),
}

/// `Ok` for a call that returned 0 with status 0.
fn outcome(result: i64, status: i16) -> Result<(), Failure> {
    match (result, status) {
        (0, 0) => Ok(()),
        (0, status) => Err(Failure::Status(status)),
        (error, _) => Err(Failure::Hypercall(error)),
    }
}

/// A `grant_table_op` request structure and the sub-op that takes it. Only
/// structures that hold no guest pointer are here: `setup_table`'s frame
/// list has its own wrapper ([`setup_table`]).
pub trait GrantTableRequest {
    /// The `GNTTABOP_*` that reads and writes this structure.
    const OPERATION: GnttabOp;
}

impl GrantTableRequest for GnttabUnmapGrantRef {
    const OPERATION: GnttabOp = GnttabOp::UnmapGrantRef;
}

/// `grant_table_op` on `requests`, read and updated in place: 0 or a
/// negated errno (each request's own outcome is its `status`).
pub fn grant_table_op<T: GrantTableRequest>(requests: &mut [T]) -> i64 {
    // SAFETY: `requests` are structures of the sub-op's type (the trait
    // pairs them), borrowed mutably for the call; none holds a pointer.
    unsafe {
        wrappers::hypercall3(
            Hypercall::GrantTableOp,
            u64::from(T::OPERATION.raw()),
            requests.as_mut_ptr() as u64,
            requests.len() as u64,
        )
    }
}

/// `GNTTABOP_setup_table` for our own table: grows it to `frames.len()`
/// frames and writes their machine frame numbers into `frames`.
pub fn setup_table(frames: &mut [u64]) -> Result<(), Failure> {
    let mut request = GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: frames.len() as u32,
        frame_list: frames.as_mut_ptr() as u64,
        ..GnttabSetupTable::default()
    };
    // SAFETY: `frame_list` points at `frames`, `nr_frames` long, which the
    // hypervisor fills during the call; the request is ours for the call.
    let result = unsafe {
        wrappers::hypercall3(
            Hypercall::GrantTableOp,
            u64::from(GnttabOp::SetupTable.raw()),
            &mut request as *mut GnttabSetupTable as u64,
            1,
        )
    };
    outcome(result, request.status)
}

/// Our grant table's frames, mapped writable at a fixed address. The
/// hypervisor sets and clears `GTF_reading`/`GTF_writing` in an entry's
/// flags at any time (with a 32-bit compare-and-exchange of flags and
/// domid), so flags are only touched atomically; `domid` and `frame` are
/// written with volatile stores, before the flags that make them count.
#[derive(Debug)]
pub struct GrantTableFrames {
    start: u64,
    entries: u32,
}

impl GrantTableFrames {
    /// Maps the table's frames `mfns` (from [`setup_table`]) at `address`
    /// onwards, writable.
    pub fn map(address: u64, mfns: &[u64]) -> Result<Self, PagingError> {
        super::memory::check_unused(address, mfns.len() as u64)?;
        for (index, &mfn) in mfns.iter().enumerate() {
            paging::map(
                address + index as u64 * PAGE_SIZE,
                mfn,
                paging::WRITABLE | paging::NO_EXECUTE,
            )?;
        }
        Ok(Self {
            start: address,
            entries: mfns.len() as u32 * GRANT_ENTRIES_PER_FRAME,
        })
    }

    /// How many entries the table has.
    pub fn entries(&self) -> u32 {
        self.entries
    }

    /// The address of entry `reference`, if the table has it.
    fn entry(&self, reference: GrantRef) -> Option<u64> {
        (reference < self.entries).then(|| self.start + u64::from(reference) * 8)
    }

    /// The flags of entry `reference` (0 beyond the table).
    fn flags(&self, reference: GrantRef) -> Option<&AtomicU16> {
        let address = self.entry(reference)?;
        // SAFETY: the entry is inside our mapped table (checked by
        // `entry`), 8-byte aligned; flags are its first two bytes. Shared
        // with the hypervisor, they are only accessed atomically, never
        // through a plain reference to the integer.
        Some(unsafe { &*(address as *const AtomicU16) })
    }

    /// Loads entry `reference`'s flags.
    pub fn load_flags(&self, reference: GrantRef) -> Option<u16> {
        Some(self.flags(reference)?.load(Ordering::Acquire))
    }

    /// Writes entry `reference`'s grantee and frame (the protocol's first
    /// two steps); `false` beyond the table.
    pub fn write_target(&self, reference: GrantRef, domid: DomainId, frame: u32) -> bool {
        let Some(address) = self.entry(reference) else {
            return false;
        };
        // SAFETY: inside the table (checked); domid at +2, frame at +4,
        // both aligned. Nothing reads them as a Rust object.
        unsafe {
            ((address + 2) as *mut u16).write_volatile(domid);
            ((address + 4) as *mut u32).write_volatile(frame);
        }
        true
    }

    /// Stores entry `reference`'s flags with release ordering (a write
    /// barrier: the grantee and frame written before are seen first).
    pub fn store_flags(&self, reference: GrantRef, flags: u16) -> bool {
        self.flags(reference)
            .map(|atomic| atomic.store(flags, Ordering::Release))
            .is_some()
    }

    /// Compare-and-exchange of entry `reference`'s flags: `Ok` with the old
    /// value when they were `current`, `Err` with what they were otherwise
    /// (`None` beyond the table).
    pub fn compare_exchange_flags(
        &self,
        reference: GrantRef,
        current: u16,
        new: u16,
    ) -> Option<Result<u16, u16>> {
        Some(self.flags(reference)?.compare_exchange(
            current,
            new,
            Ordering::AcqRel,
            Ordering::Acquire,
        ))
    }
}

/// A page shared by grant, at a fixed address: one of our own fresh frames
/// that we grant ([`SharedPage::map_fresh`]), or another domain's frame
/// mapped by `map_grant_ref` ([`map_grant_ref`]). Accessed by volatile
/// 64-bit words: the other domain writes it at any time.
#[derive(Debug, PartialEq, Eq)]
pub struct SharedPage {
    address: u64,
    /// Our machine frame, for a page of our own (what we grant and copy
    /// to or from); `None` for a mapped grant.
    frame: Option<u64>,
}

impl SharedPage {
    /// Maps a fresh frame of ours at `address`, writable, zeroed.
    pub fn map_fresh(address: u64) -> Result<Self, PagingError> {
        super::memory::check_unused(address, 1)?;
        let mfn = paging::pfn_to_mfn(paging::allocate_frame()?);
        paging::map(address, mfn, paging::WRITABLE | paging::NO_EXECUTE)?;
        let page = Self {
            address,
            frame: Some(mfn),
        };
        for index in 0..PAGE_SIZE / 8 {
            page.write_word(index, 0);
        }
        Ok(page)
    }

    /// The address it is mapped at.
    pub fn address(&self) -> u64 {
        self.address
    }

    /// Our machine frame, for a page of our own.
    pub fn frame(&self) -> Option<u64> {
        self.frame
    }

    /// The 64-bit word `index` (0..512); 0 beyond the page.
    pub fn read_word(&self, index: u64) -> u64 {
        if index >= PAGE_SIZE / 8 {
            return 0;
        }
        // SAFETY: inside the page, mapped while `self` lives (an unmap
        // consumes it), aligned; no Rust reference points there.
        unsafe { ((self.address + index * 8) as *const u64).read_volatile() }
    }

    /// Writes the 64-bit word `index` (0..512); nothing beyond the page.
    pub fn write_word(&self, index: u64, value: u64) {
        if index >= PAGE_SIZE / 8 {
            return;
        }
        // SAFETY: as in `read_word`; a read-only mapping would fault (a
        // reported crash), never corrupt Rust memory.
        unsafe { ((self.address + index * 8) as *mut u64).write_volatile(value) }
    }
}

/// `GNTTABOP_map_grant_ref` of `(granter, reference)` at `address`
/// (`GNTMAP_host_map`, read-only or not): the page and the handle.
pub fn map_grant_ref(
    address: u64,
    granter: DomainId,
    reference: GrantRef,
    readonly: bool,
) -> Result<(SharedPage, u32), Failure> {
    use hypercall_abi::grant_table::GntmapFlags;
    super::memory::check_unused(address, 1)
        .map_err(|_| Failure::Hypercall(XenError::EINVAL.as_return()))?;
    // The hypervisor writes the PTE into an existing L1 table.
    paging::ensure_l1(address).map_err(|_| Failure::Hypercall(XenError::ENOMEM.as_return()))?;
    let mut flags = GntmapFlags::HOST_MAP;
    if readonly {
        flags |= GntmapFlags::READONLY;
    }
    let mut request = GnttabMapGrantRef {
        host_addr: address,
        flags: flags.bits(),
        r#ref: reference,
        dom: granter,
        ..GnttabMapGrantRef::default()
    };
    // SAFETY: the request is ours for the call and holds no pointer; the
    // mapping it makes lands at `address`, which holds no Rust object
    // (checked above), and is only reached through the returned page.
    let result = unsafe {
        wrappers::hypercall3(
            Hypercall::GrantTableOp,
            u64::from(GnttabOp::MapGrantRef.raw()),
            &mut request as *mut GnttabMapGrantRef as u64,
            1,
        )
    };
    outcome(result, request.status)?;
    Ok((
        SharedPage {
            address,
            frame: None,
        },
        request.handle,
    ))
}

/// `GNTTABOP_unmap_grant_ref` of the mapping `page` made with `handle`:
/// the page back with the failure when refused.
pub fn unmap_grant_ref(page: SharedPage, handle: u32) -> Result<(), (SharedPage, Failure)> {
    let mut request = [GnttabUnmapGrantRef {
        host_addr: page.address,
        handle,
        ..GnttabUnmapGrantRef::default()
    }];
    let result = grant_table_op(&mut request);
    outcome(result, request[0].status).map_err(|failure| (page, failure))
}

/// `GNTTABOP_copy` of `length` bytes from our `page` (offset 0) into
/// `(granter, reference)` at `offset`.
pub fn copy_to_grant(
    page: &SharedPage,
    granter: DomainId,
    reference: GrantRef,
    offset: u16,
    length: u16,
) -> Result<(), Failure> {
    use hypercall_abi::grant_table::{GnttabCopyPtr, GNTCOPY_DEST_GREF};
    let Some(frame) = page.frame else {
        return Err(Failure::Hypercall(XenError::EINVAL.as_return()));
    };
    let mut request = GnttabCopy {
        source: GnttabCopyPtr {
            u: frame,
            domid: DOMID_SELF,
            ..GnttabCopyPtr::default()
        },
        dest: GnttabCopyPtr {
            u: u64::from(reference),
            domid: granter,
            offset,
            ..GnttabCopyPtr::default()
        },
        len: length,
        flags: GNTCOPY_DEST_GREF,
        ..GnttabCopy::default()
    };
    // SAFETY: the request is ours for the call; its frames are our shared
    // page's (no Rust object) and a granted frame, which the hypervisor
    // checks.
    let result = unsafe {
        wrappers::hypercall3(
            Hypercall::GrantTableOp,
            u64::from(GnttabOp::Copy.raw()),
            &mut request as *mut GnttabCopy as u64,
            1,
        )
    };
    outcome(result, request.status)
}
