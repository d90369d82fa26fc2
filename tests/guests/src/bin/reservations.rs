//! reservations: a privileged guest that grows and shrinks a domain by
//! thousands of extents in one `memory_op` each, booted as the initial
//! domain by the `reservation_of_many_extents_is_preempted_and_resumed`
//! scenario (issue 19, section 1).
//!
//! Each reservation of `EXTENTS` frames is far more than one hypercall's
//! work budget, so the hypervisor cuts it into continuations (the resume
//! extent in the high bits of `cmd`). The guest sees one call: the result
//! must count every extent, every frame must be distinct and accounted to
//! the domain, and a failure in a later part must report the extents of all
//! parts. That the call was cut shows in the longest hypercall the
//! hypervisor measured (`SYSCTL_longest_hypercall`): well under the time
//! the whole call took. Before continuations, the longest hypercall was
//! the whole call.
#![no_std]
#![no_main]

use guest_kernel::abi::domctl::{Domctl, DomctlOp};
use guest_kernel::abi::hypercall::Hypercall;
use guest_kernel::abi::memory::{MemoryOp, MemoryReservation};
use guest_kernel::abi::sysctl::Sysctl;
use guest_kernel::abi::{wrappers, StartInfo};
use guest_kernel::{println, time};
use test_guests::{check, domctl, expect_result, finish};

/// Extents per request: about five hypercalls' worth of work (2,048 each).
const EXTENTS: usize = 10_000;
/// Where the decrease that fails in its last part stops.
const FAILS_AT: usize = 9_000;

/// The frames of the requests (80 KiB: too big for the stack).
static mut FRAMES: [u64; EXTENTS] = [0; EXTENTS];

fn frames() -> &'static mut [u64; EXTENTS] {
    let pointer = &raw mut FRAMES;
    // SAFETY: this guest has one vCPU and takes no reference to FRAMES
    // anywhere else; each use ends before the next begins.
    unsafe { &mut *pointer }
}

/// The longest hypercall (in TSC cycles) since the last reset; resets.
fn longest_hypercall() -> u64 {
    let mut request = Sysctl::longest_hypercall(true);
    // SAFETY: the request is this guest's own memory, valid for the call.
    let result =
        unsafe { wrappers::hypercall1(Hypercall::Sysctl, &mut request as *mut Sysctl as u64) };
    if result != 0 {
        return u64::MAX;
    }
    request.longest_hypercall_payload().cycles
}

/// `memory_op(operation)` on `count` extents of `FRAMES` for domain `id`;
/// the result and the TSC cycles the whole call took.
fn reservation(operation: MemoryOp, id: u16, count: usize) -> (i64, u64) {
    let request = MemoryReservation {
        extent_start: frames().as_mut_ptr() as u64,
        nr_extents: count as u64,
        extent_order: 0,
        mem_flags: 0,
        domid: id,
        ..MemoryReservation::default()
    };
    let started = time::rdtsc();
    // SAFETY: the request and its array live for the call.
    let result = unsafe {
        wrappers::hypercall2(
            Hypercall::MemoryOp,
            u64::from(operation.raw()),
            &request as *const MemoryReservation as u64,
        )
    };
    (result, time::rdtsc().saturating_sub(started))
}

fn current_reservation(id: u16) -> i64 {
    let domid = id;
    // SAFETY: the domain ID lives for the call.
    unsafe {
        wrappers::hypercall2(
            Hypercall::MemoryOp,
            u64::from(MemoryOp::CurrentReservation.raw()),
            &domid as *const u16 as u64,
        )
    }
}

/// Whether the first `count` frames are all non-zero and distinct.
fn distinct(count: usize) -> bool {
    let list = &mut frames()[..count];
    list.sort_unstable();
    list.windows(2).all(|pair| pair[0] != pair[1]) && list.iter().all(|&frame| frame != 0)
}

/// Checks that one call of `EXTENTS` extents was cut into continuations:
/// the longest single hypercall took well under the whole call.
fn check_preempted(name: &str, whole_call: u64) {
    let longest = longest_hypercall();
    check(
        name,
        longest.saturating_mul(2) < whole_call,
        format_args!("longest hypercall {longest} cycles, the whole call {whole_call}"),
    );
}

#[no_mangle]
fn guest_main(_start_info: &'static StartInfo) -> ! {
    println!("reservations: one memory_op of {EXTENTS} extents at a time");
    let mut create = Domctl::new(DomctlOp::CreateDomain, 0);
    create.u.create.max_pages = (EXTENTS + 16) as u64;
    expect_result("createdomain", domctl(&mut create), 0);
    let id = create.domain;
    let empty = current_reservation(id);

    longest_hypercall();
    let (result, took) = reservation(MemoryOp::IncreaseReservation, id, EXTENTS);
    expect_result(
        "increase_reservation of every extent",
        result,
        EXTENTS as i64,
    );
    check_preempted("increase_reservation was cut into continuations", took);
    expect_result(
        "the domain holds every new frame",
        current_reservation(id) - empty,
        EXTENTS as i64,
    );
    check(
        "increase_reservation's frames are distinct",
        distinct(EXTENTS),
        format_args!("a frame repeated or 0 in the array"),
    );

    longest_hypercall();
    let (result, took) = reservation(MemoryOp::DecreaseReservation, id, EXTENTS);
    expect_result(
        "decrease_reservation of every extent",
        result,
        EXTENTS as i64,
    );
    check_preempted("decrease_reservation was cut into continuations", took);
    expect_result("the domain is empty again", current_reservation(id), empty);

    // populate_physmap: the array names PFNs; it gets the frames back.
    for (pfn, slot) in frames().iter_mut().enumerate() {
        *slot = pfn as u64;
    }
    longest_hypercall();
    let (result, took) = reservation(MemoryOp::PopulatePhysmap, id, EXTENTS);
    expect_result("populate_physmap of every extent", result, EXTENTS as i64);
    check_preempted("populate_physmap was cut into continuations", took);
    check(
        "populate_physmap's frames are distinct",
        distinct(EXTENTS),
        format_args!("a frame repeated or 0 in the array"),
    );

    // A failure in the last part reports the extents of all parts: frame
    // FAILS_AT is not the domain's (0 is nobody's frame to give back).
    frames()[FAILS_AT] = 0;
    let (result, _) = reservation(MemoryOp::DecreaseReservation, id, EXTENTS);
    expect_result(
        "decrease_reservation failing in its fifth part",
        result,
        FAILS_AT as i64,
    );
    expect_result(
        "the frames after the failure stay",
        current_reservation(id) - empty,
        (EXTENTS - FAILS_AT) as i64,
    );

    expect_result(
        "destroydomain",
        domctl(&mut Domctl::new(DomctlOp::DestroyDomain, id)),
        0,
    );
    finish()
}
