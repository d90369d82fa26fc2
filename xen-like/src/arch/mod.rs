//! Everything that touches the processor directly. No `asm!` lives outside
//! this module.
pub mod x86_64;
