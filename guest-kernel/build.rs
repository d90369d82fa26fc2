//! Links the DomU binary with the guest linker script and no C runtime.
fn main() {
    kernel_link::link_kernel("link.ld");
}
