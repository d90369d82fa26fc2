//! `cargo xtask run` and `cargo xtask gdb`: QEMU with the serial line on the terminal.

use std::process::Command;

use anyhow::{bail, Context, Result};
use scenarios::{BootConfig, Console, EXIT_DOM0_CRASHED, EXIT_HYPERVISOR_FATAL, EXIT_POWEROFF};

use crate::build::{self, Artifacts};
use crate::{iso, tools, workspace_root};

/// What `cargo xtask run` was asked for.
#[derive(Debug)]
pub struct RunOptions {
    /// Boot the GRUB ISO instead of QEMU's direct Multiboot loader.
    pub iso: bool,
    /// The hypervisor's command line (direct boot).
    pub hypervisor_cmdline: String,
    /// Dom0's command line (direct boot).
    pub dom0_cmdline: String,
    /// QEMU's `-m`.
    pub memory: String,
    /// Extra QEMU arguments.
    pub qemu_args: Vec<String>,
}

/// The direct-boot configuration for freshly built artifacts.
pub fn direct_config(artifacts: &Artifacts) -> BootConfig {
    BootConfig::direct(
        artifacts.kernel.clone(),
        artifacts.dom0.clone(),
        artifacts.ramdisk.clone(),
    )
}

/// Builds, then boots interactively.
pub fn run(options: &RunOptions) -> Result<()> {
    if options.iso {
        tools::ensure(&[tools::QEMU, tools::GRUB_ISO])?;
    } else {
        tools::ensure(&[tools::QEMU])?;
    }
    let artifacts = build::build()?;
    let mut config = if options.iso {
        if options.hypervisor_cmdline != scenarios::DEFAULT_HYPERVISOR_CMDLINE
            || !options.dom0_cmdline.is_empty()
        {
            bail!("--cmdline and --dom0-cmdline apply to the direct boot; the ISO's are fixed in its grub.cfg");
        }
        BootConfig::iso(iso::make_iso(&artifacts)?)
    } else {
        direct_config(&artifacts)
            .hypervisor_cmdline(&options.hypervisor_cmdline)
            .dom0_cmdline(&options.dom0_cmdline)
    };
    config = config.memory(&options.memory);
    for argument in &options.qemu_args {
        config = config.qemu_arg(argument);
    }
    eprintln!("Booting; Ctrl-A X quits QEMU, Ctrl-A C switches to its monitor.");
    run_interactive(&config)
}

/// Builds, then boots the direct path with QEMU's gdb server, stopped before the first
/// instruction.
pub fn gdb() -> Result<()> {
    tools::ensure(&[tools::QEMU])?;
    let artifacts = build::build()?;
    let config = direct_config(&artifacts).qemu_arg("-s").qemu_arg("-S");
    let root = workspace_root();
    let relative = |path: &std::path::Path| {
        path.strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    eprintln!(
        "QEMU waits for gdb on localhost:1234. In another terminal, in {}:\n\
         \n    gdb {} -ex 'target remote :1234'\n\
         \nthen set breakpoints (`hbreak <function>`; hardware breakpoints survive the boot \
         stub's switch to high addresses) and `continue`. Dom0's symbols: \
         `add-symbol-file {}`.\nCtrl-A X quits QEMU.",
        root.display(),
        relative(&artifacts.kernel),
        relative(&artifacts.dom0),
    );
    run_interactive(&config)
}

/// What QEMU's exit status 0 means in an interactive run. QEMU gives the
/// same status for all three, and the serial line went to the terminal, so
/// xtask cannot tell them apart: the user can, from what the screen shows.
const STATUS_ZERO: &str = "QEMU exited with status 0: Dom0 powered the machine off, \
     the machine reset (QEMU runs with -no-reboot), or you quit QEMU with Ctrl-A X.";

/// Runs QEMU with the terminal as its serial line and explains its exit status.
fn run_interactive(config: &BootConfig) -> Result<()> {
    let args = config.qemu_args(Console::Interactive)?;
    let status = Command::new(&config.qemu)
        .args(&args)
        .status()
        .with_context(|| format!("could not start {}", config.qemu.display()))?;
    let code = status.code();
    match code {
        Some(EXIT_POWEROFF) => {
            eprintln!("{STATUS_ZERO}");
            Ok(())
        }
        Some(EXIT_HYPERVISOR_FATAL) => {
            bail!("QEMU exited with status {EXIT_HYPERVISOR_FATAL}: the hypervisor stopped on a fatal error (see its (XEN) messages above)")
        }
        Some(EXIT_DOM0_CRASHED) => {
            bail!("QEMU exited with status {EXIT_DOM0_CRASHED}: Dom0 crashed (see the messages above)")
        }
        _ => bail!(
            "QEMU failed ({status}). The command was:\n    {}",
            config.describe(Console::Interactive)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_zero_names_ctrl_a_x_as_well_as_poweroff() {
        assert!(STATUS_ZERO.contains("Ctrl-A X"));
        assert!(STATUS_ZERO.contains("powered the machine off"));
    }
}
