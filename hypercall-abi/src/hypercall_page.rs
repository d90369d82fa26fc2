//! The hypercall page: 128 small stubs a PV guest calls to make hypercalls.
//!
//! A guest names one of its pages with the `HYPERCALL_PAGE` ELF note, and
//! the domain builder fills it. Stub `n` sits at offset `n * 32` and makes
//! hypercall `n` with the 64-bit PV calling convention (number in `rax`,
//! arguments in `rdi, rsi, rdx, r10, r8`), saving the two registers that
//! `syscall` destroys:
//!
//! ```text
//!   51               push %rcx
//!   41 53            push %r11
//!   b8 nn nn nn nn   mov  $n, %eax
//!   0f 05            syscall
//!   41 5b            pop  %r11
//!   59               pop  %rcx
//!   c3               ret
//! ```
//!
//! Stub 23 (`iret`) is different: it pushes `rax` too, completing the
//! `iret_context` frame on the guest's stack, and never returns.

/// Bytes per stub.
pub const STUB_SIZE: usize = 32;
/// The `iret` hypercall's number.
const IRET: u32 = 23;
/// `int3`, filling the unused tail of each stub.
const FILL: u8 = 0xcc;

/// Writes the stubs for hypercalls `0..128` into `page`.
pub fn fill(page: &mut [u8; 4096]) {
    page.fill(FILL);
    for (number, stub) in page.chunks_exact_mut(STUB_SIZE).enumerate() {
        let number = number as u32;
        let [n0, n1, n2, n3] = number.to_le_bytes();
        #[rustfmt::skip]
        let code: &[u8] = if number == IRET {
            &[
                0x51,                       // push %rcx
                0x41, 0x53,                 // push %r11
                0x50,                       // push %rax
                0xb8, n0, n1, n2, n3,       // mov  $n, %eax
                0x0f, 0x05,                 // syscall (never returns)
            ]
        } else {
            &[
                0x51,                       // push %rcx
                0x41, 0x53,                 // push %r11
                0xb8, n0, n1, n2, n3,       // mov  $n, %eax
                0x0f, 0x05,                 // syscall
                0x41, 0x5b,                 // pop  %r11
                0x59,                       // pop  %rcx
                0xc3,                       // ret
            ]
        };
        stub[..code.len()].copy_from_slice(code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_load_their_number_and_syscall() {
        let mut page = [0u8; 4096];
        fill(&mut page);
        let stub = &page[17 * STUB_SIZE..18 * STUB_SIZE];
        assert_eq!(
            &stub[..14],
            &[0x51, 0x41, 0x53, 0xb8, 17, 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3]
        );
        assert!(stub[14..].iter().all(|&byte| byte == FILL));
        assert_eq!(&page[127 * STUB_SIZE + 4..127 * STUB_SIZE + 5], &[127]);
    }

    #[test]
    fn the_iret_stub_pushes_rax_and_does_not_return() {
        let mut page = [0u8; 4096];
        fill(&mut page);
        let stub = &page[23 * STUB_SIZE..24 * STUB_SIZE];
        assert_eq!(
            &stub[..11],
            &[0x51, 0x41, 0x53, 0x50, 0xb8, 23, 0, 0, 0, 0x0f, 0x05]
        );
        assert!(!stub.contains(&0xc3), "no ret after iret");
    }
}
