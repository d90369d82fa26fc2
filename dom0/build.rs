//! Links Dom0 with the guest linker script (Dom0 is a PV guest kernel too).
fn main() {
    kernel_link::link_kernel("../guest-kernel/link.ld");
}
