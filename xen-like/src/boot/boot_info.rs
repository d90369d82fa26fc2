//! Reading what the boot loader hands over (multiboot1 and multiboot2) into one `BootInfo`.

use heapless::{String, Vec};

/// Magic in `eax` from a multiboot1 loader.
pub const MULTIBOOT1_MAGIC: u32 = 0x2bad_b002;
/// Magic in `eax` from a multiboot2 loader.
pub const MULTIBOOT2_MAGIC: u32 = 0x36d7_6289;

/// The most memory-map entries and modules we keep.
const MAX_REGIONS: usize = 64;
const MAX_MODULES: usize = 8;

/// A range of usable RAM, `[start, end)` physical.
#[derive(Clone, Copy, Debug)]
pub struct RamRegion {
    pub start: u64,
    pub end: u64,
}

/// A boot module: `[start, end)` physical, and the string the loader gave.
#[derive(Clone, Debug)]
pub struct Module {
    pub start: u64,
    pub end: u64,
    pub string: String<256>,
}

impl Module {
    /// The module's bytes, read through the direct map.
    ///
    /// The slice borrows the module: the boot modules' frames stay the
    /// hypervisor's (reserved in the frame allocator and the frame table)
    /// until `boot::start` gives them back with `release_boot_range`, which
    /// it does only once the Dom0 builder, the one reader, is done.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: [start, end) is RAM the loader put the module in, covered
        // by the direct map and reserved for the hypervisor while the
        // module is in use (see above); nothing writes it meanwhile.
        unsafe {
            core::slice::from_raw_parts(
                crate::mm::physical_pointer::<u8>(self.start),
                (self.end - self.start) as usize,
            )
        }
    }
}

/// Everything we keep from the boot loader.
#[derive(Debug, Default)]
pub struct BootInfo {
    /// Which loader: "multiboot1" or "multiboot2".
    pub protocol: &'static str,
    pub ram: Vec<RamRegion, MAX_REGIONS>,
    pub modules: Vec<Module, MAX_MODULES>,
    pub command_line: String<1024>,
    /// The loader's own information structure, `[start, end)` physical, to
    /// keep its frames out of the allocator until we are done reading.
    pub info_range: (u64, u64),
    /// Regions or modules that did not fit in our fixed-size lists.
    pub dropped: usize,
}

/// Why the boot information cannot be used.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // the fields are read through Debug in the boot panic message
pub enum BootError {
    /// `eax` held neither multiboot magic.
    UnknownMagic(u32),
    /// The multiboot2 structure is malformed.
    BadMultiboot2,
    /// The loader gave no memory map.
    NoMemoryMap,
}

/// Reads the loader's information. `physical` turns a physical address into
/// a pointer through the direct map.
pub fn read(
    magic: u32,
    info: u64,
    physical: impl Fn(u64) -> *const u8,
) -> Result<BootInfo, BootError> {
    match magic {
        MULTIBOOT2_MAGIC => read_multiboot2(info, &physical),
        MULTIBOOT1_MAGIC => read_multiboot1(info, &physical),
        other => Err(BootError::UnknownMagic(other)),
    }
}

fn push_text<const N: usize>(target: &mut String<N>, text: &str) {
    for character in text.chars() {
        if target.push(character).is_err() {
            break;
        }
    }
}

fn read_multiboot2(info: u64, physical: &impl Fn(u64) -> *const u8) -> Result<BootInfo, BootError> {
    use multiboot2::{BootInformation, BootInformationHeader, MemoryAreaType};
    // SAFETY: a multiboot2 loader passed `info`, the physical address of its
    // boot information, which the direct map covers; the crate checks the
    // structure's sizes and alignment before use.
    let boot = unsafe { BootInformation::load(physical(info) as *const BootInformationHeader) }
        .map_err(|_| BootError::BadMultiboot2)?;
    let mut result = BootInfo {
        protocol: "multiboot2",
        info_range: (info, info + boot.total_size() as u64),
        ..BootInfo::default()
    };
    let map = boot.memory_map_tag().ok_or(BootError::NoMemoryMap)?;
    for area in map.memory_areas() {
        if area.typ() == MemoryAreaType::Available {
            let region = RamRegion {
                start: area.start_address(),
                end: area.end_address(),
            };
            if result.ram.push(region).is_err() {
                result.dropped += 1;
            }
        }
    }
    for module in boot.module_tags() {
        let mut string = String::new();
        push_text(&mut string, module.cmdline().unwrap_or(""));
        let entry = Module {
            start: u64::from(module.start_address()),
            end: u64::from(module.end_address()),
            string,
        };
        if result.modules.push(entry).is_err() {
            result.dropped += 1;
        }
    }
    if let Some(Ok(line)) = boot.command_line_tag().map(|tag| tag.cmdline()) {
        push_text(&mut result.command_line, line);
    }
    Ok(result)
}

/// Reads a little-endian u32 at a physical address.
fn read_u32(physical: &impl Fn(u64) -> *const u8, address: u64) -> u32 {
    // SAFETY: callers pass addresses inside the multiboot1 information the
    // loader handed us, which the direct map covers; unaligned reads are fine.
    unsafe { (physical(address) as *const u32).read_unaligned() }
}

fn read_u64(physical: &impl Fn(u64) -> *const u8, address: u64) -> u64 {
    // SAFETY: as in read_u32.
    unsafe { (physical(address) as *const u64).read_unaligned() }
}

/// Copies a NUL-terminated string (at most `N` bytes) from physical memory.
fn read_c_string<const N: usize>(physical: &impl Fn(u64) -> *const u8, address: u64) -> String<N> {
    let mut text = String::new();
    for offset in 0..N as u64 {
        // SAFETY: the loader NUL-terminates its strings; we stop at N bytes.
        let byte = unsafe { physical(address + offset).read() };
        if byte == 0 || text.push(char::from(byte)).is_err() {
            break;
        }
    }
    text
}

/// The multiboot1 information structure (the fields we read), by offset.
mod mb1 {
    pub const FLAGS: u64 = 0;
    pub const CMDLINE: u64 = 16;
    pub const MODS_COUNT: u64 = 20;
    pub const MODS_ADDR: u64 = 24;
    pub const MMAP_LENGTH: u64 = 44;
    pub const MMAP_ADDR: u64 = 48;
    pub const FLAG_CMDLINE: u32 = 1 << 2;
    pub const FLAG_MODS: u32 = 1 << 3;
    pub const FLAG_MMAP: u32 = 1 << 6;
    pub const INFO_SIZE: u64 = 120;
}

fn read_multiboot1(info: u64, physical: &impl Fn(u64) -> *const u8) -> Result<BootInfo, BootError> {
    let flags = read_u32(physical, info + mb1::FLAGS);
    let mut result = BootInfo {
        protocol: "multiboot1",
        info_range: (info, info + mb1::INFO_SIZE),
        ..BootInfo::default()
    };
    if flags & mb1::FLAG_MMAP == 0 {
        return Err(BootError::NoMemoryMap);
    }
    let map_start = u64::from(read_u32(physical, info + mb1::MMAP_ADDR));
    let map_end = map_start + u64::from(read_u32(physical, info + mb1::MMAP_LENGTH));
    let mut entry = map_start;
    while entry < map_end {
        // Each entry: size (u32, not counting itself), base u64, length u64, type u32.
        let size = u64::from(read_u32(physical, entry));
        let base = read_u64(physical, entry + 4);
        let length = read_u64(physical, entry + 12);
        let kind = read_u32(physical, entry + 20);
        if kind == 1 {
            let region = RamRegion {
                start: base,
                end: base + length,
            };
            if result.ram.push(region).is_err() {
                result.dropped += 1;
            }
        }
        entry += size + 4;
    }
    if flags & mb1::FLAG_MODS != 0 {
        let count = u64::from(read_u32(physical, info + mb1::MODS_COUNT));
        let table = u64::from(read_u32(physical, info + mb1::MODS_ADDR));
        for index in 0..count {
            // Each entry: mod_start, mod_end, string, reserved (u32 each).
            let entry = table + index * 16;
            let module = Module {
                start: u64::from(read_u32(physical, entry)),
                end: u64::from(read_u32(physical, entry + 4)),
                string: read_c_string(physical, u64::from(read_u32(physical, entry + 8))),
            };
            if result.modules.push(module).is_err() {
                result.dropped += 1;
            }
        }
    }
    if flags & mb1::FLAG_CMDLINE != 0 {
        let address = u64::from(read_u32(physical, info + mb1::CMDLINE));
        result.command_line = read_c_string(physical, address);
    }
    Ok(result)
}
