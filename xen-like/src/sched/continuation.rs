//! Hypercall continuations: how a long hypercall stops and resumes.
//!
//! A hypercall that works through a batch (page-table updates, pinning a
//! big tree, a memory reservation) counts its work in units. When
//! [`WORK_PER_HYPERCALL`] units are spent it stops and answers
//! [`Outcome::Continue`] with its remaining arguments: the dispatcher
//! rewinds the guest's RIP onto the `syscall` instruction, so the guest
//! makes the same hypercall again the next time it runs, and in between
//! the hypervisor can take an interrupt and switch to another vCPU. This is
//! Xen's `hypercall_create_continuation`; `docs/continuations.md` tells
//! the story.

use hypercall_abi::XenError;

/// The work one hypercall may do before it must give the CPU a chance to
/// take an interrupt: entries of page tables checked or released, plus one
/// per operation of a batch. `cargo xtask bench` measures the longest
/// hypercall a `pinstorm` guest causes: with 16,384 units it was 29 million
/// TSC cycles (11 ms at 2.6 GHz, under QEMU's emulation, where a unit costs
/// up to some 1,800 cycles); 2,048 units bring it to about a millisecond.
pub const WORK_PER_HYPERCALL: u64 = 2048;

/// What a hypercall handler did.
pub enum Outcome {
    /// Finished, with this result for `rax`.
    Done(Result<u64, XenError>),
    /// Stopped because its work budget ran out: the guest makes the same
    /// hypercall again with these arguments. Only the registers of the
    /// arguments the hypercall takes are changed (`rdi, rsi, rdx, r10`, in
    /// that order, as many as there are): as in Xen, the others keep the
    /// guest's values, which its compiler may rely on.
    Continue(heapless::Vec<u64, 5>),
}
