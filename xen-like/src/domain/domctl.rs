//! `domctl`: the control domain's operations on other domains (create,
//! destroy, pause, unpause, describe, limit memory, set the initial vCPU
//! context, ask for a shutdown). Project-defined, see
//! `hypercall_abi::domctl`. Only a privileged domain may call it.

use crate::arch::x86_64::frame::GuestFrame;
use crate::arch::x86_64::percpu::this_cpu;
use crate::console::{caller_log, GUEST};
use crate::domain::max_memory;
use crate::domain::{self, Domain, DomainState, Zombie};
use crate::domain::{caller, require_privileged};
use crate::mm::pagewalk::is_canonical;
use crate::mm::{frame_table, frames, guest_access, tlb};
use crate::sched::continuation::Outcome;
use crate::sched::credit::Params;
use hypercall_abi::domctl::{Domctl, DomctlOp, SCHEDULER_GET, SCHEDULER_PUT};
use hypercall_abi::sched::ShutdownReason;
use hypercall_abi::sysctl::{
    DomainInfo, DOMINF_BLOCKED, DOMINF_DYING, DOMINF_PAUSED, DOMINF_PRIVILEGED, DOMINF_RUNNING,
    DOMINF_SHUTDOWN, DOMINF_SHUTDOWN_SHIFT,
};
use hypercall_abi::XenError;

/// Refuses a maximum memory of zero or beyond the machine's (see
/// `crate::domain::max_memory`), naming the value in the log.
fn check_max_pages(operation: &str, pages: u64) -> Result<(), XenError> {
    max_memory::check_max_pages(pages, frames::total_count()).map_err(|refusal| {
        log::warn!(
            target: crate::console::GUEST,
            "d{}: domctl {operation} with a maximum of {pages} pages ({} MiB) refused: {}",
            caller(),
            pages >> 8,
            refusal.reason()
        );
        XenError::EINVAL
    })
}

/// `domctl(op)`, with the work `budget` left to this hypercall: only
/// `destroydomain` uses it, and when it runs out the domctl becomes a
/// continuation (the same call, made again, goes on with the destruction;
/// Xen's `-ERESTART` from `domain_kill`).
pub fn domctl(address: u64, budget: &mut u64) -> Outcome {
    match perform(address, budget) {
        Err(XenError::ERESTART) => Outcome::Continue(heapless::Vec::from_iter([address])),
        result => Outcome::Done(result),
    }
}

/// Reads the request, performs it, writes the answer back.
fn perform(address: u64, budget: &mut u64) -> Result<u64, XenError> {
    require_privileged()?;
    // Read writable: a domain created for a request whose answer cannot
    // be written back would be a domain nobody knows about.
    let mut request: Domctl = guest_access::read_for_update(address)?;
    let operation = request.validate().inspect_err(|error| {
        caller_log!(Warn, "domctl {} refused: {}", request.cmd, error.name());
    })?;
    let target = request.domain;
    match operation {
        DomctlOp::CreateDomain => {
            let create = request.create();
            check_max_pages("createdomain", create.max_pages)?;
            let max_grant_frames = crate::grant::grant_frame_limit(create.max_grant_frames)?;
            let id = domain::create(create.max_pages)?;
            // Before the domain can run: nothing has grown its table yet.
            domain::with(id, |domain| domain.grants.max_frames = max_grant_frames);
            request.domain = id;
        }
        DomctlOp::DestroyDomain => {
            if target == caller() {
                return Err(XenError::EINVAL);
            }
            domain::destroy(target, budget)?;
        }
        DomctlOp::PauseDomain => {
            if target == caller() {
                return Err(XenError::EINVAL); // a domain cannot pause itself
            }
            domain::with(target, |domain| {
                // As Xen: pauses nest, up to a limit, so that a toolstack
                // repeating the call cannot overflow the count.
                if domain.pause_count >= MAX_PAUSE_NESTING {
                    log::debug!(target: GUEST, "d{}: pause of d{target} refused: already paused {MAX_PAUSE_NESTING} times", caller());
                    return Err(XenError::EOVERFLOW);
                }
                domain.pause_count += 1;
                Ok(())
            })
            .ok_or(XenError::ESRCH)??;
        }
        DomctlOp::UnpauseDomain => {
            domain::with(target, |domain| {
                if !domain.vcpu.initialised {
                    log::debug!(target: GUEST, "d{}: unpause of d{target} refused: it has no context yet", caller());
                    return Err(XenError::EINVAL); // nothing to run yet
                }
                if domain.pause_count == 0 {
                    log::debug!(target: GUEST, "d{}: unpause of d{target} refused: it is not paused", caller());
                    return Err(XenError::EINVAL);
                }
                domain.pause_count -= 1;
                Ok(())
            })
            .ok_or(XenError::ESRCH)??;
        }
        DomctlOp::GetDomainInfo => {
            // Zombies too: the toolstack asks how much they still hold.
            request.u.info = domain::with(target, |domain| describe(domain))
                .or_else(|| domain::with_zombie(target, describe_zombie))
                .ok_or(XenError::ESRCH)?;
        }
        DomctlOp::MaxMem => {
            let pages = request.max_mem().max_memkb / 4;
            check_max_pages("max_mem", pages)?;
            domain::with(target, |domain| domain.max_pages = pages).ok_or(XenError::ESRCH)?;
        }
        DomctlOp::SetVcpuContext => set_vcpu_context(&request)?,
        DomctlOp::SchedulerOp => {
            let mut payload = request.scheduler();
            domain::with(target, |_| ()).ok_or(XenError::ESRCH)?;
            match payload.command {
                SCHEDULER_GET => {
                    let params = crate::sched::params(target).ok_or(XenError::ESRCH)?;
                    payload.weight = params.weight;
                    payload.cap = params.cap;
                }
                SCHEDULER_PUT => {
                    let params = Params {
                        weight: payload.weight,
                        cap: payload.cap,
                    };
                    crate::sched::set_params(target, params).map_err(|error| {
                        caller_log!(
                            Debug,
                            "scheduler parameters for d{target} refused: {}",
                            error.description()
                        );
                        error.errno()
                    })?;
                }
                _ => return Err(XenError::EINVAL),
            }
            request.u.scheduler = payload;
        }
    }
    guest_access::write_to_guest(address, &request)?;
    Ok(0)
}

/// The most times a domain may be paused without being unpaused (Xen's
/// limit on `controller_pause_count`).
pub const MAX_PAUSE_NESTING: u32 = 255;

/// Validates the new domain's page tables (built by Dom0 as plain data)
/// from the given root, pins the root and makes it the kernel's base, and
/// records the registers the vCPU starts with.
fn set_vcpu_context(request: &Domctl) -> Result<(), XenError> {
    let target = request.domain;
    let context = request.context();
    if !is_canonical(context.rip) || !is_canonical(context.rsp) {
        return Err(XenError::EINVAL);
    }
    domain::with(target, |domain| {
        if domain.vcpu.initialised || target == caller() {
            return Err(XenError::EEXIST);
        }
        // Dom0 wrote the tables through foreign mappings; no stale
        // writable translation of them may survive their validation.
        tlb::flush_if_stale();
        let root = context.kernel_root;
        frame_table::with(|table, memory| {
            table.pin(memory, root, 4, target)?;
            if let Err(refusal) = table.switch_base(memory, root, None, target) {
                let _ = table.unpin(memory, root, target);
                return Err(refusal);
            }
            Ok(())
        })
        .map_err(|refusal| {
            // Inside `domain::with`, so not `caller_log!`; the caller is
            // privileged (never rate-limited) anyway.
            log::warn!(target: crate::console::GUEST, "d{}: domain {target}'s initial page tables refused: {}", caller(), refusal.reason);
            refusal.error
        })?;
        domain.kernel_root = root;
        let mut saved = GuestFrame::new_guest(context.rip, context.rsp);
        saved.rsi = context.rsi;
        domain.vcpu.saved = saved;
        domain.vcpu.initialised = true;
        Ok(())
    })
    .ok_or(XenError::ESRCH)?
}

/// A zombie's record for `xl list`: dying (`d`), with the frames it still
/// holds as its pages.
pub fn describe_zombie(zombie: &Zombie) -> DomainInfo {
    DomainInfo {
        domid: zombie.id,
        flags: DOMINF_DYING,
        tot_pages: zombie.pages(),
        max_pages: zombie.max_pages,
        cpu_time: crate::time::cycles_to_ns(zombie.cpu_cycles),
        nr_online_vcpus: 1,
        max_vcpu_id: 0,
        ..DomainInfo::default()
    }
}

/// A domain's record for `xl list` (Xen's `xen_domctl_getdomaininfo`).
pub fn describe(domain: &Domain) -> DomainInfo {
    let running = this_cpu().current_domain() == Some(domain.id);
    let mut flags = 0;
    match domain.state {
        DomainState::Running if running => flags |= DOMINF_RUNNING,
        DomainState::Running => {}
        DomainState::Shutdown(reason) => {
            flags |= DOMINF_SHUTDOWN | (reason.raw() << DOMINF_SHUTDOWN_SHIFT);
        }
        DomainState::Crashed => {
            flags |= DOMINF_SHUTDOWN | (ShutdownReason::Crash.raw() << DOMINF_SHUTDOWN_SHIFT);
        }
    }
    if domain.pause_count > 0 {
        flags |= DOMINF_PAUSED;
    }
    if domain.blocked {
        flags |= DOMINF_BLOCKED;
    }
    if domain.privileged {
        flags |= DOMINF_PRIVILEGED;
    }
    DomainInfo {
        domid: domain.id,
        flags,
        tot_pages: domain.total_pages(),
        max_pages: domain.max_pages,
        shared_info_frame: domain.shared_info.mfn(),
        cpu_time: crate::time::cycles_to_ns(domain::cpu_cycles(domain)),
        nr_online_vcpus: 1,
        max_vcpu_id: 0,
        ..DomainInfo::default()
    }
}
