//! Links the test guests with the guest linker script.
fn main() {
    kernel_link::link_kernel("../../guest-kernel/link.ld");
}
