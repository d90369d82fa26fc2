//! `workload=grant-share`: two DomUs share a page by grant and see each
//! other's writes; `workload=grant-bench`: the grant operations timed.
//!
//! `grant-share role=granter peer=M ref=R` grants one fresh page of its own
//! to domain M through entry R of its table, writable; `grant-share
//! role=mapper peer=G ref=R` maps domain G's entry R. Until the guests have
//! a XenStore client, the grant reference and the peer's domain ID come
//! from the command line (the config files in `/etc/xen/`), not from the
//! store as in Xen's split drivers.
//!
//! The page's words say how far each side got:
//!
//! ```text
//!  word 0  granter: GRANTER_HELLO         (the mapper reads it)
//!  word 1  mapper:  MAPPER_HELLO          (the granter reads it)
//!  word 2  granter: GRANTER_ANSWER        (the mapper reads it, then unmaps)
//! ```
//!
//! While mapped, the granter's revocation must be refused (`GTF_reading`
//! and `GTF_writing` set); after the unmap it succeeds. With `hold` the
//! mapper keeps its mapping until `unmap` is typed at its console, so that
//! the granter can be destroyed while mapped (it stays a zombie).

#![forbid(unsafe_code)]

use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::grant_table::{self, GrantTable, SharedPage, SHARED_PAGES_ADDRESS};
use guest_kernel::{console, events, println, time};

/// What the granter writes first.
const GRANTER_HELLO: u64 = 0x6772_616e_7465_7231;
/// What the mapper writes once it has mapped the page and read the hello.
const MAPPER_HELLO: u64 = 0x6d61_7070_6572_3131;
/// The granter's answer to the mapper's write.
const GRANTER_ANSWER: u64 = 0x6772_616e_7465_7232;
/// How long either side waits for the other, in 10 ms polls (60 s).
const POLLS: u32 = 6000;

/// The value of `key=` on the command line.
fn argument(line: &str, key: &str) -> Option<u64> {
    line.split(|c: char| c.is_ascii_whitespace() || c == ',')
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
}

fn fail(what: &str) -> ! {
    println!("grant-share: FAILED: {what}");
    guest_kernel::shutdown(ShutdownReason::Crash)
}

/// Polls `done` every 10 ms until it holds; `false` after [`POLLS`].
fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..POLLS {
        if done() {
            return true;
        }
        time::sleep(10_000_000);
    }
    false
}

/// Sleeps forever: the scenario's domains are destroyed with `xl destroy`.
fn idle() -> ! {
    loop {
        time::sleep(1_000_000_000);
    }
}

/// Runs the role the command line names.
pub fn run(line: &str) -> ! {
    let peer = argument(line, "peer").unwrap_or(0) as u16;
    let reference =
        argument(line, "ref").unwrap_or(u64::from(grant_table::FIRST_FREE_REFERENCE)) as u32;
    let role = line
        .split(|c: char| c.is_ascii_whitespace() || c == ',')
        .find_map(|word| word.strip_prefix("role="));
    match role {
        Some("granter") => granter(peer, reference),
        Some("mapper") => mapper(peer, reference, argument(line, "hold") == Some(1)),
        _ => fail("say role=granter or role=mapper"),
    }
}

fn granter(peer: u16, reference: u32) -> ! {
    let table = GrantTable::setup(1).unwrap_or_else(|error| {
        println!("grant-share: setup_table: {error}");
        fail("no grant table")
    });
    let Ok(page) = SharedPage::map_fresh(SHARED_PAGES_ADDRESS) else {
        fail("no page to share")
    };
    page.write_word(0, GRANTER_HELLO);
    let frame = page.frame().unwrap_or(0);
    if let Err(error) = table.grant_access(reference, peer, frame, false) {
        println!("grant-share: grant_access: {error}");
        fail("cannot grant");
    }
    println!(
        "grant-share: granter: ref {reference} grants frame {frame:#x} to domain {peer} ({} entries)",
        table.entries()
    );
    if !wait_for(|| page.read_word(1) == MAPPER_HELLO) {
        fail("the mapper never wrote");
    }
    println!(
        "grant-share: granter: sees the mapper's write {:#x}",
        page.read_word(1)
    );
    match table.end_access(reference) {
        Err(grant_table::GrantError::InUse(flags)) => println!(
            "grant-share: granter: revoke while mapped refused: {}",
            grant_table::GrantError::InUse(flags)
        ),
        Ok(()) => fail("revoked a grant that is mapped"),
        Err(error) => {
            println!("grant-share: end_access: {error}");
            fail("revoke failed otherwise")
        }
    }
    page.write_word(2, GRANTER_ANSWER);
    // The mapper unmaps when it has seen our answer; then the hypervisor
    // clears GTF_reading and GTF_writing and the revocation succeeds.
    if !wait_for(|| table.end_access(reference).is_ok()) {
        fail("the grant stayed in use");
    }
    println!("grant-share: granter: revoked ref {reference} after the unmap");
    idle()
}

fn mapper(peer: u16, reference: u32, hold: bool) -> ! {
    let address = SHARED_PAGES_ADDRESS;
    // The granter may not have granted yet: try for a while.
    let mut mapping = None;
    let mut last_error = None;
    let mapped = wait_for(
        || match grant_table::map_grant_ref(address, peer, reference, false) {
            Ok(done) => {
                mapping = Some(done);
                true
            }
            Err(error) => {
                last_error = Some(error);
                false
            }
        },
    );
    let Some(mapping) = mapping.filter(|_| mapped) else {
        if let Some(error) = last_error {
            println!("grant-share: map_grant_ref: {error}");
        }
        fail("cannot map the grant")
    };
    let page = mapping.page();
    println!(
        "grant-share: mapper: mapped domain {peer}'s ref {reference} (handle {}), reads {:#x}",
        mapping.handle(),
        page.read_word(0)
    );
    if page.read_word(0) != GRANTER_HELLO {
        fail("the page does not hold the granter's write");
    }
    page.write_word(1, MAPPER_HELLO);
    if !wait_for(|| page.read_word(2) == GRANTER_ANSWER) {
        fail("the granter never answered");
    }
    println!(
        "grant-share: mapper: sees the granter's write {:#x}",
        page.read_word(2)
    );
    if hold {
        println!("grant-share: mapper: holding the mapping; type unmap at this console");
        wait_for_unmap_command();
        println!(
            "grant-share: mapper: still mapped, reads {:#x}",
            mapping.page().read_word(0)
        );
    }
    if let Err((_, error)) = mapping.unmap() {
        println!("grant-share: unmap_grant_ref: {error}");
        fail("cannot unmap");
    }
    println!("grant-share: mapper: unmapped");
    idle()
}

/// Reads console lines until one is `unmap`.
fn wait_for_unmap_command() {
    let mut line: heapless::String<16> = heapless::String::new();
    loop {
        let mut bytes = [0u8; 16];
        let mut count = 0;
        events::wait_until(|| {
            count = console::read_input(&mut bytes);
            count > 0
        });
        for &byte in &bytes[..count] {
            match byte {
                b'\r' | b'\n' => {
                    if line == "unmap" {
                        return;
                    }
                    line.clear();
                }
                _ => {
                    let _ = line.push(char::from(byte));
                }
            }
        }
    }
}

/// Median and minimum of `samples` (sorted here).
fn median_and_minimum(samples: &mut [u64]) -> (u64, u64) {
    samples.sort_unstable();
    (
        samples.get(samples.len() / 2).copied().unwrap_or(0),
        samples.first().copied().unwrap_or(0),
    )
}

/// `workload=grant-bench rounds=N`: grants a page to itself and times, in
/// TSC cycles, a map + unmap of it and a 4 KiB grant copy into it, with
/// the cheapest hypercall (`xen_version`) and a 4 KiB copy between two
/// mapped pages of our own as baselines in the same run.
pub fn bench(line: &str) -> ! {
    let rounds = argument(line, "rounds").unwrap_or(1000).max(1);
    let me = argument(line, "self").unwrap_or(0) as u16;
    let reference = grant_table::FIRST_FREE_REFERENCE;
    let (Ok(table), Ok(granted), Ok(source)) = (
        GrantTable::setup(1),
        SharedPage::map_fresh(SHARED_PAGES_ADDRESS),
        SharedPage::map_fresh(SHARED_PAGES_ADDRESS + 0x1000),
    ) else {
        fail("bench setup")
    };
    if let Err(error) = table.grant_access(reference, me, granted.frame().unwrap_or(0), false) {
        println!("grant-bench: grant_access: {error}");
        fail("bench grant");
    }
    for index in 0..512 {
        source.write_word(index, index);
    }
    let mut samples = alloc::vec::Vec::with_capacity(rounds as usize);
    let mut report = |name: &str, run: &mut dyn FnMut() -> bool| {
        samples.clear();
        for _ in 0..rounds {
            let start = time::rdtsc();
            if !run() {
                println!("grant-bench: {name} failed");
                fail("bench step");
            }
            samples.push(time::rdtsc() - start);
        }
        let (median, minimum) = median_and_minimum(&mut samples);
        println!("bench: {name} median={median} min={minimum} iterations={rounds}");
    };
    report("grant_baseline_xen_version", &mut || {
        guest_kernel::abi::wrappers::xen_version_number() >= 0
    });
    report(
        "grant_map_unmap_page",
        &mut || match grant_table::map_grant_ref(
            SHARED_PAGES_ADDRESS + 0x2000,
            me,
            reference,
            false,
        ) {
            Ok(mapping) => mapping.unmap().is_ok(),
            Err(error) => {
                println!("grant-bench: map_grant_ref: {error}");
                false
            }
        },
    );
    report("grant_baseline_copy_4k_in_guest", &mut || {
        for index in 0..512 {
            granted.write_word(index, source.read_word(index));
        }
        true
    });
    report("grant_copy_4k", &mut || {
        grant_table::copy_to_grant(&source, me, reference, 0, 4096).is_ok()
    });
    if granted.read_word(511) != 511 {
        fail("the grant copy did not land");
    }
    if table.end_access(reference).is_err() {
        fail("the grant stayed in use after the benchmark");
    }
    println!("grant-bench: done");
    guest_kernel::shutdown(ShutdownReason::Poweroff)
}
