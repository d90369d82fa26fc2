//! Host programs the tasks need (QEMU, GRUB's ISO tools): finding them, installing them when
//! we may, and otherwise saying exactly what to run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Every Debian package the tasks use, installed together so that one command fixes all.
pub const DEBIAN_PACKAGES: [&str; 5] = [
    "qemu-system-x86",
    "grub-pc-bin",
    "grub-common",
    "xorriso",
    "mtools",
];

/// One thing that must be present on the host.
#[derive(Clone, Copy, Debug)]
pub struct Requirement {
    /// A program looked up in `PATH`, or an absolute path that must exist.
    pub name: &'static str,
    /// The Debian package that provides it.
    pub package: &'static str,
}

/// What booting in QEMU needs.
pub const QEMU: &[Requirement] = &[Requirement {
    name: "qemu-system-x86_64",
    package: "qemu-system-x86",
}];

/// What making the GRUB ISO needs.
pub const GRUB_ISO: &[Requirement] = &[
    Requirement {
        name: "grub-mkrescue",
        package: "grub-common",
    },
    Requirement {
        // Without GRUB's BIOS modules grub-mkrescue makes an ISO that QEMU's BIOS cannot boot.
        name: "/usr/lib/grub/i386-pc",
        package: "grub-pc-bin",
    },
    Requirement {
        name: "xorriso",
        package: "xorriso",
    },
    Requirement {
        name: "mformat",
        package: "mtools",
    },
];

/// Looks `program` up in `PATH`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join(program))
        .find(|candidate| candidate.is_file())
}

/// Whether a requirement is met.
fn is_present(requirement: &Requirement) -> bool {
    if requirement.name.starts_with('/') {
        Path::new(requirement.name).exists()
    } else {
        find_program(requirement.name).is_some()
    }
}

/// The command a person should run to install everything.
pub fn install_command() -> String {
    format!(
        "sudo apt-get update && sudo apt-get install -y {}",
        DEBIAN_PACKAGES.join(" ")
    )
}

/// Makes sure every requirement in `groups` is present: installs the packages with apt-get when
/// running as root on a machine that has it, otherwise stops with the command to run.
pub fn ensure(groups: &[&[Requirement]]) -> Result<()> {
    let missing: Vec<&Requirement> = groups
        .iter()
        .flat_map(|group| group.iter())
        .filter(|requirement| !is_present(requirement))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = missing
        .iter()
        .map(|requirement| format!("{} (package {})", requirement.name, requirement.package))
        .collect();
    let names = names.join(", ");
    if !(is_root() && find_program("apt-get").is_some()) {
        bail!(
            "missing on this machine: {names}.\nInstall them with:\n    {}",
            install_command()
        );
    }
    eprintln!("missing {names}: installing {}", DEBIAN_PACKAGES.join(" "));
    apt_get(&["update"])?;
    let mut install = vec!["install", "-y"];
    install.extend(DEBIAN_PACKAGES);
    apt_get(&install)?;
    if let Some(still) = missing.iter().find(|requirement| !is_present(requirement)) {
        bail!(
            "{} is still missing after installing {}",
            still.name,
            still.package
        );
    }
    Ok(())
}

/// Runs `apt-get` non-interactively.
fn apt_get(args: &[&str]) -> Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("could not start apt-get")?;
    if !status.success() {
        bail!(
            "`apt-get {}` failed ({status}); install by hand with:\n    {}",
            args.join(" "),
            install_command()
        );
    }
    Ok(())
}

/// Whether we run as root (user id 0).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.status.success() && output.stdout.trim_ascii() == b"0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_but_not_nonsense() {
        assert!(find_program("sh").is_some());
        assert!(find_program("no-such-program-xtask").is_none());
    }

    #[test]
    fn install_command_names_every_package() {
        let command = install_command();
        for package in DEBIAN_PACKAGES {
            assert!(command.contains(package));
        }
        for requirement in QEMU.iter().chain(GRUB_ISO) {
            assert!(DEBIAN_PACKAGES.contains(&requirement.package));
        }
    }
}
