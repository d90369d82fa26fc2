//! The guest's registers as the entry code saves them.
//!
//! Every entry from a guest (a `syscall`, an exception, an interrupt) saves
//! the complete register state in one [`GuestFrame`] at the very top of the
//! CPU's hypervisor stack, the same place every time, as Xen does with its
//! `cpu_user_regs`. The Rust handlers get `&mut GuestFrame`: they read the
//! hypercall arguments from it, write the result into it, or rewrite it
//! entirely (to bounce an exception to the guest, or for `iret`). The exit
//! code restores the guest from whatever the frame then says.
//!
//! The frame also holds the guest's SSE registers: the hypervisor is Rust,
//! and Rust code (including the precompiled `core`) uses XMM registers
//! freely, so they are saved on every entry and restored on every exit. The
//! x87/MMX registers are not saved here: nothing in the hypervisor touches
//! them (Rust on x86_64 does all floating point in SSE).

use hypercall_abi::layout::{FLAT_RING3_CS64, FLAT_RING3_SS64};

/// `vector` value of a frame saved by the `syscall` entry.
pub const ENTRY_SYSCALL: u64 = 0x100;
/// `vector` value of a frame that must be restored in full with `iretq`
/// (set by handlers that rewrote `rcx`/`r11`, such as the `iret` hypercall).
pub const ENTRY_FULL_RESTORE: u64 = 0x200;
/// Flag in `vector` of a frame that interrupted ring 0 while GS held the
/// guest's base (the first instruction of `syscall_entry`, the last ones of
/// an exit path): the entry swapped GS, and the exit swaps it back. See
/// `entry.rs`, "An exception in the hypervisor with the guest's GS".
pub const ENTRY_SWAPPED_GS: u64 = 1 << 32;

/// A guest's complete register state, lowest address first.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct GuestFrame {
    /// XMM0..XMM15.
    pub xmm: [u128; 16],
    /// The SSE control and status register.
    pub mxcsr: u32,
    _pad0: u32,
    _pad1: u64,
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Exception or interrupt vector, or [`ENTRY_SYSCALL`] /
    /// [`ENTRY_FULL_RESTORE`].
    pub vector: u64,
    /// The exception's error code (0 when it has none).
    pub error_code: u64,
    // From here on the layout is the processor's interrupt frame.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Size of the frame; the entry code in `entry.rs` builds exactly this.
pub const GUEST_FRAME_SIZE: usize = 448;
const _: () = assert!(core::mem::size_of::<GuestFrame>() == GUEST_FRAME_SIZE);
const _: () = assert!(core::mem::offset_of!(GuestFrame, r15) == 272);
const _: () = assert!(core::mem::offset_of!(GuestFrame, rax) == 384);
const _: () = assert!(core::mem::offset_of!(GuestFrame, vector) == 392);
const _: () = assert!(core::mem::offset_of!(GuestFrame, rip) == 408);
const _: () = assert!(core::mem::offset_of!(GuestFrame, rsp) == 432);

/// The interrupt flag in RFLAGS.
pub const RFLAGS_IF: u64 = 1 << 9;
/// RFLAGS.IOPL (bits 12..13). Always 0 while a PV guest runs; its
/// virtual IOPL is shown in the frames it sees (`traps::io_ports`).
pub const RFLAGS_IOPL: u64 = 3 << RFLAGS_IOPL_SHIFT;
/// Where the IOPL field starts in RFLAGS.
pub const RFLAGS_IOPL_SHIFT: u32 = 12;
/// RFLAGS bits a guest may set; the rest are forced (IF on, IOPL 0, no NT/VM/VIF/VIP).
pub const RFLAGS_GUEST_MASK: u64 = 0x0024_0dd5;

impl GuestFrame {
    /// A frame that enters a 64-bit guest kernel at `rip` with stack `rsp`
    /// and every other register zero, interrupts on.
    pub fn new_guest(rip: u64, rsp: u64) -> Self {
        Self {
            xmm: [0; 16],
            mxcsr: 0x1f80, // the reset value: all SSE exceptions masked
            _pad0: 0,
            _pad1: 0,
            r15: 0,
            r14: 0,
            r13: 0,
            r12: 0,
            r11: 0,
            r10: 0,
            r9: 0,
            r8: 0,
            rbp: 0,
            rdi: 0,
            rsi: 0,
            rdx: 0,
            rcx: 0,
            rbx: 0,
            rax: 0,
            vector: ENTRY_FULL_RESTORE,
            error_code: 0,
            rip,
            cs: u64::from(FLAT_RING3_CS64),
            rflags: RFLAGS_IF | 2,
            rsp,
            ss: u64::from(FLAT_RING3_SS64),
        }
    }

    /// Whether the frame was saved while the CPU ran a guest (ring 3) rather
    /// than the hypervisor (ring 0).
    pub fn came_from_guest(&self) -> bool {
        self.cs & 3 == 3
    }
}
