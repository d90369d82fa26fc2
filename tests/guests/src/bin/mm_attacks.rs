//! mm-attacks: a guest that attacks validated paging, booted as the
//! initial domain by the `paging_attacks` scenario.
//!
//! Each attack is a page-table change that would break one of the
//! hypervisor's memory invariants (DESIGN.md section 3). It must be refused
//! with Xen's error code, or fault, and a check afterwards shows the
//! invariant still holds. The guest ends with `Test result: SUCCESS` only if
//! every check passed; the hypervisor must of course survive them all.
#![no_std]
#![no_main]

use guest_kernel::abi::hypercall::Hypercall;
use guest_kernel::abi::layout::DOMID_SELF;
use guest_kernel::abi::memory::{MachphysMapping, MemoryOp, MemoryReservation};
use guest_kernel::abi::mmu::{MmuUpdate, MmuUpdateKind, UVMF_INVLPG};
use guest_kernel::abi::{wrappers, MulticallEntry, StartInfo};
use guest_kernel::paging::{self, NO_EXECUTE, PAGE_SIZE, PRESENT, USER, WRITABLE};
use guest_kernel::{println, traps};
use test_guests::{check, expect_result, finish};

const EPERM: i64 = -1;
const EINVAL: i64 = -22;
/// Where the attacks map things.
const SCRATCH: u64 = 0xffff_d000_0000_0000;
const PS: u64 = 1 << 7;
/// The hypervisor image starts at machine address 1 MiB.
const HYPERVISOR_FRAME: u64 = 0x100;

fn update_va_mapping(address: u64, pte: u64) -> i64 {
    // SAFETY: attacks on our own address space; nothing Rust relies on is
    // mapped at the addresses used.
    unsafe { wrappers::update_va_mapping(address, pte, UVMF_INVLPG) }
}

fn mmu_update(requests: &[MmuUpdate]) -> (i64, u32) {
    let mut done = 0;
    // SAFETY: as above; the requests name our own tables or are refused.
    let result = unsafe { wrappers::mmu_update(requests, &mut done, DOMID_SELF) };
    (result, done)
}

fn write_entry(table: u64, index: u64, value: u64) -> i64 {
    mmu_update(&[MmuUpdate::new(
        MmuUpdateKind::NormalPtUpdate,
        table * PAGE_SIZE + index * 8,
        value,
    )])
    .0
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

fn reservation(operation: MemoryOp) -> i64 {
    let domain = DOMID_SELF;
    // SAFETY: the hypervisor reads the 2-byte domain ID.
    unsafe {
        wrappers::hypercall2(
            Hypercall::MemoryOp,
            u64::from(operation.raw()),
            &domain as *const u16 as u64,
        )
    }
}

fn machphys_mapping() -> MachphysMapping {
    let mut mapping = MachphysMapping::default();
    // SAFETY: the hypervisor writes the 24-byte answer into `mapping`.
    unsafe {
        wrappers::hypercall2(
            Hypercall::MemoryOp,
            u64::from(MemoryOp::MachphysMapping.raw()),
            &mut mapping as *mut MachphysMapping as u64,
        );
    }
    mapping
}

/// The L4, L3, L2 and L1 machine frames on the way to `address`.
fn tables_for(address: u64) -> [u64; 4] {
    let mut tables = [paging::current_root(), 0, 0, 0];
    for level in 0..3 {
        let shift = 39 - 9 * level as u64;
        let entry = paging::read_entry(tables[level], (address >> shift) & 511);
        tables[level + 1] = (entry & 0x000f_ffff_ffff_f000) / PAGE_SIZE;
    }
    tables
}

fn pte_of(address: u64) -> u64 {
    paging::read_entry(tables_for(address)[3], (address >> 12) & 511)
}

fn fresh_frame() -> u64 {
    let pfn = paging::allocate_frame().expect("a free frame for the attacks");
    paging::pfn_to_mfn(pfn)
}

#[no_mangle]
fn guest_main(start_info: &'static StartInfo) -> ! {
    println!("mm-attacks: attacking validated paging");
    let own_a = fresh_frame();
    let own_b = fresh_frame();
    let own_c = fresh_frame();
    let rw = PRESENT | WRITABLE | USER | NO_EXECUTE;
    let ro = PRESENT | USER | NO_EXECUTE;
    let mapped = paging::map(SCRATCH, own_a, WRITABLE | USER | NO_EXECUTE);
    check(
        "setup: map a frame of our own",
        mapped.is_ok(),
        format_args!("{mapped:?}"),
    );
    let [root, l3, l2, l1] = tables_for(SCRATCH);
    let scratch_pte = pte_of(SCRATCH);

    // Invariant 1: only frames the domain owns.
    expect_result(
        "map the hypervisor's image",
        update_va_mapping(SCRATCH, (HYPERVISOR_FRAME * PAGE_SIZE) | rw),
        EPERM,
    );
    let last = machphys_mapping().max_mfn;
    expect_result(
        "map a frame nobody owns",
        update_va_mapping(SCRATCH, (last * PAGE_SIZE) | ro),
        EPERM,
    );
    expect_result(
        "map a frame beyond RAM",
        update_va_mapping(SCRATCH, ((last + 4096) * PAGE_SIZE) | ro),
        EPERM,
    );
    check(
        "the mapping is unchanged",
        pte_of(SCRATCH) == scratch_pte,
        format_args!("{:#x}", pte_of(SCRATCH)),
    );

    // Invariant 2: page tables are never writable.
    expect_result(
        "map our own L1 writable",
        update_va_mapping(SCRATCH, (l1 * PAGE_SIZE) | rw),
        EINVAL,
    );
    expect_result(
        "map our own L4 writable",
        update_va_mapping(SCRATCH, (root * PAGE_SIZE) | rw),
        EINVAL,
    );
    expect_result(
        "map our own L4 read-only",
        update_va_mapping(SCRATCH, (root * PAGE_SIZE) | ro),
        0,
    );
    expect_result(
        "map our frame back",
        update_va_mapping(SCRATCH, (own_a * PAGE_SIZE) | rw),
        0,
    );
    expect_result("pin a frame that is mapped writable", pin(own_a, 1), EINVAL);
    let root_address = paging::physmap_address(paging::mfn_to_pfn(root));
    match traps::try_write(root_address + 8 * 100, 0) {
        Err(fault) => check(
            "write to the pinned L4 directly",
            fault.vector == 14,
            format_args!(
                "page fault, error {:#x}, address {:#x}",
                fault.error_code, fault.address
            ),
        ),
        Ok(()) => check(
            "write to the pinned L4 directly",
            false,
            format_args!("the store went through"),
        ),
    }
    let l1_address = paging::physmap_address(paging::mfn_to_pfn(l1));
    check(
        "write to an L1 directly",
        traps::try_write(l1_address, 0).is_err(),
        format_args!("faults"),
    );

    // Invariant 3: the hypervisor's region.
    expect_result(
        "write the hypervisor's L4 slot 262",
        write_entry(root, 262, (own_a * PAGE_SIZE) | rw),
        EPERM,
    );
    expect_result(
        "write the M2P's L4 slot 256",
        write_entry(root, 256, 0),
        EPERM,
    );
    expect_result(
        "map an address in the hypervisor's region",
        update_va_mapping(0xffff_8300_0000_0000, (own_a * PAGE_SIZE) | rw),
        EINVAL,
    );

    // Invariant 4: counts keep frames in use from being freed or retyped.
    expect_result(
        "unpin the current base (allowed: the base holds it)",
        unpin(root),
        0,
    );
    expect_result(
        "...but it stays a page table",
        update_va_mapping(SCRATCH, (root * PAGE_SIZE) | rw),
        EINVAL,
    );
    expect_result("pin it again", pin(root, 4), 0);
    expect_result("give back the current base", decrease_reservation(root), 0);
    expect_result("give back an L1 in use", decrease_reservation(l1), 0);
    expect_result(
        "give back a frame that is mapped",
        decrease_reservation(own_a),
        0,
    );
    expect_result(
        "give back an unused frame (allowed)",
        decrease_reservation(own_b),
        1,
    );

    // Loops and wrong levels.
    expect_result(
        "an L2 entry pointing at an L4",
        write_entry(l2, 300, (root * PAGE_SIZE) | rw),
        EINVAL,
    );
    expect_result(
        "an L4 entry pointing at itself",
        write_entry(root, 300, (root * PAGE_SIZE) | rw),
        EINVAL,
    );
    expect_result(
        "an L3 entry pointing at itself",
        write_entry(l3, 300, (l3 * PAGE_SIZE) | rw),
        EINVAL,
    );

    // Bits the hypervisor does not allow.
    expect_result(
        "reserved bit 52 in an L1 entry",
        update_va_mapping(SCRATCH, (own_a * PAGE_SIZE) | rw | (1 << 52)),
        EINVAL,
    );
    expect_result(
        "the PAT bit in an L1 entry",
        update_va_mapping(SCRATCH, (own_a * PAGE_SIZE) | rw | PS),
        EINVAL,
    );
    expect_result(
        "a 2 MiB superpage in an L2 entry",
        write_entry(l2, 301, (own_c * PAGE_SIZE) | rw | PS),
        EINVAL,
    );

    // Malformed requests.
    expect_result(
        "a non-canonical address",
        update_va_mapping(0x0000_8000_0000_0000, (own_a * PAGE_SIZE) | rw),
        EINVAL,
    );
    let misaligned = MmuUpdate {
        ptr: l1 * PAGE_SIZE + 4,
        val: 0,
    };
    expect_result(
        "a misaligned entry address",
        mmu_update(&[misaligned]).0,
        EINVAL,
    );
    expect_result(
        "mmu_update on a frame that is not a page table",
        write_entry(own_a, 0, (own_c * PAGE_SIZE) | ro),
        EINVAL,
    );
    let foreign_m2p = MmuUpdate::new(
        MmuUpdateKind::MachphysUpdate,
        HYPERVISOR_FRAME * PAGE_SIZE,
        5,
    );
    expect_result(
        "an M2P update of a frame we do not own",
        mmu_update(&[foreign_m2p]).0,
        EPERM,
    );
    let own_m2p = MmuUpdate::new(MmuUpdateKind::MachphysUpdate, own_c * PAGE_SIZE, 0x1234);
    expect_result(
        "an M2P update of our own frame",
        mmu_update(&[own_m2p]).0,
        0,
    );
    check(
        "the M2P says so",
        paging::mfn_to_pfn(own_c) == 0x1234,
        format_args!("{:#x}", paging::mfn_to_pfn(own_c)),
    );

    // A batch with a bad entry in the middle.
    let entry = |offset: u64| l1 * PAGE_SIZE + ((SCRATCH + offset) >> 12 & 511) * 8;
    let batch = [
        MmuUpdate::new(
            MmuUpdateKind::NormalPtUpdate,
            entry(PAGE_SIZE),
            (own_c * PAGE_SIZE) | ro,
        ),
        MmuUpdate::new(
            MmuUpdateKind::NormalPtUpdate,
            entry(2 * PAGE_SIZE),
            (HYPERVISOR_FRAME * PAGE_SIZE) | ro,
        ),
        MmuUpdate::new(
            MmuUpdateKind::NormalPtUpdate,
            entry(3 * PAGE_SIZE),
            (own_c * PAGE_SIZE) | ro,
        ),
    ];
    let (result, done) = mmu_update(&batch);
    expect_result("a batch with a bad middle entry", result, EPERM);
    check(
        "...reports one done",
        done == 1,
        format_args!("done = {done}"),
    );
    check(
        "...applied the first",
        pte_of(SCRATCH + PAGE_SIZE) & !0xfff & 0x000f_ffff_ffff_ffff == own_c * PAGE_SIZE,
        format_args!("{:#x}", pte_of(SCRATCH + PAGE_SIZE)),
    );
    check(
        "...and nothing after",
        pte_of(SCRATCH + 3 * PAGE_SIZE) & PRESENT == 0,
        format_args!("{:#x}", pte_of(SCRATCH + 3 * PAGE_SIZE)),
    );

    // Invariant 5: taking a right away flushes the TLB, even when the
    // guest does not ask for a flush. Write through SCRATCH (the TLB now
    // holds a writable translation), make it read-only with no flush flag,
    // and write again: the write must fault.
    check(
        "write through the scratch mapping",
        traps::try_write(SCRATCH, 1).is_ok(),
        format_args!("write"),
    );
    // SAFETY: our own scratch mapping; no Rust reference depends on it.
    let result = unsafe { wrappers::update_va_mapping(SCRATCH, (own_a * PAGE_SIZE) | ro, 0) };
    expect_result("make it read-only without asking for a flush", result, 0);
    check(
        "a stale writable TLB entry is not left behind",
        traps::try_write(SCRATCH, 2).is_err(),
        format_args!("the write faults"),
    );
    expect_result(
        "make it writable again",
        update_va_mapping(SCRATCH, (own_a * PAGE_SIZE) | rw),
        0,
    );

    // mmu_update does not flush (it cannot know the virtual address), but
    // no stale translation may outlive a retype: map a fresh frame
    // writable, write through it, unmap it with mmu_update, pin the frame
    // as an L1, then write through the old address again.
    let victim = fresh_frame();
    let victim_address = SCRATCH + 6 * PAGE_SIZE;
    let victim_entry = (victim_address >> 12) & 511;
    expect_result(
        "map a fresh frame with mmu_update",
        write_entry(l1, victim_entry, (victim * PAGE_SIZE) | rw),
        0,
    );
    check(
        "write through it",
        traps::try_write(victim_address, 7).is_ok(),
        format_args!("write"),
    );
    expect_result(
        "unmap it with mmu_update",
        write_entry(l1, victim_entry, 0),
        0,
    );
    check(
        "clear the frame",
        paging::clear_frame(victim).is_ok(),
        format_args!("clear_page"),
    );
    expect_result("pin the frame as an L1", pin(victim, 1), 0);
    check(
        "the old translation is gone: the pinned table cannot be written",
        traps::try_write(victim_address, 8).is_err(),
        format_args!("the write faults"),
    );
    expect_result("unpin it", unpin(victim), 0);

    // An L1 linked from two L2 entries maps each page at two addresses.
    // update_va_mapping drops the translation of the address it changed; the
    // other address's must not survive the frame becoming a page table (an
    // attack found while writing docs/direct-paging.md: it let a guest write
    // a pinned L1 through the stale alias and map the hypervisor).
    let alias = SCRATCH + (2 << 20);
    expect_result(
        "link our L1 at a second L2 slot",
        write_entry(l2, 1, (l1 * PAGE_SIZE) | PRESENT | WRITABLE | USER),
        0,
    );
    let second = fresh_frame();
    check(
        "clear a frame",
        paging::clear_frame(second).is_ok(),
        format_args!("clear_page"),
    );
    let page = 10 * PAGE_SIZE;
    expect_result(
        "map it writable",
        update_va_mapping(SCRATCH + page, (second * PAGE_SIZE) | rw),
        0,
    );
    check(
        "write it through the alias",
        traps::try_write(alias + page, 0).is_ok(),
        format_args!("write"),
    );
    expect_result(
        "unmap it (invlpg of one address)",
        update_va_mapping(SCRATCH + page, 0),
        0,
    );
    expect_result("pin it as an L1", pin(second, 1), 0);
    let evil = (HYPERVISOR_FRAME * PAGE_SIZE) | PRESENT | USER;
    check(
        "the alias's stale translation is gone: the pinned L1 cannot be written",
        traps::try_write(alias + page, evil).is_err(),
        format_args!("the write faults"),
    );
    expect_result("unpin it", unpin(second), 0);
    expect_result("unlink the alias", write_entry(l2, 1, 0), 0);

    // Multicall: every entry runs and gets its own result.
    let mut calls = [
        MulticallEntry {
            op: Hypercall::UpdateVaMapping as u64,
            result: 0,
            args: [
                SCRATCH,
                (HYPERVISOR_FRAME * PAGE_SIZE) | ro,
                UVMF_INVLPG,
                0,
                0,
                0,
            ],
        },
        MulticallEntry {
            op: Hypercall::XenVersion as u64,
            result: 0,
            args: [0; 6],
        },
        MulticallEntry {
            op: Hypercall::Multicall as u64,
            result: 0,
            args: [0; 6],
        },
    ];
    // (An `iret` entry is not a bad entry: it returns through the guest's
    // iret frame and ends the multicall; `vcpu-interface` checks it.)
    // SAFETY: the entries live for the call; the hypervisor writes results.
    let result = unsafe {
        wrappers::hypercall2(
            Hypercall::Multicall,
            calls.as_mut_ptr() as u64,
            calls.len() as u64,
        )
    };
    expect_result("a multicall with bad entries", result, 0);
    expect_result(
        "...its bad update_va_mapping",
        calls[0].result as i64,
        EPERM,
    );
    check(
        "...its xen_version",
        calls[1].result == wrappers::xen_version_number() as u64,
        format_args!("{:#x}", calls[1].result),
    );
    expect_result("...a nested multicall", calls[2].result as i64, EINVAL);

    // memory_op: the reservation follows what we gave back.
    let total = start_info.nr_pages;
    expect_result(
        "current reservation after giving one back",
        reservation(MemoryOp::CurrentReservation),
        total as i64 - 1,
    );
    expect_result(
        "maximum reservation",
        reservation(MemoryOp::MaximumReservation),
        total as i64,
    );
    let mut frame = 0u64;
    let request = MemoryReservation {
        extent_start: &mut frame as *mut u64 as u64,
        nr_extents: 2,
        domid: DOMID_SELF,
        ..MemoryReservation::default()
    };
    // SAFETY: the request and its array (only one frame will be written:
    // the second exceeds the limit and stops the loop) live for the call.
    let added = unsafe {
        wrappers::hypercall2(
            Hypercall::MemoryOp,
            u64::from(MemoryOp::IncreaseReservation.raw()),
            &request as *const MemoryReservation as u64,
        )
    };
    expect_result("increase by 2 with room for 1", added, 1);
    check(
        "...and we own the new frame",
        frame != 0
            && write_entry(
                l1,
                (SCRATCH + 5 * PAGE_SIZE) >> 12 & 511,
                (frame * PAGE_SIZE) | rw,
            ) == 0,
        format_args!("{frame:#x}"),
    );

    // Invariant 6: the shared info page, which the hypervisor writes on
    // its own, can never become a page table. The attack it stops: remap
    // the page read-only (dropping our writable reference), pin it as an
    // L1 and link it, then fault so that the hypervisor writes `cr2`, an
    // address we chose such as 0x100007 (machine frame 0x100, present,
    // writable, user), into what is now a validated L1.
    let shared = start_info.shared_info / PAGE_SIZE;
    let shared_address = guest_kernel::start::SHARED_INFO_ADDRESS;
    // Zeroed first, while we may still write it, so that an L1 validation
    // of its contents would pass: only the type rule can stop the pin.
    let info = guest_kernel::start::shared_info_pointer();
    // SAFETY: the page is mapped writable at `info` for our whole life;
    // the masks we need afterwards are put back below.
    let masks = unsafe {
        let masks = ((*info).evtchn_mask, (*info).vcpu_info[0].evtchn_upcall_mask);
        core::ptr::write_bytes(info as *mut u8, 0, PAGE_SIZE as usize);
        masks
    };
    expect_result(
        "remap the shared info page read-only",
        update_va_mapping(shared_address, (shared * PAGE_SIZE) | ro),
        0,
    );
    for level in 1..=4 {
        expect_result(
            "pin the read-only shared info page as a page table",
            pin(shared, level),
            EINVAL,
        );
    }
    expect_result(
        "link the shared info page into an L2 as an L1",
        write_entry(l2, 100, (shared * PAGE_SIZE) | rw),
        EINVAL,
    );
    expect_result(
        "give the shared info page back",
        decrease_reservation(shared),
        0,
    );
    let planted = (HYPERVISOR_FRAME * PAGE_SIZE) | PRESENT | WRITABLE | USER;
    check(
        "fault at the address that would be a planted entry",
        traps::try_write(planted, 0).is_err(),
        format_args!("faults"),
    );
    check(
        "the hypervisor wrote cr2 into the page, which stayed plain data",
        guest_kernel::start::shared_info()
            .is_some_and(|info| info.vcpu_info[0].arch.cr2 == planted),
        format_args!("cr2 {:#x}", traps::fault_address()),
    );
    expect_result(
        "remap the shared info page writable again",
        update_va_mapping(shared_address, (shared * PAGE_SIZE) | rw),
        0,
    );
    // SAFETY: mapped writable again at `info`.
    unsafe {
        (*info).evtchn_mask = masks.0;
        (*info).vcpu_info[0].evtchn_upcall_mask = masks.1;
    }

    // The hypervisor is still there, and our memory still works.
    check(
        "the hypervisor still answers",
        wrappers::xen_version_number() > 0,
        format_args!("xen_version"),
    );
    check(
        "the scratch page is still ours and writable",
        traps::try_write(SCRATCH, 42).is_ok(),
        format_args!("write"),
    );
    finish()
}

fn pin(mfn: u64, level: u8) -> i64 {
    paging::pin(mfn, level)
        .err()
        .map_or(0, |error| match error {
            paging::PagingError::Refused(code) => code,
            paging::PagingError::OutOfFrames => -12,
        })
}

fn unpin(mfn: u64) -> i64 {
    paging::unpin(mfn).err().map_or(0, |error| match error {
        paging::PagingError::Refused(code) => code,
        paging::PagingError::OutOfFrames => -12,
    })
}
