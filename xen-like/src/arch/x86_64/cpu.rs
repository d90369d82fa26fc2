//! Descriptor tables and system registers: GDT, TSS, IDT, and the MSRs of
//! `syscall`.
//!
//! The GDT uses Xen's selector numbers, because PV guests hard-code them
//! (`FLAT_RING3_CS64 = 0xe033` and friends in `arch-x86/xen-x86_64.h`): Xen
//! reserves the GDT page at 0xe000 for itself, with its own descriptors and
//! the 64-bit guest descriptors there. We only fill the entries we use:
//!
//! | selector | descriptor                               |
//! |----------|------------------------------------------|
//! | 0xe008   | hypervisor code, 64-bit, ring 0          |
//! | 0xe010   | hypervisor data, ring 0                  |
//! | 0xe028   | guest data/stack, ring 3 (`0xe02b`)      |
//! | 0xe030   | guest code, 64-bit, ring 3 (`0xe033`)    |
//! | 0xe040   | the TSS (two slots)                      |
//!
//! `syscall` loads CS from `STAR[47:32]` (0xe008, and SS = 0xe010);
//! `sysretq` loads CS from `STAR[63:48] + 16` and SS from `+ 8`, so
//! `STAR[63:48] = 0xe023` gives exactly 0xe033 and 0xe02b.
//!
//! There is no 32-bit guest code segment (0xe023): 32-bit PV guests are not
//! supported, and a guest that tries to load one gets a fault.

use super::entry;
use super::instructions::{self, MSR_CSTAR, MSR_EFER, MSR_LSTAR, MSR_SFMASK, MSR_STAR};
use core::ptr::{addr_of, addr_of_mut};
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, FS, SS};
use x86_64::instructions::tables::{lgdt, lidt, load_tss};
use x86_64::structures::gdt::{Descriptor, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

/// Hypervisor code selector.
pub const HYPERVISOR_CS: u16 = 0xe008;
/// Hypervisor data selector.
pub const HYPERVISOR_DS: u16 = 0xe010;
/// Base of the selectors `sysretq` computes (CS = base + 16, SS = base + 8).
const SYSRET_BASE: u16 = 0xe023;
/// The TSS selector.
const TSS_SELECTOR: u16 = 0xe040;
/// Entries of a GDT: the guest's part (below 0xe000) and the hypervisor's
/// up to the TSS. Every GDT loaded, the hypervisor's own and each vCPU's
/// copy of its guest's (see `mm::descriptor_tables`), has exactly this many.
pub const GDT_ENTRIES: usize = (TSS_SELECTOR as usize >> 3) + 2;
/// The first entry the hypervisor keeps for itself (selector 0xe000).
pub const FIRST_RESERVED_GDT_ENTRY: usize = 0xe000 >> 3;

/// Vectors of the exceptions that get their own stacks (IST), because they
/// can arrive when the current stack cannot be trusted: `#DB` at the first
/// instruction of `syscall_entry`, still on the guest's stack pointer
/// (see `entry.rs`), NMI and machine checks anywhere, a double fault
/// after a stack overflow.
const VECTOR_DEBUG: u8 = 1;
const VECTOR_NMI: u8 = 2;
const VECTOR_DOUBLE_FAULT: u8 = 8;
const VECTOR_MACHINE_CHECK: u8 = 18;
const IST_STACK_SIZE: usize = 16 * 1024;

/// RFLAGS bits `syscall` clears: TF, IF, DF, IOPL, NT, AC.
const SYSCALL_RFLAGS_MASK: u64 = 0x4_7700;

#[repr(C, align(4096))]
struct Gdt([u64; GDT_ENTRIES]);

/// An IDT gate, written by hand: the `x86_64` crate's IDT type wants
/// handlers in the unstable `x86-interrupt` calling convention (or a raw
/// address per typed field), while every one of our 256 gates points at an
/// assembly stub of `entry.rs` that saves the whole guest frame itself.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct IdtEntry {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attributes: u8,
    offset_middle: u16,
    offset_high: u32,
    reserved: u32,
}

#[repr(C, align(4096))]
struct Idt([IdtEntry; 256]);

#[repr(C, align(16))]
struct IstStacks([[u8; IST_STACK_SIZE]; 4]);

// The tables are written once by `init_boot_cpu`, before interrupts or
// guests exist, and afterwards only read by the processor.
static mut GDT: Gdt = Gdt([0; GDT_ENTRIES]);
/// The 64-bit TSS: RSP0 for entries from ring 3 and the IST stacks. Its
/// I/O bitmap offset points past its end (the crate's default): no
/// bitmap, so every port access from ring 3 faults.
static mut TSS: TaskStateSegment = TaskStateSegment::new();
static mut IDT: Idt = Idt([IdtEntry {
    offset_low: 0,
    selector: 0,
    ist: 0,
    type_attributes: 0,
    offset_middle: 0,
    offset_high: 0,
    reserved: 0,
}; 256]);
static mut IST_STACKS: IstStacks = IstStacks([[0; IST_STACK_SIZE]; 4]);

/// Sets up the boot CPU's GDT, TSS, IDT and `syscall` MSRs. `stack_top` is
/// the CPU's hypervisor stack, where entries from ring 3 land.
pub fn init_boot_cpu(stack_top: u64) {
    // SAFETY: called once on the boot CPU before any guest runs and with
    // interrupts off; nothing else refers to these statics yet, and the
    // values written are well-formed descriptors for our own code.
    unsafe {
        fill_gdt(stack_top);
        fill_idt();
        load_tables();
    }
    init_syscall();
}

/// # Safety
/// Must run once, before the GDT is loaded.
unsafe fn fill_gdt(stack_top: u64) {
    let gdt = addr_of_mut!(GDT);
    let tss = addr_of_mut!(TSS);
    let ist = addr_of_mut!(IST_STACKS);
    // SAFETY: exclusive access during boot (see the caller).
    unsafe {
        (*tss).privilege_stack_table[0] = VirtAddr::new(stack_top);
        for (slot, stack) in (*ist).0.iter().enumerate() {
            (*tss).interrupt_stack_table[slot] =
                VirtAddr::new(stack.as_ptr() as u64 + IST_STACK_SIZE as u64);
        }
        let entries = &mut (*gdt).0;
        entries[usize::from(HYPERVISOR_CS >> 3)] = segment(Descriptor::kernel_code_segment());
        entries[usize::from(HYPERVISOR_DS >> 3)] = segment(Descriptor::kernel_data_segment());
        entries[usize::from((SYSRET_BASE + 8) >> 3)] = segment(Descriptor::user_data_segment());
        entries[usize::from((SYSRET_BASE + 16) >> 3)] = segment(Descriptor::user_code_segment());
        if let Descriptor::SystemSegment(low, high) = Descriptor::tss_segment(&*addr_of!(TSS)) {
            entries[usize::from(TSS_SELECTOR >> 3)] = low;
            entries[usize::from(TSS_SELECTOR >> 3) + 1] = high;
        }
    }
}

/// The raw value of a code or data segment descriptor.
fn segment(descriptor: Descriptor) -> u64 {
    match descriptor {
        Descriptor::UserSegment(value) => value,
        Descriptor::SystemSegment(low, _) => low,
    }
}

/// # Safety
/// Must run once, before the IDT is loaded.
unsafe fn fill_idt() {
    let idt = addr_of_mut!(IDT);
    for vector in 0..=255u8 {
        let handler = entry::interrupt_stub_address(vector);
        let ist = match vector {
            VECTOR_NMI => 2,
            VECTOR_DOUBLE_FAULT => 1,
            VECTOR_MACHINE_CHECK => 3,
            VECTOR_DEBUG => 4,
            _ => 0,
        };
        // Breakpoint and overflow may be raised by a guest with int3/into:
        // their gates allow ring 3, the rest are ring 0 only (a guest `int n`
        // on them is a #GP that the hypervisor sees).
        let privilege = if vector == 3 || vector == 4 { 3 } else { 0 };
        let gate = IdtEntry {
            offset_low: handler as u16,
            selector: HYPERVISOR_CS,
            ist,
            type_attributes: 0x8e | (privilege << 5), // present interrupt gate
            offset_middle: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        };
        // SAFETY: exclusive access during boot (see the caller).
        unsafe { (*idt).0[usize::from(vector)] = gate };
    }
}

/// # Safety
/// The GDT, TSS and IDT must be filled.
unsafe fn load_tables() {
    let gdt_pointer = DescriptorTablePointer {
        limit: (GDT_ENTRIES * 8 - 1) as u16,
        base: VirtAddr::from_ptr(addr_of!(GDT)),
    };
    let idt_pointer = DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: VirtAddr::from_ptr(addr_of!(IDT)),
    };
    let null = SegmentSelector(0);
    // SAFETY: the tables are filled and 'static. Reloading CS (the crate
    // does it with a far return) and the data segments makes the CPU use
    // the new GDT at once; the TSS descriptor is present and available.
    unsafe {
        lgdt(&gdt_pointer);
        lidt(&idt_pointer);
        CS::set_reg(SegmentSelector(HYPERVISOR_CS));
        SS::set_reg(SegmentSelector(HYPERVISOR_DS));
        DS::set_reg(null);
        ES::set_reg(null);
        FS::set_reg(null);
        load_tss(SegmentSelector(TSS_SELECTOR));
    }
    // GS is not reloaded: loading a selector into GS would clear the GS
    // base that points at the per-CPU block.
}

/// The hypervisor's own GDT entries (selectors 0xe000 and up), which every
/// vCPU's GDT copy carries at the same place: the CPU reads 0xe008 on every
/// interrupt, and the guest's flat selectors on every return to it.
pub fn reserved_gdt_entries() -> [u64; GDT_ENTRIES - FIRST_RESERVED_GDT_ENTRY] {
    let gdt = addr_of_mut!(GDT);
    // SAFETY: the GDT is written only at boot (`init_boot_cpu`); afterwards
    // it is only read (the CPU sets the TSS busy bit, which we copy too).
    let entries = unsafe { &(*gdt).0 };
    core::array::from_fn(|index| entries[FIRST_RESERVED_GDT_ENTRY + index])
}

/// Entry `index` of the hypervisor's own GDT (zero beyond its end).
pub fn hypervisor_gdt_entry(index: usize) -> u64 {
    let gdt = addr_of_mut!(GDT);
    // SAFETY: as in `reserved_gdt_entries`.
    unsafe { (*gdt).0.get(index).copied().unwrap_or(0) }
}

/// Makes the hypervisor's own GDT the live one (a vCPU without a GDT of its
/// own, or none running).
pub fn load_hypervisor_gdt() {
    // SAFETY: the static GDT is filled at boot and lives for ever.
    unsafe { load_gdt(addr_of_mut!(GDT) as *const u64) }
}

/// Makes `table` the live GDT (a vCPU's copy of its guest's GDT).
///
/// # Safety
/// `table` must point at [`GDT_ENTRIES`] descriptors whose reserved part
/// is [`reserved_gdt_entries`] and whose guest part passed
/// `check_descriptor`, and must stay allocated until another GDT is loaded.
pub unsafe fn load_gdt(table: *const u64) {
    let pointer = DescriptorTablePointer {
        limit: (GDT_ENTRIES * 8 - 1) as u16,
        base: VirtAddr::from_ptr(table),
    };
    // SAFETY: the caller vouches for the table. The loaded segment registers
    // keep their cached descriptors; the TSS stays loaded.
    unsafe { lgdt(&pointer) };
}

fn init_syscall() {
    let (_, _, _, extended_features) = instructions::cpuid(0x8000_0001);
    let mut efer = instructions::read_msr(MSR_EFER) | 1; // SCE
    if extended_features & (1 << 20) != 0 {
        efer |= 1 << 11; // NXE: honour the no-execute bit in page tables
    }
    // SAFETY: the selectors in STAR are the GDT entries filled above, LSTAR
    // is our entry code, and SFMASK makes the entry run with interrupts
    // off, as the rest of the hypervisor expects.
    unsafe {
        instructions::write_msr(MSR_EFER, efer);
        instructions::write_msr(
            MSR_STAR,
            (u64::from(SYSRET_BASE) << 48) | (u64::from(HYPERVISOR_CS) << 32),
        );
        instructions::write_msr(MSR_LSTAR, entry::syscall_entry_address());
        // No 32-bit code segment exists for guests, so `syscall` from
        // compatibility mode cannot happen; CSTAR stays pointed at the
        // normal entry for completeness.
        instructions::write_msr(MSR_CSTAR, entry::syscall_entry_address());
        instructions::write_msr(MSR_SFMASK, SYSCALL_RFLAGS_MASK);
    }
}

/// Points `syscall` at the benchmark's empty handler (`on`) or back at the
/// real entry.
pub fn set_syscall_floor_mode(on: bool) {
    let target = if on {
        entry::syscall_floor_entry_address()
    } else {
        entry::syscall_entry_address()
    };
    // SAFETY: both targets are our own entry code (see entry.rs).
    unsafe { instructions::write_msr(MSR_LSTAR, target) };
}
