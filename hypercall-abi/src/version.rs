//! `xen_version` sub-ops and their result buffers (`version.h`).
//!
//! `xen_version(cmd, arg)`: `cmd` in `rdi` is a [`XenVersionOp`], `arg` in
//! `rsi` points at the buffer the sub-op fills (or is 0). All sub-ops return
//! 0 on success except `XENVER_version` and `XENVER_pagesize`, which return
//! their answer directly.

use bytemuck::{Pod, Zeroable};
use core::mem::{offset_of, size_of};

abi_enum! {
    /// A `xen_version` sub-op (`XENVER_*`).
    pub enum XenVersionOp: u32 {
        /// Returns `major << 16 | minor`; `arg` is 0.
        Version = 0 => "XENVER_version",
        /// Fills a [`XenExtraversion`] (such as `".0-rc"`).
        Extraversion = 1 => "XENVER_extraversion",
        /// Fills a [`XenCompileInfo`].
        CompileInfo = 2 => "XENVER_compile_info",
        /// Fills a [`XenCapabilitiesInfo`]: space-separated guest types,
        /// such as `"xen-3.0-x86_64"`.
        Capabilities = 3 => "XENVER_capabilities",
        /// Fills a [`XenChangesetInfo`] (source revision).
        Changeset = 4 => "XENVER_changeset",
        /// Fills a [`XenPlatformParameters`].
        PlatformParameters = 5 => "XENVER_platform_parameters",
        /// Fills a [`XenFeatureInfo`] for the requested 32-bit feature word.
        GetFeatures = 6 => "XENVER_get_features",
        /// Returns the page size; `arg` is 0.
        Pagesize = 7 => "XENVER_pagesize",
        /// Fills the domain's 16-byte handle (its UUID, set by the toolstack).
        GuestHandle = 8 => "XENVER_guest_handle",
        /// Fills a 1024-byte buffer with the hypervisor's command line.
        Commandline = 9 => "XENVER_commandline",
        /// Fills a variable-length buffer with the build ID.
        BuildId = 10 => "XENVER_build_id",
        /// Variable-length form of `extraversion`.
        Extraversion2 = 11 => "XENVER_extraversion2",
        /// Variable-length form of `capabilities`.
        Capabilities2 = 12 => "XENVER_capabilities2",
        /// Variable-length form of `changeset`.
        Changeset2 = 13 => "XENVER_changeset2",
        /// Variable-length form of `commandline`.
        Commandline2 = 14 => "XENVER_commandline2",
    }
}

/// Encodes a version as `XENVER_version` returns it: `major << 16 | minor`.
pub const fn encode_version(major: u16, minor: u16) -> u32 {
    (major as u32) << 16 | minor as u32
}

/// Splits an `XENVER_version` result into `(major, minor)`.
pub const fn decode_version(version: u32) -> (u16, u16) {
    ((version >> 16) as u16, version as u16)
}

/// Size of [`XenExtraversion`] (`XEN_EXTRAVERSION_LEN`).
pub const XEN_EXTRAVERSION_LEN: usize = 16;
/// OUT buffer of `XENVER_extraversion`: NUL-terminated text.
pub type XenExtraversion = [u8; XEN_EXTRAVERSION_LEN];

/// Size of [`XenCapabilitiesInfo`] (`XEN_CAPABILITIES_INFO_LEN`).
pub const XEN_CAPABILITIES_INFO_LEN: usize = 1024;
/// OUT buffer of `XENVER_capabilities`: NUL-terminated text.
pub type XenCapabilitiesInfo = [u8; XEN_CAPABILITIES_INFO_LEN];

/// Size of [`XenChangesetInfo`] (`XEN_CHANGESET_INFO_LEN`).
pub const XEN_CHANGESET_INFO_LEN: usize = 64;
/// OUT buffer of `XENVER_changeset`: NUL-terminated text.
pub type XenChangesetInfo = [u8; XEN_CHANGESET_INFO_LEN];

/// Size of the buffer `XENVER_commandline` fills.
pub const XEN_COMMANDLINE_LEN: usize = 1024;

/// OUT buffer of `XENVER_compile_info` (`xen_compile_info`), 144 bytes of
/// NUL-terminated text fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct XenCompileInfo {
    /// OUT: compiler name and version.
    pub compiler: [u8; 64],
    /// OUT: user who built the hypervisor.
    pub compile_by: [u8; 16],
    /// OUT: host domain where it was built.
    pub compile_domain: [u8; 32],
    /// OUT: build date.
    pub compile_date: [u8; 32],
}

const _: () = assert!(size_of::<XenCompileInfo>() == 144);
const _: () = assert!(offset_of!(XenCompileInfo, compile_by) == 64);
const _: () = assert!(offset_of!(XenCompileInfo, compile_domain) == 80);
const _: () = assert!(offset_of!(XenCompileInfo, compile_date) == 112);

/// OUT buffer of `XENVER_platform_parameters` (`xen_platform_parameters`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct XenPlatformParameters {
    /// OUT: lowest virtual address Xen reserves in the guest's address space
    /// (for 64-bit PV, `HYPERVISOR_VIRT_START`).
    pub virt_start: u64,
}

const _: () = assert!(size_of::<XenPlatformParameters>() == 8);

/// Buffer of `XENVER_get_features` (`xen_feature_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct XenFeatureInfo {
    /// IN: which 32-bit word of the feature bitmap to return.
    pub submap_idx: u32,
    /// OUT: that word; bit `n` is feature `32 * submap_idx + n` (`XENFEAT_*`).
    pub submap: u32,
}

const _: () = assert!(size_of::<XenFeatureInfo>() == 8);
const _: () = assert!(offset_of!(XenFeatureInfo, submap) == 4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_encoding() {
        assert_eq!(encode_version(4, 17), 0x0004_0011);
        assert_eq!(decode_version(0x0004_0011), (4, 17));
        assert_eq!(XenVersionOp::PlatformParameters.raw(), 5);
        for &op in XenVersionOp::ALL {
            assert_eq!(XenVersionOp::try_from(op.raw()), Ok(op));
        }
    }
}
