//! Links the hypervisor with its own linker script and no C runtime.
fn main() {
    kernel_link::link_kernel("link.ld");
}
