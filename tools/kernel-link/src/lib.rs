//! What every kernel binary's build script says to the linker.
//!
//! The kernels (the hypervisor, Dom0, the DomU and the test guests) are
//! `#![no_std]` binaries for the host target, linked statically with their
//! own linker script and without the C runtime (see shared/TOOLCHAIN.md).
//! The arguments apply to binaries only, so the same crates' libraries still
//! build and test normally on the host.

/// Emits the link arguments for a kernel binary using `script` (a path
/// relative to the crate's manifest directory).
pub fn link_kernel(script: &str) {
    let directory = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    for argument in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        // Page-aligned segments: file layout equals memory layout, which
        // QEMU's multiboot loader needs for the hypervisor.
        "-Wl,-z,max-page-size=4096",
        "-Wl,--build-id=none",
        "-Wl,--no-dynamic-linker",
        "-Wl,--gc-sections",
    ] {
        println!("cargo:rustc-link-arg-bins={argument}");
    }
    println!("cargo:rustc-link-arg-bins=-T{directory}/{script}");
    println!("cargo:rerun-if-changed={script}");
}
