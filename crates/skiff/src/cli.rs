//! The command line: runc's commands and flags, as clap definitions. Kept
//! apart from `main` so that man pages and shell completions can be
//! generated from the same definition: `crates/skiff-gen` compiles this file
//! too, so it uses nothing but clap and std. Doc comments become the help
//! text and the man pages. Before clap, `argv` makes runc's other argument
//! shapes (Go's single-dash long flags) clap's.

use std::path::PathBuf;

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "skiff",
    about = "an OCI container runtime with runc's command line",
    long_about = "skiff creates and runs containers from OCI bundles (a config.json and a root filesystem) with runc's command line: global options come before the command, a command's options before its arguments. Every option takes its value as --opt value or --opt=value, and, as with runc, the single-dash spellings -opt value and -opt=value.",
    disable_version_flag = true
)]
pub struct Cli {
    /// Root directory for container state (default /run/skiff, or $XDG_RUNTIME_DIR/skiff when rootless)
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Write logs to FILE instead of stderr
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Enable debug logging
    #[arg(long)]
    pub debug: bool,
    /// Use the systemd cgroup driver (cgroupsPath is slice:prefix:name)
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = ["true", "false", "auto"])]
    pub rootless: Option<String>,
    /// Path to the CRIU binary that checkpoint and restore use (default: criu in $PATH)
    #[arg(long, value_name = "PATH")]
    pub criu: Option<String>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args)]
pub struct CreateArgs {
    /// Path to the bundle directory
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// File to write the container's host pid to
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Move the root with MS_MOVE+chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of creating one
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra file descriptors (3..3+N) to the container
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id
    pub id: String,
}

#[derive(Args)]
pub struct ExecArgs {
    /// An OCI Process JSON to run (instead of a command and these flags)
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Unix socket that receives the pty master (with --tty)
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Working directory of the process
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Add an environment variable
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Run as UID (and GID)
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Add a supplementary group
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective and permitted sets
    #[arg(short, long, value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set no_new_privs (--no-new-privs=false clears the container's)
    #[arg(long = "no-new-privs", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub no_new_privs: Option<bool>,
    /// SELinux label of the process
    #[arg(long = "process-label", value_name = "LABEL")]
    pub process_label: Option<String>,
    /// AppArmor profile of the process
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// Pass N extra file descriptors (3..3+N) to the process
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// File to write the process's host pid to
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Leave the process running in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Exec even if the container is paused (the process starts frozen)
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Join a sub-cgroup of the container's: PATH, or CONTROLLER[,CONTROLLER]:PATH on cgroup v1
    #[arg(long, value_name = "[CONTROLLERS:]PATH")]
    pub cgroup: Vec<String>,
    /// Container id
    pub id: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `update`'s flags: runc's (sizes like `10m`, `-1` for unlimited; an
/// absent or zero value leaves the limit unchanged).
#[derive(Args)]
pub struct UpdateArgs {
    /// A LinuxResources JSON file, or - for stdin (the resource flags are then ignored, as with runc)
    #[arg(short, long, value_name = "FILE|-")]
    pub resources: Option<String>,
    /// Memory limit in bytes (10m, 1g; -1 for unlimited)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit (-1 for unlimited swap)
    #[arg(long = "memory-swap", value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory reservation (soft limit)
    #[arg(long = "memory-reservation", value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Obsolete: accepted and ignored with a warning, as with runc
    #[arg(long = "kernel-memory", value_name = "SIZE", allow_hyphen_values = true, hide = true)]
    pub kernel_memory: Option<String>,
    /// Obsolete: accepted and ignored with a warning, as with runc
    #[arg(long = "kernel-memory-tcp", value_name = "SIZE", allow_hyphen_values = true, hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight against other containers)
    #[arg(long = "cpu-share", visible_alias = "cpu-shares", value_name = "N")]
    pub cpu_shares: Option<String>,
    /// CPU CFS period in microseconds
    #[arg(long = "cpu-period", value_name = "USEC")]
    pub cpu_period: Option<String>,
    /// CPU CFS quota in microseconds per period (-1 for unlimited)
    #[arg(long = "cpu-quota", value_name = "USEC", allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// CPU CFS burst in microseconds
    #[arg(long = "cpu-burst", value_name = "USEC")]
    pub cpu_burst: Option<String>,
    /// CPU realtime period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "USEC")]
    pub cpu_rt_period: Option<String>,
    /// CPU realtime runtime in microseconds per period (-1 for unlimited)
    #[arg(long = "cpu-rt-runtime", value_name = "USEC", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<String>,
    /// SCHED_IDLE for the cgroup: 1, or 0 for the default
    #[arg(long = "cpu-idle", value_name = "0|1")]
    pub cpu_idle: Option<String>,
    /// CPUs to run on (0-3,5)
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to allocate from (0-1)
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of pids (-1 for unlimited)
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Block I/O weight, 10 to 1000
    #[arg(long = "blkio-weight", value_name = "N")]
    pub blkio_weight: Option<String>,
    /// Intel RDT/CAT L3 cache schema (refused: skiff does not manage Intel RDT)
    #[arg(long = "l3-cache-schema", value_name = "SCHEMA")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT/MBA memory bandwidth schema (refused: skiff does not manage Intel RDT)
    #[arg(long = "mem-bw-schema", value_name = "SCHEMA")]
    pub mem_bw_schema: Option<String>,
    /// Container id
    pub id: String,
}

/// The CRIU options `checkpoint` and `restore` share (runc's names).
#[derive(Args)]
pub struct CriuArgs {
    /// Path for the CRIU image files (default: ./checkpoint)
    #[arg(long = "image-path", value_name = "DIR")]
    pub image_path: Option<PathBuf>,
    /// Path for CRIU's work files and logs (default: criu.work in the container's state directory)
    #[arg(long = "work-path", value_name = "DIR")]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Handle file locks, for safety
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// Cgroups mode: soft (default), full, strict or ignore
    #[arg(long = "manage-cgroups-mode", value_name = "MODE")]
    pub manage_cgroups_mode: Option<String>,
    /// Create a namespace, but don't restore its properties (network)
    #[arg(long = "empty-ns", value_name = "NS")]
    pub empty_ns: Vec<String>,
    /// Enable auto deduplication of memory images
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// Use userfaultfd to lazily restore memory pages
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
}

#[derive(Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Path for previous CRIU image files of a pre-dump, relative to the image path
    #[arg(long = "parent-path", value_name = "DIR")]
    pub parent_path: Option<PathBuf>,
    /// Leave the process running after checkpointing
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// CRIU writes \0 to this FD once lazy-pages is ready (-1: none)
    #[arg(long = "status-fd", value_name = "FD", default_value_t = -1, allow_hyphen_values = true)]
    pub status_fd: i32,
    /// ADDRESS:PORT of the page server
    #[arg(long = "page-server", value_name = "ADDRESS:PORT")]
    pub page_server: Option<String>,
    /// Dump the container's memory only, and leave it running
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// Container id
    pub id: String,
}

#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Path to the bundle directory
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the container's host pid to
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Do not become a subreaper for the reparented processes of the restored container
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Refused: criu always pivots into the restored root (there is no restore without pivot_root)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// LSM profile of the restored process, TYPE:NAME (apparmor:NAME, selinux:LABEL)
    #[arg(long = "lsm-profile", value_name = "TYPE:NAME")]
    pub lsm_profile: Option<String>,
    /// LSM mount context of the restored mounts
    #[arg(long = "lsm-mount-context", value_name = "CONTEXT")]
    pub lsm_mount_context: Option<String>,
    /// Container id
    pub id: String,
}

#[derive(Subcommand)]
pub enum Command {
    /// Write a default config.json
    Spec(Lazy<SpecArgs>),
    /// Create a container (its process waits for `start`)
    Create(Lazy<CreateArgs>),
    /// Start a created container
    Start(Lazy<IdArg>),
    /// Print a container's state as JSON
    State(Lazy<IdArg>),
    /// Run a new process in a created or running container
    Exec(Lazy<ExecArgs>),
    /// Send a signal to a container's init (or all its processes)
    Kill(Lazy<KillArgs>),
    /// Delete a container
    Delete(Lazy<DeleteArgs>),
    /// Create and start a container
    Run(Lazy<RunArgs>),
    /// Checkpoint a running container with CRIU
    Checkpoint(Lazy<CheckpointArgs>),
    /// Restore a container from a previous checkpoint
    Restore(Lazy<RestoreArgs>),
    /// Print the runtime-spec features this build and host support (JSON)
    Features,
    /// Suspend every process of a container (the cgroup freezer)
    Pause(Lazy<IdArg>),
    /// Resume a paused container
    Resume(Lazy<IdArg>),
    /// List the processes running in a container
    Ps(Lazy<PsArgs>),
    /// List containers
    List(Lazy<ListArgs>),
    /// Change a running container's resource limits
    Update(Lazy<UpdateArgs>),
    /// Print a container's statistics and OOM events as JSON lines, until it stops
    Events(Lazy<EventsArgs>),
}

#[derive(Args)]
pub struct SpecArgs {
    /// Directory to write config.json in
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// A config for a rootless container (user namespace, no cgroups)
    #[arg(long)]
    pub rootless: bool,
}

#[derive(Args)]
pub struct IdArg {
    /// Container id
    pub id: String,
}

#[derive(Args)]
pub struct KillArgs {
    /// Signal every process in the container's cgroup
    #[arg(short, long)]
    pub all: bool,
    /// Container id
    pub id: String,
    /// Signal name (KILL, SIGKILL) or number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Args)]
pub struct DeleteArgs {
    /// Kill a running container first; succeed if it does not exist
    #[arg(short, long)]
    pub force: bool,
    /// Container id
    pub id: String,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
}

#[derive(Args)]
pub struct PsArgs {
    /// table (the host's `ps` output for the container's processes) or json (their pids)
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Container id
    pub id: String,
    /// Options for `ps` (default -ef); every word after the id is one
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args)]
pub struct ListArgs {
    /// table or json (an empty list is null)
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only the ids
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct EventsArgs {
    /// Time between two statistics (Go duration: 5s, 1m30s, 500ms)
    #[arg(long, value_name = "DURATION", default_value = "5s", allow_hyphen_values = true)]
    pub interval: String,
    /// Print the statistics once and exit
    #[arg(long)]
    pub stats: bool,
    /// Container id
    pub id: String,
}

thread_local! {
    /// Which subcommands [`Lazy`] gives their arguments: all (`None`, the
    /// default: help, man pages, completions), or only the one named.
    static EXPAND: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// From now on (on this thread), [`Cli::command`] gives its arguments to
/// the subcommand `name` only (`Some("")`: to none), or to all (`None`).
pub fn expand_only(name: Option<&str>) {
    EXPAND.with(|e| *e.borrow_mut() = name.map(str::to_string));
}

fn expands(name: &str) -> bool {
    EXPAND.with(|e| e.borrow().as_deref().is_none_or(|n| n == name))
}

thread_local! {
    /// What [`Lazy`] left out, by subcommand: its arguments, for [`expand`].
    static DEFERRED: std::cell::RefCell<Vec<(String, fn(clap::Command) -> clap::Command)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `cmd` (built by [`Cli::command`] with `expand_only(Some(""))`) with the
/// arguments of its subcommand `name` added: the tree is not built twice.
/// The subcommand keeps its help text: an argument struct's own doc comment
/// (which `augment_args` sets) is the variant's in the derived order.
pub fn expand(cmd: clap::Command, name: &str) -> clap::Command {
    match DEFERRED.with(|d| d.borrow().iter().find(|(n, _)| n == name).map(|(_, f)| *f)) {
        Some(add) => cmd.mut_subcommand(name, |s| {
            let (about, long) = (s.get_about().cloned(), s.get_long_about().cloned());
            let keep = |t: Option<clap::builder::StyledStr>| t.map_or(clap::builder::Resettable::Reset, clap::builder::Resettable::Value);
            add(s).about(keep(about)).long_about(keep(long))
        }),
        None => cmd,
    }
}

/// A subcommand's arguments, added to its `Command` only when it is the
/// one being parsed ([`expand_only`]). Building every subcommand's
/// arguments, as the derived parser does, cost each command ~0.2 ms and
/// 25 page faults (`state`, docs/benchmarks.md); the names and the one-line
/// help of all subcommands are still there for suggestions and `--help`.
pub struct Lazy<T>(pub T);

impl<T> std::ops::Deref for Lazy<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(Lazy)
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
}

impl<T: Args> Args for Lazy<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        if expands(cmd.get_name()) {
            T::augment_args(cmd)
        } else {
            DEFERRED.with(|d| {
                let mut d = d.borrow_mut();
                if !d.iter().any(|(n, _)| n == cmd.get_name()) {
                    d.push((cmd.get_name().to_string(), T::augment_args));
                }
            });
            cmd
        }
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        if expands(cmd.get_name()) {
            T::augment_args_for_update(cmd)
        } else {
            cmd
        }
    }
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}
