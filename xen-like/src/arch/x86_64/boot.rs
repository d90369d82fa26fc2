//! The first instructions: multiboot headers, 32-bit entry, and the jump to
//! the high half.
//!
//! A multiboot loader (GRUB through multiboot2, or QEMU's `-kernel` through
//! multiboot1) enters `boot_entry32` in 32-bit protected mode with paging
//! off, the magic number in `eax` and the physical address of its
//! information structure in `ebx`. This code, which runs at its physical
//! address, builds just enough page tables to enter long mode:
//!
//! ```text
//!   boot_pml4[0]   -> boot_pdpt_low    [0..4] -> boot_pd (0..4 GiB, 2 MiB pages)  identity, dropped later
//!   boot_pml4[261] -> boot_pdpt_image  [321]  -> boot_pd (0..1 GiB)               XEN_VIRT_START + phys
//!   boot_pml4[262] -> boot_pdpt_direct [0..4] -> boot_pd (0..4 GiB)               DIRECTMAP_VIRT_START + phys
//! ```
//!
//! It turns on SSE (the precompiled `core` uses it), enables long mode and
//! jumps to `high_entry`, which clears `.bss`, sets up the boot stack and
//! calls `hypervisor_start(magic, info)` in Rust. Everything after that is
//! done in Rust with these tables (see `mm::paging`).

core::arch::global_asm!(
    // ---------------------------------------------------------------
    // Multiboot headers. Both kinds live in one image: QEMU's `-kernel`
    // understands only multiboot1 (and, for an ELF64, only with the a.out
    // kludge fields, flag bit 16), GRUB prefers multiboot2.
    // ---------------------------------------------------------------
    ".pushsection .boot.header, \"a\"",
    ".align 8",
    "multiboot1_header:",
    "    .long 0x1BADB002",                 // magic
    "    .long 0x00010003",                 // flags: page-align modules, memory map, address fields
    "    .long -(0x1BADB002 + 0x00010003)", // checksum
    "    .long multiboot1_header",          // header_addr
    "    .long __image_start_phys",         // load_addr
    "    .long __load_end_phys",            // load_end_addr
    "    .long __image_end_phys",           // bss_end_addr
    "    .long boot_entry32",               // entry_addr
    ".align 8",
    "multiboot2_header:",
    "    .long 0xE85250D6", // magic
    "    .long 0",          // architecture: i386 protected mode
    "    .long multiboot2_header_end - multiboot2_header",
    "    .long 0x100000000 - (0xE85250D6 + (multiboot2_header_end - multiboot2_header))",
    "    .short 0", // end tag
    "    .short 0",
    "    .long 8",
    "multiboot2_header_end:",
    ".popsection",
    // ---------------------------------------------------------------
    // 32-bit entry, running at physical addresses.
    // ---------------------------------------------------------------
    ".pushsection .boot.text, \"ax\"",
    ".code32",
    ".global boot_entry32",
    "boot_entry32:",
    "    cli",
    "    cld",
    "    mov edi, eax", // multiboot magic, first argument of hypervisor_start
    "    mov esi, ebx", // multiboot information, second argument
    // boot_pd: 2048 entries of 2 MiB, identity 0..4 GiB (present, writable, large).
    "    xor ecx, ecx",
    "2:  mov eax, ecx",
    "    shl eax, 21",
    "    or eax, 0x83",
    "    mov dword ptr [boot_pd + ecx * 8], eax",
    "    mov dword ptr [boot_pd + ecx * 8 + 4], 0",
    "    inc ecx",
    "    cmp ecx, 2048",
    "    jb 2b",
    // The low and direct-map PDPTs point at the four PD pages.
    "    xor ecx, ecx",
    "3:  mov eax, ecx",
    "    shl eax, 12",
    "    add eax, offset boot_pd",
    "    or eax, 0x3",
    "    mov dword ptr [boot_pdpt_low + ecx * 8], eax",
    "    mov dword ptr [boot_pdpt_direct + ecx * 8], eax",
    "    inc ecx",
    "    cmp ecx, 4",
    "    jb 3b",
    // The image PDPT maps its entry 321 (XEN_VIRT_START) to the first GiB.
    "    mov eax, offset boot_pd",
    "    or eax, 0x3",
    "    mov dword ptr [boot_pdpt_image + 321 * 8], eax",
    "    mov eax, offset boot_pdpt_low",
    "    or eax, 0x3",
    "    mov dword ptr [boot_pml4], eax",
    "    mov eax, offset boot_pdpt_image",
    "    or eax, 0x3",
    "    mov dword ptr [boot_pml4 + 261 * 8], eax",
    "    mov eax, offset boot_pdpt_direct",
    "    or eax, 0x3",
    "    mov dword ptr [boot_pml4 + 262 * 8], eax",
    // Paging structures, then PAE + SSE in CR4, long mode in EFER, paging on.
    "    mov eax, offset boot_pml4",
    "    mov cr3, eax",
    "    mov eax, cr4",
    "    or eax, (1 << 5) | (1 << 9) | (1 << 10)", // PAE, OSFXSR, OSXMMEXCPT
    "    mov cr4, eax",
    "    mov ecx, 0xC0000080", // EFER
    "    rdmsr",
    "    or eax, (1 << 8) | (1 << 0)", // LME, SCE
    "    wrmsr",
    "    mov eax, cr0",
    "    and eax, ~((1 << 2) | (1 << 3))", // clear EM and TS: SSE must not trap
    "    or eax, (1 << 31) | (1 << 16) | (1 << 1) | 1", // PG, WP, MP, PE
    "    mov cr0, eax",
    "    lgdt [boot_gdt_pointer]",
    // ljmp 0x08:boot_entry64, spelled out so that no assembler guesses.
    "    .byte 0xea",
    "    .long boot_entry64",
    "    .short 0x08",
    ".code64",
    "boot_entry64:",
    "    mov ax, 0x10",
    "    mov ds, ax",
    "    mov es, ax",
    "    mov ss, ax",
    "    xor eax, eax",
    "    mov fs, ax",
    "    mov gs, ax",
    "    movabs rax, offset high_entry",
    "    jmp rax",
    ".popsection",
    // ---------------------------------------------------------------
    // Boot-time data, at physical addresses.
    // ---------------------------------------------------------------
    ".pushsection .boot.data, \"aw\"",
    ".align 4096",
    ".global boot_pml4",
    "boot_pml4: .fill 512, 8, 0",
    "boot_pdpt_low: .fill 512, 8, 0",
    "boot_pdpt_image: .fill 512, 8, 0",
    "boot_pdpt_direct: .fill 512, 8, 0",
    "boot_pd: .fill 2048, 8, 0",
    ".align 16",
    "boot_gdt:",
    "    .quad 0",
    "    .quad 0x00af9a000000ffff", // 0x08: 64-bit code, ring 0
    "    .quad 0x00cf92000000ffff", // 0x10: data, ring 0
    "boot_gdt_pointer:",
    "    .short 3 * 8 - 1",
    "    .long boot_gdt",
    ".popsection",
    // ---------------------------------------------------------------
    // 64-bit, high half.
    // ---------------------------------------------------------------
    ".pushsection .text.entry, \"ax\"",
    "high_entry:",
    "    mov r12, rdi",
    "    mov r13, rsi",
    "    lea rdi, [rip + __bss_start]",
    "    lea rcx, [rip + __bss_end]",
    "    sub rcx, rdi",
    "    xor eax, eax",
    "    rep stosb",
    "    lea rsp, [rip + boot_stack_top]",
    "    xor ebp, ebp",
    "    mov rdi, r12",
    "    mov rsi, r13",
    "    call hypervisor_start",
    "    ud2",
    ".popsection",
    // The boot CPU's hypervisor stack. It stays the CPU's stack for good: its
    // top is RSP0 in the TSS and the syscall entry's stack, so a guest's
    // saved registers always sit at the same place (see arch::x86_64::entry).
    ".pushsection .bss.boot_stack, \"aw\", @nobits",
    ".align 4096",
    ".global boot_stack_bottom",
    "boot_stack_bottom:",
    "    .skip 65536",
    ".global boot_stack_top",
    "boot_stack_top:",
    ".popsection",
);

/// Index of the boot PML4 slot that identity-maps the first 4 GiB; it is
/// cleared once the hypervisor runs in the high half.
pub const IDENTITY_SLOT: usize = 0;

extern "C" {
    static boot_stack_top: u8;
}

/// Top of the boot CPU's hypervisor stack (a high virtual address).
pub fn boot_stack_top_address() -> u64 {
    core::ptr::addr_of!(boot_stack_top) as u64
}
