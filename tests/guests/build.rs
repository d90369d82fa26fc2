//! Links the test guests with the guest linker script.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,-z,max-page-size=4096",
        "-Wl,--build-id=none",
        "-Wl,--no-dynamic-linker",
        "-Wl,--gc-sections",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rustc-link-arg-bins=-T{dir}/../../guest-kernel/link.ld");
    println!("cargo:rerun-if-changed=../../guest-kernel/link.ld");
}
