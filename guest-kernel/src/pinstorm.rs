//! `workload=pinstorm`: the attack of issue 19, in a loop.
//!
//! The guest builds a private page-table tree in its own memory (an L4, an
//! L3, an L2 and 511 L1 tables whose 512 entries each map one of its frames
//! read-only), then makes ONE `mmuext_op` call with 4,096 operations: pin
//! the L4, unpin it, 2,048 times. Each pin validates the whole tree (about
//! 262,000 entries) and each unpin devalidates it. Before hypercalls were
//! preemptible this call held the CPU, interrupts off, for tens of seconds;
//! with continuations it is cut into pieces of bounded work, and the rest
//! of the machine runs between them. The guest checks that each batch ends
//! as it must (result 0, all 4,096 operations done, the tree usable) and
//! prints a line per batch, forever.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use guest_kernel::abi::layout::DOMID_SELF;
use guest_kernel::abi::mmu::{MmuextCmd, MmuextOp};
use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::paging::{self, PagingError, PAGE_SIZE, PRESENT, USER, WRITABLE};
use guest_kernel::sys::hypercalls;
use guest_kernel::{println, time};

/// L1 tables under the L2 (all of its slots but one, as in the finding).
const L1_TABLES: u64 = 511;
/// Operations in the one `mmuext_op` call of each round, unless the
/// command line says `operations=N`.
const DEFAULT_OPERATIONS: usize = 4096;

/// Builds the tree and attacks with it until destroyed.
pub fn run(command_line: &str) -> ! {
    let count = command_line
        .split_ascii_whitespace()
        .find_map(|word| word.strip_prefix("operations="))
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or(DEFAULT_OPERATIONS)
        .max(2)
        & !1;
    let root = match build_tree() {
        Ok(root) => root,
        Err(error) => {
            println!("pinstorm: cannot build the tree: {error:?}");
            guest_kernel::shutdown(ShutdownReason::Crash)
        }
    };
    let mut operations = Vec::with_capacity(count);
    for index in 0..count {
        // Pin, unpin, ...: an odd count ends pinned, which the check below
        // would refuse; `count` is rounded down to an even number.
        let command = if index % 2 == 0 {
            MmuextCmd::PinL4Table
        } else {
            MmuextCmd::UnpinTable
        };
        operations.push(MmuextOp::with_mfn(command, root));
    }
    println!("pinstorm: attacking with {count} pin/unpin operations per call");
    let mut round = 0u64;
    loop {
        round += 1;
        let started = time::system_time_ns();
        // The operations name only our own tree, which no mapping of ours
        // depends on; the hypervisor checks every one.
        let (result, done) = hypercalls::mmuext_op(&operations, DOMID_SELF);
        let milliseconds = (time::system_time_ns() - started) / 1_000_000;
        // The tree must still be whole: one more pin and unpin succeed.
        let usable = paging::pin(root, 4).and_then(|()| paging::unpin(root));
        if result != 0 || done as usize != count || usable.is_err() {
            println!(
                "pinstorm: round {round} WRONG: result {result}, {done} of {count} done, tree {usable:?}"
            );
            guest_kernel::shutdown(ShutdownReason::Crash)
        }
        println!("pinstorm: round {round} done: {done} operations in {milliseconds} ms");
    }
}

/// Builds the tree (every table pinned while it is filled in, then only
/// reachable from the L4, which is left unpinned) and returns the L4's MFN.
fn build_tree() -> Result<u64, PagingError> {
    let mut l1_tables = Vec::new();
    for _ in 0..L1_TABLES {
        let l1 = paging::new_table()?;
        paging::pin(l1, 1)?;
        // Entry i maps the guest's pseudo-physical frame i, read-only.
        let entries: Vec<(u64, u64)> = (0..512)
            .map(|index| {
                (
                    l1 * PAGE_SIZE + index * 8,
                    (paging::pfn_to_mfn(index) * PAGE_SIZE) | PRESENT | USER,
                )
            })
            .collect();
        paging::write_entries(&entries)?;
        l1_tables.push(l1);
    }
    let l2 = paging::new_table()?;
    paging::pin(l2, 2)?;
    let links: Vec<(u64, u64)> = l1_tables
        .iter()
        .enumerate()
        .map(|(index, &l1)| (l2 * PAGE_SIZE + index as u64 * 8, table_entry(l1)))
        .collect();
    paging::write_entries(&links)?;
    let l3 = paging::new_table()?;
    paging::pin(l3, 3)?;
    paging::write_entries(&[(l3 * PAGE_SIZE, table_entry(l2))])?;
    let l4 = paging::new_table()?;
    paging::pin(l4, 4)?;
    paging::write_entries(&[(l4 * PAGE_SIZE, table_entry(l3))])?;
    for table in l1_tables.into_iter().chain([l2, l3, l4]) {
        paging::unpin(table)?;
    }
    Ok(l4)
}

/// An entry that links a lower table.
fn table_entry(mfn: u64) -> u64 {
    (mfn * PAGE_SIZE) | PRESENT | WRITABLE | USER
}
