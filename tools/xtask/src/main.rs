//! `cargo xtask`: the one command for every job on the host (build, run, test, bench, fuzz, xtf,
//! iso, gdb).
//!
//! The kernels are `no_std` binaries for the host target built with bare-metal code-generation
//! flags (see `build.rs` here and `shared/TOOLCHAIN.md`); everything else in the workspace is a
//! plain host crate. This tool keeps the two apart: kernel builds go to `target/kernel/` with
//! their flags, host builds and tests stay in `target/` without them.

mod bench;
mod build;
mod fuzz;
mod iso;
mod qemu;
mod test;
mod tools;
mod xtf;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Build, boot, test and measure xen-like.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

/// The jobs.
#[derive(Debug, Subcommand)]
enum Task {
    /// Build the hypervisor, Dom0 and the guest kernel, and Dom0's ramdisk, into target/kernel/.
    Build,
    /// Build, then boot in QEMU with the serial line on this terminal (Ctrl-A X quits).
    Run {
        /// Boot the GRUB ISO (Multiboot2, as on bare metal) instead of QEMU's direct loader.
        #[arg(long)]
        iso: bool,
        /// The hypervisor's command line (direct boot only).
        #[arg(long, default_value = scenarios::DEFAULT_HYPERVISOR_CMDLINE)]
        cmdline: String,
        /// Dom0's command line (direct boot only).
        #[arg(long, default_value = "")]
        dom0_cmdline: String,
        /// QEMU's memory size.
        #[arg(long, default_value = scenarios::DEFAULT_MEMORY)]
        memory: String,
        /// Extra QEMU arguments, after `--`.
        #[arg(last = true)]
        qemu_args: Vec<String>,
    },
    /// Build, then make a GRUB (Multiboot2) ISO: target/kernel/xen-like.iso.
    Iso,
    /// Run the host unit tests, build the kernels and the ISO, then run the QEMU scenarios.
    Test {
        /// Run only the scenario tests whose names contain this text.
        filter: Option<String>,
    },
    /// Boot, run Dom0's in-guest microbenchmarks, print a table and write target/bench.md.
    Bench,
    /// Build, then boot the direct path stopped at the first instruction, waiting for gdb.
    Gdb,
    /// Boot every Xen Test Framework pv64 test found under DIR as the initial domain and print
    /// a table of verdicts (XTF is built outside this repository: see README).
    Xtf {
        /// A built XTF tree (`make` in a clone of https://github.com/andyhhp/xtf).
        directory: PathBuf,
        /// Run only the tests whose names contain this text.
        filter: Option<String>,
    },
    /// Boot, run the hypercall fuzzer under Dom0 beside a counter guest, and report calls,
    /// calls/s, hypervisor faults, crashed guests, the counter and free memory.
    Fuzz {
        /// Calls in total (split over guests of at most 250,000 calls each).
        #[arg(long, default_value_t = 20_000)]
        calls: u64,
        /// The first seed; further guests take the seeds after it.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seeds to split the calls over, such as 1,2,3 (instead of --seed).
        #[arg(long, value_delimiter = ',')]
        seeds: Vec<u64>,
        /// Percentage of calls to hypercall numbers the hypervisor does not implement
        /// (the guest's default is 10).
        #[arg(long)]
        unimplemented_percent: Option<u64>,
        /// Print every call from this index on, decoded, before it is made (to find the call
        /// that broke something).
        #[arg(long)]
        trace_from: Option<u64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Build => build::build().map(|_| ()),
        Task::Run {
            iso,
            cmdline,
            dom0_cmdline,
            memory,
            qemu_args,
        } => qemu::run(&qemu::RunOptions {
            iso,
            hypervisor_cmdline: cmdline,
            dom0_cmdline,
            memory,
            qemu_args,
        }),
        Task::Iso => build::build().and_then(|artifacts| {
            let iso = iso::make_iso(&artifacts)?;
            println!("{}", iso.display());
            Ok(())
        }),
        Task::Test { filter } => match test::test(filter.as_deref()) {
            // The summary line was the last thing printed; keep it last.
            Ok(all_passed) => return ExitCode::from(if all_passed { 0 } else { 1 }),
            Err(error) => Err(error),
        },
        Task::Bench => bench::bench(),
        Task::Gdb => qemu::gdb(),
        Task::Xtf { directory, filter } => xtf::xtf(&directory, filter.as_deref()),
        Task::Fuzz {
            calls,
            seed,
            seeds,
            unimplemented_percent,
            trace_from,
        } => fuzz::fuzz(&fuzz::Options {
            calls,
            seed,
            seeds,
            unimplemented_percent,
            trace_from,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (this crate lives in `tools/xtask/`).
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .and_then(|tools| tools.parent())
        .expect("xtask lives two levels below the workspace root");
    root.canonicalize().unwrap_or_else(|_| root.to_path_buf())
}

/// The cargo that runs us (so that `cargo +nightly xtask` stays on nightly), or `cargo`.
fn cargo() -> std::process::Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(program);
    command.current_dir(workspace_root());
    command
}
