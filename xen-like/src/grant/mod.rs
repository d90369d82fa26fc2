//! Grant tables: how one domain lets another map or copy one of its frames,
//! by permission, with Xen's v1 interface (`grant_table.h`).
//!
//! # The idea
//!
//! A PV domain may map only frames it owns (frame-table invariant 1). Split
//! drivers need more: a frontend in a guest and a backend in Dom0 share a
//! ring page, and a backend reads and writes the guest's I/O buffers. So a
//! domain (the *granter*) writes an entry into its *grant table*, a packed
//! array of 8-byte `grant_entry_v1` in frames it shares with the
//! hypervisor: "domain `domid` may access my frame `frame`, read-only or
//! not". The entry's index is a *grant reference*. The other domain (the
//! *mapper*) passes `(granter, reference)` to `GNTTABOP_map_grant_ref` and
//! gets the frame mapped at an address of its choice, with a *handle* to
//! unmap it later; or it passes references to `GNTTABOP_copy` and the
//! hypervisor copies the bytes itself.
//!
//! ```text
//!   granter (domain 3)                              mapper (domain 0)
//!   grant table frame (shared with the hypervisor)  maptrack (hypervisor's)
//!   ┌────────┬───────┬────────┐                      ┌────────┬─────────┬─────┐
//!   │ flags  │ domid │ frame  │ ref 0                │ granter│ ref     │ ... │ handle 0
//!   ├────────┼───────┼────────┤                      ├────────┼─────────┼─────┤
//!   │PERMIT| │   0   │ 0x1234 │ ref 1  ◄──────────── │   3    │ 1       │     │ handle 1
//!   │READING │       │        │                      └────────┴─────────┴─────┘
//!   └────────┴───────┴────────┘
//!   active entry for ref 1 (hypervisor's): mapper 0, frame 0x1234, readers 1
//! ```
//!
//! # The protocol on a shared entry
//!
//! The granter writes `domid` and `frame`, then (after a write barrier)
//! `flags` with `GTF_permit_access` and perhaps `GTF_readonly`. The
//! hypervisor, on the first use, checks the type, the grantee and the
//! read-only bit and sets `GTF_reading` (and `GTF_writing` for a writable
//! use) in **one compare-and-exchange of the 32-bit `flags | domid` word**,
//! retried a few times if the granter changes it meanwhile, then refused:
//! so no check can be overtaken by a change of the grantee. While the bits
//! are set, an honest granter revoking the entry (a compare-and-exchange of
//! flags to 0 that expects them clear) fails and knows to wait. When the
//! last writable use ends the hypervisor clears `GTF_writing`, when the
//! last use ends `GTF_reading`, atomically, leaving the granter's bits.
//!
//! A dishonest granter can write its entry however it likes; that is why
//! nothing the hypervisor relies on is read from it after the first pin.
//!
//! # The invariants
//!
//! 1. **A mapped frame outlives every mapping of it.** Each mapping holds a
//!    general reference on the granted frame (and its page-table entry,
//!    written through the frame table, holds its own). The granter cannot
//!    free the frame (`decrease_reservation` is refused, `-EBUSY`), and a
//!    granter destroyed while mapped stays a zombie (`d` in `xl list`)
//!    until the last mapping is gone.
//! 2. **Once pinned, an entry means what it meant.** The first pin copies
//!    the frame and the mapper into the hypervisor's *active entry*; later
//!    pins and all unpins use those, so rewriting the shared entry
//!    mid-mapping redirects nothing. An entry in use by one domain cannot be
//!    pinned by another.
//! 3. **Read-only stays read-only.** A grant with `GTF_readonly` is never
//!    mapped writable nor copied into (`GNTST_general_error`), checked under
//!    the same compare-and-exchange that sets the status bits.
//! 4. **A page table is never granted writable.** A writable mapping or a
//!    copy into a frame holds a `Writable` type reference on it for as long
//!    as it lasts, so by frame-table invariant 2 a page table or descriptor
//!    page cannot be mapped writable or copied into, and a frame so mapped
//!    cannot become one.
//! 5. **Handles are per mapper and checked.** A handle is an index into the
//!    caller's own maptrack; one out of range or not in use is
//!    `GNTST_bad_handle`, so unmapping twice is refused and no domain can
//!    name another's mapping. The maptrack has a limit
//!    (`gnttab_max_maptrack_frames`); past it, `GNTST_no_device_space`.
//! 6. **The counts add up.** For every active entry, `readers` and
//!    `writers` equal the read-only and writable halves (host and device,
//!    each pinned and referenced on its own, as in Xen) of the mappings of
//!    it in the mapper's maptrack, plus copies in progress; `GTF_reading` is set by the hypervisor
//!    exactly while the entry is pinned and `GTF_writing` while it has
//!    writers (as long as the granter follows the protocol). The frame
//!    table's counts of a granted frame include one general reference per
//!    mapping half and one `Writable` type reference per writable half, so
//!    unmapping one half can never drop another's (XSA-224).
//! 7. **The hypervisor's writes stay out of page tables.** A domain's
//!    grant-table frames are written by the hypervisor whenever it likes,
//!    so they are held under frame-table invariant 6 (`hold_for_hypervisor`)
//!    for the domain's whole life.
//!
//! The rules are in [`table`], over an abstract view of the shared entries
//! and of the frame table so that they run under `cargo test`, with a
//! randomised sequence test whose oracle checks invariants 2 to 6 after
//! every step.

#![forbid(unsafe_code)]

#[cfg(feature = "kernel")]
pub mod grant_table_op;
pub mod table;

#[cfg(feature = "kernel")]
pub use grant_table_op::{configure, grant_frame_limit, grant_table_op, GrantState};
