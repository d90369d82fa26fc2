//! evtchn-attacks: a guest that abuses event channels, booted as the
//! initial domain by the `event_channel_abuse` scenario. Every misuse must
//! get Xen's error code, the legitimate uses must still work after it, and
//! the hypervisor must stay up.
#![no_std]
#![no_main]

use guest_kernel::abi::event_channel::{EventChannelOp, EvtchnBindVcpu, EvtchnStatus, VIRQ_TIMER};
use guest_kernel::abi::{wrappers, StartInfo};
use guest_kernel::{events, println};
use test_guests::{check, expect_result, finish};

const EINVAL: i64 = -22;
const ENOENT: i64 = -2;
const EEXIST: i64 = -17;
const ESRCH: i64 = -3;
const ENOSPC: i64 = -28;

fn result<T>(outcome: Result<T, i64>) -> i64 {
    outcome.err().unwrap_or(0)
}

fn status(port: u32) -> i64 {
    let mut request = EvtchnStatus {
        dom: guest_kernel::abi::layout::DOMID_SELF,
        port,
        ..Default::default()
    };
    // SAFETY: the request lives for the call.
    unsafe {
        wrappers::event_channel_op(
            EventChannelOp::Status,
            &mut request as *mut EvtchnStatus as *mut u8,
        )
    }
}

#[no_mangle]
fn guest_main(_start_info: &'static StartInfo) -> ! {
    println!("evtchn-attacks: abusing event channels");
    expect_result(
        "send on a port never allocated",
        result(events::send(500)),
        EINVAL,
    );
    expect_result(
        "send on a port beyond the table",
        result(events::send(5000)),
        EINVAL,
    );
    expect_result("send on port 2^31", result(events::send(1 << 31)), EINVAL);
    expect_result(
        "close a port never allocated",
        result(events::close(500)),
        EINVAL,
    );
    expect_result(
        "unmask a port beyond the table",
        result(events::unmask(70_000)),
        EINVAL,
    );
    expect_result("status of a port beyond the table", status(70_000), EINVAL);
    expect_result(
        "bind an unknown VIRQ",
        result(events::bind_virq(99)),
        EINVAL,
    );
    let timer = events::bind_virq(VIRQ_TIMER);
    check("bind VIRQ_TIMER", timer.is_ok(), format_args!("{timer:?}"));
    expect_result(
        "bind VIRQ_TIMER twice",
        result(events::bind_virq(VIRQ_TIMER)),
        EEXIST,
    );
    let mut to_vcpu1 = EvtchnBindVcpu {
        port: timer.unwrap_or(0),
        vcpu: 1,
    };
    // SAFETY: the request lives for the call.
    let rebind = unsafe {
        wrappers::event_channel_op(
            EventChannelOp::BindVcpu,
            &mut to_vcpu1 as *mut EvtchnBindVcpu as *mut u8,
        )
    };
    expect_result("bind a port to a vCPU that does not exist", rebind, ENOENT);
    expect_result(
        "connect to a domain that does not exist",
        result(events::bind_interdomain(77, 1)),
        ESRCH,
    );
    expect_result(
        "connect to our own port that is not offered",
        result(events::bind_interdomain(0, 300)),
        EINVAL,
    );

    // Closing twice.
    let offered = events::alloc_unbound(0).unwrap_or(0);
    expect_result(
        "an unbound port can be sent on (the event is dropped)",
        result(events::send(offered)),
        0,
    );
    expect_result("close it", result(events::close(offered)), 0);
    expect_result("close it again", result(events::close(offered)), EINVAL);

    // Loopback: both ends in this domain.
    let listening = events::alloc_unbound(0).unwrap_or(0);
    let connected = events::bind_interdomain(0, listening);
    check(
        "connect to our own offered port",
        connected.is_ok(),
        format_args!("{connected:?}"),
    );
    let connected = connected.unwrap_or(0);
    let _ = events::take(connected);
    expect_result(
        "send across the loopback",
        result(events::send(connected)),
        0,
    );
    events::wait_until(|| events::take(listening));
    check(
        "the other end fired",
        true,
        format_args!("upcalls so far: {}", events::upcalls()),
    );
    expect_result("close one end", result(events::close(connected)), 0);
    expect_result(
        "the other end is unbound again: sending is dropped",
        result(events::send(listening)),
        0,
    );
    expect_result(
        "connect to it again",
        result(events::bind_interdomain(0, listening).map(|_| ())),
        0,
    );

    // Exhaust the table, then give everything back.
    let mut taken = 0;
    let mut first = 0;
    let last_error = loop {
        match events::alloc_unbound(0) {
            Ok(port) => {
                if taken == 0 {
                    first = port;
                }
                taken += 1;
            }
            Err(error) => break error,
        }
        if taken > 5000 {
            break 0;
        }
    };
    expect_result("allocate until the table is full", last_error, ENOSPC);
    check(
        "hundreds of ports fit first",
        taken > 1000,
        format_args!("{taken} ports"),
    );
    let mut closed = 0;
    for port in first..first + taken {
        if events::close(port).is_ok() {
            closed += 1;
        }
    }
    check(
        "all of them close",
        closed == taken,
        format_args!("{closed} of {taken}"),
    );
    let again = events::alloc_unbound(0);
    check(
        "a port can be allocated again",
        again.is_ok(),
        format_args!("{again:?}"),
    );

    check(
        "the hypervisor still answers",
        wrappers::xen_version_number() > 0,
        format_args!("xen_version"),
    );
    finish()
}
