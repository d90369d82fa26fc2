//! Boot scenarios: both boot paths reach Dom0's prompt, and `poweroff` ends QEMU cleanly.

use scenarios::{BootConfig, Machine};

/// Contract 1 and 9: the fast direct (`-kernel`, Multiboot1) boot prints the hypervisor's
/// `(XEN)` banner, reaches `dom0# `, and `poweroff` exits QEMU with status 0.
#[test]
fn direct_boot_prints_banner_reaches_prompt_and_powers_off() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let log = machine.log();
    machine.ensure(
        log.lines().any(|line| line.contains("(XEN)")),
        "the hypervisor logs lines prefixed with (XEN)",
    );
    machine.ensure(
        log.lines()
            .any(|line| line.contains("(XEN)") && line.contains("xen-like 0.1.0")),
        "an (XEN) line announces \"xen-like 0.1.0\"",
    );
    machine.poweroff();
}

/// Contract 2: the GRUB ISO (Multiboot2, the bare-metal path) reaches the prompt too.
#[test]
fn iso_boot_through_grub_reaches_prompt() {
    let mut machine = Machine::boot_to_prompt(BootConfig::iso_from_env());
    machine.ensure(
        machine.log().contains("xen-like 0.1.0"),
        "the hypervisor announces \"xen-like 0.1.0\" when booted by GRUB",
    );
    machine.poweroff();
}
