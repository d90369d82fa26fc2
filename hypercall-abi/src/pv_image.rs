//! Reading a PV kernel image: an ELF64 executable with Xen's ELF notes.
//!
//! Xen finds out how to start a PV kernel from notes named "Xen" in the
//! image (`xen/include/public/elfnote.h`): where it expects to be mapped
//! (`VIRT_BASE`), where to enter (`ENTRY`), which page to fill with
//! hypercall stubs (`HYPERCALL_PAGE`), and more. Any Xen PV64 kernel can be
//! started from these facts alone, which is why the hypervisor's Dom0 builder
//! and Dom0's own domain builder both read images through this module.
//!
//! The image comes from outside (a boot module, a file in Dom0's ramdisk),
//! so every offset and size is checked before use; a bad image is an
//! [`ImageError`] that says what is wrong, never a panic.

use crate::elfnote::ElfNoteType as XenElfNote;
use elf::{abi, endian::LittleEndian, ElfBytes};
use heapless::Vec;

/// The most loadable segments we accept (kernels have two to four).
pub const MAX_SEGMENTS: usize = 8;
const PAGE_SIZE: u64 = 4096;
/// The largest kernel image span we accept, virtual start to end (1 GiB).
pub const MAX_IMAGE_SPAN: u64 = 1 << 30;

/// Why an image cannot be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Not an ELF file, or its headers are cut short or inconsistent.
    NotElf,
    /// An ELF file, but not a 64-bit little-endian x86_64 executable.
    WrongMachine,
    /// No `PT_LOAD` segment, or more than [`MAX_SEGMENTS`].
    BadSegmentCount,
    /// A segment's file bytes lie outside the file, or it is larger in the
    /// file than in memory.
    SegmentOutsideFile,
    /// A segment starts below `VIRT_BASE`, overflows, or the image spans
    /// more than [`MAX_IMAGE_SPAN`].
    BadAddresses,
    /// The entry point is not inside a loaded segment.
    EntryOutsideImage,
    /// The hypercall page is not page-aligned inside the image.
    BadHypercallPage,
    /// A Xen note's value is not an 8-byte (or 4-byte) little-endian number.
    BadNote,
    /// No notes named "Xen": not a Xen PV kernel.
    NoXenNotes,
}

impl ImageError {
    /// A sentence saying what is wrong.
    pub fn description(self) -> &'static str {
        match self {
            Self::NotElf => "is not an ELF file (or its headers are damaged)",
            Self::WrongMachine => "is not a 64-bit x86_64 executable",
            Self::BadSegmentCount => "has no loadable segment, or too many",
            Self::SegmentOutsideFile => "has a segment that points outside the file",
            Self::BadAddresses => "has segments below its VIRT_BASE, overlapping the top of memory, or spanning more than 1 GiB",
            Self::EntryOutsideImage => "has an entry point outside its loaded segments",
            Self::BadHypercallPage => "has a hypercall page that is not a page-aligned address inside the image",
            Self::BadNote => "has a Xen ELF note with a malformed value",
            Self::NoXenNotes => "has no Xen ELF notes: it is not a Xen PV kernel",
        }
    }
}

/// One loadable segment: copy `file_size` bytes from `file_offset` to
/// `virtual_address`, then zero up to `memory_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Where the segment goes in the guest's address space.
    pub virtual_address: u64,
    /// Offset of its bytes in the file.
    pub file_offset: u64,
    /// How many bytes come from the file.
    pub file_size: u64,
    /// How many bytes it occupies in memory (the rest is zero).
    pub memory_size: u64,
}

/// What the builder needs to know about a PV kernel image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvImage {
    /// `XEN_ELFNOTE_VIRT_BASE` (0 if absent, as in Xen): the virtual address
    /// of pseudo-physical address 0.
    pub virt_base: u64,
    /// `XEN_ELFNOTE_ENTRY`, or the ELF entry point when absent.
    pub entry: u64,
    /// `XEN_ELFNOTE_HYPERCALL_PAGE`: a page the builder fills with stubs.
    pub hypercall_page: Option<u64>,
    /// Lowest virtual address of the image, rounded down to a page.
    pub image_start: u64,
    /// One past the highest virtual address of the image, rounded up to a page.
    pub image_end: u64,
    /// The loadable segments.
    pub segments: Vec<Segment, MAX_SEGMENTS>,
}

impl PvImage {
    /// Reads and checks an image.
    pub fn parse(bytes: &[u8]) -> Result<Self, ImageError> {
        let file =
            ElfBytes::<LittleEndian>::minimal_parse(bytes).map_err(|_| ImageError::NotElf)?;
        if file.ehdr.class != elf::file::Class::ELF64
            || file.ehdr.e_machine != abi::EM_X86_64
            || file.ehdr.e_type != abi::ET_EXEC
        {
            return Err(ImageError::WrongMachine);
        }
        let program_headers = file.segments().ok_or(ImageError::BadSegmentCount)?;

        let mut notes = Notes::default();
        let mut segments: Vec<Segment, MAX_SEGMENTS> = Vec::new();
        for header in program_headers.iter() {
            match header.p_type {
                abi::PT_LOAD if header.p_memsz > 0 => {
                    let segment = Segment {
                        virtual_address: header.p_vaddr,
                        file_offset: header.p_offset,
                        file_size: header.p_filesz,
                        memory_size: header.p_memsz,
                    };
                    let file_end = segment.file_offset.checked_add(segment.file_size);
                    if file_end.is_none_or(|end| end > bytes.len() as u64)
                        || segment.file_size > segment.memory_size
                    {
                        return Err(ImageError::SegmentOutsideFile);
                    }
                    segments
                        .push(segment)
                        .map_err(|_| ImageError::BadSegmentCount)?;
                }
                abi::PT_NOTE => {
                    let note_data = file
                        .segment_data_as_notes(&header)
                        .map_err(|_| ImageError::NotElf)?;
                    for note in note_data {
                        if let elf::note::Note::Unknown(any) = note {
                            notes.record(any.name, any.n_type, any.desc)?;
                        }
                    }
                }
                _ => {}
            }
        }
        if segments.is_empty() {
            return Err(ImageError::BadSegmentCount);
        }
        if !notes.seen {
            return Err(ImageError::NoXenNotes);
        }

        let virt_base = notes.virt_base.unwrap_or(0);
        let mut image_start = u64::MAX;
        let mut image_end = 0u64;
        for segment in &segments {
            let end = segment
                .virtual_address
                .checked_add(segment.memory_size)
                .and_then(|end| end.checked_next_multiple_of(PAGE_SIZE))
                .ok_or(ImageError::BadAddresses)?;
            if segment.virtual_address < virt_base {
                return Err(ImageError::BadAddresses);
            }
            image_start = image_start.min(segment.virtual_address & !(PAGE_SIZE - 1));
            image_end = image_end.max(end);
        }
        if image_end - image_start > MAX_IMAGE_SPAN {
            return Err(ImageError::BadAddresses);
        }

        let entry = notes.entry.unwrap_or(file.ehdr.e_entry);
        let inside = |address: u64| {
            segments.iter().any(|segment| {
                address >= segment.virtual_address
                    && address - segment.virtual_address < segment.memory_size
            })
        };
        if !inside(entry) {
            return Err(ImageError::EntryOutsideImage);
        }
        if let Some(page) = notes.hypercall_page {
            if page % PAGE_SIZE != 0 || !inside(page) || !inside(page + PAGE_SIZE - 1) {
                return Err(ImageError::BadHypercallPage);
            }
        }
        Ok(Self {
            virt_base,
            entry,
            hypercall_page: notes.hypercall_page,
            image_start,
            image_end,
            segments,
        })
    }
}

/// The Xen notes we act on, gathered from every `PT_NOTE` segment.
#[derive(Default)]
struct Notes {
    seen: bool,
    virt_base: Option<u64>,
    entry: Option<u64>,
    hypercall_page: Option<u64>,
}

impl Notes {
    fn record(&mut self, name: &[u8], kind: u64, value: &[u8]) -> Result<(), ImageError> {
        // The name is "Xen" with its terminating zero (namesz 4).
        if name.strip_suffix(b"\0").unwrap_or(name) != b"Xen" {
            return Ok(());
        }
        self.seen = true;
        let Ok(kind) = XenElfNote::try_from(kind as u32) else {
            return Ok(()); // A note we do not know is not an error, as in Xen.
        };
        let slot = match kind {
            XenElfNote::VirtBase => &mut self.virt_base,
            XenElfNote::Entry => &mut self.entry,
            XenElfNote::HypercallPage => &mut self.hypercall_page,
            _ => return Ok(()),
        };
        *slot = Some(note_number(value)?);
        Ok(())
    }
}

/// Xen's numeric notes hold a 4- or 8-byte little-endian value.
fn note_number(value: &[u8]) -> Result<u64, ImageError> {
    match value.len() {
        8 => Ok(u64::from_le_bytes(
            value.try_into().map_err(|_| ImageError::BadNote)?,
        )),
        4 => Ok(u64::from(u32::from_le_bytes(
            value.try_into().map_err(|_| ImageError::BadNote)?,
        ))),
        _ => Err(ImageError::BadNote),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::vec::Vec as StdVec;

    /// Builds a minimal ELF64 executable: one PT_LOAD at `vaddr` with
    /// `code`, plus a PT_NOTE segment holding the given Xen notes.
    pub(crate) fn build_elf(vaddr: u64, code: &[u8], bss: u64, notes: &[(u32, u64)]) -> StdVec<u8> {
        let mut note_bytes = StdVec::new();
        for &(kind, value) in notes {
            note_bytes.extend_from_slice(&4u32.to_le_bytes()); // namesz
            note_bytes.extend_from_slice(&8u32.to_le_bytes()); // descsz
            note_bytes.extend_from_slice(&kind.to_le_bytes());
            note_bytes.extend_from_slice(b"Xen\0");
            note_bytes.extend_from_slice(&value.to_le_bytes());
        }
        let header_size = 64u64;
        let phdr_size = 56u64;
        let phnum = 2u64;
        let notes_offset = header_size + phdr_size * phnum;
        let code_offset = (notes_offset + note_bytes.len() as u64).next_multiple_of(16);
        let mut out = StdVec::new();
        out.extend_from_slice(b"\x7fELF");
        out.extend_from_slice(&[2, 1, 1, 0]); // 64-bit, little endian, version 1, SysV
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        out.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&vaddr.to_le_bytes()); // e_entry
        out.extend_from_slice(&header_size.to_le_bytes()); // e_phoff
        out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
        out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        out.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
        out.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
        out.extend_from_slice(&(phnum as u16).to_le_bytes());
        out.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
        out.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
        out.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
        let mut phdr = |kind: u32, offset: u64, address: u64, file: u64, memory: u64| {
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&7u32.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&address.to_le_bytes());
            out.extend_from_slice(&address.to_le_bytes());
            out.extend_from_slice(&file.to_le_bytes());
            out.extend_from_slice(&memory.to_le_bytes());
            out.extend_from_slice(&4u64.to_le_bytes());
        };
        phdr(
            4,
            notes_offset,
            0,
            note_bytes.len() as u64,
            note_bytes.len() as u64,
        );
        phdr(
            1,
            code_offset,
            vaddr,
            code.len() as u64,
            code.len() as u64 + bss,
        );
        out.extend_from_slice(&note_bytes);
        out.resize(code_offset as usize, 0);
        out.extend_from_slice(code);
        out
    }

    const BASE: u64 = 0xffff_ffff_8000_0000;

    #[test]
    fn reads_the_xen_notes() {
        let code = [0x90u8; 0x2000];
        let elf = build_elf(
            BASE,
            &code,
            0x1000,
            &[(3, BASE), (1, BASE + 0x10), (2, BASE + 0x1000)],
        );
        let image = PvImage::parse(&elf).unwrap();
        assert_eq!(image.virt_base, BASE);
        assert_eq!(image.entry, BASE + 0x10);
        assert_eq!(image.hypercall_page, Some(BASE + 0x1000));
        assert_eq!(image.image_start, BASE);
        assert_eq!(image.image_end, BASE + 0x3000);
        assert_eq!(image.segments.len(), 1);
        assert_eq!(image.segments[0].file_size, 0x2000);
        assert_eq!(image.segments[0].memory_size, 0x3000);
    }

    #[test]
    fn missing_notes_take_xens_defaults() {
        // A "Xen" note of a kind we ignore (GUEST_OS) still makes it a Xen image.
        let elf = build_elf(0x100000, &[0x90; 16], 0, &[(6, 0)]);
        let image = PvImage::parse(&elf).unwrap();
        assert_eq!(image.virt_base, 0, "missing VIRT_BASE means 0");
        assert_eq!(image.entry, 0x100000, "missing ENTRY means e_entry");
        assert_eq!(image.hypercall_page, None);
    }

    #[test]
    fn refuses_what_is_not_a_pv_kernel() {
        assert_eq!(PvImage::parse(b"#!/bin/sh\n"), Err(ImageError::NotElf));
        assert_eq!(PvImage::parse(&[]), Err(ImageError::NotElf));
        let no_notes = build_elf(0x100000, &[0x90; 16], 0, &[]);
        assert_eq!(PvImage::parse(&no_notes), Err(ImageError::NoXenNotes));
        let mut arm = build_elf(0x100000, &[0x90; 16], 0, &[(6, 0)]);
        arm[18] = 183; // EM_AARCH64
        assert_eq!(PvImage::parse(&arm), Err(ImageError::WrongMachine));
    }

    #[test]
    fn refuses_bad_addresses() {
        let entry_outside = build_elf(BASE, &[0x90; 16], 0, &[(3, BASE), (1, BASE + 0x5000)]);
        assert_eq!(
            PvImage::parse(&entry_outside),
            Err(ImageError::EntryOutsideImage)
        );
        let below_base = build_elf(BASE, &[0x90; 16], 0, &[(3, BASE + 0x1000)]);
        assert_eq!(PvImage::parse(&below_base), Err(ImageError::BadAddresses));
        let unaligned_page = build_elf(BASE, &[0x90; 0x3000], 0, &[(2, BASE + 0x10)]);
        assert_eq!(
            PvImage::parse(&unaligned_page),
            Err(ImageError::BadHypercallPage)
        );
        let page_outside = build_elf(BASE, &[0x90; 0x10], 0, &[(2, BASE + 0x1000)]);
        assert_eq!(
            PvImage::parse(&page_outside),
            Err(ImageError::BadHypercallPage)
        );
        let wraps = build_elf(u64::MAX - 0x10, &[0x90; 0x20], 0, &[(6, 0)]);
        assert_eq!(PvImage::parse(&wraps), Err(ImageError::BadAddresses));
        let huge = build_elf(BASE, &[0x90; 0x10], 2 << 30, &[(3, BASE)]);
        assert_eq!(PvImage::parse(&huge), Err(ImageError::BadAddresses));
    }

    #[test]
    fn refuses_segments_outside_the_file() {
        let mut elf = build_elf(BASE, &[0x90; 0x100], 0, &[(3, BASE)]);
        let length = elf.len();
        elf.truncate(length - 0x80);
        assert_eq!(PvImage::parse(&elf), Err(ImageError::SegmentOutsideFile));
    }

    #[test]
    fn refuses_malformed_note_values() {
        assert_eq!(note_number(&[1, 2, 3]), Err(ImageError::BadNote));
        assert_eq!(note_number(&[1, 0, 0, 0]), Ok(1));
    }

    #[test]
    fn every_error_has_a_sentence() {
        assert!(ImageError::NoXenNotes.description().contains("PV kernel"));
    }
}
