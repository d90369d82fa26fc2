//! Descriptor tables, segment bases and the lazy FPU switch under attack
//! (issue 11): the `descriptor-attacks` test guest, booted as the initial
//! domain, offers GDT frames it does not own or can still write, call gates
//! into ring 0 and TSS descriptors (through `set_gdt` and
//! `update_descriptor`), and non-canonical segment bases, all of which must
//! be refused; then it loads selectors of its own GDT, reads through FS and
//! GS bases it set, and takes exactly one #NM after `fpu_taskswitch(1)`;
//! last, its failsafe callback must run when a selector in DS and FS no
//! longer loads after it slept (the descriptor made not present).

use scenarios::Machine;

#[test]
fn descriptor_tables_segments_and_fpu_switch_hold() {
    let machine = Machine::run_test_guest("descriptor-attacks");
    let log = machine.log();
    let passed = log.lines().filter(|line| line.starts_with("ok: ")).count();
    machine.ensure(passed >= 40, &format!("at least 40 checks ran ({passed})"));
}
