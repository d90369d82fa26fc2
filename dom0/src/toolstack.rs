//! The toolstack behind `xl`: domain names, creating from configuration
//! files, the lifecycle commands, and acting on domains that shut down or
//! crash (`on_poweroff`, `on_reboot`, `on_crash`).
//!
//! Xen keeps domain names in XenStore, and so does this toolstack: `xl
//! create` writes `/local/domain/N/name`, `xl destroy` removes it, and
//! every command that names a domain (`xl list`, the `NAME|ID` arguments,
//! the check that a new name is free) reads it there. The records here
//! keep what the store does not: each domain's configuration, to act on
//! its shutdown and to restart it, and a zombie's name for `xl list`.
//!
//! A destroyed domain whose frames another domain still maps stays a
//! *zombie* (dying, `d` in `xl list`) until they are released: its record
//! here is kept for its name, marked dying, but the name is free at once
//! (a new domain may be called the same; it gets another ID, since the
//! hypervisor does not reuse a zombie's ID), and the record goes when the
//! hypervisor says the zombie is gone.
#![forbid(unsafe_code)]

use crate::areas::HELD_FRAMES;
use crate::builder;
use crate::consoles;
use crate::control::{self, domain_infos, explain, simple_domctl};
use crate::files;
use crate::xenstored;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use dom0::config::{self, Action, DomainConfig};
use dom0::xl;
use guest_kernel::abi::domctl::{Domctl, DomctlOp};
use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::abi::sysctl::{
    DomainInfo, Sysctl, DOMINF_DYING, DOMINF_PAUSED, DOMINF_SHUTDOWN, DOMINF_SHUTDOWN_MASK,
    DOMINF_SHUTDOWN_SHIFT,
};
use guest_kernel::console::ConsoleWriter;
use guest_kernel::paging::{self, NO_EXECUTE, PAGE_SIZE, PRESENT, USER};
use guest_kernel::{println, time};
use spin::Mutex;

/// A domain this toolstack created.
struct Record {
    id: u16,
    config: DomainConfig,
    /// The text it was built from (file plus overrides), to restart it.
    text: String,
    /// Whether its shutdown was already acted upon (`preserve`).
    handled: bool,
    /// Whether it was destroyed and is a zombie now: its name stays for
    /// `xl list`, but names and commands no longer find it by name.
    dying: bool,
    /// When (system time) the toolstack last restarted it; `None` when
    /// `xl create` started it.
    restarted_at: Option<u64>,
}

static RECORDS: Mutex<Vec<Record>> = Mutex::new(Vec::new());

/// The name `xl` shows for domain `id`: its `/local/domain/<id>/name` in
/// the store, where `xl create` wrote it (the store is the truth, as in
/// Xen); for a zombie, whose keys went when it was destroyed, the name
/// this toolstack gave it; `Domain-0` or `dN` otherwise.
pub fn name_of(id: u16) -> heapless::String<40> {
    let mut name = heapless::String::new();
    if let Some(stored) = xenstored::domain_name(id) {
        for character in stored.chars() {
            if name.push(character).is_err() {
                break;
            }
        }
        return name;
    }
    match RECORDS.lock().iter().find(|record| record.id == id) {
        Some(record) => {
            let _ = name.push_str(&record.config.name);
        }
        None => {
            let _ = xl::domain_name(id, &mut name);
        }
    }
    name
}

/// Every live domain with a name in the store (`/local/domain/<id>/name`):
/// a zombie's keys went when it was destroyed, so names find only the
/// living, and a zombie's name is free at once.
fn named_domains() -> Vec<(u16, String)> {
    domain_infos()
        .map(|infos| {
            infos
                .iter()
                .filter(|info| info.flags & DOMINF_DYING == 0)
                .filter_map(|info| Some((info.domid, xenstored::domain_name(info.domid)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Finds a domain by name or ID (an all-digit argument is an ID, as in
/// Xen's xl); on failure prints why and returns `Err`.
fn resolve(command: &str, wanted: &str) -> Result<u16, ()> {
    let named = named_domains();
    let found = xl::resolve_domain(
        wanted,
        named.iter().map(|(id, name)| (*id, name.as_str())),
        |id| domain_infos().is_ok_and(|infos| infos.iter().any(|info| info.domid == id)),
    );
    found.ok_or_else(|| {
        if wanted.bytes().all(|byte| byte.is_ascii_digit()) {
            println!(
                "xl {command}: there is no domain with ID {wanted} ('xl list' shows the domains)"
            );
        } else {
            println!(
                "xl {command}: there is no domain called '{wanted}' ('xl list' shows the domains)"
            );
        }
    })
}

/// Whether domain `id` exists and has not shut down (a paused domain is
/// running in this sense: it can take console input).
fn is_running(id: u16) -> bool {
    domain_infos().is_ok_and(|infos| {
        infos
            .iter()
            .any(|info| info.domid == id && info.flags & DOMINF_SHUTDOWN == 0)
    })
}

/// `xl list [NAME|ID]`.
pub fn list(filter: Option<&str>) {
    let infos = match domain_infos() {
        Ok(infos) => infos,
        Err(error) => return explain("xl list: reading the domain list", error),
    };
    let wanted = match filter {
        Some(text) => match resolve("list", text) {
            Ok(id) => Some(id),
            Err(()) => return,
        },
        None => None,
    };
    let mut out = ConsoleWriter::new();
    let _ = xl::write_list_header(&mut out);
    for info in infos
        .iter()
        .filter(|info| wanted.is_none_or(|id| id == info.domid))
    {
        let _ = xl::write_list_row(&mut out, info, &name_of(info.domid));
    }
}

/// Free memory in MiB, if the hypervisor says.
fn free_mib() -> Option<u64> {
    let mut request = Sysctl::physinfo();
    control::sysctl(&mut request).ok()?;
    Some((request.physinfo_payload().free_pages * 4096) >> 20)
}

/// The configuration text: the file with `overrides` (KEY=VALUE) replacing
/// lines that set the same key, or added at the end, as Xen's xl does.
/// Replaced lines become blank, so line numbers in errors stay right.
fn configuration_text(file: &str, overrides: &[&str]) -> String {
    let mut text = String::new();
    let override_key = |line: &str| {
        let key = line.split('=').next().unwrap_or("").trim();
        overrides
            .iter()
            .any(|setting| setting.split('=').next().unwrap_or("").trim() == key)
    };
    for line in file.lines() {
        if line.contains('=') && !line.trim_start().starts_with('#') && override_key(line) {
            text.push('\n');
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    for setting in overrides {
        let (key, value) = setting.split_once('=').unwrap_or((setting, ""));
        let value = value.trim();
        let quoted = value.starts_with('"') || value.starts_with('\'') || value.starts_with('[');
        if quoted || value.parse::<u64>().is_ok() {
            let _ = writeln!(text, "{key} = {value}");
        } else {
            let _ = writeln!(text, "{key} = \"{value}\"");
        }
    }
    text
}

/// Parses `text` (from `file`, whose first `file_lines` lines are the
/// file's and the rest `overrides`) and checks what can be checked before
/// building; prints why not (after `command`, such as "xl create") and
/// returns `None` on any problem.
fn prepare(
    command: &str,
    file: &str,
    text: &str,
    file_lines: usize,
    overrides: &[&str],
) -> Option<(DomainConfig, &'static [u8])> {
    let config = match config::parse(text) {
        Ok(config) => config,
        Err(error) => {
            let mut out = ConsoleWriter::new();
            let _ = write!(out, "{command}: ");
            if error.line > file_lines {
                let setting = overrides
                    .get(error.line - file_lines - 1)
                    .copied()
                    .unwrap_or("");
                let _ = write!(out, "command-line setting '{setting}': {}", error.message);
            } else {
                let _ = config::describe(&error, file, &mut out);
            }
            let _ = out.write_str("\n");
            return None;
        }
    };
    if let Some((id, _)) = named_domains()
        .iter()
        .find(|(_, name)| name.as_str() == config.name.as_str())
    {
        println!(
            "{command}: a domain called '{}' already exists (id {id}); give this one another name, e.g. name=other",
            config.name
        );
        return None;
    }
    let Some(kernel) = files::find(&config.kernel) else {
        let given_in = if overrides
            .iter()
            .any(|setting| config::setting_key(setting) == "kernel")
        {
            String::from("kernel= on the command line")
        } else {
            alloc::format!("kernel = in {file}")
        };
        println!(
            "{command}: the kernel image '{}' ({given_in}) is not in Dom0's ramdisk; 'ls /boot' lists the images",
            config.kernel
        );
        return None;
    };
    if let Some(free) = free_mib() {
        if config.memory_mib > free {
            println!(
                "{command}: not enough memory: '{}' asks for {} MiB but only {free} MiB are free ('xl destroy' frees some)",
                config.name, config.memory_mib
            );
            return None;
        }
    }
    Some((config, kernel))
}

/// `xl create [-p] [-c] FILE [KEY=VALUE...]`.
pub fn create(file: &str, paused: bool, attach: bool, overrides: &[&str]) {
    println!("Parsing config from {file}");
    let Some(bytes) = files::find(file) else {
        if files::is_directory(file.trim_start_matches('/')) {
            println!("xl create: {file} is a directory; give a configuration file in it ('ls {file}' lists them)");
        } else {
            println!("xl create: there is no file {file} in Dom0's ramdisk ('ls /etc/xen' lists the configurations)");
        }
        return;
    };
    if let Some((first, second)) = config::repeated_setting(overrides) {
        println!(
            "xl create: '{}' is set twice on the command line ({first} and {second}); give it once",
            config::setting_key(first)
        );
        return;
    }
    let Ok(contents) = core::str::from_utf8(bytes) else {
        println!("xl create: {file} is not a text file");
        return;
    };
    let text = configuration_text(contents, overrides);
    let Some((config, kernel)) = prepare(
        "xl create",
        file,
        &text,
        contents.lines().count(),
        overrides,
    ) else {
        return;
    };
    match start(&config, kernel, paused, "xl create") {
        Ok(id) => {
            println!(
                "Started domain {} (id={id}){}",
                config.name,
                if paused { ", paused" } else { "" }
            );
            remember(id, config, text, None);
            if attach {
                consoles::attach(id, crate::wait_for_activity, is_running);
            }
        }
        Err(error) => println!("xl create: cannot build domain '{}': {error}", config.name),
    }
}

/// Builds a domain (paused), connects its console and store backends,
/// writes its nodes in the store (`/local/domain/N/...`, `/vm/...`), and
/// unpauses it unless `paused`: the guest finds its keys from its first
/// instruction.
pub fn start(
    config: &DomainConfig,
    kernel: &[u8],
    paused: bool,
    command: &str,
) -> Result<u16, builder::BuildError> {
    let built = builder::build(config, kernel, true, true)?;
    let id = built.id;
    if let Some(setup) = built.console {
        if let Err(why) = consoles::connect(id, setup) {
            println!("{command}: domain {id}'s console is not available: {why}");
        }
    }
    if let Some(setup) = built.store {
        match xenstored::connect(id, setup) {
            Ok(()) => {
                if let Err(error) = xenstored::write_domain_nodes(id, &config.name) {
                    println!(
                        "{command}: domain {id}'s keys could not be written to the store: {}",
                        error.name()
                    );
                }
            }
            Err(why) => println!("{command}: domain {id}'s store is not available: {why}"),
        }
    }
    if !paused {
        if let Err(error) = simple_domctl(DomctlOp::UnpauseDomain, id) {
            consoles::disconnect(id);
            xenstored::disconnect(id);
            xenstored::remove_domain_nodes(id);
            let _ = simple_domctl(DomctlOp::DestroyDomain, id);
            return Err(builder::BuildError::Hypervisor {
                step: "unpausing the domain",
                error,
            });
        }
    }
    Ok(id)
}

/// Records a domain just built. A record left with its ID (a zombie that
/// went before `watch` noticed) is stale: the hypervisor gives out an ID
/// only when no domain, dying or not, has it.
fn remember(id: u16, config: DomainConfig, text: String, restarted_at: Option<u64>) {
    let mut records = RECORDS.lock();
    records.retain(|record| record.id != id);
    records.push(Record {
        id,
        config,
        text,
        handled: false,
        dying: false,
        restarted_at,
    });
}

/// Domain `id`'s description from the hypervisor, dying or not.
fn domain_info(id: u16) -> Result<DomainInfo, i64> {
    let mut request = Domctl::new(DomctlOp::GetDomainInfo, id);
    control::domctl(&mut request)?;
    Ok(request.info())
}

/// Destroys domain `id`; on success, says whether it is gone (`None`) or a
/// zombie still holding `Some(frames)`, and updates its record to match.
pub fn destroy_domain(id: u16) -> Result<Option<u64>, i64> {
    // The store lets go of its ring page first (a foreign mapping would
    // keep the domain a zombie), then forgets the domain's keys.
    xenstored::disconnect(id);
    xenstored::remove_domain_nodes(id);
    simple_domctl(DomctlOp::DestroyDomain, id)?;
    let held = domain_info(id)
        .ok()
        .filter(|info| info.flags & DOMINF_DYING != 0)
        .map(|info| info.tot_pages);
    let mut records = RECORDS.lock();
    match held {
        None => records.retain(|record| record.id != id),
        Some(_) => records
            .iter_mut()
            .filter(|record| record.id == id)
            .for_each(|record| record.dying = true),
    }
    Ok(held)
}

/// The sentence for a destroyed domain that is still dying.
fn say_dying(command: &str, name: &str, id: u16, frames: u64) {
    println!(
        "{command}: domain {name} (id={id}) is dying: waiting for {frames} frame(s) ({} KiB) to be released; \
         another domain still maps them. It stays in 'xl list' as 'd', and its ID is not reused until then",
        frames * 4
    );
}

/// `xl destroy NAME|ID`. Destroying a zombie again is allowed: it says how
/// much it still waits for.
pub fn destroy(target: &str) {
    let Ok(id) = resolve("destroy", target) else {
        return;
    };
    if id == 0 {
        println!("xl destroy: Domain-0 cannot be destroyed: it is the control domain (use 'poweroff' to stop the machine)");
        return;
    }
    let name = name_of(id);
    consoles::disconnect(id);
    match destroy_domain(id) {
        Ok(None) => println!("Destroyed domain {name} (id={id})"),
        Ok(Some(frames)) => say_dying("xl destroy", &name, id, frames),
        Err(error) => explain("xl destroy", error),
    }
}

/// `xl pause NAME|ID` and `xl unpause NAME|ID`.
pub fn pause(target: &str, pause: bool) {
    let command = if pause { "pause" } else { "unpause" };
    let Ok(id) = resolve(command, target) else {
        return;
    };
    if id == 0 {
        if pause {
            println!("xl pause: Domain-0 cannot be paused: it runs this shell");
        } else {
            println!("xl unpause: Domain-0 is never paused: it runs this shell");
        }
        return;
    }
    let paused = is_paused(id);
    if !pause && paused == Some(false) {
        println!("xl unpause: domain {id} is not paused");
        return;
    }
    let operation = if pause {
        DomctlOp::PauseDomain
    } else {
        DomctlOp::UnpauseDomain
    };
    match simple_domctl(operation, id) {
        Ok(()) => {}
        // EOVERFLOW: pauses nest, up to a limit, as in Xen.
        Err(-75) => println!(
            "xl pause: domain {id} is already paused 255 times, the most; 'xl unpause' it first"
        ),
        Err(-22) if !pause => println!(
            "xl unpause: domain {id} cannot run yet: it has no initial context (it is still being built)"
        ),
        Err(error) => explain(&alloc::format!("xl {command}"), error),
    }
}

/// Whether domain `id` is paused by the toolstack, if it exists.
fn is_paused(id: u16) -> Option<bool> {
    let infos = domain_infos().ok()?;
    let info = infos.iter().find(|info| info.domid == id)?;
    Some(info.flags & DOMINF_PAUSED != 0)
}

/// `xl shutdown NAME|ID` (`reboot` false) and `xl reboot NAME|ID`: ask
/// the guest to power off or reboot, as Xen's toolstack does, by writing
/// the word in its `control/shutdown` (`docs/xenstore.md`); the guest
/// watches that node, clears it and stops itself. A guest that never
/// announced `control/feature-poweroff` (or `feature-reboot`) would not
/// hear it: as Xen's xl for a guest without PV drivers, this refuses and
/// says to use `xl destroy`. A guest that has not run yet (created
/// paused) cannot have announced anything: the request waits in the node
/// for it to read when it starts watching.
pub fn shutdown(target: &str, reboot: bool) {
    let (command, word, feature) = if reboot {
        ("xl reboot", "reboot", "feature-reboot")
    } else {
        ("xl shutdown", "poweroff", "feature-poweroff")
    };
    let Ok(id) = resolve(&command[3..], target) else {
        return;
    };
    if id == 0 {
        println!(
            "{command}: to {} Domain-0 and the machine, use '{}'",
            if reboot { "restart" } else { "shut down" },
            if reboot { "reboot" } else { "poweroff" }
        );
        return;
    }
    let info = match domain_info(id) {
        Ok(info) => info,
        Err(error) => return explain(command, error),
    };
    if info.flags & (DOMINF_SHUTDOWN | DOMINF_DYING) != 0 {
        println!("{command}: domain {id} is not running (it already shut down or crashed)");
        return;
    }
    let name = name_of(id);
    let paused = info.flags & DOMINF_PAUSED != 0;
    let never_ran = info.cpu_time == 0;
    if !xenstored::has_control_feature(id, feature) && !never_ran {
        println!(
            "{command}: PV control interface not available: domain {name} (id {id}) never announced control/{feature} \
             in the store, so it would not see the request. 'xl destroy {name}' stops it at once"
        );
        return;
    }
    if let Err(error) = xenstored::request_shutdown(id, word) {
        println!(
            "{command}: cannot write /local/domain/{id}/{}: {}",
            xenstored::SHUTDOWN_NODE,
            error.name()
        );
        return;
    }
    let verb = if reboot { "Rebooting" } else { "Shutting down" };
    if paused {
        println!("{verb} domain {id}: it is paused, so it reads the request when it is unpaused");
    } else {
        println!("{verb} domain {id}");
    }
}

/// Acts on domains that shut down or crashed, as their configuration says.
/// Called when the hypervisor raises `VIRQ_DOM_EXC` (or, without events,
/// while the shell waits for input).
pub fn watch() {
    if RECORDS.lock().is_empty() {
        return;
    }
    let Ok(infos) = domain_infos() else { return };
    let mut actions: Vec<(u16, u32)> = Vec::new();
    RECORDS.lock().retain(|record| {
        let exists = infos.iter().any(|info| info.domid == record.id);
        if !exists && record.dying {
            println!(
                "[xl] domain '{}' (id {}) is gone: its last frames were released; ID {} is free",
                record.config.name, record.id, record.id
            );
        }
        exists
    });
    for record in RECORDS
        .lock()
        .iter_mut()
        .filter(|record| !record.handled && !record.dying)
    {
        let Some(info) = infos.iter().find(|info| info.domid == record.id) else {
            continue;
        };
        if info.flags & DOMINF_SHUTDOWN != 0 {
            record.handled = true;
            actions.push((
                record.id,
                (info.flags >> DOMINF_SHUTDOWN_SHIFT) & DOMINF_SHUTDOWN_MASK,
            ));
        }
    }
    for (id, reason) in actions {
        act_on_shutdown(id, reason);
    }
}

fn act_on_shutdown(id: u16, reason: u32) {
    let Some((config, text, restarted_at)) = RECORDS
        .lock()
        .iter()
        .find(|record| record.id == id)
        .map(|record| {
            (
                record.config.clone(),
                record.text.clone(),
                record.restarted_at,
            )
        })
    else {
        return;
    };
    let (what, key, action) = match ShutdownReason::try_from(reason) {
        Ok(ShutdownReason::Poweroff) => ("powered off", "on_poweroff", config.on_poweroff),
        Ok(ShutdownReason::Reboot) => ("rebooted", "on_reboot", config.on_reboot),
        Ok(ShutdownReason::Crash) => ("crashed", "on_crash", config.on_crash),
        _ => ("stopped", "on_poweroff", config.on_poweroff),
    };
    let name = &config.name;
    // The console follows a restarted domain, as `xl create -c` does with
    // Xen's autoconnect; otherwise it lets go of a domain that stopped.
    let attached = consoles::attached() == Some(id);
    let now = time::system_time_ns();
    let too_soon = action == Action::Restart && !xl::may_restart(restarted_at, now);
    if action == Action::Preserve {
        // (Destroying disconnects the console, which detaches it too.)
        consoles::detach(id);
    }
    match action {
        Action::Preserve => {
            println!("[xl] domain '{name}' (id {id}) {what}: kept ({key} = \"preserve\"); 'xl destroy {name}' removes it");
        }
        Action::Destroy | Action::Restart => {
            consoles::disconnect(id);
            match destroy_domain(id) {
                Ok(None) => {}
                Ok(Some(frames)) => say_dying("[xl]", name, id, frames),
                Err(error) => return explain("[xl] destroying a stopped domain", error),
            }
            if action == Action::Destroy {
                println!("[xl] domain '{name}' (id {id}) {what}: destroyed ({key} = \"destroy\")");
                return;
            }
            if too_soon {
                println!(
                    "[xl] domain '{name}' (id {id}) {what} {} s after its last restart: destroyed, not restarted ({key} = \"restart\", but a domain that stops within {} s of a restart would loop)",
                    now.saturating_sub(restarted_at.unwrap_or(0)) / 1_000_000_000,
                    xl::MINIMUM_RESTART_INTERVAL_NS / 1_000_000_000
                );
                return;
            }
            let Some(kernel) = files::find(&config.kernel) else {
                return;
            };
            match start(&config, kernel, false, "[xl]") {
                Ok(new_id) => {
                    println!("[xl] domain '{name}' (id {id}) {what}: restarted as id {new_id} ({key} = \"restart\")");
                    remember(new_id, config, text, Some(time::system_time_ns()));
                    if attached {
                        consoles::follow(new_id);
                    }
                }
                Err(error) => {
                    println!("[xl] domain '{name}' {what}; restarting it failed: {error}")
                }
            }
        }
    }
}

/// `debug cycles N FILE`: create (paused) and destroy FILE's domain N
/// times, then compare free memory with what it was.
pub fn cycles(count: u64, file: &str) {
    let Some(bytes) = files::find(file) else {
        println!("debug cycles: there is no file {file} in Dom0's ramdisk");
        return;
    };
    let text = core::str::from_utf8(bytes).unwrap_or("");
    let Some((config, kernel)) = prepare("debug cycles", file, text, text.lines().count(), &[])
    else {
        return;
    };
    let before = free_pages();
    let start = time::rdtsc();
    let mut done = 0;
    for round in 0..count {
        if crate::interrupted() {
            println!("^C");
            break;
        }
        match builder::build(&config, kernel, true, false) {
            Ok(built) => {
                let id = built.id;
                if let Err(error) = simple_domctl(DomctlOp::DestroyDomain, id) {
                    return explain("debug cycles: destroying", error);
                }
            }
            Err(error) => {
                println!("debug cycles: round {round}: {error}");
                return;
            }
        }
        done += 1;
    }
    let cycles_each = (time::rdtsc() - start) / done.max(1);
    let after = free_pages();
    let verdict = if after == before {
        String::from("no leak")
    } else {
        alloc::format!("LEAKED {} pages", before.saturating_sub(after))
    };
    let stopped = if done < count {
        alloc::format!(" (stopped by Ctrl-C after {done} of {count})")
    } else {
        String::new()
    };
    println!(
        "debug cycles: {done} creates and destroys of '{}'{stopped}, {cycles_each} cycles each; free pages before {before}, after {after}: {verdict}",
        config.name
    );
}

fn free_pages() -> u64 {
    let mut request = Sysctl::physinfo();
    if control::sysctl(&mut request).is_err() {
        return 0;
    }
    request.physinfo_payload().free_pages
}

/// Reads (or, with `Some`, sets) a domain's weight and cap.
fn scheduler_op(id: u16, set: Option<(u32, u32)>) -> Result<(u32, u32), i64> {
    use guest_kernel::abi::domctl::{DomctlSchedulerOp, SCHEDULER_GET, SCHEDULER_PUT};
    let mut request = Domctl::new(DomctlOp::SchedulerOp, id);
    request.u.scheduler = match set {
        Some((weight, cap)) => DomctlSchedulerOp {
            command: SCHEDULER_PUT,
            weight,
            cap,
            pad: 0,
        },
        None => DomctlSchedulerOp {
            command: SCHEDULER_GET,
            ..Default::default()
        },
    };
    control::domctl(&mut request)?;
    let answer = request.scheduler();
    Ok(set.unwrap_or((answer.weight, answer.cap)))
}

/// Applies a configuration's weight and cap to a new domain.
pub fn apply_scheduling(id: u16, config: &DomainConfig) -> Result<(), i64> {
    scheduler_op(id, Some((config.weight, config.cap))).map(|_| ())
}

/// `xl sched-credit [-d NAME|ID [-w WEIGHT] [-c CAP]]`.
pub fn sched_credit(domain: Option<&str>, weight: Option<u32>, cap: Option<u32>) {
    if let Some(weight) = weight {
        if !(1..=65535).contains(&weight) {
            println!("xl sched-credit: the weight must be from 1 to 65535 (got {weight}); the default is 256");
            return;
        }
    }
    if let Some(cap) = cap {
        if cap > 100 {
            println!("xl sched-credit: the cap is a percentage of one CPU, from 0 (no cap) to 100 (got {cap})");
            return;
        }
    }
    let ids: Vec<u16> = match domain {
        Some(text) => match resolve("sched-credit", text) {
            Ok(id) => alloc::vec![id],
            Err(()) => return,
        },
        None => match domain_infos() {
            Ok(infos) => infos.iter().map(|info| info.domid).collect(),
            Err(error) => return explain("xl sched-credit: reading the domain list", error),
        },
    };
    if weight.is_some() || cap.is_some() {
        let id = ids[0];
        let (old_weight, old_cap) = match scheduler_op(id, None) {
            Ok(params) => params,
            Err(error) => return explain("xl sched-credit", error),
        };
        if let Err(error) = scheduler_op(
            id,
            Some((weight.unwrap_or(old_weight), cap.unwrap_or(old_cap))),
        ) {
            return explain("xl sched-credit", error);
        }
    }
    println!("{:<32} {:>5} {:>6} {:>4}", "Name", "ID", "Weight", "Cap");
    for id in ids {
        match scheduler_op(id, None) {
            Ok((weight, cap)) => println!("{:<32} {:>5} {:>6} {:>4}", name_of(id), id, weight, cap),
            Err(error) => explain("xl sched-credit", error),
        }
    }
}

/// `xl vcpu-list`: each domain's (single) vCPU.
pub fn vcpu_list() {
    use guest_kernel::abi::sysctl::{DOMINF_BLOCKED, DOMINF_RUNNING};
    let infos = match domain_infos() {
        Ok(infos) => infos,
        Err(error) => return explain("xl vcpu-list: reading the domain list", error),
    };
    println!(
        "{:<32} {:>5} {:>5} {:>5} {:>5} {:>9}  Affinity (Hard / Soft)",
        "Name", "ID", "VCPU", "CPU", "State", "Time(s)"
    );
    for info in &infos {
        let running = info.flags & DOMINF_RUNNING != 0;
        let state = [
            if running { 'r' } else { '-' },
            if info.flags & DOMINF_BLOCKED != 0 {
                'b'
            } else {
                '-'
            },
            if info.flags & DOMINF_PAUSED != 0 {
                'p'
            } else {
                '-'
            },
        ];
        let state: String = state.iter().collect();
        let tenths = info.cpu_time / 100_000_000;
        println!(
            "{:<32} {:>5} {:>5} {:>5} {:>5} {:>7}.{}  all / all",
            name_of(info.domid),
            info.domid,
            0,
            if running { "0" } else { "-" },
            state,
            tenths / 10,
            tenths % 10
        );
    }
}

/// `xl top`: every second, each domain's CPU use over the last second and
/// its memory, until a key is pressed.
pub fn top() {
    let mut previous = match domain_infos() {
        Ok(infos) => infos,
        Err(error) => return explain("xl top: reading the domain list", error),
    };
    let mut previous_time = time::system_time_ns();
    let started = previous_time;
    let mut tables = 0u64;
    println!("xl top: refreshing every second; Ctrl-C stops it");
    loop {
        // Look for Ctrl-C ten times a second, so that it stops at once.
        for _ in 0..10 {
            time::sleep(100_000_000);
            if crate::interrupted() {
                let seconds = time::system_time_ns().saturating_sub(started) / 1_000_000_000;
                println!("^C\nxl top: stopped after {tables} tables in {seconds} s");
                return;
            }
        }
        tables += 1;
        let Ok(infos) = domain_infos() else { return };
        let now = time::system_time_ns();
        let elapsed = now.saturating_sub(previous_time).max(1);
        println!(
            "{:<24} {:>5} {:>10} {:>8} {:>10}",
            "NAME", "ID", "CPU(sec)", "CPU(%)", "MEM(k)"
        );
        for info in &infos {
            let before = previous
                .iter()
                .find(|old| old.domid == info.domid)
                .map_or(0, |old| old.cpu_time);
            let percent_tenths = info.cpu_time.saturating_sub(before) * 1000 / elapsed;
            println!(
                "{:<24} {:>5} {:>10} {:>6}.{} {:>10}",
                name_of(info.domid),
                info.domid,
                info.cpu_time / 1_000_000_000,
                percent_tenths / 10,
                percent_tenths % 10,
                info.tot_pages * 4
            );
        }
        previous = infos;
        previous_time = now;
    }
}

/// `xl console NAME|ID`: attach the serial line to a domain's console.
pub fn console(target: &str) {
    let Ok(id) = resolve("console", target) else {
        return;
    };
    if id == 0 {
        println!("xl console: this is Domain-0's console already");
        return;
    }
    if !consoles::has_console(id) {
        println!("xl console: domain {id} has no console ring (it was not created by 'xl create')");
        return;
    }
    println!(
        "Connected to domain {} (id={id}); Ctrl-] detaches",
        name_of(id)
    );
    consoles::attach(id, crate::wait_for_activity, is_running);
}

/// `debug hold-frame NAME|ID`: maps the domain's shared info frame into
/// Dom0, read-only, with a foreign mapping, and leaves it mapped, as a
/// backend that forgot to unmap would. Destroying the domain then leaves a
/// zombie until `debug release-frame`.
pub fn hold_frame(target: &str) {
    let Ok(id) = resolve("debug hold-frame", target) else {
        return;
    };
    if id == 0 {
        println!("debug hold-frame: Domain-0's frames are its own; name another domain");
        return;
    }
    let frame = match domain_info(id) {
        Ok(info) => info.shared_info_frame,
        Err(error) => return explain("debug hold-frame: reading the domain's information", error),
    };
    // One page per domain ID (`areas::HELD_FRAMES`); `resolve` gave a
    // domain's ID, which is below the reserved ones.
    let Some(address) = HELD_FRAMES.page_for(id) else {
        println!("debug hold-frame: domain {id} has no page in Dom0's hold area");
        return;
    };
    let mapped = paging::ensure_l1(address).and_then(|l1| {
        paging::write_entries_foreign(
            &[(
                paging::l1_entry_address(l1, address),
                (frame * PAGE_SIZE) | PRESENT | USER | NO_EXECUTE,
            )],
            id,
        )
    });
    match mapped {
        Ok(()) => println!(
            "debug hold-frame: domain {id}'s frame {frame:#x} is mapped in Dom0 at {address:#x}; \
             'debug release-frame {id}' unmaps it"
        ),
        Err(error) => {
            println!("debug hold-frame: mapping domain {id}'s frame {frame:#x} failed: {error:?}")
        }
    }
}

/// `debug release-frame ID`: removes the mapping `hold-frame` made; if the
/// domain was a zombie waiting for that frame, it goes.
pub fn release_frame(id: u16) {
    let Some(l1) = HELD_FRAMES
        .page_for(id)
        .and_then(|address| paging::l1_table(address).map(|l1| (l1, address)))
    else {
        println!("debug release-frame: no frame of domain {id} is held");
        return;
    };
    let (l1, address) = l1;
    let entry = paging::l1_entry_address(l1, address);
    if paging::read_entry(l1, (entry % PAGE_SIZE) / 8) & PRESENT == 0 {
        println!("debug release-frame: no frame of domain {id} is held");
        return;
    }
    if let Err(error) = paging::write_entries(&[(entry, 0)]) {
        println!("debug release-frame: unmapping failed: {error:?}");
        return;
    }
    match domain_info(id) {
        Ok(info) if info.flags & DOMINF_DYING != 0 => println!(
            "debug release-frame: unmapped; domain {id} is still dying, holding {} frame(s)",
            info.tot_pages
        ),
        Ok(_) => println!("debug release-frame: unmapped; domain {id} is alive"),
        Err(_) => println!("debug release-frame: unmapped; domain {id} is gone and its ID is free"),
    }
}
