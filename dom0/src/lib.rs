//! Dom0's pure logic, tested on the host: the configuration-file parser, the shell's line editor and
//! command parser, `xl`'s output formats, and the config store (`xenstore`). The binary (`src/main.rs`)
//! connects them to the console and the hypercalls.
#![cfg_attr(not(test), no_std)]
// Pure logic: no module here needs `unsafe` (Dom0's raw operations are the
// binary's `sys` module).
#![forbid(unsafe_code)]

extern crate alloc;

pub mod calendar;
pub mod config;
pub mod line_editor;
pub mod shell;
pub mod xenstore;
pub mod xl;
