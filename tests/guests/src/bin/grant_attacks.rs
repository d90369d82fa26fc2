//! grant-attacks: a guest that attacks the grant tables, booted as the
//! initial domain by the `grant_tables` scenario (issue 12).
//!
//! It sets up its own grant table, grants frames to itself (domain 0) and
//! to domains that do not exist, and tries every misuse the issue lists:
//! mapping a reference never granted, one granted to someone else, one of
//! a domain that does not exist, a read-only grant writable, a page-table
//! frame writable; unmapping twice or with a handle out of range; copying
//! across a page end or from a frame it does not own; revoking while
//! mapped; exhausting the maptrack (the scenario boots the hypervisor with
//! `gnttab_max_maptrack_frames=1`: 256 mappings). Each must be refused with
//! Xen's `GNTST_*` status, and at the end every frame must come back: the
//! free page count is what it was and the granted frame can be given back.
//! It also checks that the honest path works: a writable grant mapping
//! shares the page both ways, and a grant copy copies. Last, as a
//! privileged domain, it builds a second domain that grants it a frame,
//! maps the grant and destroys the granter: the granter must stay a zombie
//! holding just that frame, keep its ID from the next domain, and go, with
//! every frame back, once the grant is unmapped.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU16, Ordering};

use guest_kernel::abi::domctl::{Domctl, DomctlOp};
use guest_kernel::abi::grant_table::{
    GntmapFlags, GnttabCopy, GnttabCopyPtr, GnttabGetVersion, GnttabMapGrantRef, GnttabOp,
    GnttabQuerySize, GnttabSetVersion, GnttabSetupTable, GnttabUnmapAndReplace,
    GnttabUnmapGrantRef, GrantFlags, GrantStatus, GNTCOPY_DEST_GREF, GNTCOPY_SOURCE_GREF,
};
use guest_kernel::abi::hypercall::Hypercall;
use guest_kernel::abi::layout::DOMID_SELF;
use guest_kernel::abi::memory::{MemoryOp, MemoryReservation};
use guest_kernel::abi::mmu::{MmuUpdate, MmuUpdateKind};
use guest_kernel::abi::sysctl::{DomainInfo, Sysctl, DOMINF_DYING};
use guest_kernel::abi::{wrappers, StartInfo};
use guest_kernel::paging::{self, NO_EXECUTE, PAGE_SIZE, PRESENT, USER, WRITABLE};
use guest_kernel::println;
use test_guests::{check, domctl, expect_result, finish, populate_one};

/// Where the guest maps its own grant-table frame, writable.
const GRANT_TABLE: u64 = 0xffff_d400_0000_0000;
/// Where the granted data frame is mapped by the guest as its owner.
const DATA: u64 = GRANT_TABLE + 0x1000;
/// A scratch frame of its own, for copies.
const SCRATCH: u64 = GRANT_TABLE + 0x2000;
/// The first of 512 pages (one L1 table) where grants are mapped.
const MAPS: u64 = 0xffff_d400_0020_0000;
/// What the data frame holds.
const SECRET: u64 = 0x6a7a_17ed_5ec2_e700;
/// Our own domain ID as the initial domain: what our grants to ourselves
/// name in `domid`.
const ME: u16 = 0;
/// A domain that does not exist.
const NOBODY: u16 = 42;
/// Mappings the maptrack holds with `gnttab_max_maptrack_frames=1`.
const MAPTRACK_LIMIT: u32 = 256;
/// Pins of one kind one entry may hold (Xen's per-byte counters).
const MAX_PINS: u32 = 127;
/// `-ENOSYS`, `-ESRCH`.
const ENOSYS: i64 = -38;
const ESRCH: i64 = -3;
/// Where the other domain's grant-table frame is mapped (foreign mapping)
/// while its entry is written.
const FOREIGN_TABLE: u64 = GRANT_TABLE + 0x3000;

fn grant_table_op<T>(operation: GnttabOp, requests: &mut [T]) -> i64 {
    // SAFETY: the requests are ours for the call; the hypervisor reads and
    // writes `requests.len()` of them.
    unsafe {
        wrappers::hypercall3(
            Hypercall::GrantTableOp,
            u64::from(operation.raw()),
            requests.as_mut_ptr() as u64,
            requests.len() as u64,
        )
    }
}

/// The entry of `reference` in our grant table, through our mapping of it.
fn entry_flags(reference: u32) -> &'static AtomicU16 {
    // SAFETY: GRANT_TABLE maps our grant-table frame writable (set up
    // first); entries are 8 bytes, flags first, 2-byte aligned; the
    // hypervisor changes the flags too, so they are only touched atomically.
    unsafe { &*((GRANT_TABLE + u64::from(reference) * 8) as *const AtomicU16) }
}

/// Writes a grant entry as the protocol says: domid, frame, then flags.
fn grant(reference: u32, to: u16, frame: u64, readonly: bool) {
    let address = GRANT_TABLE + u64::from(reference) * 8;
    // SAFETY: as in `entry_flags`; domid at +2, frame at +4.
    unsafe {
        ((address + 2) as *mut u16).write_volatile(to);
        ((address + 4) as *mut u32).write_volatile(frame as u32);
    }
    let mut flags = GrantFlags::PERMIT_ACCESS;
    if readonly {
        flags |= GrantFlags::READONLY;
    }
    entry_flags(reference).store(flags.bits(), Ordering::Release);
}

/// An honest revocation: only if neither GTF_reading nor GTF_writing.
fn revoke(reference: u32) -> bool {
    let flags = entry_flags(reference);
    let current = flags.load(Ordering::Acquire);
    if current & (GrantFlags::READING | GrantFlags::WRITING).bits() != 0 {
        return false;
    }
    flags
        .compare_exchange(current, 0, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

fn map(reference: u32, dom: u16, address: u64, flags: GntmapFlags) -> (i16, u32) {
    let mut request = [GnttabMapGrantRef {
        host_addr: address,
        flags: flags.bits(),
        r#ref: reference,
        dom,
        ..GnttabMapGrantRef::default()
    }];
    let result = grant_table_op(GnttabOp::MapGrantRef, &mut request);
    if result != 0 {
        return (i16::MIN, 0);
    }
    (request[0].status, request[0].handle)
}

fn unmap(handle: u32, address: u64) -> i16 {
    let mut request = [GnttabUnmapGrantRef {
        host_addr: address,
        handle,
        ..GnttabUnmapGrantRef::default()
    }];
    if grant_table_op(GnttabOp::UnmapGrantRef, &mut request) != 0 {
        return i16::MIN;
    }
    request[0].status
}

fn copy(source: GnttabCopyPtr, dest: GnttabCopyPtr, length: u16, flags: u16) -> i16 {
    let mut request = [GnttabCopy {
        source,
        dest,
        len: length,
        flags,
        ..GnttabCopy::default()
    }];
    if grant_table_op(GnttabOp::Copy, &mut request) != 0 {
        return i16::MIN;
    }
    request[0].status
}

fn by_reference(reference: u32, domid: u16, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr {
        u: u64::from(reference),
        domid,
        offset,
        ..GnttabCopyPtr::default()
    }
}

fn by_frame(frame: u64, domid: u16, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr {
        u: frame,
        domid,
        offset,
        ..GnttabCopyPtr::default()
    }
}

fn expect_status(name: &str, got: i16, wanted: GrantStatus) {
    check(
        name,
        got == wanted.raw(),
        format_args!(
            "status {got} ({}), expected {} ({})",
            GrantStatus::from_raw(got).map_or("not a GNTST_ value", GrantStatus::message),
            wanted.raw(),
            wanted.message()
        ),
    );
}

fn read_only() -> GntmapFlags {
    GntmapFlags::HOST_MAP | GntmapFlags::READONLY
}

fn page(index: u64) -> u64 {
    MAPS + index * PAGE_SIZE
}

fn read(address: u64) -> u64 {
    // SAFETY: callers read pages they just mapped.
    unsafe { (address as *const u64).read_volatile() }
}

fn write(address: u64, value: u64) {
    // SAFETY: callers write pages they just mapped writable.
    unsafe { (address as *mut u64).write_volatile(value) }
}

fn free_pages() -> u64 {
    let mut request = Sysctl::physinfo();
    // SAFETY: the request is ours for the call.
    unsafe { wrappers::sysctl(&mut request) };
    request.physinfo_payload().free_pages
}

fn decrease_reservation(mfn: u64) -> i64 {
    let mut frame = mfn;
    let request = MemoryReservation {
        extent_start: &mut frame as *mut u64 as u64,
        nr_extents: 1,
        extent_order: 0,
        mem_flags: 0,
        domid: DOMID_SELF,
        ..MemoryReservation::default()
    };
    // SAFETY: the request and its one-entry array live for the call.
    unsafe {
        wrappers::hypercall2(
            Hypercall::MemoryOp,
            u64::from(MemoryOp::DecreaseReservation.raw()),
            &request as *const MemoryReservation as u64,
        )
    }
}

fn fresh_frame() -> u64 {
    let pfn = paging::allocate_frame().expect("a free frame for the attacks");
    paging::pfn_to_mfn(pfn)
}

/// Sets up the grant table and maps its frame; returns its MFN.
fn set_up_table() -> u64 {
    let mut frames = [0u64; 1];
    let mut setup = [GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: 1,
        frame_list: frames.as_mut_ptr() as u64,
        ..GnttabSetupTable::default()
    }];
    expect_result(
        "setup_table",
        grant_table_op(GnttabOp::SetupTable, &mut setup),
        0,
    );
    expect_status("setup_table status", setup[0].status, GrantStatus::Okay);
    let mut query = [GnttabQuerySize {
        dom: DOMID_SELF,
        ..GnttabQuerySize::default()
    }];
    expect_result(
        "query_size",
        grant_table_op(GnttabOp::QuerySize, &mut query),
        0,
    );
    check(
        "query_size: one frame of Xen's default 64",
        query[0].nr_frames == 1 && query[0].max_nr_frames == 64,
        format_args!("{} of {}", query[0].nr_frames, query[0].max_nr_frames),
    );
    let mut too_many = [GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: 65,
        frame_list: frames.as_mut_ptr() as u64,
        ..GnttabSetupTable::default()
    }];
    let _ = grant_table_op(GnttabOp::SetupTable, &mut too_many);
    expect_status(
        "setup_table beyond gnttab_max_frames",
        too_many[0].status,
        GrantStatus::GeneralError,
    );
    let mapped = paging::map(GRANT_TABLE, frames[0], WRITABLE | USER | NO_EXECUTE);
    check(
        "map our grant-table frame writable",
        mapped.is_ok(),
        format_args!("{mapped:?}"),
    );
    let table_as_l1 = paging::pin(frames[0], 1);
    check(
        "our grant-table frame cannot become a page table (the hypervisor writes it)",
        table_as_l1.is_err(),
        format_args!("{table_as_l1:?}"),
    );
    frames[0]
}

fn versions() {
    let mut set = [GnttabSetVersion { version: 2 }];
    expect_result(
        "set_version(2) is not implemented",
        grant_table_op(GnttabOp::SetVersion, &mut set),
        ENOSYS,
    );
    let mut set = [GnttabSetVersion { version: 1 }];
    expect_result(
        "set_version(1)",
        grant_table_op(GnttabOp::SetVersion, &mut set),
        0,
    );
    let mut get = [GnttabGetVersion {
        dom: DOMID_SELF,
        ..GnttabGetVersion::default()
    }];
    let result = grant_table_op(GnttabOp::GetVersion, &mut get);
    check(
        "get_version says 1",
        result == 0 && get[0].version == 1,
        format_args!("returned {result}, version {}", get[0].version),
    );
}

#[no_mangle]
fn guest_main(_start_info: &'static StartInfo) -> ! {
    println!("grant-attacks: attacking the grant tables");
    let _table = set_up_table();
    versions();
    let data = fresh_frame();
    let scratch = fresh_frame();
    let mapped = paging::map(DATA, data, WRITABLE | USER | NO_EXECUTE)
        .and_then(|()| paging::map(SCRATCH, scratch, WRITABLE | USER | NO_EXECUTE))
        .and_then(|()| paging::ensure_l1(MAPS).map(|_| ()));
    check(
        "setup: map the data and scratch frames",
        mapped.is_ok(),
        format_args!("{mapped:?}"),
    );
    write(DATA, SECRET);
    let free_before = free_pages();
    let writable = GntmapFlags::HOST_MAP;

    // Bad flags, bad references, bad domains.
    expect_status(
        "map with neither host_map nor device_map",
        map(1, DOMID_SELF, page(0), GntmapFlags::empty()).0,
        GrantStatus::BadGntref,
    );
    expect_status(
        "map a reference never granted",
        map(10, DOMID_SELF, page(0), writable).0,
        GrantStatus::GeneralError,
    );
    expect_status(
        "map a reference beyond the table",
        map(512, DOMID_SELF, page(0), writable).0,
        GrantStatus::BadGntref,
    );
    grant(11, NOBODY, data, false);
    expect_status(
        "map a reference granted to someone else",
        map(11, DOMID_SELF, page(0), writable).0,
        GrantStatus::GeneralError,
    );
    expect_status(
        "map from a domain that does not exist",
        map(11, NOBODY, page(0), writable).0,
        GrantStatus::BadDomain,
    );
    expect_status(
        "map at an address in the hypervisor's area",
        map(11, DOMID_SELF, 0xffff_8000_0000_0000, writable).0,
        GrantStatus::BadVirtAddr,
    );

    // Read-only grants stay read-only.
    grant(12, ME, data, true);
    expect_status(
        "map a read-only grant writable",
        map(12, DOMID_SELF, page(0), writable).0,
        GrantStatus::GeneralError,
    );
    let (status, handle) = map(12, DOMID_SELF, page(0), read_only());
    expect_status("map a read-only grant read-only", status, GrantStatus::Okay);
    check(
        "the read-only mapping reads the granted frame",
        read(page(0)) == SECRET,
        format_args!("read {:#x}", read(page(0))),
    );
    let flags = entry_flags(12).load(Ordering::Acquire);
    check(
        "GTF_reading is set while mapped read-only, GTF_writing is not",
        flags & GrantFlags::READING.bits() != 0 && flags & GrantFlags::WRITING.bits() == 0,
        format_args!("flags {flags:#x}"),
    );
    expect_status(
        "the same entry writable while mapped read-only",
        map(12, DOMID_SELF, page(1), writable).0,
        GrantStatus::GeneralError,
    );
    expect_status("unmap it", unmap(handle, page(0)), GrantStatus::Okay);
    expect_status(
        "copy into a read-only grant",
        copy(
            by_frame(scratch, DOMID_SELF, 0),
            by_reference(12, DOMID_SELF, 0),
            8,
            GNTCOPY_DEST_GREF,
        ),
        GrantStatus::GeneralError,
    );

    // The honest path: a writable grant shares the page both ways.
    grant(13, ME, data, false);
    let (status, handle) = map(13, DOMID_SELF, page(2), writable);
    expect_status("map a writable grant", status, GrantStatus::Okay);
    write(page(2), SECRET + 1);
    check(
        "a write through the grant mapping is seen by the granter",
        read(DATA) == SECRET + 1,
        format_args!("read {:#x}", read(DATA)),
    );
    write(DATA, SECRET);
    check(
        "a write by the granter is seen through the grant mapping",
        read(page(2)) == SECRET,
        format_args!("read {:#x}", read(page(2))),
    );
    let flags = entry_flags(13).load(Ordering::Acquire);
    check(
        "GTF_reading and GTF_writing are set while mapped writable",
        flags & (GrantFlags::READING | GrantFlags::WRITING).bits()
            == (GrantFlags::READING | GrantFlags::WRITING).bits(),
        format_args!("flags {flags:#x}"),
    );

    // Revoke while mapped: the honest way fails, the dishonest way changes
    // nothing that matters.
    check(
        "an honest revocation fails while mapped",
        !revoke(13),
        format_args!("flags {:#x}", entry_flags(13).load(Ordering::Acquire)),
    );
    entry_flags(13).store(0, Ordering::Release);
    expect_result(
        "the granter cannot give a mapped frame back",
        decrease_reservation(data),
        0,
    );
    check(
        "the mapping still reaches the granted frame",
        read(page(2)) == SECRET,
        format_args!("read {:#x}", read(page(2))),
    );
    expect_status("unmap it", unmap(handle, page(2)), GrantStatus::Okay);
    expect_status(
        "unmap the same handle again",
        unmap(handle, page(2)),
        GrantStatus::BadHandle,
    );
    expect_status(
        "unmap a handle out of range",
        unmap(0xffff_fff0, page(2)),
        GrantStatus::BadHandle,
    );
    check(
        "the unmapped page reads nothing any more",
        paging::read_entry(
            paging::l1_table(page(2)).unwrap_or(0),
            (page(2) >> 12) & 511,
        ) & 1
            == 0,
        format_args!("its entry is clear"),
    );

    // Page tables are never granted writable.
    let table = paging::new_table().unwrap_or(0);
    let pinned = paging::pin(table, 1);
    check(
        "setup: pin a frame as an L1",
        pinned.is_ok(),
        format_args!("{pinned:?}"),
    );
    grant(14, ME, table, false);
    expect_status(
        "map a page-table frame writable",
        map(14, DOMID_SELF, page(3), writable).0,
        GrantStatus::GeneralError,
    );
    expect_status(
        "copy into a page-table frame",
        copy(
            by_frame(scratch, DOMID_SELF, 0),
            by_reference(14, DOMID_SELF, 0),
            8,
            GNTCOPY_DEST_GREF,
        ),
        GrantStatus::GeneralError,
    );
    let (status, handle) = map(14, DOMID_SELF, page(3), read_only());
    expect_status(
        "map a page-table frame read-only",
        status,
        GrantStatus::Okay,
    );
    expect_status("unmap it", unmap(handle, page(3)), GrantStatus::Okay);
    check(
        "no GTF_ status bit is left on the page-table grant",
        entry_flags(14).load(Ordering::Acquire)
            & (GrantFlags::READING | GrantFlags::WRITING).bits()
            == 0,
        format_args!("flags {:#x}", entry_flags(14).load(Ordering::Acquire)),
    );

    // Mapping onto a given PTE.
    let l1 = paging::l1_table(page(4)).unwrap_or(0);
    let pte = paging::l1_entry_address(l1, page(4));
    let contains_pte = GntmapFlags::HOST_MAP | GntmapFlags::CONTAINS_PTE;
    grant(15, ME, data, false);
    expect_status(
        "map onto a misaligned PTE address (XSA-227)",
        map(15, DOMID_SELF, pte + 3, contains_pte).0,
        GrantStatus::GeneralError,
    );
    expect_status(
        "map onto an entry of a frame that is not a page table",
        map(15, DOMID_SELF, scratch * PAGE_SIZE, contains_pte).0,
        GrantStatus::GeneralError,
    );
    let (status, handle) = map(15, DOMID_SELF, pte, contains_pte);
    expect_status("map onto a given PTE", status, GrantStatus::Okay);
    check(
        "the PTE mapping reads the granted frame",
        read(page(4)) == SECRET,
        format_args!("read {:#x}", read(page(4))),
    );
    expect_status("unmap it by its PTE", unmap(handle, pte), GrantStatus::Okay);
    device_mappings(data);
    replaced_entries(data, scratch);

    // Copies.
    expect_status(
        "copy past the end of a page",
        copy(
            by_reference(15, DOMID_SELF, 4000),
            by_frame(scratch, DOMID_SELF, 0),
            200,
            GNTCOPY_SOURCE_GREF,
        ),
        GrantStatus::BadCopyArg,
    );
    expect_status(
        "copy from a frame we do not own",
        copy(
            by_frame(1, DOMID_SELF, 0),
            by_frame(scratch, DOMID_SELF, 0),
            8,
            0,
        ),
        GrantStatus::BadPage,
    );
    expect_status(
        "copy naming a frame by domain ID, not DOMID_SELF",
        copy(
            by_frame(data, ME, 0),
            by_frame(scratch, DOMID_SELF, 0),
            8,
            0,
        ),
        GrantStatus::PermissionDenied,
    );
    expect_status(
        "copy from a grant of a domain that does not exist",
        copy(
            by_reference(15, NOBODY, 0),
            by_frame(scratch, DOMID_SELF, 0),
            8,
            GNTCOPY_SOURCE_GREF,
        ),
        GrantStatus::BadDomain,
    );
    write(SCRATCH + 8, 0);
    expect_status(
        "copy 8 bytes from a grant into a frame of ours",
        copy(
            by_reference(15, DOMID_SELF, 0),
            by_frame(scratch, DOMID_SELF, 8),
            8,
            GNTCOPY_SOURCE_GREF,
        ),
        GrantStatus::Okay,
    );
    check(
        "the copy copied",
        read(SCRATCH + 8) == SECRET,
        format_args!("read {:#x}", read(SCRATCH + 8)),
    );

    // Exhaust the maptrack: 256 mappings, over three entries (one entry
    // holds at most 127 read-only pins).
    grant(20, ME, data, true);
    grant(21, ME, data, true);
    grant(22, ME, data, true);
    let mut handles = [0u32; MAPTRACK_LIMIT as usize];
    let mut accepted = 0;
    for (index, handle) in handles.iter_mut().enumerate() {
        let reference = 20 + (index as u32) / MAX_PINS;
        let (status, given) = map(reference, DOMID_SELF, page(8 + index as u64), read_only());
        if status == 0 {
            accepted += 1;
            *handle = given;
        }
        if index as u32 == MAX_PINS - 1 {
            expect_status(
                "a 128th pin of one entry (its count would overflow)",
                map(20, DOMID_SELF, page(300), read_only()).0,
                GrantStatus::GeneralError,
            );
        }
    }
    check(
        "256 mappings fill the maptrack",
        accepted == MAPTRACK_LIMIT,
        format_args!("{accepted} accepted"),
    );
    expect_status(
        "one more mapping when the maptrack is full",
        map(22, DOMID_SELF, page(400), read_only()).0,
        GrantStatus::NoDeviceSpace,
    );
    let mut unmapped = 0;
    for (index, &handle) in handles.iter().enumerate() {
        if unmap(handle, page(8 + index as u64)) == 0 {
            unmapped += 1;
        }
    }
    check(
        "all 256 unmap",
        unmapped == MAPTRACK_LIMIT,
        format_args!("{unmapped} unmapped"),
    );

    // No leak: every frame is back, and the granted frame can go.
    check(
        "no frame leaked",
        free_pages() == free_before,
        format_args!("free pages {} before, {} after", free_before, free_pages()),
    );
    for reference in [11, 12, 13, 14, 15, 20, 21, 22] {
        check(
            "every entry is revocable again",
            revoke(reference),
            format_args!("entry {reference}"),
        );
    }
    let gone = paging::unmap(DATA);
    check(
        "setup: unmap the data frame",
        gone.is_ok(),
        format_args!("{gone:?}"),
    );
    expect_result(
        "the granted frame can be given back once unmapped",
        decrease_reservation(data),
        1,
    );
    dying_granter();
    finish()
}

/// Host and device halves of one mapping unmap on their own (XSA-224):
/// each holds its own references, and a device half (no I/O MMU: its bus
/// address is the machine address) keeps the frame after the host half
/// went.
fn device_mappings(data: u64) {
    let mut request = [GnttabMapGrantRef {
        host_addr: page(5),
        flags: (GntmapFlags::HOST_MAP | GntmapFlags::DEVICE_MAP).bits(),
        r#ref: 15,
        dom: DOMID_SELF,
        ..GnttabMapGrantRef::default()
    }];
    let result = grant_table_op(GnttabOp::MapGrantRef, &mut request);
    let [mapped] = request;
    check(
        "map host and device halves writable",
        result == 0 && mapped.status == 0 && mapped.dev_bus_addr == data * PAGE_SIZE,
        format_args!(
            "returned {result}, status {}, bus address {:#x}",
            mapped.status, mapped.dev_bus_addr
        ),
    );
    expect_status(
        "unmap the host half",
        unmap(mapped.handle, page(5)),
        GrantStatus::Okay,
    );
    expect_result(
        "the device half still keeps the frame from its owner",
        decrease_reservation(data),
        0,
    );
    let unmap_device = |bus_address: u64| {
        let mut request = [GnttabUnmapGrantRef {
            dev_bus_addr: bus_address,
            handle: mapped.handle,
            ..GnttabUnmapGrantRef::default()
        }];
        match grant_table_op(GnttabOp::UnmapGrantRef, &mut request) {
            0 => request[0].status,
            _ => i16::MIN,
        }
    };
    expect_status(
        "unmap the device half with another bus address",
        unmap_device(data * PAGE_SIZE + PAGE_SIZE),
        GrantStatus::GeneralError,
    );
    expect_status(
        "unmap the device half",
        unmap_device(data * PAGE_SIZE),
        GrantStatus::Okay,
    );
    expect_status(
        "and the handle is gone",
        unmap_device(data * PAGE_SIZE),
        GrantStatus::BadHandle,
    );
}

/// A host mapping whose entry the mapper rewrote is no longer the grant
/// mapping: unmapping it is refused (XSA-234), until the entry is put
/// back. `unmap_and_replace` moves another entry into its place.
fn replaced_entries(data: u64, scratch: u64) {
    let (status, handle) = map(15, DOMID_SELF, page(6), GntmapFlags::HOST_MAP);
    expect_status("map a writable grant", status, GrantStatus::Okay);
    let downgraded = paging::map(page(6), data, USER | NO_EXECUTE);
    check(
        "setup: the mapper rewrites the entry read-only",
        downgraded.is_ok(),
        format_args!("{downgraded:?}"),
    );
    expect_status(
        "unmap an entry that is no longer the writable grant mapping",
        unmap(handle, page(6)),
        GrantStatus::GeneralError,
    );
    let restored = paging::map(page(6), data, WRITABLE | USER | NO_EXECUTE);
    check(
        "setup: the mapper puts the entry back",
        restored.is_ok(),
        format_args!("{restored:?}"),
    );
    let replacement = paging::map(page(7), scratch, USER | NO_EXECUTE);
    check(
        "setup: map a frame of ours read-only",
        replacement.is_ok(),
        format_args!("{replacement:?}"),
    );
    let mut request = [GnttabUnmapAndReplace {
        host_addr: page(6),
        new_addr: page(7),
        handle,
        ..GnttabUnmapAndReplace::default()
    }];
    let result = grant_table_op(GnttabOp::UnmapAndReplace, &mut request);
    check(
        "unmap_and_replace",
        result == 0 && request[0].status == 0,
        format_args!("returned {result}, status {}", request[0].status),
    );
    let entry = |address: u64| {
        paging::read_entry(
            paging::l1_table(address).unwrap_or(0),
            (address >> 12) & 511,
        )
    };
    check(
        "the replacement entry moved into the grant's place",
        entry(page(6)) >> 12 & 0xff_ffff_ffff == scratch && entry(page(7)) & 1 == 0,
        format_args!("{:#x} and {:#x}", entry(page(6)), entry(page(7))),
    );
    expect_status(
        "and the handle is gone",
        unmap(handle, page(6)),
        GrantStatus::BadHandle,
    );
    let gone = paging::unmap(page(6));
    check("setup: unmap it", gone.is_ok(), format_args!("{gone:?}"));
}

fn domain_info(id: u16) -> Result<DomainInfo, i64> {
    let mut request = Domctl::new(DomctlOp::GetDomainInfo, id);
    match domctl(&mut request) {
        0 => Ok(request.info()),
        error => Err(error),
    }
}

fn create_domain() -> Result<u16, i64> {
    let mut request = Domctl::new(DomctlOp::CreateDomain, 0);
    request.u.create.max_pages = 16;
    match domctl(&mut request) {
        0 => Ok(request.domain),
        error => Err(error),
    }
}

/// Maps `owner`'s frame `mfn` writable at `address` (0: unmaps).
fn map_foreign(address: u64, mfn: u64, owner: u16) -> i64 {
    let Ok(l1) = paging::ensure_l1(address) else {
        return -12;
    };
    let value = if mfn == 0 {
        0
    } else {
        (mfn * PAGE_SIZE) | PRESENT | WRITABLE | USER | NO_EXECUTE
    };
    let request = MmuUpdate::new(
        MmuUpdateKind::NormalPtUpdate,
        paging::l1_entry_address(l1, address),
        value,
    );
    let mut done = 0;
    // SAFETY: only FOREIGN_TABLE's entry changes, which no Rust reference
    // relies on.
    unsafe { wrappers::mmu_update(&[request], &mut done, owner) }
}

/// A granter destroyed while its grant is mapped stays a zombie holding
/// the granted frame, until the mapping goes.
fn dying_granter() {
    let free_before = free_pages();
    let Ok(granter) = create_domain() else {
        check("create a granting domain", false, format_args!("refused"));
        return;
    };
    let Ok(shared) = populate_one(granter) else {
        check("give it a frame", false, format_args!("refused"));
        return;
    };
    // Set up its grant table (privileged) and write entry 1 for us, as the
    // granter itself would.
    let mut frames = [0u64; 1];
    let mut setup = [GnttabSetupTable {
        dom: granter,
        nr_frames: 1,
        frame_list: frames.as_mut_ptr() as u64,
        ..GnttabSetupTable::default()
    }];
    let _ = grant_table_op(GnttabOp::SetupTable, &mut setup);
    expect_status(
        "set up another domain's grant table (privileged)",
        setup[0].status,
        GrantStatus::Okay,
    );
    expect_result(
        "map its grant-table frame (foreign mapping)",
        map_foreign(FOREIGN_TABLE, frames[0], granter),
        0,
    );
    // SAFETY: FOREIGN_TABLE maps the granter's grant-table frame writable;
    // entry 1 is bytes 8..16: domid, frame, then flags.
    unsafe {
        ((FOREIGN_TABLE + 8 + 2) as *mut u16).write_volatile(ME);
        ((FOREIGN_TABLE + 8 + 4) as *mut u32).write_volatile(shared as u32);
        ((FOREIGN_TABLE + 8) as *mut u16).write_volatile(GrantFlags::PERMIT_ACCESS.bits());
    }
    expect_result("unmap it", map_foreign(FOREIGN_TABLE, 0, DOMID_SELF), 0);
    let (status, handle) = map(1, granter, page(450), GntmapFlags::HOST_MAP);
    expect_status("map the other domain's grant", status, GrantStatus::Okay);
    write(page(450), SECRET);

    let mut destroy = Domctl::new(DomctlOp::DestroyDomain, granter);
    expect_result("destroy the granter", domctl(&mut destroy), 0);
    let held = domain_info(granter).map(|info| (info.flags & DOMINF_DYING != 0, info.tot_pages));
    check(
        "the granter is a zombie holding only the granted frame",
        held == Ok((true, 1)),
        format_args!("{held:?} (dying, pages)"),
    );
    check(
        "the mapping still reaches the granted frame",
        read(page(450)) == SECRET,
        format_args!("read {:#x}", read(page(450))),
    );
    match create_domain() {
        Ok(next) => {
            check(
                "the next domain does not get the zombie's ID",
                next != granter,
                format_args!("zombie {granter}, new {next}"),
            );
            let mut destroy = Domctl::new(DomctlOp::DestroyDomain, next);
            expect_result("destroy it", domctl(&mut destroy), 0);
        }
        Err(error) => check("create another domain", false, format_args!("{error}")),
    }
    expect_status(
        "unmap the dead granter's grant",
        unmap(handle, page(450)),
        GrantStatus::Okay,
    );
    expect_result(
        "the zombie is gone once the grant is unmapped",
        domain_info(granter).map_or_else(|error| error, |_| 0),
        ESRCH,
    );
    check(
        "every frame of the granter came back",
        free_pages() == free_before,
        format_args!("free pages {} before, {} after", free_before, free_pages()),
    );
}
