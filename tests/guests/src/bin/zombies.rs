//! zombies: a privileged guest that tries to make a destroyed domain's frame
//! pass to the next domain given the same ID, booted as the initial domain
//! by the `zombies` scenario (issue 19, section 2).
//!
//! It creates a domain, gives it a frame, maps that frame writable into its
//! own address space with a foreign mapping, writes a secret into it and
//! destroys the domain while the mapping stays. The hypervisor must keep
//! the destroyed domain as a zombie (dying, holding that one frame, its ID
//! taken), so that a new domain gets another ID and cannot map the frame;
//! once the mapping goes, the zombie must go, its ID become free and every
//! frame come back. Without zombies the new domain got the old ID and, with
//! it, the old frame and the secret.
#![no_std]
#![no_main]

use guest_kernel::abi::domctl::{Domctl, DomctlOp};
use guest_kernel::abi::layout::DOMID_SELF;
use guest_kernel::abi::mmu::{MmuUpdate, MmuUpdateKind};
use guest_kernel::abi::sysctl::{DomainInfo, Sysctl, DOMINF_DYING};
use guest_kernel::abi::{wrappers, StartInfo};
use guest_kernel::paging::{self, NO_EXECUTE, PAGE_SIZE, PRESENT, USER, WRITABLE};
use guest_kernel::println;
use test_guests::{check, domctl, expect_result, finish, populate_one};

const EPERM: i64 = -1;
const ESRCH: i64 = -3;
/// Where the victim's frame is mapped writable while it is destroyed.
const WINDOW: u64 = 0xffff_d000_0000_0000;
/// Where the attacker tries to map the frame again afterwards.
const PROBE: u64 = WINDOW + PAGE_SIZE;
/// What the destroyed domain "left" in its frame.
const SECRET: u64 = 0x5ec2_e70f_d1ed_0001;
/// Pages each new domain may own.
const MAX_PAGES: u64 = 16;

fn create() -> Result<u16, i64> {
    let mut request = Domctl::new(DomctlOp::CreateDomain, 0);
    request.u.create.max_pages = MAX_PAGES;
    match domctl(&mut request) {
        0 => Ok(request.domain),
        error => Err(error),
    }
}

fn destroy(id: u16) -> i64 {
    domctl(&mut Domctl::new(DomctlOp::DestroyDomain, id))
}

fn info(id: u16) -> Result<DomainInfo, i64> {
    let mut request = Domctl::new(DomctlOp::GetDomainInfo, id);
    match domctl(&mut request) {
        0 => Ok(request.info()),
        error => Err(error),
    }
}

/// Writes the L1 entry that maps `address`, naming `owner`'s frames.
fn write_l1_entry(address: u64, value: u64, owner: u16) -> i64 {
    let Ok(l1) = paging::ensure_l1(address) else {
        return -12;
    };
    let request = MmuUpdate::new(
        MmuUpdateKind::NormalPtUpdate,
        paging::l1_entry_address(l1, address),
        value,
    );
    let mut done = 0;
    // SAFETY: only the window and the probe page change, which no Rust
    // reference relies on.
    unsafe { wrappers::mmu_update(&[request], &mut done, owner) }
}

fn map_foreign(address: u64, mfn: u64, owner: u16, writable: bool) -> i64 {
    let rights = if writable { WRITABLE } else { 0 };
    write_l1_entry(
        address,
        (mfn * PAGE_SIZE) | PRESENT | USER | NO_EXECUTE | rights,
        owner,
    )
}

fn unmap(address: u64) -> i64 {
    write_l1_entry(address, 0, DOMID_SELF)
}

fn free_pages() -> u64 {
    let mut request = Sysctl::physinfo();
    // SAFETY: the request is ours for the call.
    unsafe { wrappers::sysctl(&mut request) };
    request.physinfo_payload().free_pages
}

fn is_dying(id: u16) -> (bool, u64) {
    match info(id) {
        Ok(info) => (info.flags & DOMINF_DYING != 0, info.tot_pages),
        Err(_) => (false, 0),
    }
}

#[no_mangle]
fn guest_main(_start_info: &'static StartInfo) -> ! {
    println!("zombies: destroying a domain whose frame is still mapped");
    let free_before = free_pages();
    let Ok(victim) = create() else {
        check("create the victim", false, format_args!("refused"));
        finish();
    };
    let Ok(frame) = populate_one(victim) else {
        check("give the victim a frame", false, format_args!("refused"));
        finish();
    };
    expect_result(
        "map the victim's frame writable (foreign mapping)",
        map_foreign(WINDOW, frame, victim, true),
        0,
    );
    // SAFETY: the window maps the victim's frame writable (checked above;
    // the guest reports and stops on a failure before writing).
    unsafe { (WINDOW as *mut u64).write_volatile(SECRET) };

    expect_result("destroy the victim", destroy(victim), 0);
    let (dying, held) = is_dying(victim);
    check(
        "the destroyed victim is a zombie holding only the mapped frame",
        dying && held == 1,
        format_args!("domain {victim}: dying {dying}, {held} frame(s) held"),
    );
    expect_result(
        "destroying the zombie again is not an error",
        destroy(victim),
        0,
    );
    let (dying, held) = is_dying(victim);
    check(
        "and changes nothing",
        dying && held == 1,
        format_args!("dying {dying}, {held} frame(s) held"),
    );
    expect_result(
        "a zombie's frame cannot be mapped anew",
        map_foreign(PROBE, frame, victim, false),
        ESRCH,
    );
    expect_result(
        "a zombie gets no memory",
        populate_one(victim).map_or_else(|error| error, |_| 0),
        ESRCH,
    );

    // The attack: a new domain, which used to get the victim's ID and with
    // it the frame.
    let Ok(successor) = create() else {
        check("create a successor", false, format_args!("refused"));
        finish();
    };
    check(
        "the successor does not get the zombie's ID",
        successor != victim,
        format_args!("victim {victim}, successor {successor}"),
    );
    let probe = map_foreign(PROBE, frame, successor, false);
    let seen = if probe == 0 {
        // SAFETY: the probe page was just mapped read-only.
        let value = unsafe { (PROBE as *const u64).read_volatile() };
        let _ = unmap(PROBE);
        value
    } else {
        0
    };
    check(
        "the successor does not own the victim's frame",
        probe == EPERM,
        format_args!(
            "mapping it as the successor's returned {probe}; the secret {} readable",
            if seen == SECRET { "IS" } else { "is not" }
        ),
    );

    // The last mapping goes: the zombie must go with it.
    expect_result("unmap the victim's frame", unmap(WINDOW), 0);
    expect_result(
        "the zombie is gone once its last frame was released",
        info(victim).map_or_else(|error| error, |_| 0),
        ESRCH,
    );
    expect_result("destroy the successor", destroy(successor), 0);
    expect_result(
        "the successor is gone at once (nothing of it was mapped)",
        info(successor).map_or_else(|error| error, |_| 0),
        ESRCH,
    );
    let free_after = free_pages();
    check(
        "every frame came back",
        free_after == free_before,
        format_args!("free pages before {free_before}, after {free_after}"),
    );
    match create() {
        Ok(next) => {
            check(
                "the zombie's ID is free again",
                next == victim,
                format_args!("new domain {next}, victim was {victim}"),
            );
            expect_result("destroy it", destroy(next), 0);
        }
        Err(error) => check(
            "create a domain after the zombie went",
            false,
            format_args!("refused: {error}"),
        ),
    }
    finish()
}
