//! `workload=sensitive`: runs x86's sensitive instructions in ring 3, where
//! a PV kernel lives, and prints which ones trapped and what each saw.
//!
//! Popek and Goldberg's condition for a classically virtualizable machine
//! is that every *sensitive* instruction (one that reads or changes
//! privileged state) is also *privileged* (traps outside the most
//! privileged mode). On x86 before VT-x some are not:
//!
//! - `sgdt`, `sidt`, `sldt`, `str`, `smsw` run in ring 3 and reveal the
//!   real descriptor tables, task register and CR0 (unless the CPU has
//!   UMIP and the hypervisor turns it on);
//! - `popf` in ring 3 silently leaves IF alone instead of trapping, so a
//!   deprivileged kernel cannot disable interrupts that way, and cannot
//!   even tell.
//!
//! The privileged ones (`mov %cr3`, `rdmsr`, `hlt`, ...) do trap, and the
//! hypervisor then emulates them or reflects the fault (see
//! `docs/trap-and-emulate.md`). Each line printed is
//! `sensitive: INSTRUCTION: trapped (VECTOR) | ran, saw VALUE`.
#![forbid(unsafe_code)]

use guest_kernel::abi::sched::ShutdownReason;
use guest_kernel::println;
use guest_kernel::privileged::{self, Caught};

fn exception_name(vector: u8) -> &'static str {
    match vector {
        6 => "#UD",
        13 => "#GP",
        14 => "#PF",
        _ => "another exception",
    }
}

/// Prints one instruction's outcome.
fn report<T>(
    instruction: &str,
    result: Result<T, Caught>,
    describe: impl Fn(T) -> heapless::String<96>,
) {
    match result {
        Ok(value) => println!(
            "sensitive: {instruction}: did not trap, saw {}",
            describe(value)
        ),
        Err(caught) => println!(
            "sensitive: {instruction}: trapped ({}), reflected to the guest",
            exception_name(caught.vector)
        ),
    }
}

fn text(arguments: core::fmt::Arguments) -> heapless::String<96> {
    let mut out = heapless::String::new();
    let _ = core::fmt::write(&mut out, arguments);
    out
}

/// Runs every instruction and powers off.
pub fn sensitive() -> ! {
    println!("sensitive: running x86's sensitive instructions in ring 3");
    // What the hypervisor left in the data segment registers: a new domain
    // must find them null, not what another guest loaded.
    let [ds, es, fs, gs] = privileged::data_selectors();
    println!("sensitive: data selectors at start: ds={ds:#x} es={es:#x} fs={fs:#x} gs={gs:#x}");
    // Not privileged, yet sensitive: they do not trap.
    report("sgdt", privileged::sgdt(), |(limit, base)| {
        text(format_args!("the real GDT at {base:#x}, limit {limit:#x}"))
    });
    report("sidt", privileged::sidt(), |(limit, base)| {
        text(format_args!("the real IDT at {base:#x}, limit {limit:#x}"))
    });
    report("sldt", privileged::sldt(), |selector| {
        text(format_args!("LDT selector {selector:#x}"))
    });
    report("str", privileged::str(), |selector| {
        text(format_args!("the hypervisor's TSS selector {selector:#x}"))
    });
    report("smsw", privileged::smsw(), |word| {
        text(format_args!("CR0's low bits {word:#x} (PE={})", word & 1))
    });
    report(
        "popf clearing IF",
        privileged::popf_clear_interrupts(),
        |flags| {
            text(format_args!(
                "RFLAGS {flags:#x}: IF still {} (silently ignored)",
                (flags >> 9) & 1
            ))
        },
    );
    report("cpuid (plain)", privileged::plain_cpuid(1, 0), |leaf| {
        text(format_args!(
            "the hardware's leaf 1: ecx {:#x} (hypervisor bit {})",
            leaf[2],
            leaf[2] >> 31
        ))
    });
    // Privileged: they trap, and the hypervisor emulates or reflects.
    report(
        "cpuid (forced emulation)",
        privileged::forced_cpuid(1, 0),
        |leaf| {
            text(format_args!(
                "the PV policy's leaf 1: ecx {:#x} (hypervisor bit {})",
                leaf[2],
                leaf[2] >> 31
            ))
        },
    );
    report("mov %cr3, %rax", privileged::read_cr(3), |value| {
        text(format_args!("{value:#x} (emulated: the base pointer)"))
    });
    report("mov %cr0, %rax", privileged::read_cr(0), |value| {
        text(format_args!("{value:#x} (emulated)"))
    });
    report("rdmsr EFER", privileged::rdmsr(0xc000_0080), |value| {
        text(format_args!("{value:#x} (emulated)"))
    });
    report("rdmsr LSTAR", privileged::rdmsr(0xc000_0082), |value| {
        text(format_args!("{value:#x}"))
    });
    report("hlt", privileged::hlt(), |_| text(format_args!("nothing")));
    report("cli", privileged::cli(), |_| text(format_args!("nothing")));
    report("inb $0x60", privileged::inb(0x60), |_| {
        text(format_args!("nothing"))
    });
    // Leave a selector loaded, for the next guest not to find.
    privileged::load_es_with_flat_data_selector();
    let es = privileged::data_selectors()[1];
    println!("sensitive: leaves es={es:#x} loaded");
    println!("sensitive: done");
    guest_kernel::shutdown(ShutdownReason::Poweroff)
}
