//! Runtime symbols that a `#![no_std]` binary built for the host target needs.
//!
//! The kernels of this project (the hypervisor, Dom0 and the guests) are built
//! for `x86_64-unknown-linux-gnu` against its precompiled `core`, without a C
//! library (see `shared/TOOLCHAIN.md`). That `core` and the code LLVM emits
//! call a handful of C symbols which no one else provides:
//!
//! - `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`: LLVM lowers copies and
//!   comparisons to them, and the precompiled `compiler_builtins` does not
//!   export them for this target;
//! - `strlen`: LLVM recognises a byte loop that looks for a zero and turns it
//!   into a call to `strlen`, so it is written in assembly where that cannot
//!   happen;
//! - `rust_eh_personality` and `_Unwind_Resume`: referenced by the
//!   precompiled `core` (built with `panic=unwind`) even though our binaries
//!   abort on panic and never unwind.
//!
//! The crate is empty when compiled for host unit tests, where the C library
//! provides all of these.
#![cfg_attr(not(test), no_std)]

#[cfg(all(not(test), target_arch = "x86_64"))]
mod symbols {
    // The string operations use `rep movsb` / `rep stosb`, which modern CPUs
    // (ERMSB) and QEMU both execute quickly, and which cannot be turned back
    // into calls to themselves by the compiler. Each block keeps its own
    // section (see TOOLCHAIN.md: sections leak between `global_asm!` blocks).
    core::arch::global_asm!(
        ".pushsection .text.kernel_rt, \"ax\"",
        // void *memcpy(void *dest /* rdi */, const void *src /* rsi */, size_t n /* rdx */)
        ".global memcpy",
        "memcpy:",
        "    mov rax, rdi",
        "    mov rcx, rdx",
        "    rep movsb",
        "    ret",
        // void *memmove(void *dest, const void *src, size_t n): copy backwards
        // when the destination overlaps the end of the source.
        ".global memmove",
        "memmove:",
        "    mov rax, rdi",
        "    mov rcx, rdx",
        "    cmp rdi, rsi",
        "    jbe 2f",
        "    lea r8, [rsi + rdx]",
        "    cmp rdi, r8",
        "    jae 2f",
        "    lea rsi, [rsi + rdx - 1]",
        "    lea rdi, [rdi + rdx - 1]",
        "    std",
        "    rep movsb",
        "    cld",
        "    ret",
        "2:  rep movsb",
        "    ret",
        // void *memset(void *dest, int value /* esi */, size_t n)
        ".global memset",
        "memset:",
        "    mov r8, rdi",
        "    mov eax, esi",
        "    mov rcx, rdx",
        "    rep stosb",
        "    mov rax, r8",
        "    ret",
        // size_t strlen(const char *s)
        ".global strlen",
        "strlen:",
        "    xor eax, eax",
        "3:  cmp byte ptr [rdi + rax], 0",
        "    je 4f",
        "    inc rax",
        "    jmp 3b",
        "4:  ret",
        ".popsection",
    );

    /// Compares `n` bytes; returns the difference of the first unequal pair.
    ///
    /// # Safety
    /// `a` and `b` must be valid for reads of `n` bytes.
    #[no_mangle]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        let mut i = 0;
        while i < n {
            // SAFETY: i < n and the caller guarantees n readable bytes at both.
            let (x, y) = unsafe { (a.add(i).read(), b.add(i).read()) };
            if x != y {
                return i32::from(x) - i32::from(y);
            }
            i += 1;
        }
        0
    }

    /// Like `memcmp`, but only says whether the bytes differ.
    ///
    /// # Safety
    /// `a` and `b` must be valid for reads of `n` bytes.
    #[no_mangle]
    pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: same contract as memcmp.
        unsafe { memcmp(a, b, n) }
    }

    /// Never called: our binaries abort on panic, but the precompiled `core`
    /// names the personality routine.
    #[no_mangle]
    pub extern "C" fn rust_eh_personality() {}

    /// Never called, for the same reason as `rust_eh_personality`.
    #[no_mangle]
    pub extern "C" fn _Unwind_Resume() -> ! {
        loop {
            core::hint::spin_loop();
        }
    }
}
