//! `workload=grant-flood`: a hostile guest that makes the hypervisor spend
//! as much of its heap as the grant interface lets one domain spend.
//!
//! It grows its grant table to the most frames it may have (each grant
//! reference costs the hypervisor an active entry), grants one frame of its
//! own to itself under as many references as its maptrack can hold, and
//! maps every one of them for a device (`GNTMAP_device_map`: no page-table
//! entry needed, one maptrack entry each) until the hypervisor refuses.
//! Then it reports what it got and stays alive, holding it all. Several of
//! these at once must not bring the hypervisor down (the `grant_flood`
//! scenario in `tests/tests/grant_tables.rs`).
//!
//! A grant names its grantee by domain ID, and a DomU has no XenStore
//! client to learn its own: it finds it by granting reference 0 to each ID
//! in turn until its own map of it is accepted.
#![forbid(unsafe_code)]

use guest_kernel::abi::grant_table::{
    GntmapFlags, GnttabMapGrantRef, GnttabOp, GnttabQuerySize, GnttabSetupTable, GrantFlags,
    GrantStatus, GRANT_ENTRIES_PER_FRAME,
};
use guest_kernel::abi::layout::DOMID_SELF;
use guest_kernel::abi::Hypercall;
use guest_kernel::paging;
use guest_kernel::println;
use guest_kernel::sys::memory::OwnedPages;
use guest_kernel::sys::raw;
use guest_kernel::time;

/// Where the first grant-table frames are mapped (an unused region).
const TABLE_ADDRESS: u64 = 0xffff_d400_0000_0000;
/// The most grant-table frames mapped to write entries: enough references
/// for the largest maptrack that `gnttab_max_maptrack_frames` allows here.
const MAPPED_TABLE_FRAMES: usize = 64;
/// Domain IDs tried when looking for our own.
const HIGHEST_ID_TRIED: u16 = 200;

/// `grant_table_op(operation, request, 1)`.
fn grant_table_op<T>(operation: GnttabOp, request: &mut T) -> i64 {
    raw::hypercall(
        Hypercall::GrantTableOp as u64,
        [
            u64::from(operation.raw()),
            core::ptr::from_mut(request) as u64,
            1,
            0,
            0,
        ],
    )
}

/// Runs the flood, then idles forever holding what it got.
pub fn run() -> ! {
    let mut query = GnttabQuerySize {
        dom: DOMID_SELF,
        ..GnttabQuerySize::default()
    };
    let result = grant_table_op(GnttabOp::QuerySize, &mut query);
    let max_frames = query.max_nr_frames.min(64);
    let mut frames = [0u64; 64];
    let mut setup = GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: max_frames,
        frame_list: frames.as_mut_ptr() as u64,
        ..GnttabSetupTable::default()
    };
    let setup_result = grant_table_op(GnttabOp::SetupTable, &mut setup);
    println!(
        "grant-flood: query_size {result}, setup_table of {max_frames} frames: {setup_result}, status {}",
        setup.status
    );
    if setup_result != 0 || setup.status != GrantStatus::Okay.raw() {
        idle("the table did not grow");
    }
    let mapped_frames = (max_frames as usize).min(MAPPED_TABLE_FRAMES);
    let Ok(table) = OwnedPages::map_owned(TABLE_ADDRESS, &frames[..mapped_frames]) else {
        idle("cannot map the grant-table frames");
    };
    let Ok(pfn) = paging::allocate_frame() else {
        idle("no frame to grant");
    };
    let granted = paging::pfn_to_mfn(pfn);
    let grant = |reference: u32, to: u16| -> bool {
        let address = TABLE_ADDRESS + u64::from(reference) * 8;
        // domid and frame first, flags last (the protocol's order).
        let mut tail = [0u8; 6];
        tail[..2].copy_from_slice(&to.to_le_bytes());
        tail[2..].copy_from_slice(&(granted as u32).to_le_bytes());
        table.write(address + 2, &tail)
            && table.write(address, &GrantFlags::PERMIT_ACCESS.bits().to_le_bytes())
    };
    let map = |reference: u32| -> i16 {
        let mut request = GnttabMapGrantRef {
            flags: GntmapFlags::DEVICE_MAP.bits(),
            r#ref: reference,
            dom: DOMID_SELF,
            ..GnttabMapGrantRef::default()
        };
        match grant_table_op(GnttabOp::MapGrantRef, &mut request) {
            0 => request.status,
            _ => i16::MIN,
        }
    };
    // Our own ID: the one whose grant we may map.
    let me = (1..=HIGHEST_ID_TRIED).find(|&id| grant(0, id) && map(0) == GrantStatus::Okay.raw());
    let Some(me) = me else {
        idle("could not find our own domain ID");
    };
    let references = (mapped_frames as u32) * GRANT_ENTRIES_PER_FRAME;
    let mut mappings = 1u32;
    let mut last_status = GrantStatus::Okay.raw();
    for reference in 1..references {
        if !grant(reference, me) {
            break;
        }
        last_status = map(reference);
        if last_status != GrantStatus::Okay.raw() {
            break;
        }
        mappings += 1;
    }
    println!(
        "grant-flood: d{me} holds {mappings} grant mappings and {max_frames} grant-table frames; the next map was answered {last_status}"
    );
    idle("holding everything")
}

/// Says why it stops, then blocks forever (it keeps what it holds until
/// it is destroyed).
fn idle(why: &str) -> ! {
    println!("grant-flood: done: {why}");
    loop {
        time::sleep(1_000_000_000);
    }
}
