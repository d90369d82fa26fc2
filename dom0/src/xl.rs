//! What `xl` prints, laid out as Xen's `xl` lays it out.
//!
//! These functions only format: the shell gathers the facts with hypercalls
//! (the `sysctl` family) and hands them over, which keeps this part testable
//! on the host.

use core::fmt::{self, Write};
use hypercall_abi::sched::ShutdownReason;
use hypercall_abi::sysctl::{
    DomainInfo, SysctlPhysinfo, DOMINF_BLOCKED, DOMINF_DYING, DOMINF_PAUSED, DOMINF_RUNNING,
    DOMINF_SHUTDOWN, DOMINF_SHUTDOWN_MASK, DOMINF_SHUTDOWN_SHIFT,
};

/// A domain's name as `xl` shows it. Domain 0 is "Domain-0", as in Xen;
/// other domains will get their configured names from the config store.
pub fn domain_name(id: u16, out: &mut impl Write) -> fmt::Result {
    if id == 0 {
        out.write_str("Domain-0")
    } else {
        write!(out, "d{id}")
    }
}

/// Which domain an `xl` argument (`NAME|ID`) means, as Xen's xl reads it:
/// all digits is a domain ID (even when a domain had that name: names
/// cannot be all digits, see `config`), `Domain-0` is domain 0, anything
/// else is the name of a domain in `named` (ID and name of each domain the
/// toolstack knows). `exists` says whether an ID is a live domain. `None`
/// when no domain matches.
pub fn resolve_domain<'a>(
    wanted: &str,
    named: impl IntoIterator<Item = (u16, &'a str)>,
    exists: impl FnOnce(u16) -> bool,
) -> Option<u16> {
    if !wanted.is_empty() && wanted.bytes().all(|byte| byte.is_ascii_digit()) {
        return wanted.parse::<u16>().ok().filter(|&id| exists(id));
    }
    if wanted == crate::config::CONTROL_DOMAIN_NAME {
        return Some(0);
    }
    named
        .into_iter()
        .find(|&(_, name)| name == wanted)
        .map(|(id, _)| id)
}

/// A domain restarted (by `on_poweroff`, `on_reboot` or `on_crash` =
/// "restart") that stops again sooner than this after that restart is not
/// restarted again but destroyed: a guest that crashes as it boots would
/// otherwise loop for ever and flood the console. Xen's xend had the same
/// guard (`MINIMUM_RESTART_TIME`).
pub const MINIMUM_RESTART_INTERVAL_NS: u64 = 10_000_000_000;

/// Whether a domain that stopped at `now_ns` (system time) may be restarted:
/// always when it was started by `xl create` (`last_restart_ns` is `None`),
/// otherwise only when it ran at least [`MINIMUM_RESTART_INTERVAL_NS`] since
/// its last restart.
pub fn may_restart(last_restart_ns: Option<u64>, now_ns: u64) -> bool {
    last_restart_ns
        .is_none_or(|restarted| now_ns.saturating_sub(restarted) >= MINIMUM_RESTART_INTERVAL_NS)
}

/// The six state letters of `xl list`: running, blocked, paused, shutdown,
/// crashed, dying; a dash where the state does not hold.
pub fn state_letters(flags: u32) -> [u8; 6] {
    let shutdown = flags & DOMINF_SHUTDOWN != 0;
    let reason = (flags >> DOMINF_SHUTDOWN_SHIFT) & DOMINF_SHUTDOWN_MASK;
    let crashed = shutdown && reason == ShutdownReason::Crash.raw();
    let letter = |on: bool, letter: u8| if on { letter } else { b'-' };
    [
        letter(flags & DOMINF_RUNNING != 0, b'r'),
        letter(flags & DOMINF_BLOCKED != 0, b'b'),
        letter(flags & DOMINF_PAUSED != 0, b'p'),
        letter(shutdown && !crashed, b's'),
        letter(crashed, b'c'),
        letter(flags & DOMINF_DYING != 0, b'd'),
    ]
}

/// Prints the `xl list` header.
pub fn write_list_header(out: &mut impl Write) -> fmt::Result {
    writeln!(
        out,
        "{:<40} {:>5} {:>5} {:>5} {:>10} {:>9}",
        "Name", "ID", "Mem", "VCPUs", "State", "Time(s)"
    )
}

/// Prints one `xl list` row for a domain called `name`.
pub fn write_list_row(out: &mut impl Write, info: &DomainInfo, name: &str) -> fmt::Result {
    let memory_mib = (info.tot_pages * 4096) >> 20;
    let tenths = info.cpu_time / 100_000_000;
    let letters = state_letters(info.flags);
    let state = core::str::from_utf8(&letters).unwrap_or("??????");
    writeln!(
        out,
        "{:<40} {:>5} {:>5} {:>5} {:>10} {:>7}.{}",
        name,
        info.domid,
        memory_mib,
        info.nr_online_vcpus,
        state,
        tenths / 10,
        tenths % 10
    )
}

/// The facts `xl info` prints, gathered by the shell.
#[derive(Debug, Default)]
pub struct HostInfo<'a> {
    pub physinfo: SysctlPhysinfo,
    pub xen_major: u32,
    pub xen_minor: u32,
    pub xen_extra: &'a str,
    pub xen_caps: &'a str,
    pub xen_changeset: &'a str,
    pub virt_start: u64,
    pub pagesize: u64,
    /// The hypervisor's scheduler.
    pub scheduler: &'a str,
}

/// Prints `xl info`: `key : value` lines, memory in MiB, as Xen does.
pub fn write_info(out: &mut impl Write, info: &HostInfo) -> fmt::Result {
    let physinfo = &info.physinfo;
    let mib = |pages: u64| (pages * 4096) >> 20;
    let mut line = |key: &str, value: fmt::Arguments| writeln!(out, "{key:<23}: {value}");
    line("host", format_args!("xen-like"))?;
    line("machine", format_args!("x86_64"))?;
    line("nr_cpus", format_args!("{}", physinfo.nr_cpus))?;
    line(
        "max_cpu_id",
        format_args!("{}", physinfo.nr_cpus.saturating_sub(1)),
    )?;
    line("nr_nodes", format_args!("1"))?;
    line(
        "cpu_mhz",
        format_args!("{}.{:03}", physinfo.cpu_khz / 1000, physinfo.cpu_khz % 1000),
    )?;
    line("virt_caps", format_args!("pv"))?;
    line(
        "total_memory",
        format_args!("{}", mib(physinfo.total_pages)),
    )?;
    line("free_memory", format_args!("{}", mib(physinfo.free_pages)))?;
    // The hypervisor's heap (in KiB): what grant tables and maptracks may
    // still take is the free part above the reserve.
    let kib = |bytes: u64| bytes >> 10;
    line(
        "xen_heap_total",
        format_args!("{}", kib(physinfo.heap_bytes)),
    )?;
    line(
        "xen_heap_free",
        format_args!("{}", kib(physinfo.heap_free_bytes)),
    )?;
    line(
        "xen_heap_reserve",
        format_args!("{}", kib(physinfo.heap_reserve_bytes)),
    )?;
    line("nr_domains", format_args!("{}", physinfo.nr_domains))?;
    line("xen_major", format_args!("{}", info.xen_major))?;
    line("xen_minor", format_args!("{}", info.xen_minor))?;
    line("xen_extra", format_args!("{}", info.xen_extra))?;
    line(
        "xen_version",
        format_args!("{}.{}{}", info.xen_major, info.xen_minor, info.xen_extra),
    )?;
    line("xen_caps", format_args!("{}", info.xen_caps))?;
    line("xen_scheduler", format_args!("{}", info.scheduler))?;
    line("xen_pagesize", format_args!("{}", info.pagesize))?;
    line(
        "platform_params",
        format_args!("virt_start={:#x}", info.virt_start),
    )?;
    line("xen_changeset", format_args!("{}", info.xen_changeset))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypercall_abi::sysctl::DOMINF_PRIVILEGED;

    fn dom0(cpu_time: u64) -> DomainInfo {
        DomainInfo {
            domid: 0,
            flags: DOMINF_RUNNING | DOMINF_PRIVILEGED,
            tot_pages: 16384,
            max_pages: 16384,
            cpu_time,
            nr_online_vcpus: 1,
            ..DomainInfo::default()
        }
    }

    #[test]
    fn list_matches_xens_columns() {
        let mut out = String::new();
        write_list_header(&mut out).unwrap();
        write_list_row(&mut out, &dom0(12_345_000_000), "Domain-0").unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "Name                                        ID   Mem VCPUs      State   Time(s)"
        );
        assert_eq!(
            lines[1],
            "Domain-0                                     0    64     1     r-----      12.3"
        );
    }

    #[test]
    fn state_letters_follow_xen() {
        assert_eq!(&state_letters(DOMINF_RUNNING), b"r-----");
        assert_eq!(&state_letters(DOMINF_BLOCKED | DOMINF_PAUSED), b"-bp---");
        let crashed = DOMINF_SHUTDOWN | (ShutdownReason::Crash.raw() << DOMINF_SHUTDOWN_SHIFT);
        assert_eq!(&state_letters(crashed), b"----c-");
        let off = DOMINF_SHUTDOWN | (ShutdownReason::Poweroff.raw() << DOMINF_SHUTDOWN_SHIFT);
        assert_eq!(&state_letters(off | DOMINF_DYING), b"---s-d");
    }

    #[test]
    fn info_prints_memory_in_mib() {
        let mut out = String::new();
        let info = HostInfo {
            physinfo: SysctlPhysinfo {
                nr_cpus: 1,
                cpu_khz: 2_606_103,
                total_pages: 130_000,
                free_pages: 100_000,
                max_domains: 64,
                nr_domains: 1,
                heap_bytes: 8 << 20,
                heap_free_bytes: 5 << 20,
                heap_reserve_bytes: 3 << 20,
            },
            xen_major: 4,
            xen_minor: 17,
            xen_extra: "-xenlike-0.1.0",
            xen_caps: "xen-3.0-x86_64",
            xen_changeset: "xen-like",
            virt_start: 0xffff_8000_0000_0000,
            pagesize: 4096,
            scheduler: "round-robin",
        };
        write_info(&mut out, &info).unwrap();
        assert!(
            out.contains("xen_version            : 4.17-xenlike-0.1.0\n"),
            "{out}"
        );
        assert!(out.contains("total_memory           : 507\n"), "{out}");
        assert!(out.contains("free_memory            : 390\n"), "{out}");
        assert!(out.contains("xen_heap_total         : 8192\n"), "{out}");
        assert!(out.contains("xen_heap_free          : 5120\n"), "{out}");
        assert!(out.contains("xen_heap_reserve       : 3072\n"), "{out}");
        assert!(out.contains("cpu_mhz                : 2606.103\n"), "{out}");
        assert!(out.contains("platform_params        : virt_start=0xffff800000000000\n"));
    }

    #[test]
    fn an_all_digit_argument_is_an_id_and_anything_else_a_name() {
        let named = [(2, "3"), (3, "web"), (4, "Domain-0")];
        let live = |id: u16| [0, 2, 3, 4].contains(&id);
        // Xen's rule: digits are an ID, whatever the domains are called.
        assert_eq!(resolve_domain("3", named, live), Some(3));
        assert_eq!(resolve_domain("0", named, live), Some(0));
        assert_eq!(resolve_domain("7", named, live), None);
        assert_eq!(resolve_domain("70000", named, live), None);
        assert_eq!(resolve_domain("web", named, live), Some(3));
        // Domain-0 is always Dom0, even if a domain claimed the name.
        assert_eq!(resolve_domain("Domain-0", named, live), Some(0));
        assert_eq!(resolve_domain("db", named, live), None);
        assert_eq!(resolve_domain("", named, live), None);
    }

    #[test]
    fn a_domain_that_stops_soon_after_a_restart_is_not_restarted_again() {
        let second = 1_000_000_000;
        // The first restart is always allowed.
        assert!(may_restart(None, 5 * second));
        // Restarted at 5 s: stopping again at 14.9 s is too soon, at 15 s not.
        assert!(!may_restart(Some(5 * second), 14 * second + 900_000_000));
        assert!(may_restart(Some(5 * second), 15 * second));
        // A clock that seems to go back counts as too soon.
        assert!(!may_restart(Some(5 * second), second));
    }

    #[test]
    fn other_domains_are_named_by_id_until_names_exist() {
        let mut name = String::new();
        domain_name(7, &mut name).unwrap();
        assert_eq!(name, "d7");
    }
}
