//! The ELF notes a PV kernel image carries for its domain builder (`elfnote.h`).
//!
//! A PV kernel is an ordinary ELF file with a `PT_NOTE` segment holding notes
//! whose name is [`XEN_ELFNOTE_NAME`] (`"Xen"`). Each note's type is an
//! [`ElfNoteType`] and its descriptor is either a NUL-terminated string or a
//! little-endian integer. The builder reads them to learn where to load the
//! kernel and where to enter it: a missing `XEN_ELFNOTE_VIRT_BASE` means 0,
//! and a missing `XEN_ELFNOTE_ENTRY` means the ELF header's `e_entry`.

/// Name field of every Xen ELF note, without its NUL.
pub const XEN_ELFNOTE_NAME: &str = "Xen";
/// Name field of every Xen ELF note as stored (`namesz` = 4, with the NUL).
pub const XEN_ELFNOTE_NAME_WITH_NUL: &[u8; 4] = b"Xen\0";

/// How a note's descriptor is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfNoteValue {
    /// A NUL-terminated string.
    String,
    /// A little-endian unsigned integer of the descriptor's size (4 or 8 bytes).
    Numeric,
    /// Something else (a list or a bitmap); see the note's documentation.
    Other,
}

abi_enum! {
    /// An ELF note type (`XEN_ELFNOTE_*`).
    pub enum ElfNoteType: u32 {
        /// (Ignored) legacy information note.
        Info = 0 => "XEN_ELFNOTE_INFO",
        /// Numeric: virtual address of the entry point.
        Entry = 1 => "XEN_ELFNOTE_ENTRY",
        /// Numeric: virtual address of a page Xen should fill with hypercall
        /// stubs.
        HypercallPage = 2 => "XEN_ELFNOTE_HYPERCALL_PAGE",
        /// Numeric: virtual address at which physical address 0 is mapped
        /// (the base of the kernel's initial mapping).
        VirtBase = 3 => "XEN_ELFNOTE_VIRT_BASE",
        /// Numeric: difference between ELF virtual addresses and the
        /// physical load addresses.
        PaddrOffset = 4 => "XEN_ELFNOTE_PADDR_OFFSET",
        /// String: the Xen version the kernel expects (`"xen-3.0"`).
        XenVersion = 5 => "XEN_ELFNOTE_XEN_VERSION",
        /// String: the guest operating system's name.
        GuestOs = 6 => "XEN_ELFNOTE_GUEST_OS",
        /// String: the guest operating system's version.
        GuestVersion = 7 => "XEN_ELFNOTE_GUEST_VERSION",
        /// String: the loader type (`"generic"`).
        Loader = 8 => "XEN_ELFNOTE_LOADER",
        /// String: PAE mode (32-bit guests).
        PaeMode = 9 => "XEN_ELFNOTE_PAE_MODE",
        /// String: `|`-separated features the kernel wants (`"!writable_page_tables"`...).
        Features = 10 => "XEN_ELFNOTE_FEATURES",
        /// String: whether to load the BSD symbol table (`"yes"`).
        BsdSymtab = 11 => "XEN_ELFNOTE_BSD_SYMTAB",
        /// Numeric: lowest address the hypervisor may use (32-bit guests).
        HvStartLow = 12 => "XEN_ELFNOTE_HV_START_LOW",
        /// Other: mask and value saying which L1 entries hold valid MFNs.
        L1MfnValid = 13 => "XEN_ELFNOTE_L1_MFN_VALID",
        /// Numeric: the kernel can handle a cancelled suspend.
        SuspendCancel = 14 => "XEN_ELFNOTE_SUSPEND_CANCEL",
        /// Numeric: virtual address where the initial P2M list should be
        /// mapped, instead of after the kernel.
        InitP2m = 15 => "XEN_ELFNOTE_INIT_P2M",
        /// Numeric: the kernel accepts `mod_start` as a PFN.
        ModStartPfn = 16 => "XEN_ELFNOTE_MOD_START_PFN",
        /// Other: 32-bit bitmap of supported features (`XENFEAT_*`).
        SupportedFeatures = 17 => "XEN_ELFNOTE_SUPPORTED_FEATURES",
        /// Numeric: 32-bit physical entry point for PVH boot.
        Phys32Entry = 18 => "XEN_ELFNOTE_PHYS32_ENTRY",
        /// Other: relocation range and alignment for PVH boot.
        Phys32Reloc = 19 => "XEN_ELFNOTE_PHYS32_RELOC",
    }
}

impl ElfNoteType {
    /// How this note's descriptor is encoded.
    pub const fn value_encoding(self) -> ElfNoteValue {
        match self {
            Self::XenVersion
            | Self::GuestOs
            | Self::GuestVersion
            | Self::Loader
            | Self::PaeMode
            | Self::Features
            | Self::BsdSymtab => ElfNoteValue::String,
            Self::Entry
            | Self::HypercallPage
            | Self::VirtBase
            | Self::PaddrOffset
            | Self::HvStartLow
            | Self::SuspendCancel
            | Self::InitP2m
            | Self::ModStartPfn
            | Self::Phys32Entry => ElfNoteValue::Numeric,
            Self::Info | Self::L1MfnValid | Self::SupportedFeatures | Self::Phys32Reloc => {
                ElfNoteValue::Other
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
        assert_eq!(ElfNoteType::Entry.raw(), 1);
        assert_eq!(ElfNoteType::VirtBase.raw(), 3);
        assert_eq!(ElfNoteType::Phys32Entry.raw(), 18);
        assert_eq!(ElfNoteType::try_from(2), Ok(ElfNoteType::HypercallPage));
        assert_eq!(ElfNoteType::GuestOs.name(), "XEN_ELFNOTE_GUEST_OS");
        assert_eq!(ElfNoteType::GuestOs.value_encoding(), ElfNoteValue::String);
        assert!(ElfNoteType::try_from(20).is_err());
        for (index, &note) in ElfNoteType::ALL.iter().enumerate() {
            assert_eq!(note.raw() as usize, index, "note types are dense from 0");
        }
        assert_eq!(&XEN_ELFNOTE_NAME_WITH_NUL[..3], XEN_ELFNOTE_NAME.as_bytes());
    }
}
