//! Domains and their virtual CPUs.
//!
//! A domain is a guest: the machine frames it owns (`frames`), its shared
//! info page, its page-table roots, and its vCPU. The vCPU holds what the
//! guest told the hypervisor about itself (its trap table, its kernel stack
//! for exceptions, its callbacks) and, while it is not on a CPU, its saved
//! registers and FPU state.
//!
//! All domains live in one table behind a lock, keyed by domain ID. Which
//! domain runs on a CPU is recorded per CPU (`PerCpu::current_domain`).
//!
//! Life of a domain: Dom0 is built by the hypervisor at boot; every other
//! domain is created empty and paused by Dom0 (`domctl createdomain`),
//! filled by Dom0's domain builder, given its initial registers
//! (`setvcpucontext`), unpaused, and finally destroyed by Dom0, which gives
//! all its frames back. In between it may shut down (it asked) or crash
//! (the hypervisor stopped it); both leave it in the table, not running,
//! until Dom0 destroys it.
//!
//! # Zombies: why an ID is not an identity
//!
//! Destroying a domain cannot always free all its memory at once: another
//! domain may still map one of its frames (Dom0's builder or console
//! backend with a foreign mapping, later a grant mapping). Such a frame
//! keeps its owner in the frame table until the last mapping goes. The
//! owner is recorded as a bare domain ID, so if the ID were handed to a new
//! domain meanwhile, the new domain would inherit the old one's frame, and
//! with it whatever the old domain left there. As in Xen, the destroyed
//! domain therefore stays a *zombie* (a dying domain, `d` in `xl list`):
//! it left the scheduler, its event channels are closed, its page tables
//! torn down, the hypervisor's hold on its shared info page ended, and
//! every frame nothing else references is freed; what is left of it is a
//! [`Zombie`] record in the second half of the domain table, holding the
//! frames still referenced and, with them, its ID. The rule that makes a
//! bare ID safe in the frame table: **a frame owned by domain N exists only
//! while a record of domain N, live or dying, does**, and an ID is given
//! out again only when no record has it.
//!
//! A zombie is not a [`Domain`]: no lookup that could act on a domain
//! ([`with`], [`for_each`], ...) can find it, so nothing can run it, send
//! it an event, write its shared info page or give it memory; the
//! operations that name it answer `-ESRCH`, as for a domain that does not
//! exist. Only the toolstack's questions (`getdomaininfo`, `xl list`) and a
//! repeated destroy see it. Destruction itself goes in parts of bounded
//! work ([`destroy`] answers `-ERESTART` and the `destroydomain` domctl
//! becomes a continuation): the domain is a dying record from the first
//! part on, so its ID cannot be reused halfway. A frame still referenced
//! at the end is *relinquished*: the put of its last reference frees it
//! on the spot ([`dying_frames_freed`]), and the record goes with the last
//! such frame; nothing looks for them later.

//! # The lock order
//!
//! The hypervisor's global locks are taken from the outside in, never the
//! other way (the rule and its tests: `crate::sync::lock_order`):
//!
//! 1. `sched::CREDIT`: the scheduler's decision looks at every domain
//!    (`DOMAINS`) while it holds its accounting.
//! 2. `domain::DOMAINS` (below): a hypercall holds its domain while it
//!    changes the frame table (`setvcpucontext` pins the new tables,
//!    `memory_op` takes and gives back frames).
//! 3. `domain::ZOMBIES` (below): `xl list` and destruction look at both
//!    halves of the domain table, live first; a freed frame of a zombie is
//!    counted off it (and given to the allocator) while it is held, after
//!    the frame table is let go: nothing calls the frame table while
//!    holding `ZOMBIES`, since the frame table's glue may take it.
//! 4. `mm::frame_table::TABLE`: destroying a domain gives its frames to
//!    the allocator while the table is held.
//! 5. `mm::frames::FRAMES`: only logs under it.
//! 6. `console::SERIAL`, then 7. `console::RING`: a log line may be written
//!    under any lock above.
//!
//! The heap's lock is a leaf below all of them (the allocator calls
//! nothing). So code holding `DOMAINS` may log, allocate, and change the
//! frame table, but must not ask the scheduler anything (`sched::params`,
//! `sched::add_domain`) or take `DOMAINS` again (`domain::with` inside a
//! `domain::with` closure): take what is needed, drop the lock, then call.
//! Every one of these locks is an `OrderedMutex`: in the builds the tests
//! run, breaking the order panics with both lock names instead of hanging.
//!
//! # Invariants
//!
//! 1. **The zombie rule**: a frame owned by domain N exists only while a
//!    record of domain N, live or dying, does; an ID is given out again only
//!    when no record has it (see "Zombies" above).
//! 2. **A zombie cannot act or be acted on**: no lookup that could run it,
//!    send it an event, write its shared info page or give it memory finds
//!    it; only the toolstack's questions and a repeated destroy see it.
//! 3. **The lock order** (above) is never broken; in the builds the tests run
//!    a breach panics with both lock names.
//! 4. **Only a privileged domain (Dom0) uses the toolstack's operations**:
//!    `require_privileged` answers `-EPERM` to anyone else, and every handler
//!    that acts for the caller asks `caller()` who it is rather than trusting
//!    an argument.
//! 5. **What a guest did never stops the hypervisor**: a guest that cannot
//!    take its own exception is crashed (`crash_current`), and Dom0's crash
//!    stops the machine deliberately.
//!
//! # Files
//!
//! Pure rules, tested on the host: `max_memory.rs` (the check on a domain's
//! memory limit).
//!
//! Glue (built with the `kernel` feature): `domains.rs` (the domain table,
//! zombies, create, destroy, crash, shutdown, who is calling), `dom0_builder.rs`
//! (building Dom0 at boot), `domctl.rs` (the toolstack's `domctl`) and
//! `vcpu_op.rs` (`vcpu_op`, `vm_assist`).
#![forbid(unsafe_code)]

#[cfg(feature = "kernel")]
pub mod dom0_builder;
#[cfg(feature = "kernel")]
pub mod domains;
#[cfg(feature = "kernel")]
pub mod domctl;
pub mod max_memory;
pub mod target;
#[cfg(feature = "kernel")]
pub mod vcpu_op;

#[cfg(feature = "kernel")]
pub use domains::*;
