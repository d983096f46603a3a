//! libcontainer: skiff's container engine.
//!
//! The crate turns an OCI bundle into a running container and manages it
//! through the runtime-spec lifecycle. It holds no command-line parsing: the
//! `skiff` binary is a thin layer over [`container`].
//!
//! One module per concern:
//! - [`config`]: loading and validating `config.json`;
//! - [`state`]: the on-disk state store (`/run/skiff/<id>`), locking, status;
//! - [`container`]: the lifecycle (create, start, run, kill, delete, state);
//! - [`init`]: the code that runs in the container's first process between
//!   clone and exec;
//! - [`channel`]: the typed messages between the runtime and that process;
//! - [`exec_guard`]: the init's final exec, which refuses the runtime's own
//!   binary (also as a `#!` interpreter);
//! - [`namespaces`], [`rootfs`], [`safe_path`], [`devices`], [`process`],
//!   [`capabilities`], [`seccomp`], [`hooks`], [`tty`], [`cgroups`]: one
//!   piece of container set-up each;
//! - [`lsm`]: AppArmor profile, SELinux labels;
//! - [`procfs`]: every access under `/proc` through a verified handle;
//! - [`sys`]: raw system calls the `nix` crate does not wrap;
//! - [`trace`]: the `--debug` startup trace, one line per stage with its duration;
//! - [`spec`]: the default `config.json` written by `skiff spec`;
//! - [`features`]: the runtime-spec features document of `skiff features`.

pub mod capabilities;
pub mod cgroups;
pub mod channel;
pub mod config;
pub mod container;
pub mod devices;
pub mod error;
pub mod exec_guard;
pub mod fault;
pub mod features;
pub mod hooks;
pub mod init;
pub mod lsm;
pub mod namespaces;
pub mod notify;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod safe_path;
pub mod seccomp;
pub mod socket;
pub mod spec;
pub mod state;
pub mod sys;
pub mod trace;
pub mod tty;

pub use error::{Error, Result};
