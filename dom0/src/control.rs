//! Thin wrappers around the control hypercalls (`sysctl`, `domctl`,
//! foreign `memory_op`), and turning their error numbers into sentences.

use alloc::vec::Vec;
use guest_kernel::abi::domctl::{Domctl, DomctlOp};
use guest_kernel::abi::hypercall::Hypercall;
use guest_kernel::abi::sysctl::{DomainInfo, Sysctl, SysctlGetdomaininfolist};
use guest_kernel::abi::{wrappers, XenError};
use guest_kernel::println;

/// Says what a failed hypercall means, in words.
pub fn explain(what: &str, result: i64) {
    match XenError::from_return(result) {
        Some(error) => println!("{what} failed: {} ({})", error.description(), error.name()),
        None => println!("{what} failed with {result}"),
    }
}

/// Makes a sysctl; `Err` holds the raw (negative) result.
pub fn sysctl(request: &mut Sysctl) -> Result<(), i64> {
    // SAFETY: the request and any buffer it names are Dom0's own memory,
    // valid for the whole call.
    match unsafe { wrappers::sysctl(request) } {
        0 => Ok(()),
        error => Err(error),
    }
}

pub fn domain_infos() -> Result<Vec<DomainInfo>, i64> {
    let mut infos = alloc::vec![DomainInfo::default(); 64];
    let mut request = Sysctl::getdomaininfolist(SysctlGetdomaininfolist {
        first_domain: 0,
        max_domains: infos.len() as u32,
        buffer: infos.as_mut_ptr() as u64,
        ..Default::default()
    });
    sysctl(&mut request)?;
    infos.truncate(request.getdomaininfolist_payload().num_domains as usize);
    Ok(infos)
}

/// Makes a domctl; `Err` holds the raw (negative) result.
pub fn domctl(request: &mut Domctl) -> Result<(), i64> {
    // SAFETY: the request is Dom0's own memory, valid for the whole call.
    match unsafe { wrappers::hypercall1(Hypercall::Domctl, request as *mut Domctl as u64) } {
        0 => Ok(()),
        error => Err(error),
    }
}

/// A domctl with no payload on `domain`.
pub fn simple_domctl(operation: DomctlOp, domain: u16) -> Result<(), i64> {
    domctl(&mut Domctl::new(operation, domain))
}

/// The words for a raw hypercall result.
pub fn error_name(result: i64) -> &'static str {
    XenError::from_return(result).map_or("unknown error", XenError::description)
}
