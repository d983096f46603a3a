//! skiff: an OCI container runtime with runc's command line.
//!
//! This binary only parses arguments, sets up logging and calls
//! `libcontainer`; every behaviour lives in the library.

// (Unit tests keep the test harness's own main.)
#![cfg_attr(all(not(test), target_env = "gnu"), no_main)]
// (Under test, nothing calls skiff_main and what only it uses.)
#![cfg_attr(test, allow(dead_code))]

/// `println!` that does not panic when stdout is a closed pipe
/// (`skiff list | head -1`): the rest of the output is dropped.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

#[cfg(any(test, target_env = "musl"))]
mod arena;
mod argv;
mod cli;
mod logging;
#[cfg(any(test, target_env = "musl"))]
mod mem;

use std::path::{Path, PathBuf};

use cli::{CheckpointArgs, Cli, Command, CreateArgs, CriuArgs, ExecArgs, ListArgs, PsArgs, RestoreArgs, RunArgs, UpdateArgs};
use libcontainer::container::{self, CreateOptions};
use libcontainer::state::Store;
use tracing::Level;

/// On musl, a bump arena in front of musl's malloc (arena.rs says why).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: arena::Arena = arena::Arena;

/// The process's entry point on glibc, called by the C runtime: skiff has
/// no use for most of what Rust's runtime sets up before `main` (the main
/// thread's stack guard, found by parsing /proc/self/maps; an alternate
/// signal stack for the overflow message; ~20 system calls), and every
/// runtime command pays for it. What it needs of it is done here: stdin,
/// stdout and stderr open (on /dev/null if the caller closed them, so that
/// no file of ours takes their numbers), SIGPIPE ignored, and stdout
/// flushed at the end.
#[cfg(all(not(test), target_env = "gnu"))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // SAFETY: a valid array of three pollfds; a zero timeout.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } >= 0 {
        for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
            // SAFETY: a constant path; the lowest free number is the closed one.
            if unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) } != p.fd {
                return 1;
            }
        }
    }
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    skiff_main_flushed().into()
}

/// The entry point on musl (`just release`): there Rust's std hands a
/// `no_main` program no arguments, so skiff starts from std's `main`, whose
/// start-up opens closed standard streams on /dev/null and ignores SIGPIPE
/// as the glibc entry point does by hand.
#[cfg(all(not(test), not(target_env = "gnu")))]
fn main() -> std::process::ExitCode {
    skiff_main_flushed().into()
}

/// The command, then stdout flushed.
#[cfg(not(test))]
fn skiff_main_flushed() -> u8 {
    let code = skiff_main();
    let _ = std::io::Write::flush(&mut std::io::stdout());
    code
}

fn skiff_main() -> u8 {
    // runc's argument shapes (single-dash long flags) made clap's; a usage
    // error is also logged to --log.
    let cli = match argv::parse() {
        Ok(cli) => cli,
        Err(failure) => return failure.report(),
    };
    if cli.version {
        print_version();
        return 0;
    }

    // The log file exists from the start, even if the command fails early.
    let format = if cli.log_format == "json" { logging::Format::Json } else { logging::Format::Text };
    let file = match &cli.log {
        Some(p) => match std::fs::OpenOptions::new().create(true).append(true).open(p) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("skiff: open log file {}: {}", p.display(), libcontainer::error::strerror(&e));
                return 1;
            }
        },
        None => None,
    };
    let to_file = file.is_some();
    let level = if cli.debug { Level::DEBUG } else { Level::WARN };
    if cli.debug {
        libcontainer::trace::enable();
    }
    let _ = tracing::subscriber::set_global_default(logging::Logger::new(file, format, level));
    let Some(command) = cli.command.as_ref() else {
        tracing::error!("no command given (try --help)");
        if to_file {
            eprintln!("skiff: no command given (try --help)");
        }
        return 1;
    };

    match run(&cli, command) {
        Ok(code) => code,
        Err(msg) => {
            let msg = libcontainer::error::runc_wording(&msg);
            tracing::error!("{msg}");
            if to_file {
                eprintln!("{msg}");
            }
            // runc: a failed exec exits 255 (a process's own code is 0-255).
            if matches!(command, Command::Exec(_)) { 255 } else { 1 }
        }
    }
}

fn print_version() {
    outln!("skiff version {}", env!("CARGO_PKG_VERSION"));
    outln!("commit: {}", env!("SKIFF_COMMIT"));
    outln!("spec: {}", libcontainer::spec::OCI_VERSION);
    if let Ok(v) = libseccomp_version() {
        outln!("libseccomp: {v}");
    }
}

fn libseccomp_version() -> Result<String, String> {
    libcontainer::seccomp::library_version().map_err(|e| e.to_string())
}

/// Rootless as runc decides it: `--rootless true|false`, or (auto) when
/// not root, or root of a user namespace that does not map every id.
fn rootless(cli: &Cli) -> bool {
    match cli.rootless.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => !nix::unistd::geteuid().is_root() || libcontainer::namespaces::running_in_userns(),
    }
}

/// The state root: `--root`; rootless, `$XDG_RUNTIME_DIR/skiff`, else the
/// user's `/run/user/UID/skiff` where that directory is the user's; else
/// `/run/skiff` (as runc's `/run/runc`).
fn state_root(cli: &Cli) -> PathBuf {
    if let Some(r) = &cli.root {
        return r.clone();
    }
    if rootless(cli) {
        if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
            return Path::new(&x).join("skiff");
        }
        let uid = nix::unistd::geteuid();
        let run_user = PathBuf::from(format!("/run/user/{uid}"));
        if std::fs::metadata(&run_user).is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == uid.as_raw()) {
            return run_user.join("skiff");
        }
    }
    PathBuf::from("/run/skiff")
}

/// Compiled seccomp filters are kept in the state root across runs, under
/// a name no container id can take (root only: a rootless runtime
/// recompiles rather than trust a user-writable cache).
fn seccomp_cache(cli: &Cli, store: &Store) -> Option<PathBuf> {
    (!rootless(cli)).then(|| store.root().join(libcontainer::state::SECCOMP_CACHE))
}

fn run(cli: &Cli, command: &Command) -> Result<u8, String> {
    let store = Store::new(state_root(cli));
    // Only the commands that load a filter ask for the cache: the rootless
    // check behind it reads /proc/self/uid_map.
    let cache = || seccomp_cache(cli, &store);
    match command {
        Command::Spec(a) => {
            let path = a.bundle.join("config.json");
            if path.exists() {
                return Err(format!("file {} exists: remove it first", path.display()));
            }
            let spec = libcontainer::spec::default_spec(a.rootless);
            let text = serde_json::to_string_pretty(&spec).expect("json");
            std::fs::write(&path, text + "\n").map_err(|e| format!("write {}: {}", path.display(), libcontainer::error::strerror(&e)))?;
            Ok(0)
        }
        Command::Create(a) => {
            let notify = libcontainer::notify::host_socket();
            let cache = cache();
            let opts = options(cli, a, None, cache.as_deref(), notify.as_deref());
            container::create(&store, &opts).map_err(|e| e.to_string())?;
            Ok(0)
        }
        Command::Start(a) => container::start(&store, &a.id, libcontainer::notify::host_socket().as_deref()).map(|_| 0).map_err(|e| e.to_string()),
        Command::State(a) => {
            let v = container::state(&store, &a.id).map_err(|e| e.to_string())?;
            outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
            Ok(0)
        }
        Command::Exec(a) => exec(a, &store, cache().as_deref()).map_err(|e| format!("exec failed: {e}")),
        Command::Kill(a) => {
            let sig = parse_signal(&a.signal)?;
            container::kill(&store, &a.id, sig, a.all).map(|_| 0).map_err(|e| e.to_string())
        }
        Command::Delete(a) => match container::delete(&store, &a.id, a.force) {
            Ok(()) => Ok(0),
            // runc: deleting a missing container with --force succeeds.
            Err(libcontainer::Error::NotExist(_)) if a.force => Ok(0),
            Err(e) => Err(e.to_string()),
        },
        Command::Run(a) => {
            let RunArgs { create, detach, keep } = &**a;
            if *detach && *keep {
                return Err("--keep cannot be used with --detach".into());
            }
            let notify = libcontainer::notify::host_socket();
            let cache = cache();
            let opts = options(cli, create, Some(!*detach), cache.as_deref(), notify.as_deref());
            let code = container::run(&store, &opts, *keep).map_err(|e| e.to_string())?;
            Ok(code.clamp(0, 255) as u8)
        }
        Command::Features => {
            outln!("{}", serde_json::to_string_pretty(&libcontainer::features::features(&criu_path(cli))).expect("json"));
            Ok(0)
        }
        Command::Pause(a) => container::pause(&store, &a.id).map(|_| 0).map_err(|e| e.to_string()),
        Command::Resume(a) => container::resume(&store, &a.id).map(|_| 0).map_err(|e| e.to_string()),
        Command::Ps(a) => {
            let PsArgs { format, id, ps_args } = &**a;
            let pids = container::pids(&store, id).map_err(|e| e.to_string())?;
            if format == "json" {
                if !ps_args.is_empty() {
                    return Err("ps options cannot be used with --format json".into());
                }
                outln!("{}", serde_json::to_string(&pids).expect("json"));
                return Ok(0);
            }
            out!("{}", ps_table(&pids, ps_args)?);
            Ok(0)
        }
        Command::Update(a) => update(a, &store).map(|_| 0),
        Command::Checkpoint(a) => checkpoint(cli, a, &store).map(|_| 0),
        Command::Restore(a) => restore(cli, a, &store),
        Command::Events(a) => events(&store, &a.id, &a.interval, a.stats).map(|_| 0),
        Command::List(a) => {
            let ListArgs { format, quiet } = &**a;
            if *quiet {
                for id in container::list_ids(&store).map_err(|e| e.to_string())? {
                    outln!("{id}");
                }
                return Ok(0);
            }
            let list = container::list(&store).map_err(|e| e.to_string())?;
            if format == "json" {
                if list.is_empty() {
                    // runc prints null for an empty list.
                    outln!("null");
                } else {
                    let v: Vec<_> = list.iter().map(|(st, s)| st.to_oci(*s)).collect();
                    outln!("{}", serde_json::to_string(&v).expect("json"));
                }
            } else {
                print_table(&list);
            }
            Ok(0)
        }
    }
}

/// `exec`: the process from `--process` or from the flags, as runc takes it.
fn exec(a: &ExecArgs, store: &Store, cache: Option<&Path>) -> Result<u8, String> {
    use libcontainer::container::{ExecOptions, ExecProcess, ProcessOverrides};
    let process = match &a.process {
        Some(p) => {
            if !a.command.is_empty() {
                return Err("a command cannot be given with --process (put it in the process's args)".into());
            }
            ExecProcess::Spec(Box::new(container::read_process_file(p).map_err(|e| e.to_string())?))
        }
        None => ExecProcess::Args(ProcessOverrides {
            args: a.command.clone(),
            cwd: a.cwd.clone(),
            env: a.env.clone(),
            user: a.user.as_deref().map(parse_user).transpose()?,
            additional_gids: a.additional_gids.clone(),
            caps: a.cap.clone(),
            no_new_privs: a.no_new_privs,
            process_label: a.process_label.clone(),
            apparmor: a.apparmor.clone(),
            tty: a.tty,
        }),
    };
    let opts = ExecOptions {
        process,
        console_socket: a.console_socket.as_deref(),
        pid_file: a.pid_file.as_deref(),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
        cgroups: &a.cgroup,
        ignore_paused: a.ignore_paused,
        seccomp_cache: cache,
    };
    let code = container::exec(store, &a.id, &opts).map_err(|e| e.to_string())?;
    Ok(code.clamp(0, 255) as u8)
}

/// The CRIU binary: `--criu`, else `criu` in $PATH.
fn criu_path(cli: &Cli) -> PathBuf {
    PathBuf::from(cli.criu.as_deref().filter(|c| !c.is_empty()).unwrap_or("criu"))
}

/// The options both CRIU commands share; the image path defaults to
/// `checkpoint` in the working directory, as with runc.
fn criu_options<'a>(a: &'a CriuArgs, criu: &'a Path, image: &'a Path) -> Result<container::CriuOptions<'a>, String> {
    Ok(container::CriuOptions {
        criu,
        image_path: image,
        work_path: a.work_path.as_deref(),
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        file_locks: a.file_locks,
        manage_cgroups_mode: a.manage_cgroups_mode.as_deref().map(container::CgroupsMode::parse).transpose().map_err(|e| e.to_string())?,
        empty_ns: container::parse_empty_ns(&a.empty_ns).map_err(|e| e.to_string())?,
        auto_dedup: a.auto_dedup,
        lazy_pages: a.lazy_pages,
    })
}

fn image_path(a: &CriuArgs) -> PathBuf {
    a.image_path.clone().unwrap_or_else(|| PathBuf::from("checkpoint"))
}

/// `checkpoint`.
fn checkpoint(cli: &Cli, a: &CheckpointArgs, store: &Store) -> Result<(), String> {
    if a.status_fd >= 0 && !a.criu.lazy_pages {
        return Err("--status-fd can only be used with --lazy-pages".into());
    }
    let criu = criu_path(cli);
    let image = image_path(&a.criu);
    let opts = container::CheckpointOptions {
        common: criu_options(&a.criu, &criu, &image)?,
        parent_path: a.parent_path.as_deref(),
        leave_running: a.leave_running,
        pre_dump: a.pre_dump,
        status_fd: (a.status_fd >= 0).then_some(a.status_fd),
        page_server: a.page_server.as_deref().map(container::parse_page_server).transpose().map_err(|e| e.to_string())?,
    };
    container::checkpoint(store, &a.id, &opts).map_err(|e| e.to_string())
}

/// `restore`: like `run`, the exit code of the container in the foreground.
fn restore(cli: &Cli, a: &RestoreArgs, store: &Store) -> Result<u8, String> {
    if a.no_pivot {
        return Err("--no-pivot is not supported by restore: criu always pivots into the restored root".into());
    }
    if rootless(cli) {
        return Err("restore needs root: criu cannot restore a rootless container".into());
    }
    let criu = criu_path(cli);
    let image = image_path(&a.criu);
    let opts = container::RestoreOptions {
        common: criu_options(&a.criu, &criu, &image)?,
        id: &a.id,
        bundle: &a.bundle,
        detach: a.detach,
        pid_file: a.pid_file.as_deref(),
        console_socket: a.console_socket.as_deref(),
        no_subreaper: a.no_subreaper,
        systemd_cgroup: cli.systemd_cgroup,
        lsm_profile: a.lsm_profile.as_deref(),
        lsm_mount_context: a.lsm_mount_context.as_deref(),
    };
    let code = container::restore(store, &opts).map_err(|e| e.to_string())?;
    Ok(code.clamp(0, 255) as u8)
}

/// `update`: the JSON of `--resources` (a file, or stdin for `-`) or the flags.
fn update(a: &UpdateArgs, store: &Store) -> Result<(), String> {
    let flags = container::UpdateFlags {
        memory: a.memory.clone(),
        memory_swap: a.memory_swap.clone(),
        memory_reservation: a.memory_reservation.clone(),
        kernel_memory: a.kernel_memory.clone(),
        kernel_memory_tcp: a.kernel_memory_tcp.clone(),
        cpu_shares: a.cpu_shares.clone(),
        cpu_period: a.cpu_period.clone(),
        cpu_quota: a.cpu_quota.clone(),
        cpu_burst: a.cpu_burst.clone(),
        cpu_rt_period: a.cpu_rt_period.clone(),
        cpu_rt_runtime: a.cpu_rt_runtime.clone(),
        cpu_idle: a.cpu_idle.clone(),
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        pids_limit: a.pids_limit.clone(),
        blkio_weight: a.blkio_weight.clone(),
        l3_cache_schema: a.l3_cache_schema.clone(),
        mem_bw_schema: a.mem_bw_schema.clone(),
    };
    let data = match a.resources.as_deref() {
        None => None,
        Some("-") => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|e| format!("read resources from stdin: {}", libcontainer::error::strerror(&e)))?;
            Some(buf)
        }
        Some(p) => Some(std::fs::read(p).map_err(|e| format!("open {p}: {}", libcontainer::error::strerror(&e)))?),
    };
    let source = data.as_deref().map_or(container::UpdateSource::Flags, container::UpdateSource::Json);
    container::update(store, &a.id, source, &flags).map_err(|e| e.to_string())
}

/// `events`: one stats line (`--stats`), or the stream until the container stops.
fn events(store: &Store, id: &str, interval: &str, once: bool) -> Result<(), String> {
    let interval = container::parse_go_duration(interval).map_err(|e| format!("invalid --interval: {e}"))?;
    if once {
        let data = container::stats(store, id).map_err(|e| e.to_string())?;
        outln!("{}", serde_json::to_string(&container::Event { kind: "stats", id, data: Some(data) }).expect("json"));
        return Ok(());
    }
    container::events(store, id, interval, &mut |e| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::to_string(e).expect("json")).and_then(|()| out.flush()).is_ok()
    })
    .map_err(|e| e.to_string())
}

/// `--user UID[:GID]`, numeric as with runc.
fn parse_user(s: &str) -> Result<(u32, Option<u32>), String> {
    let bad = || format!("invalid --user {s:?}: expected UID[:GID] (numbers)");
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g.parse().map_err(|_| bad())?)),
        None => (s, None),
    };
    Ok((u.parse().map_err(|_| bad())?, g))
}

/// `create`'s options; `run` is `Some(foreground)` for `run`, None for `create`.
fn options<'a>(cli: &Cli, a: &'a CreateArgs, run: Option<bool>, cache: Option<&'a Path>, notify_socket: Option<&'a Path>) -> CreateOptions<'a> {
    CreateOptions {
        id: &a.id,
        bundle: &a.bundle,
        pid_file: a.pid_file.as_deref(),
        console_socket: a.console_socket.as_deref(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        systemd_cgroup: cli.systemd_cgroup,
        foreground: run == Some(true),
        then_start: run.is_some(),
        seccomp_cache: cache,
        notify_socket,
        listen_fds: listen_fds(),
        rootless: rootless(cli),
    }
}

/// Socket activation (sd_listen_fds): descriptors 3.. passed to us by
/// systemd, when LISTEN_PID names this process.
fn listen_fds() -> u32 {
    let ours = std::env::var("LISTEN_PID").ok().and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    if !ours {
        return 0;
    }
    std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn print_table(list: &[(libcontainer::state::State, libcontainer::state::Status)]) {
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|(st, s)| {
            let pid = if *s == libcontainer::state::Status::Stopped { 0 } else { st.pid };
            [st.id.clone(), pid.to_string(), s.to_string(), st.bundle.display().to_string(), st.created.clone(), st.owner.clone()]
        })
        .collect();
    let head = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 5 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}", width = w[i] + 4));
            }
        }
        outln!("{}", s.trim_end());
    };
    line(head);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]);
    }
}

/// The host's `ps` (with the caller's options, default `-ef`), its header
/// and the lines of the container's processes, found by the PID column.
fn ps_table(pids: &[i32], args: &[String]) -> Result<String, String> {
    let args: Vec<String> = if args.is_empty() { vec!["-ef".into()] } else { args.to_vec() };
    let out = std::process::Command::new("ps").args(&args).output().map_err(|e| format!("exec ps: {}", libcontainer::error::strerror(&e)))?;
    if !out.status.success() {
        return Err(format!("ps {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header.split_whitespace().position(|h| h == "PID").ok_or_else(|| "couldn't find PID field in ps output".to_string())?;
    let mut table = format!("{header}\n");
    for l in lines {
        if l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| pids.contains(&p)) {
            table.push_str(l);
            table.push('\n');
        }
    }
    Ok(table)
}

/// A signal by number, by name, or by name without the SIG prefix.
fn parse_signal(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        if (0..=64).contains(&n) {
            return Ok(n);
        }
        return Err(format!("invalid signal number {n}"));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<nix::sys::signal::Signal>().map(|s| s as i32).map_err(|_| format!("unknown signal {s:?}"))
}
