//! Machine memory: the direct map, the frame allocator, the heap, and safe
//! access to guest memory.
//!
//! The hypervisor sees all of machine memory through the *direct map*: the
//! machine address `a` is at virtual address `DIRECTMAP_START + a`, inside
//! Xen's reserved region (as in Xen, at 0xffff830000000000). Guests cannot
//! reach it: its page-table entries lack the user bit, and guests run in
//! ring 3.
//!
//! # Invariants
//!
//! What this folder's code guarantees, whatever a guest asks:
//!
//! 1. **The frame table's six invariants** (stated and argued in
//!    `frame_table/mod.rs`, checked after every step of its host tests): a
//!    domain maps only frames it owns; a page table is never writable; the
//!    hypervisor's PML4 slots 256..=271 are out of a guest's reach; counts
//!    stop a frame from going away while in use; removed rights are flushed
//!    from the TLB before a frame can be retyped or freed (`tlb.rs`); a frame
//!    the hypervisor writes on its own (the shared info page, a registered
//!    `vcpu_info`, grant frames) is never a page table.
//! 2. **Frames change hands only through the frame table**
//!    (`FrameTable::assign` and `FrameTable::release`): the glue
//!    (`frame_table/global.rs`) takes a frame from the allocator before it
//!    assigns it, and gives it back only once the table has released it.
//! 3. **A guest pointer is never dereferenced.** Every access to guest memory
//!    goes through `guest_access.rs`: the whole range is checked (canonical,
//!    no wrap, outside the hypervisor's range), then each page is walked with
//!    the guest's ring-3 permissions; a bad pointer is `-EFAULT`, never a
//!    fault in the hypervisor.
//! 4. **The direct map is the hypervisor's alone**: its entries lack the user
//!    bit and guests run in ring 3.
//! 5. **A long page-table or memory operation keeps the machine live**: it
//!    spends at most `sched::continuation::WORK_PER_HYPERCALL` units, then
//!    continues with its progress kept in the frame table and the arguments.
//! 6. **Guests cannot exhaust the heap** (`heap.rs`, `heap_budget.rs`,
//!    `docs/heap.md`). Every heap allocation whose size a guest chooses is
//!    fallible and passes `heap::admit_guest_allocation` first, which
//!    refuses it when the heap's free bytes would drop below the reserve
//!    (`domain::heap_reserve`) or the domain would pass its cap: grant
//!    active entries and the list of grant-table frames (`setup_table`),
//!    maptrack growth (`map_grant_ref`), a vCPU's GDT copy (`set_gdt`).
//!    The hypervisor's own allocations are fallible where a request makes
//!    them and can fail cleanly (`Box<Domain>` in `createdomain`:
//!    `-ENOMEM`; the `getdomaininfolist` list: `-ENOMEM`). The allocations
//!    that stay infallible are bounded by what no guest can grow, and the
//!    reserve is sized for them at their bound:
//!    - the domain and zombie tables' B-tree nodes, each dying domain's
//!      `Teardown` record: at most `domain::MAX_DOMAINS` records, live and
//!      dying (`createdomain` refuses more with `-ENOSPC`);
//!    - each domain's `BTreeSet` of frames (`populate_physmap`,
//!      `increase_reservation`) and the list destruction collects them
//!      into: bounded by the machine's frames, at
//!      `domain::HEAP_BYTES_PER_FRAME` each (the heap grows with the
//!      machine by as much: `heap::size_for`);
//!    - the remote ends collected when a dying domain's event channels
//!      close (`evtchn::close_all`): at most `PORTS_PER_DOMAIN`;
//!    - the frame table's list of freed frames of dying domains, drained
//!      at the end of each frame-table operation;
//!    - boot-time structures (the M2P's frame list, Dom0's P2M, Dom0's
//!      first frame), allocated once before any guest runs.
//!
//! # Files
//!
//! Pure rules, tested on the host by `cargo test`: `frame_table/` (its
//! `mod.rs` is the essay to read first; `tests/` the random-sequence tests),
//! `frame_allocator.rs`, `heap_budget.rs` (who may use the heap), `pagewalk.rs`, `shared_page/mod.rs` (the layout and
//! its atomic bit operations), `descriptor.rs`, `reservation.rs`.
//!
//! Glue (built with the `kernel` feature): `direct_map.rs`, `paging.rs`,
//! `frames.rs`, `frame_table/global.rs`, `m2p.rs`, `tlb.rs`, `heap.rs`,
//! `guest_access.rs`, `shared_page/frame.rs`, `shared_page/vcpu_info_frame.rs`
//! (the frame a guest moved its `vcpu_info` to), `descriptor_tables.rs`, the
//! hypercalls `mmu_op.rs` and `memory_op.rs`, and the ring-0 benchmark
//! `native_bench.rs`. `unsafe` is allowed in this folder (raw memory through
//! the direct map, page tables, guest copies); every block says why it is
//! sound.

pub mod descriptor;
#[cfg(feature = "kernel")]
pub mod descriptor_tables;
#[cfg(feature = "kernel")]
pub mod direct_map;
pub mod frame_allocator;
pub mod frame_table;
#[cfg(feature = "kernel")]
pub mod frames;
#[cfg(feature = "kernel")]
pub mod grant_frames;
#[cfg(feature = "kernel")]
pub mod guest_access;
#[cfg(feature = "kernel")]
pub mod heap;
pub mod heap_budget;
#[cfg(feature = "kernel")]
pub mod m2p;
#[cfg(feature = "kernel")]
pub mod memory_op;
#[cfg(feature = "kernel")]
pub mod mmu_op;
#[cfg(feature = "kernel")]
pub mod native_bench;
#[cfg(feature = "kernel")]
pub mod new_domain_memory;
pub mod pagewalk;
#[cfg(feature = "kernel")]
pub mod paging;
pub mod reservation;
pub mod shared_page;
#[cfg(feature = "kernel")]
pub mod tlb;

#[cfg(feature = "kernel")]
pub use direct_map::*;
