//! `debug ...`: commands that make Dom0 misbehave on purpose, for the
//! scenario tests and for labs (what does a fault look like? an unknown
//! hypercall?). The odd operations themselves are the guest kernel's
//! `sys::raw`, shared with the attacking test workloads.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use dom0::shell::Debug;
use guest_kernel::abi::XenError;
use guest_kernel::sys::raw;
use guest_kernel::{paging, println, start};

pub fn debug(command: Debug) {
    match command {
        Debug::PageFault => {
            println!("Reading the unmapped address 0xdead0000...");
            // The read faults, the hypervisor bounces the page fault to
            // our handler, which reports it and crashes the domain.
            let value = raw::read_u64(0xdead_0000);
            println!("unexpectedly read {value:#x}");
        }
        Debug::NoHandler => {
            let result = guest_kernel::traps::clear();
            println!("Trap table cleared ({result}); reading the unmapped address 0xdead0000...");
            // With no handler the hypervisor crashes the domain itself.
            let value = raw::read_u64(0xdead_0000);
            println!("unexpectedly read {value:#x}");
        }
        Debug::Privileged => {
            println!("Executing hlt in ring 3...");
            // hlt is privileged: in ring 3 it raises #GP, which is the point.
            raw::halt();
            println!("unexpectedly survived hlt");
        }
        Debug::Breakpoint => {
            raw::breakpoint();
            println!("back from the breakpoint handler");
        }
        Debug::Hypercall(number, arguments) => {
            // Unchecked, which is why `help` marks this command: the
            // arguments are the user's (0 when not given), and a hypercall
            // given a Dom0 address or a callback may write Dom0's memory or
            // crash it. Pointers of 0 fail with -EFAULT.
            let result = raw::hypercall(number, arguments);
            match XenError::from_return(result) {
                Some(error) => println!(
                    "hypercall {number} returned {result} ({}: {})",
                    error.name(),
                    error.description()
                ),
                None => println!("hypercall {number} returned {result}"),
            }
        }
        Debug::CommandLine => println!("{}", start::command_line()),
        Debug::Cycles(count, file) => crate::toolstack::cycles(count, &file),
        Debug::HoldFrame(domain) => crate::toolstack::hold_frame(&domain),
        Debug::ReleaseFrame(id) => crate::toolstack::release_frame(id),
        Debug::Heap(mebibytes) => {
            let before = guest_kernel::heap::size();
            let bytes = (mebibytes << 20) as usize;
            let mut block: Vec<u8> = Vec::new();
            if block.try_reserve_exact(bytes).is_err() {
                println!(
                    "could not allocate {mebibytes} MiB: {} free frames ({} MiB) are left",
                    paging::free_frames(),
                    paging::free_frames() >> 8
                );
                return;
            }
            block.resize(bytes, 0xa5);
            let intact = block.iter().all(|&byte| byte == 0xa5);
            println!(
                "heap grew from {} KiB to {} KiB; {mebibytes} MiB allocated, written and read back {}",
                before >> 10,
                guest_kernel::heap::size() >> 10,
                if intact { "intact" } else { "CORRUPTED" }
            );
        }
    }
}
