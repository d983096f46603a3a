//! `spec`, `--version`, and the caller contract's command line
//! (/work/shared/docs/caller-contract.md): the argument shapes runc's callers
//! send (`--x v`, `--x=v`, Go's single-dash `-x v` / `-x=v`, trailing `ps`
//! options) and the `--log` file, written even when the command line is
//! refused.

use serde_json::{json, Value};
use skiff_integration_tests::*;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn version_first_line() {
    require_root!();
    let env = TestEnv::new("cli-version");
    let out = env.rt(&["--version"]);
    out.ok();
    let first = out.stdout.lines().next().unwrap_or("");
    let words: Vec<&str> = first.split_whitespace().collect();
    let name = runtime_name();
    assert!(words.len() >= 3, "version line {first:?}");
    assert_eq!(words[0], name, "first word must be the binary name: {first:?}");
    assert_eq!(words[1], "version", "{first:?}");
    let v = words[2];
    let core: Vec<&str> = v.splitn(3, '.').collect();
    assert_eq!(core.len(), 3, "not X.Y.Z: {v}");
    assert!(core[0].parse::<u32>().is_ok() && core[1].parse::<u32>().is_ok(), "not X.Y.Z: {v}");
    let patch: String = core[2].chars().take_while(|c| c.is_ascii_digit()).collect();
    assert!(!patch.is_empty(), "not X.Y.Z: {v}");
}

#[test]
fn spec_writes_config() {
    require_root!();
    let env = TestEnv::new("cli-spec");
    let out = env.run_cmd({
        let mut c = env.command(&["spec"]);
        c.current_dir(&env.bundle);
        c
    });
    out.ok();
    let text = fs::read_to_string(env.bundle.join("config.json")).expect("spec did not write config.json");
    let v: Value = serde_json::from_str(&text).expect("spec output is not JSON");
    assert!(v["ociVersion"].as_str().is_some_and(|s| s.starts_with("1.")), "{v}");
    assert_eq!(v["root"]["path"], "rootfs");
    assert!(v["process"]["args"].as_array().is_some_and(|a| !a.is_empty()));
    assert!(v["process"]["cwd"].is_string());
    let ns: Vec<&str> = v["linux"]["namespaces"].as_array().expect("namespaces").iter().filter_map(|n| n["type"].as_str()).collect();
    for k in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(ns.contains(&k), "default spec lacks {k} namespace: {ns:?}");
    }
    assert!(v["mounts"].as_array().is_some_and(|m| m.iter().any(|m| m["destination"] == "/proc")));

    // a second spec must not silently overwrite it
    let again = env.run_cmd({
        let mut c = env.command(&["spec"]);
        c.current_dir(&env.bundle);
        c
    });
    again.failed();
}

#[test]
fn spec_output_is_runnable() {
    require_root!();
    let mut env = TestEnv::new("cli-spec-run");
    let out = env.run_cmd({
        let mut c = env.command(&["spec"]);
        c.current_dir(&env.bundle);
        c
    });
    out.ok();
    let mut v: Value = serde_json::from_str(&fs::read_to_string(env.bundle.join("config.json")).unwrap()).unwrap();
    v["process"]["terminal"] = json!(false);
    v["process"]["args"] = json!(["sh", "-c", "echo spec-ok; hostname"]);
    env.config = v;
    let out = env.run(&[]);
    out.ok();
    assert!(out.stdout.starts_with("spec-ok\n"), "{}", out.describe());
}

#[test]
fn version_lines_like_runcs() {
    require_root!();
    let env = TestEnv::new("cli-version-lines");
    let long = env.rt(&["--version"]);
    long.ok();
    let lines: Vec<&str> = long.stdout.lines().collect();
    for (prefix, what) in [("commit: ", "the commit"), ("spec: 1.", "the runtime-spec version"), ("libseccomp: ", "the libseccomp version")] {
        let line = lines.iter().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no `{prefix}…` line ({what}):\n{}", long.stdout));
        assert!(line.len() > prefix.len(), "empty {what}: {line:?}");
    }
    let spec = lines.iter().find_map(|l| l.strip_prefix("spec: ")).unwrap();
    assert_eq!(spec.split('.').take(3).filter(|p| p.chars().next().is_some_and(|c| c.is_ascii_digit())).count(), 3, "spec is not X.Y.Z: {spec}");
    let short = env.rt(&["-v"]);
    short.ok();
    assert_eq!(short.stdout, long.stdout, "-v and --version differ");
    // Output into a pipe nobody reads any more (`| head -1`) is dropped,
    // not a panic: stdout is a pipe whose read end is already closed.
    let (rd, wr) = nix::unistd::pipe().unwrap();
    drop(rd);
    let out = Command::new(runtime_bin()).arg("--version").stdout(std::process::Stdio::from(wr)).stderr(std::process::Stdio::piped()).output().unwrap();
    let piped = Output { cmdline: "skiff --version | (closed)".into(), code: out.status.code().unwrap_or(-1), signaled: false, timed_out: false, stdout: String::new(), stderr: String::from_utf8_lossy(&out.stderr).into(), elapsed: Duration::ZERO };
    assert!(!piped.stderr.contains("panicked"), "{}", piped.describe());
}

/// A command for the runtime with the marker but no `--root`: the test
/// gives every global flag itself.
fn bare(env: &TestEnv, args: &[&str]) -> Output {
    let mut cmd = Command::new(runtime_bin());
    cmd.args(args).current_dir(&env.dir).env(MARKER_VAR, &env.marker).env("TZ", "UTC");
    env.run_cmd(cmd)
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn flag_values_with_a_space_or_an_equals_sign() {
    require_root!();
    let mut env = TestEnv::new("cli-shapes");
    env.set_args(&["true"]);
    let (root, bundle) = (s(&env.root), s(&env.bundle));
    // `--x v` and `--x=v` for the global flags and create's, then Go's
    // single-dash spellings, which go-runc and people used to runc send.
    type Shape = dyn Fn(&str, &str, &str, &str) -> Vec<String>;
    let shapes: [&Shape; 3] = [
        &|r, l, b, p| ["--root", r, "--log", l, "--log-format", "json", "create", "--bundle", b, "--pid-file", p, "--no-new-keyring"].map(String::from).to_vec(),
        &|r, l, b, p| [format!("--root={r}"), format!("--log={l}"), "--log-format=json".into(), "create".into(), format!("--bundle={b}"), format!("--pid-file={p}"), "--preserve-fds=0".into()].to_vec(),
        &|r, l, b, p| ["-root", r, format!("-log={l}").as_str(), "-log-format", "json", "create", format!("-bundle={b}").as_str(), "-pid-file", p, "-no-new-keyring", "-no-pivot"].map(String::from).to_vec(),
    ];
    for (n, shape) in shapes.iter().enumerate() {
        let id = env.new_id();
        env.write_config_for(&id);
        let log = env.dir.join(format!("log-{n}.json"));
        let pid_file = env.dir.join(format!("pid-{n}"));
        let mut args = shape(&root, &s(&log), &bundle, &s(&pid_file));
        args.push(id.clone());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        bare(&env, &argv).ok();
        let pid: i64 = fs::read_to_string(&pid_file).unwrap_or_else(|e| panic!("{argv:?}: no pid file ({e})")).trim().parse().expect("pid file holds a pid");
        env.track_pid(pid as i32);
        assert!(log.exists(), "{argv:?}: no log file");
        assert_eq!(env.state_id(&id)["status"], "created", "{argv:?}");
        assert_eq!(env.state_id(&id)["pid"], pid, "{argv:?}");
        let delete = if n == 2 { ["-root", root.as_str(), "delete", "-force", id.as_str()] } else { ["--root", root.as_str(), "delete", "--force", id.as_str()] };
        bare(&env, &delete).ok();
        assert!(env.try_state_id(&id).is_none(), "{delete:?} left {id}");
    }
}

#[test]
fn trailing_ps_options_are_passed_to_ps() {
    require_root!();
    let mut env = TestEnv::new("cli-ps-trailing");
    env.set_sh("sleep 33");
    env.run(&["-d"]).ok();
    let root = s(&env.root);
    let id = env.id.clone();
    let mut pids: Vec<i64> = Vec::new();
    assert!(wait_until(Duration::from_secs(5), || {
        pids = serde_json::from_str(&bare(&env, &["-root", &root, "ps", "-format=json", &id]).ok().stdout).unwrap_or_default();
        !pids.is_empty()
    }), "ps -format=json: {pids:?}");
    // Words after the id are ps's, even those that look like skiff's flags:
    // `-f` is ps's full format, not --format; `-ef` is a cluster.
    for (args, header) in [(vec!["-ef"], "UID"), (vec!["-f"], "PPID"), (vec!["-o", "pid,args"], "COMMAND")] {
        let mut argv = vec!["--root", root.as_str(), "ps", "-format", "table", id.as_str()];
        argv.extend(&args);
        let out = bare(&env, &argv);
        out.ok();
        let head = out.stdout.lines().next().unwrap_or_default();
        assert!(head.split_whitespace().any(|h| h == header), "{argv:?}: header {head:?}, expected a {header} column");
        assert!(out.stdout.lines().any(|l| l.ends_with("sleep 33")), "{argv:?}:\n{}", out.stdout);
    }
    env.rt(&["delete", "--force", &env.id]).ok();
}

#[test]
fn global_flag_after_the_subcommand_is_refused() {
    require_root!();
    let mut env = TestEnv::new("cli-global-after");
    env.set_args(&["true"]);
    env.write_config();
    let other = env.dir.join("other-root");
    let log = env.dir.join("log.json");
    for root_flag in ["--root", "-root"] {
        let out = bare(&env, &["--root", &s(&env.root), "--log", &s(&log), "--log-format", "json", "create", root_flag, &s(&other), "--bundle", &s(&env.bundle), &env.id]);
        out.failed().stderr_mentions(&["root"]);
        assert!(!other.exists() && env.try_state_id(&env.id).is_none(), "{root_flag} after create was used:\n{}", out.describe());
        let msg = last_json_error(&log, &out);
        assert!(msg.contains("root"), "the logged error does not name the flag: {msg:?}");
    }
}

#[test]
fn rootless_and_criu_forms() {
    require_root!();
    let env = TestEnv::new("cli-rootless");
    let root = s(&env.root);
    let forms: [&[&str]; 7] = [
        &["--rootless=true"],
        &["--rootless", "false"],
        &["--rootless=false"],
        &["--rootless", "auto"],
        &["-rootless", "true"],
        &["--criu", "/usr/sbin/criu"],
        &["--criu=/nonexistent/criu", "-rootless=false"],
    ];
    for form in forms {
        let mut argv = form.to_vec();
        argv.extend(["--root", root.as_str(), "list"]);
        let out = bare(&env, &argv);
        out.ok();
        assert!(out.stdout.starts_with("ID "), "{argv:?}: not a list:\n{}", out.describe());
    }
}

#[test]
fn rootless_without_a_value_means_true_and_a_bad_value_is_refused() {
    require_root!();
    // A bare --rootless is true (runc's flag takes the next word as its
    // value), and a value other than true/false/auto is refused (runc only
    // reads it where it needs it).
    let env = TestEnv::new("cli-rootless-bare");
    let root = s(&env.root);
    let out = bare(&env, &["--rootless", "--root", &root, "list"]);
    out.ok();
    assert!(out.stdout.starts_with("ID "), "{}", out.describe());
    bare(&env, &["--rootless=maybe", "--root", &root, "list"]).failed().stderr_mentions(&["maybe"]);
}

/// Checks every line of the JSON log at `path` (runc's shape: exactly
/// `{"level":…,"msg":…,"time":…}` in that order, time in UTC seconds, one
/// line per message) and returns the `msg` of the last error line.
#[track_caller]
fn last_json_error(path: &Path, out: &Output) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("log file {} not created ({e}):\n{}", path.display(), out.describe()));
    let mut last = None;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("log line is not one JSON object ({e}): {line:?}"));
        let keys: Vec<&str> = v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        assert_eq!(keys, ["level", "msg", "time"], "log line keys: {line}");
        let time = v["time"].as_str().unwrap_or_default();
        assert!(is_rfc3339(time) && time.len() == 20 && time.ends_with('Z'), "time is not YYYY-MM-DDTHH:MM:SSZ: {line}");
        let msg = v["msg"].as_str().unwrap_or_else(|| panic!("msg is not a string: {line}"));
        assert!(!msg.contains('\n') && !msg.contains('\r'), "msg is not one line: {line}");
        if v["level"] == "error" {
            last = Some(msg.to_string());
        }
    }
    let msg = last.unwrap_or_else(|| panic!("no error line in the log:\n{text}\n{}", out.describe()));
    assert!(!msg.trim().is_empty(), "empty error message:\n{text}");
    msg
}

/// Runs the runtime with `--log FILE --log-format json` and `args`, expects
/// a clean failure, and returns the last logged error.
fn json_log_failure(env: &TestEnv, name: &str, args: &[&str]) -> String {
    let log = env.dir.join(format!("{name}.json"));
    let mut argv = vec!["--root".to_string(), s(&env.root), "--log".into(), s(&log), "--log-format".into(), "json".into()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = bare(env, &argv);
    out.failed();
    last_json_error(&log, &out)
}

#[test]
fn log_json_usage_error() {
    require_root!();
    let env = TestEnv::new("cli-log-usage");
    let msg = json_log_failure(&env, "start", &["start"]);
    assert!(msg.contains("start"), "the logged error does not name the command: {msg:?}");
    let msg = json_log_failure(&env, "badflag", &["create", "--no-such-flag", &env.id]);
    assert!(msg.contains("no-such-flag"), "the logged error does not name the flag: {msg:?}");
}

#[test]
fn log_json_unknown_subcommand() {
    require_root!();
    let env = TestEnv::new("cli-log-unknown");
    let msg = json_log_failure(&env, "frob", &["frobnicate", "x"]);
    assert!(msg.contains("frobnicate"), "{msg:?}");
}

#[test]
fn log_json_missing_container() {
    require_root!();
    let env = TestEnv::new("cli-log-missing");
    for cmd in ["state", "start", "kill", "delete", "pause"] {
        let msg = json_log_failure(&env, cmd, &[cmd, "no-such-container"]);
        assert!(msg.contains("does not exist"), "{cmd}: {msg:?}");
    }
}

#[test]
fn log_json_multiline_message_is_one_line() {
    require_root!();
    let env = TestEnv::new("cli-log-multiline");
    // A bundle path with newlines puts them into the error message.
    let bundle = env.dir.join("no\nsuch\nbundle");
    let msg = json_log_failure(&env, "multi", &["create", "--bundle", &s(&bundle), &env.id]);
    assert!(msg.contains("no") && msg.contains("bundle"), "{msg:?}");
    env.assert_no_leftovers(&env.id);
}

#[test]
fn log_text_usage_error() {
    require_root!();
    let env = TestEnv::new("cli-log-text");
    let log = env.dir.join("log.txt");
    let out = bare(&env, &["--root", &s(&env.root), "--log", &s(&log), "start"]);
    out.failed();
    let text = fs::read_to_string(&log).unwrap_or_else(|e| panic!("log file not created ({e}):\n{}", out.describe()));
    let line = text.lines().last().unwrap_or_else(|| panic!("empty log:\n{}", out.describe()));
    assert!(line.starts_with("time=\"") && line.contains("\" level=error msg=\"") && line.contains("start"), "not logrus' text shape: {line:?}");
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn exec_single_dash_flags_and_the_trailing_command() {
    require_root!();
    let mut env = TestEnv::new("cli-exec-argv");
    env.set_sh("sleep 34");
    env.run(&["-d"]).ok();
    let root = s(&env.root);
    // Go's spellings before the id; after it, the command as given, with
    // words that look like skiff's flags (-c is exec's --cap, -d --detach).
    let out = bare(&env, &["-root", &root, "exec", "-env=A=from-env", "-cwd", "/tmp", &env.id, "sh", "-c", "echo $A; pwd; echo -d -c", "-t"]);
    out.ok();
    assert_eq!(out.stdout, "from-env\n/tmp\n-d -c\n", "{}", out.describe());
    env.rt(&["delete", "--force", &env.id]).ok();
}
