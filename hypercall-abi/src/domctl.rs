//! Domain control (hypercall 36): project-defined, reserved for later.
//!
//! Xen's own `domctl` payloads (`xen/include/public/domctl.h`) are an
//! internal interface between Xen and its toolstack that changes with every
//! release, so this project defines its own, in the same style as
//! [`crate::sysctl`]: a command number, an interface version and a
//! fixed-size union of payloads. A call whose `interface_version` is not
//! [`DOMCTL_INTERFACE_VERSION`] fails with `-EACCES`, as Xen does.
//!
//! No operation is defined yet, and the hypervisor answers every domctl with
//! `-ENOSYS`. The planned operations, keeping Xen's numbers, are:
//!
//! | op                    | Xen number | purpose                                        |
//! |-----------------------|-----------:|------------------------------------------------|
//! | `createdomain`        | 1          | create an empty domain, return its ID          |
//! | `destroydomain`       | 2          | tear a domain down and free its memory         |
//! | `pausedomain`         | 3          | stop scheduling a domain's vCPUs               |
//! | `unpausedomain`       | 4          | resume scheduling them                         |
//! | `getdomaininfo`       | 5          | one [`crate::sysctl::DomainInfo`] record       |
//! | `max_mem`             | 11         | set a domain's memory limit                    |
//! | `setvcpucontext`      | 12         | set a vCPU's initial registers before start    |

/// Version of the project's domctl interface; see the module documentation.
pub const DOMCTL_INTERFACE_VERSION: u32 = 1;
