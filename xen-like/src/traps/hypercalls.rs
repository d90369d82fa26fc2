//! The hypercalls with which a guest describes its exception handling:
//! `set_trap_table`, `stack_switch`, `set_callbacks`, `callback_op`, and
//! `iret`, with which its handlers return (and with which the guest kernel
//! enters user mode), and `set_segment_base`.

use crate::arch::x86_64::frame::{
    GuestFrame, ENTRY_FULL_RESTORE, ENTRY_SYSCALL, RFLAGS_GUEST_MASK, RFLAGS_IF, RFLAGS_IOPL,
    RFLAGS_IOPL_SHIFT,
};
use crate::arch::x86_64::instructions;
use crate::domain::{self, Domain, TrapHandler};
use crate::mm::guest_access;
use crate::mm::pagewalk::is_canonical;
use crate::traps::guest_mode;
use hypercall_abi::callback::{CallbackOp, CallbackRegister, CallbackType, CALLBACKF_MASK_EVENTS};
use hypercall_abi::layout::{
    FLAT_RING3_CS64, FLAT_RING3_SS64, SEGBASE_FS, SEGBASE_GS_KERNEL, SEGBASE_GS_USER,
    SEGBASE_GS_USER_SEL, VGCF_IN_SYSCALL,
};
use hypercall_abi::mmu::VMASST_TYPE_ARCHITECTURAL_IOPL;
use hypercall_abi::{IretContext, TrapInfo, XenError};

/// The most entries a trap table may have (one per vector).
const MAX_TRAP_ENTRIES: u64 = 256;

/// `set_trap_table(table)`: installs the guest's virtual IDT, an array of
/// `trap_info` ending with an entry whose address is 0. A null pointer
/// clears the table. Entries replace earlier ones vector by vector.
pub fn set_trap_table(domain: &mut Domain, table: u64) -> Result<u64, XenError> {
    if table == 0 {
        domain.vcpu.trap_table = [TrapHandler::default(); 256];
        return Ok(0);
    }
    for index in 0..MAX_TRAP_ENTRIES {
        let address = table + index * core::mem::size_of::<TrapInfo>() as u64;
        let entry: TrapInfo = guest_access::read_from_guest(address)?;
        if entry.address == 0 {
            return Ok(0);
        }
        if !is_canonical(entry.address) {
            return Err(XenError::EINVAL);
        }
        domain.vcpu.trap_table[usize::from(entry.vector)] = TrapHandler {
            address: entry.address,
            mask_events: entry.masks_events(),
            privilege: entry.privilege_level(),
        };
    }
    Err(XenError::EINVAL) // no terminating entry within 256
}

/// `stack_switch(ss, rsp)`: the stack the guest kernel wants exceptions
/// from user mode delivered on.
pub fn stack_switch(domain: &mut Domain, ss: u64, rsp: u64) -> Result<u64, XenError> {
    if !is_canonical(rsp) {
        return Err(XenError::EINVAL);
    }
    domain.vcpu.kernel_ss = ss | 3; // guests run in ring 3: fix up the RPL as Xen does
    domain.vcpu.kernel_sp = rsp;
    Ok(0)
}

fn set_callback(domain: &mut Domain, kind: CallbackType, address: u64) -> Result<(), XenError> {
    if address != 0 && !is_canonical(address) {
        return Err(XenError::EINVAL);
    }
    let callbacks = &mut domain.vcpu.callbacks;
    match kind {
        CallbackType::Event => callbacks.event = address,
        CallbackType::Failsafe => callbacks.failsafe = address,
        CallbackType::Syscall => callbacks.syscall = address,
        CallbackType::Nmi => callbacks.nmi = address,
        // Xen records these for a 64-bit guest too (its 32-bit user code).
        CallbackType::Syscall32 => callbacks.syscall32 = address,
        CallbackType::Sysenter => callbacks.sysenter = address,
        // The old sysenter number belongs to 32-bit hypervisors.
        CallbackType::SysenterDeprecated => return Err(XenError::EINVAL),
    }
    Ok(())
}

/// `callback_op(cmd, arg)`: register or unregister one callback.
pub fn callback_op(domain: &mut Domain, command: u64, argument: u64) -> Result<u64, XenError> {
    let Ok(operation) = CallbackOp::try_from(command as u32) else {
        crate::console::guest_log!(
            domain,
            Warn,
            "unknown callback_op command {command}: -ENOSYS"
        );
        return Err(XenError::ENOSYS);
    };
    match operation {
        CallbackOp::Register => {
            let request: CallbackRegister = guest_access::read_from_guest(argument)?;
            let kind =
                CallbackType::try_from(request.callback_type).map_err(|_| XenError::EINVAL)?;
            if request.flags & !CALLBACKF_MASK_EVENTS != 0 {
                return Err(XenError::EINVAL);
            }
            set_callback(domain, kind, request.address)?;
            let masks_events = request.flags & CALLBACKF_MASK_EVENTS != 0;
            match kind {
                CallbackType::Syscall => domain.vcpu.callbacks.syscall_masks_events = masks_events,
                CallbackType::Failsafe => {
                    domain.vcpu.callbacks.failsafe_masks_events = masks_events
                }
                _ => {}
            }
        }
        CallbackOp::Unregister => {
            // The argument is a struct callback_unregister { u16 type; u16 _unused; }.
            let raw: u64 = guest_access::read_from_guest(argument)?;
            let kind = CallbackType::try_from(raw as u16).map_err(|_| XenError::EINVAL)?;
            set_callback(domain, kind, 0)?;
        }
    }
    Ok(0)
}

/// `set_callbacks(event, failsafe, syscall)`: the older way to register the
/// three main callbacks at once.
pub fn set_callbacks(
    domain: &mut Domain,
    event: u64,
    failsafe: u64,
    syscall: u64,
) -> Result<u64, XenError> {
    set_callback(domain, CallbackType::Event, event)?;
    set_callback(domain, CallbackType::Failsafe, failsafe)?;
    set_callback(domain, CallbackType::Syscall, syscall)?;
    // This older interface has no flags: the syscall and failsafe
    // callbacks run with events as they were (as in Xen).
    domain.vcpu.callbacks.syscall_masks_events = false;
    domain.vcpu.callbacks.failsafe_masks_events = false;
    Ok(0)
}

/// `iret`: return from a handler. The hypercall page's stub left an
/// `iret_context` (rax, r11, rcx, flags, rip, cs, rflags, rsp, ss) at the
/// guest's stack pointer; load it into the frame. Returns the restored rax.
///
/// A CS with RPL 3 returns to guest *user* mode (Xen's `do_iret`): the
/// vCPU switches to its user root and GS base (`guest_mode`), which needs
/// a user root (`MMUEXT_NEW_USER_BASEPTR`): a guest kernel that has none
/// is crashed, as Xen crashes it. Any other RPL stays in guest-kernel
/// mode. Only the guest kernel can make this hypercall: a user program's
/// `syscall` never reaches the hypervisor.
///
/// With `VGCF_in_syscall` in `flags` the return is sysret-style (the
/// guest's own `sysretq`, in effect): only rax, rip, rflags and rsp are
/// restored, and rcx and r11 are clobbered by the `sysretq` the
/// hypervisor then leaves through.
///
/// What a crafted frame gets (the guest cannot return to ring 0, nor make
/// the hypervisor's own `iretq`/`sysretq` fault):
/// - a frame the guest cannot read (unmapped, or in the hypervisor's
///   range), or selectors other than the flat 64-bit ones (a ring-0 or
///   kernel data selector, a null or garbage SS): an un-returnable frame,
///   and the domain is crashed with the reason;
/// - the RPL of CS and SS (ring 0, 1 or 2 in a bounce frame means guest
///   kernel mode) is forced to 3, and RFLAGS is sanitised as Xen does:
///   IOPL, NT, RF, VM, VIF and VIP cleared, IF set;
/// - a non-canonical RIP is returned to as Xen returns to it: the
///   processor would refuse it in the hypervisor's `iretq`, and the guest
///   gets that `#GP(0)` at the address instead (`traps::leave_to_guest`);
/// - a non-canonical RSP is loaded as it is (Xen's `do_iret` does not look
///   at it either, and neither `iretq` nor `sysretq` checks it): the
///   guest's next stack access faults in the guest. A kernel's exception
///   handler returns to such a stack when the faulting code had loaded it
///   on purpose (XTF's `memop-seg` does).
///
/// A RIP in the hypervisor's range is canonical and returnable: the guest
/// then takes a page fault at it in ring 3, its own business.
pub fn iret(domain: &mut Domain, frame: &mut GuestFrame) -> Result<u64, &'static str> {
    let context: IretContext = guest_access::read_from_guest(frame.rsp)
        .map_err(|_| "iret frame is not readable on the guest stack")?;
    // Only the low 16 bits of the CS and SS slots are selectors: bounce
    // frames keep the saved event mask in bits 32..39 of the CS slot.
    let (cs, ss) = (context.cs & 0xffff, context.ss & 0xffff);
    if cs | 3 != u64::from(FLAT_RING3_CS64) || ss | 3 != u64::from(FLAT_RING3_SS64) {
        return Err("iret to segments other than the flat 64-bit ones");
    }
    if cs & 3 == 3 && domain.vcpu.kernel_mode {
        if domain.user_root.is_none() {
            return Err("iret to user mode with no user page table (MMUEXT_NEW_USER_BASEPTR)");
        }
        guest_mode::toggle_guest_mode(domain);
    }
    if context.flags & VGCF_IN_SYSCALL == 0 {
        frame.rcx = context.rcx;
        frame.r11 = context.r11;
        frame.vector = ENTRY_FULL_RESTORE;
    } else {
        frame.vector = ENTRY_SYSCALL;
    }
    frame.rip = context.rip;
    frame.cs = u64::from(FLAT_RING3_CS64);
    frame.rflags = (context.rflags & RFLAGS_GUEST_MASK) | RFLAGS_IF | 2;
    frame.rsp = context.rsp;
    frame.ss = u64::from(FLAT_RING3_SS64);
    // Under VMASST_TYPE_architectural_iopl the frame's IOPL is the vCPU's
    // new virtual IOPL (Xen's do_iret); the processor's stays 0.
    if domain.vm_assist & (1 << VMASST_TYPE_ARCHITECTURAL_IOPL) != 0 {
        domain.vcpu.iopl = ((context.rflags & RFLAGS_IOPL) >> RFLAGS_IOPL_SHIFT) as u8;
    }
    // The saved IF says whether events were enabled in the interrupted code.
    domain
        .vcpu_info()
        .set_upcall_mask(u8::from(context.rflags & RFLAGS_IF == 0));
    Ok(context.rax)
}

/// `set_segment_base(which, base)`: the FS base, or one of the two GS
/// bases (the user's, `SEGBASE_GS_USER`, and the kernel's,
/// `SEGBASE_GS_KERNEL`). Only the guest kernel calls it, so the kernel's
/// GS base is the active one and the user's is the shadow that the next
/// switch to user mode brings in (`guest_mode`). A non-canonical base is
/// `-EINVAL` (loading it would fault in the hypervisor).
/// `SEGBASE_GS_USER_SEL` loads a user GS *selector* from the vCPU's GDT
/// (`mm::descriptor_tables::load_user_gs_selector`).
pub fn set_segment_base(domain: &mut Domain, which: u64, base: u64) -> Result<u64, XenError> {
    if !is_canonical(base) {
        return Err(XenError::EINVAL);
    }
    match which {
        SEGBASE_FS => instructions::write_fs_base(base),
        SEGBASE_GS_USER => domain.vcpu.shadow_gs_base = base,
        SEGBASE_GS_KERNEL => instructions::write_kernel_gs_base(base),
        SEGBASE_GS_USER_SEL => {
            crate::mm::descriptor_tables::load_user_gs_selector(domain, base as u16)
        }
        _ => return Err(XenError::EINVAL),
    }
    Ok(0)
}

/// Crashes the current domain after a failed `iret`.
pub fn iret_failed(reason: &str) {
    domain::crash_current(reason);
}
