//! Measurements the hypervisor makes on itself for `cargo xtask bench`:
//! the native (ring-0) cost of the operations that PV guests must ask for
//! with hypercalls, so the benchmark can print the ratio of the two.

use crate::arch::x86_64::instructions::{self, rdtsc};
use crate::mm::frame_table::Owner;
use crate::mm::pagewalk::{PTE_PRESENT, PTE_WRITABLE};
use crate::mm::{frame_table, paging, PAGE_SIZE};
use alloc::vec::Vec;
use hypercall_abi::XenError;
use spin::Once;

/// A hypervisor address (in Xen's reserved region, PML4 slot 265) where
/// the PTE benchmark maps its two frames in turn.
const SCRATCH: u64 = 0xffff_8480_0000_0000;
/// The most iterations one request may ask for.
pub const MAX_ITERATIONS: u32 = 100_000;

/// The scratch PTE and the two frames it alternates between.
static SCRATCH_SETUP: Once<Option<(usize, [u64; 2])>> = Once::new();

/// Median and minimum of `samples` (sorted in place).
fn median_and_min(samples: &mut [u64]) -> (u64, u64) {
    samples.sort_unstable();
    let median = samples.get(samples.len() / 2).copied().unwrap_or(0);
    (median, samples.first().copied().unwrap_or(0))
}

/// The median and minimum cycles of one operation.
pub type Timing = (u64, u64);

fn time(iterations: u32, mut operation: impl FnMut(u32)) -> Result<Timing, XenError> {
    let mut samples = Vec::new();
    samples
        .try_reserve_exact(iterations as usize)
        .map_err(|_| XenError::ENOMEM)?;
    for index in 0..iterations {
        let start = rdtsc();
        operation(index);
        samples.push(rdtsc() - start);
    }
    Ok(median_and_min(&mut samples))
}

/// Times a PTE write plus `invlpg`, and a CR3 write, `iterations` times
/// each; returns their (median, minimum) cycles.
pub fn native(iterations: u32) -> Result<(Timing, Timing), XenError> {
    if iterations == 0 || iterations > MAX_ITERATIONS {
        return Err(XenError::EINVAL);
    }
    let setup = SCRATCH_SETUP.call_once(|| {
        let frames = [
            frame_table::allocate_for(Owner::Hypervisor)?,
            frame_table::allocate_for(Owner::Hypervisor)?,
        ];
        paging::map_hypervisor_page(
            SCRATCH,
            frames[0],
            PTE_PRESENT | PTE_WRITABLE,
            PTE_PRESENT | PTE_WRITABLE,
        );
        Some((paging::hypervisor_pte(SCRATCH)? as usize, frames))
    });
    let Some((pte, frames)) = *setup else {
        return Err(XenError::ENOMEM);
    };
    let pte = pte as *mut u64;
    let pte_cycles = time(iterations, |index| {
        let frame = frames[(index & 1) as usize];
        // SAFETY: the entry maps the hypervisor's own scratch address, which
        // nothing else uses, to one of two frames reserved for this.
        unsafe { pte.write_volatile((frame * PAGE_SIZE) | PTE_PRESENT | PTE_WRITABLE) };
        instructions::invlpg(SCRATCH);
    })?;
    let root = instructions::read_cr3();
    let cr3_cycles = time(iterations, |_| {
        // SAFETY: reloading the current root changes no mapping.
        unsafe { instructions::write_cr3(root) };
    })?;
    Ok((pte_cycles, cr3_cycles))
}
