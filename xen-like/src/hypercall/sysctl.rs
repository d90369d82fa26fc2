//! `sysctl`: system-wide control operations for the control domain.
//!
//! Xen's sysctl interface is internal to Xen and its tools; ours is defined
//! by this project in `hypercall_abi::sysctl` (with Xen's numbers where Xen
//! has the same operation) and versioned there.

use crate::arch::x86_64::{cpu, percpu::this_cpu};
use crate::console::{self, caller_log};
use crate::domain;
use crate::domain::require_privileged;
use crate::mm::{frames, guest_access};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use hypercall_abi::sysctl::{DomainInfo, Sysctl, SysctlOp};
use hypercall_abi::XenError;

/// `sysctl(op)`: read the request, perform it, write the answer back.
pub fn sysctl(address: u64) -> Result<u64, XenError> {
    require_privileged()?;
    let mut request: Sysctl = guest_access::read_for_update(address)?;
    let operation = request.validate().inspect_err(|error| {
        caller_log!(Warn, "sysctl {} refused: {}", request.cmd, error.name());
    })?;
    match operation {
        SysctlOp::Readconsole => read_console(&mut request)?,
        SysctlOp::Physinfo => {
            let info = request.physinfo_payload_mut();
            info.nr_cpus = 1;
            info.cpu_khz = (crate::time::tsc_hz() / 1000) as u32;
            info.total_pages = frames::total_count();
            info.free_pages = frames::free_count();
            info.max_domains = domain::MAX_DOMAINS as u32;
            let mut count = 0;
            domain::for_each(|_| count += 1);
            domain::for_each_zombie(|_| count += 1);
            info.nr_domains = count;
            info.heap_bytes = crate::mm::heap::size();
            info.heap_free_bytes = crate::mm::heap::free_bytes() as u64;
            let reserve = crate::mm::heap::budget().reserve;
            info.heap_reserve_bytes = reserve.min(crate::mm::heap::size() as usize) as u64;
        }
        SysctlOp::Getdomaininfolist => domain_info_list(&mut request)?,
        SysctlOp::BenchNative => {
            let iterations = request.bench_native_payload().iterations;
            let (pte, cr3) = crate::mm::native_bench::native(iterations)?;
            let payload = request.bench_native_payload_mut();
            (payload.pte_write_cycles, payload.pte_write_min) = pte;
            (payload.cr3_write_cycles, payload.cr3_write_min) = cr3;
        }
        SysctlOp::LongestHypercall => {
            let cpu = this_cpu();
            let number = cpu.longest_hypercall_number.load(Ordering::Relaxed);
            let cycles = if request.longest_hypercall_payload().reset != 0 {
                cpu.longest_hypercall.swap(0, Ordering::Relaxed)
            } else {
                cpu.longest_hypercall.load(Ordering::Relaxed)
            };
            let payload = request.longest_hypercall_payload_mut();
            payload.cycles = cycles;
            payload.hypercall = number as u32;
        }
        SysctlOp::BenchSyscallFloor => {
            let on = request.bench_syscall_floor_payload().enable != 0;
            this_cpu().syscall_floor_mode.store(on, Ordering::Relaxed);
            cpu::set_syscall_floor_mode(on);
        }
    }
    guest_access::write_to_guest(address, &request)?;
    Ok(0)
}

/// Copies the log ring to the caller's buffer.
fn read_console(request: &mut Sysctl) -> Result<(), XenError> {
    let payload = request.readconsole_payload_mut();
    guest_access::check_range(payload.buffer, u64::from(payload.count))?;
    // The index is the low 32 bits of the ring's byte counter.
    let end = console::read_log(u64::MAX, &mut []).next;
    let mut from = if payload.incremental != 0 {
        let candidate = (end & !0xffff_ffff) | u64::from(payload.index);
        if candidate > end {
            candidate.saturating_sub(1 << 32)
        } else {
            candidate
        }
    } else {
        console::log_oldest()
    };
    let mut copied = 0u64;
    let mut chunk = [0u8; 512];
    while copied < u64::from(payload.count) {
        let wanted = (u64::from(payload.count) - copied).min(chunk.len() as u64) as usize;
        let read = console::read_log(from, &mut chunk[..wanted]);
        if read.copied == 0 {
            break;
        }
        guest_access::copy_to_guest(payload.buffer + copied, &chunk[..read.copied])?;
        copied += read.copied as u64;
        from = read.next;
    }
    payload.count = copied as u32;
    payload.index = from as u32;
    if payload.clear != 0 {
        // Only what this call copied: Xen empties the whole ring, which
        // loses any line logged between a reader's last read and its clear.
        console::clear_log_before(from);
    }
    Ok(())
}

/// Describes the domains from `first_domain` on, in ID order, live and
/// dying (zombies, see `domain`) alike.
fn domain_info_list(request: &mut Sysctl) -> Result<(), XenError> {
    let payload = request.getdomaininfolist_payload_mut();
    let first = payload.first_domain;
    // At most MAX_DOMAINS records (live and dying alike), reserved at once
    // and fallibly, so that the pushes below never allocate.
    let mut infos: Vec<DomainInfo> = Vec::new();
    if infos.try_reserve_exact(domain::MAX_DOMAINS).is_err() {
        caller_log!(Warn, "getdomaininfolist: no heap for the list: -ENOMEM");
        return Err(XenError::ENOMEM);
    }
    domain::for_each(|domain| {
        if domain.id >= first && infos.len() < infos.capacity() {
            infos.push(crate::domain::domctl::describe(domain));
        }
    });
    domain::for_each_zombie(|zombie| {
        if zombie.id >= first && infos.len() < infos.capacity() {
            infos.push(crate::domain::domctl::describe_zombie(zombie));
        }
    });
    infos.sort_unstable_by_key(|info| info.domid);
    infos.truncate(payload.max_domains as usize);
    for (index, info) in infos.iter().enumerate() {
        let slot = payload.buffer + (index * core::mem::size_of::<DomainInfo>()) as u64;
        guest_access::write_to_guest(slot, info)?;
    }
    payload.num_domains = infos.len() as u32;
    Ok(())
}
