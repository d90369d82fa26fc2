//! Which domain a hypercall's `domid` argument names: Xen's one rule for `DOMID_SELF` and privilege.
//!
//! Many hypercalls name a domain: the event channel whose port they open,
//! the memory whose reservation they read, the frames a page-table update
//! may map. A domain may always name itself, by `DOMID_SELF` or by its own
//! ID; naming another is a privilege (Dom0 building or watching a guest).
//! Xen answers these requests in the same order everywhere, and so do we,
//! through [`resolve`] (and its glue, `domain::resolve_target`):
//!
//! 1. `DOMID_SELF`, or the caller's own ID: the caller.
//! 2. Any other ID from an unprivileged caller: `-EPERM` (before looking
//!    it up, so that an unprivileged domain cannot probe which IDs exist).
//! 3. An ID no live domain has (a free one, a zombie's, or a reserved ID
//!    such as `DOMID_IO`): `-ESRCH`.
//!
//! The reserved IDs `DOMID_IO` and `DOMID_XEN` name no domain here; an
//! operation that gives them a meaning (Xen's foreign I/O mappings, say)
//! must recognise them itself before resolving. None does yet.
//!
//! The *other end* of an event channel is a different question: any domain
//! may offer a port to, or connect to, any other (the other end must agree),
//! so only `DOMID_SELF` is translated there ([`peer`]).

use hypercall_abi::layout::DOMID_SELF;
use hypercall_abi::XenError;

/// A domain's identifier (Dom0 is 0).
type DomainId = u16;

/// The domain that `named` designates for `caller` (see the module
/// comment for the rules and their order). `caller_privileged` and
/// `exists` are asked only when the answer depends on them, so that the
/// common case (a domain naming itself) takes no lock.
///
/// # Errors
/// * `EPERM` if `named` is another domain and the caller is not privileged;
/// * `ESRCH` if `named` is no live domain.
pub fn resolve(
    caller: DomainId,
    named: DomainId,
    caller_privileged: impl FnOnce() -> bool,
    exists: impl FnOnce(DomainId) -> bool,
) -> Result<DomainId, XenError> {
    if named == DOMID_SELF || named == caller {
        return Ok(caller);
    }
    if !caller_privileged() {
        return Err(XenError::EPERM);
    }
    if !exists(named) {
        return Err(XenError::ESRCH);
    }
    Ok(named)
}

/// The domain at the other end of an event channel, as `caller` names it:
/// `DOMID_SELF` is the caller, any other ID is taken as it is (the channel
/// operation checks that it exists and agrees).
pub fn peer(caller: DomainId, named: DomainId) -> DomainId {
    if named == DOMID_SELF {
        caller
    } else {
        named
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypercall_abi::layout::DOMID_IO;

    const CALLER: DomainId = 3;

    /// `resolve` for a caller of the given privilege, in a machine where
    /// domains 0, 3 and 5 exist.
    fn resolve_as(privileged: bool, named: DomainId) -> Result<DomainId, XenError> {
        resolve(CALLER, named, || privileged, |id| [0, 3, 5].contains(&id))
    }

    #[test]
    fn a_domain_names_itself_by_domid_self_or_by_its_id() {
        for privileged in [false, true] {
            assert_eq!(resolve_as(privileged, DOMID_SELF), Ok(CALLER));
            assert_eq!(resolve_as(privileged, CALLER), Ok(CALLER));
        }
    }

    #[test]
    fn naming_itself_asks_neither_privilege_nor_existence() {
        let answer = resolve(
            CALLER,
            DOMID_SELF,
            || panic!("privilege asked"),
            |_| panic!("existence asked"),
        );
        assert_eq!(answer, Ok(CALLER));
    }

    #[test]
    fn an_unprivileged_caller_may_not_name_another_domain() {
        assert_eq!(resolve_as(false, 5), Err(XenError::EPERM));
        assert_eq!(resolve_as(false, 0), Err(XenError::EPERM));
    }

    #[test]
    fn eperm_comes_before_esrch() {
        // An unprivileged domain learns nothing about which IDs exist.
        assert_eq!(resolve_as(false, 9), Err(XenError::EPERM));
    }

    #[test]
    fn a_privileged_caller_names_any_live_domain() {
        assert_eq!(resolve_as(true, 5), Ok(5));
        assert_eq!(resolve_as(true, 0), Ok(0));
    }

    #[test]
    fn a_missing_or_reserved_domain_is_esrch() {
        assert_eq!(resolve_as(true, 9), Err(XenError::ESRCH));
        assert_eq!(resolve_as(true, DOMID_IO), Err(XenError::ESRCH));
    }

    #[test]
    fn the_other_end_of_a_channel_is_translated_only_for_domid_self() {
        assert_eq!(peer(CALLER, DOMID_SELF), CALLER);
        assert_eq!(peer(CALLER, 5), 5);
        assert_eq!(peer(CALLER, CALLER), CALLER);
    }
}
