//! `cargo xtask build`: the kernels with bare-metal flags, and Dom0's ramdisk.
//!
//! Only the host target is installed, so the kernels are built for `x86_64-unknown-linux-gnu`
//! with flags that make its precompiled `core` usable on bare metal (shared/TOOLCHAIN.md):
//! position-independent code (the hypervisor is linked in Xen's high reserved region), no red
//! zone, a static binary, frame pointers for backtraces. The flags travel in
//! `CARGO_ENCODED_RUSTFLAGS` with an explicit `--target`, so they reach only the kernel crates,
//! never build scripts or proc-macros, and a separate target directory keeps them from
//! invalidating the host build.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::{cargo, workspace_root};

/// The target the kernels are built for: the host's, the only one installed.
const KERNEL_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Code-generation flags of the kernel crates, separated by 0x1f as
/// `CARGO_ENCODED_RUSTFLAGS` wants them.
const KERNEL_RUSTFLAGS: &str = "-Crelocation-model=pic\x1f-Cno-redzone=yes\x1f-Ctarget-feature=+crt-static\x1f-Cforce-frame-pointers=yes";

/// Where the build put things.
#[derive(Clone, Debug)]
pub struct Artifacts {
    /// The hypervisor image.
    pub kernel: PathBuf,
    /// Dom0's kernel image.
    pub dom0: PathBuf,
    /// The unprivileged guest kernel image.
    pub domu: PathBuf,
    /// Dom0's ramdisk (ustar).
    pub ramdisk: PathBuf,
    /// Where the test guests (tests/guests) are, one binary each.
    pub test_guests: PathBuf,
    /// `target/kernel/`, where the ISO goes too.
    pub kernel_dir: PathBuf,
}

/// Whether the hypervisor checks its lock order (xen-like's `lock-order-check` feature).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOrderCheck {
    /// Checked: a re-entrant or out-of-order lock panics with both names instead of hanging.
    /// For every build whose kernels are run as tests or by hand.
    On,
    /// Unchecked, as fast as plain spin locks: for `cargo xtask bench`.
    Off,
}

/// Builds the kernels (the hypervisor with its lock-order check) and the ramdisk, and says
/// where they are.
pub fn build() -> Result<Artifacts> {
    build_with(LockOrderCheck::On)
}

/// Builds the kernels and the ramdisk, with or without the hypervisor's lock-order check.
pub fn build_with(lock_order: LockOrderCheck) -> Result<Artifacts> {
    let root = workspace_root();
    let kernel_dir = root.join("target").join("kernel");
    let status = cargo()
        .env("CARGO_ENCODED_RUSTFLAGS", KERNEL_RUSTFLAGS)
        .env_remove("RUSTFLAGS")
        .args([
            "build",
            "--release",
            "--target",
            KERNEL_TARGET,
            "--target-dir",
        ])
        .arg(&kernel_dir)
        .args([
            "-p",
            "xen-like",
            "-p",
            "dom0",
            "-p",
            "guest-kernel",
            "-p",
            "test-guests",
            "--bins",
        ])
        // The hypervisor's hardware glue (`kernel`), and its lock-order
        // check unless this build is for the benchmarks.
        .args(match lock_order {
            LockOrderCheck::On => &["--features", "xen-like/kernel,xen-like/lock-order-check"][..],
            LockOrderCheck::Off => &["--features", "xen-like/kernel"][..],
        })
        .status()
        .context("could not start cargo")?;
    if !status.success() {
        bail!("the kernel build failed ({status}); see cargo's messages above");
    }
    let release = kernel_dir.join(KERNEL_TARGET).join("release");
    let artifacts = Artifacts {
        kernel: release.join("xen-like"),
        dom0: release.join("dom0"),
        domu: release.join("domu"),
        ramdisk: kernel_dir.join("dom0-ramdisk.tar"),
        test_guests: release.clone(),
        kernel_dir,
    };
    for (image, what) in [
        (
            &artifacts.kernel,
            "hypervisor (bin `xen-like` of package xen-like)",
        ),
        (&artifacts.dom0, "Dom0 (bin `dom0` of package dom0)"),
        (
            &artifacts.domu,
            "guest kernel (bin `domu` of package guest-kernel)",
        ),
    ] {
        if !image.is_file() {
            bail!(
                "cargo built, but the {what} is not at {}: check the [[bin]] names",
                image.display()
            );
        }
    }
    let rootfs = root.join("dom0").join("rootfs");
    let entries = write_ramdisk(&artifacts.ramdisk, Some(&rootfs), &artifacts.domu)?;
    println!("hypervisor:   {}", artifacts.kernel.display());
    println!("dom0:         {}", artifacts.dom0.display());
    println!("guest kernel: {}", artifacts.domu.display());
    println!(
        "dom0 ramdisk: {} ({} files: dom0/rootfs/ and boot/domu)",
        artifacts.ramdisk.display(),
        entries
    );
    Ok(artifacts)
}

/// Writes Dom0's ramdisk: a ustar archive of the files under `rootfs` (when it exists) plus the
/// guest image as `boot/domu`. Returns how many files it holds.
///
/// The archive holds regular files only (directories are implied by the paths), in sorted
/// order, with zero timestamps and owners, so that the same inputs give the same bytes and
/// Dom0's reader needs to understand one entry type.
pub fn write_ramdisk(output: &Path, rootfs: Option<&Path>, domu: &Path) -> Result<usize> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    if let Some(rootfs) = rootfs.filter(|rootfs| rootfs.is_dir()) {
        collect_files(rootfs, "", &mut files)?;
    }
    files.retain(|(name, _)| name != "boot/domu");
    files.push(("boot/domu".to_string(), domu.to_path_buf()));
    files.sort();

    let file =
        File::create(output).with_context(|| format!("could not create {}", output.display()))?;
    let mut archive = tar::Builder::new(BufWriter::new(file));
    for (name, path) in &files {
        let data =
            std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
        let mut header = tar::Header::new_ustar();
        header
            .set_path(name)
            .with_context(|| format!("{name:?} cannot be stored in a ustar archive"))?;
        header.set_size(data.len() as u64);
        header.set_mode(if is_executable(path) { 0o755 } else { 0o644 });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        archive
            .append(&header, data.as_slice())
            .with_context(|| format!("could not write {}", output.display()))?;
    }
    archive
        .into_inner()
        .and_then(|mut writer| std::io::Write::flush(&mut writer))
        .with_context(|| format!("could not write {}", output.display()))?;
    Ok(files.len())
}

/// Adds the regular files under `directory` to `files` as (archive name, path).
fn collect_files(directory: &Path, prefix: &str, files: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let entries = std::fs::read_dir(directory)
        .with_context(|| format!("could not list {}", directory.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("could not list {}", directory.display()))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            bail!("{} is not a UTF-8 file name", path.display());
        };
        let archive_name = format!("{prefix}{name}");
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(&path, &format!("{archive_name}/"), files)?;
        } else if kind.is_file() {
            files.push((archive_name, path));
        } else {
            bail!(
                "{} is neither a file nor a directory; Dom0's ramdisk holds regular files only",
                path.display()
            );
        }
    }
    Ok(())
}

/// Whether a file has any execute permission bit.
fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|metadata| metadata.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A fresh scratch directory under the system's temporary directory.
    fn scratch(name: &str) -> PathBuf {
        let directory = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        directory
    }

    fn read_archive(path: &Path) -> Vec<(String, Vec<u8>, bool)> {
        let mut archive = tar::Archive::new(File::open(path).unwrap());
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let name = entry.path().unwrap().to_str().unwrap().to_string();
                let is_ustar = entry.header().as_ustar().is_some();
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                (name, data, is_ustar)
            })
            .collect()
    }

    #[test]
    fn ramdisk_holds_rootfs_files_and_the_guest() {
        let directory = scratch("ramdisk");
        let rootfs = directory.join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc/deep")).unwrap();
        std::fs::write(rootfs.join("etc/motd"), b"hello\n").unwrap();
        std::fs::write(rootfs.join("etc/deep/x"), b"x").unwrap();
        std::fs::write(rootfs.join("a"), b"").unwrap();
        let domu = directory.join("domu");
        std::fs::write(&domu, b"\x7fELF guest").unwrap();
        let output = directory.join("out.tar");

        assert_eq!(write_ramdisk(&output, Some(&rootfs), &domu).unwrap(), 4);
        let entries = read_archive(&output);
        let names: Vec<&str> = entries.iter().map(|(name, _, _)| name.as_str()).collect();
        assert_eq!(names, ["a", "boot/domu", "etc/deep/x", "etc/motd"]);
        assert_eq!(entries[1].1, b"\x7fELF guest");
        assert_eq!(entries[3].1, b"hello\n");
        assert!(entries.iter().all(|(_, _, is_ustar)| *is_ustar));

        // Same inputs, same bytes.
        let first = std::fs::read(&output).unwrap();
        write_ramdisk(&output, Some(&rootfs), &domu).unwrap();
        assert_eq!(first, std::fs::read(&output).unwrap());
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn ramdisk_without_rootfs_holds_only_the_guest() {
        let directory = scratch("ramdisk-empty");
        let domu = directory.join("domu");
        std::fs::write(&domu, b"guest").unwrap();
        let output = directory.join("out.tar");
        let missing = directory.join("no-such-rootfs");
        assert_eq!(write_ramdisk(&output, Some(&missing), &domu).unwrap(), 1);
        let entries = read_archive(&output);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0, "boot/domu");
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
