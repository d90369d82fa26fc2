//! Dom0's ramdisk: a ustar archive the hypervisor's builder placed after
//! Dom0's kernel, holding guest images and configuration files.
#![forbid(unsafe_code)]

use crate::sys::ramdisk;
use guest_kernel::{print, println};

/// The regular files of the ramdisk (a ustar archive).
pub fn ramdisk_files() -> impl Iterator<Item = (heapless::String<100>, &'static [u8])> {
    let archive = tar_no_std::TarArchiveRef::new(ramdisk()).ok();
    archive.into_iter().flat_map(|archive| {
        archive.entries().filter_map(|entry| {
            let name = entry.filename();
            let name = name.as_str().ok()?;
            Some((heapless::String::try_from(name).ok()?, entry.data()))
        })
    })
}

pub fn ls(prefix: Option<&str>) {
    let mut shown = 0;
    for (name, data) in ramdisk_files() {
        if prefix.is_none_or(|prefix| name.starts_with(prefix.trim_start_matches('/'))) {
            println!("{:>9}  /{}", data.len(), name);
            shown += 1;
        }
    }
    if shown == 0 {
        println!(
            "ls: no files{}",
            if prefix.is_some() {
                " under that prefix"
            } else {
                " in the ramdisk"
            }
        );
    }
}

pub fn cat(file: &str) {
    let wanted = file.trim_start_matches('/');
    match ramdisk_files().find(|(name, _)| name == wanted) {
        Some((_, data)) => match core::str::from_utf8(data) {
            Ok(text) => print!("{text}"),
            Err(_) => println!("cat: /{wanted} is not text ({} bytes)", data.len()),
        },
        None if is_directory(wanted) => println!(
            "cat: /{} is a directory; 'ls /{}' lists its files",
            wanted.trim_end_matches('/'),
            wanted.trim_end_matches('/')
        ),
        None => println!("cat: no file /{wanted} in the ramdisk ('ls' lists them)"),
    }
}

/// Whether `path` (without its leading `/`) is a directory of the ramdisk:
/// some file's path goes on below it.
pub fn is_directory(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    ramdisk_files().any(|(name, _)| {
        path.is_empty()
            || name
                .strip_prefix(path)
                .is_some_and(|below| below.starts_with('/'))
    })
}

/// The contents of `path` in the ramdisk (a leading `/` is optional).
pub fn find(path: &str) -> Option<&'static [u8]> {
    let wanted = path.trim_start_matches('/');
    ramdisk_files()
        .find(|(name, _)| name == wanted)
        .map(|(_, data)| data)
}
