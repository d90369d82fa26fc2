//! vcpu-interface: the small vCPU-interface calls a PV kernel makes at boot
//! (issue 11), checked against Xen's answers and attacked where they make
//! the hypervisor write guest memory. Booted as the initial domain by the
//! `vcpu_interface` scenario, as XTF boots its tests.
//!
//! Covered: `callback_op` for the 32-bit `syscall` and `sysenter` entries,
//! `xen_version` sub-ops (compile_info without stack bytes after the text,
//! commandline, build_id, guest_handle, pagesize), `EVTCHNOP_init_control`'s
//! argument checks (XSA-188), `SCHEDOP_poll` with a timeout already past,
//! `vm_assist`, and `vcpu_op` (is_up, initialise, up, timers, runstate,
//! register_vcpu_info, and at the very end `down`, which powers the domain
//! off as Xen does for the last vCPU). The runstate area is aimed at the
//! guest's own L4, mapped read-only: the hypervisor must never write it.
//! The `vcpu_info` is moved to a page of the guest's (bad offsets, a page
//! table, a frame not its own and a second move refused), events, the time
//! and `cr2` must then reach the new place and never the old slot, and at
//! the end the guest tries to make the frame a page table, which the
//! hypervisor's hold on it must refuse.
//! Then returns the processor would refuse (`iret` to a non-canonical RIP:
//! a `#GP` for the guest, XSA-7) or load as they are (a non-canonical
//! RSP), an `iret` inside a multicall (which ends it, XSA-213), and the
//! user bit of a kernel page fault's error code.
#![no_std]
#![no_main]

use guest_kernel::abi::callback::{CallbackRegister, CallbackType};
use guest_kernel::abi::event_channel::{EventChannelOp, EvtchnInitControl};
use guest_kernel::abi::hypercall::Hypercall;
use guest_kernel::abi::mmu::{
    VMASST_CMD_ENABLE, VMASST_TYPE_4GB_SEGMENTS, VMASST_TYPE_RUNSTATE_UPDATE_FLAG,
    VMASST_TYPE_WRITABLE_PAGETABLES,
};
use guest_kernel::abi::sched::{SchedOp, SchedPoll};
use guest_kernel::abi::vcpu::{
    VcpuOp, VcpuRegisterVcpuInfo, VcpuRunstateInfo, VcpuSetSingleshotTimer, RUNSTATE_RUNNING,
    VCPU_SSHOTTMR_FUTURE, XEN_RUNSTATE_UPDATE,
};
use guest_kernel::abi::version::{XenVersionOp, XEN_COMMANDLINE_LEN};
use guest_kernel::abi::VcpuInfo;
use guest_kernel::abi::{wrappers, MulticallEntry, StartInfo};
use guest_kernel::sys::shared_info;
use guest_kernel::{events, paging, println, privileged, time};
use test_guests::{check, expect_result, report};

const ENOENT: i64 = -2;
const EFAULT: i64 = -14;
const EEXIST: i64 = -17;
const EINVAL: i64 = -22;
const ENOSYS: i64 = -38;
const ENODATA: i64 = -61;
const ETIME: i64 = -62;

/// An address in the hypervisor's reserved range.
const HYPERVISOR_ADDRESS: u64 = 0xffff_8300_0000_0000;

fn vcpu_op(operation: VcpuOp, vcpu: u64, argument: u64) -> i64 {
    // SAFETY: every argument passed below is null or points at a live
    // local of the right size (or is an address the call must refuse).
    unsafe {
        wrappers::hypercall3(
            Hypercall::VcpuOp,
            u64::from(operation.raw()),
            vcpu,
            argument,
        )
    }
}

fn xen_version(operation: XenVersionOp, argument: u64) -> i64 {
    // SAFETY: the argument is null or a local buffer of the size the
    // sub-op writes.
    unsafe { wrappers::hypercall2(Hypercall::XenVersion, u64::from(operation.raw()), argument) }
}

fn vm_assist(command: u64, kind: u64) -> i64 {
    // SAFETY: no memory is passed.
    unsafe { wrappers::hypercall2(Hypercall::VmAssist, command, kind) }
}

fn register_callback(kind: CallbackType) -> i64 {
    let registration = CallbackRegister {
        callback_type: kind.raw(),
        flags: 0,
        pad: 0,
        address: guest_main as *const () as u64,
    };
    // SAFETY: the registration lives for the call; the entry is never used
    // (this guest runs no 32-bit user code).
    unsafe { wrappers::callback_register(&registration) }
}

fn init_control(gfn: u64, offset: u32, vcpu: u32) -> i64 {
    let mut request = EvtchnInitControl {
        control_gfn: gfn,
        offset,
        vcpu,
        ..EvtchnInitControl::default()
    };
    // SAFETY: the request lives for the call.
    unsafe {
        wrappers::event_channel_op(
            EventChannelOp::InitControl,
            &mut request as *mut EvtchnInitControl as *mut u8,
        )
    }
}

/// Whether a text field is NUL-terminated and all zero after the NUL (no
/// hypervisor stack follows the text: XSA-122).
fn clean_text(field: &[u8]) -> bool {
    match field.iter().position(|&byte| byte == 0) {
        Some(end) => field[end..].iter().all(|&byte| byte == 0),
        None => false,
    }
}

fn check_callbacks() {
    expect_result(
        "callback_op registers the 32-bit syscall entry",
        register_callback(CallbackType::Syscall32),
        0,
    );
    expect_result(
        "callback_op registers the sysenter entry",
        register_callback(CallbackType::Sysenter),
        0,
    );
    expect_result(
        "callback_op refuses the 32-bit hypervisor's old sysenter number",
        register_callback(CallbackType::SysenterDeprecated),
        EINVAL,
    );
}

fn check_xen_version() {
    let mut compile = [0xaau8; 144];
    expect_result(
        "XENVER_compile_info",
        xen_version(XenVersionOp::CompileInfo, compile.as_mut_ptr() as u64),
        0,
    );
    let fields = [
        &compile[..64],
        &compile[64..80],
        &compile[80..112],
        &compile[112..],
    ];
    check(
        "XENVER_compile_info fields end in NULs, nothing after them",
        fields.iter().all(|field| clean_text(field)) && compile.starts_with(b"rustc"),
        format_args!("compiler field starts {:?}", &compile[..8]),
    );
    let mut line = [0xaau8; XEN_COMMANDLINE_LEN];
    expect_result(
        "XENVER_commandline for the privileged initial domain",
        xen_version(XenVersionOp::Commandline, line.as_mut_ptr() as u64),
        0,
    );
    check(
        "XENVER_commandline holds the hypervisor's options",
        clean_text(&line) && line.starts_with(b"loglvl=all"),
        format_args!("starts {:?}", core::str::from_utf8(&line[..10]).ok()),
    );
    expect_result(
        "XENVER_commandline into the hypervisor's range",
        xen_version(XenVersionOp::Commandline, HYPERVISOR_ADDRESS),
        EFAULT,
    );
    let mut build_id = [0u32; 17];
    expect_result(
        "XENVER_build_id with a zero-sized buffer",
        xen_version(XenVersionOp::BuildId, build_id.as_mut_ptr() as u64),
        EINVAL,
    );
    build_id[0] = 64;
    expect_result(
        "XENVER_build_id of a build without one",
        xen_version(XenVersionOp::BuildId, build_id.as_mut_ptr() as u64),
        ENODATA,
    );
    let mut handle = [0xaau8; 16];
    expect_result(
        "XENVER_guest_handle",
        xen_version(XenVersionOp::GuestHandle, handle.as_mut_ptr() as u64),
        0,
    );
    check(
        "XENVER_guest_handle is the all-zero handle",
        handle == [0; 16],
        format_args!("{handle:?}"),
    );
    expect_result(
        "XENVER_pagesize",
        xen_version(XenVersionOp::Pagesize, 0),
        4096,
    );
}

fn check_init_control(start_info: &StartInfo) {
    expect_result(
        "EVTCHNOP_init_control with a bad frame (XSA-188)",
        init_control(u64::MAX - 1, 0, 0),
        EINVAL,
    );
    // SAFETY: the domain builder maps the P2M list at mfn_list; entry 0 is
    // the MFN of the guest's first page.
    let own_frame = unsafe { *(start_info.mfn_list as *const u64) };
    expect_result(
        "EVTCHNOP_init_control with a misaligned control block",
        init_control(own_frame, 4, 0),
        EINVAL,
    );
    expect_result(
        "EVTCHNOP_init_control with a control block off the page",
        init_control(own_frame, 4096 - 64, 0),
        EINVAL,
    );
    expect_result(
        "EVTCHNOP_init_control for a vCPU the domain does not have",
        init_control(own_frame, 0, 1),
        ENOENT,
    );
    expect_result(
        "EVTCHNOP_init_control well formed: FIFO not offered",
        init_control(own_frame, 0, 0),
        ENOSYS,
    );
}

fn check_poll() {
    let port: u32 = 5;
    let request = SchedPoll {
        ports: &port as *const u32 as u64,
        nr_ports: 1,
        pad: 0,
        timeout: 1,
    };
    let polls = 100;
    let start = time::system_time_ns();
    let mut worst = 0;
    for _ in 0..polls {
        // SAFETY: the request and its port live for the call.
        let result = unsafe {
            wrappers::hypercall2(
                Hypercall::SchedOp,
                u64::from(SchedOp::Poll.raw()),
                &request as *const SchedPoll as u64,
            )
        };
        if result != 0 {
            worst = result;
        }
    }
    let elapsed = time::system_time_ns() - start;
    expect_result("SCHEDOP_poll with a past timeout", worst, 0);
    // Waiting for the 10 ms tick would take a second; at once, well under.
    check(
        "SCHEDOP_poll with a past timeout returns at once",
        elapsed < 200_000_000,
        format_args!("{polls} polls took {} ms", elapsed / 1_000_000),
    );
}

fn check_vm_assist() {
    expect_result(
        "vm_assist enables the runstate update flag",
        vm_assist(VMASST_CMD_ENABLE, VMASST_TYPE_RUNSTATE_UPDATE_FLAG),
        0,
    );
    expect_result(
        "vm_assist enables 4 GB segments (inert for 64-bit code)",
        vm_assist(VMASST_CMD_ENABLE, VMASST_TYPE_4GB_SEGMENTS),
        0,
    );
    expect_result(
        "vm_assist refuses writable page tables (no emulation of the writes)",
        vm_assist(VMASST_CMD_ENABLE, VMASST_TYPE_WRITABLE_PAGETABLES),
        EINVAL,
    );
    expect_result(
        "vm_assist refuses a type Xen does not have",
        vm_assist(VMASST_CMD_ENABLE, 6),
        EINVAL,
    );
    expect_result(
        "vm_assist refuses a type beyond 63",
        vm_assist(VMASST_CMD_ENABLE, 64),
        EINVAL,
    );
    expect_result(
        "vm_assist with an unknown command",
        vm_assist(7, VMASST_TYPE_4GB_SEGMENTS),
        ENOSYS,
    );
}

fn check_vcpu_op(start_info: &StartInfo) {
    expect_result("VCPUOP_is_up on vCPU 0", vcpu_op(VcpuOp::IsUp, 0, 0), 1);
    expect_result(
        "VCPUOP_is_up on vCPU 1 (one vCPU until SMP)",
        vcpu_op(VcpuOp::IsUp, 1, 0),
        ENOENT,
    );
    expect_result("VCPUOP_up on vCPU 1", vcpu_op(VcpuOp::Up, 1, 0), ENOENT);
    expect_result(
        "VCPUOP_initialise on vCPU 0, already initialised",
        vcpu_op(VcpuOp::Initialise, 0, 0),
        EEXIST,
    );
    expect_result(
        "VCPUOP_up on vCPU 0, already up",
        vcpu_op(VcpuOp::Up, 0, 0),
        0,
    );
    expect_result(
        "VCPUOP_stop_periodic_timer",
        vcpu_op(VcpuOp::StopPeriodicTimer, 0, 0),
        0,
    );

    // The single-shot timer.
    let past = VcpuSetSingleshotTimer {
        timeout_abs_ns: 1,
        flags: VCPU_SSHOTTMR_FUTURE,
        pad: 0,
    };
    expect_result(
        "VCPUOP_set_singleshot_timer in the past with VCPU_SSHOTTMR_future",
        vcpu_op(
            VcpuOp::SetSingleshotTimer,
            0,
            &past as *const VcpuSetSingleshotTimer as u64,
        ),
        ETIME,
    );
    let start = time::system_time_ns();
    let deadline = start + 3_000_000;
    let soon = VcpuSetSingleshotTimer {
        timeout_abs_ns: deadline,
        flags: VCPU_SSHOTTMR_FUTURE,
        pad: 0,
    };
    let armed = vcpu_op(
        VcpuOp::SetSingleshotTimer,
        0,
        &soon as *const VcpuSetSingleshotTimer as u64,
    );
    expect_result("VCPUOP_set_singleshot_timer 3 ms ahead", armed, 0);
    if armed == 0 {
        // Blocks until the timer fires (it would never wake otherwise).
        guest_kernel::events::wait_until(|| time::system_time_ns() >= deadline);
    }
    expect_result(
        "VCPUOP_stop_singleshot_timer",
        vcpu_op(VcpuOp::StopSingleshotTimer, 0, 0),
        0,
    );

    // Runstate.
    let mut info = VcpuRunstateInfo {
        state: -1,
        ..VcpuRunstateInfo::default()
    };
    expect_result(
        "VCPUOP_get_runstate_info",
        vcpu_op(
            VcpuOp::GetRunstateInfo,
            0,
            &mut info as *mut VcpuRunstateInfo as u64,
        ),
        0,
    );
    let now = time::system_time_ns();
    check(
        "the runstate says running, and its times add up",
        info.state == RUNSTATE_RUNNING
            && info.state_entry_time <= now
            && info.time[0] > 0
            && info.time[2] > 0
            && info.time.iter().sum::<u64>() <= now,
        format_args!(
            "state {} entered {} times {:?} now {now}",
            info.state, info.state_entry_time, info.time
        ),
    );
    expect_result(
        "VCPUOP_get_runstate_info into the hypervisor's range",
        vcpu_op(VcpuOp::GetRunstateInfo, 0, HYPERVISOR_ADDRESS),
        EFAULT,
    );
    let hostile_area = HYPERVISOR_ADDRESS;
    expect_result(
        "VCPUOP_register_runstate_memory_area in the hypervisor's range",
        vcpu_op(
            VcpuOp::RegisterRunstateMemoryArea,
            0,
            &hostile_area as *const u64 as u64,
        ),
        EFAULT,
    );

    static mut AREA: VcpuRunstateInfo = VcpuRunstateInfo {
        state: -1,
        pad: 0,
        state_entry_time: 0,
        time: [0; 4],
    };
    let area_address = &raw mut AREA as u64;
    expect_result(
        "VCPUOP_register_runstate_memory_area",
        vcpu_op(
            VcpuOp::RegisterRunstateMemoryArea,
            0,
            &area_address as *const u64 as u64,
        ),
        0,
    );
    // SAFETY: the hypervisor writes the area only inside hypercalls and at
    // switches to this vCPU, never while this code reads it.
    let filled = unsafe { core::ptr::read_volatile(&raw const AREA) };
    check(
        "the runstate area is filled at registration",
        filled.state == RUNSTATE_RUNNING && filled.state_entry_time & XEN_RUNSTATE_UPDATE == 0,
        format_args!(
            "state {} entered {:#x}",
            filled.state, filled.state_entry_time
        ),
    );
    let blocked_before = filled.time[2];
    // A sleep blocks unless its deadline passed before the block (a slow,
    // loaded host): try a few times, longer each time.
    let mut refreshed = filled;
    for attempt in 1..=4u64 {
        time::sleep(attempt * 20_000_000);
        // SAFETY: as above.
        refreshed = unsafe { core::ptr::read_volatile(&raw const AREA) };
        if refreshed.time[2] > blocked_before {
            break;
        }
    }
    check(
        "the runstate area is refreshed when the vCPU is switched back in",
        refreshed.state == RUNSTATE_RUNNING && refreshed.time[2] > blocked_before,
        format_args!(
            "blocked {} ns, then {} ns",
            blocked_before, refreshed.time[2]
        ),
    );

    // Attack: the area on the guest's own L4, which it maps read-only. The
    // hypervisor may accept the address (Xen does) but must never write it.
    let table = start_info.pt_base as *const u64;
    // SAFETY: the domain builder maps the bootstrap page tables, read-only,
    // at pt_base.
    let before: [u64; 6] = unsafe { core::ptr::read_volatile(table as *const [u64; 6]) };
    let table_address = start_info.pt_base;
    expect_result(
        "VCPUOP_register_runstate_memory_area on the guest's own L4",
        vcpu_op(
            VcpuOp::RegisterRunstateMemoryArea,
            0,
            &table_address as *const u64 as u64,
        ),
        0,
    );
    time::sleep(2_000_000);
    // SAFETY: as above.
    let after: [u64; 6] = unsafe { core::ptr::read_volatile(table as *const [u64; 6]) };
    check(
        "the hypervisor never writes a runstate area into a page table",
        before == after,
        format_args!("L4 entries 0..6 before {before:x?}, after {after:x?}"),
    );
    let none = 0u64;
    expect_result(
        "VCPUOP_register_runstate_memory_area with 0 unregisters",
        vcpu_op(
            VcpuOp::RegisterRunstateMemoryArea,
            0,
            &none as *const u64 as u64,
        ),
        0,
    );
}

/// Where the test maps the frame it moves its `vcpu_info` to.
const VCPU_INFO_PAGE: u64 = 0x0000_6100_0000_0000;
/// The offset of the `vcpu_info` in that frame (any 8-byte-aligned offset
/// with 64 bytes left in the page).
const VCPU_INFO_OFFSET: u32 = 0x80;

fn register_vcpu_info(mfn: u64, offset: u32) -> i64 {
    let request = VcpuRegisterVcpuInfo {
        mfn,
        offset,
        rsvd: 0,
    };
    vcpu_op(
        VcpuOp::RegisterVcpuInfo,
        0,
        &request as *const VcpuRegisterVcpuInfo as u64,
    )
}

/// The 64 bytes of the shared info page's slot `vcpu_info[0]`.
fn old_slot() -> [u64; 8] {
    // SAFETY: the guest kernel mapped the shared info page; the slot is its
    // first 64 bytes, read once, volatile (the hypervisor must no longer
    // write it, but a read must not assume so).
    unsafe { core::ptr::read_volatile(shared_info::shared_info_pointer() as *const [u64; 8]) }
}

/// A field of the moved `vcpu_info`, read volatile.
fn moved_info() -> VcpuInfo {
    // SAFETY: `check_register_vcpu_info` mapped the frame writable at
    // VCPU_INFO_PAGE; the read is volatile, as the hypervisor writes it.
    unsafe {
        core::ptr::read_volatile((VCPU_INFO_PAGE + u64::from(VCPU_INFO_OFFSET)) as *const VcpuInfo)
    }
}

/// `VCPUOP_register_vcpu_info`: Xen's refusals, then a move that works.
/// Returns the moved frame and the old slot as it was right after the
/// move, for [`check_vcpu_info_frame_attack`].
fn check_register_vcpu_info() -> Option<(u64, [u64; 8])> {
    let Ok(pfn) = paging::allocate_frame() else {
        check(
            "a frame for the vcpu_info",
            false,
            format_args!("none left"),
        );
        return None;
    };
    let mfn = paging::pfn_to_mfn(pfn);
    let mapped = paging::map(
        VCPU_INFO_PAGE,
        mfn,
        paging::WRITABLE | paging::USER | paging::NO_EXECUTE,
    );
    check(
        "the vcpu_info frame is mapped",
        mapped.is_ok(),
        format_args!("{mapped:?}"),
    );
    mapped.ok()?;
    expect_result(
        "VCPUOP_register_vcpu_info with a vcpu_info running off its page",
        register_vcpu_info(mfn, 4096 - 32),
        EINVAL,
    );
    expect_result(
        "VCPUOP_register_vcpu_info at a misaligned offset",
        register_vcpu_info(mfn, 4),
        EINVAL,
    );
    expect_result(
        "VCPUOP_register_vcpu_info on the guest's own L4 (a page table)",
        register_vcpu_info(paging::current_root(), 0),
        EINVAL,
    );
    expect_result(
        "VCPUOP_register_vcpu_info on a frame that is not the guest's",
        register_vcpu_info(u64::MAX - 1, 0),
        EINVAL,
    );
    expect_result(
        "VCPUOP_register_vcpu_info into the hypervisor's range",
        vcpu_op(VcpuOp::RegisterVcpuInfo, 0, HYPERVISOR_ADDRESS),
        EFAULT,
    );
    let upcalls_before = events::upcalls();
    // SAFETY: the frame stays mapped writable at VCPU_INFO_PAGE until
    // `check_vcpu_info_frame_attack`, which masks events first and is the
    // guest's last use of its vcpu_info.
    let moved = unsafe {
        shared_info::register_vcpu_info(
            (VCPU_INFO_PAGE + u64::from(VCPU_INFO_OFFSET)) as *mut VcpuInfo,
            mfn,
            VCPU_INFO_OFFSET,
        )
    };
    expect_result("VCPUOP_register_vcpu_info", moved, 0);
    let slot = old_slot();
    if moved != 0 {
        return None;
    }
    let info = moved_info();
    // Xen marks every event pending in the new place: the guest kernel,
    // which unmasks there once it has moved, takes one upcall at once.
    check(
        "the moved vcpu_info holds the time, and the move raised an upcall (as Xen)",
        info.time.version != 0
            && info.time.version.is_multiple_of(2)
            && info.time.system_time > 0
            && events::upcalls() > upcalls_before,
        format_args!(
            "version {} system time {} upcalls {upcalls_before} then {}",
            info.time.version,
            info.time.system_time,
            events::upcalls()
        ),
    );
    expect_result(
        "VCPUOP_register_vcpu_info a second time",
        register_vcpu_info(mfn, 0),
        EINVAL,
    );

    // Events: an event sent to itself raises the flag in the new place,
    // and the upcall comes when the guest unmasks there.
    let listening = events::alloc_unbound(0).unwrap_or(0);
    let connected = events::bind_interdomain(0, listening).unwrap_or(0);
    events::set_mask(true);
    // Take the spurious "everything pending" of the move first.
    events::set_mask(false);
    events::set_mask(true);
    let quiet = moved_info();
    let upcalls = events::upcalls();
    let sent = events::send(connected);
    let raised = moved_info();
    check(
        "an event raises evtchn_upcall_pending and the selector in the moved vcpu_info",
        sent.is_ok()
            && quiet.evtchn_upcall_pending == 0
            && raised.evtchn_upcall_pending == 1
            && raised.evtchn_upcall_mask == 1
            && raised.evtchn_pending_sel & (1 << (listening / 64)) != 0,
        format_args!(
            "send {sent:?}; pending {} then {}, mask {}, selector {:#x}",
            quiet.evtchn_upcall_pending,
            raised.evtchn_upcall_pending,
            raised.evtchn_upcall_mask,
            raised.evtchn_pending_sel
        ),
    );
    events::set_mask(false);
    check(
        "unmasking in the moved vcpu_info delivers the upcall",
        events::upcalls() > upcalls && events::take(listening),
        format_args!("upcalls {upcalls} then {}", events::upcalls()),
    );
    let _ = events::close(connected);
    let _ = events::close(listening);

    // Time: a switch back to this vCPU publishes the time in the new place.
    let version = moved_info().time.version;
    time::sleep(2_000_000);
    let later = moved_info();
    check(
        "the time is published in the moved vcpu_info",
        later.time.version > version && later.time.version.is_multiple_of(2),
        format_args!("version {version} then {}", later.time.version),
    );
    // A page fault's address goes to the new place too.
    let fault = guest_kernel::traps::try_write(UNMAPPED + 0x1000, 0);
    check(
        "a page fault's cr2 is written in the moved vcpu_info",
        matches!(fault, Err(caught) if caught.address == UNMAPPED + 0x1000)
            && moved_info().arch.cr2 == UNMAPPED + 0x1000,
        format_args!("{fault:x?}, cr2 {:#x}", moved_info().arch.cr2),
    );
    Some((mfn, slot))
}

/// The last checks of the guest's life (it masks events and unmaps its
/// `vcpu_info`): the hypervisor never wrote the old slot after the move,
/// and the moved frame cannot become a page table while the hypervisor
/// writes it (frame-table invariant 6). Without the hold, the guest could
/// pin it as an L1 and the next event or page fault would make the
/// hypervisor write an entry nobody validated.
fn check_vcpu_info_frame_attack(mfn: u64, slot: [u64; 8]) {
    let now = old_slot();
    check(
        "the hypervisor never writes the old vcpu_info slot after the move",
        now == slot,
        format_args!("right after the move {slot:x?}, now {now:x?}"),
    );
    events::set_mask(true);
    // No writable mapping of its own holds the frame's type any more.
    let unmapped = paging::unmap(VCPU_INFO_PAGE);
    check(
        "the vcpu_info frame is unmapped",
        unmapped.is_ok(),
        format_args!("{unmapped:?}"),
    );
    let pinned = paging::pin(mfn, 1);
    check(
        "pinning the moved vcpu_info frame as an L1 is refused",
        pinned == Err(paging::PagingError::Refused(EINVAL)),
        format_args!("{pinned:?}"),
    );
    if pinned.is_ok() {
        let _ = paging::unpin(mfn);
    }
}

/// The one-shot timer wakes a sleeper at its deadline, not at the next
/// 10 ms housekeeping tick: 50 sleeps of 2 ms took at least 500 ms when
/// timers fired only at ticks, about 100 ms now.
fn check_timer_precision() {
    let start = time::system_time_ns();
    for _ in 0..50 {
        time::sleep(2_000_000);
    }
    let elapsed = time::system_time_ns() - start;
    check(
        "50 sleeps of 2 ms wake at their deadlines, not at 10 ms ticks",
        (100_000_000..350_000_000).contains(&elapsed),
        format_args!("{} ms", elapsed / 1_000_000),
    );
}

/// The first non-canonical address above the lower half: where a
/// `syscall` ending at the top of the lower half returns (Xen's XSA-7).
const NON_CANONICAL: u64 = 0x0000_8000_0000_0000;
/// A lower-half address this guest never maps.
const UNMAPPED: u64 = 0x0000_7000_0000_0000;
const GENERAL_PROTECTION: u8 = 13;
const PAGE_FAULT: u8 = 14;
/// A page-fault error code's write bit and user bit.
const PAGE_FAULT_WRITE: u64 = 1 << 1;
const PAGE_FAULT_USER: u64 = 1 << 2;

core::arch::global_asm!(
    ".pushsection .text.vcpu_interface, \"ax\"",
    // multicall_iret(entries, count, rax): a multicall (13) from a stack
    // holding an iret_context that returns, in guest-kernel mode, to the
    // instruction after the `syscall` with `rax`. rbx keeps the stack, so
    // that it comes back whether the multicall ended at the iret entry or
    // returned normally (with the context still pushed).
    ".global multicall_iret",
    "multicall_iret:",
    "    push %rbx",
    "    mov %rsp, %rbx",
    "    push $0xe02b",
    "    push %rbx",
    "    pushfq",
    "    push $0xe030",
    "    lea 1f(%rip), %rax",
    "    push %rax",
    "    push $0",
    "    push $0",
    "    push $0",
    "    push %rdx",
    "    mov $13, %eax",
    "    syscall",
    "1:  mov %rbx, %rsp",
    "    pop %rbx",
    "    ret",
    ".popsection",
    options(att_syntax),
);

extern "C" {
    fn multicall_iret(entries: *mut MulticallEntry, count: u64, rax: u64) -> u64;
}

/// Returns to addresses and stacks that the processor's own `iretq` would
/// fault on, or load without a look, as Xen handles them.
fn check_iret() {
    // XSA-7: the hypervisor never executes an `iretq` (or `sysretq`) to a
    // non-canonical RIP, which would fault in ring 0; the guest gets the
    // #GP(0) at that address, as from Xen.
    let result = privileged::iret_to(NON_CANONICAL);
    check(
        "iret to a non-canonical RIP: #GP(0) at that RIP, delivered to the guest",
        matches!(result, Err(caught) if caught.vector == GENERAL_PROTECTION
            && caught.error_code == 0 && caught.rip == NON_CANONICAL),
        format_args!("{result:x?}"),
    );
    // A kernel may return to a stack pointer that is not canonical (its
    // exception handler returning to code that loaded one on purpose): Xen
    // loads it as it is, and the next stack access faults in the guest.
    let result = privileged::iret_with_stack(NON_CANONICAL + 0x40);
    check(
        "iret with a non-canonical RSP: loaded as it is",
        result == Ok(NON_CANONICAL + 0x40),
        format_args!("{result:x?}"),
    );
}

/// An `iret` entry ends its multicall (Xen's XSA-213 fix): it returns
/// through the guest's iret frame, and no later entry runs after it (in
/// what may be guest user mode).
fn check_multicall_iret() {
    const IDENTIFIER: u64 = 0xdead;
    const UNTOUCHED: u64 = 0x5a5a;
    let mut entries = [MulticallEntry::default(); 2];
    entries[0].op = Hypercall::Iret as u64;
    entries[0].result = UNTOUCHED;
    entries[1].op = Hypercall::XenVersion as u64;
    entries[1].args[0] = XenVersionOp::Version as u64;
    entries[1].result = UNTOUCHED;
    // SAFETY: the entries are this stack's; the iret frame the helper
    // builds returns to it, in guest-kernel mode, on its own stack.
    let returned = unsafe { multicall_iret(entries.as_mut_ptr(), 2, IDENTIFIER) };
    check(
        "multicall [iret, xen_version]: returns through the iret frame, with its rax",
        returned == IDENTIFIER && entries[0].result == IDENTIFIER,
        format_args!(
            "returned {returned:#x}, iret entry's result {:#x}",
            entries[0].result
        ),
    );
    check(
        "multicall [iret, xen_version]: the entry after the iret does not run",
        entries[1].result == UNTOUCHED,
        format_args!("xen_version entry's result {:#x}", entries[1].result),
    );
}

/// The page-fault error code says which of the guest's own modes faulted
/// (Xen rewrites the user bit: the processor always saw ring 3).
fn check_page_fault_error_code() {
    let result = guest_kernel::traps::try_write(UNMAPPED, 0);
    check(
        "a kernel write to an unmapped page: #PF with error code W (supervisor, not present)",
        matches!(result, Err(fault) if fault.vector == PAGE_FAULT
            && fault.error_code & (PAGE_FAULT_WRITE | PAGE_FAULT_USER) == PAGE_FAULT_WRITE
            && fault.address == UNMAPPED),
        format_args!("{result:x?}"),
    );
}

#[no_mangle]
fn guest_main(start_info: &'static StartInfo) -> ! {
    println!("vcpu-interface: the small vCPU-interface calls");
    check_callbacks();
    check_xen_version();
    check_init_control(start_info);
    check_poll();
    check_vm_assist();
    check_vcpu_op(start_info);
    let moved = check_register_vcpu_info();
    check_timer_precision();
    check_iret();
    check_multicall_iret();
    check_page_fault_error_code();
    if let Some((mfn, slot)) = moved {
        check_vcpu_info_frame_attack(mfn, slot);
    }
    // The verdict first: `down` of the last vCPU powers the domain off.
    report();
    vcpu_op(VcpuOp::Down, 0, 0);
    println!("FAIL: VCPUOP_down of the last vCPU returned instead of powering off");
    loop {
        core::hint::spin_loop();
    }
}
