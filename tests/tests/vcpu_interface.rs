//! The small vCPU-interface calls a PV kernel makes at boot (issue 11): the
//! `vcpu-interface` test guest, booted as the initial domain, checks each
//! against Xen's answer, aims the runstate area at its own read-only L4,
//! and ends with `VCPUOP_down` of its last vCPU, which must power it off.

use scenarios::Machine;

#[test]
fn vcpu_interface_answers_as_xen_does() {
    let machine = Machine::run_test_guest("vcpu-interface");
    let log = machine.log();
    let passed = log.lines().filter(|line| line.starts_with("ok: ")).count();
    machine.ensure(passed >= 40, &format!("at least 40 checks ran ({passed})"));
}
