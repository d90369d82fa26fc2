//! descriptor-attacks: a guest that attacks the descriptor-table, segment
//! and FPU hypercalls, booted as the initial domain by the `descriptors`
//! scenario.
//!
//! It tries to give the hypervisor GDT frames it does not own or that it
//! can still write, GDTs holding a call gate into ring 0 or a TSS, the same
//! descriptors through `update_descriptor`, and non-canonical segment
//! bases; each must be refused. Then it uses what must work: a DPL-3 data
//! selector of its own GDT (also one added later with `update_descriptor`,
//! which proves the live table follows), a DPL-0 code descriptor stored as
//! DPL 3, FS and GS bases it set, a GS selector loaded for it, and the lazy
//! FPU switch: `fpu_taskswitch(1)`, then an SSE instruction raises #NM in
//! its handler exactly once and then computes its result. Last, the
//! failsafe callback: with a selector of its GDT in DS and FS, it makes
//! that descriptor not present and sleeps; switching back, the hypervisor
//! cannot reload them and must call its failsafe callback with the saved
//! selectors on the frame, events masked, and null in DS and FS.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use guest_kernel::abi::callback::{CallbackRegister, CallbackType, CALLBACKF_MASK_EVENTS};
use guest_kernel::abi::hypercall::Hypercall;
use guest_kernel::abi::layout::{
    SEGBASE_FS, SEGBASE_GS_KERNEL, SEGBASE_GS_USER, SEGBASE_GS_USER_SEL,
};
use guest_kernel::abi::mmu::UVMF_INVLPG;
use guest_kernel::abi::{wrappers, StartInfo};
use guest_kernel::paging::{self, NO_EXECUTE, PAGE_SIZE, PRESENT, USER, WRITABLE};
use guest_kernel::{events, privileged, time};
use guest_kernel::{println, traps};
use test_guests::{check, expect_result, finish};

const EINVAL: i64 = -22;
/// Where the GDT frames are mapped while the guest fills them.
const SCRATCH: u64 = 0xffff_d000_0000_0000;
/// The hypervisor image starts at machine address 1 MiB.
const HYPERVISOR_FRAME: u64 = 0x100;

/// A flat data segment, DPL 3.
const DATA_DPL3: u64 = 0x00cf_f200_0000_ffff;
/// A flat 64-bit code segment, DPL 0.
const CODE_DPL0: u64 = 0x00af_9a00_0000_ffff;
/// A DPL-3 64-bit call gate to the hypervisor's code selector 0xe008.
const GATE_TO_RING_0: u64 = 0x0000_ec00_e008_1000;
/// A DPL-3 32-bit TSS.
const TSS_32: u64 = 0x0000_e900_0000_0067;
/// Selector of GDT entry `index` with RPL 3.
const fn selector(index: u16) -> u16 {
    (index << 3) | 3
}

fn set_gdt(frames: &[u64], entries: u64) -> i64 {
    // SAFETY: the hypervisor reads the frame list; the frames are ours or
    // the point of the attack.
    unsafe { wrappers::hypercall2(Hypercall::SetGdt, frames.as_ptr() as u64, entries) }
}

fn update_descriptor(maddr: u64, descriptor: u64) -> i64 {
    // SAFETY: the hypervisor checks the target frame and the descriptor.
    unsafe { wrappers::hypercall2(Hypercall::UpdateDescriptor, maddr, descriptor) }
}

fn set_segment_base(which: u64, base: u64) -> i64 {
    // SAFETY: segment bases only change what fs:/gs: addressing reaches.
    unsafe { wrappers::hypercall2(Hypercall::SetSegmentBase, which, base) }
}

fn fpu_taskswitch(set: u64) -> i64 {
    // SAFETY: only changes when our FPU instructions trap.
    unsafe { wrappers::hypercall1(Hypercall::FpuTaskswitch, set) }
}

fn fresh_frame() -> u64 {
    let pfn = paging::allocate_frame().expect("a free frame for the attacks");
    paging::pfn_to_mfn(pfn)
}

/// Maps `mfn` writable at SCRATCH, writes `descriptors` from entry 0 and
/// zeroes the rest, then leaves it mapped read-only (as a GDT frame must be).
fn fill_frame(mfn: u64, descriptors: &[u64]) {
    paging::map(SCRATCH, mfn, WRITABLE | USER | NO_EXECUTE).expect("map the frame writable");
    for index in 0..512 {
        let value = descriptors.get(index).copied().unwrap_or(0);
        // SAFETY: SCRATCH maps the frame writable, 4 KiB.
        unsafe { ((SCRATCH + index as u64 * 8) as *mut u64).write_volatile(value) };
    }
    paging::protect(SCRATCH, false).expect("make the frame read-only");
}

/// Entry `index` of the frame mapped at SCRATCH.
fn read_back(index: u64) -> u64 {
    // SAFETY: SCRATCH maps the frame (read-only), 4 KiB.
    unsafe { ((SCRATCH + index * 8) as *const u64).read_volatile() }
}

/// Loads `selector` into DS and ES and reads DS back; restores the flat
/// data selector afterwards. A selector the live GDT does not have faults
/// here (and crashes the guest, which the scenario sees).
fn load_data_selector(selector: u16) -> u16 {
    let seen: u16;
    // SAFETY: in 64-bit mode DS and ES bases are ignored: nothing Rust
    // relies on changes; both are put back to the flat selector.
    unsafe {
        core::arch::asm!(
            "mov ds, {sel:x}",
            "mov es, {sel:x}",
            "mov {seen:x}, ds",
            "mov ds, {flat:x}",
            "mov es, {flat:x}",
            sel = in(reg) selector,
            flat = in(reg) 0xe02b_u16,
            seen = out(reg) seen,
            options(nostack, preserves_flags),
        );
    }
    seen
}

fn read_gs_selector() -> u16 {
    let value: u16;
    // SAFETY: reads a segment register.
    unsafe { core::arch::asm!("mov {:x}, gs", out(reg) value, options(nomem, nostack)) };
    value
}

static MARKER: u64 = 0x5e9_0e47_ba5e;

/// Reads 8 bytes at fs:0 (`fs`) or gs:0.
fn read_through(fs: bool) -> u64 {
    let value: u64;
    // SAFETY: the base was just pointed at MARKER.
    unsafe {
        if fs {
            core::arch::asm!("mov {}, fs:[0]", out(reg) value, options(nostack, readonly));
        } else {
            core::arch::asm!("mov {}, gs:[0]", out(reg) value, options(nostack, readonly));
        }
    }
    value
}

static DEVICE_NOT_AVAILABLE: AtomicU32 = AtomicU32::new(0);

fn on_device_not_available() {
    DEVICE_NOT_AVAILABLE.fetch_add(1, Ordering::Relaxed);
}

/// Sets CR0.TS through the hypervisor and, straight after, doubles `value`
/// with SSE2 instructions. Returns (the hypercall's result, the sum).
fn sse_after_taskswitch(value: u64) -> (i64, u64) {
    let result = fpu_taskswitch(1);
    let doubled: u64;
    // SAFETY: plain SSE2 arithmetic on xmm0, declared clobbered.
    unsafe {
        core::arch::asm!(
            "movq xmm0, {value}",
            "paddq xmm0, xmm0",
            "movq {doubled}, xmm0",
            value = in(reg) value,
            doubled = out(reg) doubled,
            out("xmm0") _,
            options(nostack, nomem),
        );
    }
    (result, doubled)
}

fn attack_set_gdt() -> u64 {
    let own = fresh_frame();
    // set_gdt with frames that are not ours.
    expect_result(
        "set_gdt with the hypervisor's frame",
        set_gdt(&[HYPERVISOR_FRAME], 16),
        EINVAL,
    );
    let last = fresh_frame() + 4096 * 64;
    expect_result(
        "set_gdt with a frame beyond RAM",
        set_gdt(&[last], 16),
        EINVAL,
    );
    expect_result(
        "set_gdt with more entries than fit below 0xe000",
        set_gdt(&[own; 15], 14 * 512 + 1),
        EINVAL,
    );
    // A frame we can still write.
    fill_frame(own, &[0, DATA_DPL3]);
    paging::protect(SCRATCH, true).expect("map it writable again");
    expect_result(
        "set_gdt with a frame mapped writable",
        set_gdt(&[own], 16),
        EINVAL,
    );
    // Bad descriptors.
    fill_frame(own, &[0, DATA_DPL3, GATE_TO_RING_0]);
    expect_result(
        "set_gdt with a call gate into ring 0",
        set_gdt(&[own], 16),
        EINVAL,
    );
    fill_frame(
        own,
        &[
            0, DATA_DPL3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, TSS_32,
        ],
    );
    expect_result("set_gdt with a 32-bit TSS", set_gdt(&[own], 16), EINVAL);
    check(
        "a refused frame is left as written",
        read_back(18) == TSS_32,
        format_args!("{:#x}", read_back(18)),
    );
    // A good GDT: a DPL-3 data segment, and DPL-0 code that becomes DPL 3.
    fill_frame(own, &[0, DATA_DPL3, 0, CODE_DPL0]);
    expect_result("set_gdt with checked descriptors", set_gdt(&[own], 16), 0);
    check(
        "DPL-0 code is stored as DPL 3",
        read_back(3) == CODE_DPL0 | (3 << 45),
        format_args!("{:#x}", read_back(3)),
    );
    let seen = load_data_selector(selector(1));
    check(
        "load a DPL-3 data selector of our GDT into DS",
        seen == selector(1),
        format_args!("DS reads {seen:#x}"),
    );
    // The frame is a descriptor page now: read-only for good.
    check(
        "write to the GDT frame directly",
        traps::try_write(SCRATCH, 0).is_err(),
        format_args!("faults"),
    );
    let writable = PRESENT | WRITABLE | USER | NO_EXECUTE;
    // SAFETY: the attack is on our own scratch address.
    let remap =
        unsafe { wrappers::update_va_mapping(SCRATCH, (own * PAGE_SIZE) | writable, UVMF_INVLPG) };
    expect_result("map the GDT frame writable", remap, EINVAL);
    own
}

fn attack_update_descriptor(gdt: u64) {
    let base = gdt * PAGE_SIZE;
    expect_result(
        "update_descriptor with a call gate into ring 0",
        update_descriptor(base + 5 * 8, GATE_TO_RING_0),
        EINVAL,
    );
    expect_result(
        "update_descriptor with a 32-bit TSS",
        update_descriptor(base + 5 * 8, TSS_32),
        EINVAL,
    );
    check(
        "refused descriptors were not written",
        read_back(5) == 0,
        format_args!("{:#x}", read_back(5)),
    );
    expect_result(
        "update_descriptor at a misaligned address",
        update_descriptor(base + 5 * 8 + 4, DATA_DPL3),
        EINVAL,
    );
    expect_result(
        "update_descriptor in the hypervisor's frame",
        update_descriptor(HYPERVISOR_FRAME * PAGE_SIZE, DATA_DPL3),
        EINVAL,
    );
    expect_result(
        "update_descriptor in our own L4",
        update_descriptor(paging::current_root() * PAGE_SIZE + 8, DATA_DPL3),
        EINVAL,
    );
    expect_result(
        "update_descriptor with a DPL-3 data segment",
        update_descriptor(base + 5 * 8, DATA_DPL3),
        0,
    );
    check(
        "the new descriptor is in the frame",
        read_back(5) == DATA_DPL3,
        format_args!("{:#x}", read_back(5)),
    );
    let seen = load_data_selector(selector(5));
    check(
        "load the selector update_descriptor added",
        seen == selector(5),
        format_args!("DS reads {seen:#x}"),
    );
    expect_result(
        "update_descriptor with DPL-0 code",
        update_descriptor(base + 6 * 8, CODE_DPL0),
        0,
    );
    check(
        "it is stored as DPL 3",
        read_back(6) == CODE_DPL0 | (3 << 45),
        format_args!("{:#x}", read_back(6)),
    );
}

fn attack_segment_bases() {
    let non_canonical = 0x0000_8000_0000_0000;
    for (name, which) in [
        ("FS", SEGBASE_FS),
        ("GS user", SEGBASE_GS_USER),
        ("GS kernel", SEGBASE_GS_KERNEL),
    ] {
        let result = set_segment_base(which, non_canonical);
        check(
            "set_segment_base with a non-canonical base",
            result == EINVAL,
            format_args!("{name}: {result}"),
        );
    }
    expect_result(
        "set_segment_base of segment 7",
        set_segment_base(7, 0),
        EINVAL,
    );
    let marker = &MARKER as *const u64 as u64;
    expect_result("set the FS base", set_segment_base(SEGBASE_FS, marker), 0);
    let through_fs = read_through(true);
    check(
        "fs:0 reads through the new base",
        through_fs == MARKER,
        format_args!("{through_fs:#x}"),
    );
    expect_result("set the FS base back", set_segment_base(SEGBASE_FS, 0), 0);
    expect_result(
        "set the GS kernel base",
        set_segment_base(SEGBASE_GS_KERNEL, marker),
        0,
    );
    let through_gs = read_through(false);
    check(
        "gs:0 reads through the new base",
        through_gs == MARKER,
        format_args!("{through_gs:#x}"),
    );
    expect_result(
        "set the GS kernel base back",
        set_segment_base(SEGBASE_GS_KERNEL, 0),
        0,
    );
    expect_result(
        "set the GS user base",
        set_segment_base(SEGBASE_GS_USER, marker),
        0,
    );
    expect_result(
        "load a GS user selector of our GDT",
        set_segment_base(SEGBASE_GS_USER_SEL, u64::from(selector(1))),
        0,
    );
    check(
        "GS holds the selector",
        read_gs_selector() == selector(1),
        format_args!("{:#x}", read_gs_selector()),
    );
    expect_result(
        "load the hypervisor's code selector as GS",
        set_segment_base(SEGBASE_GS_USER_SEL, 0xe008),
        0,
    );
    check(
        "GS is null instead",
        read_gs_selector() == 0,
        format_args!("{:#x}", read_gs_selector()),
    );
    // The hypervisor survived with its per-CPU GS intact: this call works.
    expect_result(
        "a hypercall after the GS loads",
        set_segment_base(SEGBASE_FS, 0),
        0,
    );
}

fn lazy_fpu() {
    traps::set_device_not_available_handler(on_device_not_available);
    let (result, doubled) = sse_after_taskswitch(21);
    expect_result("fpu_taskswitch(1)", result, 0);
    check(
        "the SSE instruction trapped once into our #NM handler",
        DEVICE_NOT_AVAILABLE.load(Ordering::Relaxed) == 1,
        format_args!("{} #NM", DEVICE_NOT_AVAILABLE.load(Ordering::Relaxed)),
    );
    check(
        "then it ran",
        doubled == 42,
        format_args!("21 + 21 = {doubled}"),
    );
    // The hypervisor cleared TS before bouncing: no second #NM.
    let again: u64;
    // SAFETY: plain SSE2 on xmm1, declared clobbered.
    unsafe {
        core::arch::asm!("movq xmm1, {v}", "movq {a}, xmm1", v = in(reg) 7u64, a = out(reg) again, out("xmm1") _, options(nostack, nomem));
    }
    check(
        "SSE after the handler does not trap",
        again == 7 && DEVICE_NOT_AVAILABLE.load(Ordering::Relaxed) == 1,
        format_args!("{} #NM", DEVICE_NOT_AVAILABLE.load(Ordering::Relaxed)),
    );
    // Set and clear again before any SSE instruction (printing uses SSE).
    let set = fpu_taskswitch(1);
    let clear = fpu_taskswitch(0);
    expect_result("fpu_taskswitch(1) again", set, 0);
    expect_result("fpu_taskswitch(0)", clear, 0);
    let doubled: u64;
    // SAFETY: as above.
    unsafe {
        core::arch::asm!("movq xmm1, {v}", "paddq xmm1, xmm1", "movq {a}, xmm1", v = in(reg) 5u64, a = out(reg) doubled, out("xmm1") _, options(nostack, nomem));
    }
    check(
        "after fpu_taskswitch(0) SSE does not trap",
        doubled == 10 && DEVICE_NOT_AVAILABLE.load(Ordering::Relaxed) == 1,
        format_args!("{} #NM", DEVICE_NOT_AVAILABLE.load(Ordering::Relaxed)),
    );
}

#[cfg(not(test))]
core::arch::global_asm!(
    ".pushsection .text.failsafe, \"ax\"",
    // The failsafe callback. On entry the stack holds RCX, R11, DS, ES,
    // FS, GS, RIP, CS, RFLAGS, RSP, SS (lowest first); every other register
    // is the interrupted context's. It saves the registers a Rust call may
    // change, records the frame, restores them, drops RCX, R11 and the
    // selectors, and returns with the iret hypercall (flags 0), whose stub
    // pushes RCX, R11 and RAX.
    ".global failsafe_entry",
    "failsafe_entry:",
    "    push %rax",
    "    push %rdx",
    "    push %rsi",
    "    push %rdi",
    "    push %r8",
    "    push %r9",
    "    push %r10",
    "    lea 56(%rsp), %rdi", // the frame (the stack is 16-byte aligned here)
    "    call failsafe_seen",
    "    pop %r10",
    "    pop %r9",
    "    pop %r8",
    "    pop %rdi",
    "    pop %rsi",
    "    pop %rdx",
    "    pop %rax",
    "    pop %rcx",
    "    pop %r11",
    "    add $32, %rsp",
    "    push $0",
    "    jmp hypercall_page + 23 * 32",
    ".popsection",
    options(att_syntax),
);

extern "C" {
    fn failsafe_entry();
}

static FAILSAFE_CALLS: AtomicU32 = AtomicU32::new(0);
/// The DS, ES, FS and GS words of the last failsafe frame.
static FAILSAFE_SAVED: [AtomicU64; 4] = [const { AtomicU64::new(u64::MAX) }; 4];
/// DS, ES, FS and GS as the failsafe callback found them.
static FAILSAFE_LOADED: AtomicU64 = AtomicU64::new(u64::MAX);
static FAILSAFE_MASKED: AtomicBool = AtomicBool::new(false);

/// Called by `failsafe_entry` with its frame.
#[no_mangle]
extern "C" fn failsafe_seen(frame: *const u64) {
    for (slot, saved) in FAILSAFE_SAVED.iter().enumerate() {
        // SAFETY: the frame has eleven words; DS..GS are words 2..5.
        saved.store(unsafe { frame.add(2 + slot).read() }, Ordering::Relaxed);
    }
    let [ds, es, fs, gs] = privileged::data_selectors().map(u64::from);
    FAILSAFE_LOADED.store(ds | es << 16 | fs << 32 | gs << 48, Ordering::Relaxed);
    FAILSAFE_MASKED.store(events::masked(), Ordering::Relaxed);
    FAILSAFE_CALLS.fetch_add(1, Ordering::Relaxed);
}

/// Loads `selector` into DS and FS (and leaves it there). In 64-bit mode
/// nothing Rust relies on uses their bases, and this guest keeps nothing
/// at fs:.
fn load_ds_and_fs(selector: u16) {
    // SAFETY: see above; the selector names a present DPL-3 data segment
    // of our GDT (or is null).
    unsafe {
        core::arch::asm!(
            "mov ds, {sel:x}",
            "mov fs, {sel:x}",
            sel = in(reg) selector,
            options(nostack, preserves_flags),
        );
    }
}

/// The failsafe callback (issue 11): a selector in DS and FS whose
/// descriptor goes away while the vCPU is descheduled cannot be reloaded
/// when it comes back; the hypervisor loads null and calls the failsafe
/// callback with the selectors it saved.
fn failsafe_callback(gdt: u64) {
    let base = gdt * PAGE_SIZE;
    let registration = CallbackRegister::new(
        CallbackType::Failsafe,
        CALLBACKF_MASK_EVENTS,
        failsafe_entry as *const () as u64,
    );
    // SAFETY: the entry takes the failsafe frame and returns with iret.
    let registered = unsafe { wrappers::callback_register(&registration) };
    expect_result("register the failsafe callback", registered, 0);
    let saved_before = privileged::data_selectors();
    load_ds_and_fs(selector(5));
    let present_bit = 1 << 47;
    let gone = update_descriptor(base + 5 * 8, DATA_DPL3 & !present_bit);
    // Descheduled: the hypervisor saves DS and FS and, coming back, finds
    // entry 5 not present.
    time::sleep(2_000_000);
    let calls = FAILSAFE_CALLS.load(Ordering::Relaxed);
    let now = privileged::data_selectors();
    // Put things back before checking, so that a failure leaves a sane guest.
    load_ds_and_fs(0);
    // SAFETY: the flat data selector the hypervisor provides.
    unsafe {
        core::arch::asm!("mov ds, {:x}", in(reg) saved_before[0], options(nostack, preserves_flags));
    }
    let back = update_descriptor(base + 5 * 8, DATA_DPL3);
    expect_result("update_descriptor: entry 5 not present", gone, 0);
    expect_result("update_descriptor: entry 5 present again", back, 0);
    let saved = FAILSAFE_SAVED
        .each_ref()
        .map(|word| word.load(Ordering::Relaxed));
    check(
        "unloadable DS and FS on the way back: the failsafe callback runs once",
        calls == 1,
        format_args!("{calls} calls"),
    );
    check(
        "its frame holds the saved DS and FS",
        saved[0] == u64::from(selector(5)) && saved[2] == u64::from(selector(5)),
        format_args!(
            "DS {:#x} ES {:#x} FS {:#x} GS {:#x}",
            saved[0], saved[1], saved[2], saved[3]
        ),
    );
    let loaded = FAILSAFE_LOADED.load(Ordering::Relaxed);
    check(
        "it finds null in DS and FS",
        loaded & 0xffff == 0 && (loaded >> 32) & 0xffff == 0,
        format_args!("DS:ES:FS:GS {loaded:#018x}; after return {now:x?}"),
    );
    check(
        "it runs with events masked (CALLBACKF_mask_events)",
        FAILSAFE_MASKED.load(Ordering::Relaxed),
        format_args!("masked: {}", FAILSAFE_MASKED.load(Ordering::Relaxed)),
    );
}

#[no_mangle]
fn guest_main(_start_info: &'static StartInfo) -> ! {
    println!("descriptor-attacks: attacking descriptor tables, segments and the FPU switch");
    let gdt = attack_set_gdt();
    attack_update_descriptor(gdt);
    failsafe_callback(gdt);
    attack_segment_bases();
    lazy_fpu();
    expect_result("set_gdt with no entries", set_gdt(&[], 0), 0);
    finish()
}
