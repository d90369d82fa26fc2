//! The x86_64 processor: boot, descriptor tables, entry paths, local APIC,
//! legacy timers, power control and small instruction wrappers.
pub mod apic;
pub mod boot;
pub mod cpu;
pub mod entry;
pub mod frame;
pub mod instructions;
pub mod percpu;
pub mod pit;
pub mod power;
pub mod rtc;
