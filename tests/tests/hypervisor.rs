//! The hypervisor's own boot-time errors: a broken Dom0 image, too much
//! memory asked for Dom0, options it does not know. Each gets a sentence
//! on the console, and the machine stops with the hypervisor's failure code
//! instead of hanging.

use scenarios::{BootConfig, BootMedium, Machine, BOOT_TIMEOUT, EXIT_HYPERVISOR_FATAL};

/// Boots `config` and expects `message`, then the hypervisor's failure exit.
fn refuses_to_start(config: BootConfig, message: &str) {
    let mut machine = Machine::boot(config).expect("QEMU starts");
    if let Err(error) = machine.expect(message, BOOT_TIMEOUT) {
        panic!("expected \"{message}\": {error}");
    }
    machine.expect_exit(EXIT_HYPERVISOR_FATAL, BOOT_TIMEOUT);
}

#[test]
fn a_dom0_image_that_is_not_elf_is_named_as_such() {
    let mut config = BootConfig::direct_from_env();
    if let BootMedium::Direct { dom0, ramdisk, .. } = &mut config.medium {
        // The ramdisk (a tar archive) in Dom0's place.
        *dom0 = ramdisk.clone();
    }
    refuses_to_start(
        config,
        "cannot build Dom0: the first module is not an ELF file",
    );
}

#[test]
fn dom0_mem_larger_than_the_machine_says_what_is_free() {
    let config = BootConfig::direct_from_env().hypervisor_cmdline("dom0_mem=2G");
    refuses_to_start(config, "dom0_mem asks for 2048 MiB but only");
}

#[test]
fn unknown_and_malformed_options_are_reported_and_boot_goes_on() {
    let config =
        BootConfig::direct_from_env().hypervisor_cmdline("loglvl=all frobnicate=1 dom0_mem=lots");
    let mut machine = Machine::boot_to_prompt(config);
    let log = machine.log();
    machine.ensure(
        log.contains("command line: 'frobnicate=1' is not a known option: ignored"),
        "the unknown option is reported",
    );
    machine.ensure(
        log.contains("command line: 'dom0_mem=lots' is not a size (e.g. 64M, 1G): ignored"),
        "the malformed size is reported",
    );
    let list = machine.command("xl list");
    machine.ensure_match(
        &list,
        r"(?m)^Domain-0\s+0\s+64\s+1\s",
        "Dom0 got the default 64 MiB",
    );
    machine.poweroff();
}
