//! Start of day: the Xen ELF notes, the hypercall page, and `_start`.
//!
//! The domain builder (the hypervisor for Dom0, Dom0's toolstack for the
//! others) reads the notes below to learn where to map the image
//! (`VIRT_BASE`), where to start it (`ENTRY`) and which page to fill with
//! hypercall stubs (`HYPERCALL_PAGE`). It enters `_start` in ring 3 with
//! `rsi` pointing at the start_info page, on a small bootstrap stack; we
//! move to our own stack and call into Rust.

use crate::StartInfo;
use core::sync::atomic::{AtomicPtr, Ordering};
use hypercall_abi::SharedInfo;

/// Where the image expects pseudo-physical address 0 to be mapped.
pub const VIRT_BASE: u64 = 0xffff_ffff_8000_0000;
/// Size of the kernel stack.
pub const STACK_SIZE: usize = 64 * 1024;

#[cfg(not(test))]
core::arch::global_asm!(
    ".pushsection .note.Xen, \"a\", @note",
    ".macro XEN_NOTE_NUMBER kind, value",
    "    .balign 4",
    "    .long 4, 8, \\kind",
    "    .asciz \"Xen\"",
    "    .quad \\value",
    ".endm",
    ".macro XEN_NOTE_STRING kind, text",
    "    .balign 4",
    "    .long 4, 2f - 1f, \\kind",
    "    .asciz \"Xen\"",
    "1:  .asciz \"\\text\"",
    "2:  .balign 4",
    ".endm",
    "XEN_NOTE_STRING 6, \"xen-like\"",                       // GUEST_OS
    "XEN_NOTE_STRING 7, \"0.1.0\"",                          // GUEST_VERSION
    "XEN_NOTE_STRING 5, \"xen-3.0\"",                        // XEN_VERSION
    "XEN_NOTE_STRING 8, \"generic\"",                        // LOADER
    "XEN_NOTE_NUMBER 3, {virt_base}",                        // VIRT_BASE
    "XEN_NOTE_NUMBER 1, _start",                             // ENTRY
    "XEN_NOTE_NUMBER 2, hypercall_page",                     // HYPERCALL_PAGE
    ".popsection",
    // The hypercall page: filled by the builder, so its bytes here are
    // only int3 (a stray call traps instead of running garbage).
    ".pushsection .hypercall_page, \"ax\"",
    ".balign 4096",
    ".global hypercall_page",
    "hypercall_page:",
    "    .fill 4096, 1, 0xcc",
    ".popsection",
    ".pushsection .text.start, \"ax\"",
    ".global _start",
    "_start:",
    "    lea rsp, [rip + guest_stack_top]",
    "    mov rdi, rsi",
    "    xor ebp, ebp",
    "    call guest_start",
    "    ud2",
    ".popsection",
    ".pushsection .bss.guest_stack, \"aw\", @nobits",
    ".balign 16",
    "guest_stack_bottom:",
    "    .skip {stack_size}",
    "guest_stack_top:",
    ".popsection",
    virt_base = const VIRT_BASE,
    stack_size = const STACK_SIZE,
);

static START_INFO: AtomicPtr<StartInfo> = AtomicPtr::new(core::ptr::null_mut());
static SHARED_INFO: AtomicPtr<SharedInfo> = AtomicPtr::new(core::ptr::null_mut());

/// Where the shared info page is mapped.
pub const SHARED_INFO_ADDRESS: u64 = 0xffff_bfff_ffff_f000;

/// The shared info page (event bitmaps, per-vCPU info, wall clock), once
/// mapped.
pub fn shared_info() -> Option<&'static SharedInfo> {
    let pointer = SHARED_INFO.load(Ordering::Relaxed);
    // SAFETY: when set, the pointer is SHARED_INFO_ADDRESS, where
    // map_shared_info mapped the page for the domain's whole life.
    (!pointer.is_null()).then(|| unsafe { &*pointer })
}

/// The shared info page as a raw pointer, for the code that updates the
/// event bits the hypervisor shares with us (null until mapped).
pub fn shared_info_pointer() -> *mut SharedInfo {
    SHARED_INFO.load(Ordering::Relaxed)
}

/// Maps the shared info page, whose machine address start_info gives.
#[cfg(not(test))]
fn map_shared_info() {
    let mfn = start_info().shared_info / crate::paging::PAGE_SIZE;
    let flags = crate::paging::WRITABLE | crate::paging::USER | crate::paging::NO_EXECUTE;
    match crate::paging::map(SHARED_INFO_ADDRESS, mfn, flags) {
        Ok(()) => SHARED_INFO.store(SHARED_INFO_ADDRESS as *mut SharedInfo, Ordering::Relaxed),
        Err(error) => crate::println!("guest kernel: cannot map shared info: {error:?}"),
    }
}

/// The start_info page the builder gave us.
pub fn start_info() -> &'static StartInfo {
    // SAFETY: guest_start stored the pointer the builder passed in rsi, a
    // page the builder filled and mapped for the domain's whole life; it is
    // only read after that.
    unsafe { &*START_INFO.load(Ordering::Relaxed) }
}

/// The domain's command line from start_info, up to its first NUL.
pub fn command_line() -> &'static str {
    let bytes = &start_info().cmd_line;
    let length = bytes
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..length]).unwrap_or("")
}

#[cfg(not(test))]
extern "Rust" {
    /// The guest's main function, defined by the binary.
    fn guest_main(start_info: &'static StartInfo) -> !;
}

/// Called by `_start` on our own stack.
#[cfg(not(test))]
#[no_mangle]
extern "C" fn guest_start(start_info: *mut StartInfo) -> ! {
    START_INFO.store(start_info, Ordering::Relaxed);
    crate::traps::install();
    crate::paging::init();
    map_shared_info();
    crate::traps::register_shutdown_callback();
    crate::heap::init();
    crate::events::init();
    crate::console::init();
    // SAFETY: every binary built on this library defines guest_main with
    // exactly this signature (the link fails otherwise).
    unsafe { guest_main(self::start_info()) }
}
