//! `xen_version`: which hypervisor this is and what it offers.
//!
//! We report version 4.17 because that is the version of Xen's PV interface
//! this hypervisor follows (guests look at it to decide what they may use);
//! the extra version string says what is really running.
//!
//! Who may ask what follows Xen's default policy: everything is open to
//! every domain except the hypervisor's command line and its build ID,
//! which only a privileged domain may read (`-EPERM` for others). This
//! build carries no build ID, so a privileged caller gets Xen's answer for
//! such a build, `-ENODATA`. No toolstack here gives domains a handle
//! (UUID), so `XENVER_guest_handle` returns the all-zero handle, which is
//! also Dom0's in Xen.

use crate::console::caller_log;
use crate::mm::guest_access;
use hypercall_abi::layout::HYPERVISOR_VIRT_START;
use hypercall_abi::version::{
    encode_version, XenCompileInfo, XenFeatureInfo, XenPlatformParameters, XenVersionOp,
    XEN_CAPABILITIES_INFO_LEN, XEN_CHANGESET_INFO_LEN, XEN_COMMANDLINE_LEN, XEN_EXTRAVERSION_LEN,
};
use hypercall_abi::XenError;
use spin::Mutex;

/// The hypervisor's command line (its options, as `XENVER_commandline`
/// returns them), kept from boot.
static COMMAND_LINE: Mutex<heapless::String<XEN_COMMANDLINE_LEN>> =
    Mutex::new(heapless::String::new());

/// Keeps the boot command line for `XENVER_commandline` (cut to fit, as
/// Xen keeps `saved_cmdline`).
pub fn set_command_line(line: &str) {
    let mut saved = COMMAND_LINE.lock();
    saved.clear();
    for character in line.chars() {
        if saved.len() + character.len_utf8() >= XEN_COMMANDLINE_LEN {
            break;
        }
        let _ = saved.push(character);
    }
}

/// The compiler, as Xen reports the one it was built with.
const COMPILER: &str = "rustc";

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
    fill_text(&mut buffer[..length], text);
    guest_access::copy_to_guest(address, &buffer[..length])?;
    Ok(0)
}

/// Writes `text` into `field`, cut to leave a NUL, the rest zeroed (no
/// byte of the hypervisor's stack may follow the text: XSA-122).
fn fill_text(field: &mut [u8], text: &str) {
    field.fill(0);
    let size = text.len().min(field.len().saturating_sub(1));
    field[..size].copy_from_slice(&text.as_bytes()[..size]);
}

/// `XENVER_compile_info`: the compiler and the build's origin.
fn compile_info(address: u64) -> Result<u64, XenError> {
    let mut info = XenCompileInfo {
        compiler: [0; 64],
        compile_by: [0; 16],
        compile_domain: [0; 32],
        compile_date: [0; 32],
    };
    fill_text(&mut info.compiler, COMPILER);
    fill_text(&mut info.compile_by, option_env!("USER").unwrap_or(""));
    fill_text(&mut info.compile_domain, "xen-like");
    fill_text(&mut info.compile_date, "");
    let mut bytes = [0u8; core::mem::size_of::<XenCompileInfo>()];
    bytes[..64].copy_from_slice(&info.compiler);
    bytes[64..80].copy_from_slice(&info.compile_by);
    bytes[80..112].copy_from_slice(&info.compile_domain);
    bytes[112..].copy_from_slice(&info.compile_date);
    guest_access::copy_to_guest(address, &bytes)?;
    Ok(0)
}

/// Fails with `-EPERM`, and says so, unless the caller is privileged.
fn privileged_only(operation: XenVersionOp) -> Result<(), XenError> {
    crate::domain::require_privileged().inspect_err(|_| {
        caller_log!(
            Debug,
            "{} is for privileged domains: -EPERM",
            operation.name()
        );
    })
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
        XenVersionOp::CompileInfo => compile_info(argument),
        XenVersionOp::GuestHandle => {
            guest_access::copy_to_guest(argument, &[0u8; 16])?;
            Ok(0)
        }
        XenVersionOp::Commandline => {
            privileged_only(operation)?;
            let line = COMMAND_LINE.lock().clone();
            copy_text(argument, &line, XEN_COMMANDLINE_LEN)
        }
        XenVersionOp::BuildId => {
            privileged_only(operation)?;
            // struct xen_build_id { u32 len; u8 buf[]; }: a null handle
            // asks only for the size; a zero-sized buffer is refused.
            if argument != 0 {
                let length: u32 = guest_access::read_from_guest(argument)?;
                if length == 0 {
                    return Err(XenError::EINVAL);
                }
            }
            caller_log!(
                Debug,
                "XENVER_build_id: this build has no build ID: -ENODATA"
            );
            Err(XenError::ENODATA)
        }
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
