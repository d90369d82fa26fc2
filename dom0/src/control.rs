//! The control hypercalls (`sysctl`, `domctl`) as the toolstack uses them,
//! and turning their error numbers into sentences. The hypercalls
//! themselves are `sys::control`'s.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use guest_kernel::abi::domctl::{Domctl, DomctlOp};
use guest_kernel::abi::sysctl::DomainInfo;
use guest_kernel::abi::XenError;
use guest_kernel::println;

pub use crate::sys::control::{domctl, sysctl};

/// Says what a failed hypercall means, in words.
pub fn explain(what: &str, result: i64) {
    match XenError::from_return(result) {
        Some(error) => println!("{what} failed: {} ({})", error.description(), error.name()),
        None => println!("{what} failed with {result}"),
    }
}

/// The records of the first 64 domains.
pub fn domain_infos() -> Result<Vec<DomainInfo>, i64> {
    let mut infos = alloc::vec![DomainInfo::default(); 64];
    let filled = crate::sys::control::domain_infos(&mut infos)?;
    infos.truncate(filled);
    Ok(infos)
}

/// A domctl with no payload on `domain`.
pub fn simple_domctl(operation: DomctlOp, domain: u16) -> Result<(), i64> {
    domctl(&mut Domctl::new(operation, domain))
}

/// The words for a raw hypercall result.
pub fn error_name(result: i64) -> &'static str {
    XenError::from_return(result).map_or("unknown error", XenError::description)
}
