//! `cargo xtask iso`: a GRUB ISO that boots xen-like through Multiboot2, as on bare metal.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::build::Artifacts;
use crate::tools;

/// GRUB's configuration: boot at once, talk on the first serial port as well as the screen,
/// load the hypervisor with Dom0 and its ramdisk as Multiboot2 modules. A module's string
/// starts with its name, as Xen's boot loaders pass it.
pub fn grub_config(hypervisor_cmdline: &str, dom0_cmdline: &str) -> String {
    let dom0_module = if dom0_cmdline.is_empty() {
        "dom0".to_string()
    } else {
        format!("dom0 {dom0_cmdline}")
    };
    format!(
        "set timeout=0\n\
         set default=0\n\
         serial --unit=0 --speed=115200\n\
         terminal_input serial console\n\
         terminal_output serial console\n\
         \n\
         menuentry \"xen-like\" {{\n\
         \x20   multiboot2 /boot/xen-like {hypervisor_cmdline}\n\
         \x20   module2 /boot/dom0 {dom0_module}\n\
         \x20   module2 /boot/dom0-ramdisk.tar dom0-ramdisk\n\
         }}\n"
    )
}

/// Stages the images in `target/kernel/iso/` and runs grub-mkrescue; returns the ISO's
/// absolute path.
pub fn make_iso(artifacts: &Artifacts) -> Result<PathBuf> {
    tools::ensure(&[tools::GRUB_ISO])?;
    let staging = artifacts.kernel_dir.join("iso");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("could not clear {}", staging.display()))?;
    }
    let boot = staging.join("boot");
    std::fs::create_dir_all(boot.join("grub"))
        .with_context(|| format!("could not create {}", boot.display()))?;
    for (source, name) in [
        (&artifacts.kernel, "xen-like"),
        (&artifacts.dom0, "dom0"),
        (&artifacts.ramdisk, "dom0-ramdisk.tar"),
    ] {
        copy(source, &boot.join(name))?;
    }
    let config = boot.join("grub").join("grub.cfg");
    std::fs::write(
        &config,
        grub_config(scenarios::DEFAULT_HYPERVISOR_CMDLINE, ""),
    )
    .with_context(|| format!("could not write {}", config.display()))?;

    let iso = artifacts.kernel_dir.join("xen-like.iso");
    let output = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(&iso)
        .arg(&staging)
        .output()
        .context("could not start grub-mkrescue")?;
    if !output.status.success() {
        bail!(
            "grub-mkrescue failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let iso = iso.canonicalize().unwrap_or(iso);
    eprintln!("iso staged from {}", staging.display());
    Ok(iso)
}

/// Copies a file, saying which when it fails.
fn copy(source: &Path, destination: &Path) -> Result<()> {
    std::fs::copy(source, destination).with_context(|| {
        format!(
            "could not copy {} to {}",
            source.display(),
            destination.display()
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_config_boots_at_once_on_serial_with_two_modules() {
        let config = grub_config("loglvl=all", "");
        for line in [
            "set timeout=0",
            "serial --unit=0 --speed=115200",
            "terminal_input serial console",
            "terminal_output serial console",
            "    multiboot2 /boot/xen-like loglvl=all",
            "    module2 /boot/dom0 dom0",
            "    module2 /boot/dom0-ramdisk.tar dom0-ramdisk",
        ] {
            assert!(config.lines().any(|l| l == line), "{line:?} in\n{config}");
        }
        assert!(grub_config("", "hello=world").contains("module2 /boot/dom0 dom0 hello=world\n"));
    }
}
