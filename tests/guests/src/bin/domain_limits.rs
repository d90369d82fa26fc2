//! domain-limits: a privileged guest that creates empty domains until the
//! hypervisor says no, booted as the initial domain by the
//! `domain_creation_beyond_the_scheduler_limit_is_refused` scenario.
//!
//! The credit scheduler of a CPU holds 64 vCPUs. A domain it cannot take
//! would never run, so `createdomain` must fail with `-ENOSPC` rather than
//! hand out a domain that exists but is never scheduled (as it did when the
//! scheduler's refusal was dropped). The refused creation must leave
//! nothing behind: once the domains are destroyed, as many fit again.
#![no_std]
#![no_main]

use guest_kernel::abi::domctl::{Domctl, DomctlOp};
use guest_kernel::abi::StartInfo;
use guest_kernel::println;
use test_guests::{check, domctl, expect_result, finish};

const ENOSPC: i64 = -28;
/// vCPUs one CPU's credit scheduler holds (`xen_like::sched::credit`), this
/// domain's included.
const SCHEDULER_LIMIT: usize = 64;
/// More than the limit, so that a missing refusal shows as a count.
const MOST_ATTEMPTS: usize = 2 * SCHEDULER_LIMIT;

/// Creates an empty domain allowed 16 pages; its ID or the error.
fn create() -> Result<u16, i64> {
    let mut request = Domctl::new(DomctlOp::CreateDomain, 0);
    request.u.create.max_pages = 16;
    match domctl(&mut request) {
        0 => Ok(request.domain),
        error => Err(error),
    }
}

fn destroy(id: u16) -> i64 {
    domctl(&mut Domctl::new(DomctlOp::DestroyDomain, id))
}

/// Creates domains until one is refused (or `MOST_ATTEMPTS` succeeded);
/// returns their IDs and the refusal (0 if none came).
fn create_until_refused() -> (heapless::Vec<u16, MOST_ATTEMPTS>, i64) {
    let mut created = heapless::Vec::new();
    while created.len() < MOST_ATTEMPTS {
        match create() {
            Ok(id) => {
                let _ = created.push(id);
            }
            Err(error) => return (created, error),
        }
    }
    (created, 0)
}

#[no_mangle]
fn guest_main(_start_info: &'static StartInfo) -> ! {
    println!("domain-limits: creating domains until the scheduler is full");
    for round in ["first", "second"] {
        let (created, refusal) = create_until_refused();
        check(
            "domains created beside this one until the scheduler was full",
            created.len() == SCHEDULER_LIMIT - 1,
            format_args!(
                "{round} round: {} created, {} expected",
                created.len(),
                SCHEDULER_LIMIT - 1
            ),
        );
        expect_result("createdomain beyond the scheduler's limit", refusal, ENOSPC);
        let destroyed = created.iter().filter(|&&id| destroy(id) == 0).count();
        check(
            "every created domain is destroyed",
            destroyed == created.len(),
            format_args!("{round} round: {destroyed} of {}", created.len()),
        );
    }
    finish()
}
