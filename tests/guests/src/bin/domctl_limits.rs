//! domctl-limits: the control domain asks for domains with nonsense memory
//! limits, booted as the initial domain (domctl is the control domain's
//! alone) by the `domctl_refuses_nonsense_memory_limits` scenario. Zero
//! pages and more pages than the machine has must be refused with
//! `-EINVAL`; a sensible limit must still work.
#![no_std]
#![no_main]

use guest_kernel::abi::domctl::{Domctl, DomctlOp};
use guest_kernel::abi::StartInfo;
use guest_kernel::println;
use test_guests::{check, domctl, expect_result, finish};

const EINVAL: i64 = -22;

fn create(max_pages: u64) -> (i64, u16) {
    let mut request = Domctl::new(DomctlOp::CreateDomain, 0);
    request.u.create.max_pages = max_pages;
    (domctl(&mut request), request.domain)
}

fn max_mem(domain: u16, max_memkb: u64) -> i64 {
    let mut request = Domctl::new(DomctlOp::MaxMem, domain);
    request.u.max_mem.max_memkb = max_memkb;
    domctl(&mut request)
}

#[no_mangle]
fn guest_main(_start_info: &'static StartInfo) -> ! {
    println!("domctl-limits: asking for nonsense memory limits");
    expect_result("createdomain of 2^64-1 pages", create(u64::MAX).0, EINVAL);
    expect_result("createdomain of 0 pages", create(0).0, EINVAL);
    expect_result("createdomain of 2^40 pages", create(1 << 40).0, EINVAL);
    let (result, domain) = create(8 << 8);
    expect_result("createdomain of 8 MiB", result, 0);
    check(
        "the new domain has an ID",
        domain != 0,
        format_args!("domain {domain}"),
    );
    expect_result("max_mem of 2^64-1 KiB", max_mem(domain, u64::MAX), EINVAL);
    expect_result("max_mem of 0 KiB", max_mem(domain, 0), EINVAL);
    expect_result("max_mem of 16 MiB", max_mem(domain, 16 << 10), 0);
    let mut destroy = Domctl::new(DomctlOp::DestroyDomain, domain);
    expect_result("destroydomain", domctl(&mut destroy), 0);
    finish()
}
