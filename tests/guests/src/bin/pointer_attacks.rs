//! pointer-attacks: a guest that hands the hypervisor pointers it must
//! refuse, booted as the initial domain by the `guest_pointers_are_refused`
//! scenario.
//!
//! Every hypercall that takes a guest buffer is called with buffers in the
//! hypervisor's reserved range (the read-only M2P window, which this guest
//! may itself read, the hypervisor image, the direct map), at non-canonical
//! addresses, on unmapped pages, on read-only pages for buffers the
//! hypervisor writes, wrapping past 2^64 and crossing into a bad page, and
//! with absurd counts. Each must return `-EFAULT` (or `-EINVAL` where Xen
//! refuses the value rather than the pointer), write nothing, and act on
//! nothing. Crafted `iret` frames that can be made safe (a ring-0 or ring-1
//! CS, IOPL and other privileged flags) must come back sanitised; the ones
//! that crash the guest are tried by DomU workloads (`guest-kernel`'s
//! `attacks.rs`).
#![no_std]
#![no_main]

use guest_kernel::abi::callback::{CallbackRegister, CallbackType};
use guest_kernel::abi::domctl::{Domctl, DomctlOp};
use guest_kernel::abi::event_channel::{EventChannelOp, EvtchnAllocUnbound, EvtchnStatus};
use guest_kernel::abi::hypercall::Hypercall;
use guest_kernel::abi::layout::{DOMID_SELF, FLAT_RING3_CS64, FLAT_RING3_SS64};
use guest_kernel::abi::memory::{MemoryMap, MemoryOp, MemoryReservation};
use guest_kernel::abi::mmu::{MmuUpdate, MmuUpdateKind, MmuextCmd, MmuextOp};
use guest_kernel::abi::sched::SchedPoll;
use guest_kernel::abi::sysctl::{Sysctl, SysctlGetdomaininfolist, SysctlReadconsole};
use guest_kernel::abi::{wrappers, MulticallEntry, StartInfo, TrapInfo};
use guest_kernel::paging::{self, NO_EXECUTE, PAGE_SIZE, USER, WRITABLE};
use guest_kernel::{println, time, traps};
use test_guests::{check, expect_result, finish};

const EFAULT: i64 = -14;
const EINVAL: i64 = -22;

/// Pages the attacks use, from `SCRATCH` on: writable, read-only, writable,
/// then a hole that is never mapped.
const SCRATCH: u64 = 0xffff_d100_0000_0000;
const WRITABLE_A: u64 = SCRATCH;
const READ_ONLY: u64 = SCRATCH + PAGE_SIZE;
const WRITABLE_B: u64 = SCRATCH + 2 * PAGE_SIZE;
const HOLE: u64 = SCRATCH + 3 * PAGE_SIZE;

/// The read-only M2P window: mapped with the user bit, readable by guests.
const M2P_WINDOW: u64 = 0xffff_8000_0000_0000;
/// The hypervisor image (Xen's XEN_VIRT_START).
const HYPERVISOR_IMAGE: u64 = 0xffff_82d0_4000_0000;
/// Machine address 1 MiB (the image) through the hypervisor's direct map.
const DIRECT_MAP: u64 = 0xffff_8300_0010_0000;
/// The last bytes of the reserved range.
const RESERVED_END: u64 = 0xffff_87ff_ffff_fff0;

/// The guest-named addresses no hypercall may touch, with their names.
const FORBIDDEN: [(&str, u64); 7] = [
    ("the M2P window", M2P_WINDOW),
    ("the hypervisor image", HYPERVISOR_IMAGE),
    ("the direct map", DIRECT_MAP),
    ("the end of the reserved range", RESERVED_END),
    ("a non-canonical address", 0x0000_8000_0000_0000),
    ("a non-canonical high address", 0x8000_0000_0000_1000),
    ("an unmapped page", HOLE),
];

/// Buffers the hypervisor writes may not be read-only either.
const FORBIDDEN_FOR_WRITES: [(&str, u64); 8] = [
    FORBIDDEN[0],
    FORBIDDEN[1],
    FORBIDDEN[2],
    FORBIDDEN[3],
    FORBIDDEN[4],
    FORBIDDEN[5],
    FORBIDDEN[6],
    ("a read-only page", READ_ONLY),
];

/// Calls `attempt` with each address and expects `-EFAULT`.
fn each_refused(what: &str, addresses: &[(&str, u64)], attempt: impl Fn(u64) -> i64) {
    for &(place, address) in addresses {
        let mut name = heapless::String::<128>::new();
        let _ = core::fmt::write(&mut name, format_args!("{what} at {place}"));
        expect_result(&name, attempt(address), EFAULT);
    }
}

fn call1(call: Hypercall, a: u64) -> i64 {
    // SAFETY: the hypervisor must refuse or act only on what the arguments
    // name; every buffer named is either this guest's scratch memory or
    // one the hypervisor must refuse.
    unsafe { wrappers::hypercall1(call, a) }
}

fn call2(call: Hypercall, a: u64, b: u64) -> i64 {
    // SAFETY: as in `call1`.
    unsafe { wrappers::hypercall2(call, a, b) }
}

fn call3(call: Hypercall, a: u64, b: u64, c: u64) -> i64 {
    // SAFETY: as in `call1`.
    unsafe { wrappers::hypercall3(call, a, b, c) }
}

fn call4(call: Hypercall, a: u64, b: u64, c: u64, d: u64) -> i64 {
    // SAFETY: as in `call1`.
    unsafe { wrappers::hypercall4(call, a, b, c, d) }
}

fn address_of<T>(value: &T) -> u64 {
    value as *const T as u64
}

/// Writes `value` at `address` in this guest's memory.
fn put<T>(address: u64, value: T) {
    // SAFETY: callers name one of the scratch pages, mapped writable, with
    // room for a T at that offset.
    unsafe { core::ptr::write_volatile(address as *mut T, value) }
}

fn get<T: Copy>(address: u64) -> T {
    // SAFETY: callers name a mapped scratch page with a T at that offset.
    unsafe { core::ptr::read_volatile(address as *const T) }
}

/// Offsets in the read-only page of the requests placed there.
const RO_MULTICALL: u64 = 0;
const RO_ALLOC_UNBOUND: u64 = 512;
const RO_MEMORY_MAP: u64 = 1024;
const RO_DOMCTL: u64 = 2048;
const RO_PHYSINFO: u64 = 3072;

fn set_up_pages() {
    let mut ok = true;
    for address in [WRITABLE_A, READ_ONLY, WRITABLE_B] {
        let mfn = paging::pfn_to_mfn(paging::allocate_frame().expect("a frame"));
        ok &= paging::map(address, mfn, WRITABLE | USER | NO_EXECUTE).is_ok();
    }
    // Requests that the hypervisor would answer in place, on the page that
    // becomes read-only.
    let mut entry = MulticallEntry {
        op: Hypercall::XenVersion as u64,
        ..MulticallEntry::default()
    };
    entry.result = 0x5a5a;
    put(READ_ONLY + RO_MULTICALL, entry);
    put(
        READ_ONLY + RO_ALLOC_UNBOUND,
        EvtchnAllocUnbound {
            dom: DOMID_SELF,
            remote_dom: 0,
            port: 0,
        },
    );
    put(
        READ_ONLY + RO_MEMORY_MAP,
        MemoryMap {
            nr_entries: 1,
            pad: 0,
            buffer: WRITABLE_B,
        },
    );
    put(
        READ_ONLY + RO_DOMCTL,
        Domctl::new(DomctlOp::CreateDomain, 0),
    );
    put(READ_ONLY + RO_PHYSINFO, Sysctl::physinfo());
    ok &= paging::protect(READ_ONLY, false).is_ok();
    check(
        "setup: writable, read-only and writable pages, then a hole",
        ok && traps::try_write(READ_ONLY, 0).is_err() && traps::try_write(HOLE, 0).is_err(),
        format_args!("{ok}"),
    );
    // The M2P window is readable from the guest itself: what the hypercalls
    // refuse is the range, not a page the guest could not read.
    let first = get::<u64>(M2P_WINDOW);
    check(
        "setup: the guest reads the M2P window itself",
        true,
        format_args!("first entry {first:#x}"),
    );
}

fn console_io() {
    each_refused("console_io write", &FORBIDDEN, |address| {
        call3(Hypercall::ConsoleIo, 0, 16, address)
    });
    expect_result(
        "console_io write of 0 bytes from the M2P window",
        call3(Hypercall::ConsoleIo, 0, 0, M2P_WINDOW),
        EFAULT,
    );
    expect_result(
        "console_io write of 2^32 bytes from the direct map",
        call3(Hypercall::ConsoleIo, 0, 1 << 32, DIRECT_MAP),
        EFAULT,
    );
    expect_result(
        "console_io write of 2^64-1 bytes (wraps)",
        call3(Hypercall::ConsoleIo, 0, u64::MAX, WRITABLE_A),
        EFAULT,
    );
    expect_result(
        "console_io write running into an unmapped page",
        call3(Hypercall::ConsoleIo, 0, 16, HOLE - 8),
        EFAULT,
    );
    each_refused("console_io read", &FORBIDDEN_FOR_WRITES, |address| {
        call3(Hypercall::ConsoleIo, 1, 16, address)
    });
}

fn mmu_update_and_mmuext_op() {
    // A harmless request: rewrite the entry that maps WRITABLE_B with 0
    // (unmapping it), so "nothing applied" is visible.
    let l1 = paging::l1_table(WRITABLE_B).unwrap_or(0);
    let entry_address = paging::l1_entry_address(l1, WRITABLE_B);
    let before = paging::read_entry(l1, (WRITABLE_B >> 12) & 511);
    put(
        WRITABLE_A,
        MmuUpdate::new(MmuUpdateKind::NormalPtUpdate, entry_address, 0),
    );
    each_refused("mmu_update requests", &FORBIDDEN, |address| {
        call4(Hypercall::MmuUpdate, address, 1, 0, u64::from(DOMID_SELF))
    });
    each_refused("mmu_update done word", &FORBIDDEN[..6], |address| {
        call4(
            Hypercall::MmuUpdate,
            WRITABLE_A,
            1,
            address,
            u64::from(DOMID_SELF),
        )
    });
    let after = paging::read_entry(l1, (WRITABLE_B >> 12) & 511);
    check(
        "mmu_update applied nothing when its done word was refused",
        after == before,
        format_args!("entry {before:#x} -> {after:#x}"),
    );
    expect_result(
        "mmu_update with 2^60 requests (the length wraps)",
        call4(
            Hypercall::MmuUpdate,
            WRITABLE_A,
            1 << 60,
            0,
            u64::from(DOMID_SELF),
        ),
        EFAULT,
    );
    expect_result(
        "mmu_update with 2^32 requests in the M2P window",
        call4(
            Hypercall::MmuUpdate,
            M2P_WINDOW,
            1 << 32,
            0,
            u64::from(DOMID_SELF),
        ),
        EFAULT,
    );
    put(WRITABLE_A, MmuextOp::new(MmuextCmd::TlbFlushLocal, 0, 0));
    each_refused("mmuext_op operations", &FORBIDDEN, |address| {
        call4(Hypercall::MmuextOp, address, 1, 0, u64::from(DOMID_SELF))
    });
    each_refused("mmuext_op done word", &FORBIDDEN[..6], |address| {
        call4(
            Hypercall::MmuextOp,
            WRITABLE_A,
            1,
            address,
            u64::from(DOMID_SELF),
        )
    });
    expect_result(
        "mmuext_op with 2^62 operations (the length wraps)",
        call4(
            Hypercall::MmuextOp,
            WRITABLE_A,
            1 << 62,
            0,
            u64::from(DOMID_SELF),
        ),
        EFAULT,
    );
}

fn multicall() {
    each_refused("multicall entries", &FORBIDDEN, |address| {
        call2(Hypercall::Multicall, address, 1)
    });
    expect_result(
        "multicall entries on a read-only page",
        call2(Hypercall::Multicall, READ_ONLY + RO_MULTICALL, 1),
        EFAULT,
    );
    let entry: MulticallEntry = get(READ_ONLY + RO_MULTICALL);
    check(
        "the read-only entry was neither run nor written",
        entry.result == 0x5a5a,
        format_args!("result {:#x}", entry.result),
    );
    expect_result(
        "multicall with 2^60 entries (the length wraps)",
        call2(Hypercall::Multicall, WRITABLE_A, 1 << 60),
        EFAULT,
    );
}

fn reservation(extent_start: u64, nr_extents: u64) -> MemoryReservation {
    MemoryReservation {
        extent_start,
        nr_extents,
        extent_order: 0,
        mem_flags: 0,
        domid: DOMID_SELF,
        ..MemoryReservation::default()
    }
}

fn memory_op() {
    let decrease = MemoryOp::DecreaseReservation.raw() as u64;
    let populate = MemoryOp::PopulatePhysmap.raw() as u64;
    each_refused("decrease_reservation request", &FORBIDDEN, |address| {
        call2(Hypercall::MemoryOp, decrease, address)
    });
    each_refused("decrease_reservation extent list", &FORBIDDEN, |address| {
        call2(
            Hypercall::MemoryOp,
            decrease,
            address_of(&reservation(address, 1)),
        )
    });
    expect_result(
        "decrease_reservation of 2^62 extents (the length wraps)",
        call2(
            Hypercall::MemoryOp,
            decrease,
            address_of(&reservation(WRITABLE_A, 1 << 62)),
        ),
        EFAULT,
    );
    each_refused(
        "populate_physmap extent list",
        &FORBIDDEN_FOR_WRITES,
        |address| {
            call2(
                Hypercall::MemoryOp,
                populate,
                address_of(&reservation(address, 1)),
            )
        },
    );
    let memory_map = MemoryOp::MemoryMap.raw() as u64;
    each_refused("memory_map request", &FORBIDDEN, |address| {
        call2(Hypercall::MemoryOp, memory_map, address)
    });
    expect_result(
        "memory_map request on a read-only page",
        call2(Hypercall::MemoryOp, memory_map, READ_ONLY + RO_MEMORY_MAP),
        EFAULT,
    );
    for &(place, address) in &FORBIDDEN_FOR_WRITES {
        let request = MemoryMap {
            nr_entries: 1,
            pad: 0,
            buffer: address,
        };
        let mut name = heapless::String::<96>::new();
        let _ = core::fmt::write(&mut name, format_args!("memory_map buffer at {place}"));
        expect_result(
            &name,
            call2(Hypercall::MemoryOp, memory_map, address_of(&request)),
            EFAULT,
        );
    }
    each_refused(
        "machphys_mapping answer",
        &FORBIDDEN_FOR_WRITES,
        |address| {
            call2(
                Hypercall::MemoryOp,
                MemoryOp::MachphysMapping.raw() as u64,
                address,
            )
        },
    );
    each_refused("current_reservation domain ID", &FORBIDDEN, |address| {
        call2(
            Hypercall::MemoryOp,
            MemoryOp::CurrentReservation.raw() as u64,
            address,
        )
    });
}

fn port_status(port: u32) -> u32 {
    let mut request = EvtchnStatus {
        dom: DOMID_SELF,
        port,
        ..Default::default()
    };
    // SAFETY: the request lives for the call.
    let result = unsafe {
        wrappers::event_channel_op(
            EventChannelOp::Status,
            &mut request as *mut EvtchnStatus as *mut u8,
        )
    };
    if result == 0 {
        request.status
    } else {
        u32::MAX
    }
}

fn event_channel_op() {
    let alloc_unbound = EventChannelOp::AllocUnbound.raw() as u64;
    each_refused("alloc_unbound request", &FORBIDDEN_FOR_WRITES, |address| {
        call2(Hypercall::EventChannelOp, alloc_unbound, address)
    });
    each_refused("send request", &FORBIDDEN, |address| {
        call2(
            Hypercall::EventChannelOp,
            EventChannelOp::Send.raw() as u64,
            address,
        )
    });
    each_refused("status request", &FORBIDDEN_FOR_WRITES, |address| {
        call2(
            Hypercall::EventChannelOp,
            EventChannelOp::Status.raw() as u64,
            address,
        )
    });
    // The lowest free port, found by taking it and giving it back.
    let free = guest_kernel::events::alloc_unbound(0).unwrap_or(0);
    let _ = guest_kernel::events::close(free);
    expect_result(
        "alloc_unbound whose answer cannot be written",
        call2(
            Hypercall::EventChannelOp,
            alloc_unbound,
            READ_ONLY + RO_ALLOC_UNBOUND,
        ),
        EFAULT,
    );
    check(
        "no port was allocated for it",
        port_status(free) == 0,
        format_args!("port {free} status {}", port_status(free)),
    );
}

fn sched_op() {
    each_refused("sched_op shutdown request", &FORBIDDEN, |address| {
        call2(Hypercall::SchedOp, 2, address)
    });
    each_refused("sched_op poll request", &FORBIDDEN, |address| {
        call2(Hypercall::SchedOp, 3, address)
    });
    // A short timeout: if the ports were read, the call returns soon anyway.
    let timeout = time::system_time_ns() + 1_000_000;
    each_refused("sched_op poll port list", &FORBIDDEN, |address| {
        let request = SchedPoll {
            ports: address,
            nr_ports: 1,
            pad: 0,
            timeout,
        };
        call2(Hypercall::SchedOp, 3, address_of(&request))
    });
}

fn traps_and_callbacks() {
    each_refused("set_trap_table table", &FORBIDDEN, |address| {
        call1(Hypercall::SetTrapTable, address)
    });
    traps::install();
    let table = [
        TrapInfo::new(6, 0, true, 0x0000_8000_0000_0000),
        TrapInfo::END,
    ];
    expect_result(
        "set_trap_table with a non-canonical handler",
        call1(Hypercall::SetTrapTable, address_of(&table)),
        EINVAL,
    );
    traps::install();
    each_refused("callback_op register request", &FORBIDDEN, |address| {
        call2(Hypercall::CallbackOp, 0, address)
    });
    each_refused("callback_op unregister request", &FORBIDDEN, |address| {
        call2(Hypercall::CallbackOp, 1, address)
    });
    let registration = CallbackRegister::new(CallbackType::Event, 0, 0x8000_0000_0000_0000);
    expect_result(
        "callback_op with a non-canonical event callback",
        call2(Hypercall::CallbackOp, 0, address_of(&registration)),
        EINVAL,
    );
    expect_result(
        "set_callbacks with a non-canonical event callback",
        call3(Hypercall::SetCallbacks, 0x0000_8000_0000_0000, 0, 0),
        EINVAL,
    );
    expect_result(
        "stack_switch to a non-canonical stack",
        call2(
            Hypercall::StackSwitch,
            u64::from(FLAT_RING3_SS64),
            0x0000_8000_0000_0000,
        ),
        EINVAL,
    );
    // As Xen, a canonical stack in the hypervisor's range is accepted: it
    // is used only on a switch from guest user mode, and a bounce there
    // writes through the same checked access as everything here. A
    // breakpoint in kernel mode still goes on the current stack.
    expect_result(
        "stack_switch into the hypervisor's range (accepted, as in Xen)",
        call2(
            Hypercall::StackSwitch,
            u64::from(FLAT_RING3_SS64),
            DIRECT_MAP,
        ),
        0,
    );
    // SAFETY: int3 is bounced to this kernel's breakpoint handler, which
    // reports it and continues; if the bounce used the stack above, the
    // guest would crash here and give no verdict.
    unsafe { core::arch::asm!("int3") };
    check(
        "a breakpoint after it is delivered on the current stack",
        true,
        format_args!("still running"),
    );
}

fn xen_version() {
    each_refused(
        "xen_version extraversion buffer",
        &FORBIDDEN_FOR_WRITES,
        |address| call2(Hypercall::XenVersion, 1, address),
    );
    // 16 bytes across two pages of which only the first may be written:
    // refused, and the first half untouched.
    for (what, address) in [
        ("running into a read-only page", READ_ONLY - 8),
        ("running into an unmapped page", HOLE - 8),
    ] {
        put::<u64>(address, 0xaaaa_aaaa_aaaa_aaaa);
        let mut name = heapless::String::<96>::new();
        let _ = core::fmt::write(&mut name, format_args!("xen_version extraversion {what}"));
        expect_result(&name, call2(Hypercall::XenVersion, 1, address), EFAULT);
        let first_half = get::<u64>(address);
        check(
            "  and nothing of it was written",
            first_half == 0xaaaa_aaaa_aaaa_aaaa,
            format_args!("first half {first_half:#x}"),
        );
    }
    expect_result(
        "xen_version extraversion wrapping past 2^64",
        call2(Hypercall::XenVersion, 1, 0xffff_ffff_ffff_fff8),
        EFAULT,
    );
    each_refused(
        "xen_version get_features",
        &FORBIDDEN_FOR_WRITES,
        |address| call2(Hypercall::XenVersion, 6, address),
    );
    each_refused(
        "xen_version platform_parameters",
        &FORBIDDEN_FOR_WRITES,
        |address| call2(Hypercall::XenVersion, 5, address),
    );
}

fn domain_count() -> u32 {
    let mut request = Sysctl::physinfo();
    // SAFETY: the request lives for the call.
    unsafe { wrappers::sysctl(&mut request) };
    request.physinfo_payload().nr_domains
}

fn sysctl_and_domctl() {
    each_refused("sysctl request", &FORBIDDEN, |address| {
        call1(Hypercall::Sysctl, address)
    });
    expect_result(
        "sysctl physinfo on a read-only page",
        call1(Hypercall::Sysctl, READ_ONLY + RO_PHYSINFO),
        EFAULT,
    );
    each_refused(
        "sysctl readconsole buffer",
        &FORBIDDEN_FOR_WRITES,
        |address| {
            let request = Sysctl::readconsole(SysctlReadconsole {
                buffer: address,
                count: 64,
                ..SysctlReadconsole::default()
            });
            call1(Hypercall::Sysctl, address_of(&request))
        },
    );
    let request = Sysctl::readconsole(SysctlReadconsole {
        buffer: 0xffff_ffff_ffff_f000,
        count: u32::MAX,
        ..SysctlReadconsole::default()
    });
    expect_result(
        "sysctl readconsole of 4 GiB wrapping past 2^64",
        call1(Hypercall::Sysctl, address_of(&request)),
        EFAULT,
    );
    each_refused(
        "sysctl getdomaininfolist buffer",
        &FORBIDDEN_FOR_WRITES,
        |address| {
            let request = Sysctl::getdomaininfolist(SysctlGetdomaininfolist {
                first_domain: 0,
                max_domains: 4,
                buffer: address,
                ..SysctlGetdomaininfolist::default()
            });
            call1(Hypercall::Sysctl, address_of(&request))
        },
    );
    each_refused("domctl request", &FORBIDDEN, |address| {
        call1(Hypercall::Domctl, address)
    });
    let before = domain_count();
    expect_result(
        "domctl createdomain whose answer cannot be written",
        call1(Hypercall::Domctl, READ_ONLY + RO_DOMCTL),
        EFAULT,
    );
    let after = domain_count();
    check(
        "no domain was created for it",
        before == after,
        format_args!("{before} domains before, {after} after"),
    );
}

fn update_va_mapping() {
    for (place, address) in &FORBIDDEN[..6] {
        let mut name = heapless::String::<96>::new();
        let _ = core::fmt::write(&mut name, format_args!("update_va_mapping of {place}"));
        expect_result(
            &name,
            call3(Hypercall::UpdateVaMapping, *address, 0, 0),
            EINVAL,
        );
    }
}

core::arch::global_asm!(
    ".pushsection .text.iret_probe, \"ax\"",
    // iret_probe(cs, rflags) -> (cs, rflags) seen after an `iret` hypercall
    // with that CS and RFLAGS back to the next instruction, on this stack.
    ".global iret_probe",
    "iret_probe:",
    "    mov %rsp, %rax",
    "    push ${ss}",   // ss
    "    push %rax",    // rsp: where `ret` finds the return address
    "    push %rsi",    // rflags
    "    push %rdi",    // cs
    "    lea 1f(%rip), %rax",
    "    push %rax",    // rip
    "    push $0",      // flags: a full restore
    "    jmp hypercall_page + 23 * 32",
    "1:",
    "    mov %cs, %rax",
    "    pushfq",
    "    pop %rdx",
    "    ret",
    ".popsection",
    ss = const FLAT_RING3_SS64,
    options(att_syntax),
);

/// What the processor showed after a crafted `iret`.
#[repr(C)]
struct Seen {
    cs: u64,
    rflags: u64,
}

extern "C" {
    fn iret_probe(cs: u64, rflags: u64) -> Seen;
}

const RFLAGS_IF: u64 = 1 << 9;
const RFLAGS_IOPL: u64 = 3 << 12;
const RFLAGS_NT: u64 = 1 << 14;
const RFLAGS_VM: u64 = 1 << 17;

fn crafted_iret_frames() {
    let ring3 = u64::from(FLAT_RING3_CS64);
    for (what, cs) in [
        ("a ring-0 CS", ring3 & !3),
        ("a ring-1 CS", (ring3 & !3) | 1),
        ("a ring-2 CS", (ring3 & !3) | 2),
    ] {
        // SAFETY: the probe returns to itself with its own stack; the
        // hypervisor either sanitises the frame or crashes this guest.
        let seen = unsafe { iret_probe(cs, RFLAGS_IF) };
        let mut name = heapless::String::<64>::new();
        let _ = core::fmt::write(
            &mut name,
            format_args!("iret with {what} returns to ring 3"),
        );
        check(&name, seen.cs & 3 == 3, format_args!("cs {:#x}", seen.cs));
    }
    let flags = RFLAGS_IF | RFLAGS_IOPL | RFLAGS_NT | RFLAGS_VM;
    // SAFETY: as above.
    let seen = unsafe { iret_probe(ring3 & !3, flags) };
    check(
        "iret with IOPL 3, NT and VM set clears them",
        seen.rflags & (RFLAGS_IOPL | RFLAGS_NT | RFLAGS_VM) == 0 && seen.rflags & RFLAGS_IF != 0,
        format_args!("rflags {:#x}", seen.rflags),
    );
}

#[no_mangle]
fn guest_main(_start_info: &'static StartInfo) -> ! {
    println!("pointer-attacks: handing the hypervisor pointers it must refuse");
    set_up_pages();
    console_io();
    mmu_update_and_mmuext_op();
    multicall();
    memory_op();
    event_channel_op();
    sched_op();
    traps_and_callbacks();
    xen_version();
    sysctl_and_domctl();
    update_va_mapping();
    crafted_iret_frames();
    println!("pointer-attacks: the hypervisor is still here");
    finish()
}
