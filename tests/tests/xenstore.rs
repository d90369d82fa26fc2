//! The config store: `xl create` writes a domain's keys into the
//! XenStore-compatible tree, Dom0's `xenstore-*` commands read and change
//! it, and `xl destroy` removes the keys again.

use scenarios::{BootConfig, Machine};

#[test]
fn xl_create_writes_the_domains_keys_and_xl_destroy_removes_them() {
    let mut machine = Machine::boot_to_prompt(BootConfig::direct_from_env());
    let output = machine.command("xl create /etc/xen/sleeper.cfg");
    let found = machine.ensure_match(
        &output,
        r"Started domain sleeper \(id=(\d+)\)",
        "the new domain's ID",
    );
    let id: u16 = found[1].parse().expect("a domain ID");

    let tree = machine.command("xenstore-ls");
    for line in [
        "local = \"\"",
        &format!("  {id} = \"\""),
        "   name = \"sleeper\"",
        &format!("   domid = \"{id}\""),
        "vm = \"\"",
    ] {
        machine.ensure(
            tree.contains(line),
            &format!("xenstore-ls shows {line:?}:\n{tree}"),
        );
    }
    let name = machine.command(&format!("xenstore-read /local/domain/{id}/name"));
    machine.ensure(name.trim() == "sleeper", &name);
    let vm = machine.command(&format!("xenstore-read /local/domain/{id}/vm"));
    let vm_name = machine.command(&format!("xenstore-read {}/name", vm.trim()));
    machine.ensure(vm_name.trim() == "sleeper", &vm_name);

    // Dom0 writes, lists and removes keys of its own.
    machine.command("xenstore-write /tool/test/greeting \"hello there\"");
    let listing = machine.command("xenstore-list /tool/test");
    machine.ensure(listing.trim() == "greeting", &listing);
    let value = machine.command("xenstore-read /tool/test/greeting");
    machine.ensure(value.trim() == "hello there", &value);
    machine.command("xenstore-rm /tool");
    let gone = machine.command("xenstore-read /tool/test/greeting");
    machine.ensure(gone.contains("ENOENT"), &gone);
    let invalid = machine.command("xenstore-read /a//b");
    machine.ensure(invalid.contains("EINVAL"), &invalid);

    let output = machine.command("xl destroy sleeper");
    machine.ensure(output.contains("Destroyed domain sleeper"), &output);
    let gone = machine.command(&format!("xenstore-read /local/domain/{id}/name"));
    machine.ensure(gone.contains("ENOENT"), &gone);
    let tree = machine.command("xenstore-ls /vm");
    machine.ensure(!tree.contains("sleeper"), &tree);
    machine.poweroff();
}
