//! `xen_version`: which hypervisor this is and what it offers.
//!
//! We report version 4.17 because that is the version of Xen's PV interface
//! this hypervisor follows (guests look at it to decide what they may use);
//! the extra version string says what is really running.

use crate::console::caller_log;
use crate::mm::guest_access;
use hypercall_abi::layout::HYPERVISOR_VIRT_START;
use hypercall_abi::version::{
    encode_version, XenFeatureInfo, XenPlatformParameters, XenVersionOp, XEN_CAPABILITIES_INFO_LEN,
    XEN_CHANGESET_INFO_LEN, XEN_EXTRAVERSION_LEN,
};
use hypercall_abi::XenError;

/// Major version of Xen's interface we implement.
pub const XEN_MAJOR: u16 = 4;
/// Minor version of Xen's interface we implement.
pub const XEN_MINOR: u16 = 17;
/// What is really running.
pub const EXTRA_VERSION: &str = "-xenlike-0.1.0";
const CAPABILITIES: &str = "xen-3.0-x86_64";

/// Copies `text`, zero-padded to `length` bytes, to the guest.
fn copy_text(address: u64, text: &str, length: usize) -> Result<u64, XenError> {
    let mut buffer = [0u8; XEN_CAPABILITIES_INFO_LEN];
    let size = text.len().min(length - 1);
    buffer[..size].copy_from_slice(&text.as_bytes()[..size]);
    guest_access::copy_to_guest(address, &buffer[..length])?;
    Ok(0)
}

/// `xen_version(cmd, arg)`.
pub fn xen_version(command: u64, argument: u64) -> Result<u64, XenError> {
    let Some(operation) = XenVersionOp::from_register(command) else {
        caller_log!(Warn, "unknown xen_version command {command}: -ENOSYS");
        return Err(XenError::ENOSYS);
    };
    match operation {
        XenVersionOp::Version => Ok(u64::from(encode_version(XEN_MAJOR, XEN_MINOR))),
        XenVersionOp::Extraversion => copy_text(argument, EXTRA_VERSION, XEN_EXTRAVERSION_LEN),
        XenVersionOp::Capabilities => copy_text(argument, CAPABILITIES, XEN_CAPABILITIES_INFO_LEN),
        XenVersionOp::Changeset => copy_text(argument, "xen-like", XEN_CHANGESET_INFO_LEN),
        XenVersionOp::PlatformParameters => {
            let parameters = XenPlatformParameters {
                virt_start: HYPERVISOR_VIRT_START,
            };
            guest_access::write_to_guest(argument, &parameters.virt_start)?;
            Ok(0)
        }
        XenVersionOp::GetFeatures => {
            // No optional PV features are offered yet: every submap is 0.
            let mut request = [0u8; 8];
            guest_access::copy_from_guest_for_update(argument, &mut request)?;
            let reply = XenFeatureInfo {
                submap_idx: u32::from_le_bytes([request[0], request[1], request[2], request[3]]),
                submap: 0,
            };
            let mut bytes = [0u8; 8];
            bytes[..4].copy_from_slice(&reply.submap_idx.to_le_bytes());
            bytes[4..].copy_from_slice(&reply.submap.to_le_bytes());
            guest_access::copy_to_guest(argument, &bytes)?;
            Ok(0)
        }
        XenVersionOp::Pagesize => Ok(4096),
        other => {
            caller_log!(
                Warn,
                "xen_version {} is not implemented: -ENOSYS",
                other.name()
            );
            Err(XenError::ENOSYS)
        }
    }
}
